//! What a request sent its backend, for its session record: the body's size and, from the
//! member that holds the conversation (`messages` for chat, `prompt` for completions and image
//! generation, `input` for the Responses API, embeddings, moderations and speech), the number of
//! items and, with full capture, the items themselves as written. Only the newest items that fit
//! the record's cap are kept, so a request's record never holds more than the cap.

use serde_json::value::RawValue;

use crate::api::{Api, BodyKind};
use crate::json_scan;

/// The conversation of a request, as much as its capture level and cap allow.
#[derive(Debug, Default)]
pub struct RequestContent {
    /// The body member read (`messages`, `prompt`, `input`), when the body has one.
    pub(super) field: Option<&'static str>,
    /// Bytes of the body sent.
    pub(super) bytes: usize,
    /// Items in that member (1 when it is not an array).
    pub(super) count: usize,
    /// The member is an array (its items are kept as one), not a single value.
    pub(super) array: bool,
    /// The newest items kept (full capture only), as written.
    pub(super) kept: Vec<Box<RawValue>>,
    /// Items left out, oldest first, to fit the cap.
    pub(super) omitted: usize,
}

/// The body member holding an API's conversation.
fn conversation_field(api: Api) -> Option<&'static str> {
    match api {
        Api::Chat => Some("messages"),
        Api::Completions | Api::ImagesGenerations => Some("prompt"),
        Api::Responses | Api::Embeddings | Api::Moderations | Api::AudioSpeech => Some("input"),
        Api::AudioTranscriptions | Api::AudioTranslations => None,
    }
}

impl RequestContent {
    /// Reads the `body` sent for `api`: sizes always, the items themselves when `keep` (the
    /// newest of them whose JSON fits in `max` bytes).
    pub fn read(api: Api, body: &[u8], keep: bool, max: usize) -> Self {
        let mut content = RequestContent {
            bytes: body.len(),
            ..Self::default()
        };
        if api.body_kind() != BodyKind::Json {
            return content;
        }
        let Some(field) = conversation_field(api) else {
            return content;
        };
        let Some(value) = json_scan::member(body, field.as_bytes()) else {
            return content;
        };
        content.field = Some(field);
        let items: Vec<Box<RawValue>> = if value.first() == Some(&b'[') {
            content.array = true;
            match serde_json::from_slice(value) {
                Ok(items) => items,
                Err(_) => return content,
            }
        } else {
            match serde_json::from_slice(value) {
                Ok(item) => vec![item],
                Err(_) => return content,
            }
        };
        content.count = items.len();
        if keep {
            content.kept = items;
            content.fit(max);
        }
        content
    }

    /// Bytes the kept items take in the record (with the commas between them).
    pub(super) fn kept_bytes(&self) -> usize {
        let items: usize = self.kept.iter().map(|i| i.get().len()).sum();
        items + self.kept.len()
    }

    /// Leaves out the oldest items until the kept ones take at most `max` bytes.
    pub(super) fn fit(&mut self, max: usize) {
        let mut total = self.kept_bytes();
        let mut drop = 0;
        for item in &self.kept {
            if total <= max {
                break;
            }
            total -= item.get().len() + 1;
            drop += 1;
        }
        self.kept.drain(..drop);
        self.omitted += drop;
    }
}
