//! `postgres://`: one PostgreSQL database shared by several gateway nodes.
//!
//! Inserts are group-committed: writer tasks take every insert waiting in the queue and
//! write them with one multi-row statement per table in one transaction, answering each
//! only after that commit, with the server's durable settings. Dedupe is the unique index
//! on `(source, dedupe_key)`, whichever node an event reaches. Everything else runs in
//! short transactions on pooled connections; none is held across a delivery attempt.
//! Leases and retry times are read off the database's clock (`hookgate_now_ms()`), never a
//! node's, and claims take rows with `FOR UPDATE SKIP LOCKED`, so two nodes never claim the
//! same delivery. Lease and attempt bookkeeping commits without waiting for the WAL flush
//! (`synchronous_commit = off` for that transaction): losing the last of those in a crash
//! only repeats a delivery, which at-least-once allows.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, Mutex};
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use crate::backend::Backend;
use crate::delivery::{
    webhook_id, Attempt, AttemptOutcome, AttemptRecord, Claimed, DeliveryCounts, DeliveryRecord,
    DeliveryStatus, DestinationStats, ReplayTargets,
};
use crate::event::{EventId, EventRecord, EventStatus, EventSummary, ListFilter, NewEvent, Stored};
use crate::refusal::{Refusal, RefusalFilter, RefusalRecord, REFUSALS_KEPT};
use crate::retention::PruneRule;
use crate::{CommitObserver, StoreError, StoreOptions};

/// Schema versions, applied in order under an advisory lock; `hookgate_schema` records
/// how many ran.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE FUNCTION hookgate_now_ms() RETURNS bigint LANGUAGE sql VOLATILE
    AS $$ SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint $$;
CREATE TABLE events (
    id            text PRIMARY KEY,
    source        text NOT NULL,
    dedupe_key    text,
    topic         text,
    tenant        text,
    provider_ts   text,
    received_at   bigint NOT NULL,
    method        text NOT NULL,
    path          text NOT NULL,
    headers       text NOT NULL,
    body          bytea NOT NULL,
    verification  text NOT NULL,
    routing       text NOT NULL
);
CREATE UNIQUE INDEX events_dedupe ON events(source, dedupe_key) WHERE dedupe_key IS NOT NULL;
CREATE INDEX events_tenant ON events(tenant) WHERE tenant IS NOT NULL;
CREATE TABLE deliveries (
    id           bigserial PRIMARY KEY,
    event_id     text NOT NULL REFERENCES events(id),
    destination  text NOT NULL,
    webhook_id   text NOT NULL,
    status       text NOT NULL,
    attempts     bigint NOT NULL DEFAULT 0,
    next_at      bigint NOT NULL,
    lease_until  bigint,
    lease_owner  text,
    last_error   text,
    updated_at   bigint NOT NULL
);
CREATE UNIQUE INDEX deliveries_event ON deliveries(event_id, destination);
CREATE INDEX deliveries_due ON deliveries(destination, status, next_at);
CREATE TABLE attempts (
    id           bigserial PRIMARY KEY,
    delivery_id  bigint NOT NULL REFERENCES deliveries(id),
    started_at   bigint NOT NULL,
    duration_ms  bigint NOT NULL,
    status_code  bigint,
    outcome      text NOT NULL,
    response     text,
    error        text
);
CREATE INDEX attempts_delivery ON attempts(delivery_id);
CREATE TABLE refusals (
    id           bigserial PRIMARY KEY,
    source       text NOT NULL,
    received_at  bigint NOT NULL,
    peer         text,
    kind         text NOT NULL,
    detail       text NOT NULL,
    method       text NOT NULL,
    path         text NOT NULL,
    status       integer NOT NULL,
    headers      text NOT NULL,
    body_head    bytea NOT NULL,
    body_size    bigint NOT NULL
);
CREATE INDEX refusals_source ON refusals(source, id);
CREATE TABLE destination_pauses (
    destination  text PRIMARY KEY,
    paused_at    bigint NOT NULL
);
"#,
    crate::filter::LISTING_INDEXES,
];

/// The advisory lock nodes take to migrate one at a time (an arbitrary, fixed key).
const MIGRATION_LOCK: i64 = 0x686f_6f6b_6761_7465;

/// Writer tasks: while one waits for its commit, the next batch is written.
const WRITERS: usize = 2;
/// Pooled connections for everything but inserts.
const POOL_SIZE: usize = 16;
/// How often a full database is measured again (`[store] max_size`).
const SIZE_CHECK_EVERY: Duration = Duration::from_secs(1);

fn pg(e: tokio_postgres::Error) -> StoreError {
    // The message alone is terse ("db error"); the server's text is in the source chain.
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    StoreError::failed(text, Arc::new(e))
}

fn pool_error(e: deadpool_postgres::PoolError) -> StoreError {
    StoreError::failed(format!("no database connection: {e}"), Arc::new(e))
}

impl ToSql for EventId {
    fn to_sql(
        &self,
        ty: &tokio_postgres::types::Type,
        out: &mut bytes::BytesMut,
    ) -> Result<tokio_postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
        self.0.to_sql(ty, out)
    }

    fn accepts(ty: &tokio_postgres::types::Type) -> bool {
        <String as ToSql>::accepts(ty)
    }

    tokio_postgres::types::to_sql_checked!();
}

/// A row the store wrote that it cannot read back: corruption, or a newer binary's data.
fn corrupt(what: String) -> StoreError {
    StoreError::unavailable(format!("unreadable row: {what}"))
}

enum Message {
    Insert(Box<NewEvent>, oneshot::Sender<Result<Stored, StoreError>>),
    Close(oneshot::Sender<()>),
}

pub(crate) struct PgStore {
    describe: String,
    pool: deadpool_postgres::Pool,
    writer: mpsc::Sender<Message>,
    /// Refused requests, for the one task that records them in order.
    refusals: mpsc::Sender<Refusal>,
    /// Attempts, for the task that records them in batches.
    completions: mpsc::Sender<Completion>,
    /// Tells the refusal task to record what is queued and end.
    closing: tokio::sync::watch::Sender<bool>,
    writers: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl PgStore {
    pub(crate) async fn open(url: &str, options: &StoreOptions) -> Result<PgStore, StoreError> {
        let (url, tls) = tls_settings(url)?;
        let config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| StoreError::Config(format!("not a PostgreSQL URL: {e}")))?;
        let describe = describe(&config);
        let open = |reason: String| StoreError::open_failed(describe.clone(), reason, None);
        let open_because = |reason: String, cause: crate::Cause| {
            StoreError::open_failed(describe.clone(), reason, Some(cause))
        };
        let manager = deadpool_postgres::Manager::from_config(
            config,
            tls,
            deadpool_postgres::ManagerConfig {
                recycling_method: deadpool_postgres::RecyclingMethod::Fast,
            },
        );
        let pool = deadpool_postgres::Pool::builder(manager)
            .max_size(POOL_SIZE + WRITERS)
            .wait_timeout(Some(Duration::from_secs(5)))
            .create_timeout(Some(Duration::from_secs(5)))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()
            .map_err(|e| open(e.to_string()))?;
        let mut client = pool
            .get()
            .await
            .map_err(|e| open_because(e.to_string(), Arc::new(e)))?;
        check_durability(&client, options.relaxed_durability)
            .await
            .map_err(open)?;
        migrate(&mut client).await.map_err(open)?;
        drop(client);
        let (writer, queue) = mpsc::channel(16 * 1024);
        let queue = Arc::new(Mutex::new(queue));
        let max_batch = options.max_batch.unwrap_or(1024).max(1);
        let size = Arc::new(SizeCheck::new(options.max_size));
        let mut tasks: Vec<_> = (0..WRITERS)
            .map(|_| {
                tokio::spawn(write_loop(
                    pool.clone(),
                    queue.clone(),
                    max_batch,
                    options.observer.clone(),
                    size.clone(),
                ))
            })
            .collect();
        let (closing, closed) = tokio::sync::watch::channel(false);
        let (completions, completed) = mpsc::channel(16 * 1024);
        tasks.push(tokio::spawn(completion_loop(
            pool.clone(),
            completed,
            closed.clone(),
            max_batch,
        )));
        let (refusals, refused) = mpsc::channel(4 * 1024);
        tasks.push(tokio::spawn(refusal_loop(
            pool.clone(),
            refused,
            closed,
            max_batch,
        )));
        Ok(PgStore {
            describe,
            pool,
            writer,
            refusals,
            completions,
            closing,
            writers: Arc::new(Mutex::new(tasks)),
        })
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool.get().await.map_err(pool_error)
    }
}

/// A transaction that commits without waiting for the WAL flush: bookkeeping whose loss in
/// a crash only repeats a delivery.
async fn bookkeeping(
    client: &mut deadpool_postgres::Object,
) -> Result<deadpool_postgres::Transaction<'_>, StoreError> {
    let tx = client.transaction().await.map_err(pg)?;
    tx.batch_execute("SET LOCAL synchronous_commit TO OFF")
        .await
        .map_err(pg)?;
    Ok(tx)
}

/// TLS as libpq's `sslmode` has it: `disable`; `prefer` (the default) and `require`
/// encrypt without checking the server's certificate; `verify-ca` checks it against the
/// system's roots or `sslrootcert=FILE`, `verify-full` the host name too. Returns the URL
/// as tokio-postgres reads it (the verify modes become `require`) and the connector.
fn tls_settings(url: &str) -> Result<(String, postgres_native_tls::MakeTlsConnector), StoreError> {
    let config = |m: String| StoreError::Config(m);
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut kept = Vec::new();
    let mut mode = "prefer".to_owned();
    let mut root = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("sslmode", value)) => mode = value.to_owned(),
            Some(("sslrootcert", value)) => root = Some(value.to_owned()),
            _ => kept.push(pair.to_owned()),
        }
    }
    let mut builder = native_tls::TlsConnector::builder();
    let passed_mode = match mode.as_str() {
        "disable" | "prefer" | "require" => {
            builder
                .danger_accept_invalid_certs(true)
                .danger_accept_invalid_hostnames(true);
            mode.clone()
        }
        "verify-ca" => {
            builder.danger_accept_invalid_hostnames(true);
            "require".to_owned()
        }
        "verify-full" => "require".to_owned(),
        other => {
            return Err(config(format!(
                "sslmode `{other}`: use disable, prefer, require, verify-ca or verify-full"
            )))
        }
    };
    if let Some(path) = root {
        let pem = std::fs::read(&path).map_err(|e| config(format!("sslrootcert {path}: {e}")))?;
        let certificate = native_tls::Certificate::from_pem(&pem)
            .map_err(|e| config(format!("sslrootcert {path}: {e}")))?;
        builder.add_root_certificate(certificate);
    }
    let connector = builder.build().map_err(|e| config(format!("TLS: {e}")))?;
    kept.push(format!("sslmode={passed_mode}"));
    Ok((
        format!("{base}?{}", kept.join("&")),
        postgres_native_tls::MakeTlsConnector::new(connector),
    ))
}

/// `postgres://user@host:port/db` without its password.
fn describe(config: &tokio_postgres::Config) -> String {
    let host = config
        .get_hosts()
        .first()
        .map(|h| match h {
            tokio_postgres::config::Host::Tcp(name) => name.clone(),
            tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .unwrap_or_default();
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!(
        "postgres://{}@{host}:{port}/{}",
        config.get_user().unwrap_or(""),
        config.get_dbname().unwrap_or("")
    )
}

/// Refuses a session that would commit without durability, unless relaxed on purpose.
async fn check_durability(client: &tokio_postgres::Client, relaxed: bool) -> Result<(), String> {
    let setting = |name: &'static str| async move {
        client
            .query_one(&format!("SHOW {name}"), &[])
            .await
            .map(|row| row.get::<_, String>(0))
            .map_err(|e| format!("cannot read {name}: {e}"))
    };
    let fsync = setting("fsync").await?;
    let synchronous_commit = setting("synchronous_commit").await?;
    let durable = fsync != "off" && synchronous_commit != "off";
    if durable {
        return Ok(());
    }
    let why = format!("the server commits without durability (fsync = {fsync}, synchronous_commit = {synchronous_commit}): an acknowledged event could be lost in a crash");
    if relaxed {
        tracing::warn!("{why}; accepted because [store] durability = \"relaxed\"");
        Ok(())
    } else {
        Err(format!(
            "{why}; fix the server's settings, or set [store] durability = \"relaxed\" to accept that"
        ))
    }
}

/// Applies the missing migrations, once, however many nodes start together; refuses a
/// schema newer than this binary.
async fn migrate(client: &mut deadpool_postgres::Object) -> Result<(), String> {
    let fail = |what: &str, e: tokio_postgres::Error| match e.as_db_error() {
        Some(db) => format!("{what}: {}", db.message()),
        None => format!("{what}: {e}"),
    };
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(|e| fail("cannot take the migration lock", e))?;
    let result = async {
        client
            .batch_execute("CREATE TABLE IF NOT EXISTS hookgate_schema (version integer NOT NULL)")
            .await
            .map_err(|e| fail("cannot create hookgate_schema", e))?;
        let applied: i64 = client
            .query_one("SELECT coalesce(max(version), 0)::bigint FROM hookgate_schema", &[])
            .await
            .map_err(|e| fail("cannot read the schema version", e))?
            .get(0);
        let known = MIGRATIONS.len() as i64;
        if applied > known {
            return Err(format!(
                "the database's schema is version {applied}, newer than this hookgate knows ({known}): run a newer hookgate"
            ));
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(applied as usize) {
            let tx = client
                .transaction()
                .await
                .map_err(|e| fail("cannot migrate", e))?;
            tx.batch_execute(sql)
                .await
                .map_err(|e| fail(&format!("migration {} failed", i + 1), e))?;
            tx.execute(
                "INSERT INTO hookgate_schema (version) VALUES ($1)",
                &[&(i as i32 + 1)],
            )
            .await
            .map_err(|e| fail("cannot record the migration", e))?;
            tx.commit()
                .await
                .map_err(|e| fail(&format!("migration {} failed", i + 1), e))?;
        }
        Ok(())
    }
    .await;
    let _ = client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await;
    result
}

/// `[store] max_size` on PostgreSQL: the database's size, measured at most once a second.
struct SizeCheck {
    max: Option<u64>,
    last: std::sync::Mutex<Option<(Instant, u64)>>,
}

impl SizeCheck {
    fn new(max: Option<u64>) -> SizeCheck {
        SizeCheck {
            max,
            last: std::sync::Mutex::new(None),
        }
    }

    async fn full(&self, client: &tokio_postgres::Client) -> Result<bool, StoreError> {
        let Some(max) = self.max else {
            return Ok(false);
        };
        let known = *self.last.lock().expect("size lock");
        // Far from the cap, a measure a second old will do; near it, every batch measures.
        let size = match known {
            Some((at, size)) if at.elapsed() < SIZE_CHECK_EVERY && size < max / 10 * 9 => size,
            _ => {
                let size: i64 = client
                    .query_one("SELECT pg_database_size(current_database())", &[])
                    .await
                    .map_err(pg)?
                    .get(0);
                let size = size.max(0) as u64;
                *self.last.lock().expect("size lock") = Some((Instant::now(), size));
                size
            }
        };
        Ok(size >= max)
    }
}

async fn write_loop(
    pool: deadpool_postgres::Pool,
    queue: Arc<Mutex<mpsc::Receiver<Message>>>,
    max_batch: usize,
    observer: Option<Arc<dyn CommitObserver>>,
    size: Arc<SizeCheck>,
) {
    loop {
        let mut inserts = Vec::new();
        let mut close = None;
        {
            let mut queue = queue.lock().await;
            match queue.recv().await {
                None => return,
                Some(first) => sort(first, &mut inserts, &mut close),
            }
            // Everything already waiting joins this transaction: one commit for all.
            while close.is_none() && inserts.len() < max_batch {
                match queue.try_recv() {
                    Ok(message) => sort(message, &mut inserts, &mut close),
                    Err(_) => break,
                }
            }
        }
        if !inserts.is_empty() {
            let started = Instant::now();
            let writes = inserts.len();
            let committed = commit(&pool, &mut inserts, &size).await;
            if let Some(observer) = &observer {
                observer.committed(writes, started.elapsed(), committed);
            }
        }
        if let Some(done) = close {
            let _ = done.send(());
            return;
        }
    }
}

type PendingInsert = (Box<NewEvent>, oneshot::Sender<Result<Stored, StoreError>>);

fn sort(
    message: Message,
    inserts: &mut Vec<PendingInsert>,
    close: &mut Option<oneshot::Sender<()>>,
) {
    match message {
        Message::Insert(event, reply) => inserts.push((event, reply)),
        Message::Close(done) => *close = Some(done),
    }
}

type Completion = (Attempt, oneshot::Sender<Result<(), StoreError>>);

/// The next batch of a queue: the first item waited for, then up to `max` of those already
/// waiting. `None` once the queue is closed, or the store is closing and the queue is empty.
async fn next_batch<T>(
    queue: &mut mpsc::Receiver<T>,
    closed: &mut tokio::sync::watch::Receiver<bool>,
    max: usize,
) -> Option<Vec<T>> {
    let first = tokio::select! {
        biased;
        next = queue.recv() => next?,
        _ = closed.wait_for(|c| *c) => queue.try_recv().ok()?,
    };
    let mut batch = vec![first];
    while batch.len() < max {
        match queue.try_recv() {
            Ok(item) => batch.push(item),
            Err(_) => break,
        }
    }
    Some(batch)
}

/// Records attempts in batches: everything waiting goes in one transaction of two
/// multi-row statements (committed without waiting for the WAL flush: losing the last
/// records in a crash only repeats a delivery), and each caller is answered after it.
/// Ends when the store is closed, once what is queued is recorded.
async fn completion_loop(
    pool: deadpool_postgres::Pool,
    mut queue: mpsc::Receiver<Completion>,
    mut closed: tokio::sync::watch::Receiver<bool>,
    max_batch: usize,
) {
    while let Some(batch) = next_batch(&mut queue, &mut closed, max_batch).await {
        let attempts: Vec<&Attempt> = batch.iter().map(|(a, _)| a).collect();
        let result = async {
            let mut client = pool.get().await.map_err(pool_error)?;
            let tx = bookkeeping(&mut client).await?;
            record_attempts(&tx, &attempts).await?;
            tx.commit().await.map_err(pg)
        }
        .await;
        for (_, reply) in batch {
            let _ = reply.send(result.clone());
        }
    }
}

/// The attempts, and their deliveries moved on. Only the lease owner moves a delivery on:
/// a worker whose lease expired (and was claimed again) records its attempt and nothing
/// else.
async fn record_attempts(
    tx: &deadpool_postgres::Transaction<'_>,
    attempts: &[&Attempt],
) -> Result<(), StoreError> {
    let ids: Vec<i64> = attempts.iter().map(|a| a.delivery_id).collect();
    let started: Vec<i64> = attempts.iter().map(|a| a.started_at_ms).collect();
    let durations: Vec<i64> = attempts.iter().map(|a| a.duration_ms).collect();
    let codes: Vec<Option<i64>> = attempts.iter().map(|a| a.status_code).collect();
    let outcomes: Vec<&str> = attempts
        .iter()
        .map(|a| AttemptOutcome::of(a.next_status).as_str())
        .collect();
    let responses: Vec<Option<&str>> = attempts.iter().map(|a| a.response.as_deref()).collect();
    let errors: Vec<Option<&str>> = attempts.iter().map(|a| a.error.as_deref()).collect();
    tx.execute(
        "INSERT INTO attempts (delivery_id, started_at, duration_ms, status_code, outcome, response, error) \
         SELECT * FROM unnest($1::int8[], $2::int8[], $3::int8[], $4::int8[], $5::text[], $6::text[], $7::text[])",
        &[&ids, &started, &durations, &codes, &outcomes, &responses, &errors],
    )
    .await
    .map_err(pg)?;
    let statuses: Vec<&str> = attempts.iter().map(|a| a.next_status.as_str()).collect();
    let retry_in: Vec<i64> = attempts
        .iter()
        .map(|a| match a.next_status {
            DeliveryStatus::Pending => a.retry_in_ms.max(0),
            DeliveryStatus::Delivered | DeliveryStatus::Dead => 0,
        })
        .collect();
    let owners: Vec<&str> = attempts.iter().map(|a| a.owner.as_str()).collect();
    tx.execute(
        "UPDATE deliveries AS d SET status = u.status, attempts = d.attempts + 1, \
         next_at = hookgate_now_ms() + u.retry_in, lease_until = NULL, lease_owner = NULL, \
         last_error = u.error, updated_at = hookgate_now_ms() \
         FROM unnest($1::int8[], $2::text[], $3::int8[], $4::text[], $5::text[]) AS u(id, status, retry_in, error, owner) \
         WHERE d.id = u.id AND d.lease_owner = u.owner",
        &[&ids, &statuses, &retry_in, &errors, &owners],
    )
    .await
    .map_err(pg)?;
    Ok(())
}

/// Records refused requests in the order they came, batch by batch, each batch committed
/// without waiting for the WAL flush (nobody waits for a refusal; losing the last ones in
/// a crash loses only samples). Ends when the store is closed.
async fn refusal_loop(
    pool: deadpool_postgres::Pool,
    mut queue: mpsc::Receiver<Refusal>,
    mut closed: tokio::sync::watch::Receiver<bool>,
    max_batch: usize,
) {
    while let Some(batch) = next_batch(&mut queue, &mut closed, max_batch).await {
        let result = async {
            let mut client = pool.get().await.map_err(pool_error)?;
            let tx = bookkeeping(&mut client).await?;
            insert_refusals(&tx, &batch).await?;
            tx.commit().await.map_err(pg)
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(error = %e, refusals = batch.len(), "refused requests not recorded");
        }
    }
}

/// Writes a batch in one transaction and answers every insert of it after the commit;
/// when anything fails, every insert of the batch is refused (none is reported stored).
async fn commit(
    pool: &deadpool_postgres::Pool,
    inserts: &mut Vec<PendingInsert>,
    size: &SizeCheck,
) -> bool {
    let result = async {
        let mut client = pool.get().await.map_err(pool_error)?;
        if size.full(&client).await? {
            return Err(StoreError::Unavailable {
                reason: "store full: the database has reached [store] max_size".into(),
                kind: crate::FailureKind::Full,
                source: None,
            });
        }
        let tx = client.transaction().await.map_err(pg)?;
        let events: Vec<&NewEvent> = inserts.iter().map(|(e, _)| &**e).collect();
        let stored = insert_events(&tx, &events).await?;
        // must_survive_a_crash: the answers below are sent only after this commit
        // returned, with the server's synchronous_commit (checked at open).
        tx.commit().await.map_err(pg)?;
        Ok(stored)
    }
    .await;
    match result {
        Ok(stored) => {
            for ((_, reply), outcome) in inserts.drain(..).zip(stored) {
                let _ = reply.send(Ok(outcome));
            }
            true
        }
        Err(e) => {
            tracing::warn!(error = %e, "store batch not committed; its requests are refused");
            for (_, reply) in inserts.drain(..) {
                let _ = reply.send(Err(e.clone()));
            }
            false
        }
    }
}

/// Inserts `events` (multi-row statements), finds the duplicates' first ids, creates the
/// new events' deliveries; returns each event's outcome, in order.
async fn insert_events(
    tx: &deadpool_postgres::Transaction<'_>,
    events: &[&NewEvent],
) -> Result<Vec<Stored>, StoreError> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<&str> = events.iter().map(|e| e.id.0.as_str()).collect();
    let sources: Vec<&str> = events.iter().map(|e| e.source.as_str()).collect();
    let keys: Vec<Option<&str>> = events.iter().map(|e| e.dedupe_key.as_deref()).collect();
    let topics: Vec<Option<&str>> = events.iter().map(|e| e.topic.as_deref()).collect();
    let tenants: Vec<Option<&str>> = events.iter().map(|e| e.tenant.as_deref()).collect();
    let provider_ts: Vec<Option<&str>> = events
        .iter()
        .map(|e| e.provider_timestamp.as_deref())
        .collect();
    let received: Vec<i64> = events.iter().map(|e| e.received_at_ms).collect();
    let methods: Vec<&str> = events.iter().map(|e| e.method.as_str()).collect();
    let paths: Vec<&str> = events.iter().map(|e| e.path.as_str()).collect();
    let headers: Vec<String> = events
        .iter()
        .map(|e| serde_json::to_string(&e.headers).unwrap_or_else(|_| "[]".into()))
        .collect();
    let bodies: Vec<&[u8]> = events.iter().map(|e| &e.body[..]).collect();
    let verifications: Vec<String> = events.iter().map(|e| e.verification.to_string()).collect();
    let routing: Vec<&str> = events
        .iter()
        .map(|e| {
            if e.destinations.is_empty() {
                "unrouted"
            } else {
                "routed"
            }
        })
        .collect();
    let inserted: std::collections::HashSet<String> = tx
        .query(
            "INSERT INTO events (id, source, dedupe_key, topic, tenant, provider_ts, received_at, method, path, headers, body, verification, routing) \
             SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::int8[], $8::text[], $9::text[], $10::text[], $11::bytea[], $12::text[], $13::text[]) \
             ON CONFLICT (source, dedupe_key) WHERE dedupe_key IS NOT NULL DO NOTHING RETURNING id",
            &[&ids, &sources, &keys, &topics, &tenants, &provider_ts, &received, &methods, &paths, &headers, &bodies, &verifications, &routing],
        )
        .await
        .map_err(pg)?
        .iter()
        .map(|row| row.get(0))
        .collect();
    // A duplicate (stored earlier, by any node, or earlier in this batch) answers with the
    // first event's id.
    let duplicates: Vec<&&NewEvent> = events
        .iter()
        .filter(|e| !inserted.contains(&e.id.0))
        .collect();
    let mut first_ids: HashMap<(String, String), String> = HashMap::new();
    if !duplicates.is_empty() {
        let sources: Vec<&str> = duplicates.iter().map(|e| e.source.as_str()).collect();
        let keys: Vec<&str> = duplicates
            .iter()
            .map(|e| e.dedupe_key.as_deref().unwrap_or(""))
            .collect();
        for row in tx
            .query(
                "SELECT e.source, e.dedupe_key, e.id FROM events e \
                 JOIN unnest($1::text[], $2::text[]) AS d(source, dedupe_key) \
                 ON e.source = d.source AND e.dedupe_key = d.dedupe_key",
                &[&sources, &keys],
            )
            .await
            .map_err(pg)?
        {
            first_ids.insert((row.get(0), row.get(1)), row.get(2));
        }
    }
    // The deliveries are part of the event's own transaction: an acknowledged event can
    // never be missing them. A destination named twice is one delivery (and one row).
    let mut event_ids = Vec::new();
    let mut destinations = Vec::new();
    let mut webhook_ids = Vec::new();
    let mut lease_for = Vec::new();
    let mut lease_owner = Vec::new();
    for event in events.iter().filter(|e| inserted.contains(&e.id.0)) {
        let mut seen: Vec<&str> = Vec::new();
        for new in &event.destinations {
            if seen.contains(&new.destination.as_str()) {
                continue;
            }
            seen.push(&new.destination);
            event_ids.push(event.id.0.as_str());
            destinations.push(new.destination.as_str());
            webhook_ids.push(webhook_id(&event.id.0, &new.destination));
            lease_for.push(new.lease.as_ref().map(|l| l.for_ms));
            lease_owner.push(new.lease.as_ref().map(|l| l.owner.to_string()));
        }
    }
    let mut delivery_ids: HashMap<(String, String), i64> = HashMap::new();
    if !event_ids.is_empty() {
        for row in tx
            .query(
                "INSERT INTO deliveries (event_id, destination, webhook_id, status, attempts, next_at, lease_until, lease_owner, updated_at) \
                 SELECT e, d, w, 'pending', 0, hookgate_now_ms(), hookgate_now_ms() + l, o, hookgate_now_ms() \
                 FROM unnest($1::text[], $2::text[], $3::text[], $4::int8[], $5::text[]) AS t(e, d, w, l, o) \
                 RETURNING event_id, destination, id",
                &[&event_ids, &destinations, &webhook_ids, &lease_for, &lease_owner],
            )
            .await
            .map_err(pg)?
        {
            delivery_ids.insert((row.get(0), row.get(1)), row.get(2));
        }
    }
    events
        .iter()
        .map(|event| {
            if inserted.contains(&event.id.0) {
                let deliveries = event
                    .destinations
                    .iter()
                    .map(|d| {
                        delivery_ids
                            .get(&(event.id.0.clone(), d.destination.clone()))
                            .copied()
                            .ok_or_else(|| corrupt("a delivery row was not returned".into()))
                    })
                    .collect::<Result<_, _>>()?;
                Ok(Stored::New {
                    id: event.id.clone(),
                    deliveries,
                })
            } else {
                let key = (
                    event.source.clone(),
                    event.dedupe_key.clone().unwrap_or_default(),
                );
                first_ids
                    .get(&key)
                    .map(|id| Stored::Duplicate(EventId(id.clone())))
                    .ok_or_else(|| corrupt("a duplicate's first event was not found".into()))
            }
        })
        .collect()
}

/// The ring of refusals: appended, then cut to the newest [`REFUSALS_KEPT`].
async fn insert_refusals(
    tx: &deadpool_postgres::Transaction<'_>,
    refusals: &[Refusal],
) -> Result<(), StoreError> {
    if refusals.is_empty() {
        return Ok(());
    }
    let sources: Vec<&str> = refusals.iter().map(|r| r.source.as_str()).collect();
    let received: Vec<i64> = refusals.iter().map(|r| r.received_at_ms).collect();
    let peers: Vec<Option<&str>> = refusals.iter().map(|r| r.peer.as_deref()).collect();
    let kinds: Vec<&str> = refusals.iter().map(|r| r.kind.as_str()).collect();
    let details: Vec<&str> = refusals.iter().map(|r| r.detail.as_str()).collect();
    let methods: Vec<&str> = refusals.iter().map(|r| r.method.as_str()).collect();
    let paths: Vec<&str> = refusals.iter().map(|r| r.path.as_str()).collect();
    let statuses: Vec<i32> = refusals.iter().map(|r| i32::from(r.status)).collect();
    let headers: Vec<String> = refusals
        .iter()
        .map(|r| serde_json::to_string(&r.headers).unwrap_or_else(|_| "[]".into()))
        .collect();
    let bodies: Vec<&[u8]> = refusals.iter().map(|r| &r.body_head[..]).collect();
    let sizes: Vec<i64> = refusals.iter().map(|r| r.body_size).collect();
    tx.execute(
        "INSERT INTO refusals (source, received_at, peer, kind, detail, method, path, status, headers, body_head, body_size) \
         SELECT * FROM unnest($1::text[], $2::int8[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::int4[], $9::text[], $10::bytea[], $11::int8[])",
        &[&sources, &received, &peers, &kinds, &details, &methods, &paths, &statuses, &headers, &bodies, &sizes],
    )
    .await
    .map_err(pg)?;
    // Ids only grow: everything below the newest REFUSALS_KEPT goes. One trim at a time
    // (the lock is held to the commit), each seeing every ring row committed before it, so
    // two batches committing together never leave more than the bound.
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&(MIGRATION_LOCK + 1)])
        .await
        .map_err(pg)?;
    tx.execute(
        "DELETE FROM refusals WHERE id <= (SELECT max(id) FROM refusals) - $1",
        &[&REFUSALS_KEPT],
    )
    .await
    .map_err(pg)?;
    Ok(())
}

const SUMMARY_COLUMNS: &str = concat!(
    "id, source, dedupe_key, topic, tenant, received_at, length(body)::bigint, ",
    crate::filter::event_status!()
);

const GET_EVENT: &str = concat!(
    "SELECT id, source, dedupe_key, topic, tenant, received_at, length(body)::bigint, ",
    crate::filter::event_status!(),
    ", provider_ts, method, path, headers, body, verification, routing FROM events"
);

fn summary_from_row(row: &Row) -> Result<EventSummary, StoreError> {
    let status: String = row.get(7);
    Ok(EventSummary {
        id: EventId(row.get(0)),
        source: row.get(1),
        dedupe_key: row.get(2),
        topic: row.get(3),
        tenant: row.get(4),
        received_at_ms: row.get(5),
        size: row.get(6),
        status: EventStatus::parse(&status)
            .ok_or_else(|| corrupt(format!("unknown event status `{status}`")))?,
    })
}

fn record_from_row(row: &Row) -> Result<EventRecord, StoreError> {
    let headers: String = row.get(11);
    let verification: String = row.get(13);
    Ok(EventRecord {
        summary: summary_from_row(row)?,
        provider_timestamp: row.get(8),
        method: row.get(9),
        path: row.get(10),
        headers: serde_json::from_str(&headers).map_err(|e| corrupt(format!("headers: {e}")))?,
        body: bytes::Bytes::from(row.get::<_, Vec<u8>>(12)),
        verification: serde_json::from_str(&verification)
            .map_err(|e| corrupt(format!("verification: {e}")))?,
        routed: row.get::<_, String>(14) == "routed",
    })
}

fn delivery_status(text: &str) -> Result<DeliveryStatus, StoreError> {
    DeliveryStatus::parse(text).ok_or_else(|| corrupt(format!("unknown delivery status `{text}`")))
}

/// A topic glob (`*`, `?`, the routes' meaning) as an anchored POSIX regular expression:
/// everything else, `%` and `_` included, literal; case-sensitive.
fn glob_regex(glob: &str) -> String {
    let mut out = String::from("^");
    for c in glob.chars() {
        match c {
            '*' => out.push_str(".*"),
            '?' => out.push('.'),
            c if c.is_ascii_alphanumeric() || c == '/' || c == '-' || c == '_' || c == '%' => {
                out.push(c)
            }
            c => {
                out.push('\\');
                out.push(c);
            }
        }
    }
    out.push('$');
    out
}

/// PostgreSQL's parameters (`$1`) and topic match (an anchored regular expression).
const POSTGRES: crate::filter::Dialect = crate::filter::Dialect {
    placeholder: |n| format!("${n}"),
    topic: |glob| ("~", glob_regex(glob)),
    always: "true",
};

/// The `WHERE` clause of a [`ListFilter`] and its parameters (`$1`, `$2`, … in order).
fn where_clause(
    filter: &ListFilter,
    newest_first: Option<u32>,
) -> (String, Vec<Box<dyn ToSql + Sync + Send>>) {
    let (clause, values) = crate::filter::where_clause(filter, &POSTGRES, newest_first);
    let values = values
        .into_iter()
        .map(|v| Box::new(v) as Box<dyn ToSql + Sync + Send>)
        .collect();
    (clause, values)
}

fn params(values: &[Box<dyn ToSql + Sync + Send>]) -> Vec<&(dyn ToSql + Sync)> {
    values.iter().map(|v| &**v as &(dyn ToSql + Sync)).collect()
}

/// Events a rule selects for pruning: older than its cutoff (ids carry arrival times), of
/// its source (or of every source but its exceptions), with no pending delivery.
fn prunable_sql(rule: &PruneRule) -> (String, Vec<Box<dyn ToSql + Sync + Send>>) {
    let mut values: Vec<Box<dyn ToSql + Sync + Send>> =
        vec![Box::new(EventId::lowest_at(rule.older_than_ms))];
    let mut sql = String::from(
        "id < $1 AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = events.id AND d.status = 'pending')",
    );
    if let Some(source) = &rule.source {
        values.push(Box::new(source.clone()));
        sql.push_str(&format!(" AND source = ${}", values.len()));
    }
    if !rule.except.is_empty() {
        values.push(Box::new(rule.except.clone()));
        sql.push_str(&format!(" AND NOT (source = ANY(${}))", values.len()));
    }
    (sql, values)
}

fn add_count(out: &mut Vec<(String, u64)>, source: String, n: u64) {
    match out.iter_mut().find(|(s, _)| *s == source) {
        Some((_, total)) => *total += n,
        None => out.push((source, n)),
    }
}

#[async_trait::async_trait]
impl Backend for PgStore {
    fn describe(&self) -> String {
        self.describe.clone()
    }

    async fn insert(&self, event: NewEvent) -> Result<Stored, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.writer
            .send(Message::Insert(Box::new(event), reply))
            .await
            .map_err(|_| StoreError::unavailable("the store writer has stopped"))?;
        answer
            .await
            .map_err(|_| StoreError::unavailable("the store writer stopped before committing"))?
    }

    async fn ready(&self) -> Result<(), StoreError> {
        if self.writer.is_closed() {
            return Err(StoreError::unavailable("the store writer has stopped"));
        }
        self.client()
            .await?
            .query_one("SELECT 1", &[])
            .await
            .map_err(pg)?;
        Ok(())
    }

    async fn list(&self, filter: ListFilter) -> Result<Vec<EventSummary>, StoreError> {
        let limit = filter.limit.unwrap_or(100);
        let (clause, mut values) = where_clause(&filter, Some(limit));
        values.push(Box::new(i64::from(limit)));
        let sql = format!(
            "SELECT {SUMMARY_COLUMNS} FROM events WHERE {clause} ORDER BY id DESC LIMIT ${}",
            values.len()
        );
        let client = self.client().await?;
        let rows = client.query(&sql, &params(&values)).await.map_err(pg)?;
        rows.iter().map(summary_from_row).collect()
    }

    async fn get(&self, id: String) -> Result<Option<EventRecord>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(&format!("{GET_EVENT} WHERE id = $1"), &[&id])
            .await
            .map_err(pg)?;
        row.as_ref().map(record_from_row).transpose()
    }

    async fn get_many(&self, ids: Vec<EventId>) -> Result<Vec<EventRecord>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(&format!("{GET_EVENT} WHERE id = ANY($1)"), &[&ids])
            .await
            .map_err(pg)?;
        let mut found: HashMap<String, EventRecord> = HashMap::new();
        for row in &rows {
            let record = record_from_row(row)?;
            found.insert(record.summary.id.0.clone(), record);
        }
        Ok(ids.iter().filter_map(|id| found.remove(&**id)).collect())
    }

    async fn claim(
        &self,
        destination: &str,
        limit: u32,
        lease_ms: i64,
        owner: &str,
    ) -> Result<Vec<Claimed>, StoreError> {
        let mut client = self.client().await?;
        let tx = bookkeeping(&mut client).await?;
        {
            let rows = tx
                .query(
                    "UPDATE deliveries SET lease_until = hookgate_now_ms() + $3, lease_owner = $4 WHERE id IN ( \
                     SELECT id FROM deliveries WHERE destination = $1 AND status = 'pending' AND next_at <= hookgate_now_ms() \
                     AND (lease_until IS NULL OR lease_until <= hookgate_now_ms()) ORDER BY next_at, id LIMIT $2 \
                     FOR UPDATE SKIP LOCKED) RETURNING id, event_id, webhook_id, attempts",
                    &[&destination, &i64::from(limit), &lease_ms, &owner],
                )
                .await
                .map_err(pg)?;
            let mut claimed: Vec<Claimed> = rows
                .iter()
                .map(|r| Claimed {
                    delivery_id: r.get(0),
                    event_id: EventId(r.get(1)),
                    webhook_id: r.get(2),
                    attempts: r.get(3),
                })
                .collect();
            claimed.sort_by_key(|c| c.delivery_id);
            tx.commit().await.map_err(pg)?;
            Ok(claimed)
        }
    }

    async fn complete(&self, attempt: Attempt) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        self.completions
            .send((attempt, reply))
            .await
            .map_err(|_| StoreError::unavailable("the store has stopped"))?;
        answer
            .await
            .map_err(|_| StoreError::unavailable("the store stopped before recording"))?
    }

    async fn replay(&self, targets: ReplayTargets) -> Result<usize, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        let event_ids: Vec<&str> = targets.iter().map(|(e, _)| &**e).collect();
        let destinations: Vec<&str> = targets.iter().map(|(_, d)| d.as_str()).collect();
        let webhook_ids: Vec<String> = targets.iter().map(|(e, d)| webhook_id(e, d)).collect();
        // Due now with its attempts reset. A pending delivery keeps its lease: it may be in
        // flight, and only its holder may move it on.
        tx.execute(
            "INSERT INTO deliveries AS d (event_id, destination, webhook_id, status, attempts, next_at, updated_at) \
             SELECT e, t, w, 'pending', 0, hookgate_now_ms(), hookgate_now_ms() \
             FROM unnest($1::text[], $2::text[], $3::text[]) AS x(e, t, w) \
             ON CONFLICT (event_id, destination) DO UPDATE SET \
             lease_until = CASE WHEN d.status = 'pending' THEN d.lease_until END, \
             lease_owner = CASE WHEN d.status = 'pending' THEN d.lease_owner END, \
             status = 'pending', attempts = 0, next_at = hookgate_now_ms(), updated_at = hookgate_now_ms()",
            &[&event_ids, &destinations, &webhook_ids],
        )
        .await
        .map_err(pg)?;
        tx.execute(
            "UPDATE events SET routing = 'routed' WHERE id = ANY($1)",
            &[&event_ids],
        )
        .await
        .map_err(pg)?;
        tx.commit().await.map_err(pg)?;
        Ok(targets.len())
    }

    async fn release(&self, destination: &str, owner: &str) -> Result<usize, StoreError> {
        let mut client = self.client().await?;
        let tx = bookkeeping(&mut client).await?;
        {
            let n = tx
                .execute(
                    "UPDATE deliveries SET lease_until = NULL, lease_owner = NULL \
                     WHERE destination = $1 AND status = 'pending' AND lease_owner = $2",
                    &[&destination, &owner],
                )
                .await
                .map_err(pg)?;
            tx.commit().await.map_err(pg)?;
            Ok(n as usize)
        }
    }

    async fn deliveries(&self, event_id: String) -> Result<Vec<DeliveryRecord>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT id, destination, webhook_id, status, attempts, next_at, last_error \
                 FROM deliveries WHERE event_id = $1 ORDER BY destination",
                &[&event_id],
            )
            .await
            .map_err(pg)?;
        let ids: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
        let attempts = client
            .query(
                "SELECT delivery_id, started_at, duration_ms, status_code, outcome, response, error \
                 FROM attempts WHERE delivery_id = ANY($1) ORDER BY id",
                &[&ids],
            )
            .await
            .map_err(pg)?;
        let mut history: HashMap<i64, Vec<AttemptRecord>> = HashMap::new();
        for r in &attempts {
            let outcome: String = r.get(4);
            history.entry(r.get(0)).or_default().push(AttemptRecord {
                started_at_ms: r.get(1),
                duration_ms: r.get(2),
                status_code: r.get(3),
                outcome: AttemptOutcome::parse(&outcome)
                    .ok_or_else(|| corrupt(format!("unknown attempt outcome `{outcome}`")))?,
                response: r.get(5),
                error: r.get(6),
            });
        }
        rows.iter()
            .map(|r| {
                let id: i64 = r.get(0);
                Ok(DeliveryRecord {
                    destination: r.get(1),
                    webhook_id: r.get(2),
                    status: delivery_status(r.get(3))?,
                    attempts: r.get(4),
                    next_at_ms: r.get(5),
                    last_error: r.get(6),
                    history: history.remove(&id).unwrap_or_default(),
                })
            })
            .collect()
    }

    async fn delivery_counts(&self) -> Result<DeliveryCounts, StoreError> {
        let client = self.client().await?;
        let mut counts = DeliveryCounts::default();
        for row in client
            .query(
                "SELECT status, count(*) FROM deliveries GROUP BY status",
                &[],
            )
            .await
            .map_err(pg)?
        {
            counts.add(delivery_status(row.get(0))?, row.get(1));
        }
        Ok(counts)
    }

    async fn replay_candidates(
        &self,
        filter: ListFilter,
    ) -> Result<Vec<(EventRecord, Vec<(String, DeliveryStatus)>)>, StoreError> {
        let (clause, values) = where_clause(&filter, None);
        let limit = filter
            .limit
            .map(|n| format!(" LIMIT {n}"))
            .unwrap_or_default();
        let client = self.client().await?;
        let events: Vec<EventRecord> = client
            .query(
                &format!("{GET_EVENT} WHERE {clause} ORDER BY id{limit}"),
                &params(&values),
            )
            .await
            .map_err(pg)?
            .iter()
            .map(record_from_row)
            .collect::<Result<_, _>>()?;
        let ids: Vec<&str> = events.iter().map(|e| &*e.summary.id).collect();
        let mut found: HashMap<String, Vec<(String, DeliveryStatus)>> = HashMap::new();
        for row in client
            .query(
                "SELECT event_id, destination, status FROM deliveries WHERE event_id = ANY($1) ORDER BY destination",
                &[&ids],
            )
            .await
            .map_err(pg)?
        {
            found
                .entry(row.get(0))
                .or_default()
                .push((row.get(1), delivery_status(row.get(2))?));
        }
        Ok(events
            .into_iter()
            .map(|event| {
                let deliveries = found.remove(&*event.summary.id).unwrap_or_default();
                (event, deliveries)
            })
            .collect())
    }

    async fn destination_stats(&self) -> Result<Vec<DestinationStats>, StoreError> {
        let client = self.client().await?;
        let mut out: Vec<DestinationStats> = Vec::new();
        for row in client
            .query(
                "SELECT destination, status, count(*) FROM deliveries GROUP BY destination, status ORDER BY destination",
                &[],
            )
            .await
            .map_err(pg)?
        {
            let destination: String = row.get(0);
            if out.last().is_none_or(|s| s.destination != destination) {
                out.push(DestinationStats {
                    destination,
                    ..Default::default()
                });
            }
            if let Some(last) = out.last_mut() {
                last.counts.add(delivery_status(row.get(1))?, row.get(2));
            }
        }
        for row in client
            .query(
                "SELECT destination, count(*) FILTER (WHERE lease_until > hookgate_now_ms()), min(event_id) \
                 FROM deliveries WHERE status = 'pending' GROUP BY destination",
                &[],
            )
            .await
            .map_err(pg)?
        {
            let destination: String = row.get(0);
            if let Some(stats) = out.iter_mut().find(|s| s.destination == destination) {
                stats.leased = row.get(1);
                stats.oldest_pending_ms = row
                    .get::<_, Option<String>>(2)
                    .as_deref()
                    .and_then(EventId::millis_of);
            }
        }
        for row in client
            .query("SELECT destination FROM destination_pauses", &[])
            .await
            .map_err(pg)?
        {
            let name: String = row.get(0);
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
    }

    async fn prune(
        &self,
        rules: Vec<PruneRule>,
        limit: u32,
    ) -> Result<Vec<(String, u64)>, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        let mut left = i64::from(limit);
        let mut pruned: Vec<(String, u64)> = Vec::new();
        for rule in &rules {
            if left <= 0 {
                break;
            }
            let (clause, mut values) = prunable_sql(rule);
            values.push(Box::new(left));
            // SKIP LOCKED: two nodes pruning at once take different events.
            let found = tx
                .query(
                    &format!(
                        "SELECT id, source FROM events WHERE {clause} ORDER BY id LIMIT ${} FOR UPDATE SKIP LOCKED",
                        values.len()
                    ),
                    &params(&values),
                )
                .await
                .map_err(pg)?;
            let ids: Vec<String> = found.iter().map(|r| r.get(0)).collect();
            if ids.is_empty() {
                continue;
            }
            tx.execute(
                "DELETE FROM attempts WHERE delivery_id IN (SELECT id FROM deliveries WHERE event_id = ANY($1))",
                &[&ids],
            )
            .await
            .map_err(pg)?;
            tx.execute("DELETE FROM deliveries WHERE event_id = ANY($1)", &[&ids])
                .await
                .map_err(pg)?;
            tx.execute("DELETE FROM events WHERE id = ANY($1)", &[&ids])
                .await
                .map_err(pg)?;
            left -= ids.len() as i64;
            for row in &found {
                add_count(&mut pruned, row.get(1), 1);
            }
        }
        tx.commit().await.map_err(pg)?;
        Ok(pruned)
    }

    async fn prunable(&self, rules: Vec<PruneRule>) -> Result<Vec<(String, u64)>, StoreError> {
        let client = self.client().await?;
        let mut out: Vec<(String, u64)> = Vec::new();
        for rule in &rules {
            let (clause, values) = prunable_sql(rule);
            for row in client
                .query(
                    &format!(
                        "SELECT source, count(*) FROM events WHERE {clause} GROUP BY source ORDER BY source"
                    ),
                    &params(&values),
                )
                .await
                .map_err(pg)?
            {
                out.push((row.get(0), row.get::<_, i64>(1) as u64));
            }
        }
        Ok(out)
    }

    async fn paused(&self) -> Result<Vec<String>, StoreError> {
        let client = self.client().await?;
        Ok(client
            .query(
                "SELECT destination FROM destination_pauses ORDER BY destination",
                &[],
            )
            .await
            .map_err(pg)?
            .iter()
            .map(|r| r.get(0))
            .collect())
    }

    async fn set_paused(&self, destination: &str, paused: bool) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let changed = if paused {
            client
                .execute(
                    "INSERT INTO destination_pauses (destination, paused_at) VALUES ($1, hookgate_now_ms()) \
                     ON CONFLICT (destination) DO NOTHING",
                    &[&destination],
                )
                .await
        } else {
            client
                .execute(
                    "DELETE FROM destination_pauses WHERE destination = $1",
                    &[&destination],
                )
                .await
        }
        .map_err(pg)?;
        Ok(changed > 0)
    }

    /// Queues a refused request for the writers without waiting; `false` when their queue
    /// is full (the refusal is dropped rather than slowing ingest down).
    fn record_refusal(&self, refusal: Refusal) -> bool {
        self.refusals.try_send(refusal.bounded()).is_ok()
    }

    async fn refusals(&self, filter: RefusalFilter) -> Result<Vec<RefusalRecord>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT id, source, received_at, peer, kind, detail, method, path, status, headers, body_head, body_size \
                 FROM refusals WHERE ($1::text IS NULL OR source = $1) AND ($2::text IS NULL OR kind = $2) \
                 AND ($3::int8 IS NULL OR received_at >= $3) AND ($4::int8 IS NULL OR received_at < $4) \
                 AND ($5::int8 IS NULL OR id < $5) ORDER BY id DESC LIMIT $6",
                &[
                    &filter.source,
                    &filter.kind,
                    &filter.since_ms,
                    &filter.until_ms,
                    &filter.before,
                    &i64::from(filter.limit.unwrap_or(100)),
                ],
            )
            .await
            .map_err(pg)?;
        rows.iter()
            .map(|r| {
                let headers: String = r.get(9);
                Ok(RefusalRecord {
                    id: r.get(0),
                    request: Refusal {
                        source: r.get(1),
                        received_at_ms: r.get(2),
                        peer: r.get(3),
                        kind: r.get(4),
                        detail: r.get(5),
                        method: r.get(6),
                        path: r.get(7),
                        status: u16::try_from(r.get::<_, i32>(8))
                            .map_err(|e| corrupt(format!("status: {e}")))?,
                        headers: serde_json::from_str(&headers)
                            .map_err(|e| corrupt(format!("headers: {e}")))?,
                        body_head: bytes::Bytes::from(r.get::<_, Vec<u8>>(10)),
                        body_size: r.get(11),
                    },
                })
            })
            .collect()
    }

    /// The whole database's size (`pg_database_size`).
    async fn size_bytes(&self) -> Result<Option<u64>, StoreError> {
        let client = self.client().await?;
        let size: i64 = client
            .query_one("SELECT pg_database_size(current_database())", &[])
            .await
            .map_err(pg)?
            .get(0);
        Ok(Some(size.max(0) as u64))
    }

    /// Commits what is queued and stops the writers.
    async fn close(&self) {
        self.closing.send_replace(true);
        for _ in 0..WRITERS {
            let (done, finished) = oneshot::channel();
            if self.writer.send(Message::Close(done)).await.is_ok() {
                let _ = finished.await;
            }
        }
        for task in self.writers.lock().await.drain(..) {
            let _ = task.await;
        }
    }
}
