//! The texts a router's configuration gives inline or in files (prompts, templates) and the
//! time zones its routes name, checked and turned into what the plan holds: text, parsed
//! templates, [`Clock`]s with their rules.

use std::collections::BTreeMap;
use std::ops::Range;

use toml::Spanned;

use super::error::{ConfigError, Locator};
use super::raw::RawTransition;
use super::sources::Sources;
use crate::router::clock::{Clock, Transition};
use crate::router::template::{Slot, Template};

/// The largest prompt or template, inline or in a file (it travels in Envoy's configuration).
pub const MAX_PROMPT_BYTES: usize = 256 * 1024;

/// A prompt given as `field = "..."` or `field_file = "path"`, at most one of the two.
pub(super) struct TextKey<'r> {
    /// The key's path up to the field, e.g. `routers[0].classifier`.
    pub prefix: &'r str,
    /// The inline field's name, e.g. `prompt`; the file's is `prompt_file`.
    pub field: &'static str,
    pub inline: Option<&'r Spanned<String>>,
    pub file: Option<&'r Spanned<String>>,
}

impl TextKey<'_> {
    fn key(&self, file: bool) -> String {
        let suffix = if file { "_file" } else { "" };
        format!("{}.{}{suffix}", self.prefix, self.field)
    }

    /// The text (its trailing line breaks dropped: files and TOML's multi-line strings end with
    /// one) and the span and key to report its problems at; `Ok(None)` when neither key is
    /// given. Pushes what is wrong to `errs`.
    pub fn read(
        &self,
        loc: &Locator,
        sources: &Sources,
        errs: &mut Vec<ConfigError>,
    ) -> Result<Option<(String, Range<usize>, String)>, ()> {
        let (text, span, key) = match (self.inline, self.file) {
            (Some(_), Some(f)) => {
                errs.push(loc.error(
                    f.span(),
                    self.key(true),
                    format!("give one of `{0}` and `{0}_file`", self.field),
                ));
                return Err(());
            }
            (None, None) => return Ok(None),
            (Some(t), None) => (t.get_ref().clone(), t.span(), self.key(false)),
            (None, Some(f)) => match (sources.read_file)(f.get_ref()) {
                Ok(text) => (text, f.span(), self.key(true)),
                Err(why) => {
                    errs.push(loc.error(
                        f.span(),
                        self.key(true),
                        format!("cannot read `{}`: {why}", f.get_ref()),
                    ));
                    return Err(());
                }
            },
        };
        if text.len() > MAX_PROMPT_BYTES {
            errs.push(loc.error(span, key, format!("is over {MAX_PROMPT_BYTES} bytes")));
            return Err(());
        }
        let text = text.trim_end_matches(['\n', '\r']).to_string();
        Ok(Some((text, span, key)))
    }

    /// The text parsed as a template taking `slots`; `default` when neither key is given.
    pub fn template(
        &self,
        loc: &Locator,
        sources: &Sources,
        slots: &[Slot],
        default: Option<&str>,
        errs: &mut Vec<ConfigError>,
    ) -> Result<Option<Template>, ()> {
        let Some((text, span, key)) = self.read(loc, sources, errs)? else {
            return Ok(default.and_then(|d| Template::parse(d, slots).ok()));
        };
        match Template::parse(&text, slots) {
            Ok(t) => Ok(Some(t)),
            Err(why) => {
                errs.push(loc.error(span, key, why));
                Err(())
            }
        }
    }
}

/// Whether `zone` reads as an IANA time zone name (`Europe/Berlin`, `UTC`, `Etc/GMT+5`).
fn valid_zone_name(zone: &str) -> bool {
    !zone.is_empty()
        && zone.len() <= 64
        && !zone.contains("..")
        && !zone.starts_with('/')
        && zone
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/_+-".contains(&b))
}

/// The clock of the zone `zone` (at `key`): its rules from `[time_zones]` when the file has
/// them (the configuration `airouter envoy` writes for Envoy), else from the sources' tz
/// database.
pub(super) fn clock(
    loc: &Locator,
    key: &str,
    zone: &Spanned<String>,
    rules: &BTreeMap<String, Vec<RawTransition>>,
    sources: &Sources,
    errs: &mut Vec<ConfigError>,
) -> Option<Clock> {
    let name = zone.get_ref();
    let fail = |errs: &mut Vec<ConfigError>, why: String| {
        errs.push(loc.error(zone.span(), key, why));
        None
    };
    if !valid_zone_name(name) {
        return fail(
            errs,
            format!("`{name}` is not an IANA time zone name such as `Europe/Berlin`"),
        );
    }
    let (transitions, from) = match rules.get(name) {
        Some(list) => (
            list.iter()
                .map(|RawTransition(at, offset, abbreviation)| Transition {
                    at: *at,
                    offset: *offset,
                    abbreviation: abbreviation.clone(),
                })
                .collect(),
            "`[time_zones]`",
        ),
        None => match (sources.time_zone)(name) {
            Some(list) => (list, "the tz database"),
            None => {
                return fail(errs, format!(
                    "unknown time zone `{name}` (the filter has no tz database: `airouter envoy` writes each zone's rules into `[time_zones]`)"
                ))
            }
        },
    };
    match Clock::new(name, transitions) {
        Ok(c) => Some(c),
        Err(why) => fail(errs, format!("the rules of `{name}` from {from}: {why}")),
    }
}
