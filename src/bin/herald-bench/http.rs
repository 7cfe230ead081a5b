//! Just enough HTTP/1.1 client for the Channelstream API: build `/connect`, `/ws` and `/message`
//! requests, and frame responses (head via `httparse`, body by Content-Length or chunked).
//!
//! The publish path is the hot one: a [`MessageTemplate`] is built once per run (and again only
//! when the signature token changes), and each publish copies it into the connection's retained
//! write buffer and patches fixed-width digit fields in place — no formatting, no allocation.

use std::fmt::Write as _;

/// Width of the `t` and `s` number fields in the payload. Numbers are written left-aligned and
/// space-padded (JSON allows whitespace before `,`), so the body length never changes.
const NUM_WIDTH: usize = 20;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    #[error("malformed response head: {0}")]
    Head(&'static str),
    #[error("bad Content-Length")]
    ContentLength,
    #[error("malformed chunked body")]
    Chunked,
    #[error("response without a length (close-delimited bodies are not supported)")]
    NoLength,
}

/// How the body of a response is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyLen {
    Fixed(usize),
    Chunked,
}

/// A complete response in a buffer: status, where the raw body lies, total bytes to consume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub body_start: usize,
    pub body_len: BodyLen,
    /// Head plus raw (possibly chunk-encoded) body.
    pub total_len: usize,
    /// The server said `Connection: close` (sockudo does on every HTTP API answer).
    pub close: bool,
}

/// Parse a response head only (for the `101 Switching Protocols` of `/ws`, where whatever
/// follows the head is websocket frames). Returns status and head length.
pub fn parse_head(buf: &[u8]) -> Result<Option<(u16, usize)>, HttpError> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut headers);
    match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => Ok(Some((resp.code.unwrap_or(0), n))),
        Ok(httparse::Status::Partial) => Ok(None),
        Err(_) => Err(HttpError::Head("httparse rejected it")),
    }
}

/// Parse one complete response (head and body). `Ok(None)` = incomplete.
pub fn parse_response(buf: &[u8]) -> Result<Option<Response>, HttpError> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut headers);
    let head_len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(HttpError::Head("httparse rejected it")),
    };
    let status = resp.code.unwrap_or(0);
    let mut body_len = None;
    let close = resp.headers.iter().any(|h| {
        h.name.eq_ignore_ascii_case("connection")
            && h.value.windows(5).any(|w| w.eq_ignore_ascii_case(b"close"))
    });
    for h in resp.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            let n = std::str::from_utf8(h.value)
                .ok()
                .and_then(|s| s.trim().parse::<usize>().ok())
                .ok_or(HttpError::ContentLength)?;
            body_len = Some(BodyLen::Fixed(n));
        } else if h.name.eq_ignore_ascii_case("transfer-encoding")
            && h.value
                .windows(7)
                .any(|w| w.eq_ignore_ascii_case(b"chunked"))
        {
            // Chunked wins over Content-Length (RFC 9112 §6.3).
            body_len = Some(BodyLen::Chunked);
            break;
        }
    }
    let body_len = match body_len {
        Some(b) => b,
        // 1xx, 204 and 304 never have a body.
        None if status < 200 || status == 204 || status == 304 => BodyLen::Fixed(0),
        None => return Err(HttpError::NoLength),
    };
    let rest = buf.get(head_len..).unwrap_or_default();
    let raw = match body_len {
        BodyLen::Fixed(n) if rest.len() >= n => n,
        BodyLen::Fixed(_) => return Ok(None),
        BodyLen::Chunked => match chunked_extent(rest)? {
            Some(n) => n,
            None => return Ok(None),
        },
    };
    Ok(Some(Response {
        status,
        body_start: head_len,
        body_len,
        total_len: head_len + raw,
        close,
    }))
}

/// Length of a complete chunked body (through the final CRLF), or `Ok(None)` if incomplete.
/// Trailers are not supported (no server on the Channelstream path sends them).
pub fn chunked_extent(buf: &[u8]) -> Result<Option<usize>, HttpError> {
    let mut pos = 0usize;
    loop {
        let Some(line_end) = find_crlf(buf.get(pos..).unwrap_or_default()) else {
            return Ok(None);
        };
        let line = buf.get(pos..pos + line_end).ok_or(HttpError::Chunked)?;
        // Chunk extensions (`;name=value`) are ignored.
        let hex = line.split(|&b| b == b';').next().unwrap_or_default();
        let hex = std::str::from_utf8(hex)
            .map_err(|_| HttpError::Chunked)?
            .trim();
        let size = usize::from_str_radix(hex, 16).map_err(|_| HttpError::Chunked)?;
        pos = pos.checked_add(line_end + 2).ok_or(HttpError::Chunked)?;
        if size == 0 {
            return match buf.get(pos..pos + 2) {
                Some(b"\r\n") => Ok(Some(pos + 2)),
                Some(_) => Err(HttpError::Chunked),
                None => Ok(None),
            };
        }
        let next = pos
            .checked_add(size)
            .and_then(|p| p.checked_add(2))
            .ok_or(HttpError::Chunked)?;
        match buf.get(next - 2..next) {
            Some(b"\r\n") => pos = next,
            Some(_) => return Err(HttpError::Chunked),
            None => return Ok(None),
        }
    }
}

/// Concatenate the data of a complete chunked body (setup path only: `/connect` replies).
pub fn dechunk(buf: &[u8], out: &mut Vec<u8>) -> Result<(), HttpError> {
    let mut pos = 0usize;
    loop {
        let line_end = find_crlf(buf.get(pos..).unwrap_or_default()).ok_or(HttpError::Chunked)?;
        let line = buf.get(pos..pos + line_end).ok_or(HttpError::Chunked)?;
        let hex = line.split(|&b| b == b';').next().unwrap_or_default();
        let hex = std::str::from_utf8(hex)
            .map_err(|_| HttpError::Chunked)?
            .trim();
        let size = usize::from_str_radix(hex, 16).map_err(|_| HttpError::Chunked)?;
        pos += line_end + 2;
        if size == 0 {
            return Ok(());
        }
        out.extend_from_slice(buf.get(pos..pos + size).ok_or(HttpError::Chunked)?);
        pos += size + 2;
    }
}

fn find_crlf(b: &[u8]) -> Option<usize> {
    b.windows(2).position(|w| w == b"\r\n")
}

/// The decoded body of a complete response (allocates; setup path only).
pub fn body_bytes(buf: &[u8], resp: &Response) -> Result<Vec<u8>, HttpError> {
    let raw = buf
        .get(resp.body_start..resp.total_len)
        .ok_or(HttpError::Chunked)?;
    match resp.body_len {
        BodyLen::Fixed(_) => Ok(raw.to_vec()),
        BodyLen::Chunked => {
            let mut out = Vec::with_capacity(raw.len());
            dechunk(raw, &mut out)?;
            Ok(out)
        }
    }
}

/// Find the string value of `"key"` in a JSON object body, e.g. `conn_id` in the `/connect`
/// reply (pretty-printed by Channelstream). No JSON parse: the tool only needs this one field,
/// and a UUID contains no escapes.
pub fn find_string_field<'a>(body: &'a [u8], key: &str) -> Option<&'a [u8]> {
    let quoted = format!("\"{key}\"");
    let start = body
        .windows(quoted.len())
        .position(|w| w == quoted.as_bytes())?
        + quoted.len();
    let rest = body.get(start..)?;
    let colon = rest.iter().position(|&b| !b.is_ascii_whitespace())?;
    if rest.get(colon) != Some(&b':') {
        return None;
    }
    let rest = rest.get(colon + 1..)?;
    let q = rest.iter().position(|&b| !b.is_ascii_whitespace())?;
    if rest.get(q) != Some(&b'"') {
        return None;
    }
    let rest = rest.get(q + 1..)?;
    let end = rest.iter().position(|&b| b == b'"' || b == b'\\')?;
    (rest.get(end) == Some(&b'"'))
        .then(|| rest.get(..end))
        .flatten()
}

/// `POST /connect` for one subscriber of one channel. `info` switches history and user lists
/// off so a reply stays small even with 10,000 users in one channel (otherwise every reply
/// lists every user and the connect phase is O(n²) bytes).
pub fn connect_request(host: &str, token: Option<&str>, username: &str, channel: &str) -> Vec<u8> {
    let body = format!(
        "{{\"username\": \"{username}\", \"channels\": [\"{channel}\"], \
         \"info\": {{\"include_history\": false, \"include_users\": false}}}}"
    );
    let mut req = String::with_capacity(256 + body.len());
    let _ = write!(
        req,
        "POST /connect HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
         Accept: application/json\r\n"
    );
    if let Some(t) = token {
        let _ = write!(req, "X-Channelstream-Secret: {t}\r\n");
    }
    let _ = write!(req, "Content-Length: {}\r\n\r\n{body}", body.len());
    req.into_bytes()
}

/// `GET /ws?conn_id=` upgrade request. The key is the RFC's sample nonce: the tool does not
/// verify `Sec-WebSocket-Accept` (it measures a server, it does not defend against one).
/// `deflate`: offer permessage-deflate as browsers do.
pub fn ws_request(host: &str, conn_id: &str, deflate: bool) -> Vec<u8> {
    format!(
        "GET /ws?conn_id={conn_id} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n{}\r\n",
        offer(deflate)
    )
    .into_bytes()
}

/// The `Sec-WebSocket-Extensions` line a subscriber sends (or nothing).
pub fn offer(deflate: bool) -> &'static str {
    if deflate {
        "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
    } else {
        ""
    }
}

/// A prebuilt `POST /message` request with three fixed-width fields patched per publish:
/// the channel index, the intended send time `t` and the sequence number `s`.
///
/// Body: `[{"channel": "<prefix><index>", "user": "herald-bench",
///          "message": {"t": <t>, "s": <s>, "pad": "xxx…"}}]`
#[derive(Debug, Clone)]
pub struct MessageTemplate {
    pub bytes: Vec<u8>,
    chan_at: usize,
    chan_width: usize,
    t_at: usize,
    s_at: usize,
}

impl MessageTemplate {
    /// `size` is the target length of the serialized `message` object; the pad fills it up.
    pub fn new(
        host: &str,
        token: Option<&str>,
        chan_prefix: &str,
        channels: u32,
        size: usize,
    ) -> MessageTemplate {
        let chan_width = digits(channels.saturating_sub(1).into());
        let blank = " ".repeat(NUM_WIDTH);
        // `{"t": <20>, "s": <20>, "pad": ""}` is 58 bytes before any padding.
        let pad = "x".repeat(size.saturating_sub(18 + 2 * NUM_WIDTH));
        let pre_chan = format!("[{{\"channel\": \"{chan_prefix}");
        let pre_t = format!(
            "{}\", \"user\": \"herald-bench\", \"message\": {{\"t\": ",
            "0".repeat(chan_width)
        );
        let body = format!("{pre_chan}{pre_t}{blank}, \"s\": {blank}, \"pad\": \"{pad}\"}}}}]");
        let mut head = format!(
            "POST /message HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
             Accept: application/json\r\n"
        );
        if let Some(t) = token {
            let _ = write!(head, "X-Channelstream-Secret: {t}\r\n");
        }
        let _ = write!(head, "Content-Length: {}\r\n\r\n", body.len());
        let chan_at = head.len() + pre_chan.len();
        let t_at = chan_at + pre_t.len();
        let s_at = t_at + NUM_WIDTH + ", \"s\": ".len();
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(body.as_bytes());
        MessageTemplate {
            bytes,
            chan_at,
            chan_width,
            t_at,
            s_at,
        }
    }

    /// Copy the template into `out` (reusing its capacity) with the three fields filled in.
    pub fn write_into(&self, out: &mut Vec<u8>, chan: u32, t: u64, s: u64) {
        out.clear();
        out.extend_from_slice(&self.bytes);
        if let Some(f) = out.get_mut(self.chan_at..self.chan_at + self.chan_width) {
            write_zero_padded(f, chan.into());
        }
        if let Some(f) = out.get_mut(self.t_at..self.t_at + NUM_WIDTH) {
            write_left_aligned(f, t);
        }
        if let Some(f) = out.get_mut(self.s_at..self.s_at + NUM_WIDTH) {
            write_left_aligned(f, s);
        }
    }
}

/// Channel names are `<prefix><index>` with the index zero-padded to the width of the largest.
pub fn channel_name(prefix: &str, index: u32, channels: u32) -> String {
    let w = digits(channels.saturating_sub(1).into());
    format!("{prefix}{index:0w$}")
}

fn digits(mut n: u64) -> usize {
    let mut d = 1;
    while n >= 10 {
        n /= 10;
        d += 1;
    }
    d
}

/// Decimal `n` left-aligned in `field`, rest spaces. `field` is 20 wide, enough for u64::MAX.
fn write_left_aligned(field: &mut [u8], n: u64) {
    let mut tmp = [b'0'; NUM_WIDTH];
    let d = digits(n);
    write_zero_padded(tmp.get_mut(..d).unwrap_or_default(), n);
    for (i, slot) in field.iter_mut().enumerate() {
        *slot = if i < d {
            tmp.get(i).copied().unwrap_or(b' ')
        } else {
            b' '
        };
    }
}

/// Decimal `n` right-aligned and zero-padded in `field` (inside a JSON string, so leading
/// zeros are fine there).
fn write_zero_padded(field: &mut [u8], mut n: u64) {
    for slot in field.iter_mut().rev() {
        *slot = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_table() {
        type Want = Result<Option<(u16, usize, usize)>, HttpError>;
        let cases: &[(&[u8], Want)] = &[
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n[]",
                Ok(Some((200, 38, 40))),
            ),
            (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n[", Ok(None)),
            (b"HTTP/1.1 200 OK\r\nContent-Le", Ok(None)),
            (b"HTTP/1.1 204 No Content\r\n\r\n", Ok(Some((204, 27, 27)))),
            (
                b"HTTP/1.1 101 Switching Protocols\r\n\r\n\x81\x02[]",
                Ok(Some((101, 36, 36))),
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n[]\r\n0\r\n\r\nNEXT",
                Ok(Some((200, 47, 47 + 12))),
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n[]\r\n0\r\n",
                Ok(None),
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
                Err(HttpError::ContentLength),
            ),
            (b"HTTP/1.1 200 OK\r\n\r\n", Err(HttpError::NoLength)),
            (
                b"\x00garbage\r\n\r\n",
                Err(HttpError::Head("httparse rejected it")),
            ),
        ];
        for (input, want) in cases {
            let got =
                parse_response(input).map(|o| o.map(|r| (r.status, r.body_start, r.total_len)));
            assert_eq!(&got, want, "{}", String::from_utf8_lossy(input));
        }
    }

    #[test]
    fn chunked_bodies() {
        assert_eq!(chunked_extent(b"5;x=y\r\nhello\r\n0\r\n\r\n"), Ok(Some(19)));
        assert_eq!(
            chunked_extent(b"5\r\nhelloXX0\r\n\r\n"),
            Err(HttpError::Chunked)
        );
        assert_eq!(chunked_extent(b"zz\r\n"), Err(HttpError::Chunked));
        let mut out = Vec::new();
        dechunk(b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n", &mut out).unwrap();
        assert_eq!(out, b"abcde");
    }

    #[test]
    fn conn_id_extraction() {
        let pretty =
            b"{\n    \"conn_id\": \"11111111-2222-3333-4444-555555555555\",\n    \"state\": {}\n}";
        assert_eq!(
            find_string_field(pretty, "conn_id"),
            Some(&b"11111111-2222-3333-4444-555555555555"[..])
        );
        assert_eq!(
            find_string_field(b"{\"conn_id\":\"ab\"}", "conn_id"),
            Some(&b"ab"[..])
        );
        assert_eq!(find_string_field(b"{\"conn_id\": 5}", "conn_id"), None);
        assert_eq!(
            find_string_field(b"{\"conn_id\": \"unterminated", "conn_id"),
            None
        );
        assert_eq!(find_string_field(b"{}", "conn_id"), None);
    }

    #[test]
    fn template_patches_fields_and_stays_valid_json() {
        let tpl = MessageTemplate::new("127.0.0.1:1", Some("tok"), "hb-x-c", 1000, 256);
        let mut out = Vec::new();
        tpl.write_into(&mut out, 42, 123_456_789_012, 7);
        let resp_like = [
            b"HTTP/1.1 200 OK".as_slice(),
            &out[out.iter().position(|&b| b == b'\r').unwrap()..],
        ]
        .concat();
        let r = parse_response(&resp_like).unwrap().unwrap();
        let body = &resp_like[r.body_start..r.total_len];
        assert_eq!(
            r.total_len,
            resp_like.len(),
            "Content-Length matches the body"
        );
        let v: serde_json::Value = serde_json::from_slice(body).unwrap();
        assert_eq!(v[0]["channel"], "hb-x-c042");
        assert_eq!(v[0]["message"]["t"], 123_456_789_012u64);
        assert_eq!(v[0]["message"]["s"], 7);
        let msg_len = serde_json::to_string(&v[0]["message"]).unwrap().len();
        assert!(
            (200..=256).contains(&msg_len),
            "message object ~size bytes, got {msg_len}"
        );
        // Re-patching a reused buffer leaves no stale digits behind.
        tpl.write_into(&mut out, 0, 1, 0);
        let body = &out[out.len() - body.len()..];
        let v: serde_json::Value = serde_json::from_slice(body).unwrap();
        assert_eq!(
            (v[0]["message"]["t"].as_u64(), v[0]["message"]["s"].as_u64()),
            (Some(1), Some(0))
        );
        assert_eq!(v[0]["channel"], "hb-x-c000");
        assert!(String::from_utf8_lossy(&out).contains("X-Channelstream-Secret: tok\r\n"));
    }

    #[test]
    fn channel_names_are_fixed_width() {
        assert_eq!(channel_name("p", 7, 1000), "p007");
        assert_eq!(channel_name("p", 0, 1), "p0");
        assert_eq!(channel_name("p", 9, 10), "p9");
    }
}
