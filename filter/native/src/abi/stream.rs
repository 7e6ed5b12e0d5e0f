//! What else a filter asks of its stream and configuration: metadata, filter state, attributes,
//! the route cache, resuming, counters, call-outs and the main thread's scheduler.

use std::ptr::null_mut;

use super::ffi::*;
use super::types::{module_headers, EnvoyBuffer, ModuleBuffer};
use super::{ConfigPtr, FilterPtr, SchedulerPtr, CALLOUT_INIT_SUCCESS, METRICS_SUCCESS};

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

/// Defines a histogram whose series are told apart by `labels` (at configuration time only, as
/// counters); its id. Envoy names a series `NAMESPACE.NAME.LABEL.VALUE...`, labels in this order,
/// and tags it with each label.
pub fn define_histogram(config: ConfigPtr, name: &str, labels: &[&str]) -> Option<usize> {
    let mut names: Vec<ModuleBuffer> = labels
        .iter()
        .map(|l| ModuleBuffer::of(l.as_bytes()))
        .collect();
    let mut id = 0usize;
    // SAFETY: the name and label names are live strings for the duration of the call; the
    // out-pointer is a valid local.
    let result = unsafe {
        envoy_dynamic_module_callback_http_filter_config_define_histogram(
            config,
            ModuleBuffer::of(name.as_bytes()),
            names.as_mut_ptr(),
            names.len(),
            &mut id,
        )
    };
    (result == METRICS_SUCCESS).then_some(id)
}

/// Records `value` in the series of histogram `id` with these label values (one per label the
/// histogram was defined with, in order); `false` when Envoy refused.
pub fn record_histogram(filter: FilterPtr, id: usize, values: &[&str], value: u64) -> bool {
    let mut values: Vec<ModuleBuffer> = values
        .iter()
        .map(|v| ModuleBuffer::of(v.as_bytes()))
        .collect();
    // SAFETY: the label values are live strings for the duration of the call.
    let result = unsafe {
        envoy_dynamic_module_callback_http_filter_record_histogram_value(
            filter,
            id,
            values.as_mut_ptr(),
            values.len(),
            value,
        )
    };
    result == METRICS_SUCCESS
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
