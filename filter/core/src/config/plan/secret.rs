//! Secrets held by a plan and what a backend is sent as credentials. A [`Secret`]'s `Debug` shows
//! `<redacted>`, so a dumped plan or a log line never carries a key.

use std::fmt;

/// A secret (a backend key): shown as `<redacted>` by `Debug`, so dumps and logs never carry it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub(in crate::config) String);

impl Secret {
    /// Wraps a value that must never be shown.
    pub fn new(value: String) -> Self {
        Secret(value)
    }

    /// The value itself, for the code that sends it on.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// What a backend is sent as credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// No `Authorization` header: the client's is removed.
    None,
    /// `Authorization: Bearer <key>`, replacing the client's.
    Key(Secret),
    /// The client's own key, as `Authorization: Bearer`.
    PassThrough,
}
