//! The multipart request-body editor (`multipart`, and `flow::target_request::{locate_model,
//! replace_model}` for the audio APIs), checked against `multer`, an independent
//! `multipart/form-data` parser, standing in for whatever a backend uses.
//!
//! Input: the `Content-Type` value, a LF, then the body. Properties:
//! - the boundary read from the content type is non-empty, at most 70 bytes, taken from the
//!   header, and the one `multer` reads; two different `boundary` parameters are refused;
//! - a refused body is refused with a 400;
//! - an accepted body's model span holds exactly the value found, between a part's header end
//!   and the next delimiter, and `multer` reads exactly one `model` part with that value;
//! - the edited body changes only that span, is accepted again with the new name at the same
//!   place, and `multer` reads exactly one `model` part, with the new name.

use std::convert::Infallible;

use airouter_core::api::Api;
use airouter_core::flow::target_request::{locate_model, replace_model};
use airouter_core::multipart;
use bytes::Bytes;

/// Names a target may rename the model to (no CR or LF: a configured name never has them).
const NEW_NAMES: [&str; 3] = ["whisper-large-v3", "", "ü/名 \"q\";x"];

pub fn check(data: &[u8]) {
    let (head, body) = match data.iter().position(|b| *b == b'\n') {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    let content_type = String::from_utf8_lossy(head);
    check_boundary(&content_type);
    let pick = crate::Rng::from_data(data).below(NEW_NAMES.len());
    check_edit(&content_type, body, NEW_NAMES[pick]);
}

fn show(body: &[u8]) -> String {
    format!("{:?}", String::from_utf8_lossy(body))
}

fn check_boundary(content_type: &str) {
    let Ok(b) = multipart::boundary(content_type) else {
        return;
    };
    assert!(
        !b.is_empty() && b.len() <= 70,
        "boundary {b:?} from {content_type:?}"
    );
    assert!(
        content_type.contains(b),
        "boundary {b:?} is not in {content_type:?}"
    );
    if let Ok(theirs) = multer::parse_boundary(content_type) {
        assert_eq!(
            theirs, b,
            "multer reads another boundary from {content_type:?}"
        );
    }
    let values: Vec<&str> = content_type
        .split(';')
        .skip(1)
        .filter_map(|p| p.split_once('='))
        .filter(|(k, _)| k.trim().eq_ignore_ascii_case("boundary"))
        .map(|(_, v)| v.trim())
        .collect();
    assert!(
        values.iter().all(|v| *v == values[0]),
        "{content_type:?} has two different boundaries and {b:?} was taken: parsers that take the last read another body"
    );
}

/// The values of every part named `model`, as `multer` reads them; `None` when it refuses the
/// body.
fn multer_models(body: &[u8], boundary: &str) -> Option<Vec<String>> {
    let chunk = Bytes::copy_from_slice(body);
    let stream = futures_util::stream::once(async move { Ok::<Bytes, Infallible>(chunk) });
    let mut parts = multer::Multipart::new(stream, boundary.to_string());
    futures_executor::block_on(async move {
        let mut models = Vec::new();
        while let Some(field) = parts.next_field().await.ok()? {
            if field.name() == Some("model") {
                models.push(field.text().await.ok()?);
            } else {
                field.bytes().await.ok()?;
            }
        }
        Some(models)
    })
}

fn check_edit(content_type: &str, body: &[u8], name: &str) {
    let api = Api::AudioTranscriptions;
    let (span, old) = match locate_model(api, body, content_type) {
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
    let b = multipart::boundary(content_type)
        .unwrap_or_else(|_| panic!("accepted without a boundary in {content_type:?}"));
    let delimiter = format!("\r\n--{b}");
    assert_eq!(
        body.get(span.clone()),
        Some(old.as_bytes()),
        "the span does not hold the model in {}",
        show(body)
    );
    assert!(
        body[..span.start].ends_with(b"\r\n\r\n"),
        "the model does not start a part's content in {}",
        show(body)
    );
    assert!(
        body[span.end..].starts_with(delimiter.as_bytes()),
        "the model does not end at a delimiter in {}",
        show(body)
    );
    if let Some(models) = multer_models(body, b) {
        assert_eq!(
            models,
            [old.as_str()],
            "multer reads other models than {old:?} in {}",
            show(body)
        );
    }

    let out = replace_model(api, body, span.clone(), name);
    assert_eq!(
        out[..span.start],
        body[..span.start],
        "bytes before the model changed"
    );
    assert!(
        out.ends_with(&body[span.end..]),
        "bytes after the model changed"
    );
    let again = locate_model(api, &out, content_type)
        .unwrap_or_else(|e| panic!("the edited body is refused ({}): {}", e.message, show(&out)));
    assert_eq!(
        again,
        (span.start..span.start + name.len(), name.to_string()),
        "the edited body's model: {}",
        show(&out)
    );
    if let Some(models) = multer_models(&out, b) {
        assert_eq!(
            models,
            [name],
            "multer reads other models than {name:?} in the edited {}",
            show(&out)
        );
    }
}
