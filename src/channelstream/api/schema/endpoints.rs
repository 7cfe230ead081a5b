//! The endpoint schemas other than the message batches: `/connect`, `/subscribe`,
//! `/unsubscribe`, `/user_state`, `/channel_config`, `/info`, `/disconnect`, with the nested
//! `ChannelConfigSchema` and `ChannelInfoSchema` they use. Each is a transcription of the
//! matching class of Channelstream's `validation/schemas.py` (see the parent module docs).

use super::engine::*;
use crate::channelstream::api::types::*;
use serde_json::{Map, Value};
use uuid::Uuid;

// ---------------------------------------------------------------------------------------------
// Schemas

/// `POST /connect` body.
pub fn connect(body: &Value) -> Result<ConnectCmd, SchemaError> {
    let o = body_object(body)?;
    let mut e = Errors::default();
    let username = e.take(
        "username",
        required(o.get("username"), |v| bounded_string(v, 512)),
    );
    let conn_id = e.take(
        "conn_id",
        with_default(o.get("conn_id"), Uuid::new_v4, uuid_field),
    );
    let channels = e.take(
        "channels",
        with_default(o.get("channels"), Vec::new, |v| string_list(v, 256)),
    );
    let state_public_keys = e.take(
        "state_public_keys",
        with_default(o.get("state_public_keys"), Vec::new, |v| {
            string_list(v, 256)
        }),
    );
    let fresh_user_state = e.take(
        "fresh_user_state",
        with_default(o.get("fresh_user_state"), Map::new, state_map),
    );
    let user_state = e.take(
        "user_state",
        with_default(o.get("user_state"), Map::new, state_map),
    );
    let configs = e.take(
        "channel_configs",
        with_default(o.get("channel_configs"), Vec::new, channel_configs),
    );
    let info = e.take(
        "info",
        with_default(o.get("info"), InfoResolution::default, info_schema),
    );
    e.finish()?;
    let (
        Some(username),
        Some(conn_id),
        Some(channels),
        Some(state_public_keys),
        Some(fresh_user_state),
        Some(user_state),
        Some(channel_configs),
        Some(info),
    ) = (
        username,
        conn_id,
        channels,
        state_public_keys,
        fresh_user_state,
        user_state,
        configs,
        info,
    )
    else {
        return Err(SchemaError::Crash);
    };
    Ok(ConnectCmd {
        username,
        conn_id,
        channels,
        state_public_keys,
        fresh_user_state,
        user_state,
        channel_configs,
        info,
    })
}

/// `POST /subscribe` body; `query_conn_id` is `?conn_id=` (used when the body has none);
/// `known_conn` answers whether a connection exists ("Unknown connection").
///
/// A non-object body crashes the real server (its `pre_load` calls `dict.setdefault`).
pub fn subscribe(
    body: &Value,
    query_conn_id: Option<&str>,
    known_conn: &dyn Fn(&Uuid) -> bool,
) -> Result<SubscribeCmd, SchemaError> {
    let Value::Object(o) = body else {
        return Err(SchemaError::Crash);
    };
    // `in_data.setdefault("conn_id", request.GET.get("conn_id"))`: a key present in the body
    // wins even when it is null; otherwise the query value, or None.
    let query = query_conn_id.map_or(Value::Null, |q| Value::String(q.to_owned()));
    let raw_conn = o.get("conn_id").unwrap_or(&query);
    let mut e = Errors::default();
    let conn_id = e.take(
        "conn_id",
        required(Some(raw_conn), |v| {
            let id = uuid_field(v)?;
            if known_conn(&id) {
                Ok(id)
            } else {
                fail(UNKNOWN_CONNECTION)
            }
        }),
    );
    let channels = e.take(
        "channels",
        required(o.get("channels"), |v| {
            let l = string_list(v, 256)?;
            if l.is_empty() {
                fail(SHORTER_THAN_1)
            } else {
                Ok(l)
            }
        }),
    );
    let info = e.take(
        "info",
        with_default(o.get("info"), InfoResolution::default, info_schema),
    );
    let configs = e.take(
        "channel_configs",
        with_default(o.get("channel_configs"), Vec::new, channel_configs),
    );
    e.finish()?;
    let (Some(conn_id), Some(channels), Some(info), Some(channel_configs)) =
        (conn_id, channels, info, configs)
    else {
        return Err(SchemaError::Crash);
    };
    Ok(SubscribeCmd {
        conn_id,
        channels,
        info,
        channel_configs,
    })
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
    body: &Value,
    known_user: &dyn Fn(&str) -> bool,
) -> Result<UserStateCmd, SchemaError> {
    let o = body_object(body)?;
    let mut e = Errors::default();
    let user = e.take(
        "user",
        required(o.get("user"), |v| {
            let s = string(v)?;
            // Both validators run and their messages accumulate (e.g. "" gets two).
            let mut msgs = Vec::new();
            if let Some(len) = length_error(s, 512) {
                msgs.push(Value::String(len));
            }
            if !known_user(s) {
                msgs.push(Value::String(UNKNOWN_USER.into()));
            }
            if msgs.is_empty() {
                Ok(s.to_owned())
            } else {
                Err(Fault::Msg(Value::Array(msgs)))
            }
        }),
    );
    let state = e.take(
        "user_state",
        with_default(o.get("user_state"), Map::new, state_map),
    );
    let keys = e.take(
        "state_public_keys",
        nullable(o.get("state_public_keys"), |v| string_list(v, 256)),
    );
    e.finish()?;
    let (Some(user), Some(user_state), Some(state_public_keys)) = (user, state, keys) else {
        return Err(SchemaError::Crash);
    };
    Ok(UserStateCmd {
        user,
        user_state,
        state_public_keys,
    })
}

/// `POST /channel_config`.
///
/// The view loads each value separately with `ChannelConfigSchema` and stops at the first
/// failure, so a 422 carries that one channel's errors, *not* nested under its name (§5.8).
/// A non-object body crashes (`.keys()` on a list). A `null` value leaves an existing
/// channel unchanged (the `None` arm of [`ChannelConfigCmd`]); any other non-object value is
/// `{"_schema": ["Invalid input type."]}`.
pub fn channel_config(body: &Value) -> Result<ChannelConfigCmd, SchemaError> {
    let Value::Object(o) = body else {
        return Err(SchemaError::Crash);
    };
    let mut out = Vec::with_capacity(o.len());
    for (name, v) in o {
        // A null value leaves an existing channel unchanged (observed on 0.7.1 by the
        // differential suite: `reconfigure_from_dict` is skipped for None).
        if v.is_null() {
            out.push((name.clone(), None));
            continue;
        }
        let cfg = channel_config_schema(v)?;
        out.push((name.clone(), Some(cfg)));
    }
    Ok(out)
}

/// `/info`: `None` = empty body (everything). A non-empty body must be an object with the
/// required `info` key; an array answers `{"_schema": ["Invalid type."]}` (observed; we give
/// every non-object body that answer).
pub fn info(body: Option<&Value>) -> Result<InfoResolution, SchemaError> {
    let Some(body) = body else {
        return Ok(InfoResolution::default());
    };
    let Value::Object(o) = body else {
        return Err(SchemaError::Invalid(schema_error(INVALID_TYPE)));
    };
    let mut e = Errors::default();
    let info = e.take("info", required(o.get("info"), info_schema));
    e.finish()?;
    info.ok_or(SchemaError::Crash)
}

/// `/disconnect`: the `conn_id` from the JSON body (POST) or the query string (others).
/// The view always builds `{"conn_id": <value or None>}`, so absent reads as null.
pub fn disconnect(conn_id: Option<&Value>) -> Result<Uuid, SchemaError> {
    let mut e = Errors::default();
    let id = e.take(
        "conn_id",
        required(Some(conn_id.unwrap_or(&Value::Null)), uuid_field),
    );
    e.finish()?;
    id.ok_or(SchemaError::Crash)
}

/// `ChannelConfigSchema` loaded on its own (also the nested form): all six keys get their
/// defaults when absent; a non-object answers `{"_schema": ["Invalid input type."]}`.
fn channel_config_schema(v: &Value) -> FieldResult<ChannelConfig> {
    let Value::Object(o) = v else {
        return Err(Fault::Msg(schema_error(INVALID_INPUT)));
    };
    let d = ChannelConfig::default();
    let mut e = Errors::default();
    let notify_presence = e.take(
        "notify_presence",
        with_default(o.get("notify_presence"), || d.notify_presence, boolean),
    );
    let store_history = e.take(
        "store_history",
        with_default(o.get("store_history"), || d.store_history, boolean),
    );
    let history_size = e.take(
        "history_size",
        with_default(
            o.get("history_size"),
            || d.history_size,
            |v| match integer(v)? {
                (true, _) => fail(AT_LEAST_0),
                // Python ints are unbounded; any size beyond u64 means "keep everything".
                (false, m) => Ok(u64::try_from(m).unwrap_or(u64::MAX)),
            },
        ),
    );
    let broadcast = e.take(
        "broadcast_presence_with_user_lists",
        with_default(
            o.get("broadcast_presence_with_user_lists"),
            || d.broadcast_presence_with_user_lists,
            boolean,
        ),
    );
    let notify_state = e.take(
        "notify_state",
        with_default(o.get("notify_state"), || d.notify_state, boolean),
    );
    let store_frames = e.take(
        "store_frames",
        with_default(o.get("store_frames"), || d.store_frames, boolean),
    );
    e.finish()?;
    let (
        Some(notify_presence),
        Some(store_history),
        Some(history_size),
        Some(broadcast_presence_with_user_lists),
        Some(notify_state),
        Some(store_frames),
    ) = (
        notify_presence,
        store_history,
        history_size,
        broadcast,
        notify_state,
        store_frames,
    )
    else {
        return Err(Fault::Crash);
    };
    Ok(ChannelConfig {
        notify_presence,
        store_history,
        history_size,
        broadcast_presence_with_user_lists,
        notify_state,
        store_frames,
    })
}

/// `BackportedDict(values=Nested(ChannelConfigSchema()))`.
fn channel_configs(v: &Value) -> FieldResult<Vec<(String, ChannelConfig)>> {
    let Value::Object(m) = v else {
        return fail(NOT_MAPPING);
    };
    let mut out = Vec::with_capacity(m.len());
    let mut errors = Map::new();
    for (k, x) in m {
        // `Nested` is not nullable here, so `null` fails before the schema sees it.
        let r = if x.is_null() {
            fail(NULL)
        } else {
            channel_config_schema(x)
        };
        match r {
            Ok(cfg) => out.push((k.clone(), cfg)),
            Err(Fault::Msg(msg)) => {
                errors.insert(k.clone(), value_error(msg));
            }
            Err(Fault::Crash) => return Err(Fault::Crash),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(Fault::Msg(Value::Object(errors)))
    }
}

/// `InfoResolutionSchema` (nested): a non-object answers `{"_schema": ["Invalid input type."]}`.
fn info_schema(v: &Value) -> FieldResult<InfoResolution> {
    let Value::Object(o) = v else {
        return Err(Fault::Msg(schema_error(INVALID_INPUT)));
    };
    let mut e = Errors::default();
    let include_history = e.take(
        "include_history",
        with_default(o.get("include_history"), || true, boolean),
    );
    let include_users = e.take(
        "include_users",
        with_default(o.get("include_users"), || true, boolean),
    );
    let channels = e.take(
        "channels",
        optional(o.get("channels"), |v| string_list(v, 256)),
    );
    // No `missing` in the schema: absent stays absent, which the views read as `[]`.
    let exclude_channels = e.take(
        "exclude_channels",
        optional(o.get("exclude_channels"), |v| string_list(v, 256)),
    );
    let include_connections = e.take(
        "include_connections",
        with_default(o.get("include_connections"), || false, boolean),
    );
    let return_public_state = e.take(
        "return_public_state",
        with_default(o.get("return_public_state"), || false, boolean),
    );
    e.finish()?;
    let (
        Some(include_history),
        Some(include_users),
        Some(channels),
        Some(exclude_channels),
        Some(include_connections),
        Some(return_public_state),
    ) = (
        include_history,
        include_users,
        channels,
        exclude_channels,
        include_connections,
        return_public_state,
    )
    else {
        return Err(Fault::Crash);
    };
    Ok(InfoResolution {
        include_history,
        include_users,
        channels,
        exclude_channels: exclude_channels.unwrap_or_default(),
        include_connections,
        return_public_state,
    })
}
