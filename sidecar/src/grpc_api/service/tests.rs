//! The service against a stand-in for Envoy's OpenAI listener (a raw TCP server answering what
//! each test scripts): what the request carries, a refusal's status, an unreachable listener,
//! and a stream whose client leaves or whose deadline passes closing its connection.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_stream::StreamExt;
use tonic::Code;
use tonic_types::StatusExt;

use super::super::proto::Message;
use super::*;

fn chat() -> Request<GenerationRequest> {
    let mut req = Request::new(GenerationRequest {
        model: "chat".into(),
        messages: vec![Message {
            role: "user".into(),
            content: "hi".into(),
        }],
        ..Default::default()
    });
    let md = req.metadata_mut();
    md.insert("authorization", "Bearer sk-test".parse().unwrap());
    md.insert(
        "traceparent",
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
            .parse()
            .unwrap(),
    );
    md.insert("x-secret-header", "not forwarded".parse().unwrap());
    req
}

fn api(port: u16) -> RouterApi {
    let url = airouter_core::config::url::parse(&format!("http://127.0.0.1:{port}")).unwrap();
    RouterApi::new(&url, 60_000, 1 << 20)
}

/// Reads one request (head and content-length body) from `sock`.
async fn read_request(sock: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = sock.read(&mut chunk).await.unwrap();
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length: ")
                        .map(|v| v.trim().parse::<usize>().unwrap())
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + length {
                return text;
            }
        }
        assert!(n > 0, "the client closed before its request was complete");
    }
}

/// A listener that takes one connection, reads its request (returned) and writes `answer`;
/// with `then_wait`, it then waits for the client to close and says how long that took.
async fn stand_in(
    answer: &'static [u8],
    then_wait: bool,
) -> (u16, tokio::task::JoinHandle<(String, Option<Duration>)>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        let request = read_request(&mut sock).await;
        sock.write_all(answer).await.unwrap();
        if !then_wait {
            return (request, None);
        }
        let started = tokio::time::Instant::now();
        let mut rest = [0u8; 64];
        // EOF (0) or a reset: the client is gone.
        let closed = tokio::time::timeout(Duration::from_secs(5), async {
            while matches!(sock.read(&mut rest).await, Ok(n) if n > 0) {}
        })
        .await;
        (request, closed.ok().map(|()| started.elapsed()))
    });
    (port, task)
}

#[tokio::test]
async fn the_request_carries_credentials_and_trace_context_only_and_a_429_says_when_to_retry() {
    let (port, server) = stand_in(
        b"HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\nretry-after: 3\r\ncontent-length: 109\r\n\r\n{\"error\":{\"message\":\"Rate limit reached for key tester.\",\"type\":\"rate_limit_error\",\"param\":null,\"code\":null}}",
        false,
    )
    .await;
    let err = api(port).route_request(chat()).await.unwrap_err();
    let (request, _) = server.await.unwrap();
    assert!(
        request.starts_with("POST /v1/chat/completions HTTP/1.1\r\n"),
        "{request}"
    );
    let lower = request.to_ascii_lowercase();
    assert!(
        lower.contains("\r\nauthorization: bearer sk-test\r\n"),
        "{request}"
    );
    assert!(lower
        .contains("\r\ntraceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n"));
    assert!(!lower.contains("x-secret-header"), "{request}");
    assert!(
        request.ends_with(r#"{"messages":[{"content":"hi","role":"user"}],"model":"chat"}"#),
        "{request}"
    );
    assert_eq!(err.code(), Code::ResourceExhausted);
    assert_eq!(err.message(), "Rate limit reached for key tester.");
    assert_eq!(
        err.get_details_retry_info().unwrap().retry_delay,
        Some(Duration::from_secs(3))
    );
}

#[tokio::test]
async fn an_unreachable_listener_is_unavailable_and_not_named() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap().port()
    };
    let err = api(port).route_request(chat()).await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    assert!(
        !err.message().contains(&port.to_string()),
        "{}",
        err.message()
    );
    let err = api(port)
        .streaming_route_request(chat())
        .await
        .err()
        .unwrap();
    assert_eq!(err.code(), Code::Unavailable);
}

const STREAM_HEAD: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n4f\r\ndata: {\"model\":\"chat\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"tick \"}}]}\n\n\r\n";

#[tokio::test]
async fn a_stream_whose_client_leaves_closes_its_connection() {
    let (port, server) = stand_in(STREAM_HEAD, true).await;
    let mut stream = api(port)
        .streaming_route_request(chat())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stream.next().await.unwrap().unwrap().content, "tick ");
    drop(stream);
    let (request, closed) = server.await.unwrap();
    assert!(request.contains("\"stream\":true"), "{request}");
    let closed = closed.expect("the connection stayed open after the client left");
    assert!(closed < Duration::from_secs(2), "{closed:?}");
}

#[tokio::test]
async fn a_stream_past_its_deadline_ends_deadline_exceeded_and_closes_its_connection() {
    let (port, server) = stand_in(STREAM_HEAD, true).await;
    let mut req = chat();
    req.metadata_mut()
        .insert("grpc-timeout", "300m".parse().unwrap());
    let mut stream = api(port)
        .streaming_route_request(req)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stream.next().await.unwrap().unwrap().content, "tick ");
    let err = stream.next().await.unwrap().unwrap_err();
    assert_eq!(err.code(), Code::DeadlineExceeded);
    assert!(stream.next().await.is_none());
    let (_, closed) = server.await.unwrap();
    assert!(
        closed.is_some(),
        "the connection stayed open past the deadline"
    );
}

#[tokio::test]
async fn a_streamed_call_answered_whole_is_its_text_then_its_end() {
    let (port, _server) = stand_in(
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 93\r\n\r\n{\"model\":\"chat\",\"choices\":[{\"index\":0,\"message\":{\"content\":\"whole\"},\"finish_reason\":\"stop\"}]}",
        false,
    )
    .await;
    let stream = api(port)
        .streaming_route_request(chat())
        .await
        .unwrap()
        .into_inner();
    let out: Vec<GenerationResponse> = stream.map(Result::unwrap).collect().await;
    let shown: Vec<(&str, &str)> = out
        .iter()
        .map(|r| (r.content.as_str(), r.finish_reason.as_str()))
        .collect();
    assert_eq!(shown, [("whole", ""), ("", "stop")]);
    assert!(out.iter().all(|r| r.model == "chat"));
}
