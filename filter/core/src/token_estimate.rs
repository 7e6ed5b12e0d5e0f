//! Tokens estimated from text, where a backend reports none: a stream without usage, and a
//! request's prompt for budget reservations. No tokenizer is at hand (nor one per backend), so
//! the estimate counts by character class, erring toward more tokens than a real tokenizer
//! makes, so that a budget is never charged less than it should by a shape of text that splits
//! finely (digits, symbols, non-Latin scripts), which a bytes/4 rule under-counted severalfold:
//! - a run of ASCII letters: one token per five letters, rounded up (a common English word is
//!   one token; a long or rare one several);
//! - each ASCII digit: a token (many tokenizers split numbers into single digits);
//! - each other visible ASCII character (punctuation, symbols, JSON syntax): a token;
//! - a run of whitespace: free when one character (it joins the next word), else a token;
//! - each non-ASCII character: one token per two of its UTF-8 bytes, rounded up (accented
//!   letters one, CJK two, emoji two).
//!
//! Bytes that are not UTF-8 count as non-ASCII characters of one byte. The count never wraps.

/// The estimated tokens of `text` (see the module doc); bounded work, one pass.
pub fn estimate(text: &[u8]) -> u64 {
    let mut tokens: u64 = 0;
    let mut letters: u64 = 0;
    let mut spaces: u64 = 0;
    let mut i = 0;
    while let Some(&b) = text.get(i) {
        if b.is_ascii_alphabetic() {
            if spaces > 1 {
                tokens = tokens.saturating_add(1);
            }
            spaces = 0;
            letters += 1;
            i += 1;
            continue;
        }
        tokens = tokens.saturating_add(letters.div_ceil(5));
        letters = 0;
        if b.is_ascii_whitespace() {
            spaces += 1;
            i += 1;
            continue;
        }
        if spaces > 1 {
            tokens = tokens.saturating_add(1);
        }
        spaces = 0;
        if b.is_ascii() {
            tokens = tokens.saturating_add(1);
            i += 1;
        } else {
            let len = utf8_len(b);
            tokens = tokens.saturating_add((len as u64).div_ceil(2));
            i += len;
        }
    }
    tokens = tokens.saturating_add(letters.div_ceil(5));
    if spaces > 1 {
        tokens = tokens.saturating_add(1);
    }
    tokens
}

/// The length of the UTF-8 sequence a lead byte starts (1 for a byte that starts none).
fn utf8_len(lead: u8) -> usize {
    match lead {
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF4 => 4,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::estimate;

    #[test]
    fn classes_count_as_the_module_doc_says() {
        assert_eq!(estimate(b""), 0);
        assert_eq!(estimate(b"hello world"), 2);
        assert_eq!(estimate(b"The quick brown fox."), 5);
        assert_eq!(estimate(b"internationalization"), 4);
        assert_eq!(estimate(b"1234567890"), 10);
        assert_eq!(estimate(b"a\n\n\nb"), 3);
        assert_eq!(estimate("caf\u{e9}".as_bytes()), 2);
        assert_eq!(estimate("\u{4f60}\u{597d}".as_bytes()), 4);
        assert_eq!(estimate("\u{1f600}".as_bytes()), 2);
        assert_eq!(estimate(br#"{"a":1}"#), 7);
        assert_eq!(estimate(&[0xff, 0xfe, b'x']), 3);
    }

    /// Text that real tokenizers split finely is never estimated below one token a unit, and
    /// English prose is not estimated far above a quarter of its bytes.
    #[test]
    fn fine_splitting_text_is_not_under_counted_and_prose_not_much_over() {
        let digits = "7".repeat(1500);
        assert!(estimate(digits.as_bytes()) >= 1500);
        let cjk = "\u{6f22}".repeat(500);
        assert!(estimate(cjk.as_bytes()) >= 500);
        let symbols = "<|>".repeat(300);
        assert!(estimate(symbols.as_bytes()) >= 900);
        let prose = "The router forwards each request to the model the operator configured, \
                     and renames the answer so that no backend name reaches the client. "
            .repeat(20);
        let quarter = (prose.len() as u64).div_ceil(4);
        let e = estimate(prose.as_bytes());
        assert!(e >= quarter && e <= quarter * 2, "{e} vs {quarter}");
    }

    #[test]
    fn random_bytes_never_panic_and_count_at_most_one_a_byte_plus_one() {
        let mut rng = crate::test_json::Rng::new(7);
        for _ in 0..2000 {
            let len = rng.next(64);
            let bytes: Vec<u8> = (0..len).map(|_| rng.next(256) as u8).collect();
            assert!(estimate(&bytes) <= bytes.len() as u64 + 1);
        }
    }
}
