//! `[[source]]`: the server's part of a source (path, methods, limits, retention) around the
//! verifier that `hookgate_verify` builds from the rest of its table.

use std::collections::{BTreeSet, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hookgate_verify::{Source, SourceSpec};
use serde::Deserialize;
use toml::{Table, Value};

use super::resolve::{contains_demo_secret, deserialize_at, resolve_files, substitute_table};
use super::server::{parse_retention, parse_size};
use super::ConfigError;
use super::{Config, Environment};

/// Keys of `[[source]]` the server itself reads (the rest belong to the verifier).
const SOURCE_SERVER_KEYS: &[&str] = &[
    "name",
    "path",
    "methods",
    "max_body",
    "retention",
    "rate_limit",
    "burst",
];
/// Paths the gateway answers itself.
const RESERVED_PATHS: &[&str] = &["/health", "/ready", "/metrics", "/api", "/ui"];

#[derive(Debug, Deserialize)]
struct SourceServerPart {
    name: String,
    path: String,
    #[serde(default)]
    methods: Option<Vec<String>>,
    #[serde(default)]
    max_body: Option<String>,
    #[serde(default)]
    retention: Option<String>,
    #[serde(default)]
    rate_limit: Option<String>,
    #[serde(default)]
    burst: Option<u32>,
}

/// One configured source, ready to serve.
#[derive(Debug, Clone)]
pub struct SourceConfig {
    /// Its name (stored with every event).
    pub name: String,
    /// The path it answers on.
    pub path: String,
    /// Accepted methods (upper case); default `POST`.
    pub methods: Vec<String>,
    /// Largest accepted body.
    pub max_body: u64,
    /// How long its finished events are kept, when it differs from `[store] retention`.
    pub retention: Option<Duration>,
    /// Requests accepted from all senders together (429 beyond).
    pub rate_limit: Option<crate::limits::RateLimit>,
    /// The verifier.
    pub source: Arc<Source>,
    /// Whether a secret of this source is a demo value (`DEMO-…`).
    pub demo_secret: bool,
    /// The environment variables whose `DEMO-…` defaults it uses (`${NAME:-DEMO-…}`).
    pub demo_variables: Vec<String>,
    /// Lower-cased headers carrying credentials: stored as `[redacted]`. Computed once here,
    /// not per request.
    pub redacted_headers: Vec<String>,
    /// Query parameters carrying credentials: stored as `[redacted]`.
    pub redacted_query: Vec<String>,
    /// Whether verifying may take a public-key operation (then it runs on the bounded
    /// pool). Computed once here, not per request.
    pub asymmetric: bool,
    /// A digest of its table as configured (secrets included, never shown): a reload
    /// reports a source whose digest differs as changed.
    pub(crate) fingerprint: [u8; 32],
}

/// The `[[source]]` tables (already `${ENV}`-substituted; those in `failed` were not and
/// are skipped). Each error is added to `errors` and its source left out.
pub(super) fn build_sources(
    list: Option<&Value>,
    failed: &HashSet<String>,
    demo_variables: &[Vec<String>],
    file: &str,
    base: &Path,
    default_max_body: u64,
    errors: &mut Vec<ConfigError>,
) -> Vec<SourceConfig> {
    let list = match list {
        None => return Vec::new(),
        Some(Value::Array(list)) => list.clone(),
        Some(_) => {
            errors.push(ConfigError::new(
                file,
                "source",
                "write sources as [[source]] tables",
            ));
            return Vec::new();
        }
    };
    let mut sources: Vec<SourceConfig> = Vec::new();
    let mut names = HashSet::new();
    let mut paths = HashSet::new();
    for (i, value) in list.into_iter().enumerate() {
        if failed.contains(&format!("source[{i}]")) {
            continue;
        }
        let Value::Table(mut table) = value else {
            errors.push(ConfigError::new(
                file,
                format!("source[{i}]"),
                "must be a table",
            ));
            continue;
        };
        let label = match table.get("name").and_then(Value::as_str) {
            Some(name) => format!("source[{i}] ({name})"),
            None => format!("source[{i}]"),
        };
        let built = resolve_files(&mut table, "", base, file, &label)
            .and_then(|()| build_source(table, &label, file, default_max_body));
        let mut source = match built {
            Ok(source) => source,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        if source.demo_secret {
            source.demo_variables = demo_variables.get(i).cloned().unwrap_or_default();
        }
        if !names.insert(source.name.clone()) {
            errors.push(ConfigError::new(
                file,
                format!("{label}.name"),
                "another source has this name",
            ));
            continue;
        }
        if !paths.insert(source.path.clone()) {
            errors.push(ConfigError::new(
                file,
                format!("{label}.path"),
                format!("`{}` is used by another source", source.path),
            ));
            continue;
        }
        sources.push(source);
    }
    sources
}

pub(super) fn build_source(
    table: Table,
    label: &str,
    file: &str,
    default_max_body: u64,
) -> Result<SourceConfig, ConfigError> {
    let parameters = hookgate_verify::preset::parameter_names();
    let known: BTreeSet<&str> = SOURCE_SERVER_KEYS
        .iter()
        .chain(SourceSpec::FIELDS)
        .chain(&parameters)
        .copied()
        .collect();
    if let Some(unknown) = table.keys().find(|k| !known.contains(k.as_str())) {
        return Err(ConfigError::new(
            file,
            format!("{label}.{unknown}"),
            "unknown key",
        ));
    }
    let demo_secret = contains_demo_secret(&Value::Table(table.clone()));
    let fingerprint = {
        use sha2::Digest;
        sha2::Sha256::digest(format!("{table:?}").as_bytes()).into()
    };
    let server: SourceServerPart = deserialize_at(Value::Table(table.clone()), file, label)?;
    if !server.path.starts_with('/') {
        return Err(ConfigError::new(
            file,
            format!("{label}.path"),
            "must start with `/`",
        ));
    }
    if RESERVED_PATHS
        .iter()
        .any(|r| server.path == *r || server.path.starts_with(&format!("{r}/")))
    {
        return Err(ConfigError::new(
            file,
            format!("{label}.path"),
            format!("`{}` is reserved for the gateway itself", server.path),
        ));
    }
    if server.path.contains(['{', '}', '*']) {
        return Err(ConfigError::new(
            file,
            format!("{label}.path"),
            "must be a literal path (no `{`, `}` or `*`)",
        ));
    }
    let max_body = match &server.max_body {
        Some(s) => {
            parse_size(s).map_err(|m| ConfigError::new(file, format!("{label}.max_body"), m))?
        }
        None => default_max_body,
    };
    let retention = server
        .retention
        .as_deref()
        .map(|text| parse_retention(text, file, &format!("{label}.retention")))
        .transpose()?;
    if server.burst.is_some() && server.rate_limit.is_none() {
        return Err(ConfigError::new(
            file,
            format!("{label}.burst"),
            "goes with rate_limit",
        ));
    }
    let rate_limit = server
        .rate_limit
        .as_deref()
        .map(|text| {
            crate::limits::RateLimit::parse(text, server.burst)
                .map_err(|m| ConfigError::new(file, format!("{label}.rate_limit"), m))
        })
        .transpose()?;
    // The verification part: every key but the server's (the preset's parameters are
    // the keys `SourceSpec` does not name).
    let mut verification = table;
    verification.retain(|k, _| !SOURCE_SERVER_KEYS.contains(&k));
    let spec: SourceSpec = deserialize_at(Value::Table(verification), file, label)?;
    let source = Source::build(spec)
        .map_err(|e| ConfigError::new(file, format!("{label}.{}", e.key), e.message))?;
    let methods: Vec<String> = server
        .methods
        .unwrap_or_else(|| source.default_methods().to_vec())
        .iter()
        .map(|m| m.to_ascii_uppercase())
        .collect();
    if let Some(bad) = methods
        .iter()
        .find(|m| !["POST", "PUT", "PATCH", "GET", "HEAD", "DELETE"].contains(&m.as_str()))
    {
        return Err(ConfigError::new(
            file,
            format!("{label}.methods"),
            format!("`{bad}` is not one of POST, PUT, PATCH, GET, HEAD, DELETE"),
        ));
    }
    Ok(SourceConfig {
        name: server.name,
        path: server.path,
        methods,
        max_body,
        retention,
        rate_limit,
        redacted_headers: source.credential_headers(),
        redacted_query: source.credential_query_params(),
        asymmetric: source.is_asymmetric(),
        source: Arc::new(source),
        demo_secret,
        demo_variables: Vec::new(),
        fingerprint,
    })
}

impl Config {
    /// Reads only the source named `name` of the configuration at `path`: `${ENV}` and
    /// `*_file` are resolved in that source's table alone, so `hookgate send` and
    /// `hookgate verify` need the secrets of the source they use, not every secret of the
    /// file. `max_body` is `[server] max_body` as written (its default when it is not a
    /// plain size).
    pub fn load_source(
        path: &Path,
        name: &str,
        env: &dyn Environment,
    ) -> Result<SourceConfig, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::new(&file, "(file)", format!("cannot read: {e}")))?;
        let root: Table = text.parse().map_err(|e: toml::de::Error| {
            ConfigError::new(&file, "(syntax)", e.message().to_owned())
        })?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let found = match root.get("source") {
            Some(Value::Array(list)) => list
                .iter()
                .enumerate()
                .find(|(_, source)| source.get("name").and_then(Value::as_str) == Some(name)),
            _ => None,
        };
        let Some((i, Value::Table(table))) = found else {
            return Err(ConfigError::new(
                &file,
                "source",
                format!("no source named `{name}`"),
            ));
        };
        let mut table = table.clone();
        let demo_variables = super::resolve::demo_defaults(&Value::Table(table.clone()));
        let prefix = format!("source[{i}]");
        let mut errors = Vec::new();
        substitute_table(&mut table, &prefix, &file, env, &mut errors);
        if let Some(first) = errors.into_iter().next() {
            return Err(first);
        }
        let label = format!("source[{i}] ({name})");
        resolve_files(&mut table, "", &base, &file, &label)?;
        let max_body = root
            .get("server")
            .and_then(|server| server.get("max_body"))
            .and_then(Value::as_str)
            .and_then(|text| parse_size(text).ok())
            .unwrap_or(1 << 20);
        let mut source = build_source(table, &label, &file, max_body)?;
        if source.demo_secret {
            source.demo_variables = demo_variables;
        }
        Ok(source)
    }
}
