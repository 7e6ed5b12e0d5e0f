//! The part of Envoy's dynamic-module ABI (`source/extensions/dynamic_modules/abi/abi.h` of Envoy
//! 1.40.0, ABI version [`ABI_VERSION`]) this module calls, declared by hand, and safe wrappers
//! over each call. Every `unsafe` call into Envoy is here. Envoy's buffers handed back by a
//! callback are valid until the current event hook returns or a setter changes them, so every
//! wrapper copies what it returns, except [`header`], whose borrow is tied to the caller's
//! `&self` (see `host.rs`).
//!
//! C enums are passed as `u32` (a C `int` on every platform Envoy builds for).

use std::ffi::c_void;
use std::ptr::{null, null_mut};

/// The ABI version Envoy 1.40.0 was built with (`ENVOY_DYNAMIC_MODULES_ABI_VERSION`),
/// NUL-terminated for `envoy_dynamic_module_on_program_init`. Envoy compares it with its own
/// and logs a warning on a mismatch (it still loads the module).
pub const ABI_VERSION: &[u8] = b"v0.2.0\0";

/// `envoy_dynamic_module_type_http_filter_envoy_ptr`: Envoy's side of one filter instance.
pub type FilterPtr = *mut c_void;
/// `envoy_dynamic_module_type_http_filter_config_envoy_ptr`: Envoy's side of a filter config.
pub type ConfigPtr = *mut c_void;
/// `envoy_dynamic_module_type_http_filter_config_scheduler_module_ptr`.
pub type SchedulerPtr = *mut c_void;

/// `envoy_dynamic_module_type_envoy_buffer`: bytes owned by Envoy.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct EnvoyBuffer {
    pub ptr: *const u8,
    pub length: usize,
}

impl EnvoyBuffer {
    const EMPTY: EnvoyBuffer = EnvoyBuffer {
        ptr: null(),
        length: 0,
    };

    /// The bytes, copied.
    ///
    /// # Safety
    /// `ptr` must point at `length` readable bytes (or be null).
    pub unsafe fn to_vec(self) -> Vec<u8> {
        self.as_slice().to_vec()
    }

    /// The bytes, borrowed for as long as the caller says Envoy keeps them.
    ///
    /// # Safety
    /// `ptr` must point at `length` readable bytes (or be null) for all of `'a`.
    pub unsafe fn as_slice<'a>(self) -> &'a [u8] {
        if self.ptr.is_null() || self.length == 0 {
            return &[];
        }
        // SAFETY: the caller promises `length` readable bytes at `ptr` for `'a`.
        unsafe { std::slice::from_raw_parts(self.ptr, self.length) }
    }
}

/// `envoy_dynamic_module_type_module_buffer`: bytes owned by this module, lent for one call.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct ModuleBuffer {
    ptr: *const u8,
    length: usize,
}

impl ModuleBuffer {
    fn of(bytes: &[u8]) -> Self {
        ModuleBuffer {
            ptr: bytes.as_ptr(),
            length: bytes.len(),
        }
    }

    /// The null buffer (a header value meaning "remove").
    const NULL: ModuleBuffer = ModuleBuffer {
        ptr: null(),
        length: 0,
    };
}

/// `envoy_dynamic_module_type_envoy_http_header`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct EnvoyHeader {
    pub key_ptr: *const u8,
    pub key_length: usize,
    pub value_ptr: *const u8,
    pub value_length: usize,
}

impl EnvoyHeader {
    const EMPTY: EnvoyHeader = EnvoyHeader {
        key_ptr: null(),
        key_length: 0,
        value_ptr: null(),
        value_length: 0,
    };
}

/// `envoy_dynamic_module_type_module_http_header`.
#[repr(C)]
struct ModuleHeader {
    key_ptr: *const u8,
    key_length: usize,
    value_ptr: *const u8,
    value_length: usize,
}

fn module_headers(headers: &[(&str, &str)]) -> Vec<ModuleHeader> {
    headers
        .iter()
        .map(|(k, v)| ModuleHeader {
            key_ptr: k.as_ptr(),
            key_length: k.len(),
            value_ptr: v.as_ptr(),
            value_length: v.len(),
        })
        .collect()
}

/// `envoy_dynamic_module_type_http_header_type`.
pub const REQUEST_HEADERS: u32 = 0;
pub const RESPONSE_HEADERS: u32 = 2;
/// `envoy_dynamic_module_type_http_body_type`.
pub const RECEIVED_REQUEST_BODY: u32 = 0;
pub const BUFFERED_REQUEST_BODY: u32 = 1;
pub const RECEIVED_RESPONSE_BODY: u32 = 2;
pub const BUFFERED_RESPONSE_BODY: u32 = 3;
/// `envoy_dynamic_module_type_log_level`.
pub const LOG_WARN: u32 = 3;
pub const LOG_ERROR: u32 = 4;
/// `envoy_dynamic_module_type_metadata_source_Host`: the upstream endpoint's metadata.
pub const METADATA_HOST: u32 = 3;
/// `envoy_dynamic_module_type_attribute_id_ResponseCodeDetails` (`response.code_details`).
pub const ATTRIBUTE_RESPONSE_CODE_DETAILS: u32 = 16;
/// `envoy_dynamic_module_type_http_callout_init_result_Success`.
const CALLOUT_INIT_SUCCESS: u32 = 0;
/// `envoy_dynamic_module_type_metrics_result_Success`.
const METRICS_SUCCESS: u32 = 0;

extern "C" {
    fn envoy_dynamic_module_callback_log(level: u32, message: ModuleBuffer);
    fn envoy_dynamic_module_callback_http_get_header(
        filter: FilterPtr,
        header_type: u32,
        key: ModuleBuffer,
        result: *mut EnvoyBuffer,
        index: usize,
        optional_size: *mut usize,
    ) -> bool;
    fn envoy_dynamic_module_callback_http_get_headers_size(
        filter: FilterPtr,
        header_type: u32,
    ) -> usize;
    fn envoy_dynamic_module_callback_http_get_headers(
        filter: FilterPtr,
        header_type: u32,
        result: *mut EnvoyHeader,
    ) -> bool;
    fn envoy_dynamic_module_callback_http_set_header(
        filter: FilterPtr,
        header_type: u32,
        key: ModuleBuffer,
        value: ModuleBuffer,
    ) -> bool;
    fn envoy_dynamic_module_callback_http_send_response(
        filter: FilterPtr,
        status_code: u32,
        headers: *mut ModuleHeader,
        headers_size: usize,
        body: ModuleBuffer,
        details: ModuleBuffer,
    );
    fn envoy_dynamic_module_callback_http_get_body_size(filter: FilterPtr, body_type: u32)
        -> usize;
    fn envoy_dynamic_module_callback_http_get_body_chunks_size(
        filter: FilterPtr,
        body_type: u32,
    ) -> usize;
    fn envoy_dynamic_module_callback_http_get_body_chunks(
        filter: FilterPtr,
        body_type: u32,
        result: *mut EnvoyBuffer,
    ) -> bool;
    fn envoy_dynamic_module_callback_http_append_body(
        filter: FilterPtr,
        body_type: u32,
        data: ModuleBuffer,
    ) -> bool;
    fn envoy_dynamic_module_callback_http_drain_body(
        filter: FilterPtr,
        body_type: u32,
        bytes: usize,
    ) -> bool;
    fn envoy_dynamic_module_callback_http_get_metadata_string(
        filter: FilterPtr,
        source: u32,
        ns: ModuleBuffer,
        key: ModuleBuffer,
        result: *mut EnvoyBuffer,
    ) -> bool;
    fn envoy_dynamic_module_callback_http_set_filter_state_bytes(
        filter: FilterPtr,
        key: ModuleBuffer,
        value: ModuleBuffer,
    ) -> bool;
    fn envoy_dynamic_module_callback_http_get_filter_state_bytes(
        filter: FilterPtr,
        key: ModuleBuffer,
        result: *mut EnvoyBuffer,
    ) -> bool;
    fn envoy_dynamic_module_callback_http_filter_get_attribute_string(
        filter: FilterPtr,
        attribute: u32,
        result: *mut EnvoyBuffer,
    ) -> bool;
    fn envoy_dynamic_module_callback_http_clear_route_cache(filter: FilterPtr);
    fn envoy_dynamic_module_callback_http_filter_continue_decoding(filter: FilterPtr);
    fn envoy_dynamic_module_callback_http_filter_config_define_counter(
        config: ConfigPtr,
        name: ModuleBuffer,
        label_names: *mut ModuleBuffer,
        label_names_length: usize,
        counter_id: *mut usize,
    ) -> u32;
    fn envoy_dynamic_module_callback_http_filter_increment_counter(
        filter: FilterPtr,
        id: usize,
        label_values: *mut ModuleBuffer,
        label_values_length: usize,
        value: u64,
    ) -> u32;
    fn envoy_dynamic_module_callback_http_filter_http_callout(
        filter: FilterPtr,
        callout_id: *mut u64,
        cluster: ModuleBuffer,
        headers: *mut ModuleHeader,
        headers_size: usize,
        body: ModuleBuffer,
        timeout_ms: u64,
    ) -> u32;
    fn envoy_dynamic_module_callback_http_filter_config_http_callout(
        config: ConfigPtr,
        callout_id: *mut u64,
        cluster: ModuleBuffer,
        headers: *mut ModuleHeader,
        headers_size: usize,
        body: ModuleBuffer,
        timeout_ms: u64,
    ) -> u32;
    fn envoy_dynamic_module_callback_http_filter_config_scheduler_new(
        config: ConfigPtr,
    ) -> SchedulerPtr;
    fn envoy_dynamic_module_callback_http_filter_config_scheduler_commit(
        scheduler: SchedulerPtr,
        event_id: u64,
    );
    fn envoy_dynamic_module_callback_http_filter_config_scheduler_delete(scheduler: SchedulerPtr);
}

/// Logs `message` under Envoy's `dynamic_modules` logger.
pub fn log(level: u32, message: &str) {
    // SAFETY: the buffer describes a live string for the duration of the call.
    unsafe { envoy_dynamic_module_callback_log(level, ModuleBuffer::of(message.as_bytes())) }
}

/// The first value of header `name` in map `map`, borrowed from Envoy.
///
/// # Safety
/// The returned slice is valid until the current event hook returns or the map is changed: the
/// caller must not keep it past either (`host.rs` ties it to a `&self` borrow that every setter's
/// `&mut self` ends).
pub unsafe fn header<'a>(filter: FilterPtr, map: u32, name: &str) -> Option<&'a [u8]> {
    let mut result = EnvoyBuffer::EMPTY;
    // SAFETY: the key is a live string, the out-pointer a valid local; Envoy accepts a null
    // `optional_size`.
    let found = unsafe {
        envoy_dynamic_module_callback_http_get_header(
            filter,
            map,
            ModuleBuffer::of(name.as_bytes()),
            &mut result,
            0,
            null_mut(),
        )
    };
    // SAFETY: Envoy filled `result` with a buffer it keeps as the caller promised.
    (found && !result.ptr.is_null()).then(|| unsafe { result.as_slice() })
}

/// Every header of map `map`, in order, copied (names and values read lossily as UTF-8).
pub fn headers(filter: FilterPtr, map: u32) -> Vec<(String, String)> {
    // SAFETY: plain values.
    let count = unsafe { envoy_dynamic_module_callback_http_get_headers_size(filter, map) };
    if count == 0 {
        return Vec::new();
    }
    let mut raw = vec![EnvoyHeader::EMPTY; count];
    // SAFETY: `raw` has room for the `count` headers Envoy just reported.
    if !unsafe { envoy_dynamic_module_callback_http_get_headers(filter, map, raw.as_mut_ptr()) } {
        return Vec::new();
    }
    raw.iter()
        .map(|h| {
            let key = EnvoyBuffer {
                ptr: h.key_ptr,
                length: h.key_length,
            };
            let value = EnvoyBuffer {
                ptr: h.value_ptr,
                length: h.value_length,
            };
            // SAFETY: Envoy's header bytes are valid for the current event hook.
            let (k, v) = unsafe { (key.as_slice(), value.as_slice()) };
            (
                String::from_utf8_lossy(k).into_owned(),
                String::from_utf8_lossy(v).into_owned(),
            )
        })
        .collect()
}

/// Sets header `name` (replacing every value) or removes it (`None`); `false` when Envoy
/// refused (no such map in this phase).
pub fn set_header(filter: FilterPtr, map: u32, name: &str, value: Option<&str>) -> bool {
    let value = value.map_or(ModuleBuffer::NULL, |v| ModuleBuffer::of(v.as_bytes()));
    // SAFETY: the buffers describe live strings (or null) for the duration of the call.
    unsafe {
        envoy_dynamic_module_callback_http_set_header(
            filter,
            map,
            ModuleBuffer::of(name.as_bytes()),
            value,
        )
    }
}

/// Answers the client with `status`, `headers` and `body`; `details` become the response code
/// details.
pub fn send_response(
    filter: FilterPtr,
    status: u16,
    headers: &[(&str, &str)],
    body: &[u8],
    details: &str,
) {
    let mut headers = module_headers(headers);
    // SAFETY: every pointer describes a live buffer for the duration of the call.
    unsafe {
        envoy_dynamic_module_callback_http_send_response(
            filter,
            u32::from(status),
            headers.as_mut_ptr(),
            headers.len(),
            ModuleBuffer::of(body),
            ModuleBuffer::of(details.as_bytes()),
        )
    }
}

/// The size in bytes of one of the four bodies (0 when it is not there in this phase).
pub fn body_size(filter: FilterPtr, body_type: u32) -> usize {
    // SAFETY: plain values.
    unsafe { envoy_dynamic_module_callback_http_get_body_size(filter, body_type) }
}

/// Appends the bytes of one of the four bodies to `out`; `false` when it is not there.
pub fn read_body(filter: FilterPtr, body_type: u32, out: &mut Vec<u8>) -> bool {
    // SAFETY: plain values.
    let count =
        unsafe { envoy_dynamic_module_callback_http_get_body_chunks_size(filter, body_type) };
    if count == 0 {
        return body_size(filter, body_type) == 0;
    }
    let mut chunks = vec![EnvoyBuffer::EMPTY; count];
    // SAFETY: `chunks` has room for the `count` slices Envoy just reported.
    let ok = unsafe {
        envoy_dynamic_module_callback_http_get_body_chunks(filter, body_type, chunks.as_mut_ptr())
    };
    if ok {
        for chunk in chunks {
            // SAFETY: Envoy's body slices are valid for the current event hook.
            out.extend_from_slice(unsafe { chunk.as_slice() });
        }
    }
    ok
}

/// Drains `bytes` from the front of a body; `false` when it is not there.
pub fn drain_body(filter: FilterPtr, body_type: u32, bytes: usize) -> bool {
    // SAFETY: plain values.
    unsafe { envoy_dynamic_module_callback_http_drain_body(filter, body_type, bytes) }
}

/// Appends `data` to a body; `false` when it is not there.
pub fn append_body(filter: FilterPtr, body_type: u32, data: &[u8]) -> bool {
    // SAFETY: the buffer describes a live slice for the duration of the call.
    unsafe {
        envoy_dynamic_module_callback_http_append_body(filter, body_type, ModuleBuffer::of(data))
    }
}

/// A string of metadata `source` under namespace `ns`, key `key`, copied.
pub fn metadata_string(filter: FilterPtr, source: u32, ns: &str, key: &str) -> Option<Vec<u8>> {
    let mut result = EnvoyBuffer::EMPTY;
    // SAFETY: the buffers describe live strings; the out-pointer is a valid local.
    let found = unsafe {
        envoy_dynamic_module_callback_http_get_metadata_string(
            filter,
            source,
            ModuleBuffer::of(ns.as_bytes()),
            ModuleBuffer::of(key.as_bytes()),
            &mut result,
        )
    };
    // SAFETY: Envoy filled `result` with a buffer valid for the current event hook.
    found.then(|| unsafe { result.to_vec() })
}

/// Sets the request's filter state `key` to `value` (a string accessor other filters and the
/// access log read); `false` when Envoy refused.
pub fn set_filter_state(filter: FilterPtr, key: &str, value: &[u8]) -> bool {
    // SAFETY: the buffers describe live bytes for the duration of the call.
    unsafe {
        envoy_dynamic_module_callback_http_set_filter_state_bytes(
            filter,
            ModuleBuffer::of(key.as_bytes()),
            ModuleBuffer::of(value),
        )
    }
}

/// The request's filter state `key`, copied.
pub fn filter_state(filter: FilterPtr, key: &str) -> Option<Vec<u8>> {
    let mut result = EnvoyBuffer::EMPTY;
    // SAFETY: the key is a live string; the out-pointer is a valid local.
    let found = unsafe {
        envoy_dynamic_module_callback_http_get_filter_state_bytes(
            filter,
            ModuleBuffer::of(key.as_bytes()),
            &mut result,
        )
    };
    // SAFETY: Envoy filled `result` with a buffer valid for the current event hook.
    found.then(|| unsafe { result.to_vec() })
}

/// A string attribute of the stream (`envoy_dynamic_module_type_attribute_id`), copied.
pub fn attribute_string(filter: FilterPtr, attribute: u32) -> Option<Vec<u8>> {
    let mut result = EnvoyBuffer::EMPTY;
    // SAFETY: the out-pointer is a valid local.
    let found = unsafe {
        envoy_dynamic_module_callback_http_filter_get_attribute_string(
            filter,
            attribute,
            &mut result,
        )
    };
    // SAFETY: Envoy filled `result` with a buffer valid for the current event hook.
    found.then(|| unsafe { result.to_vec() })
}

/// Makes Envoy pick the request's route again.
pub fn clear_route_cache(filter: FilterPtr) {
    // SAFETY: a plain value.
    unsafe { envoy_dynamic_module_callback_http_clear_route_cache(filter) }
}

/// Lets a request held since its headers or body go on.
pub fn continue_decoding(filter: FilterPtr) {
    // SAFETY: a plain value.
    unsafe { envoy_dynamic_module_callback_http_filter_continue_decoding(filter) }
}

/// Defines a counter (at configuration time only: Envoy freezes stat creation after); its id.
pub fn define_counter(config: ConfigPtr, name: &str) -> Option<usize> {
    let mut id = 0usize;
    // SAFETY: the name is a live string; no labels; the out-pointer is a valid local.
    let result = unsafe {
        envoy_dynamic_module_callback_http_filter_config_define_counter(
            config,
            ModuleBuffer::of(name.as_bytes()),
            null_mut(),
            0,
            &mut id,
        )
    };
    (result == METRICS_SUCCESS).then_some(id)
}

/// Adds `n` to the counter `id` defined by this filter's configuration.
pub fn increment_counter(filter: FilterPtr, id: usize, n: u64) {
    // SAFETY: plain values; no labels, as defined.
    unsafe {
        envoy_dynamic_module_callback_http_filter_increment_counter(filter, id, null_mut(), 0, n);
    }
}

/// Sends an HTTP call-out from a request's filter; its id, or `None` when Envoy refused it.
pub fn http_callout(
    filter: FilterPtr,
    cluster: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    timeout_ms: u32,
) -> Option<u64> {
    let mut headers = module_headers(headers);
    let mut id = 0u64;
    // SAFETY: every pointer describes a live buffer for the duration of the call.
    let result = unsafe {
        envoy_dynamic_module_callback_http_filter_http_callout(
            filter,
            &mut id,
            ModuleBuffer::of(cluster.as_bytes()),
            headers.as_mut_ptr(),
            headers.len(),
            ModuleBuffer::of(body),
            u64::from(timeout_ms),
        )
    };
    (result == CALLOUT_INIT_SUCCESS).then_some(id)
}

/// Sends an HTTP call-out from a filter configuration (on the main thread); its id, or `None`.
pub fn config_http_callout(
    config: ConfigPtr,
    cluster: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    timeout_ms: u32,
) -> Option<u64> {
    let mut headers = module_headers(headers);
    let mut id = 0u64;
    // SAFETY: every pointer describes a live buffer for the duration of the call.
    let result = unsafe {
        envoy_dynamic_module_callback_http_filter_config_http_callout(
            config,
            &mut id,
            ModuleBuffer::of(cluster.as_bytes()),
            headers.as_mut_ptr(),
            headers.len(),
            ModuleBuffer::of(body),
            u64::from(timeout_ms),
        )
    };
    (result == CALLOUT_INIT_SUCCESS).then_some(id)
}

/// A scheduler that runs the configuration's scheduled hook on Envoy's main thread.
pub fn scheduler_new(config: ConfigPtr) -> SchedulerPtr {
    // SAFETY: a plain value.
    unsafe { envoy_dynamic_module_callback_http_filter_config_scheduler_new(config) }
}

/// Schedules `event` on the main thread (callable from any thread).
pub fn scheduler_commit(scheduler: SchedulerPtr, event: u64) {
    // SAFETY: `scheduler` came from `scheduler_new` and is deleted only after every committer
    // stopped (`root.rs`).
    unsafe { envoy_dynamic_module_callback_http_filter_config_scheduler_commit(scheduler, event) }
}

/// Frees a scheduler.
pub fn scheduler_delete(scheduler: SchedulerPtr) {
    // SAFETY: `scheduler` came from `scheduler_new`; no one commits to it any more.
    unsafe { envoy_dynamic_module_callback_http_filter_config_scheduler_delete(scheduler) }
}

/// A call-out's answer as Envoy hands it to the `*_http_callout_done` hooks, copied: its headers
/// and its body (at most `max` bytes of it) and the body's whole length.
///
/// # Safety
/// `headers` must point at `headers_size` headers and `chunks` at `chunks_size` buffers (either
/// may be null), valid for the duration of the call.
pub unsafe fn callout_answer(
    headers: *const EnvoyHeader,
    headers_size: usize,
    chunks: *const EnvoyBuffer,
    chunks_size: usize,
    max: usize,
) -> (Vec<(String, String)>, Vec<u8>, usize) {
    let headers: &[EnvoyHeader] = if headers.is_null() {
        &[]
    } else {
        // SAFETY: the caller promises `headers_size` headers at `headers`.
        unsafe { std::slice::from_raw_parts(headers, headers_size) }
    };
    let chunks: &[EnvoyBuffer] = if chunks.is_null() {
        &[]
    } else {
        // SAFETY: the caller promises `chunks_size` buffers at `chunks`.
        unsafe { std::slice::from_raw_parts(chunks, chunks_size) }
    };
    let pairs = headers
        .iter()
        .map(|h| {
            let key = EnvoyBuffer {
                ptr: h.key_ptr,
                length: h.key_length,
            };
            let value = EnvoyBuffer {
                ptr: h.value_ptr,
                length: h.value_length,
            };
            // SAFETY: the header bytes are valid for the duration of the call.
            let (k, v) = unsafe { (key.as_slice(), value.as_slice()) };
            (
                String::from_utf8_lossy(k).into_owned(),
                String::from_utf8_lossy(v).into_owned(),
            )
        })
        .collect();
    let mut body = Vec::new();
    let mut total = 0usize;
    for chunk in chunks {
        // SAFETY: the body slices are valid for the duration of the call.
        let bytes = unsafe { chunk.as_slice() };
        total = total.saturating_add(bytes.len());
        let room = max.saturating_sub(body.len());
        body.extend_from_slice(bytes.get(..room.min(bytes.len())).unwrap_or(&[]));
    }
    (pairs, body, total)
}
