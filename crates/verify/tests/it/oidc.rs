//! OIDC: trust is decided before keys are asked for; keys chosen by kid.

use std::cell::RefCell;
use std::sync::Arc;

use hookgate_verify::{ErrorKind, KeyLookup, KeySet, SigningKeys};

use crate::jwt::hookgate_verify_test_jwk;
use crate::support::*;

/// Records every issuer it is asked about.
struct Recording {
    keys: std::collections::HashMap<String, Arc<KeySet>>,
    asked: RefCell<Vec<String>>,
}

impl KeyLookup for Recording {
    fn keys(&self, issuer: &str) -> Option<Arc<KeySet>> {
        self.asked.borrow_mut().push(issuer.to_owned());
        self.keys.get(issuer).cloned()
    }
}

fn es256_jwks(private: &str, kid: &str) -> String {
    let jwk: serde_json::Value =
        serde_json::from_str(&hookgate_verify_test_jwk(private, kid)).unwrap();
    serde_json::json!({"keys": [jwk, {"kty": "RSA", "use": "enc", "n": "AQAB", "e": "AQAB", "kid": "enc-key"}]}).to_string()
}

#[test]
fn untrusted_issuer_is_refused_before_any_key_lookup() {
    let now = at(1_700_000_000);
    let (private, _) = keypair("ES256");
    let trusted = "https://trusted.example.com";
    let src = source(&format!(
        "[verify]\nkind = \"oidc\"\n[verify.issuers]\n\"{trusted}\" = [\"aud\"]"
    ));
    let lookup = Recording {
        keys: keys_for(trusted, &es256_jwks(&private, "k1")),
        asked: RefCell::new(Vec::new()),
    };

    let sign_as = |issuer: &str, kid: &str| {
        let mut req = request("/pps", b"{}", &[]);
        let keys = SigningKeys {
            private_key_pem: Some(private.clone()),
            key_id: Some(kid.into()),
            issuer: Some(issuer.into()),
            audience: Some("aud".into()),
            algorithm: Some(hookgate_verify::Algorithm::ES256),
            ..Default::default()
        };
        src.sign(&mut req, now, &keys).unwrap();
        req
    };
    let e = src
        .accept(&sign_as("https://evil.example.com", "k1"), now, &lookup)
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::UntrustedIssuer);
    assert!(
        lookup.asked.borrow().is_empty(),
        "an untrusted issuer must never reach the key lookup"
    );

    let ok = src.accept(&sign_as(trusted, "k1"), now, &lookup).unwrap();
    assert_eq!(
        (ok.verified.issuer.as_deref(), ok.verified.key_id.as_deref()),
        (Some(trusted), Some("k1"))
    );
    assert_eq!(lookup.asked.borrow().as_slice(), [trusted.to_string()]);

    let e = src
        .accept(&sign_as(trusted, "rotated"), now, &lookup)
        .unwrap_err();
    assert_eq!(
        (e.kind(), e.issuer()),
        (ErrorKind::UnknownKey, Some(trusted))
    );
}

#[test]
fn key_sets_skip_encryption_and_unusable_keys() {
    let (private, _) = keypair("ES256");
    let set = KeySet::from_jwks(es256_jwks(&private, "k1").as_bytes()).unwrap();
    assert_eq!(set.key_ids(), vec!["k1"]);
    assert_eq!(set.skipped(), 1);
    assert!(set.has_kid("k1"));
    assert!(KeySet::from_jwks(br#"{"keys":[]}"#).is_err());
    assert!(KeySet::from_jwks(b"<html>").is_err());
}

#[test]
fn issuer_urls_must_be_https_unless_loopback_http_is_allowed() {
    let cfg = |issuer: &str, allow: bool| {
        try_source(&format!("[verify]\nkind = \"oidc\"\nallow_http_issuers = {allow}\n[verify.issuers]\n\"{issuer}\" = []"))
    };
    assert!(cfg("https://accounts.example.com", false).is_ok());
    assert!(cfg("http://127.0.0.1:9000", false).is_err());
    assert!(cfg("http://127.0.0.1:9000", true).is_ok());
    assert!(cfg("http://localhost:9000/realm", true).is_ok());
    assert!(cfg("http://[::1]:9000", true).is_ok());
    let e = cfg("http://issuer.example.com", true).unwrap_err();
    assert!(e.key.starts_with("verify.issuers"), "{e}");
    assert!(try_source(
        "[verify]\nkind = \"oidc\"\nalgorithms = [\"HS256\"]\n[verify.issuers]\n\"https://a\" = []"
    )
    .is_err());
}

#[test]
fn key_sets_count_every_skipped_key_and_know_only_their_kids() {
    let (private, _) = keypair("ES256");
    let usable: serde_json::Value =
        serde_json::from_str(&hookgate_verify_test_jwk(&private, "k1")).unwrap();
    let encryption =
        serde_json::json!({"kty": "RSA", "use": "enc", "n": "AQAB", "e": "AQAB", "kid": "enc"});
    let symmetric = serde_json::json!({"kty": "oct", "k": "c2VjcmV0", "kid": "hs"});
    let document = serde_json::json!({"keys": [encryption, usable, symmetric]}).to_string();
    let set = KeySet::from_jwks(document.as_bytes()).unwrap();
    assert_eq!(set.skipped(), 2);
    assert_eq!(set.key_ids(), vec!["k1"]);
    assert!(set.has_kid("k1"));
    assert!(!set.has_kid("enc") && !set.has_kid("hs") && !set.has_kid(""));
    let none = serde_json::json!({"keys": [
        {"kty": "RSA", "use": "enc", "n": "AQAB", "e": "AQAB"},
        {"kty": "oct", "k": "c2VjcmV0"},
        {"kty": "oct", "k": "b3RoZXI"},
    ]})
    .to_string();
    assert_eq!(
        KeySet::from_jwks(none.as_bytes()).unwrap_err().to_string(),
        "no usable signature key among 3 key(s)"
    );
}

#[test]
fn an_oidc_source_keeps_its_settings() {
    let src = source(
        r#"
        [verify]
        kind = "oidc"
        header = "X-Id-Token"
        issuers = { "http://127.0.0.1:9/" = ["aud"], "https://accounts.example/" = ["aud"] }
        allow_http_issuers = true
        jwks_cache = "10m"
        "#,
    );
    let oidc = src.oidc().next().unwrap();
    assert_eq!(oidc.header(), "X-Id-Token");
    assert!(oidc.allow_http());
    assert_eq!(oidc.jwks_cache(), std::time::Duration::from_secs(600));
    let mut issuers: Vec<&str> = oidc.issuers().collect();
    issuers.sort();
    assert_eq!(
        issuers,
        ["http://127.0.0.1:9/", "https://accounts.example/"]
    );
    let defaults = source(
        r#"
        [verify]
        kind = "oidc"
        issuers = { "https://accounts.example/" = ["aud"] }
        "#,
    );
    let oidc = defaults.oidc().next().unwrap();
    assert_eq!(oidc.header(), "Authorization");
    assert!(!oidc.allow_http());
    assert_eq!(oidc.jwks_cache(), std::time::Duration::from_secs(3600));
}

#[test]
fn oidc_algorithms_are_public_key_ones_only() {
    let with = |algorithms: &str| {
        try_source(&format!(
            "[verify]\nkind = \"oidc\"\nissuers = {{ \"https://accounts.example/\" = [\"aud\"] }}\nalgorithms = {algorithms}\n"
        ))
    };
    assert!(with(r#"["RS256", "ES256"]"#).is_ok());
    let e = with(r#"["RS256", "HS256"]"#).unwrap_err();
    assert!(e.to_string().contains("HS256 needs a shared secret"), "{e}");
    assert!(with(r#"["none"]"#).is_err());
}

#[test]
fn an_oidc_token_without_exp_is_refused_whatever_the_configuration_requires() {
    let now = at(1_700_000_000);
    let (private, _) = keypair("ES256");
    let issuer = "https://trusted.example.com";
    // `required` names other claims: iss, aud and exp are required all the same.
    let src = source(&format!(
        "[verify]\nkind = \"oidc\"\nrequired = [\"iat\"]\n[verify.issuers]\n\"{issuer}\" = [\"aud\"]"
    ));
    let lookup = keys_for(issuer, &es256_jwks(&private, "k1"));
    let signer = josekit::jws::ES256
        .signer_from_pem(private.as_bytes())
        .unwrap();
    let token_with = |claims: serde_json::Value| {
        let mut header = josekit::jws::JwsHeader::new();
        header.set_token_type("JWT");
        header.set_key_id("k1");
        let payload =
            josekit::jwt::JwtPayload::from_map(claims.as_object().unwrap().clone()).unwrap();
        josekit::jwt::encode_with_signer(&payload, &header, &signer).unwrap()
    };
    let full = serde_json::json!({"iss": issuer, "aud": "aud", "exp": 1_700_000_100, "iat": 1_700_000_000});
    let check = |claims: serde_json::Value| {
        let jwt = token_with(claims);
        let req = request("/", b"", &[("Authorization", &format!("Bearer {jwt}"))]);
        src.accept(&req, now, &lookup)
            .map(|_| ())
            .map_err(|e| e.kind())
    };
    assert_eq!(check(full.clone()), Ok(()));
    let mut no_exp = full.clone();
    no_exp.as_object_mut().unwrap().remove("exp");
    assert_eq!(check(no_exp), Err(ErrorKind::MissingClaim));
    let mut no_aud = full.clone();
    no_aud.as_object_mut().unwrap().remove("aud");
    assert_eq!(check(no_aud), Err(ErrorKind::MissingClaim));
    let mut no_iat = full;
    no_iat.as_object_mut().unwrap().remove("iat");
    assert_eq!(check(no_iat), Err(ErrorKind::MissingClaim));
}
