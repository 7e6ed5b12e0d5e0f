//! A routed request's response, at its headers: Envoy's own answers (its rate limiter's refusals,
//! its upstream failures) and a backend's 429s and 5xx told apart, backend-naming headers
//! removed, and how the body will be rewritten chosen from its status and type; or, when no
//! body follows an error, the filter's own answer in the backend's place. The body itself is
//! rewritten in `response_body.rs`.

use std::borrow::Cow;

use super::dialect::Answer;
use super::front::Front;
use super::local::JSON;
use super::routing::Routed;
use super::targets;
use crate::backend_errors;
use crate::config::{BackendKind, Credential, Plan};
use crate::errors::ApiError;
use crate::host::{Action, Headers, Host};
use crate::session::Transcript;
use crate::sse::SseModelRewriter;
use crate::text::concat;
use crate::{admin, metrics, response_headers};

/// How the response body is rewritten.
#[derive(Debug)]
pub(super) enum ResponseMode {
    /// Bytes the router does not change (audio, images as bytes, unrouted requests).
    Untouched,
    /// A JSON body, buffered and rewritten whole.
    Json,
    /// Another textual body (`text/plain`, XML, no type at all), buffered and renamed whole.
    Text,
    /// An SSE stream, rewritten event by event as it arrives.
    Sse(SseModelRewriter),
    /// A backend's error body (with its status), put into the OpenAI envelope.
    BackendError(u16),
    /// Envoy answered for the upstream (connection failure, timeout): replaced with our error.
    Replaced(ApiError),
}

/// The response's state.
#[derive(Debug)]
pub(super) struct Response {
    pub(super) mode: ResponseMode,
    /// The response was a success (2xx), so it is charged even when it reports no usage.
    pub(super) succeeded: bool,
    /// The filter answered in the backend's place (a bodiless error); its own reply passes.
    answered: bool,
    /// Response headers came (the backend's, or Envoy's own answer): without them at the end
    /// of the stream, the client left while the backend was still at work.
    pub(super) started: bool,
    /// What the response said, for the session record: read from a JSON body here, handed to
    /// the rewriter of a stream (see [`Response::transcript`]).
    pub(super) transcript: Option<Transcript>,
    /// A single-target request to a backend speaking another API: how its answer is made
    /// OpenAI's before it is rewritten (see `dialect.rs`).
    pub(super) dialect: Option<Answer>,
    /// The API the client speaks: the filter's own answers are in its error shape.
    pub(super) front: Front,
}

impl Default for Response {
    fn default() -> Self {
        Response {
            dialect: None,
            front: Front::OpenAi,
            mode: ResponseMode::Untouched,
            succeeded: false,
            answered: false,
            started: false,
            transcript: None,
        }
    }
}

impl Response {
    /// The response headers of the request `routed` describes: whether they wait for the body.
    pub(super) fn on_headers(
        &mut self,
        host: &mut dyn Host,
        plan: &Plan,
        routed: &Routed,
        end_of_stream: bool,
    ) -> Action {
        if self.answered {
            // The filter's own reply in the backend's place, should Envoy run it through here.
            return Action::Continue;
        }
        self.started = true;
        let speaks_anthropic = routed
            .single_backend
            .as_ref()
            .and_then(|(i, _)| plan.backends.get(*i))
            .is_some_and(|b| b.kind == BackendKind::Anthropic);
        if speaks_anthropic {
            // The backend was asked for usage when the client asked or its key has a budget.
            let usage_chunk = routed.stream_estimate.is_some();
            let direct = routed.direct;
            self.dialect = Some(Answer::at_headers(host, end_of_stream, usage_chunk, direct));
        }
        let resp = Headers::Response;
        let status = host
            .header(resp, ":status")
            .and_then(|s| s.parse::<u16>().ok())
            .unwrap_or(0);
        self.succeeded = (200..300).contains(&status);
        // Envoy's own answers (rate limiter refusals, upstream failures) are all errors, so a
        // success needs no look at how it came about.
        let details = if status >= 400 {
            host.property(&["response", "code_details"])
                .unwrap_or_default()
        } else {
            String::new()
        };
        if details == backend_errors::RATE_LIMITED {
            // Envoy's rate limit filter answered with the limiter's own OpenAI-format body; no
            // backend was involved, so nothing cools down and nothing needs renaming.
            response_headers::apply(host);
            self.mode = ResponseMode::Untouched;
            return Action::Continue;
        }
        if let Some((backend, target_key)) = &routed.single_backend {
            if status == 429 {
                let max_ms = plan.backends.get(*backend).map_or(0, |b| b.max_cooldown_ms);
                targets::start_cooldown(host, target_key, max_ms);
            }
            if status >= 500 {
                metrics::add_at(host, &plan.metric_names.backend_errors, *backend, 1);
            }
        }
        // What names a backend (its headers) goes before the body is looked at; the retry hints
        // were read for the cool-down above.
        response_headers::apply(host);
        let local = backend_errors::local_failure(status, &details);
        if let (Some(err), Some((i, _))) = (&local, &routed.single_backend) {
            if let Some(backend) = plan
                .backends
                .get(*i)
                .filter(|_| err.status == 502 || err.status == 504)
            {
                admin::record_failure(host, &backend.name);
            }
        }
        // No OpenAI API redirects: a backend that does is misconfigured (its URL), and its
        // Location and body name where it lives. The client gets a gateway error instead.
        let local = local.or_else(|| {
            (300..400).contains(&status).then(|| {
                let message = concat(&[
                    "The backend answered with a redirect (HTTP ",
                    &status.to_string(),
                    "), which the router does not follow.",
                ]);
                ApiError::with_status(502, message, Some("backend_redirect"))
            })
        });
        // A backend refusing the router's own key is the operator's to fix, not the client's (whose
        // key was accepted): its 401, whose message may echo the key it was sent, becomes a 502.
        let local = local.or_else(|| {
            (status == 401 && !sends_client_key(plan, routed))
                .then(ApiError::backend_credentials_refused)
        });
        if end_of_stream && (local.is_some() || status >= 400) {
            // Nothing follows to put the OpenAI error into: the filter answers instead.
            return self.answer_bodiless(host, routed, status, local);
        }
        self.mode = mode_for(host, plan, routed, status, local, end_of_stream);
        if let ResponseMode::Sse(rewriter) = &mut self.mode {
            if let Some(t) = self.transcript.take() {
                rewriter.transcribe(t);
            }
        }
        match self.mode {
            ResponseMode::Untouched => Action::Continue,
            ResponseMode::Replaced(_) | ResponseMode::BackendError(_) => {
                host.set_header(resp, "content-type", Some("application/json"));
                host.set_header(resp, "content-encoding", None);
                // Held until the body is complete, so they go out with its exact length (a
                // bodiless one was answered above).
                Action::Pause
            }
            // Never at the end of the stream: a bodiless success is left untouched above.
            ResponseMode::Json | ResponseMode::Text => Action::Pause,
            ResponseMode::Sse(_) => {
                host.set_header(resp, "content-length", None);
                Action::Continue
            }
        }
    }

    /// What the response said, for the session record (a stream's, or a JSON body's).
    pub(super) fn transcript(&self) -> Option<&Transcript> {
        match &self.mode {
            ResponseMode::Sse(rewriter) => rewriter.transcript(),
            _ => self.transcript.as_ref(),
        }
    }

    /// The response is a stream that has sent its `[DONE]`.
    pub(super) fn stream_done(&self) -> bool {
        matches!(&self.mode, ResponseMode::Sse(rewriter) if rewriter.saw_done())
    }

    /// The response is a stream.
    pub(super) fn is_stream(&self) -> bool {
        matches!(self.mode, ResponseMode::Sse(_))
    }

    /// Whether the filter answered in the backend's place (its reply is already in the client's
    /// shape).
    pub(super) fn answered_itself(&self) -> bool {
        self.answered
    }

    /// A stream's estimated tokens, when its backend reported none.
    pub(super) fn estimated_tokens(&self) -> Option<u64> {
        match &self.mode {
            ResponseMode::Sse(rewriter) => rewriter.estimated_tokens(),
            _ => None,
        }
    }

    /// Answers the client in the backend's place: the backend's answer had no body to put an
    /// OpenAI error into (a bodiless error or redirect), so the filter's own reply replaces it,
    /// with the backend's retry hint when it gave a valid one (the allow-list kept only those).
    fn answer_bodiless(
        &mut self,
        host: &mut dyn Host,
        routed: &Routed,
        status: u16,
        err: Option<ApiError>,
    ) -> Action {
        let body = match &err {
            Some(err) => err.body(),
            None => {
                let names: Vec<&str> = routed.backend_models.iter().map(String::as_str).collect();
                backend_errors::wrap(status, b"", &names, &routed.client_name)
            }
        };
        let status = err.as_ref().map_or(status, |e| e.status);
        let body = match self.front {
            Front::OpenAi => body,
            _ => crate::anthropic::front::anthropic_error(status, &body).1,
        };
        let retry_after = host
            .header(Headers::Response, "retry-after")
            .map(Cow::into_owned);
        let mut headers = vec![JSON];
        if let Some(secs) = retry_after.as_deref() {
            headers.push(("retry-after", secs));
        }
        self.answered = true;
        self.mode = ResponseMode::Untouched;
        host.send_response(status, &headers, &body);
        Action::Pause
    }
}

/// Whether the request's backend (or one of its failover's) is sent the client's own key, so
/// that a 401 from it is the client's.
fn sends_client_key(plan: &Plan, routed: &Routed) -> bool {
    let passes = |i: usize| {
        plan.backends
            .get(i)
            .is_some_and(|b| b.credential == Credential::PassThrough)
    };
    match &routed.single_backend {
        Some((i, _)) => passes(*i),
        None => plan
            .models
            .get(routed.model)
            .is_some_and(|m| m.targets().iter().any(|t| passes(t.backend))),
    }
}

/// How a response with a body (or a success without one) is rewritten, from its `status`, the
/// filter's own error for it (`local`) and its headers' type and encoding.
fn mode_for(
    host: &mut dyn Host,
    plan: &Plan,
    routed: &Routed,
    status: u16,
    local: Option<ApiError>,
    end_of_stream: bool,
) -> ResponseMode {
    let resp = Headers::Response;
    let ctype = host
        .header(resp, "content-type")
        .unwrap_or_default()
        .to_ascii_lowercase();
    let encoded = host
        .header(resp, "content-encoding")
        .is_some_and(|e| !e.trim().eq_ignore_ascii_case("identity"));
    let body_kind = BodyKind::of(&ctype);
    if let Some(err) = local {
        host.set_header(resp, ":status", Some(&err.status.to_string()));
        ResponseMode::Replaced(err)
    } else if end_of_stream {
        // No body will follow, so there is nothing to rewrite (and none can be added).
        ResponseMode::Untouched
    } else if status >= 400 && encoded {
        // An error body the filter cannot read is not passed on: its status is.
        let message = concat(&["The backend answered HTTP ", &status.to_string(), "."]);
        ResponseMode::Replaced(ApiError::with_status(status, message, None))
    } else if status >= 400 {
        ResponseMode::BackendError(status)
    } else if encoded && body_kind.is_renamed() {
        // The request asked for identity encoding. Compressed text would pass unread, so a
        // backend could keep its names in an answer by compressing it (or by only saying so):
        // not passed on.
        let err = ApiError::with_status(
            502,
            "The backend compressed its answer, which the router asked it not to.".into(),
            Some("bad_backend_response"),
        );
        host.set_header(resp, ":status", Some("502"));
        ResponseMode::Replaced(err)
    } else if encoded || body_kind == BodyKind::Opaque {
        // Compressed media, or a type the filter cannot read: its bytes are passed on
        // unrenamed, and counted so that operators see it.
        let names = &plan.metric_names.model_unrenamed;
        metrics::add_at(host, names, routed.model, 1);
        host.log_warn("a backend's response body cannot be renamed (compressed or of an unknown type); it is passed on as it is");
        ResponseMode::Untouched
    } else {
        match body_kind {
            BodyKind::EventStream if routed.expects_whole => {
                // The client reads a JSON body; an event stream would pass as a success it
                // cannot parse.
                let err = ApiError::with_status(
                    502,
                    "The backend streamed its answer, which the request did not ask for.".into(),
                    Some("bad_backend_response"),
                );
                host.set_header(resp, ":status", Some("502"));
                ResponseMode::Replaced(err)
            }
            BodyKind::Json if routed.expects_stream => {
                // The client reads an event stream; a whole body would pass as an empty one.
                let err = ApiError::with_status(
                    502,
                    "The backend answered whole, where the request asked for a stream.".into(),
                    Some("bad_backend_response"),
                );
                host.set_header(resp, ":status", Some("502"));
                ResponseMode::Replaced(err)
            }
            BodyKind::EventStream => {
                let names = routed.names.clone();
                let mut rewriter = if routed.strip_usage {
                    SseModelRewriter::stripping_usage(names)
                } else {
                    SseModelRewriter::new(names)
                };
                if let Some((prompt_tokens, usage_chunk)) = routed.stream_estimate {
                    rewriter = rewriter.estimating_usage(prompt_tokens, usage_chunk);
                }
                ResponseMode::Sse(rewriter.ending_with_done(routed.ends_with_done))
            }
            BodyKind::Json => ResponseMode::Json,
            BodyKind::Text => ResponseMode::Text,
            BodyKind::Media | BodyKind::Opaque => ResponseMode::Untouched,
        }
    }
}

/// What a response body is, by its content type (lower-cased), for how it is renamed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyKind {
    EventStream,
    Json,
    /// Other text: `text/*`, XML, forms, or no type at all (what OpenAI-compatible servers send
    /// without one is text).
    Text,
    /// Audio, images and video: bytes no model name is written into.
    Media,
    /// Anything else (`application/octet-stream`, archives, ...): not renamed, and counted.
    Opaque,
}

impl BodyKind {
    /// Whether the filter reads and renames a body of this kind.
    fn is_renamed(self) -> bool {
        matches!(
            self,
            BodyKind::EventStream | BodyKind::Json | BodyKind::Text
        )
    }

    fn of(ctype: &str) -> Self {
        let mime = ctype.split(';').next().unwrap_or("").trim();
        if mime == "text/event-stream" {
            BodyKind::EventStream
        } else if mime.contains("json") {
            BodyKind::Json
        } else if mime.is_empty()
            || mime.starts_with("text/")
            || mime.ends_with("xml")
            || mime == "application/x-www-form-urlencoded"
            || mime == "application/javascript"
        {
            BodyKind::Text
        } else if ["audio/", "image/", "video/"]
            .iter()
            .any(|m| mime.starts_with(m))
        {
            BodyKind::Media
        } else {
            BodyKind::Opaque
        }
    }
}
