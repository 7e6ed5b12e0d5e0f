//! Client keys: SHA-256 digests compared in constant time, each with an optional model allow-list;
//! and a per-worker memory of keys already matched, so a client's key is hashed once, not on
//! every request.

use std::cell::RefCell;
use std::collections::HashMap;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::pattern::Pattern;

/// One client key. Only its digest is kept; its name is what logs and metrics show.
#[derive(Debug, Clone)]
pub struct ClientKey {
    pub name: String,
    pub hash: [u8; 32],
    /// Models this key may use; `None` allows all.
    pub allow: Option<Vec<Pattern>>,
    /// Requests per minute, when limited.
    pub requests_per_minute: Option<u32>,
    /// Tokens per minute, when limited.
    pub tokens_per_minute: Option<u32>,
}

impl ClientKey {
    pub fn allows(&self, model: &str) -> bool {
        self.allow
            .as_ref()
            .is_none_or(|pats| pats.iter().any(|p| p.matches(model)))
    }
}

/// All client keys. An empty ring means the router is open.
#[derive(Debug, Clone, Default)]
pub struct KeyRing {
    keys: Vec<ClientKey>,
}

impl KeyRing {
    pub fn new(keys: Vec<ClientKey>) -> Self {
        KeyRing { keys }
    }

    pub fn is_open(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn hash(key: &str) -> [u8; 32] {
        Sha256::digest(key.as_bytes()).into()
    }

    pub fn parse_hex(hex: &str) -> Option<[u8; 32]> {
        // `from_str_radix` alone would also take a sign (`+f`).
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            let pair = hex.get(2 * i..2 * i + 2)?;
            *byte = u8::from_str_radix(pair, 16).ok()?;
        }
        Some(out)
    }

    /// The index of the key matching `presented`. Every stored digest is compared, matching or
    /// not, so the time taken says nothing about which key (or how much of one) matched.
    pub fn position(&self, presented: &str) -> Option<usize> {
        let digest = Self::hash(presented);
        let mut found = None;
        for (i, k) in self.keys.iter().enumerate() {
            if bool::from(k.hash.ct_eq(&digest)) {
                found = Some(i);
            }
        }
        found
    }

    /// The key matching `presented`.
    pub fn find(&self, presented: &str) -> Option<&ClientKey> {
        self.keys.get(self.position(presented)?)
    }

    pub fn keys(&self) -> &[ClientKey] {
        &self.keys
    }
}

/// Presented keys already found in a ring, with their positions. Only matches are kept, so it
/// holds at most one entry per configured key, and wrong keys (always hashed and compared in
/// full) cannot grow it. The map's hash is keyed at random per process, so how long a lookup
/// takes says nothing an attacker could use about the keys it holds. One per plan: a reloaded
/// ring starts with an empty memory.
#[derive(Debug, Default)]
pub struct KnownKeys {
    found: RefCell<HashMap<Box<str>, usize>>,
}

impl KnownKeys {
    /// [`KeyRing::position`], remembered.
    pub fn position(&self, ring: &KeyRing, presented: &str) -> Option<usize> {
        if let Some(i) = self.found.borrow().get(presented) {
            return Some(*i);
        }
        let i = ring.position(presented)?;
        self.found.borrow_mut().insert(presented.into(), i);
        Some(i)
    }
}

/// The key a client presented: `Authorization: Bearer`, else `api-key`, else `x-api-key`.
pub fn presented_key<'a>(
    authorization: Option<&'a str>,
    api_key: Option<&'a str>,
    x_api_key: Option<&'a str>,
) -> Option<&'a str> {
    let bearer = authorization.and_then(|v| {
        let v = v.trim();
        let (scheme, rest) = v.split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
    });
    bearer
        .or(api_key.map(str::trim))
        .or(x_api_key.map(str::trim))
        .filter(|k| !k.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_keys_remember_matches_only() {
        let ring = KeyRing::new(vec![ClientKey {
            name: "a".into(),
            hash: KeyRing::hash("sk-a"),
            allow: None,
            requests_per_minute: None,
            tokens_per_minute: None,
        }]);
        let known = KnownKeys::default();
        assert_eq!(known.position(&ring, "sk-a"), Some(0));
        assert_eq!(known.position(&ring, "sk-a"), Some(0));
        assert_eq!(known.position(&ring, "sk-b"), None);
        assert_eq!(known.position(&ring, " sk-a"), None);
        assert_eq!(known.found.borrow().len(), 1);
    }

    fn ring() -> KeyRing {
        KeyRing::new(vec![
            ClientKey {
                name: "alice".into(),
                hash: KeyRing::hash("sk-alice"),
                allow: None,
                requests_per_minute: None,
                tokens_per_minute: None,
            },
            ClientKey {
                name: "bob".into(),
                hash: KeyRing::hash("sk-bob"),
                allow: Some(vec![Pattern::new("small-*").unwrap()]),
                requests_per_minute: None,
                tokens_per_minute: None,
            },
        ])
    }

    #[test]
    fn finds_the_right_key_and_applies_its_allow_list() {
        let r = ring();
        assert_eq!(r.find("sk-alice").unwrap().name, "alice");
        let bob = r.find("sk-bob").unwrap();
        assert!(bob.allows("small-1") && !bob.allows("big-1"));
        assert!(r.find("sk-alic").is_none());
        assert!(r.find("").is_none());
    }

    #[test]
    fn reads_bearer_then_api_key_headers() {
        assert_eq!(presented_key(Some("Bearer abc"), None, None), Some("abc"));
        assert_eq!(presented_key(Some("bearer  abc "), None, None), Some("abc"));
        assert_eq!(presented_key(Some("Basic x"), Some("k2"), None), Some("k2"));
        assert_eq!(presented_key(None, None, Some("k3")), Some("k3"));
        assert_eq!(presented_key(Some("Bearer "), None, None), None);
    }

    #[test]
    fn hex_digests_parse() {
        let hex: String = KeyRing::hash("x")
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(KeyRing::parse_hex(&hex), Some(KeyRing::hash("x")));
        assert_eq!(KeyRing::parse_hex("zz"), None);
        assert_eq!(KeyRing::parse_hex(&"+f".repeat(32)), None);
    }
}
