//! A small OIDC issuer for testing integrations: serves the discovery document and the
//! JWKS of one key. `hookgate oidc-issuer` runs it; `hookgate send --preset pps
//! --issuer-key … --issuer …` mints tokens it vouches for.

use std::future::Future;

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;

/// The issuer's routes: `/.well-known/openid-configuration` and `/jwks`.
pub fn router(issuer: &str, jwks: serde_json::Value) -> Router {
    let issuer = issuer.trim_end_matches('/').to_owned();
    let discovery = serde_json::json!({
        "issuer": issuer,
        "jwks_uri": format!("{issuer}/jwks"),
        "id_token_signing_alg_values_supported": jwks["keys"].as_array().map(|keys| keys.iter().filter_map(|k| k.get("alg").cloned()).collect::<Vec<_>>()).unwrap_or_default(),
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"],
    })
    .to_string();
    let jwks = jwks.to_string();
    Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(move || async move {
                ([(header::CONTENT_TYPE, "application/json")], discovery).into_response()
            }),
        )
        .route(
            "/jwks",
            get(move || async move {
                (
                    [
                        (header::CONTENT_TYPE, "application/json"),
                        (header::CACHE_CONTROL, "public, max-age=300"),
                    ],
                    jwks,
                )
                    .into_response()
            }),
        )
}

/// Serves the issuer on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    issuer: &str,
    jwks: serde_json::Value,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(issuer, jwks))
        .with_graceful_shutdown(shutdown)
        .await
}
