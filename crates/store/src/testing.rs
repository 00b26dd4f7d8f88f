//! For tests of this crate and of its users (feature `testing`): a fresh database of
//! each backend, removed afterwards. No test outside this crate opens a database itself;
//! it asks for one here and goes through [`crate::Store`].

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::{Store, StoreOptions};

/// A database of one backend, for one test: opened (and reopened) by URL, removed when
/// dropped.
pub struct Database {
    /// The backend's name, for assertion messages.
    pub backend: &'static str,
    url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    Directory(#[allow(dead_code)] tempfile::TempDir),
    /// The server's admin URL and the database to drop.
    Postgres {
        admin: String,
        name: String,
    },
}

impl Database {
    /// Runs `sql` on this PostgreSQL database directly (what a test sets up behind the
    /// store's back: server settings, a newer schema).
    pub async fn execute_as_admin(&self, sql: &str) {
        let client = connect(&self.url).await.unwrap();
        client
            .batch_execute(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// Its name, for `ALTER DATABASE`.
    pub fn name(&self) -> &str {
        match &self.cleanup {
            Cleanup::Postgres { name, .. } => name,
            Cleanup::Directory(_) => "sqlite",
        }
    }

    /// Its URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A store on this database (a second call reopens it).
    pub async fn open(&self) -> Store {
        self.open_with(&StoreOptions::default()).await
    }

    /// A store on this database with `options`.
    pub async fn open_with(&self, options: &StoreOptions) -> Store {
        Store::open(&self.url, options)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", self.backend))
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        if let Cleanup::Postgres { admin, name } = &self.cleanup {
            let (admin, name) = (admin.clone(), name.clone());
            // Drop runs inside the test's runtime: the database goes on a thread of its own.
            std::thread::spawn(move || {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap()
                    .block_on(async {
                        if let Ok(client) = connect(&admin).await {
                            let _ = client
                                .batch_execute(&format!(
                                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                                ))
                                .await;
                        }
                    })
            })
            .join()
            .unwrap();
        }
    }
}

/// The PostgreSQL server the tests use: `HOOKGATE_TEST_POSTGRES_URL`, by default the local
/// one with trust authentication.
fn postgres_admin_url() -> String {
    std::env::var("HOOKGATE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

async fn connect(url: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

/// A fresh PostgreSQL database, or why there is none. With `HOOKGATE_TEST_POSTGRES=required`
/// (CI) a missing server fails the test instead of skipping it.
pub async fn postgres() -> Option<Database> {
    let admin = postgres_admin_url();
    match postgres_on(&admin).await {
        Ok(db) => Some(db),
        Err(e) => {
            if std::env::var("HOOKGATE_TEST_POSTGRES").as_deref() == Ok("required") {
                panic!("PostgreSQL is required (HOOKGATE_TEST_POSTGRES=required): {e}");
            }
            eprintln!("skipped the PostgreSQL backend: {e}; set HOOKGATE_TEST_POSTGRES_URL");
            None
        }
    }
}

/// A fresh database on the PostgreSQL server at `admin` (a URL whose user may create
/// databases), dropped when the returned value is.
pub async fn postgres_on(admin: &str) -> Result<Database, String> {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let client = connect(admin)
        .await
        .map_err(|e| format!("{} is unreachable ({e})", crate::redacted_url(admin)))?;
    let name = format!(
        "hookgate_test_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .map_err(|e| format!("cannot create the test database {name}: {e}"))?;
    let mut url: url_like::Url = admin.parse()?;
    url.set_database(&name);
    Ok(Database {
        backend: "postgres",
        url: url.to_string(),
        cleanup: Cleanup::Postgres {
            admin: admin.to_owned(),
            name,
        },
    })
}

/// One fresh database per backend this machine has.
pub async fn databases() -> Vec<Database> {
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}",
        dir.path().join("nested/dir/hookgate.db").display()
    );
    let mut all = vec![Database {
        backend: "sqlite",
        url,
        cleanup: Cleanup::Directory(dir),
    }];
    all.extend(postgres().await);
    all
}

/// The admin URL with another database: `postgres://user@host:port/NAME?params`.
mod url_like {
    pub struct Url {
        before: String,
        after: String,
        database: String,
    }

    impl std::str::FromStr for Url {
        type Err = String;
        fn from_str(text: &str) -> Result<Url, String> {
            let rest = text.split_once("://").map(|(_, r)| r).ok_or("no scheme")?;
            let slash = rest.find('/').ok_or("no database in the URL")?;
            let start = text.len() - rest.len() + slash + 1;
            let end = text[start..].find('?').map_or(text.len(), |q| start + q);
            Ok(Url {
                before: text[..start].to_owned(),
                after: text[end..].to_owned(),
                database: text[start..end].to_owned(),
            })
        }
    }

    impl Url {
        pub fn set_database(&mut self, name: &str) {
            self.database = name.to_owned();
        }
    }

    impl std::fmt::Display for Url {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "{}{}{}", self.before, self.database, self.after)
        }
    }
}

/// An event of `source` with provider id `key` and a body of `size` bytes.
pub fn event(source: &str, key: Option<&str>, size: usize) -> crate::NewEvent {
    crate::NewEvent {
        id: crate::EventId::new(),
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
