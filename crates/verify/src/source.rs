//! A source: the checks a request must pass, the payload schema, where the event id,
//! topic, tenant and provider timestamp come from, and the answers to give. Built from a
//! `[[source]]` table, directly or through a preset.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;
use time::OffsetDateTime;

use crate::error::{ErrorKind, SignError, SpecError, VerifyError};
use crate::handshake::{Handshake, HandshakeConfig, HandshakeReply};
use crate::preset;
use crate::request::Request;
use crate::response::Responses;
use crate::schema::PayloadSchema;
use crate::scheme::oidc::{KeyLookup, OidcCheck};
use crate::scheme::{Check, CheckConfig, OneOrMany, SignInput, SigningKeys, Verified};
use crate::template::{Context, Field};
use crate::timestamp::{parse_timestamp, TimestampFormat};

/// The verification part of a `[[source]]` table. Keys the server owns (`name`, `path`, …)
/// are not read here; [`SourceSpec::FIELDS`] lists the keys that are.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SourceSpec {
    /// A preset name (`entrupy`, `github`, …).
    pub preset: Option<String>,
    /// Checks of their own, or added to a preset's (all must pass).
    pub verify: Option<OneOrMany<CheckConfig>>,
    /// Where the dedupe id comes from (`header:…`, `json:/…`, `claim:…`); a list means
    /// the first one present.
    pub id: Option<OneOrMany<String>>,
    /// Where the topic comes from.
    pub topic: Option<OneOrMany<String>>,
    /// Where the tenant comes from.
    pub tenant: Option<OneOrMany<String>>,
    /// Where the provider's timestamp comes from.
    pub timestamp: Option<OneOrMany<String>>,
    /// A JSON Schema for the payload (a table, or JSON text).
    pub schema: Option<Value>,
    /// Handshakes of its own (`[[source.handshake]]`), after a preset's.
    pub handshake: Option<Vec<HandshakeConfig>>,
    /// The preset's parameters (`secret`, `public_key`, …): every other key. Each preset
    /// says which it takes ([`crate::preset::Preset::params`]); any other is an error.
    #[serde(flatten)]
    pub params: BTreeMap<String, Value>,
}

impl SourceSpec {
    /// The `[[source]]` keys this crate reads, besides the presets' parameters
    /// ([`crate::preset::parameter_names`]).
    pub const FIELDS: &'static [&'static str] = &[
        "preset",
        "verify",
        "id",
        "topic",
        "tenant",
        "timestamp",
        "schema",
        "handshake",
    ];
}

/// The event metadata read from a verified request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventMeta {
    /// The provider's event id, for deduplication.
    pub id: Option<String>,
    /// The topic (event type).
    pub topic: Option<String>,
    /// The tenant.
    pub tenant: Option<String>,
    /// The provider's timestamp as sent.
    pub provider_timestamp_raw: Option<String>,
    /// The provider's timestamp, when it could be read.
    pub provider_timestamp: Option<OffsetDateTime>,
}

/// A request that passed every check of its source.
#[derive(Debug, Clone, PartialEq)]
pub struct Accepted {
    /// What verification established.
    pub verified: Verified,
    /// The event's metadata.
    pub meta: EventMeta,
}

/// A built source.
#[derive(Debug)]
pub struct Source {
    preset: Option<&'static str>,
    methods: Vec<String>,
    checks: Vec<Check>,
    handshakes: Vec<Handshake>,
    schema: Option<PayloadSchema>,
    id: Vec<Field>,
    /// An explicitly configured id must be present; a preset's default is best-effort.
    id_required: bool,
    topic: Vec<Field>,
    tenant: Vec<Field>,
    timestamp: Vec<Field>,
    responses: Responses,
}

impl Source {
    /// Validates a source specification. Every error names the key that is wrong.
    pub fn build(spec: SourceSpec) -> Result<Source, SpecError> {
        let (mut defaults, mut methods) = match spec.preset.as_deref() {
            Some(name) => (
                preset::expand(name, &spec)?,
                preset::find(name).map(|p| p.methods()).unwrap_or_default(),
            ),
            None => {
                preset::refuse_parameters_without_preset(&spec)?;
                (preset::Expansion::default(), vec!["POST".to_owned()])
            }
        };
        let mut checks = Vec::new();
        // A preset's checks take their values from the preset parameters under the same
        // names (`secret`, `public_key` …), so their errors name those keys as they are.
        for config in defaults.checks.drain(..) {
            checks.push(Check::build(config)?);
        }
        if let Some(verify) = spec.verify {
            let list = verify.into_vec();
            let many = list.len() > 1;
            for (i, config) in list.into_iter().enumerate() {
                let key = if many {
                    format!("verify[{i}]")
                } else {
                    "verify".to_owned()
                };
                checks.push(Check::build(config).map_err(|e| e.within(&key))?);
            }
        }
        if checks.is_empty() {
            return Err(SpecError::new(
                "verify",
                "no verification configured: set `preset`, or a `[source.verify]` table with `kind` (kind = \"none\" accepts unauthenticated requests, explicitly)",
            ));
        }
        let mut handshakes = Vec::new();
        let own = spec.handshake.unwrap_or_default();
        let preset_count = defaults.handshakes.len();
        for (i, config) in defaults.handshakes.drain(..).chain(own).enumerate() {
            let handshake = if i < preset_count {
                Handshake::build(config)?
            } else {
                Handshake::build(config)
                    .map_err(|e| e.within(&format!("handshake[{}]", i - preset_count)))?
            };
            if let Some(method) = handshake.method() {
                if !methods.iter().any(|m| m == method) {
                    methods.push(method.to_owned());
                }
            }
            handshakes.push(handshake);
        }
        let field = |key: &str,
                     given: Option<OneOrMany<String>>,
                     default: &[String]|
         -> Result<Vec<Field>, SpecError> {
            match given {
                Some(list) => list
                    .into_vec()
                    .iter()
                    .map(|text| Field::parse(key, text))
                    .collect(),
                None => default.iter().map(|text| Field::parse(key, text)).collect(),
            }
        };
        let id_required = spec.id.is_some();
        let schema = match spec.schema.or(defaults.schema.take()) {
            Some(value) => Some(PayloadSchema::build("schema", &value)?),
            None => None,
        };
        Ok(Source {
            preset: defaults.preset,
            methods,
            id: field("id", spec.id, &defaults.id)?,
            id_required,
            topic: field("topic", spec.topic, &defaults.topic)?,
            tenant: field("tenant", spec.tenant, &defaults.tenant)?,
            timestamp: field("timestamp", spec.timestamp, &defaults.timestamp)?,
            checks,
            handshakes,
            schema,
            responses: defaults.responses,
        })
    }

    /// The preset this source was built from.
    pub fn preset(&self) -> Option<&'static str> {
        self.preset
    }

    /// The methods the source takes unless its configuration says otherwise: `POST`, and
    /// what its preset's handshakes need.
    pub fn default_methods(&self) -> &[String] {
        &self.methods
    }

    /// The source's checks, in the order they run.
    pub fn checks(&self) -> &[Check] {
        &self.checks
    }

    /// The OIDC checks: the server fetches keys for their issuers.
    pub fn oidc(&self) -> impl Iterator<Item = &OidcCheck> {
        self.checks.iter().filter_map(|c| match c {
            Check::Oidc(o) => Some(o),
            _ => None,
        })
    }

    /// Lower-cased names of the headers that carry this source's credentials, plus the
    /// ones that carry credentials anywhere (`authorization`, `cookie` …).
    pub fn credential_headers(&self) -> Vec<String> {
        let mut names: Vec<String> = [
            "authorization",
            "proxy-authorization",
            "cookie",
            "x-api-key",
        ]
        .map(String::from)
        .to_vec();
        for check in &self.checks {
            for name in check.credential_headers() {
                let name = name.to_ascii_lowercase();
                if !names.contains(&name) {
                    names.push(name);
                }
            }
        }
        names
    }

    /// Whether verifying a request may take a public-key operation (see
    /// [`Check::is_asymmetric`]).
    pub fn is_asymmetric(&self) -> bool {
        self.checks.iter().any(Check::is_asymmetric)
    }

    /// Query parameters carrying credentials: stored and shown as `[redacted]`.
    pub fn credential_query_params(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for check in &self.checks {
            for name in check.credential_query_params() {
                if !names.iter().any(|n| n == name) {
                    names.push(name.to_owned());
                }
            }
        }
        names
    }

    /// The answers this source gives.
    pub fn responses(&self) -> &Responses {
        &self.responses
    }

    /// Where the event id is read, in order of preference.
    pub fn id_fields(&self) -> &[Field] {
        &self.id
    }

    /// Where the topic is read, in order of preference.
    pub fn topic_fields(&self) -> &[Field] {
        &self.topic
    }

    /// Whether events of this source carry a dedupe id.
    pub fn has_id(&self) -> bool {
        !self.id.is_empty()
    }

    /// The answer to `request` when it is one of the source's handshakes (`None` when it
    /// is not): a verified handshake passes the source's checks first. A handshake is never
    /// an event.
    pub fn handshake(
        &self,
        request: &Request<'_>,
        now: OffsetDateTime,
        keys: &dyn KeyLookup,
    ) -> Option<Result<HandshakeReply, VerifyError>> {
        if self.handshakes.is_empty() {
            return None;
        }
        let mut ctx = Context::new(request);
        let handshake = self.handshakes.iter().find(|h| h.matches(&ctx))?;
        if handshake.is_verified() {
            for check in &self.checks {
                if let Err(e) = check.verify(&mut ctx, now, keys) {
                    return Some(Err(e));
                }
            }
        }
        Some(handshake.answer(&ctx))
    }

    /// The source's handshakes.
    pub fn handshakes(&self) -> &[Handshake] {
        &self.handshakes
    }

    /// Verifies `request` as of `now`: every check, then the schema, then reads the event's
    /// metadata. Authentication always comes first, so an unauthenticated caller learns
    /// nothing about the payload rules.
    pub fn accept(
        &self,
        request: &Request<'_>,
        now: OffsetDateTime,
        keys: &dyn KeyLookup,
    ) -> Result<Accepted, VerifyError> {
        let mut ctx = Context::new(request);
        let mut verified = Verified::default();
        for check in &self.checks {
            verified.merge(check.verify(&mut ctx, now, keys)?);
        }
        if let Some(schema) = &self.schema {
            schema.validate(&ctx)?;
        }
        let claims = verified.claims.as_ref();
        let read = |fields: &[Field]| {
            fields
                .iter()
                .find_map(|f| f.read(&ctx, claims).filter(|v| !v.is_empty()))
        };
        let id = read(&self.id);
        if id.is_none() && self.id_required {
            let names: Vec<String> = self.id.iter().map(Field::to_string).collect();
            return Err(VerifyError::new(
                ErrorKind::MissingField,
                format!("event id `{}` is missing", names.join("` or `")),
            ));
        }
        let provider_timestamp_raw = read(&self.timestamp);
        let meta = EventMeta {
            id,
            topic: read(&self.topic),
            tenant: read(&self.tenant),
            provider_timestamp: provider_timestamp_raw
                .as_deref()
                .and_then(|t| parse_timestamp(t, TimestampFormat::Auto).ok()),
            provider_timestamp_raw,
        };
        Ok(Accepted { verified, meta })
    }

    /// Signs `request` as this source's provider would, so that [`accept`](Self::accept)
    /// passes. Feeds `hookgate send`, the tests and the benchmarks. A scheme that carries
    /// its signature inside the body (Mailgun) returns the body to send instead of the
    /// request's.
    pub fn sign(
        &self,
        request: &mut Request<'_>,
        now: OffsetDateTime,
        keys: &SigningKeys,
    ) -> Result<Option<Vec<u8>>, SignError> {
        let mut new_body = None;
        for check in &self.checks {
            let mut input = SignInput {
                request,
                now,
                keys,
                new_body: None,
            };
            check.sign(&mut input)?;
            if input.new_body.is_some() {
                new_body = input.new_body;
            }
        }
        Ok(new_body)
    }
}

pub(crate) fn _assert_send_sync() {
    fn is<T: Send + Sync>() {}
    is::<Source>();
}
