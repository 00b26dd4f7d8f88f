//! Presets: each provider's scheme written as data over the generic checks, with the
//! provider's documented answers. A preset takes only its own parameters; any other is a
//! configuration error naming the key.

use serde_json::{json, Value};

use crate::error::SpecError;
use crate::response::{Reply, Responses};
use crate::scheme::CheckConfig;
use crate::source::SourceSpec;

/// Every preset name, aliases included.
pub const NAMES: &[&str] = &[
    "entrupy",
    "freispace",
    "qitech",
    "trivialsec",
    "pps",
    "standard-webhooks",
    "svix",
    "github",
    "stripe",
    "slack",
    "shopify",
    "gitlab",
    "twilio",
];

/// The parameters each preset's one-line start (`hookgate serve --preset NAME`) reads from
/// the environment, as `(parameter, VARIABLE)`. A variable ending in `_FILE` names a file
/// whose contents become the parameter. `pps` takes one issuer and its audience.
pub fn environment(preset: &str) -> &'static [(&'static str, &'static str)] {
    match preset {
        "entrupy" => &[("secret", "WEBHOOK_ENDPOINT_SECRET_KEY")],
        "freispace" => &[("secret", "FREISPACE_SECRET")],
        "qitech" => &[
            ("public_key", "QI_PUBLIC_KEY_FILE"),
            ("api_client_key", "QI_API_CLIENT_KEY"),
        ],
        "trivialsec" => &[
            ("secret", "TRIVIALSEC_SECRET"),
            ("account", "TRIVIALSEC_ACCOUNT"),
            ("subject", "TRIVIALSEC_SUBJECT"),
        ],
        "pps" => &[("issuer", "PPS_ISSUER"), ("audience", "PPS_AUDIENCE")],
        "standard-webhooks" | "svix" => &[("secret", "WEBHOOK_SECRET")],
        "github" => &[("secret", "GITHUB_WEBHOOK_SECRET")],
        "stripe" => &[("secret", "STRIPE_WEBHOOK_SECRET")],
        "slack" => &[("secret", "SLACK_SIGNING_SECRET")],
        "shopify" => &[("secret", "SHOPIFY_WEBHOOK_SECRET")],
        "gitlab" => &[("secret", "GITLAB_WEBHOOK_TOKEN")],
        "twilio" => &[
            ("secret", "TWILIO_AUTH_TOKEN"),
            ("url", "TWILIO_PUBLIC_URL"),
        ],
        _ => &[],
    }
}

/// The default path of each preset's one-line start (the path in the provider's document).
pub fn default_path(preset: &str) -> &'static str {
    match preset {
        "entrupy" => "/notify",
        "freispace" => "/webhook",
        "qitech" => "/client_webhook_endpoint",
        "trivialsec" => "/webhook/trivialsec",
        "pps" => "/",
        _ => "/webhook",
    }
}

/// What a preset contributes to a source.
#[derive(Debug, Default)]
pub(crate) struct Expansion {
    pub preset: Option<&'static str>,
    pub checks: Vec<CheckConfig>,
    pub responses: Responses,
    pub id: &'static [&'static str],
    pub topic: &'static [&'static str],
    pub tenant: &'static [&'static str],
    pub timestamp: &'static [&'static str],
    pub schema: Option<Value>,
}

struct Params<'a> {
    spec: &'a SourceSpec,
    preset: &'static str,
}

impl Params<'_> {
    fn need<'s>(&self, key: &str, value: &'s Option<String>) -> Result<&'s str, SpecError> {
        match value.as_deref() {
            Some(v) if !v.is_empty() => Ok(v),
            Some(_) => Err(SpecError::new(
                key,
                format!(
                    "is empty (preset `{}`; an unset environment variable?)",
                    self.preset
                ),
            )),
            None => Err(SpecError::new(
                key,
                format!("preset `{}` needs `{key}`", self.preset),
            )),
        }
    }

    /// `secret` and `secrets` as one JSON list.
    fn secrets(&self) -> Result<Value, SpecError> {
        let mut all: Vec<String> = self.spec.secret.iter().cloned().collect();
        all.extend(self.spec.secrets.iter().flatten().cloned());
        if all.is_empty() {
            return Err(SpecError::new(
                "secret",
                format!("preset `{}` needs `secret`", self.preset),
            ));
        }
        Ok(json!(all))
    }

    fn tolerance(&self) -> &str {
        self.spec.tolerance.as_deref().unwrap_or("5m")
    }
}

fn check(value: Value) -> Result<CheckConfig, SpecError> {
    serde_json::from_value(value)
        .map_err(|e| SpecError::new("verify", format!("preset expansion failed: {e}")))
}

/// Which preset parameters each preset reads.
fn parameters(preset: &str) -> &'static [&'static str] {
    match preset {
        "qitech" => &["public_key", "api_client_key", "tolerance"],
        "trivialsec" => &["secret", "secrets", "account", "subject"],
        "pps" => &["issuers", "allow_http_issuers", "jwks_cache"],
        "twilio" => &["secret", "secrets", "url"],
        "stripe" | "slack" | "standard-webhooks" | "svix" => &["secret", "secrets", "tolerance"],
        _ => &["secret", "secrets"],
    }
}

fn given_parameters(spec: &SourceSpec) -> Vec<&'static str> {
    let mut given = Vec::new();
    let mut add = |present: bool, key: &'static str| {
        if present {
            given.push(key)
        }
    };
    add(spec.secret.is_some(), "secret");
    add(spec.secrets.is_some(), "secrets");
    add(spec.account.is_some(), "account");
    add(spec.subject.is_some(), "subject");
    add(spec.public_key.is_some(), "public_key");
    add(spec.api_client_key.is_some(), "api_client_key");
    add(spec.issuers.is_some(), "issuers");
    add(spec.allow_http_issuers.is_some(), "allow_http_issuers");
    add(spec.jwks_cache.is_some(), "jwks_cache");
    add(spec.url.is_some(), "url");
    add(spec.tolerance.is_some(), "tolerance");
    given
}

pub(crate) fn refuse_parameters_without_preset(spec: &SourceSpec) -> Result<(), SpecError> {
    match given_parameters(spec).first() {
        Some(key) => Err(SpecError::new(
            *key,
            "is a preset parameter; without `preset` put it in `[source.verify]`",
        )),
        None => Ok(()),
    }
}

/// Expands preset `name` with the parameters in `spec`.
pub(crate) fn expand(name: &str, spec: &SourceSpec) -> Result<Expansion, SpecError> {
    let preset: &'static str = NAMES.iter().find(|n| **n == name).ok_or_else(|| {
        SpecError::new(
            "preset",
            format!("unknown preset `{name}`; known: {}", NAMES.join(", ")),
        )
    })?;
    let allowed = parameters(preset);
    if let Some(extra) = given_parameters(spec)
        .into_iter()
        .find(|k| !allowed.contains(k))
    {
        return Err(SpecError::new(
            extra,
            format!(
                "is not a parameter of preset `{preset}` (it takes: {})",
                allowed.join(", ")
            ),
        ));
    }
    let p = Params { spec, preset };
    let mut x = Expansion {
        preset: Some(preset),
        ..Expansion::default()
    };
    match preset {
        // Entrupy's webhook documentation: HMAC-SHA256 of the raw body, base64, `SHA256:` prefix; 401
        // {"error":"unauthorized"} for every failure; 200 {"status":"ok"}.
        "entrupy" => {
            x.checks.push(check(json!({"kind": "hmac", "header": "Entrupy-Signature", "encoding": "base64", "prefix": "SHA256:", "secrets": p.secrets()?}))?);
            x.responses = Responses {
                accepted: Reply::json(200, r#"{"status":"ok"}"#),
                ..Responses::default()
            }
            .refusing_all(Reply::json(401, r#"{"error":"unauthorized"}"#));
        }
        // freispace's webhook documentation: HMAC-SHA256 hex; missing header 400, mismatch 403.
        "freispace" => {
            x.checks.push(check(json!({"kind": "hmac", "header": "X-Freispace-Signature", "encoding": "hex", "secrets": p.secrets()?}))?);
            x.responses = Responses {
                accepted: Reply::json(200, r#"{"message":"Webhook processed successfully"}"#),
                missing_credential: Reply::json(400, r#"{"message":"Missing signature"}"#),
                rejected: Reply::json(403, r#"{"message":"Invalid signature"}"#),
                ..Responses::default()
            };
        }
        // QI Tech's webhook documentation: ES512 JWT in `AUTHORIZATION` (no Bearer) binding method, path, body MD5
        // and a timestamp within ±5 min; plus `API-CLIENT-KEY`. Every failure 403.
        "qitech" => {
            x.checks.push(check(json!({
                "kind": "jwt", "header": "Authorization", "prefix": "", "algorithms": ["ES512"],
                "public_key": p.need("public_key", &spec.public_key)?,
                "claims": {"method": "{request:method}", "uri": "{request:path}", "payload_md5": "{body:md5}"},
                "timestamp_claim": "timestamp", "timestamp_format": "rfc3339", "tolerance": p.tolerance(),
            }))?);
            x.checks.push(check(json!({"kind": "token", "header": "API-CLIENT-KEY", "secret": p.need("api_client_key", &spec.api_client_key)?}))?);
            x.responses =
                Responses::default().refusing_all(Reply::json(403, r#"{"error":"forbidden"}"#));
        }
        // Trivial Security's webhook documentation: HS256 bearer JWT, required iat nbf exp aud iss sub, leeway 3 s, `eid`
        // bound to the body's event id; body must match the payload model. FastAPI answers
        // an empty 403 for auth failures, 422 for the model, and `null` on success.
        "trivialsec" => {
            let account = p.need("account", &spec.account)?;
            x.checks.push(check(json!({
                "kind": "jwt", "algorithms": ["HS256"], "secrets": p.secrets()?,
                "required": ["iat", "nbf", "exp", "aud", "iss", "sub"], "leeway": "3s",
                "audience": format!("urn:trivialsec:webhook:client_endpoint:{account}"),
                "issuer": "https://www.trivialsec.com",
                "subject": p.need("subject", &spec.subject)?,
                "claims": {"eid": "urn:uuid:{json:/event_id}"},
            }))?);
            x.schema = Some(
                serde_json::from_str(crate::schema::TRIVIALSEC_SCHEMA)
                    .expect("the built-in schema is JSON"),
            );
            x.id = &["json:/event_id"];
            x.topic = &["json:/event_name"];
            x.timestamp = &["json:/timestamp"];
            x.responses = Responses {
                accepted: Reply::json(200, "null"),
                invalid_payload: Reply::json(
                    422,
                    r#"{"detail":"payload does not match the webhook model"}"#,
                ),
                malformed_body: Reply::json(
                    422,
                    r#"{"detail":"payload does not match the webhook model"}"#,
                ),
                ..Responses::default()
            }
            .refusing_all(Reply::empty(403));
        }
        // PPS's webhook documentation: OIDC ID token from a trusted issuer; X-Pps-* headers carry the metadata;
        // 403 when not authorized, 500 when the webhook cannot be handled.
        "pps" => {
            let issuers = spec.issuers.clone().ok_or_else(|| {
                SpecError::new(
                    "issuers",
                    "preset `pps` needs a `[source.issuers]` table: issuer URL → audiences",
                )
            })?;
            x.checks.push(check(json!({
                "kind": "oidc", "issuers": issuers,
                "allow_http_issuers": spec.allow_http_issuers.unwrap_or(false),
                "jwks_cache": spec.jwks_cache.clone().unwrap_or_else(|| "1h".into()),
            }))?);
            x.id = &["header:X-Pps-Webhook-Id"];
            x.topic = &["header:X-Pps-Topic"];
            x.tenant = &["header:X-Pps-Tenant-Id"];
            x.timestamp = &["header:X-Pps-Triggered-At"];
            x.responses = Responses {
                internal: Reply::json(500, r#"{"error":"internal error"}"#),
                unavailable: Reply::json(500, r#"{"error":"internal error"}"#),
                ..Responses::default()
            }
            .refusing_all(Reply::json(403, r#"{"error":"forbidden"}"#));
        }
        "standard-webhooks" | "svix" => {
            x.checks.push(check(json!({"kind": "standard-webhooks", "secrets": p.secrets()?, "tolerance": p.tolerance()}))?);
            x.id = &["header:webhook-id", "header:svix-id"];
            x.topic = &["json:/type"];
        }
        "github" => {
            x.checks.push(check(json!({"kind": "hmac", "header": "X-Hub-Signature-256", "prefix": "sha256=", "secrets": p.secrets()?}))?);
            x.id = &["header:X-GitHub-Delivery"];
            x.topic = &["header:X-GitHub-Event"];
        }
        "stripe" => {
            x.checks.push(check(json!({
                "kind": "hmac", "header": "Stripe-Signature", "layout": "pairs", "signature_key": "v1",
                "signed": "{signature:t}.{body}", "timestamp": "signature:t", "timestamp_format": "unix",
                "tolerance": p.tolerance(), "secrets": p.secrets()?,
            }))?);
            x.id = &["json:/id"];
            x.topic = &["json:/type"];
        }
        "slack" => {
            x.checks.push(check(json!({
                "kind": "hmac", "header": "X-Slack-Signature", "prefix": "v0=",
                "signed": "v0:{header:X-Slack-Request-Timestamp}:{body}",
                "timestamp": "header:X-Slack-Request-Timestamp", "timestamp_format": "unix",
                "tolerance": p.tolerance(), "secrets": p.secrets()?,
            }))?);
        }
        "shopify" => {
            x.checks.push(check(json!({"kind": "hmac", "header": "X-Shopify-Hmac-Sha256", "encoding": "base64", "secrets": p.secrets()?}))?);
            x.id = &["header:X-Shopify-Webhook-Id"];
            x.topic = &["header:X-Shopify-Topic"];
        }
        "gitlab" => {
            x.checks.push(check(
                json!({"kind": "token", "header": "X-Gitlab-Token", "secrets": p.secrets()?}),
            )?);
            x.id = &["header:X-Gitlab-Event-UUID"];
            x.topic = &["header:X-Gitlab-Event"];
        }
        "twilio" => {
            x.checks.push(check(json!({"kind": "twilio", "secrets": p.secrets()?, "url": p.need("url", &spec.url)?}))?);
            x.id = &["header:I-Twilio-Idempotency-Token"];
        }
        other => {
            return Err(SpecError::new(
                "preset",
                format!("preset `{other}` has no expansion"),
            ))
        }
    }
    Ok(x)
}
