//! The conversation of a chat or legacy-completions request as the router reads it: each
//! message's role and text. Only text counts: a message's `content` string, or the `text` of
//! its `text` parts; images, audio and files are dropped (the classifier reads text, and an
//! image's base64 would eat any budget). `<details>…</details>` blocks (Open WebUI's folded
//! tool results and reasoning) are taken out by [`strip_details`] where a model is shown the
//! conversation.

use std::borrow::Cow;

use serde::Deserialize;

use crate::json_edit::{self, Member, Object};

/// One message: its role as sent (`user`, `assistant`, `system`, `developer`, `tool`, ...) and
/// its text (empty for a message with none, such as an assistant's tool call).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Turn {
    pub role: String,
    pub text: String,
}

impl Turn {
    /// A user's message.
    pub fn is_user(&self) -> bool {
        self.role == "user"
    }

    /// A turn of the dialogue (user or assistant), as opposed to instructions or tool output.
    pub fn is_dialogue(&self) -> bool {
        self.role == "user" || self.role == "assistant"
    }
}

/// Why a body's conversation could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadError {
    /// Not a JSON object.
    NotAnObject,
    /// No `messages` array (chat) or `prompt` (completions).
    NoConversation,
    /// More than one key some parser reads as `messages`, or one written otherwise: the
    /// classifier and the backend could read different conversations.
    AmbiguousMessages,
}

impl ReadError {
    /// The reason, for the decision record and the client's 400.
    pub fn as_str(self) -> &'static str {
        match self {
            ReadError::NotAnObject => "the body is not a JSON object",
            ReadError::NoConversation => "the body has no `messages` array",
            ReadError::AmbiguousMessages => {
                "the body has more than one key that parsers read as `messages`"
            }
        }
    }
}

/// The one member of `obj` that parsers read as `messages`, written exactly so.
pub(crate) fn messages_member(obj: &Object) -> Result<&Member, ReadError> {
    let mut found = obj.read_as("messages");
    match (found.next(), found.next()) {
        (Some(m), None) if m.key == "messages" && !m.escaped => Ok(m),
        (None, _) => Err(ReadError::NoConversation),
        _ => Err(ReadError::AmbiguousMessages),
    }
}

#[derive(Deserialize)]
struct Message<'a> {
    #[serde(borrow, default)]
    role: Option<Cow<'a, str>>,
    #[serde(default)]
    content: Option<Content>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Content {
    Text(String),
    Parts(Vec<Part>),
    Other(serde::de::IgnoredAny),
}

#[derive(Deserialize)]
struct Part {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    text: Option<String>,
}

/// The text of a message's `content`: a string as is; parts' texts joined by a line break.
fn content_text(content: Option<Content>) -> String {
    match content {
        Some(Content::Text(t)) => t,
        Some(Content::Parts(parts)) => {
            let texts: Vec<String> = parts
                .into_iter()
                .filter(|p| matches!(p.kind.as_deref(), Some("text" | "input_text")))
                .filter_map(|p| p.text)
                .collect();
            texts.join("\n")
        }
        Some(Content::Other(_)) | None => String::new(),
    }
}

/// The turns of a chat body's `messages`, in order. A message that is not an object, or whose
/// role is missing, is kept with an empty role (it is neither the user's nor the assistant's).
pub fn read_chat(body: &[u8]) -> Result<Vec<Turn>, ReadError> {
    let text = std::str::from_utf8(body).map_err(|_| ReadError::NotAnObject)?;
    let obj = json_edit::object(text, 0).ok_or(ReadError::NotAnObject)?;
    let member = messages_member(&obj)?;
    let raw = text
        .get(member.value.clone())
        .ok_or(ReadError::NoConversation)?;
    let messages: Vec<&serde_json::value::RawValue> =
        serde_json::from_str(raw).map_err(|_| ReadError::NoConversation)?;
    Ok(messages
        .into_iter()
        .map(|raw| match serde_json::from_str::<Message>(raw.get()) {
            Ok(m) => Turn {
                role: m.role.map(Cow::into_owned).unwrap_or_default(),
                text: content_text(m.content),
            },
            Err(_) => Turn {
                role: String::new(),
                text: String::new(),
            },
        })
        .collect())
}

/// A legacy completions body's `prompt` as one user turn: a string as is, a list of strings
/// joined by blank lines, token arrays as no text.
pub fn read_completions(body: &[u8]) -> Result<Vec<Turn>, ReadError> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Prompt {
        Text(String),
        Texts(Vec<String>),
        Other(serde::de::IgnoredAny),
    }
    #[derive(Deserialize)]
    struct Body {
        prompt: Option<Prompt>,
    }
    let body: Body = serde_json::from_slice(body).map_err(|_| ReadError::NotAnObject)?;
    let text = match body.prompt.ok_or(ReadError::NoConversation)? {
        Prompt::Text(t) => t,
        Prompt::Texts(list) => list.join("\n\n"),
        Prompt::Other(_) => String::new(),
    };
    Ok(vec![Turn {
        role: "user".into(),
        text,
    }])
}

/// `text` without its `<details …>…</details>` blocks (nested ones counted; an unclosed block
/// runs to the end), tags matched without regard to case. One pass; the text as it was when
/// it has none.
pub fn strip_details(text: &str) -> Cow<'_, str> {
    strip_blocks(text, "<details", "</details>")
}

/// `text` without the blocks opened by `open` (a tag's start: `<details` also opens
/// `<details type="x">`, not `<detailsx>`) and closed by `close`.
pub(crate) fn strip_blocks<'a>(text: &'a str, open: &str, close: &str) -> Cow<'a, str> {
    let lower = text.to_ascii_lowercase();
    if !lower.contains(open) {
        return Cow::Borrowed(text);
    }
    let bytes = lower.as_bytes();
    let opens_at = |i: usize| {
        lower.get(i..).is_some_and(|r| r.starts_with(open))
            && matches!(
                bytes.get(i + open.len()),
                Some(b'>' | b' ' | b'\t' | b'\n' | b'\r' | b'/')
            )
    };
    let mut out = String::with_capacity(text.len());
    let mut depth = 0usize;
    let mut kept_from = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes.get(i) != Some(&b'<') {
            i += 1;
            continue;
        }
        if opens_at(i) {
            if depth == 0 {
                out.push_str(text.get(kept_from..i).unwrap_or(""));
            }
            depth += 1;
            i += open.len();
        } else if depth > 0 && lower.get(i..).is_some_and(|r| r.starts_with(close)) {
            depth -= 1;
            i += close.len();
            if depth == 0 {
                kept_from = i;
            }
        } else {
            i += 1;
        }
    }
    if depth == 0 {
        out.push_str(text.get(kept_from..).unwrap_or(""));
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turns_keep_text_and_drop_images() {
        let body = br#"{"model":"m","messages":[
            {"role":"system","content":"be brief"},
            {"role":"user","content":[{"type":"text","text":"what is"},{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}},{"type":"text","text":"this?"}]},
            {"role":"assistant","content":null,"tool_calls":[{"id":"1"}]},
            {"role":"tool","content":"42"},
            7,
            {"content":"no role"}
        ]}"#;
        let turns = read_chat(body).unwrap();
        let got: Vec<(&str, &str)> = turns
            .iter()
            .map(|t| (t.role.as_str(), t.text.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("system", "be brief"),
                ("user", "what is\nthis?"),
                ("assistant", ""),
                ("tool", "42"),
                ("", ""),
                ("", "no role"),
            ]
        );
    }

    #[test]
    fn a_conversation_parsers_could_read_twice_is_refused() {
        for body in [
            r#"{"messages":[],"messages":[]}"#,
            r#"{"messages":[],"MESSAGES":[]}"#,
            r#"{"m\u0065ssages":[]}"#,
        ] {
            assert_eq!(
                read_chat(body.as_bytes()),
                Err(ReadError::AmbiguousMessages),
                "{body}"
            );
        }
        assert_eq!(read_chat(b"{}"), Err(ReadError::NoConversation));
        assert_eq!(read_chat(b"[]"), Err(ReadError::NotAnObject));
        assert_eq!(
            read_chat(br#"{"messages":{}}"#),
            Err(ReadError::NoConversation)
        );
    }

    #[test]
    fn completions_prompts_are_one_user_turn() {
        let t = read_completions(br#"{"prompt":["a","b"]}"#).unwrap();
        assert_eq!(t[0].text, "a\n\nb");
        assert_eq!(
            read_completions(br#"{"prompt":[1,2]}"#).unwrap()[0].text,
            ""
        );
        assert_eq!(
            read_completions(br#"{"model":"m"}"#),
            Err(ReadError::NoConversation)
        );
    }

    #[test]
    fn details_blocks_are_dropped_nested_and_unclosed() {
        let cases = [
            ("a<details>x</details>b", "ab"),
            (
                "a<DETAILS type=\"reasoning\">x<details>y</details>z</Details>b",
                "ab",
            ),
            ("a<details>never closed", "a"),
            ("<detailsx>kept</details>", "<detailsx>kept</details>"),
            ("no blocks </details>", "no blocks </details>"),
            ("é<details>ü</details>ß", "éß"),
        ];
        for (input, want) in cases {
            assert_eq!(strip_details(input), want, "{input}");
        }
    }

    #[test]
    fn stripping_random_text_is_bounded_and_never_grows() {
        let mut rng = crate::test_json::Rng::new(0x00de_7a11);
        let pieces = [
            "<details>",
            "</details>",
            "<details a>",
            "x",
            "é",
            "<",
            ">",
            "</DETAILS>",
            "<det",
        ];
        for _ in 0..5000 {
            let text: String = (0..rng.next(30))
                .map(|_| pieces[rng.next(pieces.len() as u64) as usize])
                .collect();
            let out = strip_details(&text);
            assert!(out.len() <= text.len(), "{text}");
            if !text.to_ascii_lowercase().contains("<details") {
                assert_eq!(out, text);
            }
        }
    }
}
