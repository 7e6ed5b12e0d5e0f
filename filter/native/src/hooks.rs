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

use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::null;

use airouter_core::errors::ApiError;
use airouter_core::flow::{HttpFlow, UpstreamFlow};
use airouter_core::host::{Action, CallResponse, Headers, Host, CALL_RESPONSE_MAX_BYTES};

use crate::abi::{self, ConfigPtr, EnvoyBuffer, EnvoyHeader, FilterPtr};
use crate::config::FilterConfig;
use crate::host::NativeHost;

/// A header, trailer or body status meaning "go on" (`Continue` in every status enum).
const CONTINUE: u32 = 0;
/// `StopIteration` (headers, trailers) and `StopIterationAndBuffer` (bodies): both are 1.
const STOP: u32 = 1;
/// `envoy_dynamic_module_type_http_callout_result_Success`.
const CALLOUT_SUCCESS: u32 = 0;

/// One stream's filter: the flow, and whether it panicked (then it only lets the stream go on).
struct Filter {
    config: *const FilterConfig,
    flow: Flow,
    failed: bool,
}

#[allow(
    clippy::large_enum_variant,
    reason = "a filter is one boxed allocation per stream; boxing the listener's flow would add one"
)]
enum Flow {
    Listener(HttpFlow),
    Upstream(UpstreamFlow),
}

fn status(action: Action) -> u32 {
    match action {
        Action::Continue => CONTINUE,
        Action::Pause => STOP,
    }
}

fn log_panic(hook: &str) {
    abi::log(abi::LOG_ERROR, &format!("panic in {hook}; caught"));
}

/// Runs `f` on the filter behind `module` for hook `hook`; a panic fails the request.
fn with_filter(
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
fn body_size(envoy: FilterPtr, m: Headers) -> usize {
    let (buffered, received) = match m {
        Headers::Request => (abi::BUFFERED_REQUEST_BODY, abi::RECEIVED_REQUEST_BODY),
        Headers::Response => (abi::BUFFERED_RESPONSE_BODY, abi::RECEIVED_RESPONSE_BODY),
    };
    abi::body_size(envoy, buffered) + abi::body_size(envoy, received)
}

#[no_mangle]
extern "C" fn envoy_dynamic_module_on_program_init() -> *const u8 {
    std::panic::set_hook(Box::new(|info| {
        abi::log(abi::LOG_ERROR, &format!("airouter panic: {info}"));
    }));
    abi::ABI_VERSION.as_ptr()
}

#[no_mangle]
extern "C" fn envoy_dynamic_module_on_http_filter_config_new(
    envoy: ConfigPtr,
    name: EnvoyBuffer,
    config: EnvoyBuffer,
) -> *const c_void {
    let made = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: Envoy's buffers are valid for the duration of this hook.
        let (name, config) = unsafe { (name.as_slice(), config.as_slice()) };
        FilterConfig::new(envoy, name, config)
    }));
    match made {
        Ok(Ok(config)) => Box::into_raw(Box::new(config)) as *const c_void,
        Ok(Err(errors)) => {
            for e in errors {
                abi::log(abi::LOG_ERROR, &e);
            }
            null()
        }
        Err(_) => {
            log_panic("the filter configuration");
            null()
        }
    }
}

#[no_mangle]
extern "C" fn envoy_dynamic_module_on_http_filter_config_destroy(config: *const c_void) {
    // SAFETY: `config` came from `Box::into_raw` in `..._config_new`; Envoy destroys it once.
    let config = unsafe { Box::from_raw(config as *mut FilterConfig) };
    if catch_unwind(AssertUnwindSafe(|| drop(config))).is_err() {
        log_panic("the filter configuration's destruction");
    }
}

#[no_mangle]
extern "C" fn envoy_dynamic_module_on_http_filter_new(
    config: *const c_void,
    _envoy: FilterPtr,
) -> *const c_void {
    let made = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `config` came from `..._config_new` and lives while Envoy makes its filters.
        let cfg = unsafe { &*(config as *const FilterConfig) };
        let worker = cfg.worker_plan()?;
        let flow = if cfg.upstream {
            Flow::Upstream(UpstreamFlow::new(worker.plan))
        } else {
            Flow::Listener(HttpFlow::with_known_keys(worker.plan, worker.known_keys))
        };
        Some(Filter {
            config: cfg,
            flow,
            failed: false,
        })
    }));
    match made {
        Ok(Some(filter)) => Box::into_raw(Box::new(filter)) as *const c_void,
        Ok(None) => null(),
        Err(_) => {
            log_panic("a filter's creation");
            null()
        }
    }
}

#[no_mangle]
extern "C" fn envoy_dynamic_module_on_http_filter_destroy(module: *const c_void) {
    // SAFETY: `module` came from `Box::into_raw` in `..._filter_new`; Envoy destroys it once.
    let filter = unsafe { Box::from_raw(module as *mut Filter) };
    if catch_unwind(AssertUnwindSafe(|| drop(filter))).is_err() {
        log_panic("a filter's destruction");
    }
}

#[no_mangle]
extern "C" fn envoy_dynamic_module_on_http_filter_request_headers(
    envoy: FilterPtr,
    module: *const c_void,
    end_of_stream: bool,
) -> u32 {
    with_filter(envoy, module, "request_headers", None, |flow, host| {
        status(match flow {
            Flow::Listener(f) => f.on_request_headers(host, end_of_stream),
            Flow::Upstream(f) => f.on_request_headers(host, end_of_stream),
        })
    })
}

#[no_mangle]
extern "C" fn envoy_dynamic_module_on_http_filter_request_body(
    envoy: FilterPtr,
    module: *const c_void,
    end_of_stream: bool,
) -> u32 {
    let m = Headers::Request;
    with_filter(envoy, module, "request_body", Some(m), |flow, host| {
        let size = body_size(envoy, m);
        status(match flow {
            Flow::Listener(f) => f.on_request_body(host, size, end_of_stream),
            Flow::Upstream(f) => f.on_request_body(host, size, end_of_stream),
        })
    })
}

/// Trailers end the request body (a body followed by trailers never says end of stream).
#[no_mangle]
extern "C" fn envoy_dynamic_module_on_http_filter_request_trailers(
    envoy: FilterPtr,
    module: *const c_void,
) -> u32 {
    with_filter(envoy, module, "request_trailers", None, |flow, host| {
        status(match flow {
            Flow::Listener(f) => f.on_request_trailers(host),
            Flow::Upstream(f) => f.on_request_trailers(host),
        })
    })
}

#[no_mangle]
extern "C" fn envoy_dynamic_module_on_http_filter_response_headers(
    envoy: FilterPtr,
    module: *const c_void,
    end_of_stream: bool,
) -> u32 {
    with_filter(envoy, module, "response_headers", None, |flow, host| {
        status(match flow {
            Flow::Listener(f) => f.on_response_headers(host, end_of_stream),
            Flow::Upstream(f) => f.on_response_headers(host, end_of_stream),
        })
    })
}

#[no_mangle]
extern "C" fn envoy_dynamic_module_on_http_filter_response_body(
    envoy: FilterPtr,
    module: *const c_void,
    end_of_stream: bool,
) -> u32 {
    let m = Headers::Response;
    with_filter(envoy, module, "response_body", Some(m), |flow, host| {
        let size = body_size(envoy, m);
        status(match flow {
            Flow::Listener(f) => f.on_response_body(host, size, end_of_stream),
            Flow::Upstream(f) => f.on_response_body(host, size, end_of_stream),
        })
    })
}

#[no_mangle]
extern "C" fn envoy_dynamic_module_on_http_filter_response_trailers(
    _envoy: FilterPtr,
    _module: *const c_void,
) -> u32 {
    CONTINUE
}

/// The stream is over (before the access log is written): usage not yet charged is, and the
/// session record goes to the access log.
#[no_mangle]
extern "C" fn envoy_dynamic_module_on_http_filter_stream_complete(
    envoy: FilterPtr,
    module: *const c_void,
) {
    with_filter(envoy, module, "stream_complete", None, |flow, host| {
        if let Flow::Listener(f) = flow {
            f.on_log(host);
        }
        CONTINUE
    });
}

/// A call-out the flow sent while holding the request has answered (or failed: status 0).
#[no_mangle]
extern "C" fn envoy_dynamic_module_on_http_filter_http_callout_done(
    envoy: FilterPtr,
    module: *const c_void,
    callout_id: u64,
    result: u32,
    headers: *const EnvoyHeader,
    headers_size: usize,
    chunks: *const EnvoyBuffer,
    chunks_size: usize,
) {
    let response = answer(result, headers, headers_size, chunks, chunks_size);
    with_filter(envoy, module, "http_callout_done", None, |flow, host| {
        if let (Flow::Listener(f), Ok(token)) = (flow, u32::try_from(callout_id)) {
            f.on_http_call_response(host, token, response);
        }
        CONTINUE
    });
}

/// A call-out's answer as the core takes it: no status, headers or body when it failed.
fn answer(
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

/// A discovery tick, on the main thread.
#[no_mangle]
extern "C" fn envoy_dynamic_module_on_http_filter_config_scheduled(
    envoy: ConfigPtr,
    config: *const c_void,
    event: u64,
) {
    // SAFETY: `config` came from `..._config_new` and lives until `..._config_destroy`.
    let id = unsafe { &*(config as *const FilterConfig) }.id();
    if catch_unwind(|| crate::root::on_scheduled(envoy, id, event)).is_err() {
        log_panic("the model discovery's tick");
    }
}

/// A discovery fetch has answered, on the main thread.
#[no_mangle]
extern "C" fn envoy_dynamic_module_on_http_filter_config_http_callout_done(
    envoy: ConfigPtr,
    config: *const c_void,
    callout_id: u64,
    result: u32,
    headers: *const EnvoyHeader,
    headers_size: usize,
    chunks: *const EnvoyBuffer,
    chunks_size: usize,
) {
    // SAFETY: `config` came from `..._config_new` and lives until `..._config_destroy`.
    let config = unsafe { &*(config as *const FilterConfig) };
    let done = catch_unwind(AssertUnwindSafe(|| {
        let response = answer(result, headers, headers_size, chunks, chunks_size);
        crate::root::on_callout_done(envoy, config.id(), callout_id, &response);
    }));
    if done.is_err() {
        log_panic("a model discovery answer");
    }
}

// Hooks the ABI requires and this filter has no use for: streamed call-outs, filter-level
// scheduling, and the write-buffer watermarks of terminal filters.

#[no_mangle]
extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_headers(
    _envoy: FilterPtr,
    _module: *const c_void,
    _stream: u64,
    _headers: *const EnvoyHeader,
    _headers_size: usize,
    _end_stream: bool,
) {
}

#[no_mangle]
extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_data(
    _envoy: FilterPtr,
    _module: *const c_void,
    _stream: u64,
    _data: *const EnvoyBuffer,
    _data_count: usize,
    _end_stream: bool,
) {
}

#[no_mangle]
extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_trailers(
    _envoy: FilterPtr,
    _module: *const c_void,
    _stream: u64,
    _trailers: *const EnvoyHeader,
    _trailers_size: usize,
) {
}

#[no_mangle]
extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_complete(
    _envoy: FilterPtr,
    _module: *const c_void,
    _stream: u64,
) {
}

#[no_mangle]
extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_reset(
    _envoy: FilterPtr,
    _module: *const c_void,
    _stream: u64,
    _reason: u32,
) {
}

#[no_mangle]
extern "C" fn envoy_dynamic_module_on_http_filter_scheduled(
    _envoy: FilterPtr,
    _module: *const c_void,
    _event: u64,
) {
}

#[no_mangle]
extern "C" fn envoy_dynamic_module_on_http_filter_downstream_above_write_buffer_high_watermark(
    _envoy: FilterPtr,
    _module: *const c_void,
) {
}

#[no_mangle]
extern "C" fn envoy_dynamic_module_on_http_filter_downstream_below_write_buffer_low_watermark(
    _envoy: FilterPtr,
    _module: *const c_void,
) {
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
