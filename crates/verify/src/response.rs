//! What the client is told: per-preset status codes and bodies, exactly as each provider's
//! documentation expects them, and hookgate's defaults otherwise (listed in the README's
//! "Default answers").

use crate::error::{ErrorKind, VerifyError};

/// One HTTP answer: a status and a body (JSON text, plain text, or empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// HTTP status code.
    pub status: u16,
    /// The body.
    pub body: Vec<u8>,
    /// The body's `Content-Type` when not empty: `application/json` unless the provider
    /// expects text (Adyen's `[accepted]`).
    pub content_type: &'static str,
}

impl Reply {
    /// A reply with a JSON body.
    pub fn json(status: u16, body: &str) -> Reply {
        Reply {
            status,
            body: body.as_bytes().to_vec(),
            content_type: "application/json",
        }
    }

    /// A reply with a plain-text body.
    pub fn text(status: u16, body: &str) -> Reply {
        Reply {
            status,
            body: body.as_bytes().to_vec(),
            content_type: "text/plain; charset=utf-8",
        }
    }

    /// A reply with no body.
    pub fn empty(status: u16) -> Reply {
        Reply {
            status,
            body: Vec::new(),
            content_type: "application/json",
        }
    }
}

/// The answers of one source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Responses {
    /// Stored (or already stored: duplicates get this too).
    pub accepted: Reply,
    /// No credential at all.
    pub missing_credential: Reply,
    /// Any other authentication failure.
    pub rejected: Reply,
    /// The payload fails the schema.
    pub invalid_payload: Reply,
    /// The body cannot be read as the source needs it (not JSON, no event id, bad encoding).
    pub malformed_body: Reply,
    /// The body exceeds the size limit.
    pub too_large: Reply,
    /// The store cannot commit; the server adds `Retry-After`.
    pub unavailable: Reply,
    /// Something on hookgate's side failed (e.g. an issuer's keys cannot be fetched).
    pub internal: Reply,
}

impl Default for Responses {
    fn default() -> Self {
        Responses {
            accepted: Reply::json(200, r#"{"status":"ok"}"#),
            missing_credential: Reply::json(401, r#"{"error":"unauthorized"}"#),
            rejected: Reply::json(401, r#"{"error":"unauthorized"}"#),
            invalid_payload: Reply::json(422, r#"{"error":"invalid payload"}"#),
            malformed_body: Reply::json(400, r#"{"error":"malformed body"}"#),
            too_large: Reply::json(413, r#"{"error":"payload too large"}"#),
            unavailable: Reply::json(503, r#"{"error":"temporarily unavailable"}"#),
            internal: Reply::json(503, r#"{"error":"temporarily unavailable"}"#),
        }
    }
}

/// Every way a request can end, as far as the client's answer is concerned.
#[derive(Debug, Clone, Copy)]
pub enum Outcome<'e> {
    /// Stored, or a duplicate of a stored event.
    Accepted,
    /// Verification, schema or extraction refused it.
    Refused(&'e VerifyError),
    /// The body exceeds the limit.
    TooLarge,
    /// The body cannot be read.
    MalformedBody,
    /// The store cannot commit.
    Unavailable,
    /// An internal failure.
    Internal,
}

impl Responses {
    /// The answer for `outcome`.
    pub fn reply(&self, outcome: Outcome<'_>) -> &Reply {
        match outcome {
            Outcome::Accepted => &self.accepted,
            Outcome::TooLarge => &self.too_large,
            Outcome::MalformedBody => &self.malformed_body,
            Outcome::Unavailable => &self.unavailable,
            Outcome::Internal => &self.internal,
            Outcome::Refused(e) => match e.kind() {
                ErrorKind::MissingCredential => &self.missing_credential,
                ErrorKind::InvalidPayload => &self.invalid_payload,
                ErrorKind::MissingField => &self.malformed_body,
                ErrorKind::KeysNotLoaded => &self.internal,
                _ => &self.rejected,
            },
        }
    }

    /// Every refusal answered with `reply`.
    pub(crate) fn refusing_all(mut self, reply: Reply) -> Self {
        self.missing_credential = reply.clone();
        self.rejected = reply;
        self
    }
}
