//! Shared helpers: sources from TOML, requests from parts, keys generated on the spot.

use std::collections::HashMap;
use std::sync::Arc;

use hookgate_verify::{
    Accepted, ErrorKind, KeySet, NoKeys, Request, Source, SourceSpec, VerifyError,
};
use openssl::ec::{EcGroup, EcKey};
use openssl::nid::Nid;
use openssl::pkey::PKey;
use openssl::rsa::Rsa;
use time::OffsetDateTime;

/// Builds a source from the body of a `[[source]]` table written in TOML.
pub fn source(toml_text: &str) -> Source {
    try_source(toml_text).unwrap_or_else(|e| panic!("config refused: {e}"))
}

pub fn try_source(toml_text: &str) -> Result<Source, hookgate_verify::SpecError> {
    let spec: SourceSpec =
        toml::from_str(toml_text).unwrap_or_else(|e| panic!("bad TOML in test: {e}"));
    Source::build(spec)
}

pub fn at(unix: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(unix).unwrap()
}

pub fn request<'a>(path: &str, body: &'a [u8], headers: &[(&str, &str)]) -> Request<'a> {
    let mut r = Request::post(path, body);
    for (k, v) in headers {
        r.headers.append(k, v.as_bytes().to_vec());
    }
    r
}

pub fn accept(
    source: &Source,
    request: &Request<'_>,
    now: OffsetDateTime,
) -> Result<Accepted, VerifyError> {
    source.accept(request, now, &NoKeys)
}

pub fn kind_of(result: Result<Accepted, VerifyError>) -> ErrorKind {
    match result {
        Ok(a) => panic!("expected a refusal, got {a:?}"),
        Err(e) => e.kind(),
    }
}

pub fn keys_for(issuer: &str, jwks: &str) -> HashMap<String, Arc<KeySet>> {
    let mut map = HashMap::new();
    map.insert(
        issuer.to_owned(),
        Arc::new(KeySet::from_jwks(jwks.as_bytes()).unwrap()),
    );
    map
}

/// A fresh key pair as (private PEM, public PEM).
pub fn keypair(alg: &str) -> (String, String) {
    let pkey = match alg {
        "RS" | "PS" => PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap(),
        "ES256" => PKey::from_ec_key(
            EcKey::generate(&EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap()).unwrap(),
        )
        .unwrap(),
        "ES384" => PKey::from_ec_key(
            EcKey::generate(&EcGroup::from_curve_name(Nid::SECP384R1).unwrap()).unwrap(),
        )
        .unwrap(),
        "ES512" => PKey::from_ec_key(
            EcKey::generate(&EcGroup::from_curve_name(Nid::SECP521R1).unwrap()).unwrap(),
        )
        .unwrap(),
        "EdDSA" => PKey::generate_ed25519().unwrap(),
        other => panic!("no key type for {other}"),
    };
    (
        String::from_utf8(pkey.private_key_to_pem_pkcs8().unwrap()).unwrap(),
        String::from_utf8(pkey.public_key_to_pem().unwrap()).unwrap(),
    )
}

/// A TOML basic string literal for `text` (PEM keys contain newlines).
pub fn toml_str(text: &str) -> String {
    toml::Value::String(text.to_owned()).to_string()
}

pub fn fixtures() -> serde_json::Value {
    serde_json::from_str(include_str!("../fixtures/providers.json")).unwrap()
}

pub fn fixture_request<'a>(entry: &'a serde_json::Value, path: &str) -> Request<'a> {
    let body = entry["body"].as_str().unwrap().as_bytes();
    let mut r = Request::post(
        entry.get("path").and_then(|p| p.as_str()).unwrap_or(path),
        body,
    );
    for (k, v) in entry["headers"].as_object().unwrap() {
        r.headers.append(k, v.as_str().unwrap().as_bytes().to_vec());
    }
    r
}
