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
        }
    }
}

/// The keys read from the ini file's `[channelstream]` section (or `CHANNELSTREAM_<KEY>`).
pub const INI_KEYS: [&str; 7] = [
    "mode",
    "data_dir",
    "store_sync",
    "max_events_per_channel",
    "max_event_age",
    "store_queue",
    "pushi_admin_secret",
];

/// Pushi's start variables: listen host, listen port, a warning to print.
pub type StartVars = (Option<String>, Option<u16>, Option<String>);

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
        _ => {}
    }
    Ok(())
}

/// Pushi's start variables in Pushi mode: the websocket server's `SERVER_HOST`/`SERVER_PORT`,
/// when set, become Herald's listen address (over the ini file and `CHANNELSTREAM_*`; flags
/// still win), since Herald serves the REST API and the websockets on one port. Returns `(host, port)` to use, and a warning when
/// `APP_HOST`/`APP_PORT` name a different address (Herald cannot open a second listener per
/// shard yet: the REST API is served on the websocket port).
pub fn start_vars(env: &dyn Fn(&str) -> Option<String>) -> Result<StartVars, Bad> {
    let port = |k: &'static str| -> Result<Option<u16>, Bad> {
        match env(k).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => v
                .trim()
                .parse::<u16>()
                .map(Some)
                .map_err(|_| (k, v, "not a port number")),
        }
    };
    let host = env("SERVER_HOST").filter(|v| !v.is_empty());
    let sport = port("SERVER_PORT")?;
    let aport = port("APP_PORT")?;
    let ahost = env("APP_HOST").filter(|v| !v.is_empty());
    let mut warn = None;
    let other_port = aport.is_some_and(|a| Some(a) != sport);
    let other_host = ahost.is_some_and(|a| Some(&a) != host.as_ref());
    if other_port || other_host {
        warn = Some(
            "APP_HOST/APP_PORT differ from SERVER_HOST/SERVER_PORT: Herald serves the Pushi \
             REST API on the websocket address (one listener per shard)"
                .to_owned(),
        );
    }
    Ok((host, sport, warn))
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
    fn pushi_start_variables_pick_the_websocket_address() {
        let env = |k: &str| match k {
            "SERVER_PORT" => Some("9191".to_owned()),
            "APP_PORT" => Some("8080".to_owned()),
            _ => None,
        };
        let (host, port, warn) = start_vars(&env).unwrap();
        assert_eq!((host, port), (None, Some(9191)));
        assert!(warn.is_some());
        assert_eq!(start_vars(&|_| None).unwrap(), (None, None, None));
        assert!(start_vars(&|k: &str| (k == "SERVER_PORT").then(|| "x".into())).is_err());
    }
}
