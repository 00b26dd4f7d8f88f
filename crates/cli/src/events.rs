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
    /// Show one event: metadata, verification, headers (credentials redacted) and body.
    #[command(after_help = "Example:\n  hookgate events show 019a3b5c-…")]
    Show(ShowArgs),
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
    let url = match &args.store {
        Some(url) => url.clone(),
        None if args.config.exists() => {
            hookgate_server::Config::load(
                &args.config,
                &hookgate_server::config::ProcessEnvironment,
            )
            .map_err(Failure::config)?
            .store_url
        }
        None => hookgate_server::config::DEFAULT_STORE_URL.to_owned(),
    };
    if let Some(path) = url.strip_prefix("sqlite://") {
        if !std::path::Path::new(path).exists() {
            return Err(Failure::config(format!("no store at {path} (has `hookgate serve` run here? pass --store URL or --config FILE)")));
        }
    }
    Store::open(&url, &StoreOptions::default()).map_err(|e| Failure::runtime(e.to_string()))
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
        EventsCommand::List(args) => {
            let store = open(&args.store)?;
            let filter = ListFilter {
                source: args.source.clone(),
                topic: args.topic.clone(),
                since_ms: millis("--since", &args.since)?,
                until_ms: millis("--until", &args.until)?,
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
            let body = String::from_utf8(event.body.clone());
            if args.json {
                let mut json = serde_json::to_value(&event).expect("events serialise");
                json["received_at"] = rfc3339(event.summary.received_at_ms).into();
                json["body"] = match &body {
                    Ok(text) => text.clone().into(),
                    Err(_) => hookgate_verify::Encoding::Base64.encode(&event.body).into(),
                };
                json["body_encoding"] = if body.is_ok() { "utf-8" } else { "base64" }.into();
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
