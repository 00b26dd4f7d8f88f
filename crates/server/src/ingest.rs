//! The ingest path: read → verify → validate → store → answer.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use hookgate_store::{EventId, NewDelivery, NewEvent, Stored};
use hookgate_verify::{
    Accepted, ErrorKind, HandshakeReply, Headers, Outcome, Reply, Request, VerifyError,
};
use http_body_util::BodyExt;
use time::OffsetDateTime;

use crate::config::SourceConfig;
use crate::metrics::IngestOutcome;
use crate::{Gateway, Live, PeerAddr};

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
            HeaderValue::from_static(reply.content_type),
        );
    }
    response
}

/// How a request refused before it is stored ends.
fn refused_for(
    source: &str,
    responses: &hookgate_verify::Responses,
    refusal: Refusal,
    body: &Bytes,
) -> Ended {
    match refusal {
        Refusal::Verify(e) => Ended::refused(
            reply(responses.reply(Outcome::Refused(&e))),
            IngestOutcome::Refused(e.kind()),
            e.detail(),
            body.clone(),
        ),
        Refusal::Overloaded => Ended::refused(
            with_retry_after(reply(responses.reply(Outcome::Unavailable))),
            IngestOutcome::Overloaded,
            "every place in the public-key verification pool is busy; answered 503",
            body.clone(),
        ),
        Refusal::KeysUnavailable(reason) => keys_unavailable(source, responses, reason, body),
    }
}

/// The answer when the keys to verify with (an issuer's, or an SNS certificate) cannot be
/// had: the provider retries later.
fn keys_unavailable(
    source: &str,
    responses: &hookgate_verify::Responses,
    reason: String,
    body: &Bytes,
) -> Ended {
    tracing::error!(source, reason = %capped(&reason, LOGGED_DETAIL), "cannot verify: keys unavailable");
    let response = with_retry_after(reply(responses.reply(Outcome::Internal)));
    Ended::refused(
        response,
        IngestOutcome::KeysUnavailable,
        reason,
        body.clone(),
    )
}

/// A handshake's answer: not stored, so no `hookgate-event-id`. A reflected value is a
/// plain token (the verifier's rule), and `nosniff` keeps a browser from reading it as
/// anything but its declared type.
fn handshake_response(handshake: HandshakeReply) -> Response {
    let mut response = Response::new(Body::from(handshake.body));
    *response.status_mut() =
        StatusCode::from_u16(handshake.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    if let Some(value) = handshake
        .content_type
        .and_then(|ct| HeaderValue::from_str(&ct).ok())
    {
        headers.insert(header::CONTENT_TYPE, value);
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    for (name, value) in handshake.headers {
        if let (Ok(name), Ok(value)) = (
            header::HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            headers.insert(name, value);
        }
    }
    response
}

/// Why a request was not stored, beyond what the verifier says.
enum Refusal {
    Verify(VerifyError),
    KeysUnavailable(String),
    /// No place in the public-key verification pool in time.
    Overloaded,
}

/// How a request ended: its answer, its outcome for the metrics, and for a refusal what
/// an operator needs to see why.
struct Ended {
    response: Response,
    outcome: IngestOutcome,
    refused: Option<Refused>,
}

/// A refusal's reason and what was read of the body.
struct Refused {
    detail: String,
    body: Bytes,
    body_size: i64,
}

impl Ended {
    fn ok(response: Response, outcome: IngestOutcome) -> Ended {
        Ended {
            response,
            outcome,
            refused: None,
        }
    }

    fn refused(
        response: Response,
        outcome: IngestOutcome,
        detail: impl Into<String>,
        body: Bytes,
    ) -> Ended {
        Ended {
            response,
            outcome,
            refused: Some(Refused {
                detail: detail.into(),
                body_size: body.len() as i64,
                body,
            }),
        }
    }
}

/// Characters of a refusal's detail in a log line (a token's 12 KB `kid` is not logged).
const LOGGED_DETAIL: usize = 256;

fn capped(text: &str, max: usize) -> std::borrow::Cow<'_, str> {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}… ({} bytes)", &text[..at], text.len()).into(),
        None => text.into(),
    }
}

/// Keeps the refusals of one source for the admin API: the first [`SAMPLED_PER_SECOND`] of
/// each second, so a flood of forged requests costs the store a bounded number of writes
/// (the metrics still count every one).
#[derive(Debug, Default)]
pub(crate) struct Sampler {
    second: std::sync::atomic::AtomicI64,
    taken: std::sync::atomic::AtomicU32,
}

/// Refusals kept per source and second.
const SAMPLED_PER_SECOND: u32 = 20;

impl Sampler {
    fn take(&self, now_ms: i64) -> bool {
        use std::sync::atomic::Ordering::Relaxed;
        let second = now_ms / 1000;
        if self.second.swap(second, Relaxed) != second {
            self.taken.store(0, Relaxed);
        }
        self.taken.fetch_add(1, Relaxed) < SAMPLED_PER_SECOND
    }
}

/// The providers' listener's fallback: a source's path is ingested under the configuration
/// in force when the request arrived (a reload in the meantime does not change it), any
/// other path is 404.
pub(crate) async fn route(
    axum::extract::State(gateway): axum::extract::State<Arc<Gateway>>,
    request: axum::extract::Request,
) -> Response {
    let live = gateway.live();
    match live.source_at(request.uri().path()) {
        Some(index) => ingest(&gateway, &live, index, request).await,
        None => not_found().await,
    }
}

async fn ingest(
    gateway: &Gateway,
    live: &Live,
    index: usize,
    request: axum::extract::Request,
) -> Response {
    let started = std::time::Instant::now();
    let (parts, body) = request.into_parts();
    let ended = handle(gateway, live, index, &parts, body).await;
    live.source_metrics[index].request(ended.outcome, started.elapsed());
    if let Some(refused) = ended.refused {
        record_refusal(
            gateway,
            live,
            index,
            &parts,
            &ended.response,
            ended.outcome,
            refused,
        );
    }
    ended.response
}

fn record_refusal(
    gateway: &Gateway,
    live: &Live,
    index: usize,
    parts: &axum::http::request::Parts,
    response: &Response,
    outcome: IngestOutcome,
    refused: Refused,
) {
    let source = &live.config.sources[index];
    let peer = parts.extensions.get::<PeerAddr>().map(|p| p.0);
    let status = response.status().as_u16();
    let now = crate::now_ms();
    // Under a flood only a sample is logged and kept: every refusal is counted, and the
    // 10 s summary line says how many there were.
    if !live.refusal_samplers[index].take(now) {
        gateway.metrics.refusal_unrecorded();
        return;
    }
    tracing::warn!(
        source = %source.name,
        reason = outcome.as_str(),
        detail = %capped(&refused.detail, LOGGED_DETAIL),
        status,
        peer = %peer.map(|p| p.to_string()).unwrap_or_default(),
        "request refused"
    );
    let headers = parts
        .headers
        .iter()
        .map(|(name, value)| {
            let value = if source.redacted_headers.iter().any(|r| r == name.as_str()) {
                "[redacted]".to_owned()
            } else {
                String::from_utf8_lossy(value.as_bytes()).into_owned()
            };
            (name.as_str().to_owned(), value)
        })
        .collect();
    let path = stored_path(parts.uri.path(), parts.uri.query(), &source.redacted_query);
    let recorded = gateway.store.record_refusal(hookgate_store::Refusal {
        source: source.name.clone(),
        received_at_ms: now,
        peer: peer.map(|p| p.to_string()),
        kind: outcome.as_str().to_owned(),
        detail: refused.detail,
        method: parts.method.as_str().to_owned(),
        path,
        status,
        headers,
        body_head: refused.body,
        body_size: refused.body_size,
    });
    if !recorded {
        gateway.metrics.refusal_unrecorded();
    }
}

async fn handle(
    gateway: &Gateway,
    live: &Live,
    index: usize,
    parts: &axum::http::request::Parts,
    body: Body,
) -> Ended {
    let source_config = &live.config.sources[index];
    let name = source_config.name.as_str();
    let source = &source_config.source;
    let responses = source.responses();
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
        let detail = format!(
            "method {} (accepted: {})",
            parts.method,
            source_config.methods.join(", ")
        );
        return Ended::refused(
            response,
            IngestOutcome::MethodNotAllowed,
            detail,
            Bytes::new(),
        );
    }
    let peer = parts.extensions.get::<PeerAddr>().map(|p| p.0);
    if let Err(wait) = live.limiters.check(index, peer.map(|p| p.ip())) {
        let seconds = wait.as_secs() + 1;
        let mut response = close(json(
            StatusCode::TOO_MANY_REQUESTS,
            r#"{"error":"rate limited"}"#,
        ));
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        let detail = format!("over the rate limit; retry in {seconds}s");
        return Ended::refused(response, IngestOutcome::RateLimited, detail, Bytes::new());
    }
    let limit = source_config.max_body;
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(len) = declared.filter(|len| *len > limit) {
        let response = close(reply(responses.reply(Outcome::TooLarge)));
        let detail = format!("declared Content-Length {len} exceeds the limit of {limit} bytes");
        return Ended::refused(response, IngestOutcome::TooLarge, detail, Bytes::new());
    }
    // Held until the request is answered: the bytes stay in memory that long.
    let (body, _budget) = match tokio::time::timeout(
        live.config.read_timeout,
        read_body(body, declared, limit, &gateway.body_budget),
    )
    .await
    {
        Ok(Ok(read)) => read,
        Ok(Err(BodyError::TooLarge)) => {
            let response = close(reply(responses.reply(Outcome::TooLarge)));
            let detail = format!("body exceeds the limit of {limit} bytes");
            return Ended::refused(response, IngestOutcome::TooLarge, detail, Bytes::new());
        }
        Ok(Err(BodyError::Unreadable(e))) => {
            let response = close(reply(responses.reply(Outcome::MalformedBody)));
            let detail = format!("body could not be read: {e}");
            return Ended::refused(response, IngestOutcome::MalformedBody, detail, Bytes::new());
        }
        Ok(Err(BodyError::OverBudget)) => {
            let response = close(with_retry_after(reply(
                responses.reply(Outcome::Unavailable),
            )));
            let detail = format!(
                "the memory for request bodies ({} bytes) is in use; answered 503",
                gateway.max_buffered_bodies
            );
            return Ended::refused(response, IngestOutcome::Overloaded, detail, Bytes::new());
        }
        Err(_) => {
            let response = close(json(
                StatusCode::REQUEST_TIMEOUT,
                r#"{"error":"request timeout"}"#,
            ));
            let detail = format!(
                "body not received within {}",
                humantime::format_duration(live.config.read_timeout)
            );
            return Ended::refused(response, IngestOutcome::Timeout, detail, Bytes::new());
        }
    };
    let request = Request {
        method: parts.method.as_str().to_owned(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        headers: headers_of(&parts.headers),
        body: &body,
        peer: peer.map(|p| p.ip()),
    };
    let received = OffsetDateTime::now_utc();
    let handshake =
        |gateway, live| answer_handshake(gateway, live, source_config, &request, &body, received);
    let mut answer = match handshake(gateway, live).await {
        Ok(answer) => answer,
        Err(refusal) => return refused_for(name, responses, refusal, &body),
    };
    // A signed handshake (SNS's SubscriptionConfirmation) may need its certificate first.
    if let Some(Err(e)) = &answer {
        if let (ErrorKind::KeysNotLoaded, Some(url)) = (e.kind(), e.certificate()) {
            if let Err(reason) = live.keys.certificates.fetch(url).await {
                return keys_unavailable(name, responses, reason, &body);
            }
            answer = match handshake(gateway, live).await {
                Ok(answer) => answer,
                Err(refusal) => return refused_for(name, responses, refusal, &body),
            };
        }
    }
    if let Some(answer) = answer {
        return match answer {
            Ok(handshake) => {
                if let Some((path, secret)) = &handshake.captured {
                    match live.keys.captured.keep(path, secret) {
                        Ok(crate::captured::Kept::Written) => {
                            tracing::info!(source = name, handshake = %handshake.name, file = %path, "secret handed over in the handshake kept")
                        }
                        Ok(crate::captured::Kept::Same) => {}
                        // Recorded (and logged, sampled) as a refusal: anyone can send this.
                        Err(crate::captured::NotKept::Conflict(reason)) => {
                            let response = json(
                                StatusCode::CONFLICT,
                                r#"{"error":"a secret is already kept for this endpoint"}"#,
                            );
                            return Ended::refused(
                                response,
                                IngestOutcome::Refused(ErrorKind::BadSignature),
                                reason,
                                body.clone(),
                            );
                        }
                        // Our side failed: the provider is asked to try again.
                        Err(crate::captured::NotKept::Io(reason)) => {
                            tracing::error!(source = name, reason = %reason, "the handshake's secret cannot be kept");
                            let response =
                                with_retry_after(reply(responses.reply(Outcome::Internal)));
                            return Ended::refused(
                                response,
                                IngestOutcome::Unavailable,
                                reason,
                                body.clone(),
                            );
                        }
                    }
                }
                // A signed handshake is the provider's: worth a line. An unsigned one (a
                // GET challenge) anyone can send, so it is logged at debug only.
                let signed = source
                    .handshakes()
                    .iter()
                    .any(|h| h.name() == handshake.name && h.is_verified());
                if signed {
                    tracing::info!(source = name, handshake = %handshake.name, "handshake answered");
                } else {
                    tracing::debug!(source = name, handshake = %handshake.name, "handshake answered");
                }
                if let Some(url) = handshake.visit.clone() {
                    let certificates = live.keys.certificates.clone();
                    let source = name.to_owned();
                    tokio::spawn(async move {
                        match certificates.visit(&url).await {
                            Ok(()) => tracing::info!(source, "subscription confirmed"),
                            Err(e) => {
                                tracing::warn!(source, error = %e, "subscription confirmation failed; the provider will ask again")
                            }
                        }
                    });
                }
                Ended::ok(handshake_response(handshake), IngestOutcome::Handshake)
            }
            Err(e) => refused_for(name, responses, Refusal::Verify(e), &body),
        };
    }
    let accepted = match verify(gateway, live, source_config, &request, &body, received).await {
        Ok(accepted) => accepted,
        Err(refusal) => return refused_for(name, responses, refusal, &body),
    };
    let mut event = new_event(
        name,
        source_config,
        &parts.method,
        &request,
        &accepted,
        body.clone(),
        received,
    );
    let destinations = live
        .config
        .routes
        .destinations(name, event.topic.as_deref(), &body);
    let received_at_ms = event.received_at_ms;
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
            gateway.arrivals.record(received_at_ms);
            tracing::debug!(source = name, event = %id, "stored");
            Ended::ok(
                with_event_id(reply(responses.reply(Outcome::Accepted)), &id),
                IngestOutcome::Accepted,
            )
        }
        Ok(Stored::Duplicate(id)) => {
            tracing::debug!(source = name, event = %id, "duplicate of a stored event");
            let mut response = with_event_id(reply(responses.reply(Outcome::Accepted)), &id);
            response
                .headers_mut()
                .insert("hookgate-duplicate", HeaderValue::from_static("true"));
            Ended::ok(response, IngestOutcome::Duplicate)
        }
        Err(e) => {
            tracing::error!(source = name, error = %e, "not stored; answered 503");
            Ended::ok(
                with_retry_after(reply(responses.reply(Outcome::Unavailable))),
                IngestOutcome::Unavailable,
            )
        }
    }
}

/// Every 10 s, one line per source and destination that did anything (what an operator
/// reads instead of a line per event), and idle peers leave the rate limiter's table.
pub(crate) async fn summaries(
    gateway: Arc<Gateway>,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) {
    use std::collections::HashMap;
    const EVERY: std::time::Duration = std::time::Duration::from_secs(10);
    // By name: a reload adds sources and destinations.
    let mut sources: HashMap<String, (u64, u64)> = HashMap::new();
    let mut destinations: HashMap<String, (u64, u64, u64)> = HashMap::new();
    for source in gateway.metrics.sources() {
        sources.insert(source.name.clone(), source.totals());
    }
    for destination in gateway.metrics.destinations() {
        destinations.insert(destination.name.clone(), destination.totals());
    }
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + EVERY, EVERY);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = crate::became(&mut stopped, true) => return,
        }
        gateway.live().limiters.forget_idle_peers();
        if !gateway.metrics.enabled() {
            continue;
        }
        for source in gateway.metrics.sources() {
            let now = source.totals();
            let last = sources.insert(source.name.clone(), now).unwrap_or_default();
            let (accepted, refused) = (now.0 - last.0, now.1 - last.1);
            if accepted + refused > 0 {
                tracing::info!(source = %source.name, accepted, refused, "last 10s");
            }
        }
        for destination in gateway.metrics.destinations() {
            let now = destination.totals();
            let last = destinations
                .insert(destination.name.clone(), now)
                .unwrap_or_default();
            let (delivered, failed, dead) = (now.0 - last.0, now.1 - last.1, now.2 - last.2);
            if delivered + failed + dead > 0 {
                tracing::info!(destination = %destination.name, delivered, failed, dead, "last 10s");
            }
        }
    }
}

/// Why a body was not read.
enum BodyError {
    TooLarge,
    Unreadable(String),
    OverBudget,
}

/// How long a request waits for room in the body budget before it is answered 503.
const BUDGET_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

/// Reads the body, at most `limit` bytes, into memory taken from `budget` (all buffered
/// bodies together) before it is allocated: the permit returned covers the buffer's whole
/// capacity. A declared `Content-Length` is taken at once (one allocation, no regrowth);
/// a chunked body grows its buffer by doubling, each step taken from the budget first.
async fn read_body(
    mut body: Body,
    declared: Option<u64>,
    limit: u64,
    budget: &Arc<tokio::sync::Semaphore>,
) -> Result<(Bytes, Option<tokio::sync::OwnedSemaphorePermit>), BodyError> {
    let mut held: Option<tokio::sync::OwnedSemaphorePermit> = None;
    let mut buffer: Vec<u8> = Vec::new();
    if let Some(len) = declared.filter(|len| *len > 0) {
        let len = usize::try_from(len.min(limit)).map_err(|_| BodyError::TooLarge)?;
        held = Some(take_budget(budget, len).await?);
        buffer.reserve_exact(len);
    }
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| BodyError::Unreadable(e.to_string()))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        let needed = buffer.len() + data.len();
        if needed as u64 > limit {
            return Err(BodyError::TooLarge);
        }
        if needed > buffer.capacity() {
            let grown = needed
                .max(buffer.capacity() * 2)
                .max(4096)
                .min(limit as usize);
            let permit = take_budget(budget, grown - buffer.capacity()).await?;
            match &mut held {
                Some(all) => all.merge(permit),
                None => held = Some(permit),
            }
            buffer.reserve_exact(grown - buffer.len());
        }
        buffer.extend_from_slice(&data);
    }
    Ok((Bytes::from(buffer), held))
}

/// `bytes` of the body budget, waiting at most [`BUDGET_WAIT`] for them.
async fn take_budget(
    budget: &Arc<tokio::sync::Semaphore>,
    bytes: usize,
) -> Result<tokio::sync::OwnedSemaphorePermit, BodyError> {
    let n = u32::try_from(bytes).map_err(|_| BodyError::TooLarge)?;
    match budget.clone().try_acquire_many_owned(n) {
        Ok(permit) => Ok(permit),
        Err(_) => tokio::time::timeout(BUDGET_WAIT, budget.clone().acquire_many_owned(n))
            .await
            .map_err(|_| BodyError::OverBudget)?
            .map_err(|_| BodyError::OverBudget),
    }
}

/// Verifies; when an OIDC issuer's keys are missing or lack the token's `kid`, fetches
/// them once and verifies again.
async fn verify(
    gateway: &Gateway,
    live: &Live,
    source: &SourceConfig,
    request: &Request<'_>,
    body: &Bytes,
    now: OffsetDateTime,
) -> Result<Accepted, Refusal> {
    match accept(gateway, live, source, request, body, now).await? {
        Ok(accepted) => Ok(accepted),
        Err(e) if e.kind() == ErrorKind::KeysNotLoaded && e.certificate().is_some() => {
            let url = e.certificate().unwrap_or_default().to_owned();
            live.keys
                .certificates
                .fetch(&url)
                .await
                .map_err(Refusal::KeysUnavailable)?;
            accept(gateway, live, source, request, body, now)
                .await?
                .map_err(|e| match e.kind() {
                    ErrorKind::KeysNotLoaded => Refusal::KeysUnavailable(e.detail().to_owned()),
                    _ => Refusal::Verify(e),
                })
        }
        Err(e) if matches!(e.kind(), ErrorKind::KeysNotLoaded | ErrorKind::UnknownKey) => {
            let issuer = e.issuer().unwrap_or_default().to_owned();
            let unknown_kid = e.kind() == ErrorKind::UnknownKey;
            if let Err(fetch) = live.keys.refresh(&issuer, unknown_kid).await {
                if !unknown_kid {
                    return Err(Refusal::KeysUnavailable(fetch.to_string()));
                }
            }
            accept(gateway, live, source, request, body, now)
                .await?
                .map_err(|e| match e.kind() {
                    ErrorKind::KeysNotLoaded => Refusal::KeysUnavailable(e.detail().to_owned()),
                    _ => Refusal::Verify(e),
                })
        }
        Err(e) => Err(Refusal::Verify(e)),
    }
}

/// How long a request waits for a place in the public-key verification pool before it is
/// answered 503.
const VERIFY_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// Runs the source's checks. HMAC-only sources run inline (microseconds); a source that may
/// need a public-key operation (up to a millisecond for ES512) runs on the blocking pool,
/// at most [`Gateway::verify_pool`] at once, so a flood of such tokens never stalls the
/// async workers, and with them every other source.
async fn accept(
    gateway: &Gateway,
    live: &Live,
    source: &SourceConfig,
    request: &Request<'_>,
    body: &Bytes,
    now: OffsetDateTime,
) -> Result<Result<Accepted, VerifyError>, Refusal> {
    run_checks(
        gateway,
        live,
        source,
        request,
        body,
        move |source, request, keys| source.accept(request, now, keys),
    )
    .await
}

/// The answer to a handshake (`None` when the request is not one), its checks run like an
/// event's: on the public-key pool when the source may need a public-key operation.
async fn answer_handshake(
    gateway: &Gateway,
    live: &Live,
    source: &SourceConfig,
    request: &Request<'_>,
    body: &Bytes,
    now: OffsetDateTime,
) -> Result<Option<Result<HandshakeReply, VerifyError>>, Refusal> {
    if source.source.handshakes().is_empty() {
        return Ok(None);
    }
    run_checks(
        gateway,
        live,
        source,
        request,
        body,
        move |source, request, keys| source.handshake(request, now, keys),
    )
    .await
}

/// Runs `checks` on the request: inline for an HMAC-only source, else on the blocking pool
/// within [`Gateway::verify_pool`] (see [`accept`]).
async fn run_checks<T: Send + 'static>(
    gateway: &Gateway,
    live: &Live,
    source: &SourceConfig,
    request: &Request<'_>,
    body: &Bytes,
    checks: impl FnOnce(&hookgate_verify::Source, &Request<'_>, &crate::jwks::KeyCache) -> T
        + Send
        + 'static,
) -> Result<T, Refusal> {
    if !source.asymmetric {
        return Ok(checks(&source.source, request, &live.keys));
    }
    let place = tokio::time::timeout(VERIFY_WAIT, gateway.verify_pool.clone().acquire_owned())
        .await
        .map_err(|_| Refusal::Overloaded)?
        .map_err(|_| Refusal::Overloaded)?;
    let (source, keys, body) = (source.source.clone(), live.keys.clone(), body.clone());
    let (method, path, query, headers, peer) = (
        request.method.clone(),
        request.path.clone(),
        request.query.clone(),
        request.headers.clone(),
        request.peer,
    );
    tokio::task::spawn_blocking(move || {
        let _place = place;
        let request = Request {
            method,
            path,
            query,
            headers,
            body: &body,
            peer,
        };
        checks(&source, &request, &keys)
    })
    .await
    .map_err(|e| Refusal::KeysUnavailable(format!("verification task failed: {e}")))
}

fn headers_of(map: &HeaderMap) -> Headers {
    map.iter()
        .map(|(name, value)| (name.as_str(), value.as_bytes().to_vec()))
        .collect()
}

/// `path?query` as stored and shown: the values of credential parameters (a token in the
/// query) replaced by `[redacted]`, everything else byte for byte.
fn stored_path(path: &str, query: Option<&str>, redact: &[String]) -> String {
    let Some(query) = query else {
        return path.to_owned();
    };
    if redact.is_empty() {
        return format!("{path}?{query}");
    }
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| {
            let raw_key = pair.split_once('=').map_or(pair, |(k, _)| k);
            let key = form_urlencoded::parse(raw_key.as_bytes())
                .next()
                .map(|(k, _)| k.into_owned())
                .unwrap_or_default();
            if redact.contains(&key) {
                format!("{raw_key}=[redacted]")
            } else {
                pair.to_owned()
            }
        })
        .collect();
    format!("{path}?{}", pairs.join("&"))
}

fn new_event(
    name: &str,
    source: &crate::config::SourceConfig,
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
            let value = if source.redacted_headers.iter().any(|r| r == name) {
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
        path: stored_path(
            &request.path,
            request.query.as_deref(),
            &source.redacted_query,
        ),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_detail_is_capped_in_the_log() {
        let kid = format!("unknown key id `{}`", "k".repeat(12_000));
        let logged = capped(&kid, LOGGED_DETAIL);
        assert!(logged.len() < LOGGED_DETAIL + 40, "{}", logged.len());
        assert!(logged.ends_with("… (12017 bytes)"), "{logged}");
        assert_eq!(capped("short", LOGGED_DETAIL), "short");
    }

    #[test]
    fn credential_query_parameters_are_redacted_and_the_rest_kept_as_sent() {
        let redact = vec!["token".to_owned()];
        assert_eq!(stored_path("/h", None, &redact), "/h");
        assert_eq!(
            stored_path("/h", Some("a=b%20c&token=SECRET&t%6fken=S2&x"), &redact),
            "/h?a=b%20c&token=[redacted]&t%6fken=[redacted]&x"
        );
        assert_eq!(stored_path("/h", Some("token=S"), &[]), "/h?token=S");
    }

    #[test]
    fn the_sampler_keeps_the_first_of_each_second() {
        let sampler = Sampler::default();
        let kept = (0..100).filter(|_| sampler.take(5_000)).count();
        assert_eq!(kept, SAMPLED_PER_SECOND as usize);
        assert!(sampler.take(6_000), "a new second starts afresh");
    }
}
