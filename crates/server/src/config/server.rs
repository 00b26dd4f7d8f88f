//! `[server]`, `[store]` and `[admin]`: the settings of the process, and the value parsers
//! they share with the rest of the configuration (sizes, durations, addresses, paths).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Table;

use super::resolve::section;
use super::ConfigError;

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
    /// `durable` (default): refuse a PostgreSQL server that would commit without
    /// durability; `relaxed`: accept it, with a warning.
    pub durability: Durability,
}

/// `[store] durability`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// Every acknowledged event survives a crash of the database server.
    #[default]
    Durable,
    /// The operator accepts a server that commits without fsync.
    Relaxed,
}

impl Default for StoreSection {
    fn default() -> Self {
        StoreSection {
            url: DEFAULT_STORE_URL.into(),
            max_size: None,
            retention: None,
            durability: Durability::Durable,
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
pub(super) fn parse_retention(text: &str, file: &str, key: &str) -> Result<Duration, ConfigError> {
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
pub(super) fn check_listen(listen: &str, file: &str, key: &str) -> Result<(), ConfigError> {
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

/// The validated `[server]`, `[store]` and `[admin]` settings.
#[derive(Debug)]
pub(super) struct Settings {
    pub listen: String,
    pub max_body: u64,
    pub max_header_bytes: usize,
    pub max_headers: usize,
    pub read_timeout: Duration,
    pub peer_rate_limit: Option<crate::limits::RateLimit>,
    pub tls: Option<crate::tls::Tls>,
    pub max_connections: usize,
    pub max_connections_per_peer: usize,
    pub max_buffered_bodies: u64,
    pub head_timeout: Duration,
    pub shutdown_grace: Duration,
    pub store_url: String,
    pub store_max_size: Option<u64>,
    pub store_durability: Durability,
    pub retention: Option<Duration>,
    pub admin_token: Option<String>,
    pub admin_read_token: Option<String>,
    pub admin_listen: Option<String>,
    pub metrics: bool,
}

/// Reads the three sections of `table` (already `${ENV}`-substituted). Each error found is
/// added to `errors` and its default used instead, so that the checks after it still run.
pub(super) fn settings(
    table: &Table,
    file: &str,
    base: &Path,
    errors: &mut Vec<ConfigError>,
) -> Settings {
    let server: ServerSection = section(table, "server", file).unwrap_or_else(|e| {
        errors.push(e);
        ServerSection::default()
    });
    let store: StoreSection = section(table, "store", file).unwrap_or_else(|e| {
        errors.push(e);
        StoreSection::default()
    });
    let mut admin: AdminSection = section(table, "admin", file).unwrap_or_else(|e| {
        errors.push(e);
        AdminSection::default()
    });
    // An empty token is no token: `token = "${HOOKGATE_ADMIN_TOKEN:-}"` turns the API on
    // only where the variable is set.
    admin.token = admin.token.filter(|t| !t.is_empty());
    admin.read_token = admin.read_token.filter(|t| !t.is_empty());
    let defaults = ServerSection::default();
    let size = |key: &str, text: &str, default: &str, errors: &mut Vec<ConfigError>| {
        parse_size(text).unwrap_or_else(|m| {
            errors.push(ConfigError::new(file, key, m));
            parse_size(default).expect("the defaults are valid")
        })
    };
    let duration = |key: &str, text: &str, default: &str, errors: &mut Vec<ConfigError>| {
        humantime::parse_duration(text).unwrap_or_else(|e| {
            errors.push(ConfigError::new(
                file,
                key,
                format!("`{text}` is not a duration ({e}); write e.g. \"10s\""),
            ));
            humantime::parse_duration(default).expect("the defaults are valid")
        })
    };
    let max_body = size(
        "server.max_body",
        &server.max_body,
        &defaults.max_body,
        errors,
    );
    let max_header_bytes = size(
        "server.max_header_bytes",
        &server.max_header_bytes,
        &defaults.max_header_bytes,
        errors,
    );
    if max_header_bytes < 8192 {
        errors.push(ConfigError::new(
            file,
            "server.max_header_bytes",
            "must be at least 8KiB",
        ));
    }
    let read_timeout = duration(
        "server.read_timeout",
        &server.read_timeout,
        &defaults.read_timeout,
        errors,
    );
    let head_timeout = duration(
        "server.head_timeout",
        &server.head_timeout,
        &defaults.head_timeout,
        errors,
    );
    let shutdown_grace = duration(
        "server.shutdown_grace",
        &server.shutdown_grace,
        &defaults.shutdown_grace,
        errors,
    );
    let tls = tls(&server, file, base).unwrap_or_else(|e| {
        errors.push(e);
        None
    });
    let max_buffered_bodies = size(
        "server.max_buffered_bodies",
        &server.max_buffered_bodies,
        &defaults.max_buffered_bodies,
        errors,
    );
    if max_buffered_bodies < max_body {
        errors.push(ConfigError::new(
            file,
            "server.max_buffered_bodies",
            format!("must be at least server.max_body ({max_body} bytes)"),
        ));
    }
    if server.max_connections_per_peer == 0 {
        errors.push(ConfigError::new(
            file,
            "server.max_connections_per_peer",
            "must be at least 1",
        ));
    }
    if server.peer_burst.is_some() && server.peer_rate_limit.is_none() {
        errors.push(ConfigError::new(
            file,
            "server.peer_burst",
            "goes with server.peer_rate_limit",
        ));
    }
    let peer_rate_limit = server.peer_rate_limit.as_deref().and_then(|text| {
        crate::limits::RateLimit::parse(text, server.peer_burst)
            .map_err(|m| errors.push(ConfigError::new(file, "server.peer_rate_limit", m)))
            .ok()
    });
    let mut ok = |result: Result<(), ConfigError>| {
        if let Err(e) = result {
            errors.push(e);
        }
    };
    ok(check_listen(&server.listen, file, "server.listen"));
    if let Some(listen) = &admin.listen {
        ok(check_listen(listen, file, "admin.listen"));
        if listen == &server.listen {
            ok(Err(ConfigError::new(
                file,
                "admin.listen",
                "must differ from server.listen (omit it to serve the admin API on the main listener)",
            )));
        }
    }
    let retention = store.retention.as_deref().and_then(|text| {
        parse_retention(text, file, "store.retention")
            .map_err(|e| ok(Err(e)))
            .ok()
    });
    let store_max_size = store.max_size.as_deref().and_then(|text| {
        parse_size(text)
            .map_err(|m| ok(Err(ConfigError::new(file, "store.max_size", m))))
            .ok()
    });
    for (key, token) in [
        ("admin.token", &admin.token),
        ("admin.read_token", &admin.read_token),
    ] {
        if token.as_ref().is_some_and(|t| t.len() < 16) {
            ok(Err(ConfigError::new(
                file,
                key,
                "use at least 16 characters (e.g. `openssl rand -hex 32`)",
            )));
        }
    }
    if admin.token.is_some() && admin.token == admin.read_token {
        ok(Err(ConfigError::new(
            file,
            "admin.read_token",
            "must differ from admin.token",
        )));
    }
    Settings {
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
        store_durability: store.durability,
        retention,
        admin_token: admin.token,
        admin_read_token: admin.read_token,
        admin_listen: admin.listen,
        metrics: admin.metrics,
    }
}

/// `tls_cert` and `tls_key`, relative to the configuration file, loaded.
fn tls(
    server: &ServerSection,
    file: &str,
    base: &Path,
) -> Result<Option<crate::tls::Tls>, ConfigError> {
    match (&server.tls_cert, &server.tls_key) {
        (None, None) => Ok(None),
        (Some(cert), Some(key)) => {
            let resolve = |p: &str| {
                if Path::new(p).is_absolute() {
                    PathBuf::from(p)
                } else {
                    base.join(p)
                }
            };
            crate::tls::Tls::new(&resolve(cert), &resolve(key))
                .map(Some)
                .map_err(|e| {
                    let key = if e.path == resolve(cert).display().to_string() {
                        "server.tls_cert"
                    } else {
                        "server.tls_key"
                    };
                    ConfigError::new(file, key, e.to_string())
                })
        }
        (Some(_), None) => Err(ConfigError::new(
            file,
            "server.tls_key",
            "tls_cert needs tls_key",
        )),
        (None, Some(_)) => Err(ConfigError::new(
            file,
            "server.tls_cert",
            "tls_key needs tls_cert",
        )),
    }
}
