//! Storing and answering: dedupe, a full store answered 503 with Retry-After (never a 2xx
//! that was not stored), readiness, graceful shutdown.

use hookgate_store::StoreOptions;

use crate::support::*;

const GITHUB: &str =
    "[[source]]\nname = \"gh\"\npath = \"/gh\"\npreset = \"github\"\nsecret = \"s\"";

#[tokio::test]
async fn duplicates_get_the_original_answer_and_are_not_stored_again() {
    let gw = spawn(GITHUB).await;
    let (s1, h1, _) = send_signed(
        &gw,
        "gh",
        "/gh",
        b"{\"a\":1}",
        &[("X-GitHub-Delivery", "d-1"), ("X-GitHub-Event", "push")],
    )
    .await;
    let (s2, h2, t2) = send_signed(
        &gw,
        "gh",
        "/gh",
        b"{\"a\":1}",
        &[("X-GitHub-Delivery", "d-1"), ("X-GitHub-Event", "push")],
    )
    .await;
    assert_eq!((s1, s2, t2.as_str()), (200, 200, r#"{"status":"ok"}"#));
    assert!(h1.get("hookgate-duplicate").is_none());
    assert_eq!(h2["hookgate-duplicate"], "true");
    assert_eq!(h1["hookgate-event-id"], h2["hookgate-event-id"]);
    let (s3, h3, _) = send_signed(
        &gw,
        "gh",
        "/gh",
        b"{\"a\":1}",
        &[("X-GitHub-Delivery", "d-2")],
    )
    .await;
    assert_eq!(s3, 200);
    assert_ne!(h3["hookgate-event-id"], h1["hookgate-event-id"]);
    assert_eq!(gw.stored().await.len(), 2);
    gw.stop().await;
}

#[tokio::test]
async fn a_store_that_cannot_commit_answers_503_with_retry_after() {
    let gw = spawn_with(
        GITHUB,
        StoreOptions {
            max_size: Some(96 * 1024),
            ..Default::default()
        },
    )
    .await;
    let big = vec![b'x'; 8 * 1024];
    let mut ok = 0;
    let mut unavailable = 0;
    for i in 0..40 {
        let (status, headers, text) = send_signed(
            &gw,
            "gh",
            "/gh",
            &big,
            &[("X-GitHub-Delivery", &format!("d-{i}"))],
        )
        .await;
        match status {
            200 => ok += 1,
            503 => {
                assert_eq!(headers["retry-after"], "1");
                assert_eq!(text, r#"{"error":"temporarily unavailable"}"#);
                unavailable += 1;
            }
            other => panic!("unexpected {other}: {text}"),
        }
    }
    assert!(
        ok > 0 && unavailable > 0,
        "{ok} ok, {unavailable} unavailable"
    );
    assert_eq!(
        gw.stored().await.len(),
        ok,
        "every 200 is stored, no 503 is"
    );
    let health = client().get(gw.url("/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    gw.stop().await;
}

#[tokio::test]
async fn health_and_ready() {
    let gw = spawn(GITHUB).await;
    let health = client().get(gw.url("/health")).send().await.unwrap();
    assert_eq!(
        (
            health.status().as_u16(),
            health.text().await.unwrap().as_str()
        ),
        (200, r#"{"status":"ok"}"#)
    );
    let ready = client().get(gw.url("/ready")).send().await.unwrap();
    assert_eq!(
        (
            ready.status().as_u16(),
            ready.text().await.unwrap().as_str()
        ),
        (200, r#"{"status":"ready"}"#)
    );
    gw.gateway.store().close().await;
    let ready = client().get(gw.url("/ready")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    let (status, headers, _) = send_signed(
        &gw,
        "gh",
        "/gh",
        b"{}",
        &[("X-GitHub-Delivery", "after-close")],
    )
    .await;
    assert_eq!(
        (status, headers["retry-after"].to_str().unwrap()),
        (503, "1")
    );
    gw.stop().await;
}

#[tokio::test]
async fn shutdown_lets_in_flight_requests_finish() {
    let gw = spawn(&format!("[server]\nread_timeout = \"5s\"\n{GITHUB}")).await;
    // A request whose body is still arriving when shutdown begins completes and is stored.
    let src = gw.gateway.config().sources[0].source.clone();
    let mut request = hookgate_verify::Request::post("/gh", b"{\"slow\":true}");
    request.headers.append("X-GitHub-Delivery", "in-flight");
    src.sign(
        &mut request,
        time::OffsetDateTime::now_utc(),
        &Default::default(),
    )
    .unwrap();
    let signature = request
        .headers
        .get("x-hub-signature-256")
        .unwrap()
        .to_owned();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    let head = format!(
        "POST /gh HTTP/1.1\r\nHost: x\r\nX-GitHub-Delivery: in-flight\r\nX-Hub-Signature-256: {signature}\r\nContent-Length: 13\r\n\r\n{{\"slow\""
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let db = gw.db.clone();
    let stopping = tokio::spawn(gw.stop());
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    stream.write_all(b":true}").await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let _dir = stopping.await.unwrap();
    let store = open_store(&db).await;
    event_by_provider_id(&store, "in-flight").await;
    store.close().await;
}
