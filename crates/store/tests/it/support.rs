//! Fresh databases of every backend, and events to put in them.

use hookgate_store::{EventId, NewEvent, Store, StoreOptions};

/// A database of one backend, for one test: opened (and reopened) by URL, removed when
/// dropped.
pub struct Database {
    /// The backend's name, for assertion messages.
    pub backend: &'static str,
    url: String,
    _dir: tempfile::TempDir,
}

impl Database {
    /// A store on this database (a second call reopens it).
    pub fn open(&self) -> Store {
        self.open_with(&StoreOptions::default())
    }

    /// A store on this database with `options`.
    pub fn open_with(&self, options: &StoreOptions) -> Store {
        Store::open(&self.url, options).unwrap_or_else(|e| panic!("{}: {e}", self.backend))
    }
}

/// One fresh database per backend.
pub fn databases() -> Vec<Database> {
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}",
        dir.path().join("nested/dir/hookgate.db").display()
    );
    vec![Database {
        backend: "sqlite",
        url,
        _dir: dir,
    }]
}

/// An event of `source` with provider id `key` and a body of `size` bytes.
pub fn event(source: &str, key: Option<&str>, size: usize) -> NewEvent {
    NewEvent {
        id: EventId::new(),
        source: source.into(),
        dedupe_key: key.map(str::to_owned),
        topic: Some("orders/created".into()),
        tenant: None,
        provider_timestamp: None,
        received_at_ms: 1,
        method: "POST".into(),
        path: "/h".into(),
        headers: vec![("content-type".into(), "application/json".into())],
        body: bytes::Bytes::from(vec![b'x'; size]),
        verification: serde_json::json!({"scheme": "hmac"}),
        destinations: Vec::new(),
    }
}
