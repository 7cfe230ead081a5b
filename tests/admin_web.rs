//! The admin web app, black-box over real sockets: the 302s to the sign-in page with WebOb's
//! bodies, the embedded assets and their content types and cache headers, the admin session
//! on the server API (cookie plus `X-Herald-Admin`), and that every admin route still
//! refuses a request without rights.

mod common;
use common::*;
use serde_json::json;

/// Sign in with the default admin credentials; the `auth_tkt=...` cookie pair.
fn sign_in(srv: &Server) -> String {
    let r = request(
        srv,
        "POST",
        "/admin/sign_in",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        b"username=admin&password=admin_secret",
    );
    assert_eq!(r.status, 302, "{}", r.text());
    assert_eq!(
        r.header("Location"),
        Some(format!("http://{}/admin", srv.addr).as_str())
    );
    let cookie = r.header("Set-Cookie").expect("a cookie");
    assert!(cookie.contains("Max-Age=2592000"), "{cookie}");
    cookie.split(';').next().unwrap_or_default().to_string()
}

#[test]
fn without_a_session_admin_pages_redirect_with_webobs_body() {
    let srv = Server::start(1);
    let sign_in_url = format!("http://{}/admin/sign_in", srv.addr);
    for path in [
        "/admin",
        "/api-explorer",
        "/admin/connections.json",
        "/admin/admin.json",
    ] {
        // No Accept: WebOb's plain-text body.
        let r = request(&srv, "GET", path, &[], b"");
        assert_eq!(r.status, 302, "{path}");
        assert_eq!(r.header("Location"), Some(sign_in_url.as_str()), "{path}");
        assert_eq!(r.header("Content-Type"), Some("text/plain; charset=UTF-8"));
        assert_eq!(
            r.text(),
            format!(
                "302 Found\n\nThe resource was found at {sign_in_url}; you should be redirected automatically.  "
            ),
            "{path}"
        );
        // A browser's Accept: the HTML body.
        let r = request(
            &srv,
            "GET",
            path,
            &[("Accept", "text/html,application/xhtml+xml,*/*;q=0.8")],
            b"",
        );
        assert_eq!(r.status, 302);
        assert_eq!(r.header("Content-Type"), Some("text/html; charset=UTF-8"));
        assert_eq!(
            r.text(),
            format!(
                "<html>\n <head>\n  <title>302 Found</title>\n </head>\n <body>\n  <h1>302 Found</h1>\n  The resource was found at <a href=\"{sign_in_url}\">{sign_in_url}</a>;\nyou should be redirected automatically.\n\n\n </body>\n</html>"
            )
        );
        assert_eq!(r.header("Access-Control-Allow-Origin"), None);
    }
    // JSON flavour.
    let r = request(
        &srv,
        "GET",
        "/admin",
        &[("Accept", "application/json")],
        b"",
    );
    assert_eq!(r.header("Content-Type"), Some("application/json"));
    assert_eq!(r.json()["code"], json!("302 Found"));
    // The prefix and the Host header make the Location.
    let r = raw(
        &srv,
        b"GET /cs/api-explorer HTTP/1.1\r\nHost: example.test:81\r\nX-Script-Name: /cs\r\n\r\n",
    )
    .expect("an answer");
    assert_eq!(r.status, 302);
    assert_eq!(
        r.header("Location"),
        Some("http://example.test:81/cs/admin/sign_in")
    );
}

#[test]
fn admin_routes_refuse_without_rights() {
    let srv = Server::start(1);
    assert_eq!(request(&srv, "GET", "/openapi.json", &[], b"").status, 403);
    assert_eq!(request(&srv, "GET", "/metrics", &[], b"").status, 403);
    // A forged cookie is no session.
    let forged = "auth_tkt=00000000000000000000000000000000000000006560000a!61646d696e";
    for path in ["/admin", "/api-explorer", "/admin/connections.json"] {
        let r = request(&srv, "GET", path, &[("Cookie", forged)], b"");
        assert_eq!(r.status, 302, "{path}");
    }
    // The server API never takes the cookie alone, nor the header alone, nor a forged one.
    let cookie = sign_in(&srv);
    let h = ("X-Herald-Admin", "1");
    let body = br#"{"info": {}}"#;
    for headers in [
        vec![("Cookie", cookie.as_str())],
        vec![h],
        vec![("Cookie", forged), h],
        vec![("Cookie", cookie.as_str()), ("X-Herald-Admin", "")],
    ] {
        let r = request(&srv, "POST", "/info", &headers, body);
        assert_eq!(r.status, 403, "{headers:?}");
    }
    // Wrong credentials: the form again, 200, with the notice.
    let r = request(
        &srv,
        "POST",
        "/admin/sign_in",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        b"username=admin&password=nope",
    );
    assert_eq!(r.status, 200);
    assert!(r.header("Set-Cookie").is_none());
    assert!(r.text().contains("Wrong user name or password"));
}

#[test]
fn with_a_session_the_pages_the_api_and_sign_out() {
    let srv = Server::start(1);
    let cookie = sign_in(&srv);
    let c = [("Cookie", cookie.as_str())];
    for path in ["/admin", "/api-explorer"] {
        let r = request(&srv, "GET", path, &c, b"");
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.header("Content-Type"), Some("text/html; charset=UTF-8"));
        assert_eq!(
            r.header("Cache-Control"),
            None,
            "as 0.7.1: no cache header on pages"
        );
        assert!(r.text().contains("static/herald/common.js?v="), "{path}");
    }
    let r = request(&srv, "GET", "/metrics", &c, b"");
    assert_eq!(r.status, 200);
    assert!(r.text().contains("herald_connections_open"));
    // The server API with the admin session.
    let with = [("Cookie", cookie.as_str()), ("X-Herald-Admin", "1")];
    let v = api(
        &srv,
        "POST",
        "/connect",
        &json!({"username": "u1", "channels": ["c1"]}),
    )
    .json();
    let r = request(
        &srv,
        "POST",
        "/message",
        &with,
        br#"[{"channel": "c1", "user": "admin", "message": {"text": "hi"}}]"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let r = request(
        &srv,
        "POST",
        "/channel_config",
        &with,
        br#"{"c1": {"store_history": true, "history_size": 3}}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let info = api(
        &srv,
        "POST",
        "/info",
        &json!({"info": {"channels": ["c1"]}}),
    )
    .json();
    assert_eq!(info["channels"]["c1"]["settings"]["history_size"], json!(3));
    // The dashboard's connection list.
    let r = request(&srv, "GET", "/admin/connections.json", &c, b"");
    assert_eq!(r.status, 200);
    let list = r.json();
    assert_eq!(list["connections"][0]["conn_id"], v["conn_id"]);
    assert_eq!(list["connections"][0]["transport"], json!("none"));
    // Sign out: back to the sign-in page, cookie cleared.
    let r = request(&srv, "GET", "/admin/sign_out", &c, b"");
    assert_eq!(r.status, 302);
    assert_eq!(
        r.header("Location"),
        Some(format!("http://{}/admin/sign_in", srv.addr).as_str())
    );
    assert!(r.header("Set-Cookie").unwrap().starts_with("auth_tkt=;"));
    assert!(r.text().starts_with("302 Found\n\n"));
}

#[test]
fn static_assets_have_their_content_types() {
    let srv = Server::start(1);
    let page = request(&srv, "GET", "/admin/sign_in", &[], b"");
    assert_eq!(page.status, 200);
    let html = page.text();
    assert!(html.contains("<form method=\"post\" action=\"sign_in\""));
    let v = html
        .split("admin.css?v=")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("a versioned stylesheet")
        .to_string();
    for (name, ty) in [
        ("admin.css", "text/css; charset=utf-8"),
        ("admin.js", "text/javascript; charset=utf-8"),
        ("common.js", "text/javascript; charset=utf-8"),
        ("explorer.js", "text/javascript; charset=utf-8"),
    ] {
        // No rights needed, as Channelstream's /static/*.
        let r = request(
            &srv,
            "GET",
            &format!("/static/herald/{name}?v={v}"),
            &[],
            b"",
        );
        assert_eq!(r.status, 200, "{name}");
        assert_eq!(r.header("Content-Type"), Some(ty), "{name}");
        assert_eq!(
            r.header("Cache-Control"),
            Some("public, max-age=31536000, immutable")
        );
        assert_eq!(r.header("X-Content-Type-Options"), Some("nosniff"));
        assert_eq!(r.header("Access-Control-Allow-Origin"), None);
        assert!(!r.body.is_empty());
        let r = request(&srv, "GET", &format!("/static/herald/{name}"), &[], b"");
        assert_eq!(r.header("Cache-Control"), Some("no-cache"), "{name}");
    }
    assert_eq!(
        request(&srv, "GET", "/static/herald/nope.js", &[], b"").status,
        404
    );
    assert_eq!(
        request(&srv, "GET", "/static/herald/../../Cargo.toml", &[], b"").status,
        404
    );
    assert_eq!(
        request(&srv, "POST", "/static/herald/admin.js", &[], b"").status,
        404
    );
    let r = request(&srv, "HEAD", "/static/herald/admin.css", &[], b"");
    assert_eq!(r.status, 200);
    assert!(r.body.is_empty());
}
