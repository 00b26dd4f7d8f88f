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
