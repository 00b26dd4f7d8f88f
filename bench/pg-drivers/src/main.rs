//! tokio-postgres (+ deadpool) against sqlx on hookgate's ingest path: batches of events
//! written with one multi-row `unnest` statement in one transaction each, by two writers
//! at once (as the store's writer tasks do), on a fresh table per run. The two alternate,
//! three runs each, in one period; the mean events/s and their ratio are printed. A third
//! run per round writes the same batches with one statement per event, the other way to
//! group-commit.
//!
//!     cargo run --release --manifest-path bench/pg-drivers/Cargo.toml -- postgres://postgres@127.0.0.1:5432/postgres

use std::time::{Duration, Instant};

const BATCH: usize = 64;
const WRITERS: usize = 2;
const RUN: Duration = Duration::from_secs(5);
const CREATE: &str = "DROP TABLE IF EXISTS driver_bench; CREATE TABLE driver_bench (
    id text PRIMARY KEY, source text NOT NULL, dedupe_key text, received_at bigint NOT NULL,
    headers text NOT NULL, body bytea NOT NULL)";
const INSERT: &str = "INSERT INTO driver_bench (id, source, dedupe_key, received_at, headers, body) \
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int8[], $5::text[], $6::bytea[]) \
    ON CONFLICT DO NOTHING RETURNING id";

struct Batch {
    ids: Vec<String>,
    sources: Vec<String>,
    keys: Vec<Option<String>>,
    received: Vec<i64>,
    headers: Vec<String>,
    bodies: Vec<Vec<u8>>,
}

fn batch(run: &str, writer: usize, n: usize) -> Batch {
    let ids: Vec<String> = (0..BATCH).map(|i| format!("{run}-{writer}-{n}-{i}")).collect();
    Batch {
        keys: ids.iter().map(|id| Some(format!("key-{id}"))).collect(),
        sources: vec!["gh".into(); BATCH],
        received: vec![1_763_800_000_000; BATCH],
        headers: vec![r#"[["content-type","application/json"],["x-github-event","push"]]"#.into(); BATCH],
        bodies: (0..BATCH).map(|i| vec![b'a' + (i % 26) as u8; 1024]).collect(),
        ids,
    }
}

/// `WRITERS` tasks, each running `write(writer, deadline)`, which writes batches until the
/// deadline and returns how many events it wrote; events/s in all.
async fn measure<Fut>(write: impl Fn(usize, Instant) -> Fut) -> f64
where
    Fut: std::future::Future<Output = usize> + Send + 'static,
{
    let started = Instant::now();
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| tokio::spawn(write(w, started + RUN)))
        .collect();
    let mut total = 0;
    for writer in writers {
        total += writer.await.unwrap();
    }
    total as f64 / started.elapsed().as_secs_f64()
}

/// A tokio-postgres pool of one connection per writer, on a fresh table.
async fn tokio_postgres_pool(url: &str) -> deadpool_postgres::Pool {
    let config: tokio_postgres::Config = url.parse().unwrap();
    let manager = deadpool_postgres::Manager::new(config, tokio_postgres::NoTls);
    let pool = deadpool_postgres::Pool::builder(manager).max_size(WRITERS).build().unwrap();
    pool.get().await.unwrap().batch_execute(CREATE).await.unwrap();
    pool
}

async fn tokio_postgres_run(url: &str, run: &str) -> f64 {
    let pool = tokio_postgres_pool(url).await;
    measure(|w, deadline| {
        let (pool, run) = (pool.clone(), run.to_owned());
        async move {
            let mut client = pool.get().await.unwrap();
            let mut written = 0usize;
            let mut n = 0;
            while Instant::now() < deadline {
                let b = batch(&run, w, n);
                n += 1;
                let tx = client.transaction().await.unwrap();
                let rows = tx
                    .query(INSERT, &[&b.ids, &b.sources, &b.keys, &b.received, &b.headers, &b.bodies])
                    .await
                    .unwrap();
                tx.commit().await.unwrap();
                written += rows.len();
            }
            written
        }
    })
    .await
}

/// The other way to group-commit: the same batches, one INSERT statement per event (sent
/// back to back, pipelined by the driver) in one transaction.
async fn per_row_run(url: &str, run: &str) -> f64 {
    const ONE: &str = "INSERT INTO driver_bench (id, source, dedupe_key, received_at, headers, body) \
        VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING id";
    let pool = tokio_postgres_pool(url).await;
    measure(|w, deadline| {
        let (pool, run) = (pool.clone(), run.to_owned());
        async move {
            let mut client = pool.get().await.unwrap();
            let statement = client.prepare(ONE).await.unwrap();
            let mut written = 0usize;
            let mut n = 0;
            while Instant::now() < deadline {
                let b = batch(&run, w, n);
                n += 1;
                let tx = client.transaction().await.unwrap();
                use tokio_postgres::types::ToSql;
                let params: Vec<[&(dyn ToSql + Sync); 6]> = (0..BATCH)
                    .map(|i| {
                        [
                            &b.ids[i] as &(dyn ToSql + Sync),
                            &b.sources[i],
                            &b.keys[i],
                            &b.received[i],
                            &b.headers[i],
                            &b.bodies[i],
                        ]
                    })
                    .collect();
                let inserts = params.iter().map(|p| tx.query(&statement, p));
                for rows in futures_util::future::join_all(inserts).await {
                    written += rows.unwrap().len();
                }
                tx.commit().await.unwrap();
            }
            written
        }
    })
    .await
}

async fn sqlx_run(url: &str, run: &str) -> f64 {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(WRITERS as u32)
        .connect(url)
        .await
        .unwrap();
    sqlx::raw_sql(CREATE).execute(&pool).await.unwrap();
    measure(|w, deadline| {
        let (pool, run) = (pool.clone(), run.to_owned());
        async move {
            let mut written = 0usize;
            let mut n = 0;
            while Instant::now() < deadline {
                let b = batch(&run, w, n);
                n += 1;
                let mut tx = pool.begin().await.unwrap();
                let rows = sqlx::query(INSERT)
                    .bind(&b.ids)
                    .bind(&b.sources)
                    .bind(&b.keys)
                    .bind(&b.received)
                    .bind(&b.headers)
                    .bind(&b.bodies)
                    .fetch_all(&mut *tx)
                    .await
                    .unwrap();
                tx.commit().await.unwrap();
                written += rows.len();
            }
            written
        }
    })
    .await
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let (mut tp, mut sx, mut rows) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..3 {
        let a = tokio_postgres_run(&url, &format!("tp{round}")).await;
        let b = sqlx_run(&url, &format!("sx{round}")).await;
        let c = per_row_run(&url, &format!("pr{round}")).await;
        println!("round {round}: tokio-postgres {a:>8.0} events/s   sqlx {b:>8.0} events/s   tokio-postgres, a statement per event {c:>8.0} events/s");
        tp.push(a);
        sx.push(b);
        rows.push(c);
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (a, b, c) = (mean(&tp), mean(&sx), mean(&rows));
    println!("mean: tokio-postgres {a:.0} events/s, sqlx {b:.0} events/s, tokio-postgres/sqlx = {:.2}", a / b);
    println!("multi-row statement {a:.0} events/s, a statement per event {c:.0} events/s, multi-row/per-row = {:.2}", a / c);
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    client.batch_execute("DROP TABLE IF EXISTS driver_bench").await.unwrap();
}
