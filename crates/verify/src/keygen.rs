//! Key material for senders and test issuers: generate key pairs, and derive the public
//! key (PEM and JWK) and JWS algorithm of a private key.

use josekit::jws;
use openssl::ec::{EcGroup, EcKey};
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey, Private};
use openssl::rsa::Rsa;

use crate::error::SignError;
use crate::scheme::jose::Algorithm;
use crate::secret::Encoding;

/// A generated or loaded asymmetric key.
#[derive(Clone)]
pub struct KeyPair {
    /// The algorithm the key signs with.
    pub algorithm: Algorithm,
    /// Private key, PKCS#8 PEM.
    pub private_pem: String,
    /// Public key, SubjectPublicKeyInfo PEM.
    pub public_pem: String,
    /// Public key as a JWK (with `kid`, `alg`, `use = "sig"`).
    pub public_jwk: serde_json::Value,
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "KeyPair({}, {})",
            self.algorithm.name(),
            self.public_jwk["kid"]
        )
    }
}

fn fail(e: impl std::fmt::Display) -> SignError {
    SignError(e.to_string().lines().next().unwrap_or("").to_owned())
}

impl KeyPair {
    /// Generates a key for `algorithm` (RS*/PS*: RSA 2048; ES256/384/512: P-256/384/521;
    /// EdDSA: Ed25519).
    pub fn generate(algorithm: Algorithm, kid: &str) -> Result<KeyPair, SignError> {
        let curve = |nid| -> Result<PKey<Private>, SignError> {
            let group = EcGroup::from_curve_name(nid).map_err(fail)?;
            PKey::from_ec_key(EcKey::generate(&group).map_err(fail)?).map_err(fail)
        };
        let pkey = match algorithm {
            Algorithm::ES256 => curve(Nid::X9_62_PRIME256V1)?,
            Algorithm::ES384 => curve(Nid::SECP384R1)?,
            Algorithm::ES512 => curve(Nid::SECP521R1)?,
            Algorithm::EdDSA => PKey::generate_ed25519().map_err(fail)?,
            a if a.is_hmac() => {
                return Err(SignError(format!(
                    "{} uses a shared secret, not a key pair",
                    a.name()
                )))
            }
            _ => PKey::from_rsa(Rsa::generate(2048).map_err(fail)?).map_err(fail)?,
        };
        let pem =
            String::from_utf8(pkey.private_key_to_pem_pkcs8().map_err(fail)?).map_err(fail)?;
        KeyPair::from_private_pem(&pem, Some(algorithm), kid)
    }

    /// Reads a private key PEM; the algorithm is `algorithm`, or the natural one for the
    /// key type (RSA → RS256, P-256 → ES256, P-384 → ES384, P-521 → ES512, Ed25519 → EdDSA).
    pub fn from_private_pem(
        pem: &str,
        algorithm: Option<Algorithm>,
        kid: &str,
    ) -> Result<KeyPair, SignError> {
        let pkey = PKey::private_key_from_pem(pem.as_bytes())
            .map_err(|_| SignError("not a private key in PEM".into()))?;
        let natural = match pkey.id() {
            Id::RSA => Algorithm::RS256,
            Id::ED25519 => Algorithm::EdDSA,
            Id::EC => {
                let ec = pkey.ec_key().map_err(fail)?;
                match ec.group().curve_name() {
                    Some(Nid::X9_62_PRIME256V1) => Algorithm::ES256,
                    Some(Nid::SECP384R1) => Algorithm::ES384,
                    Some(Nid::SECP521R1) => Algorithm::ES512,
                    other => return Err(SignError(format!("unsupported EC curve {other:?}"))),
                }
            }
            other => return Err(SignError(format!("unsupported key type {other:?}"))),
        };
        let algorithm = algorithm.unwrap_or(natural);
        let family_ok = match natural {
            Algorithm::RS256 => matches!(
                algorithm,
                Algorithm::RS256
                    | Algorithm::RS384
                    | Algorithm::RS512
                    | Algorithm::PS256
                    | Algorithm::PS384
                    | Algorithm::PS512
            ),
            other => algorithm == other,
        };
        if !family_ok {
            return Err(SignError(format!(
                "a {} key cannot sign {}",
                natural.name(),
                algorithm.name()
            )));
        }
        let public_pem =
            String::from_utf8(pkey.public_key_to_pem().map_err(fail)?).map_err(fail)?;
        let mut jwk = match natural {
            Algorithm::RS256 => jws::RS256
                .key_pair_from_pem(pem)
                .map_err(fail)?
                .to_jwk_public_key(),
            Algorithm::ES256 => jws::ES256
                .key_pair_from_pem(pem)
                .map_err(fail)?
                .to_jwk_public_key(),
            Algorithm::ES384 => jws::ES384
                .key_pair_from_pem(pem)
                .map_err(fail)?
                .to_jwk_public_key(),
            Algorithm::ES512 => jws::ES512
                .key_pair_from_pem(pem)
                .map_err(fail)?
                .to_jwk_public_key(),
            _ => jws::EdDSA
                .key_pair_from_pem(pem)
                .map_err(fail)?
                .to_jwk_public_key(),
        };
        jwk.set_key_id(kid);
        jwk.set_algorithm(algorithm.name());
        jwk.set_key_use("sig");
        let public_jwk: serde_json::Value = serde_json::from_str(&jwk.to_string()).map_err(fail)?;
        Ok(KeyPair {
            algorithm,
            private_pem: pem.to_owned(),
            public_pem,
            public_jwk,
        })
    }

    /// `{"keys":[<public JWK>]}`.
    pub fn jwks(&self) -> serde_json::Value {
        serde_json::json!({ "keys": [self.public_jwk] })
    }
}

/// A new Standard Webhooks symmetric secret, `whsec_` + base64 of 24 random bytes.
pub fn generate_whsec() -> Result<String, SignError> {
    let mut bytes = [0u8; 24];
    openssl::rand::rand_bytes(&mut bytes).map_err(fail)?;
    Ok(format!("whsec_{}", Encoding::Base64.encode(&bytes)))
}

/// A new Standard Webhooks Ed25519 signing key, `whsk_` + base64 of the 32-byte seed.
pub fn generate_whsk() -> Result<String, SignError> {
    let mut seed = [0u8; 32];
    openssl::rand::rand_bytes(&mut seed).map_err(fail)?;
    Ok(format!("whsk_{}", Encoding::Base64.encode(&seed)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_round_trip_through_their_pem() {
        for algorithm in [
            Algorithm::RS256,
            Algorithm::PS256,
            Algorithm::ES256,
            Algorithm::ES384,
            Algorithm::ES512,
            Algorithm::EdDSA,
        ] {
            let pair = KeyPair::generate(algorithm, "k1").unwrap();
            assert_eq!(pair.public_jwk["kid"], "k1");
            assert_eq!(pair.public_jwk["alg"], algorithm.name());
            let again =
                KeyPair::from_private_pem(&pair.private_pem, Some(algorithm), "k1").unwrap();
            assert_eq!(again.public_pem, pair.public_pem);
            crate::KeySet::from_jwks(pair.jwks().to_string().as_bytes()).unwrap();
        }
        let es = KeyPair::generate(Algorithm::ES512, "k").unwrap();
        assert!(KeyPair::from_private_pem(&es.private_pem, Some(Algorithm::RS256), "k").is_err());
        assert!(KeyPair::generate(Algorithm::HS256, "k").is_err());
        assert!(generate_whsec().unwrap().starts_with("whsec_"));
        let whsk = generate_whsk().unwrap();
        assert!(crate::standard_webhooks_public_key(&whsk)
            .unwrap()
            .starts_with("whpk_"));
    }
}
