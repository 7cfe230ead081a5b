//! The webhook events and the request body that carries them:
//! `{"time_ms":…,"events":[{"name":"channel_occupied","channel":"c"},…]}`.
//!
//! Why an enum rendered late: the owner shard only builds the small value (names are moved in,
//! no JSON on the reactor thread); the sender thread renders and signs the body, once per
//! request. Field order follows Pusher's documentation (`name` first), which the
//! `preserve_order` JSON map keeps.

use crate::config::WebhookKind;
use serde_json::{json, Map, Value};

/// One webhook event, as raised on a channel's owner shard.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The channel got its first subscriber.
    ChannelOccupied {
        /// The channel.
        channel: Box<str>,
    },
    /// The channel lost its last subscriber and nobody came back within the grace delay.
    ChannelVacated {
        /// The channel.
        channel: Box<str>,
    },
    /// A presence channel got the user's first connection.
    MemberAdded {
        /// The channel.
        channel: Box<str>,
        /// The user.
        user_id: Box<str>,
    },
    /// A presence channel lost the user's last connection (after the grace delay).
    MemberRemoved {
        /// The channel.
        channel: Box<str>,
        /// The user.
        user_id: Box<str>,
    },
    /// A client sent a `client-` event (boxed: it carries the payload).
    ClientEvent(Box<ClientEvent>),
    /// A subscribe to a cache channel found nothing cached.
    CacheMiss {
        /// The channel.
        channel: Box<str>,
    },
}

/// A client event's webhook fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientEvent {
    /// The channel.
    pub channel: Box<str>,
    /// The event name (`client-…`).
    pub event: Box<str>,
    /// The payload string, as the client sent it.
    pub data: Box<str>,
    /// The sender's socket id.
    pub socket_id: String,
    /// The sender's presence user id, on presence channels.
    pub user_id: Option<Box<str>>,
}

impl Event {
    /// Its kind (for the app's event-type filter).
    pub fn kind(&self) -> WebhookKind {
        match self {
            Event::ChannelOccupied { .. } => WebhookKind::ChannelOccupied,
            Event::ChannelVacated { .. } => WebhookKind::ChannelVacated,
            Event::MemberAdded { .. } => WebhookKind::MemberAdded,
            Event::MemberRemoved { .. } => WebhookKind::MemberRemoved,
            Event::ClientEvent(_) => WebhookKind::ClientEvent,
            Event::CacheMiss { .. } => WebhookKind::CacheMiss,
        }
    }

    /// The event object of a webhook body.
    pub fn to_json(&self) -> Value {
        let name = self.kind().name();
        match self {
            Event::ChannelOccupied { channel }
            | Event::ChannelVacated { channel }
            | Event::CacheMiss { channel } => json!({"name": name, "channel": &**channel}),
            Event::MemberAdded { channel, user_id } | Event::MemberRemoved { channel, user_id } => {
                json!({"name": name, "channel": &**channel, "user_id": &**user_id})
            }
            Event::ClientEvent(c) => {
                let mut m = Map::new();
                m.insert("name".into(), name.into());
                m.insert("channel".into(), (&*c.channel).into());
                m.insert("event".into(), (&*c.event).into());
                m.insert("data".into(), (&*c.data).into());
                m.insert("socket_id".into(), c.socket_id.as_str().into());
                if let Some(u) = &c.user_id {
                    m.insert("user_id".into(), (&**u).into());
                }
                Value::Object(m)
            }
        }
    }
}

/// An event with the time it was raised (Unix milliseconds), as queued for the sender.
#[derive(Debug, PartialEq, Eq)]
pub struct Raised {
    /// The event.
    pub event: Event,
    /// When it was raised.
    pub at_ms: u64,
}

/// The request body for these events: `time_ms` is when the first of them was raised (Pusher:
/// "when the webhook was created").
pub fn body<'a>(events: impl IntoIterator<Item = &'a Raised>) -> Vec<u8> {
    let mut time_ms = None;
    let list: Vec<Value> = events
        .into_iter()
        .map(|r| {
            time_ms.get_or_insert(r.at_ms);
            r.event.to_json()
        })
        .collect();
    let v = json!({"time_ms": time_ms.unwrap_or(0), "events": list});
    serde_json::to_vec(&v).unwrap_or_default()
}

/// Unix time in milliseconds.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_in_pushers_shape() {
        let occupied = Raised {
            event: Event::ChannelOccupied {
                channel: "c".into(),
            },
            at_ms: 7,
        };
        let client = Raised {
            event: Event::ClientEvent(Box::new(ClientEvent {
                channel: "presence-c".into(),
                event: "client-x".into(),
                data: "{\"a\":1}".into(),
                socket_id: "1.2".into(),
                user_id: Some("u".into()),
            })),
            at_ms: 9,
        };
        let removed = Raised {
            event: Event::MemberRemoved {
                channel: "presence-c".into(),
                user_id: "u".into(),
            },
            at_ms: 10,
        };
        let b = String::from_utf8(body([&occupied, &client, &removed])).unwrap();
        assert_eq!(
            b,
            r#"{"time_ms":7,"events":[{"name":"channel_occupied","channel":"c"},{"name":"client_event","channel":"presence-c","event":"client-x","data":"{\"a\":1}","socket_id":"1.2","user_id":"u"},{"name":"member_removed","channel":"presence-c","user_id":"u"}]}"#
        );
        let Event::ClientEvent(mut c) = client.event else {
            unreachable!()
        };
        c.user_id = None;
        let v = Event::ClientEvent(c).to_json();
        assert!(v.get("user_id").is_none(), "no user_id off presence");
    }
}
