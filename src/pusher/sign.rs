//! Pusher signatures: channel auth strings (`key:HMAC-SHA256(secret, "socket_id:channel")`)
//! and HTTP API request signatures (`auth_key`, `auth_timestamp`, `auth_version`, `body_md5`,
//! `auth_signature` over `METHOD\nPATH\nsorted query`).
//!
//! Why one module: both are HMAC-SHA256 hex compared in constant time (`subtle`), and both are
//! the only thing standing between the network and another socket's channels or a publish.
//! Pure functions, tested with the vectors of Pusher's documentation.

use super::apps::App;
use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// How far `auth_timestamp` may be from the server's clock, in seconds.
pub const MAX_CLOCK_SKEW: u64 = 600;

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Hex HMAC-SHA256 of `msg` under `secret`.
pub fn hmac_hex(secret: &[u8], msg: &[u8]) -> String {
    // HMAC takes keys of any length: this never fails.
    match HmacSha256::new_from_slice(secret) {
        Ok(mut mac) => {
            mac.update(msg);
            hex(&mac.finalize().into_bytes())
        }
        Err(_) => String::new(),
    }
}

/// Constant-time equality (the length is not secret).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// Whether `auth` is the app's signature of `socket_id:channel` (private channels).
pub fn channel_auth_ok(app: &App, socket_id: &str, channel: &str, auth: &str) -> bool {
    let want = format!(
        "{}:{}",
        app.key,
        hmac_hex(
            app.secret.as_bytes(),
            format!("{socket_id}:{channel}").as_bytes()
        )
    );
    ct_eq(want.as_bytes(), auth.as_bytes())
}

/// Whether `auth` is the app's signature of `socket_id:channel:channel_data` (presence
/// channels; `channel_data` is the exact string the client sent, compared byte for byte).
pub fn presence_auth_ok(
    app: &App,
    socket_id: &str,
    channel: &str,
    channel_data: &str,
    auth: &str,
) -> bool {
    let signed = format!("{socket_id}:{channel}:{channel_data}");
    let want = format!(
        "{}:{}",
        app.key,
        hmac_hex(app.secret.as_bytes(), signed.as_bytes())
    );
    ct_eq(want.as_bytes(), auth.as_bytes())
}

/// Whether `auth` is the app's signature of `socket_id::user::user_data` (`pusher:signin`;
/// `user_data` is the exact string the client sent).
pub fn user_auth_ok(app: &App, socket_id: &str, user_data: &str, auth: &str) -> bool {
    let signed = format!("{socket_id}::user::{user_data}");
    let want = format!(
        "{}:{}",
        app.key,
        hmac_hex(app.secret.as_bytes(), signed.as_bytes())
    );
    ct_eq(want.as_bytes(), auth.as_bytes())
}

/// Why an HTTP API request's signature was refused (the 401 body).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApiAuthError {
    /// `auth_key`, `auth_timestamp`, `auth_version` or `auth_signature` missing.
    Missing,
    /// `auth_key` is not the app's key.
    WrongKey,
    /// `auth_version` other than 1.0.
    Version,
    /// `auth_timestamp` not a number, or more than [`MAX_CLOCK_SKEW`] away.
    Expired,
    /// `body_md5` missing for a body, or not the body's MD5.
    BodyMd5,
    /// `auth_signature` wrong.
    Signature,
}

impl ApiAuthError {
    /// A human-readable reason.
    pub fn message(self) -> &'static str {
        match self {
            ApiAuthError::Missing => "Missing authentication parameters",
            ApiAuthError::WrongKey => "Unknown auth_key",
            ApiAuthError::Version => "auth_version must be 1.0",
            ApiAuthError::Expired => "auth_timestamp is more than 600 s from the server's time",
            ApiAuthError::BodyMd5 => "body_md5 does not match the body",
            ApiAuthError::Signature => "Invalid signature",
        }
    }
}

/// The query's parameters, percent-decoded, keys lower-cased.
fn params(query: &[u8]) -> Vec<(String, String)> {
    query
        .split(|&b| b == b'&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = match pair.iter().position(|&b| b == b'=') {
                Some(eq) => (
                    pair.get(..eq).unwrap_or(&[]),
                    pair.get(eq + 1..).unwrap_or(&[]),
                ),
                None => (pair, &[][..]),
            };
            let dec = |s: &[u8]| {
                String::from_utf8_lossy(&crate::proto::http::percent_decode(s)).into_owned()
            };
            (dec(k).to_ascii_lowercase(), dec(v))
        })
        .collect()
}

/// Check an HTTP API request's signature (Pusher's "Authentication" of the REST API).
pub fn verify_api(
    app: &App,
    method: &str,
    path: &str,
    query: &[u8],
    body: &[u8],
    now_unix: u64,
) -> Result<(), ApiAuthError> {
    let mut ps = params(query);
    let get = |k: &str| ps.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let (Some(key), Some(ts), Some(version), Some(sig)) = (
        get("auth_key"),
        get("auth_timestamp"),
        get("auth_version"),
        get("auth_signature"),
    ) else {
        return Err(ApiAuthError::Missing);
    };
    if key != app.key {
        return Err(ApiAuthError::WrongKey);
    }
    if version != "1.0" {
        return Err(ApiAuthError::Version);
    }
    match ts.parse::<u64>() {
        Ok(t) if t.abs_diff(now_unix) <= MAX_CLOCK_SKEW => {}
        _ => return Err(ApiAuthError::Expired),
    }
    // A body must be signed by its MD5; an empty body may still carry MD5("") (PyPI SDK).
    let md5 = get("body_md5");
    if !body.is_empty() || md5.is_some() {
        let want = hex(&Md5::digest(body));
        if !md5.is_some_and(|m| ct_eq(m.as_bytes(), want.as_bytes())) {
            return Err(ApiAuthError::BodyMd5);
        }
    }
    let sig = sig.as_bytes().to_vec();
    ps.retain(|(k, _)| k != "auth_signature");
    ps.sort_by(|a, b| a.0.cmp(&b.0));
    let q: Vec<String> = ps.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let to_sign = format!("{method}\n{path}\n{}", q.join("&"));
    let want = hmac_hex(app.secret.as_bytes(), to_sign.as_bytes());
    if ct_eq(want.as_bytes(), &sig) {
        Ok(())
    } else {
        Err(ApiAuthError::Signature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc_app() -> App {
        App::new("3", "278d425bdf160c739803", "7ad3773142a6692b25b8")
    }

    #[test]
    fn private_channel_vector() {
        let app = doc_app();
        let sig =
            "278d425bdf160c739803:58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4";
        assert!(channel_auth_ok(&app, "1234.1234", "private-foobar", sig));
        assert!(!channel_auth_ok(&app, "1234.1235", "private-foobar", sig));
        assert!(!channel_auth_ok(&app, "1234.1234", "private-foobar", "x"));
    }

    #[test]
    fn user_signin_vector() {
        let app = doc_app();
        let auth =
            "278d425bdf160c739803:4708d583dada6a56435fb8bc611c77c359a31eebde13337c16ab43aa6de336ba";
        let data = r#"{"id":"12345"}"#;
        assert!(user_auth_ok(&app, "1234.1234", data, auth));
        assert!(!user_auth_ok(&app, "1234.1235", data, auth));
        assert!(!user_auth_ok(&app, "1234.1234", r#"{"id":"12346"}"#, auth));
        assert!(!user_auth_ok(&app, "1234.1234", data, ""));
    }

    #[test]
    fn presence_channel_vector() {
        // Computed with Python's hmac over the same string.
        let app = doc_app();
        let data = r#"{"user_id":"7","user_info":{"name":"Ann"}}"#;
        let sig =
            "278d425bdf160c739803:024876e17c51331ee59fc33adf5500fb0175f12e1ab98445bb07f5e5d1d4233f";
        assert!(presence_auth_ok(
            &app,
            "1234.1234",
            "presence-foobar",
            data,
            sig
        ));
        let spaced = r#"{"user_id": "7","user_info":{"name":"Ann"}}"#;
        assert!(!presence_auth_ok(
            &app,
            "1234.1234",
            "presence-foobar",
            spaced,
            sig
        ));
        assert!(!channel_auth_ok(&app, "1234.1234", "presence-foobar", sig));
    }

    #[test]
    fn api_signature_vector() {
        let app = doc_app();
        let body = br#"{"name":"foo","channels":["project-3"],"data":"{\"some\":\"data\"}"}"#;
        assert_eq!(hex(&Md5::digest(body)), "ec365a775a4cd0599faeb73354201b6f");
        let q = "auth_key=278d425bdf160c739803&auth_timestamp=1353088179&auth_version=1.0&body_md5=ec365a775a4cd0599faeb73354201b6f";
        let sig = "da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c";
        let full = format!("{q}&auth_signature={sig}");
        let now = 1353088179 + 10;
        let path = "/apps/3/events";
        assert_eq!(
            verify_api(&app, "POST", path, full.as_bytes(), body, now),
            Ok(())
        );
        // Order of the query does not matter.
        let shuffled = format!("auth_signature={sig}&body_md5=ec365a775a4cd0599faeb73354201b6f&auth_version=1.0&auth_timestamp=1353088179&auth_key=278d425bdf160c739803");
        assert_eq!(
            verify_api(&app, "POST", path, shuffled.as_bytes(), body, now),
            Ok(())
        );
        let late = now + 601;
        assert_eq!(
            verify_api(&app, "POST", path, full.as_bytes(), body, late),
            Err(ApiAuthError::Expired)
        );
        assert_eq!(
            verify_api(&app, "POST", path, full.as_bytes(), b"{}", now),
            Err(ApiAuthError::BodyMd5)
        );
        let bad = full.replace("da45", "da46");
        assert_eq!(
            verify_api(&app, "POST", path, bad.as_bytes(), body, now),
            Err(ApiAuthError::Signature)
        );
        assert_eq!(
            verify_api(&app, "POST", path, q.as_bytes(), body, now),
            Err(ApiAuthError::Missing)
        );
    }
}
