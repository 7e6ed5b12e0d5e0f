//! Counts the wasm operators the filter module runs per request, phase by phase, on the same
//! workload as `filter_wasm`'s timings: wasmtime's fuel, one unit per operator. Unlike time it
//! does not move with the machine's load, so a change to the module's own work shows as a
//! number, not as noise. Writes `target/bench-module-ops.json` for `tests/bench/run.py`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use airouter_wasm_tests::workload::{self, PHASES};
use airouter_wasm_tests::Filter;

/// Streams per phase: the first ones also pay for one-time work (counter ids, caches), which
/// the average spreads thin.
const STREAMS: u64 = 200;

fn main() {
    let (body, response) = (workload::request_body(), workload::response_body());
    let mut counts = serde_json::Map::new();
    for (name, phase) in PHASES {
        let mut f = Filter::load_metered(workload::CONFIG).unwrap();
        workload::check_routed(&mut f, body.as_bytes(), response.as_bytes()).unwrap();
        let before = f.operators();
        for _ in 0..STREAMS {
            workload::run(&mut f, phase, body.as_bytes(), response.as_bytes()).unwrap();
        }
        let per_stream = (f.operators() - before) / STREAMS;
        println!("filter_wasm_chat_1kb/{name}: {per_stream} wasm operators");
        counts.insert(name.to_string(), per_stream.into());
    }
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../target/bench-module-ops.json"
    );
    std::fs::write(path, serde_json::Value::Object(counts).to_string()).unwrap();
}
