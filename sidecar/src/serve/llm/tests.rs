//! Pins the bytes the sidecar sends today (events → OpenAI output), before the reshape.

use airouter_core::errors::ApiError;
use http_body_util::BodyExt;
use serde_json::json;
use tokio::sync::mpsc;

use super::*;
use crate::translate::openai_request;

fn out(chat: bool, choices: usize, echo: Option<Vec<String>>) -> Output {
    Output {
        chat,
        id: if chat { "chatcmpl-abc" } else { "cmpl-abc" }.into(),
        created: 1_700_000_000,
        model: "my-model".into(),
        choices,
        echo,
    }
}

fn channel(events: Vec<Event>) -> (Event, mpsc::Receiver<Event>) {
    let (tx, rx) = mpsc::channel(64);
    let mut it = events.into_iter();
    let first = it.next().unwrap();
    for e in it {
        tx.try_send(e).unwrap();
    }
    (first, rx)
}

async fn streamed(out: Output, include_usage: bool, events: Vec<Event>) -> String {
    let req = openai_request::chat(
        &json!({"messages":[{"role":"user","content":"x"}],"stream":true,"stream_options":{"include_usage":include_usage}}),
        16,
    )
    .unwrap();
    let (first, rx) = channel(events);
    let body = stream_response(out, req, first, rx)
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes();
    String::from_utf8(body.to_vec()).unwrap()
}

async fn aggregated(out: Output, events: Vec<Event>) -> String {
    let (first, rx) = channel(events);
    let resp = aggregate(out, first, rx)
        .await
        .unwrap_or_else(|e| error_response_for_test(&e));
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    format!("{status} {}\n", String::from_utf8(body.to_vec()).unwrap())
}

fn error_response_for_test(e: &ApiError) -> Response<Body> {
    super::super::error_response(e)
}

fn text(choice: usize, text: &str) -> Event {
    Event::Text {
        choice,
        text: text.into(),
    }
}

fn chat_events() -> Vec<Event> {
    vec![
        text(0, "Hel"),
        text(1, "Hi"),
        text(0, "lo"),
        Event::Done {
            choice: 0,
            reason: "stop",
        },
        Event::Done {
            choice: 1,
            reason: "length",
        },
        Event::Usage {
            prompt: 5,
            completion: 3,
        },
    ]
}

fn failure() -> ApiError {
    ApiError::with_status(
        500,
        "The model failed: engine died mid-stream".into(),
        Some("model_error"),
    )
}

#[tokio::test]
async fn chat_stream() {
    let got = streamed(out(true, 2, None), true, chat_events()).await;
    crate::golden::check("responses/chat_stream.sse", &got);
}

#[tokio::test]
async fn chat_aggregate() {
    let got = aggregated(out(true, 2, None), chat_events()).await;
    crate::golden::check("responses/chat.json", &got);
}

#[tokio::test]
async fn chat_stream_failure() {
    let events = vec![text(0, "Hel"), Event::Failed(failure())];
    let got = streamed(out(true, 1, None), false, events.clone_events()).await;
    crate::golden::check("responses/chat_stream_error.sse", &got);
    let got = aggregated(out(true, 1, None), events).await;
    crate::golden::check("responses/chat_error.json", &got);
}

#[tokio::test]
async fn chat_stream_cut_short() {
    let got = streamed(out(true, 1, None), false, vec![text(0, "Hel")]).await;
    crate::golden::check("responses/chat_stream_cut.sse", &got);
}

fn echo_events() -> Vec<Event> {
    vec![
        text(0, " hi"),
        text(0, " there"),
        Event::Done {
            choice: 0,
            reason: "stop",
        },
        Event::Usage {
            prompt: 1,
            completion: 2,
        },
    ]
}

#[tokio::test]
async fn completions_stream_echo() {
    let got = streamed(out(false, 1, Some(vec!["Say".into()])), true, echo_events()).await;
    crate::golden::check("responses/completions_stream_echo.sse", &got);
}

#[tokio::test]
async fn completions_aggregate() {
    let events = vec![
        text(0, "four words of text"),
        Event::Done {
            choice: 0,
            reason: "length",
        },
        text(1, "z"),
        Event::Done {
            choice: 1,
            reason: "stop",
        },
        Event::Usage {
            prompt: 2,
            completion: 6,
        },
    ];
    let got = aggregated(out(false, 2, None), events).await;
    crate::golden::check("responses/completions.json", &got);
}

trait CloneEvents {
    fn clone_events(&self) -> Vec<Event>;
}

impl CloneEvents for Vec<Event> {
    fn clone_events(&self) -> Vec<Event> {
        self.iter()
            .map(|e| match e {
                Event::Text { choice, text } => Event::Text {
                    choice: *choice,
                    text: text.clone(),
                },
                Event::Done { choice, reason } => Event::Done {
                    choice: *choice,
                    reason,
                },
                Event::Usage { prompt, completion } => Event::Usage {
                    prompt: *prompt,
                    completion: *completion,
                },
                Event::Failed(e) => Event::Failed(e.clone()),
            })
            .collect()
    }
}

#[tokio::test]
async fn embeddings() {
    let vectors = [vec![0.5, -1.0], vec![0.25, 2.0]];
    for (name, base64) in [("float", false), ("base64", true)] {
        let body = crate::translate::embeddings::response("my-embedder", &vectors, base64, 3);
        let resp = super::super::json_response(200, &body);
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let got = format!("200 {}\n", String::from_utf8(bytes.to_vec()).unwrap());
        crate::golden::check(&format!("responses/embeddings_{name}.json"), &got);
    }
}
