//! Token-stream fix-ups: turns the text pieces a Triton model streams into the deltas an OpenAI
//! client expects.
//!
//! Pieces are bytes and may be deltas or the whole text so far (cumulative); a UTF-8 character can
//! be split across pieces; the prompt may be echoed at the start; an end-of-turn marker may close
//! the text. Each stage below handles one of these, in order, without ever inventing or dropping
//! text mid-stream: a delta `"."`, `"."`, `"."` stays three dots, and `"the"`, `" these"` stays as
//! sent (de-duplicating "repeated" text is exactly the bug earlier routers had).

use airouter_core::config::StreamText;

/// Assembles one choice's text.
#[derive(Debug)]
pub struct TextAssembler {
    mode: StreamText,
    /// Everything received so far, for cumulative streams and auto-detection.
    received: Vec<u8>,
    non_empty_pieces: usize,
    /// Bytes of an incomplete UTF-8 character.
    utf8_carry: Vec<u8>,
    /// The prompt, while it may still be echoed at the start of the output.
    echo: Option<String>,
    echo_held: String,
    stop_strings: Vec<String>,
    /// A tail that may be the start of an end-of-text marker.
    stop_held: String,
}

impl TextAssembler {
    /// `echo`: the prompt, when the model may repeat it before its answer.
    pub fn new(mode: StreamText, echo: Option<String>, stop_strings: Vec<String>) -> Self {
        TextAssembler {
            mode,
            received: Vec::new(),
            non_empty_pieces: 0,
            utf8_carry: Vec::new(),
            echo: echo.filter(|p| !p.is_empty()),
            echo_held: String::new(),
            stop_strings,
            stop_held: String::new(),
        }
    }

    /// Pieces with text so far: the completion's token count when nothing better is known.
    pub fn pieces(&self) -> usize {
        self.non_empty_pieces
    }

    /// Text to send now for one piece (possibly empty while something is held back).
    pub fn push(&mut self, piece: &[u8]) -> String {
        let delta = self.delta_bytes(piece);
        let text = self.decode(&delta);
        let text = self.strip_echo(text);
        self.hold_stop(text)
    }

    /// What is left when the stream ends, with a final end-of-text marker removed.
    pub fn finish(&mut self) -> String {
        let mut tail = String::from_utf8_lossy(&std::mem::take(&mut self.utf8_carry)).into_owned();
        if self.echo.take().is_some() {
            let held = std::mem::take(&mut self.echo_held);
            tail = held + &tail;
        }
        let mut rest = std::mem::take(&mut self.stop_held) + &tail;
        loop {
            let stripped = self
                .stop_strings
                .iter()
                .find(|s| rest.ends_with(s.as_str()))
                .map(|s| rest.len() - s.len());
            match stripped {
                Some(cut) => rest.truncate(cut),
                None => break,
            }
        }
        rest
    }

    fn delta_bytes(&mut self, piece: &[u8]) -> Vec<u8> {
        if piece.is_empty() {
            return Vec::new();
        }
        self.non_empty_pieces += 1;
        let cumulative = match self.mode {
            StreamText::Delta => false,
            StreamText::Cumulative => true,
            StreamText::Auto if self.non_empty_pieces == 1 => {
                self.received = piece.to_vec();
                return piece.to_vec();
            }
            StreamText::Auto => {
                // Cumulative only if the second piece strictly extends the first; then decided.
                let extends =
                    piece.len() > self.received.len() && piece.starts_with(&self.received);
                self.mode = if extends {
                    StreamText::Cumulative
                } else {
                    StreamText::Delta
                };
                extends
            }
        };
        if !cumulative {
            return piece.to_vec();
        }
        let delta = if piece.len() > self.received.len() {
            piece.get(self.received.len()..).unwrap_or(&[]).to_vec()
        } else {
            Vec::new()
        };
        if piece.len() >= self.received.len() {
            self.received = piece.to_vec();
        }
        delta
    }

    fn decode(&mut self, bytes: &[u8]) -> String {
        self.utf8_carry.extend_from_slice(bytes);
        let carry = std::mem::take(&mut self.utf8_carry);
        match std::str::from_utf8(&carry) {
            Ok(s) => s.to_string(),
            Err(e) => {
                let valid = e.valid_up_to();
                let (good, rest) = carry.split_at(valid);
                let mut out = String::from_utf8_lossy(good).into_owned();
                if e.error_len().is_some() {
                    // Invalid, not just incomplete: replace it rather than hold it forever.
                    out.push_str(&String::from_utf8_lossy(rest));
                } else {
                    self.utf8_carry = rest.to_vec();
                }
                out
            }
        }
    }

    fn strip_echo(&mut self, text: String) -> String {
        let Some(prompt) = &self.echo else {
            return text;
        };
        self.echo_held.push_str(&text);
        if self.echo_held.len() >= prompt.len() {
            let held = std::mem::take(&mut self.echo_held);
            let out = held
                .strip_prefix(prompt.as_str())
                .map(str::to_string)
                .unwrap_or(held);
            self.echo = None;
            return out;
        }
        if prompt.starts_with(self.echo_held.as_str()) {
            return String::new();
        }
        self.echo = None;
        std::mem::take(&mut self.echo_held)
    }

    fn hold_stop(&mut self, text: String) -> String {
        if self.stop_strings.is_empty() {
            return text;
        }
        let mut all = std::mem::take(&mut self.stop_held);
        all.push_str(&text);
        // Hold the longest tail that could still grow into (or already is) a marker.
        let keep = (1..=all.len())
            .rev()
            .filter(|n| all.is_char_boundary(all.len() - n))
            .find(|n| {
                let tail = &all[all.len() - n..];
                self.stop_strings.iter().any(|s| s.starts_with(tail))
            })
            .unwrap_or(0);
        self.stop_held = all.split_off(all.len() - keep);
        all
    }
}

#[cfg(test)]
mod tests;
