//! Model-name globs, as `[[models]] name` and a key's `models` allow-list write them: `*`
//! matches any run of characters, `?` exactly one; nothing else is special.

use wildmatch::WildMatch;

/// A model-name glob: `*` matches any run of characters, `?` exactly one.
#[derive(Debug, Clone)]
pub struct Pattern {
    text: String,
    matcher: WildMatch,
    /// Literal characters: the more, the more specific.
    specificity: usize,
}

impl Pattern {
    pub fn is_pattern(text: &str) -> bool {
        text.contains(['*', '?', '[', ']', '{', '}'])
    }

    /// Builds a pattern (a plain name is a pattern matching only itself).
    pub fn new(text: &str) -> Result<Pattern, String> {
        if text.is_empty() || text.len() > 256 {
            return Err("must be 1-256 characters".into());
        }
        if text.chars().any(char::is_control) {
            return Err("must not contain control characters".into());
        }
        if text.contains(['[', ']', '{', '}']) {
            return Err(format!(
                "`{text}`: only `*` and `?` are wildcards; character classes and alternatives are not supported"
            ));
        }
        Ok(Pattern {
            text: text.to_string(),
            matcher: WildMatch::new(text),
            specificity: text.chars().filter(|c| !matches!(c, '*' | '?')).count(),
        })
    }

    pub fn matches(&self, name: &str) -> bool {
        self.matcher.matches(name)
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// How specific the pattern is, for ordering: (literal characters, length); larger first.
    pub fn specificity(&self) -> (usize, usize) {
        (self.specificity, self.text.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_validate_and_match() {
        assert!(Pattern::new("gpt-[45]").is_err());
        assert!(Pattern::new("").is_err());
        let p = Pattern::new("gpt-4*").unwrap();
        assert!(p.matches("gpt-4o") && p.matches("gpt-4") && !p.matches("gpt-3.5"));
        let q = Pattern::new("llama-?b").unwrap();
        assert!(q.matches("llama-8b") && !q.matches("llama-70b"));
        assert!(Pattern::new("exact").unwrap().matches("exact"));
    }
}
