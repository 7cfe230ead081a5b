use super::*;

// -- §5.1 /connect ---------------------------------------------------------------------

#[test]
fn connect_observed_errors() {
    check(
        &[
            (
                "{}",
                r#"{"username": ["Missing data for required field."]}"#,
            ),
            (
                r#"{"username": ""}"#,
                r#"{"username": ["Length must be between 1 and 512."]}"#,
            ),
            (
                r#"{"username":"x","conn_id":"not-a-uuid","channels":"notalist"}"#,
                r#"{"conn_id": ["Not a valid UUID."], "channels": ["Not a valid list."]}"#,
            ),
            (
                r#"{"username":"x","user_state":{"a":{"nested":1}},"fresh_user_state":[1]}"#,
                r#"{"fresh_user_state": ["Not a valid mapping type."], "user_state": {"a": {"value": ["Value is not type of string, integer, boolean or float."]}}}"#,
            ),
            (
                r#"{"username":"x","channel_configs":{"c":{"history_size":-1,"notify_presence":"maybe"}}}"#,
                r#"{"channel_configs": {"c": {"value": {"notify_presence": ["Not a valid boolean."], "history_size": ["Must be at least 0."]}}}}"#,
            ),
            (
                r#"{"username":"x","info":{"channels":[""],"include_history":"x"},"state_public_keys":[1]}"#,
                r#"{"state_public_keys": {"0": ["Not a valid string."]}, "info": {"include_history": ["Not a valid boolean."], "channels": {"0": ["Length must be between 1 and 256."]}}}"#,
            ),
            ("[1, 2]", r#"{"_schema": ["Invalid input type."]}"#),
            ("null", r#"{"_schema": ["Invalid input type."]}"#),
            ("\"x\"", r#"{"_schema": ["Invalid input type."]}"#),
            // Beyond the observed ones: nulls, nested non-objects, over-long names.
            (
                r#"{"username":null,"conn_id":null,"channels":[null, "ok", 5]}"#,
                r#"{"username": ["Field may not be null."], "conn_id": ["Field may not be null."], "channels": {"0": ["Field may not be null."], "2": ["Not a valid string."]}}"#,
            ),
            (
                r#"{"username":"x","info":"all","channel_configs":{"a":null,"b":5,"c":{}}}"#,
                r#"{"channel_configs": {"a": {"value": ["Field may not be null."]}, "b": {"value": {"_schema": ["Invalid input type."]}}}, "info": {"_schema": ["Invalid input type."]}}"#,
            ),
            (
                r#"{"username":"x","info":{"channels":null,"exclude_channels":[1]}}"#,
                r#"{"info": {"channels": ["Field may not be null."], "exclude_channels": {"0": ["Not a valid string."]}}}"#,
            ),
            // 0.7.1 crashes here (500); Herald answers as marshmallow does for NaN.
            (
                r#"{"username":"x","channel_configs":{"c":{"history_size":1e999}}}"#,
                r#"{"channel_configs": {"c": {"value": {"history_size": ["Not a valid integer."]}}}}"#,
            ),
        ],
        |v| outcome(connect(v)),
    );
    let long = format!(r#"{{"username": "{}"}}"#, "\u{e9}".repeat(512));
    assert_eq!(outcome(connect(&j(&long))), "OK", "512 code points fit");
    let too_long = format!(r#"{{"username": "{}"}}"#, "a".repeat(513));
    assert_eq!(
        outcome(connect(&j(&too_long))),
        r#"{"username": ["Length must be between 1 and 512."]}"#
    );
}

#[test]
fn connect_defaults_and_values() {
    let Ok(c) = connect(&j(r#"{"username": "alice", "type": "dropped"}"#)) else {
        panic!("minimal connect must load");
    };
    assert_eq!(c.username, "alice");
    assert_eq!(c.conn_id.get_version_num(), 4, "fresh uuid4");
    assert!(c.channels.is_empty() && c.state_public_keys.is_empty());
    assert!(c.fresh_user_state.is_empty() && c.user_state.is_empty());
    assert!(c.channel_configs.is_empty());
    assert_eq!(c.info, InfoResolution::default());

    let body = j(r#"{
            "username": "gina", "conn_id": "{AAAAAAAA-BBBB-CCCC-DDDD-EEEEEEEEEEEE}",
            "channels": ["room", "b_chan"], "state_public_keys": ["a", "c"],
            "fresh_user_state": {"a": 1.5, "b": true, "c": null, "s": "x", "big": 1e999},
            "user_state": {"z": 1},
            "channel_configs": {"room": {"history_size": "5", "notify_presence": 1,
                                         "salvageable": true}},
            "info": {"include_history": "f", "channels": [], "return_public_state": 1.0}
        }"#);
    let Ok(c) = connect(&body) else {
        panic!("full connect must load");
    };
    assert_eq!(
        c.conn_id.hyphenated().to_string(),
        "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
    );
    assert_eq!(c.channels, ["room", "b_chan"], "request order kept");
    assert_eq!(
        to_string_compact(&Value::Object(c.fresh_user_state)),
        r#"{"a": 1.5, "b": true, "c": null, "s": "x", "big": Infinity}"#
    );
    assert_eq!(
        c.channel_configs,
        vec![(
            "room".to_string(),
            ChannelConfig {
                notify_presence: true,
                history_size: 5,
                ..ChannelConfig::default()
            }
        )]
    );
    assert!(!c.info.include_history && c.info.include_users);
    assert_eq!(c.info.channels, Some(vec![]));
    assert!(c.info.return_public_state && !c.info.include_connections);
}

// -- §5.2/5.3 /subscribe, /unsubscribe ---------------------------------------------------

#[test]
fn subscribe_observed_errors() {
    check(
        &[
            (
                "{}",
                r#"{"conn_id": ["Field may not be null."], "channels": ["Missing data for required field."]}"#,
            ),
            (
                r#"{"conn_id": "00000000-0000-0000-0000-000000000001", "channels": []}"#,
                r#"{"conn_id": ["Unknown connection"], "channels": ["Shorter than minimum length 1."]}"#,
            ),
            (
                r#"{"conn_id": "nope", "channels": [""], "info": 1}"#,
                r#"{"conn_id": ["Not a valid UUID."], "channels": {"0": ["Length must be between 1 and 256."]}, "info": {"_schema": ["Invalid input type."]}}"#,
            ),
            ("[1]", "CRASH"),
            ("null", "CRASH"),
            ("\"x\"", "CRASH"),
        ],
        |v| outcome(subscribe(v, None, &known_conn)),
    );
    check(&[("[1]", "CRASH")], |v| {
        outcome(unsubscribe(v, None, &known_conn))
    });
}

#[test]
fn subscribe_conn_id_from_query() {
    let body = j(r#"{"channels": ["room"], "channel_configs": {"room": {}}}"#);
    let Ok(s) = subscribe(&body, Some(ALICE_CONN), &known_conn) else {
        panic!("query conn_id must be used");
    };
    assert_eq!(s.conn_id.hyphenated().to_string(), ALICE_CONN);
    assert_eq!(s.channels, ["room"]);
    assert_eq!(
        s.channel_configs,
        vec![("room".to_string(), ChannelConfig::default())]
    );
    // A body key wins over the query, even when null (`dict.setdefault`).
    let null_body = j(r#"{"conn_id": null, "channels": ["room"]}"#);
    assert_eq!(
        outcome(subscribe(&null_body, Some(ALICE_CONN), &known_conn)),
        r#"{"conn_id": ["Field may not be null."]}"#
    );
    assert_eq!(
        outcome(unsubscribe(&body, Some("bad"), &known_conn)),
        r#"{"conn_id": ["Not a valid UUID."]}"#
    );
    // Upper case / no hyphens still name the same connection.
    let upper = j(r#"{"conn_id": "111111112222333344445555555555555", "channels": ["a"]}"#);
    assert_eq!(
        outcome(subscribe(&upper, None, &known_conn)),
        r#"{"conn_id": ["Not a valid UUID."]}"#,
        "33 hex digits"
    );
    let upper = j(r#"{"conn_id": "11111111222233334444555555555555", "channels": ["a"]}"#);
    assert_eq!(outcome(subscribe(&upper, None, &known_conn)), "OK");
}

// -- §5.4 /user_state ----------------------------------------------------------------------

#[test]
fn user_state_observed_errors() {
    check(
        &[
            ("{}", r#"{"user": ["Missing data for required field."]}"#),
            (r#"{"user":"nobody"}"#, r#"{"user": ["Unknown user"]}"#),
            (
                r#"{"user":"bob","user_state":{"x":[1]}}"#,
                r#"{"user_state": {"x": {"value": ["Value is not type of string, integer, boolean or float."]}}}"#,
            ),
            ("[1]", r#"{"_schema": ["Invalid input type."]}"#),
            (
                r#"{"user":""}"#,
                r#"{"user": ["Length must be between 1 and 512.", "Unknown user"]}"#,
            ),
            (
                r#"{"user":5,"user_state":null,"state_public_keys":"a"}"#,
                r#"{"user": ["Not a valid string."], "user_state": ["Field may not be null."], "state_public_keys": ["Not a valid list."]}"#,
            ),
        ],
        |v| outcome(user_state(v, &known_user)),
    );
}

#[test]
fn user_state_values() {
    let ok = |src: &str| match user_state(&j(src), &known_user) {
        Ok(c) => c,
        Err(e) => panic!("{src}: {e:?}"),
    };
    let c = ok(r#"{"user": "bob", "user_state": {"status": "busy", "hidden": 5, "n": null}}"#);
    assert_eq!(c.user, "bob");
    assert_eq!(
        to_string_compact(&Value::Object(c.user_state)),
        r#"{"status": "busy", "hidden": 5, "n": null}"#
    );
    assert_eq!(c.state_public_keys, None);
    assert_eq!(
        ok(r#"{"user": "bob", "state_public_keys": null}"#).state_public_keys,
        None
    );
    assert_eq!(
        ok(r#"{"user": "bob", "state_public_keys": []}"#).state_public_keys,
        Some(vec![])
    );
    assert_eq!(
        ok(r#"{"user": "bob", "state_public_keys": ["status"]}"#).state_public_keys,
        Some(vec!["status".to_string()])
    );
}

// -- §5.8 /channel_config --------------------------------------------------------------------

#[test]
fn channel_config_observed() {
    check(
        &[
            (
                r#"{"room": {"history_size": "big"}}"#,
                r#"{"history_size": ["Not a valid integer."]}"#,
            ),
            (
                r#"{"c9":{"history_size":null}}"#,
                r#"{"history_size": ["Field may not be null."]}"#,
            ),
            ("{}", "OK"),
            ("[]", "CRASH"),
            ("[{\"a\": {}}]", "CRASH"),
            ("null", "CRASH"),
            // Only the first failing channel is reported.
            (
                r#"{"ok": {}, "a": {"store_frames": 2}, "b": {"notify_state": "x"}}"#,
                r#"{"store_frames": ["Not a valid boolean."]}"#,
            ),
            // Observed on the real server: null leaves the channel as it is.
            (r#"{"a": null}"#, "OK"),
            (r#"{"a": [1]}"#, r#"{"_schema": ["Invalid input type."]}"#),
            // 0.7.1 crashes (int(inf): OverflowError); Herald refuses it as marshmallow does NaN.
            (
                r#"{"a": {"history_size": 1e999}}"#,
                r#"{"history_size": ["Not a valid integer."]}"#,
            ),
            (
                r#"{"a": {"history_size": "bad"}, "b": {"history_size": 1e999}}"#,
                r#"{"history_size": ["Not a valid integer."]}"#,
            ),
        ],
        |v| outcome(channel_config(v)),
    );
    let Ok(cfg) = channel_config(&j(
        r#"{"room": {"history_size": 5, "salvageable": true}, "brand_new": {"notify_presence": "t"}}"#,
    )) else {
        panic!("must load");
    };
    assert_eq!(
        cfg,
        vec![
            (
                "room".to_string(),
                Some(ChannelConfig {
                    history_size: 5,
                    ..ChannelConfig::default()
                })
            ),
            (
                "brand_new".to_string(),
                Some(ChannelConfig {
                    notify_presence: true,
                    ..ChannelConfig::default()
                })
            ),
        ]
    );
}

#[test]
fn history_size_is_python_int() {
    let size = |src: &str| -> String {
        let body = j(&format!(r#"{{"c": {{"history_size": {src}}}}}"#));
        match channel_config(&body) {
            Ok(v) => match v.first() {
                Some((_, Some(c))) => c.history_size.to_string(),
                _ => "?".into(),
            },
            Err(e) => outcome::<()>(Err(e)),
        }
    };
    let table: &[(&str, &str)] = &[
        ("0", "0"),
        ("-0", "0"),
        ("5", "5"),
        ("\"5\"", "5"),
        ("\" 7 \"", "7"),
        ("\"+3\"", "3"),
        ("\"1_000\"", "1000"),
        ("5.7", "5"),
        ("-0.5", "0"),
        ("true", "1"),
        ("false", "0"),
        ("1e30", "18446744073709551615"),
        ("123456789012345678901234567890", "18446744073709551615"),
        ("-1", r#"{"history_size": ["Must be at least 0."]}"#),
        ("\"-1\"", r#"{"history_size": ["Must be at least 0."]}"#),
        ("-1.5", r#"{"history_size": ["Must be at least 0."]}"#),
        ("\"5.0\"", r#"{"history_size": ["Not a valid integer."]}"#),
        ("\"\"", r#"{"history_size": ["Not a valid integer."]}"#),
        ("\"0x10\"", r#"{"history_size": ["Not a valid integer."]}"#),
        ("\"1__0\"", r#"{"history_size": ["Not a valid integer."]}"#),
        ("[1]", r#"{"history_size": ["Not a valid integer."]}"#),
        ("{}", r#"{"history_size": ["Not a valid integer."]}"#),
        ("1e999", r#"{"history_size": ["Not a valid integer."]}"#),
        ("-1e999", r#"{"history_size": ["Not a valid integer."]}"#),
    ];
    for (src, want) in table {
        assert_eq!(size(src), *want, "history_size {src}");
    }
}

// -- §5.9 /info ------------------------------------------------------------------------------

#[test]
fn info_observed() {
    assert_eq!(info(None), Ok(InfoResolution::default()));
    check(
        &[
            ("{}", r#"{"info": ["Missing data for required field."]}"#),
            (
                r#"{"info": {"channels": "room"}}"#,
                r#"{"info": {"channels": ["Not a valid list."]}}"#,
            ),
            ("[]", r#"{"_schema": ["Invalid type."]}"#),
            ("[{\"info\": {}}]", r#"{"_schema": ["Invalid type."]}"#),
            (
                r#"{"info": null}"#,
                r#"{"info": ["Field may not be null."]}"#,
            ),
            (
                r#"{"info": []}"#,
                r#"{"info": {"_schema": ["Invalid input type."]}}"#,
            ),
        ],
        |v| outcome(info(Some(v))),
    );
    let body = j(
        r#"{"info": {"channels": ["room", "b"], "exclude_channels": ["b"],
                                   "include_users": 0, "include_connections": "True"}}"#,
    );
    assert_eq!(
        info(Some(&body)),
        Ok(InfoResolution {
            include_history: true,
            include_users: false,
            channels: Some(vec!["room".into(), "b".into()]),
            exclude_channels: vec!["b".into()],
            include_connections: true,
            return_public_state: false,
        })
    );
    assert_eq!(
        info(Some(&j(r#"{"info": {}}"#))),
        Ok(InfoResolution::default())
    );
}

// -- §5.12 /disconnect -----------------------------------------------------------------------

#[test]
fn disconnect_observed() {
    let null = r#"{"conn_id": ["Field may not be null."]}"#;
    assert_eq!(outcome(disconnect(None)), null);
    assert_eq!(outcome(disconnect(Some(&Value::Null))), null);
    assert_eq!(
        outcome(disconnect(Some(&j("\"not-a-uuid\"")))),
        r#"{"conn_id": ["Not a valid UUID."]}"#
    );
    assert_eq!(
        outcome(disconnect(Some(&j("5")))),
        r#"{"conn_id": ["Not a valid UUID."]}"#
    );
    assert_eq!(
        disconnect(Some(&j(&format!("\"urn:uuid:{ALICE_CONN}\""))))
            .map(|u| u.hyphenated().to_string()),
        Ok(ALICE_CONN.to_string())
    );
}
