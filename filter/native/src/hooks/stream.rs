//! One stream's hooks: the filter made and destroyed, the request's and the response's headers,
//! bodies and trailers, the stream's end, and the answers of call-outs it sent.

use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::null;

use airouter_core::flow::{HttpFlow, UpstreamFlow};
use airouter_core::host::Headers;

use super::{answer, body_size, log_panic, status, with_filter, Filter, Flow, CONTINUE};
use crate::abi::{EnvoyBuffer, EnvoyHeader, FilterPtr};
use crate::config::FilterConfig;

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
