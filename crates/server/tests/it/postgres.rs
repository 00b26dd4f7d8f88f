//! The gateway on PostgreSQL: when the database becomes unreachable under load, ingest
//! answers 503 + `Retry-After`, recovers by itself when it returns, and loses nothing it
//! acknowledged.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::*;

const GITHUB: &str =
    "[[source]]\nname = \"gh\"\npath = \"/gh\"\npreset = \"github\"\nsecret = \"s\"";

/// A TCP proxy to the database that can cut every connection and refuse new ones.
struct Proxy {
    addr: std::net::SocketAddr,
    cut: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Proxy {
    async fn start(upstream: String) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let cut = Arc::new(AtomicBool::new(false));
        let open: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>> = Default::default();
        let (is_cut, tasks) = (cut.clone(), open.clone());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if is_cut.load(Ordering::SeqCst) {
                    continue; // dropped: the connection is refused
                }
                let upstream = upstream.clone();
                tasks.lock().unwrap().push(tokio::spawn(async move {
                    if let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                }));
            }
        });
        Proxy { addr, cut, open }
    }

    /// The database is gone: open connections die, new ones are refused.
    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for task in self.open.lock().unwrap().drain(..) {
            task.abort();
        }
    }

    fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_answers_503_while_the_database_is_unreachable_and_recovers_by_itself() {
    let Some(db) = hookgate_store::testing::postgres().await else {
        return;
    };
    let direct = db.url().to_owned();
    let (host_port, rest) = {
        let after = direct.split_once('@').unwrap().1;
        after.split_once('/').unwrap()
    };
    let proxy = Proxy::start(host_port.to_owned()).await;
    let through = direct.replace(host_port, &proxy.addr.to_string());
    let _ = rest;
    let gw = Arc::new(spawn_on(GITHUB, &through).await);

    // Load: 8 senders, each event acknowledged or answered 503 + Retry-After, never hung.
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let unavailable = Arc::new(Mutex::new(0usize));
    let stop = Arc::new(AtomicBool::new(false));
    let mut senders = Vec::new();
    for c in 0..8 {
        let (gw, acked, unavailable, stop) =
            (gw.clone(), acked.clone(), unavailable.clone(), stop.clone());
        senders.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let id = format!("c{c}-{n}");
                n += 1;
                let started = Instant::now();
                let (status, headers, text) =
                    send_signed(&gw, "gh", "/gh", b"{}", &[("X-GitHub-Delivery", &id)]).await;
                assert!(
                    started.elapsed() < Duration::from_secs(15),
                    "a request hung while the database was away"
                );
                match status {
                    200 => acked.lock().unwrap().push(id),
                    503 => {
                        assert!(headers.contains_key("retry-after"), "{text}");
                        *unavailable.lock().unwrap() += 1;
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    other => panic!("{id}: {other} {text}"),
                }
            }
        }));
    }
    let count = |v: &Arc<Mutex<Vec<String>>>| v.lock().unwrap().len();
    let wait_for = |what: &'static str, done: Box<dyn Fn() -> bool + Send>| async move {
        let started = Instant::now();
        while !done() {
            assert!(started.elapsed() < Duration::from_secs(30), "{what}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    let a = acked.clone();
    wait_for("ingest before the cut", Box::new(move || count(&a) >= 200)).await;

    proxy.cut();
    let refused_before = *unavailable.lock().unwrap();
    let u = unavailable.clone();
    wait_for(
        "503s while the database is unreachable",
        Box::new(move || *u.lock().unwrap() >= refused_before + 20),
    )
    .await;
    let acked_during_cut = count(&acked);

    proxy.restore();
    let a = acked.clone();
    wait_for(
        "recovery once the database is back",
        Box::new(move || count(&a) >= acked_during_cut + 200),
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    for sender in senders {
        sender.await.unwrap();
    }

    // Nothing answered 2xx is lost.
    let store = hookgate_store::Store::open(&direct, &Default::default())
        .await
        .unwrap();
    let stored: HashSet<String> = store
        .replay_candidates(hookgate_store::ListFilter::default())
        .await
        .unwrap()
        .into_iter()
        .filter_map(|(e, _)| e.summary.dedupe_key)
        .collect();
    let lost: Vec<String> = acked
        .lock()
        .unwrap()
        .iter()
        .filter(|id| !stored.contains(*id))
        .cloned()
        .collect();
    assert!(lost.is_empty(), "acknowledged but not stored: {lost:?}");
    store.close().await;
    Arc::try_unwrap(gw).ok().unwrap().stop().await;
}
