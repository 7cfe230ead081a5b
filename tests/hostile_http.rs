//! Hostile clients, table 1 (Herald issue 7): HTTP framing — request lines, headers,
//! lengths, chunked bodies, sizes — each with its exact answer, against one shared server
//! while healthy clients stay connected (see `common::hostile` for why and how).

mod common;
use common::hostile::*;

// Table 1: HTTP framing — request lines, headers, lengths, chunked, sizes

fn http_cases() -> Vec<Case> {
    let mut v = Vec::new();
    let mut add = |name: &str, bytes: Vec<u8>, e: Expect| v.push(case(name, Input::Raw(bytes), e));

    // Request lines.
    add(
        "control byte in method",
        b"GET\x01 / HTTP/1.1\r\n\r\n".to_vec(),
        fatal400("invalid request line"),
    );
    add(
        "HTTP/0.9 request line (no version)",
        b"GET /\r\n\r\n".to_vec(),
        fatal400("invalid request line"),
    );
    add(
        "HTTP/2.0 in an HTTP/1 request line",
        b"GET / HTTP/2.0\r\n\r\n".to_vec(),
        Expect::Fatal(505, "HTTP version not supported"),
    );
    add(
        "HTTP/1.2",
        b"GET / HTTP/1.2\r\n\r\n".to_vec(),
        Expect::Fatal(505, "HTTP version not supported"),
    );
    add(
        "not HTTP at all",
        b"GET / FOO/1.1\r\n\r\n".to_vec(),
        fatal400("invalid HTTP version"),
    );
    add(
        "lower-case protocol name",
        b"GET / http/1.1\r\n\r\n".to_vec(),
        fatal400("invalid HTTP version"),
    );
    add(
        "NUL in the request target",
        b"GET /\x00 HTTP/1.1\r\n\r\n".to_vec(),
        fatal400("invalid request line"),
    );
    add(
        "two spaces between method and target",
        b"GET  / HTTP/1.1\r\n\r\n".to_vec(),
        fatal400("invalid request line"),
    );
    add(
        "TLS ClientHello on the plain port",
        vec![
            0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 0x03, 0x03, b'\r', b'\n', b'\r',
            b'\n',
        ],
        fatal400("invalid request line"),
    );
    add(
        "empty lines before the request are skipped (RFC 9112 §2.2)",
        b"\r\n\r\nOPTIONS / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        Expect::Text(200, ""),
    );

    // Header syntax.
    add(
        "space inside a header name",
        options_with("Bad Header: 1\r\n"),
        fatal400("invalid header name"),
    );
    add(
        "header line without a colon",
        options_with("NoColonHere\r\n"),
        fatal400("invalid header name"),
    );
    add(
        "whitespace before the colon (smuggling vector)",
        options_with("Transfer-Encoding : chunked\r\n"),
        fatal400("invalid header name"),
    );
    add(
        "obsolete line folding",
        options_with("X-A: 1\r\n  folded\r\n"),
        fatal400("invalid header name"),
    );
    add(
        "control byte in a header value",
        options_with("X-A: a\x01b\r\n"),
        fatal400("invalid header value"),
    );
    add(
        "bare CR line ending",
        b"OPTIONS / HTTP/1.1\rHost: x\r\r".to_vec(),
        fatal400("invalid line ending"),
    );
    add(
        "non-UTF-8 (obs-text) header value is accepted",
        b"OPTIONS / HTTP/1.1\r\nHost: x\r\nX-A: \xff\xfe\x80\r\n\r\n".to_vec(),
        Expect::Text(200, ""),
    );

    // Content-Length and Transfer-Encoding.
    add(
        "Content-Length not a number",
        b"POST /connect HTTP/1.1\r\nContent-Length: abc\r\n\r\n".to_vec(),
        fatal400("invalid Content-Length"),
    );
    add(
        "negative Content-Length",
        b"POST /connect HTTP/1.1\r\nContent-Length: -1\r\n\r\n".to_vec(),
        fatal400("invalid Content-Length"),
    );
    add(
        "Content-Length with a plus sign",
        b"POST /connect HTTP/1.1\r\nContent-Length: +2\r\n\r\n{}".to_vec(),
        fatal400("invalid Content-Length"),
    );
    add(
        "empty Content-Length",
        b"POST /connect HTTP/1.1\r\nContent-Length: \r\n\r\n".to_vec(),
        fatal400("invalid Content-Length"),
    );
    add(
        "Content-Length as a list",
        b"POST /connect HTTP/1.1\r\nContent-Length: 2, 2\r\n\r\n{}".to_vec(),
        fatal400("invalid Content-Length"),
    );
    add(
        "two different Content-Lengths",
        b"POST /connect HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}x".to_vec(),
        fatal400("conflicting Content-Length"),
    );
    add(
        "Content-Length then Transfer-Encoding",
        b"POST /connect HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
            .to_vec(),
        fatal400("both Content-Length and Transfer-Encoding"),
    );
    add(
        "Transfer-Encoding then Content-Length",
        b"POST /connect HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n"
            .to_vec(),
        fatal400("both Content-Length and Transfer-Encoding"),
    );
    add(
        "gzip, chunked",
        b"POST /connect HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n".to_vec(),
        Expect::Fatal(501, "unsupported transfer encoding"),
    );
    add(
        "chunked, gzip (chunked not final)",
        b"POST /connect HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n".to_vec(),
        fatal400("chunked is not the final coding"),
    );
    add(
        "chunked twice",
        b"POST /connect HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
            .to_vec(),
        fatal400("chunked is not the final coding"),
    );
    add(
        "Transfer-Encoding in HTTP/1.0",
        b"POST /connect HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".to_vec(),
        fatal400("Transfer-Encoding in HTTP/1.0"),
    );
    add(
        "chunk size not hex",
        b"POST /connect HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n".to_vec(),
        fatal400("chunk size is not hex"),
    );
    add(
        "chunk size overflows 64 bits",
        b"POST /connect HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1ffffffffffffffff\r\n"
            .to_vec(),
        fatal400("chunk size overflows"),
    );
    add(
        "chunk data longer than its size",
        b"POST /connect HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}}\r\n0\r\n\r\n"
            .to_vec(),
        fatal400("chunk data not followed by CRLF"),
    );

    // Sizes (README: 431 / 413, connection closed).
    add(
        "Content-Length of 2^64+",
        b"POST /connect HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n".to_vec(),
        Expect::Fatal(413, "request body too large"),
    );
    add(
        "Content-Length one past the body limit",
        format!(
            "POST /connect HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
            MAX_BODY + 1
        )
        .into_bytes(),
        Expect::Fatal(413, "request body too large"),
    );
    add(
        "Expect: 100-continue with an oversized body gets 413, not 100",
        format!(
            "POST /connect HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: {}\r\n\r\n",
            MAX_BODY + 1
        )
        .into_bytes(),
        Expect::Fatal(413, "request body too large"),
    );
    let mut chunked = b"POST /connect HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..=(MAX_BODY / 4096) {
        chunked.extend_from_slice(b"1000\r\n");
        chunked.extend(std::iter::repeat_n(b' ', 4096));
        chunked.extend_from_slice(b"\r\n");
    }
    add(
        "chunked body past the body limit",
        chunked,
        Expect::Fatal(413, "request body too large"),
    );
    let mut big_header = options_with("X-Pad: ");
    big_header.truncate(big_header.len() - 2);
    big_header.extend(std::iter::repeat_n(b'a', MAX_HEAD));
    big_header.extend_from_slice(b"\r\n\r\n");
    add(
        "one header larger than the head limit",
        big_header,
        Expect::Fatal(431, "request header block too large"),
    );
    let mut long_line = b"GET /".to_vec();
    long_line.extend(std::iter::repeat_n(b'a', MAX_HEAD));
    long_line.extend_from_slice(b" HTTP/1.1\r\n\r\n");
    add(
        "request target longer than the head limit",
        long_line,
        Expect::Fatal(431, "request header block too large"),
    );
    let many: String = (0..=MAX_HEADERS).map(|i| format!("X-{i}: 1\r\n")).collect();
    add(
        "one header more than the header count limit",
        options_with(&many),
        Expect::Fatal(431, "request header block too large"),
    );
    add(
        "endless header without a line end, sent at once",
        {
            let mut b = b"GET / HTTP/1.1\r\nX: ".to_vec();
            b.extend(std::iter::repeat_n(b'z', 4 * MAX_HEAD));
            b
        },
        Expect::Fatal(431, "request header block too large"),
    );
    // Host (RFC 9112 §3.2): 0.7.1's gevent server serves requests without it or with two;
    // so does Herald by default (strict mode: 400, below).
    add(
        "HTTP/1.1 without Host is served by default",
        b"OPTIONS / HTTP/1.1\r\n\r\n".to_vec(),
        Expect::Text(200, ""),
    );
    add(
        "HTTP/1.1 with two Host headers is served by default",
        b"OPTIONS / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n".to_vec(),
        Expect::Text(200, ""),
    );
    v
}

// Table 1, strict mode (README "Strict mode"): exactly one Host on HTTP/1.1.
fn strict_http_cases() -> Vec<Case> {
    let mut v = Vec::new();
    let mut add = |name: &str, bytes: Vec<u8>, e: Expect| v.push(case(name, Input::Raw(bytes), e));
    let no_host = || Expect::Fatal(400, "malformed request: missing Host header");
    let two_hosts = || Expect::Fatal(400, "malformed request: more than one Host header");
    add(
        "OPTIONS without Host",
        b"OPTIONS / HTTP/1.1\r\n\r\n".to_vec(),
        no_host(),
    );
    add(
        "signed POST /message without Host",
        signed("POST", "/message", b"[]")
            .strip_prefix(b"POST /message HTTP/1.1\r\nHost: x\r\n".as_slice())
            .map(|rest| [b"POST /message HTTP/1.1\r\n".as_slice(), rest].concat())
            .unwrap_or_default(),
        no_host(),
    );
    add(
        "GET /listen without Host",
        b"GET /listen HTTP/1.1\r\n\r\n".to_vec(),
        no_host(),
    );
    add(
        "two Host headers",
        b"OPTIONS / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n".to_vec(),
        two_hosts(),
    );
    add(
        "two Host headers, differently cased, same value",
        b"OPTIONS / HTTP/1.1\r\nHost: a\r\nhOST: a\r\n\r\n".to_vec(),
        two_hosts(),
    );
    add(
        "an empty Host is one Host (RFC 9112 allows it)",
        b"OPTIONS / HTTP/1.1\r\nHost:\r\n\r\n".to_vec(),
        Expect::Text(200, ""),
    );
    add(
        "HTTP/1.0 needs no Host",
        b"OPTIONS / HTTP/1.0\r\n\r\n".to_vec(),
        Expect::Text(200, ""),
    );
    add(
        "one Host: served",
        b"OPTIONS / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        Expect::Text(200, ""),
    );
    // The parser's own answers come first, as in default mode.
    add(
        "control byte in method (no Host either)",
        b"GET\x01 / HTTP/1.1\r\n\r\n".to_vec(),
        fatal400("invalid request line"),
    );
    v
}

#[test]
fn hostile_http_strict() {
    let cases = strict_http_cases();
    assert!(cases.len() >= 9, "{}", cases.len());
    run_strict_table(cases);
}

#[test]
fn hostile_http() {
    let cases = http_cases();
    assert!(cases.len() >= 35, "{}", cases.len());
    run_table(cases);
}
