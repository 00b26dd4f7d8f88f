//! Insert, dedupe, answer after commit, reopen, group commit, listing filters and paging.

use hookgate_store::*;

use crate::support::*;

#[tokio::test]
async fn stores_dedupes_and_survives_reopen() {
    for db in databases().await {
        let store = db.open().await;
        let first = store.insert(event("s", Some("e1"), 10)).await.unwrap();
        let Stored::New { id, .. } = first else {
            panic!("{first:?}")
        };
        assert_eq!(
            store.insert(event("s", Some("e1"), 10)).await.unwrap(),
            Stored::Duplicate(id.clone())
        );
        assert!(matches!(
            store.insert(event("other", Some("e1"), 10)).await.unwrap(),
            Stored::New { .. }
        ));
        assert!(matches!(
            store.insert(event("s", None, 10)).await.unwrap(),
            Stored::New { .. }
        ));
        assert!(matches!(
            store.insert(event("s", None, 10)).await.unwrap(),
            Stored::New { .. }
        ));
        store.close().await;
        assert!(matches!(
            store.insert(event("s", None, 1)).await,
            Err(StoreError::Unavailable { .. })
        ));

        let reopened = db.open().await;
        let all = reopened.list(ListFilter::default()).await.unwrap();
        assert_eq!(all.len(), 4);
        let got = reopened.get(&id.0).await.unwrap().unwrap();
        assert_eq!(got.body, vec![b'x'; 10]);
        assert_eq!(got.verification["scheme"], "hmac");
        let only_other = reopened
            .list(ListFilter {
                source: Some("other".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(only_other.len(), 1);
    }
}

#[tokio::test]
async fn concurrent_inserts_are_group_committed_and_all_answered() {
    for db in databases().await {
        let store = db.open().await;
        let mut tasks = Vec::new();
        for i in 0..500 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                store
                    .insert(event("s", Some(&format!("k{}", i % 250)), 100))
                    .await
            }));
        }
        let mut new = 0;
        let mut dup = 0;
        for t in tasks {
            match t.await.unwrap().unwrap() {
                Stored::New { .. } => new += 1,
                Stored::Duplicate(_) => dup += 1,
            }
        }
        assert_eq!((new, dup), (250, 250));
        assert_eq!(
            store
                .list(ListFilter {
                    limit: Some(1000),
                    ..Default::default()
                })
                .await
                .unwrap()
                .len(),
            250
        );
    }
}

#[tokio::test]
async fn listings_filter_by_glob_tenant_provider_id_and_page_by_cursor() {
    for db in databases().await {
        let store = db.open().await;
        let mut ids = Vec::new();
        for (i, topic) in [
            "orders/created",
            "orders/paid",
            "ord%rs/x",
            "Orders/created",
            "ord_rs/y",
        ]
        .iter()
        .enumerate()
        {
            let mut e = event("s", Some(&format!("p{i}")), 5);
            e.topic = Some((*topic).into());
            e.tenant = Some(if i % 2 == 0 { "t-even" } else { "t-odd" }.into());
            let Stored::New { id, .. } = store.insert(e).await.unwrap() else {
                panic!()
            };
            ids.push(id.0);
        }
        let topics = |glob: &str| {
            let store = store.clone();
            let glob = glob.to_owned();
            async move {
                let mut found: Vec<String> = store
                    .list(ListFilter {
                        topic: Some(glob),
                        ..Default::default()
                    })
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|e| e.topic.unwrap())
                    .collect();
                found.sort();
                found
            }
        };
        // The routes' glob meaning: case-sensitive, `%` and `_` literal.
        assert_eq!(topics("orders/*").await, ["orders/created", "orders/paid"]);
        assert_eq!(topics("ord%rs/*").await, ["ord%rs/x"]);
        assert_eq!(topics("ord?rs/?").await, ["ord%rs/x", "ord_rs/y"]);
        assert_eq!(
            topics("*created").await,
            ["Orders/created", "orders/created"]
        );
        let by_tenant = store
            .list(ListFilter {
                tenant: Some("t-odd".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(by_tenant.len(), 2);
        let by_provider = store
            .list(ListFilter {
                provider_id: Some("p3".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(by_provider.len(), 1);
        assert_eq!(by_provider[0].id, ids[3]);
        assert_eq!(by_provider[0].status, EventStatus::Unrouted);
        // Pages of two, newest first, each starting below the previous page's last id.
        let mut seen = Vec::new();
        let mut before = None;
        loop {
            let page = store
                .list(ListFilter {
                    before: before.clone(),
                    limit: Some(2),
                    ..Default::default()
                })
                .await
                .unwrap();
            if page.is_empty() {
                break;
            }
            before = page.last().map(|e| e.id.clone());
            seen.extend(page.into_iter().map(|e| e.id));
        }
        let mut newest_first = ids.clone();
        newest_first.reverse();
        assert_eq!(seen, newest_first);
    }
}

#[tokio::test]
async fn a_full_store_refuses_whole_batches_and_keeps_what_it_had() {
    for db in databases().await {
        // The cap: what the empty store takes, and 64 KiB more.
        let empty = db.open().await;
        let base = empty.size_bytes().await.unwrap().unwrap();
        empty.close().await;
        let store = db
            .open_with(&StoreOptions {
                max_size: Some(base + 64 * 1024),
                ..Default::default()
            })
            .await;
        let mut stored = 0;
        let mut refused = 0;
        // Ten at a time, so commits hold several inserts: an insert answered as refused is
        // never stored, one answered as stored always is.
        for round in 0..10 {
            let tasks: Vec<_> = (0..10)
                .map(|i| {
                    let store = store.clone();
                    tokio::spawn(async move {
                        let mut e = event("s", Some(&format!("k{round}-{i}")), 0);
                        e.body = incompressible(4096, round * 10 + i);
                        store.insert(e).await
                    })
                })
                .collect();
            for task in tasks {
                match task.await.unwrap() {
                    Ok(_) => stored += 1,
                    Err(e @ StoreError::Unavailable { .. }) => {
                        // Told apart by its kind, not by its text.
                        assert_eq!(e.kind(), FailureKind::Full, "{}: {e}", db.backend);
                        refused += 1
                    }
                    Err(e) => panic!("{e}"),
                }
            }
        }
        assert!(
            stored > 0 && refused > 0,
            "{stored} stored, {refused} refused"
        );
        assert_eq!(
            store
                .list(ListFilter {
                    limit: Some(1000),
                    ..Default::default()
                })
                .await
                .unwrap()
                .len(),
            stored
        );
        store.ready().await.unwrap();
    }
}

/// `len` bytes no backend can compress (PostgreSQL compresses large values).
fn incompressible(len: usize, seed: u64) -> bytes::Bytes {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 56) as u8
        })
        .collect::<Vec<u8>>()
        .into()
}
