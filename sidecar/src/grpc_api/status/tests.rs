//! The status mapping: every HTTP status and stream error, retry hints in each form, bodies that
//! are not OpenAI errors.

use super::*;

fn envelope(message: &str, kind: &str, code: Option<&str>) -> Vec<u8> {
    airouter_core::errors::envelope(message, kind, None, code)
}

#[test]
fn every_status_the_router_answers_has_its_code() {
    let cases = [
        (400, Code::InvalidArgument),
        (401, Code::Unauthenticated),
        (403, Code::PermissionDenied),
        (404, Code::NotFound),
        (405, Code::Unimplemented),
        (408, Code::DeadlineExceeded),
        (409, Code::Aborted),
        (413, Code::ResourceExhausted),
        (431, Code::ResourceExhausted),
        (422, Code::InvalidArgument),
        (429, Code::ResourceExhausted),
        (499, Code::Cancelled),
        (500, Code::Internal),
        (501, Code::Unimplemented),
        (502, Code::Unavailable),
        (503, Code::Unavailable),
        (504, Code::DeadlineExceeded),
        (507, Code::Internal),
        (529, Code::Unavailable),
    ];
    for (http, grpc) in cases {
        assert_eq!(code_for(Some(http), None, None), grpc, "{http}");
    }
    assert_eq!(
        code_for(Some(400), None, Some("model_not_found")),
        Code::NotFound
    );
}

#[test]
fn stream_errors_go_by_type_and_code() {
    let cases = [
        (
            Some("server_error"),
            Some("stream_truncated"),
            Code::Unavailable,
        ),
        (
            Some("server_error"),
            Some("upstream_timeout"),
            Code::DeadlineExceeded,
        ),
        (
            Some("server_error"),
            Some("stream_event_too_large"),
            Code::Internal,
        ),
        (Some("rate_limit_error"), None, Code::ResourceExhausted),
        (Some("invalid_request_error"), None, Code::InvalidArgument),
        (Some("authentication_error"), None, Code::Unauthenticated),
        (Some("permission_error"), None, Code::PermissionDenied),
        (Some("not_found_error"), None, Code::NotFound),
        (None, None, Code::Internal),
    ];
    for (kind, code, grpc) in cases {
        assert_eq!(code_for(None, kind, code), grpc, "{kind:?} {code:?}");
    }
}

#[test]
fn a_429_keeps_its_message_and_says_when_to_retry() {
    let mut headers = HeaderMap::new();
    headers.insert("retry-after", "7".parse().unwrap());
    let body = envelope(
        "Rate limit reached for key team-a.",
        "rate_limit_error",
        Some("rate_limit_exceeded"),
    );
    let s = from_http(429, &headers, &body);
    assert_eq!(s.code(), Code::ResourceExhausted);
    assert_eq!(s.message(), "Rate limit reached for key team-a.");
    let retry = s.get_details_retry_info().unwrap();
    assert_eq!(retry.retry_delay, Some(Duration::from_secs(7)));
    let info = s.get_details_error_info().unwrap();
    assert_eq!(info.reason, "RATE_LIMIT_EXCEEDED");
    assert_eq!(info.domain, "airouter");
    assert_eq!(info.metadata["http_status"], "429");
    assert_eq!(info.metadata["type"], "rate_limit_error");
}

#[test]
fn retry_hints_in_each_form() {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    let hint = |pairs: &[(&'static str, &str)]| {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        retry_delay(&h, now)
    };
    assert_eq!(
        hint(&[("retry-after-ms", "1500"), ("retry-after", "9")]),
        Some(Duration::from_millis(1500))
    );
    assert_eq!(
        hint(&[("retry-after", "30")]),
        Some(Duration::from_secs(30))
    );
    let later = httpdate::fmt_http_date(now + Duration::from_secs(120));
    assert_eq!(
        hint(&[("retry-after", &later)]),
        Some(Duration::from_secs(120))
    );
    let earlier = httpdate::fmt_http_date(now - Duration::from_secs(5));
    assert_eq!(hint(&[("retry-after", &earlier)]), Some(Duration::ZERO));
    assert_eq!(hint(&[("retry-after", "99999999")]), Some(MAX_RETRY));
    assert_eq!(hint(&[("retry-after", "soon")]), None);
    assert_eq!(hint(&[]), None);
}

#[test]
fn bodies_that_are_not_openai_errors_get_a_message_of_their_status() {
    let s = from_http(502, &HeaderMap::new(), b"upstream connect error");
    assert_eq!(s.code(), Code::Unavailable);
    assert_eq!(s.message(), "the router answered with HTTP status 502");
    assert_eq!(s.get_details_error_info().unwrap().reason, "HTTP_502");
    assert!(s.get_details_retry_info().is_none());
    let s = from_http(
        404,
        &HeaderMap::new(),
        &envelope(
            "The model `x` does not exist.",
            "invalid_request_error",
            Some("model_not_found"),
        ),
    );
    assert_eq!(
        (s.code(), s.message()),
        (Code::NotFound, "The model `x` does not exist.")
    );
    assert_eq!(
        s.get_details_error_info().unwrap().reason,
        "MODEL_NOT_FOUND"
    );
}

#[test]
fn reasons_are_upper_snake_case() {
    assert_eq!(reason("invalid_api_key"), "INVALID_API_KEY");
    assert_eq!(reason("weird code!"), "WEIRDCODE");
    assert_eq!(reason(&"a".repeat(100)).len(), 63);
}

#[test]
fn what_the_answer_puts_in_a_status_is_bounded() {
    let long = format!("é\u{1b}[31m\n{}", "m".repeat(100_000));
    let body = serde_json::to_vec(&serde_json::json!({"error": {
        "message": long, "type": "t".repeat(5000), "param": "p".repeat(5000), "code": "x".repeat(5000)
    }}))
    .unwrap();
    for s in [
        from_http(400, &HeaderMap::new(), &body),
        from_stream_error(&serde_json::from_slice::<Envelope>(&body).unwrap().error),
    ] {
        assert!(
            s.message().len() <= MAX_MESSAGE_BYTES,
            "{}",
            s.message().len()
        );
        assert!(s.message().starts_with("é [31m m") && s.message().ends_with("..."));
        // The details hold the message again, then the ErrorInfo.
        assert!(
            s.details().len() < 2 * MAX_MESSAGE_BYTES,
            "{}",
            s.details().len()
        );
    }
    // Fields of other types than OpenAI's are absent, and the error stays an error.
    let odd = br#"{"error": {"message": 5, "type": ["x"], "param": {"a": 1}, "code": null}}"#;
    let e = serde_json::from_slice::<Envelope>(odd).unwrap().error;
    assert!(e.message.is_none() && e.kind.is_none() && e.param.is_none());
    assert_eq!(
        from_http(400, &HeaderMap::new(), odd).message(),
        "the router answered with HTTP status 400"
    );
}
