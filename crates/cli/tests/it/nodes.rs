//! Three `hookgate serve` nodes on one PostgreSQL database and one HTTP destination, a node
//! SIGKILLed mid-run and restarted: every acknowledged event is delivered, a provider event
//! sent to several nodes is stored once, and the only repeated webhook-ids are attempts the
//! killed node had made without recording them (two nodes never claim the same delivery).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::*;

const SECRET: &str = "nodes-secret";
const DESTINATION_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
/// The destination's concurrency on each node.
const CONCURRENCY: usize = 8;
// The destination's timeout is 10 s: on a loaded machine an attempt that timed out is sent
// again, a repeat that has nothing to do with the kill.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_one_killed_deliver_everything_once_per_claim() {
    let Some(db) = hookgate_store::testing::postgres().await else {
        return;
    };
    let (base, received) = receiver(DESTINATION_SECRET).await;
    let receiver = format!("{base}/hook");

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("hookgate.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n[store]\nurl = \"{}\"\n\
             [[source]]\nname = \"gh\"\npath = \"/gh\"\npreset = \"github\"\nsecret = \"{SECRET}\"\n\
             [[destination]]\nname = \"hook\"\nkind = \"http\"\nurl = \"{receiver}\"\nsecret = \"{DESTINATION_SECRET}\"\nconcurrency = {CONCURRENCY}\ntimeout = \"10s\"\n\
             [[route]]\nto = \"hook\"\n",
            db.url()
        ),
    )
    .unwrap();
    let mut nodes: Vec<Running> = (0..3).map(|_| start(dir.path(), &config, &[])).collect();
    let urls: Vec<String> = nodes.iter().map(|n| n.url("/gh")).collect();

    // Load spread over the nodes; every tenth provider event is also sent to the next node.
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for c in 0..12 {
        let (urls, acked, stop) = (urls.clone(), acked.clone(), stop.clone());
        clients.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let id = format!("c{c}-{n}");
                let node = (c + n) % 3;
                n += 1;
                let mut targets = vec![node];
                if n % 10 == 0 {
                    targets.push((node + 1) % 3);
                }
                for target in targets {
                    // A node being killed drops its requests: the provider retries later.
                    if let Ok(200) = send_github(&client, &urls[target], SECRET, &id).await {
                        acked.lock().unwrap().push(id.clone());
                    }
                }
            }
        }));
    }
    let acked_at_least = |n: usize| {
        let acked = acked.clone();
        async move {
            let started = Instant::now();
            while acked.lock().unwrap().len() < n {
                assert!(started.elapsed() < Duration::from_secs(60), "load stalled");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    };
    acked_at_least(1_500).await;
    nodes[1].child.kill().unwrap(); // SIGKILL, attempts in flight
    nodes[1].child.wait().unwrap();
    let killed_at = Instant::now();
    let before = acked.lock().unwrap().len();
    acked_at_least(before + 1_000).await;
    nodes[1] = start(dir.path(), &config, &[]);
    let before = acked.lock().unwrap().len();
    acked_at_least(before + 500).await;
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.await.unwrap();
    }

    let acked: Vec<String> = acked.lock().unwrap().clone();
    let started = Instant::now();
    loop {
        let delivered = delivered_to(&received, "hook");
        let missing = acked.iter().filter(|id| !delivered.contains(*id)).count();
        if missing == 0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "{missing} acknowledged events not delivered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // webhook-id → (provider event id, when each delivery of it arrived).
    let mut by_webhook_id: HashMap<String, (String, Vec<Instant>)> = HashMap::new();
    for d in received.lock().unwrap().iter() {
        by_webhook_id
            .entry(d.webhook_id.clone())
            .or_insert_with(|| (d.event.clone(), Vec::new()))
            .1
            .push(d.at);
    }
    // One webhook-id per provider event: stored once, whichever nodes it reached.
    let mut per_event: HashMap<&String, usize> = HashMap::new();
    for (event, _) in by_webhook_id.values() {
        *per_event.entry(event).or_default() += 1;
    }
    assert!(
        per_event.values().all(|n| *n == 1),
        "a provider event was stored twice"
    );
    // Repeats: only attempts the killed node had in flight, each first made before the kill.
    let repeated: Vec<(&String, &Vec<Instant>)> = by_webhook_id
        .iter()
        .filter(|(_, (_, times))| times.len() > 1)
        .map(|(id, (_, times))| (id, times))
        .collect();
    // The killed node's attempts whose outcome it had not recorded: those it was making
    // (at most CONCURRENCY) and those it had made and was about to record (a worker frees
    // its place before recording). Each is sent once before the kill and again after it.
    for (id, times) in &repeated {
        let from_kill: Vec<String> = times
            .iter()
            .map(|t| format!("{:+.3} s", signed_seconds(*t, killed_at)))
            .collect();
        assert!(
            times.len() == 2 && times[0] <= killed_at && times[1] > killed_at,
            "{id} was delivered again, not because of the kill (at {} from the kill)",
            from_kill.join(", ")
        );
    }
    println!(
        "{} webhook-ids delivered again after the kill",
        repeated.len()
    );
    // A replay written to the database by someone else (here the CLI, which is no node and
    // tells none) is picked up by some node: every node looks for due deliveries every
    // 500 ms. (No timing is asserted; the time it took is printed.)
    let event = acked[0].clone();
    let before = received.lock().unwrap().len();
    let replayed_at = Instant::now();
    let out = hookgate()
        .args([
            "events",
            "replay",
            "--provider-id",
            &event,
            "--include-delivered",
        ])
        .args(["--store", db.url()])
        .output()
        .unwrap();
    let (code, _, stderr) = outcome(out);
    assert_eq!(code, Some(0), "{stderr}");
    loop {
        let again = received.lock().unwrap()[before..]
            .iter()
            .any(|d| d.event == event);
        if again {
            println!(
                "replay delivered {:?} after the command started",
                replayed_at.elapsed()
            );
            break;
        }
        assert!(
            replayed_at.elapsed() < Duration::from_secs(30),
            "the replay was never picked up"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for node in nodes {
        assert_eq!(node.terminate().0, Some(0));
    }
}

/// `at` relative to `origin`, in seconds (negative before it).
fn signed_seconds(at: Instant, origin: Instant) -> f64 {
    if at >= origin {
        (at - origin).as_secs_f64()
    } else {
        -(origin - at).as_secs_f64()
    }
}
