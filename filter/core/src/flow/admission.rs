//! Whether a request is let in, from its headers alone: the client's internal headers removed,
//! its key authenticated and held to its request and token limits, and the request line and
//! declared size checked, before the body is read.

use super::front::Front;
use std::borrow::Cow;

use super::settlement;
use crate::api::Api;
use crate::auth::{presented_key, ClientKey, KnownKeys};
use crate::config::Plan;
use crate::contract::INTERNAL_HEADER_PREFIX;
use crate::errors::ApiError;
use crate::host::{Headers, Host};
use crate::text::concat;
use crate::{limits, metrics, models_list};

/// The request's method, path and query string, as the client sent them.
#[derive(Debug)]
pub(super) struct RequestLine {
    pub method: String,
    /// The `:path` pseudo-header: the path and, after a `?`, the query string.
    target: String,
    /// Where the path ends in `target` (at the `?`, or its length).
    path_end: usize,
}

impl RequestLine {
    pub(super) fn read(host: &dyn Host) -> Self {
        let owned = |v: Option<Cow<'_, str>>| v.map(Cow::into_owned).unwrap_or_default();
        let target = owned(host.header(Headers::Request, ":path"));
        RequestLine {
            method: owned(host.header(Headers::Request, ":method")),
            path_end: target.find('?').unwrap_or(target.len()),
            target,
        }
    }

    /// The path without its query string.
    pub(super) fn path(&self) -> &str {
        self.target.get(..self.path_end).unwrap_or_default()
    }

    /// What follows the `?`, empty when nothing does.
    pub(super) fn query(&self) -> &str {
        self.target.get(self.path_end + 1..).unwrap_or_default()
    }

    /// A GET or a HEAD.
    pub(super) fn is_get(&self) -> bool {
        self.method == "GET" || self.method == "HEAD"
    }
}

/// Only the filter speaks to Envoy's routes, the rate limiter and the sidecar: whatever a client
/// sent under the internal prefix is gone before any of them could read it, whatever happens to
/// the request afterwards.
pub(super) fn remove_internal_headers(host: &mut dyn Host) {
    for name in host.header_names_with_prefix(Headers::Request, INTERNAL_HEADER_PREFIX) {
        host.set_header(Headers::Request, &name, None);
    }
}

/// Checks the client's key: its index in the plan's key ring (`None` when the plan has no
/// keys), or the error the request is refused with.
pub(super) fn authenticate(
    host: &dyn Host,
    plan: &Plan,
    known_keys: &KnownKeys,
) -> Result<Option<usize>, ApiError> {
    if plan.keys.is_open() {
        return Ok(None);
    }
    let authz = host.header(Headers::Request, "authorization");
    let api_key = host.header(Headers::Request, "api-key");
    let x_api_key = host.header(Headers::Request, "x-api-key");
    let Some(presented) = presented_key(authz.as_deref(), api_key.as_deref(), x_api_key.as_deref())
    else {
        return Err(ApiError::missing_key());
    };
    match known_keys.position(&plan.keys, presented) {
        Some(i) => Ok(Some(i)),
        None => Err(ApiError::invalid_key()),
    }
}

/// Counts the request for the key at index `i` and holds it to the key's limits when they are
/// kept here (no `[global_limits]`): its requests per minute (this request counts) and its token
/// budget (checked, not charged).
pub(super) fn check_key_limits(
    host: &mut dyn Host,
    plan: &Plan,
    i: usize,
    key: &ClientKey,
) -> Result<(), ApiError> {
    let name = &key.name;
    metrics::add_at(host, &plan.metric_names.key_requests, i, 1);
    if plan.global_limits.is_some() {
        return Ok(());
    }
    if let Some(rpm) = key.requests_per_minute {
        let limit = limits::RateLimit {
            requests: rpm,
            window_ms: 60_000,
        };
        let now = host.now_ms();
        if let Err(wait) = limits::try_acquire(host, &concat(&["key/", name]), limit, now) {
            return Err(ApiError::key_limited(name, wait));
        }
    }
    settlement::check_budget(host, key)
}

/// Checks a request for a backend before its body is read: the API (by path), the method,
/// the query string and the declared size. The API when the request may go on and wait for its
/// body.
pub(super) fn check_request(
    host: &dyn Host,
    plan: &Plan,
    line: &RequestLine,
    end_of_stream: bool,
) -> Result<Api, ApiError> {
    let (method, path) = (line.method.as_str(), line.path());
    // Anthropic's Messages API (and its token counting) is served as chat: its request goes
    // to Anthropic backends as it came, or is made a chat request (see `front.rs`).
    let api = match Front::of_path(path) {
        Front::OpenAi => Api::from_client_path(path),
        Front::Messages | Front::CountTokens => Some(Api::Chat),
        Front::Unserved => None,
    };
    let Some(api) = api else {
        return Err(ApiError::unknown_url(method, path));
    };
    if method != "POST" {
        return Err(ApiError::method_not_allowed(method, path));
    }
    if query_names_a_model(line.query()) {
        // The query goes to the backend as sent; a server that reads `model` from it would
        // read a name the filter never checked.
        return Err(ApiError::ambiguous_model(
            "the query string has a `model` parameter",
        ));
    }
    if end_of_stream {
        return Err(ApiError::missing_model());
    }
    let limit = plan.listener.max_body_bytes;
    let declared = host
        .header(Headers::Request, "content-length")
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(ApiError::too_large(limit));
    }
    Ok(api)
}

/// Whether a query string has a parameter a server could read as `model`: named so in any
/// case, percent-encoded or not (`Model`, `mod%65l`, `model[]`).
fn query_names_a_model(query: &str) -> bool {
    query.split(['&', ';']).any(|pair| {
        let name = pair.split('=').next().unwrap_or_default();
        let name = models_list::percent_decode(&name.replace('+', " "))
            .unwrap_or_else(|| name.to_string());
        let name = name.trim_end_matches("[]");
        name.trim().eq_ignore_ascii_case("model")
    })
}
