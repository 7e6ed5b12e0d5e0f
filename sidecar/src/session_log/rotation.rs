//! Which session record files to delete: those older than the age limit, and the oldest beyond
//! the count limit. Pure (names and times in, names out) so it runs on a fake clock in tests;
//! `writer.rs` does the deleting. Only files named as the writer names them are counted or ever
//! deleted (see [`parse_name`]): anything else in the directory is left alone.

use std::collections::VecDeque;

/// The record files kept, oldest first, with their times (ms since the epoch, from their names).
#[derive(Debug)]
pub struct Rotation {
    max_files: usize,
    max_age_ms: u64,
    files: VecDeque<(String, u64)>,
}

impl Rotation {
    /// Keeps at most `max_files` files, none older than `max_age_ms`.
    pub fn new(max_files: u64, max_age_ms: u64) -> Self {
        Rotation {
            max_files: usize::try_from(max_files).unwrap_or(usize::MAX).max(1),
            max_age_ms,
            files: VecDeque::new(),
        }
    }

    /// Takes in the files already in the directory (any order; names not ours are ignored).
    /// The names to delete right away (beyond the count); call [`Self::expired`] for the age.
    pub fn existing(&mut self, names: impl IntoIterator<Item = String>) -> Vec<String> {
        let mut found: Vec<(String, u64)> = names
            .into_iter()
            .filter_map(|n| parse_name(&n).map(|t| (n, t)))
            .chain(self.files.drain(..))
            .collect();
        found.sort();
        self.files = found.into();
        self.over_count()
    }

    /// A file was written at `now_ms`: the names to delete to stay within the count.
    pub fn added(&mut self, name: String, now_ms: u64) -> Vec<String> {
        self.files.push_back((name, now_ms));
        self.over_count()
    }

    /// The names older than the age limit at `now_ms`.
    pub fn expired(&mut self, now_ms: u64) -> Vec<String> {
        let limit = now_ms.saturating_sub(self.max_age_ms);
        let mut gone = Vec::new();
        while let Some((name, _)) = self.files.front().filter(|(_, t)| *t < limit) {
            gone.push(name.clone());
            self.files.pop_front();
        }
        gone
    }

    /// Files kept.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    fn over_count(&mut self) -> Vec<String> {
        let extra = self.files.len().saturating_sub(self.max_files);
        self.files.drain(..extra).map(|(n, _)| n).collect()
    }
}

/// The time (ms since the epoch) in a record file's name, when the name is one the writer
/// gives: `YYYYMMDDTHHMMSS.mmmZ-BBBBBBBB-SSSSSSSSSS.json` (UTC time, 8 hex digits of the
/// writing process's id, a 10-digit sequence number).
pub fn parse_name(name: &str) -> Option<u64> {
    let stem = name.strip_suffix(".json")?;
    let mut parts = stem.split('-');
    let (time, boot, seq) = (parts.next()?, parts.next()?, parts.next()?);
    let ok = parts.next().is_none()
        && boot.len() == 8
        && boot.bytes().all(|b| b.is_ascii_hexdigit())
        && seq.len() == 10
        && seq.bytes().all(|b| b.is_ascii_digit());
    if !ok || time.len() != 20 {
        return None;
    }
    let civil =
        jiff::civil::DateTime::strptime("%Y%m%dT%H%M%S%.f", time.strip_suffix('Z')?).ok()?;
    let ts = civil.to_zoned(jiff::tz::TimeZone::UTC).ok()?.timestamp();
    u64::try_from(ts.as_millisecond()).ok()
}

#[cfg(test)]
mod tests {
    use super::super::writer::file_name;
    use super::*;

    const DAY: u64 = 86_400_000;
    const T0: u64 = 1_796_006_587_972;

    fn names(n: u64, start: u64, step: u64) -> Vec<String> {
        (0..n)
            .map(|i| file_name(start + i * step, 0xab, i))
            .collect()
    }

    #[test]
    fn names_are_read_back_and_others_ignored() {
        let name = file_name(T0, 0xdead_beef, 42);
        assert_eq!(name, "20261130T024307.972Z-deadbeef-0000000042.json");
        assert_eq!(parse_name(&name), Some(T0));
        for other in [
            "notes.txt",
            ".20261130T024307.972Z-deadbeef-0000000042.json.tmp",
            "20261130T024307.972Z-deadbeef-42.json",
            "../20261130T024307.972Z-deadbeef-0000000042.json",
            "20261130T024307.972Z-deadbeef-0000000042.json.bak",
        ] {
            assert_eq!(parse_name(other), None, "{other}");
        }
    }

    #[test]
    fn the_count_keeps_the_newest() {
        let mut r = Rotation::new(3, 7 * DAY);
        let mut deleted = Vec::new();
        for (i, name) in names(5, T0, 1).into_iter().enumerate() {
            deleted.extend(r.added(name, T0 + i as u64));
        }
        assert_eq!(deleted, names(2, T0, 1));
        assert_eq!(r.len(), 3);
    }

    #[test]
    fn age_deletes_what_is_older_than_the_limit_on_a_moving_clock() {
        let mut r = Rotation::new(100, 7 * DAY);
        let old = names(3, T0, DAY);
        for (i, n) in old.iter().enumerate() {
            assert!(r.added(n.clone(), T0 + i as u64 * DAY).is_empty());
        }
        assert!(
            r.expired(T0 + 7 * DAY).is_empty(),
            "exactly 7 days old stays"
        );
        assert_eq!(r.expired(T0 + 7 * DAY + 1), old[..1]);
        assert_eq!(r.expired(T0 + 9 * DAY + 1), old[1..]);
        assert!(r.is_empty());
    }

    #[test]
    fn files_found_at_start_are_sorted_and_held_to_both_limits() {
        let mut r = Rotation::new(2, DAY);
        let mut found = names(4, T0, 1000);
        found.reverse();
        found.push("keep-me.txt".into());
        assert_eq!(r.existing(found), names(2, T0, 1000));
        assert_eq!(r.expired(T0 + DAY + 2500), names(4, T0, 1000)[2..3]);
        assert_eq!(r.len(), 1);
    }
}
