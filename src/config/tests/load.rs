use super::*;

// ---------------------------------------------------------------- precedence

#[test]
fn defaults_without_ini_or_env() {
    let (c, ignored) = cfg(&[], &[], None);
    assert!(ignored.is_empty());
    assert_eq!(c.host, "127.0.0.1");
    assert_eq!(c.port, 8000);
    assert_eq!(c.secret, "secret");
    assert_eq!(c.admin_user, "admin");
    assert_eq!(c.admin_secret, "admin_secret");
    assert_eq!(c.allow_posting_from, vec!["127.0.0.1"]);
    assert!(c.allow_cors.is_empty());
    assert!(c.validate_requests);
    assert!(!c.enforce_https);
    assert!(!c.debug);
    assert_eq!(c.http_scheme, "");
    assert_eq!(c.log_level, "INFO");
    assert_eq!(c.echo_path, None);
    assert_eq!(c.limits, Limits::default());
    assert!(c.shards >= 1);
    assert_eq!(c.ini_path, None);
    assert!(uuid::Uuid::parse_str(&c.cookie_secret).is_ok());
    assert_eq!(c.signer_max_age(), Some(60));
    assert!(c.uses_default_secret() && c.uses_default_admin_secret());
    assert_eq!(c.listen_addr().unwrap(), "127.0.0.1:8000".parse().unwrap());
}

#[test]
fn cookie_secret_differs_per_start() {
    let (a, _) = cfg(&[], &[], None);
    let (b, _) = cfg(&[], &[], None);
    assert_ne!(a.cookie_secret, b.cookie_secret);
}

#[test]
fn env_overrides_defaults_without_ini() {
    let env = [
        ("CHANNELSTREAM_PORT", "8001"),
        ("CHANNELSTREAM_HOST", "0.0.0.0"),
        ("CHANNELSTREAM_SECRET", "s3"),
        ("CHANNELSTREAM_ADMIN_USER", "root"),
        ("CHANNELSTREAM_ADMIN_SECRET", "pw"),
        ("CHANNELSTREAM_COOKIE_SECRET", "cookie"),
        ("CHANNELSTREAM_ALLOW_POSTING_FROM", "127.0.0.5, 0.0.0.0"),
        ("CHANNELSTREAM_ALLOW_CORS", "example.com, foo.org"),
        ("CHANNELSTREAM_VALIDATE_REQUESTS", "false"),
        ("CHANNELSTREAM_ENFORCE_HTTPS", "true"),
        ("CHANNELSTREAM_HTTP_SCHEME", "https"),
        ("CHANNELSTREAM_LOG_LEVEL", "debug"),
        ("CHANNELSTREAM_DEBUG", "yes"),
        ("CHANNELSTREAM_SIGNATURE_CHECKER", DEFAULT_SIGNATURE_CHECKER),
        ("CHANNELSTREAM_DEMO", "true"), // not a configurable key
    ];
    let (c, ignored) = cfg(&[], &env, None);
    assert!(ignored.is_empty());
    assert_eq!((c.host.as_str(), c.port), ("0.0.0.0", 8001));
    assert_eq!(c.secret, "s3");
    assert_eq!(c.admin_user, "root");
    assert_eq!(c.admin_secret, "pw");
    assert_eq!(c.cookie_secret, "cookie");
    assert_eq!(c.allow_posting_from, vec!["127.0.0.5", "0.0.0.0"]);
    assert_eq!(c.allow_cors, vec!["example.com", "foo.org"]);
    assert!(!c.validate_requests);
    assert_eq!(c.signer_max_age(), None);
    assert!(c.enforce_https);
    assert_eq!(c.http_scheme, "https");
    assert_eq!(c.log_level, "DEBUG");
    assert_eq!(c.log_directive(), "debug");
    assert!(c.debug);
}

#[test]
fn env_empty_values_follow_channelstream() {
    let env = [
        ("CHANNELSTREAM_ALLOW_POSTING_FROM", ""),
        ("CHANNELSTREAM_LOG_LEVEL", ""),
        ("CHANNELSTREAM_HOST", ""),
        ("CHANNELSTREAM_SECRET", ""),
        ("CHANNELSTREAM_VALIDATE_REQUESTS", ""),
        ("CHANNELSTREAM_HTTP_SCHEME", "HTTPS"),
    ];
    let (c, _) = cfg(&[], &env, None);
    assert!(c.allow_posting_from.is_empty());
    assert_eq!(c.log_level, "INFO");
    assert_eq!(c.host, "0.0.0.0");
    assert_eq!(c.secret, "");
    assert!(!c.validate_requests);
    assert_eq!(c.http_scheme, "");
}

const INI: &str = "\
[DEFAULT]
here = /srv

[channelstream]
port = 8002
Secret = from-ini
admin_secret = a%%b
allow_posting_from = 127.0.0.1,
                     10.0.0.1
                     
demo = true
log_level = warn

[other]
port = 1
";

#[test]
fn ini_ignores_env_completely() {
    let env = [
        ("CHANNELSTREAM_PORT", "9999"),
        ("CHANNELSTREAM_ADMIN_USER", "from-env"),
        ("CHANNELSTREAM_LOG_LEVEL", "not-a-level"),
    ];
    let (c, ignored) = cfg(&["-i", "/etc/cs.ini"], &env, Some(("/etc/cs.ini", INI)));
    assert_eq!(c.port, 8002);
    assert_eq!(c.secret, "from-ini");
    assert_eq!(c.admin_secret, "a%b");
    assert_eq!(
        c.admin_user, "admin",
        "env must be ignored with an ini file"
    );
    assert_eq!(c.allow_posting_from, vec!["127.0.0.1", "10.0.0.1"]);
    assert_eq!(c.log_level, "WARNING");
    assert_eq!(c.host, "127.0.0.1");
    assert_eq!(c.ini_path, Some(PathBuf::from("/etc/cs.ini")));
    assert_eq!(ignored, vec!["here", "demo"]);
}

#[test]
fn ini_path_from_env_var() {
    let env = [
        ("CHANNELSTREAM_INI", "/etc/cs.ini"),
        ("CHANNELSTREAM_PORT", "9999"),
    ];
    let (c, _) = cfg(&[], &env, Some(("/etc/cs.ini", INI)));
    assert_eq!(c.port, 8002);
    // -i wins over CHANNELSTREAM_INI
    let (c, _) = cfg(
        &["--ini", "/other.ini"],
        &env,
        Some(("/other.ini", "[channelstream]\nport = 7000")),
    );
    assert_eq!(c.port, 7000);
    // an empty CHANNELSTREAM_INI is no ini file: the environment applies
    let (c, _) = cfg(
        &[],
        &[("CHANNELSTREAM_INI", ""), ("CHANNELSTREAM_PORT", "9999")],
        None,
    );
    assert_eq!(c.port, 9999);
}

#[test]
fn flags_override_ini_and_env() {
    let flags = [
        "-i",
        "/etc/cs.ini",
        "--host",
        "::1",
        "--port",
        "9000",
        "--secret",
        "flag-secret",
        "--admin-user",
        "boss",
        "--admin-secret",
        "flag-admin",
        "--allow-posting-from",
        "10.1.1.1 ,, 10.2.2.2",
        "--allow-cors",
        "a.org",
        "--validate-requests",
        "false",
        "--enforce-https",
        "yes",
        "--http-scheme",
        "https",
        "--log-level",
        "error",
        "--shards",
        "3",
        "--echo-path",
        "/echo",
    ];
    let (c, _) = cfg(&flags, &[], Some(("/etc/cs.ini", INI)));
    assert_eq!((c.host.as_str(), c.port), ("::1", 9000));
    assert_eq!(c.secret, "flag-secret");
    assert_eq!(c.admin_user, "boss");
    assert_eq!(c.admin_secret, "flag-admin");
    assert_eq!(c.allow_posting_from, vec!["10.1.1.1", "10.2.2.2"]);
    assert_eq!(c.allow_cors, vec!["a.org"]);
    assert!(!c.validate_requests);
    assert!(c.enforce_https);
    assert_eq!(c.http_scheme, "https");
    assert_eq!(c.log_level, "ERROR");
    assert_eq!(c.shards, 3);
    assert_eq!(c.echo_path.as_deref(), Some("/echo"));
    assert_eq!(c.listen_addr().unwrap(), "[::1]:9000".parse().unwrap());

    let (c, _) = cfg(&["--port", "9001"], &[("CHANNELSTREAM_PORT", "9999")], None);
    assert_eq!(c.port, 9001);
}

#[test]
fn limit_flags() {
    let (c, _) = cfg(
        &[
            "--max-connections",
            "10",
            "--max-connections-total",
            "15",
            "--max-pending-handshakes",
            "4",
            "--max-channels-per-connection",
            "3",
            "--max-head-bytes",
            "2048",
            "--max-headers",
            "8",
            "--max-body-bytes",
            "100",
            "--max-ws-message-bytes",
            "200",
            "--max-queued-bytes",
            "300",
            "--header-timeout-secs",
            "2",
            "--idle-timeout-secs",
            "5",
        ],
        &[],
        None,
    );
    assert_eq!(
        c.limits,
        Limits {
            max_connections_per_shard: 10,
            max_connections_total: 15,
            max_pending_handshakes: 4,
            max_channels_per_connection: 3,
            max_head_bytes: 2048,
            max_headers: 8,
            max_body_bytes: 100,
            max_ws_message_bytes: 200,
            max_queued_bytes: 300,
            header_timeout: Duration::from_secs(2),
            keep_alive_timeout: Duration::from_secs(5),
        }
    );
}

#[test]
fn ini_errors() {
    assert!(matches!(
        err(&["-i", "/nope.ini"], &[], None),
        ConfigError::ReadIni { .. }
    ));
    assert!(matches!(
        err(
            &["-i", "/x.ini"],
            &[],
            Some(("/x.ini", "[other]\nport = 1"))
        ),
        ConfigError::NoSection { .. }
    ));
    // [DEFAULT] alone does not make a [channelstream] section
    assert!(matches!(
        err(
            &["-i", "/x.ini"],
            &[],
            Some(("/x.ini", "[DEFAULT]\nport = 1"))
        ),
        ConfigError::NoSection { .. }
    ));
    match err(
        &["-i", "/x.ini"],
        &[],
        Some(("/x.ini", "[channelstream]\nport 1")),
    ) {
        ConfigError::Ini { source, .. } => assert_eq!(source, IniError::Syntax { line: 2 }),
        e => panic!("{e}"),
    }
    match err(
        &["-i", "/x.ini"],
        &[],
        Some(("/x.ini", "[channelstream]\nsecret = 100%")),
    ) {
        ConfigError::Ini { source, .. } => {
            assert!(matches!(source, IniError::Interpolation { .. }));
            assert!(!source.to_string().contains("100%"));
        }
        e => panic!("{e}"),
    }
    // a stray % in a key we do not use is harmless
    let (c, ignored) = cfg(
        &["-i", "/x.ini"],
        &[],
        Some(("/x.ini", "[channelstream]\nnote = 100%\nport = 1234")),
    );
    assert_eq!((c.port, ignored), (1234, vec!["note".to_string()]));
}

#[test]
fn invalid_values_are_errors() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("CHANNELSTREAM_PORT", "abc")], "port"),
        (&[("CHANNELSTREAM_PORT", "")], "port"),
        (&[("CHANNELSTREAM_PORT", "70000")], "port"),
        (&[("CHANNELSTREAM_PORT", "-1")], "port"),
        (&[("CHANNELSTREAM_LOG_LEVEL", "verbose")], "log_level"),
        (
            &[("CHANNELSTREAM_SIGNATURE_CHECKER", "my.Signer")],
            "signature_checker",
        ),
    ];
    for (env, want_key) in cases {
        match err(&[], env, None) {
            ConfigError::Invalid { key, origin, .. } => {
                assert_eq!(key, *want_key);
                assert_eq!(origin, env_name(want_key));
            }
            e => panic!("{env:?}: {e}"),
        }
    }
    match err(
        &["-i", "/x.ini"],
        &[],
        Some(("/x.ini", "[channelstream]\nport = 80.5")),
    ) {
        ConfigError::Invalid { key, origin, .. } => {
            assert_eq!(key, "port");
            assert_eq!(origin, "ini file /x.ini");
        }
        e => panic!("{e}"),
    }
    // Python int() accepts these
    let (c, _) = cfg(&[], &[("CHANNELSTREAM_PORT", " +8_001 ")], None);
    assert_eq!(c.port, 8001);
}

#[test]
fn bad_flags_are_cli_errors() {
    let bad: &[&[&str]] = &[
        &["--port", "abc"],
        &["--port", "70000"],
        &["--validate-requests", "maybe"],
        &["--enforce-https", ""],
        &["--http-scheme", "ftp"],
        &["--log-level", "loud"],
        &["--shards", "0"],
        &["--echo-path", "echo"],
        &["--echo-path", "/ws"],
        &["--max-connections", "0"],
        &["--header-timeout-secs", "0"],
        &["--no-such-flag"],
        &["make-config", "--port", "1"],
    ];
    for a in bad {
        match err(a, &[], None) {
            ConfigError::Cli(e) => {
                assert_eq!(e.exit_code(), 2, "{a:?}");
            }
            e => panic!("{a:?}: {e}"),
        }
    }
}

#[test]
fn version_flag() {
    for flag in ["-v", "--version"] {
        match run_with(&[flag], &[], None) {
            Ok(Action::Version(line)) => {
                assert!(line.starts_with("herald "), "{line}");
                assert!(line.contains(env!("CARGO_PKG_VERSION")));
                assert!(line.contains("0.7.1"));
            }
            _ => panic!("{flag}"),
        }
    }
}

#[test]
fn help_is_grouped_and_explains_defaults() {
    let e = match err(&["--help"], &[], None) {
        ConfigError::Cli(e) => e,
        e => panic!("{e}"),
    };
    assert_eq!(e.kind(), clap::error::ErrorKind::DisplayHelp);
    assert_eq!(e.exit_code(), 0);
    let help = e.to_string();
    for needle in [
        "wire-compatible with Channelstream 0.7.1",
        "Configuration file:",
        "Server (override the ini file and CHANNELSTREAM_* variables):",
        "Herald:",
        "Limits:",
        "--ini <FILE>",
        "CHANNELSTREAM_INI",
        "--host <HOST>",
        "0.0.0.0",
        "--allow-posting-from <LIST>",
        "--validate-requests <BOOL>",
        "--echo-path <PATH>",
        "--shards <N>",
        "--max-queued-bytes <BYTES>",
        "--idle-timeout-secs <SECS>",
        "make-config",
        "-v, --version",
    ] {
        assert!(help.contains(needle), "--help lacks {needle:?}:\n{help}");
    }
    // -h gives the short form, still listing every flag.
    match err(&["-h"], &[], None) {
        ConfigError::Cli(e) => assert!(e.to_string().contains("--max-head-bytes")),
        e => panic!("{e}"),
    }
}

#[test]
fn config_debug_redacts_secrets() {
    let (c, _) = cfg(
        &["--secret", "hunter2", "--admin-secret", "letmein"],
        &[("CHANNELSTREAM_COOKIE_SECRET", "cookiejar")],
        None,
    );
    let d = format!("{c:?}");
    for s in ["hunter2", "letmein", "cookiejar"] {
        assert!(!d.contains(s), "{s} leaked: {d}");
    }
    assert!(d.contains("<redacted>") && d.contains("allow_posting_from"));
}

#[test]
fn log_directive_table() {
    for (level, want) in [
        ("NOTSET", "trace"),
        ("DEBUG", "debug"),
        ("INFO", "info"),
        ("WARNING", "warn"),
        ("ERROR", "error"),
        ("CRITICAL", "error"),
    ] {
        let c = Config {
            log_level: level.into(),
            ..Config::default()
        };
        assert_eq!(c.log_directive(), want);
    }
}

// ---------------------------------------------------------------- strict mode

#[test]
fn strict_mode_from_ini_env_and_flag() {
    assert!(!cfg(&[], &[], None).0.strict, "off by default");
    let env = [("CHANNELSTREAM_STRICT", "true")];
    assert!(cfg(&[], &env, None).0.strict);
    let ini = "[channelstream]\nstrict = true\nport = 8001\n";
    let (c, ignored) = cfg(&["-i", "/s.ini"], &[], Some(("/s.ini", ini)));
    assert!(c.strict);
    assert!(ignored.is_empty(), "strict is a known key: {ignored:?}");
    // As for every key, the environment is ignored once an ini file is used.
    let plain = "[channelstream]\nport = 8001\n";
    assert!(
        !cfg(&["-i", "/p.ini"], &env, Some(("/p.ini", plain)))
            .0
            .strict
    );
    // The flag wins over both.
    assert!(
        cfg(&["--strict", "-i", "/p.ini"], &[], Some(("/p.ini", plain)))
            .0
            .strict
    );
    assert!(cfg(&["--strict"], &[], None).0.strict);
    let off = "[channelstream]\nstrict = false\n";
    assert!(!cfg(&["-i", "/o.ini"], &[], Some(("/o.ini", off))).0.strict);
}

#[test]
fn ws_deflate_from_ini_env_and_flags() {
    let d = cfg(&[], &[], None).0.deflate;
    assert!(!d.enabled, "off by default");
    assert_eq!(d.min_bytes, crate::proto::deflate::DEFAULT_MIN_BYTES);
    let env = [("CHANNELSTREAM_WS_DEFLATE", "true")];
    assert!(cfg(&[], &env, None).0.deflate.enabled);
    let ini = "[channelstream]\nws_deflate = true\n";
    let (c, ignored) = cfg(&["-i", "/d.ini"], &[], Some(("/d.ini", ini)));
    assert!(c.deflate.enabled);
    assert!(ignored.is_empty(), "ws_deflate is a known key: {ignored:?}");
    let c = cfg(&["--ws-deflate", "--ws-deflate-min-bytes", "64"], &[], None).0;
    assert!(c.deflate.enabled);
    assert_eq!(c.deflate.min_bytes, 64);
}

// ---------------------------------------------------------------- Pusher default app

#[test]
fn pusher_default_app_from_env() {
    let c = cfg(&[], &[], None).0;
    assert_eq!(
        (c.default_app_id.as_str(), c.default_app_key.as_str()),
        ("app-id", "app-key")
    );
    assert_eq!(c.default_app_secret, "app-secret");
    let env = [
        ("HERALD_DEFAULT_APP_ID", "12345"),
        ("HERALD_DEFAULT_APP_KEY", "k"),
        ("HERALD_DEFAULT_APP_SECRET", "s"),
    ];
    let c = cfg(&[], &env, None).0;
    assert_eq!(c.default_app_id, "12345");
    assert_eq!(c.default_app_key, "k");
    assert_eq!(c.default_app_secret, "s");
    // Read even when an ini file is given (Herald's own variables).
    let c = cfg(
        &["-i", "x.ini"],
        &env,
        Some(("x.ini", "[channelstream]\nport = 8001\n")),
    )
    .0;
    assert_eq!(c.default_app_key, "k");
}

#[test]
fn pusher_client_messages_and_activity_timeouts() {
    let c = cfg(&[], &[], None).0;
    assert!(!c.default_app_client_events, "off unless configured");
    assert_eq!(c.pusher_activity_timeout, Duration::from_secs(120));
    assert_eq!(c.pusher_pong_timeout, Duration::from_secs(30));
    let env = [("HERALD_DEFAULT_APP_ENABLE_CLIENT_MESSAGES", "true")];
    assert!(cfg(&[], &env, None).0.default_app_client_events);
    let ini = "[channelstream]\npusher_activity_timeout = 7\npusher_pong_timeout = 3\n";
    let c = cfg(&["-i", "/t.ini"], &[], Some(("/t.ini", ini))).0;
    assert_eq!(c.pusher_activity_timeout, Duration::from_secs(7));
    assert_eq!(c.pusher_pong_timeout, Duration::from_secs(3));
    let c = cfg(
        &[
            "--pusher-activity-timeout",
            "9",
            "--pusher-pong-timeout",
            "2",
        ],
        &[("CHANNELSTREAM_PUSHER_PONG_TIMEOUT", "5")],
        None,
    )
    .0;
    assert_eq!(c.pusher_activity_timeout, Duration::from_secs(9));
    assert_eq!(
        c.pusher_pong_timeout,
        Duration::from_secs(2),
        "the flag wins"
    );
    let c = cfg(&[], &[("CHANNELSTREAM_PUSHER_PONG_TIMEOUT", "5")], None).0;
    assert_eq!(c.pusher_pong_timeout, Duration::from_secs(5));
    let bad = "[channelstream]\npusher_pong_timeout = 0\n";
    let e = err(&["-i", "/b.ini"], &[], Some(("/b.ini", bad)));
    assert!(e.to_string().contains("pusher_pong_timeout"), "{e}");
}

#[test]
fn pusher_apps_from_ini_sections() {
    let ini = "[channelstream]\nport = 8001\n\n\
        [pusher_app:main]\nid = 12345\nkey = k1\nsecret = s1%%x\n\
        enable_client_messages = true\nmax_event_size = 2048\n\n\
        [pusher_app:off]\nid = 2\nkey = k2\nsecret = s2\nenabled = no\n\
        max_channels_per_event = 5\nmax_presence_members = 7\nmax_connections = 3\n";
    let (c, ignored) = cfg(&["-i", "a.ini"], &[], Some(("a.ini", ini)));
    assert!(ignored.is_empty());
    assert_eq!(
        c.port, 8001,
        "the [channelstream] section is read as before"
    );
    assert_eq!(c.pusher_apps.len(), 2);
    let (a, b) = (&c.pusher_apps[0], &c.pusher_apps[1]);
    assert_eq!(
        (a.id.as_str(), a.key.as_str(), a.secret.as_str()),
        ("12345", "k1", "s1%x")
    );
    assert!(a.enabled && a.client_events);
    assert_eq!((a.max_event_size, a.max_channels_per_event), (2048, 100));
    assert!(!b.enabled && !b.client_events);
    assert_eq!((b.max_event_size, b.max_channels_per_event), (10240, 5));
    assert_eq!(b.max_presence_members, 7);
    assert_eq!((a.max_connections, b.max_connections), (0, 3));
    assert!(!format!("{a:?}").contains("s1"), "Debug hides the secret");
    // No sections: no apps (the default app is served).
    assert!(cfg(&[], &[], None).0.pusher_apps.is_empty());
}

#[test]
fn pusher_app_sections_refused() {
    let load_ini = |text: &str| {
        load(
            ["herald", "-i", "a.ini"].map(std::ffi::OsString::from),
            &|_| None,
            &|_| Ok(text.to_owned()),
        )
    };
    let base = "[channelstream]\n";
    for bad in [
        "[pusher_app:a]\nid = 1\nkey = k\n",
        "[pusher_app:a]\nid = 1\nkey = k\nsecret = s\nmax_event_size = 0\n",
        "[pusher_app:a]\nid = 1\nkey = k\nsecret = s\nmax_event_size = big\n",
        "[pusher_app:a]\nid = 1\nkey = k\nsecret = s\nmax_connections = -1\n",
        "[pusher_app:a]\nid = 1\nkey = k\nsecret = s\nwebhooks = ws://h/x\n",
        "[pusher_app:a]\nid = 1\nkey = k\nsecret = s\nwebhook_event_types = nope\n",
        "[pusher_app:a]\nid = 1\nkey = k\nsecret = s\n[pusher_app:b]\nid = 1\nkey = k2\nsecret = s\n",
    ] {
        let r = load_ini(&format!("{base}{bad}"));
        assert!(
            matches!(r, Err(ConfigError::PusherApp { .. })),
            "{bad:?} must be refused"
        );
    }
}

#[test]
fn pusher_webhooks_from_ini_and_env() {
    use crate::config::WebhookKind;
    let ini = "[channelstream]\n\n\
        [pusher_app:main]\nid = 1\nkey = k1\nsecret = s1\n\
        webhooks = http://127.0.0.1:9/a,\n    https://example.com/b\n\
        webhook_event_types = channel_occupied, channel_vacated\n\
        webhook_batching = on\nwebhook_vacated_delay_ms = 50\n";
    let (c, ignored) = cfg(&["-i", "a.ini"], &[], Some(("a.ini", ini)));
    assert!(ignored.is_empty());
    let w = &c.pusher_apps[0].webhooks;
    assert_eq!(w.urls, ["http://127.0.0.1:9/a", "https://example.com/b"]);
    assert!(w.batching && w.wants(WebhookKind::ChannelVacated));
    assert!(!w.wants(WebhookKind::ClientEvent));
    assert_eq!(w.vacated_delay, std::time::Duration::from_millis(50));
    assert!(!cfg(&[], &[], None).0.default_app_webhooks.enabled());

    let env = [
        ("HERALD_DEFAULT_APP_WEBHOOKS", "http://127.0.0.1:1/hook"),
        ("HERALD_DEFAULT_APP_WEBHOOK_BATCHING", "true"),
        ("HERALD_DEFAULT_APP_WEBHOOK_RETRY_SECS", "7"),
    ];
    let w = cfg(&[], &env, None).0.default_app_webhooks;
    assert_eq!(w.urls, ["http://127.0.0.1:1/hook"]);
    assert!(w.batching && w.wants(WebhookKind::MemberRemoved));
    assert_eq!(w.retry_for, std::time::Duration::from_secs(7));
    let r = load(
        ["herald"].map(std::ffi::OsString::from),
        &|k| (k == "HERALD_DEFAULT_APP_WEBHOOK_QUEUE").then(|| "0".to_owned()),
        &|_| Ok(String::new()),
    );
    assert!(
        matches!(
            r,
            Err(ConfigError::Invalid {
                key: "webhook_queue",
                ..
            })
        ),
        "a bad variable is a start-up error"
    );
}
