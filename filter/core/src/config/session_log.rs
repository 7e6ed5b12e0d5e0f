//! `[session_log]` checked: the record cap, the directory and the rotation limits are bounded;
//! the result is the plan's [`SessionLog`].

use super::error::{ConfigError, Locator};
use super::raw::RawSessionLog;
use super::SessionLog;

/// Smallest record cap: room for a record's metadata (ids, names, timings, usage) with its
/// longest fields.
pub const MIN_RECORD_BYTES: u64 = 4096;
/// Largest record cap (16 MiB): a record travels whole in one gRPC message to the sidecar.
pub const MAX_RECORD_BYTES: u64 = 16 * 1024 * 1024;
/// Longest retention, in days (ten years).
const MAX_AGE_DAYS: u32 = 3650;
/// Most records kept.
const MAX_FILES: u64 = 10_000_000;

/// Checks `[session_log]`, pushing what is wrong to `errs`; the plan's session log when its
/// values hold.
pub(super) fn compile_session_log(
    loc: &Locator,
    raw: &RawSessionLog,
    errs: &mut Vec<ConfigError>,
) -> Option<SessionLog> {
    let before = errs.len();
    let max_record_bytes = *raw.max_record_bytes.get_ref();
    if !(MIN_RECORD_BYTES..=MAX_RECORD_BYTES).contains(&max_record_bytes) {
        errs.push(loc.error(
            raw.max_record_bytes.span(),
            "session_log.max_record_bytes",
            format!("must be between {MIN_RECORD_BYTES} and {MAX_RECORD_BYTES}"),
        ));
    }
    let dir = raw.dir.get_ref();
    if dir.trim().is_empty() || dir.contains('\0') {
        errs.push(loc.error(raw.dir.span(), "session_log.dir", "must name a directory"));
    }
    let max_age_days = *raw.max_age_days.get_ref();
    if max_age_days == 0 || max_age_days > MAX_AGE_DAYS {
        errs.push(loc.error(
            raw.max_age_days.span(),
            "session_log.max_age_days",
            format!("must be between 1 and {MAX_AGE_DAYS}"),
        ));
    }
    let max_files = *raw.max_files.get_ref();
    if max_files == 0 || max_files > MAX_FILES {
        errs.push(loc.error(
            raw.max_files.span(),
            "session_log.max_files",
            format!("must be between 1 and {MAX_FILES}"),
        ));
    }
    (errs.len() == before).then(|| SessionLog {
        capture: raw.capture,
        max_record_bytes: usize::try_from(max_record_bytes).unwrap_or(usize::MAX),
        dir: dir.clone(),
        max_age_days,
        max_files,
    })
}
