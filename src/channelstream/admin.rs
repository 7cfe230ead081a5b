//! Herald's admin web app: the embedded pages and assets, their cache headers, and WebOb's
//! `302 Found` bodies.
//!
//! Every byte of the admin UI lives in `assets/admin/` and is compiled into the binary with
//! `include_bytes!`: nothing is fetched from a CDN or generated at run time. `front.rs` routes
//! `/admin`, `/admin/sign_in` and `/api-explorer` to [`page`] and `/static/herald/<file>` to
//! [`static_asset`].
//!
//! Caching: pages reference assets as `static/herald/<file>?v=<ASSET_VERSION>`, a hash of every
//! embedded asset computed at compile time. An asset asked for with the current version is
//! `immutable` for a year; without it (or with a stale one) it is `no-cache`, so a new binary
//! is never hidden behind an old copy. Pages carry no cache header, as 0.7.1's: their HTML holds
//! no data (the dashboard fetches it through the session).
//!
//! The admin session on the server API: the dashboard and the explorer call `/message`,
//! `/channel_config`, `/info`... with the admin cookie instead of a signature. The front
//! accepts that only when the request also carries [`ADMIN_API_HEADER`], which no cross-site
//! form can send and which the CORS preflight does not allow (it is not in
//! `Access-Control-Allow-Headers`), so the cookie alone never authorises a server-API call.

use crate::dialect::{HeaderValue, Response};

/// The header (any non-empty value) that lets a server-API request be authorised by the admin
/// cookie rather than a signature.
pub const ADMIN_API_HEADER: &str = "x-herald-admin";

/// One embedded file.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

const CSS: &str = "text/css; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const HTML: &str = "text/html; charset=UTF-8";

/// The files served under `/static/herald/`.
const ASSETS: &[Asset] = &[
    Asset {
        name: "admin.css",
        content_type: CSS,
        bytes: include_bytes!("../../assets/admin/admin.css"),
    },
    Asset {
        name: "admin.js",
        content_type: JS,
        bytes: include_bytes!("../../assets/admin/admin.js"),
    },
    Asset {
        name: "explorer.js",
        content_type: JS,
        bytes: include_bytes!("../../assets/admin/explorer.js"),
    },
    Asset {
        name: "common.js",
        content_type: JS,
        bytes: include_bytes!("../../assets/admin/common.js"),
    },
];

const SIGN_IN_HTML: &[u8] = include_bytes!("../../assets/admin/sign_in.html");
const ADMIN_HTML: &[u8] = include_bytes!("../../assets/admin/admin.html");
const EXPLORER_HTML: &[u8] = include_bytes!("../../assets/admin/explorer.html");

/// FNV-1a over `b`, continuing from `h`.
const fn fnv1a(mut h: u64, mut b: &[u8]) -> u64 {
    while let [first, rest @ ..] = b {
        h ^= *first as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
        b = rest;
    }
    h
}

const fn assets_hash() -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325;
    let mut rest = ASSETS;
    while let [first, tail @ ..] = rest {
        h = fnv1a(h, first.bytes);
        rest = tail;
    }
    // The pages name the assets, so they count too.
    h = fnv1a(h, SIGN_IN_HTML);
    h = fnv1a(h, ADMIN_HTML);
    fnv1a(h, EXPLORER_HTML)
}

/// The hash of every embedded asset, the `v` query parameter the pages put on asset URLs.
pub const ASSET_VERSION: u64 = assets_hash();

/// The admin pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Page {
    /// `/admin/sign_in`; `failed` after refused credentials.
    SignIn {
        /// Show the "wrong user name or password" notice.
        failed: bool,
    },
    /// `/admin`: the dashboard.
    Dashboard,
    /// `/api-explorer`.
    Explorer,
}

/// A page, 200, `text/html`, asset URLs versioned. No cache header, as 0.7.1's pages: the
/// HTML holds no data (the dashboard fetches it with the session).
pub fn page(p: Page) -> Response {
    let (bytes, failed) = match p {
        Page::SignIn { failed } => (SIGN_IN_HTML, failed),
        Page::Dashboard => (ADMIN_HTML, false),
        Page::Explorer => (EXPLORER_HTML, false),
    };
    let mut html = String::from_utf8_lossy(bytes).replace("__V__", &version_string());
    if failed {
        html = html.replace(
            "<!--error-->",
            "<p class=\"error\" id=\"error\">Wrong user name or password.</p>",
        );
    }
    Response::new(200, HTML, html)
}

fn version_string() -> String {
    format!("{ASSET_VERSION:016x}")
}

/// `/static/herald/<file>`: the embedded asset, or `None` (the caller answers 404). `v` is the
/// request's `v` query parameter.
pub fn static_asset(path: &[u8], v: Option<&str>) -> Option<Response> {
    let name = path.strip_prefix(b"/static/herald/")?;
    let a = ASSETS.iter().find(|a| a.name.as_bytes() == name)?;
    let mut r = Response::new(200, a.content_type, bytes::Bytes::from_static(a.bytes));
    let cache: &'static [u8] = if v == Some(version_string().as_str()) {
        b"public, max-age=31536000, immutable"
    } else {
        b"no-cache"
    };
    r.headers
        .push(("Cache-Control", HeaderValue::Static(cache)));
    r.headers
        .push(("X-Content-Type-Options", HeaderValue::Static(b"nosniff")));
    Some(r)
}

/// Which body WebOb 1.8 renders for an HTTP exception, by `Accept` (`generate_response`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flavour {
    Html,
    Json,
    Plain,
}

/// `acceptable_offers(["text/html", "application/json"])`, first offer: the highest quality,
/// ties going to HTML; no (or an empty) `Accept` is plain text, an unparsable one HTML.
fn flavour(accept: Option<&[u8]>) -> Flavour {
    let Some(raw) = accept else {
        return Flavour::Plain;
    };
    let text = String::from_utf8_lossy(raw);
    // (type, subtype, q) per media range.
    let mut ranges: Vec<(String, String, f32)> = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let mut params = part.split(';').map(str::trim);
        let media = params.next().unwrap_or_default().to_ascii_lowercase();
        let Some((ty, sub)) = media.split_once('/') else {
            return Flavour::Html;
        };
        let mut q = 1.0f32;
        for p in params {
            if let Some(v) = p.strip_prefix("q=").or_else(|| p.strip_prefix("Q=")) {
                match v.trim().parse::<f32>() {
                    Ok(x) if (0.0..=1.0).contains(&x) => q = x,
                    _ => return Flavour::Html,
                }
            }
        }
        ranges.push((ty.to_string(), sub.to_string(), q));
    }
    // The most specific matching range decides an offer's quality.
    let quality = |ty: &str, sub: &str| -> f32 {
        let mut best: Option<(u8, f32)> = None;
        for (t, s, q) in &ranges {
            let spec = match (t.as_str(), s.as_str()) {
                (t, s) if t == ty && s == sub => 3,
                (t, "*") if t == ty => 2,
                ("*", "*") => 1,
                _ => continue,
            };
            if best.is_none_or(|(b, _)| spec > b) {
                best = Some((spec, *q));
            }
        }
        best.map_or(0.0, |(_, q)| q)
    };
    let (html, json) = (quality("text", "html"), quality("application", "json"));
    if html > 0.0 && html >= json {
        Flavour::Html
    } else if json > 0.0 {
        Flavour::Json
    } else {
        Flavour::Plain
    }
}

/// Python's `html.escape(s, quote=True)`.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#x27;")
}

/// A `302 Found` to `location` with the body WebOb's `HTTPFound` renders for this `Accept`
/// (what Pyramid sends for Channelstream's redirects).
pub fn found(accept: Option<&[u8]>, location: &str) -> Response {
    let (content_type, body) = match flavour(accept) {
        Flavour::Html => {
            let loc = escape(location);
            (
                HTML,
                format!(
                    "<html>\n <head>\n  <title>302 Found</title>\n </head>\n <body>\n  <h1>302 Found</h1>\n  The resource was found at <a href=\"{loc}\">{loc}</a>;\nyou should be redirected automatically.\n\n\n </body>\n</html>"
                ),
            )
        }
        Flavour::Json => {
            let loc = escape(location);
            let message = format!(
                "The resource was found at <a href=\"{loc}\">{loc}</a>;\nyou should be redirected automatically.\n\n"
            );
            let message = serde_json::to_string(&message).unwrap_or_default();
            (
                "application/json",
                format!("{{\"message\": {message}, \"code\": \"302 Found\", \"title\": \"Found\"}}"),
            )
        }
        Flavour::Plain => (
            "text/plain; charset=UTF-8",
            format!(
                "302 Found\n\nThe resource was found at {location}; you should be redirected automatically.  "
            ),
        ),
    };
    let mut r = Response::new(302, content_type, body);
    r.headers.push(("Location", location.to_string().into()));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_negotiation_follows_webob() {
        let cases: &[(Option<&str>, Flavour)] = &[
            (None, Flavour::Plain),
            (Some(""), Flavour::Plain),
            (Some("*/*"), Flavour::Html),
            (
                Some("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
                Flavour::Html,
            ),
            (Some("application/json"), Flavour::Json),
            (Some("application/json, text/html"), Flavour::Html),
            (Some("text/html;q=0.5, application/json"), Flavour::Json),
            (Some("application/json, */*;q=0.1"), Flavour::Json),
            (Some("text/plain"), Flavour::Plain),
            (Some("image/png"), Flavour::Plain),
            (Some("text/*"), Flavour::Html),
            (Some("text/html;q=0"), Flavour::Plain),
            (Some("garbage"), Flavour::Html),
        ];
        for (accept, want) in cases {
            assert_eq!(flavour(accept.map(str::as_bytes)), *want, "{accept:?}");
        }
    }

    #[test]
    fn found_bodies_are_webobs() {
        let loc = "http://127.0.0.1:8000/admin/sign_in";
        let r = found(None, loc);
        assert_eq!(r.status, 302);
        assert_eq!(
            &r.body[..],
            b"302 Found\n\nThe resource was found at http://127.0.0.1:8000/admin/sign_in; you should be redirected automatically.  "
        );
        assert_eq!(r.body.len(), 115);
        let r = found(Some(b"text/html"), loc);
        assert_eq!(r.body.len(), 253);
        assert!(r
            .body
            .starts_with(b"<html>\n <head>\n  <title>302 Found</title>"));
        let r = found(Some(b"application/json"), loc);
        assert_eq!(r.body.len(), 213);
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["code"], "302 Found");
    }

    #[test]
    fn assets_are_versioned() {
        let v = version_string();
        let r = static_asset(b"/static/herald/admin.js", Some(&v)).unwrap();
        assert_eq!(r.content_type, JS);
        let cache = |r: &Response| {
            r.headers
                .iter()
                .find(|(k, _)| *k == "Cache-Control")
                .map(|(_, v)| v.as_bytes().to_vec())
        };
        assert_eq!(
            cache(&r).unwrap(),
            b"public, max-age=31536000, immutable".to_vec()
        );
        let r = static_asset(b"/static/herald/admin.css", Some("old")).unwrap();
        assert_eq!(cache(&r).unwrap(), b"no-cache".to_vec());
        assert!(static_asset(b"/static/herald/nope.js", None).is_none());
        assert!(static_asset(b"/static/herald/../Cargo.toml", None).is_none());
        let p = page(Page::Dashboard);
        let html = String::from_utf8_lossy(&p.body).into_owned();
        assert!(html.contains(&format!("admin.js?v={v}")), "{html}");
        assert!(!html.contains("__V__"));
        let p = page(Page::SignIn { failed: true });
        assert!(String::from_utf8_lossy(&p.body).contains("id=\"error\""));
    }
}
