//! Broker destinations against the real servers: NATS JetStream (127.0.0.1:4222), Redis
//! (6379), RabbitMQ (5672, guest/guest) and Mosquitto (1883). Each test uses names of its
//! own (stream, key, queue, topic), reads every event back with a real consumer, and cuts
//! hookgate's connection to the broker mid-run (through a loopback proxy that drops every
//! connection and then every new one for a while), so the broker is down for hookgate
//! while the consumer still reads: nothing acknowledged may be missing afterwards.
//!
//! A broker that is not running skips its test, saying so on stderr;
//! `HOOKGATE_TEST_BROKERS=required` (set by `.ci/run`) makes that a failure.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::*;

const NATS: &str = "127.0.0.1:4222";
const REDIS: &str = "127.0.0.1:6379";
const RABBITMQ: &str = "127.0.0.1:5672";
const MOSQUITTO: &str = "127.0.0.1:1883";

const SOURCE: &str =
    "[[source]]\nname = \"gh\"\npath = \"/gh\"\npreset = \"github\"\nsecret = \"s\"\n";

/// The body every event carries (not ASCII: the brokers must pass bytes through as sent).
fn body(i: usize) -> Vec<u8> {
    format!("{{\"n\":{i},\"text\":\"grüße €\"}}").into_bytes()
}

/// Whether `name` listens on `addr`; if not, the test is skipped (said on stderr) or, with
/// `HOOKGATE_TEST_BROKERS=required`, fails.
fn available(name: &str, addr: &str) -> bool {
    let target: SocketAddr = addr.parse().unwrap();
    match std::net::TcpStream::connect_timeout(&target, Duration::from_secs(2)) {
        Ok(_) => true,
        Err(e) => {
            if std::env::var("HOOKGATE_TEST_BROKERS").as_deref() == Ok("required") {
                panic!(
                    "{name} is required (HOOKGATE_TEST_BROKERS=required) but {addr} answers: {e}"
                );
            }
            eprintln!(
                "skipped the {name} destination test: nothing listens on {addr} ({e}); start {name} (README, Development) or set HOOKGATE_TEST_BROKERS=required to fail instead"
            );
            false
        }
    }
}

/// A name no other run uses.
fn run_id() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}

/// A loopback proxy to a broker that can partition it from hookgate: while cut, every byte
/// either way is dropped (connections stay open and hang, as in a network partition, so
/// nothing tells the client at once); restoring closes every connection made so far, and
/// new ones go through again.
struct Cutter {
    addr: SocketAddr,
    down: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
}

/// Copies `from` to `to`, dropping what is read while `down`.
async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    down: Arc<AtomicBool>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buffer = vec![0; 64 * 1024];
    loop {
        let n = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if down.load(Ordering::SeqCst) {
            continue;
        }
        if to.write_all(&buffer[..n]).await.is_err() {
            return;
        }
    }
}

impl Cutter {
    async fn start(target: &'static str) -> Cutter {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let down = Arc::new(AtomicBool::new(false));
        let open: Arc<Mutex<Vec<tokio::task::AbortHandle>>> = Default::default();
        let (is_down, conns) = (down.clone(), open.clone());
        tokio::spawn(async move {
            loop {
                let Ok((inbound, _)) = listener.accept().await else {
                    return;
                };
                let down = is_down.clone();
                let task = tokio::spawn(async move {
                    let Ok(upstream) = tokio::net::TcpStream::connect(target).await else {
                        return;
                    };
                    let (in_read, in_write) = inbound.into_split();
                    let (up_read, up_write) = upstream.into_split();
                    tokio::join!(
                        pipe(in_read, up_write, down.clone()),
                        pipe(up_read, in_write, down)
                    );
                });
                conns.lock().unwrap().push(task.abort_handle());
            }
        });
        Cutter { addr, down, open }
    }

    /// hookgate and the broker no longer hear each other.
    fn cut(&self) {
        self.down.store(true, Ordering::SeqCst);
    }

    /// Closes every connection (they lost bytes) and lets new ones through.
    fn restore(&self) {
        for conn in self.open.lock().unwrap().drain(..) {
            conn.abort();
        }
        self.down.store(false, Ordering::SeqCst);
    }
}

async fn wait_for(what: &str, timeout: Duration, mut done: impl AsyncFnMut() -> bool) {
    let started = Instant::now();
    while !done().await {
        assert!(started.elapsed() < timeout, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every delivery of every event: (webhook-id, status, attempts, last error).
async fn deliveries(gw: &TestGateway) -> Vec<(String, String, i64, Option<String>)> {
    let store = gw.gateway.store();
    let mut rows = Vec::new();
    for (event, _) in store
        .replay_candidates(hookgate_store::ListFilter::default())
        .await
        .unwrap()
    {
        for d in store.deliveries(&event.summary.id).await.unwrap() {
            rows.push((
                d.webhook_id,
                d.status.as_str().to_owned(),
                d.attempts,
                d.last_error,
            ));
        }
    }
    rows
}

async fn send_four_at_a_time(gw: &TestGateway, from: usize, to: usize) {
    let lane = |first: usize| async move {
        for i in (first..to).step_by(4) {
            send(gw, i, i + 1).await;
        }
    };
    tokio::join!(lane(from), lane(from + 1), lane(from + 2), lane(from + 3));
}

async fn send(gw: &TestGateway, from: usize, to: usize) {
    for i in from..to {
        let (status, _, answer) = send_signed(
            gw,
            "gh",
            "/gh",
            &body(i),
            &[
                ("X-GitHub-Delivery", &format!("d-{i}")),
                ("X-GitHub-Event", "push"),
            ],
        )
        .await;
        assert_eq!(status, 200, "ingest is unaffected by the broker: {answer}");
    }
}

/// Starts a gateway delivering to `destination` (its kind's keys; the broker reached
/// through `cutter`) and sends `count` events in three parts, four at a time: the first
/// before, the second during, and the third after a two-second partition between hookgate
/// and the broker. Waits until every delivery is acknowledged; returns the gateway and
/// every webhook-id, after checking that the partition made attempts fail.
async fn through_an_outage(
    cutter: &Cutter,
    destination: &str,
    count: usize,
) -> (TestGateway, BTreeSet<String>) {
    let config = format!(
        "{SOURCE}[[destination]]\nname = \"bus\"\ntimeout = \"1s\"\nbackoff = [\"100ms\", \"200ms\"]\nmax_attempts = 1000\n{destination}\n[[route]]\nto = \"bus\"\n"
    );
    let gw = spawn(&config).await;
    let third = count / 3;
    send_four_at_a_time(&gw, 0, third).await;
    cutter.cut();
    let cut_at = Instant::now();
    send_four_at_a_time(&gw, third, 2 * third).await;
    tokio::time::sleep(Duration::from_secs(2).saturating_sub(cut_at.elapsed())).await;
    cutter.restore();
    send_four_at_a_time(&gw, 2 * third, count).await;
    let started = Instant::now();
    loop {
        let rows = deliveries(&gw).await;
        if rows.len() == count && rows.iter().all(|r| r.1 == "delivered") {
            break;
        }
        let waiting: BTreeSet<_> = rows
            .iter()
            .filter(|r| r.1 != "delivered")
            .map(|r| r.3.clone())
            .collect();
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "timed out waiting for every delivery to be acknowledged; {} of {count} are, the others' last errors: {waiting:?}",
            rows.iter().filter(|r| r.1 == "delivered").count()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let rows = deliveries(&gw).await;
    assert!(
        rows.iter().any(|r| r.2 > 1),
        "the partition made no attempt fail: {rows:?}"
    );
    (gw, rows.into_iter().map(|r| r.0).collect())
}

#[tokio::test]
async fn nats_jetstream_gets_every_event_once_through_an_outage() {
    if !available("NATS", NATS) {
        return;
    }
    let run = run_id();
    let stream_name = format!("HGTEST_{run}");
    let jetstream = async_nats::jetstream::new(async_nats::connect(NATS).await.unwrap());
    jetstream
        .create_stream(async_nats::jetstream::stream::Config {
            name: stream_name.clone(),
            subjects: vec![format!("hgtest.{run}.>")],
            ..Default::default()
        })
        .await
        .unwrap();
    let cutter = Cutter::start(NATS).await;
    let destination = format!(
        "kind = \"nats\"\nurl = \"nats://{}\"\nsubject = \"hgtest.{run}.{{source}}.{{topic}}\"\nstream = \"{stream_name}\"\n",
        cutter.addr
    );
    let (gw, expected) = through_an_outage(&cutter, &destination, 120).await;

    let mut stream = jetstream.get_stream(&stream_name).await.unwrap();
    let info = stream.info().await.unwrap().clone();
    // Nats-Msg-Id is the webhook-id: a retry whose first ack was lost is dropped by the
    // stream, so each event is there exactly once.
    assert_eq!(info.state.messages, expected.len() as u64);
    let mut seen = BTreeSet::new();
    for seq in info.state.first_sequence..=info.state.last_sequence {
        let message = stream.get_raw_message(seq).await.unwrap();
        assert_eq!(message.subject.as_str(), format!("hgtest.{run}.gh.push"));
        let headers = message.headers;
        let id = headers.get("Nats-Msg-Id").unwrap().to_string();
        assert_eq!(headers.get("webhook-id").unwrap().as_str(), id);
        assert_eq!(headers.get("hookgate-source").unwrap().as_str(), "gh");
        assert_eq!(headers.get("hookgate-topic").unwrap().as_str(), "push");
        let n = body_number(&message.payload);
        assert_eq!(&message.payload[..], &body(n)[..]);
        seen.insert(id);
    }
    assert_eq!(seen, expected);

    // check-config's view: the stream exists; a missing one is said to be missing.
    let config = gw.gateway.config();
    let probe = config.destinations[0].sink.probe().await.unwrap();
    assert!(
        probe
            .as_ref()
            .unwrap()
            .contains(&format!("stream {stream_name} exists")),
        "{probe:?}"
    );
    jetstream.delete_stream(&stream_name).await.unwrap();
    gw.stop().await;
}

#[tokio::test]
async fn nats_creates_its_stream_at_start_when_told_and_check_config_sees_a_missing_one() {
    if !available("NATS", NATS) {
        return;
    }
    let run = run_id();
    let stream_name = format!("HGTEST_{run}");
    let config = format!(
        "{SOURCE}[[destination]]\nname = \"bus\"\nkind = \"nats\"\nurl = \"nats://{NATS}\"\nsubject = \"hgtest.{run}.{{source}}\"\nstream = \"{stream_name}\"\ncreate_stream = true\n[[destination]]\nname = \"missing\"\nkind = \"nats\"\nurl = \"nats://{NATS}\"\nsubject = \"hgtest.{run}x.{{source}}\"\nstream = \"{stream_name}_MISSING\"\n[[route]]\nto = \"bus\"\n"
    );
    let gw = spawn(&config).await;
    let jetstream = async_nats::jetstream::new(async_nats::connect(NATS).await.unwrap());
    wait_for(
        "the stream to be created at start",
        Duration::from_secs(20),
        async || jetstream.get_stream(&stream_name).await.is_ok(),
    )
    .await;
    send(&gw, 0, 3).await;
    wait_for("three deliveries", Duration::from_secs(30), async || {
        let rows = deliveries(&gw).await;
        rows.len() == 3 && rows.iter().all(|r| r.1 == "delivered")
    })
    .await;
    let mut stream = jetstream.get_stream(&stream_name).await.unwrap();
    let info = stream.info().await.unwrap().clone();
    assert_eq!(info.state.messages, 3);
    assert_eq!(info.config.subjects, vec![format!("hgtest.{run}.>")]);
    let config = gw.gateway.config();
    let missing = config.destinations[1].sink.probe().await.unwrap();
    let why = missing.unwrap_err();
    assert!(
        why.contains(&format!("stream {stream_name}_MISSING cannot be read")),
        "{why}"
    );
    assert!(why.contains("create_stream = true"), "{why}");
    jetstream.delete_stream(&stream_name).await.unwrap();
    gw.stop().await;
}

/// `{"n":N,…}` → N.
fn body_number(body: &[u8]) -> usize {
    let value: serde_json::Value = serde_json::from_slice(body).unwrap();
    value["n"].as_u64().unwrap() as usize
}

#[tokio::test]
async fn redis_stream_has_every_event_through_an_outage() {
    if !available("Redis", REDIS) {
        return;
    }
    let run = run_id();
    let cutter = Cutter::start(REDIS).await;
    let destination = format!(
        "kind = \"redis\"\nurl = \"redis://{}\"\nstream = \"hgtest:{run}:{{source}}\"\nmaxlen = 100000\n",
        cutter.addr
    );
    let (gw, expected) = through_an_outage(&cutter, &destination, 120).await;

    let client = redis::Client::open(format!("redis://{REDIS}")).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let key = format!("hgtest:{run}:gh");
    let entries: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
        .arg(&key)
        .arg("-")
        .arg("+")
        .query_async(&mut connection)
        .await
        .unwrap();
    let mut seen = BTreeSet::new();
    for entry in &entries.ids {
        let field = |name: &str| -> Vec<u8> {
            redis::from_redis_value(
                entry
                    .map
                    .get(name)
                    .unwrap_or_else(|| panic!("no {name}"))
                    .clone(),
            )
            .unwrap()
        };
        assert_eq!(field("hookgate-source"), b"gh");
        assert_eq!(field("hookgate-topic"), b"push");
        assert_eq!(field("content-type"), b"application/json");
        let payload = field("body");
        assert_eq!(payload, body(body_number(&payload)));
        seen.insert(String::from_utf8(field("webhook-id")).unwrap());
    }
    // A retry after a lost reply adds a second entry with the same webhook-id: at least
    // once, never missing.
    assert_eq!(seen, expected);
    assert!(entries.ids.len() >= expected.len());
    let _: i64 = redis::cmd("DEL")
        .arg(&key)
        .query_async(&mut connection)
        .await
        .unwrap();
    gw.stop().await;
}

async fn rabbitmq() -> (lapin::Connection, lapin::Channel) {
    let connection = lapin::Connection::connect(
        &format!("amqp://guest:guest@{RABBITMQ}/%2f"),
        lapin::ConnectionProperties::default(),
    )
    .await
    .unwrap();
    let channel = connection.create_channel().await.unwrap();
    (connection, channel)
}

#[tokio::test]
async fn rabbitmq_queue_gets_every_event_through_an_outage() {
    if !available("RabbitMQ", RABBITMQ) {
        return;
    }
    use lapin::options::{
        BasicGetOptions, QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions,
    };
    let run = run_id();
    let queue = format!("hgtest-{run}");
    let (_connection, channel) = rabbitmq().await;
    channel
        .queue_declare(
            queue.as_str().into(),
            QueueDeclareOptions::default(),
            Default::default(),
        )
        .await
        .unwrap();
    channel
        .queue_bind(
            queue.as_str().into(),
            "amq.topic".into(),
            format!("hgtest.{run}.#").into(),
            QueueBindOptions::default(),
            Default::default(),
        )
        .await
        .unwrap();
    let cutter = Cutter::start(RABBITMQ).await;
    let destination = format!(
        "kind = \"amqp\"\nurl = \"amqp://{}/%2f\"\nusername = \"guest\"\npassword = \"guest\"\nexchange = \"amq.topic\"\nrouting_key = \"hgtest.{run}.{{source}}.{{topic}}\"\n",
        cutter.addr
    );
    let (gw, expected) = through_an_outage(&cutter, &destination, 120).await;

    let mut seen = BTreeSet::new();
    let mut read = 0;
    while let Some(message) = channel
        .basic_get(queue.as_str().into(), BasicGetOptions { no_ack: true })
        .await
        .unwrap()
    {
        read += 1;
        let properties = &message.delivery.properties;
        assert_eq!(*properties.delivery_mode(), Some(2), "persistent");
        assert_eq!(
            properties.content_type().as_ref().unwrap().as_str(),
            "application/json"
        );
        let headers = properties.headers().as_ref().unwrap().inner();
        let header = |name: &str| match headers.get(name) {
            Some(lapin::types::AMQPValue::LongString(s)) => s.to_string(),
            other => panic!("{name}: {other:?}"),
        };
        let id = properties.message_id().as_ref().unwrap().to_string();
        assert_eq!(header("webhook-id"), id);
        assert_eq!(header("hookgate-source"), "gh");
        assert_eq!(
            message.delivery.routing_key.as_str(),
            format!("hgtest.{run}.gh.push")
        );
        let payload = &message.delivery.data;
        assert_eq!(payload, &body(body_number(payload)));
        seen.insert(id);
    }
    assert_eq!(seen, expected);
    assert!(read >= expected.len());
    channel
        .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
        .await
        .unwrap();
    gw.stop().await;
}

#[tokio::test]
async fn rabbitmq_unroutable_messages_are_failed_attempts_not_deliveries() {
    if !available("RabbitMQ", RABBITMQ) {
        return;
    }
    let run = run_id();
    let config = format!(
        "{SOURCE}[[destination]]\nname = \"bus\"\nkind = \"amqp\"\nurl = \"amqp://guest:guest@{RABBITMQ}/%2f\"\nexchange = \"amq.topic\"\nrouting_key = \"hgtest.{run}.nobody-listens\"\nbackoff = [\"100ms\"]\nmax_attempts = 3\n[[route]]\nto = \"bus\"\n"
    );
    let gw = spawn(&config).await;
    send(&gw, 0, 1).await;
    wait_for("the delivery to die", Duration::from_secs(30), async || {
        deliveries(&gw).await.first().is_some_and(|r| r.1 == "dead")
    })
    .await;
    let rows = deliveries(&gw).await;
    assert_eq!(rows[0].2, 3);
    let error = rows[0].3.clone().unwrap();
    assert!(error.contains("unroutable"), "{error}");
    assert!(
        error.contains(&format!("hgtest.{run}.nobody-listens")),
        "{error}"
    );
    gw.stop().await;
}

#[tokio::test]
async fn mosquitto_subscriber_gets_every_event_through_an_outage() {
    if !available("Mosquitto", MOSQUITTO) {
        return;
    }
    use rumqttc::v5::mqttbytes::v5::Packet;
    use rumqttc::v5::mqttbytes::QoS;
    let run = run_id();
    let (host, port) = MOSQUITTO.split_once(':').unwrap();
    let mut options =
        rumqttc::v5::MqttOptions::new(format!("hgtest-{run}"), host, port.parse().unwrap());
    options.set_keep_alive(Duration::from_secs(30));
    let (subscriber, mut events) = rumqttc::v5::AsyncClient::new(options, 100);
    subscriber
        .subscribe(format!("hgtest/{run}/#"), QoS::AtLeastOnce)
        .await
        .unwrap();
    type Received = Vec<(String, HashMap<String, String>, Vec<u8>)>;
    let received: Arc<Mutex<Received>> = Default::default();
    let (subscribed, mut is_subscribed) = tokio::sync::watch::channel(false);
    let collected = received.clone();
    let reader = tokio::spawn(async move {
        loop {
            match events.poll().await {
                Ok(rumqttc::v5::Event::Incoming(Packet::SubAck(_))) => {
                    subscribed.send_replace(true);
                }
                Ok(rumqttc::v5::Event::Incoming(Packet::Publish(p))) => {
                    let properties = p.properties.unwrap_or_default();
                    collected.lock().unwrap().push((
                        String::from_utf8(p.topic.to_vec()).unwrap(),
                        properties.user_properties.into_iter().collect(),
                        p.payload.to_vec(),
                    ));
                }
                Ok(_) => {}
                Err(e) => panic!("the test's subscriber lost Mosquitto: {e}"),
            }
        }
    });
    is_subscribed.wait_for(|s| *s).await.unwrap();
    let cutter = Cutter::start(MOSQUITTO).await;
    let destination = format!(
        "kind = \"mqtt\"\nurl = \"mqtt://{}\"\ntopic = \"hgtest/{run}/{{source}}/{{topic}}\"\n",
        cutter.addr
    );
    let (gw, expected) = through_an_outage(&cutter, &destination, 120).await;
    // Every PUBACK came before its delivery was recorded; the subscriber's copy may trail.
    wait_for(
        "the subscriber to have every event",
        Duration::from_secs(20),
        async || {
            let ids: BTreeSet<String> = received
                .lock()
                .unwrap()
                .iter()
                .map(|r| r.1["webhook-id"].clone())
                .collect();
            ids == expected
        },
    )
    .await;
    for (topic, properties, payload) in received.lock().unwrap().iter() {
        assert_eq!(topic, &format!("hgtest/{run}/gh/push"));
        assert_eq!(properties["hookgate-source"], "gh");
        assert_eq!(properties["hookgate-topic"], "push");
        assert_eq!(payload, &body(body_number(payload)));
    }
    reader.abort();
    gw.stop().await;
}

#[tokio::test]
async fn a_refused_login_is_a_failed_attempt_whose_error_holds_no_password() {
    if !available("RabbitMQ", RABBITMQ) {
        return;
    }
    let config = format!(
        "{SOURCE}[[destination]]\nname = \"bus\"\nkind = \"amqp\"\nurl = \"amqp://guest:not-the-Password-42@{RABBITMQ}/%2f\"\nrouting_key = \"nobody\"\nbackoff = [\"100ms\"]\nmax_attempts = 2\n[[route]]\nto = \"bus\"\n"
    );
    let gw = spawn(&config).await;
    send(&gw, 0, 1).await;
    wait_for("the delivery to die", Duration::from_secs(30), async || {
        deliveries(&gw).await.first().is_some_and(|r| r.1 == "dead")
    })
    .await;
    let error = deliveries(&gw).await[0].3.clone().unwrap();
    assert!(
        error.contains("cannot connect to the AMQP broker"),
        "{error}"
    );
    assert!(!error.contains("not-the-Password-42"), "{error}");
    assert!(!error.contains("amqp://"), "{error}");
    gw.stop().await;
}

/// A broker process started for one test, killed when dropped.
struct Spawned(std::process::Child);

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A loopback port nothing listens on (the broker started next takes it).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `program` with `args`, waiting until it listens on `port`; `None` (skipped or,
/// when required, a failure) when the program is not installed.
async fn start_broker(program: &str, args: &[String], port: u16) -> Option<Spawned> {
    let found = ["/usr/sbin", "/usr/bin", "/usr/local/bin", "/usr/local/sbin"]
        .iter()
        .map(|dir| std::path::Path::new(dir).join(program))
        .find(|p| p.exists());
    let Some(path) = found else {
        if std::env::var("HOOKGATE_TEST_BROKERS").as_deref() == Ok("required") {
            panic!("{program} is required (HOOKGATE_TEST_BROKERS=required) but not installed");
        }
        eprintln!("skipped the {program} TLS test: {program} is not installed");
        return None;
    };
    let child = std::process::Command::new(path)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let spawned = Spawned(child);
    wait_for(
        &format!("{program} to listen on {port}"),
        Duration::from_secs(20),
        async || {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
        },
    )
    .await;
    Some(spawned)
}

/// Three events through a broker destination whose keys are `destination` (relative
/// files in `dir`), all acknowledged by the broker.
async fn three_delivered(dir: tempfile::TempDir, destination: &str) -> TestGateway {
    let config = format!(
        "{SOURCE}[[destination]]\nname = \"bus\"\nbackoff = [\"100ms\"]\n{destination}\n[[route]]\nto = \"bus\"\n"
    );
    let gw = spawn_in(dir, &config).await;
    send(&gw, 0, 3).await;
    let started = Instant::now();
    loop {
        let rows = deliveries(&gw).await;
        if rows.len() == 3 && rows.iter().all(|r| r.1 == "delivered") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "not delivered: {rows:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    gw
}

#[tokio::test]
async fn nats_over_tls_with_a_token_from_a_file() {
    let dir = tempfile::tempdir().unwrap();
    crate::tls::make_certificate(dir.path(), "broker", 7);
    std::fs::write(dir.path().join("nats-token"), "t0ken-from-a-file\n").unwrap();
    let port = free_port();
    let path = |name: &str| dir.path().join(name).display().to_string();
    let args: Vec<String> = [
        "-a",
        "127.0.0.1",
        "-p",
        &port.to_string(),
        "-js",
        "-sd",
        &path("js"),
        "--tls",
        "--tlscert",
        &path("broker.pem"),
        "--tlskey",
        &path("broker.key"),
        "--auth",
        "t0ken-from-a-file",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let Some(_server) = start_broker("nats-server", &args, port).await else {
        return;
    };
    let gw = three_delivered(
        dir,
        &format!("kind = \"nats\"\nurl = \"tls://127.0.0.1:{port}\"\ntoken_file = \"nats-token\"\ntls_ca = \"broker.pem\"\nsubject = \"tls.{{source}}\"\nstream = \"TLS\"\ncreate_stream = true\n"),
    )
    .await;
    let ca = gw._dir.path().join("broker.pem");
    let client = async_nats::ConnectOptions::with_token("t0ken-from-a-file".into())
        .add_root_certificates(ca)
        .require_tls(true)
        .connect(format!("nats://127.0.0.1:{port}"))
        .await
        .unwrap();
    let jetstream = async_nats::jetstream::new(client);
    let mut stream = jetstream.get_stream("TLS").await.unwrap();
    assert_eq!(stream.info().await.unwrap().state.messages, 3);
    gw.stop().await;
}

#[tokio::test]
async fn redis_over_tls_with_a_password_from_a_file() {
    let dir = tempfile::tempdir().unwrap();
    crate::tls::make_certificate(dir.path(), "broker", 8);
    std::fs::write(dir.path().join("redis-password"), "pa55-from-a-file\n").unwrap();
    let port = free_port();
    let path = |name: &str| dir.path().join(name).display().to_string();
    let args: Vec<String> = [
        "--port",
        "0",
        "--tls-port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--tls-cert-file",
        &path("broker.pem"),
        "--tls-key-file",
        &path("broker.key"),
        "--tls-auth-clients",
        "no",
        "--requirepass",
        "pa55-from-a-file",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        &path(""),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let Some(_server) = start_broker("redis-server", &args, port).await else {
        return;
    };
    let gw = three_delivered(
        dir,
        &format!("kind = \"redis\"\nurl = \"rediss://127.0.0.1:{port}\"\npassword_file = \"redis-password\"\ntls_ca = \"broker.pem\"\nstream = \"tls:{{source}}\"\n"),
    )
    .await;
    let ca = std::fs::read(gw._dir.path().join("broker.pem")).unwrap();
    let client = redis::Client::build_with_tls(
        format!("rediss://:pa55-from-a-file@127.0.0.1:{port}"),
        redis::TlsCertificates {
            client_tls: None,
            root_cert: Some(ca),
        },
    )
    .unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let length: usize = redis::cmd("XLEN")
        .arg("tls:gh")
        .query_async(&mut connection)
        .await
        .unwrap();
    assert_eq!(length, 3);
    gw.stop().await;
}

#[tokio::test]
async fn mosquitto_over_tls_with_a_user_and_a_password_from_a_file() {
    let dir = tempfile::tempdir().unwrap();
    crate::tls::make_certificate(dir.path(), "broker", 9);
    std::fs::write(dir.path().join("mqtt-password"), "s3cret-from-a-file\n").unwrap();
    let path = |name: &str| dir.path().join(name).display().to_string();
    let passwd = std::process::Command::new("mosquitto_passwd")
        .args([
            "-c",
            "-b",
            &path("passwords"),
            "hookgate",
            "s3cret-from-a-file",
        ])
        .status();
    if !passwd.is_ok_and(|s| s.success()) {
        if std::env::var("HOOKGATE_TEST_BROKERS").as_deref() == Ok("required") {
            panic!("mosquitto_passwd is required (HOOKGATE_TEST_BROKERS=required)");
        }
        eprintln!("skipped the Mosquitto TLS test: mosquitto_passwd is not installed");
        return;
    }
    let port = free_port();
    std::fs::write(
        dir.path().join("mosquitto.conf"),
        format!(
            "user root\nlistener {port} 127.0.0.1\ncertfile {}\nkeyfile {}\npassword_file {}\nallow_anonymous false\n",
            path("broker.pem"),
            path("broker.key"),
            path("passwords")
        ),
    )
    .unwrap();
    let args = vec!["-c".to_owned(), path("mosquitto.conf")];
    let Some(_server) = start_broker("mosquitto", &args, port).await else {
        return;
    };
    let gw = three_delivered(
        dir,
        &format!("kind = \"mqtt\"\nurl = \"mqtts://127.0.0.1:{port}\"\nusername = \"hookgate\"\npassword_file = \"mqtt-password\"\ntls_ca = \"broker.pem\"\ntopic = \"tls/{{source}}\"\n"),
    )
    .await;
    gw.stop().await;
}

/// A RabbitMQ node of the test's own, stopped (through `rabbitmqctl`) when dropped.
struct RabbitNode {
    name: String,
    _process: Spawned,
}

impl Drop for RabbitNode {
    fn drop(&mut self) {
        let _ = std::process::Command::new("rabbitmqctl")
            .args(["-n", &self.name, "stop"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}

#[tokio::test]
async fn rabbitmq_over_tls_with_a_password_from_a_file() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    crate::tls::make_certificate(dir.path(), "broker", 10);
    // The node runs as Debian's `rabbitmq` user: it must read the key and write its data.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    std::fs::set_permissions(
        dir.path().join("broker.key"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    std::fs::write(dir.path().join("amqp-password"), "guest\n").unwrap();
    let (port, dist) = (free_port(), free_port());
    let path = |name: &str| dir.path().join(name).display().to_string();
    std::fs::write(
        dir.path().join("rabbitmq.conf"),
        format!(
            "listeners.tcp = none\nlisteners.ssl.default = {port}\nssl_options.certfile = {}\nssl_options.keyfile = {}\nssl_options.verify = verify_none\nssl_options.fail_if_no_peer_cert = false\n",
            path("broker.pem"),
            path("broker.key")
        ),
    )
    .unwrap();
    std::fs::write(dir.path().join("enabled_plugins"), "[].\n").unwrap();
    let name = format!("hgtest{port}@localhost");
    let found = [
        "/usr/sbin/rabbitmq-server",
        "/usr/lib/rabbitmq/bin/rabbitmq-server",
    ]
    .into_iter()
    .find(|p| std::path::Path::new(p).exists());
    let Some(program) = found else {
        if std::env::var("HOOKGATE_TEST_BROKERS").as_deref() == Ok("required") {
            panic!(
                "rabbitmq-server is required (HOOKGATE_TEST_BROKERS=required) but not installed"
            );
        }
        eprintln!("skipped the RabbitMQ TLS test: rabbitmq-server is not installed");
        return;
    };
    let process = std::process::Command::new(program)
        .env("RABBITMQ_NODENAME", &name)
        .env("RABBITMQ_DIST_PORT", dist.to_string())
        .env("RABBITMQ_MNESIA_BASE", path("mnesia"))
        .env("RABBITMQ_LOG_BASE", path("log"))
        .env("RABBITMQ_CONFIG_FILE", path("rabbitmq"))
        .env("RABBITMQ_ENABLED_PLUGINS_FILE", path("enabled_plugins"))
        .env("RABBITMQ_PID_FILE", path("pid"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let _node = RabbitNode {
        name,
        _process: Spawned(process),
    };
    wait_for(
        "the test's RabbitMQ node",
        Duration::from_secs(90),
        async || {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
        },
    )
    .await;
    // The queue the messages are routed to (mandatory publishes need one), over TLS too.
    let ca = std::fs::read_to_string(dir.path().join("broker.pem")).unwrap();
    let tls = || lapin::tcp::OwnedTLSConfig {
        identity: None,
        cert_chain: Some(ca.clone()),
    };
    let url: lapin::uri::AMQPUri = format!("amqps://guest:guest@127.0.0.1:{port}/%2f")
        .parse()
        .unwrap();
    let connection = lapin::Connection::connect_uri_with_config(
        url.clone(),
        lapin::ConnectionProperties::default(),
        tls(),
        lapin::runtime::default_runtime().unwrap(),
    )
    .await
    .unwrap();
    let channel = connection.create_channel().await.unwrap();
    channel
        .queue_declare("tls".into(), Default::default(), Default::default())
        .await
        .unwrap();
    let gw = three_delivered(
        dir,
        &format!("kind = \"amqp\"\nurl = \"amqps://127.0.0.1:{port}/%2f\"\nusername = \"guest\"\npassword_file = \"amqp-password\"\ntls_ca = \"broker.pem\"\nrouting_key = \"tls\"\n"),
    )
    .await;
    let queue = channel
        .queue_declare(
            "tls".into(),
            lapin::options::QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            Default::default(),
        )
        .await
        .unwrap();
    assert_eq!(queue.message_count(), 3);
    gw.stop().await;
}
