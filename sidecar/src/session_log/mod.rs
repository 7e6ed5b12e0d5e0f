//! The session log's sidecar side (`[session_log]`): Envoy's HTTP gRPC access logger streams an
//! entry per request to the access log service here (`envoy.service.accesslog.v3`, on the
//! sidecar's gRPC port); each entry carries the filter's session record (the filter state
//! `wasm.airouter_session`), which is completed with Envoy's view of the request (`entry.rs`)
//! and written to its own JSON file (`writer.rs`), old files deleted by age and count
//! (`rotation.rs`).
//!
//! Envoy is never held up: the service only decodes and queues; a writer thread does the disk
//! work. The queue is bounded in bytes ([`MAX_PENDING_BYTES`]): a record that would overflow it
//! is dropped and counted, as is one that cannot be written. Records lost between the filter and
//! the sidecar (Envoy's stream to a sidecar that went down) are counted from the records'
//! numbers (`sequences.rs`), and those counts survive a sidecar restart (`state.rs`). The counts
//! are in the sidecar's `/health` (`session_log`) and in its log; Envoy counts what it could not
//! send (the sidecar down or too slow) in its own stats,
//! `access_logs.grpc_access_log.logs_dropped`, but not what it lost on a stream that broke.

mod entry;
pub mod rotation;
pub mod sequences;
mod service;
pub mod state;
mod writer;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use airouter_core::config::SessionLog;
use serde::Serialize;

pub use entry::{record_of, Stored};
pub use sequences::Sequences;
pub use service::Receiver;
pub use writer::{file_name, WriterThread};

#[allow(clippy::all, clippy::pedantic)]
pub mod proto {
    tonic::include_proto!("envoy.service.accesslog.v3");
}

/// Most bytes of records waiting for the disk; beyond it records are dropped (and counted).
pub const MAX_PENDING_BYTES: u64 = 64 * 1024 * 1024;

/// What happened to the records, for `/health` and the log.
#[derive(Debug, Default)]
pub struct Stats {
    /// Records written to files.
    pub written: AtomicU64,
    /// Records dropped because the queue was full.
    pub dropped: AtomicU64,
    /// Records that could not be written (a disk error).
    pub failed: AtomicU64,
    /// Entries without a session record (not from the filter, or unreadable).
    pub skipped: AtomicU64,
    /// Files deleted by rotation.
    pub deleted: AtomicU64,
    /// Bytes of records waiting for the disk.
    pub pending_bytes: AtomicU64,
    /// Records received again (Envoy retried a stream): not written again.
    pub duplicates: AtomicU64,
    /// The numbers of the records received, per Envoy process, for the records lost.
    pub sequences: Mutex<Sequences>,
}

/// [`Stats`] as numbers. All but `lost` count since the sidecar started.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Counts {
    pub written: u64,
    pub dropped: u64,
    pub failed: u64,
    pub skipped: u64,
    pub deleted: u64,
    pub pending_bytes: u64,
    /// Records the filter numbered that never arrived, over every Envoy process followed, kept
    /// across sidecar restarts (see [`sequences`]).
    pub lost: u64,
    pub duplicates: u64,
}

impl Stats {
    pub fn counts(&self) -> Counts {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Counts {
            written: get(&self.written),
            dropped: get(&self.dropped),
            failed: get(&self.failed),
            skipped: get(&self.skipped),
            deleted: get(&self.deleted),
            pending_bytes: get(&self.pending_bytes),
            lost: self.sequences().lost(now_ms()),
            duplicates: get(&self.duplicates),
        }
    }

    /// The records' numbers (a panic elsewhere while they were held leaves them usable).
    pub fn sequences(&self) -> MutexGuard<'_, Sequences> {
        self.sequences
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// Wall-clock time in ms since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Starts the writer thread for `log`'s records in `dir` (created, mode 0700, when missing;
/// existing records are taken into the rotation, the saved counts read) and returns the gRPC
/// service feeding it, its counts, and the thread (to wait for once the service is gone: see
/// [`WriterThread::finish`]).
pub fn start(
    log: &SessionLog,
    dir: PathBuf,
) -> Result<(Receiver, Arc<Stats>, WriterThread), String> {
    let stats = Arc::new(Stats::default());
    let (queue, thread) = writer::spawn(log, dir, Arc::clone(&stats))?;
    Ok((Receiver::new(queue, Arc::clone(&stats)), stats, thread))
}
