use super::*;

// -- §5.5 POST /message --------------------------------------------------------------------

#[test]
fn messages_observed_errors() {
    check(
        &[
            ("{}", r#"{"_schema": ["Invalid input type."]}"#),
            ("null", r#"{"_schema": ["Invalid input type."]}"#),
            ("\"abc\"", r#"{"_schema": ["Invalid input type."]}"#),
            (
                r#"[{"channel":"room"}]"#,
                r#"{"0": {"user": ["Missing data for required field."]}}"#,
            ),
            (
                r#"[{"user":"x","channel":"room","message":"not-a-dict","uuid":"zzz","timestamp":"yesterday"}]"#,
                r#"{"0": {"uuid": ["Not a valid UUID."], "timestamp": ["Not a valid datetime."], "message": ["Not a valid mapping type."]}}"#,
            ),
            (
                r#"[{"user":"x","channel":"room","pm_users":null,"message":null}]"#,
                r#"{"0": {"pm_users": ["Field may not be null."], "message": ["Field may not be null."]}}"#,
            ),
            (
                r#"[{"user":"x","channel":""}]"#,
                r#"{"0": {"channel": ["Length must be between 1 and 256."]}}"#,
            ),
            (
                r#"[{"user":123,"channel":"room"}]"#,
                r#"{"0": {"user": ["Not a valid string."]}}"#,
            ),
            // One invalid item rejects the batch; indices are the item positions.
            (
                r#"[{"user":"a","channel":"room"},{"user":"b","no_history":"maybe","pm_users":[""]}]"#,
                r#"{"1": {"pm_users": {"0": ["Length must be between 1 and 512."]}, "no_history": ["Not a valid boolean."]}}"#,
            ),
            // marshmallow 2 quirk: non-object items leave `{}` and a top-level `_schema`.
            ("[1]", r#"{"0": {}, "_schema": ["Invalid input type."]}"#),
            (
                r#"[{"channel":"c"}, 1, {}, null]"#,
                r#"{"0": {"user": ["Missing data for required field."]}, "1": {}, "_schema": ["Invalid input type.", "Invalid input type."], "2": {"user": ["Missing data for required field."]}, "3": {}}"#,
            ),
            ("[]", "OK"),
            (
                r#"[{"user":"x","timestamp":"2020-13-01T00:00","uuid":5,"edited":"x"}]"#,
                r#"{"0": {"uuid": ["Not a valid UUID."], "timestamp": ["Not a valid datetime."]}}"#,
            ),
        ],
        |v| outcome(messages(v)),
    );
}

/// §13.3: nine items, item 6 (no target) dropped, echo shapes and timestamps.
#[test]
fn messages_batch_of_nine() {
    let body = j(r#"[
            {"type": "message", "user": "alice", "channel": "room", "message": {"text": "hello room"}},
            {"user": "system", "channel": "room", "pm_users": ["alice"], "message": {"text": "pm inside room for alice"}},
            {"user": "system", "channel": "room", "exclude_users": ["alice"], "message": {"text": "not for alice"}},
            {"user": "system", "channel": "room", "no_history": true, "message": {"text": "not stored"}},
            {"user": "system", "pm_users": ["alice", "ghost"], "message": {"text": "global pm"}},
            {"user": "system", "pm_users": [], "extra_field": 1, "message": {"text": "nowhere"}},
            {"user": "system", "channel": "no_such_channel", "message": {"text": "unknown channel"}},
            {"user": "system", "channel": "room", "uuid": "AAAAAAAA-BBBB-CCCC-DDDD-EEEEEEEEEEEE",
             "timestamp": "2020-01-02T03:04:05Z", "message": {"text": "client uuid+timestamp"}},
            {"user": "system", "channel": "room"}
        ]"#);
    let before = Utc::now().naive_utc();
    let Ok(ms) = messages(&body) else {
        panic!("batch must load");
    };
    assert_eq!(ms.len(), 8);
    assert!(ms.iter().all(|m| m
        .message
        .as_ref()
        .map(|p| p.get("text") != Some(&Value::String("nowhere".into())))
        .unwrap_or(true)));
    let pm = &ms[4];
    assert_eq!(pm.delivery.channel, None);
    assert_eq!(pm.delivery.pm_users, ["alice", "ghost"]);
    assert!(ms[3].delivery.no_history);
    let client = &ms[6];
    assert_eq!(
        client.uuid.hyphenated().to_string(),
        "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
    );
    assert_eq!(
        client.timestamp.to_http_string(),
        "2020-01-02T03:04:05+00:00"
    );
    assert_eq!(client.timestamp.to_socket_string(), "2020-01-02T03:04:05Z");
    assert_eq!(ms[7].message, None);
    // Server-made defaults: fresh uuid4s and naive UTC "now".
    match &ms[0].timestamp {
        Timestamp::Naive(t) => {
            assert!(*t >= before - chrono::Duration::seconds(1));
            assert!(*t <= Utc::now().naive_utc());
        }
        other => panic!("default timestamp must be naive, got {other:?}"),
    }
    assert_ne!(ms[0].uuid, ms[1].uuid);
    assert_eq!(ms[0].uuid.get_version_num(), 4);

    let echo = to_string_compact(&message_echo(client));
    assert_eq!(
        echo,
        r#"{"pm_users": [], "exclude_users": [], "channel": "room", "no_history": false, "uuid": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee", "timestamp": "2020-01-02T03:04:05+00:00", "user": "system", "message": {"text": "client uuid+timestamp"}, "edited": null}"#
    );
    let no_msg = to_string_compact(&message_echo(&ms[7]));
    assert!(
        no_msg.contains(r#""user": "system", "edited": null}"#),
        "{no_msg}"
    );
}

#[test]
fn message_echo_matches_the_spec_body() {
    let naive = NaiveDateTime::parse_from_str("2026-11-22T13:59:11.630535", "%Y-%m-%dT%H:%M:%S%.f");
    let Ok(naive) = naive else {
        panic!("test timestamp");
    };
    let body = j(r#"[{"user": "alice", "channel": "room",
                          "uuid": "d5fbde8b-caa0-489c-bf0c-bdb725dba0cb",
                          "message": {"text": "hello room"}}]"#);
    let Ok(mut ms) = messages(&body) else {
        panic!("must load");
    };
    ms[0].timestamp = Timestamp::Naive(naive);
    let echo = Value::Array(ms.iter().map(message_echo).collect());
    assert_eq!(
        to_string_pretty(&echo),
        r#"[
    {
        "pm_users": [],
        "exclude_users": [],
        "channel": "room",
        "no_history": false,
        "uuid": "d5fbde8b-caa0-489c-bf0c-bdb725dba0cb",
        "timestamp": "2026-11-22T13:59:11.630535",
        "user": "alice",
        "message": {
            "text": "hello room"
        },
        "edited": null
    }
]"#
    );
}

// -- §5.6 PATCH /message, §5.7 DELETE /message ---------------------------------------------

#[test]
fn edits_observed() {
    check(
        &[
            (
                r#"[{"channel":"room"}]"#,
                r#"{"0": {"uuid": ["Missing data for required field."]}}"#,
            ),
            ("{}", r#"{"_schema": ["Invalid input type."]}"#),
            (
                r#"[{"uuid":"00000000-0000-0000-0000-0000000000aa","timestamp":null,"user":"","message":[],"edited":"no"}]"#,
                r#"{"0": {"timestamp": ["Field may not be null."], "user": ["Length must be between 1 and 512."], "message": ["Not a valid mapping type."], "edited": ["Not a valid datetime."]}}"#,
            ),
            // Not filtered: no target is fine for PATCH.
            (r#"[{"uuid":"00000000-0000-0000-0000-0000000000aa"}]"#, "OK"),
        ],
        |v| outcome(edits(v)),
    );
    let body = j(
        r#"[{"channel": "he", "uuid": "00000000-0000-0000-0000-0000000000AA",
                          "message": {"t": "new", "extra": 1}, "timestamp": "2021-05-05T05:05:05Z"},
                         {"uuid": "7b6e3118-0000-4000-8000-000000000000", "user": "alice2",
                          "message": {"text": "hello room (edited)"},
                          "edited": "2011-01-01T00:00:01"}]"#,
    );
    let Ok(es) = edits(&body) else {
        panic!("edits must load");
    };
    assert_eq!(
        to_string_compact(&edit_echo(&es[0]))
            .split(r#", "edited": "#)
            .next(),
        Some(
            r#"{"pm_users": [], "exclude_users": [], "channel": "he", "no_history": false, "uuid": "00000000-0000-0000-0000-0000000000aa", "timestamp": "2021-05-05T05:05:05+00:00", "message": {"t": "new", "extra": 1}"#
        )
    );
    assert!(
        matches!(es[0].edited, Timestamp::Naive(_)),
        "default edited is now"
    );
    assert_eq!(
        to_string_compact(&edit_echo(&es[1])),
        r#"{"pm_users": [], "exclude_users": [], "channel": null, "no_history": false, "uuid": "7b6e3118-0000-4000-8000-000000000000", "user": "alice2", "message": {"text": "hello room (edited)"}, "edited": "2011-01-01T00:00:01"}"#
    );
}

#[test]
fn deletes_observed() {
    check(
        &[
            ("[]", "OK"),
            (
                "[{}]",
                r#"{"0": {"uuid": ["Missing data for required field."]}}"#,
            ),
            (
                r#"{"uuid": "d5fbde8b-caa0-489c-bf0c-bdb725dba0cb"}"#,
                r#"{"_schema": ["Invalid input type."]}"#,
            ),
            (
                r#"[{"uuid": "d5fbde8b-caa0-489c-bf0c-bdb725dba0cb", "exclude_users": "x", "timestamp": "ignored"}]"#,
                r#"{"0": {"exclude_users": ["Not a valid list."]}}"#,
            ),
        ],
        |v| outcome(deletes(v)),
    );
    let body =
        j(r#"[{"channel": "room", "uuid": "d5fbde8b-caa0-489c-bf0c-bdb725dba0cb", "user": "x"}]"#);
    let Ok(ds) = deletes(&body) else {
        panic!("delete must load");
    };
    assert_eq!(
        to_string_compact(&Value::Array(ds.iter().map(delete_echo).collect())),
        r#"[{"pm_users": [], "exclude_users": [], "channel": "room", "no_history": false, "uuid": "d5fbde8b-caa0-489c-bf0c-bdb725dba0cb"}]"#
    );
}
