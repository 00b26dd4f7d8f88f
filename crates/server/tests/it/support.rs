//! Starts a real gateway on port 0 with its own SQLite file (or a PostgreSQL database of
//! its own), and stops it cleanly.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use hookgate_server::config::{Config, ProcessEnvironment};
use hookgate_server::Gateway;
use hookgate_store::{Store, StoreOptions};
use tokio::sync::oneshot;

pub struct TestGateway {
    pub addr: SocketAddr,
    /// The operators' listener, when the test asked for one.
    pub admin: Option<SocketAddr>,
    pub db: PathBuf,
    pub gateway: Arc<Gateway>,
    pub _dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

/// A gateway serving `sources_toml` (the `[[source]]` tables and any `[server]` keys).
pub async fn spawn(config_toml: &str) -> TestGateway {
    spawn_with(config_toml, StoreOptions::default()).await
}

pub async fn spawn_with(config_toml: &str, options: StoreOptions) -> TestGateway {
    start(tempfile::tempdir().unwrap(), config_toml, options, false).await
}

/// A gateway on the directory (and so the database) of an earlier one.
pub async fn spawn_in(dir: tempfile::TempDir, config_toml: &str) -> TestGateway {
    start(dir, config_toml, StoreOptions::default(), false).await
}

/// A gateway with an operators' listener of its own (`[admin] listen` in the config).
pub async fn spawn_with_admin(config_toml: &str) -> TestGateway {
    start(
        tempfile::tempdir().unwrap(),
        config_toml,
        StoreOptions::default(),
        true,
    )
    .await
}

/// A gateway on the store at `url` (a PostgreSQL database from
/// `hookgate_store::testing`, say).
pub async fn spawn_on(config_toml: &str, url: &str) -> TestGateway {
    let dir = tempfile::tempdir().unwrap();
    start_on(dir, config_toml, StoreOptions::default(), false, Some(url)).await
}

async fn start(
    dir: tempfile::TempDir,
    config_toml: &str,
    options: StoreOptions,
    with_admin: bool,
) -> TestGateway {
    start_on(dir, config_toml, options, with_admin, None).await
}

async fn start_on(
    dir: tempfile::TempDir,
    config_toml: &str,
    options: StoreOptions,
    with_admin: bool,
    url: Option<&str>,
) -> TestGateway {
    let db = dir.path().join("data/hookgate.db");
    let config = Config::parse(config_toml, "test.toml", dir.path(), &ProcessEnvironment)
        .unwrap_or_else(|e| panic!("{e}"));
    let metrics = Arc::new(hookgate_server::metrics::Metrics::for_config(&config));
    let options = StoreOptions {
        observer: metrics.commit_observer(),
        ..options
    };
    let url = url
        .map(str::to_owned)
        .unwrap_or_else(|| format!("sqlite://{}", db.display()));
    let store = Store::open(&url, &options).await.unwrap();
    let gateway = Arc::new(Gateway::with_metrics(config, store, metrics));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let admin = if with_admin {
        Some(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap())
    } else {
        None
    };
    let admin_addr = admin.as_ref().map(|l| l.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(hookgate_server::serve(
        listener,
        admin,
        gateway.clone(),
        async {
            let _ = stopped.await;
        },
    ));
    TestGateway {
        addr,
        admin: admin_addr,
        db,
        gateway,
        _dir: dir,
        stop: Some(stop),
        task: Some(task),
    }
}

impl TestGateway {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Every stored event, oldest first, read through the store API: (source, provider
    /// id, body, headers as JSON).
    pub async fn stored(&self) -> Vec<(String, Option<String>, Vec<u8>, String)> {
        stored_in(self.gateway.store()).await
    }

    /// Stops the gateway (drain + flush) and hands back its directory, database included.
    pub async fn stop(mut self) -> tempfile::TempDir {
        let _ = self.stop.take().unwrap().send(());
        self.task.take().unwrap().await.unwrap().unwrap();
        self._dir
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

pub fn fixtures() -> serde_json::Value {
    serde_json::from_str(include_str!(
        "../../../verify/tests/fixtures/providers.json"
    ))
    .unwrap()
}

pub fn quoted(text: &str) -> String {
    toml::Value::String(text.to_owned()).to_string()
}

/// Sends `body` with `headers` and returns (status, headers, body text).
pub async fn post(
    url: &str,
    body: impl Into<reqwest::Body>,
    headers: &[(&str, &str)],
) -> (u16, reqwest::header::HeaderMap, String) {
    let mut request = client().post(url).body(body);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.text().await.unwrap())
}

/// Headers of a verify-crate request as pairs for `post`.
pub fn pairs(request: &hookgate_verify::Request<'_>) -> Vec<(String, String)> {
    request
        .headers
        .iter()
        .map(|(k, v)| (k.to_owned(), String::from_utf8_lossy(v).into_owned()))
        .collect()
}

pub async fn send_signed(
    gateway: &TestGateway,
    source: &str,
    path: &str,
    body: &[u8],
    extra: &[(&str, &str)],
) -> (u16, reqwest::header::HeaderMap, String) {
    let src = gateway
        .gateway
        .config()
        .sources
        .iter()
        .find(|s| s.name == source)
        .unwrap()
        .source
        .clone();
    let mut request = hookgate_verify::Request::post(path, body);
    for (k, v) in extra {
        request.headers.append(k, v.as_bytes().to_vec());
    }
    src.sign(
        &mut request,
        time::OffsetDateTime::now_utc(),
        &Default::default(),
    )
    .unwrap();
    let headers = pairs(&request);
    let headers: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    post(&gateway.url(path), body.to_vec(), &headers).await
}

/// Every event in `store`, oldest first: (source, provider id, body, headers as JSON).
pub async fn stored_in(
    store: &hookgate_store::Store,
) -> Vec<(String, Option<String>, Vec<u8>, String)> {
    store
        .replay_candidates(hookgate_store::ListFilter::default())
        .await
        .unwrap()
        .into_iter()
        .map(|(event, _)| {
            (
                event.summary.source,
                event.summary.dedupe_key,
                event.body.to_vec(),
                serde_json::to_string(&event.headers).unwrap(),
            )
        })
        .collect()
}

/// The store at `db` (a stopped gateway's), opened through the store API.
pub async fn open_store(db: &std::path::Path) -> hookgate_store::Store {
    hookgate_store::Store::open(&format!("sqlite://{}", db.display()), &Default::default())
        .await
        .unwrap()
}

/// The event whose provider id is `key`, with its deliveries.
pub async fn event_by_provider_id(
    store: &hookgate_store::Store,
    key: &str,
) -> (
    hookgate_store::EventRecord,
    Vec<hookgate_store::DeliveryRecord>,
) {
    let found = store
        .list(hookgate_store::ListFilter {
            provider_id: Some(key.into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(found.len(), 1, "one event with provider id {key}");
    let event = store.get(&found[0].id).await.unwrap().unwrap();
    let deliveries = store.deliveries(&found[0].id).await.unwrap();
    (event, deliveries)
}
