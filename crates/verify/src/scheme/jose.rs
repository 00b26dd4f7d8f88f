//! The one JOSE path: josekit parses and checks compact JWS for every algorithm; HMAC keys
//! are verified through our own `JwsVerifier` because josekit refuses keys shorter than the
//! digest, which real providers use (PyJWT accepts them).

use std::fmt;
use std::time::Duration;

use josekit::jwk::Jwk;
use josekit::jws::{self, JwsAlgorithm, JwsSigner, JwsVerifier};
use josekit::jwt::JwtPayload;
use josekit::JoseError;
use serde_json::{Map, Value};
use time::OffsetDateTime;

use crate::error::{ErrorKind, SignError, SpecError, VerifyError};
use crate::secret::{ct_eq, HashAlgorithm, Secret};
use crate::template::{Context, Template};
use crate::timestamp::{parse_duration, parse_timestamp, within, TimestampFormat};

/// A JWS algorithm hookgate accepts. Parsed from configuration only, never from a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum Algorithm {
    HS256,
    HS384,
    HS512,
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    ES256,
    ES384,
    ES512,
    EdDSA,
}

impl Algorithm {
    /// Every algorithm, in a stable order.
    pub const ALL: [Algorithm; 13] = [
        Algorithm::HS256,
        Algorithm::HS384,
        Algorithm::HS512,
        Algorithm::RS256,
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::PS256,
        Algorithm::PS384,
        Algorithm::PS512,
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::ES512,
        Algorithm::EdDSA,
    ];

    /// The `alg` name.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::HS256 => "HS256",
            Algorithm::HS384 => "HS384",
            Algorithm::HS512 => "HS512",
            Algorithm::RS256 => "RS256",
            Algorithm::RS384 => "RS384",
            Algorithm::RS512 => "RS512",
            Algorithm::PS256 => "PS256",
            Algorithm::PS384 => "PS384",
            Algorithm::PS512 => "PS512",
            Algorithm::ES256 => "ES256",
            Algorithm::ES384 => "ES384",
            Algorithm::ES512 => "ES512",
            Algorithm::EdDSA => "EdDSA",
        }
    }

    /// Parses a configured algorithm name.
    pub fn parse(key: &str, name: &str) -> Result<Algorithm, SpecError> {
        Algorithm::ALL
            .into_iter()
            .find(|a| a.name() == name)
            .ok_or_else(|| {
                let known: Vec<&str> = Algorithm::ALL.iter().map(|a| a.name()).collect();
                SpecError::new(
                    key,
                    format!("unknown algorithm `{name}`; known: {}", known.join(", ")),
                )
            })
    }

    /// Whether the key is a shared secret.
    pub fn is_hmac(self) -> bool {
        matches!(self, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512)
    }

    fn hmac_hash(self) -> Option<HashAlgorithm> {
        match self {
            Algorithm::HS256 => Some(HashAlgorithm::Sha256),
            Algorithm::HS384 => Some(HashAlgorithm::Sha384),
            Algorithm::HS512 => Some(HashAlgorithm::Sha512),
            _ => None,
        }
    }

    fn josekit(self) -> &'static dyn JwsAlgorithm {
        match self {
            Algorithm::HS256 => &jws::HS256,
            Algorithm::HS384 => &jws::HS384,
            Algorithm::HS512 => &jws::HS512,
            Algorithm::RS256 => &jws::RS256,
            Algorithm::RS384 => &jws::RS384,
            Algorithm::RS512 => &jws::RS512,
            Algorithm::PS256 => &jws::PS256,
            Algorithm::PS384 => &jws::PS384,
            Algorithm::PS512 => &jws::PS512,
            Algorithm::ES256 => &jws::ES256,
            Algorithm::ES384 => &jws::ES384,
            Algorithm::ES512 => &jws::ES512,
            Algorithm::EdDSA => &jws::EdDSA,
        }
    }

    /// Whether a JWK of this type/curve can carry a key for this algorithm.
    pub fn fits_jwk(self, jwk: &Jwk) -> bool {
        match (self, jwk.key_type(), jwk.curve()) {
            (a, "oct", _) => a.is_hmac(),
            (Algorithm::RS256 | Algorithm::RS384 | Algorithm::RS512, "RSA", _) => true,
            (Algorithm::PS256 | Algorithm::PS384 | Algorithm::PS512, "RSA", _) => true,
            (Algorithm::ES256, "EC", Some("P-256")) => true,
            (Algorithm::ES384, "EC", Some("P-384")) => true,
            (Algorithm::ES512, "EC", Some("P-521")) => true,
            (Algorithm::EdDSA, "OKP", Some("Ed25519")) => true,
            _ => false,
        }
    }

    /// A verifier from a public key PEM (or, for HS*, a secret).
    pub(crate) fn verifier_from_pem(self, pem: &str) -> Result<Box<dyn JwsVerifier>, JoseError> {
        Ok(match self {
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => {
                Box::new(HmacKey::new(self, Secret::new(pem)))
            }
            Algorithm::RS256 => Box::new(jws::RS256.verifier_from_pem(pem)?),
            Algorithm::RS384 => Box::new(jws::RS384.verifier_from_pem(pem)?),
            Algorithm::RS512 => Box::new(jws::RS512.verifier_from_pem(pem)?),
            Algorithm::PS256 | Algorithm::PS384 | Algorithm::PS512 => {
                self.verifier_from_jwk(&rsa_pem_to_jwk(pem.as_bytes(), false)?)?
            }
            Algorithm::ES256 => Box::new(jws::ES256.verifier_from_pem(pem)?),
            Algorithm::ES384 => Box::new(jws::ES384.verifier_from_pem(pem)?),
            Algorithm::ES512 => Box::new(jws::ES512.verifier_from_pem(pem)?),
            Algorithm::EdDSA => Box::new(jws::EdDSA.verifier_from_pem(pem)?),
        })
    }

    /// A verifier from a JWK that [`fits_jwk`](Self::fits_jwk).
    pub(crate) fn verifier_from_jwk(self, jwk: &Jwk) -> Result<Box<dyn JwsVerifier>, JoseError> {
        Ok(match self {
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => {
                let k = jwk
                    .parameter("k")
                    .and_then(Value::as_str)
                    .and_then(|k| crate::secret::Encoding::Base64url.decode(k))
                    .ok_or_else(|| JoseError::InvalidJwkFormat(anyhow_msg("oct JWK has no `k`")))?;
                Box::new(HmacKey::new(self, Secret::new(k)))
            }
            Algorithm::RS256 => Box::new(jws::RS256.verifier_from_jwk(jwk)?),
            Algorithm::RS384 => Box::new(jws::RS384.verifier_from_jwk(jwk)?),
            Algorithm::RS512 => Box::new(jws::RS512.verifier_from_jwk(jwk)?),
            Algorithm::PS256 => Box::new(jws::PS256.verifier_from_jwk(jwk)?),
            Algorithm::PS384 => Box::new(jws::PS384.verifier_from_jwk(jwk)?),
            Algorithm::PS512 => Box::new(jws::PS512.verifier_from_jwk(jwk)?),
            Algorithm::ES256 => Box::new(jws::ES256.verifier_from_jwk(jwk)?),
            Algorithm::ES384 => Box::new(jws::ES384.verifier_from_jwk(jwk)?),
            Algorithm::ES512 => Box::new(jws::ES512.verifier_from_jwk(jwk)?),
            Algorithm::EdDSA => Box::new(jws::EdDSA.verifier_from_jwk(jwk)?),
        })
    }

    /// A signer from a private key PEM (or, for HS*, a secret).
    pub(crate) fn signer(self, key: &[u8]) -> Result<Box<dyn JwsSigner>, JoseError> {
        Ok(match self {
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => {
                Box::new(HmacKey::new(self, Secret::new(key)))
            }
            Algorithm::RS256 => Box::new(jws::RS256.signer_from_pem(key)?),
            Algorithm::RS384 => Box::new(jws::RS384.signer_from_pem(key)?),
            Algorithm::RS512 => Box::new(jws::RS512.signer_from_pem(key)?),
            Algorithm::PS256 => Box::new(jws::PS256.signer_from_jwk(&rsa_pem_to_jwk(key, true)?)?),
            Algorithm::PS384 => Box::new(jws::PS384.signer_from_jwk(&rsa_pem_to_jwk(key, true)?)?),
            Algorithm::PS512 => Box::new(jws::PS512.signer_from_jwk(&rsa_pem_to_jwk(key, true)?)?),
            Algorithm::ES256 => Box::new(jws::ES256.signer_from_pem(key)?),
            Algorithm::ES384 => Box::new(jws::ES384.signer_from_pem(key)?),
            Algorithm::ES512 => Box::new(jws::ES512.signer_from_pem(key)?),
            Algorithm::EdDSA => Box::new(jws::EdDSA.signer_from_pem(key)?),
        })
    }
}

/// An RSA key in PEM as a JWK. josekit reads PS* keys from PEM only when they carry the
/// RSASSA-PSS OID, but providers publish ordinary `rsaEncryption` keys for PS256 (as every
/// JWKS does), so PS* keys go through a JWK built from the key's components.
fn rsa_pem_to_jwk(pem: &[u8], private: bool) -> Result<Jwk, JoseError> {
    let invalid =
        |e: openssl::error::ErrorStack| JoseError::InvalidKeyFormat(anyhow::Error::new(e));
    let b64 = |n: &openssl::bn::BigNumRef| crate::secret::Encoding::Base64url.encode(&n.to_vec());
    let mut map = serde_json::Map::new();
    map.insert("kty".into(), "RSA".into());
    if private {
        let rsa = openssl::pkey::PKey::private_key_from_pem(pem)
            .and_then(|k| k.rsa())
            .map_err(invalid)?;
        map.insert("n".into(), b64(rsa.n()).into());
        map.insert("e".into(), b64(rsa.e()).into());
        map.insert("d".into(), b64(rsa.d()).into());
        let parts = [
            ("p", rsa.p()),
            ("q", rsa.q()),
            ("dp", rsa.dmp1()),
            ("dq", rsa.dmq1()),
            ("qi", rsa.iqmp()),
        ];
        for (name, value) in parts {
            let value = value.ok_or_else(|| {
                JoseError::InvalidKeyFormat(anyhow_msg("RSA private key lacks CRT parameters"))
            })?;
            map.insert(name.into(), b64(value).into());
        }
    } else {
        let rsa = openssl::pkey::PKey::public_key_from_pem(pem)
            .and_then(|k| k.rsa())
            .map_err(invalid)?;
        map.insert("n".into(), b64(rsa.n()).into());
        map.insert("e".into(), b64(rsa.e()).into());
    }
    Jwk::from_map(map)
}

fn anyhow_msg(message: &'static str) -> anyhow::Error {
    anyhow::Error::msg(message)
}

/// An HMAC JWS key of any length, compared in constant time.
#[derive(Clone)]
struct HmacKey {
    algorithm: Algorithm,
    hash: HashAlgorithm,
    secret: Secret,
}

impl HmacKey {
    fn new(algorithm: Algorithm, secret: Secret) -> Self {
        let hash = algorithm
            .hmac_hash()
            .expect("HmacKey is built for HS* only");
        HmacKey {
            algorithm,
            hash,
            secret,
        }
    }
}

impl fmt::Debug for HmacKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HmacKey({})", self.algorithm.name())
    }
}

impl JwsVerifier for HmacKey {
    fn algorithm(&self) -> &dyn JwsAlgorithm {
        self.algorithm.josekit()
    }

    fn key_id(&self) -> Option<&str> {
        None
    }

    fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), JoseError> {
        if ct_eq(&self.hash.mac_of(self.secret.expose(), message), signature) {
            Ok(())
        } else {
            Err(JoseError::InvalidSignature(anyhow_msg("HMAC mismatch")))
        }
    }

    fn box_clone(&self) -> Box<dyn JwsVerifier> {
        Box::new(self.clone())
    }
}

impl JwsSigner for HmacKey {
    fn algorithm(&self) -> &dyn JwsAlgorithm {
        self.algorithm.josekit()
    }

    fn key_id(&self) -> Option<&str> {
        None
    }

    fn signature_len(&self) -> usize {
        self.hash.mac_of(b"", b"").len()
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, JoseError> {
        Ok(self.hash.mac_of(self.secret.expose(), message))
    }

    fn box_clone(&self) -> Box<dyn JwsSigner> {
        Box::new(self.clone())
    }
}

/// One verification key: the algorithm it is for, its `kid`, the verifier.
pub struct KeyEntry {
    pub(crate) algorithm: Algorithm,
    pub(crate) kid: Option<String>,
    pub(crate) verifier: Box<dyn JwsVerifier>,
}

impl fmt::Debug for KeyEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyEntry({}, kid={:?})", self.algorithm.name(), self.kid)
    }
}

/// What a token's protected header says, read before any key is chosen.
pub(crate) struct TokenHeader {
    pub algorithm: Algorithm,
    pub kid: Option<String>,
}

/// Reads `alg` and `kid`; refuses an `alg` that is not in `accepted` (so `none` and
/// HS/RS confusion never reach a verifier).
pub(crate) fn read_header(token: &str, accepted: &[Algorithm]) -> Result<TokenHeader, VerifyError> {
    let header = josekit::jwt::decode_header(token).map_err(|_| {
        VerifyError::new(
            ErrorKind::Malformed,
            "token is not a compact JWS (header.payload.signature)",
        )
    })?;
    let alg = header
        .claim("alg")
        .and_then(Value::as_str)
        .ok_or_else(|| VerifyError::new(ErrorKind::Malformed, "token header has no `alg`"))?;
    let algorithm = accepted
        .iter()
        .copied()
        .find(|a| a.name() == alg)
        .ok_or_else(|| {
            let names: Vec<&str> = accepted.iter().map(|a| a.name()).collect();
            VerifyError::new(
                ErrorKind::UnsupportedAlgorithm,
                format!(
                    "token algorithm `{}` is not accepted (configured: {})",
                    alg.chars().take(16).collect::<String>(),
                    names.join(", ")
                ),
            )
        })?;
    let kid = header
        .claim("kid")
        .and_then(Value::as_str)
        .map(str::to_owned);
    Ok(TokenHeader { algorithm, kid })
}

/// The claims of a token whose signature is not checked yet: only for choosing an issuer's
/// keys, never trusted.
pub(crate) fn peek_claims(token: &str) -> Result<Map<String, Value>, VerifyError> {
    let malformed =
        || VerifyError::new(ErrorKind::Malformed, "token payload is not base64url JSON");
    let payload = token.split('.').nth(1).ok_or_else(malformed)?;
    let bytes = crate::secret::Encoding::Base64url
        .decode(payload)
        .ok_or_else(malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| malformed())
}

/// Verifies `token` with the first of `keys` whose signature matches; returns its claims
/// and the matching key's `kid`.
pub(crate) fn verify_with<'k>(
    token: &str,
    keys: impl Iterator<Item = &'k KeyEntry>,
) -> Result<(Map<String, Value>, Option<String>), VerifyError> {
    let mut tried = 0;
    for key in keys {
        tried += 1;
        match josekit::jwt::decode_with_verifier(token, key.verifier.as_ref()) {
            Ok((payload, _)) => return Ok((payload.claims_set().clone(), key.kid.clone())),
            Err(JoseError::InvalidSignature(_)) => continue,
            Err(JoseError::InvalidJwtFormat(e))
            | Err(JoseError::InvalidJwsFormat(e))
            | Err(JoseError::InvalidJson(e)) => {
                return Err(VerifyError::new(
                    ErrorKind::Malformed,
                    format!("token is malformed: {}", first_line(&e)),
                ))
            }
            Err(e) => {
                return Err(VerifyError::new(
                    ErrorKind::Malformed,
                    format!("token is unusable: {}", first_line(&e)),
                ))
            }
        }
    }
    Err(VerifyError::new(
        ErrorKind::BadSignature,
        format!("token signature matches none of the {tried} candidate key(s)"),
    ))
}

fn first_line(e: &dyn fmt::Display) -> String {
    e.to_string()
        .lines()
        .next()
        .unwrap_or("")
        .chars()
        .take(160)
        .collect()
}

/// Signs `claims` into a compact JWT.
pub(crate) fn sign_claims(
    algorithm: Algorithm,
    key: &[u8],
    kid: Option<&str>,
    claims: Map<String, Value>,
) -> Result<String, SignError> {
    let signer = algorithm
        .signer(key)
        .map_err(|e| SignError(format!("{} key: {}", algorithm.name(), first_line(&e))))?;
    let mut header = josekit::jws::JwsHeader::new();
    header.set_token_type("JWT");
    if let Some(kid) = kid {
        header.set_key_id(kid);
    }
    let payload = JwtPayload::from_map(claims).map_err(|e| SignError(first_line(&e)))?;
    josekit::jwt::encode_with_signer(&payload, &header, signer.as_ref())
        .map_err(|e| SignError(first_line(&e)))
}

/// Claim rules shared by `jwt` and `oidc`: required claims, time claims with leeway,
/// issuer/audience/subject, bindings to the request, a timestamp claim with a window.
#[derive(Debug, Clone, Default)]
pub(crate) struct ClaimRules {
    pub required: Vec<String>,
    pub leeway: Duration,
    pub issuer: Option<String>,
    /// `None`: not checked. `Some([])`: any audience, but the claim must be present.
    pub audiences: Option<Vec<String>>,
    pub subject: Option<String>,
    pub bindings: Vec<(String, Template)>,
    pub timestamp: Option<(String, TimestampFormat, Duration)>,
}

/// The configuration keys behind [`ClaimRules`].
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ClaimConfig {
    #[serde(default)]
    pub required: Vec<String>,
    pub leeway: Option<String>,
    pub timestamp_claim: Option<String>,
    #[serde(default)]
    pub timestamp_format: TimestampFormat,
    pub tolerance: Option<String>,
    #[serde(default)]
    pub claims: std::collections::BTreeMap<String, String>,
}

impl ClaimRules {
    pub(crate) fn build(
        config: ClaimConfig,
        default_leeway: &str,
    ) -> Result<ClaimRules, SpecError> {
        let leeway = parse_duration("leeway", config.leeway.as_deref().unwrap_or(default_leeway))?;
        let tolerance = parse_duration("tolerance", config.tolerance.as_deref().unwrap_or("5m"))?;
        let mut bindings = Vec::new();
        for (claim, text) in config.claims {
            bindings.push((
                claim.clone(),
                Template::parse(&format!("claims.{claim}"), &text)?,
            ));
        }
        Ok(ClaimRules {
            required: config.required,
            leeway,
            timestamp: config
                .timestamp_claim
                .map(|c| (c, config.timestamp_format, tolerance)),
            bindings,
            ..ClaimRules::default()
        })
    }

    /// Checks `claims`. `trusted` — an OIDC issuer already found in the trusted map and its
    /// audiences — takes the place of the configured issuer and audiences.
    pub(crate) fn check(
        &self,
        claims: &Map<String, Value>,
        ctx: &Context<'_, '_>,
        now: OffsetDateTime,
        trusted: Option<(&str, &[String])>,
    ) -> Result<(), VerifyError> {
        let issuer = trusted.map(|(i, _)| i).or(self.issuer.as_deref());
        let audiences = trusted.map(|(_, a)| a).or(self.audiences.as_deref());
        for name in &self.required {
            if claims.get(name).is_none_or(Value::is_null) {
                return Err(VerifyError::new(
                    ErrorKind::MissingClaim,
                    format!("claim `{name}` is required"),
                )
                .with_claim(name));
            }
        }
        let leeway = self.leeway.as_secs() as i64;
        let now_secs = now.unix_timestamp();
        if let Some(exp) = numeric_date(claims, "exp")? {
            if now_secs > exp + leeway {
                return Err(VerifyError::new(
                    ErrorKind::Expired,
                    format!(
                        "token expired at {} (now {now_secs}, leeway {leeway}s)",
                        exp
                    ),
                )
                .with_claim("exp"));
            }
        }
        if let Some(nbf) = numeric_date(claims, "nbf")? {
            if now_secs < nbf - leeway {
                return Err(VerifyError::new(
                    ErrorKind::NotYetValid,
                    format!("token not valid before {nbf} (now {now_secs}, leeway {leeway}s)"),
                )
                .with_claim("nbf"));
            }
        }
        if let Some(iat) = numeric_date(claims, "iat")? {
            if now_secs < iat - leeway {
                return Err(VerifyError::new(
                    ErrorKind::NotYetValid,
                    format!(
                        "token issued in the future at {iat} (now {now_secs}, leeway {leeway}s)"
                    ),
                )
                .with_claim("iat"));
            }
        }
        if let Some(issuer) = issuer {
            match claims.get("iss").and_then(Value::as_str) {
                Some(iss) if iss == issuer => {}
                Some(iss) => {
                    return Err(VerifyError::new(
                        ErrorKind::IssuerMismatch,
                        format!("`iss` is `{iss}`, expected `{issuer}`"),
                    )
                    .with_claim("iss"))
                }
                None => {
                    return Err(VerifyError::new(
                        ErrorKind::MissingClaim,
                        "claim `iss` is required",
                    )
                    .with_claim("iss"))
                }
            }
        }
        if let Some(accepted) = audiences {
            let audiences: Vec<&str> = match claims.get("aud") {
                Some(Value::String(a)) => vec![a.as_str()],
                Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
                _ => Vec::new(),
            };
            if audiences.is_empty() {
                return Err(
                    VerifyError::new(ErrorKind::MissingClaim, "claim `aud` is required")
                        .with_claim("aud"),
                );
            }
            if !accepted.is_empty() && !audiences.iter().any(|a| accepted.iter().any(|b| b == a)) {
                return Err(VerifyError::new(
                    ErrorKind::AudienceMismatch,
                    format!("`aud` {audiences:?} contains none of {accepted:?}"),
                )
                .with_claim("aud"));
            }
        }
        if let Some(subject) = &self.subject {
            match claims.get("sub").and_then(Value::as_str) {
                Some(sub) if sub == subject => {}
                Some(sub) => {
                    return Err(VerifyError::new(
                        ErrorKind::SubjectMismatch,
                        format!("`sub` is `{sub}`, expected `{subject}`"),
                    )
                    .with_claim("sub"))
                }
                None => {
                    return Err(VerifyError::new(
                        ErrorKind::MissingClaim,
                        "claim `sub` is required",
                    )
                    .with_claim("sub"))
                }
            }
        }
        if let Some((claim, format, tolerance)) = &self.timestamp {
            let text = claim_text(claims, claim).ok_or_else(|| {
                VerifyError::new(
                    ErrorKind::MissingClaim,
                    format!("claim `{claim}` is required"),
                )
                .with_claim(claim)
            })?;
            let at = parse_timestamp(&text, *format).map_err(|e| {
                VerifyError::new(ErrorKind::Malformed, format!("claim `{claim}`: {e}"))
                    .with_claim(claim)
            })?;
            if !within(at, now, *tolerance) {
                return Err(VerifyError::new(
                    ErrorKind::StaleTimestamp,
                    format!(
                        "claim `{claim}` {} is more than {} from now ({})",
                        crate::timestamp::display(at),
                        humantime::format_duration(*tolerance),
                        crate::timestamp::display(now)
                    ),
                )
                .with_claim(claim));
            }
        }
        for (claim, template) in &self.bindings {
            let expected = template.render_string(ctx)?;
            let actual = claim_text(claims, claim).ok_or_else(|| {
                VerifyError::new(
                    ErrorKind::MissingClaim,
                    format!("claim `{claim}` is required"),
                )
                .with_claim(claim)
            })?;
            if actual != expected {
                let kind = if template.uses_body_digest() {
                    ErrorKind::BodyHashMismatch
                } else {
                    ErrorKind::ClaimMismatch
                };
                return Err(VerifyError::new(
                    kind,
                    format!("claim `{claim}` is `{actual}`, the request gives `{expected}`"),
                )
                .with_claim(claim));
            }
        }
        Ok(())
    }

    /// The claims a sender puts in a token for this request.
    pub(crate) fn sign_claims(
        &self,
        ctx: &Context<'_, '_>,
        now: OffsetDateTime,
        subject: Option<&str>,
    ) -> Result<Map<String, Value>, SignError> {
        let mut claims = Map::new();
        let now_secs = now.unix_timestamp();
        let time_claims = ["iat", "nbf", "exp"];
        for name in &self.required {
            if let Some(i) = time_claims.iter().position(|c| c == name) {
                claims.insert(
                    name.clone(),
                    Value::from(now_secs + if i == 2 { 300 } else { 0 }),
                );
            }
        }
        if !claims.contains_key("exp") {
            claims.insert("exp".into(), Value::from(now_secs + 300));
        }
        if let Some(issuer) = &self.issuer {
            claims.insert("iss".into(), Value::from(issuer.clone()));
        }
        if let Some(audience) = self.audiences.as_ref().and_then(|a| a.first()) {
            claims.insert("aud".into(), Value::from(audience.clone()));
        }
        if let Some(sub) = self.subject.as_deref().or(subject) {
            claims.insert("sub".into(), Value::from(sub));
        }
        if let Some((claim, format, _)) = &self.timestamp {
            claims.insert(claim.clone(), Value::from(format.render(now)));
        }
        for (claim, template) in &self.bindings {
            let value = template
                .render_string(ctx)
                .map_err(|e| SignError(e.to_string()))?;
            claims.insert(claim.clone(), Value::from(value));
        }
        Ok(claims)
    }
}

fn numeric_date(claims: &Map<String, Value>, name: &str) -> Result<Option<i64>, VerifyError> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().map(|f| f.floor() as i64))
            .map(Some)
            .ok_or_else(|| {
                VerifyError::new(
                    ErrorKind::Malformed,
                    format!("claim `{name}` is not a NumericDate"),
                )
                .with_claim(name)
            }),
        Some(_) => Err(VerifyError::new(
            ErrorKind::Malformed,
            format!("claim `{name}` is not a NumericDate"),
        )
        .with_claim(name)),
    }
}

fn claim_text(claims: &Map<String, Value>, name: &str) -> Option<String> {
    match claims.get(name)? {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}
