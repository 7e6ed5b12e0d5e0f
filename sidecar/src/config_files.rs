//! What an `airouter.toml` refers to outside its text, as `airouter check`, `envoy`, `reload`
//! and `serve` look it up: files named by `*_file` keys (relative to the configuration file's
//! directory), time zone rules from the tz database jiff bundles (the same on every machine,
//! whatever `/usr/share/zoneinfo` holds), and the process's environment.

use std::path::{Path, PathBuf};

use airouter_core::config::{compile_with, ConfigErrors, Plan, Sources};
use airouter_core::router::clock::{Transition, MAX_TRANSITIONS};
use jiff::Timestamp;

/// The first instant whose offset `[time_zones]` carries: 2020-01-01T00:00:00Z (no Envoy
/// running this release runs before it). Fixed, so the rendered configuration depends on the
/// tz database only, not on the day it was rendered.
pub const ZONE_RULES_FROM: i64 = 1_577_836_800;
/// The end of the offset changes `[time_zones]` carries: 2100-01-01T00:00:00Z.
pub const ZONE_RULES_UNTIL: i64 = 4_102_444_800;

/// Files relative to the directory of the configuration file `file`.
pub struct ConfigFiles {
    dir: PathBuf,
}

impl ConfigFiles {
    /// Files beside the configuration file `file`.
    pub fn beside(file: &str) -> ConfigFiles {
        ConfigFiles {
            dir: Path::new(file)
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default(),
        }
    }

    /// The text of `path` (relative to the configuration's directory, or absolute).
    pub fn read(&self, path: &str) -> Result<String, String> {
        let full = self.dir.join(path);
        std::fs::read_to_string(&full).map_err(|e| format!("{} ({})", e, full.display()))
    }
}

/// The offset changes of the IANA zone `name` from [`ZONE_RULES_FROM`] (the offset then,
/// first) to [`ZONE_RULES_UNTIL`]; `None` when the tz database does not know it.
pub fn zone_transitions(name: &str) -> Option<Vec<Transition>> {
    let tz = jiff::tz::TimeZone::get(name).ok()?;
    let start = Timestamp::from_second(ZONE_RULES_FROM).ok()?;
    let first = tz.to_offset_info(start);
    let mut out = vec![Transition {
        at: ZONE_RULES_FROM,
        offset: first.offset().seconds(),
        abbreviation: first.abbreviation().to_string(),
    }];
    for t in tz.following(start) {
        let at = t.timestamp().as_second();
        if at >= ZONE_RULES_UNTIL || out.len() >= MAX_TRANSITIONS {
            break;
        }
        out.push(Transition {
            at,
            offset: t.offset().seconds(),
            abbreviation: t.abbreviation().to_string(),
        });
    }
    Some(out)
}

/// Compiles the configuration `text` of the file `file`, its `*_file` keys read beside it,
/// its time zones from the tz database, `env` for environment variables.
pub fn compile_file(
    file: &str,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Plan, ConfigErrors> {
    let files = ConfigFiles::beside(file);
    let read = |path: &str| files.read(path);
    let sources = Sources {
        env,
        read_file: &read,
        time_zone: &zone_transitions,
        plain_secrets: true,
    };
    compile_with(file, text, &sources)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zones_come_with_their_offset_changes() {
        let berlin = zone_transitions("Europe/Berlin").unwrap();
        assert_eq!(
            (berlin[0].offset, berlin[0].abbreviation.as_str()),
            (3600, "CET")
        );
        // 2025-03-30T01:00:00Z: summer time.
        let spring = berlin.iter().find(|t| t.at == 1_743_296_400).unwrap();
        assert_eq!(
            (spring.offset, spring.abbreviation.as_str()),
            (7200, "CEST")
        );
        assert!(berlin.len() > 150 && berlin.last().unwrap().at < ZONE_RULES_UNTIL);
        let kolkata = zone_transitions("Asia/Kolkata").unwrap();
        assert_eq!(kolkata.len(), 1);
        assert_eq!(kolkata[0].offset, 19_800);
        assert!(zone_transitions("UTC").is_some());
        assert!(zone_transitions("Mars/Olympus").is_none());
    }

    #[test]
    fn files_are_read_beside_the_configuration() {
        let dir = std::env::temp_dir().join(format!("airouter-files-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("prompts")).unwrap();
        std::fs::write(dir.join("prompts/p.md"), "hello").unwrap();
        let files = ConfigFiles::beside(dir.join("airouter.toml").to_str().unwrap());
        assert_eq!(files.read("prompts/p.md").unwrap(), "hello");
        let err = files.read("prompts/missing.md").unwrap_err();
        assert!(err.contains("missing.md"), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
