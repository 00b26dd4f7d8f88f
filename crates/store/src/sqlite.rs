//! The embedded store: one SQLite file in WAL mode with `synchronous = FULL`, one writer
//! thread that group-commits, one reader connection for queries.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::{params, Connection, OptionalExtension};
use tokio::sync::{mpsc, oneshot};

use crate::event::{EventId, EventRecord, EventSummary, ListFilter, NewEvent, Stored};
use crate::{StoreError, StoreOptions};

/// Schema versions, applied in order; `PRAGMA user_version` records how many ran.
const MIGRATIONS: &[&str] = &[r#"
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
"#];

const INSERT: &str = "INSERT INTO events (id, source, dedupe_key, topic, tenant, provider_ts, received_at, method, path, headers, body, verification) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) \
     ON CONFLICT (source, dedupe_key) WHERE dedupe_key IS NOT NULL DO NOTHING";
const FIND_DUPLICATE: &str = "SELECT id FROM events WHERE source = ?1 AND dedupe_key = ?2";

/// An event with its JSON columns already serialised by the caller, so the single writer
/// thread does nothing but SQLite work.
struct Prepared {
    event: NewEvent,
    headers: String,
    verification: String,
}

enum Message {
    Insert(Box<Prepared>, oneshot::Sender<Result<Stored, StoreError>>),
    Close(oneshot::Sender<()>),
}

#[derive(Clone)]
pub(crate) struct SqliteStore {
    path: Arc<PathBuf>,
    writer: mpsc::Sender<Message>,
    reader: Arc<Mutex<Connection>>,
}

fn open_connection(path: &Path, options: &StoreOptions) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // 16 MiB of page cache keeps the id and dedupe B-trees' hot pages in memory.
    conn.pragma_update(None, "cache_size", -16 * 1024)?;
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
        let fail = |reason: String| StoreError::Open {
            path: path.clone(),
            reason,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| fail(format!("cannot create directory {}: {e}", dir.display())))?;
        }
        let mut writer_conn = open_connection(&path, options).map_err(|e| fail(e.to_string()))?;
        migrate(&mut writer_conn).map_err(|e| fail(format!("migration failed: {e}")))?;
        let reader = open_connection(&path, options).map_err(|e| fail(e.to_string()))?;
        let (tx, rx) = mpsc::channel(16 * 1024);
        let max_batch = options.max_batch.unwrap_or(1024).max(1);
        std::thread::Builder::new()
            .name("hookgate-store-writer".into())
            .spawn(move || write_loop(writer_conn, rx, max_batch))
            .map_err(|e| fail(format!("cannot start writer thread: {e}")))?;
        Ok(SqliteStore {
            path: Arc::new(path),
            writer: tx,
            reader: Arc::new(Mutex::new(reader)),
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) async fn insert(&self, event: NewEvent) -> Result<Stored, StoreError> {
        let (reply, answer) = oneshot::channel();
        let prepared = Prepared {
            headers: serde_json::to_string(&event.headers).unwrap_or_else(|_| "[]".into()),
            verification: event.verification.to_string(),
            event,
        };
        self.writer
            .send(Message::Insert(Box::new(prepared), reply))
            .await
            .map_err(|_| StoreError::Unavailable("the store writer has stopped".into()))?;
        answer.await.map_err(|_| {
            StoreError::Unavailable("the store writer stopped before committing".into())
        })?
    }

    async fn read<T: Send + 'static>(
        &self,
        query: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        let reader = self.reader.clone();
        tokio::task::spawn_blocking(move || {
            let conn = reader
                .lock()
                .map_err(|_| StoreError::Unavailable("reader connection poisoned".into()))?;
            query(&conn).map_err(|e| StoreError::Unavailable(e.to_string()))
        })
        .await
        .map_err(|e| StoreError::Unavailable(format!("read task failed: {e}")))?
    }

    pub(crate) async fn ready(&self) -> Result<(), StoreError> {
        if self.writer.is_closed() {
            return Err(StoreError::Unavailable(
                "the store writer has stopped".into(),
            ));
        }
        self.read(|conn| {
            conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
                r.get::<_, i64>(0)
            })
        })
        .await?;
        Ok(())
    }

    pub(crate) async fn list(&self, filter: ListFilter) -> Result<Vec<EventSummary>, StoreError> {
        self.read(move |conn| {
            let mut statement = conn.prepare_cached(
                "SELECT id, source, dedupe_key, topic, tenant, received_at, length(body) FROM events \
                 WHERE (?1 IS NULL OR source = ?1) AND (?2 IS NULL OR topic LIKE ?2) \
                 AND (?3 IS NULL OR id >= ?3) AND (?4 IS NULL OR id < ?4) \
                 ORDER BY id DESC LIMIT ?5",
            )?;
            let topic = filter.topic.map(|t| t.replace('*', "%"));
            let rows = statement.query_map(
                params![
                    filter.source,
                    topic,
                    filter.since_ms.map(EventId::lowest_at),
                    filter.until_ms.map(EventId::lowest_at),
                    filter.limit.unwrap_or(100)
                ],
                summary_from_row,
            )?;
            rows.collect()
        })
        .await
    }

    pub(crate) async fn get(&self, id: String) -> Result<Option<EventRecord>, StoreError> {
        self.read(move |conn| {
            conn.query_row(
                "SELECT id, source, dedupe_key, topic, tenant, received_at, length(body), provider_ts, method, path, headers, body, verification \
                 FROM events WHERE id = ?1",
                [id],
                |row| {
                    let headers: String = row.get(10)?;
                    let verification: String = row.get(12)?;
                    Ok(EventRecord {
                        summary: summary_from_row(row)?,
                        provider_timestamp: row.get(7)?,
                        method: row.get(8)?,
                        path: row.get(9)?,
                        headers: serde_json::from_str(&headers).unwrap_or_default(),
                        body: row.get(11)?,
                        verification: serde_json::from_str(&verification).unwrap_or_default(),
                    })
                },
            )
            .optional()
        })
        .await
    }

    pub(crate) async fn close(&self) {
        let (done, finished) = oneshot::channel();
        if self.writer.send(Message::Close(done)).await.is_ok() {
            let _ = finished.await;
        }
    }
}

fn summary_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<EventSummary> {
    Ok(EventSummary {
        id: row.get(0)?,
        source: row.get(1)?,
        dedupe_key: row.get(2)?,
        topic: row.get(3)?,
        tenant: row.get(4)?,
        received_at_ms: row.get(5)?,
        size: row.get(6)?,
    })
}

type Pending = (Box<Prepared>, oneshot::Sender<Result<Stored, StoreError>>);

fn write_loop(mut conn: Connection, mut queue: mpsc::Receiver<Message>, max_batch: usize) {
    let mut batch: Vec<Pending> = Vec::with_capacity(max_batch);
    while let Some(first) = queue.blocking_recv() {
        let mut close = None;
        match first {
            Message::Insert(event, reply) => batch.push((event, reply)),
            Message::Close(done) => close = Some(done),
        }
        // Everything already waiting joins this transaction: one fsync for all of them.
        while close.is_none() && batch.len() < max_batch {
            match queue.try_recv() {
                Ok(Message::Insert(event, reply)) => batch.push((event, reply)),
                Ok(Message::Close(done)) => close = Some(done),
                Err(_) => break,
            }
        }
        if !batch.is_empty() {
            commit(&mut conn, &mut batch);
        }
        if let Some(done) = close {
            queue.close();
            // Inserts that raced the close are refused, not lost silently.
            while let Ok(Message::Insert(_, reply)) = queue.try_recv() {
                let _ = reply.send(Err(StoreError::Unavailable(
                    "the store is shutting down".into(),
                )));
            }
            let _ = done.send(());
            return;
        }
    }
}

fn commit(conn: &mut Connection, batch: &mut Vec<Pending>) {
    let result = (|| -> rusqlite::Result<Vec<Stored>> {
        let tx = conn.transaction()?;
        let mut outcomes = Vec::with_capacity(batch.len());
        {
            let mut insert = tx.prepare_cached(INSERT)?;
            let mut find = tx.prepare_cached(FIND_DUPLICATE)?;
            for (prepared, _) in batch.iter() {
                let event = &prepared.event;
                let inserted = insert.execute(params![
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
                ])?;
                if inserted == 1 {
                    outcomes.push(Stored::New(event.id.clone()));
                } else {
                    let id: String =
                        find.query_row(params![event.source, event.dedupe_key], |r| r.get(0))?;
                    outcomes.push(Stored::Duplicate(EventId(id)));
                }
            }
        }
        tx.commit()?;
        Ok(outcomes)
    })();
    match result {
        Ok(outcomes) => {
            for ((_, reply), outcome) in batch.drain(..).zip(outcomes) {
                let _ = reply.send(Ok(outcome));
            }
        }
        Err(e) => {
            tracing::error!(error = %e, events = batch.len(), "store commit failed; the batch is refused with 503");
            let reason = e.to_string();
            for (_, reply) in batch.drain(..) {
                let _ = reply.send(Err(StoreError::Unavailable(reason.clone())));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(source: &str, key: Option<&str>, size: usize) -> NewEvent {
        NewEvent {
            id: EventId::new(),
            source: source.into(),
            dedupe_key: key.map(str::to_owned),
            topic: Some("orders/created".into()),
            tenant: None,
            provider_timestamp: None,
            received_at_ms: 1,
            method: "POST".into(),
            path: "/h".into(),
            headers: vec![("content-type".into(), "application/json".into())],
            body: bytes::Bytes::from(vec![b'x'; size]),
            verification: serde_json::json!({"scheme": "hmac"}),
        }
    }

    #[tokio::test]
    async fn stores_dedupes_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/dir/hookgate.db");
        let store = SqliteStore::open(path.clone(), &StoreOptions::default()).unwrap();
        let first = store.insert(event("s", Some("e1"), 10)).await.unwrap();
        let Stored::New(id) = first else {
            panic!("{first:?}")
        };
        assert_eq!(
            store.insert(event("s", Some("e1"), 10)).await.unwrap(),
            Stored::Duplicate(id.clone())
        );
        assert!(matches!(
            store.insert(event("other", Some("e1"), 10)).await.unwrap(),
            Stored::New(_)
        ));
        assert!(matches!(
            store.insert(event("s", None, 10)).await.unwrap(),
            Stored::New(_)
        ));
        assert!(matches!(
            store.insert(event("s", None, 10)).await.unwrap(),
            Stored::New(_)
        ));
        store.close().await;
        assert!(matches!(
            store.insert(event("s", None, 1)).await,
            Err(StoreError::Unavailable(_))
        ));

        let reopened = SqliteStore::open(path, &StoreOptions::default()).unwrap();
        let all = reopened.list(ListFilter::default()).await.unwrap();
        assert_eq!(all.len(), 4);
        let got = reopened.get(id.0.clone()).await.unwrap().unwrap();
        assert_eq!(got.body, vec![b'x'; 10]);
        assert_eq!(got.verification["scheme"], "hmac");
        let only_other = reopened
            .list(ListFilter {
                source: Some("other".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(only_other.len(), 1);
    }

    #[tokio::test]
    async fn concurrent_inserts_are_group_committed_and_all_answered() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("g.db"), &StoreOptions::default()).unwrap();
        let mut tasks = Vec::new();
        for i in 0..500 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                store
                    .insert(event("s", Some(&format!("k{}", i % 250)), 100))
                    .await
            }));
        }
        let mut new = 0;
        let mut dup = 0;
        for t in tasks {
            match t.await.unwrap().unwrap() {
                Stored::New(_) => new += 1,
                Stored::Duplicate(_) => dup += 1,
            }
        }
        assert_eq!((new, dup), (250, 250));
        assert_eq!(
            store
                .list(ListFilter {
                    limit: Some(1000),
                    ..Default::default()
                })
                .await
                .unwrap()
                .len(),
            250
        );
    }

    #[tokio::test]
    async fn a_full_store_refuses_and_keeps_what_it_had() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(
            dir.path().join("f.db"),
            &StoreOptions {
                max_size: Some(64 * 1024),
                ..Default::default()
            },
        )
        .unwrap();
        let mut stored = 0;
        let mut refused = 0;
        for i in 0..100 {
            match store.insert(event("s", Some(&format!("k{i}")), 4096)).await {
                Ok(_) => stored += 1,
                Err(StoreError::Unavailable(reason)) => {
                    assert!(reason.contains("full"), "{reason}");
                    refused += 1
                }
                Err(e) => panic!("{e}"),
            }
        }
        assert!(
            stored > 0 && refused > 0,
            "{stored} stored, {refused} refused"
        );
        assert_eq!(
            store
                .list(ListFilter {
                    limit: Some(1000),
                    ..Default::default()
                })
                .await
                .unwrap()
                .len(),
            stored
        );
        store.ready().await.unwrap();
    }
}
