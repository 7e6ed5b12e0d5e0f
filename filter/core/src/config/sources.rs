//! What compiling a configuration may look up outside its text: environment variables, the
//! files `*_file` keys name, and time zone rules. The sidecar (`airouter check`, `envoy`,
//! `reload`) gives all three; inside Envoy the filter has its environment only ([`Sources::env_only`]),
//! so the configuration Envoy holds carries file contents and time zone rules inline, as
//! `airouter envoy` writes it, and no plain secret ([`Sources::in_envoy`]).

use crate::router::clock::Transition;

/// Lookups for [`super::compile_with`].
pub struct Sources<'a> {
    /// An environment variable's value (the process's own in the sidecar, WASI's in Envoy).
    pub env: &'a dyn Fn(&str) -> Option<String>,
    /// The text of a file a `*_file` key names, as written (relative to the configuration
    /// file's directory); `Err` says why it cannot be read.
    pub read_file: &'a dyn Fn(&str) -> Result<String, String>,
    /// The offset changes of an IANA time zone from a tz database (see
    /// [`crate::router::clock`]); `None` when the zone is unknown there or there is no database.
    pub time_zone: &'a dyn Fn(&str) -> Option<Vec<Transition>>,
    /// Whether the text may hold plain secrets (a backend's `api_key`, a client key's `key`, a
    /// Redis password): yes for the sidecar's own reading, no for the configuration Envoy holds
    /// ([`Sources::in_envoy`], see [`super::secrets`]).
    pub plain_secrets: bool,
}

/// What [`Sources::env_only`] answers for a file: the filter reads none.
pub const NO_FILES: &str = "the filter reads no files: `airouter envoy` puts the file's text in the configuration Envoy holds";

fn no_files(_: &str) -> Result<String, String> {
    Err(NO_FILES.into())
}

fn no_time_zones(_: &str) -> Option<Vec<Transition>> {
    None
}

impl<'a> Sources<'a> {
    /// Environment variables only: no files, no tz database; plain secrets allowed (what
    /// [`super::compile`] reads with).
    pub fn env_only(env: &'a dyn Fn(&str) -> Option<String>) -> Sources<'a> {
        Sources {
            env,
            read_file: &no_files,
            time_zone: &no_time_zones,
            plain_secrets: true,
        }
    }

    /// What the filter inside Envoy has: [`Sources::env_only`], with plain secrets refused.
    pub fn in_envoy(env: &'a dyn Fn(&str) -> Option<String>) -> Sources<'a> {
        Sources {
            plain_secrets: false,
            ..Sources::env_only(env)
        }
    }
}
