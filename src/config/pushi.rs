//! Herald's settings for the Pushi dialect and the durable store: whether Pushi is served
//! (`--pushi`, `HERALD_MODE=pushi`, ini `mode = pushi`), where the store lives (`--data-dir`,
//! `HERALD_DATA_DIR`, ini `data_dir`), its sync level and retention, the admin secret that
//! lets `POST /apps` create apps, and Pushi's own start variables (`SERVER_HOST`,
//! `SERVER_PORT`, `APP_HOST`, `APP_PORT`) in Pushi mode.
//!
//! Why the store opens only in Pushi mode: Pushi is the only dialect that persists, so a
//! Channelstream or Pusher deployment keeps running without a data directory appearing in its
//! working directory; in Pushi mode the store is opened at start and a problem with it is
//! fatal (exit non-zero with the path and reason), never discovered on the first publish.
//! The one exception is `persist_history` (`--persist-history`, `HERALD_PERSIST_HISTORY`, off
//! by default): it opens the same store outside Pushi mode to keep Channelstream channel
//! histories across restarts.

use super::values::asbool;
use super::{ListenerConfig, TlsFiles};
use std::path::PathBuf;

/// Pushi mode and store settings.
#[derive(Clone, Debug, PartialEq)]
pub struct PushiConfig {
    /// Serve the Pushi dialect (and open the store).
    pub enabled: bool,
    /// The store's directory (default `herald-data` in the working directory).
    pub data_dir: PathBuf,
    /// fsync every commit (`store_sync = full`) instead of `NORMAL` (kill -9 safe).
    pub sync_full: bool,
    /// Events kept per channel (0: no limit).
    pub max_events_per_channel: u64,
    /// Oldest event kept, seconds (0: no limit).
    pub max_event_age_secs: u64,
    /// Requests the store queue holds before publishes answer 503.
    pub store_queue: usize,
    /// The secret `POST /apps` must present (`X-Admin-Secret` or `admin_secret`); empty: app
    /// creation is refused.
    pub admin_secret: String,
    /// Keep Channelstream channel histories in the store (and open it for that).
    pub persist_history: bool,
}

impl PushiConfig {
    /// Whether the store opens: in Pushi mode, or to persist Channelstream history.
    pub fn store_wanted(&self) -> bool {
        self.enabled || self.persist_history
    }
}

impl Default for PushiConfig {
    fn default() -> Self {
        PushiConfig {
            enabled: false,
            data_dir: PathBuf::from("herald-data"),
            sync_full: false,
            max_events_per_channel: 10_000,
            max_event_age_secs: 30 * 24 * 3600,
            store_queue: 65_536,
            admin_secret: String::new(),
            persist_history: false,
        }
    }
}

/// The keys read from the ini file's `[channelstream]` section (or `CHANNELSTREAM_<KEY>`).
pub const INI_KEYS: [&str; 8] = [
    "mode",
    "data_dir",
    "store_sync",
    "max_events_per_channel",
    "max_event_age",
    "store_queue",
    "pushi_admin_secret",
    "persist_history",
];

/// A bad value: (key, value, reason).
pub type Bad = (&'static str, String, &'static str);

/// Apply `get` (ini or `CHANNELSTREAM_` values), then the `HERALD_*` variables.
pub fn apply(
    c: &mut PushiConfig,
    get: &dyn Fn(&str) -> Option<String>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(), Bad> {
    let herald = |k: &str| env(&format!("HERALD_{}", k.to_ascii_uppercase()));
    for key in INI_KEYS {
        let env_key = if key == "pushi_admin_secret" {
            "pushi_admin_secret"
        } else {
            key
        };
        for v in [get(key), herald(env_key)].into_iter().flatten() {
            set(c, key, v.trim())?;
        }
    }
    Ok(())
}

fn set(c: &mut PushiConfig, key: &'static str, v: &str) -> Result<(), Bad> {
    let num = |v: &str| {
        v.parse::<u64>()
            .map_err(|_| (key, v.to_owned(), "not a non-negative integer"))
    };
    match key {
        "mode" => match v {
            "pushi" => c.enabled = true,
            "" | "default" | "channelstream" | "pusher" => {}
            _ => return Err((key, v.into(), "expected pushi or default")),
        },
        "data_dir" if !v.is_empty() => c.data_dir = PathBuf::from(v),
        "store_sync" => match v.to_ascii_lowercase().as_str() {
            "full" => c.sync_full = true,
            "normal" | "" => c.sync_full = false,
            _ => return Err((key, v.into(), "expected normal or full")),
        },
        "max_events_per_channel" => c.max_events_per_channel = num(v)?,
        "max_event_age" => c.max_event_age_secs = num(v)?,
        "store_queue" => {
            c.store_queue = usize::try_from(num(v)?).ok().filter(|n| *n > 0).ok_or((
                key,
                v.to_owned(),
                "must be positive",
            ))?;
        }
        "pushi_admin_secret" => c.admin_secret = v.to_owned(),
        "persist_history" => c.persist_history = asbool(v),
        _ => {}
    }
    Ok(())
}

/// Pushi's start variables, read in Pushi mode (`state.py`): `SERVER_*` is the websocket
/// server, `APP_*` the REST API. Herald serves both on every listener, so `SERVER_HOST` /
/// `SERVER_PORT` (when set) become the main listener's address (over the ini file and
/// `CHANNELSTREAM_*`; flags still win) and `APP_HOST` / `APP_PORT`, when they name another
/// address, an extra listener `pushi-app`. `SERVER_SSL` / `APP_SSL` (true) with
/// `*_SSL_KEY` and `*_SSL_CER` make that listener TLS.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StartVars {
    /// `SERVER_HOST`.
    pub host: Option<String>,
    /// `SERVER_PORT`.
    pub port: Option<u16>,
    /// `SERVER_SSL*`: the main listener's certificate.
    pub tls: Option<TlsFiles>,
    /// `APP_HOST` / `APP_PORT` / `APP_SSL*`, when another address.
    pub app: Option<ListenerConfig>,
}

/// Read [`StartVars`].
pub fn start_vars(env: &dyn Fn(&str) -> Option<String>) -> Result<StartVars, Bad> {
    let get = |k: &str| {
        env(k)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let port = |k: &'static str| -> Result<Option<u16>, Bad> {
        match get(k) {
            None => Ok(None),
            Some(v) => v
                .parse::<u16>()
                .map(Some)
                .map_err(|_| (k, v, "not a port number")),
        }
    };
    let tls = |p: &'static str, flag: &'static str| -> Result<Option<TlsFiles>, Bad> {
        if !get(flag).is_some_and(|v| asbool(&v)) {
            return Ok(None);
        }
        let (key, cer) = (get(&format!("{p}_SSL_KEY")), get(&format!("{p}_SSL_CER")));
        match (key, cer) {
            (Some(key), Some(cert)) => Ok(Some(TlsFiles {
                cert: cert.into(),
                key: key.into(),
            })),
            _ => Err((flag, "true".into(), "needs _SSL_KEY and _SSL_CER too")),
        }
    };
    let v = StartVars {
        host: get("SERVER_HOST"),
        port: port("SERVER_PORT")?,
        tls: tls("SERVER", "SERVER_SSL")?,
        app: None,
    };
    let (ahost, aport) = (get("APP_HOST"), port("APP_PORT")?);
    let app_tls = tls("APP", "APP_SSL")?;
    let app = match aport {
        Some(p) if Some(p) != v.port || (ahost.is_some() && ahost != v.host) => {
            Some(ListenerConfig {
                name: "pushi-app".into(),
                host: ahost,
                port: p,
                tls: app_tls,
            })
        }
        _ => None,
    };
    Ok(StartVars { app, ..v })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn herald_variables_override_the_ini_and_bad_values_are_refused() {
        let mut c = PushiConfig::default();
        let ini = |k: &str| match k {
            "data_dir" => Some("/tmp/a".to_owned()),
            "max_events_per_channel" => Some("5".to_owned()),
            _ => None,
        };
        let env = |k: &str| match k {
            "HERALD_MODE" => Some("pushi".to_owned()),
            "HERALD_DATA_DIR" => Some("/tmp/b".to_owned()),
            "HERALD_STORE_SYNC" => Some("FULL".to_owned()),
            _ => None,
        };
        apply(&mut c, &ini, &env).unwrap();
        assert!(c.enabled && c.sync_full);
        assert_eq!(c.data_dir, PathBuf::from("/tmp/b"));
        assert_eq!(c.max_events_per_channel, 5);
        let bad = |k: &str| (k == "max_event_age").then(|| "-1".to_owned());
        let e = apply(&mut c, &bad, &|_| None).unwrap_err();
        assert_eq!(e.0, "max_event_age");
    }

    #[test]
    fn persist_history_is_off_by_default_and_opens_the_store() {
        let mut c = PushiConfig::default();
        assert!(!c.persist_history && !c.store_wanted());
        let ini = |k: &str| (k == "persist_history").then(|| "true".to_owned());
        apply(&mut c, &ini, &|_| None).unwrap();
        assert!(c.persist_history && c.store_wanted() && !c.enabled);
        let env = |k: &str| (k == "HERALD_PERSIST_HISTORY").then(|| "off".to_owned());
        apply(&mut c, &ini, &env).unwrap();
        assert!(!c.persist_history, "HERALD_* wins over the ini");
    }

    #[test]
    fn pushi_start_variables_make_the_listeners() {
        let env = |k: &str| match k {
            "SERVER_PORT" => Some("9191".to_owned()),
            "APP_PORT" => Some("8080".to_owned()),
            "APP_SSL" => Some("1".to_owned()),
            "APP_SSL_KEY" => Some("/k.pem".to_owned()),
            "APP_SSL_CER" => Some("/c.pem".to_owned()),
            _ => None,
        };
        let v = start_vars(&env).unwrap();
        assert_eq!(
            (v.host.as_deref(), v.port, v.tls.as_ref()),
            (None, Some(9191), None)
        );
        let app = v.app.unwrap();
        assert_eq!((app.name.as_str(), app.port), ("pushi-app", 8080));
        assert_eq!(app.tls.unwrap().cert, PathBuf::from("/c.pem"));
        assert_eq!(start_vars(&|_| None).unwrap(), StartVars::default());
        assert!(start_vars(&|k: &str| (k == "SERVER_PORT").then(|| "x".into())).is_err());
        let half = |k: &str| (k == "SERVER_SSL").then(|| "true".to_owned());
        assert_eq!(start_vars(&half).unwrap_err().0, "SERVER_SSL");
        let same = |k: &str| {
            ["SERVER_PORT", "APP_PORT"]
                .contains(&k)
                .then(|| "9090".to_owned())
        };
        assert_eq!(start_vars(&same).unwrap().app, None);
    }
}
