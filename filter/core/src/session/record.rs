//! A session record written out: the JSON object the sidecar stores for one request, at most the
//! configured number of bytes. When the whole record would be longer, the conversation is cut to
//! fit, the earliest request messages first and then the end of the response text, and the
//! record says so (`"truncated": true`, with how many messages were left out and how long the
//! text was). Everything else (ids, names, status, usage, timings) is small and always kept.

use serde::Serialize;

use crate::router::decision::RoutingDecision;
use serde_json::value::RawValue;

use super::request::RequestContent;
use super::sequence::Sequence;
use super::transcript::{prefix, Transcript, Usage};
use super::Recorder;
use crate::config::Capture;

/// The version of the record's shape, `schema` in each record.
pub const SCHEMA: u32 = 1;

/// Slack kept under the cap for the numbers a cut adds (`omitted`, `truncated`).
const CUT_SLACK: usize = 64;

#[derive(Serialize)]
struct Record<'a> {
    schema: u32,
    /// The record's number in its Envoy process's sequence, by which the sidecar counts the
    /// records that never arrived.
    #[serde(skip_serializing_if = "Option::is_none")]
    sequence: Option<Sequence>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<&'a str>,
    /// When the request's headers reached the filter, in ms since the Unix epoch.
    start_ms: u64,
    method: &'a str,
    path: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    api: Option<&'static str>,
    /// The client key's name (never the key); absent for an open router or a refused key.
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<&'a str>,
    /// The model as the client sees it.
    #[serde(skip_serializing_if = "Option::is_none")]
    model: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream: Option<bool>,
    /// The status the client got, as Envoy's log phase reports it.
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<u16>,
    /// The filter's own refusal, when it refused the request.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ErrorPart<'a>>,
    /// Each backend the request was sent to, in order: backend, the model name it was sent
    /// under, and the status it answered (absent when it never answered).
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    attempts: &'a [Attempt],
    /// For a request to a router (`[[routers]]`): the route, how it was chosen, and the
    /// classifier's and enrichment's outcomes and timings.
    #[serde(skip_serializing_if = "Option::is_none")]
    routing: Option<&'a RoutingDecision>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request: Option<RequestPart<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response: Option<ResponsePart<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<UsagePart>,
    timings: Timings,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    truncated: bool,
}

#[derive(Serialize)]
struct ErrorPart<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<&'a str>,
}

/// One request sent to a backend.
#[derive(Debug, Clone, Serialize)]
pub struct Attempt {
    pub backend: String,
    pub model: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
}

#[derive(Serialize)]
struct RequestPart<'a> {
    bytes: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    count: Option<usize>,
    /// The conversation member, named as in the body (`messages`, `prompt`, `input`).
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    items: Option<Items<'a>>,
    #[serde(skip_serializing_if = "is_zero")]
    omitted: usize,
}

/// The kept items under their member's name: the array, or the single value.
struct Items<'a> {
    field: &'static str,
    content: &'a RequestContent,
}

impl Serialize for Items<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(1))?;
        if self.content.array {
            map.serialize_entry(self.field, &self.content.kept)?;
        } else if let Some(one) = self.content.kept.first() {
            map.serialize_entry::<str, RawValue>(self.field, one)?;
        }
        map.end()
    }
}

#[derive(Serialize)]
struct ResponsePart<'a> {
    /// Bytes of assistant text the response carried.
    text_bytes: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    finish_reason: Option<&'a str>,
}

#[derive(Serialize)]
struct UsagePart {
    #[serde(flatten)]
    reported: Usage,
    /// The router's estimate, for a stream whose backend reported none (see `docs/config.md`).
    #[serde(skip_serializing_if = "Option::is_none")]
    estimated_total_tokens: Option<u64>,
}

#[derive(Serialize)]
struct Timings {
    total_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    first_byte_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    first_token_ms: Option<u64>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// What the record is finished with at the end of the request.
pub(super) struct Ending<'a> {
    pub status: Option<u16>,
    pub now_ms: u64,
    pub transcript: Option<&'a Transcript>,
    pub estimated_tokens: Option<u64>,
}

/// The record of `rec` as JSON, at most `rec`'s cap in bytes.
pub(super) fn render(rec: &mut Recorder, end: &Ending<'_>) -> Vec<u8> {
    let cap = rec.max_bytes;
    let text = end.transcript.map_or("", Transcript::text);
    let whole = serialize(rec, end, text, false);
    if whole.len() <= cap {
        return whole;
    }
    // Cut: measure the record without the conversation, then share what is left between the
    // request's items (newest kept) and the response text (its start kept).
    let kept = std::mem::take(&mut rec.request.kept);
    let bare = serialize(rec, end, "", true);
    rec.request.kept = kept;
    let budget = cap.saturating_sub(bare.len() + CUT_SLACK);
    let text_len = escaped_len(text);
    let items_len = rec.request.kept_bytes();
    let text_share = text_len.min((budget / 2).max(budget.saturating_sub(items_len)));
    rec.request.fit(budget.saturating_sub(text_share));
    let text = fit_text(text, text_share);
    let cut = serialize(rec, end, text, true);
    if cut.len() <= cap {
        return cut;
    }
    rec.request.fit(0);
    serialize(rec, end, "", true)
}

/// The longest start of `text` whose JSON string takes at most `max` bytes.
fn fit_text(text: &str, max: usize) -> &str {
    let mut fitted = prefix(text, max);
    loop {
        let len = escaped_len(fitted);
        if len <= max {
            return fitted;
        }
        // Escapes make the JSON longer than the text: shrink in proportion, by a byte at least.
        let shrunk = fitted.len().saturating_mul(max) / len;
        fitted = prefix(fitted, shrunk.min(fitted.len().saturating_sub(1)));
    }
}

/// Bytes `text` takes as a JSON string, quotes included.
fn escaped_len(text: &str) -> usize {
    serde_json::to_string(text).map_or(text.len() * 6 + 2, |s| s.len())
}

fn serialize(rec: &Recorder, end: &Ending<'_>, text: &str, truncated: bool) -> Vec<u8> {
    let capture = rec.capture;
    let request = (capture != Capture::None && rec.routed).then(|| RequestPart {
        bytes: rec.request.bytes,
        count: rec.request.field.map(|_| rec.request.count),
        items: rec
            .request
            .field
            .filter(|_| capture == Capture::Full)
            .map(|field| Items {
                field,
                content: &rec.request,
            }),
        omitted: rec.request.omitted,
    });
    let response = end
        .transcript
        .filter(|_| capture != Capture::None)
        .map(|t| ResponsePart {
            text_bytes: t.text_bytes(),
            text: t.keeps_text().then_some(text),
            finish_reason: t.finish_reason(),
        });
    let reported = end.transcript.and_then(Transcript::usage);
    let usage = (reported.is_some() || end.estimated_tokens.is_some()).then(|| UsagePart {
        reported: reported.unwrap_or_default(),
        estimated_total_tokens: end.estimated_tokens.filter(|_| reported.is_none()),
    });
    let since_start = |t: u64| t.saturating_sub(rec.start_ms);
    let record = Record {
        schema: SCHEMA,
        sequence: rec.sequence,
        request_id: rec.request_id.as_deref(),
        start_ms: rec.start_ms,
        method: &rec.method,
        path: &rec.path,
        api: rec.api.map(crate::api::Api::config_name),
        key: rec.key.as_deref(),
        model: rec.model.as_deref(),
        stream: rec.stream,
        status: end.status,
        error: rec.error.as_ref().map(|(kind, code)| ErrorPart {
            kind,
            code: code.as_deref(),
        }),
        attempts: &rec.attempts,
        routing: rec.routing.as_ref(),
        request,
        response,
        usage,
        timings: Timings {
            total_ms: since_start(end.now_ms),
            first_byte_ms: rec.first_byte_ms.map(since_start),
            first_token_ms: end
                .transcript
                .and_then(Transcript::first_text_ms)
                .map(since_start),
        },
        truncated: truncated
            || rec.request.omitted > 0
            || end.transcript.is_some_and(Transcript::text_cut),
    };
    serde_json::to_vec(&record).unwrap_or_default()
}
