//! Arbitrary bytes -> the request-body screen, then (if JSON) every request validator and the
//! Python-compatible encoder.
//! Properties: nothing panics; pyjson output is ASCII and, unless a float overflowed to
//! `Infinity`/`NaN`, parses back as JSON; every 422 body and every echo renders.
#![no_main]
use herald::channelstream::api::{schema, types::SchemaError};
use herald::channelstream::strict;
use herald::py::json as pyjson;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fn render(v: &Value) {
    let pretty = pyjson::to_string_pretty(v);
    let compact = pyjson::to_string_compact(v);
    assert!(pretty.is_ascii() && compact.is_ascii());
    if !pretty.contains("Infinity") && !pretty.contains("NaN") {
        assert!(serde_json::from_str::<Value>(&pretty).is_ok(), "{pretty}");
        assert!(serde_json::from_str::<Value>(&compact).is_ok(), "{compact}");
    }
    let mut spliced = Vec::new();
    pyjson::write_pretty(v, 3, &mut spliced);
    assert!(spliced.is_ascii());
}

fn check<T>(r: Result<T, SchemaError>, echo: impl Fn(&T)) {
    match r {
        Ok(t) => echo(&t),
        Err(SchemaError::Invalid(body)) => {
            assert!(body.is_object(), "422 bodies are objects");
            render(&body);
        }
        Err(SchemaError::Crash) => {}
    }
}

fuzz_target!(|data: &[u8]| {
    // The body screen (both modes) never panics and accepts only what serde_json parses.
    for strict_mode in [false, true] {
        if let Ok(v) = strict::parse_body(data, strict_mode) {
            assert_eq!(serde_json::from_slice::<Value>(data).ok(), Some(v));
        }
    }
    let Ok(v) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    render(&v);
    let query = v.get("q").and_then(Value::as_str);
    for known in [true, false] {
        check(schema::connect(&v), |_| {});
        check(schema::subscribe(&v, query, &|_| known), |_| {});
        check(schema::unsubscribe(&v, None, &|_| known), |_| {});
        check(schema::user_state(&v, &|_| known), |_| {});
    }
    check(schema::messages(&v), |ms| {
        for m in ms {
            assert!(m.delivery.channel.is_some() || !m.delivery.pm_users.is_empty());
            render(&schema::message_echo(m));
        }
    });
    check(schema::edits(&v), |es| {
        for e in es {
            render(&schema::edit_echo(e));
        }
    });
    check(schema::deletes(&v), |ds| {
        for d in ds {
            render(&schema::delete_echo(d));
        }
    });
    check(schema::channel_config(&v), |_| {});
    check(schema::info(Some(&v)), |_| {});
    check(schema::disconnect(Some(&v)), |_| {});
    check(schema::disconnect(v.get("conn_id")), |_| {});
    if let Some(s) = v.as_str() {
        let _ = schema::parse_py_datetime(s);
        let _ = schema::parse_py_uuid(s);
    }
});
