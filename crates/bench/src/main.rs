//! Load harness for `hookgate serve`.
//!
//! ```text
//! cargo build --release -p hookgate -p hookgate-bench
//! target/release/hookgate-bench                       # 64 and 256 connections, 10 s each
//! target/release/hookgate-bench --connections 64 --duration 5s
//! ```
//!
//! For every connection count it starts the real `hookgate` binary twice on a fresh
//! directory: once on `discard://` (the same server answering without storing: the
//! baseline) and once on the embedded SQLite store (every 2xx committed and fsynced). Events
//! are pre-signed (GitHub preset, HMAC-SHA256, unique `X-GitHub-Delivery`, 1 KiB bodies) so
//! the client spends its time sending. Each connection sends one request at a time
//! (closed loop, keep-alive). Reported: acknowledged events/s, p50/p99 ack latency, the
//! server's peak RSS (VmHWM), and the durable run's ratio to the baseline. After a durable
//! run the database is counted: the figure is events that are really stored.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

mod brokers;
mod console;

const SECRET: &str = "bench-secret";

#[derive(Parser)]
#[command(
    about = "Load harness for hookgate serve (durable vs no-store baseline; delivery end to end; backlog under an offered rate)"
)]
struct Args {
    #[command(subcommand)]
    scenario: Option<Scenario>,
    /// Connection counts to measure.
    #[arg(long, value_delimiter = ',', default_value = "64,256")]
    connections: Vec<usize>,
    /// Measured time per run (after a 1 s warm-up).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Body size in bytes.
    #[arg(long, default_value_t = 1024)]
    body: usize,
    /// The hookgate binary; default: next to this one.
    #[arg(long)]
    hookgate: Option<PathBuf>,
    /// Events to pre-sign per run (default: enough for 140,000/s).
    #[arg(long)]
    events: Option<usize>,
    /// A PostgreSQL server (a URL whose user may create databases, e.g.
    /// `postgres://postgres@127.0.0.1:5432/postgres`): the default run then measures durable
    /// ingest on it too, each run on a fresh database dropped afterwards. `nodes` needs it.
    #[arg(long)]
    postgres: Option<String>,
}

#[derive(clap::Subcommand)]
enum Scenario {
    /// Three gateway nodes on one PostgreSQL database (`--postgres`) delivering to one
    /// fast receiver, the load spread over them (closed loop): events/s end to end.
    Nodes {
        /// Connections sending, spread over the nodes.
        #[arg(long, default_value_t = 96)]
        connections: usize,
        /// Gateway processes.
        #[arg(long, default_value_t = 3)]
        nodes: usize,
    },
    /// Ingest and HTTP delivery to a fast local receiver, as fast as it goes (closed loop).
    Delivery {
        /// Connections sending.
        #[arg(long, default_value_t = 64)]
        connections: usize,
    },
    /// Ingest and delivery end to end into each broker destination that is running here
    /// (NATS JetStream 4222, Redis 6379, RabbitMQ 5672 guest/guest, Mosquitto 1883), each
    /// beside the HTTP destination to a fast receiver (the baseline) in the same run.
    Brokers {
        /// Connections sending.
        #[arg(long, default_value_t = 64)]
        connections: usize,
        /// Destination concurrencies to measure (attempts in flight, pipelined on one
        /// connection to the broker).
        #[arg(long, value_delimiter = ',', default_value = "256")]
        concurrency: Vec<usize>,
    },
    /// Durable ingest with metrics recorded and with `[admin] metrics = false`, alternating
    /// (`rounds` runs of each), to measure what the metrics cost.
    Metrics {
        /// Connections sending.
        #[arg(long, default_value_t = 64)]
        connections: usize,
        /// Runs of each.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
    },
    /// The slow-body attack: many connections each hold an almost complete 1 MiB body.
    /// Peak RSS with the default body budget against a run without one (same run).
    Bodies {
        /// Connections holding a body.
        #[arg(long, default_value_t = 600)]
        connections: usize,
    },
    /// HMAC ingest (GitHub preset) alone, then with a flood of ES512 tokens (QI Tech
    /// preset, each a full public-key verification) on another source: HMAC throughput and
    /// p99 with and without the flood.
    Es512Flood {
        /// Connections sending HMAC events.
        #[arg(long, default_value_t = 64)]
        connections: usize,
        /// Connections flooding ES512 tokens.
        #[arg(long, default_value_t = 64)]
        flood: usize,
    },
    /// The console's scale: the admin API requests each console page makes, timed with
    /// 10,000 events stored (the baseline) and with `--events` (default 1,000,000).
    Console,
    /// A fixed offered rate (open loop); the delivery backlog is sampled every 5 s.
    Backlog {
        /// Events per second offered.
        #[arg(long, default_value_t = 5000)]
        rate: u64,
        /// Connections sending (each waits for its answer, so the rate a connection can
        /// offer is bounded by the latency: use enough of them).
        #[arg(long, default_value_t = 128)]
        connections: usize,
        /// The destination: `http` (a fast local receiver), or a broker running here
        /// (`nats`, `redis`, `amqp`, `mqtt`; see `brokers`).
        #[arg(long, default_value = "http")]
        sink: String,
        /// The destination's concurrency.
        #[arg(long, default_value_t = 256)]
        concurrency: usize,
    },
}

struct Server {
    child: Child,
    addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(binary: &Path, dir: &Path, store: &str, extra: &str) -> anyhow::Result<Server> {
    start_with_server(binary, dir, store, extra)
}

/// Starts the gateway; `extra` is appended, and `[server]` keys in it join the `[server]`
/// table written here.
fn start_with_server(
    binary: &Path,
    dir: &Path,
    store: &str,
    extra: &str,
) -> anyhow::Result<Server> {
    let config = dir.join("bench.toml");
    let (server_keys, extra) = match extra.strip_prefix("[server]\n") {
        Some(rest) => {
            let end = rest.find("\n[").map_or(rest.len(), |i| i + 1);
            (&rest[..end], &rest[end..])
        }
        None => ("", extra),
    };
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nmax_connections = 2048\n{server_keys}[store]\nurl = \"{store}\"\n\
             [[source]]\nname = \"gh\"\npath = \"/gh\"\npreset = \"github\"\nsecret = \"{SECRET}\"\n{extra}"
        ),
    )?;
    let mut child = Command::new(binary)
        .args(["serve", "--config"])
        .arg(&config)
        .current_dir(dir)
        .env("HOOKGATE_LOG", "warn,hookgate=info")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .with_context(|| format!("cannot start {}", binary.display()))?;
    let stderr = child.stderr.take().expect("piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if let Some(rest) = line.split("listening on http://").nth(1) {
                let _ = tx.send(rest.split_whitespace().next().unwrap_or("").to_owned());
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(30))
        .context("hookgate did not start")?;
    Ok(Server { child, addr })
}

fn peak_rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

/// Raw HTTP/1.1 requests, signed in advance.
fn presign(count: usize, body_size: usize, run: &str) -> Vec<Vec<u8>> {
    (0..count)
        .map(|i| signed_request(&format!("{run}-{i}"), "push", body_size))
        .collect()
}

/// One raw HTTP/1.1 request to `/gh`, signed as GitHub does, with delivery id `id`.
fn signed_request(id: &str, topic: &str, body_size: usize) -> Vec<u8> {
    let mut body = format!(r#"{{"delivery":"{id}","data":""#).into_bytes();
    body.resize(body_size.saturating_sub(2).max(body.len()), b'x');
    body.extend_from_slice(b"\"}");
    let mac = hookgate_verify::HashAlgorithm::Sha256.mac_of(SECRET.as_bytes(), &body);
    let mut request = format!(
        "POST /gh HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\nX-GitHub-Event: {topic}\r\nX-GitHub-Delivery: {id}\r\n\
         X-Hub-Signature-256: sha256={}\r\nContent-Length: {}\r\n\r\n",
        hookgate_verify::Encoding::Hex.encode(&mac),
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(&body);
    request
}

struct RunResult {
    acked: usize,
    /// Every 2xx of the run, warm-up included: all of them must be in the store.
    acked_total: usize,
    elapsed: Duration,
    p50_ms: f64,
    p99_ms: f64,
    errors: usize,
}

async fn read_response(
    stream: &mut tokio::net::TcpStream,
    buffer: &mut Vec<u8>,
) -> anyhow::Result<u16> {
    buffer.clear();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = std::str::from_utf8(&buffer[..end])?;
            let status: u16 = head.get(9..12).context("short status line")?.parse()?;
            let length: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap_or(0))
                })
                .unwrap_or(0);
            while buffer.len() < end + 4 + length {
                let n = stream.read(&mut chunk).await?;
                if n == 0 {
                    bail!("connection closed mid-body");
                }
                buffer.extend_from_slice(&chunk[..n]);
            }
            return Ok(status);
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            bail!("connection closed");
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
}

async fn drive(
    addr: &str,
    requests: Arc<Vec<Vec<u8>>>,
    connections: usize,
    warmup: Duration,
    measured: Duration,
) -> anyhow::Result<RunResult> {
    let next = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let measuring = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (requests, next, stop, measuring) = (
            requests.clone(),
            next.clone(),
            stop.clone(),
            measuring.clone(),
        );
        let addr = addr.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(64 * 1024);
            let mut acked = 0usize;
            let mut acked_total = 0usize;
            let mut errors = 0usize;
            let mut stream = tokio::net::TcpStream::connect(&addr).await?;
            stream.set_nodelay(true)?;
            let mut buffer = Vec::with_capacity(1024);
            while !stop.load(Ordering::Relaxed) {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(request) = requests.get(i) else {
                    break;
                };
                let sent = Instant::now();
                stream.write_all(request).await?;
                let status = read_response(&mut stream, &mut buffer).await?;
                if (200..300).contains(&status) {
                    acked_total += 1;
                }
                if measuring.load(Ordering::Relaxed) {
                    if (200..300).contains(&status) {
                        acked += 1;
                        latencies.push(sent.elapsed().as_micros() as u32);
                    } else {
                        errors += 1;
                    }
                }
            }
            anyhow::Ok((acked, acked_total, errors, latencies))
        }));
    }
    tokio::time::sleep(warmup).await;
    measuring.store(true, Ordering::Relaxed);
    let started = Instant::now();
    tokio::time::sleep(measured).await;
    measuring.store(false, Ordering::Relaxed);
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let mut acked = 0;
    let mut acked_total = 0;
    let mut errors = 0;
    let mut latencies = Vec::new();
    for task in tasks {
        let (a, t, e, l) = task.await??;
        acked += a;
        acked_total += t;
        errors += e;
        latencies.extend(l);
    }
    if next.load(Ordering::Relaxed) >= requests.len() {
        bail!("ran out of pre-signed events; raise --events");
    }
    latencies.sort_unstable();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .map_or(f64::NAN, |us| *us as f64 / 1000.0)
    };
    Ok(RunResult {
        acked,
        acked_total,
        elapsed,
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        errors,
    })
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let binary = match args.hookgate {
        Some(b) => b,
        None => std::env::current_exe()?
            .parent()
            .context("no exe dir")?
            .join("hookgate"),
    };
    if !binary.exists() {
        bail!("{} not found: build it first with `cargo build --release -p hookgate -p hookgate-bench`", binary.display());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    match args.scenario {
        Some(Scenario::Nodes { connections, nodes }) => {
            let postgres = args
                .postgres
                .as_deref()
                .context("the nodes scenario needs --postgres URL")?;
            return runtime.block_on(several_nodes(
                &binary,
                postgres,
                nodes,
                connections,
                args.duration,
                args.body,
            ));
        }
        Some(Scenario::Brokers {
            connections,
            concurrency,
        }) => {
            return runtime.block_on(async {
                let (receiver, _) = fast_receiver().await?;
                brokers::brokers(
                    &binary,
                    &receiver,
                    connections,
                    &concurrency,
                    args.duration,
                    args.body,
                )
                .await
            })
        }
        Some(Scenario::Delivery { connections }) => {
            return runtime.block_on(delivery(&binary, connections, args.duration, args.body))
        }
        Some(Scenario::Metrics {
            connections,
            rounds,
        }) => {
            let warmup = Duration::from_secs(1);
            let events = args
                .events
                .unwrap_or(((args.duration + warmup).as_secs_f64() * 140_000.0) as usize + 10_000);
            return metrics_cost(
                &runtime,
                &binary,
                connections,
                rounds,
                warmup,
                args.duration,
                events,
                args.body,
            );
        }
        Some(Scenario::Es512Flood { connections, flood }) => {
            let warmup = Duration::from_secs(1);
            let events = args
                .events
                .unwrap_or(((args.duration + warmup).as_secs_f64() * 140_000.0) as usize + 10_000);
            return es512_flood(
                &runtime,
                &binary,
                connections,
                flood,
                warmup,
                args.duration,
                events,
                args.body,
            );
        }
        Some(Scenario::Console) => {
            let events = args.events.unwrap_or(1_000_000);
            return runtime.block_on(console::console(&binary, events, args.body));
        }
        Some(Scenario::Bodies { connections }) => {
            return runtime.block_on(bodies(&binary, connections));
        }
        Some(Scenario::Backlog {
            rate,
            connections,
            sink,
            concurrency,
        }) => {
            return runtime.block_on(backlog(
                &binary,
                rate,
                connections,
                &sink,
                concurrency,
                args.duration,
                args.body,
            ))
        }
        None => {}
    }
    let warmup = Duration::from_secs(1);
    let events = args
        .events
        .unwrap_or(((args.duration + warmup).as_secs_f64() * 140_000.0) as usize + 10_000);
    println!("hookgate load harness: {} B bodies, HMAC-SHA256 (github preset), {:?} measured after {:?} warm-up, {} CPU(s)", args.body, args.duration, warmup, std::thread::available_parallelism().map_or(0, |n| n.get()));
    println!(
        "{:<10} {:>6} {:>12} {:>9} {:>9} {:>10} {:>8} {:>10}",
        "store", "conns", "events/s", "p50 ms", "p99 ms", "peak RSS", "errors", "vs base"
    );
    for &connections in &args.connections {
        let mut baseline_rate = f64::NAN;
        let mut stores = vec![
            ("baseline", "discard://".to_owned()),
            ("durable", "sqlite://./data/hookgate.db".to_owned()),
        ];
        // A fresh database per run, dropped with `database` at the end of the run.
        let database = match &args.postgres {
            Some(admin) => Some(
                runtime
                    .block_on(hookgate_store::testing::postgres_on(admin))
                    .map_err(|e| anyhow::anyhow!(e))?,
            ),
            None => None,
        };
        if let Some(db) = &database {
            stores.push(("postgres", db.url().to_owned()));
        }
        for (label, store) in &stores {
            let (label, store) = (*label, store.as_str());
            let dir = tempfile::tempdir()?;
            let requests = Arc::new(presign(
                events,
                args.body,
                &format!("{label}-{connections}"),
            ));
            let server = start(&binary, dir.path(), store, "")?;
            let result = runtime.block_on(drive(
                &server.addr,
                requests,
                connections,
                warmup,
                args.duration,
            ))?;
            let rss = peak_rss_mib(server.child.id());
            drop(server);
            let rate = result.acked as f64 / result.elapsed.as_secs_f64();
            if label != "baseline" {
                let stored = if label == "postgres" {
                    runtime.block_on(postgres_count(store, "SELECT count(*) FROM events"))?
                } else {
                    let conn = rusqlite::Connection::open(dir.path().join("data/hookgate.db"))?;
                    conn.query_row("SELECT count(*) FROM events", [], |r| r.get(0))?
                };
                if stored as usize != result.acked_total {
                    bail!(
                        "{stored} events stored for {} acknowledged",
                        result.acked_total
                    );
                }
            } else {
                baseline_rate = rate;
            }
            println!(
                "{label:<10} {connections:>6} {rate:>12.0} {:>9.2} {:>9.2} {:>7.1} MiB {:>8} {:>9.2}x",
                result.p50_ms,
                result.p99_ms,
                rss,
                result.errors,
                rate / baseline_rate
            );
        }
    }
    Ok(())
}

/// Durable ingest with metrics on and off, alternating, and the ratio of their means.
#[allow(clippy::too_many_arguments)]
fn metrics_cost(
    runtime: &tokio::runtime::Runtime,
    binary: &Path,
    connections: usize,
    rounds: usize,
    warmup: Duration,
    duration: Duration,
    events: usize,
    body: usize,
) -> anyhow::Result<()> {
    println!("metrics cost: durable ingest, {connections} connections, {body} B bodies, {rounds} alternating runs of {duration:?} each");
    println!(
        "{:<12} {:>12} {:>9} {:>9} {:>16}",
        "metrics", "events/s", "p50 ms", "p99 ms", "server CPU µs/ev"
    );
    let mut rates = [Vec::new(), Vec::new()];
    let mut cpu = [Vec::new(), Vec::new()];
    for round in 0..rounds {
        for (i, (label, extra)) in [("on", ""), ("off", "[admin]\nmetrics = false\n")]
            .iter()
            .enumerate()
        {
            let dir = tempfile::tempdir()?;
            let requests = Arc::new(presign(events, body, &format!("metrics-{label}-{round}")));
            let server = start(binary, dir.path(), "sqlite://./data/hookgate.db", extra)?;
            let result =
                runtime.block_on(drive(&server.addr, requests, connections, warmup, duration))?;
            // The server's CPU time per acknowledged event (warm-up included for both): steadier
            // than the rate, which follows the virtual disk's fsync latency.
            let per_event = cpu_seconds(server.child.id()) * 1e6 / result.acked_total.max(1) as f64;
            drop(server);
            let rate = result.acked as f64 / result.elapsed.as_secs_f64();
            rates[i].push(rate);
            cpu[i].push(per_event);
            println!(
                "{label:<12} {rate:>12.0} {:>9.2} {:>9.2} {per_event:>16.1}",
                result.p50_ms, result.p99_ms
            );
        }
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (on, off) = (mean(&rates[0]), mean(&rates[1]));
    println!(
        "mean: on {on:.0}/s, off {off:.0}/s; on/off = {:.3} (cost {:.1}%)",
        on / off,
        (1.0 - on / off) * 100.0
    );
    let (cpu_on, cpu_off) = (mean(&cpu[0]), mean(&cpu[1]));
    println!(
        "server CPU per event: on {cpu_on:.1} µs, off {cpu_off:.1} µs; on/off = {:.3} (cost {:.1}%)",
        cpu_on / cpu_off,
        (cpu_on / cpu_off - 1.0) * 100.0
    );
    Ok(())
}

/// User + system CPU seconds a process has used so far.
fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return f64::NAN;
    };
    // The fields after the command name (which may hold spaces) start after the last ')',
    // with the state (field 3); utime and stime are fields 14 and 15, in clock ticks.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |field: usize| {
        fields
            .get(field - 3)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    // Linux reports them in USER_HZ, 100 per second on every architecture it supports.
    (ticks(14) + ticks(15)) / 100.0
}

/// Opens `connections` connections that each send the head and all but the last byte of a
/// 1 MiB body, then reports the server's peak RSS: with the default budget, and without
/// one (the budget and the per-address connection cap lifted).
async fn bodies(binary: &Path, connections: usize) -> anyhow::Result<()> {
    const BODY: usize = 1 << 20;
    println!(
        "slow-body attack: {connections} connections, each holding {BODY} of {BODY} bytes but one"
    );
    println!(
        "{:<40} {:>12} {:>10} {:>12}",
        "gateway", "peak RSS", "held", "refused"
    );
    let mut peaks = Vec::new();
    for (label, extra) in [
        ("defaults (max_buffered_bodies 256MiB)", ""),
        (
            "no budget (the previous behaviour)",
            "[server]\nmax_buffered_bodies = \"64GiB\"\nmax_connections_per_peer = 100000\n",
        ),
    ] {
        let dir = tempfile::tempdir()?;
        // `start` writes [server] first: a second [server] table would be refused, so the
        // settings go into the one it writes.
        let server = start_with_server(binary, dir.path(), "sqlite://./data/hookgate.db", extra)?;
        let head = format!("POST /gh HTTP/1.1\r\nHost: bench\r\nContent-Length: {BODY}\r\n\r\n");
        let chunk = vec![b'x'; BODY - 1];
        let mut open = Vec::new();
        let mut refused = 0;
        for _ in 0..connections {
            let attempt = async {
                let mut stream = tokio::net::TcpStream::connect(&server.addr).await?;
                stream.write_all(head.as_bytes()).await?;
                stream.write_all(&chunk).await?;
                Ok::<_, std::io::Error>(stream)
            };
            match tokio::time::timeout(Duration::from_secs(2), attempt).await {
                Ok(Ok(stream)) => open.push(stream),
                _ => refused += 1,
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        let rss = peak_rss_mib(server.child.id());
        drop(open);
        drop(server);
        println!(
            "{label:<40} {rss:>8.1} MiB {:>10} {refused:>12}",
            connections - refused
        );
        peaks.push(rss);
    }
    println!(
        "peak RSS with the budget / without: {:.2}",
        peaks[0] / peaks[1]
    );
    Ok(())
}

/// HMAC ingest with and without an ES512 flood on another source.
#[allow(clippy::too_many_arguments)]
fn es512_flood(
    runtime: &tokio::runtime::Runtime,
    binary: &Path,
    connections: usize,
    flood: usize,
    warmup: Duration,
    duration: Duration,
    events: usize,
    body: usize,
) -> anyhow::Result<()> {
    let keys = tempfile::tempdir()?;
    for name in ["qitech", "forger"] {
        let status = Command::new(binary)
            .args(["keygen", "--alg", "ES512", "--out"])
            .arg(keys.path().join(name))
            .status()?;
        if !status.success() {
            bail!("keygen failed");
        }
    }
    // A token of the right shape signed with another key: the gateway does the whole ES512
    // verification before it can refuse it (403).
    let forged = Command::new(binary)
        .args([
            "send",
            "http://bench/qitech",
            "--preset",
            "qitech",
            "--param",
            "api_client_key=K",
            "--dry-run",
            "--key",
        ])
        .arg(keys.path().join("forger.pem"))
        .output()?;
    if !forged.status.success() {
        bail!(
            "send --dry-run failed: {}",
            String::from_utf8_lossy(&forged.stderr)
        );
    }
    let forged = Arc::new(forged.stdout);
    let extra = format!(
        "[[source]]\nname = \"qitech\"\npath = \"/qitech\"\npreset = \"qitech\"\napi_client_key = \"K\"\npublic_key_file = \"{}\"\n",
        keys.path().join("qitech.pub.pem").display()
    );
    println!("HMAC ingest ({connections} connections, durable) alone and during a flood of ES512 tokens ({flood} connections)");
    println!(
        "{:<22} {:>12} {:>9} {:>9} {:>14}",
        "run", "HMAC ev/s", "p50 ms", "p99 ms", "ES512 verif/s"
    );
    for with_flood in [false, true] {
        let dir = tempfile::tempdir()?;
        let server = start(binary, dir.path(), "sqlite://./data/hookgate.db", &extra)?;
        let requests = Arc::new(presign(events, body, &format!("flood-{with_flood}")));
        let stop = Arc::new(AtomicBool::new(false));
        let refused = Arc::new(AtomicU64::new(0));
        let mut flooders = Vec::new();
        if with_flood {
            for _ in 0..flood {
                let (addr, request, stop, refused) = (
                    server.addr.clone(),
                    forged.clone(),
                    stop.clone(),
                    refused.clone(),
                );
                flooders.push(runtime.spawn(async move {
                    let mut stream = tokio::net::TcpStream::connect(&addr).await?;
                    let mut buffer = Vec::with_capacity(1024);
                    while !stop.load(Ordering::Relaxed) {
                        stream.write_all(&request).await?;
                        let status = read_response(&mut stream, &mut buffer).await?;
                        if status == 403 {
                            refused.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    anyhow::Ok(())
                }));
            }
        }
        let before = refused.load(Ordering::Relaxed);
        let result =
            runtime.block_on(drive(&server.addr, requests, connections, warmup, duration))?;
        let verified =
            (refused.load(Ordering::Relaxed) - before) as f64 / (warmup + duration).as_secs_f64();
        stop.store(true, Ordering::Relaxed);
        for f in flooders {
            let _ = runtime.block_on(f);
        }
        drop(server);
        let rate = result.acked as f64 / result.elapsed.as_secs_f64();
        println!(
            "{:<22} {rate:>12.0} {:>9.2} {:>9.2} {verified:>14.0}",
            if with_flood {
                "during an ES512 flood"
            } else {
                "alone"
            },
            result.p50_ms,
            result.p99_ms
        );
    }
    Ok(())
}

/// What the receiver has seen.
struct Received {
    count: AtomicUsize,
    origin: Instant,
    /// When the latest delivery arrived, µs after `origin`.
    last_us: AtomicU64,
}

impl Received {
    fn load(&self, order: Ordering) -> usize {
        self.count.load(order)
    }

    /// When the latest delivery arrived.
    fn last(&self) -> Instant {
        self.origin + Duration::from_micros(self.last_us.load(Ordering::Relaxed))
    }
}

/// A receiver that accepts everything as fast as it can, counting deliveries: bare hyper
/// HTTP/1.1 on the same 2 cores, so it takes as little CPU from the gateway as it can.
async fn fast_receiver() -> anyhow::Result<(String, Arc<Received>)> {
    use http_body_util::BodyExt as _;
    let count = Arc::new(Received {
        count: AtomicUsize::new(0),
        origin: Instant::now(),
        last_us: AtomicU64::new(0),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/deliver", listener.local_addr()?);
    let counter = count.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            let counter = counter.clone();
            let service = hyper::service::service_fn(
                move |request: hyper::Request<hyper::body::Incoming>| {
                    let counter = counter.clone();
                    async move {
                        let ok = request.into_body().collect().await.is_ok();
                        if ok {
                            counter.count.fetch_add(1, Ordering::Relaxed);
                            counter.last_us.fetch_max(
                                counter.origin.elapsed().as_micros() as u64,
                                Ordering::Relaxed,
                            );
                        }
                        let status = if ok { 204 } else { 400 };
                        hyper::Response::builder()
                            .status(status)
                            .body(http_body_util::Empty::<bytes::Bytes>::new())
                    }
                },
            );
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service),
            );
        }
    });
    Ok((url, count))
}

fn delivery_config(receiver: &str) -> String {
    format!(
        "[[destination]]\nname = \"fast\"\nkind = \"http\"\nurl = \"{receiver}\"\nsecret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\nconcurrency = 256\n\
         [[route]]\nto = \"fast\"\n"
    )
}

/// The gateway on SQLite, routing everything to a fresh [`fast_receiver`].
async fn start_delivering(
    binary: &Path,
) -> anyhow::Result<(tempfile::TempDir, Server, Arc<Received>)> {
    let dir = tempfile::tempdir()?;
    let (receiver, delivered) = fast_receiver().await?;
    let server = start(
        binary,
        dir.path(),
        "sqlite://./data/hookgate.db",
        &delivery_config(&receiver),
    )?;
    Ok((dir, server, delivered))
}

fn pending(dir: &Path) -> anyhow::Result<i64> {
    let conn = rusqlite::Connection::open_with_flags(
        dir.join("data/hookgate.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )?;
    Ok(conn.query_row(
        "SELECT count(*) FROM deliveries WHERE status = 'pending'",
        [],
        |r| r.get(0),
    )?)
}

/// Closed loop: as many events as `connections` can push, each delivered over HTTP.
async fn delivery(
    binary: &Path,
    connections: usize,
    measured: Duration,
    body: usize,
) -> anyhow::Result<()> {
    let (_dir, server, delivered) = start_delivering(binary).await?;
    let warmup = Duration::from_secs(1);
    let events = ((measured + warmup).as_secs_f64() * 40_000.0) as usize + 10_000;
    let requests = Arc::new(presign(events, body, "delivery"));
    let before = delivered.load(Ordering::Relaxed);
    let started = Instant::now();
    let result = drive(&server.addr, requests, connections, warmup, measured).await?;
    let sent_for = started.elapsed();
    let delivered_during = delivered.load(Ordering::Relaxed) - before;
    // Then let the backlog drain: end to end is everything acknowledged and delivered.
    let drain_started = Instant::now();
    while delivered.load(Ordering::Relaxed) - before < result.acked_total {
        if drain_started.elapsed() > Duration::from_secs(300) {
            bail!("backlog did not drain in 5 minutes");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let total = delivered.last().saturating_duration_since(started);
    let rss = peak_rss_mib(server.child.id());
    println!("delivery end to end: {} B bodies, {connections} connections, HTTP destination on loopback, 2 CPU(s)", body);
    println!(
        "  acknowledged        {:>9.0} events/s (p50 {:.2} ms, p99 {:.2} ms)",
        result.acked as f64 / result.elapsed.as_secs_f64(),
        result.p50_ms,
        result.p99_ms
    );
    println!(
        "  delivered (sending) {:>9.0} events/s",
        delivered_during as f64 / sent_for.as_secs_f64()
    );
    println!("  end to end          {:>9.0} events/s ({} events acknowledged and delivered in {:.1} s; backlog drained {:.1} s after sending stopped)", result.acked_total as f64 / total.as_secs_f64(), result.acked_total, total.as_secs_f64(), drain_started.elapsed().as_secs_f64());
    println!("  peak RSS            {rss:>9.1} MiB");
    Ok(())
}

/// Open loop: `rate` events/s for `duration` into the `sink` destination, the pending
/// backlog sampled every 5 s.
async fn backlog(
    binary: &Path,
    rate: u64,
    connections: usize,
    sink: &str,
    concurrency: usize,
    duration: Duration,
    body: usize,
) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (receiver, received) = fast_receiver().await?;
    let run_name = format!("backlog{sink}x{:x}", std::process::id());
    let (destination, reachable) = brokers::destination(sink, &run_name, &receiver);
    if !reachable {
        bail!("{sink}: the broker is not running here");
    }
    brokers::prepare(sink, &run_name).await?;
    let server = start(
        binary,
        dir.path(),
        "sqlite://./data/hookgate.db",
        &format!("[[destination]]\nname = \"bus\"\nconcurrency = {concurrency}\n{destination}\n[[route]]\nto = \"bus\"\n"),
    )?;
    // The receiver counts HTTP deliveries as they arrive; a broker's are the store's count
    // of acknowledged ones.
    let (store_dir, counter) = (dir.path().to_owned(), received.clone());
    let delivered = move || -> anyhow::Result<usize> {
        if sink == "http" {
            Ok(counter.load(Ordering::Relaxed))
        } else {
            Ok(brokers::delivered(&store_dir)? as usize)
        }
    };
    let total = (rate as f64 * duration.as_secs_f64()) as usize;
    let requests = Arc::new(presign(total, body, "backlog"));
    let per_connection = Duration::from_secs_f64(connections as f64 / rate as f64);
    let next = Arc::new(AtomicUsize::new(0));
    let acked = Arc::new(AtomicUsize::new(0));
    let last_ack_us = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    println!("delivery backlog: {rate} events/s offered for {duration:?} on {connections} connections, {body} B bodies, {sink} destination (concurrency {concurrency}) on loopback");
    println!(
        "{:>6} {:>12} {:>12} {:>10}",
        "t (s)", "acknowledged", "delivered", "backlog"
    );
    let started = Instant::now();
    for _ in 0..connections {
        let (requests, next, acked, last_ack_us, addr) = (
            requests.clone(),
            next.clone(),
            acked.clone(),
            last_ack_us.clone(),
            server.addr.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut stream = tokio::net::TcpStream::connect(&addr).await?;
            stream.set_nodelay(true)?;
            let mut buffer = Vec::new();
            let mut ticker = tokio::time::interval(per_connection);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            loop {
                ticker.tick().await;
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(request) = requests.get(i) else {
                    break;
                };
                stream.write_all(request).await?;
                if (200..300).contains(&read_response(&mut stream, &mut buffer).await?) {
                    acked.fetch_add(1, Ordering::Relaxed);
                    last_ack_us.fetch_max(started.elapsed().as_micros() as u64, Ordering::Relaxed);
                }
            }
            anyhow::Ok(())
        }));
    }
    let mut worst = 0;
    let mut next_sample = Duration::from_secs(5);
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let finished = tasks.iter().all(|t| t.is_finished());
        if started.elapsed() < next_sample && !finished {
            continue;
        }
        next_sample += Duration::from_secs(5);
        let backlog = pending(dir.path())?;
        worst = worst.max(backlog);
        println!(
            "{:>6.0} {:>12} {:>12} {:>10}",
            started.elapsed().as_secs_f64(),
            acked.load(Ordering::Relaxed),
            delivered()?,
            backlog
        );
        if finished {
            break;
        }
    }
    for task in tasks {
        task.await??;
    }
    let acked = acked.load(Ordering::Relaxed);
    let sending = Duration::from_micros(last_ack_us.load(Ordering::Relaxed));
    let drain_started = Instant::now();
    while delivered()? < acked {
        if drain_started.elapsed() > Duration::from_secs(300) {
            bail!("backlog did not drain in 5 minutes");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let end_to_end = if sink == "http" {
        received.last().saturating_duration_since(started)
    } else {
        started.elapsed()
    };
    println!(
        "offered {rate}/s: acknowledged {acked} in {:.1} s ({:.0}/s), all delivered {:.1} s after the start ({:.0}/s end to end)",
        sending.as_secs_f64(),
        acked as f64 / sending.as_secs_f64(),
        end_to_end.as_secs_f64(),
        acked as f64 / end_to_end.as_secs_f64(),
    );
    println!(
        "largest backlog sampled: {worst} deliveries ({:.2} s of traffic)",
        worst as f64 / rate as f64
    );
    let at_broker = brokers::count_and_remove(sink, &run_name, acked).await?;
    if !at_broker.is_empty() {
        println!("at the broker: {at_broker}");
    }
    drop(server);
    Ok(())
}

/// One number from the PostgreSQL database at `url` (the harness's own check, not the
/// gateway's).
async fn postgres_count(url: &str, sql: &str) -> anyhow::Result<i64> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    Ok(client.query_one(sql, &[]).await?.get(0))
}

/// `nodes` gateway processes on one fresh PostgreSQL database, routing to one fast
/// receiver; `connections` spread over them. Reports acknowledged and end-to-end rates.
async fn several_nodes(
    binary: &Path,
    postgres: &str,
    nodes: usize,
    connections: usize,
    measured: Duration,
    body: usize,
) -> anyhow::Result<()> {
    let database = hookgate_store::testing::postgres_on(postgres)
        .await
        .map_err(|e| anyhow::anyhow!(e))?;
    let (receiver, delivered) = fast_receiver().await?;
    let dirs: Vec<tempfile::TempDir> = (0..nodes)
        .map(|_| tempfile::tempdir())
        .collect::<Result<_, _>>()?;
    let servers: Vec<Server> = dirs
        .iter()
        .map(|dir| {
            start(
                binary,
                dir.path(),
                database.url(),
                &delivery_config(&receiver),
            )
        })
        .collect::<Result<_, _>>()?;
    let warmup = Duration::from_secs(1);
    let per_node = connections.div_ceil(nodes);
    let events = ((measured + warmup).as_secs_f64() * 30_000.0 / nodes as f64) as usize + 10_000;
    let before = delivered.load(Ordering::Relaxed);
    let started = Instant::now();
    let runs: Vec<_> = servers
        .iter()
        .enumerate()
        .map(|(i, server)| {
            let requests = Arc::new(presign(events, body, &format!("node{i}")));
            let addr = server.addr.clone();
            tokio::spawn(async move { drive(&addr, requests, per_node, warmup, measured).await })
        })
        .collect();
    let mut results = Vec::new();
    for run in runs {
        results.push(run.await??);
    }
    let acked_total: usize = results.iter().map(|r| r.acked_total).sum();
    let acked_rate: f64 = results
        .iter()
        .map(|r| r.acked as f64 / r.elapsed.as_secs_f64())
        .sum();
    let drain_started = Instant::now();
    while delivered.load(Ordering::Relaxed) - before < acked_total {
        if drain_started.elapsed() > Duration::from_secs(300) {
            bail!("backlog did not drain in 5 minutes");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let total = delivered.last().saturating_duration_since(started);
    let stored = postgres_count(database.url(), "SELECT count(*) FROM events").await?;
    if stored as usize != acked_total {
        bail!("{stored} events stored for {acked_total} acknowledged");
    }
    println!("{nodes} nodes on one PostgreSQL, {connections} connections spread over them, {body} B bodies, HTTP destination on loopback, 2 CPU(s)");
    println!("  acknowledged        {acked_rate:>9.0} events/s");
    println!(
        "  end to end          {:>9.0} events/s ({acked_total} events acknowledged and delivered in {:.1} s; backlog drained {:.1} s after sending stopped)",
        acked_total as f64 / total.as_secs_f64(),
        total.as_secs_f64(),
        drain_started.elapsed().as_secs_f64()
    );
    drop(servers);
    Ok(())
}
