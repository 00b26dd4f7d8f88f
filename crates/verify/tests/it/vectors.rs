//! Every preset against its test vector (`crates/verify/tests/vectors/<preset>.json`, made
//! by `scripts/vectors/run.sh` with the providers' pinned SDKs, or quoted from their
//! documentation), and the negatives derived from each: a tampered body, a wrong secret or
//! key, and a stale timestamp wherever the scheme has one.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use hookgate_verify::preset::{self, ParamKind};
use hookgate_verify::scheme::aws_sns::{Certificates, SigningCertificate};
use hookgate_verify::{
    Accepted, ErrorKind, KeyLookup, KeySet, Request, Source, SourceSpec, VerifyError,
};
use serde::Deserialize;
use serde_json::Value;

use crate::support::at;

#[derive(Deserialize)]
pub struct VectorFile {
    pub preset: String,
    pub made_by: String,
    pub reference: String,
    pub cases: Vec<Case>,
    /// The provider's handshakes and the exact answers its documentation expects.
    #[serde(default)]
    pub handshakes: Vec<HandshakeCase>,
}

#[derive(Deserialize, Clone)]
pub struct HandshakeCase {
    pub name: String,
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub now: i64,
    pub status: u16,
    pub reply: String,
    pub content_type: Option<String>,
    #[serde(default)]
    pub reply_headers: Vec<(String, String)>,
    /// The URL the gateway must GET once answered (SNS's subscription confirmation).
    pub visit: Option<String>,
    /// The file and secret the gateway must keep (Asana's `X-Hook-Secret`).
    pub captured: Option<(String, String)>,
}

#[derive(Deserialize, Clone)]
pub struct Case {
    pub name: String,
    pub params: serde_json::Map<String, Value>,
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub now: i64,
    pub timestamped: bool,
    pub body_signed: bool,
    #[serde(default)]
    pub expect: HashMap<String, String>,
    #[serde(default)]
    pub keys: HashMap<String, Value>,
    pub wrong_params: Option<serde_json::Map<String, Value>>,
    #[serde(default)]
    pub wrong_keys: HashMap<String, Value>,
}

pub fn directory() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors")
}

pub fn load(preset: &str) -> VectorFile {
    let path = directory().join(format!("{preset}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "preset `{preset}` has no test vector {}: {e}",
            path.display()
        )
    });
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn build(preset: &str, params: &serde_json::Map<String, Value>) -> Source {
    let mut spec = params.clone();
    spec.insert("preset".into(), preset.into());
    let spec: SourceSpec = serde_json::from_value(Value::Object(spec)).unwrap();
    Source::build(spec).unwrap_or_else(|e| panic!("{preset}: the vector's parameters: {e}"))
}

/// The keys a vector names: issuers' JWKS, and under `certificates` SNS signing
/// certificates by URL.
pub struct Keys {
    sets: HashMap<String, Arc<KeySet>>,
    certificates: Certificates,
}

impl KeyLookup for Keys {
    fn keys(&self, issuer: &str) -> Option<Arc<KeySet>> {
        self.sets.get(issuer).cloned()
    }

    fn certificate(&self, url: &str) -> Option<Arc<SigningCertificate>> {
        self.certificates.certificate(url)
    }
}

pub fn key_sets(keys: &HashMap<String, Value>) -> Keys {
    let mut out = Keys {
        sets: HashMap::new(),
        certificates: Certificates::default(),
    };
    for (name, value) in keys {
        if name == "certificates" {
            for (url, pem) in value.as_object().expect("URL → PEM") {
                let cert = SigningCertificate::from_pem(pem.as_str().unwrap().as_bytes()).unwrap();
                out.certificates.0.insert(url.clone(), Arc::new(cert));
            }
        } else {
            let set = KeySet::from_jwks(value.to_string().as_bytes()).expect("a JWKS");
            out.sets.insert(name.clone(), Arc::new(set));
        }
    }
    out
}

pub fn request<'a>(case: &Case, body: &'a [u8]) -> Request<'a> {
    let mut r = Request::post(&case.path, body);
    r.method = case.method.clone();
    r.query = case.query.clone();
    for (k, v) in &case.headers {
        r.headers.append(k, v.as_bytes().to_vec());
    }
    r
}

fn run(
    source: &Source,
    case: &Case,
    body: &[u8],
    keys: &HashMap<String, Value>,
    offset: i64,
) -> Result<Accepted, VerifyError> {
    source.accept(&request(case, body), at(case.now + offset), &key_sets(keys))
}

/// One character of a secret changed to another of its class, so its encoding stays valid:
/// the letter or digit nearest its middle (the end of base64 may carry padding bits).
fn altered(secret: &str) -> String {
    let mut chars: Vec<char> = secret.chars().collect();
    let middle = chars.len() / 2;
    let at = (middle..chars.len())
        .chain((0..middle).rev())
        .find(|&i| chars[i].is_ascii_alphanumeric())
        .expect("a secret has a letter or digit");
    chars[at] = match chars[at] {
        '9' => '0',
        'z' => 'a',
        'Z' => 'A',
        c => (c as u8 + 1) as char,
    };
    chars.into_iter().collect()
}

/// The body with one letter or digit past its middle changed.
fn tampered(body: &str) -> Vec<u8> {
    let mut bytes = body.as_bytes().to_vec();
    let start = bytes.len() / 2;
    let at = (start..bytes.len())
        .chain(0..start)
        .find(|&i| bytes[i].is_ascii_alphanumeric())
        .expect("a body with a letter or digit");
    bytes[at] = match bytes[at] {
        b'9' => b'0',
        b'z' => b'a',
        b'Z' => b'A',
        c => c + 1,
    };
    bytes
}

#[test]
fn every_preset_has_a_vector_that_names_how_it_was_made() {
    let files: BTreeSet<String> = std::fs::read_dir(directory())
        .unwrap()
        .map(|e| {
            e.unwrap()
                .file_name()
                .to_string_lossy()
                .trim_end_matches(".json")
                .to_owned()
        })
        .collect();
    let presets: BTreeSet<String> = preset::catalogue()
        .iter()
        .map(|p| p.name().to_owned())
        .collect();
    assert_eq!(files, presets, "one vector file per preset, no other");
    for name in &presets {
        let file = load(name);
        assert_eq!(&file.preset, name);
        assert!(!file.made_by.is_empty() && !file.cases.is_empty(), "{name}");
        assert!(
            file.reference.starts_with("https://") || file.reference.starts_with("seed "),
            "{name}: the reference is a URL or a seed document"
        );
    }
}

#[test]
fn every_preset_accepts_its_vectors_and_refuses_their_negatives() {
    for p in preset::catalogue() {
        let file = load(p.name());
        for case in &file.cases {
            let what = format!("{} ({}, {})", p.name(), case.name, file.made_by);
            let source = build(p.name(), &case.params);
            let body = case.body.as_bytes();

            let accepted = run(&source, case, body, &case.keys, 0)
                .unwrap_or_else(|e| panic!("{what}: refused its vector: {e}"));
            for (field, expected) in &case.expect {
                let got = match field.as_str() {
                    "id" => accepted.meta.id.as_deref(),
                    "topic" => accepted.meta.topic.as_deref(),
                    "tenant" => accepted.meta.tenant.as_deref(),
                    other => panic!("{what}: unknown expectation `{other}`"),
                };
                assert_eq!(got, Some(expected.as_str()), "{what}: {field}");
            }

            let tampered = tampered(&case.body);
            let outcome = run(&source, case, &tampered, &case.keys, 0);
            if case.body_signed {
                assert!(outcome.is_err(), "{what}: accepted a tampered body");
            } else if let Err(e) = outcome {
                assert_ne!(
                    e.kind(),
                    ErrorKind::BadSignature,
                    "{what}: the body is said not to be signed"
                );
            }

            // A wrong secret (or the vector's wrong key).
            let wrong = match &case.wrong_params {
                Some(wrong) => wrong.clone(),
                None => {
                    let mut wrong = case.params.clone();
                    let mut changed = false;
                    for param in p.params() {
                        if param.kind() == ParamKind::Secret {
                            if let Some(Value::String(s)) = wrong.get(param.name()) {
                                let s = altered(s);
                                wrong.insert(param.name().into(), s.into());
                                changed = true;
                            }
                        }
                    }
                    assert!(
                        changed || !case.wrong_keys.is_empty(),
                        "{what}: no secret to alter: give `wrong_params` or `wrong_keys`"
                    );
                    wrong
                }
            };
            let keys = if case.wrong_keys.is_empty() {
                &case.keys
            } else {
                &case.wrong_keys
            };
            let outcome = run(&build(p.name(), &wrong), case, body, keys, 0);
            assert!(
                outcome.is_err(),
                "{what}: accepted with a wrong secret or key"
            );

            // A day later.
            let later = run(&source, case, body, &case.keys, 86_400);
            if case.timestamped {
                let kind = later.err().map(|e| e.kind());
                assert!(
                    matches!(kind, Some(ErrorKind::StaleTimestamp | ErrorKind::Expired)),
                    "{what}: a day later it is {kind:?}, not stale"
                );
            } else {
                assert!(
                    later.is_ok(),
                    "{what}: said to carry no timestamp, yet refused a day later"
                );
            }
        }
    }
}

#[test]
fn every_handshake_is_answered_exactly_as_its_provider_expects() {
    for p in preset::catalogue() {
        let file = load(p.name());
        let first = &file.cases[0];
        let source = build(p.name(), &first.params);
        let names: BTreeSet<&str> = source.handshakes().iter().map(|h| h.name()).collect();
        let covered: BTreeSet<&str> = file.handshakes.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, covered, "{}: one vector per handshake", p.name());
        for case in &file.cases {
            let body = case.body.as_bytes();
            assert!(
                source
                    .handshake(&request(case, body), at(case.now), &key_sets(&case.keys))
                    .is_none(),
                "{} ({}): an event taken for a handshake",
                p.name(),
                case.name
            );
        }
        for h in &file.handshakes {
            let what = format!("{} handshake `{}`", p.name(), h.name);
            let mut r = Request::post(&h.path, h.body.as_bytes());
            r.method = h.method.clone();
            r.query = h.query.clone();
            for (k, v) in &h.headers {
                r.headers.append(k, v.as_bytes().to_vec());
            }
            let keys = key_sets(&first.keys);
            let reply = source
                .handshake(&r, at(h.now), &keys)
                .unwrap_or_else(|| panic!("{what}: not recognised"))
                .unwrap_or_else(|e| panic!("{what}: refused: {e}"));
            assert_eq!(reply.name, h.name, "{what}");
            assert_eq!(reply.status, h.status, "{what}: status");
            assert_eq!(
                String::from_utf8_lossy(&reply.body),
                h.reply,
                "{what}: body"
            );
            assert_eq!(reply.content_type, h.content_type, "{what}: content type");
            assert_eq!(reply.visit, h.visit, "{what}: the URL visited");
            assert_eq!(reply.captured, h.captured, "{what}: the secret kept");
            for (name, value) in &h.reply_headers {
                assert!(
                    reply
                        .headers
                        .iter()
                        .any(|(n, v)| n.eq_ignore_ascii_case(name) && v == value),
                    "{what}: header {name}"
                );
            }
            // A verified handshake is refused under a wrong secret or key, like an event.
            let handshake = source
                .handshakes()
                .iter()
                .find(|x| x.name() == h.name)
                .unwrap();
            if handshake.is_verified() {
                let wrong = match &first.wrong_params {
                    Some(wrong) => wrong.clone(),
                    None if !first.wrong_keys.is_empty() => first.params.clone(),
                    None => {
                        let mut wrong = first.params.clone();
                        let secret = wrong["secret"].as_str().unwrap().to_owned();
                        wrong.insert("secret".into(), altered(&secret).into());
                        wrong
                    }
                };
                let wrong_keys = if first.wrong_keys.is_empty() {
                    &first.keys
                } else {
                    &first.wrong_keys
                };
                let outcome =
                    build(p.name(), &wrong).handshake(&r, at(h.now), &key_sets(wrong_keys));
                assert!(
                    matches!(outcome, Some(Err(_))),
                    "{what}: answered under a wrong secret"
                );
            }
        }
    }
}
