//! The commands' behaviour as a user meets it: check-config, the one-line start, signals.

use crate::support::*;

fn repo() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn every_shipped_configuration_is_valid() {
    let mut files: Vec<_> = std::fs::read_dir(repo().join("examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.push(repo().join("hookgate.toml"));
    assert!(files.len() >= 8);
    for file in files {
        let output = hookgate()
            .args(["check-config", "--config"])
            .arg(&file)
            .envs([
                ("WEBHOOK_ENDPOINT_SECRET_KEY", "x"),
                ("FREISPACE_SECRET", "x"),
                ("QI_API_CLIENT_KEY", "x"),
                ("TRIVIALSEC_SECRET", "x"),
                ("CUSTOM_SECRET", "x"),
                ("CUSTOM_SECRET_PREVIOUS", "y"),
                ("GITHUB_WEBHOOK_SECRET", "x"),
                (
                    "ORDERS_SIGNING_SECRET",
                    "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                ),
                (
                    "HOOKGATE_DESTINATION_SECRET",
                    "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                ),
                (
                    "HOOKGATE_DB_URL",
                    "postgres://hookgate:secret@db.internal:5432/hookgate",
                ),
            ])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}: {}",
            file.display(),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

#[test]
fn check_config_names_the_file_and_key_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(&file, "[[source]]\nname = \"x\"\npath = \"/x\"\n[source.verify]\nkind = \"hmac\"\nheader = \"X\"\nsecret = \"s\"\nsigned = \"{bdy}\"\n[[destination]]\nname = \"d\"\nkind = \"file\"\n").unwrap();
    let output = hookgate()
        .args(["check-config", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with(&format!(
            "error: {}: source[0] (x).verify.signed: unknown placeholder `{{bdy}}`",
            file.display()
        )),
        "{stderr}"
    );
    // Every error in one run, each on its own line.
    assert!(
        stderr.contains(&format!(
            "\nerror: {}: destination[0] (d).path: a file destination needs `path`",
            file.display()
        )),
        "{stderr}"
    );
    // serve refuses the same file and starts nothing.
    let output = hookgate()
        .args(["serve", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn one_line_start_says_how_to_set_the_secret() {
    let output = hookgate()
        .args(["serve", "--preset", "entrupy", "--listen", "127.0.0.1:0"])
        .env_remove("WEBHOOK_ENDPOINT_SECRET_KEY")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("environment variable WEBHOOK_ENDPOINT_SECRET_KEY is not set; set it with: export WEBHOOK_ENDPOINT_SECRET_KEY="), "{stderr}");
}

#[tokio::test]
async fn one_line_start_serves_the_seed_and_sigterm_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = hookgate()
        .args(["serve", "--preset", "entrupy", "--listen", "127.0.0.1:0"])
        .current_dir(dir.path())
        .env("WEBHOOK_ENDPOINT_SECRET_KEY", "k")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stderr));
    let addr = loop {
        let line = lines.next().expect("hookgate exited early").unwrap();
        if let Some(rest) = line.split("listening on http://").nth(1) {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };
    let body = r#"{"event":{"id":"1"}}"#;
    let sig = hookgate_verify::Encoding::Base64
        .encode(&hookgate_verify::HashAlgorithm::Sha256.mac_of(b"k", body.as_bytes()));
    let client = reqwest::Client::new();
    let ok = client
        .post(format!("http://{addr}/notify"))
        .header("Entrupy-Signature", format!("SHA256:{sig}"))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(
        (ok.status().as_u16(), ok.text().await.unwrap().as_str()),
        (200, r#"{"status":"ok"}"#)
    );
    let health = client
        .get(format!("http://{addr}/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.text().await.unwrap(), r#"{"status":"ok"}"#);
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(0));
    assert!(
        dir.path().join("hookgate-data/hookgate.db").exists(),
        "the embedded store is created on first start"
    );
}

#[test]
fn demo_secrets_are_announced() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        repo().join("hookgate.toml"),
        dir.path().join("hookgate.toml"),
    )
    .unwrap();
    let toml = std::fs::read_to_string(dir.path().join("hookgate.toml"))
        .unwrap()
        .replace("127.0.0.1:8080", "127.0.0.1:0");
    std::fs::write(dir.path().join("hookgate.toml"), toml).unwrap();
    let running = start(dir.path(), &dir.path().join("hookgate.toml"), &[]);
    let (code, log) = running.terminate();
    assert_eq!(code, Some(0));
    let warnings: Vec<&String> = log
        .iter()
        .filter(|l| l.contains("uses a DEMO secret"))
        .collect();
    assert!(!warnings.is_empty(), "{log:?}");
    // Each names the variable to set.
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("set GITHUB_WEBHOOK_SECRET before exposing")),
        "{warnings:?}"
    );
    // The start-up log says what runs where.
    assert!(log.iter().any(|l| l.contains("health: http://")), "{log:?}");
    assert!(
        !log.iter().any(|l| l.contains("preset=\"")),
        "no Debug quoting: {log:?}"
    );
}

#[test]
fn check_config_summarises_and_checks_programs_and_the_store_directory() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hookgate.toml");
    let script = dir.path().join("handle.sh");
    std::fs::write(&script, "#!/bin/sh\nexit 0\n").unwrap();
    let config = |program: &str, store: &str| {
        format!(
            "[store]\nurl = \"sqlite://{store}\"\n\
             [[source]]\nname = \"gh\"\npath = \"/gh\"\npreset = \"github\"\nsecret = \"s\"\n\
             [[destination]]\nname = \"run\"\nkind = \"command\"\ncommand = [\"{program}\", \"{{json:/ref}}\"]\n\
             [[route]]\nsource = \"gh\"\nto = [\"run\"]\n"
        )
    };
    let check = |text: String| {
        std::fs::write(&file, text).unwrap();
        outcome(
            hookgate()
                .args(["check-config", "--config"])
                .arg(&file)
                .current_dir("/")
                .output()
                .unwrap(),
        )
    };
    // Not executable yet; the relative path is relative to the configuration file.
    let (code, _, stderr) = check(config("./handle.sh", "./data/h.db"));
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("destination[0] (run).command[0]")
            && stderr.contains("is not an executable file"),
        "{stderr}"
    );
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let (code, stdout, stderr) = check(config("./handle.sh", "./data/h.db"));
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.contains(&format!(
            "store: sqlite://{}",
            dir.path().join("./data/h.db").display()
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains("source gh: POST /gh (preset github, hmac)"),
        "{stdout}"
    );
    assert!(stdout.contains("destination run: command"), "{stdout}");
    assert!(
        stdout.contains("route: source gh topic * → run"),
        "{stdout}"
    );
    let (code, _, stderr) = check(config("no-such-program-hookgate", "./data/h.db"));
    assert_eq!(code, Some(2));
    assert!(stderr.contains("is not found in PATH"), "{stderr}");
    let (code, _, stderr) = check(config("./handle.sh", "/proc/hookgate/h.db"));
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("store.url: cannot write in /proc"),
        "{stderr}"
    );
    let (code, _, stderr) = check(config("{header:X-Program}", "./data/h.db"));
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("the program must be a literal path"),
        "{stderr}"
    );
}

#[tokio::test]
async fn events_need_only_the_store_from_a_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hookgate.toml");
    std::fs::write(
        &file,
        "[store]\nurl = \"sqlite://./data/hookgate.db\"\n\
         [[source]]\nname = \"gh\"\npath = \"/gh\"\npreset = \"github\"\nsecret = \"${HOOKGATE_TEST_UNSET_SECRET}\"\n\
         [[destination]]\nname = \"orders\"\nkind = \"http\"\nurl = \"http://127.0.0.1:9/\"\nsecret = \"${HOOKGATE_TEST_UNSET_DESTINATION_SECRET}\"\n\
         [[route]]\nto = [\"orders\"]\n",
    )
    .unwrap();
    let store = hookgate_store::Store::open(
        &format!("sqlite://{}", dir.path().join("data/hookgate.db").display()),
        &Default::default(),
    )
    .await
    .unwrap();
    store
        .insert(unrouted(hookgate_store::EventId::new().0, "d-1"))
        .await
        .unwrap();
    store.close().await;
    let run = |args: &[&str]| {
        hookgate()
            .arg("events")
            .args(args)
            .arg("--config")
            .arg(&file)
            .current_dir(dir.path())
            .env_remove("HOOKGATE_TEST_UNSET_SECRET")
            .output()
            .unwrap()
    };
    let listed = run(&["list"]);
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    assert!(String::from_utf8_lossy(&listed.stdout).contains("d-1"));
    // The routes are read (the unrouted event would now go to `orders`), secrets are not.
    let planned = run(&["replay", "--status", "unrouted", "--dry-run"]);
    assert!(
        planned.status.success(),
        "{}",
        String::from_utf8_lossy(&planned.stderr)
    );
    let out = String::from_utf8_lossy(&planned.stdout);
    assert!(
        out.ends_with("would replay 1 deliveries of 1 event(s)\n"),
        "{out}"
    );
    // `serve` still needs them, and says which.
    let serve = hookgate()
        .args(["check-config", "--config"])
        .arg(&file)
        .env_remove("HOOKGATE_TEST_UNSET_SECRET")
        .output()
        .unwrap();
    assert_eq!(serve.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&serve.stderr).contains("is not set"));
}

#[tokio::test]
async fn events_prune_deletes_what_is_past_retention() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("p.db").display());
    let store = hookgate_store::Store::open(&url, &Default::default())
        .await
        .unwrap();
    // Ids carry arrival times (UUIDv7): one event from 2001, one from now.
    let old = uuid_at(1_000_000_000_000);
    for (id, key) in [
        (old.clone(), "old"),
        (hookgate_store::EventId::new().0, "new"),
    ] {
        store.insert(unrouted(id, key)).await.unwrap();
    }
    store.close().await;
    let run = |args: &[&str]| {
        outcome(
            hookgate()
                .arg("events")
                .args(args)
                .args(["--store", &url, "--config", "/nonexistent.toml"])
                .output()
                .unwrap(),
        )
    };
    let (code, _, stderr) = run(&["prune"]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("no retention"), "{stderr}");
    let (code, stdout, _) = run(&["prune", "--older-than", "30d", "--dry-run"]);
    assert_eq!(code, Some(0));
    assert!(
        stdout.ends_with("would prune 1 finished event(s) past retention\n"),
        "{stdout}"
    );
    let (_, stdout, _) = run(&["prune", "--older-than", "30d"]);
    assert!(stdout.starts_with("gh "), "{stdout}");
    assert!(
        stdout.ends_with("pruned 1 finished event(s) past retention\n"),
        "{stdout}"
    );
    let (_, listed, _) = run(&["list"]);
    assert!(
        listed.contains("new") && !listed.contains("old"),
        "{listed}"
    );
}

fn uuid_at(ms: u64) -> String {
    uuid::Uuid::from_u128((u128::from(ms) << 80) | 7).to_string()
}

#[test]
fn a_failed_send_says_why() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = hookgate()
        .args([
            "send",
            &format!("http://127.0.0.1:{port}/gh"),
            "--preset",
            "github",
            "--secret",
            "s",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Connection refused"), "{stderr}");
}

/// An unrouted event of source `gh` with hookgate id `id` and provider id `key`.
fn unrouted(id: String, key: &str) -> hookgate_store::NewEvent {
    hookgate_store::NewEvent {
        id: hookgate_store::EventId(id),
        source: "gh".into(),
        dedupe_key: Some(key.into()),
        topic: None,
        tenant: None,
        provider_timestamp: None,
        received_at_ms: 1,
        method: "POST".into(),
        path: "/gh".into(),
        headers: Vec::new(),
        body: b"{}".to_vec().into(),
        verification: serde_json::json!({}),
        destinations: Vec::new(),
    }
}

#[test]
fn sign_prints_a_curl_command_a_shell_runs_as_signed() {
    if std::process::Command::new("curl")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped sign_prints_a_curl_command…: curl is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("hookgate.toml");
    std::fs::write(
        &config,
        "[server]\nlisten = \"127.0.0.1:0\"\n[store]\nurl = \"sqlite://./data/h.db\"\n\
         [[source]]\nname = \"gh\"\npath = \"/gh\"\npreset = \"github\"\nsecret = \"it's a secret\"\n",
    )
    .unwrap();
    let running = start(dir.path(), &config, &[]);
    // Quotes, a backslash, a dollar and a newline: the shell must pass them as signed.
    let body = dir.path().join("event.json");
    std::fs::write(&body, "{\"note\":\"it's $HOME \\\\ `x`\"}\n").unwrap();
    let out = hookgate()
        .args([
            "sign",
            &running.url("/gh"),
            "--preset",
            "github",
            "--secret",
            "it's a secret",
            "--format",
            "curl",
            "--body",
        ])
        .arg(&body)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let command = String::from_utf8(out.stdout).unwrap();
    assert!(command.starts_with("curl -sS -X POST '"), "{command}");
    let ran = std::process::Command::new("sh")
        .args([
            "-c",
            &format!("{} -o /dev/null -w '%{{http_code}}'", command.trim_end()),
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&ran.stdout),
        "200",
        "{}",
        String::from_utf8_lossy(&ran.stderr)
    );
    let (code, _) = running.terminate();
    assert_eq!(code, Some(0));
    // `send` has no such format.
    let out = hookgate()
        .args([
            "send",
            "http://127.0.0.1:9/gh",
            "--preset",
            "github",
            "--secret",
            "s",
            "--format",
            "curl",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[tokio::test]
async fn events_commands_read_a_postgres_store() {
    let Some(db) = hookgate_store::testing::postgres().await else {
        return;
    };
    let store = db.open().await;
    let mut event = unrouted(hookgate_store::EventId::new().0, "pg-1");
    event.destinations = vec![hookgate_store::NewDelivery::queued("orders")];
    let hookgate_store::Stored::New { id, .. } = store.insert(event).await.unwrap() else {
        panic!()
    };
    store.close().await;
    let url = db.url().to_owned();
    let run = move |args: Vec<String>| {
        let out = hookgate()
            .args(&args)
            .args(["--store", &url])
            .output()
            .unwrap();
        outcome(out)
    };
    let (code, stdout, stderr) = tokio::task::spawn_blocking({
        let run = run.clone();
        move || run(vec!["events".into(), "list".into()])
    })
    .await
    .unwrap();
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.contains(&id.0) && stdout.contains("pg-1"),
        "{stdout}"
    );
    let (code, stdout, stderr) = tokio::task::spawn_blocking(move || {
        run(vec!["events".into(), "show".into(), id.0.clone()])
    })
    .await
    .unwrap();
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.contains("orders") && stdout.contains("pending"),
        "{stdout}"
    );
}
