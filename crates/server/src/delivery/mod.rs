//! Delivery: every stored event reaches its routed destinations at least once.
//!
//! One dispatcher per destination delivers up to the destination's concurrency at once and
//! records each attempt; the shared [`policy::RetryPolicy`] decides when to try again and
//! when a delivery is dead. Deliveries reach a dispatcher two ways:
//!
//! - **handed over**: ingest reserves a place in the dispatcher's bounded in-memory queue,
//!   the delivery row is committed with the event *already leased* to the dispatcher, and
//!   the event is then passed over in memory: no claim, no re-read;
//! - **queued**: when the hand-over queue is full, and for retries, replays and whatever a
//!   previous process left, the dispatcher claims due rows from the store with a lease.
//!
//! No transaction is held while delivering. A slow or dead destination only fills its own
//! concurrency and queue: ingest and other destinations never wait for it. A lease that
//! expires unfinished (a crash) puts its delivery back in the queue.

pub mod policy;
pub mod routing;
pub mod sink;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hookgate_store::{Attempt, DeliveryStatus, EventRecord, Lease, NewDelivery, NewEvent, Store};
use serde::Deserialize;
use tokio::sync::{mpsc, watch, Notify, OwnedSemaphorePermit, Semaphore};

use policy::{Next, RetryPolicy};
use sink::Sink;

/// How long an idle dispatcher waits before looking for due retries and expired leases.
const POLL: Duration = Duration::from_millis(500);
/// Most deliveries claimed at once.
const CLAIM_BATCH: usize = 256;
/// Body bytes of events waiting in, or being delivered from, the hand-over queues; past
/// this, new deliveries go through the store's queue instead of memory.
const HANDOVER_BYTES: usize = 64 << 20;

/// The keys of `[[destination]]` every kind has; the others belong to its kind (see
/// [`sink`]).
pub const COMMON_KEYS: &[&str] = &["name", "kind", "timeout", "max_attempts", "backoff"];

/// `[[destination]]`'s common keys as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DestinationSection {
    /// Referenced by routes and stored with each delivery.
    pub name: String,
    /// One of [`sink::KINDS`].
    pub kind: String,
    /// Per attempt; default 10s (http), 30s (command).
    pub timeout: Option<String>,
    /// Attempts in all; default 10.
    pub max_attempts: Option<u32>,
    /// Backoff schedule; default 1s 5s 30s 2m 10m 30m 1h (the last repeats).
    pub backoff: Option<Vec<String>>,
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
    /// A digest of its table as configured (secret included, so a rotated secret is a
    /// change): a reload replaces the dispatcher of a destination whose digest differs.
    fingerprint: [u8; 32],
}

impl Destination {
    /// Validates `[[destination]]`: its common keys (`section`) and its kind's (`own`).
    /// Errors name the key (relative to the table).
    pub fn build(
        section: DestinationSection,
        own: toml::Table,
        base: &std::path::Path,
    ) -> Result<Destination, (String, String)> {
        let fingerprint = {
            use sha2::Digest;
            sha2::Sha256::digest(format!("{section:?} {own:?} in {}", base.display()).as_bytes())
                .into()
        };
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
        let (sink, concurrency) = sink::build(&section.kind, own, timeout, base)?;
        Ok(Destination {
            name: section.name,
            sink,
            policy,
            concurrency,
            timeout,
            fingerprint,
        })
    }
}

/// The running dispatchers.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// By destination name. Swapped whole by a reload; ingest reads it without locking.
    dispatchers: Arc<arc_swap::ArcSwap<HashMap<String, Arc<Handle>>>>,
    /// This process's part of every lease owner.
    process: Arc<str>,
    /// Dispatchers started so far: each has an owner of its own, so one being replaced
    /// never gives up the leases of the one replacing it.
    generation: Arc<std::sync::atomic::AtomicU64>,
    handover_bytes: Arc<Semaphore>,
    store: Store,
    finished: Arc<tokio::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

/// What ingest and the admin API need to reach one dispatcher.
#[derive(Debug)]
struct Handle {
    wake: Arc<Notify>,
    handover: mpsc::Sender<Handover>,
    lease: Duration,
    owner: Arc<str>,
    paused: watch::Sender<bool>,
    stop: watch::Sender<bool>,
    fingerprint: [u8; 32],
}

/// What a reload changed in the dispatchers.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Reconfigured {
    /// Destinations new to this process.
    pub added: Vec<String>,
    /// Destinations whose configuration changed: their dispatcher was replaced.
    pub replaced: Vec<String>,
    /// Destinations no longer configured: their dispatcher stopped (its attempts in flight
    /// finish) and their deliveries stay in the store.
    pub removed: Vec<String>,
}

/// A delivery committed leased to its dispatcher, with its event in memory.
#[derive(Debug)]
struct Handover {
    delivery_id: i64,
    event: Arc<Loaded>,
    lease_until_ms: i64,
}

/// An event in memory for delivery; holds its share of the hand-over byte budget.
#[derive(Debug)]
struct Loaded {
    record: EventRecord,
    _budget: Option<OwnedSemaphorePermit>,
}

/// The deliveries of one event about to be stored: places reserved in the dispatchers'
/// hand-over queues where there was room, the store's queue for the others. Dropping it
/// instead of [`Reservation::committed`] (the insert failed, or found a duplicate)
/// releases the places.
#[derive(Debug)]
pub struct Reservation {
    /// One per delivery, in the order of the event's `destinations`.
    places: Vec<Place>,
    event: Option<Arc<Loaded>>,
}

#[derive(Debug)]
enum Place {
    /// Committed leased until `until_ms`; handed over through `place`.
    HandOver {
        place: mpsc::OwnedPermit<Handover>,
        until_ms: i64,
    },
    /// Waits in the store; its dispatcher is woken to claim it.
    Queue(Option<Arc<Notify>>),
}

impl Reservation {
    /// The event and its deliveries were committed (`ids` in the order of the event's
    /// `destinations`): hand the leased ones over, wake the dispatchers of the queued ones.
    pub fn committed(self, ids: &[i64]) {
        for (place, &delivery_id) in self.places.into_iter().zip(ids) {
            match (place, &self.event) {
                (Place::HandOver { place, until_ms }, Some(event)) => {
                    place.send(Handover {
                        delivery_id,
                        event: event.clone(),
                        lease_until_ms: until_ms,
                    });
                }
                (Place::Queue(Some(wake)), _) => wake.notify_one(),
                // A hand-over place is only reserved with the event's copy (see `reserve`).
                (Place::HandOver { .. }, None) | (Place::Queue(None), _) => {}
            }
        }
    }
}

impl Delivery {
    /// Starts one dispatcher per destination; those named in `paused` start paused.
    pub fn start(
        store: Store,
        destinations: Vec<Arc<Destination>>,
        paused: &[String],
        metrics: &crate::metrics::Metrics,
    ) -> Delivery {
        // Leases name their holder: this process, unique across restarts and nodes.
        let process: Arc<str> = format!("{}-{}", std::process::id(), uuid::Uuid::now_v7()).into();
        let delivery = Delivery {
            dispatchers: Default::default(),
            process,
            generation: Default::default(),
            handover_bytes: Arc::new(Semaphore::new(HANDOVER_BYTES)),
            store,
            finished: Default::default(),
        };
        let mut dispatchers = HashMap::new();
        let mut tasks = Vec::new();
        for destination in destinations {
            let starts_paused = paused.contains(&destination.name);
            let (handle, task) = delivery.spawn(destination, starts_paused, metrics);
            dispatchers.insert(handle.0, handle.1);
            tasks.push(task);
        }
        delivery.dispatchers.store(Arc::new(dispatchers));
        *delivery
            .finished
            .try_lock()
            .expect("nothing else holds a new delivery's task list") = tasks;
        delivery
    }

    /// Starts the dispatcher of `destination`.
    fn spawn(
        &self,
        destination: Arc<Destination>,
        paused: bool,
        metrics: &crate::metrics::Metrics,
    ) -> ((String, Arc<Handle>), tokio::task::JoinHandle<()>) {
        let generation = self
            .generation
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let owner: Arc<str> = format!("{}/{generation}", self.process).into();
        let wake = Arc::new(Notify::new());
        // Room for a few rounds of the destination's concurrency: enough to absorb a
        // commit's worth of ingest, small enough that what waits here is delivered long
        // before its lease runs out.
        let (handover, queue) = mpsc::channel((destination.concurrency * 4).clamp(64, 1024));
        let (pause, pause_changes) = watch::channel(paused);
        let (stop, stopped) = watch::channel(false);
        let handle = Arc::new(Handle {
            wake: wake.clone(),
            handover,
            lease: destination.lease(),
            owner: owner.clone(),
            paused: pause,
            stop,
            fingerprint: destination.fingerprint,
        });
        let dispatcher = Dispatcher {
            store: self.store.clone(),
            permits: Arc::new(Semaphore::new(destination.concurrency)),
            metrics: metrics.destination(&destination.name),
            destination: destination.clone(),
            owner,
            in_flight: tokio::task::JoinSet::new(),
        };
        let task = tokio::spawn(dispatcher.run(queue, wake, stopped, pause_changes));
        ((destination.name.clone(), handle), task)
    }

    /// Brings the dispatchers in line with a reloaded configuration's `destinations`: new
    /// ones start (paused if `paused` names them), changed ones are replaced, removed ones
    /// stop. A stopping dispatcher lets its attempts in flight finish and gives what it
    /// still holds back to the store's queue, where its replacement (or, for a removed
    /// destination, a later configuration that has it again) finds it: nothing is lost.
    pub async fn reconfigure(
        &self,
        destinations: &[Arc<Destination>],
        paused: &[String],
        metrics: &crate::metrics::Metrics,
    ) -> Reconfigured {
        let current = self.dispatchers.load_full();
        let mut next = HashMap::new();
        let mut changes = Reconfigured::default();
        let mut tasks = Vec::new();
        let mut retiring = Vec::new();
        for destination in destinations {
            match current.get(&destination.name) {
                Some(handle) if handle.fingerprint == destination.fingerprint => {
                    next.insert(destination.name.clone(), handle.clone());
                }
                found => {
                    if let Some(old) = found {
                        retiring.push(old.clone());
                        changes.replaced.push(destination.name.clone());
                    } else {
                        changes.added.push(destination.name.clone());
                    }
                    let starts_paused = paused.contains(&destination.name);
                    let ((name, handle), task) =
                        self.spawn(destination.clone(), starts_paused, metrics);
                    next.insert(name, handle);
                    tasks.push(task);
                }
            }
        }
        for (name, handle) in current.iter() {
            if !next.contains_key(name) {
                changes.removed.push(name.clone());
                retiring.push(handle.clone());
            }
        }
        changes.removed.sort();
        // New deliveries go to the new dispatchers from here on; a hand-over already
        // reserved with a retiring one is released with its other leases when it stops.
        self.dispatchers.store(Arc::new(next));
        for handle in retiring {
            handle.stop.send_replace(true);
        }
        self.finished.lock().await.extend(tasks);
        changes
    }

    /// Sets `event`'s deliveries to `destinations`, leased to their dispatchers where a
    /// hand-over place was free (then the reservation keeps a copy of the event to hand
    /// over). Never waits: a full queue or an exhausted byte budget means the store's queue.
    pub fn reserve(&self, event: &mut NewEvent, destinations: Vec<String>) -> Reservation {
        let budget = u32::try_from(event.body.len().max(1))
            .ok()
            .and_then(|n| self.handover_bytes.clone().try_acquire_many_owned(n).ok());
        let now = now_ms();
        let dispatchers = self.dispatchers.load();
        let mut rows = Vec::with_capacity(destinations.len());
        let places = destinations
            .into_iter()
            .map(|name| {
                let handle = dispatchers.get(&name);
                // A paused destination's deliveries wait in the store.
                let running = handle.filter(|h| !*h.paused.borrow());
                let handed = budget.as_ref().zip(running).and_then(|(_, handle)| {
                    let place = handle.handover.clone().try_reserve_owned().ok()?;
                    Some((place, now + handle.lease.as_millis() as i64))
                });
                rows.push(NewDelivery {
                    destination: name,
                    lease: handed.as_ref().zip(handle).map(|(_, handle)| Lease {
                        owner: handle.owner.clone(),
                        for_ms: handle.lease.as_millis() as i64,
                    }),
                });
                match handed {
                    Some((place, until_ms)) => Place::HandOver { place, until_ms },
                    None => Place::Queue(handle.map(|h| h.wake.clone())),
                }
            })
            .collect::<Vec<_>>();
        event.destinations = rows;
        let hands_over = places.iter().any(|p| matches!(p, Place::HandOver { .. }));
        let event = budget.filter(|_| hands_over).map(|budget| {
            Arc::new(Loaded {
                record: event.to_record(),
                _budget: Some(budget),
            })
        });
        Reservation { places, event }
    }

    /// Pauses (`true`) or resumes a destination's dispatcher. Paused, it starts no attempt:
    /// the attempts in flight finish, what was handed over goes back to the store's queue,
    /// and new deliveries wait there. Returns whether the destination exists.
    pub fn set_paused(&self, destination: &str, paused: bool) -> bool {
        match self.dispatchers.load().get(destination) {
            Some(handle) => {
                handle.paused.send_replace(paused);
                true
            }
            None => false,
        }
    }

    /// Tells a destination's dispatcher to look for due deliveries now (after a replay).
    pub fn wake(&self, destination: &str) {
        if let Some(handle) = self.dispatchers.load().get(destination) {
            handle.wake.notify_one();
        }
    }

    /// Stops claiming and waits (up to `grace`) for attempts in flight. Each dispatcher then
    /// gives up the leases it still holds (hand-overs not started), so those are due at
    /// once after a restart. What does not finish keeps its lease, which expires: it is
    /// delivered again after a restart.
    pub async fn stop(&self, grace: Duration) {
        for handle in self.dispatchers.load().values() {
            handle.stop.send_replace(true);
        }
        let tasks: Vec<_> = self.finished.lock().await.drain(..).collect();
        let all = async {
            for task in tasks {
                let _ = task.await;
            }
        };
        if tokio::time::timeout(grace, all).await.is_err() {
            tracing::warn!("deliveries still in flight at shutdown; they will be retried after their lease expires");
        }
    }
}

impl Destination {
    /// A command destination's program, as configured (resolved against the configuration
    /// file when it is a relative path).
    pub fn program(&self) -> Option<String> {
        match &self.sink {
            Sink::Command(c) => c.argv.first().map(ToString::to_string),
            _ => None,
        }
    }

    /// How long a delivery stays leased: longer than any attempt (its timeout, then at
    /// least 5 s more), so a lease only expires when its worker is gone, and then the
    /// delivery is back in the queue that soon.
    fn lease(&self) -> Duration {
        self.timeout + self.timeout.max(Duration::from_secs(5))
    }
}

use crate::now_ms;

/// One attempt to make.
struct Job {
    delivery_id: i64,
    webhook_id: String,
    attempts: i64,
    event: Arc<Loaded>,
}

struct Dispatcher {
    store: Store,
    destination: Arc<Destination>,
    owner: Arc<str>,
    permits: Arc<Semaphore>,
    in_flight: tokio::task::JoinSet<()>,
    metrics: Arc<crate::metrics::DestinationMetrics>,
}

impl Dispatcher {
    async fn run(
        mut self,
        mut handover: mpsc::Receiver<Handover>,
        wake: Arc<Notify>,
        mut stopped: watch::Receiver<bool>,
        mut paused: watch::Receiver<bool>,
    ) {
        // A broker is connected (a NATS stream created) now, not at the first event; a
        // broker that is down is reported here and its attempts are retried.
        let name = self.destination.name.clone();
        let sink_ready = async {
            if let Err(e) = self.destination.sink.prepare().await {
                tracing::warn!(destination = %name, error = %e, "broker not reachable yet; deliveries will be retried");
            }
        };
        tokio::select! {
            () = sink_ready => {}
            () = crate::became(&mut stopped, true) => {}
        }
        // An interval, not a sleep per loop: it fires even while hand-overs keep arriving,
        // so due retries and expired leases are never starved.
        let mut poll = tokio::time::interval(POLL);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // At start, whatever an earlier process left is due.
        let mut queued = true;
        // Lease left at the start of an attempt: the attempt's timeout and a second to
        // record it, so a lease never expires under an attempt that is still running.
        let needed = self.destination.timeout.as_millis() as i64 + 1_000;
        loop {
            if *stopped.borrow() {
                break;
            }
            if *paused.borrow_and_update() {
                self.pause(&mut handover).await;
                tokio::select! {
                    () = crate::became(&mut paused, false) => {
                        tracing::info!(destination = %self.destination.name, "resumed");
                        queued = true;
                        continue;
                    }
                    () = crate::became(&mut stopped, true) => break,
                }
            }
            while self.in_flight.try_join_next().is_some() {}
            // A free place first, then whichever wants it: a hand-over or the queue, on equal
            // terms, so retries and replays are not starved while hand-overs keep coming.
            let Some(permit) = self.permit(&mut stopped).await else {
                break;
            };
            tokio::select! {
                changed = stopped.changed() => {
                    if changed.is_err() {
                        break;
                    }
                }
                Some(handed) = handover.recv() => {
                    // What waited here too long is the queue's once its lease expires (the
                    // queue may even have claimed it already): starting it now could run
                    // past the lease and deliver it twice.
                    if handed.lease_until_ms - now_ms() < needed {
                        tracing::debug!(destination = %self.destination.name, event = %handed.event.record.summary.id, "hand-over waited too long; left to the queue");
                        continue;
                    }
                    self.metrics.dispatched(true);
                    let job = Job {
                        delivery_id: handed.delivery_id,
                        webhook_id: hookgate_store::webhook_id(&handed.event.record.summary.id, &self.destination.name),
                        attempts: 0,
                        event: handed.event,
                    };
                    self.start(job, permit);
                }
                () = std::future::ready(()), if queued => {
                    queued = self.claim(permit).await;
                }
                () = wake.notified() => queued = true,
                _ = poll.tick() => queued = true,
                _ = paused.changed() => {}
            }
        }
        while self.in_flight.join_next().await.is_some() {}
        // Nothing of ours is in flight now: what is still leased to us (hand-overs not
        // started, attempts not begun) is due at once for the next run instead of when the
        // leases expire. Had the shutdown grace cut this short, the leases expire as after
        // a crash.
        let name = &self.destination.name;
        match self.store.release(name, &self.owner).await {
            Ok(0) => {}
            Ok(n) => {
                tracing::info!(destination = %name, deliveries = n, "left pending for the next run")
            }
            Err(e) => {
                tracing::warn!(destination = %name, error = %e, "cannot give up leases; they will expire")
            }
        }
    }

    /// Lets the attempts in flight finish, then gives every delivery waiting in memory back
    /// to the store's queue (their leases are released), where they wait for the resume.
    async fn pause(&mut self, handover: &mut mpsc::Receiver<Handover>) {
        let name = &self.destination.name;
        tracing::info!(destination = %name, "paused: finishing attempts in flight");
        while self.in_flight.join_next().await.is_some() {}
        while handover.try_recv().is_ok() {}
        match self.store.release(name, &self.owner).await {
            Ok(n) => tracing::info!(destination = %name, returned_to_queue = n, "paused"),
            Err(e) => {
                tracing::warn!(destination = %name, error = %e, "cannot give up leases; they will expire")
            }
        }
    }

    async fn permit(&self, stopped: &mut watch::Receiver<bool>) -> Option<OwnedSemaphorePermit> {
        tokio::select! {
            permit = self.permits.clone().acquire_owned() => permit.ok(),
            () = crate::became(stopped, true) => None,
        }
    }

    /// Claims due deliveries for `first` and the permits that free up within a few
    /// milliseconds (one claim and one read for many deliveries, not one each). Returns
    /// whether more may be due.
    async fn claim(&mut self, first: OwnedSemaphorePermit) -> bool {
        let mut permits = vec![first];
        let enough = self.destination.concurrency.div_ceil(2).min(CLAIM_BATCH);
        let gather_until = tokio::time::Instant::now() + Duration::from_millis(10);
        while permits.len() < enough {
            match self.permits.clone().try_acquire_owned() {
                Ok(permit) => permits.push(permit),
                Err(_) => match tokio::time::timeout_at(
                    gather_until,
                    self.permits.clone().acquire_owned(),
                )
                .await
                {
                    Ok(Ok(permit)) => permits.push(permit),
                    _ => break,
                },
            }
        }
        while permits.len() < CLAIM_BATCH {
            match self.permits.clone().try_acquire_owned() {
                Ok(permit) => permits.push(permit),
                Err(_) => break,
            }
        }
        let wanted = permits.len();
        let name = &self.destination.name;
        let lease_ms = self.destination.lease().as_millis() as i64;
        let claimed = match self
            .store
            .claim(name, wanted as u32, lease_ms, &self.owner)
            .await
        {
            Ok(claimed) => claimed,
            Err(e) => {
                tracing::warn!(destination = %name, error = %e, "cannot claim deliveries");
                return false;
            }
        };
        if claimed.is_empty() {
            return false;
        }
        let more = claimed.len() == wanted;
        let ids = claimed.iter().map(|c| c.event_id.clone()).collect();
        let mut events = match self.store.get_many(ids).await {
            Ok(events) => events
                .into_iter()
                .map(|record| {
                    let id = record.summary.id.clone();
                    let loaded = Arc::new(Loaded {
                        record,
                        _budget: None,
                    });
                    (id, loaded)
                })
                .collect::<HashMap<_, _>>(),
            Err(e) => {
                tracing::warn!(destination = %name, error = %e, "cannot read claimed events; their leases will expire");
                return false;
            }
        };
        for (claim, permit) in claimed.into_iter().zip(permits) {
            let Some(event) = events.get(&claim.event_id).cloned() else {
                continue;
            };
            self.metrics.dispatched(false);
            let job = Job {
                delivery_id: claim.delivery_id,
                webhook_id: claim.webhook_id,
                attempts: claim.attempts,
                event,
            };
            self.start(job, permit);
        }
        events.clear();
        more
    }

    fn start(&mut self, job: Job, permit: OwnedSemaphorePermit) {
        let (store, destination, owner, metrics) = (
            self.store.clone(),
            self.destination.clone(),
            self.owner.to_string(),
            self.metrics.clone(),
        );
        self.in_flight.spawn(async move {
            let attempt = (job.attempts + 1) as u32;
            let started_ms = now_ms();
            let started = Instant::now();
            let outcome = destination
                .sink
                .deliver(&sink::Message {
                    event: &job.event.record,
                    key: &job.webhook_id,
                    attempt,
                })
                .await;
            let took = started.elapsed();
            let duration_ms = took.as_millis() as i64;
            // The destination's concurrency is about requests in flight: free the place
            // (and the event's memory) now, not after the attempt is recorded. The lease
            // keeps the delivery from being claimed again meanwhile.
            drop(permit);
            let event_id = job.event.record.summary.id.clone();
            drop(job.event);
            let (status, retry_in_ms) = match destination.policy.next(attempt, &outcome.verdict) {
                Next::Delivered => (DeliveryStatus::Delivered, 0),
                Next::Dead => (DeliveryStatus::Dead, 0),
                Next::RetryIn(delay) => (DeliveryStatus::Pending, delay.as_millis() as i64),
            };
            metrics.attempt(status, took, started_ms, outcome.error.as_deref());
            let error = outcome.error.as_deref().unwrap_or("-");
            match status {
                DeliveryStatus::Dead => tracing::warn!(destination = %destination.name, event = %event_id, attempt, error, "delivery dead; kept for replay"),
                DeliveryStatus::Pending => tracing::warn!(destination = %destination.name, event = %event_id, attempt, error, next_attempt = %crate::rfc3339(now_ms() + retry_in_ms), "delivery failed; will retry"),
                DeliveryStatus::Delivered => tracing::debug!(destination = %destination.name, event = %event_id, attempt, "delivered"),
            }
            let record = Attempt {
                delivery_id: job.delivery_id,
                owner,
                started_at_ms: started_ms,
                duration_ms,
                status_code: outcome.status_code,
                next_status: status,
                retry_in_ms,
                response: outcome.response,
                error: outcome.error,
            };
            if let Err(e) = store.complete(record).await {
                // The lease expires and the delivery is attempted again: at least once.
                tracing::warn!(destination = %destination.name, event = %event_id, error = %e, "cannot record the attempt");
            }
        });
    }
}
