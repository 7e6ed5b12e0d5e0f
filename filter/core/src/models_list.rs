//! `GET /v1/models` and `GET /v1/models/{id}`, answered from the plan: client-visible names only,
//! each once, filtered by the caller's allow-list. A router's name (`[[routers]]`) is a model the
//! client can call (Open WebUI offers the models this lists), so it is listed too; its routes'
//! models are listed only as the models they are. With `[discovery]`, the models the backends
//! behind pass-through patterns list ([`Listed`]) follow, sorted by name, with the `created` and
//! `owned_by` their backend gave.

use std::collections::HashSet;

use serde::Serialize;

use crate::auth::ClientKey;
use crate::config::{Plan, DEFAULT_OWNED_BY};
use crate::discovery::Listed;

#[derive(Serialize)]
struct ModelObject<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    owned_by: &'a str,
}

#[derive(Serialize)]
struct ModelList<'a> {
    object: &'static str,
    data: Vec<ModelObject<'a>>,
}

fn allowed(key: Option<&ClientKey>, name: &str) -> bool {
    key.is_none_or(|k| k.allows(name))
}

/// The model list as JSON: configured models in file order, routers, then the discovered
/// models (`listed`) sorted by name.
pub fn list(plan: &Plan, key: Option<&ClientKey>, listed: &Listed) -> Vec<u8> {
    let mut data: Vec<ModelObject> = Vec::new();
    for m in plan.models.iter().filter(|m| m.pattern.is_none()) {
        if allowed(key, &m.name) && !data.iter().any(|d| d.id == m.name) {
            data.push(ModelObject {
                id: &m.name,
                object: "model",
                created: 0,
                owned_by: &m.owned_by,
            });
        }
    }
    for r in &plan.routers {
        if allowed(key, &r.name) && !data.iter().any(|d| d.id == r.name) {
            data.push(ModelObject {
                id: &r.name,
                object: "model",
                created: 0,
                owned_by: DEFAULT_OWNED_BY,
            });
        }
    }
    let mut seen: HashSet<&str> = data.iter().map(|d| d.id).collect();
    let mut found: Vec<ModelObject> = Vec::new();
    for (d, m) in listed.served(plan) {
        if allowed(key, &d.id) && seen.insert(&d.id) {
            found.push(ModelObject {
                id: &d.id,
                object: "model",
                created: d.created.unwrap_or(0),
                owned_by: d.owned_by.as_deref().unwrap_or(&m.owned_by),
            });
        }
    }
    found.sort_by(|a, b| a.id.cmp(b.id));
    data.extend(found);
    serde_json::to_vec(&ModelList {
        object: "list",
        data,
    })
    .unwrap_or_default()
}

/// One model as JSON, when the caller may see it: a concrete name, a name a pattern serves, or a
/// router's name. A discovered model (`listed`) has the `created` and `owned_by` its backend
/// gave.
pub fn one(plan: &Plan, key: Option<&ClientKey>, id: &str, listed: &Listed) -> Option<Vec<u8>> {
    if id.is_empty() || !allowed(key, id) {
        return None;
    }
    let router = plan.routers.iter().any(|r| r.name == id);
    if !router && !plan.resolver.knows(id) {
        return None;
    }
    let configured = plan.models.iter().any(|m| m.name == id) || router;
    let discovered = (!configured)
        .then(|| listed.served(plan).into_iter().find(|(d, _)| d.id == id))
        .flatten();
    let owner = plan
        .models
        .iter()
        .find(|m| m.name == id || m.pattern.as_ref().is_some_and(|p| p.matches(id)))
        .map_or(DEFAULT_OWNED_BY, |m| m.owned_by.as_str());
    let (created, owned_by) = match discovered {
        Some((d, m)) => (
            d.created.unwrap_or(0),
            d.owned_by.as_deref().unwrap_or(&m.owned_by),
        ),
        None => (0, owner),
    };
    serde_json::to_vec(&ModelObject {
        id,
        object: "model",
        created,
        owned_by,
    })
    .ok()
}

/// Decodes `%XX` escapes in a path segment (model ids may contain `/` or `:`).
pub fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_percent_escapes() {
        assert_eq!(
            percent_decode("meta-llama%2FLlama-3").as_deref(),
            Some("meta-llama/Llama-3")
        );
        assert_eq!(percent_decode("bad%2").as_deref(), None);
        assert_eq!(percent_decode("a%zz").as_deref(), None);
    }
}
