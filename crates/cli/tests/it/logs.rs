//! `--log-format json`: every line one JSON object; refusals and failed attempts warned with
//! their reason; a summary every 10 s instead of a line per event; no Rust `Debug` spellings.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::*;

#[tokio::test]
async fn json_logs_are_one_object_a_line_with_summaries_and_warnings() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("hookgate.toml");
    std::fs::write(
        &config,
        r#"
[server]
listen = "127.0.0.1:0"

[store]
url = "sqlite://./data/hookgate.db"

[[source]]
name = "gh"
path = "/gh"
preset = "github"
secret = "s"

[[destination]]
name = "broken"
kind = "command"
command = ["/bin/sh", "-c", "echo 'first line' >&2; echo 'database is locked' >&2; exit 3"]
max_attempts = 2
backoff = ["100ms"]

[[route]]
to = ["broken"]
"#,
    )
    .unwrap();
    let mut child = hookgate()
        .args(["serve", "--log-format", "json", "--config"])
        .arg(&config)
        .current_dir(dir.path())
        .env("HOOKGATE_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut lines: Vec<serde_json::Value> = Vec::new();
    let next =
        |lines: &mut Vec<serde_json::Value>, timeout: Duration| -> Option<serde_json::Value> {
            let line = rx.recv_timeout(timeout).ok()?;
            let value: serde_json::Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("not one JSON object: {line:?}: {e}"));
            assert!(value.is_object(), "{line}");
            assert!(!line.contains("Some("), "a Debug spelling: {line}");
            lines.push(value.clone());
            Some(value)
        };
    let addr = loop {
        let line = next(&mut lines, Duration::from_secs(20)).expect("started");
        let message = line["message"].as_str().unwrap_or_default();
        if let Some(rest) = message.split("listening on http://").nth(1) {
            break rest.to_owned();
        }
    };
    let body = br#"{"zen":"ok"}"#;
    for i in 0..3 {
        let response = reqwest::Client::new()
            .post(format!("http://{addr}/gh"))
            .header("X-Hub-Signature-256", github_signature("s", body))
            .header("X-GitHub-Delivery", format!("d-{i}"))
            .body(body.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    let kid = "k".repeat(12_000);
    let response = reqwest::Client::new()
        .post(format!("http://{addr}/gh"))
        .header("X-Hub-Signature-256", "sha256=00")
        .header("X-Kid", kid)
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    // Wait for the 10 s summary of the source and the destination.
    let deadline = Instant::now() + Duration::from_secs(30);
    let summarised = |lines: &[serde_json::Value], key: &str| {
        lines
            .iter()
            .any(|l| l["message"] == "last 10s" && l.get(key).is_some())
    };
    while !(summarised(&lines, "source") && summarised(&lines, "destination")) {
        assert!(Instant::now() < deadline, "no summary lines: {lines:#?}");
        next(&mut lines, Duration::from_secs(1));
    }
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    assert_eq!(child.wait().unwrap().code(), Some(0));
    while next(&mut lines, Duration::from_millis(500)).is_some() {}

    let source = lines
        .iter()
        .find(|l| l["message"] == "last 10s" && l["source"] == "gh")
        .unwrap();
    assert_eq!(
        (source["accepted"].as_u64(), source["refused"].as_u64()),
        (Some(3), Some(1))
    );
    let destination = lines
        .iter()
        .find(|l| l["message"] == "last 10s" && l["destination"] == "broken")
        .unwrap();
    assert_eq!(
        destination["failed"].as_u64().unwrap() + destination["dead"].as_u64().unwrap(),
        6
    );
    // No line per stored event at info.
    assert!(!lines.iter().any(|l| l["message"] == "stored"));
    let refused = lines
        .iter()
        .find(|l| l["message"] == "request refused")
        .expect("a warning for the refusal");
    assert_eq!(refused["level"], "WARN");
    assert_eq!(refused["reason"], "bad_signature");
    assert_eq!(refused["source"], "gh");
    let retry = lines
        .iter()
        .find(|l| l["message"] == "delivery failed; will retry")
        .expect("a warning for the failed attempt");
    assert_eq!(retry["level"], "WARN");
    assert!(
        retry["next_attempt"].as_str().unwrap().ends_with('Z'),
        "{retry}"
    );
    let error = retry["error"].as_str().unwrap();
    assert!(
        error.starts_with("exit code 3: first line | database is locked"),
        "{error}"
    );
    let dead = lines
        .iter()
        .find(|l| l["message"] == "delivery dead; kept for replay")
        .expect("a warning for the dead delivery");
    assert_eq!(dead["attempt"], 2);
    // Nothing is longer than a few KB, whatever the request carried.
    for line in &lines {
        assert!(line.to_string().len() < 4096, "{line}");
    }
}
