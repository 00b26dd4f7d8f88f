//! Retention: old finished events go in batches with their deliveries; pending ones stay.

use hookgate_store::*;

use crate::support::*;

#[tokio::test]
async fn pruning_deletes_old_finished_events_and_never_a_pending_one() {
    for db in databases().await {
        let store = db.open().await;
        // Arrival times are in the ids: `at` ms.
        let at = |source: &str, key: &str, ms: i64, to: &[&str]| {
            let mut e = event(source, Some(key), 3);
            e.id = EventId(uuid::Uuid::from_u128(((ms as u128) << 80) | 1).to_string());
            e.received_at_ms = ms;
            e.destinations = to.iter().map(|d| NewDelivery::queued(*d)).collect();
            e
        };
        let mut pruned_ids = std::collections::HashMap::new();
        for e in [
            at("a", "delivered", 1_000, &["d"]),
            at("a", "dead", 1_001, &["x"]),
            at("a", "unrouted", 1_002, &[]),
            at("a", "pending", 1_003, &["p"]),
            at("a", "young", 9_000, &[]),
            at("b", "old-b", 1_004, &[]),
            at("b", "mid-b", 5_000, &[]),
        ] {
            let key = e.dedupe_key.clone().unwrap();
            let Stored::New { id, .. } = store.insert(e).await.unwrap() else {
                panic!()
            };
            pruned_ids.insert(key, id.0);
        }
        for (destination, next) in [
            ("d", DeliveryStatus::Delivered),
            ("x", DeliveryStatus::Dead),
        ] {
            let claimed = store.claim(destination, 1, 60_000, "w").await.unwrap();
            store
                .complete(Attempt {
                    delivery_id: claimed[0].delivery_id,
                    owner: "w".into(),
                    started_at_ms: 2_000,
                    duration_ms: 1,
                    status_code: Some(200),
                    next_status: next,
                    retry_in_ms: 0,
                    response: None,
                    error: None,
                })
                .await
                .unwrap();
        }
        // `a` keeps 4 s (cutoff 6 000), every other source 2 s (cutoff 8 000 - 2 000).
        let rules = vec![
            PruneRule {
                source: Some("a".into()),
                except: vec![],
                older_than_ms: 6_000,
            },
            PruneRule {
                source: None,
                except: vec!["a".into()],
                older_than_ms: 4_000,
            },
        ];
        assert_eq!(
            store.prunable(rules.clone()).await.unwrap(),
            [("a".to_owned(), 3), ("b".to_owned(), 1)]
        );
        // Batches: at most `limit` per call, the oldest first.
        assert_eq!(
            store.prune(rules.clone(), 2).await.unwrap(),
            [("a".to_owned(), 2)]
        );
        assert_eq!(
            store.prune(rules.clone(), 100).await.unwrap(),
            [("a".to_owned(), 1), ("b".to_owned(), 1)]
        );
        assert!(store.prune(rules.clone(), 100).await.unwrap().is_empty());
        let mut left: Vec<String> = store
            .list(ListFilter::default())
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.dedupe_key.unwrap())
            .collect();
        left.sort();
        assert_eq!(left, ["mid-b", "pending", "young"]);
        for pruned in ["delivered", "dead", "unrouted", "old-b"] {
            let id = pruned_ids[pruned].clone();
            assert!(store.get(&id).await.unwrap().is_none(), "{pruned}");
            assert!(
                store.deliveries(&id).await.unwrap().is_empty(),
                "{pruned}: its deliveries go with it"
            );
        }
        assert_eq!(
            store.delivery_counts().await.unwrap(),
            DeliveryCounts {
                pending: 1,
                delivered: 0,
                dead: 0
            },
            "{}: only the pending event's delivery is left",
            db.backend
        );
    }
}
