//! SIGHUP with the real binary, under load: a secret rotated, a destination added then
//! removed, a broken file refused, and no request dropped or refused on the way.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::*;

const DESTINATION_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn config(secrets: &[&str], destinations: &[&str], receiver: &str) -> String {
    let secrets: Vec<String> = secrets.iter().map(|s| format!("\"{s}\"")).collect();
    let mut text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[store]\nurl = \"sqlite://./data/hookgate.db\"\n\
         [[source]]\nname = \"gh\"\npath = \"/gh\"\npreset = \"github\"\nsecrets = [{}]\n",
        secrets.join(", ")
    );
    for name in destinations {
        text.push_str(&format!(
            "[[destination]]\nname = \"{name}\"\nkind = \"http\"\nurl = \"{receiver}/{name}\"\nsecret = \"{DESTINATION_SECRET}\"\n"
        ));
    }
    let to: Vec<String> = destinations.iter().map(|d| format!("\"{d}\"")).collect();
    text.push_str(&format!("[[route]]\nto = [{}]\n", to.join(", ")));
    text
}

fn hangup(running: &Running) {
    let status = std::process::Command::new("kill")
        .args(["-HUP", &running.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Waits (off the async workers) for a log line containing `needle`; returns it.
async fn line_with(log: &mut Option<mpsc::Receiver<String>>, needle: &str) -> String {
    let receiver = log.take().unwrap();
    let needle = needle.to_owned();
    let (receiver, line) = tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match receiver.recv_timeout(left) {
                Ok(line) if line.contains(&needle) => return (receiver, line),
                Ok(_) => {}
                Err(_) => panic!("no log line with `{needle}`"),
            }
        }
    })
    .await
    .unwrap();
    *log = Some(receiver);
    line
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_under_load_rotates_a_secret_and_swaps_destinations_dropping_nothing() {
    let (receiver, delivered) = receiver(DESTINATION_SECRET).await;

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hookgate.toml");
    std::fs::write(&file, config(&["old-secret"], &["orders"], &receiver)).unwrap();
    let mut running = start(dir.path(), &file, &[]);
    let url = running.url("/gh");
    let mut log = Some(std::mem::replace(&mut running.log, mpsc::channel().1));

    // Load on kept-alive connections, signed with the secret every configuration below
    // (but the last) accepts: each request must be answered 200, reload or not.
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for c in 0..8 {
        let (url, acked, failures, stop) =
            (url.clone(), acked.clone(), failures.clone(), stop.clone());
        clients.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let id = format!("c{c}-{n}");
                n += 1;
                match send_github(&client, &url, "old-secret", &id).await {
                    Ok(200) => acked.lock().unwrap().push(id),
                    Ok(status) => failures.lock().unwrap().push(format!("{id}: {status}")),
                    Err(e) => failures.lock().unwrap().push(format!("{id}: {e}")),
                }
            }
        }));
    }
    let acked_at_least = |n: usize| {
        let acked = acked.clone();
        async move {
            let started = Instant::now();
            while acked.lock().unwrap().len() < n {
                assert!(started.elapsed() < Duration::from_secs(30), "load stalled");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    };
    acked_at_least(200).await;

    // Rotation begins: the new secret is added beside the old one, and a destination too.
    std::fs::write(
        &file,
        config(
            &["new-secret", "old-secret"],
            &["orders", "audit"],
            &receiver,
        ),
    )
    .unwrap();
    hangup(&running);
    let line = line_with(&mut log, "configuration reloaded").await;
    assert!(
        line.contains("sources ~gh") && line.contains("destinations +audit"),
        "{line}"
    );
    let before = acked.lock().unwrap().len();
    acked_at_least(before + 200).await;
    let client = reqwest::Client::new();
    assert_eq!(
        send_github(&client, &url, "new-secret", "rotated-1")
            .await
            .unwrap(),
        200
    );
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }
    assert_eq!(
        failures.lock().unwrap().as_slice(),
        &[] as &[String],
        "requests refused or dropped across the reload"
    );

    // What arrived while `audit` was configured reaches it.
    let started = Instant::now();
    while !delivered_to(&delivered, "audit").contains("rotated-1") {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "audit got nothing"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Rotation ends: the old secret goes, and so does the added destination.
    std::fs::write(&file, config(&["new-secret"], &["orders"], &receiver)).unwrap();
    hangup(&running);
    let line = line_with(&mut log, "configuration reloaded").await;
    assert!(line.contains("destinations -audit"), "{line}");
    assert_eq!(
        send_github(&client, &url, "old-secret", "old-after-rotation")
            .await
            .unwrap(),
        401
    );
    assert_eq!(
        send_github(&client, &url, "new-secret", "rotated-2")
            .await
            .unwrap(),
        200
    );

    // A file that does not validate is refused whole; the running configuration stays.
    std::fs::write(
        &file,
        "[[source]]\nname = \"gh\"\npath = \"/gh\"\npreset = \"github\"\nsecret = \"${HOOKGATE_TEST_RELOAD_UNSET}\"\n",
    )
    .unwrap();
    hangup(&running);
    let line = line_with(&mut log, "configuration not reloaded").await;
    assert!(
        line.contains("HOOKGATE_TEST_RELOAD_UNSET is not set"),
        "{line}"
    );
    assert_eq!(
        send_github(&client, &url, "new-secret", "rotated-3")
            .await
            .unwrap(),
        200
    );

    // Every acknowledged event reaches `orders`; `audit` got what arrived while it was
    // configured, and nothing after it was removed.
    let mut expected: Vec<String> = acked.lock().unwrap().clone();
    expected.extend(["rotated-1", "rotated-2", "rotated-3"].map(String::from));
    let started = Instant::now();
    loop {
        let orders = delivered_to(&delivered, "orders");
        let missing = expected.iter().filter(|id| !orders.contains(*id)).count();
        if missing == 0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{missing} acknowledged events not delivered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let audit = delivered_to(&delivered, "audit");
    assert!(
        !audit.contains("rotated-2") && !audit.contains("rotated-3"),
        "{audit:?}"
    );
    running.log = log.take().unwrap();
    let (code, _) = running.terminate();
    assert_eq!(code, Some(0));
}
