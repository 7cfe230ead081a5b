//! Presence scenarios: subscriptions signed with the socket id (`key:HMAC(secret,
//! "socket_id:channel:channel_data")`, so they wait for `connection_established`), member events
//! at the counted subscribers, and the churners that leave and join again on an open-loop
//! schedule while messages are published.
//!
//! Why churners are separate sockets: a counted subscriber must stay subscribed for the loss
//! count of the publishes to mean anything, so the churn comes from extra members (one user each).
//! Every churn operation is a `pusher:unsubscribe` or a signed `pusher:subscribe` on a socket that
//! stays open, so what is measured is the presence work (member bookkeeping and the
//! `member_added` / `member_removed` fan-out), not TCP and websocket handshakes. Each operation
//! owes one member event to every counted subscriber of its channel (each churner is its own
//! user with one connection); a join's `user_info` carries its intended time, so the
//! `member_added` frames give a join-to-notification latency.

use super::*;
use crate::pusher::{self, Member};

impl Engine<'_> {
    pub(super) fn is_churner(&self, key: usize) -> bool {
        matches!(self.slots.get(key), Some(Slot::Sub(s)) if s.churner)
    }

    /// A subscriber or churner that never opened.
    pub(super) fn count_failed(&mut self, churner: bool) {
        if churner {
            self.stats.churners_failed += 1;
        } else {
            self.stats.subs_failed += 1;
        }
        self.pending_subs = self.pending_subs.saturating_sub(1);
    }

    /// A churner's first `subscription_succeeded`: it is a member now.
    pub(super) fn churner_opened(&mut self, key: usize) {
        if let Some(Slot::Sub(sub)) = self.slots.get_mut(key) {
            sub.state = SubState::Open;
            sub.joined = true;
            self.stats.churners_open += 1;
            self.pending_subs = self.pending_subs.saturating_sub(1);
        }
    }

    /// A frame before the subscription: `connection_established` gives the socket id, and the
    /// signed presence subscription goes out at once.
    pub(super) fn presence_established(&mut self, key: usize, payload: &[u8]) {
        let Some(id) = pusher::socket_id(payload) else {
            return;
        };
        let t = self.rel_now();
        if let Some(Slot::Sub(sub)) = self.slots.get_mut(key) {
            if sub.socket_id.is_none() {
                sub.socket_id = Some(id.into());
                self.send_join(key, t);
            }
        }
    }

    /// The member's user id: unique among the run's live sockets.
    fn user_id(&self, key: usize, churner: bool) -> String {
        let kind = if churner { 'c' } else { 's' };
        format!("{}-{kind}{key}", self.cfg.tag)
    }

    /// Queue and flush the signed presence subscription of socket `key`, stamped `t`.
    fn send_join(&mut self, key: usize, t: u64) {
        let mask = self.next_mask();
        let Some(Slot::Sub(sub)) = self.slots.get(key) else {
            return;
        };
        let user = self.user_id(key, sub.churner);
        let channel = http::channel_name(&self.chan_prefix, sub.chan, self.cfg.scenario.channels);
        let app = &self.cfg.app;
        let Some(Slot::Sub(sub)) = self.slots.get_mut(key) else {
            return;
        };
        let Some(sid) = sub.socket_id.as_deref() else {
            return;
        };
        pusher::presence_subscribe_frame(app, sid, &channel, &user, t, mask, &mut sub.wbuf);
        let _ = flush_vec(&mut sub.stream, &mut sub.wbuf);
    }

    /// A frame on an open presence socket. Returns true when it was handled here (member
    /// events; anything a churner gets), false for a delivery to count as usual.
    pub(super) fn on_presence_frame(&mut self, key: usize, payload: &[u8], now: u64) -> bool {
        let counting = matches!(self.phase, Phase::Measuring { .. } | Phase::Draining { .. });
        let member = pusher::member_event(payload);
        if self.is_churner(key) {
            if member.is_some() && counting {
                self.stats.churner_member_events += 1;
            }
            return true;
        }
        let Some(m) = member else {
            return false;
        };
        if counting {
            let st = &mut self.stats;
            st.member_events += 1;
            if matches!(self.phase, Phase::Measuring { .. }) {
                st.member_events_in_window += 1;
            }
            if m == Member::Added {
                if let Some(t) = pusher::member_t(payload).filter(|t| *t >= self.pub_start) {
                    st.member_latency
                        .saturating_record(now.saturating_sub(t).max(1));
                }
            }
        }
        true
    }

    /// When the next publish of the open-loop schedule is due (absolute), if one can be sent.
    fn next_publish_at(&self) -> Option<u64> {
        (self.next_seq < self.total_msgs && !self.idle_publishers.is_empty())
            .then(|| self.epoch + self.intended(self.next_seq))
    }

    /// Send every churn operation that is due (operation `k` at `start + k/rate`, churner
    /// `k mod churners`, alternately leaving and joining), then arm the timer for the next one
    /// (or the next publish, if sooner).
    pub(super) fn pump_churn(&mut self, now: u64) {
        let rate = self.cfg.scenario.churn_rate;
        if rate <= 0.0 || self.churner_keys.is_empty() {
            return;
        }
        if !matches!(self.phase, Phase::Measuring { .. }) {
            return;
        }
        let start = self.pub_start;
        let at = move |k: u64| start + (k as f64 * 1e9 / rate) as u64;
        let elapsed = now.saturating_sub(self.pub_start) as f64;
        let due = (elapsed * rate / 1e9).floor() as u64 + 1;
        while self.next_churn < due {
            let k = self.next_churn;
            self.next_churn += 1;
            let n = self.churner_keys.len() as u64;
            if let Some(&key) = usize::try_from(k % n)
                .ok()
                .and_then(|i| self.churner_keys.get(i))
            {
                self.churn_op(key, at(k));
            }
        }
        let next = self.epoch + at(self.next_churn);
        let wake = self.next_publish_at().map_or(next, |p| p.min(next));
        if let Err(e) = self.timer.arm_at(wake) {
            self.stats.error(format!("timerfd: {e}"));
        }
    }

    /// One leave or join of churner `key`, stamped `t`.
    fn churn_op(&mut self, key: usize, t: u64) {
        let mask = self.next_mask();
        let (prefix, channels) = (&self.chan_prefix, self.cfg.scenario.channels);
        let Some(Slot::Sub(sub)) = self.slots.get_mut(key) else {
            return;
        };
        if sub.state != SubState::Open || sub.socket_id.is_none() {
            return;
        }
        let chan = sub.chan;
        if sub.joined {
            sub.joined = false;
            let channel = http::channel_name(prefix, chan, channels);
            pusher::unsubscribe_frame(&channel, mask, &mut sub.wbuf);
            let _ = flush_vec(&mut sub.stream, &mut sub.wbuf);
        } else {
            sub.joined = true;
            self.send_join(key, t);
        }
        self.stats.churn_ops += 1;
        self.stats.member_expected +=
            u64::from(self.chan_subs.get(chan as usize).copied().unwrap_or(0));
    }
}
