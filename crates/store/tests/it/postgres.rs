//! What only the PostgreSQL backend has: several nodes on one database (migrations once,
//! dedupe and claims across nodes), durability and schema-version checks at open.

use std::collections::HashSet;

use hookgate_store::*;

use crate::support::*;

#[tokio::test]
async fn a_server_without_durability_is_refused_unless_relaxed() {
    let Some(db) = postgres().await else { return };
    db.execute_as_admin(&format!(
        "ALTER DATABASE {} SET synchronous_commit = off",
        db.name()
    ))
    .await;
    let refused = Store::open(db.url(), &StoreOptions::default())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("synchronous_commit = off")
            && refused.contains("durability = \"relaxed\""),
        "{refused}"
    );
    let relaxed = Store::open(
        db.url(),
        &StoreOptions {
            relaxed_durability: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    relaxed.close().await;
}

#[tokio::test]
async fn a_schema_newer_than_the_binary_is_refused() {
    let Some(db) = postgres().await else { return };
    db.open().await.close().await;
    db.execute_as_admin("INSERT INTO hookgate_schema (version) VALUES (99)")
        .await;
    let refused = Store::open(db.url(), &StoreOptions::default())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("schema is version 99, newer than this hookgate knows"),
        "{refused}"
    );
}

#[tokio::test]
async fn nodes_starting_together_migrate_once_and_dedupe_and_claim_between_them() {
    let Some(db) = postgres().await else { return };
    // Three nodes open the fresh database at once: one migrates, the others wait for it.
    let (a, b, c) = tokio::join!(db.open(), db.open(), db.open());
    // The same provider event reaching different nodes at once is stored once, and every
    // node answers with the first event's id.
    let mut tasks = Vec::new();
    for (i, node) in [&a, &b, &c].into_iter().enumerate() {
        for k in 0..50 {
            let node = node.clone();
            tasks.push(tokio::spawn(async move {
                let mut e = event("s", Some(&format!("same-{k}")), 10);
                e.destinations = vec![NewDelivery::queued("d")];
                (i, k, node.insert(e).await.unwrap())
            }));
        }
    }
    let mut first: std::collections::HashMap<usize, String> = Default::default();
    let mut new = 0;
    for task in tasks {
        let (_, k, stored) = task.await.unwrap();
        let id = match stored {
            Stored::New { id, .. } => {
                new += 1;
                id.0
            }
            Stored::Duplicate(id) => id.0,
        };
        assert_eq!(first.entry(k).or_insert_with(|| id.clone()), &id);
    }
    assert_eq!(new, 50, "each provider event stored once across the nodes");
    // Claims from the three nodes at once never take the same delivery.
    let (x, y, z) = tokio::join!(
        a.claim("d", 30, 60_000, "node-a"),
        b.claim("d", 30, 60_000, "node-b"),
        c.claim("d", 30, 60_000, "node-c")
    );
    let claimed: Vec<i64> = [x.unwrap(), y.unwrap(), z.unwrap()]
        .into_iter()
        .flatten()
        .map(|c| c.delivery_id)
        .collect();
    let distinct: HashSet<i64> = claimed.iter().copied().collect();
    assert_eq!(distinct.len(), claimed.len(), "a delivery claimed twice");
    assert_eq!(claimed.len(), 50);
    for node in [a, b, c] {
        node.close().await;
    }
}

#[tokio::test]
async fn a_database_that_cannot_be_reached_is_told_apart_from_other_failures() {
    // A port nothing listens on: refused, whatever this machine runs.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let error = Store::open(
        &format!("postgres://hookgate:secret@127.0.0.1:{port}/hookgate"),
        &StoreOptions::default(),
    )
    .await
    .unwrap_err();
    assert_eq!(error.kind(), FailureKind::Unreachable, "{error}");
    let text = error.to_string();
    assert!(!text.contains("secret"), "the password leaked: {text}");
    assert!(
        std::error::Error::source(&error).is_some(),
        "the driver's error is kept as the source"
    );
}
