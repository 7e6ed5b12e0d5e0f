//! Data shared by every worker of this Envoy process, with the compare-and-swap semantics of
//! proxy-wasm's shared data that the core's limits, cool-downs and discovery rely on: a read
//! returns the value with its CAS token; a write with token 0 always succeeds, a write with a
//! token succeeds only while the token is still the key's (a key not yet written takes any
//! token); every write gives the key a new token, never 0. The wasm build gets this from Envoy;
//! a dynamic module shares its process's memory, so a mutex over a map is the whole of it.

use std::sync::{Mutex, PoisonError};

use airouter_core::host::SharedWrite;
use rustc_hash::FxHashMap;

struct Table {
    values: FxHashMap<String, (Vec<u8>, u32)>,
    next_cas: u32,
}

static TABLE: Mutex<Option<Table>> = Mutex::new(None);

fn with_table<T>(f: impl FnOnce(&mut Table) -> T) -> T {
    // A panic while holding the lock leaves a consistent map (every write is one insert).
    let mut guard = TABLE.lock().unwrap_or_else(PoisonError::into_inner);
    let table = guard.get_or_insert_with(|| Table {
        values: FxHashMap::default(),
        next_cas: 1,
    });
    f(table)
}

/// The value of `key` and its CAS token.
pub fn get(key: &str) -> Option<(Vec<u8>, u32)> {
    with_table(|t| t.values.get(key).cloned())
}

/// Writes `value` under `key` if its CAS token is still `cas` (0: unconditionally).
pub fn set(key: &str, value: &[u8], cas: u32) -> SharedWrite {
    with_table(|t| {
        if let Some((_, current)) = t.values.get(key) {
            if cas != 0 && cas != *current {
                return SharedWrite::Conflict;
            }
        }
        let token = t.next_cas;
        t.next_cas = t.next_cas.wrapping_add(1).max(1);
        t.values.insert(key.to_string(), (value.to_vec(), token));
        SharedWrite::Written
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stale_token_conflicts_and_a_fresh_one_writes() {
        let key = "test/shared/cas";
        assert_eq!(get(key), None);
        assert_eq!(
            set(key, b"1", 7),
            SharedWrite::Written,
            "a new key takes any token"
        );
        let (value, cas) = get(key).unwrap();
        assert_eq!(value, b"1");
        assert_ne!(cas, 0);
        assert_eq!(set(key, b"2", cas), SharedWrite::Written);
        assert_eq!(set(key, b"3", cas), SharedWrite::Conflict);
        assert_eq!(get(key).unwrap().0, b"2");
        assert_eq!(set(key, b"4", 0), SharedWrite::Written);
        assert_eq!(get(key).unwrap().0, b"4");
    }

    #[test]
    fn concurrent_increments_through_cas_lose_nothing() {
        let key = "test/shared/counter";
        set(key, b"0", 0);
        let threads: Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn(move || {
                    for _ in 0..500 {
                        loop {
                            let (v, cas) = get(key).unwrap();
                            let n: u64 = String::from_utf8(v).unwrap().parse().unwrap();
                            if set(key, (n + 1).to_string().as_bytes(), cas) == SharedWrite::Written
                            {
                                break;
                            }
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(get(key).unwrap().0, b"2000");
    }
}
