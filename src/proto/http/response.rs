//! Response encoding: status line, headers, `Content-Length` and body in one reservation.
//!
//! Why a separate module: responses are written by the server for its own data only, so this is
//! the trusted, allocation-light half of the HTTP layer; nothing here parses peer bytes.
//!
//! Invariants: [`write_response`] reserves once and never reallocates while writing; 1xx and 204
//! carry no body and no `Content-Length` (RFC 9110 §8.6/§15.2).

use bytes::{BufMut, BytesMut};

/// The interim response for `Expect: 100-continue`, ready to write.
pub const CONTINUE_100: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// Reason phrase for a status code (RFC 9110 and the IANA registry); `Unknown` otherwise.
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        203 => "Non-Authoritative Information",
        204 => "No Content",
        205 => "Reset Content",
        206 => "Partial Content",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        421 => "Misdirected Request",
        422 => "Unprocessable Content",
        426 => "Upgrade Required",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

/// The head of a response as [`write_response`] writes it.
#[derive(Clone, Copy, Debug)]
pub struct Head<'a> {
    /// Status code.
    pub status: u16,
    /// Reason phrase for the status line (normally [`reason`]`(status)`; a dialect may use
    /// its framework's phrase).
    pub reason: &'a str,
    /// Headers written before `Content-Length`.
    pub headers: &'a [(&'a str, &'a [u8])],
    /// Headers written last, after `Content-Length` and `Connection` (`Date`, where the
    /// servers Herald copies put it).
    pub trailing: &'a [(&'a str, &'a [u8])],
    /// The response closes the connection by itself: `Connection: close` goes right after
    /// `headers`, before `Content-Length` (gevent's order for its own error pages), whatever
    /// `keep_alive` says.
    pub early_close: bool,
}

impl<'a> Head<'a> {
    /// A head with the RFC reason phrase and no trailing headers.
    pub fn new(status: u16, headers: &'a [(&'a str, &'a [u8])]) -> Self {
        Head {
            status,
            reason: reason(status),
            headers,
            trailing: &[],
            early_close: false,
        }
    }
}

/// Append a full response: status line, `head.headers`, `Content-Length` (always, also for
/// HEAD where the body is then omitted), `Connection: close` when `!keep_alive`,
/// `head.trailing`, and the body.
///
/// Exceptions required by RFC 9110 §8.6/§15.2: 1xx responses get neither `Content-Length`,
/// `Connection` nor a body, and 204 gets no `Content-Length` and no body.
/// The headers must not contain `Content-Length` or `Connection`; names and values are trusted
/// (they come from our own code, never from a peer).
pub fn write_response(
    out: &mut BytesMut,
    head: &Head<'_>,
    body: &[u8],
    keep_alive: bool,
    head_only: bool,
) {
    let status = head.status;
    let keep_alive = keep_alive && !head.early_close;
    debug_assert!(head.headers.iter().chain(head.trailing).all(|(n, _)| {
        !n.eq_ignore_ascii_case("content-length") && !n.eq_ignore_ascii_case("connection")
    }));
    // 1xx is an interim answer; the real response follows on the same connection, so it
    // carries no framing and cannot close the connection.
    let interim = (100..200).contains(&status);
    let length_header = !interim && status != 204;
    let send_body = length_header && !head_only;
    let reason = head.reason;
    let header_len = |hs: &[(&str, &[u8])]| {
        hs.iter()
            .map(|(n, v)| n.len() + 2 + v.len() + 2)
            .sum::<usize>()
    };

    // One reservation for the whole response, so the puts below never reallocate. Numbers are
    // counted at their widest (5 digits for a u16, 20 for a u64): over-reserving a few bytes
    // is cheaper than formatting twice.
    let mut len = b"HTTP/1.1 ".len() + 5 + 1 + reason.len() + 2 + 2;
    len += header_len(head.headers) + header_len(head.trailing);
    if length_header {
        len += b"Content-Length: ".len() + 20 + 2;
    }
    if !interim && !keep_alive {
        len += b"Connection: close\r\n".len();
    }
    if send_body {
        len += body.len();
    }
    out.reserve(len);

    out.put_slice(b"HTTP/1.1 ");
    put_decimal(out, u64::from(status));
    out.put_u8(b' ');
    out.put_slice(reason.as_bytes());
    out.put_slice(b"\r\n");
    put_headers(out, head.headers);
    let close_header = !interim && !keep_alive;
    if close_header && head.early_close {
        out.put_slice(b"Connection: close\r\n");
    }
    if length_header {
        out.put_slice(b"Content-Length: ");
        put_decimal(out, body.len() as u64);
        out.put_slice(b"\r\n");
    }
    if close_header && !head.early_close {
        out.put_slice(b"Connection: close\r\n");
    }
    put_headers(out, head.trailing);
    out.put_slice(b"\r\n");
    if send_body {
        out.put_slice(body);
    }
}

fn put_headers(out: &mut BytesMut, headers: &[(&str, &[u8])]) {
    for (name, value) in headers {
        out.put_slice(name.as_bytes());
        out.put_slice(b": ");
        out.put_slice(value);
        out.put_slice(b"\r\n");
    }
}

/// Write `n` in decimal without going through `fmt`: digits are produced backwards into a
/// stack buffer, then copied in one `put_slice`.
fn put_decimal(out: &mut BytesMut, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        if let Some(d) = digits.get_mut(at) {
            *d = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.put_slice(digits.get(at..).unwrap_or(&[]));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(
        status: u16,
        headers: &[(&str, &[u8])],
        body: &[u8],
        keep_alive: bool,
        head_only: bool,
    ) -> String {
        let mut out = BytesMut::new();
        write_response(
            &mut out,
            &Head::new(status, headers),
            body,
            keep_alive,
            head_only,
        );
        String::from_utf8(out.to_vec()).expect("ascii")
    }

    #[test]
    fn write_response_table() {
        let json: &[(&str, &[u8])] = &[("Content-Type", b"application/json")];
        let table = [
            (
                response(200, json, b"{}", true, false),
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
            ),
            (
                response(200, json, b"{}", true, true),
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n",
            ),
            (
                response(500, &[], b"Internal Server Error", false, false),
                "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 21\r\nConnection: close\r\n\r\nInternal Server Error",
            ),
            (
                response(404, &[("A", b"1"), ("B", b"2")], b"", true, false),
                "HTTP/1.1 404 Not Found\r\nA: 1\r\nB: 2\r\nContent-Length: 0\r\n\r\n",
            ),
            (response(100, &[], b"", true, false), "HTTP/1.1 100 Continue\r\n\r\n"),
            (
                response(204, &[], b"ignored", false, false),
                "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n",
            ),
            (response(299, &[], b"", true, false), "HTTP/1.1 299 Unknown\r\nContent-Length: 0\r\n\r\n"),
        ];
        for (got, want) in table {
            assert_eq!(got, want);
        }
        assert_eq!(
            response(100, &[], b"", false, false).as_bytes(),
            CONTINUE_100
        );
    }

    #[test]
    fn reason_override_and_trailing_headers() {
        let mut out = BytesMut::new();
        let head = Head {
            status: 422,
            reason: "Unprocessable Entity",
            headers: &[("Content-Type", b"application/json")],
            trailing: &[("Date", b"D")],
            early_close: false,
        };
        write_response(&mut out, &head, b"{}", false, false);
        assert_eq!(
            &out[..],
            b"HTTP/1.1 422 Unprocessable Entity\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\nDate: D\r\n\r\n{}"
        );
    }

    #[test]
    fn write_response_appends_and_counts_large_bodies() {
        let mut out = BytesMut::from(&b"prefix"[..]);
        let body = vec![b'x'; 1_234_567];
        write_response(&mut out, &Head::new(200, &[]), &body, true, false);
        let head = b"prefixHTTP/1.1 200 OK\r\nContent-Length: 1234567\r\n\r\n";
        assert_eq!(&out[..head.len()], head);
        assert_eq!(out.len(), head.len() + body.len());
    }

    #[test]
    fn put_decimal_edges() {
        for n in [0u64, 7, 10, 99, 100, 65535, u64::MAX] {
            let mut out = BytesMut::new();
            put_decimal(&mut out, n);
            assert_eq!(&out[..], n.to_string().as_bytes());
        }
    }

    #[test]
    fn reasons() {
        let table = [
            (100, "Continue"),
            (101, "Switching Protocols"),
            (200, "OK"),
            (204, "No Content"),
            (302, "Found"),
            (400, "Bad Request"),
            (401, "Unauthorized"),
            (403, "Forbidden"),
            (404, "Not Found"),
            (405, "Method Not Allowed"),
            (406, "Not Acceptable"),
            (408, "Request Timeout"),
            (411, "Length Required"),
            (413, "Content Too Large"),
            (415, "Unsupported Media Type"),
            (422, "Unprocessable Content"),
            (426, "Upgrade Required"),
            (431, "Request Header Fields Too Large"),
            (500, "Internal Server Error"),
            (501, "Not Implemented"),
            (503, "Service Unavailable"),
            (505, "HTTP Version Not Supported"),
            (999, "Unknown"),
        ];
        for (status, phrase) in table {
            assert_eq!(reason(status), phrase);
        }
    }
}
