//! The session log as compiled (`[session_log]`): what the filter puts in each request's record,
//! and where and how long the sidecar keeps the records.

pub use crate::config::raw::Capture;

/// The per-request session log (`[session_log]`): the filter builds a record for every request
/// it handles, Envoy's gRPC access log service carries it to the sidecar, which writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionLog {
    /// How much of the conversation a record holds.
    pub capture: Capture,
    /// Largest record, in bytes; a longer one is cut and says so.
    pub max_record_bytes: usize,
    /// Where the sidecar writes the records, as written in the file (a relative path is
    /// relative to the file's directory; the sidecar resolves it).
    pub dir: String,
    /// Records older than this are deleted, in days.
    pub max_age_days: u32,
    /// Most records kept; the oldest go first.
    pub max_files: u64,
}
