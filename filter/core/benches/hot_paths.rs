//! Criterion benchmarks of the filter's per-request work in the pure core: the request rewrite
//! (find the model, splice the backend's name) for 1 KB and 32 KB chat bodies, the SSE rewrite per
//! event and per network chunk, the JSON response rewrite, and model resolution in a plan with
//! 1,000 exact names and 100 patterns. `make bench` runs them; no test asserts a time.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use airouter_core::api::Api;
use airouter_core::config::{compile, Plan};
use airouter_core::flow::target_request::{locate_model, replace_model};
use airouter_core::model_names::NameRewriter;
use airouter_core::sse::SseModelRewriter;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

/// A chat body of about `size` bytes: a system and a user message of filler text.
fn chat_body(size: usize) -> Vec<u8> {
    let filler = "lorem ipsum dolor sit amet ".repeat(size / 27 + 1);
    let text = &filler[..size.saturating_sub(160)];
    serde_json::to_vec(&serde_json::json!({
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": text}
        ],
        "temperature": 0.2,
        "stream": false
    }))
    .unwrap()
}

fn request_rewrite(c: &mut Criterion) {
    let mut g = c.benchmark_group("request_rewrite");
    for size in [1024usize, 32 * 1024] {
        let body = chat_body(size);
        g.throughput(Throughput::Bytes(body.len() as u64));
        g.bench_with_input(BenchmarkId::from_parameter(size), &body, |b, body| {
            b.iter(|| {
                let (span, _) =
                    locate_model(Api::Chat, black_box(body), "application/json").unwrap();
                replace_model(Api::Chat, body, span, "llama-3.1-8b-instruct")
            })
        });
    }
    g.finish();
}

fn chunk_event(i: usize) -> String {
    format!(
        "data: {{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"llama-3.1-8b-instruct\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"token{i} \"}},\"finish_reason\":null}}]}}\n\n"
    )
}

fn names() -> NameRewriter {
    NameRewriter::with_backends("gpt-4o-mini", &["llama-3.1-8b-instruct"])
}

fn sse_rewrite(c: &mut Criterion) {
    let mut g = c.benchmark_group("sse_rewrite");
    // One event per network chunk (what streaming servers usually send).
    let event = chunk_event(7).into_bytes();
    g.throughput(Throughput::Elements(1));
    g.bench_function("per_event", |b| {
        let mut rw = SseModelRewriter::new(names());
        b.iter(|| rw.feed(black_box(&event)))
    });
    // 50 events arriving as 16 KiB-ish network chunks split mid-event.
    let stream: Vec<u8> = (0..50).flat_map(|i| chunk_event(i).into_bytes()).collect();
    let chunks: Vec<&[u8]> = stream.chunks(1000).collect();
    g.throughput(Throughput::Elements(50));
    g.bench_function("stream_of_50_events_in_1000_byte_chunks", |b| {
        b.iter(|| {
            let mut rw = SseModelRewriter::new(names());
            let mut out = 0;
            for c in &chunks {
                out += rw.feed(black_box(c)).len();
            }
            out + rw.finish().len()
        })
    });
    g.finish();
}

fn json_response_rewrite(c: &mut Criterion) {
    let body = serde_json::to_vec(&serde_json::json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1700000000,
        "model": "llama-3.1-8b-instruct", "system_fingerprint": "llama-3.1-8b-instruct",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "lorem ipsum ".repeat(60)}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 200, "completion_tokens": 120, "total_tokens": 320}
    }))
    .unwrap();
    let rw = names();
    c.bench_function("json_response_rewrite_1kb", |b| {
        b.iter(|| rw.rewrite_document(black_box(&body)))
    });
}

/// 1,000 exact model names and 100 patterns, on one backend.
fn big_plan() -> Plan {
    let mut toml =
        String::from("[backends.b]\nkind = \"openai\"\nurl = \"http://127.0.0.1:8000/v1\"\n");
    for i in 0..1000 {
        toml.push_str(&format!(
            "[[models]]\nname = \"model-{i:04}\"\napis = [\"chat\"]\ntarget = {{ backend = \"b\" }}\n"
        ));
    }
    for i in 0..100 {
        toml.push_str(&format!(
            "[[models]]\nname = \"family-{i:03}-*\"\napis = [\"chat\"]\ntarget = {{ backend = \"b\" }}\n"
        ));
    }
    compile("bench.toml", &toml, &|_| None).unwrap()
}

fn resolution(c: &mut Criterion) {
    let plan = big_plan();
    let mut g = c.benchmark_group("resolve_1000_names_100_patterns");
    for (case, name) in [
        ("exact", "model-0777"),
        ("pattern", "family-077-large"),
        ("miss", "no-such-model"),
    ] {
        assert_eq!(plan.resolve(Api::Chat, name).is_some(), case != "miss");
        g.bench_function(case, |b| {
            b.iter(|| plan.resolve(Api::Chat, black_box(name)).is_some())
        });
    }
    g.finish();
}

criterion_group!(
    benches,
    request_rewrite,
    sse_rewrite,
    json_response_rewrite,
    resolution
);
criterion_main!(benches);
