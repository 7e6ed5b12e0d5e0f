//! Logs, header maps, local replies and call-out answers.

use std::ptr::null_mut;

use super::ffi::*;
use super::types::{module_headers, EnvoyBuffer, EnvoyHeader, ModuleBuffer};
use super::FilterPtr;

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
