//! The files an `airouter.toml` names (prompt and template files, chat templates, GGUF models
//! whose metadata holds one), as the sidecar's pod gets them: from the config Secret
//! [`CONFIG_SECRET`], each under a flat key (a Secret key cannot hold `/`) projected back to its
//! relative path beside `airouter.toml` (`secret.items[]` of the pod's volume), so the file's
//! relative paths resolve in the pod as they do here. What a Secret cannot carry is named for the
//! operator instead: a path leaving the file's directory (`../`), an absolute one, or a file over
//! Kubernetes' 1 MiB Secret limit (a model), which the sidecar's image or a volume must provide.

use std::cell::RefCell;
use std::path::{Component, Path, PathBuf};

use airouter_core::config::{compile_with, Plan, Sources, TemplateSource};
use serde_json::{json, Value};

use super::CONFIG_SECRET;
use crate::config_files::{self, ConfigFiles};

/// Where the config Secret is mounted in the sidecar's container.
pub const CONFIG_DIR: &str = "/etc/airouter";
/// The Secret key and file name of the configuration itself.
pub const CONFIG_FILE: &str = "airouter.toml";
/// Kubernetes' limit on a Secret's data, in bytes.
const SECRET_LIMIT: u64 = 1024 * 1024;

/// The files `file` names, split by how the pod gets them.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct NamedFiles {
    /// `(Secret key, path relative to the file's directory)`, carried by the config Secret.
    pub in_secret: Vec<(String, String)>,
    /// `(path as written, where it is in the pod)`, which the Secret cannot carry.
    pub elsewhere: Vec<(String, String)>,
}

/// `rel` (a path as the configuration writes it) resolved against [`CONFIG_DIR`], lexically:
/// where the sidecar looks for it in the pod.
pub fn in_pod(rel: &str) -> String {
    let mut out = PathBuf::from(CONFIG_DIR);
    for c in Path::new(rel).components() {
        match c {
            Component::RootDir => out = PathBuf::from("/"),
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(part) => out.push(part),
            Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out.to_string_lossy().into_owned()
}

/// The files the configuration `text` of `file` reads (its `*_file` keys, as the compiler asks
/// for them) and the chat template files of `plan`'s Triton models, in the order first named.
pub fn named(file: &str, text: &str, plan: &Plan) -> Result<NamedFiles, String> {
    let files = ConfigFiles::beside(file);
    let read = RefCell::new(Vec::<String>::new());
    let reader = |path: &str| {
        read.borrow_mut().push(path.to_string());
        files.read(path)
    };
    let none = |_: &str| None;
    let sources = Sources {
        env: &none,
        read_file: &reader,
        time_zone: &config_files::zone_transitions,
        plain_secrets: true,
    };
    compile_with(file, text, &sources).map_err(|e| e.to_string())?;
    let mut paths = read.into_inner();
    for m in &plan.models {
        if let Some(TemplateSource::File(p) | TemplateSource::Gguf(p)) =
            m.triton.as_ref().map(|t| &t.template)
        {
            paths.push(p.clone());
        }
    }
    let dir = Path::new(file).parent().unwrap_or(Path::new(""));
    let mut named = NamedFiles::default();
    for p in paths {
        if named.in_secret.iter().any(|(_, r)| *r == p)
            || named.elsewhere.iter().any(|(r, _)| *r == p)
        {
            continue;
        }
        let inside = Path::new(&p)
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
        let size = std::fs::metadata(dir.join(&p)).map_or(0, |m| m.len());
        if inside && size <= SECRET_LIMIT {
            let key = secret_key(&p);
            if key == CONFIG_FILE || named.in_secret.iter().any(|(k, _)| *k == key) {
                return Err(format!(
                    "{file}: {p} and another file would share the config Secret's key {key}: rename one"
                ));
            }
            named.in_secret.push((key, p));
        } else {
            let there = in_pod(&p);
            named.elsewhere.push((p, there));
        }
    }
    Ok(named)
}

/// A Secret key for the relative path `rel`: its characters outside `[-._a-zA-Z0-9]` (the
/// separators) as `_`.
fn secret_key(rel: &str) -> String {
    rel.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-._".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The sidecar's config volume: the Secret, `airouter.toml` and each carried file projected to
/// its relative path.
pub fn config_volume(named: &NamedFiles) -> Value {
    let mut items = vec![json!({ "key": CONFIG_FILE, "path": CONFIG_FILE })];
    items.extend(
        named
            .in_secret
            .iter()
            .map(|(key, rel)| json!({ "key": key, "path": rel })),
    );
    json!({ "name": "config", "secret": { "secretName": CONFIG_SECRET, "items": items } })
}

/// What the operator runs to create the config Secret from `file` (as given on the command
/// line, so the paths work from where it ran), and what the Secret cannot carry.
pub fn notes(file: &str, namespace: &str, named: &NamedFiles) -> Vec<String> {
    let dir = Path::new(file).parent().unwrap_or(Path::new(""));
    let mut command =
        format!("kubectl -n {namespace} create secret generic {CONFIG_SECRET} --from-file={CONFIG_FILE}={file}");
    for (key, rel) in &named.in_secret {
        command.push_str(&format!(" --from-file={key}={}", dir.join(rel).display()));
    }
    let mut notes = vec![format!(
        "{file}: the sidecar reads the file and the files it names from the Secret {CONFIG_SECRET}: {command}"
    )];
    for (rel, there) in &named.elsewhere {
        notes.push(format!(
            "{file}: {rel} cannot be in the Secret {CONFIG_SECRET} (outside the file's directory, absolute, or over 1 MiB): the sidecar's image or a volume you add must hold it at {there}"
        ));
    }
    notes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_resolve_as_beside_the_mounted_file() {
        assert_eq!(in_pod("prompts/a.md"), "/etc/airouter/prompts/a.md");
        assert_eq!(in_pod("../.run/sessions"), "/etc/.run/sessions");
        assert_eq!(in_pod("./x"), "/etc/airouter/x");
        assert_eq!(in_pod("/var/log/s"), "/var/log/s");
    }

    #[test]
    fn keys_are_flat() {
        assert_eq!(secret_key("prompts/classify.md"), "prompts_classify.md");
    }
}
