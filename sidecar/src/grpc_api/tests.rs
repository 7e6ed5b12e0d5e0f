//! The descriptor sets: what reflection serves and what Envoy's transcoder reads.

use prost::Message;
use prost_types::FileDescriptorSet;

use super::*;

fn names(bytes: &[u8]) -> Vec<String> {
    FileDescriptorSet::decode(bytes)
        .unwrap()
        .file
        .into_iter()
        .map(|f| f.name.unwrap())
        .collect()
}

#[test]
fn the_transcoder_knows_the_api_and_every_error_detail_once() {
    let set = transcoder_descriptor_set();
    let files = names(&set);
    for f in [
        "airouter/v1/router.proto",
        "google/api/annotations.proto",
        "google/api/http.proto",
        "google/protobuf/struct.proto",
    ] {
        assert!(files.iter().any(|n| n == f), "{f} missing from {files:?}");
    }
    let messages: Vec<String> = FileDescriptorSet::decode(set.as_slice())
        .unwrap()
        .file
        .into_iter()
        .flat_map(|f| {
            let package = f.package.unwrap_or_default();
            f.message_type
                .into_iter()
                .map(move |m| format!("{package}.{}", m.name.unwrap()))
        })
        .collect();
    for m in [
        "google.rpc.Status",
        "google.rpc.ErrorInfo",
        "google.rpc.RetryInfo",
        "google.rpc.BadRequest",
        "google.protobuf.Any",
        "google.protobuf.Duration",
    ] {
        assert!(messages.iter().any(|n| n == m), "{m} missing");
    }
    let mut unique = files.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), files.len(), "a file twice: {files:?}");
    // The API's own files come first, unchanged (protox kept the `google.api.http` options,
    // which decoding into prost's types would drop).
    assert!(set.starts_with(DESCRIPTOR_SET));
}

#[test]
fn the_descriptor_set_carries_the_http_rules() {
    // The option's bytes: field 72295728 of MethodOptions holds the HttpRule with `post`.
    for path in ["/v1/route", "/v1/route:stream"] {
        assert!(
            DESCRIPTOR_SET
                .windows(path.len())
                .any(|w| w == path.as_bytes()),
            "{path}"
        );
    }
}
