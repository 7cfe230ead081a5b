use super::*;

// -- coercion tables -------------------------------------------------------------------------

#[test]
fn boolean_table() {
    let t = |src: &str| match boolean(&j(src)) {
        Ok(b) => b.to_string(),
        Err(_) => "invalid".into(),
    };
    for src in [
        "true", "\"t\"", "\"T\"", "\"true\"", "\"True\"", "\"TRUE\"", "\"1\"", "1", "1.0", "1e0",
        "10e-1",
    ] {
        assert_eq!(t(src), "true", "{src}");
    }
    for src in [
        "false",
        "\"f\"",
        "\"F\"",
        "\"false\"",
        "\"False\"",
        "\"FALSE\"",
        "\"0\"",
        "0",
        "-0",
        "0.0",
        "-0.0",
        "0e5",
    ] {
        assert_eq!(t(src), "false", "{src}");
    }
    for src in [
        "\"yes\"",
        "\"maybe\"",
        "\"\"",
        "\"tRUE\"",
        "\"on\"",
        "2",
        "-1",
        "0.5",
        "[]",
        "{}",
        "[true]",
        "\" true\"",
    ] {
        assert_eq!(t(src), "invalid", "{src}");
    }
}

/// Compare the coercions with real Python (`int`, `uuid.UUID`, marshmallow's regex plus
/// dateutil, Boolean's sets) when python3 (and dateutil) are installed.
#[test]
fn coercions_cross_check_with_python() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let script = r#"
import json, sys, re, uuid
try:
    from dateutil import parser
except ImportError:
    sys.exit(3)
R = re.compile(r'^\d{4}-\d{1,2}-\d{1,2}[T ]\d{1,2}:\d{1,2}(:\d{1,2}(\.\d{1,6}\d{0,6})?)?(Z|[+-]\d{2}(:?\d{2})?)?$')
truthy = set(('t', 'T', 'true', 'True', 'TRUE', '1', 1, True))
falsy = set(('f', 'F', 'false', 'False', 'FALSE', '0', 0, 0.0, False))
out = []
for kind, v in json.load(sys.stdin):
    try:
        if kind == 'uuid':
            r = str(uuid.UUID(v))
        elif kind == 'int':
            r = str(int(v))
        elif kind == 'dt':
            if not v or not R.match(v):
                raise ValueError(v)
            r = parser.parse(v).isoformat()
        else:
            try:
                r = 'true' if v in truthy else 'false' if v in falsy else 'invalid'
            except TypeError:
                r = 'invalid'
    except (ValueError, TypeError, AttributeError):
        r = 'invalid'
    except OverflowError:
        r = 'crash'
    out.append(r)
print(json.dumps(out))
"#;
    let cases = r#"[
            ["uuid", "12345678-1234-5678-1234-567812345678"], ["uuid", "{12345678123456781234567812345678}"],
            ["uuid", "URN:UUID:12345678123456781234567812345678"], ["uuid", "urn:uuid:12345678123456781234567812345678"],
            ["uuid", "uurn:uid:12345678123456781234567812345678"], ["uuid", "0x345678123456781234567812345678"],
            ["uuid", "0X_45678123456781234567812345678"], ["uuid", " 2345678123456781234567812345678"],
            ["uuid", "+2345678123456781234567812345678"], ["uuid", "-2345678123456781234567812345678"],
            ["uuid", "1234567_123456781234567812345678"], ["uuid", "1234567__23456781234567812345678"],
            ["uuid", "\u00a02345678123456781234567812345678"], ["uuid", "\u001c2345678123456781234567812345678"],
            ["uuid", "{}12345678123456781234567812345678{}"], ["uuid", "1234567812345678123456781234567"],
            ["uuid", "12345678-1234-5678-1234-5678123456789"], ["uuid", "g2345678123456781234567812345678"],
            ["uuid", 5], ["uuid", true], ["uuid", [1]], ["uuid", "ABCDEFABCDEFABCDEFABCDEFABCDEFAB"],
            ["int", "5"], ["int", " 5 "], ["int", "+5"], ["int", "-5"], ["int", "5_000"], ["int", "_5"],
            ["int", "5_"], ["int", "5__0"], ["int", "0x10"], ["int", "5.0"], ["int", ""], ["int", " "],
            ["int", "1e3"], ["int", "\t7\n"], ["int", "00012"], ["int", "-0"], ["int", "\u001c5"],
            ["int", "\u00a05\u2003"], ["int", "- 5"], ["int", "12345678901234567890"],
            ["int", true], ["int", false], ["int", 5.7], ["int", -5.7], ["int", -0.5], ["int", 1e30],
            ["int", 1e999], ["int", -1e999], ["int", [1]], ["int", {}], ["int", 0], ["int", -0], ["int", 42],
            ["bool", true], ["bool", false], ["bool", "t"], ["bool", "TRUE"], ["bool", "1"], ["bool", "0"],
            ["bool", "yes"], ["bool", "maybe"], ["bool", ""], ["bool", "on"], ["bool", 1], ["bool", 0],
            ["bool", -0], ["bool", 1.0], ["bool", 0.0], ["bool", -0.0], ["bool", 2], ["bool", -1],
            ["bool", 0.5], ["bool", 10e-1], ["bool", []], ["bool", {}], ["bool", "False"],
            ["dt", "2020-01-02T03:04:05Z"], ["dt", "2020-01-02T03:04:05+00:00"], ["dt", "2020-01-02T03:04:05-00:00"],
            ["dt", "2020-1-2T3:4"], ["dt", "2020-01-02 03:04:05.1234567+0530"], ["dt", "2020-01-02T03:04+05"],
            ["dt", "2020-01-02T03:04:05+05:99"], ["dt", "2020-01-02T03:04:05+24:00"], ["dt", "2020-01-02T03:04:05-23:59"],
            ["dt", "2020-01-02T03:04:05+23:60"], ["dt", "2020-02-30T00:00"], ["dt", "2019-02-29T00:00"],
            ["dt", "2020-02-29T00:00"], ["dt", "0000-01-01T00:00"], ["dt", "0001-01-01T00:00"],
            ["dt", "2020-01-01T24:00"], ["dt", "2020-01-01T00:60"], ["dt", "2020-01-01T00:00:60"],
            ["dt", "2020-01-01T00:00\n"], ["dt", "2020-01-01T00:00\n\n"], ["dt", "2020-13-01T00:00"],
            ["dt", "2020-00-10T00:00"], ["dt", "2020-10-00T00:00"], ["dt", "2020-12-11T10:09:08.999999999999"],
            ["dt", "2020-12-11T10:09:08.9999999999999"], ["dt", "2020-01-02"], ["dt", "2020-01-02T03"],
            ["dt", "2020-01-02T03:04:05."], ["dt", "2020-01-02t03:04"], ["dt", "2020-01-02  03:04"],
            ["dt", "2020-01-02T03:04:05+053"], ["dt", "2020-01-02T03:04:05 +05:00"], ["dt", "2020-01-02T03:04:05z"],
            ["dt", " 2020-01-02T03:04"], ["dt", "20200-01-02T03:04"], ["dt", "2020-01-02T03:04:05-0000"],
            ["dt", "9999-12-31T23:59:59.999999-23:59"], ["dt", "2020-01-02T03:04:05.1"], ["dt", ""],
            ["dt", "yesterday"], ["dt", "2020-01-02T3:4:5.000001+01"]
        ]"#;
    let Ok(mut child) = Command::new("python3")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
    else {
        eprintln!("python3 not available: skipping the coercion cross-check");
        return;
    };
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(cases.as_bytes());
    }
    let Ok(out) = child.wait_with_output() else {
        return;
    };
    if !out.status.success() {
        eprintln!("python3 without dateutil: skipping the coercion cross-check");
        return;
    }
    let theirs: Vec<String> = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let Value::Array(cases) = j(cases) else {
        panic!("cases must parse");
    };
    assert_eq!(theirs.len(), cases.len());
    for (case, want) in cases.iter().zip(&theirs) {
        let (kind, v) = (&case[0], &case[1]);
        let ours = match kind.as_str().unwrap_or("") {
            "uuid" => match uuid_field(v) {
                Ok(u) => u.hyphenated().to_string(),
                Err(_) => "invalid".into(),
            },
            "int" => match integer(v) {
                Ok((neg, m)) => format!("{}{m}", if neg { "-" } else { "" }),
                Err(Fault::Crash) => "crash".into(),
                Err(_) => "invalid".into(),
            },
            "dt" => match datetime(v) {
                Ok(t) => t.to_http_string(),
                Err(_) => "invalid".into(),
            },
            _ => match boolean(v) {
                Ok(b) => b.to_string(),
                Err(_) => "invalid".into(),
            },
        };
        // Deliberate: where Python's int(inf) crashes, Herald says "Not a valid integer.".
        let want = if kind == "int" && want == "crash" {
            "invalid"
        } else {
            want.as_str()
        };
        assert_eq!(ours, want, "case {case}");
    }
}
