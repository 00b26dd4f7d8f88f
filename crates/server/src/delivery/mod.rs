//! Delivery: every stored event reaches its routed destinations at least once.
//!
//! One dispatcher per destination claims due deliveries from the store with a lease (no
//! transaction is held while delivering), delivers up to the destination's concurrency at
//! once, and records each attempt; the shared [`policy::RetryPolicy`] decides when to try
//! again and when a delivery is dead. A slow or dead destination only fills its own
//! concurrency: ingest and other destinations never wait for it. After a crash, expired
//! leases put unfinished deliveries back in the queue.

pub mod policy;
pub mod routing;
pub mod sink;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hookgate_store::{Attempt, DeliveryStatus, Store};
use serde::Deserialize;
use tokio::sync::{watch, Notify, Semaphore};

use policy::{Next, RetryPolicy};
use sink::{CommandSink, FileSink, HttpSink, Sink};

/// How long an idle dispatcher waits before looking for due retries and expired leases.
const POLL: Duration = Duration::from_millis(500);
/// Most deliveries claimed at once.
const CLAIM_BATCH: u32 = 256;

/// `[[destination]]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DestinationSection {
    /// Referenced by routes and stored with each delivery.
    pub name: String,
    /// `http`, `command` or `file`.
    pub kind: String,
    /// `http`: the URL.
    pub url: Option<String>,
    /// `http`: the Standard Webhooks secret (`whsec_…`, or `whsk_…` to sign v1a).
    pub secret: Option<String>,
    /// `command`: program and arguments (templates).
    pub command: Option<Vec<String>>,
    /// `file`: where to append.
    pub path: Option<String>,
    /// Per attempt; default 10s (http), 30s (command).
    pub timeout: Option<String>,
    /// Attempts in all; default 10.
    pub max_attempts: Option<u32>,
    /// Backoff schedule; default 1s 5s 30s 2m 10m 30m 1h (the last repeats).
    pub backoff: Option<Vec<String>>,
    /// Deliveries in flight at once; default 16 (http), 4 (command), 1 (file).
    pub concurrency: Option<usize>,
    /// `http`: statuses besides 410 that are permanent failures (no retry).
    pub permanent_statuses: Option<Vec<u16>>,
}

/// A built destination.
#[derive(Debug)]
pub struct Destination {
    /// Its name.
    pub name: String,
    /// How it delivers.
    pub sink: Sink,
    /// When to retry.
    pub policy: RetryPolicy,
    /// Deliveries in flight at once.
    pub concurrency: usize,
    /// Per-attempt time limit.
    pub timeout: Duration,
}

impl Destination {
    /// Validates `[[destination]]`; errors name the key (relative to the table).
    pub fn build(
        section: DestinationSection,
        base: &std::path::Path,
    ) -> Result<Destination, (String, String)> {
        let err = |key: &str, message: String| (key.to_owned(), message);
        let duration = |key: &str, text: &str| {
            humantime::parse_duration(text)
                .map_err(|e| err(key, format!("`{text}` is not a duration ({e})")))
        };
        let default_timeout = if section.kind == "command" {
            "30s"
        } else {
            "10s"
        };
        let timeout = duration(
            "timeout",
            section.timeout.as_deref().unwrap_or(default_timeout),
        )?;
        let mut policy = RetryPolicy::default();
        if let Some(n) = section.max_attempts {
            if n == 0 {
                return Err(err("max_attempts", "must be at least 1".into()));
            }
            policy.max_attempts = n;
        }
        if let Some(list) = &section.backoff {
            if list.is_empty() {
                return Err(err("backoff", "name at least one delay".into()));
            }
            policy.schedule = list
                .iter()
                .map(|d| duration("backoff", d))
                .collect::<Result<_, _>>()?;
        }
        let unused = |key: &str, present: bool| {
            if present {
                Err(err(key, format!("is not used by kind `{}`", section.kind)))
            } else {
                Ok(())
            }
        };
        let (sink, concurrency) = match section.kind.as_str() {
            "http" => {
                unused("command", section.command.is_some())?;
                unused("path", section.path.is_some())?;
                let url = section
                    .url
                    .clone()
                    .ok_or_else(|| err("url", "an http destination needs `url`".into()))?;
                let parsed = reqwest::Url::parse(&url)
                    .map_err(|e| err("url", format!("`{url}` is not a URL: {e}")))?;
                if !matches!(parsed.scheme(), "http" | "https") {
                    return Err(err("url", "must be http:// or https://".into()));
                }
                let secret = section
                    .secret
                    .clone()
                    .filter(|s| !s.is_empty())
                    .ok_or_else(|| err("secret", "deliveries are signed as Standard Webhooks: set `secret` (make one with `hookgate keygen --alg whsec`)".into()))?;
                hookgate_verify::standard_webhooks_sign(&secret, b"check")
                    .map_err(|e| err("secret", format!("not a whsec_/whsk_ secret: {e}")))?;
                let client = reqwest::Client::builder()
                    .timeout(timeout)
                    .redirect(reqwest::redirect::Policy::none())
                    .user_agent(concat!("hookgate/", env!("CARGO_PKG_VERSION")))
                    .build()
                    .map_err(|e| err("url", e.to_string()))?;
                let permanent = section.permanent_statuses.clone().unwrap_or_default();
                if let Some(bad) = permanent.iter().find(|s| !(400..500).contains(*s)) {
                    return Err(err(
                        "permanent_statuses",
                        format!("{bad} is not a 4xx status"),
                    ));
                }
                (
                    Sink::Http(HttpSink {
                        url: parsed,
                        secret: hookgate_verify::Secret::new(secret),
                        client,
                        permanent,
                    }),
                    section.concurrency.unwrap_or(16),
                )
            }
            "command" => {
                unused("url", section.url.is_some())?;
                unused("secret", section.secret.is_some())?;
                unused("path", section.path.is_some())?;
                unused("permanent_statuses", section.permanent_statuses.is_some())?;
                let argv = section
                    .command
                    .clone()
                    .filter(|c| !c.is_empty())
                    .ok_or_else(|| {
                        err(
                            "command",
                            "name the program, e.g. [\"/usr/local/bin/handle\", \"{json:/id}\"]"
                                .into(),
                        )
                    })?;
                let argv = argv
                    .iter()
                    .enumerate()
                    .map(|(i, a)| {
                        hookgate_verify::Template::parse(&format!("command[{i}]"), a)
                            .map_err(|e| (e.key, e.message))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                (
                    Sink::Command(CommandSink { argv, timeout }),
                    section.concurrency.unwrap_or(4),
                )
            }
            "file" => {
                unused("url", section.url.is_some())?;
                unused("secret", section.secret.is_some())?;
                unused("command", section.command.is_some())?;
                unused("permanent_statuses", section.permanent_statuses.is_some())?;
                let path = section
                    .path
                    .clone()
                    .ok_or_else(|| err("path", "a file destination needs `path`".into()))?;
                let path = if std::path::Path::new(&path).is_absolute() {
                    PathBuf::from(path)
                } else {
                    base.join(path)
                };
                (
                    Sink::File(FileSink {
                        path,
                        file: Default::default(),
                    }),
                    1,
                )
            }
            "nats" | "redis" | "amqp" | "kafka" => {
                return Err(err(
                    "kind",
                    format!(
                        "`{}` destinations are not part of this version; use http, command or file",
                        section.kind
                    ),
                ))
            }
            other => {
                return Err(err(
                    "kind",
                    format!("unknown kind `{other}`; use http, command or file"),
                ))
            }
        };
        if concurrency == 0 {
            return Err(err("concurrency", "must be at least 1".into()));
        }
        Ok(Destination {
            name: section.name,
            sink,
            policy,
            concurrency,
            timeout,
        })
    }
}

/// The running dispatchers.
#[derive(Debug, Clone)]
pub struct Delivery {
    wake: Arc<HashMap<String, Arc<Notify>>>,
    stop: watch::Sender<bool>,
    finished: Arc<tokio::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Delivery {
    /// Starts one dispatcher per destination.
    pub fn start(store: Store, destinations: Vec<Arc<Destination>>) -> Delivery {
        let (stop, stopped) = watch::channel(false);
        let owner = format!("{}-{}", std::process::id(), uuid_like());
        let mut wake = HashMap::new();
        let mut tasks = Vec::new();
        for destination in destinations {
            let notify = Arc::new(Notify::new());
            wake.insert(destination.name.clone(), notify.clone());
            tasks.push(tokio::spawn(dispatch(
                store.clone(),
                destination,
                notify,
                stopped.clone(),
                owner.clone(),
            )));
        }
        Delivery {
            wake: Arc::new(wake),
            stop,
            finished: Arc::new(tokio::sync::Mutex::new(tasks)),
        }
    }

    /// New deliveries were committed for `destinations`: look now, not at the next poll.
    pub fn notify(&self, destinations: &[String]) {
        for name in destinations {
            if let Some(n) = self.wake.get(name) {
                n.notify_one();
            }
        }
    }

    /// Stops claiming and waits (up to `grace`) for attempts in flight. What does not
    /// finish keeps its lease, which expires: it is delivered again after a restart.
    pub async fn stop(&self, grace: Duration) {
        let _ = self.stop.send(true);
        let tasks: Vec<_> = self.finished.lock().await.drain(..).collect();
        let all = futures_join_all(tasks);
        if tokio::time::timeout(grace, all).await.is_err() {
            tracing::warn!("deliveries still in flight at shutdown; they will be retried after their lease expires");
        }
    }
}

async fn futures_join_all(tasks: Vec<tokio::task::JoinHandle<()>>) {
    for task in tasks {
        let _ = task.await;
    }
}

fn uuid_like() -> String {
    format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos()
    )
}

fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

async fn dispatch(
    store: Store,
    destination: Arc<Destination>,
    wake: Arc<Notify>,
    mut stopped: watch::Receiver<bool>,
    owner: String,
) {
    let permits = Arc::new(Semaphore::new(destination.concurrency));
    // Longer than any attempt (twice its timeout, at least 5 s more): a lease only expires
    // when its worker is gone, and then the delivery is back in the queue that soon.
    let lease_ms =
        (destination.timeout + destination.timeout.max(Duration::from_secs(5))).as_millis() as i64;
    let mut in_flight = tokio::task::JoinSet::new();
    loop {
        if *stopped.borrow() {
            break;
        }
        while in_flight.try_join_next().is_some() {}
        // Claim in batches: one claim (and one read) for many deliveries, not one each.
        let half = destination.concurrency.div_ceil(2);
        if permits.available_permits() < half && !in_flight.is_empty() {
            let _ = tokio::time::timeout(Duration::from_millis(10), async {
                while permits.available_permits() < half {
                    if in_flight.join_next().await.is_none() {
                        break;
                    }
                }
            })
            .await;
        }
        let free = permits.available_permits().min(CLAIM_BATCH as usize) as u32;
        let claimed = if free == 0 {
            Vec::new()
        } else {
            match store
                .claim(&destination.name, free, now_ms(), lease_ms, &owner)
                .await
            {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(destination = %destination.name, error = %e, "cannot claim deliveries");
                    Vec::new()
                }
            }
        };
        if claimed.is_empty() {
            tokio::select! {
                () = wake.notified() => {}
                () = tokio::time::sleep(POLL) => {}
                _ = stopped.changed() => {}
                // A finished delivery frees a permit: claim again at once.
                Some(_) = in_flight.join_next(), if !in_flight.is_empty() && free == 0 => {}
            }
            continue;
        }
        let ids: Vec<String> = claimed.iter().map(|c| c.event_id.clone()).collect();
        let events = match store.get_many(ids).await {
            Ok(events) => events
                .into_iter()
                .map(|e| (e.summary.id.clone(), Arc::new(e)))
                .collect::<HashMap<_, _>>(),
            Err(e) => {
                tracing::warn!(destination = %destination.name, error = %e, "cannot read claimed events; their leases will expire");
                continue;
            }
        };
        for claim in claimed {
            let Some(event) = events.get(&claim.event_id).cloned() else {
                continue;
            };
            let permit = permits.clone().acquire_owned().await.expect("never closed");
            let (store, destination, owner) = (store.clone(), destination.clone(), owner.clone());
            in_flight.spawn(async move {
                let attempt = (claim.attempts + 1) as u32;
                let started_ms = now_ms();
                let started = Instant::now();
                let outcome = destination.sink.deliver(&event, &claim.webhook_id, attempt).await;
                let duration_ms = started.elapsed().as_millis() as i64;
                let (status, next_at_ms) = match destination.policy.next(attempt, &outcome.verdict) {
                    Next::Delivered => (DeliveryStatus::Delivered, started_ms),
                    Next::Dead => (DeliveryStatus::Dead, started_ms),
                    Next::RetryIn(delay) => (DeliveryStatus::Pending, now_ms() + delay.as_millis() as i64),
                };
                match status {
                    DeliveryStatus::Dead => tracing::warn!(destination = %destination.name, event = %claim.event_id, attempt, error = ?outcome.error, "delivery dead"),
                    DeliveryStatus::Pending => tracing::info!(destination = %destination.name, event = %claim.event_id, attempt, error = ?outcome.error, "delivery failed; will retry"),
                    DeliveryStatus::Delivered => tracing::debug!(destination = %destination.name, event = %claim.event_id, attempt, "delivered"),
                }
                let record = Attempt {
                    delivery_id: claim.delivery_id,
                    owner,
                    started_at_ms: started_ms,
                    duration_ms,
                    status_code: outcome.status_code,
                    next_status: status,
                    next_at_ms,
                    response: outcome.response,
                    error: outcome.error,
                };
                if let Err(e) = store.complete(record).await {
                    // The lease expires and the delivery is attempted again: at least once.
                    tracing::warn!(destination = %destination.name, event = %claim.event_id, error = %e, "cannot record the attempt");
                }
                drop(permit);
            });
        }
    }
    while in_flight.join_next().await.is_some() {}
}
