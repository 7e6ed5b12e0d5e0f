//! The key a client presents (`auth::presented_key`) and configured digests
//! (`auth::KeyRing::parse_hex`).
//!
//! Input: up to three header values separated by NUL bytes (`Authorization`, `api-key`,
//! `x-api-key`; a missing part is an absent header). Properties:
//! - a key found is non-empty, has no surrounding whitespace, and was sent in one of the headers;
//! - a well-formed `Authorization: Bearer <key>` wins over the other headers, with any case of
//!   `Bearer`; a key alone in `api-key` or `x-api-key` is found as sent;
//! - the key ring finds exactly the key it was built from;
//! - a digest that parses is the hex text it was read from.

use airouter_core::auth::{presented_key, ClientKey, KeyRing};

pub fn check(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.split('\0');
    let (authz, api_key, x_api_key) = (parts.next(), parts.next(), parts.next());
    let found = presented_key(authz, api_key, x_api_key);
    if let Some(k) = found {
        assert!(!k.is_empty() && k.trim() == k, "key {k:?}");
        assert!(
            [authz, api_key, x_api_key]
                .iter()
                .flatten()
                .any(|h| h.contains(k)),
            "key {k:?} was not sent"
        );
    }

    // A token as clients send it: no whitespace inside.
    let token: String = text
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '\0')
        .take(64)
        .collect();
    if !token.is_empty() {
        for scheme in ["Bearer", "bearer", "BEARER"] {
            let header = format!("{scheme} {token}");
            assert_eq!(
                presented_key(Some(&header), api_key, x_api_key),
                Some(token.as_str()),
                "{header:?}"
            );
        }
        assert_eq!(
            presented_key(None, Some(&token), None),
            Some(token.as_str())
        );
        assert_eq!(
            presented_key(None, None, Some(&token)),
            Some(token.as_str())
        );
        let ring = KeyRing::new(vec![ClientKey {
            name: "k".into(),
            hash: KeyRing::hash(&token),
            allow: None,
            requests_per_minute: None,
            tokens_per_minute: None,
        }]);
        assert_eq!(ring.position(&token), Some(0));
        let other = format!("{token}x");
        assert_eq!(ring.position(&other), None);
    }

    if let Some(digest) = KeyRing::parse_hex(&text) {
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        assert!(hex.eq_ignore_ascii_case(&text), "{text:?} parsed as {hex}");
    }
}
