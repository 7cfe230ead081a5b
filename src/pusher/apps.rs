//! The Pusher apps Herald serves: today one default app (`app-id` / `app-key` / `app-secret`,
//! soketi's defaults, overridable by `HERALD_DEFAULT_APP_*`, see `config::load`).
//!
//! Why a table anyway: websockets name an app by key (`/app/{key}`) and the HTTP API by id
//! (`/apps/{id}/...`), and the channel state is keyed by the app's index so that two apps can
//! use the same channel name; more apps are a longer table.

use crate::config::Config;

/// One app's credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct App {
    /// The id in HTTP API paths.
    pub id: String,
    /// The public key clients connect with.
    pub key: String,
    /// The secret that signs channel auth strings and HTTP API requests.
    pub secret: String,
}

/// An app's index in [`Apps`] (what channel keys and socket state carry).
pub type AppIdx = u16;

/// The apps served, looked up by key or id.
#[derive(Clone, Debug)]
pub struct Apps {
    apps: Vec<App>,
}

impl Apps {
    /// The configured default app.
    pub fn from_config(cfg: &Config) -> Self {
        Apps {
            apps: vec![App {
                id: cfg.default_app_id.clone(),
                key: cfg.default_app_key.clone(),
                secret: cfg.default_app_secret.clone(),
            }],
        }
    }

    /// The app with this key.
    pub fn by_key(&self, key: &str) -> Option<(AppIdx, &App)> {
        self.find(|a| a.key == key)
    }

    /// The app with this id.
    pub fn by_id(&self, id: &str) -> Option<(AppIdx, &App)> {
        self.find(|a| a.id == id)
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
}
