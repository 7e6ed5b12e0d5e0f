//! Test only (the `panic-probe` feature): panics in the hook a request names in its
//! `x-panic-probe` header (`request_headers`, `request_body`, `response_headers`,
//! `response_body`), so the end-to-end suite can show a real Envoy that a panic in the module
//! fails that request and nothing else (`tests/e2e/test_native_panic.py`).

use crate::abi::{self, FilterPtr};

/// The header naming the hook to panic in (not `x-airouter-`: the flow strips those).
const HEADER: &str = "x-panic-probe";

/// Panics when the request asks for a panic in `hook`.
#[allow(
    clippy::panic,
    reason = "the fault this test-only feature exists to inject"
)]
pub fn maybe_panic(envoy: FilterPtr, hook: &str) {
    // SAFETY: the bytes are compared before this hook returns and no header changes meanwhile.
    let asked = unsafe { abi::header(envoy, abi::REQUEST_HEADERS, HEADER) };
    if asked == Some(hook.as_bytes()) {
        panic!("panic probe in {hook}");
    }
}
