//! The admin API end to end: auth, listings and pagination under concurrent inserts,
//! refused requests, replay defaults and dry runs, pause and resume, the admin listener.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post as route_post;
use serde_json::{json, Value};

use crate::support::*;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
pub const OPERATOR: &str = "operator-token-0123456789";
pub const READER: &str = "reader-token-0123456789ab";

/// Counts deliveries per path; `flip` answers 410 (dead at once) until `healed`.
#[derive(Default)]
pub struct Receiver {
    pub hits: Mutex<HashMap<String, Vec<String>>>,
    pub healed: AtomicBool,
}

async fn receive(
    State(state): State<Arc<Receiver>>,
    Path(path): Path<String>,
    headers: axum::http::HeaderMap,
) -> StatusCode {
    if path == "flip" && !state.healed.load(Ordering::SeqCst) {
        return StatusCode::GONE;
    }
    let id = headers["webhook-id"].to_str().unwrap().to_owned();
    state.hits.lock().unwrap().entry(path).or_default().push(id);
    StatusCode::NO_CONTENT
}

pub async fn start_receiver() -> (String, Arc<Receiver>) {
    let state: Arc<Receiver> = Default::default();
    let app = axum::Router::new()
        .route("/{path}", route_post(receive))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, state)
}

impl Receiver {
    pub fn count(&self, path: &str) -> usize {
        self.hits.lock().unwrap().get(path).map_or(0, Vec::len)
    }
}

/// A gateway with the operator and read tokens, source `gh` (GitHub) routed to `ok` and
/// `flip` on `receiver`.
pub fn config(receiver: &str) -> String {
    format!(
        r#"
[admin]
token = "{OPERATOR}"
read_token = "{READER}"

[[source]]
name = "gh"
path = "/gh"
preset = "github"
secret = "s"
tenant = "header:X-Tenant"

[[destination]]
name = "ok"
kind = "http"
url = "{receiver}/ok"
secret = "{SECRET}"
backoff = ["100ms"]

[[destination]]
name = "flip"
kind = "http"
url = "{receiver}/flip"
secret = "{SECRET}"
max_attempts = 1

[[route]]
topic = "push"
to = ["ok", "flip"]

[[route]]
topic = "ping"
to = ["ok"]
"#
    )
}

/// Sends a signed GitHub event with delivery id `id` and event type `topic`.
pub async fn send(gw: &TestGateway, id: &str, topic: &str) -> u16 {
    let body = format!(r#"{{"id":"{id}"}}"#);
    send_signed(
        gw,
        "gh",
        "/gh",
        body.as_bytes(),
        &[
            ("X-GitHub-Delivery", id),
            ("X-GitHub-Event", topic),
            ("X-Tenant", "acme"),
        ],
    )
    .await
    .0
}

/// `GET` with a token; (status, JSON body).
pub async fn get(gw: &TestGateway, path: &str, token: Option<&str>) -> (u16, Value) {
    let mut request = client().get(gw.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body)
}

pub async fn post_json(gw: &TestGateway, path: &str, token: &str, body: Value) -> (u16, Value) {
    let response = client()
        .post(gw.url(path))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

pub async fn eventually(what: &str, timeout: Duration, mut check: impl AsyncFnMut() -> bool) {
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < timeout, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn destination(gw: &TestGateway, name: &str) -> Value {
    let (status, body) = get(gw, &format!("/api/v1/destinations/{name}"), Some(OPERATOR)).await;
    assert_eq!(status, 200, "{body}");
    body
}

#[tokio::test]
async fn the_api_needs_a_token_and_answers_404_without_one_configured() {
    let plain =
        spawn("[[source]]\nname = \"gh\"\npath = \"/gh\"\npreset = \"github\"\nsecret = \"s\"\n")
            .await;
    for path in [
        "/api/v1/events",
        "/api/v1/openapi.json",
        "/metrics",
        "/api/v1/nope",
    ] {
        let (status, body) = get(&plain, path, Some(OPERATOR)).await;
        assert_eq!(status, 404, "{path}");
        assert_eq!(body["error"]["kind"], "not_found", "{path}: {body}");
    }
    plain.stop().await;

    let (url, _) = start_receiver().await;
    let gw = spawn(&config(&url)).await;
    let response = client().get(gw.url("/api/v1/events")).send().await.unwrap();
    assert_eq!(response.status(), 401);
    assert!(response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Bearer"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["kind"], "unauthorized");
    for wrong in [
        "wrong-token",
        "operator-token-012345678",
        "operator-token-01234567890",
        "",
    ] {
        assert_eq!(
            get(&gw, "/api/v1/events", Some(wrong)).await.0,
            401,
            "{wrong:?}"
        );
    }
    let basic = client()
        .get(gw.url("/api/v1/events"))
        .basic_auth("admin", Some(OPERATOR))
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), 401);
    assert_eq!(get(&gw, "/api/v1/events", Some(READER)).await.0, 200);
    assert_eq!(get(&gw, "/api/v1/events", Some(OPERATOR)).await.0, 200);
    assert_eq!(get(&gw, "/metrics", None).await.0, 401);
    assert_eq!(get(&gw, "/metrics", Some(READER)).await.0, 200);
    // The read-only token reads but may not replay or pause.
    let (status, body) = post_json(&gw, "/api/v1/replay", READER, json!({"all": true})).await;
    assert_eq!(
        (status, body["error"]["kind"].as_str()),
        (403, Some("forbidden"))
    );
    let (status, _) = post_json(&gw, "/api/v1/destinations/ok/pause", READER, json!({})).await;
    assert_eq!(status, 403);
    // An unknown endpoint under the API, with a token, is a JSON 404.
    let (status, body) = get(&gw, "/api/v1/nope", Some(OPERATOR)).await;
    assert_eq!(
        (status, body["error"]["kind"].as_str()),
        (404, Some("not_found"))
    );
    // The OpenAPI document is 3.1 and lists every endpoint.
    let (status, doc) = get(&gw, "/api/v1/openapi.json", None).await;
    assert_eq!(status, 200);
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    for path in [
        "/api/v1/events",
        "/api/v1/events/{id}",
        "/api/v1/events/{id}/replay",
        "/api/v1/replay",
        "/api/v1/refusals",
        "/api/v1/destinations",
        "/api/v1/destinations/{name}/pause",
        "/api/v1/sources",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} missing");
    }
    gw.stop().await;
}

#[tokio::test]
async fn events_page_by_cursor_without_gaps_or_repeats_while_inserts_go_on() {
    let (url, _) = start_receiver().await;
    let gw = Arc::new(spawn(&config(&url)).await);
    for i in 0..30 {
        assert_eq!(send(&gw, &format!("before-{i}"), "ping").await, 200);
    }
    let (_, first) = get(&gw, "/api/v1/events?limit=7", Some(READER)).await;
    let mut seen: Vec<String> = Vec::new();
    let collect = |page: &Value, seen: &mut Vec<String>| {
        for item in page["items"].as_array().unwrap() {
            seen.push(item["provider_id"].as_str().unwrap().to_owned());
        }
        page["next_cursor"].as_str().map(str::to_owned)
    };
    let mut cursor = collect(&first, &mut seen);
    // New events arrive while the listing is paged through.
    let writer = {
        let gw = gw.clone();
        tokio::spawn(async move {
            for i in 0..20 {
                assert_eq!(send(&gw, &format!("during-{i}"), "ping").await, 200);
            }
        })
    };
    while let Some(c) = cursor {
        let (status, page) = get(
            &gw,
            &format!("/api/v1/events?limit=7&cursor={c}"),
            Some(READER),
        )
        .await;
        assert_eq!(status, 200, "{page}");
        cursor = collect(&page, &mut seen);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    writer.await.unwrap();
    let expected: Vec<String> = (0..30).rev().map(|i| format!("before-{i}")).collect();
    assert_eq!(
        seen, expected,
        "every event once, newest first, none of the later ones"
    );
    // Filters: provider id, tenant, status, topic glob, time range.
    let (_, one) = get(&gw, "/api/v1/events?provider_id=during-3", Some(READER)).await;
    assert_eq!(one["items"].as_array().unwrap().len(), 1);
    assert_eq!(one["items"][0]["tenant"], "acme");
    assert_eq!(one["items"][0]["topic"], "ping");
    let (_, none) = get(&gw, "/api/v1/events?tenant=other", Some(READER)).await;
    assert!(none["items"].as_array().unwrap().is_empty());
    let (_, globbed) = get(&gw, "/api/v1/events?topic=p%3Fng&limit=1000", Some(READER)).await;
    assert_eq!(globbed["items"].as_array().unwrap().len(), 50);
    let (_, future) = get(
        &gw,
        "/api/v1/events?since=2100-01-01T00:00:00Z",
        Some(READER),
    )
    .await;
    assert!(future["items"].as_array().unwrap().is_empty());
    for bad in [
        "limit=0",
        "limit=1001",
        "limit=x",
        "status=bogus",
        "since=yesterday",
    ] {
        let (status, body) = get(&gw, &format!("/api/v1/events?{bad}"), Some(READER)).await;
        assert_eq!(
            (status, body["error"]["kind"].as_str()),
            (400, Some("bad_request")),
            "{bad}: {body}"
        );
    }
    let gw = Arc::into_inner(gw).unwrap();
    gw.stop().await;
}

#[tokio::test]
async fn replay_sends_again_only_what_did_not_succeed_unless_told_and_dry_runs_change_nothing() {
    let (url, receiver) = start_receiver().await;
    let gw = spawn(&config(&url)).await;
    assert_eq!(send(&gw, "r-1", "push").await, 200);
    eventually(
        "ok delivered, flip dead",
        Duration::from_secs(10),
        async || {
            let d = destination(&gw, "flip").await;
            receiver.count("ok") == 1 && d["dead"] == 1
        },
    )
    .await;
    let (_, page) = get(&gw, "/api/v1/events?provider_id=r-1", Some(READER)).await;
    let id = page["items"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(page["items"][0]["status"], "dead");

    // The default replays only the dead delivery; a dry run says so and changes nothing.
    let path = format!("/api/v1/events/{id}/replay");
    let (status, dry) = post_json(&gw, &path, OPERATOR, json!({"dry_run": true})).await;
    assert_eq!(status, 200, "{dry}");
    assert_eq!(dry["replayed"], 1);
    assert_eq!(dry["skipped_delivered"], 1);
    assert_eq!(
        dry["deliveries"],
        json!([{"event_id": id, "destination": "flip"}])
    );
    let (_, with_delivered) = post_json(
        &gw,
        &path,
        OPERATOR,
        json!({"dry_run": true, "include_delivered": true}),
    )
    .await;
    assert_eq!(with_delivered["replayed"], 2);
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(
        destination(&gw, "flip").await["dead"],
        1,
        "a dry run changed nothing"
    );

    receiver.healed.store(true, Ordering::SeqCst);
    let (status, done) = post_json(&gw, &path, OPERATOR, json!({})).await;
    assert_eq!(
        (status, done["replayed"].as_u64()),
        (200, Some(1)),
        "{done}"
    );
    eventually(
        "flip delivered after the replay",
        Duration::from_secs(10),
        async || receiver.count("flip") == 1,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        receiver.count("ok"),
        1,
        "the delivered destination got nothing again"
    );
    // The same webhook-id as the first attempt: receivers drop repeats.
    let (_, detail) = get(&gw, &format!("/api/v1/events/{id}"), Some(READER)).await;
    assert_eq!(detail["status"], "delivered");
    assert_eq!(detail["body"], r#"{"id":"r-1"}"#);
    assert_eq!(detail["body_encoding"], "utf-8");
    assert_eq!(detail["verification"]["scheme"], "hmac");
    let flip = detail["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["destination"] == "flip")
        .unwrap();
    let outcomes: Vec<&str> = flip["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["dead", "delivered"]);
    assert_eq!(flip["history"][0]["status_code"], 410);
    assert_eq!(
        receiver.hits.lock().unwrap()["flip"][0],
        flip["webhook_id"].as_str().unwrap()
    );
    let signature = detail["headers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["name"] == "x-hub-signature-256")
        .unwrap();
    assert_eq!(signature["value"], "[redacted]");

    // include_delivered sends the succeeded one again, once.
    let (_, again) = post_json(
        &gw,
        &path,
        OPERATOR,
        json!({"destination": "ok", "include_delivered": true}),
    )
    .await;
    assert_eq!(again["replayed"], 1);
    eventually("ok delivered again", Duration::from_secs(10), async || {
        receiver.count("ok") == 2
    })
    .await;

    // A filtered replay needs a filter or "all"; unknown destinations and events are refused.
    let (status, body) = post_json(&gw, "/api/v1/replay", OPERATOR, json!({})).await;
    assert_eq!(
        (status, body["error"]["kind"].as_str()),
        (422, Some("unprocessable"))
    );
    let (status, _) = post_json(
        &gw,
        "/api/v1/replay",
        OPERATOR,
        json!({"all": true, "destination": "nope"}),
    )
    .await;
    assert_eq!(status, 422);
    let (status, _) = post_json(&gw, "/api/v1/replay", OPERATOR, json!({"sauce": "gh"})).await;
    assert_eq!(status, 422);
    let (status, _) = post_json(
        &gw,
        "/api/v1/events/019a0000-0000-7000-8000-000000000000/replay",
        OPERATOR,
        json!({}),
    )
    .await;
    assert_eq!(status, 404);
    let (status, summary) = post_json(
        &gw,
        "/api/v1/replay",
        OPERATOR,
        json!({"source": "gh", "status": "dead", "dry_run": true}),
    )
    .await;
    assert_eq!(
        (status, summary["events"].as_u64()),
        (200, Some(0)),
        "{summary}"
    );
    gw.stop().await;
}

#[tokio::test]
async fn a_paused_destination_holds_its_deliveries_and_resume_delivers_them_all() {
    let (url, receiver) = start_receiver().await;
    let gw = spawn(&config(&url)).await;
    let (status, paused) =
        post_json(&gw, "/api/v1/destinations/ok/pause", OPERATOR, json!({})).await;
    assert_eq!(status, 200, "{paused}");
    assert_eq!(paused["paused"], true);
    for i in 0..5 {
        assert_eq!(send(&gw, &format!("p-{i}"), "ping").await, 200);
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(receiver.count("ok"), 0, "nothing delivered while paused");
    let state = destination(&gw, "ok").await;
    assert_eq!(
        (state["paused"].as_bool(), state["pending"].as_i64()),
        (Some(true), Some(5)),
        "{state}"
    );
    assert!(
        state["oldest_pending_age_seconds"].as_f64().unwrap() > 1.0,
        "{state}"
    );
    let (status, resumed) =
        post_json(&gw, "/api/v1/destinations/ok/resume", OPERATOR, json!({})).await;
    assert_eq!((status, resumed["paused"].as_bool()), (200, Some(false)));
    eventually("all five delivered", Duration::from_secs(10), async || {
        receiver.count("ok") == 5
    })
    .await;
    let state = destination(&gw, "ok").await;
    assert_eq!(
        (state["pending"].as_i64(), state["delivered"].as_i64()),
        (Some(0), Some(5)),
        "{state}"
    );
    assert!(state["last_success_at"].is_string());
    let ids: HashSet<String> = receiver.hits.lock().unwrap()["ok"]
        .iter()
        .cloned()
        .collect();
    assert_eq!(ids.len(), 5, "each once");
    let (status, _) = post_json(&gw, "/api/v1/destinations/nope/pause", OPERATOR, json!({})).await;
    assert_eq!(status, 404);
    gw.stop().await;
}

#[tokio::test]
async fn a_pause_survives_a_restart() {
    let (url, receiver) = start_receiver().await;
    let gw = spawn(&config(&url)).await;
    post_json(&gw, "/api/v1/destinations/ok/pause", OPERATOR, json!({})).await;
    let dir = gw.stop().await;
    let gw = spawn_in(dir, &config(&url)).await;
    assert_eq!(send(&gw, "after-restart", "ping").await, 200);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(receiver.count("ok"), 0);
    assert_eq!(destination(&gw, "ok").await["paused"], true);
    post_json(&gw, "/api/v1/destinations/ok/resume", OPERATOR, json!({})).await;
    eventually(
        "delivered after resume",
        Duration::from_secs(10),
        async || receiver.count("ok") == 1,
    )
    .await;
    gw.stop().await;
}

#[tokio::test]
async fn refused_requests_are_kept_redacted_and_sampled_under_a_flood() {
    let (url, _) = start_receiver().await;
    let gw = spawn(&config(&url)).await;
    let (status, _, _) = post(
        &gw.url("/gh"),
        r#"{"forged":true}"#,
        &[
            (
                "X-Hub-Signature-256",
                "sha256=0000000000000000000000000000000000000000000000000000000000000000",
            ),
            ("X-GitHub-Delivery", "forged-1"),
            ("X-GitHub-Event", "push"),
        ],
    )
    .await;
    assert_eq!(status, 401);
    let (status, _, _) = post(&gw.url("/gh"), vec![b'x'; 2 << 20], &[]).await;
    assert_eq!(status, 413);
    let (status, page) = get(&gw, "/api/v1/refusals", Some(READER)).await;
    assert_eq!(status, 200, "{page}");
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{page}");
    assert_eq!(items[0]["kind"], "too_large");
    assert_eq!(items[0]["status"], 413);
    let forged = &items[1];
    assert_eq!(forged["kind"], "bad_signature");
    assert_eq!(forged["source"], "gh");
    assert_eq!(forged["status"], 401);
    assert_eq!(forged["body_head"], r#"{"forged":true}"#);
    assert!(forged["peer"].as_str().unwrap().starts_with("127.0.0.1:"));
    let header = |name: &str| {
        forged["headers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["name"] == name)
            .map(|h| h["value"].clone())
    };
    assert_eq!(header("x-hub-signature-256"), Some(json!("[redacted]")));
    assert_eq!(header("x-github-delivery"), Some(json!("forged-1")));
    let (_, only) = get(&gw, "/api/v1/refusals?kind=bad_signature", Some(READER)).await;
    assert_eq!(only["items"].as_array().unwrap().len(), 1);

    // A flood: every request is counted, only a sample is kept.
    let mut tasks = Vec::new();
    for i in 0..200 {
        let url = gw.url("/gh");
        tasks.push(tokio::spawn(async move {
            post(
                &url,
                format!("{{\"n\":{i}}}"),
                &[("X-Hub-Signature-256", "sha256=00")],
            )
            .await
            .0
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 401);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, flood) = get(
        &gw,
        "/api/v1/refusals?kind=bad_signature&limit=1000",
        Some(READER),
    )
    .await;
    let kept = flood["items"].as_array().unwrap().len();
    assert!((2..=121).contains(&kept), "kept {kept} of 201");
    let (_, sources) = get(&gw, "/api/v1/sources", Some(READER)).await;
    let gh = &sources["items"][0];
    assert_eq!(gh["name"], "gh");
    assert_eq!(gh["refused"], 202);
    assert_eq!(gh["schemes"], json!(["hmac"]));
    let bad = gh["outcomes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["outcome"] == "bad_signature")
        .unwrap();
    assert_eq!(bad["count"], 201);
    gw.stop().await;
}

#[tokio::test]
async fn with_an_admin_listener_operators_and_providers_are_apart() {
    let (url, _) = start_receiver().await;
    let config = format!(
        "{}\n",
        config(&url).replace("[admin]\n", "[admin]\nlisten = \"127.0.0.1:0\"\n")
    );
    let gw = spawn_with_admin(&config).await;
    let admin = gw.admin.unwrap();
    // On the providers' listener there is no API and no metrics.
    assert_eq!(get(&gw, "/api/v1/events", Some(OPERATOR)).await.0, 404);
    assert_eq!(get(&gw, "/metrics", Some(OPERATOR)).await.0, 404);
    assert_eq!(get(&gw, "/health", None).await.0, 200);
    // On the operators' listener: the API, metrics, health and readiness.
    let on_admin = |path: &str| format!("http://{admin}{path}");
    let response = client()
        .get(on_admin("/api/v1/events"))
        .bearer_auth(OPERATOR)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    for path in ["/health", "/ready"] {
        assert_eq!(
            client().get(on_admin(path)).send().await.unwrap().status(),
            200,
            "{path}"
        );
    }
    let metrics = client()
        .get(on_admin("/metrics"))
        .bearer_auth(READER)
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status(), 200);
    // The providers' paths are not served there.
    assert_eq!(
        client()
            .post(on_admin("/gh"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    gw.stop().await;
}

#[tokio::test]
async fn a_token_in_the_query_is_stored_and_shown_redacted() {
    let config = format!(
        "[admin]\ntoken = \"{OPERATOR}\"\n[[source]]\nname = \"q\"\npath = \"/q\"\n[source.verify]\nkind = \"token\"\nquery = \"token\"\nsecret = \"query-secret-value\"\n"
    );
    let gw = spawn(&config).await;
    let (status, _, _) = post(&gw.url("/q?token=query-secret-value&page=2"), "{}", &[]).await;
    assert_eq!(status, 200);
    let (status, _, _) = post(&gw.url("/q?page=3&token=wrong-guess"), "{}", &[]).await;
    assert_eq!(status, 401);
    let (_, events) = get(&gw, "/api/v1/events", Some(OPERATOR)).await;
    let id = events["items"][0]["id"].as_str().unwrap();
    let (_, event) = get(&gw, &format!("/api/v1/events/{id}"), Some(OPERATOR)).await;
    assert_eq!(event["path"], "/q?token=[redacted]&page=2");
    let (_, refusals) = get(&gw, "/api/v1/refusals", Some(OPERATOR)).await;
    assert_eq!(refusals["items"][0]["path"], "/q?page=3&token=[redacted]");
    let dir = gw.stop().await;
    let db = std::fs::read(dir.path().join("data/hookgate.db")).unwrap();
    let wal = std::fs::read(dir.path().join("data/hookgate.db-wal")).unwrap_or_default();
    for file in [&db, &wal] {
        assert!(
            !file.windows(18).any(|w| w == b"query-secret-value")
                && !file.windows(11).any(|w| w == b"wrong-guess"),
            "a token reached the store"
        );
    }
}
