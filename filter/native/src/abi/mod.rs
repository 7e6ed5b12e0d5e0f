//! The part of Envoy's dynamic-module ABI (`source/extensions/dynamic_modules/abi/abi.h` of Envoy
//! 1.40.0, ABI version [`ABI_VERSION`]) this module calls, declared by hand, and safe wrappers
//! over each call. Every `unsafe` call into Envoy is here. Envoy's buffers handed back by a
//! callback are valid until the current event hook returns or a setter changes them, so every
//! wrapper copies what it returns, except [`header`], whose borrow is tied to the caller's
//! `&self` (see `host.rs`).
//!
//! `types` holds the ABI's structs, `ffi` the declarations of Envoy's callbacks; the safe
//! wrappers are in `headers` (headers, local replies, logs, call-out answers), `body` and
//! `stream` (metadata, filter state, attributes, routing, counters, call-outs, scheduling).
//!
//! C enums are passed as `u32` (a C `int` on every platform Envoy builds for).

use std::ffi::c_void;

mod body;
mod ffi;
mod headers;
mod stream;
mod types;

pub use body::*;
pub use headers::*;
pub use stream::*;
pub use types::{EnvoyBuffer, EnvoyHeader};

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
pub(super) const CALLOUT_INIT_SUCCESS: u32 = 0;
/// `envoy_dynamic_module_type_metrics_result_Success`.
pub(super) const METRICS_SUCCESS: u32 = 0;
