//! `kind = "twilio"`: HMAC-SHA1 (base64, `X-Twilio-Signature`) of the full public URL
//! followed by the sorted form parameters; for JSON bodies Twilio signs the URL with a
//! `bodySHA256` query parameter instead, which must equal the body's SHA-256.

use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::{secret_list, SignInput, Verified};
use crate::error::{ErrorKind, SignError, SpecError, VerifyError};
use crate::secret::{ct_eq, Encoding, HashAlgorithm, Secret};
use crate::template::Context;

/// Configuration of a Twilio check.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TwilioConfig {
    /// The auth token.
    pub secret: Option<String>,
    /// Several auth tokens (rotation).
    #[serde(default)]
    pub secrets: Vec<String>,
    /// The public scheme and host Twilio calls, e.g. `https://example.com`; the request's
    /// path and query are appended.
    pub url: String,
    /// The signature header; default `X-Twilio-Signature` (Mandrill signs the same way in
    /// `X-Mandrill-Signature`).
    pub header: Option<String>,
}

/// A built Twilio check.
#[derive(Debug, Clone)]
pub struct TwilioCheck {
    secrets: Vec<Secret>,
    base: String,
    header: String,
}

const HEADER: &str = "X-Twilio-Signature";

impl TwilioCheck {
    /// Validates the configuration.
    pub fn build(config: TwilioConfig) -> Result<Self, SpecError> {
        let base = config.url.trim_end_matches('/').to_owned();
        if !(base.starts_with("https://") || base.starts_with("http://")) || base.len() < 9 {
            return Err(SpecError::new(
                "url",
                "the public base URL, e.g. \"https://example.com\"",
            ));
        }
        let header = config.header.unwrap_or_else(|| HEADER.to_owned());
        if header.trim().is_empty() {
            return Err(SpecError::new("header", "must name the signature header"));
        }
        Ok(TwilioCheck {
            secrets: secret_list(config.secret, config.secrets)?,
            base,
            header,
        })
    }

    /// The signature header's name.
    pub fn header(&self) -> &str {
        &self.header
    }

    fn url(&self, ctx: &Context<'_, '_>) -> String {
        format!("{}{}", self.base, ctx.request.path_and_query())
    }

    fn is_form(ctx: &Context<'_, '_>) -> bool {
        ctx.request.headers.get("content-type").is_some_and(|c| {
            c.to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        })
    }

    fn content(url: &str, ctx: &Context<'_, '_>, with_params: bool) -> Vec<u8> {
        let mut content = url.as_bytes().to_vec();
        if with_params {
            let mut params: Vec<(String, String)> = form_urlencoded::parse(ctx.request.body)
                .into_owned()
                .collect();
            params.sort();
            for (k, v) in params {
                content.extend_from_slice(k.as_bytes());
                content.extend_from_slice(v.as_bytes());
            }
        }
        content
    }

    pub(crate) fn verify(&self, ctx: &Context<'_, '_>) -> Result<Verified, VerifyError> {
        let name = &self.header;
        let header = ctx.request.headers.get(name).ok_or_else(|| {
            VerifyError::new(
                ErrorKind::MissingCredential,
                format!("header `{name}` is missing"),
            )
        })?;
        let signature = Encoding::Base64.decode(header).ok_or_else(|| {
            VerifyError::new(ErrorKind::Malformed, format!("`{name}` is not base64"))
        })?;
        let body_hash = ctx.request.query_param("bodySHA256");
        let with_params = body_hash.is_none() && Self::is_form(ctx);
        let url = self.url(ctx);
        // Twilio's own libraries accept the URL with and without the default port.
        for candidate in url_variants(&url) {
            let content = Self::content(&candidate, ctx, with_params);
            for (i, secret) in self.secrets.iter().enumerate() {
                if ct_eq(
                    &HashAlgorithm::Sha1.mac_of(secret.expose(), &content),
                    &signature,
                ) {
                    if let Some(expected) = &body_hash {
                        let actual = hex::encode(Sha256::digest(ctx.request.body));
                        if !actual.eq_ignore_ascii_case(expected) {
                            return Err(VerifyError::new(
                                ErrorKind::BodyHashMismatch,
                                "bodySHA256 does not match the body",
                            ));
                        }
                    }
                    return Ok(Verified::new("twilio").with_key_id(format!("secret#{i}")));
                }
            }
        }
        Err(VerifyError::new(
            ErrorKind::BadSignature,
            format!("`{name}` does not match `{url}` with any configured auth token"),
        ))
    }

    pub(crate) fn sign(&self, input: &mut SignInput<'_, '_>) -> Result<(), SignError> {
        let secret = input.secret_or(&self.secrets)?;
        let ctx = Context::new(input.request);
        let json = !Self::is_form(&ctx) && !ctx.request.body.is_empty();
        drop(ctx);
        if json && input.request.query_param("bodySHA256").is_none() {
            let hash = hex::encode(Sha256::digest(input.request.body));
            let mut query =
                form_urlencoded::Serializer::new(input.request.query.clone().unwrap_or_default());
            query.append_pair("bodySHA256", &hash);
            input.request.query = Some(query.finish());
        }
        let ctx = Context::new(input.request);
        let content = Self::content(&self.url(&ctx), &ctx, !json && Self::is_form(&ctx));
        let signature =
            Encoding::Base64.encode(&HashAlgorithm::Sha1.mac_of(secret.expose(), &content));
        input.request.headers.set(&self.header, signature);
        Ok(())
    }
}

/// The URL as given, then with the default port added or removed.
fn url_variants(url: &str) -> Vec<String> {
    let mut variants = vec![url.to_owned()];
    let (scheme, port) = if url.starts_with("https://") {
        ("https://", ":443")
    } else {
        ("http://", ":80")
    };
    let rest = &url[scheme.len()..];
    let split = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(split);
    if let Some(host) = authority.strip_suffix(port) {
        variants.push(format!("{scheme}{host}{tail}"));
    } else if !authority.contains(':') {
        variants.push(format!("{scheme}{authority}{port}{tail}"));
    }
    variants
}
