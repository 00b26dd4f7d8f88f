//! Runs the real binary: start it, find the address it listens on, stop or kill it.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub fn hookgate() -> Command {
    Command::new(env!("CARGO_BIN_EXE_hookgate"))
}

pub struct Running {
    pub child: Child,
    pub addr: SocketAddr,
    pub log: mpsc::Receiver<String>,
    /// The lines printed up to and including the "listening" line.
    pub startup: Vec<String>,
}

/// Starts `hookgate serve --config config` in `dir` and waits until it listens.
pub fn start(dir: &Path, config: &Path, envs: &[(&str, &str)]) -> Running {
    let mut child = hookgate()
        .args(["serve", "--config"])
        .arg(config)
        .current_dir(dir)
        .envs(envs.iter().copied())
        .env("HOOKGATE_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut startup = Vec::new();
    loop {
        let Ok(line) =
            rx.recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
        else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("hookgate did not start listening");
        };
        startup.push(line.clone());
        if let Some(rest) = line.split("listening on http://").nth(1) {
            let addr = rest.split_whitespace().next().unwrap().parse().unwrap();
            return Running {
                child,
                addr,
                log: rx,
                startup,
            };
        }
    }
}

impl Running {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// SIGTERM, then the exit code.
    pub fn terminate(mut self) -> (Option<i32>, Vec<String>) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let code = self.child.wait().unwrap().code();
        // The reader thread ends with the pipe; collect everything it forwarded.
        let mut log = self.startup;
        log.extend(self.log.iter());
        (code, log)
    }
}

pub fn github_signature(secret: &str, body: &[u8]) -> String {
    format!(
        "sha256={}",
        hookgate_verify::Encoding::Hex
            .encode(&hookgate_verify::HashAlgorithm::Sha256.mac_of(secret.as_bytes(), body))
    )
}

/// A finished command's exit code, stdout and stderr (lossily decoded).
pub fn outcome(out: std::process::Output) -> (Option<i32>, String, String) {
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Every event in the SQLite database at `db`, oldest first, each with its deliveries, read
/// through the store API. It runs on a thread of its own, so sync and async tests can both
/// call it, while the gateway runs or after it stopped.
pub fn stored_events(
    db: &Path,
) -> Vec<(
    hookgate_store::EventRecord,
    Vec<hookgate_store::DeliveryRecord>,
)> {
    let url = format!("sqlite://{}", db.display());
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async move {
                let store = hookgate_store::Store::open(&url, &Default::default())
                    .await
                    .unwrap();
                let mut all = Vec::new();
                for (event, _) in store
                    .replay_candidates(hookgate_store::ListFilter::default())
                    .await
                    .unwrap()
                {
                    let deliveries = store.deliveries(&event.summary.id).await.unwrap();
                    all.push((event, deliveries));
                }
                store.close().await;
                all
            })
    })
    .join()
    .unwrap()
}

/// One delivery a [`receiver`] accepted.
pub struct Received {
    /// The path it was sent to (`{url}/{path}`): the destination, in the tests' configs.
    pub path: String,
    /// The provider event id (the `delivery` field of the tests' bodies).
    pub event: String,
    /// Its `webhook-id`.
    pub webhook_id: String,
    /// When it arrived.
    pub at: std::time::Instant,
}

/// Every delivery a [`receiver`] accepted, in arrival order.
pub type Deliveries = std::sync::Arc<std::sync::Mutex<Vec<Received>>>;

/// An HTTP destination on loopback: checks each delivery's Standard Webhooks signature with
/// `secret` (401 otherwise) and records it. Returns its base URL (`http://127.0.0.1:PORT`).
pub async fn receiver(secret: &'static str) -> (String, Deliveries) {
    use axum::extract::{Path, State};
    use axum::http::{HeaderMap, StatusCode};
    let deliveries: Deliveries = Default::default();
    let app = axum::Router::new()
        .route(
            "/{path}",
            axum::routing::post(
                move |State(deliveries): State<Deliveries>,
                      Path(path): Path<String>,
                      headers: HeaderMap,
                      body: axum::body::Bytes| async move {
                    if standardwebhooks::Webhook::new(secret)
                        .unwrap()
                        .verify(&body, &headers)
                        .is_err()
                    {
                        return StatusCode::UNAUTHORIZED;
                    }
                    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
                    deliveries.lock().unwrap().push(Received {
                        path,
                        event: json["delivery"].as_str().unwrap().to_owned(),
                        webhook_id: headers["webhook-id"].to_str().unwrap().to_owned(),
                        at: std::time::Instant::now(),
                    });
                    StatusCode::OK
                },
            ),
        )
        .with_state(deliveries.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, deliveries)
}

/// The provider event ids delivered to `path`.
pub fn delivered_to(deliveries: &Deliveries, path: &str) -> std::collections::HashSet<String> {
    deliveries
        .lock()
        .unwrap()
        .iter()
        .filter(|d| d.path == path)
        .map(|d| d.event.clone())
        .collect()
}

/// POSTs `{"delivery":"ID"}` to `url` as GitHub would, signed with `secret`, with provider
/// event id `id`; returns the status.
pub async fn send_github(
    client: &reqwest::Client,
    url: &str,
    secret: &str,
    id: &str,
) -> Result<u16, reqwest::Error> {
    let body = format!(r#"{{"delivery":"{id}"}}"#);
    client
        .post(url)
        .header("X-GitHub-Delivery", id)
        .header(
            "X-Hub-Signature-256",
            github_signature(secret, body.as_bytes()),
        )
        .body(body)
        .send()
        .await
        .map(|r| r.status().as_u16())
}
