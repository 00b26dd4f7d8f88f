//! Delivery with the real binary: SIGKILL during heavy delivery loses nothing, repeats
//! carry the same webhook-id; dead and unrouted events are replayed with the CLI.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;

use crate::support::*;

const SECRET: &str = "durability-secret";
const DESTINATION_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

#[derive(Default)]
struct Received {
    /// (destination path, delivery id from the body) → webhook-ids seen.
    ids: HashMap<(String, String), HashSet<String>>,
    bad_signatures: usize,
    refuse: HashSet<String>,
}

type Shared = Arc<Mutex<Received>>;

async fn receive(
    State(state): State<Shared>,
    Path(path): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> StatusCode {
    if standardwebhooks::Webhook::new(DESTINATION_SECRET)
        .unwrap()
        .verify(&body, &headers)
        .is_err()
    {
        state.lock().unwrap().bad_signatures += 1;
        return StatusCode::UNAUTHORIZED;
    }
    if state.lock().unwrap().refuse.contains(&path) {
        return StatusCode::GONE;
    }
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let delivery = json["delivery"].as_str().unwrap().to_owned();
    let webhook_id = headers["webhook-id"].to_str().unwrap().to_owned();
    state
        .lock()
        .unwrap()
        .ids
        .entry((path, delivery))
        .or_default()
        .insert(webhook_id);
    StatusCode::OK
}

async fn start_receiver() -> (String, Shared) {
    let state: Shared = Default::default();
    let app = axum::Router::new()
        .route("/{path}", post(receive))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, state)
}

fn config(receiver: &str, routes: bool) -> String {
    let mut text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[store]\nurl = \"sqlite://./data/hookgate.db\"\n\
         [[source]]\nname = \"gh\"\npath = \"/gh\"\npreset = \"github\"\nsecret = \"{SECRET}\"\n"
    );
    for name in ["orders", "audit"] {
        text.push_str(&format!(
            "[[destination]]\nname = \"{name}\"\nkind = \"http\"\nurl = \"{receiver}/{name}\"\nsecret = \"{DESTINATION_SECRET}\"\ntimeout = \"1s\"\nbackoff = [\"100ms\"]\nmax_attempts = 3\n"
        ));
    }
    if routes {
        text.push_str("[[route]]\nsource = \"gh\"\nto = [\"orders\", \"audit\"]\n");
    }
    text
}

async fn send(
    client: &reqwest::Client,
    url: &str,
    id: &str,
) -> Result<reqwest::StatusCode, reqwest::Error> {
    let body = format!(r#"{{"delivery":"{id}","padding":"{}"}}"#, "x".repeat(500));
    client
        .post(url)
        .header("X-GitHub-Delivery", id)
        .header(
            "X-Hub-Signature-256",
            github_signature(SECRET, body.as_bytes()),
        )
        .body(body)
        .send()
        .await
        .map(|r| r.status())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_delivery_loses_nothing_and_repeats_keep_their_webhook_id() {
    let (receiver, state) = start_receiver().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hookgate.toml");
    std::fs::write(&file, config(&receiver, true)).unwrap();
    let mut acked: Vec<String> = Vec::new();
    for round in 0..2 {
        let mut running = start(dir.path(), &file, &[]);
        let url = running.url("/gh");
        let round_acked = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut clients = Vec::new();
        for c in 0..16 {
            let (url, round_acked, stop) = (url.clone(), round_acked.clone(), stop.clone());
            clients.push(tokio::spawn(async move {
                let client = reqwest::Client::new();
                let mut n = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let id = format!("r{round}-c{c}-{n}");
                    n += 1;
                    match send(&client, &url, &id).await {
                        Ok(s) if s.is_success() => round_acked.lock().unwrap().push(id),
                        Ok(s) => panic!("unexpected {s}"),
                        Err(_) => break,
                    }
                }
            }));
        }
        while round_acked.lock().unwrap().len() < 600 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        running.child.kill().unwrap(); // SIGKILL, deliveries in flight
        running.child.wait().unwrap();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for c in clients {
            c.await.unwrap();
        }
        acked.extend(round_acked.lock().unwrap().drain(..));
        // Restart: expired leases return to the queue; every acknowledged event reaches both
        // destinations.
        let restarted = start(dir.path(), &file, &[]);
        let started = Instant::now();
        loop {
            let missing = {
                let s = state.lock().unwrap();
                acked
                    .iter()
                    .flat_map(|id| ["orders", "audit"].map(|d| (d.to_owned(), id.clone())))
                    .filter(|k| !s.ids.contains_key(k))
                    .count()
            };
            if missing == 0 {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "round {round}: {missing} deliveries missing"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let (code, _) = restarted.terminate();
        assert_eq!(code, Some(0));
    }
    let s = state.lock().unwrap();
    assert_eq!(s.bad_signatures, 0);
    // A repeat (delivered before the kill was recorded) carries the same webhook-id.
    assert!(
        s.ids.values().all(|ids| ids.len() == 1),
        "a repeat carried another webhook-id"
    );
    // Events committed just before the kill, whose acknowledgement never reached the client,
    // are delivered too: one webhook-id per event and destination, at least every acked one.
    let orders: Vec<&HashSet<String>> = s
        .ids
        .iter()
        .filter(|((d, _), _)| d == "orders")
        .map(|(_, ids)| ids)
        .collect();
    let distinct: HashSet<&String> = orders.iter().flat_map(|ids| ids.iter()).collect();
    assert_eq!(distinct.len(), orders.len());
    assert!(orders.len() >= acked.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_dead_and_unrouted_events_with_the_same_webhook_id() {
    let (receiver, state) = start_receiver().await;
    state.lock().unwrap().refuse.insert("audit".into());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hookgate.toml");
    // No routes yet: events are stored unrouted.
    std::fs::write(&file, config(&receiver, false)).unwrap();
    let running = start(dir.path(), &file, &[]);
    let client = reqwest::Client::new();
    assert!(send(&client, &running.url("/gh"), "early")
        .await
        .unwrap()
        .is_success());
    assert_eq!(running.terminate().0, Some(0));
    std::fs::write(&file, config(&receiver, true)).unwrap();
    let running = start(dir.path(), &file, &[]);
    assert!(send(&client, &running.url("/gh"), "late")
        .await
        .unwrap()
        .is_success());
    let events = |args: &[&str]| {
        outcome(
            hookgate()
                .arg("events")
                .args(args)
                .arg("--config")
                .arg(&file)
                .current_dir(dir.path())
                .output()
                .unwrap(),
        )
    };
    // "late" reaches orders; audit answers 410 → dead at once.
    let started = Instant::now();
    while !events(&["list", "--status", "dead"]).1.contains("late") {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "audit never went dead"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(events(&["list", "--status", "unrouted"])
        .1
        .contains("early"));
    let started = Instant::now();
    while !state
        .lock()
        .unwrap()
        .ids
        .contains_key(&("orders".to_string(), "late".to_string()))
    {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "orders never got late"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // By default a replay leaves what succeeded alone; a dry run says what it would do.
    let (code, stdout, stderr) = events(&["replay", "--provider-id", "late", "--dry-run"]);
    assert_eq!(code, Some(0), "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(lines[0].ends_with("  audit"), "{stdout}");
    assert_eq!(
        lines[1],
        "would replay 1 deliveries of 1 event(s); 1 already delivered, left alone (pass --include-delivered to send them again)"
    );
    let (_, stdout, _) = events(&[
        "replay",
        "--provider-id",
        "late",
        "--dry-run",
        "--include-delivered",
    ]);
    assert!(
        stdout.ends_with("would replay 2 deliveries of 1 event(s)\n"),
        "{stdout}"
    );
    let (_, shown, _) = events(&["show", "--provider-id", "late"]);
    assert!(
        shown.contains("  audit: dead after 1 attempt(s)"),
        "{shown}"
    );
    assert!(
        shown.contains("  orders: delivered after 1 attempt(s)"),
        "{shown}"
    );
    let (code, _, stderr) = events(&["replay"]);
    assert_eq!(code, Some(2), "{stderr}");
    // Audit is fixed: replay the dead deliveries, then the unrouted event (the routes now fan out).
    state.lock().unwrap().refuse.clear();
    let (code, stdout, _) = events(&["replay", "--status", "dead", "--destination", "audit"]);
    assert_eq!(
        (code, stdout.trim()),
        (Some(0), "replayed 1 deliveries of 1 event(s)")
    );
    let (code, stdout, _) = events(&["replay", "--status", "unrouted"]);
    assert_eq!(
        (code, stdout.trim()),
        (Some(0), "replayed 2 deliveries of 1 event(s)")
    );
    let started = Instant::now();
    loop {
        let done = {
            let s = state.lock().unwrap();
            ["orders", "audit"].iter().all(|d| {
                ["early", "late"]
                    .iter()
                    .all(|id| s.ids.contains_key(&(d.to_string(), id.to_string())))
            })
        };
        if done {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "replays not delivered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The replayed audit delivery of "late" carries the webhook-id its first (refused)
    // attempt had: the stored delivery's id.
    let s = state.lock().unwrap();
    let late_audit = s.ids[&("audit".to_string(), "late".to_string())]
        .iter()
        .next()
        .unwrap()
        .clone();
    drop(s);
    let stored = stored_events(&dir.path().join("data/hookgate.db"));
    let (_, deliveries) = stored
        .iter()
        .find(|(e, _)| e.summary.dedupe_key.as_deref() == Some("late"))
        .unwrap();
    let audit = deliveries
        .iter()
        .find(|d| d.destination == "audit")
        .unwrap();
    assert_eq!(audit.webhook_id, late_audit);
    assert_eq!(
        audit.history.len(),
        2,
        "the refused attempt and the replayed one"
    );
    assert_eq!(running.terminate().0, Some(0));
}
