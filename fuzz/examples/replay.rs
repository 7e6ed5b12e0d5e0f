//! Replays inputs through a target's property check without libFuzzer, for triage:
//! `cargo run -p airouter-fuzz --example replay -- TARGET FILE_OR_DIR...` prints, per distinct
//! failure (its first line), how many inputs hit it and the smallest of them.

// A developer tool: it reports failures by printing them, and may stop on bad arguments.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;

/// `text` with every `"..."` (Debug-quoted, so `\"` inside) shortened to `"…"`.
fn unquoted(text: &str) -> String {
    let (mut out, mut quoted, mut escaped) = (String::new(), false, false);
    for c in text.chars() {
        match (quoted, escaped, c) {
            (true, true, _) => escaped = false,
            (true, false, '\\') => escaped = true,
            (true, false, '"') => {
                quoted = false;
                out.push_str("…\"");
            }
            (true, false, _) => {}
            (false, _, '"') => {
                quoted = true;
                out.push('"');
            }
            (false, _, c) => out.push(c),
        }
    }
    out
}

fn main() {
    let mut args = std::env::args().skip(1);
    let target = args.next().expect("usage: replay TARGET FILE_OR_DIR...");
    let (_, check) = airouter_fuzz::TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .unwrap_or_else(|| panic!("no target {target}"));
    let mut files: Vec<PathBuf> = Vec::new();
    for arg in args {
        let path = PathBuf::from(arg);
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        } else {
            files.push(path);
        }
    }
    std::panic::set_hook(Box::new(|_| {}));
    let mut failures: BTreeMap<String, (usize, PathBuf, usize)> = BTreeMap::new();
    for file in &files {
        let data = std::fs::read(file).unwrap();
        let Err(why) = catch_unwind(AssertUnwindSafe(|| check(&data))) else {
            continue;
        };
        let why = why
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| why.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        // The first line, without the inputs it quotes: the kind of failure.
        let kind = unquoted(why.lines().next().unwrap_or(""));
        let entry = failures
            .entry(kind)
            .or_insert((0, file.clone(), usize::MAX));
        entry.0 += 1;
        if data.len() < entry.2 {
            (entry.1, entry.2) = (file.clone(), data.len());
        }
    }
    println!(
        "{} inputs, {} failing",
        files.len(),
        failures.values().map(|f| f.0).sum::<usize>()
    );
    for (kind, (n, smallest, _)) in failures {
        println!("{n:6}  {kind}\n        e.g. {}", smallest.display());
    }
}
