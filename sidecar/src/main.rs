//! `airouter`: AI Router's command-line tool and (in later releases) its sidecar service.
//!
//! - `airouter check FILE` validates an `airouter.toml`.
//! - `airouter envoy FILE [--wasm PATH] [--ca-file PATH]` prints a complete Envoy bootstrap.
//! - `airouter schema` prints the JSON Schema of `airouter.toml`.

mod bootstrap;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use airouter_core::config::{compile, Plan};

const USAGE: &str = "usage:
  airouter check FILE
  airouter envoy FILE [--wasm PATH] [--ca-file PATH]
  airouter schema";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{message}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &[String]) -> Result<(), String> {
    match args.first().map(String::as_str) {
        Some("check") => {
            let file = args.get(1).ok_or(USAGE)?;
            let plan = load(file)?;
            for var in &plan.missing_env {
                eprintln!("{file}: warning: environment variable {var} is not set here; Envoy needs it at start");
            }
            println!(
                "{file}: ok ({} backends, {} models, {} client keys{})",
                plan.backends.len(),
                plan.models.len(),
                plan.keys.keys().len(),
                if plan.keys.is_open() {
                    ", open: no key needed"
                } else {
                    ""
                }
            );
            Ok(())
        }
        Some("envoy") => {
            let file = args.get(1).ok_or(USAGE)?;
            let mut wasm = PathBuf::from("target/wasm32-wasip1/release/airouter_filter.wasm");
            let mut ca_file = PathBuf::from("/etc/ssl/certs/ca-certificates.crt");
            let mut rest = args.iter().skip(2);
            while let Some(flag) = rest.next() {
                let value = rest.next().ok_or(USAGE)?;
                match flag.as_str() {
                    "--wasm" => wasm = PathBuf::from(value),
                    "--ca-file" => ca_file = PathBuf::from(value),
                    _ => return Err(format!("unknown option {flag}\n{USAGE}")),
                }
            }
            let text = read(file)?;
            let plan = compile(file, &text, &|_| None).map_err(|e| e.to_string())?;
            let wasm = absolute(&wasm)?;
            let doc = bootstrap::render(&plan, &text, &wasm, &ca_file);
            let out = serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?;
            println!("{out}");
            Ok(())
        }
        Some("schema") => {
            let schema = schemars::schema_for!(airouter_core::config::raw::RawConfig);
            let out = serde_json::to_string_pretty(&schema).map_err(|e| e.to_string())?;
            println!("{out}");
            Ok(())
        }
        _ => Err(USAGE.to_string()),
    }
}

fn read(file: &str) -> Result<String, String> {
    std::fs::read_to_string(file).map_err(|e| format!("{file}: {e}"))
}

fn load(file: &str) -> Result<Plan, String> {
    let text = read(file)?;
    compile(file, &text, &|name| std::env::var(name).ok()).map_err(|e| e.to_string())
}

fn absolute(p: &Path) -> Result<PathBuf, String> {
    std::path::absolute(p).map_err(|e| format!("{}: {e}", p.display()))
}
