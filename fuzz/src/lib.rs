//! Properties of AI Router's parsers and editors, checked on arbitrary input. Each target's
//! `check` takes the raw bytes a fuzzer (or a saved file) supplies, derives its inputs from them
//! and panics when a property fails, which is how libFuzzer and the regression tests both see a
//! failure. The libFuzzer entry points in `fuzz_targets/` and `tests/regressions.rs` call the same
//! functions through [`TARGETS`], so a saved input replays exactly, without libFuzzer.
//!
//! Where a property exists it is checked, not just "no panic": an edited body parses and holds
//! exactly the new model, the SSE rewriter's output does not depend on where the stream was cut,
//! a config that compiles renders and recompiles to the same plan, and so on (see each module).

// A property that fails must panic: that is the signal libFuzzer and `cargo test` look for.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

pub mod auth;
pub mod config;
pub mod header_wire;
pub mod json;
pub mod json_body;
pub mod multipart;
pub mod names;
pub mod retry_after;
pub mod sse;

/// A target's property check: panics when the input breaks a property.
pub type Check = fn(&[u8]);

/// Every fuzz target by name (the name of its `fuzz_targets/` file and of its corpus directories),
/// with the property check it runs.
pub const TARGETS: [(&str, Check); 8] = [
    ("json_body", json_body::check),
    ("multipart", multipart::check),
    ("sse", sse::check),
    ("names", names::check),
    ("header_wire", header_wire::check),
    ("retry_after", retry_after::check),
    ("auth", auth::check),
    ("config", config::check),
];

/// Splits `data` at its first NUL byte: the part before, and the part after (if there is a NUL).
/// Several targets put their main input first, so that seed files are plain bodies, and an
/// optional second input after a NUL.
pub fn split_nul(data: &[u8]) -> (&[u8], Option<&[u8]>) {
    match data.iter().position(|b| *b == 0) {
        Some(at) => (&data[..at], Some(&data[at + 1..])),
        None => (data, None),
    }
}

/// A small deterministic generator seeded from the input itself, for choices (split points) that
/// must replay the same way from a saved file.
pub struct Rng(u64);

impl Rng {
    /// Seeded with an FNV-1a hash of `data`.
    pub fn from_data(data: &[u8]) -> Self {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in data {
            h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
        Rng(h | 1)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        if n == 0 {
            0
        } else {
            (self.0 % n as u64) as usize
        }
    }
}
