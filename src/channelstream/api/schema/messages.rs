//! The message batch schemas (`POST`, `PATCH` and `DELETE /message`, all `many=True`) with
//! their shared `PayloadDeliveryInfo` fields, and the HTTP echoes the views answer with.

use super::engine::*;
use crate::channelstream::api::types::*;
use serde_json::{Map, Value};
use uuid::Uuid;

/// The `PayloadDeliveryInfo` fields shared by the three message schemas.
fn delivery(o: &Map<String, Value>, e: &mut Errors) -> Option<Delivery> {
    let pm_users = e.take(
        "pm_users",
        with_default(o.get("pm_users"), Vec::new, |v| string_list(v, 512)),
    );
    let exclude_users = e.take(
        "exclude_users",
        with_default(o.get("exclude_users"), Vec::new, |v| string_list(v, 512)),
    );
    let channel = e.take(
        "channel",
        nullable(o.get("channel"), |v| bounded_string(v, 256)),
    );
    let no_history = e.take(
        "no_history",
        with_default(o.get("no_history"), || false, boolean),
    );
    Some(Delivery {
        pm_users: pm_users?,
        exclude_users: exclude_users?,
        channel: channel?,
        no_history: no_history?,
    })
}

fn message_item(o: &Map<String, Value>) -> FieldResult<MessageCmd> {
    let mut e = Errors::default();
    let d = delivery(o, &mut e);
    let uuid = e.take(
        "uuid",
        with_default(o.get("uuid"), Uuid::new_v4, uuid_field),
    );
    let timestamp = e.take(
        "timestamp",
        with_default(o.get("timestamp"), Timestamp::now, datetime),
    );
    let user = e.take("user", required(o.get("user"), |v| bounded_string(v, 512)));
    let message = e.take("message", optional(o.get("message"), mapping));
    e.finish()?;
    let (Some(d), Some(uuid), Some(timestamp), Some(user), Some(message)) =
        (d, uuid, timestamp, user, message)
    else {
        return Err(Fault::Crash);
    };
    Ok(MessageCmd {
        delivery: d,
        uuid,
        timestamp,
        user,
        message,
    })
}

/// `POST /message` (a JSON array). Items with neither channel nor pm_users are dropped here,
/// after the whole batch validated (one invalid item rejects all).
pub fn messages(body: &Value) -> Result<Vec<MessageCmd>, SchemaError> {
    let mut all = load_many(body, message_item)?;
    all.retain(|m| m.delivery.channel.is_some() || !m.delivery.pm_users.is_empty());
    Ok(all)
}

fn edit_item(o: &Map<String, Value>) -> FieldResult<EditCmd> {
    let mut e = Errors::default();
    let d = delivery(o, &mut e);
    let uuid = e.take("uuid", required(o.get("uuid"), uuid_field));
    let timestamp = e.take("timestamp", optional(o.get("timestamp"), datetime));
    let user = e.take("user", optional(o.get("user"), |v| bounded_string(v, 512)));
    let message = e.take("message", optional(o.get("message"), mapping));
    let edited = e.take(
        "edited",
        with_default(o.get("edited"), Timestamp::now, datetime),
    );
    e.finish()?;
    let (Some(d), Some(uuid), Some(timestamp), Some(user), Some(message), Some(edited)) =
        (d, uuid, timestamp, user, message, edited)
    else {
        return Err(Fault::Crash);
    };
    Ok(EditCmd {
        delivery: d,
        uuid,
        timestamp,
        user,
        message,
        edited,
    })
}

/// `PATCH /message`. Not filtered: items without a target are echoed and do nothing.
pub fn edits(body: &Value) -> Result<Vec<EditCmd>, SchemaError> {
    load_many(body, edit_item)
}

fn delete_item(o: &Map<String, Value>) -> FieldResult<DeleteCmd> {
    let mut e = Errors::default();
    let d = delivery(o, &mut e);
    let uuid = e.take("uuid", required(o.get("uuid"), uuid_field));
    e.finish()?;
    let (Some(d), Some(uuid)) = (d, uuid) else {
        return Err(Fault::Crash);
    };
    Ok(DeleteCmd { delivery: d, uuid })
}

/// `DELETE /message`.
pub fn deletes(body: &Value) -> Result<Vec<DeleteCmd>, SchemaError> {
    load_many(body, delete_item)
}

// ---------------------------------------------------------------------------------------------
// HTTP echoes

fn string_array(items: &[String]) -> Value {
    Value::Array(items.iter().cloned().map(Value::String).collect())
}

fn uuid_value(u: &Uuid) -> Value {
    Value::String(u.hyphenated().to_string())
}

fn delivery_echo(o: &mut Map<String, Value>, d: &Delivery, uuid: &Uuid) {
    o.insert("pm_users".into(), string_array(&d.pm_users));
    o.insert("exclude_users".into(), string_array(&d.exclude_users));
    o.insert(
        "channel".into(),
        d.channel.clone().map_or(Value::Null, Value::String),
    );
    o.insert("no_history".into(), Value::Bool(d.no_history));
    o.insert("uuid".into(), uuid_value(uuid));
}

/// The HTTP echo of an accepted `/message` item (key order of the real server).
pub fn message_echo(m: &MessageCmd) -> Value {
    let mut o = Map::with_capacity(9);
    delivery_echo(&mut o, &m.delivery, &m.uuid);
    o.insert(
        "timestamp".into(),
        Value::String(m.timestamp.to_http_string()),
    );
    o.insert("user".into(), Value::String(m.user.clone()));
    if let Some(msg) = &m.message {
        o.insert("message".into(), Value::Object(msg.clone()));
    }
    o.insert("edited".into(), Value::Null);
    Value::Object(o)
}

/// The HTTP echo of a `PATCH /message` item.
pub fn edit_echo(m: &EditCmd) -> Value {
    let mut o = Map::with_capacity(9);
    delivery_echo(&mut o, &m.delivery, &m.uuid);
    if let Some(t) = &m.timestamp {
        o.insert("timestamp".into(), Value::String(t.to_http_string()));
    }
    if let Some(u) = &m.user {
        o.insert("user".into(), Value::String(u.clone()));
    }
    if let Some(msg) = &m.message {
        o.insert("message".into(), Value::Object(msg.clone()));
    }
    o.insert("edited".into(), Value::String(m.edited.to_http_string()));
    Value::Object(o)
}

/// The HTTP echo of a `DELETE /message` item.
pub fn delete_echo(m: &DeleteCmd) -> Value {
    let mut o = Map::with_capacity(5);
    delivery_echo(&mut o, &m.delivery, &m.uuid);
    Value::Object(o)
}
