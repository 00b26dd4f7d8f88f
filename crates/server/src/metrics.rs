//! Prometheus metrics: one [`Metrics`] per gateway (its own registry, no global state, so
//! tests run several gateways in one process). The hot paths touch only handles resolved at
//! start (a source's counters, a destination's counters): an atomic add, or a histogram's
//! short lock, per request. Gauges that come from the store (backlog, oldest pending, dead
//! letters, size on disk) are read when `/metrics` is scraped.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};

/// How an ingest request ended, as the `outcome` label spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IngestOutcome {
    /// Stored and acknowledged.
    Accepted,
    /// Already stored; acknowledged again.
    Duplicate,
    /// Refused by verification or validation (the kind's stable name).
    Refused(hookgate_verify::ErrorKind),
    /// Over a rate limit (the source's or the peer's).
    RateLimited,
    /// Body over the limit.
    TooLarge,
    /// The body could not be read.
    MalformedBody,
    /// The body did not arrive in time.
    Timeout,
    /// A method the source does not accept.
    MethodNotAllowed,
    /// The OIDC issuer's keys could not be had.
    KeysUnavailable,
    /// The store could not commit.
    Unavailable,
    /// No memory left for request bodies (503, retry).
    Overloaded,
    /// A provider's handshake, answered and not stored.
    Handshake,
}

/// The outcomes that are not refusals by the verifier, in label spelling.
const OTHER_OUTCOMES: &[IngestOutcome] = &[
    IngestOutcome::Accepted,
    IngestOutcome::Duplicate,
    IngestOutcome::RateLimited,
    IngestOutcome::TooLarge,
    IngestOutcome::MalformedBody,
    IngestOutcome::Timeout,
    IngestOutcome::MethodNotAllowed,
    IngestOutcome::KeysUnavailable,
    IngestOutcome::Unavailable,
    IngestOutcome::Overloaded,
    IngestOutcome::Handshake,
];

impl IngestOutcome {
    /// The `outcome` label.
    pub fn as_str(self) -> &'static str {
        match self {
            IngestOutcome::Accepted => "accepted",
            IngestOutcome::Duplicate => "duplicate",
            IngestOutcome::Refused(kind) => kind.as_str(),
            IngestOutcome::RateLimited => "rate_limited",
            IngestOutcome::TooLarge => "too_large",
            IngestOutcome::MalformedBody => "malformed_body",
            IngestOutcome::Timeout => "timeout",
            IngestOutcome::MethodNotAllowed => "method_not_allowed",
            IngestOutcome::KeysUnavailable => "keys_unavailable",
            IngestOutcome::Unavailable => "unavailable",
            IngestOutcome::Overloaded => "overloaded",
            IngestOutcome::Handshake => "handshake",
        }
    }

    /// Whether the request was acknowledged (stored now or before).
    pub fn is_acknowledged(self) -> bool {
        matches!(self, IngestOutcome::Accepted | IngestOutcome::Duplicate)
    }

    /// Every outcome, each once.
    pub fn all() -> impl Iterator<Item = IngestOutcome> {
        OTHER_OUTCOMES.iter().copied().chain(
            hookgate_verify::ErrorKind::ALL
                .iter()
                .map(|k| IngestOutcome::Refused(*k)),
        )
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    source: String,
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabels {
    source: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DestinationLabels {
    destination: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeliveryLabels {
    destination: String,
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DispatchLabels {
    destination: String,
    path: &'static str,
}

/// `issuer` × `result` (`ok`, `failed`) of OIDC key fetches.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KeyFetchLabels {
    /// The issuer URL.
    pub issuer: String,
    /// `ok` or `failed`.
    pub result: &'static str,
}

/// The metrics of one gateway.
#[derive(Debug)]
pub struct Metrics {
    enabled: bool,
    key_fetches: Family<KeyFetchLabels, Counter>,
    registry: Mutex<Registry>,
    requests: Family<RequestLabels, Counter>,
    ingest_seconds: Family<SourceLabels, Histogram, fn() -> Histogram>,
    deliveries: Family<DeliveryLabels, Counter>,
    attempt_seconds: Family<DestinationLabels, Histogram, fn() -> Histogram>,
    dispatch: Family<DispatchLabels, Counter>,
    /// Every source and destination configured since the start (a reload adds; what it
    /// removes keeps its series, as Prometheus counters must not vanish).
    sources: Mutex<Vec<Arc<SourceMetrics>>>,
    destinations: Mutex<Vec<Arc<DestinationMetrics>>>,
    store_bytes: Gauge,
    backlog: Family<DestinationLabels, Gauge>,
    leased: Family<DestinationLabels, Gauge>,
    dead: Family<DestinationLabels, Gauge>,
    oldest_pending: Family<DestinationLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    paused: Family<DestinationLabels, Gauge>,
    commits: CommitMetrics,
    refusals_dropped: Counter,
    pruned: Family<SourceLabels, Counter>,
}

/// One source's handles, resolved once (not per request).
#[derive(Debug)]
pub struct SourceMetrics {
    /// The source's name.
    pub name: String,
    enabled: bool,
    outcomes: Vec<(IngestOutcome, Counter)>,
    latency: Histogram,
}

impl SourceMetrics {
    /// Records a request and how long it took.
    pub fn request(&self, outcome: IngestOutcome, took: Duration) {
        if !self.enabled {
            return;
        }
        if let Some((_, counter)) = self.outcomes.iter().find(|(o, _)| *o == outcome) {
            counter.inc();
        }
        self.latency.observe(took.as_secs_f64());
    }

    /// Requests so far by outcome (zero ones included), for the admin API and the log.
    pub fn counts(&self) -> Vec<(&'static str, u64)> {
        self.outcomes
            .iter()
            .map(|(o, c)| (o.as_str(), c.get()))
            .collect()
    }

    /// Requests acknowledged and refused so far.
    pub fn totals(&self) -> (u64, u64) {
        let mut acknowledged = 0;
        let mut refused = 0;
        for (outcome, counter) in &self.outcomes {
            if outcome.is_acknowledged() {
                acknowledged += counter.get();
            } else {
                refused += counter.get();
            }
        }
        (acknowledged, refused)
    }
}

/// One destination's handles, and what it last did (for the admin API).
#[derive(Debug)]
pub struct DestinationMetrics {
    /// The destination's name.
    pub name: String,
    enabled: bool,
    delivered: Counter,
    failed: Counter,
    dead: Counter,
    handed_over: Counter,
    queued: Counter,
    latency: Histogram,
    health: Mutex<Health>,
}

/// What a destination last did, in this process.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Health {
    /// The last successful attempt (Unix ms).
    pub last_success_ms: Option<i64>,
    /// The last failed attempt (Unix ms) and its error.
    pub last_error: Option<(i64, String)>,
}

impl DestinationMetrics {
    /// Records an attempt ending with its delivery `next` (delivered, pending = failed, dead).
    pub fn attempt(
        &self,
        next: hookgate_store::DeliveryStatus,
        took: Duration,
        at_ms: i64,
        error: Option<&str>,
    ) {
        use hookgate_store::DeliveryStatus;
        if !self.enabled {
            return;
        }
        match next {
            DeliveryStatus::Delivered => self.delivered.inc(),
            DeliveryStatus::Pending => self.failed.inc(),
            DeliveryStatus::Dead => self.dead.inc(),
        };
        self.latency.observe(took.as_secs_f64());
        let mut health = self.health.lock().expect("health lock");
        match (next, error) {
            (DeliveryStatus::Delivered, _) => health.last_success_ms = Some(at_ms),
            (_, Some(error)) => health.last_error = Some((at_ms, error.to_owned())),
            (_, None) => health.last_error = Some((at_ms, "failed".to_owned())),
        }
    }

    /// A delivery started from memory (`true`) or from the store's queue.
    pub fn dispatched(&self, handed_over: bool) {
        if !self.enabled {
            return;
        }
        if handed_over {
            self.handed_over.inc();
        } else {
            self.queued.inc();
        };
    }

    /// Delivered, failed and dead attempts so far.
    pub fn totals(&self) -> (u64, u64, u64) {
        (self.delivered.get(), self.failed.get(), self.dead.get())
    }

    /// What it last did.
    pub fn health(&self) -> Health {
        self.health.lock().expect("health lock").clone()
    }

    /// Attempts so far in this process: (succeeded, failed or dead).
    pub fn attempts(&self) -> (u64, u64) {
        (self.delivered.get(), self.failed.get() + self.dead.get())
    }
}

/// The store writer's commits.
#[derive(Debug, Clone)]
struct CommitMetrics {
    writes: Histogram,
    seconds: Histogram,
    failed: Counter,
}

impl hookgate_store::CommitObserver for CommitMetrics {
    fn committed(&self, writes: usize, elapsed: Duration, committed: bool) {
        self.writes.observe(writes as f64);
        self.seconds.observe(elapsed.as_secs_f64());
        if !committed {
            self.failed.inc();
        }
    }
}

/// Latency buckets: 250 µs to about 16 s, doubling.
fn seconds_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.000_25, 2.0, 17)
}

impl Metrics {
    /// Metrics for these sources and destinations. Disabled metrics record nothing (the
    /// `/metrics` endpoint is then not served, and the admin API's counters stay at zero).
    pub fn new(sources: &[String], destinations: &[String], enabled: bool) -> Metrics {
        let key_fetches = Family::<KeyFetchLabels, Counter>::default();
        let mut registry = Registry::with_prefix("hookgate");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "requests",
            "Ingest requests by source and outcome (accepted, duplicate, each refusal kind, too_large, unavailable …)",
            requests.clone(),
        );
        let ingest_seconds =
            Family::<SourceLabels, Histogram, fn() -> Histogram>::new_with_constructor(|| {
                Histogram::new(seconds_buckets())
            });
        registry.register_with_unit(
            "ingest",
            "Time from the request's head to the answer (verification and the durable commit included)",
            Unit::Seconds,
            ingest_seconds.clone(),
        );
        let deliveries = Family::<DeliveryLabels, Counter>::default();
        registry.register(
            "deliveries",
            "Delivery attempts by destination and outcome (delivered, failed = will retry, dead)",
            deliveries.clone(),
        );
        let attempt_seconds =
            Family::<DestinationLabels, Histogram, fn() -> Histogram>::new_with_constructor(|| {
                Histogram::new(seconds_buckets())
            });
        registry.register_with_unit(
            "delivery_attempt",
            "Duration of delivery attempts by destination",
            Unit::Seconds,
            attempt_seconds.clone(),
        );
        let dispatch = Family::<DispatchLabels, Counter>::default();
        registry.register(
            "delivery_dispatch",
            "Attempts started by path: handover (the event passed in memory) or queue (claimed from the store)",
            dispatch.clone(),
        );
        let backlog = Family::<DestinationLabels, Gauge>::default();
        registry.register(
            "delivery_backlog",
            "Pending deliveries by destination (read from the store at scrape)",
            backlog.clone(),
        );
        let leased = Family::<DestinationLabels, Gauge>::default();
        registry.register(
            "delivery_leased",
            "Pending deliveries currently leased (in flight or handed over) by destination",
            leased.clone(),
        );
        let oldest_pending =
            Family::<DestinationLabels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
        registry.register_with_unit(
            "delivery_oldest_pending_age",
            "Age of the oldest event with a pending delivery, by destination (0 when none)",
            Unit::Seconds,
            oldest_pending.clone(),
        );
        let dead = Family::<DestinationLabels, Gauge>::default();
        registry.register(
            "dead_letters",
            "Dead deliveries kept for replay, by destination",
            dead.clone(),
        );
        let paused = Family::<DestinationLabels, Gauge>::default();
        registry.register(
            "destination_paused",
            "1 while an operator has paused the destination",
            paused.clone(),
        );
        let store_bytes = Gauge::default();
        registry.register_with_unit(
            "store_size",
            "Size of the store on disk",
            Unit::Bytes,
            store_bytes.clone(),
        );
        let commits = CommitMetrics {
            writes: Histogram::new(exponential_buckets(1.0, 2.0, 12)),
            seconds: Histogram::new(seconds_buckets()),
            failed: Counter::default(),
        };
        registry.register(
            "store_commit_batch_size",
            "Writes (inserts, claims, attempt records …) per store transaction",
            commits.writes.clone(),
        );
        registry.register_with_unit(
            "store_commit",
            "Duration of store transactions, fsync included",
            Unit::Seconds,
            commits.seconds.clone(),
        );
        registry.register(
            "store_commit_failures",
            "Store transactions that failed (every write of them refused)",
            commits.failed.clone(),
        );
        registry.register(
            "oidc_key_fetches",
            "OIDC discovery + JWKS fetches by issuer and result",
            key_fetches.clone(),
        );
        let refusals_dropped = Counter::default();
        registry.register(
            "refusals_unrecorded",
            "Refused requests counted but not kept for the admin API (sampled under a flood)",
            refusals_dropped.clone(),
        );
        let pruned = Family::<SourceLabels, Counter>::default();
        registry.register(
            "events_pruned",
            "Finished events deleted by retention, by source",
            pruned.clone(),
        );
        let metrics = Metrics {
            enabled,
            pruned,
            key_fetches,
            registry: Mutex::new(registry),
            requests,
            ingest_seconds,
            deliveries,
            attempt_seconds,
            dispatch,
            sources: Mutex::default(),
            destinations: Mutex::default(),
            store_bytes,
            backlog,
            leased,
            dead,
            oldest_pending,
            paused,
            commits,
            refusals_dropped,
        };
        for name in sources {
            metrics.source(name);
        }
        for name in destinations {
            metrics.destination(name);
        }
        metrics
    }

    /// The handles of source `name`, made (with every series at zero) on first use.
    pub fn source(&self, name: &str) -> Arc<SourceMetrics> {
        let mut sources = self.sources.lock().expect("metrics lock");
        if let Some(found) = sources.iter().find(|s| s.name == name) {
            return found.clone();
        }
        let made = Arc::new(SourceMetrics {
            name: name.to_owned(),
            enabled: self.enabled,
            outcomes: IngestOutcome::all()
                .map(|outcome| {
                    let labels = RequestLabels {
                        source: name.to_owned(),
                        outcome: outcome.as_str(),
                    };
                    (outcome, self.requests.get_or_create(&labels).clone())
                })
                .collect(),
            latency: self
                .ingest_seconds
                .get_or_create(&SourceLabels {
                    source: name.to_owned(),
                })
                .clone(),
        });
        let _ = self.pruned.get_or_create(&SourceLabels {
            source: name.to_owned(),
        });
        sources.push(made.clone());
        made
    }

    /// The handles of destination `name`, made (with every series at zero) on first use.
    pub fn destination(&self, name: &str) -> Arc<DestinationMetrics> {
        let mut destinations = self.destinations.lock().expect("metrics lock");
        if let Some(found) = destinations.iter().find(|d| d.name == name) {
            return found.clone();
        }
        let counter = |outcome| {
            self.deliveries
                .get_or_create(&DeliveryLabels {
                    destination: name.to_owned(),
                    outcome,
                })
                .clone()
        };
        let path = |path| {
            self.dispatch
                .get_or_create(&DispatchLabels {
                    destination: name.to_owned(),
                    path,
                })
                .clone()
        };
        let made = Arc::new(DestinationMetrics {
            name: name.to_owned(),
            enabled: self.enabled,
            delivered: counter("delivered"),
            failed: counter("failed"),
            dead: counter("dead"),
            handed_over: path("handover"),
            queued: path("queue"),
            latency: self
                .attempt_seconds
                .get_or_create(&DestinationLabels {
                    destination: name.to_owned(),
                })
                .clone(),
            health: Mutex::new(Health::default()),
        });
        destinations.push(made.clone());
        made
    }

    /// The metrics of `config`'s sources and destinations.
    pub fn for_config(config: &crate::Config) -> Metrics {
        let sources: Vec<String> = config.sources.iter().map(|s| s.name.clone()).collect();
        let destinations: Vec<String> =
            config.destinations.iter().map(|d| d.name.clone()).collect();
        Metrics::new(&sources, &destinations, config.metrics)
    }

    /// The OIDC key fetch counters, for the key cache.
    pub fn key_fetches(&self) -> Family<KeyFetchLabels, Counter> {
        self.key_fetches.clone()
    }

    /// Whether metrics are recorded and served.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Events retention deleted, by source.
    pub fn pruned(&self, batch: &[(String, u64)]) {
        if !self.enabled {
            return;
        }
        for (source, n) in batch {
            self.pruned
                .get_or_create(&SourceLabels {
                    source: source.clone(),
                })
                .inc_by(*n);
        }
    }

    /// A refused request that was counted but not kept.
    pub fn refusal_unrecorded(&self) {
        if self.enabled {
            self.refusals_dropped.inc();
        }
    }

    /// The handles of every source configured since the start, first configured first.
    pub fn sources(&self) -> Vec<Arc<SourceMetrics>> {
        self.sources.lock().expect("metrics lock").clone()
    }

    /// The handles of destination `name`, if it was ever configured.
    pub fn find_destination(&self, name: &str) -> Option<Arc<DestinationMetrics>> {
        let destinations = self.destinations.lock().expect("metrics lock");
        destinations.iter().find(|d| d.name == name).cloned()
    }

    /// The handles of every destination configured since the start.
    pub fn destinations(&self) -> Vec<Arc<DestinationMetrics>> {
        self.destinations.lock().expect("metrics lock").clone()
    }

    /// The observer to give the store, so its commits are measured.
    pub fn commit_observer(&self) -> Option<Arc<dyn hookgate_store::CommitObserver>> {
        self.enabled
            .then(|| Arc::new(self.commits.clone()) as Arc<dyn hookgate_store::CommitObserver>)
    }

    /// Reads the store's gauges and renders the text exposition format.
    pub async fn render(
        &self,
        store: &hookgate_store::Store,
    ) -> Result<String, hookgate_store::StoreError> {
        let now = crate::now_ms();
        let stats = store.destination_stats().await?;
        if let Some(bytes) = store.size_bytes().await? {
            self.store_bytes.set(bytes as i64);
        }
        // Every configured destination has series, zero when it has no deliveries yet.
        let known = self.destinations();
        let mut names: Vec<&str> = known.iter().map(|d| d.name.as_str()).collect();
        for s in &stats {
            if !names.contains(&s.destination.as_str()) {
                names.push(&s.destination);
            }
        }
        for name in names {
            let labels = DestinationLabels {
                destination: name.to_owned(),
            };
            let found = stats.iter().find(|s| s.destination == name);
            let counts = found.map(|s| s.counts).unwrap_or_default();
            self.backlog.get_or_create(&labels).set(counts.pending);
            self.dead.get_or_create(&labels).set(counts.dead);
            self.leased
                .get_or_create(&labels)
                .set(found.map_or(0, |s| s.leased));
            self.paused
                .get_or_create(&labels)
                .set(i64::from(found.is_some_and(|s| s.paused)));
            let age = found
                .and_then(|s| s.oldest_pending_ms)
                .map_or(0.0, |ms| ((now - ms).max(0) as f64) / 1000.0);
            self.oldest_pending.get_or_create(&labels).set(age);
        }
        let mut text = String::new();
        let registry = self.registry.lock().expect("registry lock");
        prometheus_client::encoding::text::encode(&mut text, &registry)
            .expect("writing to a String cannot fail");
        Ok(text)
    }
}

/// Seconds of arrivals [`Arrivals`] remembers.
pub const ARRIVAL_SECONDS: usize = 300;

/// Events stored per second over the last [`ARRIVAL_SECONDS`], counted by this process
/// (the console's chart). Lock-free: each slot packs its second (high 32 bits) and its
/// count (low 32 bits) in one atomic, so a slot moving to a new second never mixes counts.
#[derive(Debug)]
pub struct Arrivals {
    slots: Vec<std::sync::atomic::AtomicU64>,
}

impl Default for Arrivals {
    fn default() -> Arrivals {
        Arrivals {
            slots: (0..ARRIVAL_SECONDS)
                .map(|_| std::sync::atomic::AtomicU64::new(0))
                .collect(),
        }
    }
}

impl Arrivals {
    /// Counts one event stored at `at_ms` (Unix ms).
    pub fn record(&self, at_ms: i64) {
        use std::sync::atomic::Ordering;
        let second = (at_ms.max(0) / 1000) as u64 & 0xffff_ffff;
        let slot = &self.slots[second as usize % ARRIVAL_SECONDS];
        let mut current = slot.load(Ordering::Relaxed);
        loop {
            let next = if current >> 32 == second {
                current.saturating_add(1).min((second << 32) | 0xffff_ffff)
            } else {
                (second << 32) | 1
            };
            match slot.compare_exchange_weak(current, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return,
                Err(seen) => current = seen,
            }
        }
    }

    /// Events per second for the `seconds` (at most [`ARRIVAL_SECONDS`]) whole seconds
    /// before the one holding `now_ms`, and that one: oldest first, as (Unix second, count).
    pub fn last(&self, seconds: usize, now_ms: i64) -> Vec<(i64, u64)> {
        use std::sync::atomic::Ordering;
        let now = now_ms.max(0) / 1000;
        let seconds = seconds.min(ARRIVAL_SECONDS - 1) as i64;
        (now - seconds..=now)
            .map(|second| {
                let packed = self.slots[(second as u64 & 0xffff_ffff) as usize % ARRIVAL_SECONDS]
                    .load(Ordering::Relaxed);
                let count = if packed >> 32 == (second as u64 & 0xffff_ffff) {
                    packed & 0xffff_ffff
                } else {
                    0
                };
                (second, count)
            })
            .collect()
    }
}

#[cfg(test)]
mod arrival_tests {
    use super::*;

    #[test]
    fn arrivals_are_counted_per_second_and_forgotten_when_old() {
        let arrivals = Arrivals::default();
        let base = 1_790_000_000_000;
        for _ in 0..3 {
            arrivals.record(base + 10);
        }
        arrivals.record(base + 999);
        arrivals.record(base + 1000);
        arrivals.record(base + 3500);
        let seen = arrivals.last(4, base + 3999);
        let second = base / 1000;
        assert_eq!(
            seen,
            vec![
                (second - 1, 0),
                (second, 4),
                (second + 1, 1),
                (second + 2, 0),
                (second + 3, 1)
            ]
        );
        // The slot of `second` is reused ARRIVAL_SECONDS later and starts again from 1.
        let later = base + ARRIVAL_SECONDS as i64 * 1000;
        arrivals.record(later);
        assert_eq!(
            arrivals.last(0, later),
            vec![(second + ARRIVAL_SECONDS as i64, 1)]
        );
        // A window longer than remembered is cut to what is remembered.
        assert_eq!(arrivals.last(10_000, later).len(), ARRIVAL_SECONDS);
        // Nothing old leaks into a later window.
        assert!(arrivals
            .last(ARRIVAL_SECONDS, later + 5 * ARRIVAL_SECONDS as i64 * 1000)
            .iter()
            .all(|(_, n)| *n == 0));
    }

    #[test]
    fn arrivals_from_many_threads_are_all_counted() {
        let arrivals = std::sync::Arc::new(Arrivals::default());
        let at = 1_790_000_000_500;
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let arrivals = arrivals.clone();
                std::thread::spawn(move || (0..10_000).for_each(|_| arrivals.record(at)))
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(arrivals.last(0, at), vec![(at / 1000, 40_000)]);
    }
}
