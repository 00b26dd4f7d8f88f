//! The web console at `/ui`: a page and a script, embedded in the binary, that read and act
//! through the admin API (`/api/v1`) with a session cookie instead of a bearer token.
//!
//! Why this stack: the console is plain HTML, CSS and one JavaScript module, no framework,
//! no build step (`cargo run` needs nothing else). Everything the console shows that came
//! from a request (bodies, headers, topics, ids) reaches the page only through DOM text
//! nodes (`textContent`), never through HTML parsing, so escaping is structural rather than
//! a rule each template must remember; the Content-Security-Policy below forbids inline
//! script and any other origin as a second wall.
//!
//! Invariants:
//! - the console exists exactly when the admin API does (an admin token is configured);
//! - the token is sent once, to `POST /ui/login`, and never stored by the page: the session
//!   cookie is `HttpOnly`, `SameSite=Strict`, and `Secure` when the listener speaks TLS;
//! - a request that changes something with a session cookie carries the session's CSRF
//!   token and, when the browser sends `Origin`, this host's origin (checked in
//!   [`crate::admin::Authorized`]).

pub(crate) mod session;

use std::sync::Arc;

use axum::extract::{FromRequest, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::admin::{ApiError, Role, SESSION_COOKIE};
use crate::{Gateway, PeerAddr};

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const APP_CSS: &str = include_str!("assets/app.css");
const ICON_SVG: &str = include_str!("assets/icon.svg");

/// Everything the console's page may load or reach: itself, nothing inline, no other
/// origin, no framing.
pub(crate) const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; \
     base-uri 'none'; frame-ancestors 'none'";

/// The console's routes (served where the admin API is).
pub(crate) fn router() -> Router<Arc<Gateway>> {
    Router::new()
        .route("/ui", get(|| async { Redirect::permanent("/ui/") }))
        .route("/ui/", get(index))
        .route("/ui/app.js", get(script))
        .route("/ui/app.css", get(style))
        .route("/ui/icon.svg", get(icon))
        .route("/ui/session", get(current_session))
        .route("/ui/login", post(login))
        .route("/ui/logout", post(logout))
        .route("/ui/{*rest}", get(index))
}

/// The headers every console response carries.
fn hardened(mut response: Response, cache: &'static str) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    response
}

/// 404 unless the admin API exists.
fn console_exists(gateway: &Gateway) -> Result<(), ApiError> {
    if gateway.live().admin_tokens.any() {
        Ok(())
    } else {
        Err(ApiError::not_found("no such endpoint"))
    }
}

fn asset(gateway: &Gateway, content_type: &'static str, body: &'static str) -> Response {
    if let Err(e) = console_exists(gateway) {
        return e.into_response();
    }
    hardened(
        ([(header::CONTENT_TYPE, content_type)], body).into_response(),
        // Assets change only with the binary; `no-cache` revalidates after an upgrade.
        "no-cache",
    )
}

async fn index(State(gateway): State<Arc<Gateway>>) -> Response {
    asset(&gateway, "text/html; charset=utf-8", INDEX_HTML)
}

async fn script(State(gateway): State<Arc<Gateway>>) -> Response {
    asset(&gateway, "text/javascript; charset=utf-8", APP_JS)
}

async fn style(State(gateway): State<Arc<Gateway>>) -> Response {
    asset(&gateway, "text/css; charset=utf-8", APP_CSS)
}

async fn icon(State(gateway): State<Arc<Gateway>>) -> Response {
    asset(&gateway, "image/svg+xml", ICON_SVG)
}

/// Whether a request's `Origin`, when it has one, is the host it was sent to. Browsers
/// send `Origin` on every cross-site POST; a request without one did not come from
/// another site's page.
pub(crate) fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let (Ok(origin), Some(Ok(host))) = (
        origin.to_str(),
        headers.get(header::HOST).map(|h| h.to_str()),
    ) else {
        return false;
    };
    origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
        .is_some_and(|rest| rest.eq_ignore_ascii_case(host))
}

/// The console's view of its session.
#[derive(Debug, Serialize)]
struct SessionState {
    authenticated: bool,
    /// `operator` (may replay and pause) or `reader`.
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    /// To echo in `X-Hookgate-CSRF` on requests that change something.
    #[serde(skip_serializing_if = "Option::is_none")]
    csrf: Option<String>,
}

impl SessionState {
    fn of(session: Option<session::Session>) -> SessionState {
        match session {
            Some(s) => SessionState {
                authenticated: true,
                role: Some(match s.role {
                    Role::Operator => "operator",
                    Role::Reader => "reader",
                }),
                csrf: Some(s.csrf),
            },
            None => SessionState {
                authenticated: false,
                role: None,
                csrf: None,
            },
        }
    }
}

fn json_no_store(response: impl IntoResponse) -> Response {
    hardened(response.into_response(), "no-store")
}

async fn current_session(State(gateway): State<Arc<Gateway>>, headers: HeaderMap) -> Response {
    if let Err(e) = console_exists(&gateway) {
        return e.into_response();
    }
    let live = gateway.live();
    let found = session::cookie(&headers, SESSION_COOKIE)
        .and_then(|id| gateway.sessions.find(&live.admin_tokens, id));
    json_no_store(Json(SessionState::of(found)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Login {
    token: String,
}

fn session_cookie(value: &str, max_age: u64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}"
    ))
    .expect("a session id is base64url")
}

/// `POST /ui/login` with `{"token": …}` as JSON: a cross-site form cannot send JSON, and
/// the `Origin` must be this host.
async fn login(State(gateway): State<Arc<Gateway>>, request: axum::extract::Request) -> Response {
    login_response(gateway, request)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn login_response(
    gateway: Arc<Gateway>,
    request: axum::extract::Request,
) -> Result<Response, ApiError> {
    console_exists(&gateway)?;
    if !same_origin(request.headers()) {
        return Err(ApiError::bad_request(
            "log in from the console's own page (Origin is another site)",
        ));
    }
    let is_json = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !is_json {
        return Err(ApiError::bad_request(
            "send the token as JSON: {\"token\": \"…\"} with Content-Type: application/json",
        ));
    }
    let peer = request.extensions().get::<PeerAddr>().map(|p| p.0.ip());
    let Json(Login { token }) = Json::<Login>::from_request(request, &gateway)
        .await
        .map_err(|e| ApiError::bad_request(e.body_text()))?;
    let live = gateway.live();
    match gateway
        .sessions
        .login(&live.admin_tokens, token.trim(), peer)
    {
        Ok((id, session)) => {
            tracing::info!(peer = ?peer, "console login");
            let mut response = json_no_store(Json(SessionState::of(Some(session))));
            response.headers_mut().insert(
                header::SET_COOKIE,
                session_cookie(&id, session::LIFETIME.as_secs(), gateway.tls_listener),
            );
            Ok(response)
        }
        Err(session::LoginRefused::WrongToken) => {
            tracing::warn!(peer = ?peer, "console login refused: not an admin token");
            Err(ApiError::unauthorized_login())
        }
        Err(session::LoginRefused::Throttled(wait)) => {
            tracing::warn!(peer = ?peer, "console login refused: too many failures from this address");
            let mut response = ApiError::too_many(format!(
                "too many failed logins from this address; retry in {} s",
                wait.as_secs().max(1)
            ))
            .into_response();
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(wait.as_secs().max(1)),
            );
            Ok(response)
        }
    }
}

async fn logout(State(gateway): State<Arc<Gateway>>, headers: HeaderMap) -> Response {
    if let Err(e) = console_exists(&gateway) {
        return e.into_response();
    }
    if !same_origin(&headers) {
        return ApiError::bad_request("log out from the console's own page").into_response();
    }
    if let Some(id) = session::cookie(&headers, SESSION_COOKIE) {
        gateway.sessions.logout(id);
    }
    let mut response = json_no_store((StatusCode::OK, Json(SessionState::of(None))));
    response.headers_mut().insert(
        header::SET_COOKIE,
        session_cookie("", 0, gateway.tls_listener),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn the_origin_must_be_this_host() {
        assert!(same_origin(&headers(&[("host", "127.0.0.1:9000")])));
        assert!(same_origin(&headers(&[
            ("host", "127.0.0.1:9000"),
            ("origin", "http://127.0.0.1:9000")
        ])));
        assert!(same_origin(&headers(&[
            ("host", "gw.example"),
            ("origin", "https://gw.example")
        ])));
        assert!(!same_origin(&headers(&[
            ("host", "gw.example"),
            ("origin", "https://evil.example")
        ])));
        assert!(!same_origin(&headers(&[
            ("host", "gw.example"),
            ("origin", "https://gw.example.evil.example")
        ])));
        assert!(!same_origin(&headers(&[
            ("host", "gw.example"),
            ("origin", "null")
        ])));
        assert!(!same_origin(&headers(&[("origin", "https://gw.example")])));
    }

    #[test]
    fn the_cookie_is_http_only_strict_and_secure_under_tls() {
        let plain = session_cookie("abc", 60, false);
        assert_eq!(
            plain.to_str().unwrap(),
            "hookgate_session=abc; Path=/; Max-Age=60; HttpOnly; SameSite=Strict"
        );
        let tls = session_cookie("abc", 60, true);
        assert!(tls
            .to_str()
            .unwrap()
            .ends_with("; HttpOnly; SameSite=Strict; Secure"));
    }
}
