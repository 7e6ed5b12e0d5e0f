//! The JSON request-body editor (`json_body`, and
//! `flow::target_request::{locate_model, replace_model}` for JSON APIs).
//!
//! Input: a request body, optionally followed by a NUL and the new model name (a fixed awkward
//! name when there is none). Properties:
//! - a refused body is refused with a 400, never another status;
//! - an accepted body is one JSON object whose only member any common parser reads as `model`
//!   (no duplicate, no case variant as Go's `encoding/json` would match) holds the name found,
//!   and the span found holds exactly that string;
//! - the edited body changes only that span, parses, holds exactly the new name under `model`
//!   and every other member as before, and is accepted again with the new name;
//! - `with_stream_usage` adds `stream_options.include_usage = true` and changes nothing else.

use airouter_core::api::Api;
use airouter_core::flow::target_request::{locate_model, replace_model};
use airouter_core::json_body;

use crate::json::Tree;
use crate::split_nul;

/// Used when the input carries no name of its own: quotes, a backslash, a control character
/// and non-ASCII, which all need escaping or care.
const DEFAULT_NAME: &str = "llama/3 \"8b\" \\ \u{1} é🚀";

pub fn check(data: &[u8]) {
    let (body, name) = split_nul(data);
    let name = name.map_or_else(
        || DEFAULT_NAME.to_string(),
        |n| String::from_utf8_lossy(n).into_owned(),
    );
    check_edit(body, &name);
    // The router asks for usage only in requests it accepted.
    if json_body::find_model(body).is_ok() {
        check_stream_usage(body);
    }
}

fn show(body: &[u8]) -> String {
    format!("{:?}", String::from_utf8_lossy(body))
}

/// Whether a parser would read this top-level key as the request's model: serde's exact match,
/// last-wins parsers' duplicates, and Go's case-insensitive field matching.
fn reads_as_model(key: &str) -> bool {
    key.eq_ignore_ascii_case("model")
}

fn check_edit(body: &[u8], name: &str) {
    let located = locate_model(Api::Chat, body, "application/json");
    let direct = json_body::find_model(body).map(|f| (f.span, f.name));
    assert_eq!(
        located,
        direct,
        "locate_model and find_model disagree on {}",
        show(body)
    );
    let (span, old) = match located {
        Err(e) => {
            assert_eq!(
                e.status,
                400,
                "refused with {}: {} for {}",
                e.status,
                e.message,
                show(body)
            );
            return;
        }
        Ok(found) => found,
    };

    let tree = Tree::parse(body)
        .unwrap_or_else(|| panic!("accepted a body serde_json refuses: {}", show(body)));
    let Tree::Obj(members) = &tree else {
        panic!("accepted a body that is not an object: {}", show(body));
    };
    let models: Vec<&(String, Tree)> = members.iter().filter(|(k, _)| reads_as_model(k)).collect();
    assert!(
        models.len() == 1,
        "accepted a body where parsers may read another model ({} members named like `model`): {}",
        models.len(),
        show(body)
    );
    assert_eq!(
        models[0].1,
        Tree::Str(old.clone()),
        "the model found is not the body's: {}",
        show(body)
    );
    let raw = body
        .get(span.clone())
        .unwrap_or_else(|| panic!("span {span:?} outside {}", show(body)));
    assert_eq!(
        serde_json::from_slice::<String>(raw).ok().as_deref(),
        Some(old.as_str()),
        "the span does not hold the model's string in {}",
        show(body)
    );

    let out = replace_model(Api::Chat, body, span.clone(), name);
    assert_eq!(
        out[..span.start],
        body[..span.start],
        "bytes before the model changed"
    );
    assert!(
        out.ends_with(&body[span.end..]),
        "bytes after the model changed"
    );
    let edited = Tree::parse(&out)
        .unwrap_or_else(|| panic!("the edited body does not parse: {}", show(&out)));
    let expected: Vec<(String, Tree)> = members
        .iter()
        .map(|(k, v)| match k.as_str() {
            "model" => (k.clone(), Tree::Str(name.to_string())),
            _ => (k.clone(), v.clone()),
        })
        .collect();
    assert_eq!(
        edited,
        Tree::Obj(expected),
        "the edited body is not the original with the new model: {}",
        show(&out)
    );
    let again = json_body::find_model(&out)
        .unwrap_or_else(|e| panic!("the edited body is refused ({}): {}", e.message, show(&out)));
    assert_eq!(
        (again.span.start, again.name.as_str()),
        (span.start, name),
        "the edited body's model: {}",
        show(&out)
    );
}

fn check_stream_usage(body: &[u8]) {
    let Ok(Some(edit)) = json_body::with_stream_usage(body) else {
        return;
    };
    let out = edit.body;
    let before = Tree::parse(body).unwrap_or_else(|| {
        panic!(
            "with_stream_usage edited a body that does not parse: {}",
            show(body)
        )
    });
    let after = Tree::parse(&out).unwrap_or_else(|| {
        panic!(
            "with_stream_usage made a body that does not parse: {}",
            show(&out)
        )
    });
    assert!(
        before.all("stream").any(|s| *s == Tree::Bool(true)),
        "with_stream_usage edited a request that does not stream: {}",
        show(body)
    );
    // One `stream_options`, asking for usage; the client's other options kept.
    let options: Vec<&Tree> = after.all("stream_options").collect();
    let asks = matches!(options.as_slice(), [Tree::Obj(members)]
        if members.iter().any(|(k, v)| k == "include_usage" && *v == Tree::Bool(true)));
    assert!(asks, "stream_options after the edit of {}", show(body));
    let without_options = |t: &Tree| -> Vec<(String, Tree)> {
        t.members()
            .iter()
            .filter(|(k, _)| k != "stream_options")
            .cloned()
            .collect()
    };
    assert_eq!(
        without_options(&after),
        without_options(&before),
        "with_stream_usage changed other members of {}",
        show(body)
    );
}
