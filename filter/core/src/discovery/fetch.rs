//! The call-out asking a backend for its models: `GET {path prefix}/models` on the backend's
//! cluster, with its `:authority` and its own credential, the way its kind wants it. The one
//! place a backend's kind decides how its list is asked for ([`lists_models`], [`send`]).

use crate::config::{Backend, BackendKind, Credential};
use crate::host::{CallOut, RootHost};
use crate::text::concat;

/// How a backend's model list is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dialect {
    /// OpenAI's `GET /v1/models` with `Authorization: Bearer`.
    OpenAi,
    /// Anthropic's `GET /v1/models?limit=1000` with `x-api-key` and `anthropic-version` (its
    /// answer is read by the same parser).
    Anthropic,
}

/// The dialect of a backend kind's list; `None` when the filter reads no list from it.
fn dialect(kind: BackendKind) -> Option<Dialect> {
    match kind {
        BackendKind::Openai => Some(Dialect::OpenAi),
        BackendKind::Anthropic => Some(Dialect::Anthropic),
        // Reached through the sidecar, which serves no model list.
        BackendKind::Triton => None,
    }
}

/// Whether the filter can ask a backend of `kind` for its models.
pub fn lists_models(kind: BackendKind) -> bool {
    dialect(kind).is_some()
}

/// Sends the request for `backend`'s models with a deadline of `timeout_ms`: its token, or
/// `None` when the backend's kind lists none or the host refused the call.
pub fn send(host: &mut dyn RootHost, backend: &Backend, timeout_ms: u64) -> Option<u32> {
    let dialect = dialect(backend.kind)?;
    let path = match dialect {
        Dialect::OpenAi => concat(&[backend.url.path_prefix.as_str(), "/models"]),
        Dialect::Anthropic => concat(&[backend.url.path_prefix.as_str(), "/models?limit=1000"]),
    };
    let credential = match (&backend.credential, dialect) {
        (Credential::Key(secret), Dialect::OpenAi) => {
            Some(("authorization", concat(&["Bearer ", secret.expose()])))
        }
        (Credential::Key(secret), Dialect::Anthropic) => {
            Some(("x-api-key", secret.expose().to_string()))
        }
        // A call-out is the router's own: no client key is ever sent on it.
        (Credential::PassThrough | Credential::None, _) => None,
    };
    let mut headers: Vec<(&str, &str)> = vec![
        (":method", "GET"),
        (":path", &path),
        (":authority", &backend.url.authority),
        ("accept", "application/json"),
    ];
    if let Some((name, value)) = &credential {
        headers.push((name, value));
    }
    let version = backend.anthropic.as_ref().map(|a| a.version.as_str());
    if let (Dialect::Anthropic, Some(version)) = (dialect, version) {
        headers.push((
            crate::flow::target_request::ANTHROPIC_VERSION_HEADER,
            version,
        ));
    }
    let cluster = backend.cluster_name();
    host.http_call(&CallOut {
        cluster: &cluster,
        headers: &headers,
        body: &[],
        timeout_ms: u32::try_from(timeout_ms).unwrap_or(u32::MAX),
    })
}
