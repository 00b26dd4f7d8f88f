//! `kind = "standard-webhooks"`: the Standard Webhooks scheme (also Svix's), symmetric
//! `v1` (HMAC-SHA256, `whsec_` secrets) and asymmetric `v1a` (Ed25519, `whpk_` public keys).

use std::time::Duration;

use openssl::pkey::{Id, PKey, Private, Public};
use openssl::sign::{Signer, Verifier};
use serde::Deserialize;
use time::OffsetDateTime;

use super::{SignInput, Verified};
use crate::error::{ErrorKind, SignError, SpecError, VerifyError};
use crate::secret::{b64, ct_eq, Encoding, HashAlgorithm, Secret};
use crate::template::Context;
use crate::timestamp::parse_duration;

/// Configuration of a Standard Webhooks check.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StandardWebhooksConfig {
    /// A `whsec_…` secret or `whpk_…` public key.
    pub secret: Option<String>,
    /// Several secrets / public keys (rotation).
    #[serde(default)]
    pub secrets: Vec<String>,
    /// Accepted timestamp distance from now; default `5m`.
    pub tolerance: Option<String>,
}

#[derive(Clone)]
enum Key {
    Symmetric(Secret),
    Ed25519(PKey<Public>),
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Key::Symmetric(_) => f.write_str("whsec_[redacted]"),
            Key::Ed25519(_) => f.write_str("whpk_…"),
        }
    }
}

/// A built Standard Webhooks check.
#[derive(Debug, Clone)]
pub struct StandardWebhooksCheck {
    keys: Vec<Key>,
    tolerance: Duration,
}

/// Header names: `webhook-*`, or `svix-*` as Svix sends them.
const PREFIXES: [&str; 2] = ["webhook-", "svix-"];

impl StandardWebhooksCheck {
    /// Whether a signature may need a public-key verification (an Ed25519 `whpk_` key).
    pub fn is_asymmetric(&self) -> bool {
        self.keys.iter().any(|k| matches!(k, Key::Ed25519(_)))
    }

    /// Validates the configuration and decodes the keys.
    pub fn build(config: StandardWebhooksConfig) -> Result<Self, SpecError> {
        let mut texts: Vec<String> = config.secret.into_iter().collect();
        texts.extend(config.secrets);
        if texts.is_empty() {
            return Err(SpecError::new(
                "secret",
                "set `secret` (a whsec_… secret or whpk_… public key)",
            ));
        }
        let keys = texts
            .iter()
            .enumerate()
            .map(|(i, t)| {
                parse_key(t).map_err(|m| {
                    SpecError::new(
                        if i == 0 {
                            "secret".to_string()
                        } else {
                            format!("secrets[{i}]")
                        },
                        m,
                    )
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(StandardWebhooksCheck {
            keys,
            tolerance: parse_duration("tolerance", config.tolerance.as_deref().unwrap_or("5m"))?,
        })
    }

    pub(crate) fn verify(
        &self,
        ctx: &Context<'_, '_>,
        now: OffsetDateTime,
    ) -> Result<Verified, VerifyError> {
        let headers = &ctx.request.headers;
        let read = |name: &str| -> Result<&str, VerifyError> {
            PREFIXES
                .iter()
                .find_map(|p| headers.get(&format!("{p}{name}")))
                .ok_or_else(|| {
                    VerifyError::new(
                        ErrorKind::MissingCredential,
                        format!("header `webhook-{name}` is missing"),
                    )
                })
        };
        let id = read("id")?;
        let timestamp = read("timestamp")?;
        let signatures = read("signature")?;
        let ts: i64 = timestamp.trim().parse().map_err(|_| {
            VerifyError::new(
                ErrorKind::Malformed,
                "`webhook-timestamp` is not integer seconds",
            )
        })?;
        let mut content =
            Vec::with_capacity(id.len() + timestamp.len() + ctx.request.body.len() + 2);
        content.extend_from_slice(id.as_bytes());
        content.push(b'.');
        content.extend_from_slice(timestamp.trim().as_bytes());
        content.push(b'.');
        content.extend_from_slice(ctx.request.body);
        // One HMAC per symmetric key, whatever the number of signatures in the header.
        let macs: Vec<Option<Vec<u8>>> = self
            .keys
            .iter()
            .map(|k| match k {
                Key::Symmetric(secret) => {
                    Some(HashAlgorithm::Sha256.mac_of(secret.expose(), &content))
                }
                Key::Ed25519(_) => None,
            })
            .collect();
        let mut any_decodable = false;
        for item in signatures.split(' ').filter(|s| !s.is_empty()) {
            let Some((version, sig)) = item.split_once(',') else {
                continue;
            };
            let Some(sig) = Encoding::Base64.decode(sig) else {
                continue;
            };
            any_decodable = true;
            for (i, key) in self.keys.iter().enumerate() {
                let ok = match (version, key, &macs[i]) {
                    ("v1", Key::Symmetric(_), Some(mac)) => ct_eq(mac, &sig),
                    ("v1a", Key::Ed25519(public), _) => ed25519_verify(public, &content, &sig),
                    _ => false,
                };
                if ok {
                    let age = (now.unix_timestamp() - ts).abs();
                    if age > self.tolerance.as_secs() as i64 {
                        return Err(VerifyError::new(
                            ErrorKind::StaleTimestamp,
                            format!(
                                "`webhook-timestamp` {ts} is {age}s from now; tolerance {}s",
                                self.tolerance.as_secs()
                            ),
                        ));
                    }
                    let mut verified = Verified::new(if version == "v1a" {
                        "standard-webhooks-v1a"
                    } else {
                        "standard-webhooks-v1"
                    });
                    verified.key_id = Some(format!("secret#{i}"));
                    return Ok(verified);
                }
            }
        }
        if !any_decodable {
            return Err(VerifyError::new(
                ErrorKind::Malformed,
                "`webhook-signature` has no `v1,…` or `v1a,…` entry",
            ));
        }
        Err(VerifyError::new(
            ErrorKind::BadSignature,
            format!(
                "no `webhook-signature` entry matches any of the {} configured key(s)",
                self.keys.len()
            ),
        ))
    }

    pub(crate) fn sign(&self, input: &mut SignInput<'_, '_>) -> Result<(), SignError> {
        let id = input
            .keys
            .event_id
            .clone()
            .unwrap_or_else(|| format!("msg_{}", input.now.unix_timestamp_nanos()));
        let ts = input.now.unix_timestamp().to_string();
        let mut content = format!("{id}.{ts}.").into_bytes();
        content.extend_from_slice(input.request.body);
        let signature = match &input.keys.secret {
            Some(secret) => sign_with(&String::from_utf8_lossy(secret.expose()), &content)?,
            None => match self.keys.first() {
                Some(Key::Symmetric(s)) => format!(
                    "v1,{}",
                    b64(&HashAlgorithm::Sha256.mac_of(s.expose(), &content))
                ),
                _ => {
                    return Err(SignError(
                        "v1a needs the private key (`whsk_…`) as the secret".into(),
                    ))
                }
            },
        };
        input.request.headers.set("webhook-id", id);
        input.request.headers.set("webhook-timestamp", ts);
        input.request.headers.set("webhook-signature", signature);
        Ok(())
    }
}

/// Signs `content` with a `whsec_…` secret (→ `v1,…`) or a `whsk_…` Ed25519 key (→ `v1a,…`).
pub fn sign_with(secret: &str, content: &[u8]) -> Result<String, SignError> {
    WebhookSigner::new(secret)?.sign_parts(&[content])
}

/// Signs outgoing Standard Webhooks messages with one secret, parsed once: `whsec_…`
/// (→ `v1,…`) or a `whsk_…` Ed25519 private key (→ `v1a,…`).
pub struct WebhookSigner(SigningKey);

enum SigningKey {
    Hmac(Secret),
    Ed25519(PKey<Private>),
}

impl std::fmt::Debug for WebhookSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.0 {
            SigningKey::Hmac(_) => "WebhookSigner(v1, [redacted])",
            SigningKey::Ed25519(_) => "WebhookSigner(v1a, [redacted])",
        })
    }
}

impl WebhookSigner {
    /// Parses the secret.
    pub fn new(secret: &str) -> Result<WebhookSigner, SignError> {
        if secret.trim().starts_with("whsk_") {
            let key = ed25519_private_key(secret.trim())?;
            return Ok(WebhookSigner(SigningKey::Ed25519(key)));
        }
        match parse_key(secret).map_err(SignError)? {
            Key::Symmetric(s) => Ok(WebhookSigner(SigningKey::Hmac(s))),
            Key::Ed25519(_) => Err(SignError(
                "a whpk_ public key cannot sign; use the whsk_ private key".into(),
            )),
        }
    }

    /// The `webhook-signature` value for a message: `{webhook_id}.{timestamp}.{body}`.
    pub fn sign(&self, webhook_id: &str, timestamp: i64, body: &[u8]) -> Result<String, SignError> {
        let timestamp = timestamp.to_string();
        self.sign_parts(&[
            webhook_id.as_bytes(),
            b".",
            timestamp.as_bytes(),
            b".",
            body,
        ])
    }

    fn sign_parts(&self, parts: &[&[u8]]) -> Result<String, SignError> {
        match &self.0 {
            SigningKey::Hmac(secret) => {
                let mac = HashAlgorithm::Sha256.mac(secret.expose(), &mut |sink| {
                    for part in parts {
                        sink(part)
                    }
                });
                Ok(format!("v1,{}", b64(&mac)))
            }
            SigningKey::Ed25519(key) => {
                // Ed25519 signs the whole message at once.
                let content = parts.concat();
                let mut signer =
                    Signer::new_without_digest(key).map_err(|e| SignError(e.to_string()))?;
                let signature = signer
                    .sign_oneshot_to_vec(&content)
                    .map_err(|e| SignError(e.to_string()))?;
                Ok(format!("v1a,{}", b64(&signature)))
            }
        }
    }
}

/// The `whpk_…` public key of a `whsk_…` private key.
pub fn public_key_of(private: &str) -> Result<String, SignError> {
    let key = ed25519_private_key(private)?;
    let public = key.raw_public_key().map_err(|e| SignError(e.to_string()))?;
    Ok(format!("whpk_{}", b64(&public)))
}

/// The Ed25519 key of a `whsk_…` secret (its first 32 bytes are the seed).
fn ed25519_private_key(private: &str) -> Result<PKey<Private>, SignError> {
    let bytes = private
        .strip_prefix("whsk_")
        .ok_or_else(|| SignError("not a whsk_ key".into()))
        .and_then(|b| {
            Encoding::Base64
                .decode(b)
                .ok_or_else(|| SignError("whsk_ key is not base64".into()))
        })?;
    let seed = bytes
        .get(..32)
        .ok_or_else(|| SignError("whsk_ key is shorter than 32 bytes".into()))?;
    PKey::private_key_from_raw_bytes(seed, Id::ED25519).map_err(|e| SignError(e.to_string()))
}

fn parse_key(text: &str) -> Result<Key, String> {
    let text = text.trim();
    if let Some(public) = text.strip_prefix("whpk_") {
        let bytes = Encoding::Base64
            .decode(public)
            .ok_or("whpk_ key is not base64")?;
        let key = PKey::public_key_from_raw_bytes(&bytes, Id::ED25519)
            .map_err(|_| "whpk_ key is not a 32-byte Ed25519 public key".to_string())?;
        return Ok(Key::Ed25519(key));
    }
    if text.starts_with("whsk_") {
        return Err(
            "whsk_ is a private signing key; configure its whpk_ public key to verify".into(),
        );
    }
    // Secrets without the prefix are accepted as the reference libraries do; Supabase shows
    // its hook secrets with the signature version in front (`v1,whsec_…`).
    let text = text.strip_prefix("v1,").unwrap_or(text);
    let body = text.strip_prefix("whsec_").unwrap_or(text);
    let bytes = Encoding::Base64
        .decode(body)
        .ok_or("secret is not base64 after `whsec_`")?;
    if bytes.is_empty() {
        return Err("secret is empty".into());
    }
    Ok(Key::Symmetric(Secret::new(bytes)))
}

fn ed25519_verify(public: &PKey<Public>, content: &[u8], signature: &[u8]) -> bool {
    Verifier::new_without_digest(public)
        .and_then(|mut v| v.verify_oneshot(signature, content))
        .unwrap_or(false)
}
