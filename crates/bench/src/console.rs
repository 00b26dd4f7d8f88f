//! The console's scale: the admin API requests each console page makes, timed on a store
//! of 10,000 events (the baseline) and again once it holds `--events` (default 1,000,000).
//!
//! The gateway runs with a destination that takes everything (`fast`) and one that is
//! unreachable with one attempt (`gone`, 1 % of events: they die), plus refused requests,
//! so every status and the refusals page have data. Each request is sent `ROUNDS` times
//! after a warm-up, one at a time on a keep-alive connection, timed at the client on
//! loopback (an upper bound on the server's time); a page's time is the sum of its
//! requests' medians (the console sends some of them at once).

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use tokio::io::AsyncWriteExt;

use crate::{fast_receiver, read_response, signed_request, start, Received};

const TOKEN: &str = "bench-admin-token-0123456789";
const ROUNDS: usize = 15;
const BASELINE_EVENTS: usize = 10_000;

fn signed(i: usize, body_size: usize) -> Vec<u8> {
    let topic = if i % 100 == 37 {
        "order.failed"
    } else {
        "push"
    };
    signed_request(&format!("console-{i}"), topic, body_size)
}

/// Sends events `from..to` over `connections` keep-alive connections, signing as it goes.
async fn fill(addr: &str, from: usize, to: usize, body: usize) -> anyhow::Result<()> {
    let next = Arc::new(AtomicUsize::new(from));
    let mut tasks = Vec::new();
    for _ in 0..64 {
        let (next, addr) = (next.clone(), addr.to_owned());
        tasks.push(tokio::spawn(async move {
            let mut stream = tokio::net::TcpStream::connect(&addr).await?;
            stream.set_nodelay(true)?;
            let mut buffer = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= to {
                    return anyhow::Ok(());
                }
                stream.write_all(&signed(i, body)).await?;
                let status = read_response(&mut stream, &mut buffer).await?;
                if status != 200 {
                    bail!("event {i} answered {status}");
                }
            }
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(())
}

/// Sends `count` requests with a wrong signature (refusals).
async fn refuse(addr: &str, count: usize) -> anyhow::Result<()> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let mut buffer = Vec::new();
    for i in 0..count {
        let body = format!(r#"{{"delivery":"forged-{i}"}}"#);
        let request = format!(
            "POST /gh HTTP/1.1\r\nHost: bench\r\nX-GitHub-Event: push\r\nX-GitHub-Delivery: forged-{i}\r\n\
             X-Hub-Signature-256: sha256=00\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await?;
        read_response(&mut stream, &mut buffer).await?;
    }
    Ok(())
}

/// One admin API `GET`; its body.
async fn get(
    stream: &mut tokio::net::TcpStream,
    buffer: &mut Vec<u8>,
    path: &str,
) -> anyhow::Result<serde_json::Value> {
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {TOKEN}\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let status = read_response(stream, buffer).await?;
    let start = buffer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("no head")?
        + 4;
    let body: serde_json::Value = serde_json::from_slice(&buffer[start..])?;
    if status != 200 {
        bail!("GET {path}: {status} {body}");
    }
    Ok(body)
}

/// Waits until every delivery is settled (none pending).
async fn drained(
    stream: &mut tokio::net::TcpStream,
    buffer: &mut Vec<u8>,
    expected: usize,
    received: &Received,
) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        let list = get(stream, buffer, "/api/v1/destinations").await?;
        let pending: i64 = list["items"]
            .as_array()
            .context("items")?
            .iter()
            .map(|d| d["pending"].as_i64().unwrap_or(0))
            .sum();
        if pending == 0 && received.load(Ordering::Relaxed) >= expected {
            return Ok(());
        }
        if started.elapsed() > Duration::from_secs(900) {
            bail!("deliveries did not settle in 15 minutes ({pending} pending)");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The pages and the requests each makes, for a store of `count` events.
async fn pages(
    stream: &mut tokio::net::TcpStream,
    buffer: &mut Vec<u8>,
    count: usize,
) -> anyhow::Result<Vec<(&'static str, Vec<String>)>> {
    let middle = get(
        stream,
        buffer,
        &format!("/api/v1/events?provider_id=console-{}", count / 2),
    )
    .await?;
    let id = middle["items"][0]["id"]
        .as_str()
        .context("the middle event")?
        .to_owned();
    let at = middle["items"][0]["received_at_ms"]
        .as_i64()
        .context("its time")?
        / 1000;
    let events = "/api/v1/events?limit=50".to_owned();
    let arrivals = "/api/v1/stats/arrivals?seconds=60".to_owned();
    let sources = "/api/v1/sources".to_owned();
    let with = |filter: &str| {
        vec![
            format!("{events}&{filter}"),
            arrivals.clone(),
            sources.clone(),
        ]
    };
    Ok(vec![
        ("events", with("")[..].to_vec()),
        ("events, an older page", with(&format!("cursor={id}"))),
        ("events, status dead (1 %)", with("status=dead")),
        ("events, status pending (none)", with("status=pending")),
        ("events, status delivered", with("status=delivered")),
        ("events, topic order.* (1 %)", with("topic=order.*")),
        (
            "events, a provider id",
            with(&format!("provider_id=console-{}", count / 3)),
        ),
        (
            "events, a 2 s window",
            with(&format!("since={}&until={}", at - 1, at + 1)),
        ),
        ("event detail", vec![format!("/api/v1/events/{id}")]),
        (
            "refused requests",
            vec!["/api/v1/refusals?limit=100".into(), sources.clone()],
        ),
        ("destinations", vec!["/api/v1/destinations".into()]),
        ("sources", vec![sources.clone()]),
    ])
}

/// Median and worst of `ROUNDS` timings of each request of each page, in ms.
async fn measure(addr: &str, count: usize) -> anyhow::Result<Vec<(&'static str, f64, f64)>> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let mut buffer = Vec::new();
    let mut results = Vec::new();
    for (page, requests) in pages(&mut stream, &mut buffer, count).await? {
        let (mut median, mut worst) = (0.0, 0.0);
        for path in &requests {
            for _ in 0..2 {
                get(&mut stream, &mut buffer, path).await?;
            }
            let mut times = Vec::with_capacity(ROUNDS);
            for _ in 0..ROUNDS {
                let started = Instant::now();
                get(&mut stream, &mut buffer, path).await?;
                times.push(started.elapsed().as_secs_f64() * 1000.0);
            }
            times.sort_by(f64::total_cmp);
            median += times[ROUNDS / 2];
            worst += times[ROUNDS - 1];
        }
        results.push((page, median, worst));
    }
    Ok(results)
}

pub(crate) async fn console(binary: &Path, events: usize, body: usize) -> anyhow::Result<()> {
    if events <= BASELINE_EVENTS {
        bail!("--events must be above {BASELINE_EVENTS} (the baseline)");
    }
    let dir = tempfile::tempdir()?;
    let (receiver, received) = fast_receiver().await?;
    let server = start(
        binary,
        dir.path(),
        "sqlite://./data/hookgate.db",
        &format!(
            "[admin]\ntoken = \"{TOKEN}\"\n\
             [[destination]]\nname = \"fast\"\nkind = \"http\"\nurl = \"{receiver}\"\nsecret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\nconcurrency = 256\n\
             [[destination]]\nname = \"gone\"\nkind = \"http\"\nurl = \"http://127.0.0.1:9/\"\nsecret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\nmax_attempts = 1\n\
             [[route]]\ntopic = \"push\"\nto = \"fast\"\n\
             [[route]]\ntopic = \"order.*\"\nto = \"gone\"\n"
        ),
    )?;
    let mut buffer = Vec::new();
    println!("console scale: the admin API requests of each console page, {ROUNDS} rounds each, SQLite store, 2 CPU(s)");
    let mut baseline = Vec::new();
    for (count, from) in [(BASELINE_EVENTS, 0), (events, BASELINE_EVENTS)] {
        let started = Instant::now();
        fill(&server.addr, from, count, body).await?;
        refuse(&server.addr, 200).await?;
        let filled = started.elapsed();
        let routed_fast = count - count.div_ceil(100);
        // A connection of its own: an idle one is closed while the store fills.
        let mut admin = tokio::net::TcpStream::connect(&server.addr).await?;
        drained(&mut admin, &mut buffer, routed_fast, &received).await?;
        println!(
            "\n{count} events stored ({:.0} events/s while filling; deliveries settled after {:.0} s)",
            (count - from) as f64 / filled.as_secs_f64(),
            started.elapsed().as_secs_f64()
        );
        println!(
            "{:<32} {:>10} {:>10} {:>14}",
            "page", "median ms", "worst ms", "vs 10k events"
        );
        let results = measure(&server.addr, count).await?;
        for (page, median, worst) in &results {
            let ratio = baseline
                .iter()
                .find(|(p, _, _)| p == page)
                .map_or(String::from("baseline"), |(_, b, _)| {
                    format!("{:.2}x", median / b)
                });
            println!("{page:<32} {median:>10.2} {worst:>10.2} {ratio:>14}");
        }
        if baseline.is_empty() {
            baseline = results;
        }
    }
    let size = std::fs::metadata(dir.path().join("data/hookgate.db"))?.len();
    println!("\nstore file: {:.0} MiB", size as f64 / (1024.0 * 1024.0));
    drop(server);
    Ok(())
}
