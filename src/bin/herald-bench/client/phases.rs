//! The run's phase machine (Connecting, Settling, Measuring, Draining, Done): when each phase
//! ends, the connect-timeout diagnosis, and the measurement window's CPU and RSS snapshots.

use super::*;

impl Engine<'_> {
    pub(super) fn advance_phase(&mut self, now: u64) {
        let sc = self.cfg.scenario;
        match self.phase {
            Phase::Connecting => {
                let subs_done = self.stats.subs_open + self.stats.subs_failed >= sc.subs
                    && self.stats.churners_open + self.stats.churners_failed >= sc.churners;
                // The slab scan runs only once subscribers are done, not on every iteration
                // of a 10,000-subscriber connect phase.
                let pubs_ready = subs_done
                    && self.slots.iter().all(|(_, s)| match s {
                        Slot::Http(c) => {
                            c.role != Role::Publisher || c.state != HttpState::Connecting
                        }
                        Slot::Sub(_) => true,
                    });
                let timed_out =
                    now.saturating_sub(self.connect_start) > secs_ns(self.cfg.connect_timeout_s);
                if (subs_done && pubs_ready) || timed_out {
                    if timed_out && !subs_done {
                        let missing = sc
                            .subs
                            .saturating_sub(self.stats.subs_open + self.stats.subs_failed);
                        let stuck = self.stuck_summary();
                        self.stats.error(format!(
                            "connect timeout: {missing} subscribers not connected ({stuck})"
                        ));
                        self.stats.subs_failed += missing;
                    }
                    self.connect_end = now;
                    self.phase = Phase::Settling {
                        until: now + if sc.subs > 0 { SETTLE_NS } else { 50_000_000 },
                    };
                }
            }
            Phase::Settling { until } if now >= until => {
                self.rss_after = self.cfg.server_pid.and_then(sys::read_vmrss_kib);
                self.open_window(now);
                self.pub_start = now;
                self.phase = Phase::Measuring {
                    until: now + secs_ns(sc.duration_s),
                };
                self.pump_publishers(now);
            }
            Phase::Measuring { until } if now >= until => {
                self.close_window(now);
                self.phase = match sc.mode {
                    Mode::Idle => Phase::Done,
                    _ => Phase::Draining {
                        until: now + secs_ns(sc.drain_s),
                    },
                };
            }
            Phase::Draining { until } => {
                let in_flight = self.slots.iter().any(|(_, s)| {
                    matches!(s, Slot::Http(c) if matches!(c.inflight, Inflight::Message { .. }) && c.state == HttpState::Ready)
                });
                let all_delivered = self.stats.deliveries >= self.stats.expected
                    && self.stats.member_events >= self.stats.member_expected;
                if now >= until || (!in_flight && all_delivered) {
                    self.phase = Phase::Done;
                }
            }
            _ => {}
        }
    }

    /// Where unfinished subscribers are stuck, for the connect-timeout message.
    pub(super) fn stuck_summary(&self) -> String {
        let (mut tcp, mut ws, mut connect) = (0u32, 0u32, 0u32);
        for (_, slot) in &self.slots {
            match slot {
                Slot::Sub(s) if s.state == SubState::Connecting => tcp += 1,
                Slot::Sub(s) if s.state == SubState::Handshake => ws += 1,
                Slot::Http(c) if matches!(c.inflight, Inflight::Connect { .. }) => connect += 1,
                _ => {}
            }
        }
        let unsent = self.cfg.scenario.subs.saturating_sub(self.next_sub);
        format!(
            "{connect} awaiting a /connect reply, {tcp} in TCP connect, {ws} awaiting 101, \
             {unsent} never started; a server listen backlog below --connect-concurrency \
             overflows (see nstat TcpExtListenOverflows)"
        )
    }

    pub(super) fn open_window(&mut self, now: u64) {
        self.window_start = now;
        self.cores_start = sys::read_core_times();
        self.self_cpu_start = sys::self_cpu_us();
        self.proc_ticks_start = self.cfg.server_pid.and_then(sys::read_proc_cpu_ticks);
    }

    pub(super) fn close_window(&mut self, now: u64) {
        if self.window_end != 0 {
            return;
        }
        self.window_end = now.max(self.window_start + 1);
        self.cores_end = sys::read_core_times();
        self.self_cpu_end = sys::self_cpu_us();
        self.proc_ticks_end = self.cfg.server_pid.and_then(sys::read_proc_cpu_ticks);
    }
}
