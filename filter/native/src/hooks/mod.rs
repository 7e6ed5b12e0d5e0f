//! The event hooks Envoy calls (`envoy_dynamic_module_on_*`), each forwarding to the core's
//! [`HttpFlow`] (listener filter) or [`UpstreamFlow`] (a failover attempt) through
//! [`NativeHost`], with proxy-wasm's callbacks' meaning kept (`Pause` is Envoy's
//! `StopIteration` for headers and trailers, `StopIterationAndBuffer` for a body).
//!
//! A panic must never cross into Envoy (it would take the whole process down): every hook runs
//! its body under [`catch_unwind`]. A request whose flow panicked is answered with a 500 in
//! OpenAI's error envelope and its filter steps aside for the rest of the stream; a panic where
//! no request can be answered (a configuration, a call-out's answer to the main thread) is
//! logged and dropped. The module is built with `panic = "unwind"` for this (the `native`
//! profile).
//!
//! Here: the guard and what every hook shares; the hooks themselves in `stream` (one stream's
//! filter), `config` (a filter configuration, and its discovery on the main thread) and
//! `unused` (hooks the ABI requires that this filter has no use for).

use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};

use airouter_core::errors::ApiError;
use airouter_core::flow::{HttpFlow, UpstreamFlow};
use airouter_core::host::{Action, CallResponse, Headers, Host, CALL_RESPONSE_MAX_BYTES};

use crate::abi::{self, EnvoyBuffer, EnvoyHeader, FilterPtr};
use crate::config::FilterConfig;
use crate::host::NativeHost;

mod config;
mod stream;
mod unused;

/// A header, trailer or body status meaning "go on" (`Continue` in every status enum).
pub(super) const CONTINUE: u32 = 0;
/// `StopIteration` (headers, trailers) and `StopIterationAndBuffer` (bodies): both are 1.
pub(super) const STOP: u32 = 1;
/// `envoy_dynamic_module_type_http_callout_result_Success`.
const CALLOUT_SUCCESS: u32 = 0;

/// One stream's filter: the flow, and whether it panicked (then it only lets the stream go on).
pub(super) struct Filter {
    config: *const FilterConfig,
    flow: Flow,
    failed: bool,
}

#[allow(
    clippy::large_enum_variant,
    reason = "a filter is one boxed allocation per stream; boxing the listener's flow would add one"
)]
pub(super) enum Flow {
    Listener(HttpFlow),
    Upstream(UpstreamFlow),
}

pub(super) fn status(action: Action) -> u32 {
    match action {
        Action::Continue => CONTINUE,
        Action::Pause => STOP,
    }
}

pub(super) fn log_panic(hook: &str) {
    abi::log(abi::LOG_ERROR, &format!("panic in {hook}; caught"));
}

/// Runs `f` on the filter behind `module` for hook `hook`; a panic fails the request.
pub(super) fn with_filter(
    envoy: FilterPtr,
    module: *const c_void,
    hook: &str,
    in_body: Option<Headers>,
    f: impl FnOnce(&mut Flow, &mut NativeHost<'_>) -> u32,
) -> u32 {
    // SAFETY: `module` is the pointer `envoy_dynamic_module_on_http_filter_new` returned, which
    // Envoy hands back to the hooks of that one stream, on that stream's thread, until
    // `..._filter_destroy`; its configuration outlives its filters (Envoy keeps the
    // configuration alive while a filter of it exists).
    let filter = unsafe { &mut *(module as *mut Filter) };
    if filter.failed {
        return CONTINUE;
    }
    // SAFETY: as above, the configuration outlives the filter.
    let config = unsafe { &*filter.config };
    let flow = &mut filter.flow;
    let failed = &mut filter.failed;
    guard(
        || {
            #[cfg(feature = "panic-probe")]
            crate::probe::maybe_panic(envoy, hook);
            f(flow, &mut NativeHost::new(envoy, config, in_body))
        },
        || {
            log_panic(hook);
            *failed = true;
            let replied = catch_unwind(AssertUnwindSafe(|| {
                fail_request(&mut NativeHost::new(envoy, config, None))
            }));
            if replied.is_err() {
                log_panic("the panic's reply");
            }
            STOP
        },
    )
}

/// Runs `f`; when it panics, `recover` says what to tell Envoy instead.
fn guard<T>(f: impl FnOnce() -> T, recover: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| recover())
}

/// Answers a request whose flow panicked: a 500 in OpenAI's error envelope.
fn fail_request(host: &mut dyn Host) {
    let err = ApiError::internal("the filter failed on this request");
    host.send_response(
        err.status,
        &[("content-type", "application/json")],
        &err.body(),
    );
}

/// The size of `m`'s body so far (buffered, then the chunk of this hook).
pub(super) fn body_size(envoy: FilterPtr, m: Headers) -> usize {
    let (buffered, received) = match m {
        Headers::Request => (abi::BUFFERED_REQUEST_BODY, abi::RECEIVED_REQUEST_BODY),
        Headers::Response => (abi::BUFFERED_RESPONSE_BODY, abi::RECEIVED_RESPONSE_BODY),
    };
    abi::body_size(envoy, buffered) + abi::body_size(envoy, received)
}

/// A call-out's answer as the core takes it: no status, headers or body when it failed.
pub(super) fn answer(
    result: u32,
    headers: *const EnvoyHeader,
    headers_size: usize,
    chunks: *const EnvoyBuffer,
    chunks_size: usize,
) -> CallResponse {
    if result != CALLOUT_SUCCESS {
        return CallResponse::default();
    }
    // SAFETY: Envoy's arrays are valid for the duration of the hook that handed them over.
    let (headers, body, body_len) = unsafe {
        abi::callout_answer(
            headers,
            headers_size,
            chunks,
            chunks_size,
            CALL_RESPONSE_MAX_BYTES,
        )
    };
    let status = headers
        .iter()
        .find(|(k, _)| k == ":status")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    CallResponse {
        status,
        headers,
        body,
        body_len,
    }
}

#[no_mangle]
extern "C" fn envoy_dynamic_module_on_program_init() -> *const u8 {
    std::panic::set_hook(Box::new(|info| {
        abi::log(abi::LOG_ERROR, &format!("airouter panic: {info}"));
    }));
    abi::ABI_VERSION.as_ptr()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_the_recovery_and_a_return_passes_through() {
        let silent = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let mut recovered = false;
        let status = guard(
            || -> u32 { panic!("boom") },
            || {
                recovered = true;
                STOP
            },
        );
        std::panic::set_hook(silent);
        assert_eq!(status, STOP);
        assert!(recovered);
        assert_eq!(guard(|| CONTINUE, || STOP), CONTINUE);
    }
}
