//! Configuration errors that name the file, the line and the key, as operators need to fix them.

use std::fmt;
use std::ops::Range;

/// One problem in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file, self.line, self.column)?;
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        f.write_str(&self.message)
    }
}

/// Every problem found in one file; a file with any of them is refused whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Turns byte spans of one source text into located errors.
pub(crate) struct Locator<'a> {
    pub file: &'a str,
    pub text: &'a str,
}

impl Locator<'_> {
    /// 1-based line and column of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let upto = self.text.get(..offset.min(self.text.len())).unwrap_or("");
        let line = upto.matches('\n').count() + 1;
        let column = upto
            .rfind('\n')
            .map_or(upto.len(), |nl| upto.len() - nl - 1)
            + 1;
        (line, column)
    }

    /// An error at `span`. URL credentials in the message are redacted ([`super::url::redact`]):
    /// messages reach terminals and Envoy's log.
    pub fn error(
        &self,
        span: Range<usize>,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> ConfigError {
        let (line, column) = self.line_col(span.start);
        let message: String = message.into();
        ConfigError {
            file: self.file.to_string(),
            line,
            column,
            key: key.into(),
            message: super::url::redact(&message).into_owned(),
        }
    }

    /// A TOML syntax or type error, with the dotted key written where the parser pointed (the
    /// enclosing table's path and the line's key, [`Locator::key_at`]).
    pub fn toml_error(&self, err: &toml::de::Error) -> ConfigError {
        let span = err.span().unwrap_or(0..0);
        let key = self.key_at(span.start).unwrap_or_default();
        self.error(span, key, err.message().trim().to_string())
    }

    /// The dotted key written at byte `offset` of a TOML text, spelled as errors spell keys
    /// (`models[1].target.backend`): the last table header before it, each array of tables
    /// indexed by how many of its entries came before, then the key of `key = value` on the
    /// offset's line. `None` at the top level outside any `key = value` (or a key too odd to
    /// spell).
    pub fn key_at(&self, offset: usize) -> Option<String> {
        let before = self.text.get(..offset.min(self.text.len()))?;
        let line_start = before.rfind('\n').map_or(0, |nl| nl + 1);
        let mut arrays: Vec<(String, usize)> = Vec::new();
        let mut table = String::new();
        for line in self.text.get(..line_start)?.lines() {
            if let Some(path) = header(line.trim(), &mut arrays) {
                table = path;
            }
        }
        let line = self.text.get(line_start..)?.lines().next().unwrap_or("");
        if let Some(path) = header(line.trim(), &mut arrays) {
            return Some(path);
        }
        let column = offset.saturating_sub(line_start);
        let key = line
            .get(..column.min(line.len()))
            .and_then(|upto| upto.find('='))
            .or_else(|| line.find('='))
            .and_then(|eq| line.get(..eq))
            .map(|k| segments(k.trim()).join("."))
            .filter(|k| !k.is_empty() && k.len() <= 128);
        match key {
            None => (!table.is_empty()).then_some(table),
            Some(k) if table.is_empty() => Some(k),
            Some(k) => Some(format!("{table}.{k}")),
        }
    }
}

/// A table header's path (`[a.b]` or `[[a.b]]`, counting the latter in `arrays`), or `None` for
/// any other line.
fn header(line: &str, arrays: &mut Vec<(String, usize)>) -> Option<String> {
    let (inner, is_array) = if let Some(rest) = line.strip_prefix("[[") {
        (rest.split("]]").next()?, true)
    } else if let Some(rest) = line.strip_prefix('[') {
        (rest.split(']').next()?, false)
    } else {
        return None;
    };
    let segs = segments(inner.trim());
    let raw = segs.join(".");
    if is_array {
        match arrays.iter_mut().find(|(name, _)| *name == raw) {
            Some((_, n)) => *n += 1,
            None => arrays.push((raw, 1)),
        }
    }
    let mut path = String::new();
    let mut so_far = String::new();
    for seg in segs {
        if !so_far.is_empty() {
            so_far.push('.');
            path.push('.');
        }
        so_far.push_str(&seg);
        path.push_str(&seg);
        if let Some((_, n)) = arrays.iter().find(|(name, _)| *name == so_far) {
            path.push_str(&format!("[{}]", n.saturating_sub(1)));
        }
    }
    Some(path)
}

/// The segments of a dotted TOML key, quotes removed (`a."b.c"` is `a`, `b.c`).
fn segments(key: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut quote: Option<char> = None;
    for c in key.chars() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '.') => out.push(std::mem::take(&mut current).trim().to_string()),
            _ => current.push(c),
        }
    }
    out.push(current.trim().to_string());
    out
}
