//! The `brokers` scenario: ingest and delivery end to end into each broker destination
//! (NATS JetStream, Redis Streams, RabbitMQ, MQTT), each run beside the HTTP destination
//! (to the harness's fast receiver) in the same invocation, as the baseline.
//!
//! Each run starts the real gateway on a fresh SQLite store with one destination, drives
//! the closed loop for the measured time, and waits until the store counts every
//! acknowledged event delivered (the sinks count a delivery only on the broker's
//! acknowledgement). End to end is acknowledged events over the time from the start to the
//! last delivery. The broker is then asked how many messages it holds (stream length,
//! queue depth), which must be at least the events acknowledged; the names each run uses
//! are its own and removed afterwards.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::{drive, peak_rss_mib, presign, read_response, start};

const ADMIN_TOKEN: &str = "bench-admin-token-0123456789";

const NATS: &str = "127.0.0.1:4222";
const REDIS: &str = "127.0.0.1:6379";
const AMQP: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
const MQTT: &str = "127.0.0.1:1883";

/// One measured run.
struct Outcome {
    end_to_end: f64,
    acked: f64,
    p99_ms: f64,
    rss_mib: f64,
    at_broker: String,
}

/// Deliveries the store counts delivered (each acknowledged by its broker).
pub fn delivered(dir: &Path) -> anyhow::Result<i64> {
    let conn = rusqlite::Connection::open_with_flags(
        dir.join("data/hookgate.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )?;
    Ok(conn.query_row(
        "SELECT count(*) FROM deliveries WHERE status = 'delivered'",
        [],
        |r| r.get(0),
    )?)
}

/// Runs the closed loop against a gateway whose destination is `destination` (its
/// `kind` and own keys) and waits until every acknowledged event is delivered.
async fn run(
    binary: &Path,
    destination: &str,
    concurrency: usize,
    connections: usize,
    measured: Duration,
    body: usize,
    run_name: &str,
) -> anyhow::Result<(Outcome, usize)> {
    let dir = tempfile::tempdir()?;
    let extra = format!(
        "[[destination]]\nname = \"bus\"\nconcurrency = {concurrency}\n{destination}\n[[route]]\nto = \"bus\"\n"
    );
    let server = start(binary, dir.path(), "sqlite://./data/hookgate.db", &extra)?;
    let warmup = Duration::from_secs(1);
    let events = ((measured + warmup).as_secs_f64() * 40_000.0) as usize + 10_000;
    let requests = Arc::new(presign(events, body, run_name));
    let started = Instant::now();
    let result = drive(&server.addr, requests, connections, warmup, measured).await?;
    let total = result.acked_total as i64;
    let mut last_change = Instant::now();
    let mut seen = -1;
    loop {
        let now = delivered(dir.path())?;
        if now >= total {
            break;
        }
        if now != seen {
            (seen, last_change) = (now, Instant::now());
        } else if last_change.elapsed() > Duration::from_secs(30) {
            bail!("{run_name}: deliveries stalled at {now} of {total} (is the broker up?)");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let end_to_end = result.acked_total as f64 / started.elapsed().as_secs_f64();
    let outcome = Outcome {
        end_to_end,
        acked: result.acked as f64 / result.elapsed.as_secs_f64(),
        p99_ms: result.p99_ms,
        rss_mib: peak_rss_mib(server.child.id()),
        at_broker: String::new(),
    };
    drop(server);
    Ok((outcome, result.acked_total))
}

/// Delivery alone: events are stored while the destination is paused (through the admin
/// API), then it is resumed and the backlog's drain is timed. Returns deliveries/s.
async fn drain(
    binary: &Path,
    destination: &str,
    concurrency: usize,
    connections: usize,
    measured: Duration,
    body: usize,
    run_name: &str,
) -> anyhow::Result<(f64, usize)> {
    let dir = tempfile::tempdir()?;
    let extra = format!(
        "[admin]\ntoken = \"{ADMIN_TOKEN}\"\n[[destination]]\nname = \"bus\"\nconcurrency = {concurrency}\n{destination}\n[[route]]\nto = \"bus\"\n"
    );
    let server = start(binary, dir.path(), "sqlite://./data/hookgate.db", &extra)?;
    admin(&server.addr, "pause").await?;
    let events = ((measured + Duration::from_secs(1)).as_secs_f64() * 40_000.0) as usize + 10_000;
    let requests = Arc::new(presign(events, body, run_name));
    let result = drive(
        &server.addr,
        requests,
        connections,
        Duration::from_secs(1),
        measured,
    )
    .await?;
    let total = result.acked_total as i64;
    let started = Instant::now();
    admin(&server.addr, "resume").await?;
    loop {
        if delivered(dir.path())? >= total {
            break;
        }
        if started.elapsed() > Duration::from_secs(300) {
            bail!("{run_name}: the backlog did not drain in 5 minutes");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok((
        total as f64 / started.elapsed().as_secs_f64(),
        result.acked_total,
    ))
}

/// `POST /api/v1/destinations/bus/{action}` with the operator token.
async fn admin(addr: &str, action: &str) -> anyhow::Result<()> {
    use tokio::io::AsyncWriteExt as _;
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream
        .write_all(
            format!("POST /api/v1/destinations/bus/{action} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\nContent-Length: 0\r\n\r\n")
                .as_bytes(),
        )
        .await?;
    let status = read_response(&mut stream, &mut Vec::new()).await?;
    if !(200..300).contains(&status) {
        bail!("{action}: HTTP {status}");
    }
    Ok(())
}

/// Whether something listens on `addr`.
fn listening(addr: &str) -> bool {
    addr.parse()
        .ok()
        .and_then(|a| std::net::TcpStream::connect_timeout(&a, Duration::from_secs(1)).ok())
        .is_some()
}

/// The `brokers` scenario: the HTTP baseline, then each broker that is running.
pub async fn brokers(
    binary: &Path,
    receiver: &str,
    connections: usize,
    concurrency: &[usize],
    measured: Duration,
    body: usize,
) -> anyhow::Result<()> {
    println!("ingest + delivery end to end, {body} B bodies, {connections} connections, {measured:?} measured after 1 s warm-up, 2 CPU(s); SQLite store");
    println!(
        "{:<8} {:>11} {:>12} {:>12} {:>10} {:>9} {:>8}  at the broker",
        "sink", "concurrency", "end to end/s", "acked/s", "ack p99", "RSS MiB", "vs http"
    );
    let nonce = format!(
        "{:x}",
        std::process::id() ^ (Instant::now().elapsed().as_nanos() as u32)
    );
    for &concurrency in concurrency {
        let mut baseline = None;
        for kind in ["http", "nats", "redis", "amqp", "mqtt"] {
            let run_name = format!("{kind}{concurrency}x{nonce}");
            let (destination, reachable) = destination(kind, &run_name, receiver);
            if !reachable {
                eprintln!("{kind}: not running here, not measured");
                continue;
            }
            prepare(kind, &run_name).await?;
            let (mut outcome, acked) = run(
                binary,
                &destination,
                concurrency,
                connections,
                measured,
                body,
                &run_name,
            )
            .await
            .with_context(|| format!("{kind} at concurrency {concurrency}"))?;
            outcome.at_broker = count_and_remove(kind, &run_name, acked).await?;
            let ratio = match baseline {
                None => {
                    baseline = Some(outcome.end_to_end);
                    "1.00".to_owned()
                }
                Some(http) => format!("{:.2}", outcome.end_to_end / http),
            };
            println!(
                "{:<8} {:>11} {:>12.0} {:>12.0} {:>7.2} ms {:>9.1} {:>8}  {}",
                kind,
                concurrency,
                outcome.end_to_end,
                outcome.acked,
                outcome.p99_ms,
                outcome.rss_mib,
                ratio,
                outcome.at_broker
            );
        }
    }
    println!(
        "delivery alone: a backlog stored while the destination is paused, drained after resume"
    );
    println!(
        "{:<8} {:>11} {:>12} {:>8}  at the broker",
        "sink", "concurrency", "delivered/s", "vs http"
    );
    for &concurrency in concurrency {
        let mut baseline = None;
        for kind in ["http", "nats", "redis", "amqp", "mqtt"] {
            let run_name = format!("drain{kind}{concurrency}x{nonce}");
            let (destination, reachable) = destination(kind, &run_name, receiver);
            if !reachable {
                continue;
            }
            prepare(kind, &run_name).await?;
            let (rate, acked) = drain(
                binary,
                &destination,
                concurrency,
                connections,
                measured,
                body,
                &run_name,
            )
            .await
            .with_context(|| format!("{kind} drain at concurrency {concurrency}"))?;
            let at_broker = count_and_remove(kind, &run_name, acked).await?;
            let ratio = match baseline {
                None => {
                    baseline = Some(rate);
                    "1.00".to_owned()
                }
                Some(http) => format!("{:.2}", rate / http),
            };
            println!("{kind:<8} {concurrency:>11} {rate:>12.0} {ratio:>8}  {at_broker}");
        }
    }
    Ok(())
}

/// The `[[destination]]` keys (but the name) of a run of `kind` named `run_name`, and
/// whether its broker is running here.
pub fn destination(kind: &str, run_name: &str, receiver: &str) -> (String, bool) {
    match kind {
        "http" => (
            format!("kind = \"http\"\nurl = \"{receiver}\"\nsecret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\n"),
            true,
        ),
        "nats" => (
            format!("kind = \"nats\"\nurl = \"nats://{NATS}\"\nsubject = \"hgbench.{run_name}.{{source}}.{{topic}}\"\nstream = \"HGBENCH_{run_name}\"\ncreate_stream = true\n"),
            listening(NATS),
        ),
        "redis" => (
            format!("kind = \"redis\"\nurl = \"redis://{REDIS}\"\nstream = \"hgbench:{run_name}\"\n"),
            listening(REDIS),
        ),
        "amqp" => (
            format!("kind = \"amqp\"\nurl = \"{AMQP}\"\nrouting_key = \"hgbench-{run_name}\"\n"),
            listening("127.0.0.1:5672"),
        ),
        _ => (
            format!("kind = \"mqtt\"\nurl = \"mqtt://{MQTT}\"\ntopic = \"hgbench/{run_name}/{{topic}}\"\n"),
            listening(MQTT),
        ),
    }
}

/// What a run of `kind` needs at the broker first (RabbitMQ: its queue).
pub async fn prepare(kind: &str, run_name: &str) -> anyhow::Result<()> {
    if kind == "amqp" {
        declare_queue(&format!("hgbench-{run_name}")).await?;
    }
    Ok(())
}

async fn declare_queue(name: &str) -> anyhow::Result<()> {
    let connection = lapin::Connection::connect(AMQP, lapin::ConnectionProperties::default())
        .await
        .context("RabbitMQ")?;
    let channel = connection.create_channel().await?;
    channel
        .queue_declare(
            name.into(),
            lapin::options::QueueDeclareOptions::default(),
            Default::default(),
        )
        .await?;
    Ok(())
}

/// What the broker holds of a run (checked against the `acked` events), then removes it.
pub async fn count_and_remove(kind: &str, run_name: &str, acked: usize) -> anyhow::Result<String> {
    let (held, what) = match kind {
        "nats" => {
            let jetstream =
                async_nats::jetstream::new(async_nats::connect(NATS).await.context("NATS")?);
            let name = format!("HGBENCH_{run_name}");
            let mut stream = jetstream.get_stream(&name).await?;
            let messages = stream.info().await?.state.messages;
            jetstream.delete_stream(&name).await?;
            (messages as usize, "messages in the stream")
        }
        "redis" => {
            let client = redis::Client::open(format!("redis://{REDIS}"))?;
            let mut connection = client.get_multiplexed_async_connection().await?;
            let key = format!("hgbench:{run_name}");
            let length: usize = redis::cmd("XLEN")
                .arg(&key)
                .query_async(&mut connection)
                .await?;
            let _: i64 = redis::cmd("DEL")
                .arg(&key)
                .query_async(&mut connection)
                .await?;
            (length, "stream entries")
        }
        "amqp" => {
            let connection =
                lapin::Connection::connect(AMQP, lapin::ConnectionProperties::default()).await?;
            let channel = connection.create_channel().await?;
            let name = format!("hgbench-{run_name}");
            let queue = channel
                .queue_declare(
                    name.as_str().into(),
                    lapin::options::QueueDeclareOptions {
                        passive: true,
                        ..Default::default()
                    },
                    Default::default(),
                )
                .await?;
            let depth = queue.message_count() as usize;
            channel
                .queue_delete(name.as_str().into(), Default::default())
                .await?;
            (depth, "messages in the queue")
        }
        // QoS 1 with no subscriber: the PUBACK is the broker's word, nothing is kept.
        "mqtt" => return Ok("(PUBACKs; nothing kept without a subscriber)".into()),
        _ => return Ok(String::new()),
    };
    if held < acked {
        bail!("{kind}: the broker holds {held} {what} for {acked} acknowledged events");
    }
    Ok(format!("{held} {what} for {acked} events"))
}
