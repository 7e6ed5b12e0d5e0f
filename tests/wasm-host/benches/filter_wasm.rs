//! The release filter module on wasmtime, one whole routed chat request per iteration (new
//! stream, request headers, a 1 KB body, JSON response headers and body, end of stream), and each
//! phase on its own: the time spent inside the module, with host calls costing next to nothing.
//! Envoy's v8 adds its own cost per host call; `tests/bench/run.py` measures that end to end.
//! `make bench` runs it; no test asserts a time.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use airouter_wasm_tests::workload::{self, PHASES};
use airouter_wasm_tests::Filter;
use criterion::{criterion_group, criterion_main, Criterion};

fn whole_request(c: &mut Criterion) {
    let mut f = Filter::load(workload::CONFIG, &[]).unwrap();
    let (body, response) = (workload::request_body(), workload::response_body());
    workload::check_routed(&mut f, body.as_bytes(), response.as_bytes()).unwrap();
    let mut g = c.benchmark_group("filter_wasm_chat_1kb");
    for (name, phase) in PHASES {
        g.bench_function(name, |b| {
            b.iter(|| workload::run(&mut f, phase, body.as_bytes(), response.as_bytes()).unwrap());
        });
    }
    g.finish();
}

criterion_group!(benches, whole_request);
criterion_main!(benches);
