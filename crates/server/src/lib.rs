//! hookgate's HTTP gateway.
//!
//! [`run`] serves a [`Gateway`] on a listener the caller bound, until the caller's shutdown
//! future completes; then it stops accepting, lets in-flight requests finish (up to the
//! configured grace), and flushes the store. Tests start it on port 0 and stop it cleanly.
//!
//! Request path: read the body (size and time limits) → verify ([`hookgate_verify`]; OIDC
//! keys from [`jwks::KeyCache`]) → validate → extract metadata → store (group commit) →
//! answer. Nothing is answered 2xx before its commit.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod admin;
pub mod captured;
pub mod certificates;
pub mod config;
mod console;
pub mod delivery;
mod ingest;
pub mod issuer;
pub mod jwks;
pub mod limits;
pub mod metrics;
pub mod replay;
pub mod retention;
pub mod tls;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::routing::get;
use axum::Router;
use hookgate_store::Store;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tower::ServiceExt;

pub use config::{Config, ConfigError};

/// Everything a running gateway needs: the configuration in force (swapped whole by
/// [`Gateway::reload`]), its store, its delivery, and its metrics.
#[derive(Debug)]
pub struct Gateway {
    live: arc_swap::ArcSwap<Live>,
    store: Store,
    delivery: std::sync::OnceLock<delivery::Delivery>,
    metrics: Arc<metrics::Metrics>,
    /// Bytes of request bodies being held; see `[server] max_buffered_bodies`.
    body_budget: Arc<tokio::sync::Semaphore>,
    /// The size of `body_budget` (fixed at start).
    max_buffered_bodies: u64,
    /// Places for public-key verifications at once: half the cores (at least one), so
    /// HMAC sources always keep CPU of their own.
    verify_pool: Arc<tokio::sync::Semaphore>,
    /// One reload at a time.
    reloading: tokio::sync::Mutex<()>,
    /// The console's sessions (kept across reloads; each checked against the tokens in
    /// force).
    sessions: console::session::Sessions,
    /// Whether the listeners speak TLS (bound at start): the session cookie is `Secure`.
    tls_listener: bool,
    /// Events stored per second lately, by this process (the console's chart).
    arrivals: metrics::Arrivals,
}

/// What a reload replaces, as one snapshot. A request takes the snapshot in force when it
/// arrives and keeps it to its end: a reload never changes a request half-way (its
/// source, secrets and routes stay those it started with), and drops no connection.
#[derive(Debug)]
pub(crate) struct Live {
    pub(crate) config: Arc<Config>,
    pub(crate) keys: jwks::KeyCache,
    pub(crate) admin_tokens: admin::Tokens,
    pub(crate) refusal_samplers: Vec<ingest::Sampler>,
    pub(crate) limiters: limits::Limiters,
    /// In the order of `config.sources`.
    pub(crate) source_metrics: Vec<Arc<metrics::SourceMetrics>>,
    /// Source path → its index in `config.sources`.
    paths: std::collections::HashMap<String, usize>,
}

impl Live {
    fn new(config: Arc<Config>, keys: jwks::KeyCache, metrics: &metrics::Metrics) -> Live {
        Live {
            admin_tokens: admin::Tokens::new(
                config.admin_token.as_deref(),
                config.admin_read_token.as_deref(),
            ),
            refusal_samplers: config
                .sources
                .iter()
                .map(|_| ingest::Sampler::default())
                .collect(),
            limiters: limits::Limiters::new(
                &config
                    .sources
                    .iter()
                    .map(|s| s.rate_limit)
                    .collect::<Vec<_>>(),
                config.peer_rate_limit,
            ),
            source_metrics: config
                .sources
                .iter()
                .map(|s| metrics.source(&s.name))
                .collect(),
            paths: config
                .sources
                .iter()
                .enumerate()
                .map(|(index, s)| (s.path.clone(), index))
                .collect(),
            keys,
            config,
        }
    }

    /// The index of the source answering `path`.
    pub(crate) fn source_at(&self, path: &str) -> Option<usize> {
        self.paths.get(path).copied()
    }
}

/// The OIDC issuers `config`'s sources trust: (issuer, allow http, JWKS cache time).
fn issuers_of(config: &Config) -> Vec<(String, bool, std::time::Duration)> {
    config
        .sources
        .iter()
        .flat_map(|s| {
            s.source.oidc().flat_map(|o| {
                o.issuers()
                    .map(|i| (i.to_owned(), o.allow_http(), o.jwks_cache()))
                    .collect::<Vec<_>>()
            })
        })
        .collect()
}

/// What [`Gateway::reload`] changed.
#[derive(Debug, Default)]
pub struct Reloaded {
    /// Sources added, changed (secrets included) and removed, by name.
    pub sources: Changes,
    /// What the dispatchers did.
    pub destinations: delivery::Reconfigured,
    /// Routes before and after.
    pub routes: (usize, usize),
    /// Settings that changed in the file but take effect only at a restart (the listeners,
    /// the store, the connection and memory limits); the running values stay.
    pub need_restart: Vec<&'static str>,
    /// Deliveries still pending in the store for each removed destination.
    pub stranded: Vec<(String, i64)>,
}

/// Names added, changed and removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Changes {
    /// New names.
    pub added: Vec<String>,
    /// Names whose configuration differs.
    pub changed: Vec<String>,
    /// Names gone.
    pub removed: Vec<String>,
}

impl Gateway {
    /// Assembles a gateway with metrics of its own (the store's commits are not observed:
    /// use [`Gateway::with_metrics`] with metrics given to the store at open for that).
    pub fn new(config: Config, store: Store) -> Gateway {
        let metrics = Arc::new(metrics::Metrics::for_config(&config));
        Gateway::with_metrics(config, store, metrics)
    }

    /// Assembles a gateway around `metrics` (whose commit observer the store was opened
    /// with).
    pub fn with_metrics(config: Config, store: Store, metrics: Arc<metrics::Metrics>) -> Gateway {
        let keys = jwks::KeyCache::counting(issuers_of(&config), metrics.key_fetches());
        let max_buffered_bodies = config.max_buffered_bodies;
        let tls_listener = config.tls.is_some();
        Gateway {
            sessions: console::session::Sessions::default(),
            tls_listener,
            arrivals: metrics::Arrivals::default(),
            verify_pool: Arc::new(tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1)),
            )),
            body_budget: Arc::new(tokio::sync::Semaphore::new(
                usize::try_from(max_buffered_bodies)
                    .unwrap_or(usize::MAX)
                    .min(tokio::sync::Semaphore::MAX_PERMITS),
            )),
            max_buffered_bodies,
            live: arc_swap::ArcSwap::from_pointee(Live::new(Arc::new(config), keys, &metrics)),
            store,
            delivery: std::sync::OnceLock::new(),
            metrics,
            reloading: tokio::sync::Mutex::new(()),
        }
    }

    /// The configuration snapshot in force.
    pub(crate) fn live(&self) -> Arc<Live> {
        self.live.load_full()
    }

    /// Puts `config` (validated by [`Config::load`]) in force, without dropping a connection
    /// or a request: sources, secrets, routes, destinations, rate limits, admin tokens,
    /// retention. Requests already being handled finish under the configuration they
    /// started with. Settings bound at start (listeners, store, TLS files, connection and
    /// memory limits) keep their running values and are listed in
    /// [`Reloaded::need_restart`]. A removed destination's deliveries stay in the store.
    pub async fn reload(&self, mut config: Config) -> Reloaded {
        let _one_at_a_time = self.reloading.lock().await;
        let old = self.live();
        let need_restart = config.keep_startup_settings(&old.config);
        let mut reloaded = Reloaded {
            need_restart,
            sources: source_changes(&old.config, &config),
            routes: (old.config.routes.0.len(), config.routes.0.len()),
            ..Reloaded::default()
        };
        if let Some(delivery) = self.delivery.get() {
            let paused = self.store.paused().await.unwrap_or_else(|e| {
                tracing::warn!(error = %e, "cannot read paused destinations; new ones start running");
                Vec::new()
            });
            reloaded.destinations = delivery
                .reconfigure(&config.destinations, &paused, &self.metrics)
                .await;
        }
        for name in &config.destinations {
            self.metrics.destination(&name.name);
        }
        let keys = old.keys.reconfigured(issuers_of(&config));
        self.live
            .store(Arc::new(Live::new(Arc::new(config), keys, &self.metrics)));
        if !reloaded.destinations.removed.is_empty() {
            match self.store.destination_stats().await {
                Ok(stats) => {
                    reloaded.stranded = stats
                        .into_iter()
                        .filter(|s| reloaded.destinations.removed.contains(&s.destination))
                        .map(|s| (s.destination, s.counts.pending))
                        .collect()
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot count the removed destinations' deliveries")
                }
            }
        }
        reloaded
    }

    /// Reads the TLS certificate and key again (SIGHUP); `Ok(false)` without TLS. On error
    /// the previous pair keeps serving.
    pub fn reload_tls(&self) -> Result<bool, tls::TlsError> {
        match &self.live().config.tls {
            Some(tls) => tls.reload().map(|()| true),
            None => Ok(false),
        }
    }

    /// The metrics.
    pub fn metrics(&self) -> &metrics::Metrics {
        &self.metrics
    }

    /// The configuration in force.
    pub fn config(&self) -> Arc<Config> {
        self.live().config.clone()
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The OIDC key cache in force.
    pub fn keys(&self) -> jwks::KeyCache {
        self.live().keys.clone()
    }
}

/// Sources added, changed and removed between two configurations. A source is changed
/// when its path, methods, limits or verifier (secrets included) differ.
fn source_changes(old: &Config, new: &Config) -> Changes {
    let mut changes = Changes::default();
    for source in &new.sources {
        match old.sources.iter().find(|s| s.name == source.name) {
            None => changes.added.push(source.name.clone()),
            Some(before) if before.fingerprint != source.fingerprint => {
                changes.changed.push(source.name.clone())
            }
            Some(_) => {}
        }
    }
    for source in &old.sources {
        if !new.sources.iter().any(|s| s.name == source.name) {
            changes.removed.push(source.name.clone());
        }
    }
    changes
}

/// The TCP peer of a request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PeerAddr(pub SocketAddr);

/// Completes once `flag` holds `value` (or its sender is gone). Holds no borrow of the
/// value afterwards, so it can sit in a `select!` beside arms that await.
pub(crate) async fn became(flag: &mut tokio::sync::watch::Receiver<bool>, value: bool) {
    let _ = flag.wait_for(|v| *v == value).await;
}

/// A time as operators write it (RFC 3339, a date, or Unix seconds or milliseconds), as
/// Unix milliseconds: the `since`/`until` of the admin API and `hookgate events`.
pub fn parse_time_ms(text: &str) -> Result<i64, hookgate_verify::timestamp::TimestampError> {
    use hookgate_verify::timestamp::{parse_timestamp, TimestampFormat};
    parse_timestamp(text, TimestampFormat::Auto)
        .map(|at| (at.unix_timestamp_nanos() / 1_000_000) as i64)
}

/// Now, Unix milliseconds.
pub fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// `2026-11-22T21:25:43.072Z`: a Unix-ms time as RFC 3339 (UTC, milliseconds).
pub fn rfc3339(ms: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000) {
        Ok(at) => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            at.year(),
            at.month() as u8,
            at.day(),
            at.hour(),
            at.minute(),
            at.second(),
            at.millisecond()
        ),
        Err(_) => ms.to_string(),
    }
}

/// The providers' listener: `/health`, `/ready`, the sources' paths (looked up per
/// request in the configuration in force, so a reload changes them), and the admin API
/// and `/metrics` unless `[admin] listen` puts those on a listener of their own.
fn router(gateway: Arc<Gateway>, with_admin: bool) -> Router {
    let mut router = Router::new()
        .route("/health", get(ingest::health))
        .route("/ready", get(ingest::ready));
    if with_admin {
        router = router.merge(admin::router()).merge(console::router());
    }
    router.fallback(ingest::route).with_state(gateway)
}

/// HTTP/1.1 requires `Host` (RFC 9112 §3.2): a request without one is answered 400 and its
/// connection closed, before any routing.
fn missing_host(request: &hyper::Request<hyper::body::Incoming>) -> bool {
    request.version() == http::Version::HTTP_11
        && !request.headers().contains_key(http::header::HOST)
}

fn missing_host_answer() -> axum::response::Response {
    use axum::http::{header, HeaderValue, StatusCode};
    use axum::response::IntoResponse;
    (
        StatusCode::BAD_REQUEST,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (header::CONNECTION, HeaderValue::from_static("close")),
        ],
        r#"{"error":"missing Host header"}"#,
    )
        .into_response()
}

/// The operators' listener (`[admin] listen`).
fn admin_router(gateway: Arc<Gateway>) -> Router {
    Router::new()
        .route("/health", get(ingest::health))
        .route("/ready", get(ingest::ready))
        .merge(admin::router())
        .merge(console::router())
        .fallback(ingest::not_found)
        .with_state(gateway)
}

/// Open connections per client address.
#[derive(Debug, Clone, Default)]
struct PeerConnections(Arc<std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>>);

/// One connection of an address, counted until dropped.
struct PeerConnection {
    peers: PeerConnections,
    ip: std::net::IpAddr,
}

impl PeerConnections {
    /// Counts a connection from `ip`, unless it already holds `limit`.
    fn hold(&self, ip: std::net::IpAddr, limit: usize) -> Option<PeerConnection> {
        let mut map = self.0.lock().expect("peer table lock");
        let held = map.entry(ip).or_default();
        if *held >= limit {
            return None;
        }
        *held += 1;
        Some(PeerConnection {
            peers: self.clone(),
            ip,
        })
    }
}

impl Drop for PeerConnection {
    fn drop(&mut self) {
        let mut map = self.peers.0.lock().expect("peer table lock");
        if let Some(held) = map.get_mut(&self.ip) {
            *held -= 1;
            if *held == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

/// Connections the operators' listener serves at once, apart from the providers' limit.
const ADMIN_CONNECTIONS: usize = 256;

/// Serves `gateway` on `listener` until `shutdown` completes, then drains and flushes.
/// The admin API is served on `listener` too unless `[admin] listen` is configured; then
/// use [`serve`] with the operators' listener.
pub async fn run(
    listener: TcpListener,
    gateway: Arc<Gateway>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    serve(listener, None, gateway, shutdown).await
}

/// Serves the providers' `listener` and, when given, the operators' `admin` listener
/// (`[admin] listen`), until `shutdown` completes; then drains and flushes.
pub async fn serve(
    listener: TcpListener,
    admin: Option<TcpListener>,
    gateway: Arc<Gateway>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    // Bound for the process's life: a reload changes none of these.
    let config = &gateway.config();
    if !gateway.store.is_discard() {
        let paused = match gateway.store.paused().await {
            Ok(paused) => paused,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read paused destinations; starting all");
                Vec::new()
            }
        };
        let delivery = delivery::Delivery::start(
            gateway.store.clone(),
            config.destinations.clone(),
            &paused,
            &gateway.metrics,
        );
        let _ = gateway.delivery.set(delivery);
    }
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let graceful = GracefulShutdown::new();
    let main = accept_loop(
        listener,
        router(gateway.clone(), config.admin_listen.is_none()),
        config,
        config.max_connections,
        false,
        &graceful,
        stopped.clone(),
    );
    let operators = async {
        if let Some(admin) = admin {
            accept_loop(
                admin,
                admin_router(gateway.clone()),
                config,
                ADMIN_CONNECTIONS,
                true,
                &graceful,
                stopped.clone(),
            )
            .await;
        }
    };
    let summary = tokio::spawn(ingest::summaries(gateway.clone(), stopped.clone()));
    let retention = (!gateway.store.is_discard())
        .then(|| tokio::spawn(retention::run(gateway.clone(), stopped.clone())));
    tokio::join!(main, operators, async {
        shutdown.await;
        let _ = stop.send(true);
    });
    summary.abort();
    if let Some(retention) = retention {
        // A batch in the writer's queue still commits; nothing half-done is left.
        retention.abort();
    }
    tracing::info!("shutting down: finishing in-flight requests");
    if tokio::time::timeout(config.shutdown_grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(grace = %humantime::format_duration(config.shutdown_grace), "in-flight requests did not finish within the grace period");
    }
    if let Some(delivery) = gateway.delivery.get() {
        delivery.stop(config.shutdown_grace).await;
    }
    gateway.store.close().await;
    tracing::info!("store flushed; stopped");
    Ok(())
}

/// Accepts connections on `listener` (at most `max_connections` at once) and serves `app`
/// on each, until `stopped` turns true.
async fn accept_loop(
    listener: TcpListener,
    app: Router,
    config: &Config,
    max_connections: usize,
    operators: bool,
    graceful: &GracefulShutdown,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) {
    let connections = Arc::new(tokio::sync::Semaphore::new(max_connections));
    let peers = PeerConnections::default();
    loop {
        let permit = tokio::select! {
            permit = connections.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            () = crate::became(&mut stopped, true) => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = crate::became(&mut stopped, true) => break,
        };
        // One address cannot hold the whole connection budget: past its share, its new
        // connections are closed at once (the operators' listener counts its own).
        let Some(held) = peers.hold(peer.ip(), config.max_connections_per_peer) else {
            tracing::debug!(peer = %peer.ip(), "connection refused: too many from this address");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service = hyper::service::service_fn(
            move |mut request: hyper::Request<hyper::body::Incoming>| {
                let refuse = missing_host(&request);
                request.extensions_mut().insert(PeerAddr(peer));
                if operators {
                    request.extensions_mut().insert(admin::AdminListener);
                }
                let app = app.clone();
                async move {
                    if refuse {
                        return Ok(missing_host_answer());
                    }
                    app.oneshot(request.map(axum::body::Body::new)).await
                }
            },
        );
        if let Some(tls) = &config.tls {
            let (acceptor, watcher) = (tls.acceptor().clone(), graceful.watcher());
            let (head_timeout, max_header_bytes) = (config.head_timeout, config.max_header_bytes);
            let (max_headers, timer) = (config.max_headers, TokioTimer::new());
            tokio::spawn(async move {
                // The handshake counts as part of the head: a client that stalls in it is
                // dropped as one that stalls in its request line.
                let Ok(Ok(stream)) =
                    tokio::time::timeout(head_timeout, acceptor.accept(stream)).await
                else {
                    return;
                };
                let mut builder = hyper_util::server::conn::auto::Builder::new(
                    hyper_util::rt::TokioExecutor::new(),
                );
                builder
                    .http1()
                    .timer(timer.clone())
                    .header_read_timeout(head_timeout)
                    .max_buf_size(max_header_bytes)
                    .max_headers(max_headers)
                    .keep_alive(true);
                builder
                    .http2()
                    .timer(timer)
                    .max_header_list_size(max_header_bytes as u32)
                    .keep_alive_interval(Some(head_timeout));
                let connection = builder.serve_connection(TokioIo::new(stream), service);
                let _ = watcher.watch(connection.into_owned()).await;
                drop(held);
                drop(permit);
            });
            continue;
        }
        let connection = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(config.head_timeout)
            .max_buf_size(config.max_header_bytes)
            .max_headers(config.max_headers)
            .keep_alive(true)
            .serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            let _ = connection.await;
            drop(held);
            drop(permit);
        });
    }
}
