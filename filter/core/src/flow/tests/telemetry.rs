//! The GenAI telemetry of a routed request (`[telemetry]`, `[tracing]`): nothing without those
//! sections; with them, the filter state Envoy's span and access log read and the histograms,
//! taken when the response ends, or at a stream's `[DONE]` (its client may leave then).

use std::rc::Rc;

use super::host::*;
use crate::config::compile;
use crate::contract::{
    BACKEND_MODEL_PROPERTY, BACKEND_PROPERTY, FINISH_REASON_PROPERTY, INPUT_TOKENS_PROPERTY,
    KEY_NAME_PROPERTY, MODEL_PROPERTY, OPERATION_PROPERTY, OUTPUT_TOKENS_PROPERTY, ROUTE_PROPERTY,
};
use crate::flow::HttpFlow;
use crate::telemetry::histograms;

fn flow(extra: &str) -> HttpFlow {
    let config = format!("{CONFIG}\n{extra}\n");
    HttpFlow::new(Rc::new(compile("t.toml", &config, &|_| None).unwrap()))
}

const BODY: &[u8] = br#"{"model":"chat-small","messages":[{"role":"user","content":"hi"}]}"#;
const ANSWER: &[u8] = br#"{"model":"qwen2-0.5b","choices":[{"index":0,"message":{"role":"assistant","content":"hello"},"finish_reason":"stop"}],"usage":{"prompt_tokens":7,"completion_tokens":3,"total_tokens":10}}"#;

#[test]
fn without_the_sections_nothing_is_measured() {
    let mut f = flow("");
    let mut h = send(&mut f, chat("sk-alice", BODY));
    respond(&mut f, &mut h, "200", "application/json", &[ANSWER]);
    f.on_log(&mut h);
    let keys: Vec<&String> = h.state.keys().collect();
    assert_eq!(keys, vec![ROUTE_PROPERTY], "{keys:?}");
    assert!(h.histograms.is_empty());
}

#[test]
fn an_answer_leaves_its_facts_and_histograms_when_it_ends() {
    let mut f = flow("[telemetry]");
    let mut h = chat("sk-alice", BODY);
    h.now = 10_000;
    let mut h = send(&mut f, h);
    h.now = 10_250;
    respond(&mut f, &mut h, "200", "application/json", &[ANSWER]);
    // Set before the log callback, which Envoy runs after it has finished the span.
    let get = |k: &str| h.state.get(k).map(String::as_str);
    assert_eq!(get(OPERATION_PROPERTY), Some("chat"));
    assert_eq!(get(MODEL_PROPERTY), Some("chat-small"));
    assert_eq!(get(BACKEND_PROPERTY), Some("local"));
    assert_eq!(get(BACKEND_MODEL_PROPERTY), Some("qwen2-0.5b"));
    assert_eq!(get(KEY_NAME_PROPERTY), Some("alice"));
    assert_eq!(get(INPUT_TOKENS_PROPERTY), Some("7"));
    assert_eq!(get(OUTPUT_TOKENS_PROPERTY), Some("3"));
    assert_eq!(get(FINISH_REASON_PROPERTY), Some("stop"));
    assert!(h.state.values().all(|v| !v.contains("sk-alice")));
    let tail = ".key_name.alice.gen_ai_request_model.chat-small.gen_ai_provider_name.local";
    let op = ".gen_ai_operation_name.chat";
    assert_eq!(
        h.histograms,
        vec![
            (
                format!(
                    "{}{op}.gen_ai_token_type.input{tail}",
                    histograms::TOKEN_USAGE
                ),
                7
            ),
            (
                format!(
                    "{}{op}.gen_ai_token_type.output{tail}",
                    histograms::TOKEN_USAGE
                ),
                3
            ),
            (format!("{}{op}{tail}", histograms::REQUEST_DURATION), 250),
        ]
    );
    // Taken once: the log callback adds nothing.
    f.on_log(&mut h);
    assert_eq!(h.histograms.len(), 3);
}

#[test]
fn a_stream_is_measured_at_its_done_and_timed_from_its_first_token() {
    let mut f =
        flow("[telemetry]\nmetrics = true\naccess_log = false\n[tracing]\nendpoint = \"c:4317\"");
    let body =
        br#"{"model":"chat-small","stream":true,"messages":[{"role":"user","content":"hi"}]}"#;
    let mut h = chat("sk-alice", body);
    h.now = 1_000;
    let mut h = send(&mut f, h);
    h.resp = vec![
        (":status".into(), "200".into()),
        ("content-type".into(), "text/event-stream".into()),
    ];
    f.on_response_headers(&mut h, false);
    let events: [(&[u8], u64); 3] = [
        (br#"data: {"model":"qwen2-0.5b","choices":[{"index":0,"delta":{"content":"a"}}]}"#, 1_100),
        (br#"data: {"model":"qwen2-0.5b","choices":[{"index":0,"delta":{"content":"b"},"finish_reason":"length"}],"usage":{"prompt_tokens":4,"completion_tokens":5}}"#, 1_500),
        (b"data: [DONE]", 1_600),
    ];
    for (event, now) in events {
        h.now = now;
        h.resp_body = [event, b"\n\n"].concat();
        let size = h.resp_body.len();
        f.on_response_body(&mut h, size, false);
    }
    // The client left after [DONE]: all was taken then.
    assert_eq!(
        h.state.get(OUTPUT_TOKENS_PROPERTY).map(String::as_str),
        Some("5")
    );
    assert_eq!(
        h.state.get(FINISH_REASON_PROPERTY).map(String::as_str),
        Some("length")
    );
    let value = |metric: &str| {
        h.histograms
            .iter()
            .find(|(n, _)| n.starts_with(metric))
            .map(|(_, v)| *v)
    };
    assert_eq!(value(histograms::REQUEST_DURATION), Some(600));
    assert_eq!(value(histograms::TIME_TO_FIRST_TOKEN), Some(100));
    // 500 ms after the first token for the 4 tokens after it.
    assert_eq!(value(histograms::TIME_PER_OUTPUT_TOKEN), Some(125));
    f.on_log(&mut h);
    assert_eq!(h.histograms.len(), 5);
}
