use super::*;

// ---------------------------------------------------------------- value parsing

#[test]
fn asbool_table() {
    for t in [
        "t", "true", "True", " TRUE ", "y", "yes", "on", "1", "\tOn\n",
    ] {
        assert!(asbool(t), "{t:?}");
    }
    for f in [
        "",
        "f",
        "false",
        "0",
        "no",
        "off",
        "2",
        "truee",
        "yes please",
        "none",
    ] {
        assert!(!asbool(f), "{f:?}");
    }
}

#[test]
fn split_list_table() {
    let cases: &[(&str, &[&str])] = &[
        ("", &[]),
        (" , ,", &[]),
        ("127.0.0.1", &["127.0.0.1"]),
        ("127.0.0.5, 0.0.0.0", &["127.0.0.5", "0.0.0.0"]),
        ("example.com, foo.org", &["example.com", "foo.org"]),
        ("a,,b,", &["a", "b"]),
        // make_config's multi-line layout, after configparser joined it
        ("127.0.0.1,\n10.0.0.1", &["127.0.0.1", "10.0.0.1"]),
        ("\n127.0.0.1\n", &["127.0.0.1"]),
        // no comma: a newline does not split (as in Python)
        ("a\nb", &["a\nb"]),
    ];
    for (input, want) in cases {
        assert_eq!(split_list(input), *want, "{input:?}");
    }
}

#[test]
fn log_level_table() {
    let cases: &[(&str, Option<&str>)] = &[
        ("", Some("INFO")),
        ("debug", Some("DEBUG")),
        ("Info", Some("INFO")),
        ("WARNING", Some("WARNING")),
        ("warn", Some("WARNING")),
        ("error", Some("ERROR")),
        ("critical", Some("CRITICAL")),
        ("fatal", Some("CRITICAL")),
        ("notset", Some("NOTSET")),
        (" info ", Some("INFO")),
        ("verbose", None),
        ("10", None),
    ];
    for (input, want) in cases {
        assert_eq!(parse_log_level(input), *want, "{input:?}");
    }
}

#[test]
fn http_scheme_filter_table() {
    for (input, want) in [
        ("http", "http"),
        ("https", "https"),
        ("HTTPS", ""),
        (" https", ""),
        ("ftp", ""),
        ("", ""),
    ] {
        assert_eq!(filter_http_scheme(input), want, "{input:?}");
    }
}
