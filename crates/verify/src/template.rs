//! The one small template language of hookgate: signed content, claim bindings and
//! command arguments are all written in it.
//!
//! `{body}` raw body · `{body:md5}` / `{body:sha256}` hex digests of the body ·
//! `{body:sha256:base64}` the SHA-256 digest in base64 · `{header:NAME}` ·
//! `{json:/pointer}` · `{json?:/pointer}` (empty when absent) · `{query:NAME}` ·
//! `{request:method}` · `{request:path}` · `{request:query}` · `{request:target}` (the path,
//! then `?` and the query when there is one) · `{signature:NAME}` (a `NAME=value` element of
//! a keyed signature header, e.g. Stripe's `t`). `{{` and `}}` are literal braces.
//! An unknown placeholder is a configuration error, found when the template is parsed.

use std::cell::OnceCell;
use std::fmt;

use md5::Md5;
use sha2::{Digest, Sha256};

use crate::error::{ErrorKind, SpecError, VerifyError};
use crate::request::Request;

/// A parsed template.
#[derive(Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
    source: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Body,
    BodyMd5,
    BodySha256,
    BodySha256Base64,
    Header(String),
    Json(String),
    JsonOrEmpty(String),
    Query(String),
    Method,
    Path,
    RawQuery,
    Target,
    Signature(String),
}

impl fmt::Debug for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Template({:?})", self.source)
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl Template {
    /// Parses `text`; `key` names the config key in errors.
    pub fn parse(key: &str, text: &str) -> Result<Template, SpecError> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut chars = text.char_indices().peekable();
        while let Some((at, c)) = chars.next() {
            match c {
                '{' if chars.peek().map(|(_, c)| *c) == Some('{') => {
                    chars.next();
                    literal.push('{');
                }
                '}' if chars.peek().map(|(_, c)| *c) == Some('}') => {
                    chars.next();
                    literal.push('}');
                }
                '{' => {
                    let rest = &text[at + 1..];
                    let end = rest.find('}').ok_or_else(|| {
                        SpecError::new(key, format!("unclosed `{{` at byte {at} in template `{text}`"))
                    })?;
                    let placeholder = &rest[..end];
                    for _ in 0..placeholder.chars().count() + 1 {
                        chars.next();
                    }
                    if !literal.is_empty() {
                        parts.push(Part::Literal(std::mem::take(&mut literal)));
                    }
                    parts.push(parse_placeholder(placeholder).map_err(|m| SpecError::new(key, m))?);
                }
                '}' => {
                    return Err(SpecError::new(
                        key,
                        format!("unmatched `}}` at byte {at} in template `{text}` (write `}}}}` for a literal brace)"),
                    ))
                }
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            parts.push(Part::Literal(literal));
        }
        Ok(Template {
            parts,
            source: text.to_owned(),
        })
    }

    /// The template text as configured.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether the template reads a digest of the body (`{body:md5}`, `{body:sha256}`).
    pub fn uses_body_digest(&self) -> bool {
        self.parts
            .iter()
            .any(|p| matches!(p, Part::BodyMd5 | Part::BodySha256 | Part::BodySha256Base64))
    }

    /// The header names the template reads.
    pub fn headers(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Header(h) => Some(h.as_str()),
            _ => None,
        })
    }

    /// Renders the template piece by piece into `sink`, without copying the body.
    pub fn render_into(
        &self,
        ctx: &Context<'_, '_>,
        sink: &mut dyn FnMut(&[u8]),
    ) -> Result<(), VerifyError> {
        for part in &self.parts {
            match part {
                Part::Literal(s) => sink(s.as_bytes()),
                Part::Body => sink(ctx.request.body),
                Part::BodyMd5 => sink(hex::encode(Md5::digest(ctx.request.body)).as_bytes()),
                Part::BodySha256 => sink(hex::encode(Sha256::digest(ctx.request.body)).as_bytes()),
                Part::BodySha256Base64 => {
                    sink(crate::secret::b64(&Sha256::digest(ctx.request.body)).as_bytes())
                }
                Part::Method => sink(ctx.request.method.as_bytes()),
                Part::Path => sink(ctx.request.path.as_bytes()),
                Part::RawQuery => sink(ctx.request.query.as_deref().unwrap_or("").as_bytes()),
                Part::Target => {
                    sink(ctx.request.path.as_bytes());
                    if let Some(query) = ctx.request.query.as_deref().filter(|q| !q.is_empty()) {
                        sink(b"?");
                        sink(query.as_bytes());
                    }
                }
                Part::Header(name) => {
                    let value = ctx.request.headers.get(name).ok_or_else(|| {
                        VerifyError::new(
                            ErrorKind::MissingCredential,
                            format!("header `{name}` is missing"),
                        )
                    })?;
                    sink(value.as_bytes())
                }
                Part::Query(name) => {
                    let value = ctx.request.query_param(name).ok_or_else(|| {
                        VerifyError::new(
                            ErrorKind::MissingCredential,
                            format!("query parameter `{name}` is missing"),
                        )
                    })?;
                    sink(value.as_bytes())
                }
                Part::Json(pointer) => sink(ctx.json_text(pointer)?.as_bytes()),
                Part::JsonOrEmpty(pointer) => match ctx.json_text(pointer) {
                    Ok(text) => sink(text.as_bytes()),
                    Err(e) if ctx.json().is_none() => return Err(e),
                    Err(_) => {}
                },
                Part::Signature(name) => {
                    let value = ctx.signature_value(name).ok_or_else(|| {
                        VerifyError::new(
                            ErrorKind::Malformed,
                            format!("signature header has no `{name}=` element"),
                        )
                    })?;
                    sink(value.as_bytes())
                }
            }
        }
        Ok(())
    }

    /// Renders the template to bytes.
    pub fn render(&self, ctx: &Context<'_, '_>) -> Result<Vec<u8>, VerifyError> {
        let mut out = Vec::new();
        self.render_into(ctx, &mut |bytes| out.extend_from_slice(bytes))?;
        Ok(out)
    }

    /// Renders the template to text (invalid UTF-8 from the body is replaced).
    pub fn render_string(&self, ctx: &Context<'_, '_>) -> Result<String, VerifyError> {
        let bytes = self.render(ctx)?;
        Ok(String::from_utf8(bytes)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
    }
}

fn parse_placeholder(text: &str) -> Result<Part, String> {
    let (family, arg) = match text.split_once(':') {
        Some((f, a)) => (f, Some(a)),
        None => (text, None),
    };
    let need_arg = |what: &str| -> Result<String, String> {
        match arg {
            Some(a) if !a.is_empty() => Ok(a.to_owned()),
            _ => Err(format!(
                "placeholder `{{{text}}}` needs a {what}, e.g. `{{{family}:…}}`"
            )),
        }
    };
    Ok(match (family, arg) {
        ("body", None) => Part::Body,
        ("body", Some("md5")) => Part::BodyMd5,
        ("body", Some("sha256")) => Part::BodySha256,
        ("body", Some("sha256:base64")) => Part::BodySha256Base64,
        ("header", _) => Part::Header(need_arg("header name")?),
        ("query", _) => Part::Query(need_arg("query parameter name")?),
        ("json" | "json?", _) => {
            let pointer = need_arg("JSON pointer")?;
            if !pointer.starts_with('/') {
                return Err(format!("`{{{family}:{pointer}}}`: a JSON pointer starts with `/`, e.g. `{{json:/event_id}}`"));
            }
            if family == "json" {
                Part::Json(pointer)
            } else {
                Part::JsonOrEmpty(pointer)
            }
        }
        ("signature", _) => Part::Signature(need_arg("element name")?),
        ("request", Some("method")) => Part::Method,
        ("request", Some("path")) => Part::Path,
        ("request", Some("query")) => Part::RawQuery,
        ("request", Some("target")) => Part::Target,
        _ => {
            return Err(format!(
                "unknown placeholder `{{{text}}}`; known: {{body}}, {{body:md5}}, {{body:sha256}}, {{body:sha256:base64}}, {{header:NAME}}, \
                 {{json:/pointer}}, {{json?:/pointer}}, {{query:NAME}}, {{request:method}}, {{request:path}}, {{request:query}}, {{request:target}}, {{signature:NAME}}"
            ))
        }
    })
}

/// What a template or extractor reads from: the request, its body parsed as JSON at most
/// once, and the elements of a keyed signature header once a scheme has split it.
pub struct Context<'r, 'b> {
    /// The request.
    pub request: &'r Request<'b>,
    json: OnceCell<Option<serde_json::Value>>,
    signature_elements: Vec<(String, String)>,
}

impl<'r, 'b> Context<'r, 'b> {
    /// A context over `request`.
    pub fn new(request: &'r Request<'b>) -> Self {
        Context {
            request,
            json: OnceCell::new(),
            signature_elements: Vec::new(),
        }
    }

    /// The body parsed as JSON, or `None` when it is not JSON.
    pub fn json(&self) -> Option<&serde_json::Value> {
        self.json
            .get_or_init(|| serde_json::from_slice(self.request.body).ok())
            .as_ref()
    }

    /// The value at `pointer` in the body, rendered as text: strings as they are, other
    /// values as JSON.
    pub fn json_text(&self, pointer: &str) -> Result<String, VerifyError> {
        let json = self.json().ok_or_else(|| {
            VerifyError::new(
                ErrorKind::MissingField,
                format!("body is not JSON, so `{pointer}` cannot be read"),
            )
        })?;
        match json.pointer(pointer) {
            None | Some(serde_json::Value::Null) => Err(VerifyError::new(
                ErrorKind::MissingField,
                format!("body has no value at `{pointer}`"),
            )),
            Some(serde_json::Value::String(s)) => Ok(s.clone()),
            Some(other) => Ok(other.to_string()),
        }
    }

    pub(crate) fn set_signature_elements(&mut self, elements: Vec<(String, String)>) {
        self.signature_elements = elements;
    }

    fn signature_value(&self, name: &str) -> Option<&str> {
        self.signature_elements
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Where a value comes from: `header:NAME`, `json:/pointer`, `query:NAME` or `claim:NAME`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    /// A request header.
    Header(String),
    /// A value in the JSON body.
    Json(String),
    /// A query parameter.
    Query(String),
    /// A claim of the verified token.
    Claim(String),
    /// An element of a keyed signature header (`t` in Stripe's `t=…,v1=…`).
    Signature(String),
}

impl Field {
    /// Parses a field reference; `key` names the config key in errors.
    pub fn parse(key: &str, text: &str) -> Result<Field, SpecError> {
        let bad = || {
            SpecError::new(
                key,
                format!("`{text}` is not a field reference; write `header:NAME`, `json:/pointer`, `query:NAME` or `claim:NAME`"),
            )
        };
        let (family, arg) = text.split_once(':').ok_or_else(bad)?;
        if arg.is_empty() {
            return Err(bad());
        }
        match family {
            "header" => Ok(Field::Header(arg.to_owned())),
            "json" if arg.starts_with('/') => Ok(Field::Json(arg.to_owned())),
            "query" => Ok(Field::Query(arg.to_owned())),
            "claim" => Ok(Field::Claim(arg.to_owned())),
            "signature" => Ok(Field::Signature(arg.to_owned())),
            _ => Err(bad()),
        }
    }

    /// Reads the field; `claims` are the verified token's claims, if any. `None` when absent.
    pub fn read(
        &self,
        ctx: &Context<'_, '_>,
        claims: Option<&serde_json::Map<String, serde_json::Value>>,
    ) -> Option<String> {
        match self {
            Field::Header(name) => ctx.request.headers.get(name).map(str::to_owned),
            Field::Json(pointer) => ctx.json_text(pointer).ok(),
            Field::Query(name) => ctx.request.query_param(name),
            Field::Signature(name) => ctx.signature_value(name).map(str::to_owned),
            Field::Claim(name) => match claims?.get(name)? {
                serde_json::Value::String(s) => Some(s.clone()),
                serde_json::Value::Null => None,
                other => Some(other.to_string()),
            },
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Field::Header(n) => write!(f, "header:{n}"),
            Field::Json(p) => write!(f, "json:{p}"),
            Field::Query(n) => write!(f, "query:{n}"),
            Field::Claim(n) => write!(f, "claim:{n}"),
            Field::Signature(n) => write!(f, "signature:{n}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(body: &[u8]) -> Request<'_> {
        let mut r = Request::post("/hooks/x", body).header("X-Timestamp", "123");
        r.query = Some("a=1&b=two%20words".into());
        r
    }

    #[test]
    fn renders_every_placeholder() {
        let body = br#"{"event_id":"e-1","n":5}"#;
        let req = request(body);
        let ctx = Context::new(&req);
        let t = Template::parse(
            "t",
            "{request:method} {request:path}?{request:query} {header:x-timestamp}.{json:/event_id}.{json:/n}.{query:b} {{lit}}",
        )
        .unwrap();
        assert_eq!(
            t.render_string(&ctx).unwrap(),
            "POST /hooks/x?a=1&b=two%20words 123.e-1.5.two words {lit}"
        );
        let optional = Template::parse("t", "[{json?:/absent}][{json?:/n}] {request:target}")
            .unwrap()
            .render_string(&ctx)
            .unwrap();
        assert_eq!(optional, "[][5] /hooks/x?a=1&b=two%20words");
        let bare = Request::post("/bare", b"{}");
        assert_eq!(
            Template::parse("t", "{request:target}")
                .unwrap()
                .render_string(&Context::new(&bare))
                .unwrap(),
            "/bare"
        );
        let digests = Template::parse("t", "{body:md5} {body:sha256} {body:sha256:base64}")
            .unwrap()
            .render_string(&ctx)
            .unwrap();
        assert_eq!(
            digests,
            format!(
                "{} {} {}",
                hex::encode(Md5::digest(body)),
                hex::encode(Sha256::digest(body)),
                crate::secret::b64(&Sha256::digest(body))
            )
        );
        assert_eq!(
            Template::parse("t", "{body}")
                .unwrap()
                .render(&ctx)
                .unwrap(),
            body.to_vec()
        );
    }

    #[test]
    fn unknown_placeholders_are_config_errors() {
        for bad in [
            "{bdy}",
            "{body:sha1}",
            "{body:sha256:hex}",
            "{json?:id}",
            "{header:}",
            "{json:event_id}",
            "{request:host}",
            "{unclosed",
            "a}b",
        ] {
            let err = Template::parse("verify.signed", bad).unwrap_err();
            assert_eq!(err.key, "verify.signed", "{bad}");
        }
    }

    #[test]
    fn missing_values_say_which() {
        let req = request(b"not json");
        let ctx = Context::new(&req);
        let err = Template::parse("t", "{header:X-Missing}")
            .unwrap()
            .render(&ctx)
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::MissingCredential);
        assert!(err.detail().contains("X-Missing"));
        let err = Template::parse("t", "{json:/id}")
            .unwrap()
            .render(&ctx)
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::MissingField);
    }

    #[test]
    fn fields() {
        let req = request(br#"{"type":"orders/created"}"#);
        let ctx = Context::new(&req);
        assert_eq!(
            Field::parse("k", "json:/type")
                .unwrap()
                .read(&ctx, None)
                .as_deref(),
            Some("orders/created")
        );
        assert_eq!(
            Field::parse("k", "header:X-TIMESTAMP")
                .unwrap()
                .read(&ctx, None)
                .as_deref(),
            Some("123")
        );
        let mut claims = serde_json::Map::new();
        claims.insert("tenant".into(), "t1".into());
        assert_eq!(
            Field::parse("k", "claim:tenant")
                .unwrap()
                .read(&ctx, Some(&claims))
                .as_deref(),
            Some("t1")
        );
        assert!(Field::parse("k", "body").is_err());
        assert!(Field::parse("k", "json:type").is_err());
    }
}
