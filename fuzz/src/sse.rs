//! The SSE framer and the stream renamer (`sse`, with `model_names` underneath).
//!
//! Input: the bytes a backend streams. They are fed whole, one byte at a time, and cut at points
//! drawn from the input itself. Properties:
//! - the framer loses and adds nothing (its events and its final rest are the input), each
//!   event ends where `event_end` says, and the events do not depend on the cuts;
//! - the renamer's output, its `[DONE]` flag and the usage it read do not depend on the cuts,
//!   with and without removing the usage-only chunk;
//! - in each event whose data lines form a JSON text, the renamed text says the same with only
//!   model names changed: every `model` string is the client's name, no string equals a backend
//!   name, nothing else changed (see [`crate::json::assert_renamed`]).

use airouter_core::model_names::NameRewriter;
use airouter_core::sse::{event_end, SseFramer, SseModelRewriter};

use crate::json::{assert_renamed, Tree};
use crate::Rng;

/// The client's name, and the backend names a response may carry (one with a `/`, which JSON
/// may escape, and one beyond ASCII, which JSON may write as `\u` escapes).
pub const CLIENT: &str = "my-chat";
pub const BACKENDS: [&str; 3] = ["llama-3-backend", "org/b-x", "modèle-7"];

/// Every way the input is cut: whole, at every byte, and at a few drawn points.
fn cuttings(data: &[u8]) -> Vec<Vec<&[u8]>> {
    let mut rng = Rng::from_data(data);
    let mut cuts: Vec<usize> = (0..rng.below(6))
        .map(|_| rng.below(data.len() + 1))
        .collect();
    cuts.sort_unstable();
    let mut drawn = Vec::new();
    let mut prev = 0;
    for c in cuts.into_iter().chain([data.len()]) {
        drawn.push(&data[prev..c]);
        prev = c;
    }
    vec![vec![data], data.chunks(1).collect(), drawn]
}

fn show(data: &[u8]) -> String {
    format!("{:?}", String::from_utf8_lossy(data))
}

pub fn check(data: &[u8]) {
    let cuttings = cuttings(data);
    check_framer(data, &cuttings);
    for strip in [false, true] {
        let runs: Vec<Run> = cuttings
            .iter()
            .map(|chunks| rewrite(chunks, strip))
            .collect();
        for run in &runs[1..] {
            assert!(
                *run == runs[0],
                "the renamed stream depends on where it was cut (strip_usage {strip})\n  input: {}\n  whole: {:?}\n  cut: {:?}",
                show(data),
                runs[0],
                run
            );
        }
        check_renamed(data, &runs[0].output, strip);
    }
}

fn frame(chunks: &[&[u8]]) -> (Vec<Vec<u8>>, Vec<u8>) {
    let mut framer = SseFramer::default();
    let mut events = Vec::new();
    for chunk in chunks {
        framer.push(chunk, &mut |e| events.push(e.to_vec()));
    }
    (events, framer.finish())
}

fn check_framer(data: &[u8], cuttings: &[Vec<&[u8]>]) {
    let (events, rest) = frame(&cuttings[0]);
    assert_eq!(
        [events.concat(), rest.clone()].concat(),
        data,
        "the framer lost or added bytes of {}",
        show(data)
    );
    for e in &events {
        // A CR at the very end is a line end only once the next byte is known.
        let end = match e.last() {
            Some(b'\r') => event_end(&[e.as_slice(), b"x"].concat()),
            _ => event_end(e),
        };
        assert_eq!(
            end,
            Some(e.len()),
            "an event that does not end where it should: {}",
            show(e)
        );
    }
    for chunks in &cuttings[1..] {
        assert_eq!(
            frame(chunks),
            (events.clone(), rest.clone()),
            "the framer's events depend on the cuts of {}",
            show(data)
        );
    }
}

#[derive(Debug, PartialEq, Eq)]
struct Run {
    output: Vec<u8>,
    saw_done: bool,
    usage: Option<u64>,
}

fn rewrite(chunks: &[&[u8]], strip: bool) -> Run {
    let names = NameRewriter::with_backends(CLIENT, &BACKENDS);
    let mut r = if strip {
        SseModelRewriter::stripping_usage(names)
    } else {
        SseModelRewriter::new(names)
    };
    let mut output = Vec::new();
    for chunk in chunks {
        output.extend(r.feed(chunk));
    }
    output.extend(r.finish());
    Run {
        output,
        saw_done: r.saw_done(),
        usage: r.usage_tokens(),
    }
}

/// The JSON text of an event: its data lines' values joined by LF, as an EventSource client
/// reads them.
pub fn event_data(event: &[u8]) -> Option<Vec<u8>> {
    let mut data: Option<Vec<u8>> = None;
    let mut rest = event;
    while !rest.is_empty() {
        let end = rest
            .iter()
            .position(|b| *b == b'\n' || *b == b'\r')
            .unwrap_or(rest.len());
        let line = &rest[..end];
        let eol = match (rest.get(end), rest.get(end + 1)) {
            (Some(b'\r'), Some(b'\n')) => 2,
            (Some(_), _) => 1,
            (None, _) => 0,
        };
        rest = &rest[end + eol..];
        if let Some(value) = line.strip_prefix(b"data:") {
            let value = value.strip_prefix(b" ").unwrap_or(value);
            let joined = data.get_or_insert_with(Vec::new);
            if !joined.is_empty() {
                joined.push(b'\n');
            }
            joined.extend_from_slice(value);
        }
    }
    data
}

fn check_renamed(data: &[u8], output: &[u8], strip: bool) {
    let (before, before_rest) = frame(&[data]);
    let (after, after_rest) = frame(&[output]);
    // Events keep their places (a removed usage chunk aside: compare only when none went). The
    // unterminated last event is one too: a stripping rewriter may remove it as well.
    if before.len() != after.len() {
        return;
    }
    let rest_removed = strip && after_rest.is_empty() && !before_rest.is_empty();
    let rest = (!rest_removed).then_some((&before_rest, &after_rest));
    for (b, a) in before.iter().zip(&after).chain(rest) {
        let Some(text) = event_data(b) else { continue };
        let Some(tree) = Tree::parse(&text) else {
            continue;
        };
        let renamed = event_data(a).unwrap_or_default();
        assert_renamed(&tree, &renamed, CLIENT, &BACKENDS, &show(b));
    }
}
