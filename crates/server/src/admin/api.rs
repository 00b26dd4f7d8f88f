//! The admin API's handlers and the JSON they answer (each type is also its OpenAPI schema).

use std::sync::Arc;

use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::Json;
use base64::Engine as _;
use hookgate_store::{
    AttemptRecord, DeliveryRecord, EventRecord, EventStatus, EventSummary, ListFilter,
    RefusalFilter, RefusalRecord,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{ApiError, Authorized};
use crate::replay::{self, ReplayRequest};
use crate::Gateway;

/// Most items a page may hold.
const MAX_LIMIT: u32 = 1000;

/// Query parameters, their rejections answered in the API's own error shape.
pub(crate) struct ApiQuery<T>(pub T);

impl<T: serde::de::DeserializeOwned + Send> FromRequestParts<Arc<Gateway>> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<Gateway>,
    ) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(q)| ApiQuery(q))
            .map_err(|e| ApiError::bad_request(e.body_text()))
    }
}

/// A path segment, its rejections answered in the API's own error shape.
pub(crate) struct ApiPath(pub String);

impl FromRequestParts<Arc<Gateway>> for ApiPath {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<Gateway>,
    ) -> Result<Self, Self::Rejection> {
        Path::<String>::from_request_parts(parts, state)
            .await
            .map(|Path(p)| ApiPath(p))
            .map_err(|e| ApiError::bad_request(e.body_text()))
    }
}

/// A JSON body (an empty body reads as `{}`): bad JSON is 400, wrong fields 422.
pub(crate) struct ApiJson<T>(pub T);

impl<T: serde::de::DeserializeOwned> axum::extract::FromRequest<Arc<Gateway>> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(
        request: axum::extract::Request,
        state: &Arc<Gateway>,
    ) -> Result<Self, Self::Rejection> {
        let bytes = axum::body::Bytes::from_request(request, state)
            .await
            .map_err(|e| ApiError::bad_request(e.body_text()))?;
        let text: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &bytes
        };
        serde_json::from_slice(text).map(ApiJson).map_err(|e| {
            if e.is_data() {
                ApiError::unprocessable(e.to_string())
            } else {
                ApiError::bad_request(format!("the body is not JSON: {e}"))
            }
        })
    }
}

use crate::rfc3339;

fn millis(key: &str, text: &Option<String>) -> Result<Option<i64>, ApiError> {
    text.as_deref()
        .map(|t| crate::parse_time_ms(t).map_err(|e| ApiError::bad_request(format!("{key}: {e}"))))
        .transpose()
}

fn limit(asked: Option<u32>) -> Result<u32, ApiError> {
    match asked {
        None => Ok(100),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(n) => Err(ApiError::bad_request(format!(
            "limit: {n} is not between 1 and {MAX_LIMIT}"
        ))),
    }
}

/// An event's summed-up delivery state.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Status {
    /// No route chose a destination.
    Unrouted,
    /// A delivery waits for an attempt.
    Pending,
    /// A delivery is dead (none pending).
    Dead,
    /// Every delivery succeeded.
    Delivered,
}

impl From<Status> for EventStatus {
    fn from(s: Status) -> EventStatus {
        match s {
            Status::Unrouted => EventStatus::Unrouted,
            Status::Pending => EventStatus::Pending,
            Status::Dead => EventStatus::Dead,
            Status::Delivered => EventStatus::Delivered,
        }
    }
}

impl From<EventStatus> for Status {
    fn from(s: EventStatus) -> Status {
        match s {
            EventStatus::Unrouted => Status::Unrouted,
            EventStatus::Pending => Status::Pending,
            EventStatus::Dead => Status::Dead,
            EventStatus::Delivered => Status::Delivered,
        }
    }
}

/// Filters of the event listing (and of a filtered replay).
#[derive(Debug, Default, Deserialize, IntoParams, ToSchema)]
#[into_params(parameter_in = Query)]
pub(crate) struct EventFilter {
    /// Only this source.
    source: Option<String>,
    /// Only topics matching this glob (`*` any run, `?` one character).
    topic: Option<String>,
    /// Only events with a delivery in this state, or unrouted events.
    status: Option<Status>,
    /// Only this tenant.
    tenant: Option<String>,
    /// Only this provider event id (the dedupe key).
    provider_id: Option<String>,
    /// Received at or after (RFC 3339, a date, or Unix seconds).
    since: Option<String>,
    /// Received before (RFC 3339, a date, or Unix seconds).
    until: Option<String>,
}

impl EventFilter {
    fn to_filter(&self) -> Result<ListFilter, ApiError> {
        Ok(ListFilter {
            source: self.source.clone(),
            topic: self.topic.clone(),
            status: self.status.map(Into::into),
            tenant: self.tenant.clone(),
            provider_id: self.provider_id.clone(),
            since_ms: millis("since", &self.since)?,
            until_ms: millis("until", &self.until)?,
            ..Default::default()
        })
    }
}

/// Paging.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct Page {
    /// Items per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// A stored event, without headers and body.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct EventItem {
    /// hookgate's id (UUIDv7: sorts by arrival).
    id: String,
    /// The source.
    source: String,
    /// The topic.
    topic: Option<String>,
    /// The tenant.
    tenant: Option<String>,
    /// The provider's event id (the dedupe key).
    provider_id: Option<String>,
    /// Arrival (RFC 3339, ms).
    received_at: String,
    /// Arrival, Unix ms.
    received_at_ms: i64,
    /// Body size in bytes.
    size: i64,
    /// Where its deliveries stand.
    status: Status,
}

impl From<&EventSummary> for EventItem {
    fn from(e: &EventSummary) -> EventItem {
        EventItem {
            id: e.id.to_string(),
            source: e.source.clone(),
            topic: e.topic.clone(),
            tenant: e.tenant.clone(),
            provider_id: e.dedupe_key.clone(),
            received_at: rfc3339(e.received_at_ms),
            received_at_ms: e.received_at_ms,
            size: e.size,
            status: e.status.into(),
        }
    }
}

/// A page of events, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct EventPage {
    /// The events.
    items: Vec<EventItem>,
    /// Pass as `cursor` for the next page; absent on the last one.
    next_cursor: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/events", tag = "events",
    params(EventFilter, Page),
    responses(
        (status = 200, description = "Events, newest first", body = EventPage),
        (status = 400, description = "A bad parameter", body = super::ErrorBody),
        (status = 401, description = "No or wrong token", body = super::ErrorBody),
    ),
    security(("bearer" = [])))]
pub(crate) async fn list_events(
    _: Authorized,
    State(gateway): State<Arc<Gateway>>,
    ApiQuery(filter): ApiQuery<EventFilter>,
    ApiQuery(page): ApiQuery<Page>,
) -> Result<Json<EventPage>, ApiError> {
    let limit = limit(page.limit)?;
    let mut filter = filter.to_filter()?;
    filter.before = page.cursor.map(hookgate_store::EventId);
    filter.limit = Some(limit);
    let found = gateway.store.list(filter).await?;
    let next_cursor = (found.len() == limit as usize)
        .then(|| found.last().map(|e| e.id.to_string()))
        .flatten();
    Ok(Json(EventPage {
        items: found.iter().map(EventItem::from).collect(),
        next_cursor,
    }))
}

/// A header as stored (credentials redacted).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct HeaderItem {
    name: String,
    value: String,
}

/// What verification established.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Verification {
    /// The scheme that verified it (`hmac`, `jwt`, `oidc`, …).
    scheme: Option<String>,
    /// The key id used, when the scheme has one.
    key_id: Option<String>,
    /// The token's issuer (JWT, OIDC).
    issuer: Option<String>,
    /// The token's subject (JWT, OIDC).
    subject: Option<String>,
}

/// One attempt.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AttemptItem {
    /// Start (RFC 3339).
    started_at: String,
    /// Duration, ms.
    duration_ms: i64,
    /// HTTP status or exit code.
    status_code: Option<i64>,
    /// `delivered`, `failed` (will retry) or `dead`.
    outcome: String,
    /// Up to 1 KiB of the answer.
    response: Option<String>,
    /// What went wrong.
    error: Option<String>,
}

impl From<&AttemptRecord> for AttemptItem {
    fn from(a: &AttemptRecord) -> AttemptItem {
        AttemptItem {
            started_at: rfc3339(a.started_at_ms),
            duration_ms: a.duration_ms,
            status_code: a.status_code,
            outcome: a.outcome.as_str().to_owned(),
            response: a.response.clone(),
            error: a.error.clone(),
        }
    }
}

/// One delivery of an event, with every attempt.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DeliveryItem {
    /// The destination.
    destination: String,
    /// Its stable `webhook-id`.
    webhook_id: String,
    /// `pending`, `delivered` or `dead`.
    status: String,
    /// Attempts since the last replay.
    attempts: i64,
    /// The next attempt (pending only).
    next_attempt_at: Option<String>,
    /// The last error.
    last_error: Option<String>,
    /// Every attempt, oldest first.
    history: Vec<AttemptItem>,
}

impl From<&DeliveryRecord> for DeliveryItem {
    fn from(d: &DeliveryRecord) -> DeliveryItem {
        DeliveryItem {
            destination: d.destination.clone(),
            webhook_id: d.webhook_id.clone(),
            status: d.status.as_str().to_owned(),
            attempts: d.attempts,
            next_attempt_at: (d.status == hookgate_store::DeliveryStatus::Pending)
                .then(|| rfc3339(d.next_at_ms)),
            last_error: d.last_error.clone(),
            history: d.history.iter().map(AttemptItem::from).collect(),
        }
    }
}

/// A body as JSON can carry it: text when it is UTF-8, base64 otherwise.
fn body_of(bytes: &[u8]) -> (String, &'static str) {
    match std::str::from_utf8(bytes) {
        Ok(text) => (text.to_owned(), "utf-8"),
        Err(_) => (
            base64::engine::general_purpose::STANDARD.encode(bytes),
            "base64",
        ),
    }
}

/// One event in full.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct EventDetail {
    #[serde(flatten)]
    summary: EventItem,
    /// The provider's timestamp as sent.
    provider_timestamp: Option<String>,
    /// Request method.
    method: String,
    /// Request path and query.
    path: String,
    /// Headers as stored (credentials redacted).
    headers: Vec<HeaderItem>,
    /// The body: text, or base64 (see `body_encoding`).
    body: String,
    /// `utf-8` or `base64`.
    body_encoding: String,
    /// What verification established.
    verification: Verification,
    /// Its deliveries, each with every attempt.
    deliveries: Vec<DeliveryItem>,
}

fn detail(event: EventRecord, deliveries: &[DeliveryRecord]) -> EventDetail {
    let (body, body_encoding) = body_of(&event.body);
    let field = |name: &str| {
        event
            .verification
            .get(name)
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    };
    EventDetail {
        summary: EventItem::from(&event.summary),
        verification: Verification {
            scheme: field("scheme"),
            key_id: field("key_id"),
            issuer: field("issuer"),
            subject: field("subject"),
        },
        provider_timestamp: event.provider_timestamp,
        method: event.method,
        path: event.path,
        headers: event
            .headers
            .into_iter()
            .map(|(name, value)| HeaderItem { name, value })
            .collect(),
        body,
        body_encoding: body_encoding.to_owned(),
        deliveries: deliveries.iter().map(DeliveryItem::from).collect(),
    }
}

#[utoipa::path(get, path = "/api/v1/events/{id}", tag = "events",
    params(("id" = String, Path, description = "hookgate's event id")),
    responses(
        (status = 200, description = "The event in full", body = EventDetail),
        (status = 400, description = "A bad parameter", body = super::ErrorBody),
        (status = 401, description = "No or wrong token", body = super::ErrorBody),
        (status = 404, description = "No such event", body = super::ErrorBody),
    ),
    security(("bearer" = [])))]
pub(crate) async fn get_event(
    _: Authorized,
    State(gateway): State<Arc<Gateway>>,
    ApiPath(id): ApiPath,
) -> Result<Json<EventDetail>, ApiError> {
    let event = gateway
        .store
        .get(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no event {id}")))?;
    let deliveries = gateway.store.deliveries(&id).await?;
    Ok(Json(detail(event, &deliveries)))
}

/// What a replay did, or would do.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ReplayResult {
    /// Whether this was a dry run (nothing written).
    dry_run: bool,
    /// Events matched.
    events: usize,
    /// Deliveries made pending (or that would be).
    replayed: usize,
    /// Deliveries left alone because they already succeeded.
    skipped_delivered: usize,
    /// Matched events with no destination at all.
    without_destination: usize,
    /// The deliveries, `event_id` × `destination` (at most 1000 listed).
    deliveries: Vec<ReplayTarget>,
}

/// One delivery a replay makes pending.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ReplayTarget {
    event_id: String,
    destination: String,
}

/// Options of a replay of one event.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReplayOptions {
    /// Only to this destination.
    destination: Option<String>,
    /// Also send again where it was already delivered.
    #[serde(default)]
    include_delivered: bool,
    /// Say what would be replayed, change nothing.
    #[serde(default)]
    dry_run: bool,
}

/// A replay of every event that matches the filters.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReplayBody {
    /// Only this source.
    source: Option<String>,
    /// Only topics matching this glob.
    topic: Option<String>,
    /// Only deliveries in this state (`pending`, `dead`, `delivered`), or unrouted events.
    status: Option<Status>,
    /// Only this tenant.
    tenant: Option<String>,
    /// Only this provider event id.
    provider_id: Option<String>,
    /// Received at or after.
    since: Option<String>,
    /// Received before.
    until: Option<String>,
    /// Replay every stored event (needed when no filter is given).
    #[serde(default)]
    all: bool,
    /// Only to this destination.
    destination: Option<String>,
    /// Also send again where already delivered.
    #[serde(default)]
    include_delivered: bool,
    /// Say what would be replayed, change nothing.
    #[serde(default)]
    dry_run: bool,
}

async fn run_replay(
    gateway: &Gateway,
    request: ReplayRequest,
    dry_run: bool,
) -> Result<ReplayResult, ApiError> {
    let config = gateway.config();
    if let Some(name) = &request.destination {
        if !config.destinations.iter().any(|d| &d.name == name) {
            return Err(ApiError::unprocessable(format!(
                "destination: no destination named `{name}` is configured"
            )));
        }
    }
    let plan = replay::plan(&gateway.store, Some(&config.routes), &request).await?;
    let replayed = if dry_run {
        plan.targets.len()
    } else {
        let done = replay::apply(&gateway.store, &plan, |_| {}).await?;
        if let Some(delivery) = gateway.delivery.get() {
            for (_, destination) in &plan.targets {
                delivery.wake(destination);
            }
        }
        tracing::info!(
            events = plan.events,
            deliveries = done,
            skipped_delivered = plan.skipped_delivered,
            "replayed through the admin API"
        );
        done
    };
    Ok(ReplayResult {
        dry_run,
        events: plan.events,
        replayed,
        skipped_delivered: plan.skipped_delivered,
        without_destination: plan.without_destination,
        deliveries: plan
            .targets
            .iter()
            .take(1000)
            .map(|(e, d)| ReplayTarget {
                event_id: e.to_string(),
                destination: d.clone(),
            })
            .collect(),
    })
}

#[utoipa::path(post, path = "/api/v1/events/{id}/replay", tag = "replay",
    params(("id" = String, Path, description = "hookgate's event id")),
    request_body(content = ReplayOptions, content_type = "application/json"),
    responses(
        (status = 200, description = "What was (or would be) replayed", body = ReplayResult),
        (status = 400, description = "Bad JSON", body = super::ErrorBody),
        (status = 401, description = "No or wrong token", body = super::ErrorBody),
        (status = 403, description = "A read-only token", body = super::ErrorBody),
        (status = 404, description = "No such event", body = super::ErrorBody),
        (status = 422, description = "Unknown destination or field", body = super::ErrorBody),
    ),
    security(("bearer" = [])))]
pub(crate) async fn replay_event(
    auth: Authorized,
    State(gateway): State<Arc<Gateway>>,
    ApiPath(id): ApiPath,
    ApiJson(options): ApiJson<ReplayOptions>,
) -> Result<Json<ReplayResult>, ApiError> {
    auth.operator()?;
    let request = ReplayRequest {
        filter: ListFilter {
            event_id: Some(hookgate_store::EventId(id.clone())),
            ..Default::default()
        },
        destination: options.destination,
        include_delivered: options.include_delivered,
    };
    let result = run_replay(&gateway, request, options.dry_run).await?;
    if result.events == 0 {
        return Err(ApiError::not_found(format!("no event {id}")));
    }
    Ok(Json(result))
}

#[utoipa::path(post, path = "/api/v1/replay", tag = "replay",
    request_body(content = ReplayBody, content_type = "application/json"),
    responses(
        (status = 200, description = "What was (or would be) replayed", body = ReplayResult),
        (status = 400, description = "Bad JSON or parameter", body = super::ErrorBody),
        (status = 401, description = "No or wrong token", body = super::ErrorBody),
        (status = 403, description = "A read-only token", body = super::ErrorBody),
        (status = 422, description = "No filter and no `all`, an unknown destination or field", body = super::ErrorBody),
    ),
    security(("bearer" = [])))]
pub(crate) async fn replay(
    auth: Authorized,
    State(gateway): State<Arc<Gateway>>,
    ApiJson(body): ApiJson<ReplayBody>,
) -> Result<Json<ReplayResult>, ApiError> {
    auth.operator()?;
    let filter = EventFilter {
        source: body.source,
        topic: body.topic,
        status: body.status,
        tenant: body.tenant,
        provider_id: body.provider_id,
        since: body.since,
        until: body.until,
    }
    .to_filter()?;
    let request = ReplayRequest {
        filter,
        destination: body.destination,
        include_delivered: body.include_delivered,
    };
    if !request.is_filtered() && !body.all {
        return Err(ApiError::unprocessable(
            "name a filter (source, topic, status, tenant, provider_id, since, until) or set \"all\": true",
        ));
    }
    Ok(Json(run_replay(&gateway, request, body.dry_run).await?))
}

/// Filters of the refusal listing.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct RefusalQuery {
    /// Only this source.
    source: Option<String>,
    /// Only this reason kind (`bad_signature`, `stale_timestamp`, `too_large` …).
    kind: Option<String>,
    /// At or after (RFC 3339, a date, or Unix seconds).
    since: Option<String>,
    /// Before.
    until: Option<String>,
    /// Items per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// A refused request.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RefusalItem {
    /// Its id.
    id: i64,
    /// The source whose path it reached.
    source: String,
    /// When (RFC 3339).
    received_at: String,
    /// The TCP peer.
    peer: Option<String>,
    /// Why: a stable kind.
    kind: String,
    /// What exactly.
    detail: String,
    /// The HTTP status answered.
    status: u16,
    /// Method.
    method: String,
    /// Path and query (credentials redacted).
    path: String,
    /// Headers (credentials redacted).
    headers: Vec<HeaderItem>,
    /// The first 4 KiB of the body: text, or base64 (see `body_encoding`).
    body_head: String,
    /// `utf-8` or `base64`.
    body_encoding: String,
    /// The body's size as far as it was read.
    body_size: i64,
}

impl From<RefusalRecord> for RefusalItem {
    fn from(r: RefusalRecord) -> RefusalItem {
        let f = r.request;
        let (body_head, encoding) = body_of(&f.body_head);
        RefusalItem {
            id: r.id,
            source: f.source,
            received_at: rfc3339(f.received_at_ms),
            peer: f.peer,
            kind: f.kind,
            detail: f.detail,
            status: f.status,
            method: f.method,
            path: f.path,
            headers: f
                .headers
                .into_iter()
                .map(|(name, value)| HeaderItem { name, value })
                .collect(),
            body_head,
            body_encoding: encoding.to_owned(),
            body_size: f.body_size,
        }
    }
}

/// A page of refused requests, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RefusalPage {
    items: Vec<RefusalItem>,
    /// Pass as `cursor` for the next page; absent on the last one.
    next_cursor: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/refusals", tag = "refusals",
    params(RefusalQuery),
    responses(
        (status = 200, description = "Refused requests, newest first (the last 5000 kept; sampled under a flood)", body = RefusalPage),
        (status = 400, description = "A bad parameter", body = super::ErrorBody),
        (status = 401, description = "No or wrong token", body = super::ErrorBody),
    ),
    security(("bearer" = [])))]
pub(crate) async fn list_refusals(
    _: Authorized,
    State(gateway): State<Arc<Gateway>>,
    ApiQuery(query): ApiQuery<RefusalQuery>,
) -> Result<Json<RefusalPage>, ApiError> {
    let limit = limit(query.limit)?;
    let before = query
        .cursor
        .as_deref()
        .map(|c| {
            c.parse::<i64>()
                .map_err(|_| ApiError::bad_request("cursor: not a cursor of this listing"))
        })
        .transpose()?;
    let found = gateway
        .store
        .refusals(RefusalFilter {
            source: query.source,
            kind: query.kind,
            since_ms: millis("since", &query.since)?,
            until_ms: millis("until", &query.until)?,
            before,
            limit: Some(limit),
        })
        .await?;
    let next_cursor = (found.len() == limit as usize)
        .then(|| found.last().map(|r| r.id.to_string()))
        .flatten();
    Ok(Json(RefusalPage {
        items: found.into_iter().map(RefusalItem::from).collect(),
        next_cursor,
    }))
}

/// A destination's state.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DestinationItem {
    /// Its name.
    name: String,
    /// `http`, `command` or `file`; absent when it is no longer configured (its
    /// deliveries stay in the store).
    kind: Option<String>,
    /// Whether an operator paused it.
    paused: bool,
    /// Deliveries waiting for an attempt.
    pending: i64,
    /// Pending deliveries leased right now (in flight, or handed to a dispatcher).
    in_flight: i64,
    /// Deliveries that succeeded.
    delivered: i64,
    /// Dead deliveries (kept for replay).
    dead: i64,
    /// Age of the oldest event with a pending delivery, seconds.
    oldest_pending_age_seconds: Option<f64>,
    /// The last failed attempt's error (this process).
    last_error: Option<String>,
    /// When that was.
    last_error_at: Option<String>,
    /// The last successful attempt (this process).
    last_success_at: Option<String>,
    /// Attempts made by this process since it started.
    attempts: u64,
    /// The share of those attempts that succeeded, 0 to 1 (absent before the first).
    success_rate: Option<f64>,
}

/// Every destination, configured or still holding deliveries.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DestinationList {
    items: Vec<DestinationItem>,
}

async fn destinations(gateway: &Gateway) -> Result<Vec<DestinationItem>, ApiError> {
    let now = crate::now_ms();
    let stats = gateway.store.destination_stats().await?;
    let config = gateway.config();
    let mut names: Vec<String> = config.destinations.iter().map(|d| d.name.clone()).collect();
    for s in &stats {
        if !names.contains(&s.destination) {
            names.push(s.destination.clone());
        }
    }
    Ok(names
        .into_iter()
        .map(|name| {
            let found = stats.iter().find(|s| s.destination == name);
            let counts = found.map(|s| s.counts).unwrap_or_default();
            let metrics = gateway.metrics.find_destination(&name);
            let health = metrics.as_ref().map(|m| m.health()).unwrap_or_default();
            let (succeeded, failed) = metrics.as_ref().map_or((0, 0), |m| m.attempts());
            let attempts = succeeded + failed;
            DestinationItem {
                kind: config
                    .destinations
                    .iter()
                    .find(|d| d.name == name)
                    .map(|d| d.sink.kind().to_owned()),
                paused: found.is_some_and(|s| s.paused),
                pending: counts.pending,
                in_flight: found.map_or(0, |s| s.leased),
                delivered: counts.delivered,
                dead: counts.dead,
                oldest_pending_age_seconds: found
                    .and_then(|s| s.oldest_pending_ms)
                    .map(|ms| (now - ms).max(0) as f64 / 1000.0),
                last_error: health.last_error.as_ref().map(|(_, e)| e.clone()),
                last_error_at: health.last_error.as_ref().map(|(at, _)| rfc3339(*at)),
                last_success_at: health.last_success_ms.map(rfc3339),
                attempts,
                success_rate: (attempts > 0).then(|| succeeded as f64 / attempts as f64),
                name,
            }
        })
        .collect())
}

#[utoipa::path(get, path = "/api/v1/destinations", tag = "destinations",
    responses(
        (status = 200, description = "Every destination's state", body = DestinationList),
        (status = 401, description = "No or wrong token", body = super::ErrorBody),
    ),
    security(("bearer" = [])))]
pub(crate) async fn list_destinations(
    _: Authorized,
    State(gateway): State<Arc<Gateway>>,
) -> Result<Json<DestinationList>, ApiError> {
    Ok(Json(DestinationList {
        items: destinations(&gateway).await?,
    }))
}

async fn one_destination(gateway: &Gateway, name: &str) -> Result<DestinationItem, ApiError> {
    destinations(gateway)
        .await?
        .into_iter()
        .find(|d| d.name == name)
        .ok_or_else(|| ApiError::not_found(format!("no destination named `{name}`")))
}

#[utoipa::path(get, path = "/api/v1/destinations/{name}", tag = "destinations",
    params(("name" = String, Path, description = "The destination's name")),
    responses(
        (status = 200, description = "The destination's state", body = DestinationItem),
        (status = 400, description = "A bad parameter", body = super::ErrorBody),
        (status = 401, description = "No or wrong token", body = super::ErrorBody),
        (status = 404, description = "No such destination", body = super::ErrorBody),
    ),
    security(("bearer" = [])))]
pub(crate) async fn get_destination(
    _: Authorized,
    State(gateway): State<Arc<Gateway>>,
    ApiPath(name): ApiPath,
) -> Result<Json<DestinationItem>, ApiError> {
    Ok(Json(one_destination(&gateway, &name).await?))
}

async fn set_paused(
    auth: Authorized,
    gateway: Arc<Gateway>,
    name: String,
    paused: bool,
) -> Result<Json<DestinationItem>, ApiError> {
    auth.operator()?;
    if !gateway.config().destinations.iter().any(|d| d.name == name) {
        return Err(ApiError::not_found(format!(
            "no destination named `{name}` is configured"
        )));
    }
    let Some(delivery) = gateway.delivery.get() else {
        return Err(ApiError::conflict(
            "delivery is not running on this gateway",
        ));
    };
    gateway.store.set_paused(&name, paused).await?;
    delivery.set_paused(&name, paused);
    tracing::info!(destination = %name, "{} through the admin API", if paused { "paused" } else { "resumed" });
    Ok(Json(one_destination(&gateway, &name).await?))
}

#[utoipa::path(post, path = "/api/v1/destinations/{name}/pause", tag = "destinations",
    params(("name" = String, Path, description = "The destination's name")),
    responses(
        (status = 200, description = "Paused: deliveries wait in the store, nothing is lost", body = DestinationItem),
        (status = 400, description = "A bad parameter", body = super::ErrorBody),
        (status = 401, description = "No or wrong token", body = super::ErrorBody),
        (status = 403, description = "A read-only token", body = super::ErrorBody),
        (status = 404, description = "No such destination", body = super::ErrorBody),
        (status = 409, description = "Delivery is not running here", body = super::ErrorBody),
    ),
    security(("bearer" = [])))]
pub(crate) async fn pause(
    auth: Authorized,
    State(gateway): State<Arc<Gateway>>,
    ApiPath(name): ApiPath,
) -> Result<Json<DestinationItem>, ApiError> {
    set_paused(auth, gateway, name, true).await
}

#[utoipa::path(post, path = "/api/v1/destinations/{name}/resume", tag = "destinations",
    params(("name" = String, Path, description = "The destination's name")),
    responses(
        (status = 200, description = "Resumed", body = DestinationItem),
        (status = 400, description = "A bad parameter", body = super::ErrorBody),
        (status = 401, description = "No or wrong token", body = super::ErrorBody),
        (status = 403, description = "A read-only token", body = super::ErrorBody),
        (status = 404, description = "No such destination", body = super::ErrorBody),
        (status = 409, description = "Delivery is not running here", body = super::ErrorBody),
    ),
    security(("bearer" = [])))]
pub(crate) async fn resume(
    auth: Authorized,
    State(gateway): State<Arc<Gateway>>,
    ApiPath(name): ApiPath,
) -> Result<Json<DestinationItem>, ApiError> {
    set_paused(auth, gateway, name, false).await
}

/// Requests of one outcome.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct OutcomeCount {
    /// `accepted`, `duplicate`, a refusal kind, `too_large`, `unavailable` …
    outcome: String,
    /// Requests since this process started.
    count: u64,
}

/// A source and its counters.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SourceItem {
    /// Its name.
    name: String,
    /// The path it answers on.
    path: String,
    /// Accepted methods.
    methods: Vec<String>,
    /// Its preset, if any.
    preset: Option<String>,
    /// Its verification schemes (`hmac`, `jwt`, `oidc` …).
    schemes: Vec<String>,
    /// Requests acknowledged (accepted or duplicate) since start.
    acknowledged: u64,
    /// Requests refused since start.
    refused: u64,
    /// Requests by outcome since start (the non-zero ones).
    outcomes: Vec<OutcomeCount>,
}

/// Every source.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SourceList {
    items: Vec<SourceItem>,
}

#[utoipa::path(get, path = "/api/v1/sources", tag = "sources",
    responses(
        (status = 200, description = "Every source with its counters", body = SourceList),
        (status = 401, description = "No or wrong token", body = super::ErrorBody),
    ),
    security(("bearer" = [])))]
pub(crate) async fn list_sources(
    _: Authorized,
    State(gateway): State<Arc<Gateway>>,
) -> Json<SourceList> {
    let live = gateway.live();
    let items = live
        .config
        .sources
        .iter()
        .zip(live.source_metrics.iter())
        .map(|(source, metrics)| {
            let (acknowledged, refused) = metrics.totals();
            SourceItem {
                name: source.name.clone(),
                path: source.path.clone(),
                methods: source.methods.clone(),
                preset: source.source.preset().map(str::to_owned),
                schemes: source
                    .source
                    .checks()
                    .iter()
                    .map(|c| c.kind().to_owned())
                    .collect(),
                acknowledged,
                refused,
                outcomes: metrics
                    .counts()
                    .into_iter()
                    .filter(|(_, n)| *n > 0)
                    .map(|(outcome, count)| OutcomeCount {
                        outcome: outcome.to_owned(),
                        count,
                    })
                    .collect(),
            }
        })
        .collect();
    Json(SourceList { items })
}

/// How many seconds of arrivals to show.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ArrivalQuery {
    /// The window, 1 to 299 seconds before the current one (default 60).
    #[param(minimum = 1, maximum = 299)]
    seconds: Option<u32>,
}

/// Events stored in one second.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ArrivalCount {
    /// The second's start (RFC 3339).
    at: String,
    /// Unix seconds.
    second: i64,
    /// Events stored in it.
    count: u64,
}

/// Events stored per second by this process, oldest first, the current second last.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Arrivals {
    items: Vec<ArrivalCount>,
}

#[utoipa::path(get, path = "/api/v1/stats/arrivals", tag = "events",
    params(ArrivalQuery),
    responses(
        (status = 200, description = "Events stored per second by this process (with several nodes, each counts its own)", body = Arrivals),
        (status = 400, description = "A bad parameter", body = super::ErrorBody),
        (status = 401, description = "No or wrong token", body = super::ErrorBody),
    ),
    security(("bearer" = [])))]
pub(crate) async fn arrivals(
    _: Authorized,
    State(gateway): State<Arc<Gateway>>,
    ApiQuery(query): ApiQuery<ArrivalQuery>,
) -> Result<Json<Arrivals>, ApiError> {
    let seconds = match query.seconds {
        None => 60,
        Some(n) if (1..crate::metrics::ARRIVAL_SECONDS as u32).contains(&n) => n,
        Some(n) => {
            return Err(ApiError::bad_request(format!(
                "seconds: {n} is not between 1 and {}",
                crate::metrics::ARRIVAL_SECONDS - 1
            )))
        }
    };
    let items = gateway
        .arrivals
        .last(seconds as usize, crate::now_ms())
        .into_iter()
        .map(|(second, count)| ArrivalCount {
            at: rfc3339(second * 1000),
            second,
            count,
        })
        .collect();
    Ok(Json(Arrivals { items }))
}
