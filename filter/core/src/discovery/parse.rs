//! A backend's answer to `GET /v1/models`, read within bounds: the body at most
//! [`CALL_RESPONSE_MAX_BYTES`] (the host hands no more), at most `max_models` entries kept (the
//! rest skipped unread), and every value checked before it is kept. OpenAI's shape
//! (`{"data": [{"id", "created", "owned_by"}]}`) and Anthropic's (`{"data": [{"id",
//! "created_at"}]}`, RFC 3339) are both read; unknown fields are ignored, and an entry whose id
//! is not a usable model name is skipped, not fatal.

use std::collections::HashSet;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::{DiscoveredModel, Failure};
use crate::flow::target_request::{check_model_name, is_format_char};
use crate::host::{CallResponse, CALL_RESPONSE_MAX_BYTES};

/// Latest `created` kept, in seconds since the epoch (9999-12-31T23:59:59Z); a later value is
/// dropped, as is a negative or fractional one.
pub const MAX_CREATED: u64 = 253_402_300_799;
/// Longest `owned_by` kept, in bytes.
pub const MAX_OWNED_BY_BYTES: usize = 128;

/// The bodies of the replies Envoy makes itself to a call-out it could not deliver (the router's
/// local replies: 503 when the connection failed or the cluster has no healthy host, 504 when
/// the deadline passed), each as it starts.
const ENVOY_FAILURES: [(u16, &[u8]); 3] = [
    (
        503,
        b"upstream connect error or disconnect/reset before headers",
    ),
    (503, b"no healthy upstream"),
    (504, b"upstream request timeout"),
];

/// The models a call-out's `response` lists, or why it lists none: no response from the
/// backend (none at all, or Envoy's own failure reply), a status other than 200, a body cut by
/// the host, or a body that is not a model list.
pub fn outcome(
    response: &CallResponse,
    max_models: usize,
) -> Result<Vec<DiscoveredModel>, Failure> {
    match response.status {
        0 => return Err(Failure::Unreachable),
        200 => {}
        _ if from_envoy(response) => return Err(Failure::Unreachable),
        status => return Err(Failure::Status(status)),
    }
    if response.body_len > response.body.len() || response.body.len() > CALL_RESPONSE_MAX_BYTES {
        return Err(Failure::TooLarge);
    }
    parse(&response.body, max_models)
}

/// Whether `response` is Envoy's own reply to a call it could not deliver, not the backend's:
/// one of [`ENVOY_FAILURES`], as plain text.
fn from_envoy(response: &CallResponse) -> bool {
    let plain = response
        .headers
        .iter()
        .any(|(k, v)| k == "content-type" && v.starts_with("text/plain"));
    plain
        && ENVOY_FAILURES
            .iter()
            .any(|(status, text)| response.status == *status && response.body.starts_with(text))
}

/// The models a JSON model list names: the first `max_models` entries with a usable id, each id
/// once, in the backend's order.
pub fn parse(body: &[u8], max_models: usize) -> Result<Vec<DiscoveredModel>, Failure> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let models = ListSeed { max: max_models }
        .deserialize(&mut de)
        .map_err(|_| Failure::BadBody)?;
    de.end().map_err(|_| Failure::BadBody)?;
    Ok(models)
}

/// The top-level object: its `data` array read through [`EntriesSeed`], anything else skipped.
struct ListSeed {
    max: usize,
}

impl<'de> DeserializeSeed<'de> for ListSeed {
    type Value = Vec<DiscoveredModel>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ListSeed {
    type Value = Vec<DiscoveredModel>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a model list object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut data = None;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if key == "data" && data.is_none() {
                data = Some(map.next_value_seed(EntriesSeed { max: self.max })?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        data.ok_or_else(|| serde::de::Error::missing_field("data"))
    }
}

/// The `data` array: entries checked one by one until `max` are kept, the rest skipped unread.
struct EntriesSeed {
    max: usize,
}

impl<'de> DeserializeSeed<'de> for EntriesSeed {
    type Value = Vec<DiscoveredModel>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for EntriesSeed {
    type Value = Vec<DiscoveredModel>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of models")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out: Vec<DiscoveredModel> = Vec::new();
        let mut seen = HashSet::new();
        while out.len() < self.max {
            let Some(entry) = seq.next_element::<Value>()? else {
                return Ok(out);
            };
            if let Some(model) = checked(&entry) {
                if seen.insert(model.id.clone()) {
                    out.push(model);
                }
            }
        }
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(out)
    }
}

/// One entry as kept: its id when it is a usable model name (1 to 256 bytes, no control or
/// invisible formatting characters, as a client's model name is checked, and no URL: a
/// backend's address is never shown), `created` and `owned_by` when they hold.
fn checked(entry: &Value) -> Option<DiscoveredModel> {
    let id = entry.get("id")?.as_str()?;
    if id.is_empty() || check_model_name(id).is_err() || id.contains("://") {
        return None;
    }
    let created = entry
        .get("created")
        .and_then(Value::as_u64)
        .or_else(|| {
            entry
                .get("created_at")
                .and_then(Value::as_str)
                .and_then(rfc3339_seconds)
        })
        .filter(|c| *c <= MAX_CREATED);
    let owned_by = entry
        .get("owned_by")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|o| !o.is_empty() && o.len() <= MAX_OWNED_BY_BYTES)
        .filter(|o| !o.chars().any(|c| c.is_control() || is_format_char(c)))
        .map(str::to_string);
    Some(DiscoveredModel {
        id: id.to_string(),
        created,
        owned_by,
    })
}

/// Seconds since the epoch of an RFC 3339 time (Anthropic's `created_at`); `None` before the
/// epoch or when it does not parse.
fn rfc3339_seconds(text: &str) -> Option<u64> {
    let t: jiff::Timestamp = text.parse().ok()?;
    u64::try_from(t.as_second()).ok()
}
