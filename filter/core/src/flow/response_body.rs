//! A routed request's response body, rewritten as its headers decided (see `response.rs`): an
//! SSE stream event by event as it arrives (and a chat stream cut short ended for the client), a
//! JSON or text body renamed whole, a backend's error put into OpenAI's envelope, Envoy's failure
//! replaced by the filter's error. What the body reports of its token usage (or, for a stream
//! that reports none, its estimate) is handed back for the settlement.

use super::response::{Response, ResponseMode};
use super::routing::Routed;
use crate::config::Plan;
use crate::host::{Action, Headers, Host};
use crate::sse::SseModelRewriter;
use crate::{backend_errors, json_body, metrics, sse};

use itoa::Buffer as Decimal;

impl Response {
    /// One callback's worth of the body (`body_size` bytes buffered so far, or this chunk of a
    /// stream): whether it goes on, and the tokens the response reported, once known.
    pub(super) fn on_body(
        &mut self,
        host: &mut dyn Host,
        plan: &Plan,
        routed: &Routed,
        body_size: usize,
        end_of_stream: bool,
    ) -> (Action, Option<u64>) {
        let resp = Headers::Response;
        let mut tokens = None;
        // A backend speaking another API: its bytes made OpenAI's first (a JSON body once whole).
        let mut translated = match &mut self.dialect {
            Some(answer) if answer.needs_whole_body() && !end_of_stream => {
                return (Action::Pause, None)
            }
            Some(answer) => {
                let raw = host.body(resp, body_size).unwrap_or_default();
                Some(answer.translate(host, &raw, end_of_stream))
            }
            None => None,
        };
        let was_translated = translated.is_some();
        // The body as the mode reads it: the translation, or the host's bytes.
        let mut read = |host: &mut dyn Host| {
            translated
                .take()
                .unwrap_or_else(|| host.body(resp, body_size).unwrap_or_default())
        };
        let action = match &mut self.mode {
            ResponseMode::Untouched => {
                if was_translated {
                    let t = read(host);
                    host.replace_body(resp, body_size, &t);
                }
                Action::Continue
            }
            ResponseMode::Sse(rewriter) => {
                let chunk = read(host);
                let overflowed = rewriter.overflowed();
                let mut out = rewriter.feed(&chunk);
                if rewriter.overflowed() && !overflowed {
                    let names = &plan.metric_names.model_events_too_large;
                    metrics::add_at(host, names, routed.model, 1);
                    host.log_warn(
                        "a backend sent a stream event over the limit; the stream was ended",
                    );
                }
                if end_of_stream {
                    let tail = rewriter.finish();
                    let complete = tail.is_empty();
                    out.extend(tail);
                    // Chat and completions streams end with [DONE]; one that does not was cut
                    // short, and the client is told so rather than left guessing.
                    if routed.ends_with_done && !rewriter.saw_done() {
                        if rewriter.ended_in_error() {
                            // The backend told its failure and closed: only `[DONE]` is missing.
                            out.extend_from_slice(sse::DONE_EVENT);
                        } else {
                            out.extend(sse::truncated_stream_ending(complete));
                        }
                    }
                    tokens = stream_tokens(host, rewriter, true);
                }
                if let Some(t) = rewriter.transcript_mut() {
                    t.note_first_text(host.now_ms());
                }
                let changed = out != chunk || was_translated;
                if changed && !host.replace_body(resp, body_size, &out) {
                    host.log_warn("could not rewrite an SSE chunk");
                }
                Action::Continue
            }
            _ if !end_of_stream => Action::Pause,
            ResponseMode::Json => {
                let body = read(host);
                tokens = json_body::total_tokens(&body);
                if let Some(t) = &mut self.transcript {
                    t.add_body(&body);
                }
                let renamed = routed.names.rewrite_document(&body);
                let sent = renamed.or_else(|| was_translated.then_some(body));
                send_whole(host, body_size, sent.as_deref());
                Action::Continue
            }
            ResponseMode::Text => {
                let body = read(host);
                let mut out = Vec::with_capacity(body.len());
                let renamed = routed.names.rewrite_text(&body, &mut out);
                let sent = if renamed {
                    Some(out)
                } else {
                    was_translated.then_some(body)
                };
                send_whole(host, body_size, sent.as_deref());
                Action::Continue
            }
            ResponseMode::BackendError(status) => {
                let body = read(host);
                let names: Vec<&str> = routed.backend_models.iter().map(String::as_str).collect();
                let out = backend_errors::wrap(*status, &body, &names, &routed.client_name);
                send_whole(host, body_size, Some(&out));
                Action::Continue
            }
            ResponseMode::Replaced(err) => {
                send_whole(host, body_size, Some(&err.body()));
                Action::Continue
            }
        };
        (action, tokens)
    }
}

impl Response {
    /// For a stream whose client left before its end (the end of the request): the tokens it
    /// comes to, when they are known (see [`stream_tokens`]).
    pub(super) fn tokens_at_hang_up(&self, host: &mut dyn Host) -> Option<u64> {
        match &self.mode {
            ResponseMode::Sse(rewriter) => stream_tokens(host, rewriter, false),
            _ => None,
        }
    }
}

/// The tokens a stream comes to: the usage it reported; else, once it `ended` or sent
/// `[DONE]` (a client may leave between the two), its estimate from what it streamed, counted in
/// `airouter_usage_estimated`; else nothing (a stream its client left before the end is charged
/// the admission estimate, as the backend may have gone on).
fn stream_tokens(host: &mut dyn Host, rewriter: &SseModelRewriter, ended: bool) -> Option<u64> {
    if let Some(reported) = rewriter.usage_tokens() {
        return Some(reported);
    }
    let estimated = rewriter
        .estimated_tokens()
        .filter(|_| ended || rewriter.saw_done())?;
    host.count(metrics::USAGE_ESTIMATED);
    Some(estimated)
}

/// Ends a response buffered whole (its headers held): `out` replaces the body when given, and the
/// headers get the length of what is actually sent.
fn send_whole(host: &mut dyn Host, body_size: usize, out: Option<&[u8]>) {
    let resp = Headers::Response;
    let len = match out {
        Some(out) if host.replace_body(resp, body_size, out) => out.len(),
        _ => body_size,
    };
    host.set_header(resp, "content-length", Some(Decimal::new().format(len)));
}
