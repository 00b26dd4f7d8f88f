//! The operators' surface: the admin API under `/api/v1` (bearer tokens, OpenAPI 3.1 at
//! `/api/v1/openapi.json`) and Prometheus `/metrics`.
//!
//! Every error is `{"error":{"kind":…,"message":…}}`: the client is told what it needs, the
//! real cause of a 5xx is logged. Tokens are compared in constant time (as SHA-256 digests,
//! so not even their length leaks) and never logged. With no token configured the API
//! answers 404, as if it did not exist.

mod api;
mod openapi;

use std::sync::Arc;

use axum::extract::{FromRequestParts, State};
use axum::http::{header, request::Parts, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Serialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::Gateway;

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// Read everything.
    Reader,
    /// Read, replay, pause and resume.
    Operator,
}

/// The configured tokens, as digests.
#[derive(Debug, Clone, Default)]
pub(crate) struct Tokens {
    operator: Option<[u8; 32]>,
    reader: Option<[u8; 32]>,
}

impl Tokens {
    pub(crate) fn new(operator: Option<&str>, reader: Option<&str>) -> Tokens {
        let digest = |t: &str| -> [u8; 32] { Sha256::digest(t.as_bytes()).into() };
        Tokens {
            operator: operator.map(digest),
            reader: reader.map(digest),
        }
    }

    /// Whether the API exists at all.
    pub(crate) fn any(&self) -> bool {
        self.operator.is_some() || self.reader.is_some()
    }

    /// The role of a presented token; both digests are always compared.
    pub(crate) fn role_of(&self, presented: &str) -> Option<Role> {
        self.role_of_digest(&Sha256::digest(presented.as_bytes()).into())
    }

    /// The role of the token whose SHA-256 digest is `digest`.
    pub(crate) fn role_of_digest(&self, digest: &[u8; 32]) -> Option<Role> {
        let is = |known: &Option<[u8; 32]>| {
            known
                .as_ref()
                .map_or(subtle::Choice::from(0), |k| k.ct_eq(digest))
        };
        let operator = is(&self.operator);
        let reader = is(&self.reader);
        if bool::from(operator) {
            Some(Role::Operator)
        } else if bool::from(reader) {
            Some(Role::Reader)
        } else {
            None
        }
    }
}

/// An API error: its status, a stable kind and a message for the client.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    kind: &'static str,
    message: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct ErrorBody {
    error: ErrorDetail,
}

/// What went wrong.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct ErrorDetail {
    /// Stable kind: `bad_request`, `unauthorized`, `forbidden`, `not_found`, `conflict`,
    /// `unprocessable`, `rate_limited`, `unavailable`.
    kind: String,
    /// For people.
    message: String,
}

impl ApiError {
    pub(crate) fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            kind: "bad_request",
            message: message.into(),
        }
    }

    pub(crate) fn not_found(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::NOT_FOUND,
            kind: "not_found",
            message: message.into(),
        }
    }

    pub(crate) fn unprocessable(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            kind: "unprocessable",
            message: message.into(),
        }
    }

    pub(crate) fn conflict(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::CONFLICT,
            kind: "conflict",
            message: message.into(),
        }
    }

    pub(crate) fn unauthorized() -> ApiError {
        ApiError {
            status: StatusCode::UNAUTHORIZED,
            kind: "unauthorized",
            message: "send Authorization: Bearer <admin token>".into(),
        }
    }

    fn forbidden_csrf() -> ApiError {
        ApiError {
            status: StatusCode::FORBIDDEN,
            kind: "forbidden",
            message: "a console request that changes something needs its CSRF token (X-Hookgate-CSRF) and a same-origin request".into(),
        }
    }

    pub(crate) fn too_many(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::TOO_MANY_REQUESTS,
            kind: "rate_limited",
            message: message.into(),
        }
    }

    pub(crate) fn unauthorized_login() -> ApiError {
        ApiError {
            status: StatusCode::UNAUTHORIZED,
            kind: "unauthorized",
            message: "that is not an admin token of this gateway".into(),
        }
    }

    fn forbidden() -> ApiError {
        ApiError {
            status: StatusCode::FORBIDDEN,
            kind: "forbidden",
            message: "this token may only read; replay and pause need the operator token".into(),
        }
    }
}

/// The store failed: logged in full, the client told only that it may retry.
impl From<hookgate_store::StoreError> for ApiError {
    fn from(e: hookgate_store::StoreError) -> ApiError {
        tracing::error!(error = %e, "admin API: store error");
        ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            kind: "unavailable",
            message: "the store is unavailable; retry later".into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                kind: self.kind.to_owned(),
                message: self.message,
            },
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"hookgate\""),
            );
        }
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

/// A request whose bearer token, or console session, was accepted, with its role.
pub(crate) struct Authorized(pub Role);

/// The console's session cookie.
pub(crate) const SESSION_COOKIE: &str = "hookgate_session";
/// The header a console request that changes something carries its CSRF token in.
pub(crate) const CSRF_HEADER: &str = "x-hookgate-csrf";

impl FromRequestParts<Arc<Gateway>> for Authorized {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        gateway: &Arc<Gateway>,
    ) -> Result<Self, Self::Rejection> {
        let live = gateway.live();
        let tokens = &live.admin_tokens;
        if !tokens.any() {
            return Err(ApiError::not_found("no such endpoint"));
        }
        let bearer = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, token) = v.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            });
        if let Some(presented) = bearer {
            return tokens
                .role_of(presented)
                .map(Authorized)
                .ok_or_else(ApiError::unauthorized);
        }
        let session = crate::console::session::cookie(&parts.headers, SESSION_COOKIE)
            .and_then(|id| gateway.sessions.find(tokens, id))
            .ok_or_else(ApiError::unauthorized)?;
        // A cookie rides along with any request the browser makes, so a request that
        // changes something must also prove it came from the console's own page: its
        // CSRF token (which other sites cannot read), and an `Origin`, when sent, that is
        // this host.
        if !parts.method.is_safe() {
            let echoed = parts
                .headers
                .get(CSRF_HEADER)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| session.csrf_matches(v));
            if !echoed || !crate::console::same_origin(&parts.headers) {
                return Err(ApiError::forbidden_csrf());
            }
        }
        Ok(Authorized(session.role))
    }
}

impl Authorized {
    /// Refuses a read-only token.
    pub(crate) fn operator(&self) -> Result<(), ApiError> {
        match self.0 {
            Role::Operator => Ok(()),
            Role::Reader => Err(ApiError::forbidden()),
        }
    }
}

/// The admin API and `/metrics`, for the listener that serves operators.
pub(crate) fn router() -> Router<Arc<Gateway>> {
    Router::new()
        .route("/api/v1/openapi.json", get(openapi::document))
        .route("/api/v1/events", get(api::list_events))
        .route("/api/v1/events/{id}", get(api::get_event))
        .route("/api/v1/events/{id}/replay", post(api::replay_event))
        .route("/api/v1/replay", post(api::replay))
        .route("/api/v1/refusals", get(api::list_refusals))
        .route("/api/v1/destinations", get(api::list_destinations))
        .route("/api/v1/destinations/{name}", get(api::get_destination))
        .route("/api/v1/destinations/{name}/pause", post(api::pause))
        .route("/api/v1/destinations/{name}/resume", post(api::resume))
        .route("/api/v1/sources", get(api::list_sources))
        .route("/api/v1/stats/arrivals", get(api::arrivals))
        .route("/api/{*rest}", axum::routing::any(api_not_found))
        .route("/metrics", get(metrics))
        .layer(axum::middleware::map_response(not_sniffed_nor_cached))
}

/// The API's answers hold what requests sent (bodies, headers): a browser must never read
/// them as anything but their declared type, nor keep them.
async fn not_sniffed_nor_cached(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

async fn api_not_found(_: Authorized) -> ApiError {
    ApiError::not_found("no such endpoint")
}

/// `/metrics`: the same tokens as the API (either role). Served without a token only on a
/// separate `[admin] listen`, which is the operator's internal address; on the providers'
/// listener without tokens it does not exist.
async fn metrics(State(gateway): State<Arc<Gateway>>, parts: Parts) -> Response {
    metrics_response(gateway, parts)
        .await
        .unwrap_or_else(|e| e.into_response())
}

async fn metrics_response(gateway: Arc<Gateway>, mut parts: Parts) -> Result<Response, ApiError> {
    if !gateway.metrics.enabled() {
        return Err(ApiError::not_found(
            "metrics are disabled ([admin] metrics = false)",
        ));
    }
    let on_admin_listener = parts.extensions.get::<AdminListener>().is_some();
    if gateway.live().admin_tokens.any() {
        Authorized::from_request_parts(&mut parts, &gateway).await?;
    } else if !on_admin_listener {
        return Err(ApiError::not_found("no such endpoint"));
    }
    let text = gateway.metrics.render(&gateway.store).await?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

/// Marks requests that came in on `[admin] listen`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AdminListener;
