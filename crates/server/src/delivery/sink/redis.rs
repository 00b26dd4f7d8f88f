//! `redis`: `XADD` to a stream; the reply (the entry's id) is the acknowledgement.
//!
//! Redis has no message id to deduplicate on: an attempt whose reply was lost (a crash, a
//! connection cut after the write) is added again on retry, a second entry with the same
//! `webhook-id` field. Consumers drop repeats by that field.

use std::path::Path;
use std::time::Duration;

use redis::IntoConnectionInfo as _;
use serde::Deserialize;

use super::broker::{self, BrokerKeys, Endpoint, Shared};
use super::naming::NameTemplate;
use super::{AttemptReport, Message, Sink};

/// `[[destination]] kind = "redis"`: its own keys.
#[derive(Debug, Deserialize)]
pub(super) struct RedisConfig {
    #[serde(flatten)]
    broker: BrokerKeys,
    /// The stream's key, a template: `webhooks:{source}`.
    stream: Option<String>,
    /// Trims the stream to about this many entries on each add (`MAXLEN ~`).
    maxlen: Option<u64>,
}

/// The keys of `kind = "redis"` (besides the common ones).
pub(super) const KEYS: &[&str] = &["stream", "maxlen"];

/// The parser's own message may repeat the URL, password included: not used.
const NOT_A_URL: &str =
    "not a Redis URL: write redis://[user:password@]host[:port][/db] or rediss://…";

/// Validates the keys; errors name the key.
pub(super) fn build(
    config: RedisConfig,
    timeout: Duration,
    base: &Path,
) -> Result<(Sink, usize), (String, String)> {
    let err = |key: &str, message: String| (key.to_owned(), message);
    let concurrency = config.broker.concurrency.unwrap_or(64);
    let endpoint = config.broker.endpoint("redis", "redis", "rediss", base)?;
    // Parsed now, so a malformed URL is a configuration error, not a failed attempt.
    if endpoint.url.as_str().into_connection_info().is_err() {
        return Err(err("url", NOT_A_URL.into()));
    }
    let text = config
        .stream
        .ok_or_else(|| err("stream", "a redis destination needs `stream`".into()))?;
    let stream = NameTemplate::parse(&text).map_err(|e| err("stream", e))?;
    if config.maxlen == Some(0) {
        return Err(err("maxlen", "must be at least 1".into()));
    }
    Ok((
        Sink::Redis(Box::new(RedisSink {
            endpoint,
            stream,
            maxlen: config.maxlen,
            timeout,
            concurrency,
            connection: Shared::default(),
        })),
        concurrency,
    ))
}

/// `redis`: one entry per event with the fields `webhook-id`, `hookgate-event-id`,
/// `hookgate-source`, `hookgate-topic`, `hookgate-tenant` (when the event has them),
/// `content-type` and `body` (the bytes as received).
#[derive(Debug)]
pub struct RedisSink {
    endpoint: Endpoint,
    stream: NameTemplate,
    maxlen: Option<u64>,
    timeout: Duration,
    concurrency: usize,
    connection: Shared<redis::aio::ConnectionManager>,
}

impl RedisSink {
    /// Connects; owns what it needs, as it runs in a task of its own.
    fn connect(
        &self,
    ) -> impl std::future::Future<Output = Result<redis::aio::ConnectionManager, String>> + Send + 'static
    {
        let (endpoint, timeout, concurrency) =
            (self.endpoint.clone(), self.timeout, self.concurrency);
        async move {
            let info = endpoint
                .url
                .as_str()
                .into_connection_info()
                .map_err(|_| NOT_A_URL.to_owned())?;
            let mut settings = info.redis_settings().clone();
            if let Some(user) = &endpoint.username {
                settings = settings.set_username(user);
            }
            if let Some(password) = &endpoint.password {
                settings = settings.set_password(password);
            }
            let info = info.set_redis_settings(settings);
            let client = match endpoint.read_ca()? {
                Some(ca) => redis::Client::build_with_tls(
                    info,
                    redis::TlsCertificates {
                        client_tls: None,
                        root_cert: Some(ca),
                    },
                ),
                None => redis::Client::open(info),
            }
            .map_err(|e| format!("cannot set up the Redis client: {e}"))?;
            // One multiplexed connection: concurrent XADDs are pipelined on it, which is where
            // the throughput comes from. It reconnects by itself after a failure.
            let config = redis::aio::ConnectionManagerConfig::new()
                .set_connection_timeout(Some(timeout))
                .set_response_timeout(Some(timeout))
                .set_number_of_retries(1)
                .set_concurrency_limit(concurrency.max(1));
            redis::aio::ConnectionManager::new_with_config(client, config)
                .await
                .map_err(|e| format!("cannot connect to Redis: {e}"))
        }
    }

    /// Connects before the first delivery.
    pub(super) async fn prepare(&self) -> Result<(), String> {
        self.connection
            .get(self.timeout, || self.connect())
            .await
            .map(drop)
    }

    /// What the broker says of this destination, for `check-config`.
    pub(super) async fn probe(&self) -> Result<String, String> {
        let connection = self.connection.get(self.timeout, || self.connect()).await?;
        let pong: String = redis::cmd("PING")
            .query_async(&mut (*connection).clone())
            .await
            .map_err(|e| format!("PING failed: {e}"))?;
        Ok(format!("connected ({pong})"))
    }

    pub(super) async fn deliver(&self, message: &Message<'_>) -> AttemptReport {
        let stream = self.stream.render(message.event, str::to_owned);
        let attempt = |connection: std::sync::Arc<redis::aio::ConnectionManager>| async move {
            let mut command = redis::cmd("XADD");
            command.arg(&stream);
            if let Some(n) = self.maxlen {
                command.arg("MAXLEN").arg("~").arg(n);
            }
            command.arg("*");
            for (name, value) in broker::metadata(message) {
                command.arg(name).arg(value);
            }
            command.arg("body").arg(&message.event.body[..]);
            match command
                .query_async::<String>(&mut (*connection).clone())
                .await
            {
                Ok(id) => broker::acked(format!("{stream} {id}")),
                Err(e) => broker::failed(format!("XADD to {stream} failed: {e}")),
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

    fn config(url: &str, stream: Option<&str>, maxlen: Option<u64>) -> RedisConfig {
        RedisConfig {
            broker: BrokerKeys {
                url: Some(url.into()),
                username: None,
                password: None,
                tls_ca: None,
                concurrency: None,
            },
            stream: stream.map(str::to_owned),
            maxlen,
        }
    }

    #[test]
    fn keys_are_checked_and_errors_name_them() {
        let (t, base) = (Duration::from_secs(1), Path::new("/"));
        let key = |r: Result<(Sink, usize), (String, String)>| r.err().map(|(k, _)| k);
        assert_eq!(
            key(build(config("http://h", Some("s"), None), t, base)),
            Some("url".into())
        );
        assert_eq!(
            key(build(config("redis://h", None, None), t, base)),
            Some("stream".into())
        );
        assert_eq!(
            key(build(config("redis://h", Some("s:{nope}"), None), t, base)),
            Some("stream".into())
        );
        assert_eq!(
            key(build(config("redis://h", Some("s"), Some(0)), t, base)),
            Some("maxlen".into())
        );
        let (sink, concurrency) = build(
            config("rediss://h:6380/2", Some("webhooks:{source}"), Some(1000)),
            t,
            base,
        )
        .unwrap();
        assert_eq!((sink.kind(), concurrency), ("redis", 64));
    }
}
