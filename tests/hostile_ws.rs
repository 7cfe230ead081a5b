//! Hostile clients, table 2 (Herald issue 7): websocket upgrades and frames — bad
//! handshakes, masking, opcodes, fragmentation, control frames, sizes, close codes — each with
//! its exact answer, against one shared server while healthy clients stay connected (see
//! `common::hostile`).

mod common;
use common::hostile::*;
use common::*;

// Table 2: websocket upgrades and frames

fn ws_cases() -> Vec<Case> {
    let mut v = Vec::new();
    let upgrade = |extra: &str, version: &str, key: &str| {
        format!(
            "GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n{extra}Sec-WebSocket-Version: {version}\r\nSec-WebSocket-Key: {key}\r\n\r\n"
        )
        .into_bytes()
    };
    const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
    const BAD_KEY: Expect = Expect::Fatal(400, "missing or invalid Sec-WebSocket-Key");
    const NOT_UPGRADE: Expect = Expect::Fatal(426, "not a websocket upgrade");
    const BAD_VERSION: Expect = Expect::Fatal(426, "unsupported Sec-WebSocket-Version");

    // Upgrades.
    let mut add_raw = |name: &str, bytes: Vec<u8>, e: Expect| {
        v.push(case(format!("upgrade: {name}"), Input::Raw(bytes), e))
    };
    add_raw(
        "missing key",
        b"GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n".to_vec(),
        BAD_KEY,
    );
    add_raw(
        "key of 23 characters",
        upgrade("", "13", &KEY[1..]),
        BAD_KEY,
    );
    add_raw(
        "key of 24 characters that is not base64",
        upgrade("", "13", "!!!!!!!!!!!!!!!!!!!!!!!!"),
        BAD_KEY,
    );
    add_raw(
        "key decoding to 17 bytes",
        upgrade("", "13", "AAAAAAAAAAAAAAAAAAAAAAAA"),
        BAD_KEY,
    );
    add_raw("version 12", upgrade("", "12", KEY), BAD_VERSION);
    add_raw(
        "version 99999999999999999999",
        upgrade("", "99999999999999999999", KEY),
        BAD_VERSION,
    );
    add_raw(
        "no Connection: Upgrade",
        b"GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n".to_vec(),
        NOT_UPGRADE,
    );
    add_raw(
        "Upgrade: h2c instead of websocket",
        b"GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: h2c\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n".to_vec(),
        NOT_UPGRADE,
    );
    add_raw(
        "upgrade over HTTP/1.0",
        b"GET /echo HTTP/1.0\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n".to_vec(),
        NOT_UPGRADE,
    );
    add_raw(
        "upgrade with POST",
        b"POST /echo HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nContent-Length: 0\r\n\r\n".to_vec(),
        NOT_UPGRADE,
    );
    add_raw(
        "plain GET on /ws",
        b"GET /ws HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        NOT_UPGRADE,
    );

    // Channelstream /ws conn_ids (spec §5.11): the handshake completes before the id is read.
    let mut add_up = |name: &str, path: String, e: Expect| {
        v.push(case(format!("/ws: {name}"), Input::Upgrade(path), e))
    };
    add_up(
        "no conn_id: dropped without a close frame",
        "/ws".into(),
        Expect::Dropped,
    );
    add_up(
        "garbage conn_id: dropped without a close frame",
        "/ws?conn_id=garbage".into(),
        Expect::Dropped,
    );
    add_up(
        "4 KB conn_id: dropped without a close frame",
        format!("/ws?conn_id={}", "f".repeat(4000)),
        Expect::Dropped,
    );
    add_up(
        "unknown well-formed conn_id: close 1000",
        format!("/ws?conn_id={}", uuid::Uuid::new_v4()),
        Expect::Close(1000),
    );
    v.push(case(
        "/ws: version 8 is accepted, as by ws4py (unknown conn_id: close 1000)",
        Input::UpgradeRaw(cs_upgrade(
            &uuid::Uuid::new_v4().to_string(),
            "8",
            "Host: x\r\n",
        )),
        Expect::Close(1000),
    ));

    // Frames on the echo route (RFC 6455 §5, §7.4; README: 1002 / 1007 / 1009).
    let f = ws_frame;
    let mut add = |name: &str, bytes: Vec<u8>, e: Expect| {
        v.push(case(format!("frame: {name}"), Input::Frames(bytes), e))
    };
    add(
        "unmasked text frame",
        f(true, 1, b"unmasked", false),
        Expect::Close(1002),
    );
    add(
        "RSV1 without an extension",
        vec![0xC1, 0x80, 1, 2, 3, 4],
        Expect::Close(1002),
    );
    add("RSV2", vec![0xA1, 0x80, 1, 2, 3, 4], Expect::Close(1002));
    add("RSV3", vec![0x91, 0x80, 1, 2, 3, 4], Expect::Close(1002));
    add(
        "reserved data opcode 3",
        f(true, 3, b"", true),
        Expect::Close(1002),
    );
    add(
        "reserved data opcode 7",
        f(true, 7, b"x", true),
        Expect::Close(1002),
    );
    add(
        "reserved control opcode 0xB",
        f(true, 0xB, b"", true),
        Expect::Close(1002),
    );
    add(
        "reserved control opcode 0xF",
        f(true, 0xF, b"x", true),
        Expect::Close(1002),
    );
    add(
        "invalid UTF-8 text",
        f(true, 1, &[0xff, 0xfe], true),
        Expect::Close(1007),
    );
    add(
        "overlong UTF-8 encoding of '/'",
        f(true, 1, &[0xc0, 0xaf], true),
        Expect::Close(1007),
    );
    add(
        "UTF-16 surrogate encoded in UTF-8",
        f(true, 1, &[0xed, 0xa0, 0x80], true),
        Expect::Close(1007),
    );
    add(
        "code point above U+10FFFF",
        f(true, 1, &[0xf4, 0x90, 0x80, 0x80], true),
        Expect::Close(1007),
    );
    add(
        "invalid UTF-8 split across fragments",
        [f(false, 1, b"ok \xe2\x82", true), f(true, 0, b"\x28", true)].concat(),
        Expect::Close(1007),
    );
    add(
        "truncated UTF-8 at the end of a message",
        f(true, 1, b"snow \xe2\x98", true),
        Expect::Close(1007),
    );
    add(
        "invalid UTF-8 in a close reason",
        f(true, 8, &[0x03, 0xe8, 0xff], true),
        Expect::Close(1007),
    );
    add(
        "ping of 126 bytes (control frames max 125)",
        f(true, 9, &[b'p'; 126], true),
        Expect::Close(1002),
    );
    add(
        "close of 126 bytes",
        f(
            true,
            8,
            &[[0x03, 0xe8].as_slice(), &[b'r'; 124]].concat(),
            true,
        ),
        Expect::Close(1002),
    );
    add(
        "fragmented ping",
        f(false, 9, b"x", true),
        Expect::Close(1002),
    );
    add(
        "close with a 1-byte payload",
        f(true, 8, &[0x03], true),
        Expect::Close(1002),
    );
    add(
        "close code 1005 (reserved, never on the wire)",
        f(true, 8, &1005u16.to_be_bytes(), true),
        Expect::Close(1002),
    );
    add(
        "close code 999",
        f(true, 8, &999u16.to_be_bytes(), true),
        Expect::Close(1002),
    );
    add(
        "continuation without a start",
        f(true, 0, b"x", true),
        Expect::Close(1002),
    );
    add(
        "new text message inside a fragmented one",
        [f(false, 1, b"a", true), f(true, 1, b"b", true)].concat(),
        Expect::Close(1002),
    );
    add(
        "64-bit length with the top bit set",
        {
            let mut b = vec![0x82, 0xFF];
            b.extend_from_slice(&(1u64 << 63).to_be_bytes());
            b.extend_from_slice(&[1, 2, 3, 4]);
            b
        },
        Expect::Close(1002),
    );
    add(
        "declared 2^62-byte message",
        {
            let mut b = vec![0x82, 0xFF];
            b.extend_from_slice(&(1u64 << 62).to_be_bytes());
            b.extend_from_slice(&[1, 2, 3, 4]);
            b
        },
        Expect::Close(1009),
    );
    add(
        "one frame one byte past the message limit",
        f(true, 2, &vec![0u8; MAX_WS_MESSAGE + 1], true),
        Expect::Close(1009),
    );
    add(
        "fragments summing past the message limit",
        (0..=MAX_WS_MESSAGE / 1024)
            .map(|i| f(false, if i == 0 { 2 } else { 0 }, &[7u8; 1024], true))
            .collect::<Vec<_>>()
            .concat(),
        Expect::Close(1009),
    );

    // Storms that are legal: the exact message comes back.
    add(
        "storm of 20,000 empty continuation fragments",
        {
            let mut b = f(false, 1, b"start", true);
            for _ in 0..20_000 {
                b.extend(f(false, 0, b"", true));
            }
            b.extend(f(true, 0, b"-end", true));
            b
        },
        Expect::Frames(vec![(1, b"start-end".to_vec())]),
    );
    add(
        "a message in 8,000 one-byte fragments",
        {
            let text: Vec<u8> = (0..8000u32).map(|i| b'a' + (i % 26) as u8).collect();
            let mut b = Vec::new();
            for (i, byte) in text.iter().enumerate() {
                let op = if i == 0 { 1 } else { 0 };
                b.extend(f(i == text.len() - 1, op, &[*byte], true));
            }
            b
        },
        Expect::Frames(vec![(
            1,
            (0..8000u32).map(|i| b'a' + (i % 26) as u8).collect(),
        )]),
    );
    add(
        "1,000 pings between two fragments, each answered in order",
        {
            let mut b = f(false, 1, b"he", true);
            for i in 0..1000u32 {
                b.extend(f(true, 9, &i.to_be_bytes(), true));
            }
            b.extend(f(true, 0, b"llo", true));
            b
        },
        Expect::Frames(
            (0..1000u32)
                .map(|i| (0xA, i.to_be_bytes().to_vec()))
                .chain([(1, b"hello".to_vec())])
                .collect(),
        ),
    );
    add(
        "binary frame with bytes that are not UTF-8 is fine",
        f(true, 2, &[0xff, 0xfe, 0x00, 0xc0], true),
        Expect::Frames(vec![(2, vec![0xff, 0xfe, 0x00, 0xc0])]),
    );
    add(
        "unsolicited pong is ignored",
        [f(true, 0xA, b"unasked", true), f(true, 1, b"after", true)].concat(),
        Expect::Frames(vec![(1, b"after".to_vec())]),
    );
    add(
        "client close 4000 is echoed",
        f(true, 8, &4000u16.to_be_bytes(), true),
        Expect::Close(4000),
    );
    add(
        "frames after the client's close are ignored",
        [
            f(true, 8, &1000u16.to_be_bytes(), true),
            f(true, 1, b"too late", true),
        ]
        .concat(),
        Expect::Close(1000),
    );

    // Bytes pipelined behind the upgrade request, in the same write.
    v.push(case(
        "upgrade: a frame in the same packet as the upgrade is echoed",
        Input::UpgradeRaw([upgrade_request("/echo"), ws_frame(true, 1, b"early", true)].concat()),
        Expect::Frames(vec![(1, b"early".to_vec())]),
    ));
    v.push(case(
        "upgrade: an HTTP request pipelined behind the upgrade is a protocol error",
        Input::UpgradeRaw([upgrade_request("/echo"), b"GET / HTTP/1.1\r\n\r\n".to_vec()].concat()),
        Expect::Close(1002),
    ));
    v.push(case(
        "upgrade: a request body is consumed before the websocket starts",
        Input::UpgradeRaw(
            [
                b"GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nContent-Length: 5\r\n\r\nhello".to_vec(),
                ws_frame(true, 1, b"after body", true),
            ]
            .concat(),
        ),
        Expect::Frames(vec![(1, b"after body".to_vec())]),
    ));

    // The same protocol rules on real Channelstream sockets (the model is told of each close).
    let mut cs = |name: &str, bytes: Vec<u8>, e: Expect| {
        v.push(case(
            format!("Channelstream socket: {name}"),
            Input::CsFrames(bytes),
            e,
        ))
    };
    cs(
        "unmasked frame",
        ws_frame(true, 1, b"x", false),
        Expect::Close(1002),
    );
    cs(
        "invalid UTF-8",
        ws_frame(true, 1, &[0xc3, 0x28], true),
        Expect::Close(1007),
    );
    cs(
        "message past the limit",
        ws_frame(true, 1, &vec![b'j'; MAX_WS_MESSAGE + 1], true),
        Expect::Close(1009),
    );
    cs(
        "reserved opcode",
        ws_frame(true, 0xC, b"", true),
        Expect::Close(1002),
    );
    cs(
        "text that is not JSON is accepted and ignored (spec §5.11)",
        [
            ws_frame(true, 1, b"this is not json", true),
            ws_frame(true, 1, br#"{"type": "heartbeat"}"#, true),
            ws_frame(true, 9, b"cs-ping", true),
        ]
        .concat(),
        Expect::Frames(vec![(0xA, b"cs-ping".to_vec())]),
    );
    cs(
        "binary frames are ignored",
        [
            ws_frame(true, 2, &[0, 1, 2, 0xff], true),
            ws_frame(true, 9, b"p2", true),
        ]
        .concat(),
        Expect::Frames(vec![(0xA, b"p2".to_vec())]),
    );
    cs(
        "client close 1000 is answered 1000",
        ws_frame(true, 8, &1000u16.to_be_bytes(), true),
        Expect::Close(1000),
    );
    v
}

/// An upgrade of `/ws?conn_id=<id>` with this version and extra header lines (e.g. `Host`).
fn cs_upgrade(id: &str, version: &str, extra: &str) -> Vec<u8> {
    format!(
        "GET /ws?conn_id={id} HTTP/1.1\r\n{extra}Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: {version}\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
    .into_bytes()
}

// Table 2, strict mode (README "Strict mode"): version 13 only (426 with
// `Sec-WebSocket-Version: 13`), and a close frame 4404 for a conn_id that is missing,
// malformed, nil or unknown instead of a dropped TCP connection or 0.7.1's 1000.
fn strict_ws_cases() -> Vec<Case> {
    let mut v = Vec::new();
    let bad_version = || {
        Expect::WithHeader(
            "Sec-WebSocket-Version",
            "13",
            Box::new(Expect::Fatal(426, "unsupported Sec-WebSocket-Version")),
        )
    };
    let unknown = uuid::Uuid::new_v4().to_string();
    for version in ["8", "12", "13, 8", ""] {
        v.push(case(
            format!("/ws: version {version:?}: 426"),
            Input::Raw(cs_upgrade(&unknown, version, "Host: x\r\n")),
            bad_version(),
        ));
    }
    v.push(case(
        "/echo: version 8: 426",
        Input::Raw(
            b"GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 8\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n".to_vec(),
        ),
        bad_version(),
    ));
    v.push(case(
        "/ws without Host: 400",
        Input::Raw(cs_upgrade(&unknown, "13", "")),
        Expect::Fatal(400, "malformed request: missing Host header"),
    ));
    for (name, path) in [
        ("no conn_id", "/ws".to_string()),
        ("empty conn_id", "/ws?conn_id=".to_string()),
        ("garbage conn_id", "/ws?conn_id=garbage".to_string()),
        ("4 KB conn_id", format!("/ws?conn_id={}", "f".repeat(4000))),
        ("nil conn_id", format!("/ws?conn_id={}", uuid::Uuid::nil())),
        ("unknown conn_id", format!("/ws?conn_id={unknown}")),
    ] {
        v.push(case(
            format!("/ws: {name}: close 4404"),
            Input::Upgrade(path),
            Expect::Close(4404),
        ));
    }
    v.push(case(
        "/ws: a known conn_id still gets its frames",
        Input::CsFrames(ws_frame(true, 9, b"p", true)),
        Expect::Frames(vec![(0xA, b"p".to_vec())]),
    ));
    v
}

#[test]
fn hostile_websocket_strict() {
    let cases = strict_ws_cases();
    assert!(cases.len() >= 12, "{}", cases.len());
    run_strict_table(cases);
}

#[test]
fn hostile_websocket() {
    let cases = ws_cases();
    assert!(cases.len() >= 45, "{}", cases.len());
    run_table(cases);
}
