//! `hookgate events list|show`: the stored events.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use hookgate_store::{ListFilter, Store, StoreOptions};
use hookgate_verify::timestamp::{parse_timestamp, TimestampFormat};

use crate::{CommandResult, Failure};

#[derive(Subcommand)]
pub(crate) enum EventsCommand {
    /// List stored events, newest first.
    #[command(after_help = "Examples:
  hookgate events list --source github --since 2026-11-01
  hookgate events list --topic 'orders/*' --json")]
    List(ListArgs),
    /// Show one event: metadata, verification, headers (credentials redacted), body, deliveries.
    #[command(after_help = "Example:\n  hookgate events show 019a3b5c-…")]
    Show(ShowArgs),
    /// Deliver events again: one, or all that match, to every destination or one. New
    /// attempts carry the same webhook-id, so receivers can drop repeats.
    #[command(after_help = "Examples:
  hookgate events replay 019a3b5c-…
  hookgate events replay --status dead --destination orders
  hookgate events replay --source github --since 2026-11-01 --until 2026-11-02
  hookgate events replay --status unrouted          # after adding a route")]
    Replay(ReplayArgs),
}

#[derive(Args)]
pub(crate) struct ReplayArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// One event.
    pub id: Option<String>,
    /// Events of this source.
    #[arg(long)]
    pub source: Option<String>,
    /// Topics matching this pattern (`*` is a wildcard).
    #[arg(long)]
    pub topic: Option<String>,
    /// Events with a delivery in this state (pending, delivered, dead), or unrouted events.
    #[arg(long, value_parser = ["pending", "delivered", "dead", "unrouted"])]
    pub status: Option<String>,
    /// Received at or after.
    #[arg(long)]
    pub since: Option<String>,
    /// Received before.
    #[arg(long)]
    pub until: Option<String>,
    /// Only to this destination (default: the event's destinations and what the routes now say).
    #[arg(long)]
    pub destination: Option<String>,
    /// Replay every stored event (needed when no other filter is given).
    #[arg(long)]
    pub all: bool,
}

#[derive(Args)]
pub(crate) struct StoreArgs {
    /// The configuration whose store to read.
    #[arg(long, short, default_value = "hookgate.toml")]
    pub config: PathBuf,
    /// The store URL (instead of the configuration's).
    #[arg(long)]
    pub store: Option<String>,
}

#[derive(Args)]
pub(crate) struct ListArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Only this source.
    #[arg(long)]
    pub source: Option<String>,
    /// Only topics matching this pattern (`*` is a wildcard).
    #[arg(long)]
    pub topic: Option<String>,
    /// Received at or after (RFC 3339, a date, or Unix seconds).
    #[arg(long)]
    pub since: Option<String>,
    /// Received before.
    #[arg(long)]
    pub until: Option<String>,
    /// Only events with a delivery in this state, or unrouted events.
    #[arg(long, value_parser = ["pending", "delivered", "dead", "unrouted"])]
    pub status: Option<String>,
    /// At most this many.
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
    /// JSON output (one array), for scripts.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub(crate) struct ShowArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// The event id.
    pub id: String,
    /// JSON output, the body included (base64 when not UTF-8).
    #[arg(long)]
    pub json: bool,
}

fn open(args: &StoreArgs) -> Result<Store, Failure> {
    Ok(open_with_config(args)?.0)
}

/// The store, and the configuration when there is one (replay needs its routes).
fn open_with_config(args: &StoreArgs) -> Result<(Store, Option<hookgate_server::Config>), Failure> {
    let config = if args.config.exists() {
        Some(
            hookgate_server::Config::load(
                &args.config,
                &hookgate_server::config::ProcessEnvironment,
            )
            .map_err(Failure::config)?,
        )
    } else {
        None
    };
    let url = match (&args.store, &config) {
        (Some(url), _) => url.clone(),
        (None, Some(c)) => c.store_url.clone(),
        (None, None) => hookgate_server::config::DEFAULT_STORE_URL.to_owned(),
    };
    if let Some(path) = url.strip_prefix("sqlite://") {
        if !std::path::Path::new(path).exists() {
            return Err(Failure::config(format!("no store at {path} (has `hookgate serve` run here? pass --store URL or --config FILE)")));
        }
    }
    let store =
        Store::open(&url, &StoreOptions::default()).map_err(|e| Failure::runtime(e.to_string()))?;
    Ok((store, config))
}

fn millis(key: &str, text: &Option<String>) -> Result<Option<i64>, Failure> {
    text.as_deref()
        .map(|t| {
            parse_timestamp(t, TimestampFormat::Auto)
                .map(|at| (at.unix_timestamp_nanos() / 1_000_000) as i64)
                .map_err(|e| Failure::config(format!("{key}: {e}")))
        })
        .transpose()
}

/// `2026-11-22T21:25:43.072Z`: arrival times are kept in milliseconds.
fn rfc3339(ms: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000) {
        Ok(at) => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            at.year(),
            at.month() as u8,
            at.day(),
            at.hour(),
            at.minute(),
            at.second(),
            at.millisecond()
        ),
        Err(_) => ms.to_string(),
    }
}

pub(crate) fn run(command: EventsCommand) -> CommandResult {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::runtime(e.to_string()))?;
    match command {
        EventsCommand::Replay(args) => return replay(args, &runtime),
        EventsCommand::List(args) => {
            let store = open(&args.store)?;
            let filter = ListFilter {
                source: args.source.clone(),
                topic: args.topic.clone(),
                since_ms: millis("--since", &args.since)?,
                until_ms: millis("--until", &args.until)?,
                status: args.status.clone(),
                limit: Some(args.limit),
            };
            let events = runtime
                .block_on(store.list(filter))
                .map_err(|e| Failure::runtime(e.to_string()))?;
            if args.json {
                outln!(
                    "{}",
                    serde_json::to_string_pretty(&events).expect("events serialise")
                );
            } else {
                outln!(
                    "{:<36}  {:<24}  {:<12}  {:<24}  {:<36}  {:>7}",
                    "ID",
                    "RECEIVED",
                    "SOURCE",
                    "TOPIC",
                    "EVENT ID",
                    "BYTES"
                );
                for e in &events {
                    outln!(
                        "{:<36}  {:<24}  {:<12}  {:<24}  {:<36}  {:>7}",
                        e.id,
                        rfc3339(e.received_at_ms),
                        e.source,
                        e.topic.as_deref().unwrap_or("-"),
                        e.dedupe_key.as_deref().unwrap_or("-"),
                        e.size
                    );
                }
                eprintln!("{} event(s)", events.len());
            }
        }
        EventsCommand::Show(args) => {
            let store = open(&args.store)?;
            let event = runtime
                .block_on(store.get(&args.id))
                .map_err(|e| Failure::runtime(e.to_string()))?
                .ok_or_else(|| Failure {
                    message: format!("no event {}", args.id),
                    code: crate::EXIT_REFUSED,
                })?;
            let deliveries = runtime
                .block_on(store.deliveries(&args.id))
                .map_err(|e| Failure::runtime(e.to_string()))?;
            let body = String::from_utf8(event.body.to_vec());
            if args.json {
                let mut json = serde_json::to_value(&event).expect("events serialise");
                json["received_at"] = rfc3339(event.summary.received_at_ms).into();
                json["body"] = match &body {
                    Ok(text) => text.clone().into(),
                    Err(_) => hookgate_verify::Encoding::Base64.encode(&event.body).into(),
                };
                json["body_encoding"] = if body.is_ok() { "utf-8" } else { "base64" }.into();
                json["deliveries"] =
                    serde_json::to_value(&deliveries).expect("deliveries serialise");
                outln!("{}", serde_json::to_string_pretty(&json).expect("JSON"));
            } else {
                let s = &event.summary;
                outln!("id:           {}", s.id);
                outln!("received:     {}", rfc3339(s.received_at_ms));
                outln!("source:       {}", s.source);
                outln!("request:      {} {}", event.method, event.path);
                outln!("event id:     {}", s.dedupe_key.as_deref().unwrap_or("-"));
                outln!("topic:        {}", s.topic.as_deref().unwrap_or("-"));
                outln!("tenant:       {}", s.tenant.as_deref().unwrap_or("-"));
                outln!(
                    "provider ts:  {}",
                    event.provider_timestamp.as_deref().unwrap_or("-")
                );
                outln!("verified:     {}", event.verification);
                outln!("headers:");
                for (name, value) in &event.headers {
                    outln!("  {name}: {value}");
                }
                match body {
                    Ok(text) => outln!("body ({} bytes):\n{text}", s.size),
                    Err(_) => outln!(
                        "body ({} bytes, base64):\n{}",
                        s.size,
                        hookgate_verify::Encoding::Base64.encode(&event.body)
                    ),
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn replay(args: ReplayArgs, runtime: &tokio::runtime::Runtime) -> CommandResult {
    let filtered = args.id.is_some()
        || args.source.is_some()
        || args.topic.is_some()
        || args.status.is_some()
        || args.since.is_some()
        || args.until.is_some();
    if !filtered && !args.all {
        return Err(Failure::config("name an event id or a filter (--source, --topic, --status, --since, --until), or pass --all"));
    }
    let (store, config) = open_with_config(&args.store)?;
    if let (Some(name), Some(config)) = (&args.destination, &config) {
        if !config.destinations.iter().any(|d| &d.name == name) {
            return Err(Failure::config(format!(
                "{}: no destination named `{name}`",
                config.file
            )));
        }
    }
    let filter = hookgate_store::ReplayFilter {
        event_id: args.id.clone(),
        source: args.source.clone(),
        topic: args.topic.clone(),
        status: args.status.clone(),
        since_ms: millis("--since", &args.since)?,
        until_ms: millis("--until", &args.until)?,
    };
    let candidates = runtime
        .block_on(store.replay_candidates(filter))
        .map_err(|e| Failure::runtime(e.to_string()))?;
    if args.id.is_some() && candidates.is_empty() {
        return Err(Failure {
            message: format!("no event {}", args.id.unwrap_or_default()),
            code: crate::EXIT_REFUSED,
        });
    }
    let mut targets = Vec::new();
    let mut without = 0;
    for (event, existing) in &candidates {
        let mut destinations = match &args.destination {
            Some(one) => vec![one.clone()],
            None => existing.clone(),
        };
        if args.destination.is_none() {
            if let Some(config) = &config {
                for d in config.routes.destinations(
                    &event.summary.source,
                    event.summary.topic.as_deref(),
                    &event.body,
                ) {
                    if !destinations.contains(&d) {
                        destinations.push(d);
                    }
                }
            }
        }
        if destinations.is_empty() {
            without += 1;
        }
        targets.extend(
            destinations
                .into_iter()
                .map(|d| (event.summary.id.clone(), d)),
        );
    }
    let progress = indicatif::ProgressBar::new(targets.len() as u64);
    progress.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} deliveries {elapsed}")
            .expect("a valid template"),
    );
    let now = (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64;
    let mut done = 0;
    for chunk in targets.chunks(500) {
        done += runtime
            .block_on(store.replay(chunk.to_vec(), now))
            .map_err(|e| Failure::runtime(e.to_string()))?;
        progress.set_position(done as u64);
    }
    progress.finish_and_clear();
    runtime.block_on(store.close());
    outln!(
        "replayed {done} deliveries of {} event(s){}",
        candidates.len(),
        if without > 0 {
            format!("; {without} event(s) have no destination (add a route, or pass --destination)")
        } else {
            String::new()
        }
    );
    Ok(ExitCode::SUCCESS)
}
