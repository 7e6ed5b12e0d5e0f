//! `GET /v1/models` and `GET /v1/models/{id}`, answered from the plan: client-visible names only,
//! each once, filtered by the caller's allow-list. A router's name (`[[routers]]`) is a model the
//! client can call (Open WebUI offers the models this lists), so it is listed too; its routes'
//! models are listed only as the models they are.

use serde::Serialize;

use crate::auth::ClientKey;
use crate::config::{Plan, DEFAULT_OWNED_BY};

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

/// The model list as JSON.
pub fn list(plan: &Plan, key: Option<&ClientKey>) -> Vec<u8> {
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
    serde_json::to_vec(&ModelList {
        object: "list",
        data,
    })
    .unwrap_or_default()
}

/// One model as JSON, when the caller may see it: a concrete name, a name a pattern serves, or a
/// router's name.
pub fn one(plan: &Plan, key: Option<&ClientKey>, id: &str) -> Option<Vec<u8>> {
    if id.is_empty() || !allowed(key, id) {
        return None;
    }
    let router = plan.routers.iter().any(|r| r.name == id);
    if !router && !plan.resolver.knows(id) {
        return None;
    }
    let owner = plan
        .models
        .iter()
        .find(|m| m.name == id || m.pattern.as_ref().is_some_and(|p| p.matches(id)))
        .map_or(DEFAULT_OWNED_BY, |m| m.owned_by.as_str());
    serde_json::to_vec(&ModelObject {
        id,
        object: "model",
        created: 0,
        owned_by: owner,
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
