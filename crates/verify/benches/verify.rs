//! Verifications per second for a 1 KiB body, per scheme.
//!
//! `cargo bench -p hookgate-verify --bench verify`
//!
//! The baseline, measured in the same run, is the bare HMAC-SHA256 primitive over the same
//! body: each scheme's full verification (header parsing, decoding, key choice, claims,
//! metadata extraction) is printed as verifications/s and as a multiple of that baseline.

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{Criterion, Throughput};
use hookgate_verify::{
    Algorithm, HashAlgorithm, KeySet, NoKeys, Request, Secret, SigningKeys, Source, SourceSpec,
};
use openssl::ec::{EcGroup, EcKey};
use openssl::nid::Nid;
use openssl::pkey::PKey;
use openssl::rsa::Rsa;
use time::OffsetDateTime;

const GROUP: &str = "verify_1KiB";

fn source(toml_text: &str) -> Source {
    Source::build(toml::from_str::<SourceSpec>(toml_text).unwrap()).unwrap()
}

fn pems(pkey: PKey<openssl::pkey::Private>) -> (String, String) {
    (
        String::from_utf8(pkey.private_key_to_pem_pkcs8().unwrap()).unwrap(),
        String::from_utf8(pkey.public_key_to_pem().unwrap()).unwrap(),
    )
}

fn quoted(text: &str) -> String {
    toml::Value::String(text.to_owned()).to_string()
}

fn body() -> Vec<u8> {
    let mut body =
        br#"{"event_id":"0f6c7b34-8f5d-4b43-9a7c-6e9b5b1d2c11","type":"orders/created","data":""#
            .to_vec();
    body.resize(1024 - 2, b'x');
    body.extend_from_slice(b"\"}");
    body
}

fn benches(c: &mut Criterion) {
    let now = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
    let body = body();
    let mut group = c.benchmark_group(GROUP);
    group.throughput(Throughput::Elements(1));

    group.bench_function("baseline_hmac_sha256_primitive", |b| {
        b.iter(|| HashAlgorithm::Sha256.mac_of(black_box(b"bench-secret"), black_box(&body)))
    });

    let rsa = pems(PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap());
    let p521 = pems(
        PKey::from_ec_key(
            EcKey::generate(&EcGroup::from_curve_name(Nid::SECP521R1).unwrap()).unwrap(),
        )
        .unwrap(),
    );
    let ed25519 = pems(PKey::generate_ed25519().unwrap());
    let whsk = format!(
        "whsk_{}",
        hookgate_verify::Encoding::Base64.encode(&[9u8; 32])
    );
    let whpk = hookgate_verify::standard_webhooks_public_key(&whsk).unwrap();

    let cases: Vec<(&str, String, SigningKeys)> = vec![
        ("hmac_sha256_github", "preset = \"github\"\nsecret = \"bench-secret\"".into(), SigningKeys::default()),
        (
            "jwt_hs256",
            "id = \"json:/event_id\"\n[verify]\nkind = \"jwt\"\nalgorithms = \"HS256\"\nsecret = \"bench-secret\"\nissuer = \"i\"\naudience = \"a\"".into(),
            SigningKeys::default(),
        ),
        (
            "jwt_rs256",
            format!("id = \"json:/event_id\"\n[verify]\nkind = \"jwt\"\nalgorithms = \"RS256\"\npublic_key = {}\nissuer = \"i\"\naudience = \"a\"", quoted(&rsa.1)),
            SigningKeys { private_key_pem: Some(rsa.0.clone()), ..Default::default() },
        ),
        (
            "jwt_es512_qitech",
            format!("preset = \"qitech\"\npublic_key = {}\napi_client_key = \"k\"", quoted(&p521.1)),
            SigningKeys { private_key_pem: Some(p521.0.clone()), ..Default::default() },
        ),
        (
            "jwt_eddsa",
            format!("id = \"json:/event_id\"\n[verify]\nkind = \"jwt\"\nalgorithms = \"EdDSA\"\npublic_key = {}\nissuer = \"i\"\naudience = \"a\"", quoted(&ed25519.1)),
            SigningKeys { private_key_pem: Some(ed25519.0.clone()), ..Default::default() },
        ),
        (
            "standard_webhooks_v1",
            "preset = \"standard-webhooks\"\nsecret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"".into(),
            SigningKeys { event_id: Some("msg_1".into()), ..Default::default() },
        ),
        (
            "standard_webhooks_v1a_ed25519",
            format!("preset = \"standard-webhooks\"\nsecret = \"{whpk}\""),
            SigningKeys { event_id: Some("msg_1".into()), secret: Some(Secret::new(whsk.clone())), ..Default::default() },
        ),
    ];
    for (name, config, keys) in &cases {
        let src = source(config);
        let mut req = Request::post("/client_webhook_endpoint", &body);
        src.sign(&mut req, now, keys).unwrap();
        src.accept(&req, now, &NoKeys)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        group.bench_function(*name, |b| {
            b.iter(|| src.accept(black_box(&req), now, &NoKeys).unwrap())
        });
    }

    // OIDC: RS256 ID token checked against a key set, as the server holds it.
    let issuer = "https://issuer.example.com";
    let src = source(&format!(
        "[verify]\nkind = \"oidc\"\n[verify.issuers]\n\"{issuer}\" = [\"aud\"]"
    ));
    let jwk = josekit::jws::RS256
        .key_pair_from_pem(&rsa.0)
        .unwrap()
        .to_jwk_public_key();
    let mut jwk = jwk;
    jwk.set_key_id("k1");
    let jwks = format!("{{\"keys\":[{jwk}]}}");
    let mut keys = std::collections::HashMap::new();
    keys.insert(
        issuer.to_owned(),
        std::sync::Arc::new(KeySet::from_jwks(jwks.as_bytes()).unwrap()),
    );
    let mut req = Request::post("/pps", &body);
    let signing = SigningKeys {
        private_key_pem: Some(rsa.0.clone()),
        key_id: Some("k1".into()),
        issuer: Some(issuer.into()),
        algorithm: Some(Algorithm::RS256),
        ..Default::default()
    };
    src.sign(&mut req, now, &signing).unwrap();
    src.accept(&req, now, &keys).unwrap();
    group.bench_function("oidc_rs256", |b| {
        b.iter(|| src.accept(black_box(&req), now, &keys).unwrap())
    });
    group.finish();
}

const PRESETS: &str = "presets_1KiB";

/// A preset's sample event grown to 1 KiB: a `padding` member in a JSON object (in the
/// first event of a batch), a `Pad` parameter in a form.
fn preset_body(p: &hookgate_verify::preset::Preset, now: OffsetDateTime) -> Vec<u8> {
    let (sample, content_type) = p.sample("0f6c7b34-8f5d-4b43-9a7c-6e9b5b1d2c11", now);
    let mut body = sample;
    if content_type == "application/json" {
        let mut json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let room = 1024usize.saturating_sub(body.len() + 14);
        // A batch (HubSpot, SendGrid) carries the padding in its first event.
        let target = if json.is_array() {
            &mut json[0]
        } else {
            &mut json
        };
        target["padding"] = "x".repeat(room).into();
        body = serde_json::to_vec(&json).unwrap();
    } else {
        body.extend_from_slice(b"&Pad=");
        body.resize(1024, b'x');
    }
    body
}

/// A self-signed certificate for `private_pem`, as SNS publishes one.
fn self_signed(private_pem: &str) -> Vec<u8> {
    use openssl::x509::{X509NameBuilder, X509};
    let key = openssl::pkey::PKey::private_key_from_pem(private_pem.as_bytes()).unwrap();
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", "sns.amazonaws.com")
        .unwrap();
    let name = name.build();
    let mut cert = X509::builder().unwrap();
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

/// The key a public-key preset's bench signs with: the algorithm its vector uses.
fn bench_key(preset: &str) -> Option<hookgate_verify::Algorithm> {
    use hookgate_verify::Algorithm;
    Some(match preset {
        "discord" | "telnyx" => Algorithm::EdDSA,
        "sendgrid" => Algorithm::ES256,
        "fusionauth" | "aws-sns" => Algorithm::RS256,
        "qitech" => Algorithm::ES512,
        _ => return None,
    })
}

/// Every preset verified on a 1 KiB body, with its vector's parameters
/// (`crates/verify/tests/vectors/`); a public-key preset with a key generated here. The
/// ones an OIDC issuer signs are in the `oidc` group.
fn presets(c: &mut Criterion) -> Vec<(String, bool)> {
    use hookgate_verify::keygen::KeyPair;
    use hookgate_verify::preset::{self, ParamKind};
    use hookgate_verify::scheme::aws_sns::{Certificates, SigningCertificate};
    let now = OffsetDateTime::from_unix_timestamp(1_767_225_600).unwrap();
    let mut group = c.benchmark_group(PRESETS);
    group.throughput(Throughput::Elements(1));
    group.bench_function("baseline_hmac_sha256_primitive", |b| {
        let body = body();
        b.iter(|| HashAlgorithm::Sha256.mac_of(black_box(b"bench-secret"), black_box(&body)))
    });
    let mut names = Vec::new();
    for p in preset::catalogue() {
        if p.params().iter().any(|q| q.kind() == ParamKind::Issuers) {
            continue;
        }
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join(format!("tests/vectors/{}.json", p.name()));
        let vector: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let mut spec = vector["cases"][0]["params"].as_object().unwrap().clone();
        let mut signing = SigningKeys {
            secret: spec
                .get("secret")
                .and_then(|s| s.as_str())
                .map(|s| Secret::new(s.to_owned())),
            event_id: Some("msg_bench".into()),
            ..Default::default()
        };
        if p.params().iter().any(|q| q.kind() == ParamKind::PublicKey) {
            let algorithm = bench_key(p.name())
                .unwrap_or_else(|| panic!("{}: name the key its bench signs with", p.name()));
            let pair = KeyPair::generate(algorithm, "bench").unwrap();
            spec.insert("public_key".into(), pair.public_pem.clone().into());
            signing.private_key_pem = Some(pair.private_pem.clone());
        }
        // SNS: a certificate for a generated key, as if fetched from its URL.
        let mut lookup = Certificates::default();
        if p.name() == "aws-sns" {
            let pair = KeyPair::generate(bench_key("aws-sns").unwrap(), "bench").unwrap();
            let url = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-bench.pem";
            let cert = SigningCertificate::from_pem(&self_signed(&pair.private_pem)).unwrap();
            lookup.0.insert(url.to_owned(), std::sync::Arc::new(cert));
            signing.private_key_pem = Some(pair.private_pem.clone());
            signing.key_id = Some(url.to_owned());
        }
        spec.insert("preset".into(), p.name().into());
        let src = Source::build(serde_json::from_value(spec.into()).unwrap()).unwrap();
        let mut body = preset_body(p, now);
        let mut headers = hookgate_verify::Headers::new();
        headers.set("Content-Type", p.sample("x", now).1.to_owned());
        for (k, v) in p.sample_headers() {
            headers.set(&k, v);
        }
        // An id read from a header is there, as `hookgate send` puts it (Polar signs it).
        if let Some(hookgate_verify::Field::Header(name)) = src.id_fields().first() {
            headers.set(name, "msg_bench");
        }
        let mut req = Request::post("/webhook", &body);
        req.headers = headers.clone();
        let signed_body = src.sign(&mut req, now, &signing).unwrap();
        let (headers, query) = (req.headers, req.query);
        if let Some(signed_body) = signed_body {
            body = signed_body;
        }
        let mut req = Request::post("/webhook", &body);
        req.headers = headers;
        req.query = query;
        src.accept(&req, now, &lookup)
            .unwrap_or_else(|e| panic!("{}: {e}", p.name()));
        group.bench_function(p.name(), |b| {
            b.iter(|| src.accept(black_box(&req), now, &lookup).unwrap())
        });
        names.push((p.name().to_owned(), src.is_asymmetric()));
    }
    group.finish();
    names
}

fn mean_ns(dir: &std::path::Path, id: &str) -> Option<f64> {
    mean_ns_in(dir, GROUP, id)
}

fn mean_ns_in(dir: &std::path::Path, group: &str, id: &str) -> Option<f64> {
    let text = std::fs::read_to_string(dir.join(group).join(id).join("new/estimates.json")).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    json["mean"]["point_estimate"].as_f64()
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    benches(&mut criterion);
    let preset_names = presets(&mut criterion);
    criterion.final_summary();

    let dir = std::env::var_os("CRITERION_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
                .parent()
                .unwrap()
                .join("criterion")
        });
    if let Some(baseline) = mean_ns_in(&dir, PRESETS, "baseline_hmac_sha256_primitive") {
        println!(
            "\n{:<24} {:>10} {:>12}  (a symmetric scheme's bound: 50 µs)",
            "preset (1 KiB body)", "µs", "× baseline"
        );
        for (name, asymmetric) in preset_names {
            if let Some(ns) = mean_ns_in(&dir, PRESETS, &name) {
                let over = if asymmetric {
                    "  public key"
                } else if ns > 50_000.0 {
                    "  OVER 50 µs"
                } else {
                    ""
                };
                println!(
                    "{name:<24} {:>10.2} {:>12.2}{over}",
                    ns / 1000.0,
                    ns / baseline
                );
            }
        }
    }
    let Some(baseline) = mean_ns(&dir, "baseline_hmac_sha256_primitive") else {
        return;
    };
    println!(
        "\n{:<32} {:>14} {:>12}",
        "scheme (1 KiB body)", "verifications/s", "× baseline"
    );
    for id in [
        "baseline_hmac_sha256_primitive",
        "hmac_sha256_github",
        "jwt_hs256",
        "jwt_rs256",
        "jwt_es512_qitech",
        "jwt_eddsa",
        "standard_webhooks_v1",
        "standard_webhooks_v1a_ed25519",
        "oidc_rs256",
    ] {
        if let Some(ns) = mean_ns(&dir, id) {
            println!("{id:<32} {:>14.0} {:>12.2}", 1e9 / ns, ns / baseline);
        }
    }
}
