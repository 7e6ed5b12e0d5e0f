//! The session records' sequence (`session/sequence.rs`) on the shared data every worker sees:
//! numbers from 1 without holes under one epoch, compare-and-swap against other workers, two
//! workers starting a sequence at once, and no shared data touched without a session log.

use std::collections::VecDeque;
use std::rc::Rc;

use serde_json::Value;

use super::host::*;
use crate::config::compile;
use crate::contract::{SESSION_PROPERTY, SHARED_SESSION_SEQUENCE_KEY};
use crate::flow::HttpFlow;
use crate::metrics;

const BODY: &[u8] = br#"{"model":"chat-small","messages":[{"role":"user","content":"hi"}]}"#;

/// One request (refused: a wrong key is the shortest way to a record) on a host holding
/// `shared` data, with `races` by other workers; the host after its log callback.
fn one_request(
    session_log: bool,
    shared: &FakeHost,
    races: Vec<(String, Vec<u8>)>,
    now: u64,
) -> FakeHost {
    let log = if session_log { "\n[session_log]\n" } else { "" };
    let plan = compile("t.toml", &format!("{CONFIG}{log}"), &|_| None).unwrap();
    let mut f = HttpFlow::new(Rc::new(plan));
    let mut h = chat("sk-wrong", BODY);
    h.shared = shared.shared.clone();
    h.races = VecDeque::from(races);
    h.now = now;
    let mut h = send(&mut f, h);
    f.on_log(&mut h);
    h
}

/// The record's `sequence`: epoch and number.
fn sequence(h: &FakeHost) -> Option<(u64, u64)> {
    let r: Value = serde_json::from_str(&h.state[SESSION_PROPERTY]).unwrap();
    let s = r.get("sequence")?;
    Some((s["epoch"].as_u64().unwrap(), s["n"].as_u64().unwrap()))
}

fn stored(epoch: u64, n: u64) -> Vec<u8> {
    [epoch.to_le_bytes(), n.to_le_bytes()].concat()
}

fn key() -> String {
    SHARED_SESSION_SEQUENCE_KEY.to_string()
}

#[test]
fn records_are_numbered_from_one_without_holes_under_one_epoch() {
    let mut h = FakeHost::default();
    let mut seen = Vec::new();
    for i in 0..5 {
        h = one_request(true, &h, Vec::new(), 1_700_000_000_000 + i);
        seen.push(sequence(&h).unwrap());
        assert_eq!(h.counters[metrics::SESSION_RECORDS], 1);
    }
    // The epoch is the start's time in ms, times 1000, plus the CAS token's last digits.
    let epoch = seen[0].0;
    assert_eq!(epoch / 1000, 1_700_000_000_000);
    assert_eq!(seen, (1..=5).map(|n| (epoch, n)).collect::<Vec<_>>());
    assert_eq!(h.shared[&key()].0, stored(epoch, 5));
}

#[test]
fn a_number_another_worker_took_first_is_not_taken_again() {
    let mut h = one_request(true, &FakeHost::default(), Vec::new(), 7);
    let (epoch, _) = sequence(&h).unwrap();
    // Between this worker's read and its write, another worker took numbers 2 to 5.
    h = one_request(true, &h, vec![(key(), stored(epoch, 5))], 8);
    assert_eq!(sequence(&h), Some((epoch, 6)));
    assert_eq!(h.shared[&key()].0, stored(epoch, 6));
}

#[test]
fn a_worker_starting_a_sequence_late_in_the_same_ms_starts_a_new_epoch_not_a_reused_one() {
    let first = one_request(true, &FakeHost::default(), Vec::new(), 9);
    let (epoch, n) = sequence(&first).unwrap();
    assert_eq!(n, 1);
    // Another worker, which found no sequence before the first began, writes its placeholder
    // over it: this worker's write conflicts, and it starts a sequence of its own.
    let second = one_request(true, &first, vec![(key(), vec![0])], 9);
    let (other, n) = sequence(&second).unwrap();
    assert_eq!(n, 1);
    assert_ne!(other, epoch, "same millisecond, different epochs");
    assert_eq!(other / 1000, epoch / 1000);
    let third = one_request(true, &second, Vec::new(), 10);
    assert_eq!(sequence(&third), Some((other, 2)));
}

#[test]
fn a_sequence_that_keeps_conflicting_leaves_the_record_unnumbered_but_made() {
    let start = one_request(true, &FakeHost::default(), Vec::new(), 1);
    let (epoch, _) = sequence(&start).unwrap();
    let races = (2..40).map(|n| (key(), stored(epoch, n))).collect();
    let h = one_request(true, &start, races, 2);
    assert_eq!(sequence(&h), None);
    assert_eq!(h.counters[metrics::SESSION_RECORDS], 1);
}

#[test]
fn without_a_session_log_no_number_is_taken() {
    let h = one_request(false, &FakeHost::default(), Vec::new(), 1);
    assert!(!h.state.contains_key(SESSION_PROPERTY));
    assert!(!h.shared.contains_key(SHARED_SESSION_SEQUENCE_KEY));
}
