//! Property tests: whatever the scheme, what is signed verifies, and changing any byte of
//! the body, the signature or a claim fails with the right kind.

use hookgate_verify::{ErrorKind, Secret, SigningKeys};
use proptest::prelude::*;

use crate::support::*;

fn hmac_config() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec!["sha1", "sha256", "sha384", "sha512"]),
        prop::sample::select(vec!["hex", "base64", "base64url"]),
        prop::sample::select(vec!["", "sha256=", "v0="]),
        prop::sample::select(vec!["{body}", "{header:X-Ts}.{body}", "{request:method}{request:path}{body:sha256}"]),
        prop::bool::ANY,
    )
        .prop_map(|(alg, enc, prefix, signed, timestamped)| {
            let ts = if timestamped || signed.contains("X-Ts") { "timestamp = \"header:X-Ts\"\n" } else { "" };
            format!(
                "[verify]\nkind = \"hmac\"\nheader = \"X-Sig\"\nalgorithm = \"{alg}\"\nencoding = \"{enc}\"\nprefix = \"{prefix}\"\nsigned = \"{signed}\"\n{ts}secret = \"k\"\n"
            )
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn hmac_round_trip_and_any_body_change_fails(config in hmac_config(), body in prop::collection::vec(any::<u8>(), 0..256), secret in "[ -~]{1,40}", flip in any::<prop::sample::Index>()) {
        let src = source(&config);
        let now = at(1_700_000_000);
        let keys = SigningKeys { secret: Some(Secret::new(secret.clone())), ..Default::default() };
        let verify_src = source(&config.replace("secret = \"k\"", &format!("secret = {}", toml_str(&secret))));
        let mut req = request("/p", &body, &[]);
        src.sign(&mut req, now, &keys).unwrap();
        prop_assert!(accept(&verify_src, &req, now).is_ok());
        if !body.is_empty() {
            let mut changed = body.clone();
            let i = flip.index(changed.len());
            changed[i] ^= 0x01;
            let mut tampered = req.clone();
            tampered.body = &changed;
            prop_assert_eq!(kind_of(accept(&verify_src, &tampered, now)), ErrorKind::BadSignature);
        }
        let signature = req.headers.get("X-Sig").unwrap().to_owned();
        let i = flip.index(signature.len());
        let mut bytes = signature.into_bytes();
        bytes[i] = if bytes[i] == b'0' { b'1' } else { b'0' };
        let mut forged = req.clone();
        forged.headers.set("X-Sig", bytes);
        let kind = kind_of(accept(&verify_src, &forged, now));
        prop_assert!(matches!(kind, ErrorKind::BadSignature | ErrorKind::Malformed | ErrorKind::UnsupportedAlgorithm), "{:?}", kind);
    }

    #[test]
    fn jwt_claim_changes_fail_with_the_claims_kind(event_id in "[a-f0-9]{8}", other in "[a-f0-9]{8}", body in "[a-z]{0,64}") {
        prop_assume!(event_id != other);
        let src = source("[verify]\nkind = \"jwt\"\nalgorithms = \"HS256\"\nsecret = \"k\"\nissuer = \"i\"\naudience = \"a\"\n[verify.claims]\neid = \"urn:{header:X-Id}\"\nmd5 = \"{body:md5}\"");
        let now = at(1_700_000_000);
        let mut req = request("/j", body.as_bytes(), &[("X-Id", &event_id)]);
        src.sign(&mut req, now, &SigningKeys::default()).unwrap();
        prop_assert!(accept(&src, &req, now).is_ok());
        let mut moved = req.clone();
        moved.headers.set("X-Id", other.clone());
        let e = accept(&src, &moved, now).unwrap_err();
        prop_assert_eq!((e.kind(), e.claim()), (ErrorKind::ClaimMismatch, Some("eid")));
        let longer = format!("{body}x");
        let mut grown = req.clone();
        grown.body = longer.as_bytes();
        let e = accept(&src, &grown, now).unwrap_err();
        prop_assert_eq!((e.kind(), e.claim()), (ErrorKind::BodyHashMismatch, Some("md5")));
    }

    #[test]
    fn standard_webhooks_any_byte_change_fails(body in prop::collection::vec(any::<u8>(), 1..200), flip in any::<prop::sample::Index>()) {
        let src = source("preset = \"standard-webhooks\"\nsecret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"");
        let now = at(1_700_000_000);
        let mut req = request("/s", &body, &[]);
        src.sign(&mut req, now, &SigningKeys { event_id: Some("msg_1".into()), ..Default::default() }).unwrap();
        prop_assert!(accept(&src, &req, now).is_ok());
        let mut changed = body.clone();
        let i = flip.index(changed.len());
        changed[i] = changed[i].wrapping_add(1);
        let mut tampered = req.clone();
        tampered.body = &changed;
        prop_assert_eq!(kind_of(accept(&src, &tampered, now)), ErrorKind::BadSignature);
    }
}
