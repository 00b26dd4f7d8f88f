//! `hookgate.toml`: read, resolved (`${ENV}`, `${ENV:-default}`, `*_file`), and validated
//! completely before anything starts. Every error names the file, the key and what is wrong.

use std::collections::{BTreeSet, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hookgate_verify::{Source, SourceSpec};
use serde::Deserialize;
use toml::{Table, Value};

/// A configuration the gateway refuses.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {key}: {message}")]
pub struct ConfigError {
    /// The configuration file (or `--preset` for the one-line mode).
    pub file: String,
    /// The offending key, e.g. `source[1] (custom).verify.algorithm`.
    pub key: String,
    /// What is wrong, and what to do.
    pub message: String,
}

impl ConfigError {
    fn new(file: &str, key: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            file: file.to_owned(),
            key: key.into(),
            message: message.into(),
        }
    }
}

/// `[server]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSection {
    /// Address to listen on.
    pub listen: String,
    /// Largest accepted body, e.g. `1MiB`; per source `max_body` overrides it.
    pub max_body: String,
    /// Largest accepted request head (request line + headers), e.g. `16KiB`.
    pub max_header_bytes: String,
    /// Most header lines in a request.
    pub max_headers: usize,
    /// The whole request (head and body) must arrive within this time.
    pub read_timeout: String,
    /// Most simultaneous connections; further ones wait in the listen queue.
    pub max_connections: usize,
    /// How long in-flight requests may take to finish at shutdown.
    pub shutdown_grace: String,
    /// Memory for request bodies being read, all connections together, e.g. `256MiB`;
    /// a request that finds none free within 500 ms gets 503 + `Retry-After`.
    pub max_buffered_bodies: String,
    /// Connections one client address may hold at once; further ones are closed at once.
    pub max_connections_per_peer: usize,
    /// A connection must send a complete request head within this (also the idle time
    /// allowed between requests on a kept-alive connection).
    pub head_timeout: String,
    /// TLS: the certificate chain (PEM), relative to this file; with `tls_key`.
    pub tls_cert: Option<String>,
    /// TLS: the private key (PEM).
    pub tls_key: Option<String>,
    /// Requests one client address may send, e.g. `100/s` (429 beyond); default: unlimited.
    pub peer_rate_limit: Option<String>,
    /// The burst of `peer_rate_limit` (default: its count).
    pub peer_burst: Option<u32>,
}

impl Default for ServerSection {
    fn default() -> Self {
        ServerSection {
            listen: "127.0.0.1:8080".into(),
            max_body: "1MiB".into(),
            max_header_bytes: "16KiB".into(),
            max_headers: 100,
            read_timeout: "10s".into(),
            max_connections: 10_000,
            shutdown_grace: "10s".into(),
            max_buffered_bodies: "256MiB".into(),
            max_connections_per_peer: 512,
            head_timeout: "5s".into(),
            tls_cert: None,
            tls_key: None,
            peer_rate_limit: None,
            peer_burst: None,
        }
    }
}

/// `[store]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreSection {
    /// `sqlite://PATH`.
    pub url: String,
    /// Cap on the database size, e.g. `10GiB`: beyond it requests get 503 (nothing lost).
    pub max_size: Option<String>,
    /// Finished events older than this are deleted, e.g. `30d`; default: kept forever.
    pub retention: Option<String>,
}

impl Default for StoreSection {
    fn default() -> Self {
        StoreSection {
            url: DEFAULT_STORE_URL.into(),
            max_size: None,
            retention: None,
        }
    }
}

/// The embedded default store.
pub const DEFAULT_STORE_URL: &str = "sqlite://./hookgate-data/hookgate.db";

/// `[admin]`: the operators' surface (admin API, `/metrics`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminSection {
    /// The operator token: reads, replays, pauses.
    pub token: Option<String>,
    /// A read-only token: reads only.
    pub read_token: Option<String>,
    /// A listener of its own for `/api`, `/metrics`, `/health`, `/ready` (e.g. an internal
    /// address), apart from the providers' traffic.
    pub listen: Option<String>,
    /// Record and serve Prometheus metrics; default true.
    pub metrics: bool,
}

impl Default for AdminSection {
    fn default() -> Self {
        AdminSection {
            token: None,
            read_token: None,
            listen: None,
            metrics: true,
        }
    }
}

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
}

/// The whole, validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where it came from.
    pub file: String,
    /// Address to listen on.
    pub listen: String,
    /// Largest body unless a source says otherwise.
    pub max_body: u64,
    /// Largest request head.
    pub max_header_bytes: usize,
    /// Most header lines.
    pub max_headers: usize,
    /// Whole-request read timeout.
    pub read_timeout: Duration,
    /// Requests one client address may send.
    pub peer_rate_limit: Option<crate::limits::RateLimit>,
    /// TLS on the listeners, when configured.
    pub tls: Option<crate::tls::Tls>,
    /// Most simultaneous connections.
    pub max_connections: usize,
    /// Most simultaneous connections from one address.
    pub max_connections_per_peer: usize,
    /// Bytes of request bodies held in memory at once.
    pub max_buffered_bodies: u64,
    /// Time to send a complete request head (and idle time between requests).
    pub head_timeout: Duration,
    /// Time granted to in-flight requests at shutdown.
    pub shutdown_grace: Duration,
    /// Store URL.
    pub store_url: String,
    /// Store size cap.
    pub store_max_size: Option<u64>,
    /// How long finished events are kept (`None`: forever); sources may differ.
    pub retention: Option<Duration>,
    /// The operator token of the admin API (`None`: the API answers 404).
    pub admin_token: Option<String>,
    /// The read-only token of the admin API.
    pub admin_read_token: Option<String>,
    /// The operators' own listener, when set.
    pub admin_listen: Option<String>,
    /// Whether metrics are recorded and served.
    pub metrics: bool,
    /// The sources, in file order.
    pub sources: Vec<SourceConfig>,
    /// The destinations, in file order.
    pub destinations: Vec<Arc<crate::delivery::Destination>>,
    /// The routes, in file order.
    pub routes: crate::delivery::routing::Routes,
}

/// What `hookgate events` and `replay` need of a configuration: the store, the
/// destinations' names and the routes. Read without building sources or destinations, so
/// their secrets need not be set.
#[derive(Debug, Clone)]
pub struct Operations {
    /// Where it came from.
    pub file: String,
    /// Store URL.
    pub store_url: String,
    /// The destinations' names, in file order.
    pub destinations: Vec<String>,
    /// The routes.
    pub routes: crate::delivery::routing::Routes,
    /// `[store] retention`.
    pub retention: Option<Duration>,
    /// Sources with a retention of their own.
    pub source_retention: Vec<(String, Duration)>,
}

impl Operations {
    /// Reads `path`'s `[store]`, `[[destination]]` names and `[[route]]`s; `${ENV}` is
    /// resolved in those only.
    pub fn load(path: &Path, env: &dyn Environment) -> Result<Operations, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::new(&file, "(file)", format!("cannot read: {e}")))?;
        let table: Table = text.parse().map_err(|e: toml::de::Error| {
            ConfigError::new(&file, "(syntax)", e.message().to_owned())
        })?;
        let mut store = Table::new();
        if let Some(Value::Table(t)) = table.get("store") {
            store = t.clone();
        }
        substitute_env(&mut store, "store", &file, env)?;
        let store: StoreSection = deserialize_at(Value::Table(store), &file, "store")?;
        let destinations = match table.get("destination") {
            Some(Value::Array(list)) => list
                .iter()
                .enumerate()
                .map(|(i, d)| {
                    d.get("name")
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                        .ok_or_else(|| {
                            ConfigError::new(&file, format!("destination[{i}].name"), "missing")
                        })
                })
                .collect::<Result<Vec<_>, _>>()?,
            _ => Vec::new(),
        };
        let mut routes = match table.get("route") {
            Some(Value::Array(list)) => list.clone(),
            _ => Vec::new(),
        };
        for (i, route) in routes.iter_mut().enumerate() {
            substitute_value(route, &format!("route[{i}]"), &file, env)?;
        }
        let routes = build_routes(routes, &file, &destinations, None)?;
        let retention = store
            .retention
            .as_deref()
            .map(|text| parse_retention(text, &file, "store.retention"))
            .transpose()?;
        let mut source_retention = Vec::new();
        if let Some(Value::Array(list)) = table.get("source") {
            for (i, source) in list.iter().enumerate() {
                let (Some(name), Some(text)) = (
                    source.get("name").and_then(Value::as_str),
                    source.get("retention").and_then(Value::as_str),
                ) else {
                    continue;
                };
                let key = format!("source[{i}] ({name}).retention");
                source_retention.push((name.to_owned(), parse_retention(text, &file, &key)?));
            }
        }
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Ok(Operations {
            store_url: resolve_store_url(&store.url, &base),
            file,
            destinations,
            routes,
            retention,
            source_retention,
        })
    }
}

/// Reads how the environment is consulted, so tests can substitute their own.
pub trait Environment {
    /// The value of variable `name`.
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnvironment;

impl Environment for ProcessEnvironment {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl Config {
    /// Loads and validates `path`.
    pub fn load(path: &Path, env: &dyn Environment) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::new(&file, "(file)", format!("cannot read: {e}")))?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Config::parse(&text, &file, &base, env)
    }

    /// Parses and validates configuration text; `base` resolves relative `*_file` paths.
    pub fn parse(
        text: &str,
        file: &str,
        base: &Path,
        env: &dyn Environment,
    ) -> Result<Config, ConfigError> {
        let mut table: Table = text.parse().map_err(|e: toml::de::Error| {
            let message = e.message().to_owned();
            let at = e
                .span()
                .map(|s| line_of(text, s.start))
                .map(|l| format!("line {l}"))
                .unwrap_or_else(|| "(syntax)".into());
            ConfigError::new(file, at, message)
        })?;
        for key in table.keys() {
            if !["server", "store", "admin", "source", "destination", "route"]
                .contains(&key.as_str())
            {
                return Err(ConfigError::new(
                    file,
                    key.clone(),
                    "unknown section; known: server, store, admin, source, destination, route",
                ));
            }
        }
        // Which variables a source's demo secrets stand in for, read before substitution.
        let demo_variables: Vec<Vec<String>> = match table.get("source") {
            Some(Value::Array(list)) => list.iter().map(demo_defaults).collect(),
            _ => Vec::new(),
        };
        substitute_env(&mut table, "", file, env)?;
        let server: ServerSection = section(&table, "server", file)?;
        let store: StoreSection = section(&table, "store", file)?;
        let mut admin: AdminSection = section(&table, "admin", file)?;
        // An empty token is no token: `token = "${HOOKGATE_ADMIN_TOKEN:-}"` turns the API on
        // only where the variable is set.
        admin.token = admin.token.filter(|t| !t.is_empty());
        admin.read_token = admin.read_token.filter(|t| !t.is_empty());
        let max_body = parse_size(&server.max_body)
            .map_err(|m| ConfigError::new(file, "server.max_body", m))?;
        let max_header_bytes = parse_size(&server.max_header_bytes)
            .map_err(|m| ConfigError::new(file, "server.max_header_bytes", m))?;
        if max_header_bytes < 8192 {
            return Err(ConfigError::new(
                file,
                "server.max_header_bytes",
                "must be at least 8KiB",
            ));
        }
        let duration = |key: &str, text: &str| {
            humantime::parse_duration(text).map_err(|e| {
                ConfigError::new(
                    file,
                    key,
                    format!("`{text}` is not a duration ({e}); write e.g. \"10s\""),
                )
            })
        };
        let read_timeout = duration("server.read_timeout", &server.read_timeout)?;
        let head_timeout = duration("server.head_timeout", &server.head_timeout)?;
        let tls = match (&server.tls_cert, &server.tls_key) {
            (None, None) => None,
            (Some(cert), Some(key)) => {
                let resolve = |p: &str| {
                    if Path::new(p).is_absolute() {
                        PathBuf::from(p)
                    } else {
                        base.join(p)
                    }
                };
                Some(
                    crate::tls::Tls::new(&resolve(cert), &resolve(key)).map_err(|e| {
                        let key = if e.path == resolve(cert).display().to_string() {
                            "server.tls_cert"
                        } else {
                            "server.tls_key"
                        };
                        ConfigError::new(file, key, e.to_string())
                    })?,
                )
            }
            (Some(_), None) => {
                return Err(ConfigError::new(
                    file,
                    "server.tls_key",
                    "tls_cert needs tls_key",
                ))
            }
            (None, Some(_)) => {
                return Err(ConfigError::new(
                    file,
                    "server.tls_cert",
                    "tls_key needs tls_cert",
                ))
            }
        };
        let max_buffered_bodies = parse_size(&server.max_buffered_bodies)
            .map_err(|m| ConfigError::new(file, "server.max_buffered_bodies", m))?;
        if max_buffered_bodies < max_body {
            return Err(ConfigError::new(
                file,
                "server.max_buffered_bodies",
                format!("must be at least server.max_body ({max_body} bytes)"),
            ));
        }
        if server.max_connections_per_peer == 0 {
            return Err(ConfigError::new(
                file,
                "server.max_connections_per_peer",
                "must be at least 1",
            ));
        }
        if server.peer_burst.is_some() && server.peer_rate_limit.is_none() {
            return Err(ConfigError::new(
                file,
                "server.peer_burst",
                "goes with server.peer_rate_limit",
            ));
        }
        let peer_rate_limit = server
            .peer_rate_limit
            .as_deref()
            .map(|text| {
                crate::limits::RateLimit::parse(text, server.peer_burst)
                    .map_err(|m| ConfigError::new(file, "server.peer_rate_limit", m))
            })
            .transpose()?;
        let shutdown_grace = duration("server.shutdown_grace", &server.shutdown_grace)?;
        check_listen(&server.listen, file, "server.listen")?;
        if let Some(listen) = &admin.listen {
            check_listen(listen, file, "admin.listen")?;
            if listen == &server.listen {
                return Err(ConfigError::new(
                    file,
                    "admin.listen",
                    "must differ from server.listen (omit it to serve the admin API on the main listener)",
                ));
            }
        }
        let retention = store
            .retention
            .as_deref()
            .map(|text| parse_retention(text, file, "store.retention"))
            .transpose()?;
        let store_max_size = match &store.max_size {
            Some(s) => {
                Some(parse_size(s).map_err(|m| ConfigError::new(file, "store.max_size", m))?)
            }
            None => None,
        };
        for (key, token) in [
            ("admin.token", &admin.token),
            ("admin.read_token", &admin.read_token),
        ] {
            if token.as_ref().is_some_and(|t| t.len() < 16) {
                return Err(ConfigError::new(
                    file,
                    key,
                    "use at least 16 characters (e.g. `openssl rand -hex 32`)",
                ));
            }
        }
        if admin.token.is_some() && admin.token == admin.read_token {
            return Err(ConfigError::new(
                file,
                "admin.read_token",
                "must differ from admin.token",
            ));
        }
        let sources_value = table
            .get("source")
            .cloned()
            .unwrap_or(Value::Array(Vec::new()));
        let Value::Array(list) = sources_value else {
            return Err(ConfigError::new(
                file,
                "source",
                "write sources as [[source]] tables",
            ));
        };
        let mut sources = Vec::new();
        let mut names = HashSet::new();
        let mut paths = HashSet::new();
        for (i, value) in list.into_iter().enumerate() {
            let Value::Table(mut t) = value else {
                return Err(ConfigError::new(
                    file,
                    format!("source[{i}]"),
                    "must be a table",
                ));
            };
            let label = match t.get("name").and_then(Value::as_str) {
                Some(name) => format!("source[{i}] ({name})"),
                None => format!("source[{i}]"),
            };
            resolve_files(&mut t, "", base, file, &label)?;
            let mut source = build_source(t, &label, file, max_body)?;
            if source.demo_secret {
                source.demo_variables = demo_variables.get(i).cloned().unwrap_or_default();
            }
            if !names.insert(source.name.clone()) {
                return Err(ConfigError::new(
                    file,
                    format!("{label}.name"),
                    "another source has this name",
                ));
            }
            if !paths.insert(source.path.clone()) {
                return Err(ConfigError::new(
                    file,
                    format!("{label}.path"),
                    format!("`{}` is used by another source", source.path),
                ));
            }
            sources.push(source);
        }
        let (destinations, routes) = delivery_config(&table, file, base, &sources)?;
        Ok(Config {
            destinations,
            routes,
            file: file.to_owned(),
            listen: server.listen,
            max_body,
            max_header_bytes: max_header_bytes as usize,
            max_headers: server.max_headers,
            read_timeout,
            peer_rate_limit,
            tls,
            max_connections: server.max_connections.max(1),
            max_connections_per_peer: server.max_connections_per_peer,
            max_buffered_bodies,
            head_timeout: head_timeout.min(read_timeout),
            shutdown_grace,
            store_url: resolve_store_url(&store.url, base),
            store_max_size,
            retention,
            admin_token: admin.token,
            admin_read_token: admin.read_token,
            admin_listen: admin.listen,
            metrics: admin.metrics,
            sources,
        })
    }

    /// The one-line mode: one preset source at its documented path, parameters from the
    /// environment (`secret` from the preset's documented variable) and `extra`.
    pub fn for_preset(
        preset: &str,
        listen: &str,
        extra: &[(String, String)],
        env: &dyn Environment,
    ) -> Result<Config, ConfigError> {
        let file = "--preset";
        if !hookgate_verify::preset::NAMES.contains(&preset) {
            return Err(ConfigError::new(
                file,
                "preset",
                format!(
                    "unknown preset `{preset}`; known: {}",
                    hookgate_verify::preset::NAMES.join(", ")
                ),
            ));
        }
        let mut source = Table::new();
        source.insert("name".into(), Value::String(preset.into()));
        source.insert(
            "path".into(),
            Value::String(hookgate_verify::preset::default_path(preset).into()),
        );
        source.insert("preset".into(), Value::String(preset.into()));
        for (param, variable) in hookgate_verify::preset::environment(preset) {
            if extra
                .iter()
                .any(|(k, _)| k == param || k.strip_suffix("_file") == Some(param))
            {
                continue;
            }
            match env.var(variable) {
                Some(value) if !value.is_empty() => {
                    let key = if variable.ends_with("_FILE") { format!("{param}_file") } else { (*param).to_string() };
                    source.insert(key, Value::String(value));
                }
                _ => {
                    return Err(ConfigError::new(
                        file,
                        *variable,
                        format!("environment variable {variable} is not set; set it with: export {variable}=\"your-value-here\""),
                    ))
                }
            }
        }
        for (key, value) in extra {
            let value = match value.as_str() {
                "true" => Value::Boolean(true),
                "false" => Value::Boolean(false),
                _ => Value::String(value.clone()),
            };
            source.insert(key.clone(), value);
        }
        if preset == "pps" {
            // One trusted issuer and its audience, as the environment gives them.
            let issuer = source
                .remove("issuer")
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            let audience = source
                .remove("audience")
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            let mut issuers = Table::new();
            issuers.insert(issuer, Value::Array(vec![Value::String(audience)]));
            source.insert("issuers".into(), Value::Table(issuers));
        }
        let mut root = Table::new();
        let mut server = Table::new();
        server.insert("listen".into(), Value::String(listen.into()));
        root.insert("server".into(), Value::Table(server));
        root.insert("source".into(), Value::Array(vec![Value::Table(source)]));
        let text = toml::to_string(&root)
            .map_err(|e| ConfigError::new(file, "(preset)", e.to_string()))?;
        Config::parse(&text, file, Path::new("."), env)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RouteSection {
    #[serde(default = "any")]
    source: String,
    #[serde(default = "any")]
    topic: String,
    #[serde(rename = "match", default)]
    filter: std::collections::BTreeMap<String, Value>,
    to: hookgate_verify::OneOrMany<String>,
}

fn any() -> String {
    "*".into()
}

type DeliveryConfig = (
    Vec<Arc<crate::delivery::Destination>>,
    crate::delivery::routing::Routes,
);

fn delivery_config(
    table: &Table,
    file: &str,
    base: &Path,
    sources: &[SourceConfig],
) -> Result<DeliveryConfig, ConfigError> {
    let list = |name: &str| -> Result<Vec<Value>, ConfigError> {
        match table.get(name) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => Ok(items.clone()),
            Some(_) => Err(ConfigError::new(
                file,
                name,
                format!("write [[{name}]] tables"),
            )),
        }
    };
    let mut destinations: Vec<Arc<crate::delivery::Destination>> = Vec::new();
    for (i, value) in list("destination")?.into_iter().enumerate() {
        let label = match value.get("name").and_then(Value::as_str) {
            Some(name) => format!("destination[{i}] ({name})"),
            None => format!("destination[{i}]"),
        };
        let mut value = value;
        if let Value::Table(t) = &mut value {
            resolve_files(t, "", base, file, &label)?;
        }
        let section: crate::delivery::DestinationSection = deserialize_at(value, file, &label)?;
        if destinations.iter().any(|d| d.name == section.name) {
            return Err(ConfigError::new(
                file,
                format!("{label}.name"),
                "another destination has this name",
            ));
        }
        let built = crate::delivery::Destination::build(section, base)
            .map_err(|(key, message)| ConfigError::new(file, format!("{label}.{key}"), message))?;
        destinations.push(Arc::new(built));
    }
    let names: Vec<String> = destinations.iter().map(|d| d.name.clone()).collect();
    let routes = build_routes(list("route")?, file, &names, Some(sources))?;
    Ok((destinations, routes))
}

/// `[[route]]` tables, checked against the destinations' names and, when given, the
/// sources' names.
fn build_routes(
    list: Vec<Value>,
    file: &str,
    destinations: &[String],
    sources: Option<&[SourceConfig]>,
) -> Result<crate::delivery::routing::Routes, ConfigError> {
    let mut routes = Vec::new();
    for (i, value) in list.into_iter().enumerate() {
        let label = format!("route[{i}]");
        let section: RouteSection = deserialize_at(value, file, &label)?;
        let to = section.to.into_vec();
        if to.is_empty() {
            return Err(ConfigError::new(
                file,
                format!("{label}.to"),
                "name at least one destination",
            ));
        }
        if let Some(unknown) = to.iter().find(|d| !destinations.contains(d)) {
            return Err(ConfigError::new(
                file,
                format!("{label}.to"),
                format!("no destination named `{unknown}`"),
            ));
        }
        if sources.is_some_and(|sources| {
            !sources
                .iter()
                .any(|s| wildmatch::WildMatch::new(&section.source).matches(&s.name))
        }) {
            return Err(ConfigError::new(
                file,
                format!("{label}.source"),
                format!("`{}` matches no source", section.source),
            ));
        }
        let mut filters = Vec::new();
        for (pointer, expected) in section.filter {
            if !pointer.starts_with('/') {
                return Err(ConfigError::new(
                    file,
                    format!("{label}.match.{pointer}"),
                    "keys are JSON pointers, e.g. \"/type\"",
                ));
            }
            let expected = serde_json::to_value(&expected).map_err(|e| {
                ConfigError::new(file, format!("{label}.match.{pointer}"), e.to_string())
            })?;
            filters.push((pointer, expected));
        }
        routes.push(crate::delivery::routing::Route::new(
            &section.source,
            &section.topic,
            filters,
            to,
        ));
    }
    Ok(crate::delivery::routing::Routes(routes))
}

/// Deserialises `value`; an error names the key under `label` (e.g. `source[1] (x).verify`).
fn deserialize_at<T: for<'de> Deserialize<'de>>(
    value: Value,
    file: &str,
    label: &str,
) -> Result<T, ConfigError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let key = if path == "." {
            label.to_owned()
        } else {
            format!("{label}.{path}")
        };
        ConfigError::new(file, key, e.into_inner().to_string())
    })
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].lines().count().max(1)
}

fn section<T: for<'de> Deserialize<'de> + Default>(
    table: &Table,
    name: &str,
    file: &str,
) -> Result<T, ConfigError> {
    match table.get(name) {
        None => Ok(T::default()),
        Some(value) => deserialize_at(value.clone(), file, name),
    }
}

fn build_source(
    table: Table,
    label: &str,
    file: &str,
    default_max_body: u64,
) -> Result<SourceConfig, ConfigError> {
    let known: BTreeSet<&str> = SOURCE_SERVER_KEYS
        .iter()
        .chain(SourceSpec::FIELDS)
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
    let value = Value::Table(table);
    let server: SourceServerPart = deserialize_at(value.clone(), file, label)?;
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
    let methods: Vec<String> = server
        .methods
        .unwrap_or_else(|| vec!["POST".into()])
        .iter()
        .map(|m| m.to_ascii_uppercase())
        .collect();
    if let Some(bad) = methods
        .iter()
        .find(|m| !["POST", "PUT", "PATCH", "GET", "DELETE"].contains(&m.as_str()))
    {
        return Err(ConfigError::new(
            file,
            format!("{label}.methods"),
            format!("`{bad}` is not one of POST, PUT, PATCH, GET, DELETE"),
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
    let spec: SourceSpec = deserialize_at(value, file, label)?;
    let source = Source::build(spec)
        .map_err(|e| ConfigError::new(file, format!("{label}.{}", e.key), e.message))?;
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
    })
}

/// The variables of `${NAME:-DEMO-…}` defaults in `value`.
fn demo_defaults(value: &Value) -> Vec<String> {
    let mut names = Vec::new();
    let mut visit = |text: &str, names: &mut Vec<String>| {
        for piece in text.split("${").skip(1) {
            if let Some((name, default)) = piece.split_once(":-") {
                if default.starts_with("DEMO-") && !names.iter().any(|n| n == name) {
                    names.push(name.to_owned());
                }
            }
        }
    };
    fn walk(value: &Value, names: &mut Vec<String>, visit: &mut dyn FnMut(&str, &mut Vec<String>)) {
        match value {
            Value::String(s) => visit(s, names),
            Value::Array(list) => list.iter().for_each(|v| walk(v, names, visit)),
            Value::Table(t) => t.values().for_each(|v| walk(v, names, visit)),
            _ => {}
        }
    }
    walk(value, &mut names, &mut visit);
    names
}

/// A secret is a demo value when it starts with `DEMO-`: the gateway announces it loudly.
fn contains_demo_secret(value: &Value) -> bool {
    match value {
        Value::String(s) => s.starts_with("DEMO-"),
        Value::Array(list) => list.iter().any(contains_demo_secret),
        Value::Table(t) => t.values().any(contains_demo_secret),
        _ => false,
    }
}

/// Replaces `${NAME}` and `${NAME:-default}` in every string; `$${` is a literal `${`.
fn substitute_env(
    table: &mut Table,
    prefix: &str,
    file: &str,
    env: &dyn Environment,
) -> Result<(), ConfigError> {
    for (key, value) in table.iter_mut() {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        substitute_value(value, &path, file, env)?;
    }
    Ok(())
}

fn substitute_value(
    value: &mut Value,
    path: &str,
    file: &str,
    env: &dyn Environment,
) -> Result<(), ConfigError> {
    match value {
        Value::String(s) if s.contains("${") => *s = expand(s, path, file, env)?,
        Value::Array(list) => {
            for (i, item) in list.iter_mut().enumerate() {
                substitute_value(item, &format!("{path}[{i}]"), file, env)?;
            }
        }
        Value::Table(t) => substitute_env(t, path, file, env)?,
        _ => {}
    }
    Ok(())
}

fn expand(
    text: &str,
    path: &str,
    file: &str,
    env: &dyn Environment,
) -> Result<String, ConfigError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        if rest[..start].ends_with('$') {
            out.push_str(&rest[..start - 1]);
            out.push_str("${");
            rest = &rest[start + 2..];
            continue;
        }
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').ok_or_else(|| {
            ConfigError::new(file, path, "unclosed `${` (write `$${` for a literal)")
        })?;
        let inner = &rest[start + 2..start + end];
        let (name, default) = match inner.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (inner, None),
        };
        if default.is_some_and(|d| d.contains("${")) {
            return Err(ConfigError::new(
                file,
                path,
                format!("`${{{inner}}}…`: a default cannot hold another ${{…}} reference"),
            ));
        }
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(ConfigError::new(
                file,
                path,
                format!("`${{{inner}}}` is not an environment variable reference"),
            ));
        }
        match (env.var(name), default) {
            (Some(v), _) if !v.is_empty() => out.push_str(&v),
            (_, Some(d)) => out.push_str(d),
            _ => {
                return Err(ConfigError::new(
                    file,
                    path,
                    format!("environment variable {name} is not set; set it with: export {name}=\"…\" (or write ${{{name}:-default}})"),
                ))
            }
        }
        rest = &rest[start + end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// `KEY_file = "path"` becomes `KEY = <the file's contents>`, relative to the config file;
/// secrets lose one trailing newline, as files written by editors and `echo` have one.
fn resolve_files(
    table: &mut Table,
    prefix: &str,
    base: &Path,
    file: &str,
    label: &str,
) -> Result<(), ConfigError> {
    let keys: Vec<String> = table.keys().cloned().collect();
    for key in keys {
        let path_key = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        if let Some(Value::Table(inner)) = table.get_mut(&key) {
            resolve_files(inner, &path_key, base, file, label)?;
            continue;
        }
        if let Some(Value::Array(items)) = table.get_mut(&key) {
            for (i, item) in items.iter_mut().enumerate() {
                if let Value::Table(inner) = item {
                    resolve_files(inner, &format!("{path_key}[{i}]"), base, file, label)?;
                }
            }
            continue;
        }
        let Some(target) = key.strip_suffix("_file") else {
            continue;
        };
        let Some(Value::String(relative)) = table.get(&key) else {
            return Err(ConfigError::new(
                file,
                format!("{label}.{path_key}"),
                "must be a file path",
            ));
        };
        if table.contains_key(target) {
            return Err(ConfigError::new(
                file,
                format!("{label}.{path_key}"),
                format!("set either `{target}` or `{key}`, not both"),
            ));
        }
        let full: PathBuf = if Path::new(relative).is_absolute() {
            PathBuf::from(relative)
        } else {
            base.join(relative)
        };
        let mut contents = std::fs::read_to_string(&full).map_err(|e| {
            ConfigError::new(
                file,
                format!("{label}.{path_key}"),
                format!("cannot read {}: {e}", full.display()),
            )
        })?;
        if (target.starts_with("secret") || target == "api_client_key") && contents.ends_with('\n')
        {
            contents.pop();
            if contents.ends_with('\r') {
                contents.pop();
            }
        }
        table.remove(&key);
        table.insert(target.to_owned(), Value::String(contents));
    }
    Ok(())
}

/// `sqlite://PATH` with a relative PATH made relative to the configuration file's directory
/// (`base`), like every other path in a configuration.
pub fn resolve_store_url(url: &str, base: &Path) -> String {
    match url.strip_prefix("sqlite://") {
        Some(path)
            if !path.is_empty()
                && Path::new(path).is_relative()
                && !base.as_os_str().is_empty() =>
        {
            format!("sqlite://{}", base.join(path).display())
        }
        _ => url.to_owned(),
    }
}

/// A retention: a duration of at least a second, e.g. `30d`, `12h`.
fn parse_retention(text: &str, file: &str, key: &str) -> Result<Duration, ConfigError> {
    let retention = humantime::parse_duration(text).map_err(|e| {
        ConfigError::new(
            file,
            key,
            format!("`{text}` is not a duration ({e}); write e.g. \"30d\""),
        )
    })?;
    if retention < Duration::from_secs(1) {
        return Err(ConfigError::new(file, key, "must be at least 1s"));
    }
    Ok(retention)
}

/// Checks that `listen` is HOST:PORT.
fn check_listen(listen: &str, file: &str, key: &str) -> Result<(), ConfigError> {
    let valid = listen.parse::<SocketAddr>().is_ok()
        || listen
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok());
    if valid {
        Ok(())
    } else {
        Err(ConfigError::new(
            file,
            key,
            format!("`{listen}` is not HOST:PORT"),
        ))
    }
}

/// Parses `1MiB`, `512KiB`, `1000000`, `10 MB`.
pub fn parse_size(text: &str) -> Result<u64, String> {
    text.trim()
        .parse::<bytesize::ByteSize>()
        .map(|b| b.as_u64())
        .map_err(|_| format!("`{text}` is not a size; write e.g. \"1MiB\""))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct Env(HashMap<&'static str, &'static str>);
    impl Environment for Env {
        fn var(&self, name: &str) -> Option<String> {
            self.0.get(name).map(|s| s.to_string())
        }
    }

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(
            text,
            "test.toml",
            Path::new("."),
            &Env(HashMap::from([("SECRET", "s3cret"), ("EMPTY", "")])),
        )
    }

    #[test]
    fn environment_substitution() {
        let c = parse("[[source]]\nname = \"a\"\npath = \"/a\"\npreset = \"github\"\nsecret = \"x-${SECRET}-${MISSING:-dflt}-$${LIT}\"").unwrap();
        assert_eq!(c.sources.len(), 1);
        let e = parse(
            "[[source]]\nname = \"a\"\npath = \"/a\"\npreset = \"github\"\nsecret = \"${NOPE}\"",
        )
        .unwrap_err();
        assert_eq!(e.key, "source[0].secret");
        assert!(e.message.contains("NOPE is not set"), "{e}");
        assert!(parse(
            "[[source]]\nname = \"a\"\npath = \"/a\"\npreset = \"github\"\nsecret = \"${EMPTY}\""
        )
        .is_err());
        let nested = parse("[[source]]\nname = \"a\"\npath = \"/a\"\npreset = \"github\"\nsecret = \"${A:-${SECRET}}\"").unwrap_err();
        assert!(nested.message.contains("cannot hold another"), "{nested}");
    }

    #[test]
    fn errors_name_file_and_key() {
        let cases = [
            ("[server]\nlisten = \"nope\"", "test.toml: server.listen: `nope` is not HOST:PORT"),
            ("[server]\nlisen = \"x\"", "test.toml: server.lisen: unknown field `lisen`"),
            ("[server]\nmax_body = \"lots\"", "test.toml: server.max_body: `lots` is not a size"),
            ("[store]\nurl = 5", "test.toml: store.url: invalid type"),
            ("[[destination]]\nname = \"x\"\nkind = \"kafka\"", "test.toml: destination[0] (x).kind: `kafka` destinations are not part of this version"),
            ("[[destination]]\nname = \"x\"\nkind = \"http\"\nurl = \"http://h/\"", "test.toml: destination[0] (x).secret: deliveries are signed as Standard Webhooks"),
            ("[[destination]]\nname = \"x\"\nkind = \"command\"\ncommand = [\"/bin/x\", \"{jsn:/a}\"]", "test.toml: destination[0] (x).command[1]: unknown placeholder"),
            ("[[source]]\nname = \"a\"\npath = \"/a\"\npreset = \"github\"\nsecret = \"s\"\n[[route]]\nto = \"nowhere\"", "test.toml: route[0].to: no destination named `nowhere`"),
            ("[[route]]\nsource = \"zzz\"\nto = []", "test.toml: route[0].to: name at least one destination"),
            ("[[events]]\nx = 1", "test.toml: events: unknown section"),
            ("[[source]]\nname = \"a\"\npath = \"/a\"\npreset = \"github\"\nsecret = \"s\"\nalgoritm = \"x\"", "test.toml: source[0] (a).algoritm: unknown key"),
            ("[[source]]\nname = \"a\"\npath = \"a\"\npreset = \"github\"\nsecret = \"s\"", "test.toml: source[0] (a).path: must start with `/`"),
            ("[[source]]\nname = \"a\"\npath = \"/health\"\npreset = \"github\"\nsecret = \"s\"", "test.toml: source[0] (a).path: `/health` is reserved"),
            ("[[source]]\nname = \"a\"\npath = \"/a\"\npreset = \"github\"\nsecret = \"s\"\n[[source]]\nname = \"a\"\npath = \"/b\"\npreset = \"github\"\nsecret = \"s\"", "test.toml: source[1] (a).name: another source has this name"),
            ("[[source]]\nname = \"a\"\npath = \"/a\"\n[source.verify]\nkind = \"hmac\"\nheader = \"X\"\nsecret = \"s\"\nencoding = \"hexx\"", "test.toml: source[0] (a).verify: unknown variant `hexx`"),
            ("[[source]]\nname = \"a\"\npath = \"/a\"\n[source.verify]\nkind = \"hmac\"\nheader = \"X\"\nsecret = \"s\"\nsigned = \"{bdy}\"", "test.toml: source[0] (a).verify.signed: unknown placeholder"),
            ("[[source]]\nname = \"a\"\npath = \"/a\"\npreset = \"qitech\"\napi_client_key = \"k\"\npublic_key_file = \"/nonexistent/key.pem\"", "test.toml: source[0] (a).public_key_file: cannot read /nonexistent/key.pem"),
            ("[[source]]\npath = \"/a\"\npreset = \"github\"\nsecret = \"s\"", "test.toml: source[0]: missing field `name`"),
            ("[server\n", "test.toml: line 1:"),
            ("[admin]\ntoken = \"short\"", "test.toml: admin.token: use at least 16 characters"),
            ("[admin]\nread_token = \"short\"", "test.toml: admin.read_token: use at least 16 characters"),
            ("[admin]\ntoken = \"0123456789abcdef\"\nread_token = \"0123456789abcdef\"", "test.toml: admin.read_token: must differ from admin.token"),
            ("[admin]\nlisten = \"internal\"", "test.toml: admin.listen: `internal` is not HOST:PORT"),
            ("[admin]\nlisten = \"127.0.0.1:8080\"", "test.toml: admin.listen: must differ from server.listen"),
            ("[admin]\ntokn = \"0123456789abcdef\"", "test.toml: admin.tokn: unknown field `tokn`"),
            ("[server]\npeer_rate_limit = \"lots\"", "test.toml: server.peer_rate_limit: `lots` is not a rate"),
            ("[server]\npeer_burst = 5", "test.toml: server.peer_burst: goes with server.peer_rate_limit"),
            ("[[source]]\nname = \"a\"\npath = \"/a\"\npreset = \"github\"\nsecret = \"s\"\nrate_limit = \"0/s\"", "test.toml: source[0] (a).rate_limit: the rate must be at least 1"),
            ("[[source]]\nname = \"a\"\npath = \"/a\"\npreset = \"github\"\nsecret = \"s\"\nburst = 5", "test.toml: source[0] (a).burst: goes with rate_limit"),
            ("[store]\nretention = \"0s\"", "test.toml: store.retention: must be at least 1s"),
        ];
        for (text, expected) in cases {
            let message = parse(text).unwrap_err().to_string();
            assert!(
                message.starts_with(expected),
                "for {text:?}\nexpected `{expected}…`\ngot `{message}`"
            );
        }
    }

    #[test]
    fn an_empty_admin_token_turns_the_api_off() {
        let config = parse("[admin]\ntoken = \"\"\nread_token = \"\"\nmetrics = false").unwrap();
        assert_eq!((config.admin_token, config.admin_read_token), (None, None));
        assert!(!config.metrics);
        assert!(parse("").unwrap().metrics, "metrics are on by default");
    }

    #[test]
    fn files_are_read_relative_to_the_config() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("secret.txt"), "from-file\n").unwrap();
        std::fs::write(
            dir.path().join("hookgate.toml"),
            "[[source]]\nname = \"a\"\npath = \"/a\"\npreset = \"github\"\nsecret_file = \"secret.txt\"",
        )
        .unwrap();
        let c = Config::load(&dir.path().join("hookgate.toml"), &ProcessEnvironment).unwrap();
        let src = &c.sources[0].source;
        let mut req = hookgate_verify::Request::post("/a", b"x");
        src.sign(
            &mut req,
            time::OffsetDateTime::now_utc(),
            &Default::default(),
        )
        .unwrap();
        let expected = hookgate_verify::HashAlgorithm::Sha256.mac_of(b"from-file", b"x");
        assert_eq!(
            req.headers.get("x-hub-signature-256").unwrap(),
            format!(
                "sha256={}",
                hookgate_verify::Encoding::Hex.encode(&expected)
            )
        );
    }

    #[test]
    fn one_line_preset_mode_reads_the_documented_variable() {
        let env = Env(HashMap::from([("WEBHOOK_ENDPOINT_SECRET_KEY", "k")]));
        let c = Config::for_preset("entrupy", "localhost:8080", &[], &env).unwrap();
        assert_eq!(
            (c.sources[0].path.as_str(), c.listen.as_str()),
            ("/notify", "localhost:8080")
        );
        let e =
            Config::for_preset("entrupy", "localhost:8080", &[], &Env(HashMap::new())).unwrap_err();
        assert_eq!(
            e.message,
            "environment variable WEBHOOK_ENDPOINT_SECRET_KEY is not set; set it with: export WEBHOOK_ENDPOINT_SECRET_KEY=\"your-value-here\""
        );
    }
}
