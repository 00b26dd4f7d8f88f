//! `kind = "hmac"`: an HMAC of a templated signed content, in a header of any layout.

use serde::Deserialize;
use time::OffsetDateTime;

use super::oidc::KeyLookup;
use super::{secret_list, SignInput, SignedTimestamp, Verified};
use crate::error::{ErrorKind, SignError, SpecError, VerifyError};
use crate::secret::{ct_eq, Encoding, HashAlgorithm, Secret};
use crate::template::{Context, Field, Template};
use crate::timestamp::TimestampFormat;

/// How the signature header is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// The whole value (after `prefix`) is one signature: `sha256=ab12…`, `SHA256:q83v…`.
    #[default]
    Plain,
    /// `key=value` elements, e.g. Stripe's `t=1492774577,v1=5257a8…,v1=…`; signatures are
    /// the elements named `signature_key`, the others are readable as `{signature:NAME}`.
    Pairs,
    /// Several signatures separated by `separator`, each optionally behind `item_prefix`,
    /// e.g. Standard Webhooks' `v1,abc= v1,def=`.
    List,
}

/// Configuration of an HMAC check.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HmacConfig {
    /// `sha1`, `sha256` (default), `sha384` or `sha512`.
    #[serde(default)]
    pub algorithm: HashAlgorithm,
    /// The header carrying the signature.
    pub header: Option<String>,
    /// Where the signature is instead of a header, e.g. Mailgun's `json:/signature/signature`.
    pub signature: Option<String>,
    /// `hex` (default), `base64` or `base64url`.
    #[serde(default)]
    pub encoding: Encoding,
    /// A literal prefix before the signature (`plain` layout), e.g. `sha256=`.
    pub prefix: Option<String>,
    /// The signed content as a template; default `{body}`.
    pub signed: Option<String>,
    /// Where the signed timestamp is read: `header:NAME`, `signature:t`, `json:/ptr`.
    pub timestamp: Option<String>,
    /// How the timestamp is written; default `auto`.
    #[serde(default)]
    pub timestamp_format: TimestampFormat,
    /// Accepted distance between the timestamp and now, either side; default `5m`.
    pub tolerance: Option<String>,
    /// Header layout; default `plain`.
    #[serde(default)]
    pub layout: Layout,
    /// `pairs`: the element name of signatures (default `v1`).
    pub signature_key: Option<String>,
    /// `pairs` (default `,`) and `list` (default ` `): element separator.
    pub separator: Option<String>,
    /// `list`: the prefix of each signature item, e.g. `v1,`.
    pub item_prefix: Option<String>,
    /// How the configured secret is written: `raw` (default: its bytes are the key),
    /// `hex` or `base64` (the key is the decoded bytes, e.g. Airtable's and Adyen's).
    #[serde(default)]
    pub key_encoding: KeyEncoding,
    /// The shared secret.
    pub secret: Option<String>,
    /// Several shared secrets, all accepted (rotation).
    #[serde(default)]
    pub secrets: Vec<String>,
    /// The secret a provider hands over in its handshake (Asana's `X-Hook-Secret`), kept
    /// by the gateway in this file ([`crate::handshake`]'s `capture_into`); looked up when
    /// verifying, beside any configured secret.
    pub secret_from_handshake: Option<String>,
}

/// How a configured HMAC key is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyEncoding {
    /// The secret's bytes are the key.
    #[default]
    Raw,
    /// The key is the hex-decoded secret.
    Hex,
    /// The key is the base64-decoded secret.
    Base64,
}

/// Where an HMAC signature is read.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Location {
    /// A header (the usual place).
    Header(String),
    /// A value inside the body (Mailgun's `signature.signature`).
    Body(Field),
}

/// A built HMAC check.
#[derive(Debug, Clone)]
pub struct HmacCheck {
    algorithm: HashAlgorithm,
    location: Location,
    encoding: Encoding,
    prefix: Option<String>,
    signed: Template,
    timestamp: Option<SignedTimestamp>,
    layout: Layout,
    signature_key: String,
    separator: String,
    item_prefix: Option<String>,
    key_encoding: KeyEncoding,
    secrets: Vec<Secret>,
    captured: Option<String>,
}

impl HmacCheck {
    /// Validates the configuration.
    pub fn build(config: HmacConfig) -> Result<Self, SpecError> {
        let configured = if config.secret_from_handshake.is_some()
            && config.secret.is_none()
            && config.secrets.is_empty()
        {
            Vec::new()
        } else {
            secret_list(config.secret, config.secrets)?
        };
        if let Some(name) = &config.secret_from_handshake {
            crate::handshake::check_capture_path("secret_from_handshake", name)?;
        }
        let secrets = configured
            .into_iter()
            .enumerate()
            .map(|(i, secret)| decode_key(config.key_encoding, secret, i))
            .collect::<Result<Vec<Secret>, SpecError>>()?;
        let signed = Template::parse("signed", config.signed.as_deref().unwrap_or("{body}"))?;
        let timestamp = SignedTimestamp::build(
            config.timestamp.as_deref(),
            config.timestamp_format,
            config.tolerance.as_deref(),
        )?;
        let location = match (config.header, config.signature) {
            (Some(header), None) if !header.trim().is_empty() => Location::Header(header),
            (Some(_), None) => {
                return Err(SpecError::new("header", "must name the signature header"))
            }
            (None, Some(text)) => match Field::parse("signature", &text)? {
                field @ Field::Json(_) => Location::Body(field),
                Field::Header(name) => Location::Header(name),
                _ => {
                    return Err(SpecError::new(
                        "signature",
                        format!(
                            "`{text}`: a signature is read from `header:NAME` or `json:/pointer`"
                        ),
                    ))
                }
            },
            (Some(_), Some(_)) => {
                return Err(SpecError::new(
                    "signature",
                    "set `header` or `signature`, not both",
                ))
            }
            (None, None) => {
                return Err(SpecError::new(
                    "header",
                    "must name the signature header (or set `signature = \"json:/pointer\"`)",
                ))
            }
        };
        if matches!(location, Location::Body(_)) && config.layout != Layout::Plain {
            return Err(SpecError::new(
                "layout",
                "a signature inside the body is one plain value",
            ));
        }
        let separator = config.separator.unwrap_or_else(|| match config.layout {
            Layout::List => " ".into(),
            _ => ",".into(),
        });
        if separator.is_empty() {
            return Err(SpecError::new("separator", "must not be empty"));
        }
        Ok(HmacCheck {
            algorithm: config.algorithm,
            location,
            encoding: config.encoding,
            prefix: config.prefix.filter(|p| !p.is_empty()),
            signed,
            timestamp,
            layout: config.layout,
            signature_key: config.signature_key.unwrap_or_else(|| "v1".into()),
            separator,
            item_prefix: config.item_prefix.filter(|p| !p.is_empty()),
            key_encoding: config.key_encoding,
            secrets,
            captured: config.secret_from_handshake,
        })
    }

    /// The signature header's name; `None` when the signature is inside the body.
    pub fn header(&self) -> Option<&str> {
        match &self.location {
            Location::Header(name) => Some(name),
            Location::Body(_) => None,
        }
    }

    /// What is missing when the signature is: `header `NAME`` or `signature `json:/…``.
    fn missing_what(&self) -> String {
        match &self.location {
            Location::Header(name) => format!("header `{name}`"),
            Location::Body(field) => format!("signature `{field}`"),
        }
    }

    /// Where the signature is read, as configured: `NAME` of a header or `json:/pointer`.
    fn location_name(&self) -> String {
        match &self.location {
            Location::Header(name) => name.clone(),
            Location::Body(field) => field.to_string(),
        }
    }

    pub(crate) fn verify(
        &self,
        ctx: &mut Context<'_, '_>,
        now: OffsetDateTime,
        keys: &dyn KeyLookup,
    ) -> Result<Verified, VerifyError> {
        let captured = match &self.captured {
            Some(name) => match keys.captured_secret(name) {
                Some(secret) => Some(secret),
                None if self.secrets.is_empty() => {
                    return Err(VerifyError::new(
                        ErrorKind::MissingCredential,
                        "no secret yet: the provider's handshake has not handed one over",
                    ))
                }
                None => None,
            },
            None => None,
        };
        let raw = match &self.location {
            Location::Header(name) => ctx.request.headers.get(name).map(str::to_owned),
            Location::Body(field) => field.read(ctx, None),
        };
        let raw = raw.ok_or_else(|| {
            VerifyError::new(
                ErrorKind::MissingCredential,
                format!("{} is missing", self.missing_what()),
            )
        })?;
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(VerifyError::new(
                ErrorKind::MissingCredential,
                format!("{} is empty", self.missing_what()),
            ));
        }
        let candidates = self.signatures(ctx, raw)?;
        let signed = &self.signed;
        let mut render_error = None;
        for (index, secret) in self.secrets.iter().chain(captured.as_ref()).enumerate() {
            let expected = self.algorithm.mac(secret.expose(), &mut |sink| {
                if let Err(e) = signed.render_into(ctx, sink) {
                    render_error = Some(e);
                }
            });
            if let Some(e) = render_error.take() {
                return Err(e);
            }
            if candidates.iter().any(|c| ct_eq(c, &expected)) {
                if let Some(timestamp) = &self.timestamp {
                    timestamp.check(ctx, now)?;
                }
                return Ok(Verified::new("hmac").with_key_id(format!("secret#{index}")));
            }
        }
        Err(VerifyError::new(
            ErrorKind::BadSignature,
            format!(
                "`{}` does not match the HMAC-{} of `{}` with any of the {} configured secret(s)",
                self.location_name(),
                self.algorithm.name(),
                self.signed,
                self.secrets.len() + usize::from(captured.is_some())
            ),
        ))
    }

    fn signatures(
        &self,
        ctx: &mut Context<'_, '_>,
        raw: &str,
    ) -> Result<Vec<Vec<u8>>, VerifyError> {
        let undecodable = || {
            VerifyError::new(
                ErrorKind::Malformed,
                format!(
                    "`{}` is not {:?}-encoded",
                    self.location_name(),
                    self.encoding
                ),
            )
        };
        match self.layout {
            Layout::Plain => {
                let value = match &self.prefix {
                    None => raw,
                    Some(prefix) => raw
                        .strip_prefix(prefix.as_str())
                        .ok_or_else(|| self.wrong_prefix(raw, prefix))?,
                };
                Ok(vec![self.encoding.decode(value).ok_or_else(undecodable)?])
            }
            Layout::Pairs => {
                let mut elements = Vec::new();
                for element in raw.split(self.separator.as_str()) {
                    let (k, v) = element.trim().split_once('=').ok_or_else(|| {
                        VerifyError::new(
                            ErrorKind::Malformed,
                            format!("`{}` element is not `key=value`", self.location_name()),
                        )
                    })?;
                    elements.push((k.trim().to_owned(), v.trim().to_owned()));
                }
                let signatures: Vec<Vec<u8>> = elements
                    .iter()
                    .filter(|(k, _)| *k == self.signature_key)
                    .filter_map(|(_, v)| self.encoding.decode(v))
                    .collect();
                ctx.set_signature_elements(elements);
                if signatures.is_empty() {
                    return Err(VerifyError::new(
                        ErrorKind::Malformed,
                        format!(
                            "`{}` has no decodable `{}=` signature",
                            self.location_name(),
                            self.signature_key
                        ),
                    ));
                }
                Ok(signatures)
            }
            Layout::List => {
                let items = raw
                    .split(self.separator.as_str())
                    .map(str::trim)
                    .filter(|s| !s.is_empty());
                let signatures: Vec<Vec<u8>> = items
                    .filter_map(|item| match &self.item_prefix {
                        Some(p) => item.strip_prefix(p.as_str()),
                        None => Some(item),
                    })
                    .filter_map(|s| self.encoding.decode(s))
                    .collect();
                if signatures.is_empty() {
                    let what = self
                        .item_prefix
                        .as_deref()
                        .map(|p| format!(" `{p}`"))
                        .unwrap_or_default();
                    return Err(VerifyError::new(
                        ErrorKind::Malformed,
                        format!(
                            "`{}` has no decodable{what} signature",
                            self.location_name()
                        ),
                    ));
                }
                Ok(signatures)
            }
        }
    }

    /// A value like `SHA1:…` where `SHA256:` was expected names another algorithm.
    fn wrong_prefix(&self, raw: &str, prefix: &str) -> VerifyError {
        if let Some(sep) = prefix.chars().last().filter(|c| !c.is_alphanumeric()) {
            if let Some((label, _)) = raw.split_once(sep) {
                if !label.is_empty()
                    && label.len() <= 16
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                {
                    return VerifyError::new(
                        ErrorKind::UnsupportedAlgorithm,
                        format!(
                            "`{}` names `{label}`; only `{prefix}` is accepted",
                            self.location_name()
                        ),
                    );
                }
            }
        }
        VerifyError::new(
            ErrorKind::Malformed,
            format!("`{}` does not start with `{prefix}`", self.location_name()),
        )
    }

    pub(crate) fn sign(&self, input: &mut SignInput<'_, '_>) -> Result<(), SignError> {
        // An explicit secret is written like a configured one (hex, base64 …).
        let secret = match &input.keys.secret {
            Some(given) => decode_key(self.key_encoding, given.clone(), 0)
                .map_err(|e| SignError(format!("the secret {}", e.message)))?,
            None => input.secret_or(&self.secrets)?,
        };
        let timestamp_text = self.timestamp.as_ref().map(|t| t.render(input.now));
        if let Some(Field::Header(name)) = self.timestamp.as_ref().map(SignedTimestamp::field) {
            input
                .request
                .headers
                .set(name, timestamp_text.clone().unwrap_or_default());
        }
        let mut ctx = Context::new(input.request);
        if let (Layout::Pairs, Some(Field::Signature(name))) = (
            self.layout,
            self.timestamp.as_ref().map(SignedTimestamp::field),
        ) {
            ctx.set_signature_elements(vec![(
                name.clone(),
                timestamp_text.clone().unwrap_or_default(),
            )]);
        }
        let content = self
            .signed
            .render(&ctx)
            .map_err(|e| SignError(e.to_string()))?;
        let signature = self
            .encoding
            .encode(&self.algorithm.mac_of(secret.expose(), &content));
        let value = match self.layout {
            Layout::Plain => format!("{}{signature}", self.prefix.as_deref().unwrap_or("")),
            Layout::Pairs => match self.timestamp.as_ref().map(SignedTimestamp::field) {
                Some(Field::Signature(name)) => format!(
                    "{name}={}{}{}={signature}",
                    timestamp_text.unwrap_or_default(),
                    self.separator,
                    self.signature_key
                ),
                _ => format!("{}={signature}", self.signature_key),
            },
            Layout::List => format!("{}{signature}", self.item_prefix.as_deref().unwrap_or("")),
        };
        match &self.location {
            Location::Header(name) => input.request.headers.set(name, value),
            Location::Body(Field::Json(pointer)) => {
                input.new_body = Some(set_in_json(input.request.body, pointer, value)?)
            }
            Location::Body(other) => {
                return Err(SignError(format!("cannot write a signature to `{other}`")))
            }
        }
        Ok(())
    }
}

/// Decodes a configured secret written in `encoding`; `index` names it in errors.
fn decode_key(encoding: KeyEncoding, secret: Secret, index: usize) -> Result<Secret, SpecError> {
    let key = || {
        if index == 0 {
            "secret".to_owned()
        } else {
            format!("secrets[{index}]")
        }
    };
    let text = || std::str::from_utf8(secret.expose()).unwrap_or("").trim();
    let decoded = match encoding {
        KeyEncoding::Raw => return Ok(secret),
        KeyEncoding::Hex => Encoding::Hex.decode(text()),
        KeyEncoding::Base64 => Encoding::Base64.decode(text()),
    };
    match decoded {
        Some(bytes) if !bytes.is_empty() => Ok(Secret::new(bytes)),
        _ => Err(SpecError::new(
            key(),
            format!(
                "is not {} (`key_encoding = \"{}\"`)",
                if encoding == KeyEncoding::Hex {
                    "hex"
                } else {
                    "base64"
                },
                if encoding == KeyEncoding::Hex {
                    "hex"
                } else {
                    "base64"
                },
            ),
        )),
    }
}

/// `body` with the string at `pointer` set to `value` (the parent object must exist).
fn set_in_json(body: &[u8], pointer: &str, value: String) -> Result<Vec<u8>, SignError> {
    let mut json: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
        SignError(format!(
            "the body is not JSON, so `{pointer}` cannot be set: {e}"
        ))
    })?;
    let (parent, leaf) = pointer
        .rsplit_once('/')
        .ok_or_else(|| SignError(format!("`{pointer}` is not a JSON pointer")))?;
    let leaf = leaf.replace("~1", "/").replace("~0", "~");
    match json.pointer_mut(parent) {
        Some(serde_json::Value::Object(map)) => {
            map.insert(leaf, serde_json::Value::String(value));
        }
        _ => {
            return Err(SignError(format!(
                "the body has no object at `{parent}` to hold the signature"
            )))
        }
    }
    Ok(serde_json::to_vec(&json).expect("a JSON value serializes"))
}
