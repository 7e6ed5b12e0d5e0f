//! The async glue of chat and completions: the first event, the loop over the driver's channel,
//! and the end of the stream give the same bytes as the pure path's goldens
//! (`translate/openai_response/tests.rs`), and a driver that stops early still ends the answer.

use airouter_core::errors::ApiError;
use http_body_util::BodyExt;
use tokio::sync::mpsc;

use super::*;

fn out(choices: usize) -> Completion {
    Completion {
        chat: true,
        id: "chatcmpl-abc".into(),
        created: 1_700_000_000,
        model: "my-model".into(),
        choices,
        echo: None,
    }
}

/// The first event, and a channel holding the rest whose sender is gone.
fn channel(events: Vec<Event>) -> (Event, mpsc::Receiver<Event>) {
    let (tx, rx) = mpsc::channel(64);
    let mut it = events.into_iter();
    let first = it.next().unwrap();
    for e in it {
        tx.try_send(e).unwrap();
    }
    (first, rx)
}

async fn text_of(resp: Response<Body>) -> String {
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    format!("{status} {}", String::from_utf8(body.to_vec()).unwrap())
}

async fn streamed(out: Completion, include_usage: bool, events: Vec<Event>) -> String {
    let (first, rx) = channel(events);
    let resp = stream_response(StreamEncoder::new(out, include_usage), first, rx);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    assert_eq!(resp.headers()["cache-control"], "no-cache");
    text_of(resp).await.replacen("200 ", "", 1)
}

async fn aggregated(out: Completion, events: Vec<Event>) -> String {
    let (first, rx) = channel(events);
    let resp = aggregate(Aggregate::new(out), first, rx)
        .await
        .unwrap_or_else(|e| super::super::error_response(&e));
    text_of(resp).await + "\n"
}

fn text(choice: usize, text: &str) -> Event {
    Event::Text {
        choice,
        text: text.into(),
    }
}

fn two_choices() -> Vec<Event> {
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

#[tokio::test]
async fn streamed_and_gathered_answers() {
    let got = streamed(out(2), true, two_choices()).await;
    crate::golden::check("responses/chat_stream.sse", &got);
    let got = aggregated(out(2), two_choices()).await;
    crate::golden::check("responses/chat.json", &got);
}

#[tokio::test]
async fn failures_end_the_stream_or_become_the_response() {
    let failure = ApiError::with_status(
        500,
        "The model failed: engine died mid-stream".into(),
        Some("model_error"),
    );
    let events = vec![text(0, "Hel"), Event::Failed(failure)];
    let got = streamed(out(1), false, events.clone()).await;
    crate::golden::check("responses/chat_stream_error.sse", &got);
    let got = aggregated(out(1), events).await;
    crate::golden::check("responses/chat_error.json", &got);
}

#[tokio::test]
async fn a_driver_that_stops_early_still_ends_the_answer() {
    let got = streamed(out(1), false, vec![text(0, "Hel")]).await;
    crate::golden::check("responses/chat_stream_cut.sse", &got);
    let got = aggregated(out(1), vec![text(0, "Hel")]).await;
    assert!(
        got.starts_with("500 ") && got.contains("the answer stopped unexpectedly"),
        "{got}"
    );
}
