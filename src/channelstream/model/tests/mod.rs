//! Scenario tests driven through the typed entry points with a fake clock and a recording
//! `Effects`. Frames and bodies are parsed back as JSON (the `pyjson` stub is not byte-exact
//! yet), and key order is checked on the parsed objects (serde_json keeps insertion order).
//!
//! This file is the harness (recorder, fake clock, command builders, `World`); the scenarios
//! live beside it by concern: `pieces` (messages, frames, bodies), `connect` (connect,
//! subscribe, info, state, config, admin), `messages` (publish, history, edits, deletes),
//! `presence`, `catchup`, `long_poll`, `gc` (heartbeats, GC, deadlines) and `dispatch`.

mod catchup;
mod connect;
mod dispatch;
mod gc;
mod lifetime;
mod long_poll;
mod messages;
mod pieces;
mod presence;

use super::clock::SEC;
use super::msg::{poll_body, render, FieldValue, Msg, HEARTBEAT_FRAME};
use super::ops::uptime_string;
use super::state::py_eq;
use super::*;
use crate::channelstream::api::types::*;
use chrono::TimeZone;
use serde_json::{json, Map};
use std::time::Duration;

#[derive(Default)]
struct Rec {
    replies: Vec<(ReqRef, Reply)>,
    frames: Vec<(SockRef, Bytes)>,
    deliver_calls: usize,
    closes: Vec<(SockRef, CloseCode)>,
}

impl Effects for Rec {
    fn reply(&mut self, req: ReqRef, reply: Reply) {
        self.replies.push((req, reply));
    }
    fn deliver(&mut self, frame: &Bytes, to: &[SockRef]) {
        self.deliver_calls += 1;
        for s in to {
            self.frames.push((*s, frame.clone()));
        }
    }
    fn close(&mut self, sock: SockRef, code: CloseCode) {
        self.closes.push((sock, code));
    }
}

impl Rec {
    /// Payloads (as JSON) sent to one socket, in order; drained.
    fn take_for(&mut self, sock: SockRef) -> Vec<Value> {
        let (mine, rest): (Vec<_>, Vec<_>) = self.frames.drain(..).partition(|(s, _)| *s == sock);
        self.frames = rest;
        mine.into_iter().map(|(_, f)| frame_json(&f)).collect()
    }
    fn reply_for(&mut self, req: ReqRef) -> Option<Reply> {
        let i = self.replies.iter().position(|(r, _)| *r == req)?;
        Some(self.replies.remove(i).1)
    }
}

/// The payload of an unmasked server frame.
fn payload(frame: &[u8]) -> &[u8] {
    let len = frame[1] & 0x7f;
    match len {
        126 => &frame[4..],
        127 => &frame[10..],
        _ => &frame[2..],
    }
}

fn frame_json(frame: &[u8]) -> Value {
    assert_eq!(frame[0], 0x81, "a final text frame");
    serde_json::from_slice(payload(frame)).expect("frame payload is JSON")
}

fn body_json(r: &Reply) -> Value {
    serde_json::from_slice(&r.body).expect("JSON body")
}

fn keys(v: &Value) -> Vec<&str> {
    v.as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect()
}

struct Time {
    base: Instant,
    wall: DateTime<Utc>,
}

impl Time {
    fn new() -> Self {
        Time {
            base: Instant::now(),
            wall: Utc.with_ymd_and_hms(2026, 11, 22, 13, 59, 0).unwrap(),
        }
    }
    /// The time `ms` milliseconds after the start.
    fn at(&self, ms: u64) -> Now {
        Now {
            mono: self.base + Duration::from_millis(ms),
            wall: self.wall + chrono::Duration::milliseconds(ms as i64),
        }
    }
}

fn sock(n: u32) -> SockRef {
    SockRef::new(0, n, 1)
}

fn req(n: u32) -> ReqRef {
    ReqRef::new(0, n, 1)
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn state(v: Value) -> StateMap {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn connect_cmd(user: &str, channels: &[&str]) -> ConnectCmd {
    ConnectCmd {
        username: user.to_owned(),
        conn_id: Uuid::new_v4(),
        channels: strings(channels),
        state_public_keys: Vec::new(),
        fresh_user_state: Map::new(),
        user_state: Map::new(),
        channel_configs: Vec::new(),
        info: InfoResolution::default(),
    }
}

fn msg_cmd(user: &str, channel: Option<&str>, text: &str) -> MessageCmd {
    MessageCmd {
        delivery: Delivery {
            channel: channel.map(str::to_owned),
            ..Delivery::default()
        },
        uuid: Uuid::new_v4(),
        timestamp: Timestamp::from_utc(Utc.with_ymd_and_hms(2026, 11, 22, 14, 0, 0).unwrap()),
        user: user.to_owned(),
        message: Some(state(json!({ "text": text }))),
    }
}

/// A channel that stores history (and nothing else non-default).
fn history_config() -> ChannelConfig {
    ChannelConfig {
        store_history: true,
        ..ChannelConfig::default()
    }
}

fn presence_config() -> ChannelConfig {
    ChannelConfig {
        notify_presence: true,
        broadcast_presence_with_user_lists: true,
        ..ChannelConfig::default()
    }
}

/// Model, clock and recorder, with helpers for the common steps.
struct World {
    m: Model,
    time: Time,
    fx: Rec,
}

impl World {
    fn new() -> Self {
        let time = Time::new();
        World {
            m: Model::new(time.wall),
            time,
            fx: Rec::default(),
        }
    }
    fn now(&self, ms: u64) -> Now {
        self.time.at(ms)
    }
    fn connect(&mut self, ms: u64, cmd: ConnectCmd) -> (Uuid, Value) {
        let id = cmd.conn_id;
        let now = self.now(ms);
        let r = self.m.connect(cmd, now, &mut self.fx);
        assert_eq!(r.status, 200);
        assert_eq!(r.kind, ContentKind::Json);
        (id, body_json(&r))
    }
    fn ws(&mut self, ms: u64, id: Uuid, s: SockRef) {
        let now = self.now(ms);
        self.m.ws_open(id, s, now, &mut self.fx);
    }
    fn send(&mut self, ms: u64, msgs: Vec<MessageCmd>) {
        let now = self.now(ms);
        self.m.messages(msgs, now, &mut self.fx);
    }
    fn tick(&mut self, ms: u64) {
        let now = self.now(ms);
        self.m.tick(now, &mut self.fx);
    }
    /// Tick at every 50 ms step in (from, to].
    fn run(&mut self, from: u64, to: u64) {
        let mut t = from + 50;
        while t <= to {
            self.tick(t);
            t += 50;
        }
    }
    fn listen(&mut self, ms: u64, r: ReqRef, id: Uuid, cb: Option<&str>) {
        let now = self.now(ms);
        self.m.listen(
            Some(r),
            (id, PageFormat::Html),
            cb.map(str::to_owned),
            now,
            &mut self.fx,
        );
    }
    /// `/channel_config` for one channel, answer ignored.
    fn configure(&mut self, ms: u64, name: &str, config: Option<ChannelConfig>) {
        let now = self.now(ms);
        self.m.channel_config(vec![(name.into(), config)], now);
    }
    fn info(&mut self) -> Value {
        body_json(&self.m.info(&InfoResolution::default()))
    }
}

impl World {
    /// Tick exactly at each `next_deadline` up to `to`, checking that deadlines advance.
    fn follow(&mut self, to: u64) -> usize {
        let mut n = 0;
        let mut last = None;
        while let Some(d) = self.m.next_deadline() {
            let ms = d.duration_since(self.time.base).as_millis() as u64;
            if ms > to {
                break;
            }
            assert!(
                last.is_none_or(|l| d > l),
                "next_deadline must move forward"
            );
            last = Some(d);
            self.tick(ms);
            n += 1;
        }
        n
    }
}
