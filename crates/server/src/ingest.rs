//! The ingest path: read → verify → validate → store → answer.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use hookgate_store::{EventId, NewDelivery, NewEvent, Stored};
use hookgate_verify::{Accepted, ErrorKind, Headers, Outcome, Reply, Request, Source, VerifyError};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use time::OffsetDateTime;

use crate::{Gateway, PeerAddr};

fn json(status: StatusCode, body: &'static str) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

pub(crate) async fn health() -> Response {
    json(StatusCode::OK, r#"{"status":"ok"}"#)
}

pub(crate) async fn ready(
    axum::extract::State(gateway): axum::extract::State<Arc<Gateway>>,
) -> Response {
    match gateway.store.ready().await {
        Ok(()) => json(StatusCode::OK, r#"{"status":"ready"}"#),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            json(
                StatusCode::SERVICE_UNAVAILABLE,
                r#"{"status":"unavailable"}"#,
            )
        }
    }
}

pub(crate) async fn not_found() -> Response {
    json(StatusCode::NOT_FOUND, r#"{"error":"not found"}"#)
}

fn reply(reply: &Reply) -> Response {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = Response::new(Body::from(reply.body.clone()));
    *response.status_mut() = status;
    if !reply.body.is_empty() {
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    response
}

/// Why a request was not stored, beyond what the verifier says.
enum Refusal {
    Verify(VerifyError),
    KeysUnavailable(String),
}

pub(crate) async fn ingest(
    gateway: Arc<Gateway>,
    index: usize,
    request: axum::extract::Request,
) -> Response {
    let source_config = &gateway.config.sources[index];
    let name = source_config.name.as_str();
    let source = &source_config.source;
    let responses = source.responses();
    let (parts, body) = request.into_parts();
    if !source_config
        .methods
        .iter()
        .any(|m| m == parts.method.as_str())
    {
        let mut response = json(
            StatusCode::METHOD_NOT_ALLOWED,
            r#"{"error":"method not allowed"}"#,
        );
        if let Ok(allow) = HeaderValue::from_str(&source_config.methods.join(", ")) {
            response.headers_mut().insert(header::ALLOW, allow);
        }
        return response;
    }
    let limit = source_config.max_body;
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit) {
        tracing::info!(source = name, declared, limit, "body too large (declared)");
        return close(reply(responses.reply(Outcome::TooLarge)));
    }
    let body = match tokio::time::timeout(
        gateway.config.read_timeout,
        Limited::new(body, limit as usize).collect(),
    )
    .await
    {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(e)) if e.is::<LengthLimitError>() => {
            tracing::info!(source = name, limit, "body too large");
            return close(reply(responses.reply(Outcome::TooLarge)));
        }
        Ok(Err(e)) => {
            tracing::info!(source = name, error = %e, "body could not be read");
            return close(reply(responses.reply(Outcome::MalformedBody)));
        }
        Err(_) => {
            tracing::info!(source = name, timeout = ?gateway.config.read_timeout, "body not received in time");
            return close(json(
                StatusCode::REQUEST_TIMEOUT,
                r#"{"error":"request timeout"}"#,
            ));
        }
    };
    let peer = parts.extensions.get::<PeerAddr>().map(|p| p.0);
    let request = Request {
        method: parts.method.as_str().to_owned(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        headers: headers_of(&parts.headers),
        body: &body,
        peer: peer.map(|p| p.ip()),
    };
    let received = OffsetDateTime::now_utc();
    let accepted = match verify(&gateway, source, &request, received).await {
        Ok(accepted) => accepted,
        Err(Refusal::Verify(e)) => {
            tracing::warn!(source = name, reason = %e.kind(), detail = e.detail(), peer = ?peer, "request refused");
            return reply(responses.reply(Outcome::Refused(&e)));
        }
        Err(Refusal::KeysUnavailable(reason)) => {
            tracing::error!(source = name, %reason, "cannot verify: issuer keys unavailable");
            return with_retry_after(reply(responses.reply(Outcome::Internal)));
        }
    };
    let mut event = new_event(
        name,
        &source_config.redacted_headers,
        &parts.method,
        &request,
        &accepted,
        body.clone(),
        received,
    );
    let destinations = gateway
        .config
        .routes
        .destinations(name, event.topic.as_deref(), &body);
    let reservation = match gateway.delivery.get() {
        Some(delivery) => Some(delivery.reserve(&mut event, destinations)),
        None => {
            event.destinations = destinations.into_iter().map(NewDelivery::queued).collect();
            None
        }
    };
    match gateway.store.insert(event).await {
        Ok(Stored::New { id, deliveries }) => {
            if let Some(reservation) = reservation {
                reservation.committed(&deliveries);
            }
            tracing::debug!(source = name, event = %id, dedupe = ?accepted.meta.id, "stored");
            with_event_id(reply(responses.reply(Outcome::Accepted)), &id)
        }
        Ok(Stored::Duplicate(id)) => {
            tracing::info!(source = name, event = %id, dedupe = ?accepted.meta.id, "duplicate of a stored event");
            let mut response = with_event_id(reply(responses.reply(Outcome::Accepted)), &id);
            response
                .headers_mut()
                .insert("hookgate-duplicate", HeaderValue::from_static("true"));
            response
        }
        Err(e) => {
            tracing::error!(source = name, error = %e, "not stored; answered 503");
            with_retry_after(reply(responses.reply(Outcome::Unavailable)))
        }
    }
}

/// Verifies; when an OIDC issuer's keys are missing or lack the token's `kid`, fetches
/// them once and verifies again.
async fn verify(
    gateway: &Gateway,
    source: &Source,
    request: &Request<'_>,
    now: OffsetDateTime,
) -> Result<Accepted, Refusal> {
    match source.accept(request, now, &gateway.keys) {
        Ok(accepted) => Ok(accepted),
        Err(e) if matches!(e.kind(), ErrorKind::KeysNotLoaded | ErrorKind::UnknownKey) => {
            let issuer = e.issuer().unwrap_or_default().to_owned();
            let unknown_kid = e.kind() == ErrorKind::UnknownKey;
            if let Err(fetch) = gateway.keys.refresh(&issuer, unknown_kid).await {
                if !unknown_kid {
                    return Err(Refusal::KeysUnavailable(fetch.to_string()));
                }
            }
            source
                .accept(request, now, &gateway.keys)
                .map_err(|e| match e.kind() {
                    ErrorKind::KeysNotLoaded => Refusal::KeysUnavailable(e.detail().to_owned()),
                    _ => Refusal::Verify(e),
                })
        }
        Err(e) => Err(Refusal::Verify(e)),
    }
}

fn headers_of(map: &HeaderMap) -> Headers {
    map.iter()
        .map(|(name, value)| (name.as_str(), value.as_bytes().to_vec()))
        .collect()
}

fn new_event(
    name: &str,
    redact: &[String],
    method: &Method,
    request: &Request<'_>,
    accepted: &Accepted,
    body: Bytes,
    received: OffsetDateTime,
) -> NewEvent {
    let headers = request
        .headers
        .iter()
        .map(|(name, value)| {
            let value = if redact.iter().any(|r| r == name) {
                "[redacted]".to_owned()
            } else {
                String::from_utf8_lossy(value).into_owned()
            };
            (name.to_owned(), value)
        })
        .collect();
    let verified = &accepted.verified;
    NewEvent {
        id: EventId::new(),
        source: name.to_owned(),
        dedupe_key: accepted.meta.id.clone(),
        topic: accepted.meta.topic.clone(),
        tenant: accepted.meta.tenant.clone(),
        provider_timestamp: accepted.meta.provider_timestamp_raw.clone(),
        received_at_ms: (received.unix_timestamp_nanos() / 1_000_000) as i64,
        method: method.as_str().to_owned(),
        path: request.path_and_query(),
        headers,
        body,
        verification: serde_json::json!({
            "scheme": verified.scheme,
            "key_id": verified.key_id,
            "issuer": verified.issuer,
            "subject": verified.subject,
        }),
        destinations: Vec::new(),
    }
}

fn with_event_id(mut response: Response, id: &EventId) -> Response {
    if let Ok(value) = HeaderValue::from_str(&id.0) {
        response.headers_mut().insert("hookgate-event-id", value);
    }
    response
}

fn with_retry_after(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

/// After a refused body the connection may hold unread bytes: close it.
fn close(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}
