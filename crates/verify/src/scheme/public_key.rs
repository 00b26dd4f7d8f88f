//! `kind = "public-key"`: a public-key signature (Ed25519, or ECDSA P-256 with SHA-256) of
//! a templated content, in a header; e.g. Discord's and Telnyx's Ed25519 over
//! `{timestamp}{body}`, SendGrid's ECDSA over `{timestamp}{body}`.
//!
//! The algorithm comes from the configuration, and the key must be of that algorithm: a
//! request cannot choose it.

use openssl::bn::BigNum;
use openssl::ecdsa::EcdsaSig;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey, Public};
use openssl::sign::{Signer, Verifier};
use serde::Deserialize;
use time::OffsetDateTime;

use super::{OneOrMany, SignInput, SignedTimestamp, Verified};
use crate::error::{ErrorKind, SignError, SpecError, VerifyError};
use crate::secret::Encoding;
use crate::template::{Context, Field, Template};
use crate::timestamp::TimestampFormat;

/// A public-key signature algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SignatureAlgorithm {
    /// Ed25519 (RFC 8032): a 64-byte signature of the content itself.
    Ed25519,
    /// ECDSA on P-256 over the SHA-256 of the content; the signature in DER or as the
    /// 64-byte `r‖s`.
    EcdsaP256Sha256,
}

impl SignatureAlgorithm {
    fn name(self) -> &'static str {
        match self {
            SignatureAlgorithm::Ed25519 => "Ed25519",
            SignatureAlgorithm::EcdsaP256Sha256 => "ECDSA P-256/SHA-256",
        }
    }
}

/// Configuration of a public-key check.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublicKeyConfig {
    /// `ed25519` or `ecdsa-p256-sha256`.
    pub algorithm: SignatureAlgorithm,
    /// The header carrying the signature.
    pub header: String,
    /// How the signature is written: `hex`, `base64` (default) or `base64url`.
    #[serde(default = "base64")]
    pub encoding: Encoding,
    /// The signed content as a template; default `{body}`.
    pub signed: Option<String>,
    /// Where the signed timestamp is read (`header:NAME` …).
    pub timestamp: Option<String>,
    /// How the timestamp is written; default `auto`.
    #[serde(default)]
    pub timestamp_format: TimestampFormat,
    /// Accepted distance between the timestamp and now, either side; default `5m`.
    pub tolerance: Option<String>,
    /// The public key(s), each in PEM, or the raw key / DER in hex or base64 (Discord's hex
    /// Ed25519 key, SendGrid's base64 DER key). Several are all accepted (rotation).
    pub public_key: Option<OneOrMany<String>>,
}

fn base64() -> Encoding {
    Encoding::Base64
}

/// A built public-key check.
#[derive(Debug)]
pub struct PublicKeyCheck {
    algorithm: SignatureAlgorithm,
    header: String,
    encoding: Encoding,
    signed: Template,
    timestamp: Option<SignedTimestamp>,
    keys: Vec<PKey<Public>>,
}

impl PublicKeyCheck {
    /// Validates the configuration and loads the keys.
    pub fn build(config: PublicKeyConfig) -> Result<Self, SpecError> {
        if config.header.trim().is_empty() {
            return Err(SpecError::new("header", "must name the signature header"));
        }
        let texts = config
            .public_key
            .map(OneOrMany::into_vec)
            .unwrap_or_default();
        if texts.is_empty() {
            return Err(SpecError::new(
                "public_key",
                format!("set the {} public key", config.algorithm.name()),
            ));
        }
        let many = texts.len() > 1;
        let keys = texts
            .iter()
            .enumerate()
            .map(|(i, text)| {
                load_key(config.algorithm, text).map_err(|m| {
                    SpecError::new(
                        if many {
                            format!("public_key[{i}]")
                        } else {
                            "public_key".to_owned()
                        },
                        m,
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(PublicKeyCheck {
            algorithm: config.algorithm,
            header: config.header,
            encoding: config.encoding,
            signed: Template::parse("signed", config.signed.as_deref().unwrap_or("{body}"))?,
            timestamp: SignedTimestamp::build(
                config.timestamp.as_deref(),
                config.timestamp_format,
                config.tolerance.as_deref(),
            )?,
            keys,
        })
    }

    /// The signature header's name.
    pub fn header(&self) -> &str {
        &self.header
    }

    pub(crate) fn verify(
        &self,
        ctx: &mut Context<'_, '_>,
        now: OffsetDateTime,
    ) -> Result<Verified, VerifyError> {
        let raw = ctx
            .request
            .headers
            .get(&self.header)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| {
                VerifyError::new(
                    ErrorKind::MissingCredential,
                    format!("header `{}` is missing or empty", self.header),
                )
            })?;
        let signature = self.encoding.decode(raw).ok_or_else(|| {
            VerifyError::new(
                ErrorKind::Malformed,
                format!("`{}` is not {:?}-encoded", self.header, self.encoding),
            )
        })?;
        let signature = match self.algorithm {
            SignatureAlgorithm::Ed25519 if signature.len() != 64 => {
                return Err(VerifyError::new(
                    ErrorKind::Malformed,
                    format!(
                        "`{}` holds {} bytes; an Ed25519 signature has 64",
                        self.header,
                        signature.len()
                    ),
                ))
            }
            SignatureAlgorithm::EcdsaP256Sha256 if signature.len() == 64 => {
                raw_ecdsa_to_der(&signature).ok_or_else(|| {
                    VerifyError::new(ErrorKind::Malformed, "not an ECDSA signature")
                })?
            }
            _ => signature,
        };
        let content = self.signed.render(ctx)?;
        for (index, key) in self.keys.iter().enumerate() {
            if verifies(self.algorithm, key, &content, &signature) {
                if let Some(timestamp) = &self.timestamp {
                    timestamp.check(ctx, now)?;
                }
                return Ok(Verified::new("public-key").with_key_id(format!("public_key#{index}")));
            }
        }
        Err(VerifyError::new(
            ErrorKind::BadSignature,
            format!(
                "`{}` is not an {} signature of `{}` by any of the {} configured key(s)",
                self.header,
                self.algorithm.name(),
                self.signed,
                self.keys.len()
            ),
        ))
    }

    pub(crate) fn sign(&self, input: &mut SignInput<'_, '_>) -> Result<(), SignError> {
        let pem = input.private_key()?;
        let key = PKey::private_key_from_pem(pem.as_bytes())
            .map_err(|e| SignError(format!("the private key is not PEM: {}", first_line(&e))))?;
        if let Some(timestamp) = &self.timestamp {
            match timestamp.field() {
                Field::Header(name) => {
                    let text = timestamp.render(input.now);
                    input.request.headers.set(name, text)
                }
                other => {
                    return Err(SignError(format!(
                        "cannot write the timestamp to `{other}`"
                    )))
                }
            }
        }
        let content = self
            .signed
            .render(&Context::new(input.request))
            .map_err(|e| SignError(e.to_string()))?;
        let signature = match self.algorithm {
            SignatureAlgorithm::Ed25519 => {
                Signer::new_without_digest(&key).and_then(|mut s| s.sign_oneshot_to_vec(&content))
            }
            SignatureAlgorithm::EcdsaP256Sha256 => Signer::new(MessageDigest::sha256(), &key)
                .and_then(|mut s| {
                    s.update(&content)?;
                    s.sign_to_vec()
                }),
        }
        .map_err(|e| {
            SignError(format!(
                "the private key cannot sign {}: {}",
                self.algorithm.name(),
                first_line(&e)
            ))
        })?;
        input
            .request
            .headers
            .set(&self.header, self.encoding.encode(&signature));
        Ok(())
    }
}

fn verifies(
    algorithm: SignatureAlgorithm,
    key: &PKey<Public>,
    content: &[u8],
    signature: &[u8],
) -> bool {
    let outcome = match algorithm {
        SignatureAlgorithm::Ed25519 => {
            Verifier::new_without_digest(key).and_then(|mut v| v.verify_oneshot(signature, content))
        }
        SignatureAlgorithm::EcdsaP256Sha256 => Verifier::new(MessageDigest::sha256(), key)
            .and_then(|mut v| {
                v.update(content)?;
                v.verify(signature)
            }),
    };
    // An error is a signature OpenSSL could not even parse: not a match either way.
    outcome.unwrap_or(false)
}

/// `r‖s` (32 bytes each) as the DER `ECDSA-Sig-Value` OpenSSL verifies.
fn raw_ecdsa_to_der(raw: &[u8]) -> Option<Vec<u8>> {
    let r = BigNum::from_slice(&raw[..32]).ok()?;
    let s = BigNum::from_slice(&raw[32..]).ok()?;
    EcdsaSig::from_private_components(r, s).ok()?.to_der().ok()
}

/// A key of `algorithm` from PEM, or from hex/base64 holding the raw Ed25519 key or a DER
/// `SubjectPublicKeyInfo`.
fn load_key(algorithm: SignatureAlgorithm, text: &str) -> Result<PKey<Public>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("is empty (an unset environment variable?)".into());
    }
    let key = if text.starts_with("-----BEGIN") {
        PKey::public_key_from_pem(text.as_bytes())
            .map_err(|e| format!("is not a public key in PEM: {}", first_line(&e)))?
    } else {
        let hex_like = text.len().is_multiple_of(2) && text.bytes().all(|b| b.is_ascii_hexdigit());
        let bytes = if hex_like {
            Encoding::Hex.decode(text)
        } else {
            Encoding::Base64.decode(text)
        }
        .ok_or("is neither PEM, hex nor base64")?;
        if algorithm == SignatureAlgorithm::Ed25519 && bytes.len() == 32 {
            PKey::public_key_from_raw_bytes(&bytes, Id::ED25519)
                .map_err(|e| format!("is not an Ed25519 key: {}", first_line(&e)))?
        } else {
            PKey::public_key_from_der(&bytes).map_err(|e| {
                format!(
                    "is not a raw Ed25519 key (32 bytes) or a DER public key: {}",
                    first_line(&e)
                )
            })?
        }
    };
    let fits = match algorithm {
        SignatureAlgorithm::Ed25519 => key.id() == Id::ED25519,
        SignatureAlgorithm::EcdsaP256Sha256 => key
            .ec_key()
            .ok()
            .and_then(|k| k.group().curve_name())
            .is_some_and(|curve| curve == Nid::X9_62_PRIME256V1),
    };
    if !fits {
        return Err(format!("is not an {} public key", algorithm.name()));
    }
    Ok(key)
}

fn first_line(e: &dyn std::fmt::Display) -> String {
    e.to_string().lines().next().unwrap_or("").to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::Request;
    use crate::scheme::{Check, CheckConfig, SigningKeys};

    fn check(algorithm: &str, public_key: &str) -> Result<Check, SpecError> {
        let config: CheckConfig = toml::from_str(&format!(
            r#"kind = "public-key"
algorithm = "{algorithm}"
header = "X-Signature"
signed = "{{header:X-Timestamp}}{{body}}"
timestamp = "header:X-Timestamp"
timestamp_format = "unix"
public_key = """{public_key}""""#
        ))
        .unwrap();
        Check::build(config)
    }

    fn pems(key: &PKey<openssl::pkey::Private>) -> (String, String) {
        (
            String::from_utf8(key.public_key_to_pem().unwrap()).unwrap(),
            String::from_utf8(key.private_key_to_pem_pkcs8().unwrap()).unwrap(),
        )
    }

    fn round_trip(algorithm: &str, key: PKey<openssl::pkey::Private>, public_text: &str) {
        let (_, private) = pems(&key);
        let check = check(algorithm, public_text).unwrap();
        let now = OffsetDateTime::from_unix_timestamp(1_767_225_600).unwrap();
        let mut request = Request::post("/webhook", br#"{"type":1}"#);
        let keys = SigningKeys {
            private_key_pem: Some(private),
            ..SigningKeys::default()
        };
        let mut input = SignInput {
            request: &mut request,
            now,
            keys: &keys,
            new_body: None,
        };
        check.sign(&mut input).unwrap();
        let lookup = crate::scheme::oidc::NoKeys;
        let verified = check
            .verify(&mut Context::new(&request), now, &lookup)
            .unwrap();
        assert_eq!(verified.key_id.as_deref(), Some("public_key#0"));
        let later = now + time::Duration::hours(1);
        let stale = check
            .verify(&mut Context::new(&request), later, &lookup)
            .unwrap_err();
        assert_eq!(stale.kind(), ErrorKind::StaleTimestamp);
        let tampered = Request {
            body: br#"{"type":2}"#,
            ..request.clone()
        };
        let bad = check
            .verify(&mut Context::new(&tampered), now, &lookup)
            .unwrap_err();
        assert_eq!(bad.kind(), ErrorKind::BadSignature, "{bad}");
    }

    #[test]
    fn ed25519_with_a_hex_raw_key_a_base64_one_or_pem() {
        let key = PKey::generate_ed25519().unwrap();
        let raw = key.raw_public_key().unwrap();
        round_trip("ed25519", key.clone(), &hex::encode(&raw));
        round_trip("ed25519", key.clone(), &crate::secret::b64(&raw));
        round_trip("ed25519", key.clone(), &pems(&key).0);
    }

    #[test]
    fn ecdsa_p256_with_a_base64_der_key() {
        let group = openssl::ec::EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
        let key = PKey::from_ec_key(openssl::ec::EcKey::generate(&group).unwrap()).unwrap();
        let der = key.public_key_to_der().unwrap();
        round_trip("ecdsa-p256-sha256", key, &crate::secret::b64(&der));
    }

    #[test]
    fn a_raw_ecdsa_signature_is_read_as_r_and_s() {
        let group = openssl::ec::EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
        let ec = openssl::ec::EcKey::generate(&group).unwrap();
        let key = PKey::from_ec_key(ec.clone()).unwrap();
        let check = check("ecdsa-p256-sha256", &pems(&key).0).unwrap();
        let digest = openssl::sha::sha256(b"1767225600{}");
        let sig = EcdsaSig::sign(&digest, &ec).unwrap();
        let mut raw = sig.r().to_vec_padded(32).unwrap();
        raw.extend(sig.s().to_vec_padded(32).unwrap());
        let request = Request::post("/webhook", b"{}")
            .header("X-Timestamp", "1767225600")
            .header("X-Signature", crate::secret::b64(&raw));
        let now = OffsetDateTime::from_unix_timestamp(1_767_225_600).unwrap();
        check
            .verify(
                &mut Context::new(&request),
                now,
                &crate::scheme::oidc::NoKeys,
            )
            .unwrap();
    }

    #[test]
    fn a_key_of_another_algorithm_is_a_config_error() {
        let ed = PKey::generate_ed25519().unwrap();
        let err = check("ecdsa-p256-sha256", &pems(&ed).0).unwrap_err();
        assert_eq!(err.key, "public_key");
        assert!(err.to_string().contains("ECDSA P-256"), "{err}");
        let group = openssl::ec::EcGroup::from_curve_name(Nid::SECP384R1).unwrap();
        let p384 = PKey::from_ec_key(openssl::ec::EcKey::generate(&group).unwrap()).unwrap();
        assert!(check("ecdsa-p256-sha256", &pems(&p384).0).is_err());
        let rsa = PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap();
        assert!(check("ed25519", &pems(&rsa).0).is_err());
        assert!(check("ed25519", "not a key!").is_err());
        assert!(check("ed25519", "").is_err());
    }

    #[test]
    fn a_signature_of_the_wrong_size_is_malformed() {
        let key = PKey::generate_ed25519().unwrap();
        let check = check("ed25519", &pems(&key).0).unwrap();
        let request = Request::post("/webhook", b"{}")
            .header("X-Timestamp", "1767225600")
            .header("X-Signature", "AAAA");
        let now = OffsetDateTime::from_unix_timestamp(1_767_225_600).unwrap();
        let err = check
            .verify(
                &mut Context::new(&request),
                now,
                &crate::scheme::oidc::NoKeys,
            )
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Malformed);
        let missing = Request::post("/webhook", b"{}");
        let err = check
            .verify(
                &mut Context::new(&missing),
                now,
                &crate::scheme::oidc::NoKeys,
            )
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::MissingCredential);
    }
}
