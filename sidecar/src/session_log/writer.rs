//! The thread that writes session records, one JSON file each, rotates them, and saves the
//! counts of records lost (`state.rs`) at most every second and when it stops. Each file is
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
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use airouter_core::config::SessionLog;

use super::rotation::Rotation;
use super::state::{self, SAVE_EVERY};
use super::{now_ms, Stats};

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

struct Writer {
    dir: PathBuf,
    rotation: Rotation,
    boot: u32,
    seq: u64,
    stats: Arc<Stats>,
    /// Records lost as last logged.
    lost_logged: u64,
}

/// The writer thread, to wait for when the sidecar stops.
#[derive(Debug)]
pub struct WriterThread(JoinHandle<()>);

/// Longest the sidecar waits, when it stops, for the writer to write what is queued.
const FINISH_WITHIN: Duration = Duration::from_secs(60);

impl WriterThread {
    /// Waits until the thread has written the records queued and saved the counts, at most
    /// [`FINISH_WITHIN`]. It ends once the queue's sender (the access log service) is dropped;
    /// call it after that.
    pub fn finish(self, stats: &Stats) {
        let deadline = std::time::Instant::now() + FINISH_WITHIN;
        while !self.0.is_finished() {
            if std::time::Instant::now() >= deadline {
                tracing::warn!(
                    "session log: the writer did not finish within {FINISH_WITHIN:?}; {} bytes of records not written",
                    stats.pending_bytes.load(Ordering::Relaxed)
                );
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if self.0.join().is_err() {
            tracing::warn!("session log: the writer thread failed");
        }
    }
}

/// Creates `dir` when missing, takes the records already there into the rotation, reads the
/// saved counts into `stats`, and starts the writer thread; the queue that feeds it.
pub(super) fn spawn(
    log: &SessionLog,
    dir: PathBuf,
    stats: Arc<Stats>,
) -> Result<(Sender<Vec<u8>>, WriterThread), String> {
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
    let saved = state::load(&dir);
    let lost = saved.lost(now_ms());
    if !saved.is_empty() {
        tracing::info!(
            "session log: counts of {} Envoy processes read back ({lost} records lost so far)",
            saved.len()
        );
    }
    *stats.sequences() = saved;
    let mut w = Writer {
        dir,
        boot: std::process::id().rotate_left(16) ^ nanos,
        seq: 0,
        stats,
        rotation: Rotation::new(log.max_files, max_age_ms),
        lost_logged: lost,
    };
    let over = w.rotation.existing(found);
    w.delete(over);
    let expired = w.rotation.expired(now_ms());
    w.delete(expired);
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = std::thread::Builder::new()
        .name("session-log".into())
        .spawn(move || w.run(&rx))
        .map_err(|e| format!("session log writer: {e}"))?;
    Ok((tx, WriterThread(thread)))
}

impl Writer {
    fn run(mut self, rx: &Receiver<Vec<u8>>) {
        let mut last_sweep = now_ms();
        let mut last_save = last_sweep;
        loop {
            match rx.recv_timeout(SAVE_EVERY) {
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
                Err(RecvTimeoutError::Disconnected) => {
                    self.save_state();
                    let c = self.stats.counts();
                    tracing::info!(
                        "session log: stopped; records written {}, dropped {}, failed {}, lost {}, duplicates {}",
                        c.written, c.dropped, c.failed, c.lost, c.duplicates
                    );
                    return;
                }
            }
            let now = now_ms();
            if now.saturating_sub(last_save) >= SAVE_EVERY.as_millis() as u64 {
                last_save = now;
                self.save_state();
            }
            if now.saturating_sub(last_sweep) >= SWEEP_EVERY.as_millis() as u64 {
                last_sweep = now;
                let expired = self.rotation.expired(now);
                self.delete(expired);
            }
        }
    }

    /// Saves the counts of records received when they changed, and logs a loss that grew.
    fn save_state(&mut self) {
        let (changed, text, lost) = {
            let mut s = self.stats.sequences();
            let changed = s.take_changed();
            let text = if changed {
                serde_json::to_vec(&*s).ok()
            } else {
                None
            };
            (changed, text, s.lost(now_ms()))
        };
        if let Some(text) = text {
            if let Err(e) = state::save(&self.dir, &text) {
                tracing::warn!(
                    "session log: the counts could not be saved in {}: {e}",
                    self.dir.display()
                );
            }
        } else if changed {
            tracing::warn!("session log: the counts could not be serialized");
        }
        if lost > self.lost_logged {
            tracing::warn!(
                "session log: {lost} records lost between Envoy and the sidecar so far ({} more): numbered by the filter, never received",
                lost - self.lost_logged
            );
        }
        self.lost_logged = lost;
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
