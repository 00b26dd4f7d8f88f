//! hookgate's durable event store.
//!
//! A 2xx is answered only after the event's transaction committed: on SQLite that means
//! the WAL was fsynced (`synchronous = FULL`). Concurrent requests are **group-committed**:
//! one writer thread takes every insert waiting in its queue, writes them all in one
//! transaction and answers each request once that single commit returned.
//!
//! [`Store`] is the boundary the server talks to; backends (`sqlite://`, and `discard://`
//! for the load benchmark's baseline) sit behind it, so PostgreSQL plugs in without
//! touching the ingest code.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod backend;
mod delivery;
mod discard;
mod event;
mod filter;
mod postgres;
mod refusal;
mod retention;
mod sqlite;
#[cfg(feature = "testing")]
pub mod testing;

use std::path::PathBuf;

pub use delivery::{
    webhook_id, Attempt, AttemptOutcome, AttemptRecord, Claimed, DeliveryCounts, DeliveryRecord,
    DeliveryStatus, DestinationStats, ReplayTargets,
};
pub use event::{
    EventId, EventRecord, EventStatus, EventSummary, Lease, ListFilter, NewDelivery, NewEvent,
    Stored,
};
pub use refusal::{
    Refusal, RefusalFilter, RefusalRecord, REFUSALS_KEPT, REFUSAL_BODY_BYTES, REFUSAL_MAX_BYTES,
};
pub use retention::{PruneRule, PRUNE_BATCH};

/// The underlying error of a [`StoreError`], shared by every write of a failed batch.
pub type Cause = std::sync::Arc<dyn std::error::Error + Send + Sync>;

/// Why the store could not do what was asked. Cloned for every write of a failed batch.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store cannot commit right now (disk full, I/O error, database away, writer
    /// gone). Nothing was stored; the client should retry.
    #[error("store unavailable: {reason}")]
    Unavailable {
        /// What failed, for the operator.
        reason: String,
        /// What kind of failure, told apart without reading `reason`.
        kind: FailureKind,
        /// The driver's or the system's error underneath, when there is one.
        #[source]
        source: Option<Cause>,
    },
    /// The store URL or options are wrong.
    #[error("store configuration: {0}")]
    Config(String),
    /// Opening or migrating the database failed.
    #[error("cannot open store at {path}: {reason}")]
    Open {
        /// The database path (or its URL without password).
        path: PathBuf,
        /// What failed.
        reason: String,
        /// What kind of failure.
        kind: FailureKind,
        /// The driver's or the system's error underneath, when there is one.
        #[source]
        source: Option<Cause>,
    },
}

/// What kind of failure a [`StoreError`] is, from its cause: what an operator does about
/// it differs (free space, fix permissions, start the database).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailureKind {
    /// The disk, the database or `[store] max_size` is full.
    Full,
    /// The process may not read or write the store's files.
    PermissionDenied,
    /// The database server refused or dropped the connection, or cannot be reached.
    Unreachable,
    /// Anything else.
    Other,
}

impl FailureKind {
    /// The kind of `error`, from the first error of its chain that says.
    pub fn of(error: &(dyn std::error::Error + 'static)) -> FailureKind {
        let mut next: Option<&(dyn std::error::Error + 'static)> = Some(error);
        while let Some(e) = next {
            if let Some(io) = e.downcast_ref::<std::io::Error>() {
                use std::io::ErrorKind as K;
                match io.kind() {
                    K::StorageFull | K::QuotaExceeded => return FailureKind::Full,
                    K::PermissionDenied | K::ReadOnlyFilesystem => {
                        return FailureKind::PermissionDenied
                    }
                    K::ConnectionRefused
                    | K::ConnectionReset
                    | K::ConnectionAborted
                    | K::NotConnected
                    | K::BrokenPipe
                    | K::TimedOut
                    | K::HostUnreachable
                    | K::NetworkUnreachable
                    | K::UnexpectedEof => return FailureKind::Unreachable,
                    _ => {}
                }
            }
            if let Some(rusqlite::Error::SqliteFailure(failure, _)) =
                e.downcast_ref::<rusqlite::Error>()
            {
                use rusqlite::ErrorCode as C;
                match failure.code {
                    C::DiskFull => return FailureKind::Full,
                    C::PermissionDenied | C::ReadOnly | C::CannotOpen => {
                        return FailureKind::PermissionDenied
                    }
                    _ => {}
                }
            }
            if let Some(pg) = e.downcast_ref::<tokio_postgres::Error>() {
                if let Some(db) = pg.as_db_error() {
                    let code = db.code().code();
                    // 53xxx: insufficient resources (disk full, out of memory …);
                    // 42501: insufficient privilege.
                    if code.starts_with("53") {
                        return FailureKind::Full;
                    }
                    if code == "42501" {
                        return FailureKind::PermissionDenied;
                    }
                } else if pg.is_closed() {
                    return FailureKind::Unreachable;
                }
            }
            next = e.source();
        }
        FailureKind::Other
    }
}

impl StoreError {
    /// Unavailable, with no error underneath.
    pub fn unavailable(reason: impl Into<String>) -> StoreError {
        StoreError::Unavailable {
            reason: reason.into(),
            kind: FailureKind::Other,
            source: None,
        }
    }

    /// Unavailable because of `source`.
    pub fn failed(reason: impl Into<String>, source: Cause) -> StoreError {
        StoreError::Unavailable {
            reason: reason.into(),
            kind: FailureKind::of(&*source),
            source: Some(source),
        }
    }

    /// Opening the store at `path` failed, because of `source` when given.
    pub fn open_failed(
        path: impl Into<PathBuf>,
        reason: impl Into<String>,
        source: Option<Cause>,
    ) -> StoreError {
        StoreError::Open {
            path: path.into(),
            reason: reason.into(),
            kind: source
                .as_deref()
                .map_or(FailureKind::Other, |e| FailureKind::of(e)),
            source,
        }
    }

    /// The kind of failure (`Other` for a configuration error).
    pub fn kind(&self) -> FailureKind {
        match self {
            StoreError::Unavailable { kind, .. } | StoreError::Open { kind, .. } => *kind,
            StoreError::Config(_) => FailureKind::Other,
        }
    }
}

/// Told of every commit of the store's writer (for metrics). Called on the writer's
/// thread: it must be quick and never block.
pub trait CommitObserver: Send + Sync + std::fmt::Debug {
    /// A transaction of `writes` operations took `elapsed` (fsync included); `committed`
    /// is false when it failed and every write of it was refused.
    fn committed(&self, writes: usize, elapsed: std::time::Duration, committed: bool);
}

/// `url` without its password (`postgres://user:SECRET@host/db` → `postgres://user@host/db`),
/// for logs and errors.
pub fn redacted_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((credentials, host)) => {
            let user = credentials.split(':').next().unwrap_or("");
            format!("{user}@{host}")
        }
        None => authority.to_owned(),
    };
    // A password in the query string (`?password=…`) goes too.
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some(("password", _)) => "password=[redacted]".to_owned(),
                    _ => pair.to_owned(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => tail.to_owned(),
    };
    format!("{scheme}://{authority}{tail}")
}

#[cfg(test)]
mod tests {
    use super::FailureKind;

    /// An error whose source is `inner`, as drivers wrap what the system said.
    #[derive(Debug, thiserror::Error)]
    #[error("wrapped")]
    struct Wrapped(#[source] std::io::Error);

    #[test]
    fn failures_are_classified_from_their_cause() {
        use std::io::{Error, ErrorKind};
        let of = |e: &(dyn std::error::Error + 'static)| FailureKind::of(e);
        assert_eq!(
            of(&Error::from(ErrorKind::PermissionDenied)),
            FailureKind::PermissionDenied
        );
        assert_eq!(of(&Error::from(ErrorKind::StorageFull)), FailureKind::Full);
        assert_eq!(
            of(&Wrapped(Error::from(ErrorKind::ConnectionRefused))),
            FailureKind::Unreachable,
            "found down the source chain"
        );
        assert_eq!(of(&Error::other("something else")), FailureKind::Other);
        let full = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL),
            None,
        );
        assert_eq!(of(&full), FailureKind::Full);
        let read_only = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_READONLY),
            None,
        );
        assert_eq!(of(&read_only), FailureKind::PermissionDenied);
        let error = super::StoreError::failed(
            "cannot write",
            std::sync::Arc::new(Error::from(ErrorKind::PermissionDenied)),
        );
        assert_eq!(error.kind(), FailureKind::PermissionDenied);
        assert!(std::error::Error::source(&error).is_some());
        assert_eq!(
            super::StoreError::unavailable("writer gone").kind(),
            FailureKind::Other
        );
    }

    #[test]
    fn passwords_are_redacted_from_urls() {
        use super::redacted_url;
        assert_eq!(
            redacted_url("postgres://hg:s3cret@db.internal:5432/hookgate?sslmode=require"),
            "postgres://hg@db.internal:5432/hookgate?sslmode=require"
        );
        assert_eq!(
            redacted_url("postgres://hg@db/hookgate?password=s3cret&sslmode=disable"),
            "postgres://hg@db/hookgate?password=[redacted]&sslmode=disable"
        );
        assert_eq!(
            redacted_url("sqlite://./data/hookgate.db"),
            "sqlite://./data/hookgate.db"
        );
    }
}

/// Now by this process's clock, Unix ms: the clock of the backends a single process owns.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Store options beyond the URL.
#[derive(Debug, Clone, Default)]
pub struct StoreOptions {
    /// Told of every commit.
    pub observer: Option<std::sync::Arc<dyn CommitObserver>>,
    /// Upper bound of the database size in bytes; inserts beyond it fail as
    /// [`StoreError::Unavailable`] (the client gets 503 and retries later).
    pub max_size: Option<u64>,
    /// Most inserts committed in one transaction; default 1024.
    pub max_batch: Option<usize>,
    /// Accept a PostgreSQL server that commits without durability (`fsync = off` or
    /// `synchronous_commit = off`), which is refused otherwise (`[store] durability =
    /// "relaxed"`).
    pub relaxed_durability: bool,
}

/// The event store: whichever backend its URL names, behind one contract.
#[derive(Clone)]
pub struct Store {
    backend: std::sync::Arc<dyn backend::Backend>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Store({})", self.backend.describe())
    }
}

impl Store {
    /// Opens the store named by `url`: `sqlite://PATH` (created with its directory on first
    /// start, migrated to the current schema), or `discard://` — acknowledges without
    /// storing; only for the load benchmark's baseline.
    pub async fn open(url: &str, options: &StoreOptions) -> Result<Store, StoreError> {
        if let Some(path) = url.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err(StoreError::Config(
                    "sqlite:// needs a path, e.g. sqlite://./hookgate-data/hookgate.db".into(),
                ));
            }
            return Ok(Store {
                backend: std::sync::Arc::new(sqlite::SqliteStore::open(
                    PathBuf::from(path),
                    options,
                )?),
            });
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Store {
                backend: std::sync::Arc::new(postgres::PgStore::open(url, options).await?),
            });
        }
        if url == "discard://" {
            return Ok(Store {
                backend: std::sync::Arc::new(discard::Discard),
            });
        }
        let scheme = url.split("://").next().unwrap_or(url);
        Err(StoreError::Config(format!(
            "unsupported store URL scheme `{scheme}`; use sqlite://PATH"
        )))
    }

    /// Whether this store keeps nothing (benchmark baseline).
    pub fn is_discard(&self) -> bool {
        self.backend.is_discard()
    }

    /// Stores `event` durably, or finds the event already stored under the same source and
    /// dedupe key. Returns only after the commit.
    pub async fn insert(&self, event: NewEvent) -> Result<Stored, StoreError> {
        self.backend.insert(event).await
    }

    /// Checks that the store answers a query and its writer is alive.
    pub async fn ready(&self) -> Result<(), StoreError> {
        self.backend.ready().await
    }

    /// Events matching `filter`, newest first.
    pub async fn list(&self, filter: ListFilter) -> Result<Vec<EventSummary>, StoreError> {
        self.backend.list(filter).await
    }

    /// One event, with its headers and body.
    pub async fn get(&self, id: &str) -> Result<Option<EventRecord>, StoreError> {
        self.backend.get(id.to_owned()).await
    }

    /// Leases up to `limit` due deliveries of `destination` for `lease_ms` to `owner`.
    pub async fn claim(
        &self,
        destination: &str,
        limit: u32,
        lease_ms: i64,
        owner: &str,
    ) -> Result<Vec<Claimed>, StoreError> {
        self.backend
            .claim(destination, limit, lease_ms, owner)
            .await
    }

    /// Records an attempt and moves its delivery on (if `owner` still holds the lease).
    pub async fn complete(&self, attempt: Attempt) -> Result<(), StoreError> {
        self.backend.complete(attempt).await
    }

    /// Makes each `(event, destination)` pending again (creating the delivery if needed),
    /// with attempts reset and the same `webhook-id`.
    pub async fn replay(&self, targets: ReplayTargets) -> Result<usize, StoreError> {
        self.backend.replay(targets).await
    }

    /// Gives up `owner`'s leases on `destination`'s pending deliveries, so they are due at
    /// once (a dispatcher stopping with nothing in flight). Returns how many.
    pub async fn release(&self, destination: &str, owner: &str) -> Result<usize, StoreError> {
        self.backend.release(destination, owner).await
    }

    /// Several events by id (missing ones are skipped).
    pub async fn get_many(&self, ids: Vec<EventId>) -> Result<Vec<EventRecord>, StoreError> {
        self.backend.get_many(ids).await
    }

    /// An event's deliveries with their attempts.
    pub async fn deliveries(&self, event_id: &str) -> Result<Vec<DeliveryRecord>, StoreError> {
        self.backend.deliveries(event_id.to_owned()).await
    }

    /// Deliveries by state.
    pub async fn delivery_counts(&self) -> Result<DeliveryCounts, StoreError> {
        self.backend.delivery_counts().await
    }

    /// Events matching `filter` (all unless it has a limit), oldest first, each with its
    /// deliveries' destinations and states (for replay).
    pub async fn replay_candidates(
        &self,
        filter: ListFilter,
    ) -> Result<Vec<(EventRecord, Vec<(String, DeliveryStatus)>)>, StoreError> {
        self.backend.replay_candidates(filter).await
    }

    /// Every destination with deliveries, or paused: counts by state, leases, the oldest
    /// pending event's arrival.
    pub async fn destination_stats(&self) -> Result<Vec<DestinationStats>, StoreError> {
        self.backend.destination_stats().await
    }

    /// Deletes up to `limit` finished events that `rules` select (the oldest first), with
    /// their deliveries and attempts, in one transaction. Returns how many per source.
    pub async fn prune(
        &self,
        rules: Vec<PruneRule>,
        limit: u32,
    ) -> Result<Vec<(String, u64)>, StoreError> {
        self.backend.prune(rules, limit).await
    }

    /// How many events `rules` would prune now, per source (nothing is deleted).
    pub async fn prunable(&self, rules: Vec<PruneRule>) -> Result<Vec<(String, u64)>, StoreError> {
        self.backend.prunable(rules).await
    }

    /// The destinations an operator paused.
    pub async fn paused(&self) -> Result<Vec<String>, StoreError> {
        self.backend.paused().await
    }

    /// Pauses or resumes `destination` (durably: it holds across restarts). Returns whether
    /// that changed anything.
    pub async fn set_paused(&self, destination: &str, paused: bool) -> Result<bool, StoreError> {
        self.backend.set_paused(destination, paused).await
    }

    /// Records a refused request without waiting (bounded: see [`REFUSALS_KEPT`]). Returns
    /// `false` when it was dropped because the writer is busy.
    pub fn record_refusal(&self, refusal: Refusal) -> bool {
        self.backend.record_refusal(refusal)
    }

    /// Recorded refusals matching `filter`, newest first.
    pub async fn refusals(&self, filter: RefusalFilter) -> Result<Vec<RefusalRecord>, StoreError> {
        self.backend.refusals(filter).await
    }

    /// The store's size on disk in bytes (`None` for `discard://`).
    pub async fn size_bytes(&self) -> Result<Option<u64>, StoreError> {
        self.backend.size_bytes().await
    }

    /// Commits what is queued and stops the writer. Inserts after this fail as unavailable.
    pub async fn close(&self) {
        self.backend.close().await;
    }
}
