//! Channelstream 0.7.1's framework on the wire: WebOb 1.8's reason phrases, Pyramid 2.0's
//! error pages (`pyramid.httpexceptions`) and the `Accept` negotiation that picks their format.
//!
//! Why here and not in `proto::http`: these are the framework's choices, not HTTP's. WebOb says
//! `422 Unprocessable Entity` where RFC 9110 says `Unprocessable Content`; Pyramid renders its
//! error pages as HTML, JSON or plain text by the request's `Accept`. Responses that are not
//! Channelstream's keep the RFC phrases of `proto::http::reason`.
//!
//! The page templates (Pyramid, not WebOb: `<br/>` without a space, no tag stripping):
//! body `{explanation}{br}{br}\n{detail}\n{html_comment}\n` inside
//! HTML `<html>\n <head>\n  <title>{status}</title>\n </head>\n <body>\n  <h1>{status}</h1>\n  {body}\n </body>\n</html>`,
//! plain `{status}\n\n{body}`, JSON `json.dumps({"message": body, "code": status, "title": title})`.

use crate::dialect::Response;
use crate::proto::http;
use crate::py::json as pyjson;
use serde_json::json;

/// WebOb 1.8's `webob.util.status_reasons` for `status`; the RFC phrase for codes it lacks.
pub fn reason(status: u16) -> &'static str {
    match status {
        102 => "Processing",
        207 => "Multi Status",
        226 => "IM Used",
        305 => "Use Proxy",
        413 => "Request Entity Too Large",
        414 => "Request URI Too Long",
        416 => "Requested Range Not Satisfiable",
        418 => "I'm a teapot",
        422 => "Unprocessable Entity",
        423 => "Locked",
        424 => "Failed Dependency",
        451 => "Unavailable for Legal Reasons",
        507 => "Insufficient Storage",
        510 => "Not Extended",
        511 => "Network Authentication Required",
        _ => http::reason(status),
    }
}

/// Give a Channelstream response WebOb's reason phrase (every answer of the dialect goes
/// through here on its way out).
pub fn with_reason(mut r: Response) -> Response {
    r.reason = Some(reason(r.status));
    r
}

/// The format of a Pyramid error page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageFormat {
    /// `text/html; charset=UTF-8`
    Html,
    /// `application/json`
    Json,
    /// `text/plain; charset=UTF-8`: no `Accept`, or one that takes neither HTML nor JSON.
    Plain,
}

impl PageFormat {
    /// The page's `Content-Type`.
    pub fn content_type(self) -> &'static str {
        match self {
            PageFormat::Html => "text/html; charset=UTF-8",
            PageFormat::Json => "application/json",
            PageFormat::Plain => "text/plain; charset=UTF-8",
        }
    }
}

/// Pyramid's choice: `acceptable_offers(["text/html", "application/json"])` of WebOb's
/// `create_accept_header(environ.get("HTTP_ACCEPT", ""))`, first offer or plain text.
///
/// A missing header is the empty header, which accepts nothing (plain text). For each offer
/// the most specific matching range gives its q (exact type > `type/*` > `*/*`; a range with
/// parameters matches no offer); offers with q = 0 drop out; the highest q wins, HTML on a tie.
/// A header WebOb cannot parse accepts everything (HTML).
pub fn negotiate(accept: Option<&[u8]>) -> PageFormat {
    let Some(accept) = accept else {
        return PageFormat::Plain;
    };
    let Ok(text) = std::str::from_utf8(accept) else {
        return PageFormat::Html;
    };
    // (specificity, q in thousandths) per offer
    let mut best: [(u8, u16); 2] = [(0, 0); 2];
    for range in text.split(',') {
        let range = range.trim_matches(|c| c == ' ' || c == '\t');
        if range.is_empty() {
            continue;
        }
        let Some((media, q, has_params)) = parse_range(range) else {
            return PageFormat::Html;
        };
        if has_params {
            continue;
        }
        for (offer, slot) in ["text/html", "application/json"]
            .iter()
            .zip(best.iter_mut())
        {
            let specificity = if media == *offer {
                3
            } else if media
                .strip_suffix("/*")
                .is_some_and(|t| offer.starts_with(&format!("{t}/")))
            {
                2
            } else if media == "*/*" {
                1
            } else {
                0
            };
            if specificity > slot.0 {
                *slot = (specificity, q);
            }
        }
    }
    let [(hs, hq), (js, jq)] = best;
    let html = if hs > 0 { hq } else { 0 };
    let json = if js > 0 { jq } else { 0 };
    if html == 0 && json == 0 {
        PageFormat::Plain
    } else if json > html {
        PageFormat::Json
    } else {
        PageFormat::Html
    }
}

/// One media range: its lowercased `type/subtype`, its q (thousandths) and whether it has
/// media-type parameters besides q. `None` when it is not a valid range.
fn parse_range(range: &str) -> Option<(String, u16, bool)> {
    let mut parts = range.split(';');
    let media = parts.next()?.trim().to_ascii_lowercase();
    let (t, s) = media.split_once('/')?;
    if !is_token(t) || !is_token(s) || (t == "*" && s != "*") {
        return None;
    }
    let mut q = 1000;
    let mut has_params = false;
    for p in parts {
        let (name, value) = p.trim().split_once('=')?;
        let name = name.trim();
        if !is_token(name) {
            return None;
        }
        if name.eq_ignore_ascii_case("q") {
            q = parse_q(value.trim())?;
            // Parameters after q are accept-extensions: they do not restrict the range.
            break;
        }
        has_params = true;
    }
    Some((media, q, has_params))
}

/// RFC 7231 `qvalue`: `0[.ddd]` or `1[.000]`, in thousandths.
fn parse_q(v: &str) -> Option<u16> {
    let (int, frac) = v.split_once('.').unwrap_or((v, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let frac_val = format!("{frac:0<3}").parse::<u16>().ok()?;
    match int {
        "0" => Some(frac_val),
        "1" if frac_val == 0 => Some(1000),
        _ => None,
    }
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// `HTTPUnauthorized.explanation`.
pub const UNAUTHORIZED: &str = "This server could not verify that you are authorized to access the document you requested.  Either you supplied the wrong credentials (e.g., bad password), or your browser does not understand how to supply the credentials required.";
/// `HTTPForbidden.explanation`.
pub const FORBIDDEN: &str = "Access was denied to this resource.";
/// `HTTPNotFound.explanation`.
pub const NOT_FOUND: &str = "The resource could not be found.";

/// A Pyramid error page: `status` with its class's `explanation` and the raised `detail`
/// (empty when raised without one), in `format`. Returns the content type and the body.
pub fn render(
    status: u16,
    explanation: &str,
    detail: &str,
    format: PageFormat,
) -> (&'static str, String) {
    let title = reason(status);
    let status_line = format!("{status} {title}");
    let body = match format {
        PageFormat::Html => {
            let body = format!(
                "{}<br/><br/>\n{}\n\n",
                html_escape(explanation),
                html_escape(detail)
            );
            format!("<html>\n <head>\n  <title>{status_line}</title>\n </head>\n <body>\n  <h1>{status_line}</h1>\n  {body}\n </body>\n</html>")
        }
        PageFormat::Json => pyjson::to_string_compact(&json!({
            "message": format!("{explanation}\n\n\n{detail}\n\n"),
            "code": status_line,
            "title": title,
        })),
        PageFormat::Plain => format!("{status_line}\n\n{explanation}\n\n\n{detail}\n\n"),
    };
    (format.content_type(), body)
}

/// [`render`] as a response.
pub fn error_page(status: u16, explanation: &str, detail: &str, format: PageFormat) -> Response {
    let (content_type, body) = render(status, explanation, detail, format);
    with_reason(Response::new(status, content_type, body))
}

/// Pyramid's `request.path_info` for a raw request path: percent-decoded (the WSGI server
/// unquotes `PATH_INFO`), then read as UTF-8.
pub fn path_info(raw: &[u8]) -> String {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while let Some(&b) = raw.get(i) {
        let hex = |at: usize| raw.get(at).and_then(|h| (*h as char).to_digit(16));
        match (b, hex(i + 1), hex(i + 2)) {
            (b'%', Some(hi), Some(lo)) => {
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `webob.html_escape` (`html.escape(s, quote=True)`).
fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_webob_s() {
        let table = [
            (200, "OK"),
            (302, "Found"),
            (401, "Unauthorized"),
            (403, "Forbidden"),
            (404, "Not Found"),
            (406, "Not Acceptable"),
            (413, "Request Entity Too Large"),
            (422, "Unprocessable Entity"),
            (500, "Internal Server Error"),
            (503, "Service Unavailable"),
        ];
        for (status, phrase) in table {
            assert_eq!(reason(status), phrase, "{status}");
        }
    }

    #[test]
    fn path_info_decodes_percent_escapes() {
        assert_eq!(path_info(b"/a&b%3Cc%3E"), "/a&b<c>");
        assert_eq!(path_info(b"/%C3%A9%2"), "/\u{e9}%2");
        assert_eq!(path_info(b"/plain"), "/plain");
    }

    #[test]
    fn negotiation_table() {
        use PageFormat::*;
        let table: &[(Option<&str>, PageFormat)] = &[
            (None, Plain),
            (Some(""), Plain),
            (Some("*/*"), Html),
            (Some("text/html"), Html),
            (Some("text/*"), Html),
            (Some("application/json"), Json),
            (Some("application/*"), Json),
            (Some("application/json, text/html"), Html),
            (Some("application/json;q=0.5, text/html;q=0.4"), Json),
            (Some("text/html;q=0, */*"), Json),
            (Some("text/plain"), Plain),
            (Some("image/png"), Plain),
            (Some("text/html;level=1"), Plain),
            (Some("*/*;q=0.1, application/json"), Json),
            (Some("application/json;q=2"), Html),
            (Some("nonsense"), Html),
        ];
        for (accept, want) in table {
            assert_eq!(negotiate(accept.map(str::as_bytes)), *want, "{accept:?}");
        }
    }

    /// Golden bodies from Pyramid 2.0.2 (`exc.prepare({"HTTP_ACCEPT": ...})`).
    #[test]
    fn pages_match_pyramid() {
        let (ct, body) = render(406, "", "SSL is required", PageFormat::Plain);
        assert_eq!(ct, "text/plain; charset=UTF-8");
        assert_eq!(body, "406 Not Acceptable\n\n\n\n\nSSL is required\n\n");
        let (_, body) = render(406, "", "SSL is required", PageFormat::Html);
        assert_eq!(body, "<html>\n <head>\n  <title>406 Not Acceptable</title>\n </head>\n <body>\n  <h1>406 Not Acceptable</h1>\n  <br/><br/>\nSSL is required\n\n\n </body>\n</html>");
        let (_, body) = render(406, "", "SSL is required", PageFormat::Json);
        assert_eq!(
            body,
            r#"{"message": "\n\n\nSSL is required\n\n", "code": "406 Not Acceptable", "title": "Not Acceptable"}"#
        );
        let (_, body) = render(404, NOT_FOUND, "a<b&c>\"'", PageFormat::Html);
        assert_eq!(body, "<html>\n <head>\n  <title>404 Not Found</title>\n </head>\n <body>\n  <h1>404 Not Found</h1>\n  The resource could not be found.<br/><br/>\na&lt;b&amp;c&gt;&quot;&#x27;\n\n\n </body>\n</html>");
        let (_, body) = render(404, NOT_FOUND, "a<b&c>\"'", PageFormat::Plain);
        assert_eq!(
            body,
            "404 Not Found\n\nThe resource could not be found.\n\n\na<b&c>\"'\n\n"
        );
        let (_, body) = render(403, FORBIDDEN, "", PageFormat::Json);
        assert_eq!(
            body,
            r#"{"message": "Access was denied to this resource.\n\n\n\n\n", "code": "403 Forbidden", "title": "Forbidden"}"#
        );
        let (_, body) = render(403, FORBIDDEN, "", PageFormat::Html);
        assert_eq!(body, "<html>\n <head>\n  <title>403 Forbidden</title>\n </head>\n <body>\n  <h1>403 Forbidden</h1>\n  Access was denied to this resource.<br/><br/>\n\n\n\n </body>\n</html>");
    }
}
