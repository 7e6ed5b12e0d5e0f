//! The few proxy-wasm ABI calls made per request (and by the root context's timer), declared here so that an unexpected host status
//! or a non-UTF-8 header becomes `None`/`false` instead of the SDK's `panic!` (which would trap the
//! worker's VM). Memory the host returns was allocated through the SDK's exported allocator.

use std::ptr::null_mut;

use crate::header_snapshot::encode_pairs;
use airouter_core::contract::LOCAL_REPLY_DETAILS;
use airouter_core::host::SharedWrite;

const OK: u32 = 0;
/// proxy-wasm's status of a shared-data write whose CAS token is stale.
const CAS_MISMATCH: u32 = 8;

pub const REQUEST_HEADERS: u32 = 0;
pub const RESPONSE_HEADERS: u32 = 2;
pub const REQUEST_BODY: u32 = 0;
pub const RESPONSE_BODY: u32 = 1;
/// `proxy_get_header_map_pairs`' map of a call-out's response headers.
pub const CALL_RESPONSE_HEADERS: u32 = 6;
/// `proxy_get_buffer_bytes`' buffer of a call-out's response body.
pub const CALL_RESPONSE_BODY: u32 = 4;
/// `proxy_continue_stream`'s stream type for the request.
const STREAM_REQUEST: u32 = 0;
pub const LOG_WARN: u32 = 3;
pub const LOG_ERROR: u32 = 4;

extern "C" {
    fn proxy_log(level: u32, message_data: *const u8, message_size: usize) -> u32;
    fn proxy_get_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
        return_value_data: *mut *mut u8,
        return_value_size: *mut usize,
    ) -> u32;
    fn proxy_get_header_map_pairs(
        map_type: u32,
        return_map_data: *mut *mut u8,
        return_map_size: *mut usize,
    ) -> u32;
    fn proxy_replace_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
        value_data: *const u8,
        value_size: usize,
    ) -> u32;
    fn proxy_remove_header_map_value(map_type: u32, key_data: *const u8, key_size: usize) -> u32;
    fn proxy_get_buffer_bytes(
        buffer_type: u32,
        start: usize,
        max_size: usize,
        return_buffer_data: *mut *mut u8,
        return_buffer_size: *mut usize,
    ) -> u32;
    fn proxy_set_buffer_bytes(
        buffer_type: u32,
        start: usize,
        size: usize,
        buffer_data: *const u8,
        buffer_size: usize,
    ) -> u32;
    fn proxy_send_local_response(
        status_code: u32,
        status_code_details_data: *const u8,
        status_code_details_size: usize,
        body_data: *const u8,
        body_size: usize,
        headers_data: *const u8,
        headers_size: usize,
        grpc_status: i32,
    ) -> u32;
    fn proxy_get_current_time_nanoseconds(return_time: *mut u64) -> u32;
    fn proxy_define_metric(
        metric_type: u32,
        name_data: *const u8,
        name_size: usize,
        return_id: *mut u32,
    ) -> u32;
    fn proxy_increment_metric(metric_id: u32, offset: i64) -> u32;
    fn proxy_record_metric(metric_id: u32, value: u64) -> u32;
    fn proxy_get_metric(metric_id: u32, return_value: *mut u64) -> u32;
    fn proxy_get_shared_data(
        key_data: *const u8,
        key_size: usize,
        return_value_data: *mut *mut u8,
        return_value_size: *mut usize,
        return_cas: *mut u32,
    ) -> u32;
    fn proxy_set_shared_data(
        key_data: *const u8,
        key_size: usize,
        value_data: *const u8,
        value_size: usize,
        cas: u32,
    ) -> u32;
    fn proxy_set_property(
        path_data: *const u8,
        path_size: usize,
        value_data: *const u8,
        value_size: usize,
    ) -> u32;
    fn proxy_call_foreign_function(
        function_name_data: *const u8,
        function_name_size: usize,
        arguments_data: *const u8,
        arguments_size: usize,
        results_data: *mut *mut u8,
        results_size: *mut usize,
    ) -> u32;
    fn proxy_continue_stream(stream_type: u32) -> u32;
    fn proxy_set_tick_period_milliseconds(period: u32) -> u32;
    fn proxy_get_property(
        path_data: *const u8,
        path_size: usize,
        return_value_data: *mut *mut u8,
        return_value_size: *mut usize,
    ) -> u32;
}

/// Takes ownership of a host-allocated buffer.
fn take(data: *mut u8, size: usize) -> Vec<u8> {
    if data.is_null() || size == 0 {
        return Vec::new();
    }
    // SAFETY: the host allocated `size` bytes at `data` through `proxy_on_memory_allocate`
    // (the Rust global allocator) and hands their ownership to the module.
    unsafe { Vec::from_raw_parts(data, size, size) }
}

pub fn log(level: u32, message: &str) {
    // SAFETY: pointer and length describe a live string for the duration of the call.
    unsafe {
        proxy_log(level, message.as_ptr(), message.len());
    }
}

pub fn header(map: u32, name: &str) -> Option<String> {
    let mut data = null_mut();
    let mut size = 0;
    // SAFETY: the out-pointers are valid locals; the key is a live string.
    let status =
        unsafe { proxy_get_header_map_value(map, name.as_ptr(), name.len(), &mut data, &mut size) };
    (status == OK).then(|| String::from_utf8_lossy(&take(data, size)).into_owned())
}

/// Every header of a map in one call, in proxy-wasm's wire form.
pub fn header_pairs(map: u32) -> Option<Vec<u8>> {
    let mut data = null_mut();
    let mut size = 0;
    // SAFETY: the out-pointers are valid locals.
    let status = unsafe { proxy_get_header_map_pairs(map, &mut data, &mut size) };
    (status == OK).then(|| take(data, size))
}

pub fn set_header(map: u32, name: &str, value: Option<&str>) -> bool {
    // SAFETY: pointers and lengths describe live strings for the duration of the call.
    let status = unsafe {
        match value {
            Some(v) => {
                proxy_replace_header_map_value(map, name.as_ptr(), name.len(), v.as_ptr(), v.len())
            }
            None => proxy_remove_header_map_value(map, name.as_ptr(), name.len()),
        }
    };
    status == OK
}

pub fn buffer(kind: u32, start: usize, max: usize) -> Option<Vec<u8>> {
    let mut data = null_mut();
    let mut size = 0;
    // SAFETY: the out-pointers are valid locals.
    let status = unsafe { proxy_get_buffer_bytes(kind, start, max, &mut data, &mut size) };
    match status {
        OK => Some(take(data, size)),
        // Envoy answers NotFound/Empty for a body of zero bytes.
        _ if max == 0 => Some(Vec::new()),
        _ => None,
    }
}

pub fn set_buffer(kind: u32, start: usize, size: usize, value: &[u8]) -> bool {
    // SAFETY: pointer and length describe a live slice for the duration of the call.
    unsafe { proxy_set_buffer_bytes(kind, start, size, value.as_ptr(), value.len()) == OK }
}

pub fn send_response(status: u16, headers: &[(&str, &str)], body: &[u8]) -> bool {
    let serialized = encode_pairs(headers);
    let details = LOCAL_REPLY_DETAILS.as_bytes();
    // SAFETY: all pointers describe live buffers for the duration of the call.
    unsafe {
        proxy_send_local_response(
            u32::from(status),
            details.as_ptr(),
            details.len(),
            body.as_ptr(),
            body.len(),
            serialized.as_ptr(),
            serialized.len(),
            -1,
        ) == OK
    }
}

pub fn property(path: &[&str]) -> Option<Vec<u8>> {
    let joined = path.join("\0");
    let mut data = null_mut();
    let mut size = 0;
    // SAFETY: the out-pointers are valid locals; the path is a live buffer.
    let status = unsafe { proxy_get_property(joined.as_ptr(), joined.len(), &mut data, &mut size) };
    (status == OK).then(|| take(data, size))
}

pub fn now_ms() -> u64 {
    let mut nanos = 0u64;
    // SAFETY: the out-pointer is a valid local.
    let status = unsafe { proxy_get_current_time_nanoseconds(&mut nanos) };
    if status == OK {
        nanos / 1_000_000
    } else {
        0
    }
}

/// A shared-data value (visible to every worker of this Envoy) and its CAS token.
pub fn shared_get(key: &str) -> Option<(Vec<u8>, u32)> {
    let mut data = null_mut();
    let mut size = 0;
    let mut cas = 0u32;
    // SAFETY: the out-pointers are valid locals; the key is a live string.
    let status =
        unsafe { proxy_get_shared_data(key.as_ptr(), key.len(), &mut data, &mut size, &mut cas) };
    (status == OK).then(|| (take(data, size), cas))
}

/// Writes a shared-data value if its CAS token is still `cas` (0: unconditionally).
pub fn shared_set(key: &str, value: &[u8], cas: u32) -> SharedWrite {
    // SAFETY: pointers and lengths describe live buffers for the duration of the call.
    let status =
        unsafe { proxy_set_shared_data(key.as_ptr(), key.len(), value.as_ptr(), value.len(), cas) };
    match status {
        OK => SharedWrite::Written,
        CAS_MISMATCH => SharedWrite::Conflict,
        _ => SharedWrite::Failed,
    }
}

/// Defines a counter; its id, or `None` when the host refused.
pub fn define_counter(name: &str) -> Option<u32> {
    let mut id = 0u32;
    // SAFETY: the name is a live string; the out-pointer is a valid local.
    let status = unsafe { proxy_define_metric(0, name.as_ptr(), name.len(), &mut id) };
    (status == OK).then_some(id)
}

/// Defines a histogram; its id, or `None` when the host refused.
pub fn define_histogram(name: &str) -> Option<u32> {
    let mut id = 0u32;
    // SAFETY: the name is a live string; the out-pointer is a valid local.
    let status = unsafe { proxy_define_metric(2, name.as_ptr(), name.len(), &mut id) };
    (status == OK).then_some(id)
}

/// Records one value in a histogram.
pub fn record(id: u32, value: u64) {
    // SAFETY: plain values only.
    unsafe {
        proxy_record_metric(id, value);
    }
}

pub fn increment(id: u32, n: u64) {
    let offset = i64::try_from(n).unwrap_or(i64::MAX);
    // SAFETY: plain values only.
    unsafe {
        proxy_increment_metric(id, offset);
    }
}

/// Sets filter state `wasm.<name>` (one path segment) for this request.
pub fn set_property(name: &str, value: &[u8]) -> bool {
    // SAFETY: pointers and lengths describe live buffers for the duration of the call.
    unsafe { proxy_set_property(name.as_ptr(), name.len(), value.as_ptr(), value.len()) == OK }
}

pub fn metric_value(id: u32) -> u64 {
    let mut value = 0u64;
    // SAFETY: the out-pointer is a valid local.
    let status = unsafe { proxy_get_metric(id, &mut value) };
    if status == OK {
        value
    } else {
        0
    }
}

/// Envoy's `clear_route_cache` foreign function: the route is picked again from the request as
/// it stands (filter state included). `false` when the host refused the call.
pub fn clear_route_cache() -> bool {
    const NAME: &str = "clear_route_cache";
    let mut data: *mut u8 = null_mut();
    let mut size = 0usize;
    // SAFETY: the name lives for the call; the out-pointers are valid locals; any result buffer
    // is handed over to the module and freed by `take`.
    let status = unsafe {
        proxy_call_foreign_function(
            NAME.as_ptr(),
            NAME.len(),
            std::ptr::null(),
            0,
            &mut data,
            &mut size,
        )
    };
    drop(take(data, size));
    status == OK
}

/// Sends an HTTP call-out to `cluster`; its token, or `None` when Envoy refused it (an unknown
/// cluster, a missing `:method`/`:path`/`:authority`).
///
/// Sent through the SDK, unlike the other calls here: Envoy makes the call on the root context
/// and delivers its answer there, and the SDK's dispatcher forwards it to the stream that sent
/// it only when it registered the token on sending (an answer it cannot place traps the VM:
/// "invalid token_id"). The SDK panics only on a status Envoy's `proxy_http_call` does not return
/// for valid buffers (it returns OK, `BadArgument` or `InternalFailure`).
pub fn http_call(
    cluster: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    timeout_ms: u32,
) -> Option<u32> {
    proxy_wasm::hostcalls::dispatch_http_call(
        cluster,
        headers.to_vec(),
        Some(body),
        Vec::new(),
        std::time::Duration::from_millis(u64::from(timeout_ms)),
    )
    .ok()
}

/// Lets the held request go on; `false` when Envoy refused (the stream is gone).
pub fn continue_request() -> bool {
    // SAFETY: a plain value.
    unsafe { proxy_continue_stream(STREAM_REQUEST) == OK }
}

/// Sets the root context's timer (`on_tick` every `period_ms`; 0 stops it); `false` when Envoy
/// refused (the SDK's own setter panics then).
pub fn set_tick_period(period_ms: u32) -> bool {
    // SAFETY: a plain value.
    unsafe { proxy_set_tick_period_milliseconds(period_ms) == OK }
}
