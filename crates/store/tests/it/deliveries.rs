//! Deliveries: created with their event, claimed under leases, completed by the lease
//! holder only, released, replayed; pauses and per-destination stats.

use hookgate_store::*;

use crate::support::*;

#[tokio::test]
async fn deliveries_are_created_with_the_event_claimed_with_leases_and_replayed() {
    for db in databases() {
        let store = db.open();
        let mut routed = event("s", Some("e1"), 10);
        routed.destinations = vec![NewDelivery::queued("a"), NewDelivery::queued("b")];
        let Stored::New { id, .. } = store.insert(routed.clone()).await.unwrap() else {
            panic!()
        };
        // A duplicate creates no further deliveries.
        assert!(matches!(
            store.insert(routed).await.unwrap(),
            Stored::Duplicate(_)
        ));
        let unrouted = event("s", Some("e2"), 10);
        let Stored::New {
            id: unrouted_id, ..
        } = store.insert(unrouted).await.unwrap()
        else {
            panic!()
        };
        assert_eq!(
            store.delivery_counts().await.unwrap(),
            DeliveryCounts {
                pending: 2,
                delivered: 0,
                dead: 0
            }
        );

        let claimed = store.claim("a", 10, 1_000, 500, "w1").await.unwrap();
        assert_eq!(claimed.len(), 1);
        assert_eq!(claimed[0].webhook_id, webhook_id(&id.0, "a"));
        // Leased: nobody else gets it until the lease expires…
        assert!(store
            .claim("a", 10, 1_400, 500, "w2")
            .await
            .unwrap()
            .is_empty());
        // …then it returns to the queue (a crashed worker's deliveries are not lost).
        let again = store.claim("a", 10, 1_600, 500, "w2").await.unwrap();
        assert_eq!(again[0].delivery_id, claimed[0].delivery_id);
        // The first worker's late result is recorded but does not move the delivery.
        let attempt = |owner: &str, status| Attempt {
            delivery_id: claimed[0].delivery_id,
            owner: owner.into(),
            started_at_ms: 1_700,
            duration_ms: 5,
            status_code: Some(200),
            next_status: status,
            next_at_ms: 0,
            response: Some("ok".into()),
            error: None,
        };
        store
            .complete(attempt("w1", DeliveryStatus::Delivered))
            .await
            .unwrap();
        assert_eq!(store.delivery_counts().await.unwrap().delivered, 0);
        store
            .complete(attempt("w2", DeliveryStatus::Dead))
            .await
            .unwrap();
        let records = store.deliveries(&id.0).await.unwrap();
        let a = records.iter().find(|d| d.destination == "a").unwrap();
        assert_eq!(
            (a.status, a.attempts, a.history.len()),
            (DeliveryStatus::Dead, 1, 2)
        );

        // Replay: the dead delivery and the unrouted event become pending, same webhook-id.
        let n = store
            .replay(
                vec![
                    (id.0.clone(), "a".into()),
                    (unrouted_id.0.clone(), "a".into()),
                ],
                2_000,
            )
            .await
            .unwrap();
        assert_eq!(n, 2);
        let a = store
            .deliveries(&id.0)
            .await
            .unwrap()
            .into_iter()
            .find(|d| d.destination == "a")
            .unwrap();
        assert_eq!(
            (a.status, a.attempts, a.webhook_id),
            (DeliveryStatus::Pending, 0, webhook_id(&id.0, "a"))
        );
        let unrouted = store
            .replay_candidates(ListFilter {
                status: Some(EventStatus::Unrouted),
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(unrouted.is_empty(), "replayed events are routed now");
        assert_eq!(
            store.claim("a", 10, 2_000, 500, "w3").await.unwrap().len(),
            2
        );
    }
}

#[tokio::test]
async fn a_delivery_created_leased_is_claimed_only_when_its_lease_expires() {
    for db in databases() {
        let store = db.open();
        let mut hot = event("s", Some("e1"), 10);
        hot.received_at_ms = 1_000;
        let lease = Lease {
            owner: "w1".into(),
            until_ms: 3_000,
        };
        hot.destinations = vec![
            NewDelivery {
                destination: "a".into(),
                lease: Some(lease),
            },
            NewDelivery::queued("b"),
            NewDelivery::queued("b"),
        ];
        let in_memory = hot.to_record();
        let Stored::New { id, deliveries } = store.insert(hot).await.unwrap() else {
            panic!()
        };
        // What a dispatcher is handed in memory is exactly what it would have read back.
        assert_eq!(store.get(&id.0).await.unwrap(), Some(in_memory));
        assert_eq!(deliveries.len(), 3);
        assert_ne!(deliveries[0], deliveries[1]);
        assert_eq!(
            deliveries[1], deliveries[2],
            "one row for a destination named twice"
        );
        // The queued one is claimable at once, the leased one only after its lease.
        let b = store.claim("b", 10, 1_000, 500, "w2").await.unwrap();
        assert_eq!(b[0].delivery_id, deliveries[1]);
        assert!(store
            .claim("a", 10, 2_999, 500, "w2")
            .await
            .unwrap()
            .is_empty());
        // The lease holder completes it with the id the insert returned.
        store
            .complete(Attempt {
                delivery_id: deliveries[0],
                owner: "w1".into(),
                started_at_ms: 1_001,
                duration_ms: 2,
                status_code: Some(204),
                next_status: DeliveryStatus::Delivered,
                next_at_ms: 1_001,
                response: None,
                error: None,
            })
            .await
            .unwrap();
        let a = store
            .deliveries(&id.0)
            .await
            .unwrap()
            .into_iter()
            .find(|d| d.destination == "a")
            .unwrap();
        assert_eq!((a.status, a.attempts), (DeliveryStatus::Delivered, 1));
        assert!(store
            .claim("a", 10, 9_000, 500, "w2")
            .await
            .unwrap()
            .is_empty());
        // Had the holder vanished, the expired lease would have put it back in the queue.
        let mut lost = event("s", Some("e2"), 10);
        lost.destinations = vec![NewDelivery {
            destination: "a".into(),
            lease: Some(Lease {
                owner: "gone".into(),
                until_ms: 3_000,
            }),
        }];
        let Stored::New { deliveries, .. } = store.insert(lost).await.unwrap() else {
            panic!()
        };
        let again = store.claim("a", 10, 3_000, 500, "w2").await.unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].delivery_id, deliveries[0]);

        // A stopping dispatcher gives its leases up: due at once, not when they expire.
        assert_eq!(store.release("a", "w2").await.unwrap(), 1);
        assert_eq!(store.release("a", "w2").await.unwrap(), 0);
        let now_due = store.claim("a", 10, 3_001, 500, "w3").await.unwrap();
        assert_eq!(now_due[0].delivery_id, deliveries[0]);
    }
}

#[tokio::test]
async fn pauses_hold_and_stats_count_by_destination() {
    for db in databases() {
        let store = db.open();
        assert!(store.set_paused("a", true, 5).await.unwrap());
        assert!(!store.set_paused("a", true, 6).await.unwrap());
        let mut e = event("s", Some("e1"), 3);
        e.received_at_ms = 1_000;
        e.id = EventId(uuid::Uuid::from_u128(1_000u128 << 80).to_string());
        e.destinations = vec![
            NewDelivery::queued("a"),
            NewDelivery {
                destination: "b".into(),
                lease: Some(Lease {
                    owner: "w".into(),
                    until_ms: 9_000,
                }),
            },
        ];
        store.insert(e).await.unwrap();
        let stats = store.destination_stats(2_000).await.unwrap();
        let a = stats.iter().find(|s| s.destination == "a").unwrap();
        let b = stats.iter().find(|s| s.destination == "b").unwrap();
        assert!(a.paused && !b.paused);
        assert_eq!(
            (a.counts.pending, a.leased, a.oldest_pending_ms),
            (1, 0, Some(1_000))
        );
        assert_eq!((b.counts.pending, b.leased), (1, 1));
        store.close().await;
        let reopened = db.open();
        assert_eq!(reopened.paused().await.unwrap(), ["a"]);
        assert!(reopened.set_paused("a", false, 7).await.unwrap());
        assert!(reopened.paused().await.unwrap().is_empty());
    }
}

#[tokio::test]
async fn a_replayed_pending_delivery_keeps_its_lease_and_failed_attempts_read_as_failed() {
    for db in databases() {
        let store = db.open();
        let mut e = event("s", Some("e1"), 3);
        e.destinations = vec![NewDelivery::queued("a")];
        let Stored::New { id, .. } = store.insert(e).await.unwrap() else {
            panic!()
        };
        let claimed = store.claim("a", 1, 1_000, 10_000, "w1").await.unwrap();
        store
            .complete(Attempt {
                delivery_id: claimed[0].delivery_id,
                owner: "w1".into(),
                started_at_ms: 1_000,
                duration_ms: 1,
                status_code: Some(500),
                next_status: DeliveryStatus::Pending,
                next_at_ms: 50_000,
                response: None,
                error: Some("HTTP 500".into()),
            })
            .await
            .unwrap();
        let history = &store.deliveries(&id.0).await.unwrap()[0].history;
        assert_eq!(history[0].outcome, AttemptOutcome::Failed);
        // In flight again, then replayed: due now, but still leased to its holder.
        let claimed = store.claim("a", 1, 60_000, 10_000, "w2").await.unwrap();
        assert_eq!(claimed.len(), 1);
        store
            .replay(vec![(id.0.clone(), "a".into())], 61_000)
            .await
            .unwrap();
        assert!(store
            .claim("a", 1, 61_000, 10_000, "w3")
            .await
            .unwrap()
            .is_empty());
        assert_eq!(
            store
                .claim("a", 1, 70_000, 10_000, "w3")
                .await
                .unwrap()
                .len(),
            1
        );
    }
}
