//! `hookgate events list|show|replay`: the stored events.
//!
//! These read only what they need of a configuration (the store URL, destination names and
//! routes; see [`Operations`]), so an operator runs them without the sources' secrets.
//! Text output escapes control characters: bodies and headers come from providers, and a
//! signed body holding `ESC[2J` must not clear the operator's terminal.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use hookgate_server::config::{Operations, ProcessEnvironment};
use hookgate_server::replay::{self, ReplayRequest};
use hookgate_server::rfc3339;
use hookgate_store::{EventStatus, ListFilter, Store, StoreOptions};

use crate::{CommandResult, Failure};

#[derive(Subcommand)]
pub(crate) enum EventsCommand {
    /// List stored events, newest first.
    #[command(after_help = "Examples:
  hookgate events list --source github --since 2026-11-01
  hookgate events list --topic 'orders/*' --status dead --json
  hookgate events list --before 019a3b5c-…          # the next page")]
    List(ListArgs),
    /// Show one event: metadata, verification, headers (credentials redacted), body, and
    /// each delivery with every attempt.
    #[command(after_help = "Examples:
  hookgate events show 019a3b5c-…
  hookgate events show --source stripe --provider-id evt_1NG8…")]
    Show(ShowArgs),
    /// Deliver events again: one, or all that match, to every destination or one. Only
    /// what did not succeed (dead or pending deliveries, destinations the routes now add)
    /// unless --include-delivered. New attempts carry the same webhook-id, so receivers
    /// can drop repeats.
    #[command(after_help = "Examples:
  hookgate events replay 019a3b5c-…
  hookgate events replay --status dead --destination orders
  hookgate events replay --source github --since 2026-11-01 --until 2026-11-02 --dry-run
  hookgate events replay 019a3b5c-… --include-delivered   # send again what succeeded
  hookgate events replay --status unrouted          # after adding a route")]
    Replay(ReplayArgs),
    /// Delete finished events past their retention now (`serve` does this by itself when
    /// `[store] retention` is set). An event with a pending delivery is never deleted.
    #[command(after_help = "Examples:
  hookgate events prune --dry-run                  # what the configuration's retention deletes now
  hookgate events prune --older-than 90d")]
    Prune(PruneArgs),
}

#[derive(Args)]
pub(crate) struct PruneArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Delete finished events older than this, whatever the configuration says.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub older_than: Option<std::time::Duration>,
    /// Print what would be deleted; delete nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Args)]
pub(crate) struct StoreArgs {
    /// The configuration whose store (and routes) to use; its sources' secrets need not
    /// be set.
    #[arg(long, short, default_value = "hookgate.toml")]
    pub config: PathBuf,
    /// The store URL (instead of the configuration's).
    #[arg(long)]
    pub store: Option<String>,
}

#[derive(Args)]
pub(crate) struct FilterArgs {
    /// Only this source.
    #[arg(long)]
    pub source: Option<String>,
    /// Only topics matching this glob (`*` any run, `?` one character).
    #[arg(long)]
    pub topic: Option<String>,
    /// Only this tenant.
    #[arg(long)]
    pub tenant: Option<String>,
    /// Only this provider event id (the dedupe key).
    #[arg(long)]
    pub provider_id: Option<String>,
    /// Received at or after (RFC 3339, a date, or Unix seconds).
    #[arg(long)]
    pub since: Option<String>,
    /// Received before.
    #[arg(long)]
    pub until: Option<String>,
    /// Only events with a delivery in this state, or unrouted events.
    #[arg(long, value_parser = ["pending", "delivered", "dead", "unrouted"])]
    pub status: Option<String>,
}

impl FilterArgs {
    fn to_filter(&self) -> Result<ListFilter, Failure> {
        Ok(ListFilter {
            source: self.source.clone(),
            topic: self.topic.clone(),
            tenant: self.tenant.clone(),
            provider_id: self.provider_id.clone(),
            since_ms: millis("--since", &self.since)?,
            until_ms: millis("--until", &self.until)?,
            status: self.status.as_deref().and_then(EventStatus::parse),
            ..Default::default()
        })
    }
}

#[derive(Args)]
pub(crate) struct ListArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub filter: FilterArgs,
    /// At most this many.
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
    /// Only events older than this id (the last id of the previous page).
    #[arg(long)]
    pub before: Option<String>,
    /// JSON output (one array), for scripts.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub(crate) struct ShowArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// The event id (or find it with --provider-id).
    #[arg(required_unless_present = "provider_id")]
    pub id: Option<String>,
    /// Find the event by the provider's event id (with --source when several sources
    /// may share it).
    #[arg(long, conflicts_with = "id")]
    pub provider_id: Option<String>,
    /// The source, with --provider-id.
    #[arg(long, requires = "provider_id")]
    pub source: Option<String>,
    /// JSON output, the body included (base64 when not UTF-8).
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub(crate) struct ReplayArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// One event.
    pub id: Option<String>,
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Only to this destination (default: the event's destinations and what the routes now say).
    #[arg(long)]
    pub destination: Option<String>,
    /// Also send again where the event was already delivered.
    #[arg(long)]
    pub include_delivered: bool,
    /// Print what would be replayed; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Replay every stored event (needed when no other filter is given).
    #[arg(long)]
    pub all: bool,
}

/// The store, and what the configuration says of destinations and routes when there is one.
fn open(
    args: &StoreArgs,
    runtime: &tokio::runtime::Runtime,
) -> Result<(Store, Option<Operations>), Failure> {
    let operations = if args.config.exists() {
        Some(Operations::load(&args.config, &ProcessEnvironment).map_err(Failure::config)?)
    } else {
        None
    };
    let url = match (&args.store, &operations) {
        (Some(url), _) => url.clone(),
        (None, Some(o)) => o.store_url.clone(),
        (None, None) => hookgate_server::config::DEFAULT_STORE_URL.to_owned(),
    };
    if let Some(path) = url.strip_prefix("sqlite://") {
        if !std::path::Path::new(path).exists() {
            return Err(Failure::config(format!("no store at {path} (has `hookgate serve` run here? pass --store URL or --config FILE)")));
        }
    }
    let store = runtime
        .block_on(Store::open(&url, &StoreOptions::default()))
        .map_err(|e| Failure::runtime(e.to_string()))?;
    Ok((store, operations))
}

fn millis(key: &str, text: &Option<String>) -> Result<Option<i64>, Failure> {
    text.as_deref()
        .map(|t| {
            hookgate_server::parse_time_ms(t).map_err(|e| Failure::config(format!("{key}: {e}")))
        })
        .transpose()
}

/// `text` with control characters escaped (`\x1b`, `\u{9b}`), so what a provider sent
/// cannot drive the terminal; `multiline` keeps line breaks and tabs.
pub(crate) fn printable(text: &str, multiline: bool) -> std::borrow::Cow<'_, str> {
    let keep = |c: char| multiline && matches!(c, '\n' | '\t');
    if !text.chars().any(|c| c.is_control() && !keep(c)) {
        return text.into();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() && !keep(c) {
            if (c as u32) < 0x100 {
                out.push_str(&format!("\\x{:02x}", c as u32));
            } else {
                out.push_str(&format!("\\u{{{:x}}}", c as u32));
            }
        } else {
            out.push(c);
        }
    }
    out.into()
}

fn or_dash(text: &Option<String>) -> std::borrow::Cow<'_, str> {
    text.as_deref().map_or("-".into(), |t| printable(t, false))
}

pub(crate) fn run(command: EventsCommand) -> CommandResult {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::runtime(e.to_string()))?;
    match command {
        EventsCommand::Replay(args) => replay(args, &runtime),
        EventsCommand::List(args) => list(args, &runtime),
        EventsCommand::Show(args) => show(args, &runtime),
        EventsCommand::Prune(args) => prune(args, &runtime),
    }
}

fn list(args: ListArgs, runtime: &tokio::runtime::Runtime) -> CommandResult {
    let (store, _) = open(&args.store, runtime)?;
    let mut filter = args.filter.to_filter()?;
    filter.limit = Some(args.limit);
    filter.before = args.before.clone().map(hookgate_store::EventId);
    let events = runtime
        .block_on(store.list(filter))
        .map_err(|e| Failure::runtime(e.to_string()))?;
    if args.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&events).expect("events serialise")
        );
        return Ok(ExitCode::SUCCESS);
    }
    outln!(
        "{:<36}  {:<24}  {:<12}  {:<24}  {:<36}  {:<9}  {:>7}",
        "ID",
        "RECEIVED",
        "SOURCE",
        "TOPIC",
        "EVENT ID",
        "STATUS",
        "BYTES"
    );
    for e in &events {
        outln!(
            "{:<36}  {:<24}  {:<12}  {:<24}  {:<36}  {:<9}  {:>7}",
            e.id,
            rfc3339(e.received_at_ms),
            printable(&e.source, false),
            or_dash(&e.topic),
            or_dash(&e.dedupe_key),
            e.status.as_str(),
            e.size
        );
    }
    eprintln!("{} event(s)", events.len());
    Ok(ExitCode::SUCCESS)
}

fn show(args: ShowArgs, runtime: &tokio::runtime::Runtime) -> CommandResult {
    let (store, _) = open(&args.store, runtime)?;
    let not_found = |what: String| Failure {
        message: format!("no event {what}"),
        code: crate::EXIT_REFUSED,
    };
    let id = match (&args.id, &args.provider_id) {
        (Some(id), _) => id.clone(),
        (None, Some(provider_id)) => {
            let found = runtime
                .block_on(store.list(ListFilter {
                    source: args.source.clone(),
                    provider_id: Some(provider_id.clone()),
                    limit: Some(2),
                    ..Default::default()
                }))
                .map_err(|e| Failure::runtime(e.to_string()))?;
            match found.as_slice() {
                [one] => one.id.to_string(),
                [] => return Err(not_found(format!("with provider id {provider_id}"))),
                _ => {
                    return Err(Failure::config(format!(
                        "several sources have an event {provider_id}; add --source"
                    )))
                }
            }
        }
        (None, None) => return Err(Failure::config("name an event id, or --provider-id")),
    };
    let event = runtime
        .block_on(store.get(&id))
        .map_err(|e| Failure::runtime(e.to_string()))?
        .ok_or_else(|| not_found(id.clone()))?;
    let deliveries = runtime
        .block_on(store.deliveries(&id))
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
        json["deliveries"] = serde_json::to_value(&deliveries).expect("deliveries serialise");
        outln!("{}", serde_json::to_string_pretty(&json).expect("JSON"));
        return Ok(ExitCode::SUCCESS);
    }
    let s = &event.summary;
    outln!("id:           {}", s.id);
    outln!("received:     {}", rfc3339(s.received_at_ms));
    outln!("source:       {}", printable(&s.source, false));
    outln!(
        "request:      {} {}",
        printable(&event.method, false),
        printable(&event.path, false)
    );
    outln!("event id:     {}", or_dash(&s.dedupe_key));
    outln!("topic:        {}", or_dash(&s.topic));
    outln!("tenant:       {}", or_dash(&s.tenant));
    outln!("provider ts:  {}", or_dash(&event.provider_timestamp));
    outln!("status:       {}", s.status);
    let verified = |key: &str| {
        event
            .verification
            .get(key)
            .and_then(|v| v.as_str())
            .map(|v| format!(" {key}={}", printable(v, false)))
            .unwrap_or_default()
    };
    outln!(
        "verified:    {}{}{}{}",
        verified("scheme"),
        verified("key_id"),
        verified("issuer"),
        verified("subject")
    );
    outln!("headers:");
    for (name, value) in &event.headers {
        outln!("  {}: {}", printable(name, false), printable(value, false));
    }
    match &body {
        Ok(text) => outln!("body ({} bytes):\n{}", s.size, printable(text, true)),
        Err(_) => outln!(
            "body ({} bytes, base64):\n{}",
            s.size,
            hookgate_verify::Encoding::Base64.encode(&event.body)
        ),
    }
    if deliveries.is_empty() {
        outln!("deliveries:   none (unrouted)");
    } else {
        outln!("deliveries:");
    }
    for d in &deliveries {
        let next = if d.status == hookgate_store::DeliveryStatus::Pending {
            format!(", next attempt {}", rfc3339(d.next_at_ms))
        } else {
            String::new()
        };
        outln!(
            "  {}: {} after {} attempt(s){next} (webhook-id {})",
            printable(&d.destination, false),
            d.status,
            d.attempts,
            d.webhook_id
        );
        for a in &d.history {
            let code = a.status_code.map(|c| format!(" {c}")).unwrap_or_default();
            let error = a
                .error
                .as_deref()
                .map(|e| format!(": {}", printable(e, false)))
                .unwrap_or_default();
            outln!(
                "    {}  {}{code} in {} ms{error}",
                rfc3339(a.started_at_ms),
                a.outcome,
                a.duration_ms
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn replay(args: ReplayArgs, runtime: &tokio::runtime::Runtime) -> CommandResult {
    let mut filter = args.filter.to_filter()?;
    filter.event_id = args.id.clone().map(hookgate_store::EventId);
    let request = ReplayRequest {
        filter,
        destination: args.destination.clone(),
        include_delivered: args.include_delivered,
    };
    if !request.is_filtered() && !args.all {
        return Err(Failure::config("name an event id or a filter (--source, --topic, --tenant, --provider-id, --status, --since, --until), or pass --all"));
    }
    let (store, operations) = open(&args.store, runtime)?;
    if let (Some(name), Some(operations)) = (&args.destination, &operations) {
        if !operations.destinations.contains(name) {
            return Err(Failure::config(format!(
                "{}: no destination named `{name}`",
                operations.file
            )));
        }
    }
    let routes = operations.as_ref().map(|o| &o.routes);
    let plan = runtime
        .block_on(replay::plan(&store, routes, &request))
        .map_err(|e| Failure::runtime(e.to_string()))?;
    if args.id.is_some() && plan.events == 0 {
        return Err(Failure {
            message: format!("no event {}", args.id.unwrap_or_default()),
            code: crate::EXIT_REFUSED,
        });
    }
    let mut notes = Vec::new();
    if plan.skipped_delivered > 0 {
        notes.push(format!(
            "{} already delivered, left alone (pass --include-delivered to send them again)",
            plan.skipped_delivered
        ));
    }
    if plan.without_destination > 0 {
        notes.push(format!(
            "{} event(s) have no destination (add a route, or pass --destination)",
            plan.without_destination
        ));
    }
    let notes = if notes.is_empty() {
        String::new()
    } else {
        format!("; {}", notes.join("; "))
    };
    if args.dry_run {
        for (event, destination) in &plan.targets {
            outln!("{event}  {}", printable(destination, false));
        }
        outln!(
            "would replay {} deliveries of {} event(s){notes}",
            plan.targets.len(),
            plan.events
        );
        return Ok(ExitCode::SUCCESS);
    }
    let progress = indicatif::ProgressBar::new(plan.targets.len() as u64);
    progress.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} deliveries {elapsed}")
            .expect("a valid template"),
    );
    let done = runtime
        .block_on(replay::apply(&store, &plan, |n| {
            progress.set_position(n as u64)
        }))
        .map_err(|e| Failure::runtime(e.to_string()))?;
    progress.finish_and_clear();
    runtime.block_on(store.close());
    outln!(
        "replayed {done} deliveries of {} event(s){notes}",
        plan.events
    );
    Ok(ExitCode::SUCCESS)
}

fn prune(args: PruneArgs, runtime: &tokio::runtime::Runtime) -> CommandResult {
    let (store, operations) = open(&args.store, runtime)?;
    let now = hookgate_server::now_ms();
    let rules = match (args.older_than, &operations) {
        (Some(keep), _) => hookgate_server::retention::rules(Some(keep), &[], now),
        (None, Some(o)) => hookgate_server::retention::rules(o.retention, &o.source_retention, now),
        (None, None) => Vec::new(),
    };
    if rules.is_empty() {
        return Err(Failure::config(
            "no retention: set [store] retention (or a source's retention) in the configuration, or pass --older-than",
        ));
    }
    let per_source = if args.dry_run {
        runtime.block_on(store.prunable(rules))
    } else {
        runtime.block_on(hookgate_server::retention::prune_all(
            &store,
            &rules,
            |_| {},
        ))
    }
    .map_err(|e| Failure::runtime(e.to_string()))?;
    runtime.block_on(store.close());
    let total: u64 = per_source.iter().map(|(_, n)| n).sum();
    for (source, n) in &per_source {
        outln!("{:<24}  {n:>9}", printable(source, false));
    }
    outln!(
        "{} {total} finished event(s) past retention",
        if args.dry_run {
            "would prune"
        } else {
            "pruned"
        }
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::printable;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(printable("plain", false), "plain");
        assert_eq!(printable("\x1b[2Jx", false), "\\x1b[2Jx");
        assert_eq!(printable("\x1b]0;title\x07", false), "\\x1b]0;title\\x07");
        assert_eq!(printable("a\nb\tc\u{9b}", true), "a\nb\tc\\x9b");
        assert_eq!(printable("a\nb", false), "a\\x0ab");
        assert_eq!(printable("\u{2028}", false), "\u{2028}");
    }
}
