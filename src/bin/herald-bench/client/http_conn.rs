//! The keep-alive HTTP connections: control connections that send signed `POST /connect`
//! and open a subscriber per reply (`feed_controls`, `on_connect_reply`), and publisher
//! connections whose `POST /message` replies are checked (`on_message_reply`). Both share
//! one reader and one reconnect policy. A connection whose answer says `Connection: close`
//! (sockudo's HTTP API, every time) is replaced without counting as a failure.

use super::*;

impl Engine<'_> {
    pub(super) fn on_http_event(&mut self, key: usize, readable: bool, writable: bool) -> bool {
        let Some(Slot::Http(c)) = self.slots.get_mut(key) else {
            return false;
        };
        if c.state == HttpState::Dead {
            return false;
        }
        if c.state == HttpState::Connecting {
            match connect_result(&c.stream) {
                ConnectState::Pending => return false,
                ConnectState::Failed(e) => return self.http_died(key, format!("connect: {e}")),
                ConnectState::Connected => {
                    c.state = HttpState::Ready;
                    match c.role {
                        Role::Control => self.idle_controls.push(key),
                        Role::Publisher => self.idle_publishers.push(key),
                    }
                }
            }
        }
        let Some(Slot::Http(c)) = self.slots.get_mut(key) else {
            return false;
        };
        if writable {
            if let Err(e) = flush_pos(&mut c.stream, &c.wbuf, &mut c.wpos) {
                return self.http_died(key, format!("write: {e}"));
            }
        }
        if !readable {
            return false;
        }
        let mut scratch = std::mem::take(&mut self.scratch);
        let r = self.read_http(key, &mut scratch);
        self.scratch = scratch;
        match r {
            Ok(()) => self.replace_if_closing(key),
            Err(why) => self.http_died(key, why),
        }
    }

    /// After `Connection: close`: drop the connection and open another of the same role.
    /// Returns true (reap).
    fn replace_if_closing(&mut self, key: usize) -> bool {
        let Some(Slot::Http(c)) = self.slots.get_mut(key) else {
            return false;
        };
        if !c.closing || c.state == HttpState::Dead {
            return false;
        }
        c.state = HttpState::Dead;
        let role = c.role;
        self.stats.keepalive_closes += 1;
        if self.phase != Phase::Done {
            if let Err(e) = self.open_http(role) {
                self.stats
                    .error(format!("reopen after Connection: close: {e}"));
            }
        }
        true
    }

    pub(super) fn read_http(&mut self, key: usize, scratch: &mut [u8]) -> Result<(), String> {
        loop {
            let Some(Slot::Http(c)) = self.slots.get_mut(key) else {
                return Ok(());
            };
            let n = match c.stream.read(scratch) {
                Ok(0) if c.closing => return Ok(()),
                Ok(0) => return Err("server closed the connection".into()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(format!("read: {e}")),
            };
            let mut buf = std::mem::take(&mut c.rbuf);
            let chunk = scratch.get(..n).unwrap_or_default();
            let result = if buf.is_empty() {
                let r = self.process_http_bytes(key, chunk);
                if let Ok(used) = r {
                    buf.extend_from_slice(chunk.get(used..).unwrap_or_default());
                }
                r
            } else {
                buf.extend_from_slice(chunk);
                let r = self.process_http_bytes(key, &buf);
                if let Ok(used) = r {
                    buf.drain(..used.min(buf.len()));
                }
                r
            };
            let closing = match self.slots.get_mut(key) {
                Some(Slot::Http(c)) => {
                    c.rbuf = buf;
                    c.closing
                }
                _ => false,
            };
            result?;
            if closing {
                return Ok(());
            }
        }
    }

    pub(super) fn process_http_bytes(&mut self, key: usize, buf: &[u8]) -> Result<usize, String> {
        let mut pos = 0usize;
        loop {
            let rest = buf.get(pos..).unwrap_or_default();
            let resp = match http::parse_response(rest) {
                Ok(Some(r)) => r,
                Ok(None) => return Ok(pos),
                Err(e) => return Err(format!("response: {e}")),
            };
            let inflight = match self.slots.get_mut(key) {
                Some(Slot::Http(c)) => std::mem::replace(&mut c.inflight, Inflight::Idle),
                _ => return Ok(pos),
            };
            let raw = rest.get(..resp.total_len).unwrap_or_default();
            match inflight {
                Inflight::Idle => return Err("response without a request".into()),
                Inflight::Connect { sub } => self.on_connect_reply(sub, raw, &resp),
                Inflight::Message { seq, chan, sent_ns } => {
                    self.on_message_reply(seq, chan, sent_ns, raw, &resp)
                }
            }
            if resp.close {
                if let Some(Slot::Http(c)) = self.slots.get_mut(key) {
                    c.closing = true;
                }
                return Ok(pos + resp.total_len);
            }
            if let Some(Slot::Http(c)) = self.slots.get(key) {
                match c.role {
                    Role::Control => self.idle_controls.push(key),
                    Role::Publisher => self.idle_publishers.push(key),
                }
            }
            pos += resp.total_len;
        }
    }

    pub(super) fn on_connect_reply(&mut self, sub: u32, raw: &[u8], resp: &http::Response) {
        let body = http::body_bytes(raw, resp).unwrap_or_default();
        let conn_id =
            http::find_string_field(&body, "conn_id").and_then(|b| std::str::from_utf8(b).ok());
        match (resp.status, conn_id) {
            (200, Some(id)) => {
                let id = id.to_string();
                self.open_sub(sub, &id);
            }
            (status, _) => {
                self.stats.subs_failed += 1;
                self.pending_subs = self.pending_subs.saturating_sub(1);
                let snippet =
                    String::from_utf8_lossy(body.get(..body.len().min(200)).unwrap_or_default())
                        .into_owned();
                self.stats
                    .error(format!("POST /connect -> {status}: {snippet}"));
            }
        }
    }

    pub(super) fn on_message_reply(
        &mut self,
        seq: u64,
        chan: u32,
        sent_ns: u64,
        raw: &[u8],
        resp: &http::Response,
    ) {
        let now = self.rel_now();
        self.stats
            .post_latency
            .saturating_record(now.saturating_sub(sent_ns).max(1));
        if resp.status == 200 {
            self.stats.accepted += 1;
            if let Some(rec) = usize::try_from(seq)
                .ok()
                .and_then(|i| self.stats.msgs.get_mut(i))
            {
                rec.accepted = true;
                self.stats.expected +=
                    u64::from(self.chan_subs.get(chan as usize).copied().unwrap_or(0));
            }
        } else {
            self.stats.publish_errors += 1;
            if self.stats.errors.len() < MAX_ERRORS_KEPT {
                let body = http::body_bytes(raw, resp).unwrap_or_default();
                let snippet =
                    String::from_utf8_lossy(body.get(..body.len().min(200)).unwrap_or_default())
                        .into_owned();
                self.stats
                    .error(format!("POST /message -> {}: {snippet}", resp.status));
            }
        }
    }

    /// A control or publisher connection failed: account for its request, replace it.
    pub(super) fn http_died(&mut self, key: usize, why: String) -> bool {
        let Some(Slot::Http(c)) = self.slots.get_mut(key) else {
            return false;
        };
        c.state = HttpState::Dead;
        let role = c.role;
        match std::mem::replace(&mut c.inflight, Inflight::Idle) {
            Inflight::Idle => {}
            Inflight::Connect { .. } => {
                self.stats.subs_failed += 1;
                self.pending_subs = self.pending_subs.saturating_sub(1);
            }
            Inflight::Message { .. } => self.stats.publish_errors += 1,
        }
        self.stats.error(format!("{role:?} connection: {why}"));
        if self.phase != Phase::Done && self.stats.reconnects < MAX_RECONNECTS {
            self.stats.reconnects += 1;
            if let Err(e) = self.open_http(role) {
                self.stats.error(format!("reconnect: {e}"));
            }
        }
        true
    }

    /// Hand the next `/connect` to every idle control connection.
    pub(super) fn feed_controls(&mut self) {
        let subs = self.cfg.scenario.subs;
        if self.pusher.is_some() {
            // Counted subscribers first, then the presence churners.
            let subs = subs + self.cfg.scenario.churners;
            while self.next_sub < subs && self.pending_subs < self.cfg.connect_concurrency {
                let idx = self.next_sub;
                self.next_sub += 1;
                self.pending_subs += 1;
                self.open_sub(idx, "");
            }
            return;
        }
        while self.next_sub < subs && self.pending_subs < self.cfg.connect_concurrency {
            let Some(key) = self.idle_controls.pop() else {
                break;
            };
            let idx = self.next_sub;
            let username = format!("{}-u{idx}", self.cfg.tag);
            let chan = http::channel_name(
                &self.chan_prefix,
                idx % self.cfg.scenario.channels,
                self.cfg.scenario.channels,
            );
            let (token, _) = self.auth.token(sys::unix_secs());
            let req = http::connect_request(&self.cfg.target.host, token, &username, &chan);
            let Some(Slot::Http(c)) = self.slots.get_mut(key) else {
                continue;
            };
            if c.state != HttpState::Ready || c.inflight != Inflight::Idle {
                continue;
            }
            c.wbuf = req;
            c.wpos = 0;
            c.inflight = Inflight::Connect { sub: idx };
            self.next_sub += 1;
            self.pending_subs += 1;
            if let Err(e) = flush_pos(&mut c.stream, &c.wbuf, &mut c.wpos) {
                self.http_died(key, format!("write: {e}"));
                self.reap(key);
            }
        }
    }
}
