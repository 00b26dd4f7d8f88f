//! `hookgate.toml`: read, resolved (`${ENV}`, `${ENV:-default}`, `*_file`), and validated
//! completely before anything starts. Every error names the file, the key and what is wrong.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use toml::{Table, Value};

mod delivery;
mod operations;
mod preset;
mod resolve;
mod server;
mod source;

pub use operations::Operations;
pub use server::{
    parse_size, resolve_store_url, AdminSection, Durability, ServerSection, StoreSection,
    DEFAULT_STORE_URL,
};
pub use source::SourceConfig;

use resolve::{demo_defaults, line_of, substitute_in};

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
    pub(crate) fn new(file: &str, key: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            file: file.to_owned(),
            key: key.into(),
            message: message.into(),
        }
    }
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
    /// Whether a PostgreSQL server committing without durability is accepted.
    pub store_durability: Durability,
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

    /// Parses and validates configuration text; `base` resolves relative paths. The first
    /// error found; [`Config::check`] gives them all.
    pub fn parse(
        text: &str,
        file: &str,
        base: &Path,
        env: &dyn Environment,
    ) -> Result<Config, ConfigError> {
        Config::parse_all(text, file, base, env).map_err(|errors| {
            errors
                .into_iter()
                .next()
                .expect("a refused configuration has an error")
        })
    }

    /// Loads and validates `path`, going on past errors: every error it finds, in file
    /// order (`hookgate check-config`). A part that is wrong is left out of the checks
    /// that depend on it, so one mistake is reported once.
    pub fn check(path: &Path, env: &dyn Environment) -> Result<Config, Vec<ConfigError>> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| {
            vec![ConfigError::new(
                &file,
                "(file)",
                format!("cannot read: {e}"),
            )]
        })?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Config::parse_all(&text, &file, &base, env)
    }

    fn parse_all(
        text: &str,
        file: &str,
        base: &Path,
        env: &dyn Environment,
    ) -> Result<Config, Vec<ConfigError>> {
        let mut table: Table = text.parse().map_err(|e: toml::de::Error| {
            let message = e.message().to_owned();
            let at = e
                .span()
                .map(|s| line_of(text, s.start))
                .map(|l| format!("line {l}"))
                .unwrap_or_else(|| "(syntax)".into());
            vec![ConfigError::new(file, at, message)]
        })?;
        let mut errors = Vec::new();
        table.retain(|key, _| {
            let known =
                ["server", "store", "admin", "source", "destination", "route"].contains(&key);
            if !known {
                errors.push(ConfigError::new(
                    file,
                    key.to_owned(),
                    "unknown section; known: server, store, admin, source, destination, route",
                ));
            }
            known
        });
        // Which variables a source's demo secrets stand in for, read before substitution.
        let demo_variables: Vec<Vec<String>> = match table.get("source") {
            Some(Value::Array(list)) => list.iter().map(demo_defaults).collect(),
            _ => Vec::new(),
        };
        // Substituted item by item: an item with an unresolved reference is reported and
        // left out, so what is built from it does not report the same mistake again.
        let mut failed: HashSet<String> = HashSet::new();
        for (key, value) in table.iter_mut() {
            match value {
                Value::Array(items) => {
                    for (i, item) in items.iter_mut().enumerate() {
                        let before = errors.len();
                        substitute_in(item, &format!("{key}[{i}]"), file, env, &mut errors);
                        if errors.len() > before {
                            failed.insert(format!("{key}[{i}]"));
                        }
                    }
                }
                other => {
                    let before = errors.len();
                    substitute_in(other, key, file, env, &mut errors);
                    if errors.len() > before {
                        failed.insert(key.clone());
                    }
                }
            }
        }
        for key in ["server", "store", "admin"] {
            if failed.contains(key) {
                table.remove(key);
            }
        }
        let settings = server::settings(&table, file, base, &mut errors);
        let sources = source::build_sources(
            table.get("source"),
            &failed,
            &demo_variables,
            file,
            base,
            settings.max_body,
            &mut errors,
        );
        let (destinations, routes) =
            delivery::delivery_config(&table, &failed, file, base, &sources, &mut errors);
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Config {
            file: file.to_owned(),
            listen: settings.listen,
            max_body: settings.max_body,
            max_header_bytes: settings.max_header_bytes,
            max_headers: settings.max_headers,
            read_timeout: settings.read_timeout,
            peer_rate_limit: settings.peer_rate_limit,
            tls: settings.tls,
            max_connections: settings.max_connections,
            max_connections_per_peer: settings.max_connections_per_peer,
            max_buffered_bodies: settings.max_buffered_bodies,
            head_timeout: settings.head_timeout,
            shutdown_grace: settings.shutdown_grace,
            store_url: settings.store_url,
            store_max_size: settings.store_max_size,
            store_durability: settings.store_durability,
            retention: settings.retention,
            admin_token: settings.admin_token,
            admin_read_token: settings.admin_read_token,
            admin_listen: settings.admin_listen,
            metrics: settings.metrics,
            sources,
            destinations,
            routes,
        })
    }
}

impl Config {
    /// For a reload: takes `running`'s values of the settings bound at start (listeners,
    /// store, TLS files, connection and memory limits, metrics on or off) and returns the
    /// keys of those that differ in this configuration, which take effect at a restart.
    pub fn keep_startup_settings(&mut self, running: &Config) -> Vec<&'static str> {
        let mut differ = Vec::new();
        macro_rules! keep {
            ($($field:ident => $key:literal),* $(,)?) => {$(
                if self.$field != running.$field {
                    differ.push($key);
                    self.$field = running.$field.clone();
                }
            )*};
        }
        keep!(
            listen => "server.listen",
            admin_listen => "admin.listen",
            store_url => "store.url",
            store_max_size => "store.max_size",
            store_durability => "store.durability",
            max_connections => "server.max_connections",
            max_connections_per_peer => "server.max_connections_per_peer",
            max_buffered_bodies => "server.max_buffered_bodies",
            head_timeout => "server.head_timeout",
            max_header_bytes => "server.max_header_bytes",
            max_headers => "server.max_headers",
            shutdown_grace => "server.shutdown_grace",
            metrics => "admin.metrics",
        );
        let paths = |tls: &Option<crate::tls::Tls>| {
            tls.as_ref()
                .map(|t| (t.paths().0.to_path_buf(), t.paths().1.to_path_buf()))
        };
        if paths(&self.tls) != paths(&running.tls) {
            differ.push("server.tls_cert");
        }
        // The running listener's certificate (SIGHUP reloads its files) stays in force.
        self.tls = running.tls.clone();
        differ
    }
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
            ("[[destination]]\nname = \"x\"\nkind = \"nats\"\nurl = \"nats://127.0.0.1:4222\"\nsubject = \"a.{topic}\"\npath = \"x\"", "test.toml: destination[0] (x).path: is not a key of kind `nats` (its keys: subject, token, stream, create_stream, url, username, password, tls_ca, concurrency)"),
            ("[[destination]]\nname = \"x\"\nkind = \"redis\"\nurl = \"redis://127.0.0.1\"", "test.toml: destination[0] (x).stream: a redis destination needs `stream`"),
            ("[[destination]]\nname = \"x\"\nkind = \"mqtt\"\nurl = \"mqtt://127.0.0.1\"\ntopic = \"a/#\"", "test.toml: destination[0] (x).topic: `a/#` holds '#', a wildcard"),
            ("[[destination]]\nname = \"x\"\nkind = \"amqp\"\nurl = \"amqp://127.0.0.1\"\nrouting_key = \"k\"\ntls_ca = \"ca.pem\"", "test.toml: destination[0] (x).tls_ca: is only used over TLS: write amqps:// in `url`"),
            ("[[destination]]\nname = \"x\"\nkind = \"amqp\"\nurl = \"amqp://127.0.0.1\"\nrouting_key = \"k\"\npassword = \"p\"", "test.toml: destination[0] (x).username: `password` is set without `username`"),
            ("[[destination]]\nname = \"x\"\nkind = \"command\"\ncommand = [\"/bin/x\", \"{jsn:/a}\"]", "test.toml: destination[0] (x).command[1]: unknown placeholder"),
            ("[[destination]]\nname = \"x\"\nkind = \"file\"\npath = \"out.jsonl\"\nconcurrency = 4", "test.toml: destination[0] (x).concurrency: is not a key of kind `file` (its keys: path)"),
            ("[[destination]]\nname = \"x\"\nkind = \"http\"\nurl = \"http://h/\"\nsecret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\ncommand = [\"/bin/true\"]", "test.toml: destination[0] (x).command: is not a key of kind `http` (its keys: url, secret, concurrency, permanent_statuses)"),
            ("[[destination]]\nname = \"x\"\nkind = \"command\"\ncommand = [\"/bin/true\"]\nconcurrency = \"many\"", "test.toml: destination[0] (x).concurrency: invalid type"),
            ("[[destination]]\nname = \"x\"\nkind = \"file\"", "test.toml: destination[0] (x).path: a file destination needs `path`"),
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
    fn check_reports_every_error_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hookgate.toml");
        std::fs::write(
            &path,
            r#"
[server]
listen = "nope"
max_body = "lots"

[admin]
token = "short"

[[source]]
name = "a"
path = "/a"
preset = "github"
secret = "s"
algoritm = "x"

[[source]]
name = "b"
path = "/b"
preset = "github"
secret = "${HOOKGATE_TEST_SURELY_UNSET_VARIABLE}"

[[destination]]
name = "hook"
kind = "http"
url = "http://127.0.0.1:1/"

[[route]]
source = "b"
to = "hook"

[[route]]
to = "nowhere"

[events]
"#,
        )
        .unwrap();
        let errors = Config::check(&path, &Env(HashMap::new())).unwrap_err();
        let keys: Vec<&str> = errors.iter().map(|e| e.key.as_str()).collect();
        // In file order by kind; the failed source `b` and destination `hook` are still
        // known to the routes, so route[0] is not reported.
        assert_eq!(
            keys,
            [
                "events",
                "source[1].secret",
                "server.max_body",
                "server.listen",
                "admin.token",
                "source[0] (a).algoritm",
                "destination[0] (hook).secret",
                "route[1].to",
            ],
            "{errors:#?}"
        );
        assert!(errors.iter().all(|e| e.file == path.display().to_string()));
        // parse stops at the first.
        let first = Config::load(&path, &Env(HashMap::new())).unwrap_err();
        assert_eq!(first.key, "events");
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
