//! Config tests: the ini reader against configparser, value typing, load precedence and
//! make-config against Channelstream's output.

use super::values::*;
use super::*;
use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

// ---------------------------------------------------------------- helpers

fn args(a: &[&str]) -> Vec<OsString> {
    std::iter::once("herald")
        .chain(a.iter().copied())
        .map(OsString::from)
        .collect()
}

fn no_file(p: &Path) -> std::io::Result<String> {
    Err(std::io::Error::new(
        std::io::ErrorKind::NotFound,
        format!("no such file {}", p.display()),
    ))
}

/// Run `load` with an environment given as pairs and a single readable file.
fn run_with(
    a: &[&str],
    env: &[(&str, &str)],
    file: Option<(&str, &str)>,
) -> Result<Action, ConfigError> {
    let env: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let file = file.map(|(p, t)| (PathBuf::from(p), t.to_string()));
    load(args(a), &|k| env.get(k).cloned(), &|p| match &file {
        Some((fp, t)) if fp == p => Ok(t.clone()),
        _ => no_file(p),
    })
}

fn cfg(a: &[&str], env: &[(&str, &str)], file: Option<(&str, &str)>) -> (Config, Vec<String>) {
    match run_with(a, env, file) {
        Ok(Action::Run(c, ignored)) => (*c, ignored),
        Ok(_) => panic!("expected Action::Run"),
        Err(e) => panic!("load failed: {e}"),
    }
}

fn err(a: &[&str], env: &[(&str, &str)], file: Option<(&str, &str)>) -> ConfigError {
    match run_with(a, env, file) {
        Err(e) => e,
        Ok(_) => panic!("expected an error"),
    }
}

fn make_config(a: &[&str], env: &[(&str, &str)]) -> (Option<PathBuf>, String) {
    match run_with(a, env, None) {
        Ok(Action::MakeConfig { output, text }) => (output, text),
        Ok(_) => panic!("expected Action::MakeConfig"),
        Err(e) => panic!("load failed: {e}"),
    }
}

/// Replace the uuid on the `cookie_secret = ` line with a fixed marker.
fn normalise_cookie(text: &str) -> String {
    text.lines()
        .map(|l| match l.strip_prefix("cookie_secret = ") {
            Some(v) => {
                assert!(uuid::Uuid::parse_str(v).is_ok(), "not a uuid: {v:?}");
                "cookie_secret = <uuid>".to_string()
            }
            None => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

mod ini;
mod load;
mod make_config;
mod tls;
mod values;
