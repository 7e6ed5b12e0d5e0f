//! Random JSON documents for tests that check a scanner against serde_json: nested values,
//! strings built from pieces that trip scanners (escaped quotes and backslashes, brackets,
//! colons), and odd whitespace. Deterministic: the same seed gives the same documents.

/// A xorshift generator: `next(n)` is in `0..n`.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }

    pub fn next(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }

    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from.get(self.next(from.len() as u64) as usize)
            .copied()
            .unwrap_or("")
    }

    fn whitespace(&mut self) -> &'static str {
        self.pick(&[" ", "", "\n\t", ""])
    }

    /// A JSON string whose content is made of `pieces` (each already JSON-escaped).
    fn string(&mut self, pieces: &[&str]) -> String {
        let n = self.next(6);
        let body: String = (0..n).map(|_| self.pick(pieces)).collect();
        format!("\"{body}\"")
    }

    /// A value; strings and keys come from `pieces`, sometimes whole.
    pub fn value(&mut self, pieces: &[&str], depth: u32) -> String {
        match self.next(if depth > 3 { 4 } else { 6 }) {
            0 => self.token(pieces),
            1 => self.next(1000).to_string(),
            2 => self.pick(&["null", "true", "-1.5e3"]).to_string(),
            3 => "[]".to_string(),
            4 => {
                let items: Vec<String> = (0..self.next(4))
                    .map(|_| self.value(pieces, depth + 1))
                    .collect();
                format!("[{}{}]", self.whitespace(), items.join(","))
            }
            _ => {
                let members: Vec<String> = (0..self.next(4))
                    .map(|_| {
                        let key = self.token(pieces);
                        let sp = self.whitespace();
                        format!("{key}{sp}:{sp}{}", self.value(pieces, depth + 1))
                    })
                    .collect();
                format!("{{{}{}}}", members.join(","), self.whitespace())
            }
        }
    }

    /// An object of one to five members, keys and strings from `pieces`.
    pub fn document(&mut self, pieces: &[&str]) -> String {
        let members: Vec<String> = (0..1 + self.next(5))
            .map(|_| {
                let key = self.token(pieces);
                format!("{key}:{}", self.value(pieces, 1))
            })
            .collect();
        format!("{{{}}}", members.join(","))
    }

    /// A string of pieces, or (one time in three) one piece alone as a whole string.
    fn token(&mut self, pieces: &[&str]) -> String {
        if self.next(3) == 0 {
            format!("\"{}\"", self.pick(pieces))
        } else {
            self.string(pieces)
        }
    }
}

/// Pieces of string content that trip scanners.
pub const TRICKY: [&str; 12] = [
    "a", "\\\"", "\\\\", "{", "}", "[", "]", ",", ":", "\\n", " ", "\\u00e9",
];
