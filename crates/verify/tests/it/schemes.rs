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

#[test]
fn a_wrong_signature_prefix_says_whether_it_names_another_algorithm() {
    let src = source(
        r#"
        [verify]
        kind = "hmac"
        header = "X-Signature"
        prefix = "sha256="
        secret = "s"
        "#,
    );
    let kind = |value: &str| {
        let req = request("/h", b"{}", &[("X-Signature", value)]);
        let e = accept(&src, &req, at(0)).unwrap_err();
        (e.kind(), e.detail().to_owned())
    };
    for other in [
        "sha1=abcd",
        "SHA512=abcd",
        "hmac-sha1=ab",
        "a234567890123456=ab",
    ] {
        let (k, detail) = kind(other);
        assert_eq!(k, ErrorKind::UnsupportedAlgorithm, "{other}: {detail}");
        let label = other.split('=').next().unwrap();
        assert!(detail.contains(&format!("names `{label}`")), "{detail}");
    }
    // Not an algorithm's label: no label, too long, other characters, no separator.
    for malformed in [
        "=abcd",
        "a2345678901234567=ab",
        "sha 1=ab",
        "sha_1=ab",
        "abcdef",
    ] {
        let (k, detail) = kind(malformed);
        assert_eq!(k, ErrorKind::Malformed, "{malformed}: {detail}");
        assert!(detail.contains("does not start with `sha256=`"), "{detail}");
    }
    // A prefix that ends in a letter has no separator to find a label by.
    let v1 = source(
        r#"
        [verify]
        kind = "hmac"
        header = "X-Signature"
        prefix = "v1"
        secret = "s"
        "#,
    );
    let req = request("/h", b"{}", &[("X-Signature", "v2=abcd")]);
    assert_eq!(kind_of(accept(&v1, &req, at(0))), ErrorKind::Malformed);
}

#[test]
fn standard_webhooks_accepts_a_timestamp_exactly_at_its_tolerance() {
    let src = source(
        "preset = \"standard-webhooks\"\nsecret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\ntolerance = \"60s\"",
    );
    let signed_at = at(1_700_000_000);
    let mut req = request("/sw", br#"{"a":1}"#, &[]);
    let keys = SigningKeys {
        secret: Some(hookgate_verify::Secret::new(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        )),
        event_id: Some("msg_1".into()),
        ..Default::default()
    };
    src.sign(&mut req, signed_at, &keys).unwrap();
    for (offset, fresh) in [
        (-61, false),
        (-60, true),
        (0, true),
        (60, true),
        (61, false),
    ] {
        let now = at(1_700_000_000 + offset);
        let result = accept(&src, &req, now).map(|_| ()).map_err(|e| e.kind());
        if fresh {
            assert_eq!(result, Ok(()), "{offset}");
        } else {
            assert_eq!(result, Err(ErrorKind::StaleTimestamp), "{offset}");
        }
    }
}

/// What the server reads from each check: its kind (the admin API, logs), the headers and
/// query parameters holding credentials (redacted before anything is stored), and whether
/// verifying may take a public-key operation (the bounded verification pool).
#[test]
fn each_check_names_its_kind_its_credentials_and_its_cost() {
    let (_, rsa_public) = keypair("RS");
    // (the `[verify]` table, kind, credential headers, credential query parameters,
    // asymmetric)
    type Case<'a> = (String, &'a str, Vec<&'a str>, Vec<&'a str>, bool);
    let cases: Vec<Case> = vec![
        (
            "kind = \"hmac\"\nheader = \"X-Sig\"\nsecret = \"s\"".into(),
            "hmac",
            vec!["X-Sig"],
            vec![],
            false,
        ),
        (
            "kind = \"jwt\"\nalgorithms = [\"HS256\"]\nsecret = \"s\"".into(),
            "jwt",
            vec!["Authorization"],
            vec![],
            false,
        ),
        (
            format!(
                "kind = \"jwt\"\nheader = \"X-Token\"\nalgorithms = [\"RS256\"]\npublic_key = {}",
                toml_str(&rsa_public)
            ),
            "jwt",
            vec!["X-Token"],
            vec![],
            true,
        ),
        (
            "kind = \"oidc\"\nissuers = { \"https://accounts.example/\" = [] }".into(),
            "oidc",
            vec!["Authorization"],
            vec![],
            true,
        ),
        (
            "kind = \"token\"\nheader = \"X-Gitlab-Token\"\nsecret = \"s\"".into(),
            "token",
            vec!["X-Gitlab-Token"],
            vec![],
            false,
        ),
        (
            "kind = \"token\"\nquery = \"key\"\nsecret = \"s\"".into(),
            "token",
            vec![],
            vec!["key"],
            false,
        ),
        (
            "kind = \"basic\"\nusername = \"user\"\npassword = \"pass\"".into(),
            "basic",
            vec!["authorization"],
            vec![],
            false,
        ),
        (
            "kind = \"standard-webhooks\"\nsecret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\""
                .into(),
            "standard-webhooks",
            vec!["webhook-signature", "svix-signature"],
            vec![],
            false,
        ),
        (
            format!(
                "kind = \"standard-webhooks\"\nsecret = \"{}\"",
                hookgate_verify::standard_webhooks_public_key(&format!(
                    "whsk_{}",
                    hookgate_verify::Encoding::Base64.encode(&[7u8; 32])
                ))
                .unwrap()
            ),
            "standard-webhooks",
            vec!["webhook-signature", "svix-signature"],
            vec![],
            true,
        ),
        (
            "kind = \"twilio\"\nurl = \"https://example.com/twilio\"\nsecret = \"s\"".into(),
            "twilio",
            vec!["X-Twilio-Signature"],
            vec![],
            false,
        ),
        (
            "kind = \"twilio\"\nurl = \"https://example.com\"\nheader = \"X-Mandrill-Signature\"\nsecret = \"s\"".into(),
            "twilio",
            vec!["X-Mandrill-Signature"],
            vec![],
            false,
        ),
        (
            "kind = \"public-key\"\nalgorithm = \"ed25519\"\nheader = \"X-Signature-Ed25519\"\nencoding = \"hex\"\npublic_key = \"3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29\"".into(),
            "public-key",
            vec!["X-Signature-Ed25519"],
            vec![],
            true,
        ),
        (
            "kind = \"hmac\"\nsignature = \"json:/signature/signature\"\nsigned = \"{json:/signature/timestamp}{json:/signature/token}\"\nsecret = \"s\"".into(),
            "hmac",
            vec![],
            vec![],
            false,
        ),
        (
            "kind = \"ip\"\nallow = [\"203.0.113.0/24\"]".into(),
            "ip",
            vec![],
            vec![],
            false,
        ),
        ("kind = \"none\"".into(), "none", vec![], vec![], false),
    ];
    for (table, kind, headers, query, asymmetric) in cases {
        let src = source(&format!("[verify]\n{table}\n"));
        let check = &src.checks()[0];
        assert_eq!(check.kind(), kind, "{table}");
        assert_eq!(check.credential_headers(), headers, "{table}");
        assert_eq!(check.credential_query_params(), query, "{table}");
        assert_eq!(check.is_asymmetric(), asymmetric, "{table}");
    }
}

#[test]
fn chained_checks_keep_the_first_key_that_matched() {
    // HMAC matches the second secret, the token the first: the event records `secret#1`.
    let src = source(
        r#"
        [[verify]]
        kind = "hmac"
        header = "X-Sig"
        secrets = ["one", "two"]
        [[verify]]
        kind = "token"
        header = "X-Token"
        secrets = ["t1", "t2"]
        "#,
    );
    let body = b"{}";
    let mac = hookgate_verify::HashAlgorithm::Sha256.mac_of(b"two", body);
    let signature = hookgate_verify::Encoding::Hex.encode(&mac);
    let req = request("/h", body, &[("X-Sig", &signature), ("X-Token", "t1")]);
    let ok = accept(&src, &req, at(0)).unwrap();
    assert_eq!(ok.verified.scheme, "hmac+token");
    assert_eq!(ok.verified.key_id.as_deref(), Some("secret#1"));
    assert_eq!(ok.verified.issuer, None);
}

#[test]
fn a_list_or_one_value_is_what_a_wrong_type_is_told_to_be() {
    let e = toml::from_str::<hookgate_verify::SourceSpec>("id = 5.5\n[verify]\nkind = \"none\"\n")
        .unwrap_err();
    assert!(e.to_string().contains("a value or a list of values"), "{e}");
}

#[test]
fn a_signature_list_is_split_on_spaces_and_items_lose_their_prefix() {
    // `list` layout, no separator given: space-separated, each item behind `v1=`.
    let src = source(
        r#"
        [verify]
        kind = "hmac"
        algorithm = "sha1"
        header = "X-Signatures"
        layout = "list"
        item_prefix = "v1="
        secret = "s"
        "#,
    );
    let body = b"{}";
    let good = hookgate_verify::Encoding::Hex
        .encode(&hookgate_verify::HashAlgorithm::Sha1.mac_of(b"s", body));
    let stale = "00".repeat(20);
    for value in [format!("v1={stale} v1={good}"), format!("v1={good}")] {
        let req = request("/h", body, &[("X-Signatures", &value)]);
        assert!(accept(&src, &req, at(0)).is_ok(), "{value}");
    }
    for value in [format!("v1={stale},v1={good}"), good.clone()] {
        let req = request("/h", body, &[("X-Signatures", &value)]);
        assert!(accept(&src, &req, at(0)).is_err(), "{value}");
    }
    // A bad signature names the algorithm the way operators know it.
    let req = request("/h", body, &[("X-Signatures", &format!("v1={stale}"))]);
    let e = accept(&src, &req, at(0)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::BadSignature);
    assert!(
        e.detail().contains("HMAC-SHA1 of `{body}`"),
        "{}",
        e.detail()
    );
}

#[test]
fn standard_webhooks_keys_are_named_in_errors_and_redacted_in_debug() {
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let e = try_source(&format!(
        "preset = \"standard-webhooks\"\nsecrets = [\"{secret}\", \"not-a-key\"]"
    ))
    .unwrap_err();
    assert!(e.to_string().contains("secrets[1]"), "{e}");
    let e = try_source("preset = \"standard-webhooks\"\nsecret = \"not-a-key\"").unwrap_err();
    assert!(
        e.to_string().contains("secret") && !e.to_string().contains("secrets["),
        "{e}"
    );
    let src = source(&format!(
        "preset = \"standard-webhooks\"\nsecret = \"{secret}\""
    ));
    let shown = format!("{src:?}");
    assert!(shown.contains("whsec_[redacted]"), "{shown}");
    assert!(!shown.contains("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"));
    let signer = hookgate_verify::WebhookSigner::new(secret).unwrap();
    assert_eq!(format!("{signer:?}"), "WebhookSigner(v1, [redacted])");
}

#[test]
fn twilio_base_urls_must_be_http_and_whole() {
    let with = |url: &str| {
        try_source(&format!(
            "[verify]\nkind = \"twilio\"\nurl = \"{url}\"\nsecret = \"s\"\n"
        ))
    };
    for good in ["https://a", "http://ab", "https://example.com/hooks/"] {
        assert!(with(good).is_ok(), "{good}");
    }
    for bad in [
        "ftp://example.com",
        "example.com",
        "http://a",
        "https:/",
        "http://",
    ] {
        let e = with(bad).unwrap_err();
        assert!(e.to_string().contains("public base URL"), "{bad}: {e}");
    }
}

/// Twilio's algorithm, written out: HMAC-SHA1 over the URL and, for a form, its parameters
/// sorted by name, each name then value.
fn twilio_signature(token: &str, url: &str, params: &[(&str, &str)]) -> String {
    let mut content = url.to_owned();
    let mut sorted = params.to_vec();
    sorted.sort();
    for (k, v) in sorted {
        content.push_str(k);
        content.push_str(v);
    }
    hookgate_verify::Encoding::Base64
        .encode(&hookgate_verify::HashAlgorithm::Sha1.mac_of(token.as_bytes(), content.as_bytes()))
}

#[test]
fn twilio_signs_form_parameters_only_for_forms() {
    let src =
        source("[verify]\nkind = \"twilio\"\nurl = \"https://example.com\"\nsecret = \"token\"\n");
    // A form: URL and sorted parameters.
    let form = b"To=%2B15550001&From=%2B15550002&Body=hi";
    let signature = twilio_signature(
        "token",
        "https://example.com/sms",
        &[("To", "+15550001"), ("From", "+15550002"), ("Body", "hi")],
    );
    let req = request(
        "/sms",
        form,
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("X-Twilio-Signature", &signature),
        ],
    );
    assert!(accept(&src, &req, at(0)).is_ok());
    // Not a form: the URL alone, whatever the body holds.
    let signature = twilio_signature("token", "https://example.com/json", &[]);
    let req = request(
        "/json",
        b"a=1&b=2",
        &[
            ("Content-Type", "application/json"),
            ("X-Twilio-Signature", &signature),
        ],
    );
    assert!(accept(&src, &req, at(0)).is_ok());
    // A form with bodySHA256 in the query: the URL alone (query included), and the hash.
    let body = b"x=1";
    let digest = hookgate_verify::Encoding::Hex.encode(&{
        use sha2::Digest;
        sha2::Sha256::digest(body).to_vec()
    });
    let signature = twilio_signature(
        "token",
        &format!("https://example.com/hash?bodySHA256={digest}"),
        &[],
    );
    let mut req = request(
        "/hash",
        body,
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("X-Twilio-Signature", &signature),
        ],
    );
    req.query = Some(format!("bodySHA256={digest}"));
    assert!(accept(&src, &req, at(0)).is_ok());
}

#[test]
fn twilio_urls_match_with_and_without_the_default_port() {
    let plain =
        source("[verify]\nkind = \"twilio\"\nurl = \"https://example.com\"\nsecret = \"t\"\n");
    let with_port =
        source("[verify]\nkind = \"twilio\"\nurl = \"https://example.com:443\"\nsecret = \"t\"\n");
    let other_port =
        source("[verify]\nkind = \"twilio\"\nurl = \"https://example.com:8443\"\nsecret = \"t\"\n");
    let signed_for = |url: &str| {
        let signature = twilio_signature("t", url, &[]);
        request("/call", b"", &[("X-Twilio-Signature", &signature)])
    };
    let accepted =
        |src: &hookgate_verify::Source, url: &str| accept(src, &signed_for(url), at(0)).is_ok();
    assert!(accepted(&plain, "https://example.com/call"));
    assert!(accepted(&plain, "https://example.com:443/call"));
    assert!(accepted(&with_port, "https://example.com/call"));
    assert!(accepted(&with_port, "https://example.com:443/call"));
    assert!(accepted(&other_port, "https://example.com:8443/call"));
    assert!(!accepted(&other_port, "https://example.com/call"));
    assert!(!accepted(&plain, "https://example.com:8443/call"));
}

#[test]
fn hookgate_signs_as_twilio_does() {
    let src =
        source("[verify]\nkind = \"twilio\"\nurl = \"https://example.com\"\nsecret = \"t\"\n");
    let keys = SigningKeys::default();
    // A form: URL and sorted parameters, no body hash.
    let mut form = request(
        "/sms",
        b"To=%2B1&Body=hi",
        &[("Content-Type", "application/x-www-form-urlencoded")],
    );
    src.sign(&mut form, at(0), &keys).unwrap();
    assert_eq!(form.query, None);
    assert_eq!(
        form.headers.get("x-twilio-signature").unwrap(),
        twilio_signature(
            "t",
            "https://example.com/sms",
            &[("To", "+1"), ("Body", "hi")]
        )
    );
    // JSON: the body's SHA-256 joins the query, and the URL alone is signed.
    let mut json = request(
        "/json",
        br#"{"a":1}"#,
        &[("Content-Type", "application/json")],
    );
    src.sign(&mut json, at(0), &keys).unwrap();
    let digest = hookgate_verify::Encoding::Hex.encode(&{
        use sha2::Digest;
        sha2::Sha256::digest(br#"{"a":1}"#).to_vec()
    });
    assert_eq!(
        json.query.as_deref(),
        Some(format!("bodySHA256={digest}").as_str())
    );
    assert_eq!(
        json.headers.get("x-twilio-signature").unwrap(),
        twilio_signature(
            "t",
            &format!("https://example.com/json?bodySHA256={digest}"),
            &[]
        )
    );
    // A hash already in the query is not added again.
    let mut again = json.clone();
    src.sign(&mut again, at(0), &keys).unwrap();
    assert_eq!(again.query, json.query);
    // No body: the URL alone, no hash.
    let mut empty = request("/call", b"", &[]);
    src.sign(&mut empty, at(0), &keys).unwrap();
    assert_eq!(empty.query, None);
    assert_eq!(
        empty.headers.get("x-twilio-signature").unwrap(),
        twilio_signature("t", "https://example.com/call", &[])
    );
}

#[test]
fn an_hmac_read_from_the_body_and_a_key_given_in_hex_or_base64() {
    // Mailgun: the signature and what it signs are inside the body.
    let src = source(
        r#"
        [verify]
        kind = "hmac"
        signature = "json:/signature/signature"
        signed = "{json:/signature/timestamp}{json:/signature/token}"
        key_encoding = "hex"
        secret = "6b6579"
        "#,
    );
    let body = br#"{"event-data":{"id":"e1"},"signature":{"timestamp":"1767225600","token":"tok","signature":""}}"#;
    let mut req = request("/webhook", body, &[]);
    let new_body = src
        .sign(&mut req, at(0), &SigningKeys::default())
        .unwrap()
        .expect("the signature goes into the body");
    let json: serde_json::Value = serde_json::from_slice(&new_body).unwrap();
    let expected =
        hex::encode(hookgate_verify::HashAlgorithm::Sha256.mac_of(b"key", b"1767225600tok"));
    assert_eq!(
        json["signature"]["signature"],
        expected.as_str(),
        "keyed with the hex-decoded secret"
    );
    assert!(accept(&src, &request("/webhook", &new_body, &[]), at(0)).is_ok());
    // An explicit signing secret is written the same way as the configured one.
    let mut req = request("/webhook", body, &[]);
    let keys = SigningKeys {
        secret: Some(hookgate_verify::Secret::new("6b6579")),
        ..SigningKeys::default()
    };
    assert_eq!(
        src.sign(&mut req, at(0), &keys).unwrap(),
        Some(new_body.clone())
    );
    let missing = br#"{"signature":{"timestamp":"1767225600","token":"tok"}}"#;
    let err = accept(&src, &request("/webhook", missing, &[]), at(0)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::MissingCredential);
    assert!(
        err.detail()
            .contains("signature `json:/signature/signature`"),
        "{err}"
    );
    let mut not_json = request("/webhook", b"nope", &[]);
    assert!(src
        .sign(&mut not_json, at(0), &SigningKeys::default())
        .is_err());
    let mut no_parent = request("/webhook", br#"{"x":1}"#, &[]);
    assert!(src
        .sign(&mut no_parent, at(0), &SigningKeys::default())
        .is_err());

    let b64 = source(
        "[verify]\nkind = \"hmac\"\nheader = \"X-Sig\"\nkey_encoding = \"base64\"\nsecrets = [\"a2V5\", \"b3RoZXI=\"]\n",
    );
    let sig = hex::encode(hookgate_verify::HashAlgorithm::Sha256.mac_of(b"other", b"{}"));
    let accepted = accept(&b64, &request("/webhook", b"{}", &[("X-Sig", &sig)]), at(0)).unwrap();
    assert_eq!(accepted.verified.key_id.as_deref(), Some("secret#1"));
}

#[test]
fn hmac_signature_locations_and_key_encodings_are_checked_when_built() {
    for (table, key) in [
        (
            "header = \"X\"\nsignature = \"json:/s\"\nsecret = \"s\"",
            "signature",
        ),
        ("secret = \"s\"", "header"),
        ("header = \" \"\nsecret = \"s\"", "header"),
        ("signature = \"query:s\"\nsecret = \"s\"", "signature"),
        (
            "signature = \"json:/s\"\nlayout = \"pairs\"\nsecret = \"s\"",
            "layout",
        ),
        (
            "header = \"X\"\nkey_encoding = \"hex\"\nsecret = \"not hex\"",
            "secret",
        ),
        (
            "header = \"X\"\nkey_encoding = \"base64\"\nsecrets = [\"a2V5\", \"!!\"]",
            "secrets[1]",
        ),
        (
            "header = \"X\"\nkey_encoding = \"hex\"\nsecret = \"\"",
            "secret",
        ),
    ] {
        let err = try_source(&format!("[verify]\nkind = \"hmac\"\n{table}\n")).unwrap_err();
        assert_eq!(err.key, format!("verify.{key}"), "{table}: {err}");
    }
    // `signature = "header:…"` is the same as `header`.
    let src = source("[verify]\nkind = \"hmac\"\nsignature = \"header:X-Sig\"\nsecret = \"s\"\n");
    assert_eq!(src.checks()[0].credential_headers(), vec!["X-Sig"]);
}

/// A lookup holding one secret kept from a handshake (what the gateway's file store does).
struct Kept(&'static str, &'static str);

impl hookgate_verify::KeyLookup for Kept {
    fn keys(&self, _issuer: &str) -> Option<std::sync::Arc<hookgate_verify::KeySet>> {
        None
    }

    fn captured_secret(&self, path: &str) -> Option<hookgate_verify::Secret> {
        (path == self.0).then(|| hookgate_verify::Secret::new(self.1))
    }
}

#[test]
fn an_hmac_keyed_with_the_secret_a_handshake_handed_over() {
    let src = source(
        "[verify]\nkind = \"hmac\"\nheader = \"X-Hook-Signature\"\nsecret_from_handshake = \"/var/lib/hookgate/a.secret\"\n",
    );
    let sig = hex::encode(hookgate_verify::HashAlgorithm::Sha256.mac_of(b"kept", b"{}"));
    let req = request("/webhook", b"{}", &[("X-Hook-Signature", &sig)]);
    let err = src
        .accept(&req, at(0), &hookgate_verify::NoKeys)
        .unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::MissingCredential,
        "nothing kept yet: {err}"
    );
    let accepted = src
        .accept(&req, at(0), &Kept("/var/lib/hookgate/a.secret", "kept"))
        .unwrap();
    assert_eq!(accepted.verified.key_id.as_deref(), Some("secret#0"));
    let wrong = src
        .accept(&req, at(0), &Kept("/var/lib/hookgate/a.secret", "other"))
        .unwrap_err();
    assert_eq!(wrong.kind(), ErrorKind::BadSignature);
    assert!(wrong.detail().contains("1 configured secret"), "{wrong}");
    // A configured secret is tried first; the kept one after it.
    let both = source(
        "[verify]\nkind = \"hmac\"\nheader = \"X-Hook-Signature\"\nsecret = \"configured\"\nsecret_from_handshake = \"/var/lib/hookgate/a.secret\"\n",
    );
    let accepted = both
        .accept(&req, at(0), &Kept("/var/lib/hookgate/a.secret", "kept"))
        .unwrap();
    assert_eq!(accepted.verified.key_id.as_deref(), Some("secret#1"));
    let err = both
        .accept(&req, at(0), &hookgate_verify::NoKeys)
        .unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::BadSignature,
        "the configured secret alone: {err}"
    );
    let relative = try_source(
        "[verify]\nkind = \"hmac\"\nheader = \"X\"\nsecret_from_handshake = \"a.secret\"\n",
    )
    .unwrap_err();
    assert_eq!(relative.key, "verify.secret_from_handshake");
}

mod sns {
    use std::sync::Arc;

    use hookgate_verify::scheme::aws_sns::{Certificates, SigningCertificate};
    use hookgate_verify::{ErrorKind, KeyLookup, SigningKeys};

    use crate::support::*;

    const URL: &str = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-test.pem";
    const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:orders";

    /// A generated RSA key in PEM and the lookup holding its self-signed certificate.
    fn key_and_certificate() -> (String, Certificates) {
        use openssl::x509::{X509NameBuilder, X509};
        let key =
            openssl::pkey::PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap();
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
        let pem = cert.build().to_pem().unwrap();
        let certificate = SigningCertificate::from_pem(&pem).unwrap();
        assert_eq!(
            format!("{certificate:?}"),
            "SigningCertificate",
            "no key material printed"
        );
        let mut lookup = Certificates::default();
        lookup.0.insert(URL.to_owned(), Arc::new(certificate));
        assert!(lookup.keys("https://issuer.example").is_none());
        let private = String::from_utf8(key.private_key_to_pem_pkcs8().unwrap()).unwrap();
        (private, lookup)
    }

    fn sns_source(versions: &str) -> hookgate_verify::Source {
        source(&format!(
            "[verify]\nkind = \"aws-sns\"\ntopic_arn = \"{TOPIC}\"\n{versions}\n"
        ))
    }

    fn signed(src: &hookgate_verify::Source, private: &str, message: &str) -> Vec<u8> {
        let mut req = request("/sns", message.as_bytes(), &[]);
        let keys = SigningKeys {
            private_key_pem: Some(private.to_owned()),
            key_id: Some(URL.to_owned()),
            ..SigningKeys::default()
        };
        src.sign(&mut req, at(0), &keys)
            .unwrap()
            .expect("the signature goes into the message")
    }

    const NOTIFICATION: &str = r#"{"Type":"Notification","MessageId":"m-1","TopicArn":"arn:aws:sns:us-east-1:123456789012:orders","Message":"hello","Timestamp":"2026-01-01T00:00:00.000Z"}"#;

    #[test]
    fn signs_and_verifies_each_signature_version_and_only_the_accepted_ones() {
        let (private, lookup) = key_and_certificate();
        for (versions, declared) in [
            ("signature_versions = [\"1\"]", "1"),
            ("signature_versions = [\"2\"]", "2"),
            ("", "2"),
        ] {
            let src = sns_source(versions);
            let body = signed(&src, &private, NOTIFICATION);
            let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(json["SignatureVersion"], declared, "{versions}");
            assert_eq!(json["SigningCertURL"], URL);
            // A message without `Subject` signs and verifies: the field is optional.
            src.accept(&request("/sns", &body, &[]), at(0), &lookup)
                .unwrap_or_else(|e| panic!("{versions}: {e}"));
            let other = if declared == "1" { "2" } else { "1" };
            let only_other = sns_source(&format!("signature_versions = [\"{other}\"]"));
            let err = only_other
                .accept(&request("/sns", &body, &[]), at(0), &lookup)
                .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::UnsupportedAlgorithm, "{versions}");
        }
        // Declaring the other version than the one signed with fails the signature.
        let body = signed(
            &sns_source("signature_versions = [\"1\"]"),
            &private,
            NOTIFICATION,
        );
        let relabelled = String::from_utf8(body)
            .unwrap()
            .replace(r#""SignatureVersion":"1""#, r#""SignatureVersion":"2""#);
        let err = sns_source("")
            .accept(&request("/sns", relabelled.as_bytes(), &[]), at(0), &lookup)
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BadSignature);
        // Without the certificate: the caller is told which URL to fetch.
        let err = sns_source("")
            .accept(
                &request(
                    "/sns",
                    &signed(&sns_source(""), &private, NOTIFICATION),
                    &[],
                ),
                at(0),
                &Certificates::default(),
            )
            .unwrap_err();
        assert_eq!(
            (err.kind(), err.certificate()),
            (ErrorKind::KeysNotLoaded, Some(URL))
        );
    }

    #[test]
    fn configuration_errors_name_their_key() {
        for (table, key) in [
            ("topic_arn = \"orders\"", "topic_arn"),
            ("topic_arn = []", "topic_arn"),
            (
                &format!("topic_arn = \"{TOPIC}\"\nsignature_versions = []"),
                "signature_versions",
            ),
            (
                &format!("topic_arn = \"{TOPIC}\"\nsignature_versions = [\"3\"]"),
                "signature_versions",
            ),
            (
                &format!("topic_arn = \"{TOPIC}\"\nsignature_versions = [\"2\", \"3\"]"),
                "signature_versions",
            ),
        ] {
            let err = try_source(&format!("[verify]\nkind = \"aws-sns\"\n{table}\n")).unwrap_err();
            assert_eq!(err.key, format!("verify.{key}"), "{table}");
        }
    }
}

#[test]
fn errors_name_where_the_signature_was_read_and_keys_must_decode_to_something() {
    let src = source("[verify]\nkind = \"hmac\"\nheader = \"X-Sig\"\nsecret = \"s\"\n");
    let err = accept(
        &src,
        &request("/webhook", b"{}", &[("X-Sig", "abcd")]),
        at(0),
    )
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BadSignature);
    assert!(err.detail().starts_with("`X-Sig` does not match"), "{err}");
    let in_body = source("[verify]\nkind = \"hmac\"\nsignature = \"json:/sig\"\nsecret = \"s\"\n");
    let err = accept(
        &in_body,
        &request("/webhook", br#"{"sig":"zz"}"#, &[]),
        at(0),
    )
    .unwrap_err();
    assert!(err.detail().starts_with("`json:/sig` is not"), "{err}");
    // A secret that decodes to nothing is no key.
    let err = try_source(
        "[verify]\nkind = \"hmac\"\nheader = \"X\"\nkey_encoding = \"hex\"\nsecret = \" \"\n",
    )
    .unwrap_err();
    assert_eq!(err.key, "verify.secret");
}

#[test]
fn public_key_errors_name_the_key_in_a_list() {
    let (_, public) = keypair("EdDSA");
    let one = try_source(
        "[verify]\nkind = \"public-key\"\nalgorithm = \"ed25519\"\nheader = \"X\"\npublic_key = \"nope!\"\n",
    )
    .unwrap_err();
    assert_eq!(one.key, "verify.public_key");
    let listed = try_source(&format!(
        "[verify]\nkind = \"public-key\"\nalgorithm = \"ed25519\"\nheader = \"X\"\npublic_key = [{}, \"nope!\"]\n",
        toml_str(&public)
    ))
    .unwrap_err();
    assert_eq!(listed.key, "verify.public_key[1]");
}

#[test]
fn an_ed25519_key_may_be_given_as_der_too() {
    use base64::Engine as _;
    let key = openssl::pkey::PKey::generate_ed25519().unwrap();
    let der = key.public_key_to_der().unwrap();
    for text in [
        base64::engine::general_purpose::STANDARD.encode(&der),
        hex::encode(&der),
    ] {
        try_source(&format!(
            "[verify]\nkind = \"public-key\"\nalgorithm = \"ed25519\"\nheader = \"X\"\npublic_key = \"{text}\"\n"
        ))
        .unwrap_or_else(|e| panic!("{text}: {e}"));
    }
}

#[test]
fn a_key_openssl_cannot_read_says_why() {
    let err = try_source(
        "[verify]\nkind = \"public-key\"\nalgorithm = \"ed25519\"\nheader = \"X\"\npublic_key = \"\"\"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\"\"\"\n",
    )
    .unwrap_err();
    let text = err.to_string();
    let reason = text
        .split("is not a public key in PEM: ")
        .nth(1)
        .unwrap_or("");
    assert!(
        reason.starts_with("error:"),
        "OpenSSL's reason is kept: {text}"
    );
}
