//! Request validation with Channelstream 0.7.1's (marshmallow 2.18) semantics and 422 shapes.
//! STUB: owned by the pyjson/schema work; the signatures below are the contract.

use super::types::*;
use serde_json::Value;
use uuid::Uuid;

/// `POST /connect` body.
pub fn connect(_body: &Value) -> Result<ConnectCmd, SchemaError> {
    Err(SchemaError::Crash)
}

/// `POST /subscribe` body; `query_conn_id` is `?conn_id=` (used when the body has none);
/// `known_conn` answers whether a connection exists ("Unknown connection").
pub fn subscribe(
    _body: &Value,
    _query_conn_id: Option<&str>,
    _known_conn: &dyn Fn(&Uuid) -> bool,
) -> Result<SubscribeCmd, SchemaError> {
    Err(SchemaError::Crash)
}

/// `POST /unsubscribe` body (same schema as subscribe).
pub fn unsubscribe(
    body: &Value,
    query_conn_id: Option<&str>,
    known_conn: &dyn Fn(&Uuid) -> bool,
) -> Result<SubscribeCmd, SchemaError> {
    subscribe(body, query_conn_id, known_conn)
}

/// `POST /user_state`; `known_user` answers whether a user exists ("Unknown user").
pub fn user_state(
    _body: &Value,
    _known_user: &dyn Fn(&str) -> bool,
) -> Result<UserStateCmd, SchemaError> {
    Err(SchemaError::Crash)
}

/// `POST /message` (a JSON array). Items with neither channel nor pm_users are dropped here.
pub fn messages(_body: &Value) -> Result<Vec<MessageCmd>, SchemaError> {
    Err(SchemaError::Crash)
}

/// `PATCH /message`.
pub fn edits(_body: &Value) -> Result<Vec<EditCmd>, SchemaError> {
    Err(SchemaError::Crash)
}

/// `DELETE /message`.
pub fn deletes(_body: &Value) -> Result<Vec<DeleteCmd>, SchemaError> {
    Err(SchemaError::Crash)
}

/// `POST /channel_config`.
pub fn channel_config(_body: &Value) -> Result<ChannelConfigCmd, SchemaError> {
    Err(SchemaError::Crash)
}

/// `/info`: `None` = empty body (everything).
pub fn info(_body: Option<&Value>) -> Result<InfoResolution, SchemaError> {
    Ok(InfoResolution::default())
}

/// `/disconnect`: the `conn_id` from the JSON body (POST) or the query string (others).
pub fn disconnect(_conn_id: Option<&Value>) -> Result<Uuid, SchemaError> {
    Err(SchemaError::Crash)
}

/// The HTTP echo of an accepted `/message` item (key order of the real server).
pub fn message_echo(_m: &MessageCmd) -> Value {
    Value::Null
}

/// The HTTP echo of a `PATCH /message` item.
pub fn edit_echo(_m: &EditCmd) -> Value {
    Value::Null
}

/// The HTTP echo of a `DELETE /message` item.
pub fn delete_echo(_m: &DeleteCmd) -> Value {
    Value::Null
}
