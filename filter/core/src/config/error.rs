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

    /// A TOML syntax or type error; the key is the text the parser pointed at when it is one.
    pub fn toml_error(&self, err: &toml::de::Error) -> ConfigError {
        let span = err.span().unwrap_or(0..0);
        let pointed = self.text.get(span.clone()).unwrap_or("").trim();
        let key = if !pointed.is_empty()
            && pointed.len() <= 64
            && pointed
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
        {
            pointed.to_string()
        } else {
            String::new()
        };
        self.error(span, key, err.message().trim().to_string())
    }
}
