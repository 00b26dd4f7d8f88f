//! `kind = "jwt"`: a JSON Web Token in a header, verified with configured keys and
//! configured algorithms only.

use serde::Deserialize;
use time::OffsetDateTime;

use super::jose::{read_header, verify_with, Algorithm, ClaimConfig, ClaimRules, KeyEntry};
use super::{secret_list, OneOrMany, SignInput, Verified};
use crate::error::{ErrorKind, SignError, SpecError, VerifyError};
use crate::template::Context;

/// Configuration of a JWT check.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtConfig {
    /// The header carrying the token; default `Authorization`.
    pub header: Option<String>,
    /// What precedes the token in the header, matched case-insensitively; default
    /// `Bearer `. `""` reads the whole value as the token (QI Tech).
    pub prefix: Option<String>,
    /// Accepted algorithms, e.g. `["ES512"]`. The token's `alg` must be one of them.
    pub algorithms: OneOrMany<String>,
    /// Shared secret for HS* (or `secrets` for rotation).
    pub secret: Option<String>,
    /// Several shared secrets for HS*.
    #[serde(default)]
    pub secrets: Vec<String>,
    /// Public key(s) in PEM for RS*/PS*/ES*/EdDSA.
    pub public_key: Option<OneOrMany<String>>,
    /// One key as a JWK (JSON text).
    pub jwk: Option<String>,
    /// A JWK Set (JSON text); keys are chosen by `kid`.
    pub jwks: Option<String>,
    /// Required `iss`.
    pub issuer: Option<String>,
    /// Accepted audiences; `aud` must contain one.
    pub audience: Option<OneOrMany<String>>,
    /// Required `sub`.
    pub subject: Option<String>,
    /// Required claims, leeway, timestamp claim and claim bindings.
    #[serde(flatten)]
    pub(crate) claims: ClaimConfig,
}

/// A built JWT check.
#[derive(Debug)]
pub struct JwtCheck {
    header: String,
    prefix: String,
    algorithms: Vec<Algorithm>,
    keys: Vec<KeyEntry>,
    secrets: Vec<crate::secret::Secret>,
    rules: ClaimRules,
}

impl JwtCheck {
    /// Validates the configuration and loads the keys.
    pub fn build(config: JwtConfig) -> Result<Self, SpecError> {
        let algorithms: Vec<Algorithm> = config
            .algorithms
            .into_vec()
            .iter()
            .map(|a| Algorithm::parse("algorithms", a))
            .collect::<Result<_, _>>()?;
        if algorithms.is_empty() {
            return Err(SpecError::new(
                "algorithms",
                "name at least one algorithm, e.g. [\"HS256\"]",
            ));
        }
        let has_secret = config.secret.is_some() || !config.secrets.is_empty();
        let secrets = if has_secret {
            secret_list(config.secret, config.secrets)?
        } else {
            Vec::new()
        };
        let pems = config
            .public_key
            .map(OneOrMany::into_vec)
            .unwrap_or_default();
        let mut jwks = Vec::new();
        if let Some(text) = &config.jwk {
            jwks.push(
                josekit::jwk::Jwk::from_bytes(text.as_bytes())
                    .map_err(|e| SpecError::new("jwk", format!("not a JWK: {e}")))?,
            );
        }
        if let Some(text) = &config.jwks {
            let set = josekit::jwk::JwkSet::from_bytes(text.as_bytes())
                .map_err(|e| SpecError::new("jwks", format!("not a JWK Set: {e}")))?;
            jwks.extend(set.keys().into_iter().cloned());
        }
        let mut keys = Vec::new();
        for &algorithm in &algorithms {
            let before = keys.len();
            if algorithm.is_hmac() {
                if !pems.is_empty() {
                    return Err(SpecError::new(
                        "algorithms",
                        format!("{} is a shared-secret algorithm and must not be used with `public_key` (algorithm confusion)", algorithm.name()),
                    ));
                }
                for secret in &secrets {
                    let text = String::from_utf8_lossy(secret.expose()).into_owned();
                    keys.push(KeyEntry {
                        algorithm,
                        kid: None,
                        verifier: algorithm
                            .verifier_from_pem(&text)
                            .map_err(|e| SpecError::new("secret", e.to_string()))?,
                    });
                }
            } else {
                for (i, pem) in pems.iter().enumerate() {
                    let verifier = algorithm.verifier_from_pem(pem).map_err(|e| {
                        SpecError::new(
                            "public_key",
                            format!(
                                "key #{i} is not a {} public key in PEM: {}",
                                algorithm.name(),
                                e.to_string().lines().next().unwrap_or("")
                            ),
                        )
                    })?;
                    keys.push(KeyEntry {
                        algorithm,
                        kid: None,
                        verifier,
                    });
                }
            }
            for jwk in jwks.iter().filter(|j| {
                algorithm.fits_jwk(j) && j.algorithm().is_none_or(|a| a == algorithm.name())
            }) {
                let verifier = algorithm
                    .verifier_from_jwk(jwk)
                    .map_err(|e| SpecError::new("jwks", format!("key {:?}: {e}", jwk.key_id())))?;
                keys.push(KeyEntry {
                    algorithm,
                    kid: jwk.key_id().map(str::to_owned),
                    verifier,
                });
            }
            if keys.len() == before {
                let wanted = if algorithm.is_hmac() {
                    "`secret`"
                } else {
                    "`public_key`, `jwk` or `jwks`"
                };
                return Err(SpecError::new(
                    "algorithms",
                    format!("no configured key fits {}: set {wanted}", algorithm.name()),
                ));
            }
        }
        let mut rules = ClaimRules::build(config.claims, "60s")?;
        rules.issuer = config.issuer;
        rules.audiences = config.audience.map(OneOrMany::into_vec);
        rules.subject = config.subject;
        Ok(JwtCheck {
            header: config.header.unwrap_or_else(|| "Authorization".into()),
            prefix: config.prefix.unwrap_or_else(|| "Bearer ".into()),
            algorithms,
            keys,
            secrets,
            rules,
        })
    }

    /// Whether a token may need a public-key verification (an algorithm that is not HMAC):
    /// about a millisecond of CPU for ES512, not microseconds.
    pub fn is_asymmetric(&self) -> bool {
        self.algorithms.iter().any(|a| !a.is_hmac())
    }

    /// The header carrying the token.
    pub fn header(&self) -> &str {
        &self.header
    }

    pub(crate) fn verify(
        &self,
        ctx: &Context<'_, '_>,
        now: OffsetDateTime,
    ) -> Result<Verified, VerifyError> {
        let token = bearer_token(ctx, &self.header, &self.prefix)?;
        let header = read_header(token, &self.algorithms)?;
        let candidates: Vec<&KeyEntry> = self
            .keys
            .iter()
            .filter(|k| k.algorithm == header.algorithm)
            .filter(|k| match (&header.kid, &k.kid) {
                (Some(want), Some(have)) => want == have,
                _ => true,
            })
            .collect();
        if candidates.is_empty() {
            return Err(VerifyError::new(
                ErrorKind::UnknownKey,
                format!(
                    "no configured key has kid {:?}",
                    header.kid.unwrap_or_default()
                ),
            ));
        }
        let (claims, kid) = verify_with(token, candidates.into_iter())?;
        self.rules.check(&claims, ctx, now, None)?;
        let mut verified = Verified::new("jwt").with_claims(claims);
        verified.key_id = kid;
        Ok(verified)
    }

    pub(crate) fn sign(&self, input: &mut SignInput<'_, '_>) -> Result<(), SignError> {
        let algorithm = self.algorithms[0];
        let key: Vec<u8> = if algorithm.is_hmac() {
            input.secret_or(&self.secrets)?.expose().to_vec()
        } else {
            input.private_key()?.as_bytes().to_vec()
        };
        let ctx = Context::new(input.request);
        let claims = self
            .rules
            .sign_claims(&ctx, input.now, input.keys.subject.as_deref())?;
        let token =
            super::jose::sign_claims(algorithm, &key, input.keys.key_id.as_deref(), claims)?;
        input
            .request
            .headers
            .set(&self.header, format!("{}{token}", self.prefix));
        Ok(())
    }
}

/// Reads the token after `prefix` in `header`.
pub(crate) fn bearer_token<'c>(
    ctx: &'c Context<'_, '_>,
    header: &str,
    prefix: &str,
) -> Result<&'c str, VerifyError> {
    let value = ctx.request.headers.get(header).ok_or_else(|| {
        VerifyError::new(
            ErrorKind::MissingCredential,
            format!("header `{header}` is missing"),
        )
    })?;
    let token = if prefix.is_empty() {
        value
    } else if value.len() >= prefix.len()
        && value.is_char_boundary(prefix.len())
        && value[..prefix.len()].eq_ignore_ascii_case(prefix)
    {
        &value[prefix.len()..]
    } else {
        return Err(VerifyError::new(
            ErrorKind::Malformed,
            format!(
                "header `{header}` does not start with `{}`",
                prefix.trim_end()
            ),
        ));
    };
    let token = token.trim();
    if token.is_empty() {
        return Err(VerifyError::new(
            ErrorKind::MissingCredential,
            format!("header `{header}` carries no token"),
        ));
    }
    Ok(token)
}
