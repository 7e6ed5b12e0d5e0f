//! The byte-level SSE framer: cuts a stream into events (each with its blank line) however it
//! is chunked, looking at each byte once, and drops the rest of a stream whose event outgrows
//! [`MAX_EVENT_BYTES`].

use memchr::memchr2;

use super::MAX_EVENT_BYTES;

/// Cuts a byte stream into SSE events (each ending with its blank line). Each byte is looked at
/// once however the stream is chunked: the framer keeps where its search for line ends stopped.
#[derive(Debug, Default)]
pub struct SseFramer {
    /// Bytes of the event being read (and of events completed by the last chunk, until drained).
    pending: Vec<u8>,
    /// Where the line being read starts, in `pending`.
    line_start: usize,
    /// How far `pending` has been searched for line ends.
    scanned: usize,
    /// Bytes searched so far: the framer's work, for tests that show it is linear.
    work: u64,
    /// An event outgrew [`MAX_EVENT_BYTES`]: the rest of the stream is dropped.
    overflowed: bool,
}

/// Where the first complete event in `data` ends, or `None` when more bytes are needed.
/// Lines end with LF, CRLF or CR; a CR at the very end is undecided until the next byte.
pub fn event_end(data: &[u8]) -> Option<usize> {
    let mut framer = SseFramer::default();
    let mut end = None;
    framer.push(data, &mut |event| {
        end = end.or(Some(event.len()));
    });
    end
}

impl SseFramer {
    /// Adds a chunk and hands each event it completes to `on_event`. Once an event is over
    /// [`MAX_EVENT_BYTES`] (complete or not), nothing more is handed on: see [`Self::overflowed`].
    pub fn push(&mut self, chunk: &[u8], on_event: &mut dyn FnMut(&[u8])) {
        if self.overflowed {
            return;
        }
        self.pending.extend_from_slice(chunk);
        let mut start = 0;
        while let Some(off) = self
            .pending
            .get(self.scanned..)
            .and_then(|rest| memchr2(b'\n', b'\r', rest))
        {
            let at = self.scanned + off;
            self.work += off as u64 + 1;
            let eol = match (self.pending.get(at), self.pending.get(at + 1)) {
                (Some(b'\r'), Some(b'\n')) => 2,
                // A CR at the end may be half of a CRLF: decided when the next byte comes.
                (Some(b'\r'), None) => {
                    self.scanned = at;
                    break;
                }
                _ => 1,
            };
            let blank = at == self.line_start;
            self.scanned = at + eol;
            self.line_start = self.scanned;
            if blank {
                if self.scanned - start > MAX_EVENT_BYTES {
                    return self.overflow();
                }
                if let Some(event) = self.pending.get(start..self.scanned) {
                    on_event(event);
                }
                start = self.scanned;
            }
        }
        // Bytes after the last line end were searched too; a trailing CR waits for the next.
        let searched = self.pending.len() - usize::from(self.pending.last() == Some(&b'\r'));
        if searched > self.scanned {
            self.work += (searched - self.scanned) as u64;
            self.scanned = searched;
        }
        if self.pending.len() - start > MAX_EVENT_BYTES {
            return self.overflow();
        }
        self.pending.drain(..start);
        self.line_start -= start;
        self.scanned -= start;
    }

    fn overflow(&mut self) {
        self.overflowed = true;
        self.pending = Vec::new();
        self.line_start = 0;
        self.scanned = 0;
    }

    /// Whether an event outgrew [`MAX_EVENT_BYTES`] (and was dropped, with the rest).
    pub fn overflowed(&self) -> bool {
        self.overflowed
    }

    /// Bytes searched for line ends so far (each byte once, give or take a trailing CR).
    pub fn work(&self) -> u64 {
        self.work
    }

    /// The bytes of an unfinished last event, when the stream ends.
    pub fn finish(&mut self) -> Vec<u8> {
        self.line_start = 0;
        self.scanned = 0;
        std::mem::take(&mut self.pending)
    }
}
