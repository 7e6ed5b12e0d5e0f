//! A filter configuration's hooks: made and destroyed on Envoy's main thread, and the model
//! discovery's ticks and fetches there.

use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::null;

use super::{answer, log_panic};
use crate::abi::{self, ConfigPtr, EnvoyBuffer, EnvoyHeader};
use crate::config::FilterConfig;

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
