//! Bad input: the right status, no panic, nothing stored, and the server keeps serving.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::*;

const CONFIG: &str = r#"
[server]
max_body = "4KiB"
read_timeout = "1s"
max_header_bytes = "8KiB"

[[source]]
name = "gh"
path = "/gh"
preset = "github"
secret = "s"

[[source]]
name = "custom"
path = "/custom"
id = "json:/id"
[source.verify]
kind = "hmac"
header = "X-Sig"
secret = "s"

[[source]]
name = "trivialsec"
path = "/trivialsec"
preset = "trivialsec"
secret = "s"
account = "a"
subject = "b"
"#;

/// Writes raw bytes, then reads whatever the server answers until it closes (or 3 s pass).
async fn raw(gw: &TestGateway, bytes: &[u8], half_close: bool) -> String {
    let mut stream = TcpStream::connect(gw.addr).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    if half_close {
        stream.shutdown().await.unwrap();
    }
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(3), stream.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

async fn still_serving(gw: &TestGateway) {
    let (status, _, _) = send_signed(
        gw,
        "gh",
        "/gh",
        b"{}",
        &[("X-GitHub-Delivery", &format!("alive-{}", unique_number()))],
    )
    .await;
    assert_eq!(status, 200, "the server must keep serving");
}

/// A number no earlier call in this test binary returned.
fn unique_number() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

#[tokio::test]
async fn oversized_bodies_are_413_whether_declared_or_streamed() {
    let gw = spawn(CONFIG).await;
    let big = vec![b'a'; 5000];
    let (status, _, text) = send_signed(&gw, "gh", "/gh", &big, &[]).await;
    assert_eq!(
        (status, text.as_str()),
        (413, r#"{"error":"payload too large"}"#)
    );
    // Chunked, no Content-Length: the limit is enforced while reading.
    let chunked = format!(
        "POST /gh HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1388\r\n{}\r\n0\r\n\r\n",
        "a".repeat(5000)
    );
    let answer = raw(&gw, chunked.as_bytes(), false).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(gw.stored().await.is_empty());
    still_serving(&gw).await;
    gw.stop().await;
}

#[tokio::test]
async fn truncated_body_is_refused_and_not_stored() {
    let gw = spawn(CONFIG).await;
    let answer = raw(&gw, b"POST /gh HTTP/1.1\r\nHost: x\r\nX-Hub-Signature-256: sha256=00\r\nContent-Length: 100\r\n\r\n{\"partial\":", true).await;
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 400"),
        "{answer}"
    );
    assert!(gw.stored().await.is_empty());
    still_serving(&gw).await;
    gw.stop().await;
}

#[tokio::test]
async fn invalid_utf8_and_malformed_json() {
    let gw = spawn(CONFIG).await;
    // Raw bytes are verified as bytes: a correctly signed non-UTF-8 body is stored intact.
    let bytes = [0xff, 0xfe, 0x00, 0xc3, 0x28];
    let (status, _, _) =
        send_signed(&gw, "gh", "/gh", &bytes, &[("X-GitHub-Delivery", "binary")]).await;
    assert_eq!(status, 200);
    assert_eq!(gw.stored().await[0].2, bytes);
    // A source that reads its event id from JSON: malformed JSON is a 400.
    let (status, _, text) = send_signed(&gw, "custom", "/custom", b"{\"id\": ", &[]).await;
    assert_eq!(
        (status, text.as_str()),
        (400, r#"{"error":"malformed body"}"#)
    );
    let (status, _, _) = send_signed(&gw, "custom", "/custom", &bytes, &[]).await;
    assert_eq!(status, 400);
    // The Trivial Security model: malformed JSON with a valid token is a 422.
    let src = gw.gateway.config().sources[2].source.clone();
    let mut valid = hookgate_verify::Request::post("/trivialsec", br#"{"event_id":"x"}"#);
    src.sign(
        &mut valid,
        time::OffsetDateTime::now_utc(),
        &Default::default(),
    )
    .unwrap();
    let auth = valid.headers.get("authorization").unwrap().to_owned();
    let (status, _, _) = post(
        &gw.url("/trivialsec"),
        b"{not json".to_vec(),
        &[("Authorization", &auth)],
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(gw.stored().await.len(), 1);
    still_serving(&gw).await;
    gw.stop().await;
}

#[tokio::test]
async fn huge_headers_are_431() {
    let gw = spawn(CONFIG).await;
    let request = format!(
        "POST /gh HTTP/1.1\r\nHost: x\r\nX-Padding: {}\r\nContent-Length: 2\r\n\r\n{{}}",
        "p".repeat(20_000)
    );
    let answer = raw(&gw, request.as_bytes(), false).await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    let many: String = (0..150).map(|i| format!("X-H{i}: v\r\n")).collect();
    let answer = raw(
        &gw,
        format!("POST /gh HTTP/1.1\r\nHost: x\r\n{many}Content-Length: 2\r\n\r\n{{}}").as_bytes(),
        false,
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    assert!(gw.stored().await.is_empty());
    still_serving(&gw).await;
    gw.stop().await;
}

#[tokio::test]
async fn slow_clients_cannot_hold_the_server() {
    let gw = spawn(CONFIG).await;
    // Slow head: the connection is closed after read_timeout (1 s).
    let started = std::time::Instant::now();
    let mut slow_head = TcpStream::connect(gw.addr).await.unwrap();
    slow_head
        .write_all(b"POST /gh HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut out = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), slow_head.read_to_end(&mut out)).await;
    assert!(
        read.is_ok(),
        "the server must close a connection whose head never completes"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    // Slow body: 408 after read_timeout.
    let mut slow_body = TcpStream::connect(gw.addr).await.unwrap();
    slow_body.write_all(b"POST /gh HTTP/1.1\r\nHost: x\r\nX-Hub-Signature-256: sha256=00\r\nContent-Length: 50\r\n\r\n{").await.unwrap();
    let mut out = String::new();
    tokio::time::timeout(Duration::from_secs(5), slow_body.read_to_string(&mut out))
        .await
        .unwrap()
        .unwrap();
    assert!(out.starts_with("HTTP/1.1 408"), "{out}");
    // Meanwhile other clients were served.
    still_serving(&gw).await;
    assert_eq!(gw.stored().await.len(), 1);
    gw.stop().await;
}

#[tokio::test]
async fn wrong_method_and_unknown_path() {
    let gw = spawn(CONFIG).await;
    let response = client().get(gw.url("/gh")).send().await.unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["allow"], "POST");
    let response = client().put(gw.url("/gh")).body("{}").send().await.unwrap();
    assert_eq!(response.status(), 405);
    let response = client()
        .post(gw.url("/nowhere"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(
        (
            response.status().as_u16(),
            response.text().await.unwrap().as_str()
        ),
        (404, r#"{"error":"not found"}"#)
    );
    let answer = raw(&gw, b"NOT HTTP AT ALL\r\n\r\n", false).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(gw.stored().await.is_empty());
    still_serving(&gw).await;
    gw.stop().await;
}

#[tokio::test]
async fn an_http_1_1_request_without_host_is_400() {
    let gw = spawn(CONFIG).await;
    let answer = raw(
        &gw,
        b"POST /gh HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}",
        false,
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(
        answer.ends_with(r#"{"error":"missing Host header"}"#),
        "{answer}"
    );
    let answer = raw(&gw, b"GET /health HTTP/1.1\r\n\r\n", false).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    // HTTP/1.0 has no Host requirement.
    let answer = raw(&gw, b"GET /health HTTP/1.0\r\n\r\n", false).await;
    assert!(
        answer.starts_with("HTTP/1.0 200") || answer.starts_with("HTTP/1.1 200"),
        "{answer}"
    );
    assert!(gw.stored().await.is_empty());
    still_serving(&gw).await;
    gw.stop().await;
}

async fn connect_from(local: &str, gw: &TestGateway) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{local}:0").parse().unwrap()).unwrap();
    socket.connect(gw.addr).await.unwrap()
}

/// Sends `GET /health` on `stream`; the status line, or "" when the server closed it.
async fn health_on(stream: &mut TcpStream) -> String {
    let _ = stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    let mut buf = vec![0u8; 1024];
    let n = tokio::time::timeout(Duration::from_secs(3), stream.read(&mut buf))
        .await
        .expect("an answer or a close")
        .unwrap_or(0);
    String::from_utf8_lossy(&buf[..n])
        .lines()
        .next()
        .unwrap_or("")
        .to_owned()
}

#[tokio::test]
async fn one_address_cannot_hold_every_connection() {
    let gw = spawn(
        &format!("[server]\nmax_connections_per_peer = 2\nhead_timeout = \"30s\"\n{CONFIG}")
            .replace("[server]\nmax_body", "max_body"),
    )
    .await;
    let mut first = connect_from("127.0.0.1", &gw).await;
    let mut second = connect_from("127.0.0.1", &gw).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut third = connect_from("127.0.0.1", &gw).await;
    assert_eq!(
        health_on(&mut third).await,
        "",
        "the third connection is closed at once"
    );
    // Another address is served meanwhile, and so are the two held connections.
    let mut other = connect_from("127.0.0.2", &gw).await;
    assert_eq!(health_on(&mut other).await, "HTTP/1.1 200 OK");
    assert_eq!(health_on(&mut first).await, "HTTP/1.1 200 OK");
    // Once one is closed, the address may connect again.
    drop(second.shutdown().await);
    drop(second);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut again = connect_from("127.0.0.1", &gw).await;
    assert_eq!(health_on(&mut again).await, "HTTP/1.1 200 OK");
    gw.stop().await;
}

#[tokio::test]
async fn bodies_held_in_memory_are_bounded_in_total() {
    let gw = spawn(
        "[server]\nmax_body = \"64KiB\"\nmax_buffered_bodies = \"128KiB\"\nread_timeout = \"20s\"\n\
         [[source]]\nname = \"gh\"\npath = \"/gh\"\npreset = \"github\"\nsecret = \"s\"\n",
    )
    .await;
    // Two clients each hold an almost complete 64 KiB body: the whole budget.
    let head = format!(
        "POST /gh HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
        64 * 1024
    );
    let mut holders = Vec::new();
    for _ in 0..2 {
        let mut stream = TcpStream::connect(gw.addr).await.unwrap();
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(&vec![b'x'; 64 * 1024 - 1]).await.unwrap();
        holders.push(stream);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // A third body finds no room: 503 with Retry-After, after a short wait, not a hang.
    let (status, headers, _) = post(&gw.url("/gh"), vec![b'y'; 10 * 1024], &[]).await;
    assert_eq!(status, 503);
    assert_eq!(headers["retry-after"], "1");
    // One holder finishes: its request is answered (unsigned: 401) and its room is freed.
    let mut done = holders.pop().unwrap();
    done.write_all(b"x").await.unwrap();
    let mut answer = vec![0u8; 512];
    let n = done.read(&mut answer).await.unwrap();
    assert!(String::from_utf8_lossy(&answer[..n]).starts_with("HTTP/1.1 401"));
    let (status, _, _) = post(&gw.url("/gh"), vec![b'y'; 10 * 1024], &[]).await;
    assert_eq!(status, 401, "room again once a body was released");
    let counts = gw.gateway.metrics().sources()[0].counts();
    assert_eq!(
        counts.iter().find(|(o, _)| *o == "overloaded").unwrap().1,
        1
    );
    assert!(gw.stored().await.is_empty());
    drop(holders);
    gw.stop().await;
}
