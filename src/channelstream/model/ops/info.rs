//! The read-only views: `/info`, `/channel_config` (which also creates or reconfigures
//! channels, then answers like `/info`), `/admin/admin.json`, and the `channels_info` body that
//! `/connect`, `/subscribe` and `/unsubscribe` embed. Kept together because they all render
//! channels and users the same way (`Channel.get_info`, `SharedUtils.get_channel_info`).

use super::{ok, Model, Now, Reply};
use crate::channelstream::api::types::{ChannelConfig, ChannelConfigCmd, InfoResolution};
use crate::channelstream::model::state::{Channel, ChannelIdx, User};
use serde_json::{json, Map, Value};
use std::collections::HashSet;
use std::sync::Arc;

/// The version admin.json reports: the one we are compatible with.
const VERSION: &str = "0.7.1";

fn settings_value(c: &ChannelConfig) -> Value {
    json!({
        "notify_presence": c.notify_presence,
        "store_history": c.store_history,
        "history_size": c.history_size,
        "broadcast_presence_with_user_lists": c.broadcast_presence_with_user_lists,
        "notify_state": c.notify_state,
        "store_frames": c.store_frames,
    })
}

/// Python `str(timedelta).split(".")[0]`: `H:MM:SS`, or `N day(s), H:MM:SS`.
pub(crate) fn uptime_string(secs: i64) -> String {
    let secs = secs.max(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (h, m, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
    match days {
        0 => format!("{h}:{m:02}:{s:02}"),
        1 => format!("1 day, {h}:{m:02}:{s:02}"),
        d => format!("{d} days, {h}:{m:02}:{s:02}"),
    }
}

impl Model {
    /// `Channel.get_info`.
    fn channel_value(
        &self,
        name: &str,
        ch: &Channel,
        include_history: bool,
        include_users: bool,
    ) -> Value {
        let history: Vec<Value> = if include_history {
            ch.history
                .iter()
                .filter_map(|&k| ch.store.get(k).map(|s| s.msg.to_http_value()))
                .collect()
        } else {
            Vec::new()
        };
        // `total_users` counts the listed names, so it is 0 when users are not requested
        // (quirk 10), while `total_connections` always counts.
        let mut users: Vec<&str> = if include_users {
            ch.members.keys().map(|k| &**k).collect()
        } else {
            Vec::new()
        };
        users.sort_unstable();
        json!({
            "uuid": ch.uuid.hyphenated().to_string(),
            "name": name,
            "long_name": null,
            "settings": settings_value(&ch.config),
            "history": history,
            "last_active": ch.last_active.to_http_string(),
            "total_connections": ch.total_connections(),
            "total_users": users.len(),
            "users": users,
        })
    }

    /// `SharedUtils.get_channel_info`: requested channels (None = all) minus excluded ones,
    /// and the union of their users (in order of first appearance; Python used a set).
    pub(crate) fn channels_info(
        &self,
        req: Option<&[String]>,
        include_history: bool,
        include_users: bool,
        exclude: &[String],
        return_public_state: bool,
    ) -> Value {
        let picked: Vec<(&str, &Channel)> = match req {
            None => self.channels.iter().map(|(n, c)| (n.as_str(), c)).collect(),
            Some(names) => names
                .iter()
                .filter_map(|n| self.channels.get_key_value(n.as_str()))
                .map(|(n, c)| (n.as_str(), c))
                .collect(),
        };
        // Unknown names are skipped; a name asked twice collapses like a dict key.
        let mut chans = Map::new();
        let mut seen: HashSet<&str> = HashSet::new();
        let mut listed: Vec<&str> = Vec::new();
        for (name, ch) in picked {
            if exclude.iter().any(|e| e == name) {
                continue;
            }
            chans.insert(
                name.to_owned(),
                self.channel_value(name, ch, include_history, include_users),
            );
            if include_users {
                let mut names: Vec<&str> = ch.members.keys().map(|k| &**k).collect();
                names.sort_unstable();
                for n in names {
                    if seen.insert(n) {
                        listed.push(n);
                    }
                }
            }
        }
        // Full private state unless asked otherwise (quirk 5). A member whose user was
        // collected is left out (0.7.1 raised KeyError here).
        let users: Vec<Value> = listed
            .into_iter()
            .filter_map(|n| self.users.get(n).map(|u| (n, u)))
            .map(|(n, u)| {
                let state = if return_public_state {
                    u.public_state()
                } else {
                    u.state.clone()
                };
                json!({"user": n, "state": state})
            })
            .collect();
        json!({"channels": chans, "users": users})
    }

    /// `channels_info` as an `InfoResolution` (the `info` part of a request) asks for it:
    /// `/info` itself, and the `channels_info` key of `/connect`, `/subscribe`, `/unsubscribe`.
    pub(super) fn resolved_info(
        &self,
        channels: Option<&[String]>,
        info: &InfoResolution,
    ) -> Value {
        self.channels_info(
            channels,
            info.include_history,
            info.include_users,
            &info.exclude_channels,
            info.return_public_state,
        )
    }

    /// `POST /channel_config`: a given config replaces all six settings; `None` creates a
    /// default channel or leaves an existing one alone.
    pub fn channel_config(&mut self, cmd: ChannelConfigCmd, now: Now) -> Reply {
        self.clock_at(now);
        for (name, config) in &cmd {
            match (self.channels.get_mut(name.as_str()), config) {
                (Some(ch), Some(c)) => {
                    ch.config = c.clone();
                    if let Some(i) = self.channels.get_index_of(name.as_str()) {
                        self.adopt_history(ChannelIdx(i));
                    }
                }
                (Some(_), None) => {}
                (None, c) => {
                    self.ensure_channel(name, c.as_ref(), now);
                }
            }
        }
        let names: Vec<String> = cmd.into_iter().map(|(n, _)| n).collect();
        ok(&self.channels_info(Some(&names), false, false, &[], false))
    }

    /// `/info`.
    pub fn info(&self, res: &InfoResolution) -> Reply {
        ok(&self.resolved_info(res.channels.as_deref(), res))
    }

    /// `/admin/admin.json`.
    pub fn admin_json(&self, now: Now) -> Reply {
        // Users with connections, in creation order; here the state shown is the public one.
        let active: Vec<(&Arc<str>, &User)> = self
            .users
            .iter()
            .filter(|(_, u)| !u.conns.is_empty())
            .collect();
        let total_connections: usize = active.iter().map(|(_, u)| u.conns.len()).sum();
        let info = self.channels_info(None, true, true, &[], false);
        let users: Vec<Value> = active
            .iter()
            .map(|(name, u)| {
                let conns: Vec<String> = u
                    .conns
                    .iter()
                    .filter_map(|&s| self.conns.get(s.0).map(|c| c.id.hyphenated().to_string()))
                    .collect();
                json!({
                    "state": u.public_state(),
                    "user": &***name,
                    "uuid": u.uuid.hyphenated().to_string(),
                    "connections": conns,
                })
            })
            .collect();
        let uptime = uptime_string((now.wall - self.started).num_seconds());
        let body = json!({
            "remembered_user_count": self.users.len(),
            "unique_user_count": active.len(),
            "total_connections": total_connections,
            "total_channels": self.channels.len(),
            "total_messages": self.stats.total_messages,
            "total_unique_messages": self.stats.total_unique_messages,
            "channels": info.get("channels").cloned().unwrap_or(Value::Null),
            "users": users,
            "uptime": uptime,
            "version": VERSION,
        });
        ok(&body)
    }
}
