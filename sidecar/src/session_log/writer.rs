//! The thread that writes session records, one JSON file each, and rotates them. Each file is
//! written under a temporary name and then linked to its own (so a reader never sees half a
//! record, and no record ever replaces another), readable by the sidecar's user only. Names come
//! from the writer alone (the time, the process, a sequence number: see [`file_name`]), never
//! from anything a client sent.

use std::fs;
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use airouter_core::config::SessionLog;

use super::rotation::Rotation;
use super::Stats;

/// How often records are checked for age when none are written.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// The name of a record written at `ms` (since the epoch) by process `boot`, its `seq`-th:
/// `YYYYMMDDTHHMMSS.mmmZ-BBBBBBBB-SSSSSSSSSS.json`, sorting in the order written.
pub fn file_name(ms: u64, boot: u32, seq: u64) -> String {
    let time = i64::try_from(ms)
        .ok()
        .and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    format!(
        "{}-{boot:08x}-{seq:010}.json",
        time.strftime("%Y%m%dT%H%M%S%.3fZ")
    )
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

struct Writer {
    dir: PathBuf,
    rotation: Rotation,
    boot: u32,
    seq: u64,
    stats: Arc<Stats>,
}

/// Creates `dir` when missing, takes the records already there into the rotation, and starts
/// the writer thread; the queue that feeds it.
pub(super) fn spawn(
    log: &SessionLog,
    dir: PathBuf,
    stats: Arc<Stats>,
) -> Result<Sender<Vec<u8>>, String> {
    let shown = |e: std::io::Error| format!("{} (session_log.dir): {e}", dir.display());
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(shown)?;
    let found = fs::read_dir(&dir)
        .map_err(shown)?
        .filter_map(|e| e.ok()?.file_name().into_string().ok());
    let max_age_ms = u64::from(log.max_age_days) * 86_400_000;
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let mut w = Writer {
        dir,
        boot: std::process::id().rotate_left(16) ^ nanos,
        seq: 0,
        stats,
        rotation: Rotation::new(log.max_files, max_age_ms),
    };
    let over = w.rotation.existing(found);
    w.delete(over);
    let expired = w.rotation.expired(now_ms());
    w.delete(expired);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("session-log".into())
        .spawn(move || w.run(&rx))
        .map_err(|e| format!("session log writer: {e}"))?;
    Ok(tx)
}

impl Writer {
    fn run(mut self, rx: &Receiver<Vec<u8>>) {
        let mut last_sweep = now_ms();
        loop {
            match rx.recv_timeout(SWEEP_EVERY) {
                Ok(record) => {
                    let len = record.len() as u64;
                    let now = now_ms();
                    match self.write(&record, now) {
                        Ok(()) => self.stats.written.fetch_add(1, Ordering::Relaxed),
                        Err(e) => {
                            let failed = self.stats.failed.fetch_add(1, Ordering::Relaxed);
                            if failed.is_multiple_of(1000) {
                                tracing::warn!("session log: a record could not be written to {}: {e} ({} so far)", self.dir.display(), failed + 1);
                            }
                            failed
                        }
                    };
                    self.stats.pending_bytes.fetch_sub(len, Ordering::Relaxed);
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
            let now = now_ms();
            if now.saturating_sub(last_sweep) >= SWEEP_EVERY.as_millis() as u64 {
                last_sweep = now;
                let expired = self.rotation.expired(now);
                self.delete(expired);
            }
        }
    }

    /// Writes one record at `now`: a temporary file, linked to a name of its own.
    fn write(&mut self, record: &[u8], now: u64) -> std::io::Result<()> {
        let tmp = self.dir.join(format!(".{:08x}.tmp", self.boot));
        let _ = fs::remove_file(&tmp);
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(record)?;
        drop(f);
        let name = loop {
            let name = file_name(now, self.boot, self.seq);
            self.seq += 1;
            match fs::hard_link(&tmp, self.dir.join(&name)) {
                Ok(()) => break Ok(name),
                Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
                Err(e) => break Err(e),
            }
        };
        let _ = fs::remove_file(&tmp);
        let over = self.rotation.added(name?, now);
        self.delete(over);
        Ok(())
    }

    fn delete(&self, names: Vec<String>) {
        for name in names {
            if remove(&self.dir, &name) {
                self.stats.deleted.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

fn remove(dir: &Path, name: &str) -> bool {
    match fs::remove_file(dir.join(name)) {
        Ok(()) => true,
        Err(e) if e.kind() == ErrorKind::NotFound => false,
        Err(e) => {
            tracing::warn!("session log: could not delete {name}: {e}");
            false
        }
    }
}
