//! `kind = "aws-sns"`: Amazon SNS HTTP(S) deliveries, signed with RSA (`SignatureVersion`
//! 1: SHA1withRSA, 2: SHA256withRSA) over the canonical `Key\nValue\n` string of the
//! message's fields, by the certificate at `SigningCertURL`.
//!
//! The certificate is read only from `https://sns.<region>.amazonaws.com/….pem` (or
//! `.amazonaws.com.cn`): any other URL is refused before anything is fetched. This module
//! does no I/O: it asks the [`KeyLookup`] for the certificate and, when it is not loaded,
//! fails with [`ErrorKind::KeysNotLoaded`] naming the URL ([`VerifyError::certificate`]); the
//! server fetches it once, caches it, and verifies again.

use std::sync::Arc;

use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Public};
use openssl::sign::{Signer, Verifier};
use openssl::x509::X509;
use serde::Deserialize;
use serde_json::Value;

use super::oidc::KeyLookup;
use super::{OneOrMany, SignInput, Verified};
use crate::error::{ErrorKind, SignError, SpecError, VerifyError};
use crate::secret::Encoding;
use crate::template::Context;

/// The public key of an SNS signing certificate.
#[derive(Clone)]
pub struct SigningCertificate(PKey<Public>);

impl std::fmt::Debug for SigningCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningCertificate")
    }
}

impl SigningCertificate {
    /// Reads an X.509 certificate in PEM and keeps its RSA public key.
    pub fn from_pem(pem: &[u8]) -> Result<SigningCertificate, String> {
        let cert = X509::from_pem(pem).map_err(|e| format!("not a PEM certificate: {e}"))?;
        let key = cert
            .public_key()
            .map_err(|e| format!("the certificate has no public key: {e}"))?;
        if key.rsa().is_err() {
            return Err("the certificate's key is not RSA".into());
        }
        Ok(SigningCertificate(key))
    }
}

/// Configuration of an AWS SNS check.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsSnsConfig {
    /// The topic ARNs accepted; a message from any other topic is refused.
    pub topic_arn: OneOrMany<String>,
    /// Accepted `SignatureVersion`s: `"1"` (SHA1withRSA) and/or `"2"` (SHA256withRSA);
    /// default both.
    pub signature_versions: Option<Vec<String>>,
    /// Tests only: certificate (and subscription) URLs on `http://127.0.0.1` or
    /// `http://[::1]` are accepted too.
    #[serde(default)]
    pub allow_loopback: bool,
}

/// A built AWS SNS check.
#[derive(Debug, Clone)]
pub struct AwsSnsCheck {
    topics: Vec<String>,
    versions: Vec<String>,
    allow_loopback: bool,
}

impl AwsSnsCheck {
    /// Validates the configuration.
    pub fn build(config: AwsSnsConfig) -> Result<Self, SpecError> {
        let topics = config.topic_arn.into_vec();
        if let Some(bad) = topics.iter().find(|t| !t.starts_with("arn:aws")) {
            return Err(SpecError::new(
                "topic_arn",
                format!("`{bad}` is not a topic ARN (`arn:aws:sns:REGION:ACCOUNT:NAME`)"),
            ));
        }
        if topics.is_empty() {
            return Err(SpecError::new("topic_arn", "name the topic(s) to accept"));
        }
        let versions = config
            .signature_versions
            .unwrap_or_else(|| vec!["1".into(), "2".into()]);
        if versions.is_empty() || versions.iter().any(|v| v != "1" && v != "2") {
            return Err(SpecError::new(
                "signature_versions",
                "list \"1\" (SHA1withRSA) and/or \"2\" (SHA256withRSA)",
            ));
        }
        Ok(AwsSnsCheck {
            topics,
            versions,
            allow_loopback: config.allow_loopback,
        })
    }

    pub(crate) fn verify(
        &self,
        ctx: &Context<'_, '_>,
        keys: &dyn KeyLookup,
    ) -> Result<Verified, VerifyError> {
        let message = ctx.json().and_then(Value::as_object).ok_or_else(|| {
            VerifyError::new(
                ErrorKind::Malformed,
                "the body is not an SNS message (JSON)",
            )
        })?;
        let text = |name: &str| message.get(name).and_then(Value::as_str);
        let field = |name: &str| {
            text(name).ok_or_else(|| {
                VerifyError::new(
                    ErrorKind::MissingCredential,
                    format!("the SNS message has no `{name}`"),
                )
            })
        };
        let topic = field("TopicArn")?;
        if !self.topics.iter().any(|t| t == topic) {
            return Err(VerifyError::new(
                ErrorKind::IssuerMismatch,
                format!("topic `{topic}` is not one of the configured `topic_arn`"),
            ));
        }
        let version = field("SignatureVersion")?;
        let digest = match version {
            "1" if self.versions.iter().any(|v| v == "1") => MessageDigest::sha1(),
            "2" if self.versions.iter().any(|v| v == "2") => MessageDigest::sha256(),
            other => {
                return Err(VerifyError::new(
                    ErrorKind::UnsupportedAlgorithm,
                    format!(
                        "`SignatureVersion` {other} is not accepted (accepted: {})",
                        self.versions.join(", ")
                    ),
                ))
            }
        };
        let url = field("SigningCertURL")?;
        check_sns_url(url, ".pem", self.allow_loopback).map_err(|why| {
            VerifyError::new(
                ErrorKind::BadSignature,
                format!("`SigningCertURL` {why}; it is not fetched"),
            )
        })?;
        let signature = Encoding::Base64
            .decode(field("Signature")?)
            .ok_or_else(|| VerifyError::new(ErrorKind::Malformed, "`Signature` is not base64"))?;
        let content = canonical(message)?;
        let certificate = keys.certificate(url).ok_or_else(|| {
            VerifyError::new(
                ErrorKind::KeysNotLoaded,
                format!("the signing certificate {url} is not loaded"),
            )
            .with_certificate(url)
        })?;
        let ok = Verifier::new(digest, &certificate.0)
            .and_then(|mut v| {
                v.update(&content)?;
                v.verify(&signature)
            })
            .unwrap_or(false);
        if !ok {
            return Err(VerifyError::new(
                ErrorKind::BadSignature,
                format!("`Signature` does not verify with the certificate {url}"),
            ));
        }
        Ok(Verified::new("aws-sns").with_key_id(url.to_owned()))
    }

    pub(crate) fn sign(&self, input: &mut SignInput<'_, '_>) -> Result<(), SignError> {
        let url = input.keys.key_id.clone().ok_or_else(|| {
            SignError("aws-sns signs for a certificate URL: pass it as --kid".into())
        })?;
        let pem = input.private_key()?;
        let key = PKey::private_key_from_pem(pem.as_bytes())
            .map_err(|e| SignError(format!("the private key is not PEM: {e}")))?;
        let mut message: serde_json::Map<String, Value> =
            serde_json::from_slice(input.request.body)
                .map_err(|e| SignError(format!("the body is not an SNS message: {e}")))?;
        let version = self.versions.last().cloned().unwrap_or_else(|| "2".into());
        message.insert("SignatureVersion".into(), version.clone().into());
        message.insert("SigningCertURL".into(), url.into());
        let content = canonical(&message).map_err(|e| SignError(e.to_string()))?;
        let digest = if version == "1" {
            MessageDigest::sha1()
        } else {
            MessageDigest::sha256()
        };
        let signature = Signer::new(digest, &key)
            .and_then(|mut s| {
                s.update(&content)?;
                s.sign_to_vec()
            })
            .map_err(|e| SignError(format!("the private key cannot sign RSA: {e}")))?;
        message.insert(
            "Signature".into(),
            Encoding::Base64.encode(&signature).into(),
        );
        input.new_body = Some(serde_json::to_vec(&message).expect("JSON serializes"));
        Ok(())
    }
}

/// The string SNS signs: `Key\nValue\n` for each signed field of the message's `Type`, in
/// that order (`Subject` only when present).
fn canonical(message: &serde_json::Map<String, Value>) -> Result<Vec<u8>, VerifyError> {
    let kind = message.get("Type").and_then(Value::as_str).unwrap_or("");
    let names: &[&str] = match kind {
        "Notification" => &[
            "Message",
            "MessageId",
            "Subject",
            "Timestamp",
            "TopicArn",
            "Type",
        ],
        "SubscriptionConfirmation" | "UnsubscribeConfirmation" => &[
            "Message",
            "MessageId",
            "SubscribeURL",
            "Timestamp",
            "Token",
            "TopicArn",
            "Type",
        ],
        other => {
            return Err(VerifyError::new(
                ErrorKind::Malformed,
                format!("`Type` `{other}` is not an SNS message type"),
            ))
        }
    };
    let mut out = Vec::new();
    for name in names {
        match message.get(*name).and_then(Value::as_str) {
            Some(value) => {
                out.extend_from_slice(name.as_bytes());
                out.push(b'\n');
                out.extend_from_slice(value.as_bytes());
                out.push(b'\n');
            }
            None if *name == "Subject" => {}
            None => {
                return Err(VerifyError::new(
                    ErrorKind::MissingCredential,
                    format!("the SNS message has no `{name}`"),
                ))
            }
        }
    }
    Ok(out)
}

/// Whether `url` is an SNS URL: `https://sns.<region>.amazonaws.com[.cn]/…`, no port, no
/// user info, its path ending in `suffix` (`.pem` for a certificate, `""` for any). With
/// `allow_loopback`, `http://127.0.0.1[:port]/…` and `http://[::1][:port]/…` too.
pub fn check_sns_url(url: &str, suffix: &str, allow_loopback: bool) -> Result<(), String> {
    let fail = |why: &str| Err(format!("`{url}` {why}"));
    let (scheme, rest) = url.split_once("://").ok_or("is not a URL")?;
    let (authority, path) = match rest.find('/') {
        Some(at) => (&rest[..at], &rest[at..]),
        None => return fail("has no path"),
    };
    let path = path.split(['?', '#']).next().unwrap_or("");
    if !path.ends_with(suffix) {
        return fail(&format!("does not end in `{suffix}`"));
    }
    if allow_loopback && scheme == "http" {
        let host = authority
            .strip_prefix("[::1]")
            .or_else(|| authority.strip_prefix("127.0.0.1"));
        return match host {
            Some(port)
                if port.is_empty()
                    || port
                        .strip_prefix(':')
                        .is_some_and(|p| p.parse::<u16>().is_ok()) =>
            {
                Ok(())
            }
            _ => fail("is not on loopback"),
        };
    }
    if scheme != "https" {
        return fail("is not https");
    }
    let region = authority
        .strip_prefix("sns.")
        .and_then(|h| {
            h.strip_suffix(".amazonaws.com")
                .or_else(|| h.strip_suffix(".amazonaws.com.cn"))
        })
        .filter(|r| {
            !r.is_empty()
                && r.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        });
    if region.is_none() {
        return fail("is not on `sns.<region>.amazonaws.com`");
    }
    Ok(())
}

/// A lookup holding given certificates (tests, offline verification).
#[derive(Debug, Clone, Default)]
pub struct Certificates(pub std::collections::HashMap<String, Arc<SigningCertificate>>);

impl KeyLookup for Certificates {
    fn keys(&self, _issuer: &str) -> Option<Arc<super::oidc::KeySet>> {
        None
    }

    fn certificate(&self, url: &str) -> Option<Arc<SigningCertificate>> {
        self.0.get(url).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_sns_urls_are_fetched() {
        for good in [
            "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-9c6465fa7f48f5cacd23014631ec1136.pem",
            "https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-1.pem",
        ] {
            assert_eq!(check_sns_url(good, ".pem", false), Ok(()), "{good}");
        }
        for bad in [
            "http://sns.us-east-1.amazonaws.com/x.pem",
            "https://sns.us-east-1.amazonaws.com.evil.example/x.pem",
            "https://evil.example/sns.us-east-1.amazonaws.com/x.pem",
            "https://sns.us-east-1.amazonaws.com:8443/x.pem",
            "https://user@sns.us-east-1.amazonaws.com/x.pem",
            "https://sns..amazonaws.com/x.pem",
            "https://sns.US-EAST-1.amazonaws.com/x.pem",
            "https://sns.us-east-1.amazonaws.com/x.txt",
            "https://sns.us-east-1.amazonaws.com",
            "http://127.0.0.1:8080/x.pem",
            "not a url",
        ] {
            assert!(check_sns_url(bad, ".pem", false).is_err(), "{bad}");
        }
        assert_eq!(
            check_sns_url("http://127.0.0.1:8080/x.pem", ".pem", true),
            Ok(())
        );
        assert_eq!(check_sns_url("http://[::1]/x.pem", ".pem", true), Ok(()));
        assert!(check_sns_url("http://127.0.0.2/x.pem", ".pem", true).is_err());
        assert!(check_sns_url("http://127.0.0.1.evil.example/x.pem", ".pem", true).is_err());
        assert_eq!(
            check_sns_url(
                "https://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription&TopicArn=a&Token=b",
                "",
                false
            ),
            Ok(())
        );
    }

    #[test]
    fn the_canonical_string_follows_the_message_type() {
        let message: serde_json::Map<String, Value> = serde_json::from_str(
            r#"{"Type":"Notification","MessageId":"m","TopicArn":"t","Message":"hi","Timestamp":"2026-01-01T00:00:00.000Z","Subject":"s"}"#,
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(canonical(&message).unwrap()).unwrap(),
            "Message\nhi\nMessageId\nm\nSubject\ns\nTimestamp\n2026-01-01T00:00:00.000Z\nTopicArn\nt\nType\nNotification\n"
        );
        let mut confirmation = message.clone();
        confirmation.insert("Type".into(), "SubscriptionConfirmation".into());
        assert!(
            canonical(&confirmation).is_err(),
            "SubscribeURL and Token are required"
        );
        let mut unknown = message;
        unknown.insert("Type".into(), "Other".into());
        assert_eq!(
            canonical(&unknown).unwrap_err().kind(),
            ErrorKind::Malformed
        );
    }
}
