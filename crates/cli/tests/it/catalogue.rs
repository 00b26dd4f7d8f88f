//! Every catalogued preset end to end: `hookgate send --preset NAME` signs its sample event,
//! `hookgate serve` with one source per preset accepts it, and refuses the same event signed
//! with a wrong secret. The parameters are each preset's test vector's
//! (`crates/verify/tests/vectors/`). Presets signed with a private key or an OIDC issuer are
//! sent by `simulator::send_to_serve_for_every_preset`.

use std::process::Output;

use hookgate_verify::preset::{self, ParamKind};
use serde_json::Value;

use crate::support::*;

fn vector_params(name: &str) -> serde_json::Map<String, Value> {
    let path = format!(
        "{}/../verify/tests/vectors/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let file: Value = serde_json::from_str(&text).unwrap();
    file["cases"][0]["params"].as_object().unwrap().clone()
}

fn status_of(out: &Output) -> u16 {
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            panic!(
                "no status line: {stdout} {}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
}

#[test]
fn send_signs_every_catalogued_preset_and_serve_accepts_it() {
    // AWS SNS signs with a certificate it serves: `sns_end_to_end` below.
    let signed_with_secrets: Vec<_> = preset::catalogue()
        .iter()
        .filter(|p| p.name() != "aws-sns")
        .filter(|p| {
            p.params()
                .iter()
                .all(|q| !matches!(q.kind(), ParamKind::PublicKey | ParamKind::Issuers))
        })
        .collect();
    assert!(signed_with_secrets.len() >= 30, "the catalogue shrank");
    let dir = tempfile::tempdir().unwrap();
    let mut config = String::from("[server]\nlisten = \"127.0.0.1:0\"\n");
    let mut sends = Vec::new();
    for p in &signed_with_secrets {
        let path = format!("/e2e/{}", p.name());
        config.push_str(&format!(
            "[[source]]\nname = \"{0}\"\npath = \"{path}\"\npreset = \"{0}\"\n",
            p.name()
        ));
        let mut args: Vec<String> = Vec::new();
        let mut wrong: Vec<String> = Vec::new();
        // Without a signing secret (HTTP Basic), the wrong credential is a wrong password.
        let has_secret = p.params().iter().any(|q| q.kind() == ParamKind::Secret);
        for (key, value) in vector_params(p.name()) {
            let kind = p.param(&key).map(|q| q.kind());
            let value = match kind {
                // The URL the provider calls, as both sides see it.
                Some(ParamKind::PublicUrl) => "http://127.0.0.1".to_owned(),
                _ => value.as_str().expect("a text parameter").to_owned(),
            };
            config.push_str(&format!("{key} = {}\n", toml_string(&value)));
            if kind == Some(ParamKind::Secret) {
                args.extend(["--secret".into(), value.clone()]);
                wrong.extend(["--secret".into(), altered(&value)]);
            } else if !has_secret && key == "password" {
                args.extend(["--param".into(), format!("{key}={value}")]);
                wrong.extend(["--param".into(), format!("{key}={}", altered(&value))]);
            } else {
                args.extend(["--param".into(), format!("{key}={value}")]);
                wrong.extend(["--param".into(), format!("{key}={value}")]);
            }
        }
        sends.push((p.name().to_owned(), path, args, wrong));
    }
    std::fs::write(dir.path().join("hookgate.toml"), &config).unwrap();
    let running = start(dir.path(), &dir.path().join("hookgate.toml"), &[]);
    for (name, path, args, wrong) in &sends {
        let out = hookgate()
            .args(["send", &running.url(path), "--preset", name])
            .args(args)
            .output()
            .unwrap();
        assert_eq!(
            status_of(&out) / 100,
            2,
            "{name}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let out = hookgate()
            .args(["send", &running.url(path), "--preset", name])
            .args(wrong)
            .output()
            .unwrap();
        assert!(
            status_of(&out) >= 400,
            "{name}: a wrong secret was accepted"
        );
    }
    let (code, _) = running.terminate();
    assert_eq!(code, Some(0));
}

/// One letter or digit of `secret` changed, the one nearest its middle, so a base64 or
/// `whsec_…` secret stays valid base64.
fn altered(secret: &str) -> String {
    let mut bytes = secret.as_bytes().to_vec();
    let middle = bytes.len() / 2;
    let at = (middle..bytes.len())
        .chain((0..middle).rev())
        .find(|&i| bytes[i].is_ascii_alphanumeric())
        .expect("a secret has a letter or digit");
    bytes[at] = match bytes[at] {
        b'9' => b'0',
        b'z' => b'a',
        b'Z' => b'A',
        c => c + 1,
    };
    String::from_utf8(bytes).expect("ASCII in, ASCII out")
}

/// The key `hookgate keygen` makes for each preset a public key verifies (beyond the seeds,
/// sent by `simulator.rs`).
const KEYED: &[(&str, &str)] = &[
    ("discord", "EdDSA"),
    ("fusionauth", "RS256"),
    ("sendgrid", "ES256"),
    ("telnyx", "EdDSA"),
];

#[test]
fn send_signs_every_public_key_preset_and_serve_accepts_it() {
    let keyed: Vec<_> = preset::catalogue()
        .iter()
        .filter(|p| p.category() != "Seed providers")
        .filter(|p| p.params().iter().any(|q| q.kind() == ParamKind::PublicKey))
        .map(|p| p.name())
        .collect();
    assert_eq!(
        keyed,
        KEYED.iter().map(|(name, _)| *name).collect::<Vec<_>>(),
        "every public-key preset has a key type here"
    );
    let dir = tempfile::tempdir().unwrap();
    let mut config = String::from("[server]\nlisten = \"127.0.0.1:0\"\n");
    for (name, alg) in KEYED {
        for prefix in [name.to_string(), format!("{name}-other")] {
            let out = hookgate()
                .args(["keygen", "--alg", alg, "--out"])
                .arg(dir.path().join(&prefix))
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        config.push_str(&format!(
            "[[source]]\nname = \"{name}\"\npath = \"/e2e/{name}\"\npreset = \"{name}\"\npublic_key_file = \"{name}.pub.pem\"\n"
        ));
    }
    std::fs::write(dir.path().join("hookgate.toml"), &config).unwrap();
    let running = start(dir.path(), &dir.path().join("hookgate.toml"), &[]);
    for (name, _) in KEYED {
        let url = running.url(&format!("/e2e/{name}"));
        let key = dir.path().join(format!("{name}.pem"));
        let out = hookgate()
            .args(["send", &url, "--preset", name, "--key"])
            .arg(&key)
            .output()
            .unwrap();
        assert_eq!(
            status_of(&out) / 100,
            2,
            "{name}: {} {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let out = hookgate()
            .args(["send", &url, "--preset", name, "--key"])
            .arg(dir.path().join(format!("{name}-other.pem")))
            .output()
            .unwrap();
        assert!(status_of(&out) >= 400, "{name}: a wrong key was accepted");
    }
    let (code, _) = running.terminate();
    assert_eq!(code, Some(0));
}

/// A self-signed certificate for `key_pem` (what SNS publishes at `SigningCertURL`).
fn certificate(key_pem: &[u8]) -> Vec<u8> {
    use openssl::x509::{X509NameBuilder, X509};
    let key = openssl::pkey::PKey::private_key_from_pem(key_pem).unwrap();
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", "sns.amazonaws.com")
        .unwrap();
    let name = name.build();
    let mut cert = X509::builder().unwrap();
    cert.set_version(2).unwrap();
    cert.set_subject_name(&name).unwrap();
    cert.set_issuer_name(&name).unwrap();
    cert.set_pubkey(&key).unwrap();
    cert.set_not_before(&openssl::asn1::Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    cert.set_not_after(&openssl::asn1::Asn1Time::days_from_now(1).unwrap())
        .unwrap();
    cert.sign(&key, openssl::hash::MessageDigest::sha256())
        .unwrap();
    cert.build().to_pem().unwrap()
}

/// AWS SNS end to end: `hookgate send --preset aws-sns` signs a notification for a
/// certificate served on loopback, `serve` fetches that certificate once and accepts; a
/// `SubscriptionConfirmation` is answered, not stored, and its `SubscribeURL` visited.
#[test]
fn sns_end_to_end_fetches_the_certificate_once_and_confirms_the_subscription() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let out = hookgate()
        .args(["keygen", "--alg", "RS256", "--out"])
        .arg(dir.path().join("sns"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pem = certificate(&std::fs::read(dir.path().join("sns.pem")).unwrap());
    let certificate_gets = Arc::new(AtomicUsize::new(0));
    let confirmations = Arc::new(AtomicUsize::new(0));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let base = {
        let (gets, confirms) = (certificate_gets.clone(), confirmations.clone());
        runtime.block_on(async move {
            let app = axum::Router::new()
                .route(
                    "/SimpleNotificationService-test.pem",
                    axum::routing::get(move || {
                        gets.fetch_add(1, Ordering::SeqCst);
                        let pem = pem.clone();
                        async move { pem }
                    }),
                )
                .route(
                    "/",
                    axum::routing::get(move || {
                        confirms.fetch_add(1, Ordering::SeqCst);
                        async { "<ConfirmSubscriptionResponse/>" }
                    }),
                );
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let base = format!("http://{}", listener.local_addr().unwrap());
            tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
            base
        })
    };
    let topic = "arn:aws:sns:us-east-1:123456789012:orders";
    std::fs::write(
        dir.path().join("hookgate.toml"),
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n[store]\nurl = \"sqlite://./data/hookgate.db\"\n[[source]]\nname = \"sns\"\npath = \"/sns\"\npreset = \"aws-sns\"\ntopic_arn = \"{topic}\"\nallow_loopback = true\n"
        ),
    )
    .unwrap();
    let running = start(dir.path(), &dir.path().join("hookgate.toml"), &[]);
    let cert_url = format!("{base}/SimpleNotificationService-test.pem");
    let send = |body: Option<&std::path::Path>| {
        let mut command = hookgate();
        command
            .args(["send", &running.url("/sns"), "--preset", "aws-sns", "--key"])
            .arg(dir.path().join("sns.pem"))
            .args(["--kid", &cert_url])
            .args(["--param", &format!("topic_arn={topic}")])
            .args(["--param", "allow_loopback=true"]);
        if let Some(body) = body {
            command.arg("--body").arg(body);
        }
        command.output().unwrap()
    };
    for _ in 0..3 {
        let out = send(None);
        assert_eq!(
            status_of(&out) / 100,
            2,
            "{} {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(
        certificate_gets.load(Ordering::SeqCst),
        1,
        "fetched once, then cached"
    );

    let confirmation = dir.path().join("confirmation.json");
    std::fs::write(
        &confirmation,
        serde_json::json!({
            "Type": "SubscriptionConfirmation",
            "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
            "Token": "2336412f37fb687f5d51e6e2425c464de",
            "TopicArn": topic,
            "Message": "You have chosen to subscribe to the topic.",
            "SubscribeURL": format!("{base}/?Action=ConfirmSubscription&Token=2336412f"),
            "Timestamp": "2026-01-01T00:00:00.000Z"
        })
        .to_string(),
    )
    .unwrap();
    let out = send(Some(&confirmation));
    assert_eq!(
        status_of(&out),
        200,
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while confirmations.load(Ordering::SeqCst) == 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(
        confirmations.load(Ordering::SeqCst),
        1,
        "the subscription was confirmed"
    );
    let (code, _) = running.terminate();
    assert_eq!(code, Some(0));
    let stored = stored_events(&dir.path().join("data/hookgate.db"));
    assert_eq!(
        stored.len(),
        3,
        "three notifications, the confirmation not stored"
    );
}

fn toml_string(text: &str) -> String {
    toml::Value::String(text.to_owned()).to_string()
}
