//! The Pusher apps Herald serves: the ini file's `[pusher_app:NAME]` sections, else one
//! default app (`app-id` / `app-key` / `app-secret`, soketi's defaults, overridable by
//! `HERALD_DEFAULT_APP_*`; see `config::pusher_apps`).
//!
//! Why a table: websockets name an app by key (`/app/{key}`) and the HTTP API by id
//! (`/apps/{id}/...`), and the channel state is keyed by the app's index so that two apps can
//! use the same channel name without ever seeing each other's events.

use crate::config::Config;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

pub use crate::config::PusherApp as App;

/// Close code for a socket of a disabled app.
pub const CODE_APP_DISABLED: u16 = 4003;
/// Close code for a socket over its app's `max_connections`.
pub const CODE_OVER_QUOTA: u16 = 4004;

/// Every app's open websockets, shared by all shards (one atomic per app), so that
/// `max_connections` holds over the whole server, not per shard.
#[derive(Clone, Debug)]
pub struct Quotas(Arc<[AtomicU32]>);

impl Quotas {
    /// Zero connections for each of `apps` apps.
    pub fn new(apps: usize) -> Self {
        Quotas((0..apps).map(|_| AtomicU32::new(0)).collect())
    }

    /// Count one more socket for `app` unless that makes more than `max` (0: no limit);
    /// false if refused.
    pub fn try_open(&self, app: AppIdx, max: u32) -> bool {
        let Some(n) = self.0.get(usize::from(app)) else {
            return false;
        };
        let before = n.fetch_add(1, Ordering::Relaxed);
        if max > 0 && before >= max {
            n.fetch_sub(1, Ordering::Relaxed);
            return false;
        }
        true
    }

    /// One of `app`'s counted sockets closed.
    pub fn close(&self, app: AppIdx) {
        if let Some(n) = self.0.get(usize::from(app)) {
            let _ = n.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| v.checked_sub(1));
        }
    }
}

/// An app's index in [`Apps`] (what channel keys and socket state carry).
pub type AppIdx = u16;

/// The apps served, looked up by key or id.
#[derive(Clone, Debug)]
pub struct Apps {
    apps: Vec<App>,
}

impl Apps {
    /// The configured apps (the default app when the ini file names none).
    pub fn from_config(cfg: &Config) -> Self {
        let apps = if cfg.pusher_apps.is_empty() {
            let mut app = App::new(
                &cfg.default_app_id,
                &cfg.default_app_key,
                &cfg.default_app_secret,
            );
            app.client_events = cfg.default_app_client_events;
            app.webhooks = cfg.default_app_webhooks.clone();
            vec![app]
        } else {
            cfg.pusher_apps.clone()
        };
        Apps { apps }
    }

    /// The app with this key.
    pub fn by_key(&self, key: &str) -> Option<(AppIdx, &App)> {
        self.find(|a| a.key == key)
    }

    /// The app with this id.
    pub fn by_id(&self, id: &str) -> Option<(AppIdx, &App)> {
        self.find(|a| a.id == id)
    }

    /// How many apps.
    pub fn len(&self) -> usize {
        self.apps.len()
    }

    /// Whether there is no app (never: the default app is there).
    pub fn is_empty(&self) -> bool {
        self.apps.is_empty()
    }

    /// The apps in index order.
    pub fn iter(&self) -> impl Iterator<Item = &App> {
        self.apps.iter()
    }

    /// The app at `idx`.
    pub fn get(&self, idx: AppIdx) -> Option<&App> {
        self.apps.get(usize::from(idx))
    }

    fn find(&self, f: impl Fn(&App) -> bool) -> Option<(AppIdx, &App)> {
        self.apps
            .iter()
            .enumerate()
            .find(|(_, a)| f(a))
            .and_then(|(i, a)| AppIdx::try_from(i).ok().map(|i| (i, a)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_app_by_key_and_id() {
        let apps = Apps::from_config(&Config::default());
        assert_eq!(apps.by_key("app-key").map(|(i, _)| i), Some(0));
        assert_eq!(
            apps.by_id("app-id").map(|(_, a)| a.secret.as_str()),
            Some("app-secret")
        );
        assert!(apps.by_key("app-id").is_none());
        assert!(apps.by_id("nope").is_none());
    }

    #[test]
    fn quotas_hold_across_clones() {
        let q = Quotas::new(2);
        let other_shard = q.clone();
        assert!(q.try_open(0, 2) && other_shard.try_open(0, 2));
        assert!(!q.try_open(0, 2));
        assert!(q.try_open(1, 0), "0 is no limit");
        other_shard.close(0);
        assert!(q.try_open(0, 2));
        assert!(!q.try_open(9, 0), "no such app");
    }

    #[test]
    fn ini_apps_replace_the_default() {
        let cfg = Config {
            pusher_apps: vec![App::new("1", "k1", "s1"), App::new("2", "k2", "s2")],
            ..Config::default()
        };
        let apps = Apps::from_config(&cfg);
        assert_eq!(apps.len(), 2);
        assert_eq!(apps.by_key("k2").map(|(i, _)| i), Some(1));
        assert!(apps.by_key("app-key").is_none());
    }
}
