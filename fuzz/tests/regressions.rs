//! Replays saved fuzz inputs through the same property checks the fuzz targets run, in plain
//! `cargo test` (no libFuzzer, no nightly): every file of `fuzz/regressions/<target>/` (inputs
//! that once broke a property, kept so the class stays fixed) and of `fuzz/seeds/<target>/` (the
//! starting corpus, real-shaped inputs).

// Test code, helpers included, may fail loudly.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::fs;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use airouter_fuzz::TARGETS;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.is_file()
                && p.file_name()
                    .is_some_and(|n| !n.to_string_lossy().starts_with('.'))
        })
        .collect();
    files.sort();
    files
}

/// Runs every saved input of `target`; returns how many ran, and panics naming each that fails.
fn replay(target: &str) -> usize {
    let (_, check) = TARGETS.iter().find(|(name, _)| *name == target).unwrap();
    let mut failed = Vec::new();
    let mut ran = 0;
    for kind in ["regressions", "seeds"] {
        for file in files(&root().join(kind).join(target)) {
            let data = fs::read(&file).unwrap();
            ran += 1;
            if let Err(why) = catch_unwind(AssertUnwindSafe(|| check(&data))) {
                let why = why
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| why.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                failed.push(format!("{}: {why}", file.display()));
            }
        }
    }
    assert!(
        failed.is_empty(),
        "{} saved input(s) of `{target}` fail:\n{}",
        failed.len(),
        failed.join("\n")
    );
    ran
}

macro_rules! replay_tests {
    ($($target:ident),* $(,)?) => {
        $(
            #[test]
            fn $target() {
                let ran = replay(stringify!($target));
                assert!(ran > 0, "no saved inputs for `{}`: add seeds", stringify!($target));
            }
        )*

        /// Every target has a test here and a libFuzzer binary, and every corpus directory
        /// belongs to a target.
        #[test]
        fn every_target_and_directory_is_covered() {
            let tested = [$(stringify!($target)),*];
            let targets: Vec<&str> = TARGETS.iter().map(|(n, _)| *n).collect();
            assert_eq!(tested.to_vec(), targets);
            let manifest = fs::read_to_string(root().join("Cargo.toml")).unwrap();
            let bins: Vec<&str> = manifest
                .split("[[bin]]")
                .skip(1)
                .filter_map(|b| b.lines().find_map(|l| l.strip_prefix("name = \"")?.strip_suffix('"')))
                .collect();
            assert_eq!(bins, targets, "the [[bin]] targets of fuzz/Cargo.toml");
            for kind in ["regressions", "seeds"] {
                for dir in fs::read_dir(root().join(kind)).unwrap() {
                    let name = dir.unwrap().file_name().to_string_lossy().into_owned();
                    assert!(targets.contains(&name.as_str()), "{kind}/{name} is no fuzz target");
                }
            }
        }
    };
}

replay_tests!(
    json_body,
    multipart,
    sse,
    names,
    header_wire,
    retry_after,
    auth,
    config
);
