use super::*;

fn section(ini: &Ini, name: &str) -> Vec<(String, String)> {
    ini.keys(name)
        .into_iter()
        .map(|k| (k.to_string(), ini.get_raw(name, k).unwrap().to_string()))
        .collect()
}

// ---------------------------------------------------------------- ini parser

/// Expected results computed with Python 3 `configparser.ConfigParser()`.
#[test]
fn ini_table_matches_configparser() {
    type Want = &'static [(&'static str, &'static [(&'static str, &'static str)])];
    let ok_cases: &[(&str, Want)] = &[
        ("[a]\nk = v", &[("a", &[("k", "v")])]),
        (
            "[a]\nK=V\nx: y\nz = a = b\nq : r = s",
            &[(
                "a",
                &[("k", "V"), ("x", "y"), ("z", "a = b"), ("q", "r = s")],
            )],
        ),
        (
            "[a]\nk = v # not a comment\n# c\n; c2\n  # indented comment\nm=1",
            &[("a", &[("k", "v # not a comment"), ("m", "1")])],
        ),
        (
            "[a]\nlist = 1.1.1.1,\n    2.2.2.2\n\n    3.3.3.3\n\nnext = x",
            &[(
                "a",
                &[("list", "1.1.1.1,\n2.2.2.2\n\n3.3.3.3"), ("next", "x")],
            )],
        ),
        (
            "[a]\nlist = \n  one\n  two\n",
            &[("a", &[("list", "\none\ntwo")])],
        ),
        (
            "[a]\nk = v\n  [b]\n  x = y\nl = w",
            &[("a", &[("k", "v\n[b]\nx = y"), ("l", "w")])],
        ),
        (
            "[a]\n  k = v\n  l = w\n    cont",
            &[("a", &[("k", "v"), ("l", "w\ncont")])],
        ),
        (
            "[DEFAULT]\nd = 1\nk = dd\n[a]\nk = v\n[b]\n",
            &[
                ("a", &[("d", "1"), ("k", "v")]),
                ("b", &[("d", "1"), ("k", "dd")]),
            ],
        ),
        (
            "[a] trailing\nk=v\n[x]y]\nk2=v2",
            &[("a", &[("k", "v")]), ("x]y", &[("k2", "v2")])],
        ),
        ("[ spaced ]\nk=v", &[(" spaced ", &[("k", "v")])]),
        ("[DEFAULT]\n[DEFAULT]\na=1", &[]),
        // Files use universal newlines: a lone \r ends a line too.
        (
            "[a]\r\nk = v\r\n  w\rz=1\r\n[b]\rx=y",
            &[("a", &[("k", "v\nw"), ("z", "1")]), ("b", &[("x", "y")])],
        ),
        ("[a]\nk =\nempty:\n", &[("a", &[("k", ""), ("empty", "")])]),
        ("[a]\nk = v\n\t\n\n", &[("a", &[("k", "v")])]),
        (
            "[a]\nk = v\n;comment\n  cont",
            &[("a", &[("k", "v\ncont")])],
        ),
        ("[a]\nk=v\n \n  c\n", &[("a", &[("k", "v\n\nc")])]),
        ("\n  [a]\nk = v\n  c", &[("a", &[("k", "v\nc")])]),
        ("[a]\nk=v\n\u{c}x = 1", &[("a", &[("k", "v\nx = 1")])]),
        ("\u{feff}[a]\nk=v", &[("a", &[("k", "v")])]),
        ("", &[]),
    ];
    for (text, want) in ok_cases {
        let ini = parse_ini(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
        let names: Vec<&str> = ini.sections().collect();
        let want_names: Vec<&str> = want.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, want_names, "{text:?}");
        for (name, entries) in want.iter() {
            let want: Vec<(String, String)> = entries
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            assert_eq!(section(&ini, name), want, "{text:?} [{name}]");
        }
    }

    let err_cases: &[(&str, IniError)] = &[
        ("k = v", IniError::MissingSectionHeader { line: 1 }),
        ("[]\nk=v", IniError::MissingSectionHeader { line: 1 }),
        ("# comment\n\n[a]\nk", IniError::Syntax { line: 4 }),
        ("[a]\n= v", IniError::Syntax { line: 2 }),
        ("[a]\n: v", IniError::Syntax { line: 2 }),
        (
            "[a]\nk=1\nK=2",
            IniError::DuplicateKey {
                line: 3,
                section: "a".into(),
                key: "k".into(),
            },
        ),
        (
            "[DEFAULT]\nk=1\n[DEFAULT]\nk=2",
            IniError::DuplicateKey {
                line: 4,
                section: "DEFAULT".into(),
                key: "k".into(),
            },
        ),
        (
            "[a]\n[b]\n[a]",
            IniError::DuplicateSection {
                line: 3,
                section: "a".into(),
            },
        ),
    ];
    for (text, want) in err_cases {
        assert_eq!(parse_ini(text).as_ref(), Err(want), "{text:?}");
    }
}

#[test]
fn ini_error_messages_do_not_quote_lines() {
    let e = parse_ini("[channelstream]\nsecret hunter2").unwrap_err();
    assert_eq!(e, IniError::Syntax { line: 2 });
    assert!(!e.to_string().contains("hunter2"));
    assert!(e.to_string().contains("line 2"));
}

#[test]
fn ini_default_section_and_lookup() {
    let ini = parse_ini("[DEFAULT]\nShared = d\n[s]\nOwn = o\nshared = over\n[t]\n").unwrap();
    assert_eq!(ini.get_raw("s", "shared"), Some("over"));
    assert_eq!(ini.get_raw("s", "SHARED"), Some("over"));
    assert_eq!(ini.get_raw("t", "shared"), Some("d"));
    assert_eq!(ini.get_raw("t", "own"), None);
    assert_eq!(ini.get_raw("missing", "shared"), None);
    assert_eq!(ini.keys("s"), vec!["shared", "own"]);
    assert!(ini.has_section("t"));
    assert!(!ini.has_section("DEFAULT"));
    assert!(ini.keys("missing").is_empty());
}

#[test]
fn ini_debug_shows_keys_not_values() {
    let ini = parse_ini("[channelstream]\nsecret = hunter2").unwrap();
    let d = format!("{ini:?}");
    assert!(d.contains("secret") && !d.contains("hunter2"), "{d}");
}

/// Expected results computed with Python 3 configparser `get()`.
#[test]
fn ini_interpolation_table() {
    let ini = parse_ini(
        "[DEFAULT]\nh=/x\n[a]\np=%(h)s/%(q)s%%\nq=Q\nbad=50%\nloop=%(loop)s\n\
             miss=%(nope)s\nupper=%(Q)s\nd=%(p)s\nfmt=%(q)d\nplain=no percent\nempty=%()s",
    )
    .unwrap();
    let get = |k| ini.get("a", k);
    assert_eq!(get("p"), Ok(Some("/x/Q%".into())));
    assert_eq!(get("upper"), Ok(Some("Q".into())));
    assert_eq!(get("d"), Ok(Some("/x/Q%".into())));
    assert_eq!(get("plain"), Ok(Some("no percent".into())));
    assert_eq!(get("absent"), Ok(None));
    for k in ["bad", "loop", "miss", "fmt", "empty"] {
        match get(k) {
            Err(IniError::Interpolation { section, key, .. }) => {
                assert_eq!((section.as_str(), key.as_str()), ("a", k));
            }
            other => panic!("{k}: {other:?}"),
        }
    }
}

#[test]
fn ini_interpolation_doubling_is_capped() {
    let mut text = String::from("[a]\nk0 = ");
    text.push_str(&"x".repeat(4096));
    for i in 1..10 {
        text.push_str(&format!(
            "\nk{i} = %(k{p})s%(k{p})s%(k{p})s%(k{p})s",
            p = i - 1
        ));
    }
    let ini = parse_ini(&text).unwrap();
    assert!(ini.get("a", "k9").is_err());
    assert_eq!(ini.get("a", "k1").unwrap().unwrap().len(), 4 * 4096);
}
