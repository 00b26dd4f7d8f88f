//! The shape of a preset record (`crates/verify/presets/<name>.toml`), read once.

use serde::Deserialize;

/// One provider, as its record file writes it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Record {
    pub name: String,
    pub title: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    /// The provider's documentation of its signature (or its SDK's source).
    pub docs: String,
    pub category: String,
    /// One line for the catalogue: what is checked.
    pub summary: String,
    #[serde(default = "default_path")]
    pub path: String,
    /// Methods the source takes by default (a handshake may need `GET` or `HEAD`).
    #[serde(default)]
    pub methods: Vec<String>,
    #[serde(default, rename = "param")]
    pub params: Vec<ParamRecord>,
    #[serde(default, rename = "check")]
    pub checks: Vec<toml::Table>,
    /// The provider's handshakes (see [`crate::handshake`]).
    #[serde(default, rename = "handshake")]
    pub handshakes: Vec<toml::Table>,
    #[serde(default)]
    pub fields: FieldsRecord,
    #[serde(default)]
    pub responses: ResponsesRecord,
    /// A JSON Schema for the payload, as JSON text.
    pub schema: Option<String>,
    pub sample: SampleRecord,
    /// Anything a user should know (shown by `hookgate presets show`).
    pub notes: Option<String>,
}

fn default_path() -> String {
    "/webhook".into()
}

/// A parameter the user gives beside `preset = "…"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ParamRecord {
    pub name: String,
    pub kind: ParamKind,
    pub description: String,
    /// Environment variables read by the one-line start and `hookgate send`, the first
    /// one named in messages; a name ending in `_FILE` holds a path to the value.
    #[serde(default)]
    pub env: Vec<String>,
    /// `issuers` only: the variable holding the audience of the one issuer.
    pub audience_env: Option<String>,
    /// A default makes the parameter optional.
    pub default: Option<toml::Value>,
    /// Optional without a default: the keys that use it are left out.
    #[serde(default)]
    pub optional: bool,
    /// An example value for the ready-to-paste block.
    pub example: Option<toml::Value>,
    /// `public_key` only: what `hookgate send --key` must be, e.g. "an ES512 private key".
    pub private_key: Option<String>,
}

/// What a parameter holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParamKind {
    /// A shared secret; `secrets = [...]` is accepted beside it for rotation, and
    /// `$secrets` in a check is every one of them.
    Secret,
    /// A public key as the provider publishes it (PEM, hex or base64).
    PublicKey,
    /// Any other text.
    Text,
    /// The public base URL the provider calls (`https://hooks.example.com`), for schemes
    /// that sign the URL.
    PublicUrl,
    /// A duration such as `5m`.
    Duration,
    /// `true` or `false`.
    Bool,
    /// A table: trusted issuer URL → list of audiences.
    Issuers,
}

impl ParamKind {
    /// The word shown in the catalogue.
    pub fn describe(self) -> &'static str {
        match self {
            ParamKind::Secret => "secret",
            ParamKind::PublicKey => "public key",
            ParamKind::Text => "text",
            ParamKind::PublicUrl => "URL",
            ParamKind::Duration => "duration",
            ParamKind::Bool => "bool",
            ParamKind::Issuers => "table",
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FieldsRecord {
    #[serde(default)]
    pub id: Vec<String>,
    #[serde(default)]
    pub topic: Vec<String>,
    #[serde(default)]
    pub tenant: Vec<String>,
    #[serde(default)]
    pub timestamp: Vec<String>,
}

/// A reply as a record writes it; `body` is JSON text (or plain text with `text = true`),
/// or empty for no body.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReplyRecord {
    pub status: u16,
    #[serde(default)]
    pub body: String,
    /// The body is plain text, not JSON (Adyen's `[accepted]`).
    #[serde(default)]
    pub text: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ResponsesRecord {
    pub accepted: Option<ReplyRecord>,
    /// Every authentication failure (missing and rejected), unless one of those two is
    /// given as well.
    pub refused: Option<ReplyRecord>,
    pub missing_credential: Option<ReplyRecord>,
    pub rejected: Option<ReplyRecord>,
    pub invalid_payload: Option<ReplyRecord>,
    pub malformed_body: Option<ReplyRecord>,
    pub unavailable: Option<ReplyRecord>,
    pub internal: Option<ReplyRecord>,
}

/// The sample event `hookgate send` posts when no body is given: `{id}`, `{now}` (RFC
/// 3339), `{now_unix}` and `{now_ms}` are replaced.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SampleRecord {
    #[serde(default = "default_content_type")]
    pub content_type: String,
    pub body: String,
    /// Headers the provider always sends with an event (e.g. the topic header).
    #[serde(default)]
    pub headers: toml::Table,
}

fn default_content_type() -> String {
    "application/json".into()
}
