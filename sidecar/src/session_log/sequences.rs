//! Which session records never arrived. The filter numbers every record it hands to Envoy in its
//! Envoy process's sequence (`"sequence": {"epoch": E, "n": N}`, numbers from 1 without holes;
//! see `filter/core/src/session/sequence.rs`); here each epoch keeps the numbers received, as
//! ranges, and the highest seen. What is missing below the highest is lost: `lost` = highest −
//! received, per epoch, never negative.
//!
//! - A number received twice (Envoy replays a stream's start when it retries the stream) is a
//!   duplicate: it neither counts as received again nor hides a loss, and its record is not
//!   written again. Records arrive out of order (each Envoy worker has its own stream): ranges
//!   are kept however they arrive.
//! - A missing number counts as lost only once a higher one has been seen for [`GRACE_MS`]
//!   (a worker's batch may still be on its way); a record that arrives later still (Envoy held
//!   it while retrying a stream) is taken off `lost` again.
//! - A loss shows once a later record of the same Envoy arrives: the last records before an
//!   Envoy stops leave no trace.
//! - Bounded: at most [`MAX_RANGES`] ranges per epoch (beyond, the oldest gaps are settled: their
//!   numbers stay lost, and a record arriving for them later is taken as received) and
//!   [`MAX_EPOCHS`] epochs (the least recently heard from is retired, its losses kept in the
//!   total). Pure (numbers and times in) so it runs on a fake clock in tests; the service notes
//!   arrivals, the writer thread saves the state (`state.rs`).

use serde::{Deserialize, Serialize};

/// Most epochs (Envoy processes) followed at once.
pub const MAX_EPOCHS: usize = 32;
/// Most ranges of received numbers kept per epoch.
pub const MAX_RANGES: usize = 512;
/// How long a missing number below the highest is waited for before it counts as lost, in ms.
pub const GRACE_MS: u64 = 2_000;

/// Every epoch followed, and the losses of those retired.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Sequences {
    /// Records lost in epochs no longer followed.
    retired_lost: u64,
    epochs: Vec<Epoch>,
    /// Changed since [`Self::take_changed`] last said so.
    #[serde(skip)]
    changed: bool,
}

/// One epoch's numbers.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Epoch {
    epoch: u64,
    /// When a record of the epoch last arrived (ms since the Unix epoch).
    last_ms: u64,
    highest: u64,
    /// Distinct numbers received.
    received: u64,
    /// Numbers up to this one are settled: no longer kept as ranges.
    floor: u64,
    /// Numbers up to `floor` received.
    settled: u64,
    /// Received numbers above `floor`: disjoint, non-adjacent, first to last, inclusive.
    ranges: Vec<(u64, u64)>,
    /// The highest number as it was at two moments, for the grace period.
    #[serde(skip)]
    marks: [Mark; 2],
    /// The highest number that had waited out the grace period when last looked at: what is
    /// counted never shrinks when newer records come.
    #[serde(skip)]
    counted: u64,
}

/// The highest number seen (`highest`) at `ms`.
#[derive(Debug, Clone, Copy, Default)]
struct Mark {
    ms: u64,
    highest: u64,
}

impl Sequences {
    /// Record `n` of `epoch` arrived at `now_ms`: whether it is new (`false`: a duplicate, not to
    /// be written again). Number 0 is no number (taken as new, not followed).
    pub fn note(&mut self, epoch: u64, n: u64, now_ms: u64) -> bool {
        if n == 0 {
            return true;
        }
        self.changed = true;
        if let Some(e) = self.epochs.iter_mut().find(|e| e.epoch == epoch) {
            return e.note(n, now_ms);
        }
        let mut e = Epoch::new(epoch, now_ms);
        let new = e.note(n, now_ms);
        self.epochs.push(e);
        self.retire_beyond_max();
        new
    }

    /// Records lost, over every epoch, as of `now_ms`.
    pub fn lost(&self, now_ms: u64) -> u64 {
        self.epochs
            .iter()
            .map(|e| e.lost(now_ms))
            .fold(self.retired_lost, u64::saturating_add)
    }

    /// Epochs followed.
    pub fn len(&self) -> usize {
        self.epochs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.epochs.is_empty()
    }

    /// Whether anything changed since the last call (and then the state is worth saving).
    pub fn take_changed(&mut self) -> bool {
        std::mem::take(&mut self.changed)
    }

    /// The state as read back from a file: only well-formed ranges kept, counts made to agree
    /// with them, held to the bounds. Numbers missing in it count as lost at once.
    pub fn restored(mut self) -> Self {
        self.epochs = self.epochs.into_iter().map(Epoch::restored).collect();
        self.retire_beyond_max();
        self
    }

    /// Retires the least recently heard-from epochs beyond [`MAX_EPOCHS`], keeping their losses.
    fn retire_beyond_max(&mut self) {
        while self.epochs.len() > MAX_EPOCHS {
            let Some((i, _)) = self
                .epochs
                .iter()
                .enumerate()
                .min_by_key(|(_, e)| e.last_ms)
            else {
                return;
            };
            let gone = self.epochs.swap_remove(i);
            self.retired_lost = self.retired_lost.saturating_add(gone.lost(u64::MAX));
        }
    }
}

impl Epoch {
    fn new(epoch: u64, now_ms: u64) -> Self {
        let mark = Mark {
            ms: now_ms,
            highest: 0,
        };
        Epoch {
            epoch,
            last_ms: now_ms,
            highest: 0,
            received: 0,
            floor: 0,
            settled: 0,
            ranges: Vec::new(),
            marks: [mark; 2],
            counted: 0,
        }
    }

    fn note(&mut self, n: u64, now_ms: u64) -> bool {
        self.counted = self.counted_upto(now_ms);
        if now_ms.saturating_sub(self.marks[1].ms) >= GRACE_MS {
            self.marks = [
                self.marks[1],
                Mark {
                    ms: now_ms,
                    highest: self.highest,
                },
            ];
        }
        self.last_ms = self.last_ms.max(now_ms);
        if n <= self.floor {
            // Settled: every number there received means this one was; otherwise take it.
            if self.settled >= self.floor {
                return false;
            }
            self.settled += 1;
            self.received += 1;
            return true;
        }
        // The first range starting after `n`; the one before it may hold `n`.
        let at = self.ranges.partition_point(|&(start, _)| start <= n);
        let before = at.checked_sub(1).map(|i| self.ranges[i]);
        if before.is_some_and(|(_, end)| end >= n) {
            return false;
        }
        let joins_before = before.is_some_and(|(_, end)| end + 1 == n);
        let joins_after = self
            .ranges
            .get(at)
            .is_some_and(|&(start, _)| Some(start) == n.checked_add(1));
        match (joins_before, joins_after) {
            (true, true) => {
                self.ranges[at - 1].1 = self.ranges[at].1;
                self.ranges.remove(at);
            }
            (true, false) => self.ranges[at - 1].1 = n,
            (false, true) => self.ranges[at].0 = n,
            (false, false) => self.ranges.insert(at, (n, n)),
        }
        self.received += 1;
        self.highest = self.highest.max(n);
        if self.ranges.len() > MAX_RANGES {
            let (start, end) = self.ranges.remove(0);
            self.settled += end - start + 1;
            self.floor = end;
        }
        true
    }

    /// The highest number seen for the grace period at `now_ms` (or counted before).
    fn counted_upto(&self, now_ms: u64) -> u64 {
        let old_enough = |ms: u64| now_ms.saturating_sub(ms) >= GRACE_MS;
        let upto = if old_enough(self.last_ms) {
            self.highest
        } else if old_enough(self.marks[1].ms) {
            self.marks[1].highest
        } else if old_enough(self.marks[0].ms) {
            self.marks[0].highest
        } else {
            0
        };
        upto.max(self.counted).max(self.floor)
    }

    /// Numbers missing up to the highest that has been seen for the grace period at `now_ms`.
    fn lost(&self, now_ms: u64) -> u64 {
        let upto = self.counted_upto(now_ms);
        let received: u64 = self
            .ranges
            .iter()
            .take_while(|&&(start, _)| start <= upto)
            .map(|&(start, end)| end.min(upto) - start + 1)
            .sum();
        upto.saturating_sub(self.settled.saturating_add(received))
    }

    fn restored(mut self) -> Self {
        let mut ranges: Vec<(u64, u64)> = Vec::new();
        let mut last = self.floor;
        for (start, end) in self.ranges {
            // After the floor, and after the range before with a gap between.
            let first = if ranges.is_empty() { 1 } else { 2 };
            if start >= last.saturating_add(first) && start <= end {
                ranges.push((start, end));
                last = end;
            }
        }
        if ranges.len() > MAX_RANGES {
            let extra = ranges.len() - MAX_RANGES;
            for (start, end) in ranges.drain(..extra) {
                self.settled += end - start + 1;
                self.floor = end;
            }
        }
        self.settled = self.settled.min(self.floor);
        self.highest = self.highest.max(last);
        self.received = ranges
            .iter()
            .map(|&(start, end)| end - start + 1)
            .fold(self.settled, u64::saturating_add);
        self.ranges = ranges;
        // Everything in the file is older than the grace period.
        self.marks = [Mark {
            ms: 0,
            highest: self.highest,
        }; 2];
        self.counted = self.highest;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: u64 = 1_796_006_587_972;
    const E: u64 = T * 1000 + 7;

    fn noted(s: &mut Sequences, ns: impl IntoIterator<Item = u64>, now: u64) -> Vec<u64> {
        ns.into_iter().filter(|&n| !s.note(E, n, now)).collect()
    }

    #[test]
    fn gaps_count_as_lost_once_a_higher_number_has_waited_out_the_grace() {
        let mut s = Sequences::default();
        assert!(noted(&mut s, [1, 2, 3, 6, 7, 10], T).is_empty());
        assert_eq!(s.lost(T), 0, "a batch may still be on its way");
        assert_eq!(s.lost(T + GRACE_MS), 4, "4, 5, 8 and 9");
        let e = &s.epochs[0];
        assert_eq!((e.highest, e.received), (10, 6));
        assert_eq!(e.ranges, [(1, 3), (6, 7), (10, 10)]);
    }

    #[test]
    fn out_of_order_arrivals_fill_the_gaps_they_belong_to() {
        let mut s = Sequences::default();
        assert!(noted(&mut s, [5, 1, 3, 2, 9, 4, 8, 6, 7], T).is_empty());
        assert_eq!(s.epochs[0].ranges, [(1, 9)]);
        assert_eq!(s.lost(T + GRACE_MS), 0);
        // A record Envoy held back while retrying arrives after it was counted lost.
        assert!(noted(&mut s, [11], T).is_empty());
        assert_eq!(s.lost(T + GRACE_MS), 1);
        assert!(noted(&mut s, [10], T + GRACE_MS).is_empty());
        assert_eq!(s.lost(T + 3 * GRACE_MS), 0);
    }

    #[test]
    fn a_loss_counted_in_a_quiet_spell_stays_counted_when_records_come_again() {
        let mut s = Sequences::default();
        assert!(noted(&mut s, [1, 2, 5], T).is_empty());
        let quiet = T + 5 * GRACE_MS;
        assert_eq!(s.lost(quiet), 2);
        // Records come again, every 100 ms: 3 and 4 stay lost, 8 is lost once it has waited.
        let mut lost = Vec::new();
        for (i, n) in [6, 7, 9, 10, 11].into_iter().enumerate() {
            let now = quiet + 100 * i as u64;
            assert!(s.note(E, n, now));
            lost.push(s.lost(now));
        }
        assert_eq!(lost, [2; 5]);
        assert_eq!(s.lost(quiet + 10 * GRACE_MS), 3);
    }

    #[test]
    fn duplicates_neither_count_as_received_nor_hide_a_loss() {
        let mut s = Sequences::default();
        assert!(noted(&mut s, [1, 2, 4], T).is_empty());
        // A retried stream replays 1, 2 and 4; 3 never comes.
        assert_eq!(noted(&mut s, [1, 2, 4, 4], T), [1, 2, 4, 4]);
        assert_eq!(s.epochs[0].received, 3);
        assert_eq!(s.lost(T + GRACE_MS), 1);
    }

    #[test]
    fn a_missing_number_waits_out_the_grace_while_records_keep_coming() {
        let mut s = Sequences::default();
        let mut now = T;
        let mut n = 0;
        // 5 is lost; records keep arriving, one per 100 ms.
        for _ in 0..100 {
            n += 1;
            if n != 5 {
                assert!(s.note(E, n, now));
            }
            let waited = now - T;
            let lost = s.lost(now);
            assert!(lost <= 1, "{lost}");
            if waited >= 2 * GRACE_MS {
                assert_eq!(lost, 1, "counted by {waited} ms");
            }
            now += 100;
        }
    }

    #[test]
    fn epochs_are_counted_apart_and_the_least_recent_retired_with_its_losses() {
        let mut s = Sequences::default();
        for e in 0..MAX_EPOCHS as u64 {
            s.note(e, 2, T + e);
        }
        assert_eq!(s.lost(T + GRACE_MS + 100), MAX_EPOCHS as u64);
        s.note(0, 3, T + 100);
        s.note(999, 1, T + 200);
        assert_eq!(s.len(), MAX_EPOCHS);
        assert!(
            s.epochs.iter().all(|e| e.epoch != 1),
            "epoch 1 was heard from least recently"
        );
        assert_eq!(s.retired_lost, 1);
        assert_eq!(s.lost(T + 10 * GRACE_MS), MAX_EPOCHS as u64);
    }

    #[test]
    fn beyond_the_range_bound_the_oldest_gaps_are_settled_as_lost() {
        let mut s = Sequences::default();
        let odd = (0..=MAX_RANGES as u64 + 10).map(|i| 2 * i + 1);
        assert!(noted(&mut s, odd, T).is_empty());
        let e = &s.epochs[0];
        assert_eq!(e.ranges.len(), MAX_RANGES);
        assert_eq!(e.floor, 21, "11 ranges settled: 1, 3, .. 21");
        let lost = s.lost(T + GRACE_MS);
        assert_eq!(lost, MAX_RANGES as u64 + 10);
        // Settled numbers: one of them arriving late is taken as received.
        assert!(s.note(E, 2, T));
        assert_eq!(s.lost(T + GRACE_MS), lost - 1);
    }

    #[test]
    fn garbage_in_a_restored_state_is_dropped_and_the_counts_agree_with_what_is_left() {
        let text = r#"{"retired_lost": 4, "epochs": [{"epoch": 9, "last_ms": 1, "highest": 3,
            "received": 999, "floor": 2, "settled": 7,
            "ranges": [[1, 1], [5, 9], [7, 12], [14, 13], [20, 30]]}]}"#;
        let s = serde_json::from_str::<Sequences>(text).unwrap().restored();
        let e = &s.epochs[0];
        assert_eq!(e.ranges, [(5, 9), (20, 30)]);
        assert_eq!((e.settled, e.highest, e.received), (2, 30, 18));
        assert_eq!(s.lost(T), 4 + 30 - 18, "the file's losses count at once");
    }
}
