//! `kind = "token"` (a shared token in a header or query parameter) and `kind = "basic"`
//! (HTTP Basic credentials). Both compare in constant time, length included.

use base64::Engine as _;
use serde::Deserialize;

use super::{secret_list, SignInput, Verified};
use crate::error::{ErrorKind, SignError, SpecError, VerifyError};
use crate::secret::{ct_eq_any_len, Secret};
use crate::template::Context;

/// Configuration of a token check.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// The header carrying the token (e.g. `X-Gitlab-Token`, `API-CLIENT-KEY`).
    pub header: Option<String>,
    /// Or the query parameter carrying it.
    pub query: Option<String>,
    /// A literal prefix before the token, e.g. `Token `.
    pub prefix: Option<String>,
    /// The expected token.
    pub secret: Option<String>,
    /// Several accepted tokens (rotation).
    #[serde(default)]
    pub secrets: Vec<String>,
}

#[derive(Debug, Clone)]
enum Place {
    Header(String),
    Query(String),
}

/// A built token check.
#[derive(Debug, Clone)]
pub struct TokenCheck {
    place: Place,
    prefix: String,
    secrets: Vec<Secret>,
}

impl TokenCheck {
    /// Validates the configuration.
    pub fn build(config: TokenConfig) -> Result<Self, SpecError> {
        let place = match (config.header, config.query) {
            (Some(h), None) => Place::Header(h),
            (None, Some(q)) => Place::Query(q),
            _ => {
                return Err(SpecError::new(
                    "header",
                    "set exactly one of `header` and `query`",
                ))
            }
        };
        Ok(TokenCheck {
            place,
            prefix: config.prefix.unwrap_or_default(),
            secrets: secret_list(config.secret, config.secrets)?,
        })
    }

    /// The header carrying the token, when it is in a header.
    pub fn header(&self) -> Option<&str> {
        match &self.place {
            Place::Header(h) => Some(h),
            Place::Query(_) => None,
        }
    }

    /// The query parameter carrying the token, when it is in the query.
    pub fn query(&self) -> Option<&str> {
        match &self.place {
            Place::Query(q) => Some(q),
            Place::Header(_) => None,
        }
    }

    pub(crate) fn verify(&self, ctx: &Context<'_, '_>) -> Result<Verified, VerifyError> {
        let (value, what) = match &self.place {
            Place::Header(h) => (
                ctx.request.headers.get(h).map(str::to_owned),
                format!("header `{h}`"),
            ),
            Place::Query(q) => (ctx.request.query_param(q), format!("query parameter `{q}`")),
        };
        let value = value.filter(|v| !v.trim().is_empty()).ok_or_else(|| {
            VerifyError::new(ErrorKind::MissingCredential, format!("{what} is missing"))
        })?;
        let token = value
            .trim()
            .strip_prefix(self.prefix.as_str())
            .ok_or_else(|| {
                VerifyError::new(
                    ErrorKind::Malformed,
                    format!("{what} does not start with `{}`", self.prefix),
                )
            })?;
        match self
            .secrets
            .iter()
            .position(|s| ct_eq_any_len(s.expose(), token.as_bytes()))
        {
            Some(i) => Ok(Verified::new("token").with_key_id(format!("secret#{i}"))),
            None => Err(VerifyError::new(
                ErrorKind::BadSignature,
                format!("{what} does not match any configured token"),
            )),
        }
    }

    pub(crate) fn sign(&self, input: &mut SignInput<'_, '_>) -> Result<(), SignError> {
        let secret = input.secret_or(&self.secrets)?;
        let value = format!(
            "{}{}",
            self.prefix,
            String::from_utf8_lossy(secret.expose())
        );
        match &self.place {
            Place::Header(h) => input.request.headers.set(h, value),
            Place::Query(q) => {
                let mut query = form_urlencoded::Serializer::new(
                    input.request.query.clone().unwrap_or_default(),
                );
                query.append_pair(q, &value);
                input.request.query = Some(query.finish());
            }
        }
        Ok(())
    }
}

/// Configuration of an HTTP Basic check.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicConfig {
    /// The user name.
    pub username: String,
    /// The password.
    pub password: String,
}

/// A built HTTP Basic check.
#[derive(Debug, Clone)]
pub struct BasicCheck {
    expected: Secret,
}

impl BasicCheck {
    /// Validates the configuration.
    pub fn build(config: BasicConfig) -> Result<Self, SpecError> {
        if config.username.contains(':') {
            return Err(SpecError::new("username", "must not contain `:`"));
        }
        Ok(BasicCheck {
            expected: Secret::new(format!("{}:{}", config.username, config.password)),
        })
    }

    pub(crate) fn verify(&self, ctx: &Context<'_, '_>) -> Result<Verified, VerifyError> {
        let value = ctx.request.headers.get("authorization").ok_or_else(|| {
            VerifyError::new(
                ErrorKind::MissingCredential,
                "header `Authorization` is missing",
            )
        })?;
        let encoded = value
            .get(..6)
            .filter(|p| p.eq_ignore_ascii_case("basic "))
            .map(|_| value[6..].trim())
            .ok_or_else(|| {
                VerifyError::new(
                    ErrorKind::Malformed,
                    "header `Authorization` is not `Basic …`",
                )
            })?;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|_| {
                VerifyError::new(ErrorKind::Malformed, "Basic credentials are not base64")
            })?;
        if ct_eq_any_len(self.expected.expose(), &decoded) {
            Ok(Verified::new("basic"))
        } else {
            Err(VerifyError::new(
                ErrorKind::BadSignature,
                "Basic credentials do not match",
            ))
        }
    }

    pub(crate) fn sign(&self, input: &mut SignInput<'_, '_>) -> Result<(), SignError> {
        let credentials = match &input.keys.secret {
            Some(s) => s.clone(),
            None => self.expected.clone(),
        };
        let encoded = base64::engine::general_purpose::STANDARD.encode(credentials.expose());
        input
            .request
            .headers
            .set("Authorization", format!("Basic {encoded}"));
        Ok(())
    }
}
