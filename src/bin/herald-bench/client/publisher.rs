//! Publisher pacing: which message is due when (open loop: message `k` at `start + k/R`,
//! closed loop: as soon as a publisher is idle), the intended send time each payload carries
//! (so queueing shows up in the latency), and sending from the patched request template.

use super::*;

impl Engine<'_> {
    /// Send every message that is due, on idle publisher connections.
    pub(super) fn pump_publishers(&mut self, now: u64) {
        if !matches!(self.phase, Phase::Measuring { .. }) {
            return;
        }
        let sc = self.cfg.scenario;
        let (token, changed) = self.auth.token(sys::unix_secs());
        if changed {
            self.tpl = MessageTemplate::new(
                &self.cfg.target.host,
                token,
                &self.chan_prefix,
                sc.channels,
                sc.size,
            );
        }
        match sc.mode {
            Mode::Idle => {}
            Mode::ClosedLoop => {
                while let Some(key) = self.idle_publishers.pop() {
                    let seq = self.next_seq;
                    if self.send_message(key, seq, now) {
                        self.next_seq += 1;
                    }
                }
            }
            Mode::OpenLoop => {
                let due = self.due(now);
                while self.next_seq < due {
                    let Some(key) = self.idle_publishers.pop() else {
                        break;
                    };
                    let seq = self.next_seq;
                    let intended = self.intended(seq);
                    if self.send_message(key, seq, intended) {
                        self.stats.max_send_lag_ns =
                            self.stats.max_send_lag_ns.max(now.saturating_sub(intended));
                        self.next_seq += 1;
                    }
                }
                if self.next_seq < self.total_msgs && !self.idle_publishers.is_empty() {
                    let at = self.epoch + self.intended(self.next_seq);
                    if let Err(e) = self.timer.arm_at(at) {
                        self.stats.error(format!("timerfd: {e}"));
                    }
                }
            }
        }
    }

    /// How many messages of the open-loop schedule are due at `now` (0 outside it).
    pub(super) fn due(&self, now: u64) -> u64 {
        if self.cfg.scenario.mode != Mode::OpenLoop
            || !matches!(self.phase, Phase::Measuring { .. })
        {
            return 0;
        }
        let elapsed = now.saturating_sub(self.pub_start) as f64;
        ((elapsed * self.cfg.scenario.rate / 1e9).floor() as u64 + 1).min(self.total_msgs)
    }

    pub(super) fn intended(&self, seq: u64) -> u64 {
        self.pub_start + (seq as f64 * 1e9 / self.cfg.scenario.rate) as u64
    }

    /// Write message `seq` stamped with `t` on publisher `key`. False if the connection was
    /// not usable (it is then skipped, not retried).
    pub(super) fn send_message(&mut self, key: usize, seq: u64, t: u64) -> bool {
        let channels = self.cfg.scenario.channels;
        let chan = (seq % u64::from(channels)) as u32;
        let Some(Slot::Http(c)) = self.slots.get_mut(key) else {
            return false;
        };
        if c.state != HttpState::Ready || c.inflight != Inflight::Idle {
            return false;
        }
        match &mut self.pusher {
            Some(p) => p.write_into(&mut c.wbuf, chan, t, seq, sys::unix_secs()),
            None => self.tpl.write_into(&mut c.wbuf, chan, t, seq),
        }
        c.wpos = 0;
        c.inflight = Inflight::Message {
            seq,
            chan,
            sent_ns: sys::now_ns().saturating_sub(self.epoch),
        };
        let flushed = flush_pos(&mut c.stream, &c.wbuf, &mut c.wpos);
        if self.cfg.scenario.subs > 0 {
            self.stats.msgs.push(MsgRec::default());
        }
        self.stats.sent += 1;
        if let Err(e) = flushed {
            self.http_died(key, format!("write: {e}"));
            self.reap(key);
        }
        true
    }
}
