//! The Pusher dialect's apps: `[pusher_app:NAME]` sections of the ini file, else one default
//! app from `HERALD_DEFAULT_APP_{ID,KEY,SECRET}` (soketi's `app-id`/`app-key`/`app-secret`).
//!
//! Why in the ini file Herald already reads: one file configures the server; Channelstream
//! ignores sections other than `[channelstream]`, so the same file still works with it.
//! Keys (all but the three credentials optional): `id`, `key`, `secret`, `enabled` (true),
//! `enable_client_messages` (false), `max_connections` (0: unlimited; more → close 4004),
//! `max_event_size` (10240 bytes, larger `data` → 413),
//! `max_channels_per_event` (100), `max_presence_members` (100), and the `webhook*` keys of
//! `config::webhooks`.

use super::ini::Ini;
use super::values::{asbool, py_int};
use super::webhooks::{self, WebhookSettings};
use super::ConfigError;

/// The ini section prefix naming an app.
pub const SECTION_PREFIX: &str = "pusher_app:";

/// One Pusher app: credentials, switches and limits.
#[derive(Clone, PartialEq, Eq)]
pub struct PusherApp {
    /// The id in HTTP API paths (the PyPI SDK accepts only digits).
    pub id: String,
    /// The public key clients connect with.
    pub key: String,
    /// The secret that signs channel auth strings and HTTP API requests.
    pub secret: String,
    /// A disabled app's sockets are closed with 4003 and its API answers 403.
    pub enabled: bool,
    /// Whether clients may send `client-` events.
    pub client_events: bool,
    /// Most open websockets over all shards (0: unlimited).
    pub max_connections: u32,
    /// Largest event `data`, in bytes.
    pub max_event_size: usize,
    /// Most channels one event may name.
    pub max_channels_per_event: usize,
    /// Most members in one presence channel.
    pub max_presence_members: usize,
    /// Where and how its webhooks are sent (none by default).
    pub webhooks: WebhookSettings,
}

/// The secret is not printed.
impl std::fmt::Debug for PusherApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PusherApp")
            .field("id", &self.id)
            .field("key", &self.key)
            .field("enabled", &self.enabled)
            .field("client_events", &self.client_events)
            .field("max_connections", &self.max_connections)
            .field("max_event_size", &self.max_event_size)
            .field("max_channels_per_event", &self.max_channels_per_event)
            .field("max_presence_members", &self.max_presence_members)
            .field("webhooks", &self.webhooks.urls.len())
            .finish_non_exhaustive()
    }
}

impl PusherApp {
    /// An enabled app with default switches and limits.
    pub fn new(id: &str, key: &str, secret: &str) -> Self {
        PusherApp {
            id: id.into(),
            key: key.into(),
            secret: secret.into(),
            enabled: true,
            client_events: false,
            max_connections: 0,
            max_event_size: 10 * 1024,
            max_channels_per_event: 100,
            max_presence_members: 100,
            webhooks: WebhookSettings::default(),
        }
    }
}

/// The apps of `[pusher_app:NAME]` sections, in file order (empty if none).
pub(super) fn read(ini: &Ini) -> Result<Vec<PusherApp>, ConfigError> {
    let mut apps: Vec<PusherApp> = Vec::new();
    for section in ini.sections() {
        if !section.starts_with(SECTION_PREFIX) {
            continue;
        }
        let bad = |reason: &'static str| ConfigError::PusherApp {
            section: section.to_owned(),
            reason,
        };
        let get = |k: &str| -> Result<Option<String>, ConfigError> {
            ini.get(section, k)
                .map_err(|_| bad("a value does not interpolate"))
        };
        let need = |k: &str, reason| get(k)?.filter(|v| !v.trim().is_empty()).ok_or(bad(reason));
        let id = need("id", "id is required")?;
        let key = need("key", "key is required")?;
        let secret = need("secret", "secret is required")?;
        let mut app = PusherApp::new(id.trim(), key.trim(), &secret);
        if let Some(v) = get("enabled")? {
            app.enabled = asbool(&v);
        }
        if let Some(v) = get("enable_client_messages")? {
            app.client_events = asbool(&v);
        }
        let size = |k: &str, reason| -> Result<Option<usize>, ConfigError> {
            match get(k)? {
                None => Ok(None),
                Some(v) => py_int(&v)
                    .and_then(|n| usize::try_from(n).ok())
                    .filter(|n| *n > 0)
                    .map(Some)
                    .ok_or(bad(reason)),
            }
        };
        if let Some(v) = get("max_connections")? {
            app.max_connections = py_int(&v)
                .and_then(|n| u32::try_from(n).ok())
                .ok_or(bad("max_connections must be an integer from 0"))?;
        }
        if let Some(n) = size(
            "max_event_size",
            "max_event_size must be a positive integer",
        )? {
            app.max_event_size = n;
        }
        let chans = "max_channels_per_event must be a positive integer";
        if let Some(n) = size("max_channels_per_event", chans)? {
            app.max_channels_per_event = n;
        }
        let members = "max_presence_members must be a positive integer";
        if let Some(n) = size("max_presence_members", members)? {
            app.max_presence_members = n;
        }
        for k in webhooks::KEYS {
            get(k)?;
        }
        app.webhooks = webhooks::read(&|k| get(k).ok().flatten()).map_err(|(_, why)| bad(why))?;
        if apps.iter().any(|a| a.id == app.id || a.key == app.key) {
            return Err(bad("another app has the same id or key"));
        }
        apps.push(app);
    }
    Ok(apps)
}
