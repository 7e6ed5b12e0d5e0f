//! `airouter serve`: the sidecar's HTTP server. Envoy (through the filter) sends it the OpenAI
//! requests of Triton-backed models, with instructions in `x-airouter-*` headers; it answers them
//! in OpenAI's format, speaking KServe v2 gRPC to Triton.

mod chat;
mod embed;

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use airouter_core::api::Api;
use airouter_core::config::{BackendKind, Model, Plan, TritonFamily, TritonModel};
use airouter_core::contract::{
    CLIENT_MODEL_HEADER, SIDECAR_SECRET_HEADER, TRITON_BACKEND_HEADER, TRITON_MODEL_HEADER,
};
use airouter_core::errors::ApiError;
use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::otel;
use crate::templates::ChatTemplate;
use crate::translate::kserve_request;
use crate::translate::openai_response;
use crate::triton::client::TritonBackend;
use crate::triton::trace::TraceContext;

pub type Body = BoxBody<Bytes, Infallible>;

/// Everything a request needs, built once at start-up.
pub struct State {
    pub plan: Plan,
    pub backends: HashMap<String, TritonBackend>,
    /// Compiled chat templates by model index.
    pub templates: HashMap<usize, ChatTemplate>,
    /// What became of the session records, with `[session_log]` (shown by `/health`).
    pub session_log: Option<Arc<crate::session_log::Stats>>,
}

impl State {
    /// Must run inside the Tokio runtime (the gRPC clients are created here, unconnected).
    pub fn build(mut plan: Plan, config_dir: &Path) -> Result<State, String> {
        let mut backends = HashMap::new();
        for b in plan
            .backends
            .iter()
            .filter(|b| b.kind == BackendKind::Triton)
        {
            let timeout = Duration::from_millis(b.connect_timeout_ms);
            let client = TritonBackend::new(&b.name, &b.url.host, b.url.port, timeout)?;
            backends.insert(b.name.clone(), client);
        }
        let templates = compile_templates(&plan, config_dir)?;
        add_eos_stops(&mut plan, &templates);
        Ok(State {
            plan,
            backends,
            templates,
            session_log: None,
        })
    }

    /// Every target on a Triton backend whose model name is configured: the model, its Triton
    /// settings, the backend's name and client, and the Triton model's name. Failover models
    /// count every such target, not only their first.
    fn triton_targets(
        &self,
    ) -> impl Iterator<Item = (&Model, &TritonModel, &str, &TritonBackend, &str)> {
        self.plan.models.iter().flat_map(move |m| {
            m.targets().iter().filter_map(move |t| {
                let settings = m.triton.as_ref()?;
                let backend = self.plan.backends.get(t.backend)?;
                let client = self.backends.get(&backend.name)?;
                Some((
                    m,
                    settings,
                    backend.name.as_str(),
                    client,
                    t.backend_model.as_deref()?,
                ))
            })
        })
    }

    /// Reads each Triton model's configuration once now; a model that cannot work as configured
    /// stops start-up. A Triton server that is down is not fatal: its models are checked on use.
    pub async fn check_models(&self) -> Result<(), String> {
        for (m, t, backend, client, name) in self.triton_targets() {
            match tokio::time::timeout(Duration::from_secs(5), client.model_info(name)).await {
                Ok(Ok(info)) => kserve_request::check(t.family, &info).map_err(|e| {
                    format!(
                        "model `{}` (Triton model `{name}` on `{}`) cannot be served as `{}`: {}",
                        m.name,
                        backend,
                        t.family.config_name(),
                        e.0
                    )
                })?,
                Ok(Err(status)) => {
                    tracing::warn!(model = %m.name, "Triton model not checked at start-up: {}", status.message())
                }
                Err(_) => {
                    tracing::warn!(model = %m.name, "Triton did not answer at start-up; checking on first use")
                }
            }
        }
        Ok(())
    }
}

/// Compiles (and test-renders) every Triton model's chat template, by model index.
pub fn compile_templates(
    plan: &Plan,
    config_dir: &Path,
) -> Result<HashMap<usize, ChatTemplate>, String> {
    let mut templates = HashMap::new();
    for (i, m) in plan.models.iter().enumerate() {
        let Some(t) = &m.triton else { continue };
        let loaded =
            ChatTemplate::load(t, config_dir).map_err(|e| format!("model `{}`: {e}", m.name))?;
        if let Some(tmpl) = loaded {
            templates.insert(i, tmpl);
        }
    }
    Ok(templates)
}

/// Completes each model's stop strings with its template's `eos_token` where they were not
/// configured: a GGUF file's is known only now that the file is read (for the other sources it
/// is already among them).
pub fn add_eos_stops(plan: &mut Plan, templates: &HashMap<usize, ChatTemplate>) {
    for (i, template) in templates {
        let eos = template.eos_token();
        let Some(t) = plan.models.get_mut(*i).and_then(|m| m.triton.as_mut()) else {
            continue;
        };
        if t.eos_stops && !eos.is_empty() && !t.stop_strings.iter().any(|s| s == eos) {
            t.stop_strings.push(eos.to_string());
        }
    }
}

/// A JSON response carrying an OpenAI object.
pub fn json_response(status: u16, body: &serde_json::Value) -> Response<Body> {
    bytes_response(status, openai_response::json_body(body))
}

fn bytes_response(status: u16, body: Bytes) -> Response<Body> {
    let mut resp = Response::new(Full::new(body).boxed());
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    resp
}

/// An error response: the error's status and OpenAI's error envelope.
pub fn error_response(err: &ApiError) -> Response<Body> {
    bytes_response(err.status, openai_response::error_body(err))
}

/// Accepts connections until the process is stopped.
pub async fn serve(state: Arc<State>, listener: TcpListener) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(conn) => conn,
            Err(e) => {
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let state = Arc::clone(&state);
        tokio::spawn(async move {
            let svc = service_fn(move |req| handle(Arc::clone(&state), peer, req));
            if let Err(e) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await
            {
                tracing::debug!("connection from {peer} ended: {e}");
            }
        });
    }
}

fn header<'r>(req: &'r Request<Incoming>, name: &str) -> Option<&'r str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn handle(
    state: Arc<State>,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    if req.method() == Method::GET && req.uri().path() == "/health" {
        return Ok(health(&state).await);
    }
    // Only Envoy may instruct the sidecar: a shared secret when configured, else loopback peers.
    let trusted = match state.plan.sidecar.as_ref().and_then(|s| s.secret.as_ref()) {
        Some(secret) => header(&req, SIDECAR_SECRET_HEADER)
            .is_some_and(|v| constant_time_eq(v.as_bytes(), secret.expose().as_bytes())),
        None => peer.ip().is_loopback(),
    };
    if !trusted {
        let err = ApiError::with_status(
            403,
            "This endpoint only serves the AI Router Envoy filter.".into(),
            Some("forbidden"),
        );
        return Ok(error_response(&err));
    }
    Ok(route(&state, req)
        .await
        .unwrap_or_else(|e| error_response(&e)))
}

/// Liveness, plus each Triton server's `ServerReady` and each Triton model's `ModelReady`, and
/// with `[session_log]` what became of the records (written, dropped, failed, ...).
async fn health(state: &State) -> Response<Body> {
    let wait = Duration::from_secs(2);
    let mut backends = serde_json::Map::new();
    for (name, b) in &state.backends {
        let ready = tokio::time::timeout(wait, b.server_ready())
            .await
            .unwrap_or(false);
        backends.insert(
            name.clone(),
            serde_json::json!(if ready { "ready" } else { "unavailable" }),
        );
    }
    let mut models = serde_json::Map::new();
    for (m, _, _, client, name) in state.triton_targets() {
        let ready = tokio::time::timeout(wait, client.model_ready(name))
            .await
            .unwrap_or(false);
        models.insert(
            m.name.clone(),
            serde_json::json!(if ready { "ready" } else { "unavailable" }),
        );
    }
    let mut body = serde_json::json!({ "status": "ok", "backends": backends, "models": models });
    if let Some(stats) = &state.session_log {
        body["session_log"] = serde_json::json!(stats.counts());
    }
    json_response(200, &body)
}

async fn route(state: &State, req: Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let path = req.uri().path().to_string();
    let api = Api::from_client_path(&path)
        .ok_or_else(|| ApiError::unknown_url(req.method().as_str(), &path))?;
    if req.method() != Method::POST {
        return Err(ApiError::method_not_allowed(req.method().as_str(), &path));
    }
    let instructed = |name: &str| {
        header(&req, name).map(str::to_string).ok_or_else(|| {
            ApiError::internal(&format!(
                "the sidecar needs the {name} header from the filter"
            ))
        })
    };
    let backend_name = instructed(TRITON_BACKEND_HEADER)?;
    let triton_model = instructed(TRITON_MODEL_HEADER)?;
    let client_model = instructed(CLIENT_MODEL_HEADER)?;
    let mut trace = TraceContext {
        request_id: header(&req, "x-request-id").unwrap_or_default().to_string(),
        traceparent: header(&req, "traceparent").map(str::to_string),
        tracestate: header(&req, "tracestate").map(str::to_string),
    };
    // With `[tracing]`, the sidecar's span continues Envoy's and is Triton's parent.
    let span = otel::request_span(req.headers(), api, &client_model, &backend_name);
    if let Some(span) = &span {
        (trace.traceparent, trace.tracestate) = span.context_headers();
    }
    let instructions = Instructions {
        api,
        backend_name,
        triton_model,
        client_model,
        trace,
    };
    let answered = serve_target(state, req, instructions).await;
    let Some(span) = span else {
        return answered;
    };
    match answered {
        Ok(response) => {
            span.answered(response.status().as_u16());
            Ok(span.hold(response))
        }
        Err(err) => {
            span.answered(err.status);
            Err(err)
        }
    }
}

/// What the filter told the sidecar about a request, checked to name a Triton target.
struct Instructions {
    api: Api,
    backend_name: String,
    triton_model: String,
    client_model: String,
    trace: TraceContext,
}

async fn serve_target(
    state: &State,
    req: Request<Incoming>,
    instructions: Instructions,
) -> Result<Response<Body>, ApiError> {
    let Instructions {
        api,
        backend_name,
        triton_model,
        client_model,
        trace,
    } = instructions;
    let target = state
        .plan
        .resolve(api, &client_model)
        .ok_or_else(|| ApiError::model_not_found(&client_model))?;
    // The instruction must name one of the model's targets (a failover attempt may be any).
    let instructed_target = target.model.targets().iter().any(|t| {
        let backend = state.plan.backends.get(t.backend);
        backend.is_some_and(|b| b.name == backend_name)
            && Model::name_at(t, &client_model) == triton_model
    });
    if !instructed_target {
        return Err(ApiError::internal(
            "the filter and the sidecar run different configurations",
        ));
    }
    let triton = target
        .model
        .triton
        .as_ref()
        .ok_or_else(|| ApiError::internal("model has no Triton settings"))?;
    let backend = state
        .backends
        .get(&backend_name)
        .ok_or_else(|| ApiError::internal("unknown Triton backend"))?;
    let limit = state.plan.listener.max_body_bytes as usize;
    let body = Limited::new(req.into_body(), limit)
        .collect()
        .await
        .map_err(|_| ApiError::too_large(limit as u64))?
        .to_bytes();
    let json: serde_json::Value =
        serde_json::from_slice(&body).map_err(|_| ApiError::bad_json())?;
    let model_index = target.index;
    match (triton.family, api) {
        (TritonFamily::Embeddings, Api::Embeddings) => {
            embed::handle(backend, &triton_model, &client_model, &json, &trace).await
        }
        (TritonFamily::Embeddings, _) | (_, Api::Embeddings) => {
            Err(ApiError::model_not_found(&client_model))
        }
        (_, Api::Chat | Api::Completions) => {
            let job = chat::Job {
                backend,
                triton,
                template: state.templates.get(&model_index),
                triton_model: &triton_model,
                client_model: &client_model,
                chat: api == Api::Chat,
                trace,
            };
            chat::handle(job, &json).await
        }
        _ => Err(ApiError::model_not_found(&client_model)),
    }
}
