//! `Sec-WebSocket-Extensions` offers (RFC 6455 §9.1) and the permessage-deflate negotiation
//! (RFC 7692 §5, §7.1).
//!
//! Why a separate module: the header grammar (lists, parameters, quoted strings) is a pure
//! parser over bytes with its own table tests, fuzz target (`fuzz/fuzz_targets/ws_extensions.rs`)
//! and bench; the negotiation on top of it is a pure function from the offers to the one
//! [`Agreement`] Herald answers with.
//!
//! Herald's answer is always the same shape: it accepts the **first** valid
//! `permessage-deflate` offer and answers `server_no_context_takeover` and
//! `client_no_context_takeover` whatever the client offered (both allowed by RFC 7692
//! §7.1.1.1–2: a server may add them), plus `server_max_window_bits=N` when the client asked for
//! it. With no context kept in either direction a connection needs no compressor or inflater of
//! its own between messages, and one compressed frame can be shared by every subscriber with the
//! same window (`crate::proto::deflate` module docs). `client_max_window_bits` is never answered
//! (RFC 7692 §7.1.2.2 allows omitting it): Herald inflates with a 15-bit window, which reads any
//! client window.
//!
//! Invalid offers (unknown or repeated parameters, bad values, `server_max_window_bits` without
//! a value) are declined one by one, as §7.1.1 asks; a header that does not parse at all
//! declines every offer (the handshake itself still succeeds, uncompressed).

use std::borrow::Cow;

/// The extension's registered name.
pub const PERMESSAGE_DEFLATE: &[u8] = b"permessage-deflate";

/// Why a `Sec-WebSocket-Extensions` value did not parse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExtError {
    /// A byte that the grammar does not allow here, at this offset.
    Syntax(usize),
    /// A quoted string that does not end.
    UnterminatedQuote,
    /// More extensions or parameters than [`MAX_EXTENSIONS`] / [`MAX_PARAMS`].
    TooMany,
}

/// Most extensions in one header list (more is refused: no real client offers dozens).
pub const MAX_EXTENSIONS: usize = 16;
/// Most parameters of one extension.
pub const MAX_PARAMS: usize = 16;

/// One parameter of an extension: a name and, maybe, a value (quoted strings unescaped).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Param<'a> {
    /// The parameter name (a token).
    pub name: &'a [u8],
    /// The value after `=`; borrowed unless a quoted string had escapes.
    pub value: Option<Cow<'a, [u8]>>,
}

/// One element of the extension list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Extension<'a> {
    /// The extension token, such as `permessage-deflate`.
    pub name: &'a [u8],
    /// Its parameters, in order.
    pub params: Vec<Param<'a>>,
}

/// RFC 9110 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// A cursor over one header value.
struct Cursor<'a> {
    s: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.at).copied()
    }

    fn skip_ows(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.at += 1;
        }
    }

    fn token(&mut self) -> Result<&'a [u8], ExtError> {
        let start = self.at;
        while self.peek().is_some_and(is_tchar) {
            self.at += 1;
        }
        if self.at == start {
            return Err(ExtError::Syntax(self.at));
        }
        Ok(self.s.get(start..self.at).unwrap_or_default())
    }

    /// `DQUOTE *( qdtext / quoted-pair ) DQUOTE`, the cursor on the opening quote.
    fn quoted(&mut self) -> Result<Cow<'a, [u8]>, ExtError> {
        self.at += 1;
        let start = self.at;
        let mut owned: Option<Vec<u8>> = None;
        loop {
            match self.peek() {
                None => return Err(ExtError::UnterminatedQuote),
                Some(b'"') => {
                    let raw = self.s.get(start..self.at).unwrap_or_default();
                    self.at += 1;
                    return Ok(owned.map_or(Cow::Borrowed(raw), Cow::Owned));
                }
                Some(b'\\') => {
                    let buf = owned.get_or_insert_with(|| {
                        self.s.get(start..self.at).unwrap_or_default().to_vec()
                    });
                    match self.s.get(self.at + 1) {
                        Some(&c) if c == b'\t' || c == b' ' || (0x21..=0x7e).contains(&c) => {
                            buf.push(c)
                        }
                        Some(_) => return Err(ExtError::Syntax(self.at + 1)),
                        None => return Err(ExtError::UnterminatedQuote),
                    }
                    self.at += 2;
                }
                Some(c) if c == b'\t' || c == b' ' || c == 0x21 || (0x23..=0x7e).contains(&c) => {
                    if let Some(buf) = owned.as_mut() {
                        buf.push(c);
                    }
                    self.at += 1;
                }
                Some(_) => return Err(ExtError::Syntax(self.at)),
            }
        }
    }
}

/// Parse one `Sec-WebSocket-Extensions` value into its extensions, in order (RFC 6455 §9.1:
/// `extension-list = 1#extension`, `extension = token *( ";" token [ "=" (token /
/// quoted-string) ] )`). Empty list elements (`a, , b`) are skipped, as `#rule` allows.
pub fn parse_extensions(value: &[u8]) -> Result<Vec<Extension<'_>>, ExtError> {
    let mut c = Cursor { s: value, at: 0 };
    let mut out = Vec::new();
    loop {
        c.skip_ows();
        match c.peek() {
            None => return Ok(out),
            Some(b',') => {
                c.at += 1;
                continue;
            }
            Some(_) => {}
        }
        if out.len() == MAX_EXTENSIONS {
            return Err(ExtError::TooMany);
        }
        let name = c.token()?;
        let mut params = Vec::new();
        loop {
            c.skip_ows();
            match c.peek() {
                None => break,
                Some(b',') => {
                    c.at += 1;
                    break;
                }
                Some(b';') => c.at += 1,
                Some(_) => return Err(ExtError::Syntax(c.at)),
            }
            if params.len() == MAX_PARAMS {
                return Err(ExtError::TooMany);
            }
            c.skip_ows();
            let pname = c.token()?;
            c.skip_ows();
            let value = if c.peek() == Some(b'=') {
                c.at += 1;
                c.skip_ows();
                Some(if c.peek() == Some(b'"') {
                    c.quoted()?
                } else {
                    Cow::Borrowed(c.token()?)
                })
            } else {
                None
            };
            params.push(Param { name: pname, value });
        }
        out.push(Extension { name, params });
    }
}

/// A valid permessage-deflate offer (RFC 7692 §7.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeflateOffer {
    /// `server_no_context_takeover`.
    pub server_no_context_takeover: bool,
    /// `client_no_context_takeover`.
    pub client_no_context_takeover: bool,
    /// `server_max_window_bits=N` (8 to 15).
    pub server_max_window_bits: Option<u8>,
    /// `client_max_window_bits`: `Some(None)` without a value, `Some(Some(n))` with one.
    pub client_max_window_bits: Option<Option<u8>>,
}

/// `1*DIGIT` without leading zeros, 8 to 15 (RFC 7692 §7.1.2.1–2).
fn window_bits(v: &[u8]) -> Option<u8> {
    match v {
        [d @ b'8'..=b'9'] => Some(d - b'0'),
        [b'1', d @ b'0'..=b'5'] => Some(10 + d - b'0'),
        _ => None,
    }
}

impl DeflateOffer {
    /// The offer an extension element makes, `None` if it is not permessage-deflate or is
    /// invalid (then the server declines it, RFC 7692 §7.1).
    pub fn from_extension(ext: &Extension<'_>) -> Option<DeflateOffer> {
        if !ext.name.eq_ignore_ascii_case(PERMESSAGE_DEFLATE) {
            return None;
        }
        let mut o = DeflateOffer::default();
        let mut seen = [false; 4];
        for p in &ext.params {
            let v = p.value.as_deref();
            let n = p.name;
            let idx = if n.eq_ignore_ascii_case(b"server_no_context_takeover") {
                if v.is_some() {
                    return None;
                }
                o.server_no_context_takeover = true;
                0
            } else if n.eq_ignore_ascii_case(b"client_no_context_takeover") {
                if v.is_some() {
                    return None;
                }
                o.client_no_context_takeover = true;
                1
            } else if n.eq_ignore_ascii_case(b"server_max_window_bits") {
                o.server_max_window_bits = Some(window_bits(v?)?);
                2
            } else if n.eq_ignore_ascii_case(b"client_max_window_bits") {
                o.client_max_window_bits = Some(match v {
                    None => None,
                    Some(v) => Some(window_bits(v)?),
                });
                3
            } else {
                return None;
            };
            if std::mem::replace(seen.get_mut(idx)?, true) {
                return None;
            }
        }
        Some(o)
    }
}

/// What Herald agreed to for one connection: both directions without context takeover, the
/// server's LZ77 window at most `server_window_bits`. Two bytes, kept in the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Agreement {
    /// The largest window Herald may compress with (15 unless the client asked for less).
    pub server_window_bits: u8,
    /// Whether the client named `server_max_window_bits` (then the answer repeats it).
    pub server_window_requested: bool,
}

impl Agreement {
    /// The window to compress server messages with; `None` when the client asked for an 8-bit
    /// window, which zlib cannot produce for raw deflate: such a client is sent every message
    /// uncompressed (RFC 7692 lets a sender leave any message uncompressed).
    pub fn compress_window(&self) -> Option<u8> {
        (self.server_window_bits >= 9).then_some(self.server_window_bits)
    }

    /// The `Sec-WebSocket-Extensions` value of the 101.
    pub fn response_value(&self) -> String {
        let mut s = String::from(
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
        );
        if self.server_window_requested {
            s.push_str("; server_max_window_bits=");
            s.push_str(&self.server_window_bits.to_string());
        }
        s
    }
}

/// Negotiate over every `Sec-WebSocket-Extensions` value of the request (in order; several
/// header lines read as one comma-joined list): the first valid permessage-deflate offer is
/// accepted. `None`: no acceptable offer, or a value that does not parse.
pub fn negotiate<'a>(values: impl IntoIterator<Item = &'a [u8]>) -> Option<Agreement> {
    let mut parsed = Vec::new();
    for v in values {
        parsed.extend(parse_extensions(v).ok()?);
    }
    parsed
        .iter()
        .find_map(DeflateOffer::from_extension)
        .map(|o| Agreement {
            server_window_bits: o.server_max_window_bits.unwrap_or(15),
            server_window_requested: o.server_max_window_bits.is_some(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p<'a>(name: &'a str, value: Option<&'a str>) -> Param<'a> {
        Param {
            name: name.as_bytes(),
            value: value.map(|v| Cow::Borrowed(v.as_bytes())),
        }
    }

    #[test]
    fn parse_table() {
        let pmd = "permessage-deflate";
        let cases: Vec<(&str, Result<Vec<Extension<'_>>, ExtError>)> = vec![
            ("", Ok(vec![])),
            (" , ,", Ok(vec![])),
            (
                "permessage-deflate",
                Ok(vec![Extension {
                    name: pmd.as_bytes(),
                    params: vec![],
                }]),
            ),
            (
                "permessage-deflate; client_max_window_bits",
                Ok(vec![Extension {
                    name: pmd.as_bytes(),
                    params: vec![p("client_max_window_bits", None)],
                }]),
            ),
            (
                "permessage-deflate ;server_max_window_bits = 10 ; client_no_context_takeover, \
                 x-webkit-deflate-frame",
                Ok(vec![
                    Extension {
                        name: pmd.as_bytes(),
                        params: vec![
                            p("server_max_window_bits", Some("10")),
                            p("client_no_context_takeover", None),
                        ],
                    },
                    Extension {
                        name: b"x-webkit-deflate-frame",
                        params: vec![],
                    },
                ]),
            ),
            (
                "foo; a=\"1\"; b=\"x\\\"y\"",
                Ok(vec![Extension {
                    name: b"foo",
                    params: vec![
                        p("a", Some("1")),
                        Param {
                            name: b"b",
                            value: Some(Cow::Owned(b"x\"y".to_vec())),
                        },
                    ],
                }]),
            ),
            ("permessage-deflate;", Err(ExtError::Syntax(19))),
            ("; x", Err(ExtError::Syntax(0))),
            ("a b", Err(ExtError::Syntax(2))),
            ("a; b=", Err(ExtError::Syntax(5))),
            ("a; b=\"1", Err(ExtError::UnterminatedQuote)),
            ("a; b=\"1\\", Err(ExtError::UnterminatedQuote)),
            ("a; b=\"\x01\"", Err(ExtError::Syntax(6))),
            ("a; =1", Err(ExtError::Syntax(3))),
            ("a\u{e9}", Err(ExtError::Syntax(1))),
        ];
        for (input, want) in cases {
            assert_eq!(parse_extensions(input.as_bytes()), want, "{input:?}");
        }
        let many = vec!["x"; MAX_EXTENSIONS + 1].join(",");
        assert_eq!(parse_extensions(many.as_bytes()), Err(ExtError::TooMany));
        let params = format!("x{}", "; a".repeat(MAX_PARAMS + 1));
        assert_eq!(parse_extensions(params.as_bytes()), Err(ExtError::TooMany));
    }

    fn agree(bits: u8, requested: bool) -> Option<Agreement> {
        Some(Agreement {
            server_window_bits: bits,
            server_window_requested: requested,
        })
    }

    #[test]
    fn negotiation_table() {
        let cases: Vec<(&[&str], Option<Agreement>)> =
            vec![
            (&[], None),
            (&[""], None),
            (&["x-webkit-deflate-frame"], None),
            // Browsers and Python websockets.
            (&["permessage-deflate; client_max_window_bits"], agree(15, false)),
            (&["permessage-deflate"], agree(15, false)),
            (&["PerMessage-Deflate; Client_Max_Window_Bits"], agree(15, false)),
            (
                &["permessage-deflate; client_max_window_bits=10"],
                agree(15, false),
            ),
            (
                &["permessage-deflate; server_no_context_takeover; client_no_context_takeover"],
                agree(15, false),
            ),
            (&["permessage-deflate; server_max_window_bits=9"], agree(9, true)),
            (
                &["permessage-deflate; server_max_window_bits=\"12\""],
                agree(12, true),
            ),
            (&["permessage-deflate; server_max_window_bits=8"], agree(8, true)),
            // Invalid offers are declined, and the next one is taken.
            (
                &["permessage-deflate; server_max_window_bits, permessage-deflate"],
                agree(15, false),
            ),
            (&["permessage-deflate; server_max_window_bits"], None),
            (&["permessage-deflate; server_max_window_bits=16"], None),
            (&["permessage-deflate; server_max_window_bits=7"], None),
            (&["permessage-deflate; server_max_window_bits=08"], None),
            (&["permessage-deflate; server_max_window_bits=+9"], None),
            (&["permessage-deflate; client_max_window_bits=0"], None),
            (&["permessage-deflate; server_no_context_takeover=1"], None),
            (&["permessage-deflate; client_no_context_takeover=\"\""], None),
            (&["permessage-deflate; unknown"], None),
            (
                &["permessage-deflate; client_max_window_bits; client_max_window_bits"],
                None,
            ),
            (
                &[
                    "permessage-deflate; server_max_window_bits=10; server_max_window_bits=10",
                    "permessage-deflate; server_max_window_bits=11",
                ],
                agree(11, true),
            ),
            // The Autobahn 13.7 offer list: the first valid offer wins.
            (
                &["permessage-deflate; client_no_context_takeover; client_max_window_bits; \
                   server_no_context_takeover; server_max_window_bits=9, permessage-deflate; \
                   client_no_context_takeover; client_max_window_bits; server_no_context_takeover, \
                   permessage-deflate; client_no_context_takeover; client_max_window_bits"],
                agree(9, true),
            ),
            // Several header lines form one list.
            (&["foo", "permessage-deflate"], agree(15, false)),
            // A value that does not parse declines everything.
            (&["permessage-deflate", "a b"], None),
        ];
        for (values, want) in cases {
            let got = negotiate(values.iter().map(|v| v.as_bytes()));
            assert_eq!(got, want, "{values:?}");
        }
    }

    #[test]
    fn response_values() {
        let Some(a) = agree(15, false) else { return };
        assert_eq!(
            a.response_value(),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
        );
        assert_eq!(a.compress_window(), Some(15));
        let Some(b) = agree(10, true) else { return };
        assert_eq!(
            b.response_value(),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
             server_max_window_bits=10"
        );
        let Some(c) = agree(8, true) else { return };
        assert_eq!(c.compress_window(), None);
        assert!(c.response_value().ends_with("server_max_window_bits=8"));
        // The answer parses back as a valid offer-shaped element.
        let resp = b.response_value();
        let parsed = parse_extensions(resp.as_bytes()).unwrap_or_default();
        assert_eq!(parsed.len(), 1);
        assert!(parsed
            .first()
            .and_then(DeflateOffer::from_extension)
            .is_some());
    }
}
