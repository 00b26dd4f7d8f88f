//! Sinks: how a destination delivers. One module each, with its configuration, build and
//! delivery together: `http` (the original body, re-signed as Standard Webhooks),
//! `command` (a program with the body on stdin), `file` (one fsynced JSON line per
//! event), and the brokers — `nats` (JetStream), `redis` (Streams), `amqp` (RabbitMQ),
//! `mqtt` — which share [`broker`]'s keys, metadata and connection handling. Adding a sink
//! is a module here and an arm in [`Sink`] and [`build`].
//!
//! A sink is handed one message at a time but is shared by all of a destination's
//! attempts in flight: the broker clients pipeline those on one connection (that is their
//! batching), so a destination's `concurrency` is also its batch.

mod amqp;
mod broker;
mod command;
mod file;
mod http;
mod mqtt;
pub mod naming;
mod nats;
mod redis;

use std::path::Path;
use std::time::Duration;

use hookgate_store::EventRecord;

use super::policy::Verdict;

pub use command::CommandSink;
pub use file::FileSink;
pub use http::{http_client, HttpClient, HttpSink};

/// One delivery to make: the event, a key that stays the same across every attempt of it
/// to this destination (the sink passes it on as the receiver's idempotency key: HTTP's
/// `webhook-id`, a broker's message id), and which attempt this is (from 1).
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    /// The event.
    pub event: &'a EventRecord,
    /// Stable per event and destination.
    pub key: &'a str,
    /// Attempt number, from 1.
    pub attempt: u32,
}

/// The sink of `kind` from its own keys (`table`: the destination's keys but the common
/// ones), with its concurrency. A key the kind does not have is an error naming it.
pub(crate) fn build(
    kind: &str,
    table: toml::Table,
    timeout: Duration,
    base: &Path,
) -> Result<(Sink, usize), (String, String)> {
    let keys: &[&str] = match kind {
        "http" => http::KEYS,
        "command" => command::KEYS,
        "file" => file::KEYS,
        "nats" => nats::KEYS,
        "redis" => redis::KEYS,
        "amqp" => amqp::KEYS,
        "mqtt" => mqtt::KEYS,
        "kafka" => {
            return Err((
                "kind".into(),
                "`kafka` destinations are not part of this version: no Kafka broker could be tested with it (README, Broker destinations); use nats, redis, amqp, mqtt, http, command or file".into(),
            ))
        }
        other => {
            return Err((
                "kind".into(),
                format!("unknown kind `{other}`; use {}", KINDS.join(", ")),
            ))
        }
    };
    let brokered = matches!(kind, "nats" | "redis" | "amqp" | "mqtt");
    let allowed = |k: &str| keys.contains(&k) || (brokered && broker::KEYS.contains(&k));
    if let Some(unknown) = table.keys().find(|k| !allowed(k)) {
        let mut all: Vec<&str> = keys.to_vec();
        if brokered {
            all.extend(broker::KEYS);
        }
        return Err((
            unknown.clone(),
            format!(
                "is not a key of kind `{kind}` (its keys: {})",
                all.join(", ")
            ),
        ));
    }
    let (sink, concurrency) = match kind {
        "http" => http::build(config(table)?, timeout)?,
        "command" => command::build(config(table)?, timeout, base)?,
        "nats" => nats::build(config(table)?, timeout, base)?,
        "redis" => redis::build(config(table)?, timeout, base)?,
        "amqp" => amqp::build(config(table)?, timeout, base)?,
        "mqtt" => mqtt::build(config(table)?, timeout, base)?,
        _ => file::build(config(table)?, base)?,
    };
    if concurrency == 0 {
        return Err(("concurrency".into(), "must be at least 1".into()));
    }
    Ok((sink, concurrency))
}

/// Every kind of destination.
pub const KINDS: &[&str] = &["http", "command", "file", "nats", "redis", "amqp", "mqtt"];

/// A kind's keys, deserialised; an error names the key.
fn config<T: serde::de::DeserializeOwned>(table: toml::Table) -> Result<T, (String, String)> {
    serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
        let path = e.path().to_string();
        let key = if path == "." { String::new() } else { path };
        (key, e.into_inner().to_string())
    })
}

/// Bytes of an answer kept with each attempt.
pub const SNIPPET: usize = 1024;

/// What an attempt produced.
#[derive(Debug)]
pub struct AttemptReport {
    /// The verdict for the retry policy.
    pub verdict: Verdict,
    /// HTTP status or exit code.
    pub status_code: Option<i64>,
    /// Up to [`SNIPPET`] bytes of the answer.
    pub response: Option<String>,
    /// What went wrong.
    pub error: Option<String>,
}

/// A configured destination's way of delivering.
#[derive(Debug)]
pub enum Sink {
    /// POST to a URL.
    Http(Box<HttpSink>),
    /// Run a program.
    Command(CommandSink),
    /// Append to a file.
    File(FileSink),
    /// Publish to NATS JetStream.
    Nats(Box<nats::NatsSink>),
    /// Add to a Redis stream.
    Redis(Box<redis::RedisSink>),
    /// Publish to an AMQP exchange.
    Amqp(Box<amqp::AmqpSink>),
    /// Publish to an MQTT broker.
    Mqtt(Box<mqtt::MqttSink>),
}

impl Sink {
    /// One of [`KINDS`].
    pub fn kind(&self) -> &'static str {
        match self {
            Sink::Http(_) => "http",
            Sink::Command(_) => "command",
            Sink::File(_) => "file",
            Sink::Nats(_) => "nats",
            Sink::Redis(_) => "redis",
            Sink::Amqp(_) => "amqp",
            Sink::Mqtt(_) => "mqtt",
        }
    }

    /// Makes one attempt of `message`.
    pub async fn deliver(&self, message: &Message<'_>) -> AttemptReport {
        match self {
            Sink::Http(s) => s.deliver(message).await,
            Sink::Command(s) => s.deliver(message).await,
            Sink::File(s) => s.deliver(message).await,
            Sink::Nats(s) => s.deliver(message).await,
            Sink::Redis(s) => s.deliver(message).await,
            Sink::Amqp(s) => s.deliver(message).await,
            Sink::Mqtt(s) => s.deliver(message).await,
        }
    }

    /// Connects a broker sink before its first delivery (and creates a NATS stream so
    /// configured). An error is only reported: attempts connect again.
    pub async fn prepare(&self) -> Result<(), String> {
        match self {
            Sink::Nats(s) => s.prepare().await,
            Sink::Redis(s) => s.prepare().await,
            Sink::Amqp(s) => s.prepare().await,
            Sink::Mqtt(s) => s.prepare().await,
            Sink::Http(_) | Sink::Command(_) | Sink::File(_) => Ok(()),
        }
    }

    /// For a broker sink, what its broker says (connected; a NATS stream's state), for
    /// `check-config`; `None` for the others.
    pub async fn probe(&self) -> Option<Result<String, String>> {
        Some(match self {
            Sink::Nats(s) => s.probe().await,
            Sink::Redis(s) => s.probe().await,
            Sink::Amqp(s) => s.probe().await,
            Sink::Mqtt(s) => s.probe().await,
            Sink::Http(_) | Sink::Command(_) | Sink::File(_) => return None,
        })
    }
}

fn header<'a>(event: &'a EventRecord, name: &str) -> Option<&'a str> {
    event
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn snippet(bytes: &[u8]) -> String {
    let cut = bytes.len().min(SNIPPET);
    String::from_utf8_lossy(&bytes[..cut]).into_owned()
}
