//! Sinks: how a destination delivers. One module each, with its configuration, build and
//! delivery together: `http` (the original body, re-signed as Standard Webhooks),
//! `command` (a program with the body on stdin), `file` (one fsynced JSON line per
//! event). Adding a sink is a module here and an arm in [`Sink`] and [`build`].

mod command;
mod file;
mod http;

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
        "nats" | "redis" | "amqp" | "kafka" => {
            return Err((
                "kind".into(),
                format!(
                    "`{kind}` destinations are not part of this version; use http, command or file"
                ),
            ))
        }
        other => {
            return Err((
                "kind".into(),
                format!("unknown kind `{other}`; use http, command or file"),
            ))
        }
    };
    if let Some(unknown) = table.keys().find(|k| !keys.contains(&k.as_str())) {
        return Err((
            unknown.clone(),
            format!(
                "is not a key of kind `{kind}` (its keys: {})",
                keys.join(", ")
            ),
        ));
    }
    let (sink, concurrency) = match kind {
        "http" => http::build(config(table)?, timeout)?,
        "command" => command::build(config(table)?, timeout, base)?,
        _ => file::build(config(table)?, base)?,
    };
    if concurrency == 0 {
        return Err(("concurrency".into(), "must be at least 1".into()));
    }
    Ok((sink, concurrency))
}

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
}

impl Sink {
    /// `http`, `command` or `file`.
    pub fn kind(&self) -> &'static str {
        match self {
            Sink::Http(_) => "http",
            Sink::Command(_) => "command",
            Sink::File(_) => "file",
        }
    }

    /// Makes one attempt of `message`.
    pub async fn deliver(&self, message: &Message<'_>) -> AttemptReport {
        match self {
            Sink::Http(s) => s.deliver(message).await,
            Sink::Command(s) => s.deliver(message).await,
            Sink::File(s) => s.deliver(message).await,
        }
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
