//! `kind = "hmac"`: an HMAC of a templated signed content, in a header of any layout.

use std::time::Duration;

use serde::Deserialize;
use time::OffsetDateTime;

use super::{secret_list, SignInput, Verified};
use crate::error::{ErrorKind, SignError, SpecError, VerifyError};
use crate::secret::{ct_eq, Encoding, HashAlgorithm, Secret};
use crate::template::{Context, Field, Template};
use crate::timestamp::{parse_duration, parse_timestamp, within, TimestampFormat};

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
    pub header: String,
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
    /// The shared secret.
    pub secret: Option<String>,
    /// Several shared secrets, all accepted (rotation).
    #[serde(default)]
    pub secrets: Vec<String>,
}

/// A built HMAC check.
#[derive(Debug, Clone)]
pub struct HmacCheck {
    algorithm: HashAlgorithm,
    header: String,
    encoding: Encoding,
    prefix: Option<String>,
    signed: Template,
    timestamp: Option<(Field, TimestampFormat, Duration)>,
    layout: Layout,
    signature_key: String,
    separator: String,
    item_prefix: Option<String>,
    secrets: Vec<Secret>,
}

impl HmacCheck {
    /// Validates the configuration.
    pub fn build(config: HmacConfig) -> Result<Self, SpecError> {
        let secrets = secret_list(config.secret, config.secrets)?;
        let signed = Template::parse("signed", config.signed.as_deref().unwrap_or("{body}"))?;
        let tolerance = parse_duration("tolerance", config.tolerance.as_deref().unwrap_or("5m"))?;
        let timestamp = match config.timestamp {
            Some(text) => Some((
                Field::parse("timestamp", &text)?,
                config.timestamp_format,
                tolerance,
            )),
            None if config.tolerance.is_some() => {
                return Err(SpecError::new(
                    "tolerance",
                    "set `timestamp` too: the tolerance applies to it",
                ))
            }
            None => None,
        };
        if config.header.trim().is_empty() {
            return Err(SpecError::new("header", "must name the signature header"));
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
            header: config.header,
            encoding: config.encoding,
            prefix: config.prefix.filter(|p| !p.is_empty()),
            signed,
            timestamp,
            layout: config.layout,
            signature_key: config.signature_key.unwrap_or_else(|| "v1".into()),
            separator,
            item_prefix: config.item_prefix.filter(|p| !p.is_empty()),
            secrets,
        })
    }

    /// The signature header's name.
    pub fn header(&self) -> &str {
        &self.header
    }

    pub(crate) fn verify(
        &self,
        ctx: &mut Context<'_, '_>,
        now: OffsetDateTime,
    ) -> Result<Verified, VerifyError> {
        let raw = ctx
            .request
            .headers
            .get(&self.header)
            .ok_or_else(|| {
                VerifyError::new(
                    ErrorKind::MissingCredential,
                    format!("header `{}` is missing", self.header),
                )
            })?
            .trim();
        if raw.is_empty() {
            return Err(VerifyError::new(
                ErrorKind::MissingCredential,
                format!("header `{}` is empty", self.header),
            ));
        }
        let candidates = self.signatures(ctx, raw)?;
        let signed = &self.signed;
        let mut render_error = None;
        for (index, secret) in self.secrets.iter().enumerate() {
            let expected = self.algorithm.mac(secret.expose(), &mut |sink| {
                if let Err(e) = signed.render_into(ctx, sink) {
                    render_error = Some(e);
                }
            });
            if let Some(e) = render_error.take() {
                return Err(e);
            }
            if candidates.iter().any(|c| ct_eq(c, &expected)) {
                self.check_timestamp(ctx, now)?;
                return Ok(Verified::new("hmac").with_key_id(format!("secret#{index}")));
            }
        }
        Err(VerifyError::new(
            ErrorKind::BadSignature,
            format!(
                "`{}` does not match the HMAC-{} of `{}` with any of the {} configured secret(s)",
                self.header,
                self.algorithm.name(),
                self.signed,
                self.secrets.len()
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
                format!("`{}` is not {:?}-encoded", self.header, self.encoding),
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
                            format!("`{}` element is not `key=value`", self.header),
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
                            self.header, self.signature_key
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
                        format!("`{}` has no decodable{what} signature", self.header),
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
                            self.header
                        ),
                    );
                }
            }
        }
        VerifyError::new(
            ErrorKind::Malformed,
            format!("`{}` does not start with `{prefix}`", self.header),
        )
    }

    fn check_timestamp(
        &self,
        ctx: &Context<'_, '_>,
        now: OffsetDateTime,
    ) -> Result<(), VerifyError> {
        let Some((field, format, tolerance)) = &self.timestamp else {
            return Ok(());
        };
        let text = field.read(ctx, None).ok_or_else(|| {
            VerifyError::new(
                ErrorKind::MissingCredential,
                format!("timestamp `{field}` is missing"),
            )
        })?;
        let at = parse_timestamp(&text, *format).map_err(|e| {
            VerifyError::new(ErrorKind::Malformed, format!("timestamp `{field}`: {e}"))
        })?;
        if !within(at, now, *tolerance) {
            return Err(VerifyError::new(
                ErrorKind::StaleTimestamp,
                format!(
                    "timestamp {} is more than {} from now ({})",
                    crate::timestamp::display(at),
                    humantime::format_duration(*tolerance),
                    crate::timestamp::display(now)
                ),
            ));
        }
        Ok(())
    }

    pub(crate) fn sign(&self, input: &mut SignInput<'_, '_>) -> Result<(), SignError> {
        let secret = input.secret_or(&self.secrets)?;
        let timestamp_text = self
            .timestamp
            .as_ref()
            .map(|(_, format, _)| format.render(input.now));
        if let Some((Field::Header(name), _, _)) = &self.timestamp {
            input
                .request
                .headers
                .set(name, timestamp_text.clone().unwrap_or_default());
        }
        let mut ctx = Context::new(input.request);
        if let (Layout::Pairs, Some((Field::Signature(name), _, _))) =
            (self.layout, &self.timestamp)
        {
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
            Layout::Pairs => match &self.timestamp {
                Some((Field::Signature(name), _, _)) => format!(
                    "{name}={}{}{}={signature}",
                    timestamp_text.unwrap_or_default(),
                    self.separator,
                    self.signature_key
                ),
                _ => format!("{}={signature}", self.signature_key),
            },
            Layout::List => format!("{}{signature}", self.item_prefix.as_deref().unwrap_or("")),
        };
        input.request.headers.set(&self.header, value);
        Ok(())
    }
}
