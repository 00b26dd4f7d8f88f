//! TLS on the listener: a real TLS client, a certificate made here, HTTP/1.1 and HTTP/2
//! through ALPN, TLS 1.2+ only, and a certificate reloaded while serving.

use std::io::{Read, Write};
use std::path::Path;

use openssl::asn1::Asn1Time;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::PKey;
use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode, SslVersion};
use openssl::x509::extension::SubjectAlternativeName;
use openssl::x509::{X509NameBuilder, X509};

use crate::support::*;

/// A self-signed certificate for localhost and 127.0.0.1, written as `name.pem` and
/// `name.key`; returns the certificate.
pub(crate) fn make_certificate(dir: &Path, name: &str, serial: u32) -> X509 {
    let key = PKey::from_ec_key(
        EcKey::generate(&EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap()).unwrap(),
    )
    .unwrap();
    let mut subject = X509NameBuilder::new().unwrap();
    subject.append_entry_by_text("CN", "localhost").unwrap();
    let subject = subject.build();
    let mut builder = X509::builder().unwrap();
    builder.set_version(2).unwrap();
    builder
        .set_serial_number(
            &openssl::bn::BigNum::from_u32(serial)
                .unwrap()
                .to_asn1_integer()
                .unwrap(),
        )
        .unwrap();
    builder.set_subject_name(&subject).unwrap();
    builder.set_issuer_name(&subject).unwrap();
    builder.set_pubkey(&key).unwrap();
    builder
        .set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    builder
        .set_not_after(&Asn1Time::days_from_now(2).unwrap())
        .unwrap();
    let san = SubjectAlternativeName::new()
        .dns("localhost")
        .ip("127.0.0.1")
        .build(&builder.x509v3_context(None, None))
        .unwrap();
    builder.append_extension(san).unwrap();
    builder.sign(&key, MessageDigest::sha256()).unwrap();
    let cert = builder.build();
    std::fs::write(dir.join(format!("{name}.pem")), cert.to_pem().unwrap()).unwrap();
    std::fs::write(
        dir.join(format!("{name}.key")),
        key.private_key_to_pem_pkcs8().unwrap(),
    )
    .unwrap();
    cert
}

/// Connects with OpenSSL offering `alpn`, within `versions`; the negotiated protocol and the
/// certificate served, or the handshake error.
/// What a handshake brought: the protocol ALPN chose, the certificate served, the stream.
type Handshake = (
    Option<Vec<u8>>,
    X509,
    openssl::ssl::SslStream<std::net::TcpStream>,
);

fn handshake(
    addr: std::net::SocketAddr,
    alpn: &[u8],
    versions: (SslVersion, SslVersion),
) -> Result<Handshake, String> {
    let mut connector = SslConnector::builder(SslMethod::tls()).unwrap();
    connector.set_verify(SslVerifyMode::NONE);
    connector.set_security_level(0);
    connector.set_min_proto_version(Some(versions.0)).unwrap();
    connector.set_max_proto_version(Some(versions.1)).unwrap();
    connector.set_alpn_protos(alpn).unwrap();
    let tcp = std::net::TcpStream::connect(addr).unwrap();
    let stream = connector
        .build()
        .connect("localhost", tcp)
        .map_err(|e| e.to_string())?;
    let alpn = stream.ssl().selected_alpn_protocol().map(<[u8]>::to_vec);
    let cert = stream.ssl().peer_certificate().unwrap();
    Ok((alpn, cert, stream))
}

/// [`handshake`] off the async workers.
async fn handshake_from(
    addr: std::net::SocketAddr,
    alpn: &'static [u8],
    versions: (SslVersion, SslVersion),
) -> Result<Handshake, String> {
    tokio::task::spawn_blocking(move || handshake(addr, alpn, versions))
        .await
        .unwrap()
}

#[tokio::test]
async fn https_with_http1_and_http2_tls12_plus_and_a_reloaded_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let first = make_certificate(dir.path(), "gateway", 1);
    let config = format!(
        "[server]\ntls_cert = {}\ntls_key = {}\n[[source]]\nname = \"gh\"\npath = \"/gh\"\npreset = \"github\"\nsecret = \"s\"\n",
        quoted(&dir.path().join("gateway.pem").display().to_string()),
        quoted(&dir.path().join("gateway.key").display().to_string()),
    );
    let gw = spawn(&config).await;
    // HTTP/1.1 over TLS with a client that verifies the certificate.
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&first.to_pem().unwrap()).unwrap())
        .resolve("localhost", gw.addr)
        .build()
        .unwrap();
    let https = |path: &str| format!("https://localhost:{}{path}", gw.addr.port());
    let health = client.get(https("/health")).send().await.unwrap();
    assert_eq!(
        (health.status().as_u16(), health.version()),
        (200, reqwest::Version::HTTP_11)
    );
    let body = br#"{"zen":"tls"}"#;
    let signature = format!(
        "sha256={}",
        hookgate_verify::Encoding::Hex
            .encode(&hookgate_verify::HashAlgorithm::Sha256.mac_of(b"s", body))
    );
    let stored = client
        .post(https("/gh"))
        .header("X-Hub-Signature-256", signature)
        .header("X-GitHub-Delivery", "tls-1")
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(stored.status(), 200);
    assert_eq!(gw.stored().await.len(), 1);
    // Plain HTTP on the TLS port is not served.
    assert!(reqwest::get(format!("http://{}/health", gw.addr))
        .await
        .map_or(true, |r| !r.status().is_success()));

    let addr = gw.addr;
    let (h2, served, mut stream) = handshake_from(
        addr,
        b"\x02h2\x08http/1.1",
        (SslVersion::TLS1_2, SslVersion::TLS1_3),
    )
    .await
    .unwrap();
    assert_eq!(h2.as_deref(), Some(&b"h2"[..]), "HTTP/2 through ALPN");
    assert_eq!(served.to_der().unwrap(), first.to_der().unwrap());
    // It speaks HTTP/2: the client preface and SETTINGS are answered with SETTINGS.
    let frame = tokio::task::spawn_blocking(move || {
        stream
            .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
            .unwrap();
        let mut head = [0u8; 9];
        stream.read_exact(&mut head).unwrap();
        head
    })
    .await
    .unwrap();
    assert_eq!(frame[3], 0x4, "a SETTINGS frame");
    let (h1, _, _) = handshake_from(
        addr,
        b"\x08http/1.1",
        (SslVersion::TLS1_2, SslVersion::TLS1_2),
    )
    .await
    .unwrap();
    assert_eq!(
        h1.as_deref(),
        Some(&b"http/1.1"[..]),
        "TLS 1.2 and HTTP/1.1 offered alone"
    );
    let old = handshake_from(
        addr,
        b"\x08http/1.1",
        (SslVersion::TLS1, SslVersion::TLS1_1),
    )
    .await
    .map(|_| ());
    assert!(old.is_err(), "TLS 1.0 and 1.1 are refused");

    // A new certificate: reloaded, new connections get it.
    let second = make_certificate(dir.path(), "gateway", 2);
    assert!(gw.gateway.reload_tls().unwrap());
    let (_, served, _) = handshake_from(
        addr,
        b"\x08http/1.1",
        (SslVersion::TLS1_2, SslVersion::TLS1_3),
    )
    .await
    .unwrap();
    assert_eq!(served.to_der().unwrap(), second.to_der().unwrap());
    // A broken pair is refused and the last good one keeps serving.
    std::fs::write(dir.path().join("gateway.key"), "not a key").unwrap();
    let error = gw.gateway.reload_tls().unwrap_err().to_string();
    assert!(error.contains("gateway.key"), "{error}");
    let (_, served, _) = handshake_from(
        addr,
        b"\x08http/1.1",
        (SslVersion::TLS1_2, SslVersion::TLS1_3),
    )
    .await
    .unwrap();
    assert_eq!(served.to_der().unwrap(), second.to_der().unwrap());
    gw.stop().await;
}

#[test]
fn a_certificate_that_does_not_load_is_a_configuration_error() {
    let dir = tempfile::tempdir().unwrap();
    make_certificate(dir.path(), "a", 1);
    make_certificate(dir.path(), "b", 2);
    let parse = |cert: &str, key: &str| {
        hookgate_server::Config::parse(
            &format!("[server]\ntls_cert = \"{cert}\"\ntls_key = \"{key}\"\n"),
            "t.toml",
            dir.path(),
            &hookgate_server::config::ProcessEnvironment,
        )
        .map(|_| ())
        .map_err(|e| e.to_string())
    };
    assert_eq!(
        parse("a.pem", "a.key"),
        Ok(()),
        "relative to the configuration"
    );
    let mismatch = parse("a.pem", "b.key").unwrap_err();
    assert!(
        mismatch.starts_with("t.toml: server.tls_key:") && mismatch.contains("does not belong"),
        "{mismatch}"
    );
    let missing = parse("nope.pem", "a.key").unwrap_err();
    assert!(missing.starts_with("t.toml: server.tls_cert:"), "{missing}");
}
