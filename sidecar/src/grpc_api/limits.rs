//! tonic's message-size refusals under gRPC's code for them. tonic refuses a message over its
//! configured size (`max_decoding_message_size`, and the encoding one) with `OUT_OF_RANGE`, a code
//! gRPC's status-code guide (`doc/statuscodes.md`) says its libraries never generate: a message
//! larger than the configured limit is `RESOURCE_EXHAUSTED` there. [`SizeLimits`] wraps the
//! `Router` service and rewrites those answers (the service itself never answers `OUT_OF_RANGE`,
//! so every one is tonic's), with a message saying the limit.

use std::task::{Context, Poll};

use tonic::codegen::{http, BoxFuture, Service};
use tonic::server::NamedService;
use tonic::Code;

/// `grpc-status` of tonic's size refusals (`OUT_OF_RANGE`).
const OUT_OF_RANGE: &str = "11";

/// A gRPC service whose size refusals are `RESOURCE_EXHAUSTED`; `limit` is the request limit
/// (in bytes) the message names.
#[derive(Debug, Clone)]
pub struct SizeLimits<S> {
    inner: S,
    limit: usize,
}

impl<S> SizeLimits<S> {
    /// `inner`, whose requests are limited to `limit` bytes.
    pub fn new(inner: S, limit: usize) -> Self {
        SizeLimits { inner, limit }
    }
}

impl<S: NamedService> NamedService for SizeLimits<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, Req, B> Service<Req> for SizeLimits<S>
where
    S: Service<Req, Response = http::Response<B>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        let answer = self.inner.call(req);
        let limit = self.limit;
        Box::pin(async move {
            let mut resp = answer.await?;
            rewrite(resp.headers_mut(), limit);
            Ok(resp)
        })
    }
}

/// Makes a trailers-only `OUT_OF_RANGE` answer (`headers`) `RESOURCE_EXHAUSTED`.
fn rewrite(headers: &mut http::HeaderMap, limit: usize) {
    if headers.get("grpc-status").map(http::HeaderValue::as_bytes) != Some(OUT_OF_RANGE.as_bytes())
    {
        return;
    }
    let code = Code::ResourceExhausted as i32;
    headers.insert("grpc-status", http::HeaderValue::from(code));
    // grpc-message is percent-encoded; printable ASCII other than `%` stands for itself.
    let message =
        format!("the request message is larger than the router takes ({limit} bytes at most)");
    if let Ok(v) = http::HeaderValue::from_str(&message) {
        headers.insert("grpc-message", v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_range_becomes_resource_exhausted_and_other_codes_stay() {
        let mut h = http::HeaderMap::new();
        h.insert("grpc-status", "11".parse().unwrap());
        h.insert(
            "grpc-message",
            "Error,%20decoded%20message%20length%20too%20large"
                .parse()
                .unwrap(),
        );
        rewrite(&mut h, 1024);
        assert_eq!(h["grpc-status"], "8");
        assert_eq!(
            h["grpc-message"],
            "the request message is larger than the router takes (1024 bytes at most)"
        );
        for other in ["0", "3", "13"] {
            let mut h = http::HeaderMap::new();
            h.insert("grpc-status", other.parse().unwrap());
            rewrite(&mut h, 1024);
            assert_eq!(h["grpc-status"], other);
            assert!(h.get("grpc-message").is_none());
        }
        let mut none = http::HeaderMap::new();
        rewrite(&mut none, 1);
        assert!(none.is_empty());
    }
}
