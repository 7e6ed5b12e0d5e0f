//! A chat message's `content` (a string, or an array of parts) as Anthropic content blocks:
//! `text` (and an assistant's `refusal`) → `text`; `image_url` → `image` with a `base64`
//! source (a `data:` URL, its media type kept) or a `url` source (an `http(s)` URL; the
//! `detail` hint has no counterpart and is left out); `file` with `file_data` (a `data:` URL of
//! a PDF) → `document`. Empty text is left out: Anthropic refuses empty text blocks.
//!
//! Content cannot be dropped the way a parameter can (the question would change): a part that
//! cannot be carried (`input_audio`, a `file_id`, an image in an assistant message, ...) is
//! always refused with a 400 naming `messages`.

use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::Value;

use super::params::{coded, quoted};
use crate::errors::ApiError;

/// One content block of an Anthropic message.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum Block {
    Text {
        text: String,
    },
    Image {
        source: Source,
    },
    Document {
        source: Source,
    },
    ToolUse {
        id: String,
        name: String,
        /// The call's arguments: the client's JSON text, validated, kept as written.
        input: Box<RawValue>,
    },
    ToolResult {
        tool_use_id: String,
        #[serde(skip_serializing_if = "String::is_empty")]
        content: String,
    },
}

/// Where an image's or a document's bytes are.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum Source {
    Base64 { media_type: String, data: String },
    Url { url: String },
}

/// Who wrote the content: images and files are the user's only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Author {
    User,
    Assistant,
}

/// A 400 about message `index`'s content.
pub(super) fn bad_content(index: usize, why: &str) -> ApiError {
    coded(
        Some("messages"),
        format!("Invalid content in messages[{index}]: {why}."),
        "invalid_value",
    )
}

/// The texts of a content that may hold text only (system, developer and tool messages), in
/// order, empty ones left out.
pub(super) fn texts(content: &Value, index: usize) -> Result<Vec<String>, ApiError> {
    match content {
        Value::Null => Ok(Vec::new()),
        Value::String(s) => Ok([s.clone()].into_iter().filter(|s| !s.is_empty()).collect()),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|part| match part_type(part, index) {
                Ok("text") => text_field(part, "text", index).transpose(),
                Ok(other) => Some(Err(bad_content(
                    index,
                    &format!(
                        "a part of type '{}' where only text is accepted",
                        quoted(other)
                    ),
                ))),
                Err(e) => Some(Err(e)),
            })
            .collect(),
        _ => Err(bad_content(index, "'content' must be a string or an array")),
    }
}

/// The blocks of a user's or an assistant's content.
pub(super) fn blocks(
    content: &Value,
    author: Author,
    index: usize,
) -> Result<Vec<Block>, ApiError> {
    let parts = match content {
        Value::Null => return Ok(Vec::new()),
        Value::String(s) if s.is_empty() => return Ok(Vec::new()),
        Value::String(s) => return Ok(vec![Block::Text { text: s.clone() }]),
        Value::Array(parts) => parts,
        _ => return Err(bad_content(index, "'content' must be a string or an array")),
    };
    let mut out = Vec::with_capacity(parts.len());
    for part in parts {
        let kind = part_type(part, index)?;
        let block = match (kind, author) {
            ("text", _) => text_field(part, "text", index)?.map(|text| Block::Text { text }),
            ("refusal", Author::Assistant) => {
                text_field(part, "refusal", index)?.map(|text| Block::Text { text })
            }
            ("image_url", Author::User) => Some(image(part, index)?),
            ("file", Author::User) => Some(document(part, index)?),
            (other, _) => {
                return Err(bad_content(
                    index,
                    &format!(
                        "parts of type '{}' are not supported with this model",
                        quoted(other)
                    ),
                ))
            }
        };
        out.extend(block);
    }
    Ok(out)
}

/// A part's `type`.
fn part_type(part: &Value, index: usize) -> Result<&str, ApiError> {
    part.get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| bad_content(index, "each content part needs a string 'type'"))
}

/// A part's text field, `None` when empty.
fn text_field(part: &Value, field: &str, index: usize) -> Result<Option<String>, ApiError> {
    match part.get(field) {
        Some(Value::String(s)) => Ok((!s.is_empty()).then(|| s.clone())),
        _ => Err(bad_content(
            index,
            &format!("a part's '{field}' must be a string"),
        )),
    }
}

/// An `image_url` part as an image block.
fn image(part: &Value, index: usize) -> Result<Block, ApiError> {
    // OpenAI sends `{"url": ...}`; some clients send the URL alone, as vLLM accepts.
    let url = part
        .get("image_url")
        .and_then(|i| i.as_str().or_else(|| i.get("url")?.as_str()))
        .ok_or_else(|| bad_content(index, "an 'image_url' part needs 'image_url.url'"))?;
    let source = if url.starts_with("data:") {
        data_url(url, index)?
    } else if url.starts_with("https://") || url.starts_with("http://") {
        Source::Url {
            url: url.to_string(),
        }
    } else {
        return Err(bad_content(
            index,
            "an image URL must be a data: or http(s) URL",
        ));
    };
    Ok(Block::Image { source })
}

/// A `file` part (inline `file_data`, a PDF) as a document block.
fn document(part: &Value, index: usize) -> Result<Block, ApiError> {
    let file = part.get("file");
    let Some(data) = file
        .and_then(|f| f.get("file_data"))
        .and_then(Value::as_str)
    else {
        return Err(bad_content(
            index,
            "a 'file' part needs inline 'file_data' with this model ('file_id' is not supported)",
        ));
    };
    let source = data_url(data, index)?;
    match &source {
        Source::Base64 { media_type, .. } if media_type == "application/pdf" => {
            Ok(Block::Document { source })
        }
        _ => Err(bad_content(
            index,
            "only PDF files are supported with this model",
        )),
    }
}

/// A base64 `data:` URL (`data:<media type>[;params];base64,<data>`) as a base64 source.
fn data_url(url: &str, index: usize) -> Result<Source, ApiError> {
    let bad = || {
        bad_content(
            index,
            "a data: URL must be 'data:<media type>;base64,<data>'",
        )
    };
    let (header, data) = url
        .strip_prefix("data:")
        .and_then(|rest| rest.split_once(','))
        .ok_or_else(bad)?;
    let header = header.strip_suffix(";base64").ok_or_else(bad)?;
    let media_type = header.split(';').next().unwrap_or("").trim();
    if media_type.is_empty() || data.is_empty() {
        return Err(bad());
    }
    Ok(Source::Base64 {
        media_type: media_type.to_ascii_lowercase(),
        data: data.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user(content: Value) -> Result<String, ApiError> {
        blocks(&content, Author::User, 2).map(|b| serde_json::to_string(&b).unwrap())
    }

    #[test]
    fn text_and_images_become_blocks() {
        let out = user(json!([
            {"type": "text", "text": "What is this?"},
            {"type": "text", "text": ""},
            {"type": "image_url", "image_url": {"url": "data:image/PNG;base64,iVBORw0KGgo=", "detail": "high"}},
            {"type": "image_url", "image_url": "https://example.com/cat.jpg"},
            {"type": "file", "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBERi0x"}},
        ]))
        .unwrap();
        assert_eq!(
            out,
            concat!(
                r#"[{"type":"text","text":"What is this?"},"#,
                r#"{"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBORw0KGgo="}},"#,
                r#"{"type":"image","source":{"type":"url","url":"https://example.com/cat.jpg"}},"#,
                r#"{"type":"document","source":{"type":"base64","media_type":"application/pdf","data":"JVBERi0x"}}]"#
            )
        );
        assert_eq!(
            user(json!("hi")).unwrap(),
            r#"[{"type":"text","text":"hi"}]"#
        );
        assert_eq!(user(json!("")).unwrap(), "[]");
    }

    #[test]
    fn what_cannot_be_carried_is_refused_naming_messages() {
        for content in [
            json!([{"type": "input_audio", "input_audio": {"data": "AA==", "format": "wav"}}]),
            json!([{"type": "file", "file": {"file_id": "file-1"}}]),
            json!([{"type": "file", "file": {"file_data": "data:text/plain;base64,aGk="}}]),
            json!([{"type": "image_url", "image_url": {"url": "ftp://x/y.png"}}]),
            json!([{"type": "image_url", "image_url": {"url": "data:image/png,rawbytes"}}]),
            json!([{"type": "image_url", "image_url": {"url": "data:;base64,AA=="}}]),
            json!([{"type": "image_url"}]),
            json!([{"text": "no type"}]),
            json!([{"type": "text", "text": 5}]),
            json!([{"type": "refusal", "refusal": "no"}]),
            json!(7),
        ] {
            let err = user(content.clone()).unwrap_err();
            assert_eq!(
                (err.status, err.param),
                (400, Some("messages")),
                "{content}"
            );
            assert!(err.message.contains("messages[2]"), "{}", err.message);
        }
        let image = json!([{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]);
        assert!(blocks(&image, Author::Assistant, 0).is_err());
    }

    #[test]
    fn text_only_content_yields_its_texts() {
        assert_eq!(
            texts(&json!([{"type": "text", "text": "a"}, {"type": "text", "text": ""}, {"type": "text", "text": "b"}]), 0)
                .unwrap(),
            ["a", "b"]
        );
        assert_eq!(texts(&json!("s"), 0).unwrap(), ["s"]);
        assert!(texts(
            &json!([{"type": "image_url", "image_url": {"url": "https://x"}}]),
            0
        )
        .is_err());
    }
}
