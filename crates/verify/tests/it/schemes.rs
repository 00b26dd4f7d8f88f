//! The generic schemes: accepted cases and every failure kind, plus sign → verify.

use hookgate_verify::{ErrorKind, Request, SigningKeys};

use crate::support::*;

#[test]
fn hmac_with_timestamp_template_prefix_and_rotation() {
    let src = source(
        r#"
        id = "header:X-Event-Id"
        topic = "json:/type"
        [verify]
        kind = "hmac"
        algorithm = "sha512"
        header = "X-Signature"
        encoding = "base64url"
        prefix = "sha512="
        signed = "{header:X-Timestamp}.{request:method}.{body}"
        timestamp = "header:X-Timestamp"
        tolerance = "2m"
        secrets = ["current", "previous"]
        "#,
    );
    let body = br#"{"type":"orders/created","n":1}"#;
    let now = at(1_700_000_000);
    for secret in ["current", "previous"] {
        let mut req = request("/h", body, &[("X-Event-Id", "ev-1")]);
        src.sign(
            &mut req,
            now,
            &SigningKeys {
                secret: Some(hookgate_verify::Secret::new(secret)),
                ..Default::default()
            },
        )
        .unwrap();
        let ok = accept(&src, &req, now).unwrap();
        assert_eq!(ok.meta.id.as_deref(), Some("ev-1"));
        assert_eq!(ok.meta.topic.as_deref(), Some("orders/created"));
        assert!(ok.verified.key_id.is_some());
        assert_eq!(
            kind_of(accept(&src, &req, now + time::Duration::minutes(3))),
            ErrorKind::StaleTimestamp
        );
    }
    let mut forged = request("/h", body, &[("X-Event-Id", "ev-1")]);
    src.sign(
        &mut forged,
        now,
        &SigningKeys {
            secret: Some(hookgate_verify::Secret::new("retired")),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(kind_of(accept(&src, &forged, now)), ErrorKind::BadSignature);

    let mut signed = request("/h", body, &[("X-Event-Id", "ev-1")]);
    src.sign(&mut signed, now, &Default::default()).unwrap();
    let mut no_ts = signed.clone();
    no_ts.headers.remove("X-Timestamp");
    assert_eq!(
        kind_of(accept(&src, &no_ts, now)),
        ErrorKind::MissingCredential
    );
    let mut no_id = signed.clone();
    no_id.headers.remove("X-Event-Id");
    assert_eq!(kind_of(accept(&src, &no_id, now)), ErrorKind::MissingField);
    let mut shifted = signed.clone();
    shifted
        .headers
        .set("X-Timestamp", (1_700_000_001).to_string());
    assert_eq!(
        kind_of(accept(&src, &shifted, now)),
        ErrorKind::BadSignature
    );
}

#[test]
fn stripe_pairs_layout_round_trip_and_multiple_signatures() {
    let src = source("preset = \"stripe\"\nsecret = \"whsec_test_stripe\"");
    let body = br#"{"id":"evt_1","type":"payment_intent.succeeded"}"#;
    let now = at(1_492_774_577);
    let mut req = request("/stripe", body, &[]);
    src.sign(&mut req, now, &Default::default()).unwrap();
    let header = req.headers.get("stripe-signature").unwrap().to_owned();
    assert!(header.starts_with("t=1492774577,v1="), "{header}");
    let ok = accept(&src, &req, now).unwrap();
    assert_eq!(
        (ok.meta.id.as_deref(), ok.meta.topic.as_deref()),
        (Some("evt_1"), Some("payment_intent.succeeded"))
    );
    // Stripe sends several v1 during secret rotation, and v0 test signatures.
    let signature = header.split_once("v1=").unwrap().1;
    let multi = format!("t=1492774577,v1={},v1={signature},v0=6ffbb59b2300aae63f272406069a9788598b792a944a07aba816edb039989a39", "0".repeat(64));
    req.headers.set("Stripe-Signature", multi);
    assert!(accept(&src, &req, now).is_ok());
    assert_eq!(
        kind_of(accept(&src, &req, now + time::Duration::minutes(6))),
        ErrorKind::StaleTimestamp
    );
    req.headers.set("Stripe-Signature", "t=1492774577");
    assert_eq!(kind_of(accept(&src, &req, now)), ErrorKind::Malformed);
    req.headers.set(
        "Stripe-Signature",
        format!("t=1492774578,{}", &header[13..]),
    );
    assert_eq!(kind_of(accept(&src, &req, now)), ErrorKind::BadSignature);
}

#[test]
fn list_layout() {
    let src = source(
        "[verify]\nkind = \"hmac\"\nheader = \"X-Sigs\"\nlayout = \"list\"\nseparator = \",\"\nencoding = \"hex\"\nsecret = \"s\"",
    );
    let body = b"payload";
    let good = hex::encode(hookgate_verify::HashAlgorithm::Sha256.mac_of(b"s", body));
    let value = format!("{} , {good}", "ab".repeat(32));
    assert!(accept(&src, &request("/l", body, &[("X-Sigs", &value)]), at(0)).is_ok());
    assert_eq!(
        kind_of(accept(
            &src,
            &request("/l", body, &[("X-Sigs", "zz,yy")]),
            at(0)
        )),
        ErrorKind::Malformed
    );
}

#[test]
fn token_in_header_and_query_and_basic() {
    let gitlab = source("preset = \"gitlab\"\nsecret = \"glt-secret\"");
    let headers = [
        ("X-Gitlab-Token", "glt-secret"),
        ("X-Gitlab-Event", "Push Hook"),
        ("X-Gitlab-Event-UUID", "u-1"),
    ];
    let ok = accept(&gitlab, &request("/gl", b"{}", &headers), at(0)).unwrap();
    assert_eq!(ok.meta.topic.as_deref(), Some("Push Hook"));
    assert_eq!(
        kind_of(accept(
            &gitlab,
            &request("/gl", b"{}", &[("X-Gitlab-Token", "glt-secreT")]),
            at(0)
        )),
        ErrorKind::BadSignature
    );
    assert_eq!(
        kind_of(accept(
            &gitlab,
            &request("/gl", b"{}", &[("X-Gitlab-Token", "glt-secret-longer")]),
            at(0)
        )),
        ErrorKind::BadSignature
    );
    assert_eq!(
        kind_of(accept(&gitlab, &request("/gl", b"{}", &[]), at(0))),
        ErrorKind::MissingCredential
    );

    let by_query = source("[verify]\nkind = \"token\"\nquery = \"key\"\nsecret = \"q-secret\"");
    let mut req = request("/q", b"", &[]);
    by_query.sign(&mut req, at(0), &Default::default()).unwrap();
    assert_eq!(req.query.as_deref(), Some("key=q-secret"));
    assert!(accept(&by_query, &req, at(0)).is_ok());
    req.query = Some("key=other".into());
    assert_eq!(
        kind_of(accept(&by_query, &req, at(0))),
        ErrorKind::BadSignature
    );

    let basic = source("[verify]\nkind = \"basic\"\nusername = \"hook\"\npassword = \"p@ss:word\"");
    let mut req = request("/b", b"", &[]);
    basic.sign(&mut req, at(0), &Default::default()).unwrap();
    assert!(accept(&basic, &req, at(0)).is_ok());
    assert_eq!(
        kind_of(accept(
            &basic,
            &request("/b", b"", &[("Authorization", "Basic aG9vazpub3Bl")]),
            at(0)
        )),
        ErrorKind::BadSignature
    );
    assert_eq!(
        kind_of(accept(
            &basic,
            &request("/b", b"", &[("Authorization", "Bearer x")]),
            at(0)
        )),
        ErrorKind::Malformed
    );
    assert_eq!(
        kind_of(accept(
            &basic,
            &request("/b", b"", &[("Authorization", "Basic !!!")]),
            at(0)
        )),
        ErrorKind::Malformed
    );
}

#[test]
fn standard_webhooks_v1a_ed25519() {
    // v1a: Ed25519 over `id.timestamp.body`, verified with the whpk_ public key.
    let seed = [7u8; 32];
    let private = format!("whsk_{}", hookgate_verify::Encoding::Base64.encode(&seed));
    let public = hookgate_verify::standard_webhooks_public_key(&private).unwrap();
    let src = source(&format!("preset = \"standard-webhooks\"\nsecrets = [\"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\", \"{public}\"]"));
    let now = at(1_700_000_000);
    let body = br#"{"type":"user.created"}"#;
    let mut req = request("/sw", body, &[]);
    let keys = SigningKeys {
        secret: Some(hookgate_verify::Secret::new(private.clone())),
        event_id: Some("msg_1".into()),
        ..Default::default()
    };
    src.sign(&mut req, now, &keys).unwrap();
    assert!(req
        .headers
        .get("webhook-signature")
        .unwrap()
        .starts_with("v1a,"));
    let ok = accept(&src, &req, now).unwrap();
    assert_eq!(ok.verified.scheme, "standard-webhooks-v1a");
    assert_eq!(ok.meta.id.as_deref(), Some("msg_1"));
    assert_eq!(ok.meta.topic.as_deref(), Some("user.created"));
    let mut tampered = req.clone();
    tampered.body = br#"{"type":"user.deleted"}"#;
    assert_eq!(
        kind_of(accept(&src, &tampered, now)),
        ErrorKind::BadSignature
    );
    // A v1a signature is not accepted by a source that only has the symmetric secret.
    let symmetric = source(
        "preset = \"standard-webhooks\"\nsecret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"",
    );
    assert_eq!(
        kind_of(accept(&symmetric, &req, now)),
        ErrorKind::BadSignature
    );
    assert!(
        try_source(&format!(
            "preset = \"standard-webhooks\"\nsecret = \"{private}\""
        ))
        .is_err(),
        "a private key is refused as a verifying key"
    );
}

#[test]
fn ip_allowlist_trusts_forwarded_for_only_from_proxies() {
    let src = source(
        r#"
        [[verify]]
        kind = "ip"
        allow = ["203.0.113.0/24", "2001:db8::1"]
        trusted_proxies = ["10.0.0.0/8"]
        [[verify]]
        kind = "none"
        "#,
    );
    let with_peer = |peer: &str, xff: Option<&str>| {
        let mut r: Request<'static> = request("/ip", b"", &[]);
        r.peer = Some(peer.parse().unwrap());
        if let Some(x) = xff {
            r.headers.append("X-Forwarded-For", x);
        }
        accept(&src, &r, at(0)).map(|_| ()).map_err(|e| e.kind())
    };
    assert_eq!(with_peer("203.0.113.9", None), Ok(()));
    assert_eq!(with_peer("2001:db8::1", None), Ok(()));
    assert_eq!(with_peer("198.51.100.1", None), Err(ErrorKind::IpDenied));
    // A client cannot claim an address: forwarded-for counts only from a trusted proxy.
    assert_eq!(
        with_peer("198.51.100.1", Some("203.0.113.9")),
        Err(ErrorKind::IpDenied)
    );
    assert_eq!(with_peer("10.1.2.3", Some("203.0.113.9")), Ok(()));
    assert_eq!(with_peer("10.1.2.3", Some("203.0.113.9, 10.9.9.9")), Ok(()));
    assert_eq!(
        with_peer("10.1.2.3", Some("203.0.113.9, 198.51.100.1")),
        Err(ErrorKind::IpDenied)
    );
}

#[test]
fn every_preset_signs_what_it_verifies() {
    let now = at(1_700_000_000);
    let (es512_private, es512_public) = keypair("ES512");
    let body = br#"{"event_id":"0f6c7b34-8f5d-4b43-9a7c-6e9b5b1d2c11","event_name":"client_status","timestamp":"2023-11-14T22:13:00Z","payload":{},"id":"evt_1","type":"t"}"#;
    let configs = [
        "preset = \"entrupy\"\nsecret = \"s\"".to_string(),
        "preset = \"freispace\"\nsecret = \"s\"".to_string(),
        format!(
            "preset = \"qitech\"\npublic_key = {}\napi_client_key = \"k\"",
            toml_str(&es512_public)
        ),
        "preset = \"trivialsec\"\nsecret = \"s\"\naccount = \"a\"\nsubject = \"urn:uuid:x\""
            .to_string(),
        "preset = \"standard-webhooks\"\nsecret = \"whsec_c2VjcmV0\"".to_string(),
        "preset = \"svix\"\nsecret = \"whsec_c2VjcmV0\"".to_string(),
        "preset = \"github\"\nsecret = \"s\"".to_string(),
        "preset = \"stripe\"\nsecret = \"s\"".to_string(),
        "preset = \"slack\"\nsecret = \"s\"".to_string(),
        "preset = \"shopify\"\nsecret = \"s\"".to_string(),
        "preset = \"gitlab\"\nsecret = \"s\"".to_string(),
        "preset = \"twilio\"\nsecret = \"s\"\nurl = \"https://example.com\"".to_string(),
    ];
    for config in &configs {
        let src = source(config);
        let mut req = request(
            "/any",
            body,
            &[
                ("X-GitHub-Delivery", "d"),
                ("X-Shopify-Webhook-Id", "s"),
                ("X-Gitlab-Event-UUID", "g"),
                ("I-Twilio-Idempotency-Token", "t"),
            ],
        );
        let keys = SigningKeys {
            private_key_pem: Some(es512_private.clone()),
            ..Default::default()
        };
        src.sign(&mut req, now, &keys)
            .unwrap_or_else(|e| panic!("{config}: {e}"));
        let result = accept(&src, &req, now);
        assert!(result.is_ok(), "{config}: {result:?}");
    }
}

#[test]
fn which_sources_may_need_a_public_key_operation() {
    let cases = [
        ("[verify]\nkind = \"hmac\"\nheader = \"X-Sig\"\nsecret = \"s\"", false),
        ("[verify]\nkind = \"jwt\"\nalgorithms = [\"HS256\"]\nsecret = \"0123456789abcdef0123456789abcdef\"", false),
        ("[verify]\nkind = \"standard-webhooks\"\nsecret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"", false),
        ("[verify]\nkind = \"oidc\"\n[verify.issuers]\n\"https://issuer.example\" = []", true),
        ("[verify]\nkind = \"token\"\nheader = \"X-Token\"\nsecret = \"t\"", false),
    ];
    for (spec, expected) in cases {
        assert_eq!(source(spec).is_asymmetric(), expected, "{spec}");
    }
    let (_, public) = keypair("ES512");
    let qitech = source(&format!(
        "preset = \"qitech\"\napi_client_key = \"k\"\npublic_key = {}",
        toml_str(&public)
    ));
    assert!(qitech.is_asymmetric(), "ES512 tokens");
    let (_, public) = keypair("RS");
    let rsa = source(&format!(
        "[verify]\nkind = \"jwt\"\nalgorithms = [\"RS256\", \"PS256\"]\npublic_key = {}",
        toml_str(&public)
    ));
    assert!(rsa.is_asymmetric(), "RSA tokens");
}
