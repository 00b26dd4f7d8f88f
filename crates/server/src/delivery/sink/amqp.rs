//! `amqp` (RabbitMQ): publish with publisher confirms, persistent and mandatory.
//!
//! The broker's confirm is the acknowledgement. Mandatory: a message no queue is bound to
//! take comes back (`basic.return`) and the attempt fails, rather than succeeding into
//! nothing. `message_id` is the webhook-id. One connection and one confirm channel carry
//! every attempt; a failure drops both and the next attempt opens them again.

use std::path::Path;
use std::time::Duration;

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use serde::Deserialize;

use super::broker::{self, BrokerKeys, Endpoint, Shared};
use super::naming::{replace, NameTemplate};
use super::{AttemptReport, Message, Sink};

/// `[[destination]] kind = "amqp"`: its own keys.
#[derive(Debug, Deserialize)]
pub(super) struct AmqpConfig {
    #[serde(flatten)]
    broker: BrokerKeys,
    /// The exchange, a template; default `""` (the default exchange: the routing key
    /// names a queue).
    exchange: Option<String>,
    /// The routing key, a template: `{source}.{topic}`.
    routing_key: Option<String>,
}

/// The keys of `kind = "amqp"` (besides the common ones).
pub(super) const KEYS: &[&str] = &["exchange", "routing_key"];

/// AMQP's short strings (exchange names, routing keys) hold at most this many bytes.
const SHORT: usize = 255;

fn bad_in_exchange(c: char) -> bool {
    !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
}

/// Validates the keys; errors name the key.
pub(super) fn build(
    config: AmqpConfig,
    timeout: Duration,
    base: &Path,
) -> Result<(Sink, usize), (String, String)> {
    let err = |key: &str, message: String| (key.to_owned(), message);
    let concurrency = config.broker.concurrency.unwrap_or(64);
    let endpoint = config.broker.endpoint("amqp", "amqp", "amqps", base)?;
    if let Err(e) = endpoint.url.parse::<lapin::uri::AMQPUri>() {
        return Err(err("url", format!("not an AMQP URL: {e}")));
    }
    let exchange_text = config.exchange.unwrap_or_default();
    let exchange = NameTemplate::parse(&exchange_text).map_err(|e| err("exchange", e))?;
    if let Some(c) = exchange
        .literals()
        .flat_map(str::chars)
        .find(|&c| bad_in_exchange(c))
    {
        return Err(err(
            "exchange",
            format!("`{exchange_text}` holds {c:?}; exchange names are letters, digits, `-`, `_`, `.` and `:`"),
        ));
    }
    let text = config.routing_key.ok_or_else(|| {
        err(
            "routing_key",
            "an amqp destination needs `routing_key` (a queue's name, with the default exchange)"
                .into(),
        )
    })?;
    let routing_key = NameTemplate::parse(&text).map_err(|e| err("routing_key", e))?;
    Ok((
        Sink::Amqp(Box::new(AmqpSink {
            endpoint,
            exchange,
            routing_key,
            timeout,
            connection: Shared::default(),
        })),
        concurrency,
    ))
}

/// `amqp`: the body as the payload; `message_id` the webhook-id, `content_type` the
/// original one, persistent (delivery mode 2), hookgate's metadata as headers.
#[derive(Debug)]
pub struct AmqpSink {
    endpoint: Endpoint,
    exchange: NameTemplate,
    routing_key: NameTemplate,
    timeout: Duration,
    connection: Shared<Link>,
}

/// A connection and its confirm channel (dropping the connection closes it).
#[derive(Debug)]
struct Link {
    connection: lapin::Connection,
    channel: lapin::Channel,
}

impl AmqpSink {
    /// Connects and opens the confirm channel; owns what it needs, as it runs in a task
    /// of its own.
    fn connect(&self) -> impl std::future::Future<Output = Result<Link, String>> + Send + 'static {
        let (endpoint, timeout) = (self.endpoint.clone(), self.timeout);
        async move {
            let mut uri: lapin::uri::AMQPUri = endpoint
                .url
                .parse()
                .map_err(|e| format!("not an AMQP URL: {e}"))?;
            if let (Some(user), Some(password)) = (&endpoint.username, &endpoint.password) {
                uri.authority.userinfo = lapin::uri::AMQPUserInfo {
                    username: user.clone(),
                    password: password.clone(),
                };
            }
            uri.query.connection_timeout = Some(timeout.as_millis() as u64);
            let properties =
                lapin::ConnectionProperties::default().with_connection_name("hookgate".into());
            let runtime = lapin::runtime::default_runtime()
                .map_err(|e| format!("cannot start the AMQP client: {e}"))?;
            let tls = lapin::tcp::OwnedTLSConfig {
                identity: None,
                cert_chain: endpoint
                    .read_ca()?
                    .map(|pem| String::from_utf8_lossy(&pem).into_owned()),
            };
            let connection =
                lapin::Connection::connect_uri_with_config(uri, properties, tls, runtime)
                    .await
                    .map_err(|e| format!("cannot connect to the AMQP broker: {e}"))?;
            let channel = connection
                .create_channel()
                .await
                .map_err(|e| format!("cannot open a channel: {e}"))?;
            channel
                .confirm_select(ConfirmSelectOptions::default())
                .await
                .map_err(|e| format!("cannot turn on publisher confirms: {e}"))?;
            Ok(Link {
                connection,
                channel,
            })
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
        self.connection.get(self.timeout, || self.connect()).await?;
        Ok("connected, publisher confirms on".into())
    }

    pub(super) async fn deliver(&self, message: &Message<'_>) -> AttemptReport {
        let exchange = self
            .exchange
            .render(message.event, |v| replace(v, bad_in_exchange));
        let routing_key = self
            .routing_key
            .render(message.event, |v| replace(v, |_| false));
        if exchange.len() > SHORT || routing_key.len() > SHORT {
            return broker::refused(format!(
                "exchange `{exchange}` or routing key `{routing_key}` is longer than AMQP's {SHORT} bytes"
            ));
        }
        let attempt = |link: std::sync::Arc<Link>| async move {
            if !(link.connection.status().connected() && link.channel.status().connected()) {
                // Closed since its last use (the broker restarted, a heartbeat missed).
                self.connection.discard(&link);
                return broker::failed("the AMQP connection was closed; reconnecting");
            }
            let mut headers = FieldTable::default();
            let mut content_type = "application/json";
            for (name, value) in broker::metadata(message) {
                if name == "content-type" {
                    content_type = value;
                } else {
                    headers.insert(
                        ShortString::from(name),
                        AMQPValue::LongString(LongString::from(value.as_bytes().to_vec())),
                    );
                }
            }
            let properties = lapin::BasicProperties::default()
                .with_delivery_mode(2)
                .with_message_id(ShortString::from(message.key))
                .with_content_type(ShortString::from(content_type))
                .with_app_id(ShortString::from("hookgate"))
                .with_headers(headers);
            let published = link
                .channel
                .basic_publish(
                    ShortString::from(exchange.as_str()),
                    ShortString::from(routing_key.as_str()),
                    BasicPublishOptions {
                        mandatory: true,
                        ..BasicPublishOptions::default()
                    },
                    &message.event.body,
                    properties,
                )
                .await;
            let confirmation = match published {
                Ok(pending) => pending.await,
                Err(e) => Err(e),
            };
            let target = if exchange.is_empty() {
                format!("queue `{routing_key}` (default exchange)")
            } else {
                format!("exchange `{exchange}` with routing key `{routing_key}`")
            };
            match confirmation {
                Ok(lapin::Confirmation::Ack(None)) => {
                    broker::acked(format!("confirmed by {target}"))
                }
                Ok(lapin::Confirmation::Ack(Some(returned))) => broker::failed(format!(
                    "unroutable: {target} has no queue bound ({} {})",
                    returned.reply_code, returned.reply_text
                )),
                Ok(lapin::Confirmation::Nack(_)) => {
                    broker::failed(format!("the broker refused it (nack) for {target}"))
                }
                Ok(lapin::Confirmation::NotRequested) => {
                    self.connection.discard(&link);
                    broker::failed("the channel lost publisher confirms")
                }
                Err(e) => {
                    // A missing exchange closes the channel; anything else may have closed
                    // the connection: start again on the next attempt either way.
                    self.connection.discard(&link);
                    broker::failed(format!("publish to {target} failed: {e}"))
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

    fn config(url: &str, exchange: Option<&str>, routing_key: Option<&str>) -> AmqpConfig {
        AmqpConfig {
            broker: BrokerKeys {
                url: Some(url.into()),
                username: None,
                password: None,
                tls_ca: None,
                concurrency: None,
            },
            exchange: exchange.map(str::to_owned),
            routing_key: routing_key.map(str::to_owned),
        }
    }

    #[test]
    fn keys_are_checked_and_errors_name_them() {
        let (t, base) = (Duration::from_secs(1), Path::new("/"));
        let key = |r: Result<(Sink, usize), (String, String)>| r.err().map(|(k, _)| k);
        let url = "amqp://guest:guest@127.0.0.1:5672/%2f";
        assert_eq!(
            key(build(config("nats://h", None, Some("q")), t, base)),
            Some("url".into())
        );
        assert_eq!(
            key(build(config(url, None, None), t, base)),
            Some("routing_key".into())
        );
        assert_eq!(
            key(build(config(url, Some("web hooks"), Some("q")), t, base)),
            Some("exchange".into())
        );
        assert_eq!(
            key(build(config(url, Some("x"), Some("{x}")), t, base)),
            Some("routing_key".into())
        );
        let (sink, concurrency) = build(
            config(url, Some("webhooks"), Some("{source}.{topic}")),
            t,
            base,
        )
        .unwrap();
        assert_eq!((sink.kind(), concurrency), ("amqp", 64));
    }
}
