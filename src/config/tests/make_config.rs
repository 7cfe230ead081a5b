use super::*;

// ---------------------------------------------------------------- make-config

/// Spec §2.3, observed output of `channelstream_utils make_config` with defaults.
const SPEC_SAMPLE: &str = "[channelstream]
admin_user = admin
# admin panel password
admin_secret = admin_secret
# auth cookie secret, leave empty for random string generated at server start
# fill in if you need to have multiple servers and want to keep admin session between them
cookie_secret = c86443a5-0246-4445-8903-7a82978c184f
# API password
secret = secret
port = 8000
allow_posting_from = 127.0.0.1
                     
log_level = INFO
# should require SSL connections?
enforce_https = False
# enforce https:// in links
http_scheme = 

# how to validate server side requests? (default: itsdangerous TimeSigner)
signature_checker = channelstream.utils.DefaultSigner";

#[test]
fn make_config_defaults_match_spec_sample() {
    let (output, text) = make_config(&["make-config"], &[]);
    assert_eq!(output, None);
    assert!(!text.ends_with('\n'));
    assert_eq!(normalise_cookie(&text), normalise_cookie(SPEC_SAMPLE));
    // byte-for-byte, once the cookie is the same
    let vars = MakeConfigVars {
        cookie_secret: "c86443a5-0246-4445-8903-7a82978c184f".into(),
        ..MakeConfigVars::default()
    };
    assert_eq!(render_make_config(&vars), SPEC_SAMPLE);
}

#[test]
fn make_config_two_ips_from_env() {
    let env = [
        ("CHANNELSTREAM_ALLOW_POSTING_FROM", "127.0.0.1, 10.0.0.1"),
        ("CHANNELSTREAM_PORT", " 08001 "),
        ("CHANNELSTREAM_ENFORCE_HTTPS", "on"),
        ("CHANNELSTREAM_HTTP_SCHEME", "ftp"),
        ("CHANNELSTREAM_LOG_LEVEL", "debug"),
        ("CHANNELSTREAM_COOKIE_SECRET", "fixed"),
        ("CHANNELSTREAM_HOST", "0.0.0.0"), // not in the template
    ];
    let (output, text) = make_config(&["make-config", "-o", "/tmp/out.ini"], &env);
    assert_eq!(output, Some(PathBuf::from("/tmp/out.ini")));
    let want = SPEC_SAMPLE
        .replace("c86443a5-0246-4445-8903-7a82978c184f", "fixed")
        .replace("port = 8000", "port = 8001")
        .replace(
            "allow_posting_from = 127.0.0.1\n",
            "allow_posting_from = 127.0.0.1,\n                     10.0.0.1\n",
        )
        .replace("enforce_https = False", "enforce_https = True")
        .replace("log_level = INFO", "log_level = debug");
    assert_eq!(text, want);
    assert!(text.contains(
            "allow_posting_from = 127.0.0.1,\n                     10.0.0.1\n                     \nlog_level"
        ));
    assert!(!text.contains("host"));
}

#[test]
fn make_config_output_reads_back() {
    let (_, text) = make_config(
        &["make_config"],
        &[("CHANNELSTREAM_ALLOW_POSTING_FROM", "127.0.0.1,10.0.0.1,::1")],
    );
    let (c, ignored) = cfg(&["-i", "/g.ini"], &[], Some(("/g.ini", &text)));
    assert!(ignored.is_empty());
    assert_eq!(c.allow_posting_from, vec!["127.0.0.1", "10.0.0.1", "::1"]);
    assert_eq!(c.port, 8000);
    assert!(!c.enforce_https);
    // the cookie written to the file is the one the server uses
    let cookie = text
        .lines()
        .find_map(|l| l.strip_prefix("cookie_secret = "))
        .unwrap();
    assert_eq!(c.cookie_secret, cookie);
}

#[test]
fn make_config_empty_allow_list() {
    let (_, text) = make_config(
        &["make-config"],
        &[("CHANNELSTREAM_ALLOW_POSTING_FROM", "")],
    );
    assert!(text.contains("port = 8000\nallow_posting_from = \nlog_level = INFO"));
}

/// Expected outputs rendered by Jinja2 from Channelstream's template with Python's
/// `make_config -j` logic.
#[test]
fn make_config_json_matches_jinja() {
    let (_, text) = make_config(&["make-config", "-j", "{}"], &[("CHANNELSTREAM_PORT", "1")]);
    assert_eq!(
        text,
        SPEC_SAMPLE.replace("c86443a5-0246-4445-8903-7a82978c184f", ""),
        "-j: no env, no cookie generation"
    );

    let (_, text) = make_config(
        &[
            "make-config",
            "-j",
            r#"{"allow_posting_from": ["127.0.0.1", "10.0.0.1"]}"#,
        ],
        &[],
    );
    assert!(text.contains(
            "allow_posting_from = 127.0.0.1,\n                     10.0.0.1\n                     \nlog_level"
        ));

    // A JSON string is iterated per character by the template loop.
    let (_, text) = make_config(
        &["make-config", "-j", r#"{"allow_posting_from": "1.2,3"}"#],
        &[],
    );
    assert!(text.contains(
            "allow_posting_from = 1,\n                     .,\n                     2,\n                     ,,\n                     3\n                     \nlog_level"
        ), "{text}");

    let (_, text) = make_config(
        &[
            "make-config",
            "-j",
            r#"{"port": 8001.5, "enforce_https": true, "secret": "s%e",
                    "log_level": ["a", 1, null, "it's"], "http_scheme": {"x": 1e20},
                    "admin_user": 0, "cookie_secret": "cs", "allow_posting_from": {"a": 1, "b": 2}}"#,
        ],
        &[],
    );
    let want = "[channelstream]\nadmin_user = admin\n# admin panel password\nadmin_secret = admin_secret\n# auth cookie secret, leave empty for random string generated at server start\n# fill in if you need to have multiple servers and want to keep admin session between them\ncookie_secret = cs\n# API password\nsecret = s%e\nport = 8001.5\nallow_posting_from = a,\n                     b\n                     \nlog_level = ['a', 1, None, \"it's\"]\n# should require SSL connections?\nenforce_https = True\n# enforce https:// in links\nhttp_scheme = {'x': 1e+20}\n\n# how to validate server side requests? (default: itsdangerous TimeSigner)\nsignature_checker = channelstream.utils.DefaultSigner";
    assert_eq!(text, want);

    let (_, text) = make_config(
        &[
            "make-config",
            "-j",
            r#"{"port": 1e16, "admin_user": 1e-5, "secret": 0.0001,
                    "admin_secret": 123456789012345678901234567890}"#,
        ],
        &[],
    );
    for line in [
        "admin_user = 1e-05\n",
        "admin_secret = 123456789012345678901234567890\n",
        "secret = 0.0001\n",
        "port = 1e+16\n",
    ] {
        assert!(text.contains(line), "{line:?} in {text}");
    }

    // Falsy values keep the defaults.
    let (_, text) = make_config(
        &[
            "make-config",
            "-j",
            r#"{"secret": "", "port": 0, "enforce_https": false, "allow_posting_from": [],
                    "log_level": null, "admin_user": {}, "http_scheme": 0.0}"#,
        ],
        &[],
    );
    assert_eq!(
        text,
        SPEC_SAMPLE.replace("c86443a5-0246-4445-8903-7a82978c184f", "")
    );
}

#[test]
fn make_config_empty_json_uses_env() {
    let (_, text) = make_config(
        &["make-config", "-j", ""],
        &[("CHANNELSTREAM_PORT", "8005")],
    );
    assert!(text.contains("port = 8005\n"));
    assert_eq!(normalise_cookie(&text).matches("<uuid>").count(), 1);
}

#[test]
fn make_config_errors() {
    for j in [
        "not json",
        "[1, 2]",
        r#"{"allow_posting_from": true}"#,
        r#"{"allow_posting_from": 5}"#,
    ] {
        assert!(
            matches!(
                err(&["make-config", "-j", j], &[], None),
                ConfigError::MakeConfigJson(_)
            ),
            "{j}"
        );
    }
    assert!(matches!(
        err(&["make-config"], &[("CHANNELSTREAM_PORT", "x")], None),
        ConfigError::Invalid { key: "port", .. }
    ));
}
