//! `mqtt` (MQTT 5): publish at QoS 1; an attempt succeeds on the broker's PUBACK.
//!
//! rumqttc reports a PUBACK by packet id, and which publish got which id only as the order
//! in which its event loop sent them; so publishes enter the client's queue one at a time,
//! in the order their waiters are queued, and each `Outgoing::Publish(id)` event gives the
//! oldest waiter its id. A connection that fails is dropped whole (its event loop and
//! every waiter, whose attempts fail and are retried) and a new one starts clean: nothing
//! from an old session is resent under an id a new attempt holds.

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rumqttc::v5::mqttbytes::v5::{Packet, PubAckReason, PublishProperties};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event, EventLoop, MqttOptions};
use rumqttc::Outgoing;
use serde::Deserialize;
use tokio::sync::oneshot;

use super::broker::{self, BrokerKeys, Endpoint, Shared};
use super::naming::{replace, NameTemplate};
use super::{AttemptReport, Message, Sink};

/// `[[destination]] kind = "mqtt"`: its own keys.
#[derive(Debug, Deserialize)]
pub(super) struct MqttConfig {
    #[serde(flatten)]
    broker: BrokerKeys,
    /// The topic, a template: `webhooks/{source}/{topic}`.
    topic: Option<String>,
    /// The client identifier; default `hookgate-<random>`, new at each connection, so
    /// several gateways never take over each other's session.
    client_id: Option<String>,
}

/// The keys of `kind = "mqtt"` (besides the common ones).
pub(super) const KEYS: &[&str] = &["topic", "client_id"];

fn bad_in_topic(c: char) -> bool {
    c == '+' || c == '#'
}

/// Validates the keys; errors name the key.
pub(super) fn build(
    config: MqttConfig,
    timeout: Duration,
    base: &Path,
) -> Result<(Sink, usize), (String, String)> {
    let err = |key: &str, message: String| (key.to_owned(), message);
    let concurrency = config.broker.concurrency.unwrap_or(16);
    if concurrency > usize::from(u16::MAX / 2) {
        return Err(err("concurrency", "at most 32767 for MQTT".into()));
    }
    let endpoint = config.broker.endpoint("mqtt", "mqtt", "mqtts", base)?;
    let (host, port) = host_and_port(&endpoint.url, endpoint.tls).map_err(|e| err("url", e))?;
    let text = config
        .topic
        .ok_or_else(|| err("topic", "an mqtt destination needs `topic`".into()))?;
    let topic = NameTemplate::parse(&text).map_err(|e| err("topic", e))?;
    if let Some(c) = topic
        .literals()
        .flat_map(str::chars)
        .find(|&c| bad_in_topic(c))
    {
        return Err(err(
            "topic",
            format!("`{text}` holds {c:?}, a wildcard: a published topic cannot"),
        ));
    }
    if text.is_empty() {
        return Err(err("topic", "must not be empty".into()));
    }
    if let Some(id) = &config.client_id {
        if id.is_empty() || id.len() > 128 {
            return Err(err("client_id", "must be 1 to 128 bytes".into()));
        }
    }
    Ok((
        Sink::Mqtt(Box::new(MqttSink {
            endpoint,
            host,
            port,
            topic,
            client_id: config.client_id,
            timeout,
            concurrency,
            connection: Shared::default(),
        })),
        concurrency,
    ))
}

/// `mqtt://host[:port]` (1883) or `mqtts://host[:port]` (8883); credentials go in
/// `username` and `password`, not the URL.
fn host_and_port(url: &str, tls: bool) -> Result<(String, u16), String> {
    let uri: http::Uri = url
        .parse()
        .map_err(|_| "not a URL: write mqtt://host:port".to_owned())?;
    let authority = uri
        .authority()
        .ok_or_else(|| "names no host: write mqtt://host:port".to_owned())?;
    if authority.as_str().contains('@') {
        return Err("put credentials in `username` and `password`, not in the URL".into());
    }
    if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
        return Err("takes no path or query: write mqtt://host:port".into());
    }
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    let port = authority
        .port_u16()
        .unwrap_or(if tls { 8883 } else { 1883 });
    Ok((host.to_owned(), port))
}

/// `mqtt`: the body as the payload; MQTT 5 user properties carry hookgate's metadata
/// (`webhook-id` first), the content type property the original one.
#[derive(Debug)]
pub struct MqttSink {
    endpoint: Endpoint,
    host: String,
    port: u16,
    topic: NameTemplate,
    client_id: Option<String>,
    timeout: Duration,
    concurrency: usize,
    connection: Shared<Session>,
}

type Waiter = oneshot::Sender<Result<(), String>>;

/// Publishes waiting for their packet id (oldest first), then for their PUBACK.
#[derive(Debug, Default)]
struct Waiters {
    unsent: VecDeque<Waiter>,
    sent: HashMap<u16, Waiter>,
    /// Why the connection ended, once it has.
    closed: Option<String>,
}

/// One connection: the client that queues publishes and the task polling its event loop.
#[derive(Debug)]
struct Session {
    client: AsyncClient,
    waiters: Arc<Mutex<Waiters>>,
    poller: tokio::task::AbortHandle,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.poller.abort();
    }
}

impl MqttSink {
    /// Connects (until the broker's CONNACK) and starts the poller; owns what it needs,
    /// as it runs in a task of its own.
    fn connect(
        &self,
    ) -> impl std::future::Future<Output = Result<Session, String>> + Send + 'static {
        let (endpoint, host, port, client_id, timeout, concurrency) = (
            self.endpoint.clone(),
            self.host.clone(),
            self.port,
            self.client_id.clone(),
            self.timeout,
            self.concurrency,
        );
        async move {
            let id =
                client_id.unwrap_or_else(|| format!("hookgate-{}", uuid::Uuid::now_v7().simple()));
            let mut options = MqttOptions::new(id, host, port);
            options
                .set_clean_start(true)
                .set_keep_alive(Duration::from_secs(30))
                .set_connection_timeout(timeout.as_secs().max(1))
                .set_outgoing_inflight_upper_limit(concurrency as u16)
                .set_request_channel_capacity(concurrency * 2);
            if let Some(user) = &endpoint.username {
                options
                    .set_credentials(user.clone(), endpoint.password.clone().unwrap_or_default());
            }
            if endpoint.tls {
                let config = match endpoint.read_ca()? {
                    Some(ca) => rumqttc::TlsConfiguration::SimpleNative {
                        ca,
                        client_auth: None,
                    },
                    None => rumqttc::TlsConfiguration::Native,
                };
                options.set_transport(rumqttc::Transport::tls_with_config(config));
            }
            let (client, mut events) = AsyncClient::new(options, concurrency * 2);
            // Connected only once the broker said so (CONNACK), so a refusal (bad credentials)
            // is this attempt's error, not a silent loop.
            loop {
                match events.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => break,
                    Ok(_) => {}
                    Err(e) => return Err(format!("cannot connect to the MQTT broker: {e}")),
                }
            }
            let waiters = Arc::new(Mutex::new(Waiters::default()));
            let poller = tokio::spawn(poll(events, waiters.clone())).abort_handle();
            Ok(Session {
                client,
                waiters,
                poller,
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
        Ok("connected (MQTT 5)".into())
    }

    pub(super) async fn deliver(&self, message: &Message<'_>) -> AttemptReport {
        let topic = self
            .topic
            .render(message.event, |v| replace(v, bad_in_topic));
        if topic.len() > usize::from(u16::MAX) {
            return broker::refused("the topic is longer than MQTT's 65535 bytes");
        }
        let attempt = |session: Arc<Session>| async move {
            let mut properties = PublishProperties::default();
            for (name, value) in broker::metadata(message) {
                if name == "content-type" {
                    properties.content_type = Some(value.to_owned());
                } else {
                    properties
                        .user_properties
                        .push((name.to_owned(), value.to_owned()));
                }
            }
            let (done, acked) = oneshot::channel();
            let queued = {
                // Queued under the waiters' lock, with no await between: the poller sees
                // waiters and publishes in one order, and a timed-out attempt cannot leave
                // a waiter without its publish.
                let mut waiters = session.waiters.lock().expect("waiters");
                match &waiters.closed {
                    Some(why) => Err(why.clone()),
                    None => {
                        let queued = session.client.try_publish_with_properties(
                            topic.clone(),
                            QoS::AtLeastOnce,
                            false,
                            message.event.body.clone(),
                            properties,
                        );
                        match queued {
                            Ok(()) => {
                                waiters.unsent.push_back(done);
                                Ok(())
                            }
                            Err(e) => Err(format!("publish to {topic} not queued: {e}")),
                        }
                    }
                }
            };
            if let Err(why) = queued {
                self.connection.discard(&session);
                return broker::failed(why);
            }
            match acked.await {
                Ok(Ok(())) => broker::acked(format!("PUBACK for {topic}")),
                Ok(Err(e)) => broker::failed(format!("publish to {topic}: {e}")),
                Err(_) => {
                    let why = session.waiters.lock().expect("waiters").closed.clone();
                    self.connection.discard(&session);
                    broker::failed(
                        why.unwrap_or_else(|| "the connection ended before PUBACK".into()),
                    )
                }
            }
        };
        self.connection
            .attempt(self.timeout, || self.connect(), attempt)
            .await
    }
}

/// Polls the event loop until the connection fails, matching PUBACKs to waiters; then every
/// waiter left fails (its attempt is retried on a new connection).
async fn poll(mut events: EventLoop, waiters: Arc<Mutex<Waiters>>) {
    let why = loop {
        match events.poll().await {
            Ok(Event::Outgoing(Outgoing::Publish(pkid))) => {
                let mut w = waiters.lock().expect("waiters");
                if let Some(waiter) = w.unsent.pop_front() {
                    w.sent.insert(pkid, waiter);
                }
            }
            Ok(Event::Incoming(Packet::PubAck(ack))) => {
                let waiter = waiters.lock().expect("waiters").sent.remove(&ack.pkid);
                if let Some(waiter) = waiter {
                    let outcome = match ack.reason {
                        PubAckReason::Success | PubAckReason::NoMatchingSubscribers => Ok(()),
                        refused => Err(format!("the broker refused it: {refused:?}")),
                    };
                    let _ = waiter.send(outcome);
                }
            }
            Ok(Event::Incoming(Packet::Disconnect(d))) => {
                break format!("the broker disconnected: {:?}", d.reason_code)
            }
            Ok(_) => {}
            Err(e) => break format!("the MQTT connection failed: {e}"),
        }
    };
    tracing::debug!(error = %why, "MQTT connection ended");
    let mut w = waiters.lock().expect("waiters");
    w.closed = Some(why.clone());
    let sent = std::mem::take(&mut w.sent);
    let left: Vec<Waiter> = w.unsent.drain(..).chain(sent.into_values()).collect();
    for waiter in left {
        let _ = waiter.send(Err(why.clone()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(url: &str, topic: Option<&str>) -> MqttConfig {
        MqttConfig {
            broker: BrokerKeys {
                url: Some(url.into()),
                username: None,
                password: None,
                tls_ca: None,
                concurrency: None,
            },
            topic: topic.map(str::to_owned),
            client_id: None,
        }
    }

    #[test]
    fn keys_are_checked_and_errors_name_them() {
        let (t, base) = (Duration::from_secs(1), Path::new("/"));
        let key = |r: Result<(Sink, usize), (String, String)>| r.err().map(|(k, _)| k);
        assert_eq!(
            key(build(config("mqtt://u:p@h", Some("t")), t, base)),
            Some("url".into())
        );
        assert_eq!(
            key(build(config("mqtt://h/x", Some("t")), t, base)),
            Some("url".into())
        );
        assert_eq!(
            key(build(config("mqtt://h", None), t, base)),
            Some("topic".into())
        );
        assert_eq!(
            key(build(config("mqtt://h", Some("a/#")), t, base)),
            Some("topic".into())
        );
        let (sink, concurrency) = build(
            config("mqtts://h", Some("webhooks/{source}/{topic}")),
            t,
            base,
        )
        .unwrap();
        let Sink::Mqtt(mqtt) = sink else { panic!() };
        assert_eq!(
            (mqtt.host.as_str(), mqtt.port, concurrency),
            ("h", 8883, 16)
        );
        let (sink, _) = build(config("mqtt://[::1]:1884", Some("t")), t, base).unwrap();
        let Sink::Mqtt(mqtt) = sink else { panic!() };
        assert_eq!((mqtt.host.as_str(), mqtt.port), ("::1", 1884));
    }
}
