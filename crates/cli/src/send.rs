//! `hookgate send` and `hookgate sign`: sign exactly as a provider does (every preset, or a
//! source of a configuration file), then send, or print the headers.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;
use hookgate_verify::keygen::KeyPair;
use hookgate_verify::{Field, Request, Secret, SigningKeys, Source, SourceSpec};
use serde_json::{json, Value};

use crate::{parse_param, CommandResult, Failure, EXIT_REFUSED};

#[derive(Args, Clone)]
pub(crate) struct SendArgs {
    /// Where the provider would send the webhook, e.g. http://localhost:8080/notify.
    pub url: String,
    /// Sign as this preset's provider.
    #[arg(long, conflicts_with = "config", required_unless_present = "config")]
    pub preset: Option<String>,
    /// Sign as the source `--source` of this configuration file (secrets from the file).
    #[arg(long, requires = "source")]
    pub config: Option<PathBuf>,
    /// The source in `--config`.
    #[arg(long, requires = "config")]
    pub source: Option<String>,
    /// Shared secret (default: the preset's environment variable, e.g. WEBHOOK_ENDPOINT_SECRET_KEY).
    #[arg(long)]
    pub secret: Option<String>,
    /// Private key (PEM) for JWT presets (qitech: ES512 P-521).
    #[arg(long)]
    pub key: Option<PathBuf>,
    /// A preset parameter, KEY=VALUE (e.g. api_client_key=…, account=…, subject=…).
    #[arg(long = "param", value_parser = parse_param)]
    pub params: Vec<(String, String)>,
    /// The body: a file, or - for standard input (default: a sample event of the preset).
    #[arg(long)]
    pub body: Option<String>,
    /// An extra header, NAME:VALUE.
    #[arg(long = "header", value_parser = parse_header)]
    pub headers: Vec<(String, String)>,
    /// The provider's event id (default: a new one for sample bodies and header ids).
    #[arg(long)]
    pub event_id: Option<String>,
    /// The topic, where the provider puts it in a header or the body.
    #[arg(long)]
    pub topic: Option<String>,
    /// OIDC (pps): the issuer to mint the token as.
    #[arg(long)]
    pub issuer: Option<String>,
    /// OIDC (pps): the issuer's private key (PEM), as `hookgate oidc-issuer --key`.
    #[arg(long)]
    pub issuer_key: Option<PathBuf>,
    /// OIDC (pps): the audience.
    #[arg(long)]
    pub audience: Option<String>,
    /// The `kid` to put in the token header (default for --issuer-key: `hookgate`).
    #[arg(long)]
    pub kid: Option<String>,
    /// Print the request as it would be sent (raw HTTP/1.1, usable with `hookgate verify`) instead of sending it.
    #[arg(long)]
    pub dry_run: bool,
    /// `sign` only: `headers` (one `Name: value` a line) or `curl` (a shell-quoted curl
    /// command with the headers and the exact body that was signed).
    #[arg(long, value_enum, default_value_t = SignFormat::Headers)]
    pub format: SignFormat,
}

/// What `sign` prints.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum SignFormat {
    Headers,
    Curl,
}

/// `text` as one POSIX shell word: single-quoted, a `'` written as `'\''`.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

fn parse_header(text: &str) -> Result<(String, String), String> {
    text.split_once(':')
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .ok_or_else(|| format!("`{text}` is not NAME:VALUE"))
}

fn read_file(path: &PathBuf, what: &str) -> Result<String, Failure> {
    std::fs::read_to_string(path)
        .map_err(|e| Failure::config(format!("cannot read {what} {}: {e}", path.display())))
}

/// The source to sign as, and the keys to sign with.
fn signer(args: &SendArgs, url: &reqwest::Url) -> Result<(Arc<Source>, SigningKeys), Failure> {
    let mut keys = SigningKeys {
        secret: args.secret.clone().map(Secret::new),
        key_id: kid_default(args),
        ..Default::default()
    };
    if let Some(path) = args.key.as_ref().or(args.issuer_key.as_ref()) {
        let pem = read_file(path, "key")?;
        let pair =
            KeyPair::from_private_pem(&pem, None, keys.key_id.as_deref().unwrap_or("hookgate"))
                .map_err(|e| Failure::config(format!("{}: {e}", path.display())))?;
        keys.algorithm = Some(pair.algorithm);
        keys.private_key_pem = Some(pem);
    }
    keys.issuer = args.issuer.clone();
    keys.audience = args.audience.clone();
    if let (Some(config), Some(name)) = (&args.config, &args.source) {
        // Only this source's secrets need to be set, not every secret of the file.
        let source = hookgate_server::Config::load_source(
            config,
            name,
            &hookgate_server::config::ProcessEnvironment,
        )
        .map_err(Failure::config)?;
        return Ok((source.source.clone(), keys));
    }
    let name = args
        .preset
        .as_deref()
        .expect("clap requires --preset or --config");
    let preset = hookgate_verify::preset::find(name).ok_or_else(|| {
        Failure::config(format!(
            "unknown preset `{name}`; known: {} (see: hookgate presets)",
            hookgate_verify::preset::names().join(", ")
        ))
    })?;
    let mut spec = serde_json::Map::new();
    spec.insert("preset".into(), name.into());
    for (param, variable) in preset.environment() {
        // The documented variable, or any other the parameter accepts.
        let others = preset.param(param).map(|p| p.env()).unwrap_or_default();
        let value = std::iter::once(variable)
            .chain(others.iter().map(String::as_str))
            .find_map(|v| {
                std::env::var(v)
                    .ok()
                    .filter(|x| !x.is_empty())
                    .map(|x| (v, x))
            });
        if let Some((variable, value)) = value {
            if variable.ends_with("_FILE") {
                spec.insert(
                    param.into(),
                    read_file(&PathBuf::from(value), param)?.into(),
                );
            } else {
                spec.insert(param.into(), value.into());
            }
        }
    }
    for (k, v) in &args.params {
        spec.insert(
            k.clone(),
            if v == "true" || v == "false" {
                Value::Bool(v == "true")
            } else {
                v.clone().into()
            },
        );
    }
    if let Some(secret) = &args.secret {
        // A Standard Webhooks signing key verifies through its public key.
        let verifying = if secret.starts_with("whsk_") {
            hookgate_verify::standard_webhooks_public_key(secret).map_err(Failure::config)?
        } else {
            secret.clone()
        };
        spec.insert("secret".into(), verifying.into());
    }
    for param in preset.params() {
        use hookgate_verify::preset::ParamKind;
        match param.kind() {
            ParamKind::PublicKey if !spec.contains_key(param.name()) => {
                let pem = keys.private_key_pem.as_deref().ok_or_else(|| {
                    Failure::config(format!(
                        "preset {name} signs with {}: pass --key FILE",
                        param.private_key()
                    ))
                })?;
                let public = KeyPair::from_private_pem(pem, None, name)
                    .map_err(Failure::config)?
                    .public_pem;
                spec.insert(param.name().into(), public.into());
            }
            ParamKind::Issuers => {
                let issuer = args.issuer.clone().ok_or_else(|| {
                    Failure::config(format!(
                        "preset {name} mints an ID token: pass --issuer URL and --issuer-key FILE"
                    ))
                })?;
                spec.remove("issuer");
                spec.remove("audience");
                spec.insert(
                    param.name().into(),
                    json!({ issuer: [args.audience.clone().unwrap_or_else(|| "hookgate".into())] }),
                );
                if preset.param("allow_http_issuers").is_some() {
                    spec.insert("allow_http_issuers".into(), true.into());
                }
            }
            // The URL the provider signs is the one sent to.
            ParamKind::PublicUrl if !spec.contains_key(param.name()) => {
                spec.insert(
                    param.name().into(),
                    url.origin().ascii_serialization().into(),
                );
            }
            _ => {}
        }
    }
    let spec: SourceSpec = serde_json::from_value(Value::Object(spec))
        .map_err(|e| Failure::config(format!("preset {name}: {e}")))?;
    let source = Source::build(spec).map_err(|e| {
        let hint = preset
            .param(&e.key)
            .and_then(|p| p.env().first())
            .map(|var| format!(" (or set {var})"))
            .unwrap_or_default();
        let flag = if e.key == "secret" {
            "--secret"
        } else {
            "--param"
        };
        Failure::config(format!(
            "preset {name}: {}: {} — pass {flag}{hint}",
            e.key, e.message
        ))
    })?;
    Ok((Arc::new(source), keys))
}

fn kid_default(args: &SendArgs) -> Option<String> {
    args.kid
        .clone()
        .or_else(|| args.issuer_key.as_ref().map(|_| "hookgate".to_owned()))
}

/// A sample event of `preset`'s provider, with `id` where that provider puts its event id,
/// and the headers that provider sends with it.
fn sample_body(preset: Option<&str>, id: &str) -> (Vec<u8>, String, Vec<(String, String)>) {
    match preset.and_then(hookgate_verify::preset::find) {
        Some(preset) => {
            let (body, content_type) = preset.sample(id, time::OffsetDateTime::now_utc());
            (body, content_type.to_owned(), preset.sample_headers())
        }
        None => (
            json!({"id": id, "type": "test.event", "data": {}})
                .to_string()
                .into_bytes(),
            "application/json".to_owned(),
            Vec::new(),
        ),
    }
}

/// Puts `value` where `field` reads it from: a header, or a place in a JSON object body.
fn place(
    field: &Field,
    value: &str,
    headers: &mut hookgate_verify::Headers,
    body: &mut Vec<u8>,
    replace: bool,
) {
    match field {
        Field::Header(name) if replace || !headers.contains(name) => {
            headers.set(name, value.as_bytes().to_vec())
        }
        Field::Json(pointer) if replace => {
            if let Ok(mut json) = serde_json::from_slice::<Value>(body) {
                let (parent, key) = pointer.rsplit_once('/').unwrap_or(("", pointer));
                let target = if parent.is_empty() {
                    Some(&mut json)
                } else {
                    json.pointer_mut(parent)
                };
                if let Some(Value::Object(map)) = target {
                    map.insert(key.replace("~1", "/").replace("~0", "~"), value.into());
                    *body = json.to_string().into_bytes();
                }
            }
        }
        _ => {}
    }
}

pub(crate) fn send(args: SendArgs, headers_only: bool) -> CommandResult {
    let url = reqwest::Url::parse(&args.url)
        .map_err(|e| Failure::config(format!("`{}` is not a URL: {e}", args.url)))?;
    let (source, mut keys) = signer(&args, &url)?;
    let generated = uuid::Uuid::now_v7().to_string();
    let sample = args.body.is_none();
    let (mut body, content_type, sample_headers) = match &args.body {
        None => sample_body(
            args.preset.as_deref(),
            args.event_id.as_deref().unwrap_or(&generated),
        ),
        Some(path) if path == "-" => {
            let mut bytes = Vec::new();
            std::io::stdin()
                .read_to_end(&mut bytes)
                .map_err(|e| Failure::runtime(format!("cannot read the body from stdin: {e}")))?;
            (bytes, "application/json".to_owned(), Vec::new())
        }
        Some(path) => (
            std::fs::read(path)
                .map_err(|e| Failure::config(format!("cannot read the body {path}: {e}")))?,
            "application/json".to_owned(),
            Vec::new(),
        ),
    };
    let mut headers = hookgate_verify::Headers::new();
    headers.set("Content-Type", content_type);
    for (k, v) in &sample_headers {
        headers.set(k, v.as_bytes().to_vec());
    }
    for (k, v) in &args.headers {
        headers.set(k, v.as_bytes().to_vec());
    }
    let event_id = args.event_id.clone().unwrap_or(generated);
    if let Some(field) = source.id_fields().first() {
        place(
            field,
            &event_id,
            &mut headers,
            &mut body,
            args.event_id.is_some() || sample,
        );
    }
    keys.event_id = Some(event_id);
    if let (Some(topic), Some(field)) = (&args.topic, source.topic_fields().first()) {
        place(field, topic, &mut headers, &mut body, true);
    }
    let mut request = Request {
        method: "POST".into(),
        path: url.path().to_owned(),
        query: url.query().map(str::to_owned),
        headers,
        body: &body,
        peer: None,
    };
    let signed_body = source
        .sign(&mut request, time::OffsetDateTime::now_utc(), &keys)
        .map_err(Failure::config)?;
    let path_and_query = request.path_and_query();
    let request_headers = request.headers;
    if let Some(signed_body) = signed_body {
        body = signed_body;
    }
    if headers_only && args.format == SignFormat::Curl {
        let body_text = std::str::from_utf8(&body)
            .ok()
            .filter(|t| !t.contains('\0'))
            .ok_or_else(|| {
                Failure::config("this body is not text a shell can carry; write it to a file and sign it with --body FILE, then send that file with curl --data-binary @FILE")
            })?;
        out!("curl -sS -X POST {}", shell_quote(url.as_str()));
        for (name, value) in request_headers.iter() {
            let line = format!("{}: {}", display_name(name), String::from_utf8_lossy(value));
            out!(" \\\n  -H {}", shell_quote(&line));
        }
        outln!(" \\\n  --data-binary {}", shell_quote(body_text));
        return Ok(ExitCode::SUCCESS);
    }
    if !headers_only && args.format != SignFormat::Headers {
        return Err(Failure::config("--format is for `hookgate sign`"));
    }
    if headers_only {
        for (name, value) in request_headers.iter() {
            outln!("{}: {}", display_name(name), String::from_utf8_lossy(value));
        }
        return Ok(ExitCode::SUCCESS);
    }
    if args.dry_run {
        let mut out = format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\n",
            path_and_query,
            url.authority()
        );
        for (name, value) in request_headers.iter() {
            out.push_str(&format!(
                "{}: {}\r\n",
                display_name(name),
                String::from_utf8_lossy(value)
            ));
        }
        out.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(&body);
        if let Err(e) = std::io::Write::write_all(&mut std::io::stdout(), &bytes) {
            crate::output_failed(e);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::runtime(e.to_string()))?;
    let response = runtime.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()?;
        let mut builder = client.post(url.clone()).body(body.clone());
        for (name, value) in request_headers.iter() {
            builder = builder.header(name, value);
        }
        let response = builder.send().await?;
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await?;
        Ok::<_, reqwest::Error>((status, headers, text))
    });
    let (status, headers, text) = response.map_err(|e| {
        // reqwest's own message says only that sending failed; the cause chain says why
        // (connection refused, DNS, TLS …).
        let mut message = format!("sending to {url}: {e}");
        let mut cause = std::error::Error::source(&e);
        while let Some(c) = cause {
            message.push_str(&format!(": {c}"));
            cause = c.source();
        }
        Failure::runtime(message)
    })?;
    outln!("HTTP/1.1 {status}");
    for (name, value) in &headers {
        outln!("{name}: {}", value.to_str().unwrap_or("<binary>"));
    }
    outln!();
    outln!("{text}");
    Ok(if status.is_success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_REFUSED)
    })
}

/// `x-hub-signature-256` → `X-Hub-Signature-256`, as providers write header names.
fn display_name(lower: &str) -> String {
    lower
        .split('-')
        .map(|part| {
            let mut chars = part.chars();
            match chars.next() {
                Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join("-")
}
