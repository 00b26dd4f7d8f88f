//! Golden tests: `--help` of every command and the output of `events list` / `show`.
//! `UPDATE_GOLDEN=1 cargo test -p hookgate golden` rewrites the files after a deliberate change.

use std::path::PathBuf;

use crate::support::*;

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn check(name: &str, actual: &str) {
    let path = golden_dir().join(format!("{name}.txt"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(golden_dir()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("{} missing: run with UPDATE_GOLDEN=1", path.display()));
    assert_eq!(actual, expected, "{name} differs from {}", path.display());
}

#[test]
fn help_texts() {
    let commands: &[&[&str]] = &[
        &[],
        &["serve"],
        &["check-config"],
        &["send"],
        &["sign"],
        &["verify"],
        &["keygen"],
        &["oidc-issuer"],
        &["events"],
        &["events", "list"],
        &["events", "show"],
        &["events", "replay"],
        &["completions"],
    ];
    for args in commands {
        let out = hookgate().args(*args).arg("--help").output().unwrap();
        assert!(out.status.success());
        let name = if args.is_empty() {
            "help".to_owned()
        } else {
            format!("help-{}", args.join("-"))
        };
        check(&name, &String::from_utf8(out.stdout).unwrap());
    }
}

#[tokio::test]
async fn events_list_and_show() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("events.db").display());
    let store = hookgate_store::Store::open(&url, &Default::default())
        .await
        .unwrap();
    // Ids encode their arrival millisecond in their first 48 bits (UUIDv7), as the server
    // makes them: 0x019aaaac2600 = 1_763_800_000_000.
    let events = [
        (
            "019aaaac-2600-0000-0000-000000000001",
            "github",
            Some("d-1"),
            Some("push"),
            1_763_800_000_000i64,
            &b"{\"ref\":\"main\"}"[..],
        ),
        (
            "019aaaad-1254-0000-0000-000000000002",
            "stripe",
            Some("evt_1"),
            Some("payment_intent.succeeded"),
            1_763_800_060_500,
            &b"{\"id\":\"evt_1\"}"[..],
        ),
        (
            "019aaaad-fbba-0000-0000-000000000003",
            "entrupy",
            None,
            None,
            1_763_800_120_250,
            &[0xff, 0xfe, 0x00][..],
        ),
    ];
    for (id, source, key, topic, at, body) in events {
        let stored = store
            .insert(hookgate_store::NewEvent {
                id: hookgate_store::EventId(id.into()),
                source: source.into(),
                dedupe_key: key.map(str::to_owned),
                topic: topic.map(str::to_owned),
                tenant: None,
                provider_timestamp: None,
                received_at_ms: at,
                method: "POST".into(),
                path: format!("/{source}"),
                headers: vec![("content-type".into(), "application/json".into()), ("x-hub-signature-256".into(), "[redacted]".into())],
                body: body.to_vec().into(),
                verification: serde_json::json!({"scheme": "hmac", "key_id": "secret#0", "issuer": null, "subject": null}),
                destinations: Vec::new(),
            })
            .await
            .unwrap();
        assert!(matches!(stored, hookgate_store::Stored::New { .. }));
    }
    // A routed event whose body and topic try to drive the terminal, with a failed and a
    // successful attempt.
    let hostile = "019aaaae-e41a-0000-0000-000000000004";
    store
        .insert(hookgate_store::NewEvent {
            id: hookgate_store::EventId(hostile.into()),
            source: "custom".into(),
            dedupe_key: Some("x\u{1b}]0;pwned\u{7}".into()),
            topic: Some("orders/\u{1b}[2J".into()),
            tenant: Some("acme".into()),
            provider_timestamp: None,
            received_at_ms: 1_763_800_180_000,
            method: "POST".into(),
            path: "/custom".into(),
            headers: vec![("x-note".into(), "\u{1b}[31mred".into())],
            body: b"{\"a\":\"\x1b[2J\x1b]0;title\x07\"}\n".to_vec().into(),
            verification: serde_json::json!({"scheme": "hmac"}),
            destinations: vec![hookgate_store::NewDelivery::queued("orders")],
        })
        .await
        .unwrap();
    for (at, status, next) in [
        (
            1_763_800_181_000i64,
            hookgate_store::DeliveryStatus::Pending,
            Some(503),
        ),
        (
            1_763_800_190_000,
            hookgate_store::DeliveryStatus::Delivered,
            Some(204),
        ),
    ] {
        let claimed = store.claim("orders", 1, 30_000, "golden").await.unwrap();
        store
            .complete(hookgate_store::Attempt {
                delivery_id: claimed[0].delivery_id,
                owner: "golden".into(),
                started_at_ms: at,
                duration_ms: 12,
                status_code: next,
                next_status: status,
                // Due again at once: the second claim follows.
                retry_in_ms: 0,
                response: None,
                error: (status != hookgate_store::DeliveryStatus::Delivered)
                    .then(|| "HTTP 503".to_owned()),
            })
            .await
            .unwrap();
    }
    store.close().await;
    let run = |args: &[&str]| {
        let out = hookgate()
            .args(args)
            .args(["--store", &url])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    check("events-list", &run(&["events", "list"]));
    check(
        "events-list-source",
        &run(&["events", "list", "--source", "stripe"]),
    );
    check(
        "events-list-json",
        &run(&["events", "list", "--topic", "pay*", "--json"]),
    );
    check(
        "events-list-since",
        &run(&["events", "list", "--since", "2025-11-22T08:27:00Z"]),
    );
    check(
        "events-show",
        &run(&["events", "show", "019aaaac-2600-0000-0000-000000000001"]),
    );
    let shown = run(&["events", "show", hostile]);
    assert!(
        !shown.contains('\u{1b}') && !shown.contains('\u{7}'),
        "{shown}"
    );
    check("events-show-deliveries", &shown);
    check(
        "events-show-by-provider-id",
        &run(&[
            "events",
            "show",
            "--source",
            "stripe",
            "--provider-id",
            "evt_1",
        ]),
    );
    check(
        "events-show-binary-json",
        &run(&[
            "events",
            "show",
            "019aaaad-fbba-0000-0000-000000000003",
            "--json",
        ]),
    );
    let out = hookgate()
        .args([
            "events",
            "show",
            "01a20000-0000-7000-8000-00000000dead",
            "--store",
            &url,
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim_end(),
        "error: no event 01a20000-0000-7000-8000-00000000dead"
    );
}
