//! Subscriber sockets: the websocket handshake on `/ws?conn_id=`, frame parsing on the hot
//! read path (one shared scratch buffer, a byte search for frames), delivery accounting,
//! pongs, and what happens when a subscriber fails or ends.

use super::*;

impl Engine<'_> {
    /// Returns true when the subscriber is finished and must be reaped.
    pub(super) fn on_sub_event(
        &mut self,
        key: usize,
        readable: bool,
        writable: bool,
        hup: bool,
    ) -> bool {
        let Some(Slot::Sub(sub)) = self.slots.get_mut(key) else {
            return false;
        };
        if sub.state == SubState::Closed {
            return false;
        }
        if sub.state == SubState::Connecting {
            match connect_result(&sub.stream) {
                ConnectState::Pending => return false,
                ConnectState::Failed(e) => {
                    let chan = sub.chan;
                    return self.sub_failed(key, chan, format!("ws connect: {e}"));
                }
                ConnectState::Connected => sub.state = SubState::Handshake,
            }
        }
        if writable || !sub.wbuf.is_empty() {
            if let Err(e) = flush_vec(&mut sub.stream, &mut sub.wbuf) {
                return self.sub_ended(key, format!("ws write: {e}"));
            }
        }
        if !readable {
            return false;
        }
        let mut scratch = std::mem::take(&mut self.scratch);
        let r = self.read_sub(key, &mut scratch, hup);
        self.scratch = scratch;
        match r {
            Ok(()) => false,
            Err(why) => self.sub_ended(key, why),
        }
    }

    /// Drain the socket; parse what is complete. Err = the subscriber is finished.
    ///
    /// A read shorter than the scratch buffer ends the drain without the extra `read` that
    /// would return `WouldBlock`: on Linux every later arrival raises a new edge-triggered
    /// event, so nothing is stranded, and it saves one syscall per delivery at low fan-in.
    /// Only when the event also reported a hang-up do we read on to see the EOF, because no
    /// later edge would announce it.
    pub(super) fn read_sub(
        &mut self,
        key: usize,
        scratch: &mut [u8],
        hup: bool,
    ) -> Result<(), String> {
        loop {
            let n = {
                let Some(Slot::Sub(sub)) = self.slots.get_mut(key) else {
                    return Ok(());
                };
                match sub.stream.read(scratch) {
                    Ok(0) => return Err(String::new()),
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(format!("ws read: {e}")),
                }
            };
            let now = self.rel_now();
            let Some(Slot::Sub(sub)) = self.slots.get_mut(key) else {
                return Ok(());
            };
            let mut tail = std::mem::take(&mut sub.rbuf);
            let result = if tail.is_empty() {
                let chunk = scratch.get_mut(..n).unwrap_or_default();
                let r = self.process_sub_bytes(key, chunk, now);
                if let Ok(used) = r {
                    tail.extend_from_slice(chunk.get(used..).unwrap_or_default());
                }
                r
            } else {
                tail.extend_from_slice(scratch.get(..n).unwrap_or_default());
                let r = self.process_sub_bytes(key, &mut tail, now);
                if let Ok(used) = r {
                    tail.drain(..used.min(tail.len()));
                }
                r
            };
            if let Some(Slot::Sub(sub)) = self.slots.get_mut(key) {
                sub.rbuf = tail;
            }
            result?;
            if n < scratch.len() && !hup {
                return Ok(());
            }
        }
    }

    /// Handle the bytes of one subscriber: the 101 head first, then frames. Returns how many
    /// bytes were consumed (the rest is an incomplete head or frame).
    pub(super) fn process_sub_bytes(
        &mut self,
        key: usize,
        buf: &mut [u8],
        now: u64,
    ) -> Result<usize, String> {
        let mut pos = 0usize;
        let state = match self.slots.get(key) {
            Some(Slot::Sub(s)) => s.state,
            _ => return Ok(0),
        };
        if state == SubState::Handshake {
            match http::parse_head(buf) {
                Ok(None) => return Ok(0),
                Ok(Some((101, n))) => {
                    pos = n;
                    if self.pusher.is_some() {
                        self.sub_upgraded(key);
                    } else {
                        self.sub_opened(key);
                    }
                }
                Ok(Some((code, _))) => {
                    let snippet =
                        String::from_utf8_lossy(buf.get(..buf.len().min(200)).unwrap_or_default())
                            .into_owned();
                    return Err(format!("ws handshake: HTTP {code}: {snippet}"));
                }
                Err(e) => return Err(format!("ws handshake: {e}")),
            }
        }
        loop {
            let rest = buf.get_mut(pos..).unwrap_or_default();
            let head = match wsframe::decode_head(rest, self.inflater.is_some()) {
                Ok(Some(h)) => h,
                Ok(None) => return Ok(pos),
                Err(e) => {
                    self.stats.protocol_errors += 1;
                    return Err(format!("ws frame: {e}"));
                }
            };
            let Some(payload) = rest.get_mut(head.header_len..head.frame_len()) else {
                return Ok(pos);
            };
            if let Some(m) = head.mask {
                wsframe::unmask(payload, m);
            }
            match head.op {
                Op::Text | Op::Binary if head.rsv1 => {
                    let mut out = std::mem::take(&mut self.inflated);
                    let r = self.inflate(payload, &mut out);
                    let done = r.and_then(|()| {
                        if self.pusher.is_some() {
                            self.on_pusher_data(key, &out, now)
                        } else {
                            self.on_data(&out, now);
                            Ok(())
                        }
                    });
                    self.inflated = out;
                    done?;
                }
                Op::Text | Op::Binary | Op::Continuation => {
                    if self.pusher.is_some() {
                        self.on_pusher_data(key, payload, now)?;
                    } else {
                        self.on_data(payload, now);
                    }
                }
                Op::Ping => self.queue_pong(key, payload),
                Op::Pong => {}
                Op::Close => {
                    self.stats.server_closes += 1;
                    return Err("server sent close".into());
                }
            }
            pos += head.frame_len();
        }
    }

    /// Inflate one compressed message (RFC 7692 §7.2.2: the 4-byte trailer appended) into `out`.
    fn inflate(&mut self, payload: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
        let Some(d) = self.inflater.as_mut() else {
            return Err("compressed frame without permessage-deflate".into());
        };
        d.reset(false);
        out.clear();
        for chunk in [payload, &[0, 0, 0xff, 0xff][..]] {
            let start = d.total_in();
            loop {
                if out.len() == out.capacity() {
                    out.reserve(out.len().max(4096));
                }
                let done = usize::try_from(d.total_in() - start).unwrap_or(usize::MAX);
                let rest = chunk.get(done..).unwrap_or_default();
                d.decompress_vec(rest, out, flate2::FlushDecompress::Sync)
                    .map_err(|e| format!("inflate: {e}"))?;
                let done = usize::try_from(d.total_in() - start).unwrap_or(usize::MAX);
                if done >= chunk.len() && out.len() < out.capacity() {
                    break;
                }
                if out.len() as u64 > wsframe::MAX_PAYLOAD {
                    return Err("inflated message too large".into());
                }
            }
        }
        Ok(())
    }

    /// One data frame: a heartbeat, one of our messages, or something else (presence, …).
    pub(super) fn on_data(&mut self, payload: &[u8], now: u64) {
        if wsframe::is_heartbeat(payload) {
            self.stats.heartbeats += 1;
            return;
        }
        let t = wsframe::find_u64_field(payload, self.t_key);
        let s = wsframe::find_u64_field(payload, self.s_key);
        let (Some(t), Some(s)) = (t, s) else {
            self.stats.other_frames += 1;
            return;
        };
        let st = &mut self.stats;
        st.latency.saturating_record(now.saturating_sub(t).max(1));
        st.deliveries += 1;
        if matches!(self.phase, Phase::Measuring { .. }) {
            st.deliveries_in_window += 1;
        }
        match usize::try_from(s).ok().and_then(|i| st.msgs.get_mut(i)) {
            Some(rec) => rec.count = rec.count.saturating_add(1),
            None => st.unexpected += 1,
        }
    }

    /// Pusher: a frame before the subscription settles it; after, pings are answered and the
    /// rest is counted like any delivery.
    fn on_pusher_data(&mut self, key: usize, payload: &[u8], now: u64) -> Result<(), String> {
        let subscribing =
            matches!(self.slots.get(key), Some(Slot::Sub(s)) if s.state == SubState::Subscribing);
        if subscribing {
            return match crate::pusher::classify_setup(payload) {
                crate::pusher::Setup::Subscribed if self.is_churner(key) => {
                    self.churner_opened(key);
                    Ok(())
                }
                crate::pusher::Setup::Subscribed => {
                    self.sub_opened(key);
                    Ok(())
                }
                crate::pusher::Setup::Refused => Err(format!(
                    "pusher:subscribe refused: {}",
                    String::from_utf8_lossy(
                        payload.get(..payload.len().min(200)).unwrap_or_default()
                    )
                )),
                crate::pusher::Setup::Other if self.cfg.scenario.presence => {
                    self.presence_established(key, payload);
                    Ok(())
                }
                crate::pusher::Setup::Other => Ok(()),
            };
        }
        if crate::pusher::is_ping(payload) {
            self.stats.heartbeats += 1;
            let mask = self.next_mask();
            if let Some(Slot::Sub(sub)) = self.slots.get_mut(key) {
                crate::pusher::pong_frame(mask, &mut sub.wbuf);
                let _ = flush_vec(&mut sub.stream, &mut sub.wbuf);
            }
            return Ok(());
        }
        if self.cfg.scenario.presence && self.on_presence_frame(key, payload, now) {
            return Ok(());
        }
        self.on_data(payload, now);
        Ok(())
    }

    pub(super) fn next_mask(&mut self) -> [u8; 4] {
        self.pong_mask = self.pong_mask.rotate_left(7) ^ 0x9e37_79b9;
        self.pong_mask.to_be_bytes()
    }

    /// Pusher: the upgrade is done; subscribe to the subscriber's channel (presence: once
    /// `connection_established` gives the socket id the auth signs).
    pub(super) fn sub_upgraded(&mut self, key: usize) {
        if self.cfg.scenario.presence {
            if let Some(Slot::Sub(sub)) = self.slots.get_mut(key) {
                sub.state = SubState::Subscribing;
            }
            return;
        }
        let mask = self.next_mask();
        let (prefix, channels) = (&self.chan_prefix, self.cfg.scenario.channels);
        if let Some(Slot::Sub(sub)) = self.slots.get_mut(key) {
            sub.state = SubState::Subscribing;
            let name = http::channel_name(prefix, sub.chan, channels);
            crate::pusher::subscribe_frame(&name, mask, &mut sub.wbuf);
            let _ = flush_vec(&mut sub.stream, &mut sub.wbuf);
        }
    }

    pub(super) fn queue_pong(&mut self, key: usize, payload: &[u8]) {
        self.pong_mask = self.pong_mask.rotate_left(7) ^ 0x9e37_79b9;
        let mask = self.pong_mask.to_be_bytes();
        if let Some(Slot::Sub(sub)) = self.slots.get_mut(key) {
            wsframe::encode_masked(Op::Pong, payload, mask, &mut sub.wbuf);
            let _ = flush_vec(&mut sub.stream, &mut sub.wbuf);
        }
    }

    pub(super) fn sub_opened(&mut self, key: usize) {
        if let Some(Slot::Sub(sub)) = self.slots.get_mut(key) {
            sub.state = SubState::Open;
            if let Some(c) = self.chan_subs.get_mut(sub.chan as usize) {
                *c += 1;
            }
            self.stats.subs_open += 1;
            self.pending_subs = self.pending_subs.saturating_sub(1);
        }
    }

    /// Before open: a connect failure. Returns true (reap).
    pub(super) fn sub_failed(&mut self, key: usize, _chan: u32, why: String) -> bool {
        let mut churner = false;
        if let Some(Slot::Sub(sub)) = self.slots.get_mut(key) {
            sub.state = SubState::Closed;
            churner = sub.churner;
        }
        if churner {
            self.stats.churners_failed += 1;
        } else {
            self.stats.subs_failed += 1;
        }
        self.pending_subs = self.pending_subs.saturating_sub(1);
        self.stats.error(why);
        true
    }

    /// Any end of a subscriber; dispatches on whether it had opened.
    pub(super) fn sub_ended(&mut self, key: usize, why: String) -> bool {
        let (state, chan) = match self.slots.get(key) {
            Some(Slot::Sub(s)) => (s.state, s.chan),
            _ => return false,
        };
        match state {
            SubState::Connecting | SubState::Handshake | SubState::Subscribing => {
                let why = if why.is_empty() {
                    "ws: closed before 101".into()
                } else {
                    why
                };
                self.sub_failed(key, chan, why)
            }
            SubState::Open => {
                if let Some(Slot::Sub(sub)) = self.slots.get_mut(key) {
                    sub.state = SubState::Closed;
                }
                if !matches!(self.phase, Phase::Done) {
                    self.stats.subs_closed_early += 1;
                    if !why.is_empty() {
                        self.stats.error(why);
                    }
                }
                true
            }
            SubState::Closed => false,
        }
    }

    pub(super) fn open_sub(&mut self, idx: u32, conn_id: &str) {
        let (subs, channels) = (self.cfg.scenario.subs, self.cfg.scenario.channels);
        // Indexes past the counted subscribers are presence churners, spread over the channels.
        let churner = idx >= subs;
        let chan = if churner { idx - subs } else { idx } % channels;
        let src = match self.cfg.source_ips.len() {
            0 => None,
            n => self.cfg.source_ips.get(idx as usize % n).copied(),
        };
        let tcp = sys::connect_nonblocking(self.cfg.target.addr, src);
        let tls = self.cfg.tls.as_ref();
        let ip = self.cfg.target.addr.ip();
        let stream = match tcp.and_then(|t| BStream::new(t, tls, ip)) {
            Ok(s) => s,
            Err(e) => {
                self.count_failed(churner);
                self.stats.error(format!("ws socket: {e}"));
                return;
            }
        };
        let entry = self.slots.vacant_entry();
        let key = entry.key();
        let mut sub = Sub {
            stream,
            chan,
            state: SubState::Connecting,
            rbuf: Vec::new(),
            wbuf: match self.pusher {
                Some(_) => crate::pusher::ws_request(
                    &self.cfg.target.host,
                    &self.cfg.app.key,
                    self.cfg.deflate,
                ),
                None => http::ws_request(&self.cfg.target.host, conn_id, self.cfg.deflate),
            },
            churner,
            joined: false,
            socket_id: None,
        };
        if let Err(e) = self.poll.registry().register(
            &mut sub.stream,
            Token(key),
            Interest::READABLE | Interest::WRITABLE,
        ) {
            self.count_failed(churner);
            self.stats.error(format!("register: {e}"));
            return;
        }
        entry.insert(Slot::Sub(sub));
        if churner {
            self.churner_keys.push(key);
        }
    }
}
