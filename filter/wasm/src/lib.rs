//! AI Router's Envoy HTTP filter: proxy-wasm glue over `airouter-core`.
//!
//! The root context compiles the plugin configuration (the `airouter.toml` text) into a plan once;
//! each HTTP context forwards Envoy's callbacks to an [`HttpFlow`] (or, as a failover cluster's
//! upstream filter, an [`UpstreamFlow`]) through `EnvoyHost`, proxy-wasm's side of the core's
//! `Host` seam. The listener's root context also runs the model discovery's timer and call-outs
//! ([`Discoverer`]) through `EnvoyRoot`, the `RootHost` seam. Each context's callbacks keep
//! proxy-wasm's names on both sides.

mod abi;
mod envoy_host;
pub mod header_snapshot;
mod root_host;

use std::rc::Rc;

use airouter_core::auth::KnownKeys;
use airouter_core::config::{compile_in_envoy, Plan};
use airouter_core::contract::UPSTREAM_ROOT_ID;
use airouter_core::discovery::{self, Discoverer};
use airouter_core::flow::HttpFlow;
use airouter_core::flow::UpstreamFlow;
use airouter_core::host::Action as CoreAction;
use airouter_core::host::{CallResponse, Headers, CALL_RESPONSE_MAX_BYTES};
use envoy_host::{EnvoyHost, HeaderCache};
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, ContextType, LogLevel};
use root_host::EnvoyRoot;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    std::panic::set_hook(Box::new(|info| {
        abi::log(abi::LOG_ERROR, &format!("panic: {info}"));
    }));
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root::default()) });
}}

/// The plugin's root context (one per plugin instance and worker, `contract::ROOT_ID` or
/// [`UPSTREAM_ROOT_ID`]): it compiles the configuration into a plan and creates a context per
/// request; the listener's also discovers the backends' models on a timer.
#[derive(Default)]
struct Root {
    plan: Option<Rc<Plan>>,
    /// Client keys matched so far under this plan.
    known_keys: Rc<KnownKeys>,
    /// Running as the per-attempt upstream filter rather than the listener's filter.
    upstream: bool,
    /// This worker's model discovery (its fetches in flight).
    discoverer: Discoverer,
    /// The discovery timer is set.
    ticking: bool,
}

impl Context for Root {
    /// A fetch of a backend's models has answered (or failed: no headers).
    fn on_http_call_response(
        &mut self,
        token_id: u32,
        _num_headers: usize,
        body_size: usize,
        _num_trailers: usize,
    ) {
        let Some(plan) = &self.plan else {
            return;
        };
        let response = call_response(body_size);
        self.discoverer
            .on_response(&mut EnvoyRoot::default(), plan, token_id, &response);
    }
}

impl Root {
    /// Sets the discovery timer to `tick` ms, or stops it (`None`) when a former plan set it.
    fn set_timer(&mut self, tick: Option<u64>) {
        if tick.is_none() && !self.ticking {
            return;
        }
        let period = tick.map_or(0, |ms| u32::try_from(ms).unwrap_or(u32::MAX));
        if !abi::set_tick_period(period) && period != 0 {
            abi::log(abi::LOG_WARN, "could not start the model discovery timer");
        }
        self.ticking = tick.is_some();
    }
}

/// The file name operators know the configuration by: the plugin's name when set, else a label.
fn source_name() -> String {
    proxy_wasm::hostcalls::get_property(vec!["plugin_name"])
        .ok()
        .flatten()
        .and_then(|b| String::from_utf8(b).ok())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "plugin configuration".to_string())
}

impl RootContext for Root {
    fn on_configure(&mut self, size: usize) -> bool {
        self.upstream = proxy_wasm::hostcalls::get_property(vec!["plugin_root_id"])
            .ok()
            .flatten()
            .is_some_and(|id| id == UPSTREAM_ROOT_ID.as_bytes());
        let raw = match proxy_wasm::hostcalls::get_buffer(BufferType::PluginConfiguration, 0, size)
        {
            Ok(Some(bytes)) => bytes,
            _ => Vec::new(),
        };
        let file = source_name();
        let Ok(text) = String::from_utf8(raw) else {
            abi::log(
                abi::LOG_ERROR,
                &format!("{file}: the configuration is not UTF-8"),
            );
            return false;
        };
        match compile_in_envoy(&file, &text, &|name| std::env::var(name).ok()) {
            Ok(plan) if !plan.missing_env.is_empty() => {
                if let Some(message) = plan.missing_env_error(&file) {
                    abi::log(abi::LOG_ERROR, &message);
                }
                false
            }
            Ok(plan) => {
                // Define every counter now, so the stats exist (at 0) before any request.
                for name in airouter_core::metrics::all(&plan.metric_names) {
                    envoy_host::counter_id(&name);
                }
                self.set_timer(discovery::tick_ms(&plan).filter(|_| !self.upstream));
                self.plan = Some(Rc::new(plan));
                self.known_keys = Rc::default();
                true
            }
            Err(errors) => {
                for e in errors.0 {
                    abi::log(abi::LOG_ERROR, &format!("{e}"));
                }
                false
            }
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        let plan = self.plan.clone()?;
        if self.upstream {
            return Some(Box::new(UpstreamFlowContext {
                flow: UpstreamFlow::new(plan),
                headers: HeaderCache::default(),
            }));
        }
        Some(Box::new(HttpFlowContext {
            flow: HttpFlow::with_known_keys(plan, Rc::clone(&self.known_keys)),
            headers: HeaderCache::default(),
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    /// The model discovery's timer: fetches that are due are sent.
    fn on_tick(&mut self) {
        if let Some(plan) = &self.plan {
            self.discoverer.on_tick(&mut EnvoyRoot::default(), plan);
        }
    }
}

/// One request through the listener's filter: proxy-wasm's context for an [`HttpFlow`].
struct HttpFlowContext {
    flow: HttpFlow,
    headers: HeaderCache,
}

impl Context for HttpFlowContext {
    /// A call-out the flow sent while holding the request has answered (or failed: no headers).
    fn on_http_call_response(
        &mut self,
        token_id: u32,
        _num_headers: usize,
        body_size: usize,
        _num_trailers: usize,
    ) {
        let response = call_response(body_size);
        let mut host = EnvoyHost::new(&mut self.headers);
        self.flow
            .on_http_call_response(&mut host, token_id, response);
    }
}

/// The answer of a call-out, as Envoy holds it during its callback: at most
/// [`CALL_RESPONSE_MAX_BYTES`] of the body, and no status when there was no response.
fn call_response(body_size: usize) -> CallResponse {
    let headers = abi::header_pairs(abi::CALL_RESPONSE_HEADERS)
        .and_then(|wire| header_snapshot::decode_pairs(&wire))
        .unwrap_or_default();
    let status = headers
        .iter()
        .find(|(k, _)| k == ":status")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let take = body_size.min(CALL_RESPONSE_MAX_BYTES);
    let body = abi::buffer(abi::CALL_RESPONSE_BODY, 0, take).unwrap_or_default();
    CallResponse {
        status,
        headers,
        body,
        body_len: body_size,
    }
}

fn action(a: CoreAction) -> Action {
    match a {
        CoreAction::Continue => Action::Continue,
        CoreAction::Pause => Action::Pause,
    }
}

impl HttpContext for HttpFlowContext {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        self.headers.load(Headers::Request);
        let mut host = EnvoyHost::new(&mut self.headers);
        action(self.flow.on_request_headers(&mut host, end_of_stream))
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let mut host = EnvoyHost::new(&mut self.headers);
        action(
            self.flow
                .on_request_body(&mut host, body_size, end_of_stream),
        )
    }

    /// Without this callback Envoy would let a request whose body ends in trailers go on
    /// unrouted (HTTP/2 and chunked HTTP/1.1 can send them): they end the body stage.
    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        let mut host = EnvoyHost::new(&mut self.headers);
        action(self.flow.on_request_trailers(&mut host))
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        self.headers.load(Headers::Response);
        let mut host = EnvoyHost::new(&mut self.headers);
        action(self.flow.on_response_headers(&mut host, end_of_stream))
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let mut host = EnvoyHost::new(&mut self.headers);
        action(
            self.flow
                .on_response_body(&mut host, body_size, end_of_stream),
        )
    }

    /// The stream is over, also when the client left before the end: usage not yet charged is,
    /// and the session record (with the status the client got) goes to Envoy's access log.
    fn on_log(&mut self) {
        if self.flow.records_session() {
            // The final response headers: the filter's own replies, Envoy's, or the backend's
            // as edited, which the copy from the response-headers callback may not be.
            self.headers.load(Headers::Response);
        }
        let mut host = EnvoyHost::new(&mut self.headers);
        self.flow.on_log(&mut host);
    }
}

/// One attempt of a failover request, as an upstream filter: proxy-wasm's context for an
/// [`UpstreamFlow`].
struct UpstreamFlowContext {
    flow: UpstreamFlow,
    headers: HeaderCache,
}

impl Context for UpstreamFlowContext {}

impl HttpContext for UpstreamFlowContext {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        self.headers.load(Headers::Request);
        let mut host = EnvoyHost::new(&mut self.headers);
        action(self.flow.on_request_headers(&mut host, end_of_stream))
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let mut host = EnvoyHost::new(&mut self.headers);
        action(
            self.flow
                .on_request_body(&mut host, body_size, end_of_stream),
        )
    }

    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        let mut host = EnvoyHost::new(&mut self.headers);
        action(self.flow.on_request_trailers(&mut host))
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        self.headers.load(Headers::Response);
        let mut host = EnvoyHost::new(&mut self.headers);
        action(self.flow.on_response_headers(&mut host, end_of_stream))
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let mut host = EnvoyHost::new(&mut self.headers);
        action(
            self.flow
                .on_response_body(&mut host, body_size, end_of_stream),
        )
    }
}
