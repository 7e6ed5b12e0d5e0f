//! What the filter answers itself, with no backend: `/health`, the models list (`/v1/models`
//! and `/v1/models/{id}`), the admin endpoints, and the OpenAI error a refused request gets.

use super::admission::RequestLine;
use super::front::Front;
use super::target_request;
use crate::auth::{presented_key, ClientKey};
use crate::config::Plan;
use crate::discovery::Listed;
use crate::errors::ApiError;
use crate::host::{Action, Headers, Host};
use crate::{admin, models_list};

/// The content type of every answer the filter gives itself.
pub(super) const JSON: (&str, &str) = ("content-type", "application/json");

/// Refuses the request with `err` in OpenAI's envelope (with `Allow: POST` on a 405, the method
/// of every API a backend serves, and `Retry-After` when the error has a wait).
pub(super) fn reply(host: &mut dyn Host, err: &ApiError) -> Action {
    reply_allowing(host, err, "POST", Front::OpenAi)
}

/// [`reply`] in the error shape of the API the client speaks.
pub(super) fn reply_to(host: &mut dyn Host, err: &ApiError, front: Front) -> Action {
    reply_allowing(host, err, "POST", front)
}

/// [`reply`], with `allow` as the `Allow` header of a 405.
fn reply_allowing(host: &mut dyn Host, err: &ApiError, allow: &str, front: Front) -> Action {
    let mut headers = vec![JSON];
    if err.status == 405 {
        headers.push(("allow", allow));
    }
    let retry_after = err.retry_after.map(|s| s.to_string());
    if let Some(secs) = &retry_after {
        headers.push(("retry-after", secs));
    }
    host.send_response(err.status, &headers, &front.error_body(err));
    Action::Pause
}

/// Answers 200 with a JSON `body`.
pub(super) fn reply_json(host: &mut dyn Host, body: &[u8]) -> Action {
    host.send_response(200, &[JSON], body);
    Action::Pause
}

/// Answers `/health` (a GET or HEAD, no key needed); `None` for any other request.
pub(super) fn health(host: &mut dyn Host, line: &RequestLine) -> Option<Action> {
    (line.path() == "/health" && line.is_get()).then(|| reply_json(host, br#"{"status":"ok"}"#))
}

/// Answers an admin endpoint (admin keys only); `None` for any other path.
pub(super) fn admin(host: &mut dyn Host, plan: &Plan, line: &RequestLine) -> Option<Action> {
    let path = line.path();
    if !admin::PATHS.contains(&path) {
        return None;
    }
    let method = line.method.as_str();
    if !line.is_get() {
        let err = ApiError::method_not_allowed(method, path);
        return Some(reply_allowing(host, &err, "GET", Front::OpenAi));
    }
    if let Err(refused) = admin_key(host, plan) {
        return Some(refused);
    }
    let body = admin::render(path, plan, host);
    Some(reply_json(host, body.to_string().as_bytes()))
}

/// Checks the request's key is an admin key; the refusal sent otherwise (403 when the
/// configuration has no admin keys, 401 for a missing or wrong key).
pub(super) fn admin_key(host: &mut dyn Host, plan: &Plan) -> Result<(), Action> {
    if plan.admin_keys.is_open() {
        let err = ApiError::with_status(
            403,
            "The admin endpoints are off: the configuration has no [[admin_keys]].".into(),
            Some("admin_disabled"),
        );
        return Err(reply(host, &err));
    }
    let authz = host.header(Headers::Request, "authorization");
    let api_key = host.header(Headers::Request, "api-key");
    let x_api_key = host.header(Headers::Request, "x-api-key");
    let presented = presented_key(authz.as_deref(), api_key.as_deref(), x_api_key.as_deref());
    let Some(presented) = presented else {
        return Err(reply(host, &ApiError::missing_key()));
    };
    if plan.admin_keys.find(presented).is_none() {
        return Err(reply(host, &ApiError::invalid_key()));
    }
    Ok(())
}

/// Refuses a request to [`admin::ROUTE_PROBE_PATH`] that is not a `POST`.
pub(super) fn route_probe_method(host: &mut dyn Host, line: &RequestLine) -> Option<Action> {
    (line.method != "POST").then(|| {
        let err = ApiError::method_not_allowed(&line.method, line.path());
        reply_allowing(host, &err, "POST", Front::OpenAi)
    })
}

/// Answers the models list and one model's entry, as the client's `key` may see them; `None`
/// for any other path.
pub(super) fn models(
    host: &mut dyn Host,
    plan: &Plan,
    key: Option<&ClientKey>,
    line: &RequestLine,
) -> Option<Action> {
    let path = line.path();
    let id = if path == "/v1/models" {
        None
    } else {
        Some(path.strip_prefix("/v1/models/")?)
    };
    if !line.is_get() {
        let err = ApiError::method_not_allowed(&line.method, path);
        return Some(reply_allowing(host, &err, "GET", Front::OpenAi));
    }
    let listed = Listed::load(&|k| host.shared_get(k).map(|(v, _)| v), plan, host.now_ms());
    let Some(id) = id else {
        return Some(reply_json(host, &models_list::list(plan, key, &listed)));
    };
    let id = models_list::percent_decode(id).unwrap_or_default();
    if let Err(err) = target_request::check_model_name(&id) {
        return Some(reply(host, &err));
    }
    Some(match models_list::one(plan, key, &id, &listed) {
        Some(body) => reply_json(host, &body),
        None => reply(host, &ApiError::model_not_found(&id)),
    })
}
