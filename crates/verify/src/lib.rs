//! Verification and signing of incoming webhooks, by configuration alone.
//!
//! # The model
//!
//! A [`Request`] is what arrived: method, path, query, headers (case-insensitive,
//! repeatable), the raw body bytes and the peer address. A [`Source`] is built from a
//! `[[source]]` configuration table ([`SourceSpec`]), either spelled out as generic checks
//! ([`CheckConfig`]: `hmac`, `jwt`, `oidc`, `token`, `basic`, `standard-webhooks`, `ip`,
//! `twilio`, `public-key`, `none`) or through a preset that is nothing but such checks written as data
//! ([`preset`], one record per provider in `crates/verify/presets/`). A source runs every check (all must pass), then validates the payload
//! against its JSON Schema, then reads the event's id, topic, tenant and provider timestamp
//! from `header:`, `json:`, `query:` or `claim:` fields — [`Source::accept`]. Refusals are a
//! [`VerifyError`] whose [`ErrorKind`] says why; the source's [`Responses`] turn any
//! outcome into the status and body the provider's own document specifies.
//!
//! Signed content and claim bindings share one template language ([`Template`]):
//! `{body}`, `{body:md5}`, `{header:NAME}`, `{json:/pointer}`, `{request:path}` …; an
//! unknown placeholder fails when the configuration is built, never at request time.
//!
//! A source may also answer its provider's handshakes ([`handshake`], [`Source::handshake`]):
//! a URL verification or challenge is answered as the provider expects and never stored.
//!
//! Every check can also sign ([`Source::sign`]), so the same configuration produces
//! requests its verifier accepts: the provider simulator, the tests and the benchmarks use
//! that.
//!
//! # Invariants
//!
//! - No I/O: no sockets, no files, no clock. The caller passes `now`, reads key files,
//!   and fetches OIDC keys; OIDC verification asks a [`KeyLookup`] and, when keys are
//!   missing, fails with [`ErrorKind::KeysNotLoaded`] / [`ErrorKind::UnknownKey`] naming the
//!   issuer so the caller can fetch and retry.
//! - Algorithms come from configuration only; a token's `alg` merely selects among them
//!   (`none` and HS-signed-with-a-public-key are refused).
//! - An untrusted OIDC issuer is refused before any key is asked for.
//! - Secrets and signatures are compared in constant time and never appear in errors or
//!   `Debug` output.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod error;
pub mod handshake;
pub mod keygen;
pub mod preset;
mod request;
mod response;
mod schema;
pub mod scheme;
mod secret;
mod source;
mod template;
pub mod timestamp;

pub use error::{ErrorKind, SignError, SpecError, VerifyError};
pub use handshake::{HandshakeConfig, HandshakeReply};
pub use request::{Headers, Request};
pub use response::{Outcome, Reply, Responses};
pub use schema::PayloadSchema;
pub use scheme::jose::Algorithm;
pub use scheme::oidc::{check_issuer_url, KeyLookup, KeySet, KeySetError, NoKeys};
pub use scheme::standard_webhooks::{
    public_key_of as standard_webhooks_public_key, sign_with as standard_webhooks_sign,
    WebhookSigner,
};
pub use scheme::{Check, CheckConfig, OneOrMany, SigningKeys, Verified};
pub use secret::{ct_eq_any_len, Encoding, HashAlgorithm, Secret};
pub use source::{Accepted, EventMeta, Source, SourceSpec};
pub use template::{Context, Field, Template};
