//! Nothing acknowledged is lost: many concurrent clients, the gateway SIGKILLed mid-load,
//! restarted; every event that got a 2xx is in the store, none is stored twice. Several rounds.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::*;

const SECRET: &str = "durability-secret";
const CLIENTS: usize = 32;

async fn load(
    url: String,
    round: usize,
    acked: Arc<Mutex<Vec<String>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
) {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CLIENTS)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let (client, url, acked, stop) = (client.clone(), url.clone(), acked.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let id = format!("r{round}-c{c}-{n}");
                n += 1;
                let body = format!(r#"{{"delivery":"{id}","padding":"{}"}}"#, "x".repeat(900));
                let sent = client
                    .post(&url)
                    .header("X-GitHub-Delivery", &id)
                    .header("X-GitHub-Event", "push")
                    .header(
                        "X-Hub-Signature-256",
                        github_signature(SECRET, body.as_bytes()),
                    )
                    .body(body)
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status().is_success() => acked.lock().unwrap().push(id),
                    Ok(r) => panic!("unexpected status {}", r.status()),
                    // The gateway was killed under us: this request was never acknowledged.
                    Err(_) => break,
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_load_loses_no_acknowledged_event() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("hookgate.toml");
    std::fs::write(
        &config,
        format!("[server]\nlisten = \"127.0.0.1:0\"\n[store]\nurl = \"sqlite://./data/hookgate.db\"\n[[source]]\nname = \"gh\"\npath = \"/gh\"\npreset = \"github\"\nsecret = \"{SECRET}\"\n"),
    )
    .unwrap();
    let mut all_acked: Vec<String> = Vec::new();
    for round in 0..3 {
        let mut running = start(dir.path(), &config, &[]);
        let acked = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let load = tokio::spawn(load(running.url("/gh"), round, acked.clone(), stop.clone()));
        // Kill at a different moment each round, mid-load.
        let wanted = 300 + round * 250;
        while acked.lock().unwrap().len() < wanted {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        running.child.kill().unwrap(); // SIGKILL
        running.child.wait().unwrap();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        load.await.unwrap();
        let acked = acked.lock().unwrap().clone();
        assert!(acked.len() >= wanted);
        all_acked.extend(acked);

        // Restart on the same database: every acknowledged event is there, exactly once.
        let restarted = start(dir.path(), &config, &[]);
        let events = stored_events(&dir.path().join("data/hookgate.db"));
        let stored: HashSet<String> = events
            .iter()
            .filter_map(|(e, _)| e.summary.dedupe_key.clone())
            .collect();
        assert_eq!(events.len(), stored.len(), "an event is stored twice");
        let missing: Vec<&String> = all_acked
            .iter()
            .filter(|id| !stored.contains(*id))
            .collect();
        assert!(
            missing.is_empty(),
            "round {round}: {} acknowledged events lost, e.g. {:?}",
            missing.len(),
            &missing[..missing.len().min(5)]
        );

        // A provider's retry of an acknowledged event is acknowledged, not stored again.
        let retry = &all_acked[all_acked.len() / 2];
        let body = format!(
            r#"{{"delivery":"{retry}","padding":"{}"}}"#,
            "x".repeat(900)
        );
        let response = reqwest::Client::new()
            .post(restarted.url("/gh"))
            .header("X-GitHub-Delivery", retry)
            .header(
                "X-Hub-Signature-256",
                github_signature(SECRET, body.as_bytes()),
            )
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["hookgate-duplicate"], "true");
        let after = stored_events(&dir.path().join("data/hookgate.db")).len();
        assert_eq!(after, events.len());
        let (code, _) = restarted.terminate();
        assert_eq!(code, Some(0));
    }
}
