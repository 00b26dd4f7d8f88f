//! Delivery end to end against a real HTTP receiver on loopback. The receiver checks every
//! `webhook-signature` with the `standardwebhooks` crate, not with hookgate's own code.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;

use crate::support::*;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

#[derive(Default)]
struct Receiver {
    /// Verified deliveries per path: (webhook-id, body, arrival).
    received: HashMap<String, Vec<(String, Vec<u8>, Instant)>>,
    /// Requests per path, verified or not.
    hits: HashMap<String, usize>,
    /// Paths answering 500 for their first N requests.
    fail_first: HashMap<String, usize>,
    bad_signatures: usize,
}

type Shared = Arc<Mutex<Receiver>>;

async fn receive(
    State(state): State<Shared>,
    Path(path): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> axum::response::Response {
    let hit = {
        let mut s = state.lock().unwrap();
        let n = s.hits.entry(path.clone()).or_default();
        *n += 1;
        *n
    };
    let verified = standardwebhooks::Webhook::new(SECRET)
        .unwrap()
        .verify(&body, &headers)
        .is_ok();
    if !verified {
        state.lock().unwrap().bad_signatures += 1;
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let fail_first = state
        .lock()
        .unwrap()
        .fail_first
        .get(&path)
        .copied()
        .unwrap_or(0);
    let answer = match path.as_str() {
        "flaky" if hit <= fail_first => {
            return (StatusCode::INTERNAL_SERVER_ERROR, "try later").into_response()
        }
        "busy" if hit == 1 => {
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", "1")],
                "slow down",
            )
                .into_response()
        }
        "gone" => return (StatusCode::GONE, "no such endpoint").into_response(),
        "slow" => {
            tokio::time::sleep(Duration::from_secs(3)).await;
            StatusCode::OK
        }
        "paced" => {
            tokio::time::sleep(Duration::from_millis(400)).await;
            StatusCode::OK
        }
        _ => StatusCode::OK,
    };
    let id = headers["webhook-id"].to_str().unwrap().to_owned();
    assert!(headers.get("hookgate-source").is_some());
    state
        .lock()
        .unwrap()
        .received
        .entry(path)
        .or_default()
        .push((id, body.to_vec(), Instant::now()));
    answer.into_response()
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

/// A listener that accepts and immediately drops connections for the first `n` of them.
async fn start_resetter(n: usize, forward_to: String) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut count = 0;
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            count += 1;
            if count <= n {
                drop(stream);
                continue;
            }
            let target = forward_to.trim_start_matches("http://").to_owned();
            tokio::spawn(async move {
                let mut upstream = tokio::net::TcpStream::connect(target).await.unwrap();
                let _ = tokio::io::copy_bidirectional(&mut stream, &mut upstream).await;
            });
        }
    });
    url
}

async fn wait_for(what: &str, timeout: Duration, mut done: impl AsyncFnMut() -> bool) {
    let started = Instant::now();
    while !done().await {
        assert!(started.elapsed() < timeout, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn destination(name: &str, url: &str, extra: &str) -> String {
    format!("[[destination]]\nname = \"{name}\"\nkind = \"http\"\nurl = \"{url}\"\nsecret = \"{SECRET}\"\nbackoff = [\"100ms\"]\n{extra}\n")
}

const SOURCE: &str =
    "[[source]]\nname = \"gh\"\npath = \"/gh\"\npreset = \"github\"\nsecret = \"s\"\n";

/// Sends `count` signed GitHub events with ids `d-0`, `d-1`, …, each acknowledged.
async fn send_events(gw: &TestGateway, count: usize) {
    for i in 0..count {
        let (status, _, _) = send_signed(
            gw,
            "gh",
            "/gh",
            br#"{"n":1}"#,
            &[("X-GitHub-Delivery", &format!("d-{i}"))],
        )
        .await;
        assert_eq!(status, 200);
    }
}

/// Every delivery as (destination, status, attempts), by destination, through the store API.
async fn deliveries(gw: &TestGateway) -> Vec<(String, String, i64)> {
    let mut rows = Vec::new();
    for record in delivery_records(gw.gateway.store()).await {
        rows.push((
            record.destination,
            record.status.as_str().to_owned(),
            record.attempts,
        ));
    }
    rows.sort();
    rows
}

/// Every delivery of every event in `store`, with its attempts.
async fn delivery_records(store: &hookgate_store::Store) -> Vec<hookgate_store::DeliveryRecord> {
    let mut records = Vec::new();
    for (event, _) in store
        .replay_candidates(hookgate_store::ListFilter::default())
        .await
        .unwrap()
    {
        records.extend(store.deliveries(&event.summary.id).await.unwrap());
    }
    records
}

#[tokio::test]
async fn retries_until_success_and_honours_retry_after_and_gone() {
    let (url, state) = start_receiver().await;
    state.lock().unwrap().fail_first.insert("flaky".into(), 3);
    let reset_url = start_resetter(2, url.clone()).await;
    let config = format!(
        "{SOURCE}{}{}{}{}{}[[route]]\nto = [\"flaky\", \"busy\", \"gone\", \"reset\", \"ok\"]\n",
        destination("flaky", &format!("{url}/flaky"), ""),
        destination("busy", &format!("{url}/busy"), ""),
        destination("gone", &format!("{url}/gone"), ""),
        destination("reset", &format!("{reset_url}/reset"), ""),
        destination("ok", &format!("{url}/ok"), ""),
    );
    let gw = spawn(&config).await;
    let (status, _, _) = send_signed(
        &gw,
        "gh",
        "/gh",
        br#"{"n":1}"#,
        &[("X-GitHub-Delivery", "d-1"), ("X-GitHub-Event", "push")],
    )
    .await;
    assert_eq!(status, 200);
    let done = |names: &[&str]| {
        let s = state.lock().unwrap();
        names
            .iter()
            .all(|n| s.received.get(*n).is_some_and(|v| !v.is_empty()))
    };
    wait_for("deliveries", Duration::from_secs(15), async || {
        done(&["flaky", "busy", "reset", "ok"])
    })
    .await;
    wait_for(
        "every attempt recorded",
        Duration::from_secs(5),
        async || {
            let rows = deliveries(&gw).await;
            rows.len() == 5
                && rows
                    .iter()
                    .all(|(d, s, _)| s == if d == "gone" { "dead" } else { "delivered" })
        },
    )
    .await;
    {
        let s = state.lock().unwrap();
        assert_eq!(s.bad_signatures, 0);
        assert_eq!(s.hits["flaky"], 4, "three 500s, then success");
        assert_eq!(s.hits["gone"], 1, "410 is permanent: no retry");
        // The same webhook-id on every destination's attempts, stable per destination.
        let ids: Vec<&String> = ["flaky", "busy", "reset", "ok"]
            .iter()
            .map(|n| &s.received[*n][0].0)
            .collect();
        assert!(ids.iter().all(|id| id.starts_with("msg_")));
        assert_eq!(
            ids.iter().collect::<std::collections::HashSet<_>>().len(),
            4,
            "one webhook-id per destination"
        );
    }
    let rows = deliveries(&gw).await;
    let by_name: HashMap<&str, (&str, i64)> = rows
        .iter()
        .map(|(d, st, a)| (d.as_str(), (st.as_str(), *a)))
        .collect();
    assert_eq!(by_name["flaky"], ("delivered", 4));
    assert_eq!(by_name["busy"], ("delivered", 2));
    assert_eq!(by_name["gone"], ("dead", 1));
    assert_eq!(
        by_name["reset"],
        ("delivered", 3),
        "two connection resets, then success"
    );
    // 429 with Retry-After: 1 — the second attempt came at least a second after the first.
    let records = delivery_records(gw.gateway.store()).await;
    let history = |name: &str| {
        records
            .iter()
            .find(|r| r.destination == name)
            .unwrap()
            .history
            .clone()
    };
    let starts: Vec<i64> = history("busy").iter().map(|a| a.started_at_ms).collect();
    assert!(starts[1] - starts[0] >= 1000, "{starts:?}");
    assert_eq!(
        history("gone")[0].response.as_deref(),
        Some("no such endpoint")
    );
    gw.stop().await;
}

#[tokio::test]
async fn hand_overs_that_outwait_their_lease_are_delivered_from_the_queue_once_each() {
    // One delivery at a time, 400 ms each, 1.5 s timeout: a lease lasts 6.5 s, so of 40
    // events handed over faster than that, the later ones would start with too little lease
    // left, or after it expired. Those are left to the queue, which claims them once their
    // leases expire; the queue must not claim one that is still delivered from memory (it
    // would arrive twice).
    let (url, state) = start_receiver().await;
    let config = format!(
        "{SOURCE}{}[[route]]\nto = \"paced\"\n",
        destination(
            "paced",
            &format!("{url}/paced"),
            "timeout = \"1500ms\"\nconcurrency = 1"
        ),
    );
    let gw = spawn(&config).await;
    send_events(&gw, 40).await;
    wait_for(
        "every delivery recorded",
        Duration::from_secs(60),
        async || {
            let rows = deliveries(&gw).await;
            rows.len() == 40 && rows.iter().all(|(_, s, _)| s == "delivered")
        },
    )
    .await;
    {
        let s = state.lock().unwrap();
        let ids: Vec<&String> = s.received["paced"].iter().map(|(id, _, _)| id).collect();
        let distinct: std::collections::HashSet<_> = ids.iter().collect();
        assert_eq!(
            (ids.len(), distinct.len()),
            (40, 40),
            "every event delivered, none twice"
        );
        assert_eq!(s.bad_signatures, 0);
    }
    assert!(deliveries(&gw)
        .await
        .iter()
        .all(|(_, _, attempts)| *attempts == 1));
    gw.stop().await;
}

#[tokio::test]
async fn a_clean_stop_leaves_undelivered_events_due_not_leased() {
    // One 400 ms delivery at a time: most of 20 events are still handed over, leased and
    // waiting when the gateway stops.
    let (url, state) = start_receiver().await;
    let config = format!(
        "{SOURCE}{}[[route]]\nto = \"paced\"\n",
        destination(
            "paced",
            &format!("{url}/paced"),
            "timeout = \"1500ms\"\nconcurrency = 1"
        ),
    );
    let gw = spawn(&config).await;
    send_events(&gw, 20).await;
    let db = gw.db.clone();
    let _dir = gw.stop().await;
    let store = open_store(&db).await;
    let counts = store.delivery_counts().await.unwrap();
    let (pending, delivered) = (counts.pending, counts.delivered);
    assert_eq!(pending + delivered, 20);
    assert!(pending > 0, "the receiver is slower than the sender");
    let leased: i64 = store
        .destination_stats()
        .await
        .unwrap()
        .iter()
        .map(|s| s.leased)
        .sum();
    assert_eq!(
        leased, 0,
        "a clean stop keeps no lease: the next run delivers at once"
    );
    store.close().await;
    assert_eq!(
        state.lock().unwrap().received["paced"].len() as i64,
        delivered
    );
}

#[tokio::test]
async fn a_slow_destination_delays_neither_ingest_nor_others_and_max_attempts_ends_dead() {
    let (url, state) = start_receiver().await;
    let config = format!(
        "{SOURCE}{}{}[[route]]\nto = [\"slow\", \"ok\"]\n",
        destination(
            "slow",
            &format!("{url}/slow"),
            "timeout = \"300ms\"\nmax_attempts = 2\nconcurrency = 1"
        ),
        destination("ok", &format!("{url}/ok"), ""),
    );
    let gw = spawn(&config).await;
    // The slow destination needs 20 events × 2 attempts × 300 ms = 12 s, one at a time. By
    // order, not by the clock: ingest ends, and the fast destination has everything, while
    // the slow one has finished almost nothing.
    async fn slow_finished(gw: &TestGateway) -> usize {
        deliveries(gw)
            .await
            .iter()
            .filter(|(d, s, _)| d == "slow" && s != "pending")
            .count()
    }
    send_events(&gw, 20).await;
    assert!(
        slow_finished(&gw).await < 20,
        "ingest waited for the slow destination"
    );
    wait_for(
        "the fast destination",
        Duration::from_secs(20),
        async || {
            state
                .lock()
                .unwrap()
                .received
                .get("ok")
                .is_some_and(|v| v.len() == 20)
        },
    )
    .await;
    assert!(
        slow_finished(&gw).await < 20,
        "fast deliveries waited for the slow destination"
    );
    // The slow one times out twice per event and is dead after max_attempts = 2.
    wait_for(
        "a dead slow delivery",
        Duration::from_secs(10),
        async || {
            deliveries(&gw)
                .await
                .iter()
                .any(|(d, s, a)| d == "slow" && s == "dead" && *a == 2)
        },
    )
    .await;
    gw.stop().await;
}

#[tokio::test]
async fn command_and_file_destinations() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("command-out");
    let pids = dir.path().join("pids");
    std::fs::create_dir_all(&out).unwrap();
    let script = dir.path().join("handle.sh");
    std::fs::write(&script, format!("#!/bin/sh\ncat > \"{}/$HOOKGATE_WEBHOOK_ID.body\"\necho \"$1 $HOOKGATE_SOURCE $HOOKGATE_TOPIC $HOOKGATE_ATTEMPT\" > \"{}/$HOOKGATE_WEBHOOK_ID.meta\"\necho handled\n", out.display(), out.display())).unwrap();
    let hang = dir.path().join("hang.sh");
    std::fs::write(
        &hang,
        format!(
            "#!/bin/sh\nsleep 60 &\necho $! >> \"{}\"\nwait\n",
            pids.display()
        ),
    )
    .unwrap();
    for s in [&script, &hang] {
        std::process::Command::new("chmod")
            .arg("+x")
            .arg(s)
            .status()
            .unwrap();
    }
    let config = format!(
        "{SOURCE}\
         [[destination]]\nname = \"script\"\nkind = \"command\"\ncommand = [\"{}\", \"{{json:/ref}}\"]\nbackoff = [\"100ms\"]\n\
         [[destination]]\nname = \"hang\"\nkind = \"command\"\ncommand = [\"{}\"]\ntimeout = \"500ms\"\nmax_attempts = 2\nbackoff = [\"100ms\"]\n\
         [[destination]]\nname = \"audit\"\nkind = \"file\"\npath = \"{}\"\n\
         [[route]]\nto = [\"script\", \"hang\", \"audit\"]\n",
        script.display(),
        hang.display(),
        dir.path().join("audit/events.jsonl").display()
    );
    let gw = spawn(&config).await;
    let body = br#"{"ref":"refs/heads/main"}"#;
    let (status, headers, _) = send_signed(
        &gw,
        "gh",
        "/gh",
        body,
        &[("X-GitHub-Delivery", "d-1"), ("X-GitHub-Event", "push")],
    )
    .await;
    assert_eq!(status, 200);
    let event_id = headers["hookgate-event-id"].to_str().unwrap().to_owned();
    let webhook_id = hookgate_store::webhook_id(&event_id, "script");
    let meta = out.join(format!("{webhook_id}.meta"));
    wait_for("the script", Duration::from_secs(10), async || {
        meta.exists() && std::fs::read_to_string(&meta).is_ok_and(|m| m.ends_with('\n'))
    })
    .await;
    assert_eq!(
        std::fs::read(out.join(format!("{webhook_id}.body"))).unwrap(),
        body
    );
    assert_eq!(
        std::fs::read_to_string(&meta).unwrap(),
        "refs/heads/main gh push 1\n"
    );
    // The file destination: one fsynced JSON line, read back.
    let audit = dir.path().join("audit/events.jsonl");
    wait_for("the audit line", Duration::from_secs(5), async || {
        std::fs::read_to_string(&audit).is_ok_and(|t| t.ends_with('\n'))
    })
    .await;
    let line: serde_json::Value =
        serde_json::from_str(std::fs::read_to_string(&audit).unwrap().trim_end()).unwrap();
    assert_eq!(line["event_id"], event_id.as_str());
    assert_eq!(line["body"], std::str::from_utf8(body).unwrap());
    assert_eq!(line["topic"], "push");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(
            mode(&audit),
            0o600,
            "events are readable by the gateway's user alone"
        );
        assert_eq!(mode(&dir.path().join("audit")), 0o700);
    }
    // The hanging command is killed with its children at the timeout, twice, then dead.
    wait_for(
        "the hanging command to be dead",
        Duration::from_secs(10),
        async || {
            deliveries(&gw)
                .await
                .iter()
                .any(|(d, s, _)| d == "hang" && s == "dead")
        },
    )
    .await;
    let children: Vec<i32> = std::fs::read_to_string(&pids)
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    assert_eq!(children.len(), 2);
    for pid in children {
        let alive = std::path::Path::new(&format!("/proc/{pid}")).exists()
            && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .unwrap_or_default()
                .contains(") Z ");
        assert!(!alive, "child {pid} of the killed command survived");
    }
    let rows = deliveries(&gw).await;
    assert!(rows.contains(&("script".into(), "delivered".into(), 1)));
    assert!(rows.contains(&("audit".into(), "delivered".into(), 1)));
    gw.stop().await;
}

#[tokio::test]
async fn unrouted_events_are_stored_and_marked() {
    let (url, _state) = start_receiver().await;
    let config = format!(
        "{SOURCE}{}[[route]]\nsource = \"gh\"\ntopic = \"orders/*\"\nto = \"ok\"\n",
        destination("ok", &format!("{url}/ok"), "")
    );
    let gw = spawn(&config).await;
    let (status, _, _) = send_signed(
        &gw,
        "gh",
        "/gh",
        b"{}",
        &[("X-GitHub-Delivery", "d-1"), ("X-GitHub-Event", "push")],
    )
    .await;
    assert_eq!(status, 200);
    let events = gw
        .gateway
        .store()
        .list(hookgate_store::ListFilter::default())
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].status, hookgate_store::EventStatus::Unrouted);
    assert!(deliveries(&gw).await.is_empty());
    gw.stop().await;
}

#[tokio::test]
async fn a_nul_in_a_topic_does_not_make_a_command_delivery_impossible() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let config = format!(
        "[[source]]\nname = \"t\"\npath = \"/t\"\ntopic = \"json:/type\"\n[source.verify]\nkind = \"token\"\nheader = \"X-Token\"\nsecret = \"token-value\"\n\
         [[destination]]\nname = \"cmd\"\nkind = \"command\"\ncommand = [\"/bin/sh\", \"-c\", \"printf '%s|%s' \\\"$HOOKGATE_TOPIC\\\" \\\"$1\\\" > {}\", \"sh\", \"{{json:/type}}\"]\nmax_attempts = 1\n\
         [[route]]\nto = [\"cmd\"]\n",
        out.display()
    );
    let gw = spawn(&config).await;
    let (status, _, _) = crate::support::post(
        &gw.url("/t"),
        r#"{"type":"a\u0000b"}"#,
        &[("X-Token", "token-value")],
    )
    .await;
    assert_eq!(status, 200);
    wait_for(
        "the command's output",
        Duration::from_secs(10),
        async || out.exists(),
    )
    .await;
    wait_for(
        "the delivery recorded",
        Duration::from_secs(10),
        async || deliveries(&gw).await.iter().any(|(_, s, _)| s != "pending"),
    )
    .await;
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        "a\u{fffd}b|a\u{fffd}b"
    );
    assert_eq!(
        deliveries(&gw).await,
        [("cmd".to_owned(), "delivered".to_owned(), 1)]
    );
    gw.stop().await;
}

#[tokio::test]
async fn request_data_after_double_dash_is_never_an_option() {
    // `ls -d -- {json:/name}`: with `--`, a value such as `--version` is a file name to ls,
    // not an option; its complaint (the stderr tail in the attempt) says so.
    let config = "[[source]]\nname = \"t\"\npath = \"/t\"\n[source.verify]\nkind = \"token\"\nheader = \"X-Token\"\nsecret = \"token-value\"\n\
         [[destination]]\nname = \"cmd\"\nkind = \"command\"\ncommand = [\"/bin/ls\", \"-d\", \"--\", \"{json:/name}\"]\nmax_attempts = 1\n\
         [[route]]\nto = [\"cmd\"]\n";
    let gw = spawn(config).await;
    let (status, _, _) = crate::support::post(
        &gw.url("/t"),
        r#"{"name":"--version"}"#,
        &[("X-Token", "token-value")],
    )
    .await;
    assert_eq!(status, 200);
    wait_for("the attempt", Duration::from_secs(10), async || {
        deliveries(&gw).await.iter().any(|(_, s, _)| s == "dead")
    })
    .await;
    let records = delivery_records(gw.gateway.store()).await;
    let error = records[0].history[0].error.clone().unwrap();
    assert!(
        error.contains("'--version'") && error.contains("No such file"),
        "{error}"
    );
    gw.stop().await;
}
