//! `nats`: publish to JetStream and wait for the stream's acknowledgement.
//!
//! `Nats-Msg-Id` is the webhook-id, so a repeat within the stream's duplicate window (a
//! retry after a lost acknowledgement, a replay) is dropped by JetStream itself. The
//! client reconnects on its own once connected; publishes made meanwhile fail their
//! attempt when no acknowledgement comes within the timeout, and are retried.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use super::broker::{self, BrokerKeys, Endpoint, Shared};
use super::naming::{replace, NameTemplate};
use super::{AttemptReport, Message, Sink};

/// `[[destination]] kind = "nats"`: its own keys.
#[derive(Debug, Deserialize)]
pub(super) struct NatsConfig {
    #[serde(flatten)]
    broker: BrokerKeys,
    /// The subject, a template: `webhooks.{source}.{topic}`.
    subject: Option<String>,
    /// A token, instead of a user and password.
    token: Option<String>,
    /// The stream expected to take the subject: `check-config` says whether it exists.
    stream: Option<String>,
    /// Create `stream` at start (file storage, over the subject's prefix) if missing.
    create_stream: Option<bool>,
}

/// The keys of `kind = "nats"` (besides the common ones).
pub(super) const KEYS: &[&str] = &["subject", "token", "stream", "create_stream"];

/// Validates the keys; errors name the key.
pub(super) fn build(
    config: NatsConfig,
    timeout: Duration,
    base: &Path,
) -> Result<(Sink, usize), (String, String)> {
    let err = |key: &str, message: String| (key.to_owned(), message);
    let concurrency = config.broker.concurrency.unwrap_or(64);
    let mut endpoint = config.broker.endpoint("nats", "nats", "tls", base)?;
    if config.token.is_some() && endpoint.username.is_some() {
        return Err(err(
            "token",
            "set either `token` or `username`, not both".into(),
        ));
    }
    endpoint.token = config.token;
    let text = config
        .subject
        .ok_or_else(|| err("subject", "a nats destination needs `subject`".into()))?;
    let subject = NameTemplate::parse(&text).map_err(|e| err("subject", e))?;
    for literal in subject.literals() {
        if let Some(c) = literal.chars().find(|&c| bad_in_subject(c)) {
            return Err(err(
                "subject",
                format!("`{text}` holds {c:?}, which a subject cannot"),
            ));
        }
    }
    let sample = subject.render(&sample_event(), |_| "x".into());
    if sample.split('.').any(str::is_empty) {
        return Err(err("subject", format!("`{text}` has an empty token")));
    }
    let create = config.create_stream.unwrap_or(false);
    let stream = match (config.stream, create) {
        (None, true) => {
            return Err(err(
                "create_stream",
                "name the stream to create in `stream`".into(),
            ))
        }
        (None, false) => None,
        (Some(name), _) => {
            if name.is_empty() || name.contains(['.', '*', '>', ' ', '/', '\\']) {
                return Err(err(
                    "stream",
                    format!("`{name}` is not a stream name (no spaces, `.`, `*`, `>`, `/`)"),
                ));
            }
            let subjects = if create {
                Some(vec![stream_subjects(&subject).ok_or_else(|| {
                    err(
                        "create_stream",
                        format!("the stream's subjects cannot be told from `{text}`: start each placeholder a token (e.g. `webhooks.{{source}}.{{topic}}`), or create the stream yourself"),
                    )
                })?])
            } else {
                None
            };
            Some(StreamSetup { name, subjects })
        }
    };
    Ok((
        Sink::Nats(Box::new(NatsSink {
            endpoint,
            subject,
            stream,
            timeout,
            concurrency,
            connection: Shared::default(),
        })),
        concurrency,
    ))
}

/// The longest subject published: the server takes a protocol line of 4 KiB by default,
/// and an event whose subject could never be taken must not cost the connection.
const MAX_SUBJECT: usize = 2048;

/// What a subject's token cannot hold.
fn bad_in_subject(c: char) -> bool {
    c.is_whitespace() || c == '*' || c == '>'
}

/// The subject filter of a stream made for `subject`: the subject itself when it is
/// constant, else its literal tokens before the first placeholder and `>`.
fn stream_subjects(subject: &NameTemplate) -> Option<String> {
    match subject.prefix() {
        (whole, true) => Some(whole.to_owned()),
        (prefix, false) if prefix.ends_with('.') => Some(format!("{prefix}>")),
        _ => None,
    }
}

fn sample_event() -> hookgate_store::EventRecord {
    hookgate_store::EventRecord {
        summary: hookgate_store::EventSummary {
            id: hookgate_store::EventId("x".into()),
            source: "x".into(),
            dedupe_key: None,
            topic: None,
            tenant: None,
            received_at_ms: 0,
            size: 0,
            status: hookgate_store::EventStatus::Pending,
        },
        provider_timestamp: None,
        method: "POST".into(),
        path: "/".into(),
        headers: Vec::new(),
        body: bytes::Bytes::new(),
        verification: serde_json::Value::Null,
        routed: true,
    }
}

#[derive(Debug)]
struct StreamSetup {
    name: String,
    /// Set when the stream is created at start.
    subjects: Option<Vec<String>>,
}

/// `nats`: the body as the payload, hookgate's metadata as headers.
#[derive(Debug)]
pub struct NatsSink {
    endpoint: Endpoint,
    subject: NameTemplate,
    stream: Option<StreamSetup>,
    timeout: Duration,
    concurrency: usize,
    connection: Shared<async_nats::jetstream::Context>,
}

impl NatsSink {
    /// Connects (and creates the stream when so configured); owns what it needs, as it
    /// runs in a task of its own.
    fn connect(
        &self,
    ) -> impl std::future::Future<Output = Result<async_nats::jetstream::Context, String>> + Send + 'static
    {
        let (endpoint, timeout, concurrency) =
            (self.endpoint.clone(), self.timeout, self.concurrency);
        let create = self.stream.as_ref().and_then(|stream| {
            stream
                .subjects
                .clone()
                .map(|subjects| (stream.name.clone(), subjects))
        });
        async move {
            let mut options = async_nats::ConnectOptions::new()
                .name("hookgate")
                .connection_timeout(timeout)
                .require_tls(endpoint.tls)
                // Reconnects are the client's own; the subscriptions it keeps are none.
                .max_reconnects(None::<usize>);
            if let (Some(user), Some(password)) = (&endpoint.username, &endpoint.password) {
                options = options.user_and_password(user.clone(), password.clone());
            }
            if let Some(token) = &endpoint.token {
                options = options.token(token.clone());
            }
            if let Some(ca) = &endpoint.tls_ca {
                options = options.add_root_certificates(ca.clone());
            }
            let url = endpoint.url.replacen("tls://", "nats://", 1);
            let client = options
                .connect(url)
                .await
                .map_err(|e| format!("cannot connect to NATS: {e}"))?;
            let context = async_nats::jetstream::ContextBuilder::new()
                .timeout(timeout)
                .max_ack_inflight(concurrency)
                .backpressure_on_inflight(true)
                .build(client);
            if let Some((name, subjects)) = create {
                let created = context
                    .get_or_create_stream(async_nats::jetstream::stream::Config {
                        name: name.clone(),
                        subjects,
                        ..Default::default()
                    })
                    .await;
                if let Err(e) = created {
                    return Err(format!("cannot create stream {name}: {e}"));
                }
            }
            Ok(context)
        }
    }

    /// Connects (and creates the stream if so configured) before the first delivery.
    pub(super) async fn prepare(&self) -> Result<(), String> {
        self.connection
            .get(self.timeout, || self.connect())
            .await
            .map(drop)
    }

    /// What the broker says of this destination, for `check-config`.
    pub(super) async fn probe(&self) -> Result<String, String> {
        let context = self.connection.get(self.timeout, || self.connect()).await?;
        let Some(stream) = &self.stream else {
            return Ok("connected".into());
        };
        match context.get_stream(&stream.name).await {
            Ok(mut found) => {
                let info = found
                    .info()
                    .await
                    .map_err(|e| format!("stream {}: {e}", stream.name))?;
                Ok(format!(
                    "stream {} exists ({} messages, subjects {})",
                    stream.name,
                    info.state.messages,
                    info.config.subjects.join(" ")
                ))
            }
            Err(e) => Err(format!(
                "stream {} cannot be read ({e}): deliveries fail until it exists (create it, or set create_stream = true)",
                stream.name
            )),
        }
    }

    pub(super) async fn deliver(&self, message: &Message<'_>) -> AttemptReport {
        let subject = self.subject.render(message.event, |v| {
            replace(v, bad_in_subject)
                .split('.')
                .map(|token| if token.is_empty() { "_" } else { token })
                .collect::<Vec<_>>()
                .join(".")
        });
        if subject.len() > MAX_SUBJECT {
            return broker::refused(format!(
                "the subject is {} bytes, more than the {MAX_SUBJECT} hookgate sends to NATS",
                subject.len()
            ));
        }
        let attempt = |context: std::sync::Arc<async_nats::jetstream::Context>| async move {
            let mut headers = async_nats::HeaderMap::new();
            for (name, value) in broker::metadata(message) {
                headers.insert(name, replace(value, |_| false).as_str());
            }
            let publish = async_nats::jetstream::message::PublishMessage::build()
                .payload(message.event.body.clone())
                .headers(headers)
                .message_id(message.key);
            let ack = match context.send_publish(subject.clone(), publish).await {
                Ok(pending) => pending.await,
                Err(e) => Err(e),
            };
            match ack {
                Ok(ack) if ack.duplicate => broker::acked(format!(
                    "duplicate: already in stream {} (seq {})",
                    ack.stream, ack.sequence
                )),
                Ok(ack) => broker::acked(format!("stream {} seq {}", ack.stream, ack.sequence)),
                Err(e) => {
                    use async_nats::jetstream::context::PublishErrorKind;
                    match e.kind() {
                        PublishErrorKind::StreamNotFound => {
                            broker::failed(format!("no stream takes subject {subject}"))
                        }
                        PublishErrorKind::MaxPayloadExceeded => {
                            broker::refused(format!("larger than the server's max_payload: {e}"))
                        }
                        _ => broker::failed(format!("publish to {subject} failed: {e}")),
                    }
                }
            }
        };
        self.connection
            .attempt(self.timeout, || self.connect(), attempt)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(subject: &str, stream: Option<&str>, create: bool) -> NatsConfig {
        NatsConfig {
            broker: BrokerKeys {
                url: Some("nats://127.0.0.1:4222".into()),
                username: None,
                password: None,
                tls_ca: None,
                concurrency: None,
            },
            subject: Some(subject.into()),
            token: None,
            stream: stream.map(str::to_owned),
            create_stream: Some(create),
        }
    }

    fn key(result: Result<(Sink, usize), (String, String)>) -> Option<String> {
        result.err().map(|(k, _)| k)
    }

    #[test]
    fn subjects_and_streams_are_checked() {
        let (t, base) = (Duration::from_secs(1), Path::new("/"));
        assert_eq!(
            key(build(config("a b.{topic}", None, false), t, base)),
            Some("subject".into())
        );
        assert_eq!(
            key(build(config("a..{topic}", None, false), t, base)),
            Some("subject".into())
        );
        assert_eq!(
            key(build(config("a.{body}", None, false), t, base)),
            Some("subject".into())
        );
        assert_eq!(
            key(build(config("a.{topic}", None, true), t, base)),
            Some("create_stream".into())
        );
        assert_eq!(
            key(build(config("a-{topic}", Some("S"), true), t, base)),
            Some("create_stream".into())
        );
        assert_eq!(
            key(build(config("a.{topic}", Some("a.b"), false), t, base)),
            Some("stream".into())
        );
        let (sink, concurrency) =
            build(config("a.{source}.{topic}", Some("S"), true), t, base).unwrap();
        let Sink::Nats(nats) = sink else { panic!() };
        assert_eq!(concurrency, 64);
        assert_eq!(nats.stream.unwrap().subjects, Some(vec!["a.>".to_string()]));
        let (sink, _) = build(config("fixed.subject", Some("S"), true), t, base).unwrap();
        let Sink::Nats(nats) = sink else { panic!() };
        assert_eq!(
            nats.stream.unwrap().subjects,
            Some(vec!["fixed.subject".to_string()])
        );
    }
}
