//! JWT: every algorithm, keys from PEM / JWK / JWKS, algorithm confusion refused, claims.

use hookgate_verify::{Encoding, ErrorKind, HashAlgorithm, SigningKeys};

use crate::support::*;

fn b64u(bytes: &[u8]) -> String {
    Encoding::Base64url.encode(bytes)
}

fn jwt_source(algorithm: &str, key_line: &str) -> hookgate_verify::Source {
    source(&format!(
        "[verify]\nkind = \"jwt\"\nalgorithms = [\"{algorithm}\"]\n{key_line}\nissuer = \"https://issuer.test\"\naudience = [\"aud-1\", \"aud-2\"]\nrequired = [\"exp\", \"iat\"]\nleeway = \"5s\"\n[verify.claims]\nbody = \"{{body:sha256}}\"\n"
    ))
}

#[test]
fn every_algorithm_signs_and_verifies() {
    let now = at(1_700_000_000);
    for algorithm in [
        "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256",
        "ES384", "ES512", "EdDSA",
    ] {
        let (private, key_line) = if algorithm.starts_with("HS") {
            ("short".to_string(), "secret = \"short\"".to_string())
        } else {
            let family = if algorithm.starts_with("RS") {
                "RS"
            } else if algorithm.starts_with("PS") {
                "PS"
            } else {
                algorithm
            };
            let (private, public) = keypair(family);
            (private, format!("public_key = {}", toml_str(&public)))
        };
        let src = jwt_source(algorithm, &key_line);
        let mut req = request("/jwt", b"payload bytes", &[]);
        let keys = SigningKeys {
            private_key_pem: Some(private.clone()),
            secret: Some(hookgate_verify::Secret::new(private)),
            ..Default::default()
        };
        src.sign(&mut req, now, &keys)
            .unwrap_or_else(|e| panic!("{algorithm}: {e}"));
        let ok = accept(&src, &req, now).unwrap_or_else(|e| panic!("{algorithm}: {e}"));
        assert_eq!(ok.verified.issuer.as_deref(), Some("https://issuer.test"));
        let mut tampered = req.clone();
        tampered.body = b"payload bytez";
        let e = accept(&src, &tampered, now).unwrap_err();
        assert_eq!(
            (e.kind(), e.claim()),
            (ErrorKind::BodyHashMismatch, Some("body")),
            "{algorithm}"
        );
        // Flip one signature character.
        let token = req.headers.get("authorization").unwrap()[7..].to_owned();
        let (head, sig) = token.rsplit_once('.').unwrap();
        let mut sig = sig.as_bytes().to_vec();
        sig[3] = if sig[3] == b'A' { b'B' } else { b'A' };
        let mut forged = req.clone();
        forged.headers.set(
            "Authorization",
            format!("Bearer {head}.{}", String::from_utf8(sig).unwrap()),
        );
        assert_eq!(
            kind_of(accept(&src, &forged, now)),
            ErrorKind::BadSignature,
            "{algorithm}"
        );
    }
}

fn token(header: &str, claims: &serde_json::Value, sign: impl Fn(&[u8]) -> Vec<u8>) -> String {
    let input = format!(
        "{}.{}",
        b64u(header.as_bytes()),
        b64u(claims.to_string().as_bytes())
    );
    let sig = sign(input.as_bytes());
    format!("{input}.{}", b64u(&sig))
}

#[test]
fn alg_none_and_hs_rs_confusion_are_refused() {
    let now = at(1_700_000_000);
    let (_, public) = keypair("RS");
    let src = source(&format!(
        "[verify]\nkind = \"jwt\"\nalgorithms = [\"RS256\"]\npublic_key = {}",
        toml_str(&public)
    ));
    let claims = serde_json::json!({"exp": 1_700_000_100, "iat": 1_700_000_000});
    let none = token(r#"{"alg":"none","typ":"JWT"}"#, &claims, |_| Vec::new());
    let e = accept(
        &src,
        &request("/", b"", &[("Authorization", &format!("Bearer {none}"))]),
        now,
    )
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::UnsupportedAlgorithm, "{e}");
    // The classic confusion: HS256 keyed with the RSA public key's PEM text.
    let confused = token(r#"{"alg":"HS256","typ":"JWT"}"#, &claims, |input| {
        HashAlgorithm::Sha256.mac_of(public.as_bytes(), input)
    });
    let e = accept(
        &src,
        &request(
            "/",
            b"",
            &[("Authorization", &format!("Bearer {confused}"))],
        ),
        now,
    )
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::UnsupportedAlgorithm);
    // And a configuration that would allow it is refused up front.
    let err = try_source(&format!(
        "[verify]\nkind = \"jwt\"\nalgorithms = [\"RS256\", \"HS256\"]\npublic_key = {}",
        toml_str(&public)
    ))
    .unwrap_err();
    assert_eq!(err.key, "verify.algorithms");
    // Header says HS256 and config accepts HS256 only with a secret: a token whose header
    // lies about its algorithm fails on the signature, not silently.
    let hs = source("[verify]\nkind = \"jwt\"\nalgorithms = [\"HS256\"]\nsecret = \"k\"");
    let lie = token(r#"{"alg":"HS256"}"#, &claims, |input| {
        HashAlgorithm::Sha512.mac_of(b"k", input)
    });
    assert_eq!(
        kind_of(accept(
            &hs,
            &request("/", b"", &[("Authorization", &format!("Bearer {lie}"))]),
            now
        )),
        ErrorKind::BadSignature
    );
}

#[test]
fn claims_are_enforced_with_leeway() {
    let now = 1_700_000_000i64;
    let src = source("[verify]\nkind = \"jwt\"\nalgorithms = [\"HS256\"]\nsecret = \"k\"\nissuer = \"iss-1\"\naudience = \"aud-1\"\nsubject = \"sub-1\"\nrequired = [\"exp\", \"nbf\", \"jti\"]\nleeway = \"10s\"");
    let good = serde_json::json!({"iss": "iss-1", "aud": ["x", "aud-1"], "sub": "sub-1", "exp": now + 60, "nbf": now, "jti": "j"});
    let check = |claims: serde_json::Value, at_time: i64| {
        let t = token(r#"{"alg":"HS256","typ":"JWT"}"#, &claims, |input| {
            HashAlgorithm::Sha256.mac_of(b"k", input)
        });
        accept(
            &src,
            &request("/", b"", &[("Authorization", &format!("bearer {t}"))]),
            at(at_time),
        )
        .map(|_| ())
        .map_err(|e| (e.kind(), e.claim().map(str::to_owned)))
    };
    assert_eq!(check(good.clone(), now), Ok(()));
    assert_eq!(check(good.clone(), now + 70), Ok(()), "exp + leeway");
    assert_eq!(
        check(good.clone(), now + 71),
        Err((ErrorKind::Expired, Some("exp".into())))
    );
    assert_eq!(check(good.clone(), now - 10), Ok(()), "nbf - leeway");
    assert_eq!(
        check(good.clone(), now - 11),
        Err((ErrorKind::NotYetValid, Some("nbf".into())))
    );
    let with = |key: &str, value: serde_json::Value| {
        let mut c = good.clone();
        c[key] = value;
        c
    };
    let without = |key: &str| {
        let mut c = good.clone();
        c.as_object_mut().unwrap().remove(key);
        c
    };
    assert_eq!(
        check(without("jti"), now),
        Err((ErrorKind::MissingClaim, Some("jti".into())))
    );
    assert_eq!(
        check(with("iss", "iss-2".into()), now),
        Err((ErrorKind::IssuerMismatch, Some("iss".into())))
    );
    assert_eq!(
        check(with("aud", "aud-2".into()), now),
        Err((ErrorKind::AudienceMismatch, Some("aud".into())))
    );
    assert_eq!(
        check(without("aud"), now),
        Err((ErrorKind::MissingClaim, Some("aud".into())))
    );
    assert_eq!(
        check(with("sub", "sub-2".into()), now),
        Err((ErrorKind::SubjectMismatch, Some("sub".into())))
    );
    assert_eq!(
        check(with("exp", "tomorrow".into()), now),
        Err((ErrorKind::Malformed, None)),
        "josekit refuses a non-numeric exp"
    );
    assert_eq!(
        check(with("iat", (now + 100).into()), now),
        Err((ErrorKind::NotYetValid, Some("iat".into())))
    );
}

#[test]
fn jwks_keys_are_chosen_by_kid() {
    let now = at(1_700_000_000);
    let (private_a, _) = keypair("ES256");
    let (private_b, _) = keypair("ES256");
    let jwk = |pem: &str, kid: &str| {
        let key =
            josekit::jwk::Jwk::from_bytes(hookgate_verify_test_jwk(pem, kid).as_bytes()).unwrap();
        serde_json::Value::Object(key.as_ref().clone())
    };
    let jwks = serde_json::json!({"keys": [jwk(&private_a, "a"), jwk(&private_b, "b")]});
    let src = source(&format!(
        "[verify]\nkind = \"jwt\"\nalgorithms = \"ES256\"\njwks = {}",
        toml_str(&jwks.to_string())
    ));
    for (pem, kid) in [(&private_a, "a"), (&private_b, "b")] {
        let mut req = request("/", b"", &[]);
        src.sign(
            &mut req,
            now,
            &SigningKeys {
                private_key_pem: Some(pem.clone()),
                key_id: Some(kid.into()),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(
            accept(&src, &req, now).unwrap().verified.key_id.as_deref(),
            Some(kid)
        );
    }
    let mut req = request("/", b"", &[]);
    src.sign(
        &mut req,
        now,
        &SigningKeys {
            private_key_pem: Some(private_a.clone()),
            key_id: Some("c".into()),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(kind_of(accept(&src, &req, now)), ErrorKind::UnknownKey);
    // Signed by key a but labelled b: the signature check fails.
    let mut req = request("/", b"", &[]);
    src.sign(
        &mut req,
        now,
        &SigningKeys {
            private_key_pem: Some(private_a),
            key_id: Some("b".into()),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(kind_of(accept(&src, &req, now)), ErrorKind::BadSignature);
}

/// The public JWK of a private key PEM, with a `kid`.
pub fn hookgate_verify_test_jwk(private_pem: &str, kid: &str) -> String {
    let pair = josekit::jws::ES256.key_pair_from_pem(private_pem).unwrap();
    let mut jwk = pair.to_jwk_public_key();
    jwk.set_key_id(kid);
    jwk.to_string()
}

#[test]
fn the_bearer_prefix_is_checked_before_the_token_is_read() {
    let src = jwt_source("HS256", "secret = \"short\"");
    let now = at(1_700_000_000);
    for (value, expected) in [
        ("Basic dXNlcjpwYXNzd29yZA==", "does not start with `Bearer`"),
        ("Bear", "does not start with `Bearer`"),
        ("", "does not start with `Bearer`"),
        // Byte 7 falls inside `ä`: a wrong prefix, not a slice across a character.
        ("Bearerä.x.y", "does not start with `Bearer`"),
    ] {
        let req = request("/jwt", b"payload bytes", &[("Authorization", value)]);
        let e = accept(&src, &req, now).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Malformed, "{value:?}: {e}");
        assert!(e.detail().contains(expected), "{value:?}: {}", e.detail());
    }
    // The scheme's case does not matter (RFC 9110 §11.1).
    let mut req = request("/jwt", b"payload bytes", &[]);
    let keys = SigningKeys {
        secret: Some(hookgate_verify::Secret::new("short")),
        ..Default::default()
    };
    src.sign(&mut req, now, &keys).unwrap();
    let token = req.headers.get("authorization").unwrap()[7..].to_owned();
    let lower = request(
        "/jwt",
        b"payload bytes",
        &[("Authorization", &format!("bearer {token}"))],
    );
    assert!(accept(&src, &lower, now).is_ok());
}

#[test]
fn hs384_and_hs512_tokens_made_elsewhere_verify() {
    // Signed here with the plain HMAC primitive, not with the verifier's own key type: a
    // verifier that used another hash would refuse them.
    let now = at(1_700_000_000);
    let claims = serde_json::json!({"exp": 1_700_000_100, "iat": 1_700_000_000});
    for (algorithm, hash) in [
        ("HS256", HashAlgorithm::Sha256),
        ("HS384", HashAlgorithm::Sha384),
        ("HS512", HashAlgorithm::Sha512),
    ] {
        let src = source(&format!(
            "[verify]\nkind = \"jwt\"\nalgorithms = [\"{algorithm}\"]\nsecret = \"a-shared-secret\"\n"
        ));
        let jwt = token(
            &format!(r#"{{"alg":"{algorithm}","typ":"JWT"}}"#),
            &claims,
            |input| hash.mac_of(b"a-shared-secret", input),
        );
        let req = request("/", b"", &[("Authorization", &format!("Bearer {jwt}"))]);
        accept(&src, &req, now).unwrap_or_else(|e| panic!("{algorithm}: {e}"));
        let wrong = token(
            &format!(r#"{{"alg":"{algorithm}","typ":"JWT"}}"#),
            &claims,
            |input| hash.mac_of(b"another-secret", input),
        );
        let req = request("/", b"", &[("Authorization", &format!("Bearer {wrong}"))]);
        assert_eq!(kind_of(accept(&src, &req, now)), ErrorKind::BadSignature);
    }
}

#[test]
fn a_jwk_serves_only_the_algorithms_its_type_and_curve_fit() {
    let (private, _) = keypair("ES256");
    let mut jwk: serde_json::Value =
        serde_json::from_str(&hookgate_verify_test_jwk(&private, "p256")).unwrap();
    // No `alg` on the key: its type and curve alone decide what it may verify.
    jwk.as_object_mut().unwrap().remove("alg");
    let jwks = serde_json::json!({"keys": [jwk]}).to_string();
    let with = |algorithms: &str| {
        try_source(&format!(
            "[verify]\nkind = \"jwt\"\nalgorithms = {algorithms}\njwks = {}",
            toml_str(&jwks)
        ))
    };
    assert!(with(r#"["ES256"]"#).is_ok());
    for other in ["RS256", "PS256", "ES384", "ES512", "EdDSA"] {
        let e = with(&format!(r#"["ES256", "{other}"]"#)).unwrap_err();
        assert!(
            e.to_string()
                .contains(&format!("no configured key fits {other}")),
            "{other}: {e}"
        );
    }
}

#[test]
fn token_errors_say_how_many_keys_were_tried_and_what_was_malformed() {
    let now = at(1_700_000_000);
    let src = source(
        "[verify]\nkind = \"jwt\"\nalgorithms = [\"HS256\"]\nsecrets = [\"first\", \"second\"]\n",
    );
    let claims = serde_json::json!({"exp": 1_700_000_100, "iat": 1_700_000_000});
    let header = r#"{"alg":"HS256","typ":"JWT"}"#;
    let forged = token(header, &claims, |input| {
        HashAlgorithm::Sha256.mac_of(b"third", input)
    });
    let req = request("/", b"", &[("Authorization", &format!("Bearer {forged}"))]);
    let e = accept(&src, &req, now).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::BadSignature);
    assert!(
        e.detail()
            .contains("matches none of the 2 candidate key(s)"),
        "{}",
        e.detail()
    );
    // Signed correctly, but its payload is not a JSON object.
    let input = format!("{}.{}", b64u(header.as_bytes()), b64u(b"[1,2]"));
    let sig = HashAlgorithm::Sha256.mac_of(b"first", input.as_bytes());
    let odd = format!("{input}.{}", b64u(&sig));
    let req = request("/", b"", &[("Authorization", &format!("Bearer {odd}"))]);
    let e = accept(&src, &req, now).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Malformed);
    // The parser's own first line says what was wrong.
    assert!(
        e.detail()
            .starts_with("token is malformed: invalid type: sequence, expected a map"),
        "{}",
        e.detail()
    );
}

#[test]
fn shared_secret_tokens_carry_no_key_id_and_keys_debug_without_material() {
    let now = at(1_700_000_000);
    let src =
        source("[verify]\nkind = \"jwt\"\nalgorithms = [\"HS256\"]\nsecret = \"s3cr3t-value\"\n");
    let mut req = request("/", b"", &[]);
    src.sign(&mut req, now, &SigningKeys::default()).unwrap();
    let jwt = req.headers.get("authorization").unwrap()[7..].to_owned();
    let header = jwt.split('.').next().unwrap();
    let header: serde_json::Value =
        serde_json::from_slice(&hookgate_verify::Encoding::Base64url.decode(header).unwrap())
            .unwrap();
    assert_eq!(header["alg"], "HS256");
    assert!(header.get("kid").is_none(), "{header}");
    assert!(!format!("{src:?}").contains("s3cr3t-value"));
    let (private, _) = keypair("ES256");
    let jwk: serde_json::Value =
        serde_json::from_str(&hookgate_verify_test_jwk(&private, "k1")).unwrap();
    let set = hookgate_verify::KeySet::from_jwks(
        serde_json::json!({"keys": [jwk]}).to_string().as_bytes(),
    )
    .unwrap();
    assert!(
        format!("{set:?}").contains(r#"KeyEntry(ES256, kid=Some("k1"))"#),
        "{set:?}"
    );
}

#[test]
fn a_jwk_declaring_another_algorithm_is_not_used() {
    let (private, _) = keypair("ES256");
    let mut jwk: serde_json::Value =
        serde_json::from_str(&hookgate_verify_test_jwk(&private, "k")).unwrap();
    jwk["alg"] = "ES512".into();
    let jwks = serde_json::json!({"keys": [jwk]}).to_string();
    let e = try_source(&format!(
        "[verify]\nkind = \"jwt\"\nalgorithms = [\"ES256\"]\njwks = {}",
        toml_str(&jwks)
    ))
    .unwrap_err();
    assert!(
        e.to_string().contains("no configured key fits ES256"),
        "{e}"
    );
    assert_eq!(
        hookgate_verify::KeySet::from_jwks(jwks.as_bytes())
            .unwrap_err()
            .to_string(),
        "no usable signature key among 1 key(s)"
    );
}

#[test]
fn signed_tokens_carry_the_time_claims_the_source_requires() {
    let now = at(1_700_000_000);
    let claims_of = |required: &str| {
        let src = source(&format!(
            "[verify]\nkind = \"jwt\"\nalgorithms = [\"HS256\"]\nsecret = \"s\"\nrequired = {required}\n"
        ));
        let mut req = request("/", b"", &[]);
        src.sign(&mut req, now, &SigningKeys::default()).unwrap();
        let jwt = req.headers.get("authorization").unwrap()[7..].to_owned();
        let payload = jwt.split('.').nth(1).unwrap();
        let claims: serde_json::Value = serde_json::from_slice(
            &hookgate_verify::Encoding::Base64url
                .decode(payload)
                .unwrap(),
        )
        .unwrap();
        claims
    };
    let all = claims_of(r#"["iat", "nbf", "exp"]"#);
    assert_eq!(all["iat"], 1_700_000_000);
    assert_eq!(all["nbf"], 1_700_000_000);
    assert_eq!(all["exp"], 1_700_000_300);
    let minimal = claims_of("[]");
    assert_eq!(minimal["exp"], 1_700_000_300, "exp is always set");
    assert!(minimal.get("iat").is_none() && minimal.get("nbf").is_none());
}
