//! AI Router's Envoy HTTP filter as a dynamic module (`envoy.filters.http.dynamic_modules`):
//! thin glue over `airouter-core`, the same core and `Host` seam as the proxy-wasm build
//! (`filter/wasm`), for Envoy's native module ABI of 1.40 (built as `libairouter_native.so`).
//!
//! - `abi`: the ABI's callbacks this module uses, declared from Envoy's `abi.h`, with safe
//!   wrappers (all the `unsafe` calls into Envoy).
//! - `hooks`: the event hooks Envoy calls, each catching panics.
//! - `config`: a filter configuration (listener or upstream filter), compiled into the core's
//!   plan at load and once per worker thread.
//! - `host`: the core's `Host` over the ABI.
//! - `shared`: data shared by every worker, with proxy-wasm's compare-and-swap semantics.
//! - `root`: the model discovery's timer and fetches, on Envoy's main thread.
//! - `probe` (test-only feature `panic-probe`): a panic on request, for the end-to-end suite.

mod abi;
mod config;
mod hooks;
mod host;
#[cfg(feature = "panic-probe")]
mod probe;
mod root;
mod shared;
