//! Handshakes: the requests a provider sends to prove an endpoint before (or between) its
//! events — Slack's `url_verification`, Meta's `hub.challenge` GET, X's CRC, Asana's
//! `X-Hook-Secret` … A handshake is answered as its provider expects and never stored.
//!
//! A `[[handshake]]` table says when a request is one (`when`: the method and field values),
//! whether the source's checks must pass first (`verified`, default `true`), which fields
//! must equal a configured value (`require`, compared in constant time), and the reply.
//! A reply's body and headers may carry `{json:/…}`, `{query:…}` and `{header:…}` values of
//! the request, and `{hmac:hex|base64:FIELD}` (the HMAC of a field's value with the
//! handshake's `secret`, for Zoom's and X's challenges). Every value copied or MACed into a
//! reply must be a plain token — at most 512 bytes of letters, digits and `-._~+/=:` — so a
//! handshake can neither reflect markup nor be used to MAC a forged event body (an event is
//! JSON, which a token cannot be).

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::error::{ErrorKind, SpecError, VerifyError};
use crate::secret::{ct_eq_any_len, Encoding, HashAlgorithm, Secret};
use crate::template::{Context, Field};

/// The most bytes of a request value a handshake reply carries.
pub const MAX_TOKEN: usize = 512;

/// A `[[source.handshake]]` table, or a preset's.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HandshakeConfig {
    /// The provider's name for it (`url_verification`), shown in logs.
    pub name: String,
    /// `method = "GET"`, and `FIELD = "value"` (or `"*"`: present and not empty), all of
    /// which must hold.
    #[serde(default)]
    pub when: BTreeMap<String, String>,
    /// Whether the source's checks must pass before the handshake is answered.
    #[serde(default = "yes")]
    pub verified: bool,
    /// `FIELD = "value"`: each must equal its value (e.g. Meta's `hub.verify_token`).
    #[serde(default)]
    pub require: BTreeMap<String, String>,
    /// The key of the reply's `{hmac:…}` values.
    pub secret: Option<String>,
    /// The hash of the reply's `{hmac:…}` values; default `sha256`.
    #[serde(default)]
    pub algorithm: HashAlgorithm,
    /// The reply; default `200` with no body.
    #[serde(default)]
    pub reply: ReplyConfig,
    /// A field holding a URL the gateway GETs once the handshake is answered: SNS's
    /// `json:/SubscribeURL`. Only an `https://sns.<region>.amazonaws.com/` URL is visited.
    pub visit: Option<String>,
    /// Tests only: a loopback `http` URL may be visited too.
    #[serde(default)]
    pub visit_loopback: bool,
    /// A field holding a secret the provider hands over (Asana's `header:X-Hook-Secret`):
    /// the gateway keeps it in the file `capture_into`, once — a later handshake with
    /// another secret is refused — for an `hmac` check's `secret_from_handshake`.
    pub capture: Option<String>,
    /// The file (an absolute path) the captured secret is kept in.
    pub capture_into: Option<String>,
}

/// A capture file must be an absolute path: the gateway writes it whatever its working
/// directory.
pub(crate) fn check_capture_path(key: &str, path: &str) -> Result<(), SpecError> {
    if path.starts_with('/') && !path.ends_with('/') {
        Ok(())
    } else {
        Err(SpecError::new(
            key,
            format!("`{path}` is not an absolute file path"),
        ))
    }
}

fn yes() -> bool {
    true
}

/// A handshake's reply as configured.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplyConfig {
    /// Default `200`.
    #[serde(default = "ok")]
    pub status: u16,
    /// Default `application/json` when there is a body.
    pub content_type: Option<String>,
    /// The body, with placeholders.
    #[serde(default)]
    pub body: String,
    /// Headers, with placeholders.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

impl Default for ReplyConfig {
    fn default() -> Self {
        ReplyConfig {
            status: 200,
            content_type: None,
            body: String::new(),
            headers: BTreeMap::new(),
        }
    }
}

fn ok() -> u16 {
    200
}

/// The answer to a handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandshakeReply {
    /// The handshake's name.
    pub name: String,
    /// HTTP status.
    pub status: u16,
    /// `Content-Type`, when there is a body.
    pub content_type: Option<String>,
    /// The body.
    pub body: Vec<u8>,
    /// Further headers.
    pub headers: Vec<(String, String)>,
    /// A URL to GET once answered (SNS's subscription confirmation), already checked to be
    /// an SNS URL.
    pub visit: Option<String>,
    /// A secret handed over, and the file to keep it in (`capture`, `capture_into`).
    pub captured: Option<(String, String)>,
}

#[derive(Debug)]
enum Condition {
    Method(String),
    Equals(Field, String),
    Present(Field),
}

#[derive(Debug, Clone)]
enum Piece {
    Literal(String),
    Value(Field),
    Hmac(Encoding, Field),
}

/// A built handshake.
#[derive(Debug)]
pub struct Handshake {
    name: String,
    when: Vec<Condition>,
    verified: bool,
    require: Vec<(Field, Secret)>,
    secret: Option<Secret>,
    algorithm: HashAlgorithm,
    status: u16,
    content_type: Option<String>,
    body: Vec<Piece>,
    headers: Vec<(String, Vec<Piece>)>,
    visit: Option<(Field, bool)>,
    capture: Option<(Field, String)>,
}

impl Handshake {
    /// Validates a handshake table; errors name its key.
    pub fn build(config: HandshakeConfig) -> Result<Handshake, SpecError> {
        let mut when = Vec::new();
        for (key, value) in &config.when {
            let at = format!("when.{key}");
            when.push(if key == "method" {
                Condition::Method(value.to_ascii_uppercase())
            } else {
                let field = Field::parse(&at, key)?;
                if value == "*" {
                    Condition::Present(field)
                } else {
                    Condition::Equals(field, value.clone())
                }
            });
        }
        if when.is_empty() {
            return Err(SpecError::new(
                "when",
                "say when a request is this handshake (`method`, or a field's value)",
            ));
        }
        let mut require = Vec::new();
        for (key, value) in config.require {
            let at = format!("require.{key}");
            if value.is_empty() {
                return Err(SpecError::new(
                    at,
                    "is empty (an unset environment variable?)",
                ));
            }
            require.push((Field::parse(&at, &key)?, Secret::new(value)));
        }
        let body = parse_reply("reply.body", &config.reply.body)?;
        let mut headers = Vec::new();
        for (name, value) in &config.reply.headers {
            headers.push((
                name.clone(),
                parse_reply(&format!("reply.headers.{name}"), value)?,
            ));
        }
        let uses_hmac = body
            .iter()
            .chain(headers.iter().flat_map(|(_, p)| p))
            .any(|p| matches!(p, Piece::Hmac(..)));
        let secret = match config.secret {
            Some(s) if s.is_empty() => {
                return Err(SpecError::new(
                    "secret",
                    "is empty (an unset environment variable?)",
                ))
            }
            Some(s) => Some(Secret::new(s)),
            None if uses_hmac => {
                return Err(SpecError::new(
                    "secret",
                    "the reply has `{hmac:…}`: set the key it is computed with",
                ))
            }
            None => None,
        };
        if !(100..=599).contains(&config.reply.status) {
            return Err(SpecError::new("reply.status", "is not an HTTP status"));
        }
        let content_type = match config.reply.content_type {
            Some(ct) => Some(ct),
            None if !config.reply.body.is_empty() => Some("application/json".to_owned()),
            None => None,
        };
        let visit = match &config.visit {
            Some(text) => Some((Field::parse("visit", text)?, config.visit_loopback)),
            None => None,
        };
        let capture = match (config.capture, config.capture_into) {
            (Some(field), Some(path)) => {
                check_capture_path("capture_into", &path)?;
                Some((Field::parse("capture", &field)?, path))
            }
            (None, None) => None,
            (Some(_), None) => {
                return Err(SpecError::new(
                    "capture_into",
                    "name the file the captured secret is kept in",
                ))
            }
            (None, Some(_)) => {
                return Err(SpecError::new(
                    "capture",
                    "name the field holding the secret to keep",
                ))
            }
        };
        Ok(Handshake {
            capture,
            visit,
            name: config.name,
            when,
            verified: config.verified,
            require,
            secret,
            algorithm: config.algorithm,
            status: config.reply.status,
            content_type,
            body,
            headers,
        })
    }

    /// The handshake's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the source's checks run first.
    pub fn is_verified(&self) -> bool {
        self.verified
    }

    /// The methods the handshake arrives with, if it names one.
    pub fn method(&self) -> Option<&str> {
        self.when.iter().find_map(|c| match c {
            Condition::Method(m) => Some(m.as_str()),
            _ => None,
        })
    }

    /// Whether `ctx`'s request is this handshake.
    pub(crate) fn matches(&self, ctx: &Context<'_, '_>) -> bool {
        self.when.iter().all(|c| match c {
            Condition::Method(m) => ctx.request.method.eq_ignore_ascii_case(m),
            Condition::Equals(field, value) => field.read(ctx, None).as_deref() == Some(value),
            Condition::Present(field) => field.read(ctx, None).is_some_and(|v| !v.is_empty()),
        })
    }

    /// Checks `require` and renders the reply.
    pub(crate) fn answer(&self, ctx: &Context<'_, '_>) -> Result<HandshakeReply, VerifyError> {
        for (field, expected) in &self.require {
            let given = field.read(ctx, None).ok_or_else(|| {
                VerifyError::new(
                    ErrorKind::MissingCredential,
                    format!("handshake `{}`: `{field}` is missing", self.name),
                )
            })?;
            if !ct_eq_any_len(given.as_bytes(), expected.expose()) {
                return Err(VerifyError::new(
                    ErrorKind::BadSignature,
                    format!(
                        "handshake `{}`: `{field}` does not match the configured value",
                        self.name
                    ),
                ));
            }
        }
        let body = self.render(ctx, &self.body)?;
        let mut headers = Vec::new();
        for (name, pieces) in &self.headers {
            headers.push((name.clone(), self.render(ctx, pieces)?));
        }
        let visit = match &self.visit {
            None => None,
            Some((field, loopback)) => {
                let url = field.read(ctx, None).ok_or_else(|| {
                    VerifyError::new(
                        ErrorKind::MissingField,
                        format!("handshake `{}`: `{field}` is missing", self.name),
                    )
                })?;
                crate::scheme::aws_sns::check_sns_url(&url, "", *loopback).map_err(|why| {
                    VerifyError::new(
                        ErrorKind::Malformed,
                        format!("handshake `{}`: {why}; it is not visited", self.name),
                    )
                })?;
                Some(url)
            }
        };
        let captured = match &self.capture {
            Some((field, path)) => Some((path.clone(), self.token(ctx, field)?)),
            None => None,
        };
        Ok(HandshakeReply {
            captured,
            visit,
            name: self.name.clone(),
            status: self.status,
            content_type: self.content_type.clone(),
            body: body.into_bytes(),
            headers,
        })
    }

    fn render(&self, ctx: &Context<'_, '_>, pieces: &[Piece]) -> Result<String, VerifyError> {
        let mut out = String::new();
        for piece in pieces {
            match piece {
                Piece::Literal(text) => out.push_str(text),
                Piece::Value(field) => out.push_str(&self.token(ctx, field)?),
                Piece::Hmac(encoding, field) => {
                    let token = self.token(ctx, field)?;
                    let key = self.secret.as_ref().expect("checked at build");
                    out.push_str(
                        &encoding.encode(&self.algorithm.mac_of(key.expose(), token.as_bytes())),
                    );
                }
            }
        }
        Ok(out)
    }

    /// A request value that may go into a reply: a plain token, or the handshake fails.
    fn token(&self, ctx: &Context<'_, '_>, field: &Field) -> Result<String, VerifyError> {
        let value = field
            .read(ctx, None)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| {
                VerifyError::new(
                    ErrorKind::MissingField,
                    format!("handshake `{}`: `{field}` is missing", self.name),
                )
            })?;
        if value.len() > MAX_TOKEN || !value.bytes().all(is_token_byte) {
            return Err(VerifyError::new(
                ErrorKind::Malformed,
                format!(
                    "handshake `{}`: `{field}` is not a plain token (at most {MAX_TOKEN} letters, digits and `-._~+/=:`)",
                    self.name
                ),
            ));
        }
        Ok(value)
    }
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~+/=:".contains(&b)
}

/// Splits a reply template: `{json:/…}`, `{json?:…}` is not allowed (a reply value must be
/// there), `{query:…}`, `{header:…}` and `{hmac:ENC:FIELD}` are placeholders; any other
/// brace is literal, so JSON bodies are written as they are.
fn parse_reply(key: &str, text: &str) -> Result<Vec<Piece>, SpecError> {
    let mut pieces = Vec::new();
    let mut literal = String::new();
    let mut rest = text;
    while let Some(at) = rest.find('{') {
        literal.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let placeholder = after.find('}').map(|end| &after[..end]).filter(|p| {
            ["json:", "query:", "header:", "hmac:"]
                .iter()
                .any(|family| p.starts_with(family))
        });
        let Some(placeholder) = placeholder else {
            literal.push('{');
            rest = after;
            continue;
        };
        if !literal.is_empty() {
            pieces.push(Piece::Literal(std::mem::take(&mut literal)));
        }
        pieces.push(match placeholder.strip_prefix("hmac:") {
            Some(spec) => {
                let (encoding, field) = spec.split_once(':').ok_or_else(|| {
                    SpecError::new(key, format!("`{{{placeholder}}}`: write `{{hmac:hex:FIELD}}` or `{{hmac:base64:FIELD}}`"))
                })?;
                let encoding = match encoding {
                    "hex" => Encoding::Hex,
                    "base64" => Encoding::Base64,
                    other => {
                        return Err(SpecError::new(
                            key,
                            format!("`{{{placeholder}}}`: `{other}` is not `hex` or `base64`"),
                        ))
                    }
                };
                Piece::Hmac(encoding, Field::parse(key, field)?)
            }
            None => Piece::Value(Field::parse(key, placeholder)?),
        });
        rest = &after[placeholder.len() + 1..];
    }
    literal.push_str(rest);
    if !literal.is_empty() {
        pieces.push(Piece::Literal(literal));
    }
    Ok(pieces)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::Request;

    fn build(text: &str) -> Handshake {
        Handshake::build(toml::from_str(text).unwrap()).unwrap()
    }

    #[test]
    fn a_json_challenge_is_echoed_inside_a_literal_json_body() {
        let h = build(
            r#"name = "url_verification"
when = { "json:/type" = "url_verification" }
reply = { body = '{"challenge":"{json:/challenge}"}' }"#,
        );
        let req = Request::post(
            "/",
            br#"{"type":"url_verification","challenge":"3eZbrw1a"}"#,
        );
        let ctx = Context::new(&req);
        assert!(h.matches(&ctx));
        let reply = h.answer(&ctx).unwrap();
        assert_eq!(reply.body, br#"{"challenge":"3eZbrw1a"}"#);
        assert_eq!(reply.content_type.as_deref(), Some("application/json"));
        let event = Request::post("/", br#"{"type":"event_callback"}"#);
        assert!(!h.matches(&Context::new(&event)));
    }

    #[test]
    fn an_hmac_of_a_value_with_the_secret() {
        let h = build(
            r#"name = "crc"
when = { method = "GET", "query:crc_token" = "*" }
verified = false
secret = "consumer-secret"
reply = { body = '{"response_token":"sha256={hmac:base64:query:crc_token}"}' }"#,
        );
        let mut req = Request::post("/", b"");
        req.method = "GET".into();
        req.query = Some("crc_token=abc123".into());
        let ctx = Context::new(&req);
        assert!(h.matches(&ctx));
        let expected =
            Encoding::Base64.encode(&HashAlgorithm::Sha256.mac_of(b"consumer-secret", b"abc123"));
        assert_eq!(
            String::from_utf8(h.answer(&ctx).unwrap().body).unwrap(),
            format!(r#"{{"response_token":"sha256={expected}"}}"#)
        );
        req.method = "POST".into();
        assert!(
            !h.matches(&Context::new(&req)),
            "the method is part of `when`"
        );
    }

    #[test]
    fn a_value_that_is_not_a_plain_token_is_refused() {
        let h = build(
            r#"name = "crc"
when = { "query:crc_token" = "*" }
secret = "s"
reply = { body = '{hmac:base64:query:crc_token}' }"#,
        );
        for bad in [
            "%7B%22id%22%3A1%7D",
            "a%3Cscript%3E",
            &"a".repeat(MAX_TOKEN + 1),
        ] {
            let mut req = Request::post("/", b"");
            req.query = Some(format!("crc_token={bad}"));
            let err = h.answer(&Context::new(&req)).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Malformed, "{bad}");
        }
    }

    #[test]
    fn a_required_value_is_compared_and_missing_or_wrong_is_refused() {
        let h = build(
            r#"name = "subscribe"
when = { method = "GET", "query:hub.mode" = "subscribe" }
require = { "query:hub.verify_token" = "my-token" }
reply = { content_type = "text/plain", body = "{query:hub.challenge}" }"#,
        );
        let mut req = Request::post("/", b"");
        req.method = "GET".into();
        req.query =
            Some("hub.mode=subscribe&hub.verify_token=my-token&hub.challenge=1158201444".into());
        let reply = h.answer(&Context::new(&req)).unwrap();
        assert_eq!(reply.body, b"1158201444");
        assert_eq!(reply.content_type.as_deref(), Some("text/plain"));
        req.query = Some("hub.mode=subscribe&hub.verify_token=other&hub.challenge=1".into());
        assert_eq!(
            h.answer(&Context::new(&req)).unwrap_err().kind(),
            ErrorKind::BadSignature
        );
        req.query = Some("hub.mode=subscribe&hub.challenge=1".into());
        assert_eq!(
            h.answer(&Context::new(&req)).unwrap_err().kind(),
            ErrorKind::MissingCredential
        );
    }

    #[test]
    fn headers_carry_values_and_configuration_errors_name_their_key() {
        let h = build(
            r#"name = "x-hook-secret"
when = { "header:X-Hook-Secret" = "*" }
verified = false
reply = { headers = { "X-Hook-Secret" = "{header:X-Hook-Secret}" } }"#,
        );
        let req = Request::post("/", b"").header(
            "X-Hook-Secret",
            "b537207f20cbfa02357cf448134da559e8bd39d61597dcd5631b8012eae53e81",
        );
        let reply = h.answer(&Context::new(&req)).unwrap();
        assert_eq!(reply.headers[0].1.len(), 64);
        assert!(reply.body.is_empty() && reply.content_type.is_none());

        let err = |text: &str| {
            Handshake::build(toml::from_str(text).unwrap())
                .unwrap_err()
                .key
        };
        assert_eq!(err(r#"name = "x""#), "when");
        assert_eq!(
            err(r#"name = "x"
when = { method = "GET" }
reply = { body = "{hmac:hex:query:t}" }"#),
            "secret"
        );
        assert_eq!(
            err(r#"name = "x"
when = { method = "GET" }
secret = "s"
reply = { body = "{hmac:b32:query:t}" }"#),
            "reply.body"
        );
        assert_eq!(
            err(r#"name = "x"
when = { "body" = "1" }"#),
            "when.body"
        );
    }
}
