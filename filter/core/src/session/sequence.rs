//! The session records' sequence: every record an Envoy process hands over carries its number in
//! that process's sequence (`"sequence": {"epoch": E, "n": N}`), so the sidecar can tell which
//! records never arrived (it counts, per epoch, the numbers it got against the highest it saw).
//!
//! The sequence lives in proxy-wasm shared data under [`SHARED_SESSION_SEQUENCE_KEY`], shared by
//! every worker of the Envoy process (and kept across filter reloads: shared data lives as long
//! as the process), as 16 bytes: the epoch and the last number given, little-endian `u64`s. Each
//! record takes the next number by compare-and-swap, at most [`CAS_ATTEMPTS`] tries; numbers
//! start at 1 and have no holes, so a number the sidecar never gets is a record lost.
//!
//! The epoch names the sequence: a new Envoy process (a restart, a hot restart) has none in its
//! shared data and starts a new one. It is the start's wall-clock time in ms since the Unix
//! epoch, times 1000, plus the last three digits of the shared value's CAS token as a
//! tie-breaker. Envoy's shared data cannot create a key only if it is absent (a write to an
//! absent key always succeeds), so a new sequence is started in two steps: a placeholder (one
//! zero byte) is written unconditionally (two workers doing so at once is harmless), then it is
//! replaced by compare-and-swap with the epoch and number 1, which only one worker can win. A
//! worker that wrote its placeholder after another's sequence began starts a further sequence,
//! whose epoch differs by its own CAS token even in the same millisecond; the abandoned one is
//! complete as far as it went.
//!
//! [`SHARED_SESSION_SEQUENCE_KEY`]: crate::contract::SHARED_SESSION_SEQUENCE_KEY

use serde::Serialize;

use crate::contract::SHARED_SESSION_SEQUENCE_KEY;
use crate::host::{Host, SharedWrite};

/// How often the compare-and-swap is tried before the record goes without a number.
const CAS_ATTEMPTS: usize = 16;

/// A record's place in its Envoy process's sequence, as the record's `sequence` member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Sequence {
    /// Which sequence: ms since the Unix epoch when it started, times 1000, plus a tie-breaker.
    pub epoch: u64,
    /// The record's number, from 1, without holes.
    pub n: u64,
}

/// The next number of the Envoy process's sequence (starting it when there is none), or `None`
/// when shared data failed or kept conflicting (the record then goes without one).
pub fn next(host: &mut dyn Host) -> Option<Sequence> {
    for _ in 0..CAS_ATTEMPTS {
        let Some((value, cas)) = host.shared_get(SHARED_SESSION_SEQUENCE_KEY) else {
            // No sequence yet: a placeholder first, replaced by compare-and-swap below.
            if host.shared_set(SHARED_SESSION_SEQUENCE_KEY, &[0], 0) == SharedWrite::Failed {
                return None;
            }
            continue;
        };
        let next = match decode(&value) {
            Some(last) => Sequence {
                epoch: last.epoch,
                n: last.n.saturating_add(1),
            },
            None => Sequence {
                epoch: host
                    .now_ms()
                    .saturating_mul(1000)
                    .saturating_add(u64::from(cas % 1000)),
                n: 1,
            },
        };
        match host.shared_set(SHARED_SESSION_SEQUENCE_KEY, &encode(next), cas) {
            SharedWrite::Written => return Some(next),
            SharedWrite::Conflict => continue,
            SharedWrite::Failed => return None,
        }
    }
    host.log_warn("session log: the record sequence kept conflicting; a record goes unnumbered");
    None
}

fn encode(s: Sequence) -> [u8; 16] {
    let mut out = [0; 16];
    out[..8].copy_from_slice(&s.epoch.to_le_bytes());
    out[8..].copy_from_slice(&s.n.to_le_bytes());
    out
}

/// The stored sequence; `None` for the placeholder of a sequence being started (or anything
/// else that is not 16 bytes).
fn decode(v: &[u8]) -> Option<Sequence> {
    let epoch = u64::from_le_bytes(v.get(..8)?.try_into().ok()?);
    let n = u64::from_le_bytes(v.get(8..16)?.try_into().ok()?);
    (v.len() == 16).then_some(Sequence { epoch, n })
}
