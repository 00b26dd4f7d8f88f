//! The verification schemes. Each module holds one scheme's configuration, its checks and
//! its signer; [`CheckConfig`] selects one by `kind`.

pub mod aws_sns;
pub mod hmac;
pub mod ip;
pub mod jose;
pub mod jwt;
pub mod oidc;
pub mod public_key;
pub mod standard_webhooks;
pub mod token;
pub mod twilio;

use serde::Deserialize;
use serde_json::{Map, Value};
use time::OffsetDateTime;

use crate::error::ErrorKind;
use crate::error::{SignError, SpecError, VerifyError};
use crate::request::Request;
use crate::secret::Secret;
use crate::template::{Context, Field};
use crate::timestamp::{parse_duration, parse_timestamp, within, TimestampFormat};
use oidc::KeyLookup;

/// One value or a list of them, as TOML users write either. Errors inside the value are
/// reported as they are (an untagged enum would hide them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OneOrMany<T> {
    /// A single value.
    One(T),
    /// Several values.
    Many(Vec<T>),
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for OneOrMany<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
        use serde::de::IntoDeserializer;

        struct Visitor<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for Visitor<T> {
            type Value = OneOrMany<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a value or a list of values")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                seq: A,
            ) -> Result<Self::Value, A::Error> {
                Vec::<T>::deserialize(SeqAccessDeserializer::new(seq)).map(OneOrMany::Many)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<Self::Value, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map)).map(OneOrMany::One)
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                T::deserialize(v.into_deserializer()).map(OneOrMany::One)
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Self::Value, E> {
                T::deserialize(v.into_deserializer()).map(OneOrMany::One)
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Self::Value, E> {
                T::deserialize(v.into_deserializer()).map(OneOrMany::One)
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
                T::deserialize(v.into_deserializer()).map(OneOrMany::One)
            }
        }
        deserializer.deserialize_any(Visitor(std::marker::PhantomData))
    }
}

impl<T> OneOrMany<T> {
    /// The values as a list.
    pub fn into_vec(self) -> Vec<T> {
        match self {
            OneOrMany::One(v) => vec![v],
            OneOrMany::Many(v) => v,
        }
    }
}

/// The `[source.verify]` table: one check, chosen by `kind`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum CheckConfig {
    /// HMAC signature.
    Hmac(hmac::HmacConfig),
    /// JWT with configured keys.
    Jwt(jwt::JwtConfig),
    /// OIDC ID token from trusted issuers.
    Oidc(oidc::OidcConfig),
    /// Shared token in a header or query parameter.
    Token(token::TokenConfig),
    /// HTTP Basic credentials.
    Basic(token::BasicConfig),
    /// Standard Webhooks (`svix` is an alias).
    #[serde(alias = "svix")]
    StandardWebhooks(standard_webhooks::StandardWebhooksConfig),
    /// Client IP allowlist.
    Ip(ip::IpConfig),
    /// Twilio's URL + parameters signature.
    Twilio(twilio::TwilioConfig),
    /// A public-key signature (Ed25519, ECDSA P-256) of a templated content.
    PublicKey(public_key::PublicKeyConfig),
    /// Amazon SNS messages, signed by a certificate SNS publishes.
    AwsSns(aws_sns::AwsSnsConfig),
    /// No verification at all (explicit, for trusted internal senders).
    None {},
}

/// A built check, ready to verify and to sign.
#[derive(Debug)]
pub enum Check {
    /// See [`hmac::HmacCheck`].
    Hmac(hmac::HmacCheck),
    /// See [`jwt::JwtCheck`].
    Jwt(jwt::JwtCheck),
    /// See [`oidc::OidcCheck`].
    Oidc(oidc::OidcCheck),
    /// See [`token::TokenCheck`].
    Token(token::TokenCheck),
    /// See [`token::BasicCheck`].
    Basic(token::BasicCheck),
    /// See [`standard_webhooks::StandardWebhooksCheck`].
    StandardWebhooks(standard_webhooks::StandardWebhooksCheck),
    /// See [`ip::IpCheck`].
    Ip(ip::IpCheck),
    /// See [`twilio::TwilioCheck`].
    Twilio(twilio::TwilioCheck),
    /// See [`public_key::PublicKeyCheck`].
    PublicKey(public_key::PublicKeyCheck),
    /// See [`aws_sns::AwsSnsCheck`].
    AwsSns(aws_sns::AwsSnsCheck),
    /// Accepts everything.
    None,
}

impl Check {
    /// Validates a check's configuration.
    pub fn build(config: CheckConfig) -> Result<Check, SpecError> {
        Ok(match config {
            CheckConfig::Hmac(c) => Check::Hmac(hmac::HmacCheck::build(c)?),
            CheckConfig::Jwt(c) => Check::Jwt(jwt::JwtCheck::build(c)?),
            CheckConfig::Oidc(c) => Check::Oidc(oidc::OidcCheck::build(c)?),
            CheckConfig::Token(c) => Check::Token(token::TokenCheck::build(c)?),
            CheckConfig::Basic(c) => Check::Basic(token::BasicCheck::build(c)?),
            CheckConfig::StandardWebhooks(c) => {
                Check::StandardWebhooks(standard_webhooks::StandardWebhooksCheck::build(c)?)
            }
            CheckConfig::Ip(c) => Check::Ip(ip::IpCheck::build(c)?),
            CheckConfig::Twilio(c) => Check::Twilio(twilio::TwilioCheck::build(c)?),
            CheckConfig::PublicKey(c) => Check::PublicKey(public_key::PublicKeyCheck::build(c)?),
            CheckConfig::AwsSns(c) => Check::AwsSns(aws_sns::AwsSnsCheck::build(c)?),
            CheckConfig::None {} => Check::None,
        })
    }

    /// The scheme's `kind` name.
    pub fn kind(&self) -> &'static str {
        match self {
            Check::Hmac(_) => "hmac",
            Check::Jwt(_) => "jwt",
            Check::Oidc(_) => "oidc",
            Check::Token(_) => "token",
            Check::Basic(_) => "basic",
            Check::StandardWebhooks(_) => "standard-webhooks",
            Check::Ip(_) => "ip",
            Check::Twilio(_) => "twilio",
            Check::PublicKey(_) => "public-key",
            Check::AwsSns(_) => "aws-sns",
            Check::None => "none",
        }
    }

    /// The headers this check reads credentials from: never stored, never logged.
    pub fn credential_headers(&self) -> Vec<&str> {
        match self {
            Check::Hmac(c) => c.header().into_iter().collect(),
            Check::Jwt(c) => vec![c.header()],
            Check::Oidc(c) => vec![c.header()],
            Check::Token(c) => c.header().into_iter().collect(),
            Check::Basic(_) => vec!["authorization"],
            Check::StandardWebhooks(_) => vec!["webhook-signature", "svix-signature"],
            Check::Twilio(c) => vec![c.header()],
            Check::PublicKey(c) => vec![c.header()],
            Check::AwsSns(_) => Vec::new(),
            Check::Ip(_) | Check::None => Vec::new(),
        }
    }

    /// Whether verifying may take a public-key operation (RSA, ECDSA, EdDSA: up to a
    /// millisecond of CPU) rather than an HMAC (microseconds).
    pub fn is_asymmetric(&self) -> bool {
        match self {
            Check::Jwt(c) => c.is_asymmetric(),
            Check::Oidc(_) | Check::PublicKey(_) | Check::AwsSns(_) => true,
            Check::StandardWebhooks(c) => c.is_asymmetric(),
            _ => false,
        }
    }

    /// Query parameters this check reads a credential from (stored and shown redacted).
    pub fn credential_query_params(&self) -> Vec<&str> {
        match self {
            Check::Token(c) => c.query().into_iter().collect(),
            _ => Vec::new(),
        }
    }

    pub(crate) fn verify(
        &self,
        ctx: &mut Context<'_, '_>,
        now: OffsetDateTime,
        keys: &dyn KeyLookup,
    ) -> Result<Verified, VerifyError> {
        match self {
            Check::Hmac(c) => c.verify(ctx, now, keys),
            Check::Jwt(c) => c.verify(ctx, now),
            Check::Oidc(c) => c.verify(ctx, now, keys),
            Check::Token(c) => c.verify(ctx),
            Check::Basic(c) => c.verify(ctx),
            Check::StandardWebhooks(c) => c.verify(ctx, now),
            Check::Ip(c) => c.verify(ctx),
            Check::Twilio(c) => c.verify(ctx),
            Check::PublicKey(c) => c.verify(ctx, now),
            Check::AwsSns(c) => c.verify(ctx, keys),
            Check::None => Ok(Verified::new("none")),
        }
    }

    pub(crate) fn sign(&self, input: &mut SignInput<'_, '_>) -> Result<(), SignError> {
        match self {
            Check::Hmac(c) => c.sign(input),
            Check::Jwt(c) => c.sign(input),
            Check::Oidc(c) => c.sign(input),
            Check::Token(c) => c.sign(input),
            Check::Basic(c) => c.sign(input),
            Check::StandardWebhooks(c) => c.sign(input),
            Check::Twilio(c) => c.sign(input),
            Check::PublicKey(c) => c.sign(input),
            Check::AwsSns(c) => c.sign(input),
            // Nothing to add: the sender's address or no credential at all.
            Check::Ip(_) | Check::None => Ok(()),
        }
    }
}

/// What verification established about a request. Stored with the event; holds no secret.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Verified {
    /// The schemes that passed, joined with `+` (e.g. `jwt+token`).
    pub scheme: String,
    /// Which key matched: a JWK `kid`, or `secret#N` for the N-th configured secret.
    pub key_id: Option<String>,
    /// The token issuer (JWT/OIDC).
    pub issuer: Option<String>,
    /// The token subject (JWT/OIDC).
    pub subject: Option<String>,
    /// The verified token's claims (JWT/OIDC).
    pub claims: Option<Map<String, Value>>,
}

impl Verified {
    pub(crate) fn new(scheme: &str) -> Self {
        Verified {
            scheme: scheme.to_owned(),
            ..Verified::default()
        }
    }

    pub(crate) fn with_key_id(mut self, key_id: String) -> Self {
        self.key_id = Some(key_id);
        self
    }

    pub(crate) fn with_claims(mut self, claims: Map<String, Value>) -> Self {
        self.issuer = claims.get("iss").and_then(Value::as_str).map(str::to_owned);
        self.subject = claims.get("sub").and_then(Value::as_str).map(str::to_owned);
        self.claims = Some(claims);
        self
    }

    /// Folds a further passed check into this summary.
    pub(crate) fn merge(&mut self, other: Verified) {
        if self.scheme.is_empty() {
            *self = other;
            return;
        }
        self.scheme = format!("{}+{}", self.scheme, other.scheme);
        if self.claims.is_none() && other.claims.is_some() {
            self.claims = other.claims;
            self.issuer = other.issuer;
            self.subject = other.subject;
            self.key_id = other.key_id.or(self.key_id.take());
        } else if self.key_id.is_none() {
            self.key_id = other.key_id;
        }
    }
}

/// Key material and identities a sender signs with. What a scheme does not need it ignores.
#[derive(Debug, Clone, Default)]
pub struct SigningKeys {
    /// Shared secret (HMAC, HS*, token, Standard Webhooks `whsec_`/`whsk_`, Basic `user:pass`).
    /// When absent, the source's first configured secret is used.
    pub secret: Option<Secret>,
    /// A private key in PEM (JWT RS*/PS*/ES*/EdDSA, OIDC).
    pub private_key_pem: Option<String>,
    /// The `kid` to put in the token header; for `aws-sns`, the signing certificate's URL.
    pub key_id: Option<String>,
    /// OIDC: the issuer to mint the token as.
    pub issuer: Option<String>,
    /// OIDC: the audience to mint the token for.
    pub audience: Option<String>,
    /// JWT/OIDC: the subject.
    pub subject: Option<String>,
    /// OIDC: the signing algorithm (default RS256).
    pub algorithm: Option<jose::Algorithm>,
    /// The event id to send (Standard Webhooks `webhook-id`).
    pub event_id: Option<String>,
}

/// The request being signed, the signing time and the keys.
pub(crate) struct SignInput<'r, 'b> {
    pub request: &'r mut Request<'b>,
    pub now: OffsetDateTime,
    pub keys: &'r SigningKeys,
    /// A signature written into the body gives the body to send instead.
    pub new_body: Option<Vec<u8>>,
}

impl SignInput<'_, '_> {
    /// The explicit secret, else the first configured one.
    pub fn secret_or(&self, configured: &[Secret]) -> Result<Secret, SignError> {
        self.keys
            .secret
            .clone()
            .or_else(|| configured.first().cloned())
            .ok_or_else(|| SignError("a shared secret is needed (--secret)".into()))
    }

    pub fn private_key(&self) -> Result<&str, SignError> {
        self.keys
            .private_key_pem
            .as_deref()
            .ok_or_else(|| SignError("a private key is needed (--key FILE)".into()))
    }
}

/// `secret` and `secrets` merged; at least one, none empty.
pub(crate) fn secret_list(
    secret: Option<String>,
    secrets: Vec<String>,
) -> Result<Vec<Secret>, SpecError> {
    let mut all: Vec<String> = secret.into_iter().collect();
    all.extend(secrets);
    if all.is_empty() {
        return Err(SpecError::new(
            "secret",
            "set `secret` (or `secrets` for rotation)",
        ));
    }
    if let Some(i) = all.iter().position(|s| s.is_empty()) {
        return Err(SpecError::new(
            if i == 0 {
                "secret".to_string()
            } else {
                format!("secrets[{i}]")
            },
            "is empty (an unset environment variable?)",
        ));
    }
    Ok(all.into_iter().map(Secret::new).collect())
}

/// A signed timestamp and how far from now it may be: shared by the schemes that sign one
/// (`hmac`, `public-key`).
#[derive(Debug, Clone)]
pub(crate) struct SignedTimestamp {
    field: Field,
    format: TimestampFormat,
    tolerance: std::time::Duration,
}

impl SignedTimestamp {
    /// From the `timestamp`, `timestamp_format` and `tolerance` keys (default `5m`).
    pub fn build(
        field: Option<&str>,
        format: TimestampFormat,
        tolerance: Option<&str>,
    ) -> Result<Option<SignedTimestamp>, SpecError> {
        match (field, tolerance) {
            (Some(field), _) => Ok(Some(SignedTimestamp {
                field: Field::parse("timestamp", field)?,
                format,
                tolerance: parse_duration("tolerance", tolerance.unwrap_or("5m"))?,
            })),
            (None, Some(_)) => Err(SpecError::new(
                "tolerance",
                "set `timestamp` too: the tolerance applies to it",
            )),
            (None, None) => Ok(None),
        }
    }

    /// Where the timestamp is read.
    pub fn field(&self) -> &Field {
        &self.field
    }

    /// The timestamp as a sender writes it at `now`.
    pub fn render(&self, now: OffsetDateTime) -> String {
        self.format.render(now)
    }

    /// Refuses a missing, unreadable or out-of-tolerance timestamp.
    pub fn check(&self, ctx: &Context<'_, '_>, now: OffsetDateTime) -> Result<(), VerifyError> {
        let field = &self.field;
        let text = field.read(ctx, None).ok_or_else(|| {
            VerifyError::new(
                ErrorKind::MissingCredential,
                format!("timestamp `{field}` is missing"),
            )
        })?;
        let at = parse_timestamp(&text, self.format).map_err(|e| {
            VerifyError::new(ErrorKind::Malformed, format!("timestamp `{field}`: {e}"))
        })?;
        if !within(at, now, self.tolerance) {
            return Err(VerifyError::new(
                ErrorKind::StaleTimestamp,
                format!(
                    "timestamp {} is more than {} from now ({})",
                    crate::timestamp::display(at),
                    humantime::format_duration(self.tolerance),
                    crate::timestamp::display(now)
                ),
            ));
        }
        Ok(())
    }
}
