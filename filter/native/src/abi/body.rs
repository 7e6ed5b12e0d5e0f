//! The four bodies of a stream (request and response, received chunk and buffered), read,
//! drained and appended to.

use super::ffi::*;
use super::types::{EnvoyBuffer, ModuleBuffer};
use super::FilterPtr;

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
