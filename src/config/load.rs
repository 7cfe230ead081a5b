//! Loading the configuration: the command line, then defaults, then the ini file *or* the
//! `CHANNELSTREAM_*` variables, then the flags (see the parent module docs for the order).

use super::cli::{apply_flags, Cli, CliCommand};
use super::ini::{parse_ini, IniError};
use super::make_config::{render_make_config, MakeConfigVars};
use super::values::{
    asbool, filter_http_scheme, new_cookie_secret, parse_log_level, py_int, split_list,
};
use super::*;
use crate::py::text;
use clap::Parser;
use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// What the process should do after reading its configuration.
pub enum Action {
    /// Serve with this config; the second field lists ini keys that were ignored (not among
    /// [`CONFIGURABLE_PARAMS`] nor [`HERALD_PARAMS`]) so main can log them.
    Run(Box<Config>, Vec<String>),
    /// `herald make-config`: write `text` as is (it has no trailing newline) to `output`, or to
    /// stdout when `None`.
    MakeConfig {
        /// The `-o` file to write, or `None` for stdout.
        output: Option<PathBuf>,
        /// The rendered ini file.
        text: String,
    },
    /// `-v/--version`: print this line and exit.
    Version(String),
}

/// Why the configuration could not be loaded. Main prints it and exits with status 2, except
/// [`ConfigError::Cli`], which carries clap's own output: call `e.exit()` (it prints `--help`
/// to stdout with status 0, usage errors to stderr with status 2).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Bad command line, or `--help`: clap's own message and exit status.
    #[error("{0}")]
    Cli(#[from] clap::Error),
    /// The ini file could not be read.
    #[error("cannot read ini file {}: {source}", path.display())]
    ReadIni {
        /// The file named by `-i` or `CHANNELSTREAM_INI`.
        path: PathBuf,
        /// The I/O error from reading it.
        source: std::io::Error,
    },
    /// The ini file was read but does not parse.
    #[error("ini file {}: {source}", path.display())]
    Ini {
        /// The file named by `-i` or `CHANNELSTREAM_INI`.
        path: PathBuf,
        /// What is wrong with it.
        source: IniError,
    },
    /// A `[pusher_app:NAME]` section is incomplete or has a bad value (never quoted: it may
    /// be a secret).
    #[error("ini section [{section}]: {reason}")]
    PusherApp {
        /// The section.
        section: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// A `[listener:NAME]` section, or the main listener's TLS keys, are incomplete or bad.
    #[error("[{section}]: {reason}")]
    Listener {
        /// The section (`channelstream` for the main listener's keys).
        section: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// The ini file parses but lacks the `[channelstream]` section.
    #[error("ini file {} has no [channelstream] section", path.display())]
    NoSection {
        /// The file named by `-i` or `CHANNELSTREAM_INI`.
        path: PathBuf,
    },
    /// A value failed to parse; `origin` says where it came from. Only non-secret keys are
    /// validated, so quoting the value is safe.
    #[error("{key} = {value:?} (from {origin}): {reason}")]
    Invalid {
        /// The setting's name.
        key: &'static str,
        /// The raw value as given.
        value: String,
        /// Where the value came from: the ini file or an environment variable.
        origin: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// `make-config -j` got JSON that is invalid or not an object; the message says which.
    #[error("make-config -j: {0}")]
    MakeConfigJson(String),
}

/// The line printed by `-v/--version`.
pub fn version_line() -> String {
    format!(
        "herald {} (Channelstream {CHANNELSTREAM_VERSION} compatible)",
        env!("CARGO_PKG_VERSION")
    )
}

/// Parse the command line (`args` includes the program name), then build the config from the
/// defaults, the ini file or the environment, and the flags (see the module docs).
pub fn load(
    args: impl IntoIterator<Item = OsString>,
    env: &dyn Fn(&str) -> Option<String>,
    read_file: &dyn Fn(&Path) -> std::io::Result<String>,
) -> Result<Action, ConfigError> {
    let cli = Cli::try_parse_from(args)?;
    if cli.version {
        return Ok(Action::Version(version_line()));
    }
    if let Some(CliCommand::MakeConfig { output, json }) = cli.command {
        // Like Python's `if args.json:`, an empty -j falls back to the environment.
        let vars = match json.as_deref() {
            Some(j) if !j.is_empty() => MakeConfigVars::from_json(j)?,
            _ => MakeConfigVars::from_env(env)?,
        };
        return Ok(Action::MakeConfig {
            output,
            text: render_make_config(&vars),
        });
    }

    // Layer 2: `args.ini or os.environ.get("CHANNELSTREAM_INI")` (empty strings are falsy).
    let ini_path = cli
        .ini
        .clone()
        .filter(|p| !p.as_os_str().is_empty())
        .or_else(|| env(INI_ENV).filter(|s| !s.is_empty()).map(PathBuf::from));
    let mut ignored = Vec::new();
    let mut pusher_apps = Vec::new();
    let mut listeners = Vec::new();
    let (raw, origin) = match &ini_path {
        Some(path) => {
            let text = read_file(path).map_err(|source| ConfigError::ReadIni {
                path: path.clone(),
                source,
            })?;
            let (raw, ign, apps, lst) = read_ini_settings(&text, path)?;
            ignored = ign;
            pusher_apps = apps;
            listeners = lst;
            (raw, Origin::Ini(path.clone()))
        }
        None => {
            let raw = CONFIGURABLE_PARAMS
                .iter()
                .chain(HERALD_PARAMS.iter())
                .filter_map(|&k| env(&env_name(k)).map(|v| (k, v)))
                .collect();
            (raw, Origin::Env)
        }
    };
    let mut cfg = apply_channelstream(&raw, &origin)?;
    cfg.ini_path = ini_path;
    cfg.pusher_apps = pusher_apps;
    cfg.listeners = listeners;
    apply_pusher_env(&mut cfg, env)?;
    apply_pushi(&mut cfg, &raw, env, &origin)?;
    apply_cluster_env(&mut cfg, env)?;
    apply_flags(&mut cfg, cli);
    let id_ok = |c: char| c.is_ascii_alphanumeric() || "-_.".contains(c);
    if cfg.node_id.len() > 64 || !cfg.node_id.chars().all(id_ok) {
        return Err(ConfigError::Invalid {
            key: "node_id",
            value: cfg.node_id.clone(),
            origin: "--node-id / HERALD_NODE_ID / node_id".into(),
            reason: "at most 64 of A-Z a-z 0-9 - _ .",
        });
    }
    if cfg.cluster.is_some() && cfg.node_id.is_empty() {
        cfg.node_id = crate::cluster::random_node_id();
    }
    if cfg.cookie_secret.is_empty() {
        cfg.cookie_secret = if cfg.cluster.is_some() {
            cluster_cookie_secret(&cfg.secret)
        } else {
            new_cookie_secret()
        };
    }
    Ok(Action::Run(Box::new(cfg), ignored))
}

/// Cluster mode without a configured `cookie_secret`: one every node sharing the API
/// `secret` derives alike (HMAC-SHA256 of a fixed label), so an admin cookie signed by one
/// node is valid on the others. Whoever knows `secret` can already sign any API call.
fn cluster_cookie_secret(secret: &str) -> String {
    use hmac::{Hmac, Mac};
    let Ok(mut mac) = <Hmac<sha2::Sha256> as Mac>::new_from_slice(secret.as_bytes()) else {
        return new_cookie_secret(); // HMAC takes keys of any length: never here
    };
    mac.update(b"herald cluster admin cookie secret");
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The Pusher dialect's default app, from `HERALD_DEFAULT_APP_{ID,KEY,SECRET}` and its webhooks
/// from `HERALD_DEFAULT_APP_WEBHOOK*` (`config::webhooks`). Read whether or not an ini file is
/// given: these are Herald's own variables, not Channelstream's.
fn apply_pusher_env(
    cfg: &mut Config,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
    let non_empty = |k: &str| env(k).filter(|v| !v.is_empty());
    if let Some(v) = non_empty("HERALD_DEFAULT_APP_ID") {
        cfg.default_app_id = v;
    }
    if let Some(v) = non_empty("HERALD_DEFAULT_APP_KEY") {
        cfg.default_app_key = v;
    }
    if let Some(v) = non_empty("HERALD_DEFAULT_APP_SECRET") {
        cfg.default_app_secret = v;
    }
    if let Some(v) = non_empty("HERALD_DEFAULT_APP_ENABLE_CLIENT_MESSAGES") {
        cfg.default_app_client_events = asbool(&v);
    }
    let var = |k: &str| format!("HERALD_DEFAULT_APP_{}", k.to_ascii_uppercase());
    cfg.default_app_webhooks =
        super::webhooks::read(&|k| non_empty(&var(k))).map_err(|(key, reason)| {
            ConfigError::Invalid {
                key,
                value: non_empty(&var(key)).unwrap_or_default(),
                origin: var(key),
                reason,
            }
        })?;
    Ok(())
}

/// Pushi mode and the store (`config::pushi`): the ini keys (or `CHANNELSTREAM_*` without an
/// ini file), then `HERALD_*`; in Pushi mode, Pushi's `SERVER_HOST`/`SERVER_PORT`.
fn apply_pushi(
    cfg: &mut Config,
    raw: &RawSettings,
    env: &dyn Fn(&str) -> Option<String>,
    origin: &Origin,
) -> Result<(), ConfigError> {
    let get = |k: &str| raw.get(k).cloned();
    let bad = |(key, value, reason): super::pushi::Bad| ConfigError::Invalid {
        key,
        value,
        origin: origin.describe(key),
        reason,
    };
    super::pushi::apply(&mut cfg.pushi, &get, env).map_err(bad)?;
    if cfg.pushi.enabled {
        let v = super::pushi::start_vars(env).map_err(bad)?;
        if let Some(h) = v.host {
            cfg.host = h;
        }
        if let Some(p) = v.port {
            cfg.port = p;
        }
        if v.tls.is_some() {
            cfg.tls = v.tls;
        }
        cfg.listeners.extend(v.app);
    }
    Ok(())
}

/// `HERALD_CLUSTER` and `HERALD_NODE_ID`, read whether or not an ini file is given (they
/// override the ini file's `cluster` / `node_id`; the flags override them).
fn apply_cluster_env(
    cfg: &mut Config,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
    if let Some(v) = env("HERALD_CLUSTER").filter(|v| !v.is_empty()) {
        let url = crate::cluster::parse_url(v.trim()).map_err(|reason| ConfigError::Invalid {
            key: "cluster",
            value: v.clone(),
            origin: "HERALD_CLUSTER".into(),
            reason,
        })?;
        cfg.cluster = Some(url);
    }
    if let Some(v) = env("HERALD_NODE_ID").filter(|v| !v.is_empty()) {
        cfg.node_id = v;
    }
    Ok(())
}

/// `CHANNELSTREAM_` + key in upper case.
pub fn env_name(key: &str) -> String {
    format!("CHANNELSTREAM_{}", key.to_ascii_uppercase())
}

/// Where layer-2 values came from, for error messages.
enum Origin {
    Ini(PathBuf),
    Env,
}

impl Origin {
    fn describe(&self, key: &str) -> String {
        match self {
            Origin::Ini(p) => format!("ini file {}", p.display()),
            Origin::Env => env_name(key),
        }
    }
}

/// Layer-2 strings by configurable key.
type RawSettings = HashMap<&'static str, String>;

/// The configurable keys present in the `[channelstream]` section (interpolated), plus the
/// section's other keys (to be logged as ignored).
type IniSettings = (
    RawSettings,
    Vec<String>,
    Vec<super::PusherApp>,
    Vec<super::ListenerConfig>,
);

fn read_ini_settings(text: &str, path: &Path) -> Result<IniSettings, ConfigError> {
    let ini_err = |source| ConfigError::Ini {
        path: path.to_owned(),
        source,
    };
    let ini = parse_ini(text).map_err(ini_err)?;
    if !ini.has_section(INI_SECTION) {
        return Err(ConfigError::NoSection {
            path: path.to_owned(),
        });
    }
    let mut raw = HashMap::new();
    for key in CONFIGURABLE_PARAMS.into_iter().chain(HERALD_PARAMS) {
        // Only the keys we use are interpolated: a stray `%` in an unrelated key stays harmless
        // (Channelstream would crash on it).
        if let Some(v) = ini.get(INI_SECTION, key).map_err(ini_err)? {
            raw.insert(key, v);
        }
    }
    let ignored = ini
        .keys(INI_SECTION)
        .into_iter()
        .filter(|k| !CONFIGURABLE_PARAMS.contains(k) && !HERALD_PARAMS.contains(k))
        .map(str::to_owned)
        .collect();
    let apps = super::pusher_apps::read(&ini)?;
    let listeners = super::listeners::read(&ini)?;
    Ok((raw, ignored, apps, listeners))
}

/// Defaults overridden by layer-2 strings, typed as `set_config_types` does.
fn apply_channelstream(raw: &RawSettings, origin: &Origin) -> Result<Config, ConfigError> {
    let invalid = |key: &'static str, value: &str, reason| ConfigError::Invalid {
        key,
        value: value.to_owned(),
        origin: origin.describe(key),
        reason,
    };
    let mut cfg = Config {
        shards: default_shards(),
        ..Config::default()
    };
    let get = |k: &str| raw.get(k).map(String::as_str);

    if let Some(v) = get("debug") {
        cfg.debug = asbool(v);
    }
    if let Some(v) = get("log_level") {
        cfg.log_level = parse_log_level(v)
            .ok_or_else(|| {
                invalid(
                    "log_level",
                    v,
                    "expected DEBUG, INFO, WARNING, ERROR, CRITICAL or NOTSET",
                )
            })?
            .to_owned();
    }
    if let Some(v) = get("port") {
        cfg.port = py_int(v)
            .and_then(|p| u16::try_from(p).ok())
            .ok_or_else(|| invalid("port", v, "expected a port number (0-65535)"))?;
    }
    if let Some(v) = get("host") {
        // Python binds ("", port) to every interface; `to_socket_addrs` would reject "".
        cfg.host = if v.is_empty() {
            "0.0.0.0".into()
        } else {
            v.to_owned()
        };
    }
    if let Some(v) = get("secret") {
        cfg.secret = v.to_owned();
    }
    if let Some(v) = get("admin_user") {
        cfg.admin_user = v.to_owned();
    }
    if let Some(v) = get("admin_secret") {
        cfg.admin_secret = v.to_owned();
    }
    if let Some(v) = get("cookie_secret") {
        cfg.cookie_secret = v.to_owned();
    }
    if let Some(v) = get("allow_posting_from") {
        cfg.allow_posting_from = split_list(v);
    }
    if let Some(v) = get("allow_cors") {
        cfg.allow_cors = split_list(v);
    }
    if let Some(v) = get("validate_requests") {
        cfg.validate_requests = asbool(v);
    }
    if let Some(v) = get("strict") {
        cfg.strict = asbool(v);
    }
    cfg.tls = super::listeners::tls_pair(
        get("tls_cert").map(str::to_owned),
        get("tls_key").map(str::to_owned),
        INI_SECTION,
    )?;
    if let Some(v) = get("ws_deflate") {
        cfg.deflate.enabled = asbool(v);
    }
    for (key, field) in [
        ("pusher_activity_timeout", &mut cfg.pusher_activity_timeout),
        ("pusher_pong_timeout", &mut cfg.pusher_pong_timeout),
    ] {
        if let Some(v) = get(key) {
            let secs = py_int(v)
                .and_then(|n| u64::try_from(n).ok())
                .filter(|n| *n > 0)
                .ok_or_else(|| invalid(key, v, "expected a positive number of seconds"))?;
            *field = Duration::from_secs(secs);
        }
    }
    if let Some(v) = get("cluster").filter(|v| !v.is_empty()) {
        cfg.cluster =
            Some(crate::cluster::parse_url(v.trim()).map_err(|r| invalid("cluster", v, r))?);
    }
    if let Some(v) = get("node_id") {
        cfg.node_id = v.trim().to_owned();
    }
    if let Some(v) = get("enforce_https") {
        cfg.enforce_https = asbool(v);
    }
    if let Some(v) = get("http_scheme") {
        cfg.http_scheme = filter_http_scheme(v);
    }
    if let Some(v) = get("signature_checker") {
        // Channelstream imports this dotted path. We cannot load Python classes, and silently
        // substituting a different checker could accept tokens the configured one refuses, so
        // anything but the default is a start-up error.
        if text::strip(v) != DEFAULT_SIGNATURE_CHECKER {
            return Err(invalid(
                "signature_checker",
                v,
                "Herald only implements channelstream.utils.DefaultSigner",
            ));
        }
    }
    Ok(cfg)
}

fn default_shards() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}
