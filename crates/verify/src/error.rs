//! Why a request was refused, and why a configuration was refused.

use std::fmt;

/// The reason a request failed verification. Stable names: they appear in logs, in the
/// admin API's refusals, and in `hookgate verify` output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The credential (signature header, token, key) is absent.
    MissingCredential,
    /// The credential is present but cannot be parsed.
    Malformed,
    /// The credential names an algorithm this source does not accept.
    UnsupportedAlgorithm,
    /// The signature does not match with any configured key.
    BadSignature,
    /// The token's `exp` has passed (beyond the leeway).
    Expired,
    /// The token's `nbf` or `iat` lies in the future (beyond the leeway).
    NotYetValid,
    /// The signed timestamp is outside the tolerance window.
    StaleTimestamp,
    /// The token's issuer is not in the trusted-issuer map.
    UntrustedIssuer,
    /// No key set is loaded yet for a trusted issuer: the caller fetches and retries.
    KeysNotLoaded,
    /// No key of the issuer's key set has the token's `kid`.
    UnknownKey,
    /// A claim the source requires is absent.
    MissingClaim,
    /// `aud` does not contain an accepted audience.
    AudienceMismatch,
    /// `iss` differs from the configured issuer.
    IssuerMismatch,
    /// `sub` differs from the configured subject.
    SubjectMismatch,
    /// A bound claim differs from the value computed from the request.
    ClaimMismatch,
    /// The body's hash differs from the one the credential vouches for.
    BodyHashMismatch,
    /// The client address is not in the allowlist.
    IpDenied,
    /// The payload does not match the source's schema.
    InvalidPayload,
    /// A value needed from the request (event id, a templated field) is absent or unusable.
    MissingField,
}

impl ErrorKind {
    /// Every kind, each once (so metrics can create every series at start).
    pub const ALL: &'static [ErrorKind] = &[
        ErrorKind::MissingCredential,
        ErrorKind::Malformed,
        ErrorKind::UnsupportedAlgorithm,
        ErrorKind::BadSignature,
        ErrorKind::Expired,
        ErrorKind::NotYetValid,
        ErrorKind::StaleTimestamp,
        ErrorKind::UntrustedIssuer,
        ErrorKind::KeysNotLoaded,
        ErrorKind::UnknownKey,
        ErrorKind::MissingClaim,
        ErrorKind::AudienceMismatch,
        ErrorKind::IssuerMismatch,
        ErrorKind::SubjectMismatch,
        ErrorKind::ClaimMismatch,
        ErrorKind::BodyHashMismatch,
        ErrorKind::IpDenied,
        ErrorKind::InvalidPayload,
        ErrorKind::MissingField,
    ];

    /// Stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::MissingCredential => "missing_credential",
            ErrorKind::Malformed => "malformed",
            ErrorKind::UnsupportedAlgorithm => "unsupported_algorithm",
            ErrorKind::BadSignature => "bad_signature",
            ErrorKind::Expired => "expired",
            ErrorKind::NotYetValid => "not_yet_valid",
            ErrorKind::StaleTimestamp => "stale_timestamp",
            ErrorKind::UntrustedIssuer => "untrusted_issuer",
            ErrorKind::KeysNotLoaded => "keys_not_loaded",
            ErrorKind::UnknownKey => "unknown_key",
            ErrorKind::MissingClaim => "missing_claim",
            ErrorKind::AudienceMismatch => "audience_mismatch",
            ErrorKind::IssuerMismatch => "issuer_mismatch",
            ErrorKind::SubjectMismatch => "subject_mismatch",
            ErrorKind::ClaimMismatch => "claim_mismatch",
            ErrorKind::BodyHashMismatch => "body_hash_mismatch",
            ErrorKind::IpDenied => "ip_denied",
            ErrorKind::InvalidPayload => "invalid_payload",
            ErrorKind::MissingField => "missing_field",
        }
    }

    /// Whether the failure concerns authentication (as opposed to the payload).
    pub fn is_auth(self) -> bool {
        !matches!(self, ErrorKind::InvalidPayload | ErrorKind::MissingField)
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refused request: the kind says why, the detail says what exactly.
///
/// The detail is written for operators and never contains a secret, a signature or a
/// token; it may contain header names, claim names, claim values and times.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {detail}")]
pub struct VerifyError {
    kind: ErrorKind,
    detail: String,
    claim: Option<String>,
    issuer: Option<String>,
    certificate: Option<String>,
}

impl VerifyError {
    /// A new error of `kind` with an operator-facing `detail`.
    pub fn new(kind: ErrorKind, detail: impl Into<String>) -> Self {
        VerifyError {
            kind,
            detail: detail.into(),
            claim: None,
            issuer: None,
            certificate: None,
        }
    }

    /// Names the claim the error is about.
    pub fn with_claim(mut self, claim: impl Into<String>) -> Self {
        self.claim = Some(claim.into());
        self
    }

    /// Names the issuer the error is about (OIDC).
    pub fn with_issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// Names the signing certificate the error is about (AWS SNS).
    pub fn with_certificate(mut self, url: impl Into<String>) -> Self {
        self.certificate = Some(url.into());
        self
    }

    /// Why.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// What exactly, for operators.
    pub fn detail(&self) -> &str {
        &self.detail
    }

    /// The claim concerned, for claim errors.
    pub fn claim(&self) -> Option<&str> {
        self.claim.as_deref()
    }

    /// The issuer concerned, for OIDC key errors ([`ErrorKind::KeysNotLoaded`],
    /// [`ErrorKind::UnknownKey`]): the caller fetches that issuer's keys and retries.
    pub fn issuer(&self) -> Option<&str> {
        self.issuer.as_deref()
    }

    /// The signing certificate's URL when it is not loaded yet ([`ErrorKind::KeysNotLoaded`]
    /// from `aws-sns`): the caller fetches it (it is an SNS URL, checked) and retries.
    pub fn certificate(&self) -> Option<&str> {
        self.certificate.as_deref()
    }
}

/// A source specification the library refuses, naming the key that is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct SpecError {
    /// Dotted path of the offending key relative to the source, e.g. `verify.algorithm`.
    pub key: String,
    /// What is wrong with it.
    pub message: String,
}

impl SpecError {
    /// A new error about `key`.
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        SpecError {
            key: key.into(),
            message: message.into(),
        }
    }

    /// Prefixes the key with `parent.`, as errors travel up the config tree.
    pub fn within(mut self, parent: &str) -> Self {
        self.key = if self.key.is_empty() {
            parent.to_owned()
        } else {
            format!("{parent}.{}", self.key)
        };
        self
    }
}

/// Why a request could not be signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot sign: {0}")]
pub struct SignError(pub String);

#[cfg(test)]
mod kind_tests {
    use super::ErrorKind;

    #[test]
    fn all_lists_every_kind_once_in_order() {
        // Exhaustive: a new kind does not compile here until it has a place in `ALL`.
        let position = |kind: ErrorKind| match kind {
            ErrorKind::MissingCredential => 0,
            ErrorKind::Malformed => 1,
            ErrorKind::UnsupportedAlgorithm => 2,
            ErrorKind::BadSignature => 3,
            ErrorKind::Expired => 4,
            ErrorKind::NotYetValid => 5,
            ErrorKind::StaleTimestamp => 6,
            ErrorKind::UntrustedIssuer => 7,
            ErrorKind::KeysNotLoaded => 8,
            ErrorKind::UnknownKey => 9,
            ErrorKind::MissingClaim => 10,
            ErrorKind::AudienceMismatch => 11,
            ErrorKind::IssuerMismatch => 12,
            ErrorKind::SubjectMismatch => 13,
            ErrorKind::ClaimMismatch => 14,
            ErrorKind::BodyHashMismatch => 15,
            ErrorKind::IpDenied => 16,
            ErrorKind::InvalidPayload => 17,
            ErrorKind::MissingField => 18,
        };
        assert_eq!(ErrorKind::ALL.len(), 19);
        for (i, kind) in ErrorKind::ALL.iter().enumerate() {
            assert_eq!(position(*kind), i, "{kind}");
        }
    }
}
