//! The record counts a sidecar restart must not forget ([`Sequences`]: per epoch, the numbers
//! received and the highest seen), kept in the log directory as [`STATE_FILE`], a small JSON
//! file: read when the sidecar starts, written by the writer thread at most every
//! [`SAVE_EVERY`] while records come and when it stops. Written under a temporary name and
//! renamed (a reader, or a sidecar starting after a crash, sees the old state or the new, never
//! half of one), readable by the sidecar's user only. Its name is not a record's, so rotation
//! leaves it alone.

use std::fs;
use std::io::{ErrorKind, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::Duration;

use super::sequences::Sequences;

/// The state file's name in the log directory (JSON inside, but not named `*.json`: tools
/// that read every `*.json` there read records only).
pub const STATE_FILE: &str = ".airouter-sequences.state";
/// Longest the state on disk trails the counts while records come.
pub const SAVE_EVERY: Duration = Duration::from_secs(1);

/// The state saved in `dir`: empty when there is none; an unreadable one is reported and
/// started over (its losses are forgotten, which the log says).
pub fn load(dir: &Path) -> Sequences {
    let path = dir.join(STATE_FILE);
    let text = match fs::read(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == ErrorKind::NotFound => return Sequences::default(),
        Err(e) => {
            tracing::warn!("session log: {}: {e}; counting starts over", path.display());
            return Sequences::default();
        }
    };
    match serde_json::from_slice::<Sequences>(&text) {
        Ok(s) => s.restored(),
        Err(e) => {
            tracing::warn!("session log: {}: {e}; counting starts over", path.display());
            Sequences::default()
        }
    }
}

/// Saves `state` (as JSON) in `dir`.
pub fn save(dir: &Path, state: &[u8]) -> std::io::Result<()> {
    let tmp = dir.join(format!("{STATE_FILE}.tmp"));
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(state)?;
    f.sync_data()?;
    drop(f);
    fs::rename(&tmp, dir.join(STATE_FILE))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!(
            "airouter-state-{name}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    const T: u64 = 1_796_006_587_972;

    #[test]
    fn the_counts_survive_a_restart_duplicates_and_losses_included() {
        let d = dir("round-trip");
        let mut s = Sequences::default();
        for n in [1, 2, 3, 5, 6, 9] {
            assert!(s.note(7, n, T));
        }
        assert!(s.note(8, 2, T));
        save(&d, &serde_json::to_vec(&s).unwrap()).unwrap();
        let mut back = load(&d);
        assert_eq!(back.len(), 2);
        assert_eq!(
            back.lost(T),
            3 + 1,
            "4, 7, 8 of epoch 7 and 1 of epoch 8, at once"
        );
        // What the previous sidecar received is a duplicate here, and what it missed may come.
        assert!(!back.note(7, 5, T + 1));
        assert!(back.note(7, 4, T + 1));
        assert!(back.note(7, 10, T + 1));
        assert_eq!(back.lost(T + 1 + 10_000), 2 + 1);
        let mode = fs::metadata(d.join(STATE_FILE)).unwrap();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
            0o600
        );
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn no_file_or_a_broken_one_starts_over() {
        let d = dir("broken");
        assert!(load(&d).is_empty());
        fs::write(d.join(STATE_FILE), "{\"epochs\": [oops").unwrap();
        assert!(load(&d).is_empty());
        fs::remove_dir_all(&d).unwrap();
    }
}
