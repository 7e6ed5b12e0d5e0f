//! One access log entry turned into the record the sidecar stores: the filter's session record
//! (the logged filter state [`SESSION_FILTER_STATE`], a `BytesValue` in an `Any`) with `time`
//! (when Envoy started the request, RFC 3339 UTC) and `envoy` (the status Envoy sent, its
//! response flags and details, its timings, the upstream cluster and attempts) put in front.
//! The filter's record never has members of those names. Its `sequence` (the record's number in
//! its Envoy process's sequence) is read out for the count of records lost (`sequences.rs`).

use airouter_core::contract::SESSION_FILTER_STATE;
use prost::Message;
use serde::Deserialize;
use serde_json::{json, Value};

use super::proto::{AccessLogCommon, BytesValue, Duration, HttpAccessLogEntry, ResponseFlags};

/// A record as the sidecar stores it, with its number when it has one.
#[derive(Debug)]
pub struct Stored {
    /// The JSON object to write.
    pub bytes: Vec<u8>,
    /// The record's `sequence`: epoch and number.
    pub sequence: Option<(u64, u64)>,
}

/// What is read of the filter's record here (the rest is passed through as it is).
#[derive(Deserialize)]
struct Head {
    sequence: Option<Value>,
}

/// The stored record of `entry`, or `None` when it carries no session record (or one that is
/// not a JSON object).
pub fn record_of(entry: &HttpAccessLogEntry) -> Option<Stored> {
    let common = entry.common_properties.as_ref()?;
    let any = common.filter_state_objects.get(SESSION_FILTER_STATE)?;
    let record = BytesValue::decode(any.value.as_slice()).ok()?.value;
    let text = std::str::from_utf8(&record).ok()?.trim();
    let head = serde_json::from_str::<Head>(text).ok()?;
    let members = text.strip_prefix('{')?.trim_start();
    if members.starts_with('}') {
        return None;
    }
    let mut out = Vec::with_capacity(text.len() + 512);
    out.push(b'{');
    if let Some(time) = common.start_time.as_ref().and_then(rfc3339) {
        out.extend_from_slice(b"\"time\":");
        out.extend(serde_json::to_vec(&time).ok()?);
        out.push(b',');
    }
    out.extend_from_slice(b"\"envoy\":");
    out.extend(serde_json::to_vec(&envoy_view(entry, common)).ok()?);
    out.push(b',');
    out.extend_from_slice(members.as_bytes());
    Some(Stored {
        bytes: out,
        sequence: head
            .sequence
            .and_then(|s| Some((s.get("epoch")?.as_u64()?, s.get("n")?.as_u64()?))),
    })
}

fn rfc3339(t: &super::proto::Timestamp) -> Option<String> {
    let ts = jiff::Timestamp::new(t.seconds, t.nanos).ok()?;
    Some(format!("{ts:.3}"))
}

/// Envoy's side of the request.
fn envoy_view(entry: &HttpAccessLogEntry, common: &AccessLogCommon) -> Value {
    let ms = |d: &Option<Duration>| {
        d.as_ref()
            .map(|d| (d.seconds as f64) * 1000.0 + f64::from(d.nanos) / 1e6)
    };
    let mut view = serde_json::Map::new();
    let response = entry.response.as_ref();
    if let Some(code) = response.and_then(|r| r.response_code.as_ref()) {
        view.insert("status".into(), json!(code.value));
    }
    if let Some(details) = response.map(|r| &r.response_code_details) {
        if !details.is_empty() {
            view.insert("details".into(), json!(details));
        }
    }
    let flags = common
        .response_flags
        .as_ref()
        .map(flags)
        .unwrap_or_default();
    view.insert("flags".into(), json!(flags));
    for (name, value) in [
        ("duration_ms", ms(&common.duration)),
        (
            "first_upstream_byte_ms",
            ms(&common.time_to_first_upstream_rx_byte),
        ),
        (
            "last_downstream_byte_ms",
            ms(&common.time_to_last_downstream_tx_byte),
        ),
    ] {
        if let Some(v) = value {
            view.insert(name.into(), json!((v * 1000.0).round() / 1000.0));
        }
    }
    if !common.upstream_cluster.is_empty() {
        view.insert("upstream_cluster".into(), json!(common.upstream_cluster));
    }
    if common.upstream_request_attempt_count > 0 {
        view.insert(
            "attempts".into(),
            json!(common.upstream_request_attempt_count),
        );
    }
    Value::Object(view)
}

/// Envoy's short names of the flags set (as `%RESPONSE_FLAGS%` prints them): `DC` is a client
/// that left before the end, `UF` a backend that could not be reached, and so on.
fn flags(f: &ResponseFlags) -> Vec<&'static str> {
    [
        (f.no_healthy_upstream, "UH"),
        (f.upstream_request_timeout, "UT"),
        (f.local_reset, "LR"),
        (f.upstream_remote_reset, "UR"),
        (f.upstream_connection_failure, "UF"),
        (f.upstream_connection_termination, "UC"),
        (f.upstream_overflow, "UO"),
        (f.no_route_found, "NR"),
        (f.rate_limited, "RL"),
        (f.rate_limit_service_error, "RLSE"),
        (f.downstream_connection_termination, "DC"),
        (f.upstream_retry_limit_exceeded, "URX"),
        (f.stream_idle_timeout, "SI"),
        (f.downstream_protocol_error, "DPE"),
        (f.upstream_max_stream_duration_reached, "UMSDR"),
        (f.duration_timeout, "DT"),
        (f.upstream_protocol_error, "UPE"),
        (f.no_cluster_found, "NC"),
        (f.overload_manager, "OM"),
    ]
    .into_iter()
    .filter_map(|(set, name)| set.then_some(name))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::super::proto::{Any, HttpResponseProperties, Timestamp, UInt32Value};
    use super::*;

    fn entry(record: &[u8]) -> HttpAccessLogEntry {
        let mut common = AccessLogCommon {
            start_time: Some(Timestamp {
                seconds: 1_796_006_587,
                nanos: 972_633_000,
            }),
            duration: Some(Duration {
                seconds: 0,
                nanos: 7_033_981,
            }),
            upstream_cluster: "airouter_backend_local".into(),
            upstream_request_attempt_count: 1,
            response_flags: Some(ResponseFlags {
                downstream_connection_termination: true,
                ..Default::default()
            }),
            ..Default::default()
        };
        let value = BytesValue {
            value: record.to_vec(),
        }
        .encode_to_vec();
        common.filter_state_objects.insert(
            SESSION_FILTER_STATE.into(),
            Any {
                type_url: "type.googleapis.com/google.protobuf.BytesValue".into(),
                value,
            },
        );
        HttpAccessLogEntry {
            common_properties: Some(common),
            request: None,
            response: Some(HttpResponseProperties {
                response_code: Some(UInt32Value { value: 200 }),
                response_code_details: "via_upstream".into(),
            }),
        }
    }

    #[test]
    fn the_record_gets_envoys_time_status_flags_and_timings_in_front() {
        let out = record_of(&entry(br#"{"schema":1,"model":"m"}"#)).unwrap();
        assert_eq!(out.sequence, None);
        let text = String::from_utf8(out.bytes).unwrap();
        assert!(
            text.starts_with("{\"time\":\"2026-11-30T02:43:07.972Z\",\"envoy\":"),
            "{text}"
        );
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            v["envoy"],
            json!({
                "status": 200, "details": "via_upstream", "flags": ["DC"], "duration_ms": 7.034,
                "upstream_cluster": "airouter_backend_local", "attempts": 1
            })
        );
        assert_eq!(
            (v["schema"].as_u64(), v["model"].as_str()),
            (Some(1), Some("m"))
        );
    }

    #[test]
    fn the_records_number_is_read_out_and_the_record_kept_whole() {
        let record = br#"{"schema":1,"sequence":{"epoch":1796006587972007,"n":42},"model":"m"}"#;
        let out = record_of(&entry(record)).unwrap();
        assert_eq!(out.sequence, Some((1_796_006_587_972_007, 42)));
        let v: Value = serde_json::from_slice(&out.bytes).unwrap();
        assert_eq!(
            v["sequence"],
            json!({"epoch": 1_796_006_587_972_007_u64, "n": 42})
        );
        let odd = record_of(&entry(br#"{"sequence":{"n":-1}}"#)).unwrap();
        assert_eq!(odd.sequence, None, "written, just not counted");
    }

    #[test]
    fn entries_without_a_usable_record_are_skipped() {
        for bad in [&b""[..], b"{}", b"[1]", b"[]", b"{\"a\":", b"\xff"] {
            assert!(record_of(&entry(bad)).is_none(), "{bad:?}");
        }
        assert!(record_of(&HttpAccessLogEntry::default()).is_none());
    }
}
