//! Configuration: Channelstream's `[channelstream]` ini file and `CHANNELSTREAM_*` variables,
//! plus Herald's own flags; parsed once at start and shared read-only.
//!
//! Herald is a drop-in replacement, so an ini file or environment that works with Channelstream
//! 0.7.1 must give the same settings here (spec §2). Three layers, applied in this order:
//!
//! 1. defaults (Channelstream's `SHARED_DEFAULTS`, except `host`: see [`DEFAULT_HOST`]);
//! 2. **either** the `[channelstream]` section of the ini file (`-i/--ini`, else
//!    `CHANNELSTREAM_INI`) **or**, when there is no ini file, the `CHANNELSTREAM_<KEY>`
//!    variables. Channelstream ignores the environment completely once an ini file is given,
//!    and so do we;
//! 3. Herald's command-line flags, which override both.
//!
//! Layer 2 is parsed with Channelstream's rules (`utils.set_config_types`): `asbool`, the
//! comma-list splitting, `int()` ports, the `http_scheme` filter. The ini reader
//! ([`parse_ini`]) follows Python's `configparser` defaults, because real files rely on its
//! continuation lines (`allow_posting_from` as written by `make_config`), on `[DEFAULT]` and on
//! `%%` interpolation (a literal `%` in a secret must be written `%%`).
//!
//! Everything is pure: [`load`] receives the arguments, an environment lookup and a file reader,
//! so tests cover precedence without touching the process. The only impurities are the uuid4
//! `cookie_secret` generated when none is configured and the CPU count behind `--shards`.
//! Secrets never appear in `Debug` output or in error messages.

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{ArgAction, Args, Parser, Subcommand};

/// The Channelstream release whose behaviour Herald reproduces.
pub const CHANNELSTREAM_VERSION: &str = "0.7.1";

/// The keys Channelstream reads from the ini file and the environment (`CONFIGURABLE_PARAMS`).
pub const CONFIGURABLE_PARAMS: [&str; 14] = [
    "debug",
    "log_level",
    "port",
    "host",
    "secret",
    "admin_user",
    "admin_secret",
    "cookie_secret",
    "allow_posting_from",
    "allow_cors",
    "validate_requests",
    "enforce_https",
    "http_scheme",
    "signature_checker",
];

/// The only `signature_checker` Herald implements (itsdangerous `TimestampSigner`).
pub const DEFAULT_SIGNATURE_CHECKER: &str = "channelstream.utils.DefaultSigner";

/// Herald listens on loopback unless told otherwise. Channelstream's default is `0.0.0.0`;
/// exposing a server whose default secrets are `secret`/`admin_secret` to the network by
/// default is a footgun we deliberately do not copy.
pub const DEFAULT_HOST: &str = "127.0.0.1";

/// Name of the ini section Channelstream reads.
pub const INI_SECTION: &str = "channelstream";

/// Env var naming the ini file when `-i` is absent.
pub const INI_ENV: &str = "CHANNELSTREAM_INI";

#[derive(Clone)]
pub struct Config {
    // --- Channelstream keys (§2.2 of the spec) ---
    pub debug: bool,
    /// Canonical Python level name: DEBUG, INFO, WARNING, ERROR, CRITICAL or NOTSET.
    pub log_level: String,
    pub host: String,
    pub port: u16,
    pub secret: String,
    pub admin_user: String,
    pub admin_secret: String,
    /// Never empty after [`load`]: a uuid4 is generated when none is configured.
    pub cookie_secret: String,
    pub allow_posting_from: Vec<String>,
    pub allow_cors: Vec<String>,
    pub validate_requests: bool,
    pub enforce_https: bool,
    /// `"http"`, `"https"` or `""` (use the request's scheme).
    pub http_scheme: String,
    // --- Herald ---
    pub shards: usize,
    /// Serve a websocket echo on this path (Autobahn conformance); off by default.
    pub echo_path: Option<String>,
    pub limits: Limits,
    /// The ini file the settings came from, if any (for the start-up log).
    pub ini_path: Option<PathBuf>,
}

/// Resource limits; each has a stated behaviour when hit (see README).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    pub max_connections_per_shard: usize,
    pub max_connections_total: usize,
    /// Per shard: connections whose first request head has not fully arrived.
    pub max_pending_handshakes: usize,
    pub max_channels_per_connection: usize,
    pub max_head_bytes: usize,
    pub max_headers: usize,
    pub max_body_bytes: usize,
    pub max_ws_message_bytes: usize,
    pub max_queued_bytes: usize,
    pub header_timeout: Duration,
    pub keep_alive_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections_per_shard: 100_000,
            max_connections_total: 1_000_000,
            max_pending_handshakes: 10_000,
            max_channels_per_connection: 1_000,
            max_head_bytes: 16 * 1024,
            max_headers: 64,
            max_body_bytes: 1024 * 1024,
            max_ws_message_bytes: 1024 * 1024,
            max_queued_bytes: 1024 * 1024,
            header_timeout: Duration::from_secs(10),
            keep_alive_timeout: Duration::from_secs(75),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            debug: false,
            log_level: "INFO".into(),
            host: DEFAULT_HOST.into(),
            port: 8000,
            secret: "secret".into(),
            admin_user: "admin".into(),
            admin_secret: "admin_secret".into(),
            cookie_secret: String::new(),
            allow_posting_from: vec!["127.0.0.1".into()],
            allow_cors: Vec::new(),
            validate_requests: true,
            enforce_https: false,
            http_scheme: String::new(),
            shards: 1,
            echo_path: None,
            limits: Limits::default(),
            ini_path: None,
        }
    }
}

impl Config {
    pub fn listen_addr(&self) -> std::io::Result<SocketAddr> {
        use std::net::ToSocketAddrs;
        (self.host.as_str(), self.port)
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| std::io::Error::other("no address for host"))
    }

    /// `max_age` for [`crate::auth::Signer::verify`]: tokens expire after 60 s when
    /// `validate_requests` is on; otherwise only the HMAC is checked.
    pub fn signer_max_age(&self) -> Option<u64> {
        self.validate_requests.then_some(60)
    }

    /// An `EnvFilter`-style directive for `log_level` (NOTSET means "everything", as for
    /// Python's root logger).
    pub fn log_directive(&self) -> &'static str {
        match self.log_level.as_str() {
            "NOTSET" => "trace",
            "DEBUG" => "debug",
            "WARNING" => "warn",
            "ERROR" | "CRITICAL" => "error",
            _ => "info",
        }
    }

    /// True when the API secret is still Channelstream's well-known default (main warns).
    pub fn uses_default_secret(&self) -> bool {
        self.secret == "secret"
    }

    /// True when the admin password is still Channelstream's well-known default (main warns).
    pub fn uses_default_admin_secret(&self) -> bool {
        self.admin_secret == "admin_secret"
    }
}

/// Secrets are redacted: configs get logged at debug level and in panics.
impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const R: &str = "<redacted>";
        f.debug_struct("Config")
            .field("debug", &self.debug)
            .field("log_level", &self.log_level)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("secret", &R)
            .field("admin_user", &self.admin_user)
            .field("admin_secret", &R)
            .field("cookie_secret", &R)
            .field("allow_posting_from", &self.allow_posting_from)
            .field("allow_cors", &self.allow_cors)
            .field("validate_requests", &self.validate_requests)
            .field("enforce_https", &self.enforce_https)
            .field("http_scheme", &self.http_scheme)
            .field("shards", &self.shards)
            .field("echo_path", &self.echo_path)
            .field("limits", &self.limits)
            .field("ini_path", &self.ini_path)
            .finish()
    }
}

// ------------------------------------------------------------------------------------------------
// Python helpers
// ------------------------------------------------------------------------------------------------

/// `str.isspace()`: Unicode White_Space plus the ASCII separators U+001C..U+001F.
fn py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

fn py_strip(s: &str) -> &str {
    s.trim_matches(py_space)
}

/// `pyramid.settings.asbool`: anything outside the truthy set is false, never an error.
pub fn asbool(v: &str) -> bool {
    matches!(
        py_strip(v).to_lowercase().as_str(),
        "t" | "true" | "y" | "yes" | "on" | "1"
    )
}

/// `[s.strip() for s in v.split(",") if s.strip()]`: newlines from ini continuation lines are
/// whitespace, so multi-line values work.
pub fn split_list(v: &str) -> Vec<String> {
    v.split(',')
        .map(py_strip)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Python `int(str)` for the inputs that matter: surrounding whitespace, a sign, ASCII digits
/// with single `_` between them.
fn py_int(s: &str) -> Option<i128> {
    let t = py_strip(s);
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, t.get(1..)?),
        Some(b'+') => (false, t.get(1..)?),
        _ => (false, t),
    };
    let b = digits.as_bytes();
    let well_formed = !b.is_empty()
        && b.first().is_some_and(u8::is_ascii_digit)
        && b.last().is_some_and(u8::is_ascii_digit)
        && b.iter().all(|c| c.is_ascii_digit() || *c == b'_')
        && !digits.contains("__");
    if !well_formed {
        return None;
    }
    let v: i128 = digits.replace('_', "").parse().ok()?;
    Some(if neg { -v } else { v })
}

/// `getattr(logging, (v or "INFO").upper())`, restricted to the level names; returns the
/// canonical name (the aliases WARN and FATAL map to WARNING and CRITICAL).
pub fn parse_log_level(v: &str) -> Option<&'static str> {
    let v = py_strip(v);
    if v.is_empty() {
        return Some("INFO");
    }
    Some(match v.to_ascii_uppercase().as_str() {
        "DEBUG" => "DEBUG",
        "INFO" => "INFO",
        "WARNING" | "WARN" => "WARNING",
        "ERROR" => "ERROR",
        "CRITICAL" | "FATAL" => "CRITICAL",
        "NOTSET" => "NOTSET",
        _ => return None,
    })
}

/// `http_scheme`: exactly `http` or `https`, anything else silently becomes "" (Channelstream).
fn filter_http_scheme(v: &str) -> String {
    match v {
        "http" | "https" => v.to_owned(),
        _ => String::new(),
    }
}

fn new_cookie_secret() -> String {
    uuid::Uuid::new_v4().to_string()
}

// ------------------------------------------------------------------------------------------------
// ini parser (Python configparser, default options)
// ------------------------------------------------------------------------------------------------

/// configparser's `MAX_INTERPOLATION_DEPTH`.
const MAX_INTERPOLATION_DEPTH: usize = 10;
/// Not in Python: caps `%(a)s%(a)s` chains that double at each level (2^10 × value length).
const MAX_INTERPOLATED_LEN: usize = 1 << 20;
const DEFAULT_SECTION: &str = "DEFAULT";

/// Why an ini file was refused. Lines are 1-based. Values are never quoted back, since the
/// offending line may hold a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IniError {
    #[error("line {line}: a [section] header must come before any key")]
    MissingSectionHeader { line: usize },
    #[error("line {line}: section [{section}] appears twice")]
    DuplicateSection { line: usize, section: String },
    #[error("line {line}: key `{key}` appears twice in section [{section}]")]
    DuplicateKey {
        line: usize,
        section: String,
        key: String,
    },
    #[error("line {line}: expected `[section]`, `key = value` or `key: value`")]
    Syntax { line: usize },
    #[error("section [{section}], key `{key}`: {reason}")]
    Interpolation {
        section: String,
        key: String,
        reason: &'static str,
    },
}

/// A parsed ini file: sections in file order, keys lower-cased, values with continuation lines
/// joined by `\n` and not yet interpolated.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Ini {
    defaults: Vec<(String, String)>,
    sections: Vec<(String, Vec<(String, String)>)>,
}

/// Keys only: values may be secrets.
impl fmt::Debug for Ini {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys = |e: &Vec<(String, String)>| e.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>();
        let mut m = f.debug_map();
        m.entry(&DEFAULT_SECTION, &keys(&self.defaults));
        for (name, entries) in &self.sections {
            m.entry(name, &keys(entries));
        }
        m.finish()
    }
}

impl Ini {
    /// Section names in file order, without `DEFAULT` (Python's `sections()`).
    pub fn sections(&self) -> impl Iterator<Item = &str> {
        self.sections.iter().map(|(n, _)| n.as_str())
    }

    pub fn has_section(&self, section: &str) -> bool {
        self.section(section).is_some()
    }

    fn section(&self, section: &str) -> Option<&[(String, String)]> {
        self.sections
            .iter()
            .find(|(n, _)| n == section)
            .map(|(_, e)| e.as_slice())
    }

    /// Keys visible in `section` (Python's `items(section)` order: `[DEFAULT]` keys first, then
    /// the section's own). Empty if the section does not exist.
    pub fn keys(&self, section: &str) -> Vec<&str> {
        let Some(own) = self.section(section) else {
            return Vec::new();
        };
        let mut out: Vec<&str> = self.defaults.iter().map(|(k, _)| k.as_str()).collect();
        for (k, _) in own {
            if !out.contains(&k.as_str()) {
                out.push(k);
            }
        }
        out
    }

    /// Raw value (no interpolation); `[DEFAULT]` fills in keys the section lacks. `key` is
    /// lower-cased like configparser's `optionxform`. `None` if the section does not exist.
    pub fn get_raw(&self, section: &str, key: &str) -> Option<&str> {
        let own = self.section(section)?;
        let key = key.to_lowercase();
        own.iter()
            .chain(self.defaults.iter())
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Value with `BasicInterpolation` applied: `%%` → `%`, `%(name)s` → the value of `name` in
    /// the same section (or `[DEFAULT]`), recursively; any other `%` is an error.
    pub fn get(&self, section: &str, key: &str) -> Result<Option<String>, IniError> {
        let Some(raw) = self.get_raw(section, key) else {
            return Ok(None);
        };
        let mut out = String::with_capacity(raw.len());
        self.interpolate(section, key, raw, 1, &mut out)?;
        Ok(Some(out))
    }

    fn interpolate(
        &self,
        section: &str,
        key: &str,
        mut rest: &str,
        depth: usize,
        out: &mut String,
    ) -> Result<(), IniError> {
        let err = |reason| IniError::Interpolation {
            section: section.to_owned(),
            key: key.to_owned(),
            reason,
        };
        if depth > MAX_INTERPOLATION_DEPTH {
            return Err(err("interpolation nested too deeply (a reference loop?)"));
        }
        while let Some(p) = rest.find('%') {
            out.push_str(rest.get(..p).unwrap_or_default());
            let after = rest.get(p + 1..).unwrap_or_default();
            if let Some(tail) = after.strip_prefix('%') {
                out.push('%');
                rest = tail;
            } else if let Some(inner) = after.strip_prefix('(') {
                // KEYCRE = r"%\(([^)]+)\)s"
                let close = inner.find(')').filter(|&c| c > 0);
                let (name, tail) = match close {
                    Some(c) => match inner.get(c + 1..).and_then(|t| t.strip_prefix('s')) {
                        Some(tail) => (inner.get(..c).unwrap_or_default(), tail),
                        None => return Err(err("bad %(name)s reference")),
                    },
                    None => return Err(err("bad %(name)s reference")),
                };
                let value = self
                    .get_raw(section, name)
                    .ok_or_else(|| err("%(name)s refers to a key that does not exist"))?;
                if value.contains('%') {
                    self.interpolate(section, key, value, depth + 1, out)?;
                } else {
                    out.push_str(value);
                }
                rest = tail;
            } else {
                return Err(err(
                    "'%' must be followed by '%' or '(' (write %% for a literal %)",
                ));
            }
            if out.len() > MAX_INTERPOLATED_LEN {
                return Err(err("value too long after interpolation"));
            }
        }
        out.push_str(rest);
        Ok(())
    }
}

/// Lines as Python's universal-newline reader yields them: split on `\r\n`, `\r` or `\n`.
fn py_lines(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let (line, next) = match rest.find(['\r', '\n']) {
            Some(i) => {
                let skip = if rest.get(i..i + 2) == Some("\r\n") {
                    2
                } else {
                    1
                };
                (rest.get(..i)?, rest.get(i + skip..)?)
            }
            None => (rest, ""),
        };
        rest = next;
        Some(line)
    })
}

/// Where key lines currently go.
#[derive(Clone, Copy)]
enum Cursor {
    None,
    Defaults,
    Section(usize),
}

type RawEntries = Vec<(String, Vec<String>)>;

/// Parse ini text with Python `configparser.ConfigParser()` default semantics: `[section]`
/// headers, `key = value` / `key: value` (first delimiter wins), full-line `#`/`;` comments
/// (no inline comments: `a = b # c` has the value `b # c`), lower-cased keys, indented
/// continuation lines joined with `\n` (blank lines inside a value are kept, trailing ones
/// dropped), `[DEFAULT]` visible in every section, duplicate sections or keys are errors.
///
/// One leniency: a leading UTF-8 byte-order mark is skipped.
pub fn parse_ini(text: &str) -> Result<Ini, IniError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut defaults: RawEntries = Vec::new();
    let mut sections: Vec<(String, RawEntries)> = Vec::new();
    let mut section_index: HashMap<String, usize> = HashMap::new();
    // configparser's `elements_added`, with `usize::MAX` standing for DEFAULT.
    let mut seen_keys: HashSet<(usize, String)> = HashSet::new();
    let mut cursor = Cursor::None;
    // Index of the key whose value continuation lines extend.
    let mut current: Option<usize> = None;
    let mut indent_level = 0usize;

    for (i, line) in py_lines(text).enumerate() {
        let lineno = i + 1;
        let entries: Option<&mut RawEntries> = match cursor {
            Cursor::None => None,
            Cursor::Defaults => Some(&mut defaults),
            Cursor::Section(s) => sections.get_mut(s).map(|(_, e)| e),
        };
        let stripped = py_strip(line);
        let is_comment = stripped.starts_with('#') || stripped.starts_with(';');
        if stripped.is_empty() || is_comment {
            // Blank lines belong to the value being continued; comment lines vanish.
            if !is_comment {
                if let (Some(entries), Some(k)) = (entries, current) {
                    if let Some((_, lines)) = entries.get_mut(k) {
                        lines.push(String::new());
                    }
                }
            }
            continue;
        }
        let indent = line.chars().position(|c| !py_space(c)).unwrap_or(0);
        if let (Some(entries), Some(k), true) = (entries, current, indent > indent_level) {
            // Checked before the header/key forms: an indented `[x]` or `a = b` is value text.
            if let Some((_, lines)) = entries.get_mut(k) {
                lines.push(stripped.to_owned());
            }
            continue;
        }
        indent_level = indent;
        if let Some(name) = section_header(stripped) {
            current = None;
            if name == DEFAULT_SECTION {
                cursor = Cursor::Defaults;
            } else if section_index.contains_key(name) {
                return Err(IniError::DuplicateSection {
                    line: lineno,
                    section: name.to_owned(),
                });
            } else {
                section_index.insert(name.to_owned(), sections.len());
                cursor = Cursor::Section(sections.len());
                sections.push((name.to_owned(), Vec::new()));
            }
            continue;
        }
        let (entries, sect_id, sect_name) = match cursor {
            Cursor::None => return Err(IniError::MissingSectionHeader { line: lineno }),
            Cursor::Defaults => (&mut defaults, usize::MAX, DEFAULT_SECTION),
            Cursor::Section(s) => match sections.get_mut(s) {
                Some((name, e)) => (e, s, name.as_str()),
                None => return Err(IniError::MissingSectionHeader { line: lineno }),
            },
        };
        let (key, value) = split_option(stripped).ok_or(IniError::Syntax { line: lineno })?;
        if !seen_keys.insert((sect_id, key.clone())) {
            return Err(IniError::DuplicateKey {
                line: lineno,
                section: sect_name.to_owned(),
                key,
            });
        }
        current = Some(entries.len());
        entries.push((key, vec![value.to_owned()]));
    }

    let join = |e: RawEntries| -> Vec<(String, String)> {
        e.into_iter()
            .map(|(k, lines)| (k, lines.join("\n").trim_end_matches(py_space).to_owned()))
            .collect()
    };
    Ok(Ini {
        defaults: join(defaults),
        sections: sections.into_iter().map(|(n, e)| (n, join(e))).collect(),
    })
}

/// `SECTCRE = r"\[(?P<header>.+)\]"` with `re.match`: from the opening bracket to the LAST
/// closing one (greedy), at least one character between them; text after it is ignored.
fn section_header(s: &str) -> Option<&str> {
    let inner = s.strip_prefix('[')?;
    let close = inner.rfind(']').filter(|&c| c > 0)?;
    inner.get(..close)
}

/// `OPTCRE`: the key is everything before the first `=` or `:` (right-stripped, lower-cased,
/// non-empty), the value everything after it, stripped.
fn split_option(s: &str) -> Option<(String, &str)> {
    let d = s.find(['=', ':'])?;
    let key = s.get(..d)?.trim_end_matches(py_space);
    if key.is_empty() {
        return None;
    }
    Some((key.to_lowercase(), py_strip(s.get(d + 1..)?)))
}

// ------------------------------------------------------------------------------------------------
// command line
// ------------------------------------------------------------------------------------------------

const ABOUT: &str =
    "Herald: a websocket push server, a drop-in replacement for Channelstream 0.7.1";

const LONG_ABOUT: &str = "\
Herald: a websocket push server, wire-compatible with Channelstream 0.7.1.

Your web application calls Herald's REST API (signed with the shared secret) to connect users,
subscribe them to channels and publish messages; browsers receive them over a websocket
(/ws?conn_id=...) or by long polling (/listen).

Settings come from, in increasing priority:
  1. built-in defaults (those of Channelstream, except --host);
  2. the [channelstream] section of the ini file given with -i/--ini or $CHANNELSTREAM_INI,
     OR, when there is no ini file, the CHANNELSTREAM_<KEY> environment variables
     (CHANNELSTREAM_PORT, CHANNELSTREAM_SECRET, ...). As in Channelstream, the environment is
     ignored entirely when an ini file is used;
  3. the command-line flags below.";

const AFTER_HELP: &str = "\
Ini keys and environment variables (Channelstream 0.7.1 compatible):
  debug, log_level, port, host, secret, admin_user, admin_secret, cookie_secret,
  allow_posting_from, allow_cors, validate_requests, enforce_https, http_scheme,
  signature_checker  (environment: CHANNELSTREAM_ + the key in upper case)

Write a starter ini file with:  herald make-config -o herald.ini";

#[derive(Parser, Debug)]
#[command(
    name = "herald",
    version,
    about = ABOUT,
    long_about = LONG_ABOUT,
    after_help = AFTER_HELP,
    disable_version_flag = true,
    args_conflicts_with_subcommands = true,
    disable_help_subcommand = true,
    max_term_width = 100
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,

    /// Print the version and exit
    #[arg(short = 'v', long = "version", action = ArgAction::SetTrue)]
    version: bool,

    /// Channelstream ini file to read [env: CHANNELSTREAM_INI]
    ///
    /// Its [channelstream] section is read; other sections and unknown keys are ignored.
    /// With an ini file, CHANNELSTREAM_<KEY> variables are not consulted.
    #[arg(
        short = 'i',
        long = "ini",
        value_name = "FILE",
        help_heading = "Configuration file"
    )]
    ini: Option<PathBuf>,

    #[command(flatten)]
    channelstream: ChannelstreamFlags,

    #[command(flatten)]
    herald: HeraldFlags,

    #[command(flatten)]
    limits: LimitFlags,
}

/// Overrides for the Channelstream keys; `None` keeps the ini/environment value.
#[derive(Args, Debug)]
#[command(next_help_heading = "Server (override the ini file and CHANNELSTREAM_* variables)")]
struct ChannelstreamFlags {
    /// Address to listen on [default: 127.0.0.1; Channelstream's is 0.0.0.0]
    ///
    /// Herald listens on loopback only unless told otherwise, because the default secrets are
    /// public. Pass --host 0.0.0.0 (or set host in the ini file) to listen on every interface.
    #[arg(long, value_name = "HOST")]
    host: Option<String>,

    /// Port for HTTP and websockets [default: 8000]
    #[arg(long, value_name = "PORT")]
    port: Option<u16>,

    /// Secret that signs server-API requests [default: secret]
    ///
    /// Command-line arguments are visible to other local users (ps): prefer the ini file.
    #[arg(long, value_name = "SECRET")]
    secret: Option<String>,

    /// Admin panel user name [default: admin]
    #[arg(long, value_name = "USER")]
    admin_user: Option<String>,

    /// Admin panel password [default: admin_secret]
    #[arg(long, value_name = "SECRET")]
    admin_secret: Option<String>,

    /// IPs allowed to call the server API, comma-separated [default: 127.0.0.1]
    ///
    /// Exact match on the peer address; 0.0.0.0 in the list allows every address.
    #[arg(long, value_name = "LIST")]
    allow_posting_from: Option<String>,

    /// Origins allowed by CORS, comma-separated; empty allows all [default: empty]
    #[arg(long, value_name = "LIST")]
    allow_cors: Option<String>,

    /// Reject signed requests older than 60 s (true/false) [default: true]
    #[arg(long, value_name = "BOOL", value_parser = parse_flag_bool)]
    validate_requests: Option<bool>,

    /// Refuse plain-http requests with 406 (true/false) [default: false]
    #[arg(long, value_name = "BOOL", value_parser = parse_flag_bool)]
    enforce_https: Option<bool>,

    /// Scheme of generated URLs: http, https or empty (the request's) [default: empty]
    #[arg(long, value_name = "SCHEME", value_parser = parse_flag_scheme)]
    http_scheme: Option<String>,

    /// DEBUG, INFO, WARNING, ERROR, CRITICAL or NOTSET [default: INFO]
    #[arg(long, value_name = "LEVEL", value_parser = parse_flag_log_level)]
    log_level: Option<String>,
}

#[derive(Args, Debug)]
#[command(next_help_heading = "Herald")]
struct HeraldFlags {
    /// Event-loop threads [default: number of CPU cores]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1024))]
    shards: Option<u16>,

    /// Serve a websocket echo on PATH, for Autobahn runs [default: off]
    #[arg(long, value_name = "PATH", value_parser = parse_flag_echo_path)]
    echo_path: Option<String>,
}

#[derive(Args, Debug)]
#[command(next_help_heading = "Limits")]
struct LimitFlags {
    /// Open connections per shard (new ones refused beyond)
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_connections_per_shard,
          value_parser = positive_usize)]
    max_connections: usize,

    /// Open connections over all shards (new ones refused beyond)
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_connections_total,
          value_parser = positive_usize)]
    max_connections_total: usize,

    /// Connections per shard still sending their first request head, e.g. a websocket
    /// upgrade (new ones refused beyond; a slowloris defence next to --header-timeout-secs)
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_pending_handshakes,
          value_parser = positive_usize)]
    max_pending_handshakes: usize,

    /// Channels one connection may be subscribed to (/connect and /subscribe answer 422 beyond)
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_channels_per_connection,
          value_parser = positive_usize)]
    max_channels_per_connection: usize,

    /// Bytes of an HTTP request head (431 beyond)
    #[arg(long, value_name = "BYTES", default_value_t = Limits::default().max_head_bytes,
          value_parser = positive_usize)]
    max_head_bytes: usize,

    /// Header lines in an HTTP request (431 beyond)
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_headers,
          value_parser = positive_usize)]
    max_headers: usize,

    /// Bytes of an HTTP request body (413 beyond)
    #[arg(long, value_name = "BYTES", default_value_t = Limits::default().max_body_bytes,
          value_parser = positive_usize)]
    max_body_bytes: usize,

    /// Bytes of an incoming websocket message (close 1009 beyond)
    #[arg(long, value_name = "BYTES", default_value_t = Limits::default().max_ws_message_bytes,
          value_parser = positive_usize)]
    max_ws_message_bytes: usize,

    /// Bytes queued for a slow client before it is disconnected
    #[arg(long, value_name = "BYTES", default_value_t = Limits::default().max_queued_bytes,
          value_parser = positive_usize)]
    max_queued_bytes: usize,

    /// Seconds to receive a complete request head
    #[arg(long, value_name = "SECS", default_value_t = Limits::default().header_timeout.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..))]
    header_timeout_secs: u64,

    /// Seconds an idle keep-alive HTTP connection is kept
    #[arg(long, value_name = "SECS",
          default_value_t = Limits::default().keep_alive_timeout.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..))]
    idle_timeout_secs: u64,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Write a Channelstream ini file (as `channelstream_utils make_config`)
    #[command(
        name = "make-config",
        alias = "make_config",
        long_about = "Write a Channelstream-style ini file, byte for byte what \
                      `channelstream_utils make_config` writes.\n\n\
                      Without -j, CHANNELSTREAM_* variables override the defaults and a random \
                      cookie_secret is generated. With -j, every key whose JSON value is truthy \
                      overrides the default, as is (cookie_secret stays empty unless given)."
    )]
    MakeConfig {
        /// Write to FILE instead of standard output
        #[arg(short = 'o', long = "output", value_name = "FILE")]
        output: Option<PathBuf>,
        /// Settings as a JSON object, e.g. '{"secret": "s3cret", "port": 8001}'
        #[arg(short = 'j', long = "json", value_name = "JSON")]
        json: Option<String>,
    },
}

/// Strict booleans on the command line (a typo should not silently mean false, unlike
/// Channelstream's `asbool` for ini/environment values, which we keep for compatibility).
fn parse_flag_bool(s: &str) -> Result<bool, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "t" | "true" | "y" | "yes" | "on" | "1" => Ok(true),
        "f" | "false" | "n" | "no" | "off" | "0" => Ok(false),
        _ => Err("expected true or false".into()),
    }
}

fn parse_flag_scheme(s: &str) -> Result<String, String> {
    match s {
        "" | "http" | "https" => Ok(s.to_owned()),
        _ => Err("expected http, https or an empty string".into()),
    }
}

fn parse_flag_log_level(s: &str) -> Result<String, String> {
    parse_log_level(s)
        .map(str::to_owned)
        .ok_or_else(|| "expected DEBUG, INFO, WARNING, ERROR, CRITICAL or NOTSET".into())
}

fn parse_flag_echo_path(s: &str) -> Result<String, String> {
    if !s.starts_with('/') || s.contains(['?', '#']) || s.chars().any(char::is_whitespace) {
        return Err("expected an absolute path such as /echo".into());
    }
    if s == "/ws" {
        return Err("/ws is Channelstream's websocket endpoint; choose another path".into());
    }
    Ok(s.to_owned())
}

fn positive_usize(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

// ------------------------------------------------------------------------------------------------
// load
// ------------------------------------------------------------------------------------------------

/// What the process should do after reading its configuration.
pub enum Action {
    /// Serve with this config; the second field lists ini keys that were ignored (not among
    /// [`CONFIGURABLE_PARAMS`]) so main can log them.
    Run(Box<Config>, Vec<String>),
    /// `herald make-config`: write `text` as is (it has no trailing newline) to `output`, or to
    /// stdout when `None`.
    MakeConfig {
        output: Option<PathBuf>,
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
    #[error("{0}")]
    Cli(#[from] clap::Error),
    #[error("cannot read ini file {}: {source}", path.display())]
    ReadIni {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("ini file {}: {source}", path.display())]
    Ini { path: PathBuf, source: IniError },
    #[error("ini file {} has no [channelstream] section", path.display())]
    NoSection { path: PathBuf },
    /// A value failed to parse; `origin` says where it came from. Only non-secret keys are
    /// validated, so quoting the value is safe.
    #[error("{key} = {value:?} (from {origin}): {reason}")]
    Invalid {
        key: &'static str,
        value: String,
        origin: String,
        reason: &'static str,
    },
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
    if let Some(Command::MakeConfig { output, json }) = cli.command {
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
    let (raw, origin) = match &ini_path {
        Some(path) => {
            let text = read_file(path).map_err(|source| ConfigError::ReadIni {
                path: path.clone(),
                source,
            })?;
            let (raw, ign) = read_ini_settings(&text, path)?;
            ignored = ign;
            (raw, Origin::Ini(path.clone()))
        }
        None => {
            let raw = CONFIGURABLE_PARAMS
                .iter()
                .filter_map(|&k| env(&env_name(k)).map(|v| (k, v)))
                .collect();
            (raw, Origin::Env)
        }
    };
    let mut cfg = apply_channelstream(&raw, &origin)?;
    cfg.ini_path = ini_path;
    apply_flags(&mut cfg, cli);
    Ok(Action::Run(Box::new(cfg), ignored))
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
fn read_ini_settings(text: &str, path: &Path) -> Result<(RawSettings, Vec<String>), ConfigError> {
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
    for key in CONFIGURABLE_PARAMS {
        // Only the keys we use are interpolated: a stray `%` in an unrelated key stays harmless
        // (Channelstream would crash on it).
        if let Some(v) = ini.get(INI_SECTION, key).map_err(ini_err)? {
            raw.insert(key, v);
        }
    }
    let ignored = ini
        .keys(INI_SECTION)
        .into_iter()
        .filter(|k| !CONFIGURABLE_PARAMS.contains(k))
        .map(str::to_owned)
        .collect();
    Ok((raw, ignored))
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
        if py_strip(v) != DEFAULT_SIGNATURE_CHECKER {
            return Err(invalid(
                "signature_checker",
                v,
                "Herald only implements channelstream.utils.DefaultSigner",
            ));
        }
    }
    if cfg.cookie_secret.is_empty() {
        cfg.cookie_secret = new_cookie_secret();
    }
    Ok(cfg)
}

fn default_shards() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// Layer 3: every flag given on the command line wins.
fn apply_flags(cfg: &mut Config, cli: Cli) {
    let c = cli.channelstream;
    if let Some(v) = c.host {
        cfg.host = v;
    }
    if let Some(v) = c.port {
        cfg.port = v;
    }
    if let Some(v) = c.secret {
        cfg.secret = v;
    }
    if let Some(v) = c.admin_user {
        cfg.admin_user = v;
    }
    if let Some(v) = c.admin_secret {
        cfg.admin_secret = v;
    }
    if let Some(v) = c.allow_posting_from {
        cfg.allow_posting_from = split_list(&v);
    }
    if let Some(v) = c.allow_cors {
        cfg.allow_cors = split_list(&v);
    }
    if let Some(v) = c.validate_requests {
        cfg.validate_requests = v;
    }
    if let Some(v) = c.enforce_https {
        cfg.enforce_https = v;
    }
    if let Some(v) = c.http_scheme {
        cfg.http_scheme = v;
    }
    if let Some(v) = c.log_level {
        cfg.log_level = v;
    }
    let h = cli.herald;
    if let Some(n) = h.shards {
        cfg.shards = usize::from(n);
    }
    cfg.echo_path = h.echo_path;
    let l = cli.limits;
    cfg.limits = Limits {
        max_connections_per_shard: l.max_connections,
        max_connections_total: l.max_connections_total,
        max_pending_handshakes: l.max_pending_handshakes,
        max_channels_per_connection: l.max_channels_per_connection,
        max_head_bytes: l.max_head_bytes,
        max_headers: l.max_headers,
        max_body_bytes: l.max_body_bytes,
        max_ws_message_bytes: l.max_ws_message_bytes,
        max_queued_bytes: l.max_queued_bytes,
        header_timeout: Duration::from_secs(l.header_timeout_secs),
        keep_alive_timeout: Duration::from_secs(l.idle_timeout_secs),
    };
}

// ------------------------------------------------------------------------------------------------
// make-config
// ------------------------------------------------------------------------------------------------

/// The variables of Channelstream's `channelstream.ini.jinja2`, each already rendered the way
/// Jinja renders a Python value (`str(value)`). `allow_posting_from` holds the items the
/// template's `for` loop iterates over. No `Debug`: it holds secrets.
#[derive(Clone)]
pub struct MakeConfigVars {
    pub admin_user: String,
    pub admin_secret: String,
    pub cookie_secret: String,
    pub secret: String,
    pub port: String,
    pub allow_posting_from: Vec<String>,
    pub log_level: String,
    pub enforce_https: String,
    pub http_scheme: String,
    pub signature_checker: String,
}

impl Default for MakeConfigVars {
    /// `SHARED_DEFAULTS` as the template renders them (cookie_secret empty).
    fn default() -> Self {
        MakeConfigVars {
            admin_user: "admin".into(),
            admin_secret: "admin_secret".into(),
            cookie_secret: String::new(),
            secret: "secret".into(),
            port: "8000".into(),
            allow_posting_from: vec!["127.0.0.1".into()],
            log_level: "INFO".into(),
            enforce_https: "False".into(),
            http_scheme: String::new(),
            signature_checker: DEFAULT_SIGNATURE_CHECKER.into(),
        }
    }
}

impl MakeConfigVars {
    /// Without `-j`: `CHANNELSTREAM_*` variables override the defaults, then `set_config_types`
    /// (int port, `asbool` enforce_https, http_scheme filter, list splitting, and a uuid4
    /// cookie_secret when empty).
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut v = MakeConfigVars::default();
        let get = |k: &str| env(&env_name(k));
        let invalid = |key: &'static str, value: &str| ConfigError::Invalid {
            key,
            value: value.to_owned(),
            origin: env_name(key),
            reason: "expected an integer",
        };
        if let Some(s) = get("admin_user") {
            v.admin_user = s;
        }
        if let Some(s) = get("admin_secret") {
            v.admin_secret = s;
        }
        if let Some(s) = get("cookie_secret") {
            v.cookie_secret = s;
        }
        if let Some(s) = get("secret") {
            v.secret = s;
        }
        if let Some(s) = get("port") {
            // Python `int()` has no upper bound; make_config writes whatever integer it got.
            v.port = py_int(&s).ok_or_else(|| invalid("port", &s))?.to_string();
        }
        if let Some(s) = get("allow_posting_from") {
            v.allow_posting_from = split_list(&s);
        }
        if let Some(s) = get("log_level") {
            v.log_level = s; // written as given; checked only when the server starts
        }
        if let Some(s) = get("enforce_https") {
            v.enforce_https = py_bool(asbool(&s)).into();
        }
        if let Some(s) = get("http_scheme") {
            v.http_scheme = filter_http_scheme(&s);
        }
        if let Some(s) = get("signature_checker") {
            v.signature_checker = s;
        }
        if v.cookie_secret.is_empty() {
            v.cookie_secret = new_cookie_secret();
        }
        Ok(v)
    }

    /// With `-j`: each key whose JSON value is truthy replaces the default as is (no type
    /// conversion, no cookie generation). A JSON string for `allow_posting_from` is iterated
    /// character by character, exactly as the Jinja loop does in Channelstream.
    pub fn from_json(json: &str) -> Result<Self, ConfigError> {
        let data: serde_json::Value = serde_json::from_str(json)
            .map_err(|e| ConfigError::MakeConfigJson(format!("invalid JSON: {e}")))?;
        let obj = data
            .as_object()
            .ok_or_else(|| ConfigError::MakeConfigJson("expected a JSON object".into()))?;
        let mut v = MakeConfigVars::default();
        let truthy = |k: &str| obj.get(k).filter(|x| py_truthy(x));
        let set = |slot: &mut String, k: &str| {
            if let Some(x) = truthy(k) {
                *slot = py_str(x);
            }
        };
        set(&mut v.admin_user, "admin_user");
        set(&mut v.admin_secret, "admin_secret");
        set(&mut v.cookie_secret, "cookie_secret");
        set(&mut v.secret, "secret");
        set(&mut v.port, "port");
        set(&mut v.log_level, "log_level");
        set(&mut v.enforce_https, "enforce_https");
        set(&mut v.http_scheme, "http_scheme");
        set(&mut v.signature_checker, "signature_checker");
        if let Some(x) = truthy("allow_posting_from") {
            v.allow_posting_from = py_iter(x).ok_or_else(|| {
                ConfigError::MakeConfigJson("allow_posting_from must be a list or a string".into())
            })?;
        }
        Ok(v)
    }
}

fn py_bool(b: bool) -> &'static str {
    if b {
        "True"
    } else {
        "False"
    }
}

/// Python truthiness of a `json.loads` result.
fn py_truthy(v: &serde_json::Value) -> bool {
    use serde_json::Value;
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// What a Jinja `for` loop sees: list items, string characters, dict keys; `None` for values
/// Python cannot iterate (numbers, booleans).
fn py_iter(v: &serde_json::Value) -> Option<Vec<String>> {
    use serde_json::Value;
    match v {
        Value::Array(a) => Some(a.iter().map(py_str).collect()),
        Value::String(s) => Some(s.chars().map(String::from).collect()),
        Value::Object(o) => Some(o.keys().cloned().collect()),
        _ => None,
    }
}

/// `str(value)` of a `json.loads` result, as `{{ value }}` renders it.
fn py_str(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => py_repr(other),
    }
}

/// `repr(value)` of a `json.loads` result (used for items inside lists and dicts).
fn py_repr(v: &serde_json::Value) -> String {
    use serde_json::Value;
    match v {
        Value::Null => "None".into(),
        Value::Bool(b) => py_bool(*b).into(),
        Value::Number(n) => py_number(n),
        Value::String(s) => py_repr_str(s),
        Value::Array(a) => {
            let items: Vec<String> = a.iter().map(py_repr).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Object(o) => {
            let items: Vec<String> = o
                .iter()
                .map(|(k, v)| format!("{}: {}", py_repr_str(k), py_repr(v)))
                .collect();
            format!("{{{}}}", items.join(", "))
        }
    }
}

/// Python's json makes a float of any number with `.`, `e` or `E`, and an int otherwise.
fn py_number(n: &serde_json::Number) -> String {
    let text = n.to_string();
    if !text.contains(['.', 'e', 'E']) {
        // Canonical int text ("-0" is 0); beyond i128 the JSON digits are already canonical.
        return text.parse::<i128>().map_or(text, |i| i.to_string());
    }
    match text.parse::<f64>() {
        Ok(f) => py_float_repr(f),
        Err(_) => text,
    }
}

/// `repr(float)`: shortest round-trip digits, scientific notation when the exponent is below
/// -4 or at least 16, `.0` on integral values, `inf` for overflow.
fn py_float_repr(f: f64) -> String {
    if f.is_infinite() {
        return if f > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if f.is_nan() {
        return "nan".into();
    }
    let sci = format!("{f:e}"); // e.g. "1.5e16", "-2e-5"
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..16).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", exp.unsigned_abs());
    }
    let fixed = format!("{f}");
    if fixed.contains('.') {
        fixed
    } else {
        format!("{fixed}.0")
    }
}

/// `repr(str)`: single quotes unless the text has `'` and no `"`; escapes for backslash, the
/// quote, and control characters.
fn py_repr_str(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || (0x7f..0xa0).contains(&(c as u32)) => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// Channelstream's `channelstream.ini.jinja2`, rendered with Jinja's defaults: the template's
/// final newline is dropped (`keep_trailing_newline=False`), and the `-%}` of the `for` tag
/// glues the first address to `allow_posting_from = `, each address being followed by `,`
/// (except the last), a newline and 21 spaces.
pub fn render_make_config(vars: &MakeConfigVars) -> String {
    const INDENT: &str = "\n                     ";
    let mut ips = String::new();
    let n = vars.allow_posting_from.len();
    for (i, ip) in vars.allow_posting_from.iter().enumerate() {
        ips.push_str(ip);
        if i + 1 < n {
            ips.push(',');
        }
        ips.push_str(INDENT);
    }
    format!(
        "[channelstream]\n\
         admin_user = {admin_user}\n\
         # admin panel password\n\
         admin_secret = {admin_secret}\n\
         # auth cookie secret, leave empty for random string generated at server start\n\
         # fill in if you need to have multiple servers and want to keep admin session between them\n\
         cookie_secret = {cookie_secret}\n\
         # API password\n\
         secret = {secret}\n\
         port = {port}\n\
         allow_posting_from = {ips}\n\
         log_level = {log_level}\n\
         # should require SSL connections?\n\
         enforce_https = {enforce_https}\n\
         # enforce https:// in links\n\
         http_scheme = {http_scheme}\n\
         \n\
         # how to validate server side requests? (default: itsdangerous TimeSigner)\n\
         signature_checker = {signature_checker}",
        admin_user = vars.admin_user,
        admin_secret = vars.admin_secret,
        cookie_secret = vars.cookie_secret,
        secret = vars.secret,
        port = vars.port,
        log_level = vars.log_level,
        enforce_https = vars.enforce_https,
        http_scheme = vars.http_scheme,
        signature_checker = vars.signature_checker,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

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

    fn section(ini: &Ini, name: &str) -> Vec<(String, String)> {
        ini.keys(name)
            .into_iter()
            .map(|k| (k.to_string(), ini.get_raw(name, k).unwrap().to_string()))
            .collect()
    }

    // ---------------------------------------------------------------- ini parser

    /// Expected results computed with Python 3 `configparser.ConfigParser()`.
    #[test]
    fn ini_table_matches_configparser() {
        type Want = &'static [(&'static str, &'static [(&'static str, &'static str)])];
        let ok_cases: &[(&str, Want)] = &[
            ("[a]\nk = v", &[("a", &[("k", "v")])]),
            (
                "[a]\nK=V\nx: y\nz = a = b\nq : r = s",
                &[(
                    "a",
                    &[("k", "V"), ("x", "y"), ("z", "a = b"), ("q", "r = s")],
                )],
            ),
            (
                "[a]\nk = v # not a comment\n# c\n; c2\n  # indented comment\nm=1",
                &[("a", &[("k", "v # not a comment"), ("m", "1")])],
            ),
            (
                "[a]\nlist = 1.1.1.1,\n    2.2.2.2\n\n    3.3.3.3\n\nnext = x",
                &[(
                    "a",
                    &[("list", "1.1.1.1,\n2.2.2.2\n\n3.3.3.3"), ("next", "x")],
                )],
            ),
            (
                "[a]\nlist = \n  one\n  two\n",
                &[("a", &[("list", "\none\ntwo")])],
            ),
            (
                "[a]\nk = v\n  [b]\n  x = y\nl = w",
                &[("a", &[("k", "v\n[b]\nx = y"), ("l", "w")])],
            ),
            (
                "[a]\n  k = v\n  l = w\n    cont",
                &[("a", &[("k", "v"), ("l", "w\ncont")])],
            ),
            (
                "[DEFAULT]\nd = 1\nk = dd\n[a]\nk = v\n[b]\n",
                &[
                    ("a", &[("d", "1"), ("k", "v")]),
                    ("b", &[("d", "1"), ("k", "dd")]),
                ],
            ),
            (
                "[a] trailing\nk=v\n[x]y]\nk2=v2",
                &[("a", &[("k", "v")]), ("x]y", &[("k2", "v2")])],
            ),
            ("[ spaced ]\nk=v", &[(" spaced ", &[("k", "v")])]),
            ("[DEFAULT]\n[DEFAULT]\na=1", &[]),
            // Files use universal newlines: a lone \r ends a line too.
            (
                "[a]\r\nk = v\r\n  w\rz=1\r\n[b]\rx=y",
                &[("a", &[("k", "v\nw"), ("z", "1")]), ("b", &[("x", "y")])],
            ),
            ("[a]\nk =\nempty:\n", &[("a", &[("k", ""), ("empty", "")])]),
            ("[a]\nk = v\n\t\n\n", &[("a", &[("k", "v")])]),
            (
                "[a]\nk = v\n;comment\n  cont",
                &[("a", &[("k", "v\ncont")])],
            ),
            ("[a]\nk=v\n \n  c\n", &[("a", &[("k", "v\n\nc")])]),
            ("\n  [a]\nk = v\n  c", &[("a", &[("k", "v\nc")])]),
            ("[a]\nk=v\n\u{c}x = 1", &[("a", &[("k", "v\nx = 1")])]),
            ("\u{feff}[a]\nk=v", &[("a", &[("k", "v")])]),
            ("", &[]),
        ];
        for (text, want) in ok_cases {
            let ini = parse_ini(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
            let names: Vec<&str> = ini.sections().collect();
            let want_names: Vec<&str> = want.iter().map(|(n, _)| *n).collect();
            assert_eq!(names, want_names, "{text:?}");
            for (name, entries) in want.iter() {
                let want: Vec<(String, String)> = entries
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect();
                assert_eq!(section(&ini, name), want, "{text:?} [{name}]");
            }
        }

        let err_cases: &[(&str, IniError)] = &[
            ("k = v", IniError::MissingSectionHeader { line: 1 }),
            ("[]\nk=v", IniError::MissingSectionHeader { line: 1 }),
            ("# comment\n\n[a]\nk", IniError::Syntax { line: 4 }),
            ("[a]\n= v", IniError::Syntax { line: 2 }),
            ("[a]\n: v", IniError::Syntax { line: 2 }),
            (
                "[a]\nk=1\nK=2",
                IniError::DuplicateKey {
                    line: 3,
                    section: "a".into(),
                    key: "k".into(),
                },
            ),
            (
                "[DEFAULT]\nk=1\n[DEFAULT]\nk=2",
                IniError::DuplicateKey {
                    line: 4,
                    section: "DEFAULT".into(),
                    key: "k".into(),
                },
            ),
            (
                "[a]\n[b]\n[a]",
                IniError::DuplicateSection {
                    line: 3,
                    section: "a".into(),
                },
            ),
        ];
        for (text, want) in err_cases {
            assert_eq!(parse_ini(text).as_ref(), Err(want), "{text:?}");
        }
    }

    #[test]
    fn ini_error_messages_do_not_quote_lines() {
        let e = parse_ini("[channelstream]\nsecret hunter2").unwrap_err();
        assert_eq!(e, IniError::Syntax { line: 2 });
        assert!(!e.to_string().contains("hunter2"));
        assert!(e.to_string().contains("line 2"));
    }

    #[test]
    fn ini_default_section_and_lookup() {
        let ini = parse_ini("[DEFAULT]\nShared = d\n[s]\nOwn = o\nshared = over\n[t]\n").unwrap();
        assert_eq!(ini.get_raw("s", "shared"), Some("over"));
        assert_eq!(ini.get_raw("s", "SHARED"), Some("over"));
        assert_eq!(ini.get_raw("t", "shared"), Some("d"));
        assert_eq!(ini.get_raw("t", "own"), None);
        assert_eq!(ini.get_raw("missing", "shared"), None);
        assert_eq!(ini.keys("s"), vec!["shared", "own"]);
        assert!(ini.has_section("t"));
        assert!(!ini.has_section("DEFAULT"));
        assert!(ini.keys("missing").is_empty());
    }

    #[test]
    fn ini_debug_shows_keys_not_values() {
        let ini = parse_ini("[channelstream]\nsecret = hunter2").unwrap();
        let d = format!("{ini:?}");
        assert!(d.contains("secret") && !d.contains("hunter2"), "{d}");
    }

    /// Expected results computed with Python 3 configparser `get()`.
    #[test]
    fn ini_interpolation_table() {
        let ini = parse_ini(
            "[DEFAULT]\nh=/x\n[a]\np=%(h)s/%(q)s%%\nq=Q\nbad=50%\nloop=%(loop)s\n\
             miss=%(nope)s\nupper=%(Q)s\nd=%(p)s\nfmt=%(q)d\nplain=no percent\nempty=%()s",
        )
        .unwrap();
        let get = |k| ini.get("a", k);
        assert_eq!(get("p"), Ok(Some("/x/Q%".into())));
        assert_eq!(get("upper"), Ok(Some("Q".into())));
        assert_eq!(get("d"), Ok(Some("/x/Q%".into())));
        assert_eq!(get("plain"), Ok(Some("no percent".into())));
        assert_eq!(get("absent"), Ok(None));
        for k in ["bad", "loop", "miss", "fmt", "empty"] {
            match get(k) {
                Err(IniError::Interpolation { section, key, .. }) => {
                    assert_eq!((section.as_str(), key.as_str()), ("a", k));
                }
                other => panic!("{k}: {other:?}"),
            }
        }
    }

    #[test]
    fn ini_interpolation_doubling_is_capped() {
        let mut text = String::from("[a]\nk0 = ");
        text.push_str(&"x".repeat(4096));
        for i in 1..10 {
            text.push_str(&format!(
                "\nk{i} = %(k{p})s%(k{p})s%(k{p})s%(k{p})s",
                p = i - 1
            ));
        }
        let ini = parse_ini(&text).unwrap();
        assert!(ini.get("a", "k9").is_err());
        assert_eq!(ini.get("a", "k1").unwrap().unwrap().len(), 4 * 4096);
    }

    #[test]
    fn py_lines_table() {
        let cases: &[(&str, &[&str])] = &[
            ("", &[]),
            ("a", &["a"]),
            ("a\n", &["a"]),
            ("a\n\nb", &["a", "", "b"]),
            ("a\r\nb\rc\n\rd", &["a", "b", "c", "", "d"]),
            ("\r\n\r\n", &["", ""]),
        ];
        for (text, want) in cases {
            assert_eq!(py_lines(text).collect::<Vec<_>>(), *want, "{text:?}");
        }
    }

    // ---------------------------------------------------------------- value parsing

    #[test]
    fn asbool_table() {
        for t in [
            "t", "true", "True", " TRUE ", "y", "yes", "on", "1", "\tOn\n",
        ] {
            assert!(asbool(t), "{t:?}");
        }
        for f in [
            "",
            "f",
            "false",
            "0",
            "no",
            "off",
            "2",
            "truee",
            "yes please",
            "none",
        ] {
            assert!(!asbool(f), "{f:?}");
        }
    }

    #[test]
    fn split_list_table() {
        let cases: &[(&str, &[&str])] = &[
            ("", &[]),
            (" , ,", &[]),
            ("127.0.0.1", &["127.0.0.1"]),
            ("127.0.0.5, 0.0.0.0", &["127.0.0.5", "0.0.0.0"]),
            ("example.com, foo.org", &["example.com", "foo.org"]),
            ("a,,b,", &["a", "b"]),
            // make_config's multi-line layout, after configparser joined it
            ("127.0.0.1,\n10.0.0.1", &["127.0.0.1", "10.0.0.1"]),
            ("\n127.0.0.1\n", &["127.0.0.1"]),
            // no comma: a newline does not split (as in Python)
            ("a\nb", &["a\nb"]),
        ];
        for (input, want) in cases {
            assert_eq!(split_list(input), *want, "{input:?}");
        }
    }

    #[test]
    fn py_int_table() {
        let cases: &[(&str, Option<i128>)] = &[
            ("8000", Some(8000)),
            (" 8001\n", Some(8001)),
            ("+80", Some(80)),
            ("-1", Some(-1)),
            ("08000", Some(8000)),
            ("8_000", Some(8000)),
            ("8__000", None),
            ("_8000", None),
            ("8000_", None),
            ("", None),
            ("+", None),
            ("80.0", None),
            ("0x50", None),
            ("eighty", None),
        ];
        for (input, want) in cases {
            assert_eq!(py_int(input), *want, "{input:?}");
        }
    }

    #[test]
    fn log_level_table() {
        let cases: &[(&str, Option<&str>)] = &[
            ("", Some("INFO")),
            ("debug", Some("DEBUG")),
            ("Info", Some("INFO")),
            ("WARNING", Some("WARNING")),
            ("warn", Some("WARNING")),
            ("error", Some("ERROR")),
            ("critical", Some("CRITICAL")),
            ("fatal", Some("CRITICAL")),
            ("notset", Some("NOTSET")),
            (" info ", Some("INFO")),
            ("verbose", None),
            ("10", None),
        ];
        for (input, want) in cases {
            assert_eq!(parse_log_level(input), *want, "{input:?}");
        }
    }

    #[test]
    fn http_scheme_filter_table() {
        for (input, want) in [
            ("http", "http"),
            ("https", "https"),
            ("HTTPS", ""),
            (" https", ""),
            ("ftp", ""),
            ("", ""),
        ] {
            assert_eq!(filter_http_scheme(input), want, "{input:?}");
        }
    }

    // ---------------------------------------------------------------- precedence

    #[test]
    fn defaults_without_ini_or_env() {
        let (c, ignored) = cfg(&[], &[], None);
        assert!(ignored.is_empty());
        assert_eq!(c.host, "127.0.0.1");
        assert_eq!(c.port, 8000);
        assert_eq!(c.secret, "secret");
        assert_eq!(c.admin_user, "admin");
        assert_eq!(c.admin_secret, "admin_secret");
        assert_eq!(c.allow_posting_from, vec!["127.0.0.1"]);
        assert!(c.allow_cors.is_empty());
        assert!(c.validate_requests);
        assert!(!c.enforce_https);
        assert!(!c.debug);
        assert_eq!(c.http_scheme, "");
        assert_eq!(c.log_level, "INFO");
        assert_eq!(c.echo_path, None);
        assert_eq!(c.limits, Limits::default());
        assert!(c.shards >= 1);
        assert_eq!(c.ini_path, None);
        assert!(uuid::Uuid::parse_str(&c.cookie_secret).is_ok());
        assert_eq!(c.signer_max_age(), Some(60));
        assert!(c.uses_default_secret() && c.uses_default_admin_secret());
        assert_eq!(c.listen_addr().unwrap(), "127.0.0.1:8000".parse().unwrap());
    }

    #[test]
    fn cookie_secret_differs_per_start() {
        let (a, _) = cfg(&[], &[], None);
        let (b, _) = cfg(&[], &[], None);
        assert_ne!(a.cookie_secret, b.cookie_secret);
    }

    #[test]
    fn env_overrides_defaults_without_ini() {
        let env = [
            ("CHANNELSTREAM_PORT", "8001"),
            ("CHANNELSTREAM_HOST", "0.0.0.0"),
            ("CHANNELSTREAM_SECRET", "s3"),
            ("CHANNELSTREAM_ADMIN_USER", "root"),
            ("CHANNELSTREAM_ADMIN_SECRET", "pw"),
            ("CHANNELSTREAM_COOKIE_SECRET", "cookie"),
            ("CHANNELSTREAM_ALLOW_POSTING_FROM", "127.0.0.5, 0.0.0.0"),
            ("CHANNELSTREAM_ALLOW_CORS", "example.com, foo.org"),
            ("CHANNELSTREAM_VALIDATE_REQUESTS", "false"),
            ("CHANNELSTREAM_ENFORCE_HTTPS", "true"),
            ("CHANNELSTREAM_HTTP_SCHEME", "https"),
            ("CHANNELSTREAM_LOG_LEVEL", "debug"),
            ("CHANNELSTREAM_DEBUG", "yes"),
            ("CHANNELSTREAM_SIGNATURE_CHECKER", DEFAULT_SIGNATURE_CHECKER),
            ("CHANNELSTREAM_DEMO", "true"), // not a configurable key
        ];
        let (c, ignored) = cfg(&[], &env, None);
        assert!(ignored.is_empty());
        assert_eq!((c.host.as_str(), c.port), ("0.0.0.0", 8001));
        assert_eq!(c.secret, "s3");
        assert_eq!(c.admin_user, "root");
        assert_eq!(c.admin_secret, "pw");
        assert_eq!(c.cookie_secret, "cookie");
        assert_eq!(c.allow_posting_from, vec!["127.0.0.5", "0.0.0.0"]);
        assert_eq!(c.allow_cors, vec!["example.com", "foo.org"]);
        assert!(!c.validate_requests);
        assert_eq!(c.signer_max_age(), None);
        assert!(c.enforce_https);
        assert_eq!(c.http_scheme, "https");
        assert_eq!(c.log_level, "DEBUG");
        assert_eq!(c.log_directive(), "debug");
        assert!(c.debug);
    }

    #[test]
    fn env_empty_values_follow_channelstream() {
        let env = [
            ("CHANNELSTREAM_ALLOW_POSTING_FROM", ""),
            ("CHANNELSTREAM_LOG_LEVEL", ""),
            ("CHANNELSTREAM_HOST", ""),
            ("CHANNELSTREAM_SECRET", ""),
            ("CHANNELSTREAM_VALIDATE_REQUESTS", ""),
            ("CHANNELSTREAM_HTTP_SCHEME", "HTTPS"),
        ];
        let (c, _) = cfg(&[], &env, None);
        assert!(c.allow_posting_from.is_empty());
        assert_eq!(c.log_level, "INFO");
        assert_eq!(c.host, "0.0.0.0");
        assert_eq!(c.secret, "");
        assert!(!c.validate_requests);
        assert_eq!(c.http_scheme, "");
    }

    const INI: &str = "\
[DEFAULT]
here = /srv

[channelstream]
port = 8002
Secret = from-ini
admin_secret = a%%b
allow_posting_from = 127.0.0.1,
                     10.0.0.1
                     
demo = true
log_level = warn

[other]
port = 1
";

    #[test]
    fn ini_ignores_env_completely() {
        let env = [
            ("CHANNELSTREAM_PORT", "9999"),
            ("CHANNELSTREAM_ADMIN_USER", "from-env"),
            ("CHANNELSTREAM_LOG_LEVEL", "not-a-level"),
        ];
        let (c, ignored) = cfg(&["-i", "/etc/cs.ini"], &env, Some(("/etc/cs.ini", INI)));
        assert_eq!(c.port, 8002);
        assert_eq!(c.secret, "from-ini");
        assert_eq!(c.admin_secret, "a%b");
        assert_eq!(
            c.admin_user, "admin",
            "env must be ignored with an ini file"
        );
        assert_eq!(c.allow_posting_from, vec!["127.0.0.1", "10.0.0.1"]);
        assert_eq!(c.log_level, "WARNING");
        assert_eq!(c.host, "127.0.0.1");
        assert_eq!(c.ini_path, Some(PathBuf::from("/etc/cs.ini")));
        assert_eq!(ignored, vec!["here", "demo"]);
    }

    #[test]
    fn ini_path_from_env_var() {
        let env = [
            ("CHANNELSTREAM_INI", "/etc/cs.ini"),
            ("CHANNELSTREAM_PORT", "9999"),
        ];
        let (c, _) = cfg(&[], &env, Some(("/etc/cs.ini", INI)));
        assert_eq!(c.port, 8002);
        // -i wins over CHANNELSTREAM_INI
        let (c, _) = cfg(
            &["--ini", "/other.ini"],
            &env,
            Some(("/other.ini", "[channelstream]\nport = 7000")),
        );
        assert_eq!(c.port, 7000);
        // an empty CHANNELSTREAM_INI is no ini file: the environment applies
        let (c, _) = cfg(
            &[],
            &[("CHANNELSTREAM_INI", ""), ("CHANNELSTREAM_PORT", "9999")],
            None,
        );
        assert_eq!(c.port, 9999);
    }

    #[test]
    fn flags_override_ini_and_env() {
        let flags = [
            "-i",
            "/etc/cs.ini",
            "--host",
            "::1",
            "--port",
            "9000",
            "--secret",
            "flag-secret",
            "--admin-user",
            "boss",
            "--admin-secret",
            "flag-admin",
            "--allow-posting-from",
            "10.1.1.1 ,, 10.2.2.2",
            "--allow-cors",
            "a.org",
            "--validate-requests",
            "false",
            "--enforce-https",
            "yes",
            "--http-scheme",
            "https",
            "--log-level",
            "error",
            "--shards",
            "3",
            "--echo-path",
            "/echo",
        ];
        let (c, _) = cfg(&flags, &[], Some(("/etc/cs.ini", INI)));
        assert_eq!((c.host.as_str(), c.port), ("::1", 9000));
        assert_eq!(c.secret, "flag-secret");
        assert_eq!(c.admin_user, "boss");
        assert_eq!(c.admin_secret, "flag-admin");
        assert_eq!(c.allow_posting_from, vec!["10.1.1.1", "10.2.2.2"]);
        assert_eq!(c.allow_cors, vec!["a.org"]);
        assert!(!c.validate_requests);
        assert!(c.enforce_https);
        assert_eq!(c.http_scheme, "https");
        assert_eq!(c.log_level, "ERROR");
        assert_eq!(c.shards, 3);
        assert_eq!(c.echo_path.as_deref(), Some("/echo"));
        assert_eq!(c.listen_addr().unwrap(), "[::1]:9000".parse().unwrap());

        let (c, _) = cfg(&["--port", "9001"], &[("CHANNELSTREAM_PORT", "9999")], None);
        assert_eq!(c.port, 9001);
    }

    #[test]
    fn limit_flags() {
        let (c, _) = cfg(
            &[
                "--max-connections",
                "10",
                "--max-connections-total",
                "15",
                "--max-pending-handshakes",
                "4",
                "--max-channels-per-connection",
                "3",
                "--max-head-bytes",
                "2048",
                "--max-headers",
                "8",
                "--max-body-bytes",
                "100",
                "--max-ws-message-bytes",
                "200",
                "--max-queued-bytes",
                "300",
                "--header-timeout-secs",
                "2",
                "--idle-timeout-secs",
                "5",
            ],
            &[],
            None,
        );
        assert_eq!(
            c.limits,
            Limits {
                max_connections_per_shard: 10,
                max_connections_total: 15,
                max_pending_handshakes: 4,
                max_channels_per_connection: 3,
                max_head_bytes: 2048,
                max_headers: 8,
                max_body_bytes: 100,
                max_ws_message_bytes: 200,
                max_queued_bytes: 300,
                header_timeout: Duration::from_secs(2),
                keep_alive_timeout: Duration::from_secs(5),
            }
        );
    }

    #[test]
    fn ini_errors() {
        assert!(matches!(
            err(&["-i", "/nope.ini"], &[], None),
            ConfigError::ReadIni { .. }
        ));
        assert!(matches!(
            err(
                &["-i", "/x.ini"],
                &[],
                Some(("/x.ini", "[other]\nport = 1"))
            ),
            ConfigError::NoSection { .. }
        ));
        // [DEFAULT] alone does not make a [channelstream] section
        assert!(matches!(
            err(
                &["-i", "/x.ini"],
                &[],
                Some(("/x.ini", "[DEFAULT]\nport = 1"))
            ),
            ConfigError::NoSection { .. }
        ));
        match err(
            &["-i", "/x.ini"],
            &[],
            Some(("/x.ini", "[channelstream]\nport 1")),
        ) {
            ConfigError::Ini { source, .. } => assert_eq!(source, IniError::Syntax { line: 2 }),
            e => panic!("{e}"),
        }
        match err(
            &["-i", "/x.ini"],
            &[],
            Some(("/x.ini", "[channelstream]\nsecret = 100%")),
        ) {
            ConfigError::Ini { source, .. } => {
                assert!(matches!(source, IniError::Interpolation { .. }));
                assert!(!source.to_string().contains("100%"));
            }
            e => panic!("{e}"),
        }
        // a stray % in a key we do not use is harmless
        let (c, ignored) = cfg(
            &["-i", "/x.ini"],
            &[],
            Some(("/x.ini", "[channelstream]\nnote = 100%\nport = 1234")),
        );
        assert_eq!((c.port, ignored), (1234, vec!["note".to_string()]));
    }

    #[test]
    fn invalid_values_are_errors() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("CHANNELSTREAM_PORT", "abc")], "port"),
            (&[("CHANNELSTREAM_PORT", "")], "port"),
            (&[("CHANNELSTREAM_PORT", "70000")], "port"),
            (&[("CHANNELSTREAM_PORT", "-1")], "port"),
            (&[("CHANNELSTREAM_LOG_LEVEL", "verbose")], "log_level"),
            (
                &[("CHANNELSTREAM_SIGNATURE_CHECKER", "my.Signer")],
                "signature_checker",
            ),
        ];
        for (env, want_key) in cases {
            match err(&[], env, None) {
                ConfigError::Invalid { key, origin, .. } => {
                    assert_eq!(key, *want_key);
                    assert_eq!(origin, env_name(want_key));
                }
                e => panic!("{env:?}: {e}"),
            }
        }
        match err(
            &["-i", "/x.ini"],
            &[],
            Some(("/x.ini", "[channelstream]\nport = 80.5")),
        ) {
            ConfigError::Invalid { key, origin, .. } => {
                assert_eq!(key, "port");
                assert_eq!(origin, "ini file /x.ini");
            }
            e => panic!("{e}"),
        }
        // Python int() accepts these
        let (c, _) = cfg(&[], &[("CHANNELSTREAM_PORT", " +8_001 ")], None);
        assert_eq!(c.port, 8001);
    }

    #[test]
    fn bad_flags_are_cli_errors() {
        let bad: &[&[&str]] = &[
            &["--port", "abc"],
            &["--port", "70000"],
            &["--validate-requests", "maybe"],
            &["--enforce-https", ""],
            &["--http-scheme", "ftp"],
            &["--log-level", "loud"],
            &["--shards", "0"],
            &["--echo-path", "echo"],
            &["--echo-path", "/ws"],
            &["--max-connections", "0"],
            &["--header-timeout-secs", "0"],
            &["--no-such-flag"],
            &["make-config", "--port", "1"],
        ];
        for a in bad {
            match err(a, &[], None) {
                ConfigError::Cli(e) => {
                    assert_eq!(e.exit_code(), 2, "{a:?}");
                }
                e => panic!("{a:?}: {e}"),
            }
        }
    }

    #[test]
    fn version_flag() {
        for flag in ["-v", "--version"] {
            match run_with(&[flag], &[], None) {
                Ok(Action::Version(line)) => {
                    assert!(line.starts_with("herald "), "{line}");
                    assert!(line.contains(env!("CARGO_PKG_VERSION")));
                    assert!(line.contains("0.7.1"));
                }
                _ => panic!("{flag}"),
            }
        }
    }

    #[test]
    fn help_is_grouped_and_explains_defaults() {
        let e = match err(&["--help"], &[], None) {
            ConfigError::Cli(e) => e,
            e => panic!("{e}"),
        };
        assert_eq!(e.kind(), clap::error::ErrorKind::DisplayHelp);
        assert_eq!(e.exit_code(), 0);
        let help = e.to_string();
        for needle in [
            "wire-compatible with Channelstream 0.7.1",
            "Configuration file:",
            "Server (override the ini file and CHANNELSTREAM_* variables):",
            "Herald:",
            "Limits:",
            "--ini <FILE>",
            "CHANNELSTREAM_INI",
            "--host <HOST>",
            "0.0.0.0",
            "--allow-posting-from <LIST>",
            "--validate-requests <BOOL>",
            "--echo-path <PATH>",
            "--shards <N>",
            "--max-queued-bytes <BYTES>",
            "--idle-timeout-secs <SECS>",
            "make-config",
            "-v, --version",
        ] {
            assert!(help.contains(needle), "--help lacks {needle:?}:\n{help}");
        }
        // -h gives the short form, still listing every flag.
        match err(&["-h"], &[], None) {
            ConfigError::Cli(e) => assert!(e.to_string().contains("--max-head-bytes")),
            e => panic!("{e}"),
        }
    }

    #[test]
    fn config_debug_redacts_secrets() {
        let (c, _) = cfg(
            &["--secret", "hunter2", "--admin-secret", "letmein"],
            &[("CHANNELSTREAM_COOKIE_SECRET", "cookiejar")],
            None,
        );
        let d = format!("{c:?}");
        for s in ["hunter2", "letmein", "cookiejar"] {
            assert!(!d.contains(s), "{s} leaked: {d}");
        }
        assert!(d.contains("<redacted>") && d.contains("allow_posting_from"));
    }

    #[test]
    fn log_directive_table() {
        for (level, want) in [
            ("NOTSET", "trace"),
            ("DEBUG", "debug"),
            ("INFO", "info"),
            ("WARNING", "warn"),
            ("ERROR", "error"),
            ("CRITICAL", "error"),
        ] {
            let c = Config {
                log_level: level.into(),
                ..Config::default()
            };
            assert_eq!(c.log_directive(), want);
        }
    }

    // ---------------------------------------------------------------- make-config

    /// Spec §2.3, observed output of `channelstream_utils make_config` with defaults.
    const SPEC_SAMPLE: &str = "[channelstream]
admin_user = admin
# admin panel password
admin_secret = admin_secret
# auth cookie secret, leave empty for random string generated at server start
# fill in if you need to have multiple servers and want to keep admin session between them
cookie_secret = c86443a5-0246-4445-8903-7a82978c184f
# API password
secret = secret
port = 8000
allow_posting_from = 127.0.0.1
                     
log_level = INFO
# should require SSL connections?
enforce_https = False
# enforce https:// in links
http_scheme = 

# how to validate server side requests? (default: itsdangerous TimeSigner)
signature_checker = channelstream.utils.DefaultSigner";

    #[test]
    fn make_config_defaults_match_spec_sample() {
        let (output, text) = make_config(&["make-config"], &[]);
        assert_eq!(output, None);
        assert!(!text.ends_with('\n'));
        assert_eq!(normalise_cookie(&text), normalise_cookie(SPEC_SAMPLE));
        // byte-for-byte, once the cookie is the same
        let vars = MakeConfigVars {
            cookie_secret: "c86443a5-0246-4445-8903-7a82978c184f".into(),
            ..MakeConfigVars::default()
        };
        assert_eq!(render_make_config(&vars), SPEC_SAMPLE);
    }

    #[test]
    fn make_config_two_ips_from_env() {
        let env = [
            ("CHANNELSTREAM_ALLOW_POSTING_FROM", "127.0.0.1, 10.0.0.1"),
            ("CHANNELSTREAM_PORT", " 08001 "),
            ("CHANNELSTREAM_ENFORCE_HTTPS", "on"),
            ("CHANNELSTREAM_HTTP_SCHEME", "ftp"),
            ("CHANNELSTREAM_LOG_LEVEL", "debug"),
            ("CHANNELSTREAM_COOKIE_SECRET", "fixed"),
            ("CHANNELSTREAM_HOST", "0.0.0.0"), // not in the template
        ];
        let (output, text) = make_config(&["make-config", "-o", "/tmp/out.ini"], &env);
        assert_eq!(output, Some(PathBuf::from("/tmp/out.ini")));
        let want = SPEC_SAMPLE
            .replace("c86443a5-0246-4445-8903-7a82978c184f", "fixed")
            .replace("port = 8000", "port = 8001")
            .replace(
                "allow_posting_from = 127.0.0.1\n",
                "allow_posting_from = 127.0.0.1,\n                     10.0.0.1\n",
            )
            .replace("enforce_https = False", "enforce_https = True")
            .replace("log_level = INFO", "log_level = debug");
        assert_eq!(text, want);
        assert!(text.contains(
            "allow_posting_from = 127.0.0.1,\n                     10.0.0.1\n                     \nlog_level"
        ));
        assert!(!text.contains("host"));
    }

    #[test]
    fn make_config_output_reads_back() {
        let (_, text) = make_config(
            &["make_config"],
            &[("CHANNELSTREAM_ALLOW_POSTING_FROM", "127.0.0.1,10.0.0.1,::1")],
        );
        let (c, ignored) = cfg(&["-i", "/g.ini"], &[], Some(("/g.ini", &text)));
        assert!(ignored.is_empty());
        assert_eq!(c.allow_posting_from, vec!["127.0.0.1", "10.0.0.1", "::1"]);
        assert_eq!(c.port, 8000);
        assert!(!c.enforce_https);
        // the cookie written to the file is the one the server uses
        let cookie = text
            .lines()
            .find_map(|l| l.strip_prefix("cookie_secret = "))
            .unwrap();
        assert_eq!(c.cookie_secret, cookie);
    }

    #[test]
    fn make_config_empty_allow_list() {
        let (_, text) = make_config(
            &["make-config"],
            &[("CHANNELSTREAM_ALLOW_POSTING_FROM", "")],
        );
        assert!(text.contains("port = 8000\nallow_posting_from = \nlog_level = INFO"));
    }

    /// Expected outputs rendered by Jinja2 from Channelstream's template with Python's
    /// `make_config -j` logic.
    #[test]
    fn make_config_json_matches_jinja() {
        let (_, text) = make_config(&["make-config", "-j", "{}"], &[("CHANNELSTREAM_PORT", "1")]);
        assert_eq!(
            text,
            SPEC_SAMPLE.replace("c86443a5-0246-4445-8903-7a82978c184f", ""),
            "-j: no env, no cookie generation"
        );

        let (_, text) = make_config(
            &[
                "make-config",
                "-j",
                r#"{"allow_posting_from": ["127.0.0.1", "10.0.0.1"]}"#,
            ],
            &[],
        );
        assert!(text.contains(
            "allow_posting_from = 127.0.0.1,\n                     10.0.0.1\n                     \nlog_level"
        ));

        // A JSON string is iterated per character by the template loop.
        let (_, text) = make_config(
            &["make-config", "-j", r#"{"allow_posting_from": "1.2,3"}"#],
            &[],
        );
        assert!(text.contains(
            "allow_posting_from = 1,\n                     .,\n                     2,\n                     ,,\n                     3\n                     \nlog_level"
        ), "{text}");

        let (_, text) = make_config(
            &[
                "make-config",
                "-j",
                r#"{"port": 8001.5, "enforce_https": true, "secret": "s%e",
                    "log_level": ["a", 1, null, "it's"], "http_scheme": {"x": 1e20},
                    "admin_user": 0, "cookie_secret": "cs", "allow_posting_from": {"a": 1, "b": 2}}"#,
            ],
            &[],
        );
        let want = "[channelstream]\nadmin_user = admin\n# admin panel password\nadmin_secret = admin_secret\n# auth cookie secret, leave empty for random string generated at server start\n# fill in if you need to have multiple servers and want to keep admin session between them\ncookie_secret = cs\n# API password\nsecret = s%e\nport = 8001.5\nallow_posting_from = a,\n                     b\n                     \nlog_level = ['a', 1, None, \"it's\"]\n# should require SSL connections?\nenforce_https = True\n# enforce https:// in links\nhttp_scheme = {'x': 1e+20}\n\n# how to validate server side requests? (default: itsdangerous TimeSigner)\nsignature_checker = channelstream.utils.DefaultSigner";
        assert_eq!(text, want);

        let (_, text) = make_config(
            &[
                "make-config",
                "-j",
                r#"{"port": 1e16, "admin_user": 1e-5, "secret": 0.0001,
                    "admin_secret": 123456789012345678901234567890}"#,
            ],
            &[],
        );
        for line in [
            "admin_user = 1e-05\n",
            "admin_secret = 123456789012345678901234567890\n",
            "secret = 0.0001\n",
            "port = 1e+16\n",
        ] {
            assert!(text.contains(line), "{line:?} in {text}");
        }

        // Falsy values keep the defaults.
        let (_, text) = make_config(
            &[
                "make-config",
                "-j",
                r#"{"secret": "", "port": 0, "enforce_https": false, "allow_posting_from": [],
                    "log_level": null, "admin_user": {}, "http_scheme": 0.0}"#,
            ],
            &[],
        );
        assert_eq!(
            text,
            SPEC_SAMPLE.replace("c86443a5-0246-4445-8903-7a82978c184f", "")
        );
    }

    #[test]
    fn make_config_empty_json_uses_env() {
        let (_, text) = make_config(
            &["make-config", "-j", ""],
            &[("CHANNELSTREAM_PORT", "8005")],
        );
        assert!(text.contains("port = 8005\n"));
        assert_eq!(normalise_cookie(&text).matches("<uuid>").count(), 1);
    }

    #[test]
    fn make_config_errors() {
        for j in [
            "not json",
            "[1, 2]",
            r#"{"allow_posting_from": true}"#,
            r#"{"allow_posting_from": 5}"#,
        ] {
            assert!(
                matches!(
                    err(&["make-config", "-j", j], &[], None),
                    ConfigError::MakeConfigJson(_)
                ),
                "{j}"
            );
        }
        assert!(matches!(
            err(&["make-config"], &[("CHANNELSTREAM_PORT", "x")], None),
            ConfigError::Invalid { key: "port", .. }
        ));
    }

    #[test]
    fn py_float_repr_table() {
        for (f, want) in [
            (0.5, "0.5"),
            (8001.0, "8001.0"),
            (1e15, "1000000000000000.0"),
            (1e16, "1e+16"),
            (1.5e300, "1.5e+300"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (-2.5e-7, "-2.5e-07"),
            (0.1 + 0.2, "0.30000000000000004"),
            (f64::INFINITY, "inf"),
        ] {
            assert_eq!(py_float_repr(f), want, "{f}");
        }
    }

    #[test]
    fn py_repr_str_table() {
        for (s, want) in [
            ("a", "'a'"),
            ("it's", "\"it's\""),
            ("both ' \"", "'both \\' \"'"),
            ("a\\b\n", "'a\\\\b\\n'"),
            ("\u{1}", "'\\x01'"),
        ] {
            assert_eq!(py_repr_str(s), want, "{s:?}");
        }
    }
}
