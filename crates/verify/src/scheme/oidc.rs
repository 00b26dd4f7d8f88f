//! `kind = "oidc"`: ID tokens from trusted issuers, verified against the issuer's
//! published keys.
//!
//! The library never fetches: it asks a [`KeyLookup`] for the key set of an issuer that
//! is already trusted. When none is loaded, or the token's `kid` is not in it, the error
//! ([`ErrorKind::KeysNotLoaded`], [`ErrorKind::UnknownKey`]) names the issuer so the
//! caller can fetch (discovery → `jwks_uri`) and verify again.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use time::OffsetDateTime;

use super::jose::{
    peek_claims, read_header, verify_with, Algorithm, ClaimConfig, ClaimRules, KeyEntry,
};
use super::jwt::bearer_token;
use super::{OneOrMany, SignInput, Verified};
use crate::error::{ErrorKind, SignError, SpecError, VerifyError};
use crate::template::Context;
use crate::timestamp::parse_duration;

/// The verification keys of one issuer, built once from its JWK Set.
#[derive(Debug, Default)]
pub struct KeySet {
    entries: Vec<KeyEntry>,
    skipped: usize,
}

impl KeySet {
    /// Builds verifiers from a JWK Set document (`{"keys":[…]}`). Keys for encryption
    /// (`use = "enc"`) and of unsupported types are skipped and counted.
    pub fn from_jwks(json: &[u8]) -> Result<KeySet, KeySetError> {
        let set = josekit::jwk::JwkSet::from_bytes(json).map_err(|e| {
            KeySetError(format!(
                "not a JWK Set: {}",
                e.to_string().lines().next().unwrap_or("")
            ))
        })?;
        let mut keys = KeySet::default();
        for jwk in set.keys() {
            if jwk.key_use() == Some("enc") {
                keys.skipped += 1;
                continue;
            }
            let mut usable = false;
            for algorithm in Algorithm::ALL.into_iter().filter(|a| !a.is_hmac()) {
                if !algorithm.fits_jwk(jwk)
                    || jwk.algorithm().is_some_and(|a| a != algorithm.name())
                {
                    continue;
                }
                if let Ok(verifier) = algorithm.verifier_from_jwk(jwk) {
                    keys.entries.push(KeyEntry {
                        algorithm,
                        kid: jwk.key_id().map(str::to_owned),
                        verifier,
                    });
                    usable = true;
                }
            }
            if !usable {
                keys.skipped += 1;
            }
        }
        if keys.entries.is_empty() {
            return Err(KeySetError(format!(
                "no usable signature key among {} key(s)",
                keys.skipped
            )));
        }
        Ok(keys)
    }

    /// The distinct `kid`s in the set.
    pub fn key_ids(&self) -> Vec<&str> {
        let mut ids: Vec<&str> = self
            .entries
            .iter()
            .filter_map(|e| e.kid.as_deref())
            .collect();
        ids.dedup();
        ids
    }

    /// How many keys of the document were not usable for signatures.
    pub fn skipped(&self) -> usize {
        self.skipped
    }

    /// Whether a key with `kid` is present.
    pub fn has_kid(&self, kid: &str) -> bool {
        self.entries.iter().any(|e| e.kid.as_deref() == Some(kid))
    }
}

/// Why a JWK Set could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct KeySetError(String);

/// Where verification finds an issuer's keys. Implemented by the server's cache; a plain
/// map serves tests and offline verification.
pub trait KeyLookup {
    /// The current key set of `issuer`, if one is loaded.
    fn keys(&self, issuer: &str) -> Option<Arc<KeySet>>;

    /// The signing certificate at `url` (AWS SNS), if it is loaded.
    fn certificate(&self, _url: &str) -> Option<Arc<super::aws_sns::SigningCertificate>> {
        None
    }

    /// The secret a handshake handed over and the gateway keeps in file `path` (Asana's
    /// `X-Hook-Secret`), if there is one yet.
    fn captured_secret(&self, _path: &str) -> Option<crate::secret::Secret> {
        None
    }
}

impl KeyLookup for HashMap<String, Arc<KeySet>> {
    fn keys(&self, issuer: &str) -> Option<Arc<KeySet>> {
        self.get(issuer).cloned()
    }
}

/// A lookup that has no keys: for sources without OIDC.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoKeys;

impl KeyLookup for NoKeys {
    fn keys(&self, _issuer: &str) -> Option<Arc<KeySet>> {
        None
    }
}

/// Configuration of an OIDC check.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    /// The header carrying the token; default `Authorization`.
    pub header: Option<String>,
    /// What precedes the token; default `Bearer `.
    pub prefix: Option<String>,
    /// Trusted issuers → accepted audiences (`[]`: any audience, claim still required).
    pub issuers: BTreeMap<String, Vec<String>>,
    /// Accepted algorithms; default every asymmetric one (HS* is never accepted here).
    pub algorithms: Option<OneOrMany<String>>,
    /// Allow `http://` issuers on loopback hosts, for tests.
    #[serde(default)]
    pub allow_http_issuers: bool,
    /// How long fetched keys are kept; default `1h` (`Cache-Control: max-age` wins when shorter).
    pub jwks_cache: Option<String>,
    /// Required `sub`.
    pub subject: Option<String>,
    #[serde(flatten)]
    pub(crate) claims: ClaimConfig,
}

/// A built OIDC check.
#[derive(Debug)]
pub struct OidcCheck {
    header: String,
    prefix: String,
    issuers: BTreeMap<String, Vec<String>>,
    algorithms: Vec<Algorithm>,
    allow_http: bool,
    jwks_cache: Duration,
    rules: ClaimRules,
}

impl OidcCheck {
    /// Validates the configuration.
    pub fn build(config: OidcConfig) -> Result<Self, SpecError> {
        if config.issuers.is_empty() {
            return Err(SpecError::new(
                "issuers",
                "name at least one trusted issuer",
            ));
        }
        for issuer in config.issuers.keys() {
            check_issuer_url(issuer, config.allow_http_issuers)
                .map_err(|m| SpecError::new(format!("issuers.\"{issuer}\""), m))?;
        }
        let algorithms: Vec<Algorithm> = match config.algorithms {
            Some(list) => list
                .into_vec()
                .iter()
                .map(|a| Algorithm::parse("algorithms", a))
                .collect::<Result<_, _>>()?,
            None => Algorithm::ALL
                .into_iter()
                .filter(|a| !a.is_hmac())
                .collect(),
        };
        if let Some(hs) = algorithms.iter().find(|a| a.is_hmac()) {
            return Err(SpecError::new(
                "algorithms",
                format!("{} needs a shared secret; OIDC keys are public", hs.name()),
            ));
        }
        let mut claims = config.claims;
        for claim in ["iss", "aud", "exp"] {
            if !claims.required.iter().any(|c| c == claim) {
                claims.required.push(claim.to_owned());
            }
        }
        let mut rules = ClaimRules::build(claims, "60s")?;
        rules.subject = config.subject;
        Ok(OidcCheck {
            header: config.header.unwrap_or_else(|| "Authorization".into()),
            prefix: config.prefix.unwrap_or_else(|| "Bearer ".into()),
            issuers: config.issuers,
            algorithms,
            allow_http: config.allow_http_issuers,
            jwks_cache: parse_duration("jwks_cache", config.jwks_cache.as_deref().unwrap_or("1h"))?,
            rules,
        })
    }

    /// The trusted issuers: the only ones whose keys may ever be fetched.
    pub fn issuers(&self) -> impl Iterator<Item = &str> {
        self.issuers.keys().map(String::as_str)
    }

    /// The header carrying the token.
    pub fn header(&self) -> &str {
        &self.header
    }

    /// Whether `http://` issuers are allowed (loopback tests).
    pub fn allow_http(&self) -> bool {
        self.allow_http
    }

    /// How long fetched keys are kept at most.
    pub fn jwks_cache(&self) -> Duration {
        self.jwks_cache
    }

    pub(crate) fn verify(
        &self,
        ctx: &Context<'_, '_>,
        now: OffsetDateTime,
        keys: &dyn KeyLookup,
    ) -> Result<Verified, VerifyError> {
        let token = bearer_token(ctx, &self.header, &self.prefix)?;
        let header = read_header(token, &self.algorithms)?;
        let unverified = peek_claims(token)?;
        let issuer = unverified
            .get("iss")
            .and_then(|v| v.as_str())
            .ok_or_else(|| {
                VerifyError::new(ErrorKind::MissingClaim, "claim `iss` is required")
                    .with_claim("iss")
            })?;
        let audiences = self.issuers.get(issuer).ok_or_else(|| {
            VerifyError::new(
                ErrorKind::UntrustedIssuer,
                format!(
                    "issuer `{}` is not trusted",
                    issuer.chars().take(200).collect::<String>()
                ),
            )
        })?;
        let set = keys.keys(issuer).ok_or_else(|| {
            VerifyError::new(
                ErrorKind::KeysNotLoaded,
                format!("no keys loaded for `{issuer}`"),
            )
            .with_issuer(issuer)
        })?;
        let candidates: Vec<&KeyEntry> = set
            .entries
            .iter()
            .filter(|k| k.algorithm == header.algorithm)
            .filter(|k| header.kid.is_none() || k.kid == header.kid)
            .collect();
        if candidates.is_empty() {
            return Err(VerifyError::new(
                ErrorKind::UnknownKey,
                format!(
                    "`{issuer}` has no {} key with kid {:?}",
                    header.algorithm.name(),
                    header.kid.unwrap_or_default()
                ),
            )
            .with_issuer(issuer));
        }
        let (claims, kid) = verify_with(token, candidates.into_iter())?;
        self.rules
            .check(&claims, ctx, now, Some((issuer, audiences)))?;
        let mut verified = Verified::new("oidc").with_claims(claims);
        verified.key_id = kid;
        verified.issuer = Some(issuer.to_owned());
        Ok(verified)
    }

    pub(crate) fn sign(&self, input: &mut SignInput<'_, '_>) -> Result<(), SignError> {
        let issuer = match &input.keys.issuer {
            Some(i) => i.clone(),
            None => self
                .issuers
                .keys()
                .next()
                .cloned()
                .ok_or_else(|| SignError("no issuer".into()))?,
        };
        let audience = input
            .keys
            .audience
            .clone()
            .or_else(|| self.issuers.get(&issuer).and_then(|a| a.first().cloned()))
            .unwrap_or_else(|| "hookgate".into());
        let algorithm = input.keys.algorithm.unwrap_or(Algorithm::RS256);
        let key = input.private_key()?.as_bytes().to_vec();
        let ctx = Context::new(input.request);
        let mut rules = self.rules.clone();
        rules.issuer = Some(issuer);
        rules.audiences = Some(vec![audience]);
        let mut claims = rules.sign_claims(&ctx, input.now, input.keys.subject.as_deref())?;
        claims
            .entry("iat")
            .or_insert_with(|| input.now.unix_timestamp().into());
        claims
            .entry("sub")
            .or_insert_with(|| "hookgate-sender".into());
        let token =
            super::jose::sign_claims(algorithm, &key, input.keys.key_id.as_deref(), claims)?;
        input
            .request
            .headers
            .set(&self.header, format!("{}{token}", self.prefix));
        Ok(())
    }
}

/// An issuer URL must be https; plain http only when allowed, and only on loopback.
pub fn check_issuer_url(issuer: &str, allow_http: bool) -> Result<(), String> {
    if let Some(rest) = issuer.strip_prefix("https://") {
        return if rest.is_empty() {
            Err("issuer URL has no host".into())
        } else {
            Ok(())
        };
    }
    if let Some(rest) = issuer.strip_prefix("http://") {
        if !allow_http {
            return Err(
                "issuer must be https (set allow_http_issuers = true only for loopback tests)"
                    .into(),
            );
        }
        let host = rest.split('/').next().unwrap_or("");
        let host = if host.starts_with('[') {
            host.split(']').next().unwrap_or("").trim_start_matches('[')
        } else {
            host.split(':').next().unwrap_or("")
        };
        let loopback = host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        return if loopback {
            Ok(())
        } else {
            Err(format!(
                "http issuers are allowed on loopback only, not `{host}`"
            ))
        };
    }
    Err("issuer must be an https:// URL".into())
}
