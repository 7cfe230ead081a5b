//! Loading certificates: PEM parsing, mismatched keys, a reload that fails keeps the old config.

use super::*;

fn pem_pair(cn: &str) -> (String, String) {
    let mut p = rcgen::CertificateParams::new(vec!["localhost".into()]).unwrap();
    p.distinguished_name.push(rcgen::DnType::CommonName, cn);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = p.self_signed(&key).unwrap();
    (cert.pem(), key.serialize_pem())
}

#[test]
fn parse_pem_refuses_what_is_not_a_chain_and_a_key() {
    let (cert, key) = pem_pair("a");
    assert!(parse_pem(cert.as_bytes(), key.as_bytes()).is_ok());
    assert!(parse_pem(b"", key.as_bytes())
        .unwrap_err()
        .contains("CERTIFICATE"));
    assert!(parse_pem(cert.as_bytes(), b"").unwrap_err().contains("key"));
    assert!(parse_pem(key.as_bytes(), key.as_bytes()).is_err());
}

#[test]
fn a_failed_reload_keeps_the_current_config() {
    let dir = std::env::temp_dir().join(format!("herald-tls-unit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let files = TlsFiles {
        cert: dir.join("c.pem"),
        key: dir.join("k.pem"),
    };
    let (cert, key) = pem_pair("a");
    std::fs::write(&files.cert, &cert).unwrap();
    std::fs::write(&files.key, &key).unwrap();
    let store = CertStore::load(files.clone()).unwrap();
    let before = store.current();
    // A key that does not match the certificate.
    let (_, other_key) = pem_pair("b");
    std::fs::write(&files.key, &other_key).unwrap();
    assert!(matches!(store.reload(), Err(TlsError::Rustls { .. })));
    assert!(Arc::ptr_eq(&before, &store.current()));
    std::fs::remove_file(&files.key).unwrap();
    assert!(matches!(store.reload(), Err(TlsError::Read { .. })));
    // A good pair is swapped in; a shard picks it up at its next accept.
    std::fs::write(&files.key, &key).unwrap();
    let store = Arc::new(CertStore::load(files.clone()).unwrap());
    let mut shard = ShardTls::new(store.clone());
    let first = shard.accept().unwrap();
    drop(first);
    let (cert2, key2) = pem_pair("c");
    std::fs::write(&files.cert, &cert2).unwrap();
    std::fs::write(&files.key, &key2).unwrap();
    store.reload().unwrap();
    let old_source = shard.source.clone();
    shard.accept().unwrap();
    assert!(
        !Arc::ptr_eq(&old_source, &shard.source),
        "refreshed at accept"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// What a TLS connection adds to a plain one, besides rustls's heap buffers (the 4 KiB
/// receive buffer it keeps, the record keys): the boxed session. A guard against growth.
#[test]
fn tls_session_size_is_known() {
    let n = std::mem::size_of::<TlsStream>();
    eprintln!(
        "TlsStream {n} B (Stream {} B)",
        std::mem::size_of::<Stream>()
    );
    assert!(n <= 1536, "TlsStream grew to {n} bytes");
    assert_eq!(std::mem::size_of::<Stream>(), 16);
}
