//! Two dialects on one reactor and one port: `Pair<A, B>` is itself a `Dialect`.
//!
//! Each request goes to `A` if `A` claims it (`Dialect::claims`, typically by path), else to
//! `B`; a websocket stays with the dialect that accepted it (its state is `Either::First` or
//! `Either::Second`); inbox messages carry their side; timers and shutdown go to both. Each
//! side sees an `Outbox` of its own message type, so neither knows it is paired, and counters
//! are numbered `A`'s first, then `B`'s. Pairs nest: `Pair<A, Pair<B, C>>` serves three.

use super::{CounterDef, Dialect, InboxFull, Outbox, Request, RequestAction, Response, WsMessage};
use crate::ids::{ReqRef, ShardId, SockRef};
use crate::proto::ws::CloseCode;
use bytes::Bytes;
use std::time::Instant;

/// One of two.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Either<L, R> {
    /// The first dialect's.
    First(L),
    /// The second dialect's.
    Second(R),
}

/// Two dialects served together; `first` gets the requests it claims.
pub struct Pair<A, B> {
    /// Tried first.
    pub first: A,
    /// Serves what `first` does not claim.
    pub second: B,
    /// `A`'s number of counters: `B`'s are numbered after them.
    offset: usize,
}

impl<A: Dialect, B: Dialect> Pair<A, B> {
    /// Serve `first` and `second` together.
    pub fn new(first: A, second: B) -> Self {
        Pair {
            first,
            second,
            offset: A::counters().len(),
        }
    }
}

/// One side's view of the pair's outbox.
struct Side<'a, 'o, M, O> {
    out: &'a mut (dyn Outbox<M> + 'o),
    wrap: fn(O) -> M,
    offset: usize,
}

impl<M, O> Outbox<O> for Side<'_, '_, M, O> {
    fn shard(&self) -> ShardId {
        self.out.shard()
    }
    fn reply(&mut self, req: ReqRef, response: Response) {
        self.out.reply(req, response);
    }
    fn deliver(&mut self, frame: &Bytes, to: &[SockRef]) {
        self.out.deliver(frame, to);
    }
    fn close(&mut self, sock: SockRef, code: CloseCode) {
        self.out.close(sock, code);
    }
    fn send(&mut self, to: ShardId, msg: O) -> Result<(), InboxFull> {
        self.out.send(to, (self.wrap)(msg))
    }
    fn set_counter(&mut self, index: usize, value: u64) {
        self.out.set_counter(self.offset + index, value);
    }
    fn metrics_text(&self) -> String {
        self.out.metrics_text()
    }
}

type PairMsg<A, B> = Either<<A as Dialect>::Msg, <B as Dialect>::Msg>;

impl<A: Dialect, B: Dialect> Pair<A, B> {
    fn first_side<'a, 'o>(
        out: &'a mut (dyn Outbox<PairMsg<A, B>> + 'o),
    ) -> Side<'a, 'o, PairMsg<A, B>, A::Msg> {
        Side {
            out,
            wrap: Either::First,
            offset: 0,
        }
    }

    fn second_side<'a, 'o>(
        &self,
        out: &'a mut (dyn Outbox<PairMsg<A, B>> + 'o),
    ) -> Side<'a, 'o, PairMsg<A, B>, B::Msg> {
        Side {
            out,
            wrap: Either::Second,
            offset: self.offset,
        }
    }
}

impl<A: Dialect, B: Dialect> Dialect for Pair<A, B> {
    type Msg = PairMsg<A, B>;
    type Ws = Either<A::Ws, B::Ws>;

    fn counters() -> Vec<CounterDef> {
        let mut all = A::counters();
        all.extend(B::counters());
        all
    }

    fn claims(&self, req: &Request<'_>) -> bool {
        self.first.claims(req) || self.second.claims(req)
    }

    fn on_request(
        &mut self,
        out: &mut dyn Outbox<Self::Msg>,
        req: &Request<'_>,
    ) -> RequestAction<Self::Ws> {
        if self.first.claims(req) {
            let mut side = Self::first_side(out);
            self.first.on_request(&mut side, req).map_ws(Either::First)
        } else {
            let mut side = self.second_side(out);
            self.second
                .on_request(&mut side, req)
                .map_ws(Either::Second)
        }
    }

    fn on_ws_open(
        &mut self,
        out: &mut dyn Outbox<Self::Msg>,
        sock: SockRef,
        ws: &mut Self::Ws,
    ) -> Result<(), CloseCode> {
        match ws {
            Either::First(w) => self.first.on_ws_open(&mut Self::first_side(out), sock, w),
            Either::Second(w) => {
                let mut side = self.second_side(out);
                self.second.on_ws_open(&mut side, sock, w)
            }
        }
    }

    fn on_ws_message(
        &mut self,
        out: &mut dyn Outbox<Self::Msg>,
        sock: SockRef,
        ws: &mut Self::Ws,
        msg: WsMessage<'_>,
        now: Instant,
    ) {
        match ws {
            Either::First(w) => {
                self.first
                    .on_ws_message(&mut Self::first_side(out), sock, w, msg, now)
            }
            Either::Second(w) => {
                let mut side = self.second_side(out);
                self.second.on_ws_message(&mut side, sock, w, msg, now)
            }
        }
    }

    fn on_ws_closed(&mut self, out: &mut dyn Outbox<Self::Msg>, sock: SockRef, ws: Self::Ws) {
        match ws {
            Either::First(w) => self.first.on_ws_closed(&mut Self::first_side(out), sock, w),
            Either::Second(w) => {
                let mut side = self.second_side(out);
                self.second.on_ws_closed(&mut side, sock, w)
            }
        }
    }

    fn on_message(&mut self, out: &mut dyn Outbox<Self::Msg>, msg: Self::Msg) {
        match msg {
            Either::First(m) => self.first.on_message(&mut Self::first_side(out), m),
            Either::Second(m) => {
                let mut side = self.second_side(out);
                self.second.on_message(&mut side, m)
            }
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        match (self.first.next_deadline(), self.second.next_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn on_timer(&mut self, out: &mut dyn Outbox<Self::Msg>, now: Instant) {
        if self.first.next_deadline().is_some_and(|d| d <= now) {
            self.first.on_timer(&mut Self::first_side(out), now);
        }
        if self.second.next_deadline().is_some_and(|d| d <= now) {
            let mut side = self.second_side(out);
            self.second.on_timer(&mut side, now);
        }
    }

    fn on_shutdown(&mut self, out: &mut dyn Outbox<Self::Msg>) {
        self.first.on_shutdown(&mut Self::first_side(out));
        let mut side = self.second_side(out);
        self.second.on_shutdown(&mut side);
    }

    fn shutdown_close(&self, ws: &Self::Ws) -> CloseCode {
        match ws {
            Either::First(w) => self.first.shutdown_close(w),
            Either::Second(w) => self.second.shutdown_close(w),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialect::WsRole;
    use crate::proto::http::{parse_head, ParseLimits};

    /// A dialect that claims paths under `prefix`, upgrades every request, counts its calls
    /// in counter 0 and echoes messages to shard 1 as its own `Msg`.
    struct Toy {
        prefix: &'static [u8],
        seen: Vec<String>,
    }

    impl Dialect for Toy {
        type Msg = u8;
        type Ws = u8;
        fn counters() -> Vec<CounterDef> {
            vec![CounterDef {
                name: "toy_total",
                kind: "counter",
                help: "calls",
            }]
        }
        fn claims(&self, req: &Request<'_>) -> bool {
            req.path().starts_with(self.prefix)
        }
        fn on_request(&mut self, out: &mut dyn Outbox<u8>, req: &Request<'_>) -> RequestAction<u8> {
            self.seen
                .push(String::from_utf8_lossy(req.path()).into_owned());
            out.set_counter(0, 1);
            let _ = out.send(ShardId(1), 7);
            RequestAction::Upgrade {
                accept: String::new(),
                role: Some(WsRole::Dialect(self.prefix.len() as u8)),
            }
        }
        fn on_ws_open(
            &mut self,
            _: &mut dyn Outbox<u8>,
            _: SockRef,
            _: &mut u8,
        ) -> Result<(), CloseCode> {
            Ok(())
        }
        fn on_ws_message(
            &mut self,
            _: &mut dyn Outbox<u8>,
            _: SockRef,
            w: &mut u8,
            _: WsMessage<'_>,
            _: Instant,
        ) {
            self.seen.push(format!("ws {w}"));
        }
        fn on_ws_closed(&mut self, _: &mut dyn Outbox<u8>, _: SockRef, _: u8) {}
        fn on_message(&mut self, _: &mut dyn Outbox<u8>, m: u8) {
            self.seen.push(format!("msg {m}"));
        }
        fn next_deadline(&self) -> Option<Instant> {
            None
        }
        fn on_timer(&mut self, _: &mut dyn Outbox<u8>, _: Instant) {}
        fn on_shutdown(&mut self, _: &mut dyn Outbox<u8>) {}
    }

    #[derive(Default)]
    struct Recorder {
        sent: Vec<Either<u8, u8>>,
        counters: Vec<usize>,
    }

    impl Outbox<Either<u8, u8>> for Recorder {
        fn shard(&self) -> ShardId {
            ShardId(0)
        }
        fn reply(&mut self, _: ReqRef, _: Response) {}
        fn deliver(&mut self, _: &Bytes, _: &[SockRef]) {}
        fn close(&mut self, _: SockRef, _: CloseCode) {}
        fn send(&mut self, _: ShardId, msg: Either<u8, u8>) -> Result<(), InboxFull> {
            self.sent.push(msg);
            Ok(())
        }
        fn set_counter(&mut self, index: usize, _: u64) {
            self.counters.push(index);
        }
        fn metrics_text(&self) -> String {
            String::new()
        }
    }

    fn ws_state(pair: &mut Pair<Toy, Toy>, out: &mut Recorder, path: &str) -> Either<u8, u8> {
        let raw = format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n");
        let limits = ParseLimits {
            max_head: 4096,
            max_headers: 16,
            max_body: 0,
        };
        let (head, _) = parse_head(raw.as_bytes(), &limits).unwrap().unwrap();
        let req = Request {
            head: &head,
            buf: raw.as_bytes(),
            body: &[],
            peer: "127.0.0.1".parse().unwrap(),
            now_unix: 0,
            secure: false,
            at: ReqRef::new(0, 0, 0),
        };
        match pair.on_request(out, &req) {
            RequestAction::Upgrade {
                role: Some(WsRole::Dialect(w)),
                ..
            } => w,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn routes_by_claim_and_keeps_each_side_apart() {
        let toy = |prefix| Toy {
            prefix,
            seen: vec![],
        };
        let mut pair = Pair::new(toy(b"/app/"), toy(b"/"));
        assert_eq!(
            Pair::<Toy, Toy>::counters()
                .iter()
                .map(|c| c.name)
                .collect::<Vec<_>>(),
            ["toy_total", "toy_total"]
        );
        let mut out = Recorder::default();
        let mut a = ws_state(&mut pair, &mut out, "/app/key");
        let mut b = ws_state(&mut pair, &mut out, "/ws");
        assert_eq!((a, b), (Either::First(5), Either::Second(1)));
        // Messages sent by each side are tagged with it; counters are numbered A's first.
        assert_eq!(out.sent, [Either::First(7), Either::Second(7)]);
        assert_eq!(out.counters, [0, 1]);
        let sock = SockRef::new(0, 1, 1);
        let now = Instant::now();
        pair.on_ws_message(&mut out, sock, &mut a, WsMessage::Text(b"x"), now);
        pair.on_ws_message(&mut out, sock, &mut b, WsMessage::Text(b"x"), now);
        pair.on_message(&mut out, Either::Second(9));
        assert_eq!(pair.first.seen, ["/app/key", "ws 5"]);
        assert_eq!(pair.second.seen, ["/ws", "ws 1", "msg 9"]);
    }
}
