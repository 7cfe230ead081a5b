//! The main listener's TLS settings and `[listener:NAME]` sections.

use super::*;

fn files(cert: &str, key: &str) -> Option<TlsFiles> {
    Some(TlsFiles {
        cert: cert.into(),
        key: key.into(),
    })
}

#[test]
fn tls_from_flags_ini_and_env() {
    assert_eq!(cfg(&[], &[], None).0.tls, None, "plain by default");
    let c = cfg(&["--tls-cert", "/c.pem", "--tls-key", "/k.pem"], &[], None).0;
    assert_eq!(c.tls, files("/c.pem", "/k.pem"));
    let env = [
        ("CHANNELSTREAM_TLS_CERT", "/e.pem"),
        ("CHANNELSTREAM_TLS_KEY", "/ek.pem"),
    ];
    assert_eq!(cfg(&[], &env, None).0.tls, files("/e.pem", "/ek.pem"));
    let ini = "[channelstream]\ntls_cert = /i.pem\ntls_key = /ik.pem\n";
    let (c, ignored) = cfg(&["-i", "/h.ini"], &env, Some(("/h.ini", ini)));
    assert_eq!(
        c.tls,
        files("/i.pem", "/ik.pem"),
        "the ini file, not the env"
    );
    assert!(ignored.is_empty(), "{ignored:?}");
    // Flags win over the ini file.
    let a = [
        "-i",
        "/h.ini",
        "--tls-cert",
        "/f.pem",
        "--tls-key",
        "/fk.pem",
    ];
    assert_eq!(
        cfg(&a, &[], Some(("/h.ini", ini))).0.tls,
        files("/f.pem", "/fk.pem")
    );
}

#[test]
fn tls_cert_and_key_come_together() {
    assert!(matches!(
        err(&["--tls-cert", "/c.pem"], &[], None),
        ConfigError::Cli(_)
    ));
    let ini = "[channelstream]\ntls_cert = /i.pem\n";
    let e = err(&["-i", "/h.ini"], &[], Some(("/h.ini", ini)));
    assert!(matches!(e, ConfigError::Listener { .. }), "{e}");
    let e = err(&[], &[("CHANNELSTREAM_TLS_KEY", "/k.pem")], None);
    assert!(e.to_string().contains("together"), "{e}");
}

#[test]
fn extra_listeners_from_ini_sections() {
    let ini = "[channelstream]\nport = 8000\n\
               [listener:app]\nport = 8080\n\
               [listener:server]\nhost = 0.0.0.0\nport = 9090\ntls_cert = /s.pem\ntls_key = /sk.pem\n";
    let c = cfg(&["-i", "/h.ini"], &[], Some(("/h.ini", ini))).0;
    assert_eq!(
        c.listeners,
        vec![
            ListenerConfig {
                name: "app".into(),
                host: None,
                port: 8080,
                tls: None,
            },
            ListenerConfig {
                name: "server".into(),
                host: Some("0.0.0.0".into()),
                port: 9090,
                tls: files("/s.pem", "/sk.pem"),
            },
        ]
    );
    assert_eq!(
        c.listener_addr(&c.listeners[0]).unwrap(),
        "127.0.0.1:8080".parse().unwrap(),
        "the main host by default"
    );
    for bad in [
        "[channelstream]\n[listener:x]\nhost = a\n",
        "[channelstream]\n[listener:x]\nport = 70000\n",
        "[channelstream]\n[listener:x]\nport = 1\ntls_key = /k\n",
    ] {
        let e = err(&["-i", "/h.ini"], &[], Some(("/h.ini", bad)));
        assert!(matches!(e, ConfigError::Listener { .. }), "{bad}: {e}");
    }
}
