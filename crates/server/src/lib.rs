//! hookgate's HTTP gateway.
//!
//! [`run`] serves a [`Gateway`] on a listener the caller bound, until the caller's shutdown
//! future completes; then it stops accepting, lets in-flight requests finish (up to the
//! configured grace), and flushes the store. Tests start it on port 0 and stop it cleanly.
//!
//! Request path: read the body (size and time limits) → verify ([`hookgate_verify`]; OIDC
//! keys from [`keys::KeyCache`]) → validate → extract metadata → store (group commit) →
//! answer. Nothing is answered 2xx before its commit.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod config;
pub mod delivery;
mod ingest;
pub mod issuer;
pub mod keys;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::routing::{any, get};
use axum::Router;
use hookgate_store::Store;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tower::ServiceExt;

pub use config::{Config, ConfigError};

/// Everything a running gateway needs: its validated configuration, its store and the
/// OIDC key cache of the issuers its sources trust.
#[derive(Debug)]
pub struct Gateway {
    config: Config,
    store: Store,
    keys: keys::KeyCache,
    delivery: std::sync::OnceLock<delivery::Delivery>,
}

impl Gateway {
    /// Assembles a gateway.
    pub fn new(config: Config, store: Store) -> Gateway {
        let issuers = config
            .sources
            .iter()
            .flat_map(|s| {
                s.source.oidc().flat_map(|o| {
                    o.issuers()
                        .map(|i| (i.to_owned(), o.allow_http(), o.jwks_cache()))
                        .collect::<Vec<_>>()
                })
            })
            .collect::<Vec<_>>();
        Gateway {
            keys: keys::KeyCache::new(issuers),
            config,
            store,
            delivery: std::sync::OnceLock::new(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The OIDC key cache.
    pub fn keys(&self) -> &keys::KeyCache {
        &self.keys
    }
}

/// The TCP peer of a request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PeerAddr(pub SocketAddr);

fn router(gateway: Arc<Gateway>) -> Router {
    let mut router = Router::new()
        .route("/health", get(ingest::health))
        .route("/ready", get(ingest::ready));
    for (index, source) in gateway.config.sources.iter().enumerate() {
        router = router.route(
            &source.path,
            any(
                move |axum::extract::State(gateway): axum::extract::State<Arc<Gateway>>,
                      request: axum::extract::Request| {
                    ingest::ingest(gateway, index, request)
                },
            ),
        );
    }
    router.fallback(ingest::not_found).with_state(gateway)
}

/// Serves `gateway` on `listener` until `shutdown` completes, then drains and flushes.
pub async fn run(
    listener: TcpListener,
    gateway: Arc<Gateway>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let config = &gateway.config;
    if !config.destinations.is_empty() && !gateway.store.is_discard() {
        let delivery =
            delivery::Delivery::start(gateway.store.clone(), config.destinations.clone());
        let _ = gateway.delivery.set(delivery);
    }
    let app = router(gateway.clone());
    let connections = Arc::new(tokio::sync::Semaphore::new(config.max_connections));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = connections.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
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
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service = hyper::service::service_fn(
            move |mut request: hyper::Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(PeerAddr(peer));
                app.clone().oneshot(request.map(axum::body::Body::new))
            },
        );
        let connection = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(config.read_timeout)
            .max_buf_size(config.max_header_bytes)
            .max_headers(config.max_headers)
            .keep_alive(true)
            .serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            let _ = connection.await;
            drop(permit);
        });
    }
    drop(listener);
    tracing::info!("shutting down: finishing in-flight requests");
    if tokio::time::timeout(config.shutdown_grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(grace = ?config.shutdown_grace, "in-flight requests did not finish within the grace period");
    }
    if let Some(delivery) = gateway.delivery.get() {
        delivery.stop(config.shutdown_grace).await;
    }
    gateway.store.close().await;
    tracing::info!("store flushed; stopped");
    Ok(())
}
