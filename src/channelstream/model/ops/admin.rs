//! `/admin/connections.json`, a Herald extension for the admin dashboard: every connection
//! record with its user, transport and channels, plus the count per transport. Channelstream
//! 0.7.1's admin.json lists connection ids only; the dashboard needs to tell websockets from
//! long polls, and this view is computed only when an admin asks (O(connections)).

use super::{ok, Model, Reply};
use crate::channelstream::model::state::{ConnRecord, LongPoll, Sock};
use serde_json::{json, Value};

/// How a connection currently receives its messages.
fn transport(c: &ConnRecord) -> &'static str {
    match (&c.sock, &c.lp) {
        (Sock::Open(_), _) => "websocket",
        (_, LongPoll::Polling(_)) | (_, LongPoll::Idle) => "long_poll",
        (Sock::Closed, LongPoll::None) => "closed",
        (Sock::None, LongPoll::None) => "none",
    }
}

impl Model {
    /// `/admin/connections.json`: `{"connections": [...], "by_transport": {...}}`, connections
    /// in slot order, each `{"conn_id", "user", "transport", "channels"}`.
    pub fn admin_connections(&self) -> Reply {
        let mut counts = [0u64; 4];
        let names = ["websocket", "long_poll", "closed", "none"];
        let conns: Vec<Value> = self
            .conns
            .iter()
            .map(|(_, c)| {
                let t = transport(c);
                if let Some(i) = names.iter().position(|n| *n == t) {
                    if let Some(n) = counts.get_mut(i) {
                        *n += 1;
                    }
                }
                let channels: Vec<&str> = c
                    .channels
                    .iter()
                    .filter_map(|&i| self.channels.get_index(i.0).map(|(n, _)| n.as_str()))
                    .collect();
                json!({
                    "conn_id": c.id.hyphenated().to_string(),
                    "user": &*c.username,
                    "transport": t,
                    "channels": channels,
                })
            })
            .collect();
        let by: serde_json::Map<String, Value> = names
            .iter()
            .zip(counts)
            .map(|(n, c)| ((*n).to_string(), json!(c)))
            .collect();
        ok(&json!({"connections": conns, "by_transport": by}))
    }
}
