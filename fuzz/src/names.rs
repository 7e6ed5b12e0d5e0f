//! The renamer of whole JSON responses (`model_names::NameRewriter::rewrite_document`) and the
//! usage reader (`json_body::total_tokens`).
//!
//! Input: a response body. Properties, for bodies that are JSON:
//! - the document path (memmem, checked in place) and the fragment path (a walk from the start)
//!   give the same output;
//! - the renamed text says the same with only model names changed (see
//!   [`crate::json::assert_renamed`]);
//! - `total_tokens` of the body as serde_json writes it is its `usage.total_tokens`.
//!
//! Any other input must only not panic.

use airouter_core::json_body::total_tokens;
use airouter_core::model_names::{NameRewriter, ScanState};

use crate::json::{assert_renamed, Tree};
use crate::sse::{BACKENDS, CLIENT};

pub fn check(doc: &[u8]) {
    let names = NameRewriter::with_backends(CLIENT, &BACKENDS);
    let found = names.rewrite_document(doc);
    let _ = total_tokens(doc);
    let Some(tree) = Tree::parse(doc) else {
        return;
    };
    let show = format!("{:?}", String::from_utf8_lossy(doc));
    let mut walked = Vec::new();
    names.rewrite_fragment(&mut ScanState::default(), doc, &mut walked);
    let found = found.unwrap_or_else(|| doc.to_vec());
    assert!(
        found == walked,
        "documents and fragments are renamed differently\n  input: {show}\n  document: {:?}\n  fragment: {:?}",
        String::from_utf8_lossy(&found),
        String::from_utf8_lossy(&walked)
    );
    assert_renamed(&tree, &found, CLIENT, &BACKENDS, &show);

    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(doc) {
        let canonical = serde_json::to_vec(&value).unwrap();
        let expected = value
            .get("usage")
            .and_then(|u| u.get("total_tokens"))
            .and_then(serde_json::Value::as_u64);
        let read = total_tokens(&canonical);
        assert!(
            expected.is_none() || read == expected,
            "total_tokens read {read:?}, the body says {expected:?}: {:?}",
            String::from_utf8_lossy(&canonical)
        );
    }
}
