//! The embedded store: one SQLite file in WAL mode, one writer thread that group-commits
//! (fsynced whenever the batch holds an acknowledged write), one reader connection for
//! queries.

use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::{params, Connection, OptionalExtension};
use tokio::sync::{mpsc, oneshot};

use crate::backend::Backend;
use crate::delivery::{
    webhook_id, Attempt, AttemptOutcome, AttemptRecord, Claimed, DeliveryCounts, DeliveryRecord,
    DeliveryStatus, DestinationStats, ReplayTargets,
};
use crate::event::{EventId, EventRecord, EventStatus, EventSummary, ListFilter, NewEvent, Stored};
use crate::refusal::{Refusal, RefusalFilter, RefusalRecord, REFUSALS_KEPT};
use crate::retention::PruneRule;
use crate::{CommitObserver, StoreError, StoreOptions};

/// Schema versions, applied in order; `PRAGMA user_version` records how many ran.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE events (
    id            TEXT PRIMARY KEY,
    source        TEXT NOT NULL,
    dedupe_key    TEXT,
    topic         TEXT,
    tenant        TEXT,
    provider_ts   TEXT,
    received_at   INTEGER NOT NULL,
    method        TEXT NOT NULL,
    path          TEXT NOT NULL,
    headers       TEXT NOT NULL,
    body          BLOB NOT NULL,
    verification  TEXT NOT NULL
);
CREATE UNIQUE INDEX events_dedupe ON events(source, dedupe_key) WHERE dedupe_key IS NOT NULL;
"#,
    r#"
ALTER TABLE events ADD COLUMN routing TEXT NOT NULL DEFAULT 'unrouted';
CREATE TABLE deliveries (
    id           INTEGER PRIMARY KEY,
    event_id     TEXT NOT NULL REFERENCES events(id),
    destination  TEXT NOT NULL,
    webhook_id   TEXT NOT NULL,
    status       TEXT NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    next_at      INTEGER NOT NULL,
    lease_until  INTEGER,
    lease_owner  TEXT,
    last_error   TEXT,
    updated_at   INTEGER NOT NULL
);
CREATE UNIQUE INDEX deliveries_event ON deliveries(event_id, destination);
CREATE INDEX deliveries_due ON deliveries(destination, status, next_at);
CREATE TABLE attempts (
    id           INTEGER PRIMARY KEY,
    delivery_id  INTEGER NOT NULL REFERENCES deliveries(id),
    started_at   INTEGER NOT NULL,
    duration_ms  INTEGER NOT NULL,
    status_code  INTEGER,
    outcome      TEXT NOT NULL,
    response     TEXT,
    error        TEXT
);
CREATE INDEX attempts_delivery ON attempts(delivery_id);
"#,
    r#"
CREATE TABLE refusals (
    id           INTEGER PRIMARY KEY,
    source       TEXT NOT NULL,
    received_at  INTEGER NOT NULL,
    peer         TEXT,
    kind         TEXT NOT NULL,
    detail       TEXT NOT NULL,
    method       TEXT NOT NULL,
    path         TEXT NOT NULL,
    status       INTEGER NOT NULL,
    headers      TEXT NOT NULL,
    body_head    BLOB NOT NULL,
    body_size    INTEGER NOT NULL
);
CREATE INDEX refusals_source ON refusals(source, id);
CREATE TABLE destination_pauses (
    destination  TEXT PRIMARY KEY,
    paused_at    INTEGER NOT NULL
);
"#,
    crate::filter::LISTING_INDEXES,
];

const INSERT: &str = "INSERT INTO events (id, source, dedupe_key, topic, tenant, provider_ts, received_at, method, path, headers, body, verification, routing) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13) \
     ON CONFLICT (source, dedupe_key) WHERE dedupe_key IS NOT NULL DO NOTHING";
const FIND_DUPLICATE: &str = "SELECT id FROM events WHERE source = ?1 AND dedupe_key = ?2";
/// A replay: the delivery is due now with its attempts reset. A pending delivery keeps its
/// lease: it may be in flight, and only its holder may move it on (clearing the lease
/// would let the queue claim it while it runs, and deliver it twice at once).
const INSERT_DELIVERY: &str = "INSERT INTO deliveries (event_id, destination, webhook_id, status, attempts, next_at, updated_at) \
     VALUES (?1, ?2, ?3, 'pending', 0, ?4, ?4) \
     ON CONFLICT (event_id, destination) DO UPDATE SET \
     lease_until = CASE WHEN status = 'pending' THEN lease_until END, \
     lease_owner = CASE WHEN status = 'pending' THEN lease_owner END, \
     status = 'pending', attempts = 0, next_at = ?4, updated_at = ?4";
/// A new event's delivery; created leased when a running dispatcher takes it from memory.
const INSERT_NEW_DELIVERY: &str = "INSERT INTO deliveries (event_id, destination, webhook_id, status, attempts, next_at, lease_until, lease_owner, updated_at) \
     VALUES (?1, ?2, ?3, 'pending', 0, ?4, ?5, ?6, ?4)";
const CLAIM: &str = "UPDATE deliveries SET lease_until = ?4, lease_owner = ?5 WHERE id IN ( \
     SELECT id FROM deliveries WHERE destination = ?1 AND status = 'pending' AND next_at <= ?2 \
     AND (lease_until IS NULL OR lease_until <= ?2) ORDER BY next_at, id LIMIT ?3) \
     RETURNING id, event_id, webhook_id, attempts";
/// Through `deliveries_due` (destination, status): only the pending rows are looked at.
const RELEASE: &str = "UPDATE deliveries SET lease_until = NULL, lease_owner = NULL \
     WHERE destination = ?1 AND status = 'pending' AND lease_owner = ?2";
const RECORD_ATTEMPT: &str = "INSERT INTO attempts (delivery_id, started_at, duration_ms, status_code, outcome, response, error) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
const INSERT_REFUSAL: &str = "INSERT INTO refusals (source, received_at, peer, kind, detail, method, path, status, headers, body_head, body_size) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";
const COMPLETE: &str = "UPDATE deliveries SET status = ?2, attempts = attempts + 1, next_at = ?3, lease_until = NULL, \
     lease_owner = NULL, last_error = ?4, updated_at = ?5 WHERE id = ?1 AND lease_owner = ?6";

/// An event with its JSON columns already serialised by the caller, so the single writer
/// thread does nothing but SQLite work.
struct Prepared {
    event: NewEvent,
    /// When the insert was asked for (Unix ms): hand-over leases run from here.
    now_ms: i64,
    headers: String,
    verification: String,
}

/// One write, run inside the writer's batch transaction; its reply is sent after the commit.
enum Op {
    Insert(Box<Prepared>, oneshot::Sender<Result<Stored, StoreError>>),
    Claim {
        destination: String,
        limit: u32,
        now_ms: i64,
        lease_ms: i64,
        owner: String,
        reply: oneshot::Sender<Result<Vec<Claimed>, StoreError>>,
    },
    /// An attempt, and when its delivery is due next (Unix ms).
    Complete(Box<Attempt>, i64, oneshot::Sender<Result<(), StoreError>>),
    Replay(
        ReplayTargets,
        i64,
        oneshot::Sender<Result<usize, StoreError>>,
    ),
    /// Gives up `owner`'s leases on the pending deliveries of `destination`.
    Release {
        destination: String,
        owner: String,
        reply: oneshot::Sender<Result<usize, StoreError>>,
    },
    /// Records a refused request; nobody waits for it.
    Refusal(Box<Refusal>),
    /// Deletes up to `limit` finished events older than their rule's cutoff.
    Prune {
        rules: Vec<PruneRule>,
        limit: u32,
        reply: oneshot::Sender<Result<Vec<(String, u64)>, StoreError>>,
    },
    /// Pauses or resumes a destination.
    Pause {
        destination: String,
        paused: bool,
        now_ms: i64,
        reply: oneshot::Sender<Result<bool, StoreError>>,
    },
    /// Tests only: answers the `synchronous` mode its batch committed under (2 = FULL,
    /// 1 = NORMAL), or with `fail` makes its whole batch fail.
    #[cfg(test)]
    Probe {
        fail: bool,
        reply: oneshot::Sender<Result<i64, StoreError>>,
    },
}

enum Done {
    Stored(Stored),
    Claimed(Vec<Claimed>),
    Completed,
    Replayed(usize),
    Released(usize),
    Recorded,
    Paused(bool),
    Pruned(Vec<(String, u64)>),
    #[cfg(test)]
    Probed(i64),
}

impl Op {
    fn run(&self, tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<Done> {
        match self {
            Op::Insert(prepared, _) => insert_event(tx, prepared).map(Done::Stored),
            Op::Claim {
                destination,
                limit,
                now_ms,
                lease_ms,
                owner,
                ..
            } => {
                let mut claim = tx.prepare_cached(CLAIM)?;
                let rows = claim.query_map(
                    params![destination, now_ms, limit, now_ms + lease_ms, owner],
                    |r| {
                        Ok(Claimed {
                            delivery_id: r.get(0)?,
                            event_id: EventId(r.get(1)?),
                            webhook_id: r.get(2)?,
                            attempts: r.get(3)?,
                        })
                    },
                )?;
                rows.collect::<rusqlite::Result<Vec<_>>>()
                    .map(Done::Claimed)
            }
            Op::Complete(attempt, next_at_ms, _) => {
                tx.prepare_cached(RECORD_ATTEMPT)?.execute(params![
                    attempt.delivery_id,
                    attempt.started_at_ms,
                    attempt.duration_ms,
                    attempt.status_code,
                    AttemptOutcome::of(attempt.next_status).as_str(),
                    attempt.response,
                    attempt.error
                ])?;
                // Only the lease owner moves the delivery on: a worker whose lease expired
                // (and was claimed again) records its attempt and nothing else.
                tx.prepare_cached(COMPLETE)?.execute(params![
                    attempt.delivery_id,
                    attempt.next_status.as_str(),
                    next_at_ms,
                    attempt.error,
                    attempt.started_at_ms + attempt.duration_ms,
                    attempt.owner
                ])?;
                Ok(Done::Completed)
            }
            Op::Replay(targets, now_ms, _) => {
                let mut upsert = tx.prepare_cached(INSERT_DELIVERY)?;
                let mut routed =
                    tx.prepare_cached("UPDATE events SET routing = 'routed' WHERE id = ?1")?;
                for (event_id, destination) in targets {
                    upsert.execute(params![
                        event_id,
                        destination,
                        webhook_id(event_id, destination),
                        now_ms
                    ])?;
                    routed.execute(params![event_id])?;
                }
                Ok(Done::Replayed(targets.len()))
            }
            Op::Release {
                destination, owner, ..
            } => tx
                .prepare_cached(RELEASE)?
                .execute(params![destination, owner])
                .map(Done::Released),
            Op::Refusal(refusal) => {
                let headers =
                    serde_json::to_string(&refusal.headers).unwrap_or_else(|_| "[]".into());
                tx.prepare_cached(INSERT_REFUSAL)?.execute(params![
                    refusal.source,
                    refusal.received_at_ms,
                    refusal.peer,
                    refusal.kind,
                    refusal.detail,
                    refusal.method,
                    refusal.path,
                    refusal.status,
                    headers,
                    &refusal.body_head[..],
                    refusal.body_size,
                ])?;
                // The ring's bound: the newest REFUSALS_KEPT stay. Ids only grow, so this
                // is one range delete on the primary key.
                tx.prepare_cached("DELETE FROM refusals WHERE id <= last_insert_rowid() - ?1")?
                    .execute([REFUSALS_KEPT])?;
                Ok(Done::Recorded)
            }
            Op::Prune { rules, limit, .. } => prune(tx, rules, *limit).map(Done::Pruned),
            Op::Pause {
                destination,
                paused,
                now_ms,
                ..
            } => {
                let changed = if *paused {
                    tx.prepare_cached("INSERT INTO destination_pauses (destination, paused_at) VALUES (?1, ?2) ON CONFLICT (destination) DO NOTHING")?
                        .execute(params![destination, now_ms])?
                } else {
                    tx.prepare_cached("DELETE FROM destination_pauses WHERE destination = ?1")?
                        .execute([destination])?
                };
                Ok(Done::Paused(changed > 0))
            }
            #[cfg(test)]
            Op::Probe { fail, .. } => {
                if *fail {
                    return Err(rusqlite::Error::InvalidQuery);
                }
                tx.query_row("PRAGMA synchronous", [], |r| r.get(0))
                    .map(Done::Probed)
            }
        }
    }

    /// Whether the op's caller is told "done" as a promise that survives a crash: events
    /// (acknowledged to the sender) and replays (to the operator). Leases and attempt records
    /// are not: losing the last ones in a crash only means an expired lease and a delivery
    /// made again, which at-least-once allows. Those commits skip the fsync; the next durable
    /// commit's fsync covers them, as WAL frames are written in order.
    fn must_survive_a_crash(&self) -> bool {
        matches!(self, Op::Insert(..) | Op::Replay(..) | Op::Pause { .. })
    }

    fn answer(self, done: Result<Done, StoreError>) {
        match (self, done) {
            (Op::Insert(_, reply), Ok(Done::Stored(s))) => drop(reply.send(Ok(s))),
            (Op::Claim { reply, .. }, Ok(Done::Claimed(c))) => drop(reply.send(Ok(c))),
            (Op::Complete(_, _, reply), Ok(Done::Completed)) => drop(reply.send(Ok(()))),
            (Op::Replay(_, _, reply), Ok(Done::Replayed(n))) => drop(reply.send(Ok(n))),
            (Op::Release { reply, .. }, Ok(Done::Released(n))) => drop(reply.send(Ok(n))),
            (Op::Refusal(_), Ok(Done::Recorded)) => {}
            (Op::Pause { reply, .. }, Ok(Done::Paused(changed))) => drop(reply.send(Ok(changed))),
            (Op::Prune { reply, .. }, Ok(Done::Pruned(n))) => drop(reply.send(Ok(n))),
            #[cfg(test)]
            (Op::Probe { reply, .. }, Ok(Done::Probed(mode))) => drop(reply.send(Ok(mode))),
            (op, Err(e)) => op.fail(e),
            (op, Ok(_)) => op.fail(StoreError::unavailable("internal: mismatched write result")),
        }
    }

    fn fail(self, e: StoreError) {
        match self {
            Op::Insert(_, reply) => drop(reply.send(Err(e))),
            Op::Claim { reply, .. } => drop(reply.send(Err(e))),
            Op::Complete(_, _, reply) => drop(reply.send(Err(e))),
            Op::Replay(_, _, reply) => drop(reply.send(Err(e))),
            Op::Release { reply, .. } => drop(reply.send(Err(e))),
            Op::Refusal(refusal) => {
                tracing::debug!(source = %refusal.source, error = %e, "refused request not recorded")
            }
            Op::Pause { reply, .. } => drop(reply.send(Err(e))),
            Op::Prune { reply, .. } => drop(reply.send(Err(e))),
            #[cfg(test)]
            Op::Probe { reply, .. } => drop(reply.send(Err(e))),
        }
    }
}

enum Message {
    Op(Op),
    Close(oneshot::Sender<()>),
}

#[derive(Clone)]
pub(crate) struct SqliteStore {
    path: Arc<PathBuf>,
    writer: mpsc::Sender<Message>,
    reader: Arc<Mutex<Connection>>,
}

/// Creates `dir` and its missing parents as 0700 (an existing directory is left as it is).
pub(crate) fn private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

fn open_connection(path: &Path, options: &StoreOptions) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;

    if let Some(max) = options.max_size {
        let page_size: i64 = conn.pragma_query_value(None, "page_size", |r| r.get(0))?;
        conn.pragma_update(None, "max_page_count", (max as i64 / page_size).max(1))?;
    }
    Ok(conn)
}

fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let applied: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(applied as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}

impl SqliteStore {
    pub(crate) fn open(path: PathBuf, options: &StoreOptions) -> Result<SqliteStore, StoreError> {
        let fail = |reason: String, cause: crate::Cause| {
            StoreError::open_failed(path.clone(), reason, Some(cause))
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            private_dir(dir).map_err(|e| {
                fail(
                    format!("cannot create directory {}: {e}", dir.display()),
                    Arc::new(e),
                )
            })?;
        }
        // Events hold what providers sent: readable by the gateway's user alone. SQLite
        // creates the WAL and shared-memory files with the database file's permissions.
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| {
                fail(
                    format!("cannot create {}: {e}", path.display()),
                    Arc::new(e),
                )
            })?;
        let mut writer_conn =
            open_connection(&path, options).map_err(|e| fail(e.to_string(), Arc::new(e)))?;
        migrate(&mut writer_conn)
            .map_err(|e| fail(format!("migration failed: {e}"), Arc::new(e)))?;
        // 16 MiB of page cache keeps the writer's id and dedupe B-trees' hot pages in memory.
        writer_conn
            .pragma_update(None, "cache_size", -16 * 1024)
            .map_err(|e| fail(e.to_string(), Arc::new(e)))?;
        // The reader's cache is dropped whenever the writer commits (every read sees a new
        // snapshot), so a large one only costs time: keep SQLite's small default.
        let reader =
            open_connection(&path, options).map_err(|e| fail(e.to_string(), Arc::new(e)))?;
        let (tx, rx) = mpsc::channel(16 * 1024);
        let max_batch = options.max_batch.unwrap_or(1024).max(1);
        let observer = options.observer.clone();
        std::thread::Builder::new()
            .name("hookgate-store-writer".into())
            .spawn(move || write_loop(writer_conn, rx, max_batch, observer))
            .map_err(|e| fail(format!("cannot start writer thread: {e}"), Arc::new(e)))?;
        Ok(SqliteStore {
            path: Arc::new(path),
            writer: tx,
            reader: Arc::new(Mutex::new(reader)),
        })
    }

    async fn submit<T>(
        &self,
        op: Op,
        answer: oneshot::Receiver<Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        self.writer
            .send(Message::Op(op))
            .await
            .map_err(|_| StoreError::unavailable("the store writer has stopped"))?;
        answer
            .await
            .map_err(|_| StoreError::unavailable("the store writer stopped before committing"))?
    }

    async fn read<T: Send + 'static>(
        &self,
        query: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        let reader = self.reader.clone();
        tokio::task::spawn_blocking(move || {
            let conn = reader
                .lock()
                .map_err(|_| StoreError::unavailable("reader connection poisoned"))?;
            query(&conn).map_err(|e| StoreError::failed(e.to_string(), Arc::new(e)))
        })
        .await
        .map_err(|e| StoreError::unavailable(format!("read task failed: {e}")))?
    }
}

#[async_trait::async_trait]
impl Backend for SqliteStore {
    fn describe(&self) -> String {
        format!("sqlite {}", self.path.display())
    }

    async fn insert(&self, event: NewEvent) -> Result<Stored, StoreError> {
        let (reply, answer) = oneshot::channel();
        let prepared = Prepared {
            now_ms: crate::now_ms(),
            headers: serde_json::to_string(&event.headers).unwrap_or_else(|_| "[]".into()),
            verification: event.verification.to_string(),
            event,
        };
        self.submit(Op::Insert(Box::new(prepared), reply), answer)
            .await
    }

    async fn claim(
        &self,
        destination: &str,
        limit: u32,
        lease_ms: i64,
        owner: &str,
    ) -> Result<Vec<Claimed>, StoreError> {
        let (reply, answer) = oneshot::channel();
        let op = Op::Claim {
            destination: destination.to_owned(),
            limit,
            now_ms: crate::now_ms(),
            lease_ms,
            owner: owner.to_owned(),
            reply,
        };
        self.submit(op, answer).await
    }

    async fn complete(&self, attempt: Attempt) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        let now = crate::now_ms();
        let next_at_ms = match attempt.next_status {
            DeliveryStatus::Pending => now + attempt.retry_in_ms.max(0),
            DeliveryStatus::Delivered | DeliveryStatus::Dead => now,
        };
        self.submit(Op::Complete(Box::new(attempt), next_at_ms, reply), answer)
            .await
    }

    async fn replay(&self, targets: ReplayTargets) -> Result<usize, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.submit(Op::Replay(targets, crate::now_ms(), reply), answer)
            .await
    }

    async fn release(&self, destination: &str, owner: &str) -> Result<usize, StoreError> {
        let (reply, answer) = oneshot::channel();
        let op = Op::Release {
            destination: destination.to_owned(),
            owner: owner.to_owned(),
            reply,
        };
        self.submit(op, answer).await
    }

    async fn get_many(&self, ids: Vec<EventId>) -> Result<Vec<EventRecord>, StoreError> {
        self.read(move |conn| {
            let mut statement = conn.prepare_cached(&format!("{GET_EVENT} WHERE id = ?1"))?;
            let mut out = Vec::with_capacity(ids.len());
            for id in &ids {
                if let Some(record) = statement.query_row([id], record_from_row).optional()? {
                    out.push(record);
                }
            }
            Ok(out)
        })
        .await
    }

    async fn deliveries(&self, event_id: String) -> Result<Vec<DeliveryRecord>, StoreError> {
        self.read(move |conn| {
            let mut rows = conn.prepare_cached(
                "SELECT id, destination, webhook_id, status, attempts, next_at, last_error FROM deliveries WHERE event_id = ?1 ORDER BY destination",
            )?;
            let mut history = conn.prepare_cached(
                "SELECT started_at, duration_ms, status_code, outcome, response, error FROM attempts WHERE delivery_id = ?1 ORDER BY id",
            )?;
            let found: Vec<(i64, DeliveryRecord)> = rows
                .query_map([&event_id], |r| {
                    Ok((
                        r.get(0)?,
                        DeliveryRecord {
                            destination: r.get(1)?,
                            webhook_id: r.get(2)?,
                            status: delivery_status(r, 3)?,
                            attempts: r.get(4)?,
                            next_at_ms: r.get(5)?,
                            last_error: r.get(6)?,
                            history: Vec::new(),
                        },
                    ))
                })?
                .collect::<rusqlite::Result<_>>()?;
            let mut out = Vec::with_capacity(found.len());
            for (id, mut record) in found {
                record.history = history
                    .query_map([id], |r| {
                        let outcome: String = r.get(3)?;
                        Ok(AttemptRecord {
                            started_at_ms: r.get(0)?,
                            duration_ms: r.get(1)?,
                            status_code: r.get(2)?,
                            outcome: AttemptOutcome::parse(&outcome)
                                .ok_or_else(|| corrupt(3, format!("unknown attempt outcome `{outcome}`")))?,
                            response: r.get(4)?,
                            error: r.get(5)?,
                        })
                    })?
                    .collect::<rusqlite::Result<_>>()?;
                out.push(record);
            }
            Ok(out)
        })
        .await
    }

    async fn delivery_counts(&self) -> Result<DeliveryCounts, StoreError> {
        self.read(|conn| {
            let mut counts = DeliveryCounts::default();
            let mut statement =
                conn.prepare_cached("SELECT status, count(*) FROM deliveries GROUP BY status")?;
            let rows =
                statement.query_map([], |r| Ok((delivery_status(r, 0)?, r.get::<_, i64>(1)?)))?;
            for row in rows {
                let (status, n) = row?;
                counts.add(status, n);
            }
            Ok(counts)
        })
        .await
    }

    /// Per destination: counts by state (the `deliveries_due` index, no table reads), and
    /// for the pending ones the leases and the oldest event (ids carry arrival times).
    async fn destination_stats(&self) -> Result<Vec<DestinationStats>, StoreError> {
        let now_ms = crate::now_ms();
        self.read(move |conn| {
            let mut out: Vec<DestinationStats> = Vec::new();
            let mut counts = conn.prepare_cached(
                "SELECT destination, status, count(*) FROM deliveries GROUP BY destination, status ORDER BY destination",
            )?;
            let rows = counts.query_map([], |r| {
                Ok((r.get::<_, String>(0)?, delivery_status(r, 1)?, r.get::<_, i64>(2)?))
            })?;
            for row in rows {
                let (destination, status, n) = row?;
                if out.last().is_none_or(|s| s.destination != destination) {
                    out.push(DestinationStats {
                        destination,
                        ..Default::default()
                    });
                }
                if let Some(last) = out.last_mut() {
                    last.counts.add(status, n);
                }
            }
            let mut pending = conn.prepare_cached(
                "SELECT count(*) FILTER (WHERE lease_until > ?2), min(event_id) FROM deliveries \
                 WHERE destination = ?1 AND status = 'pending'",
            )?;
            for stats in out.iter_mut().filter(|s| s.counts.pending > 0) {
                let (leased, oldest): (i64, Option<String>) = pending
                    .query_row(params![stats.destination, now_ms], |r| Ok((r.get(0)?, r.get(1)?)))?;
                stats.leased = leased;
                stats.oldest_pending_ms = oldest.as_deref().and_then(EventId::millis_of);
            }
            let mut paused = conn.prepare_cached("SELECT destination FROM destination_pauses")?;
            for name in paused.query_map([], |r| r.get::<_, String>(0))? {
                let name = name?;
                match out.iter_mut().find(|s| s.destination == name) {
                    Some(stats) => stats.paused = true,
                    None => out.push(DestinationStats {
                        destination: name,
                        paused: true,
                        ..Default::default()
                    }),
                }
            }
            Ok(out)
        })
        .await
    }

    async fn prune(
        &self,
        rules: Vec<PruneRule>,
        limit: u32,
    ) -> Result<Vec<(String, u64)>, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.submit(
            Op::Prune {
                rules,
                limit,
                reply,
            },
            answer,
        )
        .await
    }

    async fn prunable(&self, rules: Vec<PruneRule>) -> Result<Vec<(String, u64)>, StoreError> {
        self.read(move |conn| {
            let mut out: Vec<(String, u64)> = Vec::new();
            for rule in &rules {
                let (clause, values) = prunable_sql(rule);
                let mut count = conn.prepare(&format!(
                    "SELECT source, count(*) FROM events WHERE {clause} GROUP BY source ORDER BY source"
                ))?;
                let rows = count.query_map(rusqlite::params_from_iter(values), |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
                })?;
                for row in rows {
                    out.push(row?);
                }
            }
            Ok(out)
        })
        .await
    }

    async fn paused(&self) -> Result<Vec<String>, StoreError> {
        self.read(|conn| {
            conn.prepare_cached("SELECT destination FROM destination_pauses ORDER BY destination")?
                .query_map([], |r| r.get(0))?
                .collect()
        })
        .await
    }

    async fn set_paused(&self, destination: &str, paused: bool) -> Result<bool, StoreError> {
        let (reply, answer) = oneshot::channel();
        let op = Op::Pause {
            destination: destination.to_owned(),
            paused,
            now_ms: crate::now_ms(),
            reply,
        };
        self.submit(op, answer).await
    }

    /// Queues a refused request for the writer without waiting; `false` when the writer's
    /// queue is full (the refusal is dropped rather than slowing ingest down).
    fn record_refusal(&self, refusal: Refusal) -> bool {
        self.writer
            .try_send(Message::Op(Op::Refusal(Box::new(refusal.bounded()))))
            .is_ok()
    }

    async fn refusals(&self, filter: RefusalFilter) -> Result<Vec<RefusalRecord>, StoreError> {
        self.read(move |conn| {
            let mut statement = conn.prepare_cached(
                "SELECT id, source, received_at, peer, kind, detail, method, path, status, headers, body_head, body_size \
                 FROM refusals WHERE (?1 IS NULL OR source = ?1) AND (?2 IS NULL OR kind = ?2) \
                 AND (?3 IS NULL OR received_at >= ?3) AND (?4 IS NULL OR received_at < ?4) \
                 AND (?5 IS NULL OR id < ?5) ORDER BY id DESC LIMIT ?6",
            )?;
            let rows = statement.query_map(
                params![
                    filter.source,
                    filter.kind,
                    filter.since_ms,
                    filter.until_ms,
                    filter.before,
                    filter.limit.unwrap_or(100)
                ],
                |r| {
                    let headers: String = r.get(9)?;
                    Ok(RefusalRecord {
                        id: r.get(0)?,
                        request: Refusal {
                            source: r.get(1)?,
                            received_at_ms: r.get(2)?,
                            peer: r.get(3)?,
                            kind: r.get(4)?,
                            detail: r.get(5)?,
                            method: r.get(6)?,
                            path: r.get(7)?,
                            status: r.get(8)?,
                            headers: serde_json::from_str(&headers)
                                .map_err(|e| corrupt(9, format!("headers: {e}")))?,
                            body_head: bytes::Bytes::from(r.get::<_, Vec<u8>>(10)?),
                            body_size: r.get(11)?,
                        },
                    })
                },
            )?;
            rows.collect()
        })
        .await
    }

    /// Bytes the database file takes (pages in use and free).
    async fn size_bytes(&self) -> Result<Option<u64>, StoreError> {
        self.read(|conn| {
            let pages: i64 = conn.pragma_query_value(None, "page_count", |r| r.get(0))?;
            let size: i64 = conn.pragma_query_value(None, "page_size", |r| r.get(0))?;
            Ok(Some((pages * size).max(0) as u64))
        })
        .await
    }

    /// Events matching `filter` (all of them unless it has a limit), oldest first, each
    /// with its deliveries' destinations and states.
    async fn replay_candidates(
        &self,
        filter: ListFilter,
    ) -> Result<Vec<(EventRecord, Vec<(String, DeliveryStatus)>)>, StoreError> {
        self.read(move |conn| {
            let (clause, values) = where_clause(&filter, None);
            let limit = filter.limit.map(i64::from).unwrap_or(-1);
            let mut statement =
                conn.prepare(&format!("{GET_EVENT} WHERE {clause} ORDER BY id LIMIT {limit}"))?;
            let events: Vec<EventRecord> = statement
                .query_map(rusqlite::params_from_iter(values), record_from_row)?
                .collect::<rusqlite::Result<_>>()?;
            let mut destinations = conn.prepare_cached(
                "SELECT destination, status FROM deliveries WHERE event_id = ?1 ORDER BY destination",
            )?;
            let mut out = Vec::with_capacity(events.len());
            for event in events {
                let found = destinations
                    .query_map([&event.summary.id.0], |r| Ok((r.get(0)?, delivery_status(r, 1)?)))?
                    .collect::<rusqlite::Result<_>>()?;
                out.push((event, found));
            }
            Ok(out)
        })
        .await
    }

    async fn ready(&self) -> Result<(), StoreError> {
        if self.writer.is_closed() {
            return Err(StoreError::unavailable("the store writer has stopped"));
        }
        self.read(|conn| {
            conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
                r.get::<_, i64>(0)
            })
        })
        .await?;
        Ok(())
    }

    async fn list(&self, filter: ListFilter) -> Result<Vec<EventSummary>, StoreError> {
        self.read(move |conn| {
            let limit = filter.limit.unwrap_or(100);
            let (clause, mut values) = where_clause(&filter, Some(limit));
            values.push(i64::from(limit).into());
            let mut statement = conn.prepare_cached(&format!(
                "SELECT {SUMMARY_COLUMNS} FROM events WHERE {clause} ORDER BY id DESC LIMIT ?{}",
                values.len()
            ))?;
            let rows = statement.query_map(rusqlite::params_from_iter(values), summary_from_row)?;
            rows.collect()
        })
        .await
    }

    async fn get(&self, id: String) -> Result<Option<EventRecord>, StoreError> {
        self.read(move |conn| {
            conn.query_row(&format!("{GET_EVENT} WHERE id = ?1"), [id], record_from_row)
                .optional()
        })
        .await
    }

    async fn close(&self) {
        let (done, finished) = oneshot::channel();
        if self.writer.send(Message::Close(done)).await.is_ok() {
            let _ = finished.await;
        }
    }
}

impl rusqlite::ToSql for EventId {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        self.0.to_sql()
    }
}

/// A row the store wrote that it cannot read back: corruption, or a newer binary's data.
fn corrupt(column: usize, what: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(column, rusqlite::types::Type::Text, what.into())
}

fn delivery_status(row: &rusqlite::Row<'_>, column: usize) -> rusqlite::Result<DeliveryStatus> {
    let text: String = row.get(column)?;
    DeliveryStatus::parse(&text)
        .ok_or_else(|| corrupt(column, format!("unknown delivery status `{text}`")))
}

/// A topic glob (`*`, `?`, the routes' meaning) as an SQLite GLOB pattern: the same two
/// wildcards, and `[` made literal (GLOB would read it as a character class).
fn sqlite_glob(glob: &str) -> String {
    glob.replace('[', "[[]")
}

/// SQLite's parameters (`?1`) and topic match (GLOB).
const SQLITE: crate::filter::Dialect = crate::filter::Dialect {
    placeholder: |n| format!("?{n}"),
    topic: |glob| ("GLOB", sqlite_glob(glob)),
    always: "1",
};

/// The `WHERE` clause of a [`ListFilter`] and its parameters (`?1`, `?2`, … in order).
fn where_clause(
    filter: &ListFilter,
    newest_first: Option<u32>,
) -> (String, Vec<rusqlite::types::Value>) {
    let (clause, values) = crate::filter::where_clause(filter, &SQLITE, newest_first);
    (clause, values.into_iter().map(Into::into).collect())
}

const SUMMARY_COLUMNS: &str = concat!(
    "id, source, dedupe_key, topic, tenant, received_at, length(body), ",
    crate::filter::event_status!()
);

const GET_EVENT: &str = concat!(
    "SELECT id, source, dedupe_key, topic, tenant, received_at, length(body), ",
    crate::filter::event_status!(),
    ", provider_ts, method, path, headers, body, verification, routing FROM events"
);

fn record_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<EventRecord> {
    let headers: String = row.get(11)?;
    let verification: String = row.get(13)?;
    Ok(EventRecord {
        summary: summary_from_row(row)?,
        provider_timestamp: row.get(8)?,
        method: row.get(9)?,
        path: row.get(10)?,
        headers: serde_json::from_str(&headers)
            .map_err(|e| corrupt(11, format!("headers: {e}")))?,
        body: bytes::Bytes::from(row.get::<_, Vec<u8>>(12)?),
        verification: serde_json::from_str(&verification)
            .map_err(|e| corrupt(13, format!("verification: {e}")))?,
        routed: row.get::<_, String>(14)? == "routed",
    })
}

fn summary_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<EventSummary> {
    let status: String = row.get(7)?;
    Ok(EventSummary {
        id: EventId(row.get(0)?),
        source: row.get(1)?,
        dedupe_key: row.get(2)?,
        topic: row.get(3)?,
        tenant: row.get(4)?,
        received_at_ms: row.get(5)?,
        size: row.get(6)?,
        status: EventStatus::parse(&status)
            .ok_or_else(|| corrupt(7, format!("unknown event status `{status}`")))?,
    })
}

fn insert_event(tx: &rusqlite::Transaction<'_>, prepared: &Prepared) -> rusqlite::Result<Stored> {
    let event = &prepared.event;
    let routing = if event.destinations.is_empty() {
        "unrouted"
    } else {
        "routed"
    };
    let inserted = tx.prepare_cached(INSERT)?.execute(params![
        event.id.0,
        event.source,
        event.dedupe_key,
        event.topic,
        event.tenant,
        event.provider_timestamp,
        event.received_at_ms,
        event.method,
        event.path,
        prepared.headers,
        &event.body[..],
        prepared.verification,
        routing,
    ])?;
    if inserted == 0 {
        let id: String = tx
            .prepare_cached(FIND_DUPLICATE)?
            .query_row(params![event.source, event.dedupe_key], |r| r.get(0))?;
        return Ok(Stored::Duplicate(EventId(id)));
    }
    // The deliveries are part of the event's own transaction: an acknowledged event can
    // never be missing them.
    let mut delivery = tx.prepare_cached(INSERT_NEW_DELIVERY)?;
    let mut deliveries = Vec::with_capacity(event.destinations.len());
    for (i, new) in event.destinations.iter().enumerate() {
        // A destination named twice is one delivery (and one row).
        if let Some(first) = event.destinations[..i]
            .iter()
            .position(|d| d.destination == new.destination)
        {
            deliveries.push(deliveries[first]);
            continue;
        }
        let lease = new.lease.as_ref();
        delivery.execute(params![
            event.id.0,
            new.destination,
            webhook_id(&event.id.0, &new.destination),
            event.received_at_ms,
            lease.map(|l| prepared.now_ms + l.for_ms),
            lease.map(|l| &*l.owner),
        ])?;
        deliveries.push(tx.last_insert_rowid());
    }
    Ok(Stored::New {
        id: event.id.clone(),
        deliveries,
    })
}

/// Events a rule selects for pruning: older than its cutoff (ids carry arrival times), of
/// its source (or of every source but its exceptions), with no pending delivery. Through the
/// primary key in id order: the oldest first, and never more than `limit` rows looked at
/// past the cutoff.
fn prunable_sql(rule: &PruneRule) -> (String, Vec<rusqlite::types::Value>) {
    let mut values: Vec<rusqlite::types::Value> =
        vec![EventId::lowest_at(rule.older_than_ms).into()];
    let mut sql = String::from(
        "id < ?1 AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = events.id AND d.status = 'pending')",
    );
    if let Some(source) = &rule.source {
        values.push(source.clone().into());
        sql.push_str(&format!(" AND source = ?{}", values.len()));
    }
    for other in &rule.except {
        values.push(other.clone().into());
        sql.push_str(&format!(" AND source <> ?{}", values.len()));
    }
    (sql, values)
}

/// Deletes up to `limit` events (in all) that `rules` select, with their deliveries and
/// attempts; returns how many per source.
fn prune(
    tx: &rusqlite::Transaction<'_>,
    rules: &[PruneRule],
    limit: u32,
) -> rusqlite::Result<Vec<(String, u64)>> {
    let mut left = i64::from(limit);
    let mut pruned: Vec<(String, u64)> = Vec::new();
    for rule in rules {
        if left <= 0 {
            break;
        }
        let (clause, mut values) = prunable_sql(rule);
        values.push(left.into());
        let mut select = tx.prepare_cached(&format!(
            "SELECT id, source FROM events WHERE {clause} ORDER BY id LIMIT ?{}",
            values.len()
        ))?;
        let found: Vec<(String, String)> = select
            .query_map(rusqlite::params_from_iter(values), |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?
            .collect::<rusqlite::Result<_>>()?;
        let mut attempts = tx.prepare_cached(
            "DELETE FROM attempts WHERE delivery_id IN (SELECT id FROM deliveries WHERE event_id = ?1)",
        )?;
        let mut deliveries = tx.prepare_cached("DELETE FROM deliveries WHERE event_id = ?1")?;
        let mut events = tx.prepare_cached("DELETE FROM events WHERE id = ?1")?;
        for (id, source) in found {
            attempts.execute([&id])?;
            deliveries.execute([&id])?;
            events.execute([&id])?;
            left -= 1;
            match pruned.iter_mut().find(|(s, _)| *s == source) {
                Some((_, n)) => *n += 1,
                None => pruned.push((source, 1)),
            }
        }
    }
    Ok(pruned)
}

fn write_loop(
    mut conn: Connection,
    mut queue: mpsc::Receiver<Message>,
    max_batch: usize,
    observer: Option<Arc<dyn CommitObserver>>,
) {
    let mut batch: Vec<Op> = Vec::with_capacity(max_batch);
    let mut synchronous = Synchronous::Full;
    while let Some(first) = queue.blocking_recv() {
        let mut close = None;
        match first {
            Message::Op(op) => batch.push(op),
            Message::Close(done) => close = Some(done),
        }
        // Everything already waiting joins this transaction: one fsync for all of them.
        while close.is_none() && batch.len() < max_batch {
            match queue.try_recv() {
                Ok(Message::Op(op)) => batch.push(op),
                Ok(Message::Close(done)) => close = Some(done),
                Err(_) => break,
            }
        }
        if !batch.is_empty() {
            let wanted = synchronous_for(&batch);
            if wanted != synchronous {
                match conn.pragma_update(None, "synchronous", wanted.as_str()) {
                    Ok(()) => synchronous = wanted,
                    // Still FULL: every commit is fsynced, which is only slower.
                    Err(e) if wanted == Synchronous::Normal => {
                        tracing::warn!(error = %e, "cannot switch to commits without fsync")
                    }
                    // Still NORMAL: committing events now would acknowledge them unsynced.
                    Err(e) => {
                        tracing::error!(error = %e, "cannot switch to fsynced commits; the batch is refused");
                        let reason = format!("cannot switch to fsynced commits: {e}");
                        let cause: crate::Cause = Arc::new(e);
                        for op in batch.drain(..) {
                            op.fail(StoreError::failed(reason.clone(), cause.clone()));
                        }
                    }
                }
            }
            if !batch.is_empty() {
                let writes = batch.len();
                let started = std::time::Instant::now();
                let committed = commit(&mut conn, &mut batch);
                if let Some(observer) = &observer {
                    observer.committed(writes, started.elapsed(), committed);
                }
            }
        }
        if let Some(done) = close {
            queue.close();
            // Writes that raced the close are refused, not lost silently.
            while let Ok(Message::Op(op)) = queue.try_recv() {
                op.fail(StoreError::unavailable("the store is shutting down"));
            }
            let _ = done.send(());
            return;
        }
    }
}

/// What `batch`'s commit needs: an fsync when any of its writes must survive a crash.
fn synchronous_for(batch: &[Op]) -> Synchronous {
    if batch.iter().any(Op::must_survive_a_crash) {
        Synchronous::Full
    } else {
        Synchronous::Normal
    }
}

/// The WAL's fsync policy for the next commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Synchronous {
    /// fsync at every commit.
    Full,
    /// No fsync at commit; still consistent after a crash, but the last commits may be gone.
    Normal,
}

impl Synchronous {
    fn as_str(self) -> &'static str {
        match self {
            Synchronous::Full => "FULL",
            Synchronous::Normal => "NORMAL",
        }
    }
}

/// Runs and commits `batch`, answering every op; whether the commit succeeded.
fn commit(conn: &mut Connection, batch: &mut Vec<Op>) -> bool {
    let result = (|| -> rusqlite::Result<Vec<Done>> {
        let tx = conn.transaction()?;
        let done = batch
            .iter()
            .map(|op| op.run(&tx))
            .collect::<rusqlite::Result<Vec<_>>>()?;
        tx.commit()?;
        Ok(done)
    })();
    match result {
        Ok(done) => {
            for (op, done) in batch.drain(..).zip(done) {
                op.answer(Ok(done));
            }
            true
        }
        Err(e) => {
            tracing::error!(error = %e, writes = batch.len(), "store commit failed; every write of the batch is refused");
            let reason = e.to_string();
            let cause: crate::Cause = Arc::new(e);
            for op in batch.drain(..) {
                op.fail(StoreError::failed(reason.clone(), cause.clone()));
            }
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::NewDelivery;
    use crate::testing::event;

    #[tokio::test]
    async fn an_unknown_status_in_the_database_is_an_error_not_pending() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("u.db");
        let store = SqliteStore::open(path.clone(), &StoreOptions::default()).unwrap();
        let mut e = event("s", Some("e1"), 3);
        e.destinations = vec![NewDelivery::queued("a")];
        let Stored::New { id, .. } = store.insert(e).await.unwrap() else {
            panic!()
        };
        let conn = Connection::open(&path).unwrap();
        conn.execute("UPDATE deliveries SET status = 'bogus'", [])
            .unwrap();
        let err = store.deliveries(id.0).await.unwrap_err();
        assert!(
            err.to_string().contains("unknown delivery status `bogus`"),
            "{err}"
        );
        assert!(store.delivery_counts().await.is_err());
    }

    #[tokio::test]
    async fn the_store_is_readable_by_its_owner_alone() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new/data/hookgate.db");
        let store = SqliteStore::open(path.clone(), &StoreOptions::default()).unwrap();
        store.insert(event("s", Some("e1"), 3)).await.unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir.path().join("new")), 0o700);
        assert_eq!(mode(&dir.path().join("new/data")), 0o700);
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&dir.path().join("new/data/hookgate.db-wal")), 0o600);
        assert_eq!(mode(&dir.path().join("new/data/hookgate.db-shm")), 0o600);
        store.close().await;
    }

    /// Runs the writer over `ops`, all queued before it starts (so they batch up to
    /// `max_batch`), then closes it; the database file stays in `dir`.
    fn run_writer(dir: &Path, ops: Vec<Op>, max_batch: usize) {
        let path = dir.join("w.db");
        let mut conn = open_connection(&path, &StoreOptions::default()).unwrap();
        migrate(&mut conn).unwrap();
        let (tx, rx) = mpsc::channel(ops.len() + 1);
        for op in ops {
            tx.try_send(Message::Op(op)).ok().unwrap();
        }
        let (closed, _) = oneshot::channel();
        tx.try_send(Message::Close(closed)).ok().unwrap();
        write_loop(conn, rx, max_batch, None);
    }

    fn insert(key: &str) -> (Op, oneshot::Receiver<Result<Stored, StoreError>>) {
        let (reply, answer) = oneshot::channel();
        let prepared = Prepared {
            event: event("s", Some(key), 3),
            now_ms: crate::now_ms(),
            headers: "[]".into(),
            verification: "{}".into(),
        };
        (Op::Insert(Box::new(prepared), reply), answer)
    }

    fn probe(fail: bool) -> (Op, oneshot::Receiver<Result<i64, StoreError>>) {
        let (reply, answer) = oneshot::channel();
        (Op::Probe { fail, reply }, answer)
    }

    fn stored_keys(dir: &Path) -> Vec<String> {
        let conn = Connection::open(dir.join("w.db")).unwrap();
        let mut keys = conn
            .prepare("SELECT dedupe_key FROM events ORDER BY dedupe_key")
            .unwrap();
        keys.query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    }

    const FULL: i64 = 2;
    const NORMAL: i64 = 1;

    #[test]
    fn a_batch_with_an_event_is_fsynced_and_bookkeeping_alone_is_not() {
        let dir = tempfile::tempdir().unwrap();
        // Everything waiting joins one batch, up to `max_batch`: the insert and the first
        // probe commit together (fsynced); the second probe is a batch of its own.
        let (e1, stored) = insert("e1");
        let (with_event, first) = probe(false);
        let (alone, second) = probe(false);
        run_writer(dir.path(), vec![e1, with_event, alone], 2);
        assert!(matches!(
            stored.blocking_recv().unwrap(),
            Ok(Stored::New { .. })
        ));
        assert_eq!(first.blocking_recv().unwrap().unwrap(), FULL);
        assert_eq!(second.blocking_recv().unwrap().unwrap(), NORMAL);

        // The same three in one larger batch: all fsynced.
        let (e2, stored) = insert("e2");
        let (a, first) = probe(false);
        let (b, second) = probe(false);
        run_writer(dir.path(), vec![e2, a, b], 1024);
        assert!(matches!(
            stored.blocking_recv().unwrap(),
            Ok(Stored::New { .. })
        ));
        assert_eq!(first.blocking_recv().unwrap().unwrap(), FULL);
        assert_eq!(second.blocking_recv().unwrap().unwrap(), FULL);
        assert_eq!(stored_keys(dir.path()), ["e1", "e2"]);
    }

    #[test]
    fn which_writes_must_survive_a_crash() {
        let (insert, _) = insert("e");
        let (replay_reply, _) = oneshot::channel();
        let replay = Op::Replay(Vec::new(), 0, replay_reply);
        let (pause_reply, _) = oneshot::channel();
        let pause = Op::Pause {
            destination: "d".into(),
            paused: true,
            now_ms: 0,
            reply: pause_reply,
        };
        let (claim_reply, _) = oneshot::channel();
        let claim = Op::Claim {
            destination: "d".into(),
            limit: 1,
            now_ms: 0,
            lease_ms: 1,
            owner: "o".into(),
            reply: claim_reply,
        };
        let (release_reply, _) = oneshot::channel();
        let release = Op::Release {
            destination: "d".into(),
            owner: "o".into(),
            reply: release_reply,
        };
        let (prune_reply, _) = oneshot::channel();
        let prune = Op::Prune {
            rules: Vec::new(),
            limit: 1,
            reply: prune_reply,
        };
        for op in [&insert, &replay, &pause] {
            assert!(op.must_survive_a_crash());
        }
        for op in [&claim, &release, &prune] {
            assert!(!op.must_survive_a_crash());
        }
        assert_eq!(
            synchronous_for(std::slice::from_ref(&claim)),
            Synchronous::Normal
        );
        assert_eq!(
            synchronous_for(&[claim, release, prune, pause]),
            Synchronous::Full
        );
    }

    #[test]
    fn a_failed_batch_fails_every_write_and_keeps_none() {
        let dir = tempfile::tempdir().unwrap();
        let (e1, first) = insert("e1");
        let (failing, probed) = probe(true);
        let (e2, second) = insert("e2");
        run_writer(dir.path(), vec![e1, failing, e2], 1024);
        for answer in [first, second] {
            let e = answer.blocking_recv().unwrap().unwrap_err();
            assert!(e.to_string().contains("Query is not read-only"), "{e}");
        }
        assert!(probed.blocking_recv().unwrap().is_err());
        assert!(
            stored_keys(dir.path()).is_empty(),
            "nothing of the batch is kept"
        );
        // The writer goes on: the next batch commits.
        let (e3, third) = insert("e3");
        run_writer(dir.path(), vec![e3], 1024);
        assert!(matches!(
            third.blocking_recv().unwrap(),
            Ok(Stored::New { .. })
        ));
        assert_eq!(stored_keys(dir.path()), ["e3"]);
    }

    #[test]
    fn writes_racing_the_close_are_refused_not_lost() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.db");
        let mut conn = open_connection(&path, &StoreOptions::default()).unwrap();
        migrate(&mut conn).unwrap();
        let (tx, rx) = mpsc::channel(4);
        let (closed, done) = oneshot::channel();
        let (late, answer) = insert("late");
        tx.try_send(Message::Close(closed)).ok().unwrap();
        tx.try_send(Message::Op(late)).ok().unwrap();
        write_loop(conn, rx, 1024, None);
        assert!(done.blocking_recv().is_ok());
        let e = answer.blocking_recv().unwrap().unwrap_err();
        assert!(e.to_string().contains("shutting down"), "{e}");
        assert!(stored_keys(dir.path()).is_empty());
    }
}
