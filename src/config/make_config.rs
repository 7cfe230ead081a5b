//! `herald make-config`: Channelstream's `channelstream_utils make_config`, byte for byte.
//!
//! The template variables come from the environment (typed by `set_config_types`) or from a
//! `-j` JSON object (kept as is when truthy, rendered with Python's `str()`, see
//! [`crate::py::value`]), and are rendered the way Jinja renders `channelstream.ini.jinja2`.

use super::load::{env_name, ConfigError};
use super::values::{asbool, filter_http_scheme, new_cookie_secret, py_int, split_list};
use super::DEFAULT_SIGNATURE_CHECKER;
use crate::py::value;

/// The variables of Channelstream's `channelstream.ini.jinja2`, each already rendered the way
/// Jinja renders a Python value (`str(value)`). `allow_posting_from` holds the items the
/// template's `for` loop iterates over. No `Debug`: it holds secrets.
#[derive(Clone)]
pub struct MakeConfigVars {
    /// The `admin_user` line.
    pub admin_user: String,
    /// The `admin_secret` line.
    pub admin_secret: String,
    /// The `cookie_secret` line; a fresh uuid4 when none was given (env path only).
    pub cookie_secret: String,
    /// The `secret` line (the server-API signing secret).
    pub secret: String,
    /// The `port` line, as the integer's decimal text.
    pub port: String,
    /// The `allow_posting_from` entries, one per rendered line.
    pub allow_posting_from: Vec<String>,
    /// The `log_level` line, written as given.
    pub log_level: String,
    /// The `enforce_https` line: Python `True`/`False`.
    pub enforce_https: String,
    /// The `http_scheme` line, `http`, `https` or empty.
    pub http_scheme: String,
    /// The `signature_checker` line (a dotted Python class path).
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
            v.enforce_https = value::bool_repr(asbool(&s)).into();
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
        let truthy = |k: &str| obj.get(k).filter(|x| value::truthy(x));
        let set = |slot: &mut String, k: &str| {
            if let Some(x) = truthy(k) {
                *slot = value::str_of(x);
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
            v.allow_posting_from = value::iter_str(x).ok_or_else(|| {
                ConfigError::MakeConfigJson("allow_posting_from must be a list or a string".into())
            })?;
        }
        Ok(v)
    }
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
