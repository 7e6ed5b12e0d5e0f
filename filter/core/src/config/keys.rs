//! `[[keys]]` and `[[admin_keys]]` checked: each key has a printable name no other key has, one
//! form (plain `key` or its `sha256`), valid model patterns, and per-minute limits only on client
//! keys; admin keys take no model allow-list. The result is a [`KeyRing`] per section.

use std::collections::HashMap;

use super::error::{ConfigError, Locator};
use super::raw::RawKey;
use crate::auth::{ClientKey, KeyRing};
use crate::pattern::Pattern;

/// Checks `[[admin_keys]]`: as client keys, without a model allow-list or limits.
pub(super) fn compile_admin_keys(
    loc: &Locator,
    raw: &[RawKey],
    errs: &mut Vec<ConfigError>,
) -> KeyRing {
    let admin_keys = compile_keys(loc, "admin_keys", raw, errs);
    for (i, k) in raw.iter().enumerate() {
        if let Some(first) = k.models.as_ref().and_then(|m| m.first()) {
            errs.push(loc.error(
                first.span(),
                format!("admin_keys[{i}].models"),
                "admin keys have no model allow-list",
            ));
        }
    }
    admin_keys
}

/// Checks the keys of `section` (`keys` or `admin_keys`), pushing what is wrong to `errs`.
pub(super) fn compile_keys(
    loc: &Locator,
    section: &str,
    raw: &[RawKey],
    errs: &mut Vec<ConfigError>,
) -> KeyRing {
    let mut keys = Vec::new();
    let mut names = HashMap::new();
    for (i, k) in raw.iter().enumerate() {
        let key = |field: &str| format!("{section}[{i}].{field}");
        let name = k.name.get_ref();
        if name.is_empty() || name.chars().any(char::is_control) {
            errs.push(loc.error(
                k.name.span(),
                key("name"),
                "must be a non-empty printable name",
            ));
        }
        if names.insert(name.clone(), i).is_some() {
            errs.push(loc.error(
                k.name.span(),
                key("name"),
                format!("`{name}` names two keys"),
            ));
        }
        let hash = match (&k.key, &k.sha256) {
            (Some(plain), None) if !plain.get_ref().is_empty() => KeyRing::hash(plain.get_ref()),
            (Some(plain), None) => {
                errs.push(loc.error(plain.span(), key("key"), "is empty"));
                continue;
            }
            (None, Some(hex)) => match KeyRing::parse_hex(hex.get_ref()) {
                Some(h) => h,
                None => {
                    errs.push(loc.error(
                        hex.span(),
                        key("sha256"),
                        "must be 64 hexadecimal characters",
                    ));
                    continue;
                }
            },
            _ => {
                errs.push(loc.error(
                    k.name.span(),
                    key("key"),
                    "give exactly one of `key` and `sha256`",
                ));
                continue;
            }
        };
        let mut allow = Vec::new();
        for (j, p) in k.models.iter().flatten().enumerate() {
            match Pattern::new(p.get_ref()) {
                Ok(pat) => allow.push(pat),
                Err(why) => {
                    errs.push(loc.error(p.span(), format!("{section}[{i}].models[{j}]"), why))
                }
            }
        }
        if keys.iter().any(|c: &ClientKey| c.hash == hash) {
            errs.push(loc.error(k.name.span(), key("key"), "the same key is given twice"));
        }
        let requests_per_minute = k.requests_per_minute.as_ref().map(|r| {
            if *r.get_ref() == 0 {
                errs.push(loc.error(r.span(), key("requests_per_minute"), "must be above 0"));
            }
            if section != "keys" {
                errs.push(loc.error(
                    r.span(),
                    key("requests_per_minute"),
                    "only client keys are limited",
                ));
            }
            *r.get_ref()
        });
        let tokens_per_minute = k.tokens_per_minute.as_ref().map(|r| {
            if *r.get_ref() == 0 || section != "keys" {
                errs.push(loc.error(
                    r.span(),
                    key("tokens_per_minute"),
                    "must be above 0, on client keys only",
                ));
            }
            *r.get_ref()
        });
        keys.push(ClientKey {
            name: name.clone(),
            hash,
            allow: k.models.as_ref().map(|_| allow),
            requests_per_minute,
            tokens_per_minute,
        });
    }
    KeyRing::new(keys)
}
