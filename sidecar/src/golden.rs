//! Golden files for tests: compares text with `golden/<name>`; `AIROUTER_BLESS=1` rewrites them.

use std::path::PathBuf;

/// Asserts `text` equals the golden file `golden/<name>` (relative to the sidecar crate).
pub fn check(name: &str, text: &str) {
    let file = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("golden")
        .join(name);
    if std::env::var_os("AIROUTER_BLESS").is_some() {
        std::fs::write(&file, text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    }
    let want = std::fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("{}: {e} (AIROUTER_BLESS=1 writes it)", file.display()));
    assert_eq!(
        text, want,
        "golden file {name} differs (AIROUTER_BLESS=1 rewrites it)"
    );
}
