//! Pusher webhooks: `channel_occupied`, `channel_vacated`, `member_added`, `member_removed`,
//! `client_event` and `cache_miss`, raised on each channel's owner shard and POSTed by sender
//! threads.
//!
//! Why raised on the owner: only the owner knows a channel's first and last subscriber and a
//! presence user's first and last connection, so it decides with no coordination. The path:
//! a hook in `dialect.rs` calls [`Webhooks`] (this shard's part); `channel_vacated` and
//! `member_removed` wait out the app's `webhook_vacated_delay_ms` in `grace` (the dialect's
//! `next_deadline`/`on_timer` drive it), and are **suppressed** together with the following
//! `channel_occupied` / `member_added` when the channel is re-occupied / the member returns
//! within it; a raised event goes through the app's event-type filter to `hub` (a bounded
//! queue per URL, never blocking) and a sender thread per URL (`worker`) batches, signs and
//! POSTs it, with back-off retries. Rendering (`events`) happens on the sender thread.
//!
//! `cache_miss` is deduplicated per channel: at most one per [`CACHE_MISS_WINDOW`] (Pusher
//! deduplicates it without documenting a window; Soketi sends one per miss).
//!
//! Cluster mode (not built): a webhook must then fire once per cluster, not once per node.
//! Every event passes through `Webhooks::raise`, the one place that decides that this node
//! raises it; a cluster-wide owner check plugs in there.

pub mod events;
pub mod grace;
pub mod hub;
pub mod metrics;
mod worker;

pub use hub::Hub;
pub use metrics::WebhookMetrics;

use crate::config::WebhookKind;
use crate::ids::SockRef;
use crate::pusher::apps::AppIdx;
use crate::pusher::socket_id;
use events::{ClientEvent, Event, Raised};
use grace::{Grace, Pending};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// At most one `cache_miss` webhook per channel in this window.
pub const CACHE_MISS_WINDOW: Duration = Duration::from_secs(60);

/// One shard's part of the webhooks: pending delayed events, `cache_miss` deduplication, and
/// the way to the sender threads. Idle (no state, no timer) when no app has webhooks.
#[derive(Debug, Default)]
pub struct Webhooks {
    hub: Option<Arc<Hub>>,
    grace: Grace,
    /// When each channel's last `cache_miss` was raised.
    misses: HashMap<(AppIdx, Box<str>), Instant>,
    /// The size of `misses` after its last sweep.
    misses_swept: usize,
}

impl Webhooks {
    /// This shard's part, sending through `hub` (`None`: no app has webhooks).
    pub fn new(hub: Option<Arc<Hub>>) -> Self {
        Webhooks {
            hub,
            ..Webhooks::default()
        }
    }

    /// The app's grace delay, if it sends webhooks.
    fn delay(&self, app: AppIdx) -> Option<Duration> {
        Some(self.hub.as_ref()?.settings(app)?.vacated_delay)
    }

    /// Whether the app sends events of `kind`.
    fn wants(&self, app: AppIdx, kind: WebhookKind) -> bool {
        self.hub
            .as_ref()
            .and_then(|h| h.settings(app))
            .is_some_and(|s| s.wants(kind))
    }

    /// The one place a webhook event is raised (see the module docs on cluster mode).
    fn raise(&mut self, app: AppIdx, event: Event) {
        let Some(hub) = &self.hub else { return };
        if !hub.settings(app).is_some_and(|s| s.wants(event.kind())) {
            return;
        }
        hub.push(
            app,
            Raised {
                event,
                at_ms: events::now_ms(),
            },
        );
    }

    /// A socket subscribed on this owner: `first` if the channel had no subscriber before,
    /// `added` the presence user whose first connection this is.
    pub fn subscribed(&mut self, app: AppIdx, channel: &str, first: bool, added: Option<&str>) {
        if self.delay(app).is_none() {
            return;
        }
        if first {
            let p = Pending::Vacated {
                app,
                channel: channel.into(),
            };
            if !self.grace.cancel(&p) {
                let channel = channel.into();
                self.raise(app, Event::ChannelOccupied { channel });
            }
        }
        if let Some(user_id) = added {
            let p = Pending::Removed {
                app,
                channel: channel.into(),
                user_id: user_id.into(),
            };
            if !self.grace.cancel(&p) {
                let (channel, user_id) = (channel.into(), user_id.into());
                self.raise(app, Event::MemberAdded { channel, user_id });
            }
        }
    }

    /// A socket left a channel on this owner: `removed` the presence user whose last
    /// connection it was, `vacated` if the channel has no subscriber left.
    pub fn unsubscribed(
        &mut self,
        app: AppIdx,
        channel: &str,
        removed: Option<&str>,
        vacated: bool,
        now: Instant,
    ) {
        let Some(delay) = self.delay(app) else { return };
        if let Some(user_id) = removed {
            let p = Pending::Removed {
                app,
                channel: channel.into(),
                user_id: user_id.into(),
            };
            self.delay_or_send(p, now + delay);
        }
        if vacated {
            let p = Pending::Vacated {
                app,
                channel: channel.into(),
            };
            self.delay_or_send(p, now + delay);
        }
    }

    fn delay_or_send(&mut self, p: Pending, at: Instant) {
        if let Err(p) = self.grace.schedule(p, at) {
            self.send_pending(p);
        }
    }

    fn send_pending(&mut self, p: Pending) {
        match p {
            Pending::Vacated { app, channel } => self.raise(app, Event::ChannelVacated { channel }),
            Pending::Removed {
                app,
                channel,
                user_id,
            } => self.raise(app, Event::MemberRemoved { channel, user_id }),
        }
    }

    /// A client event from `sock` (its presence `user_id`, if any) passed the owner's checks.
    pub fn client_event(
        &mut self,
        app: AppIdx,
        channel: &str,
        (event, data): (&str, &str),
        sock: SockRef,
        user_id: Option<&str>,
    ) {
        if !self.wants(app, WebhookKind::ClientEvent) {
            return;
        }
        let e = ClientEvent {
            channel: channel.into(),
            event: event.into(),
            data: data.into(),
            socket_id: socket_id::format(sock),
            user_id: user_id.map(Into::into),
        };
        self.raise(app, Event::ClientEvent(Box::new(e)));
    }

    /// A subscribe to a cache channel found nothing cached.
    pub fn cache_miss(&mut self, app: AppIdx, channel: &str, now: Instant) {
        if !self.wants(app, WebhookKind::CacheMiss) {
            return;
        }
        let key = (app, Box::<str>::from(channel));
        if let Some(at) = self.misses.get(&key) {
            if now.saturating_duration_since(*at) < CACHE_MISS_WINDOW {
                return;
            }
        }
        self.misses.insert(key, now);
        if self.misses.len() > 2 * self.misses_swept.max(64) {
            self.misses
                .retain(|_, at| now.saturating_duration_since(*at) < CACHE_MISS_WINDOW);
            self.misses_swept = self.misses.len();
        }
        let channel = channel.into();
        self.raise(app, Event::CacheMiss { channel });
    }

    /// When a delayed event is due.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.grace.next_deadline()
    }

    /// Send the delayed events due at `now`.
    pub fn on_timer(&mut self, now: Instant) {
        while let Some(p) = self.grace.pop_due(now) {
            self.send_pending(p);
        }
    }

    /// The server stops: the delayed events are sent now (nobody can come back any more).
    pub fn on_shutdown(&mut self) {
        for p in self.grace.drain() {
            self.send_pending(p);
        }
    }
}
