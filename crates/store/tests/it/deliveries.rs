//! Deliveries: created with their event, claimed under leases, completed by the lease
//! holder only, released, replayed; pauses and per-destination stats. Leases and retries
//! run on the store's own clock, so these tests wait real (short) times.

use std::time::Duration;

use hookgate_store::*;

use crate::support::*;

/// A lease long enough that it never runs out during a test.
const LONG: i64 = 600_000;
/// A lease a test waits out.
const SHORT: i64 = 300;

async fn outlive(lease_ms: i64) {
    tokio::time::sleep(Duration::from_millis(lease_ms as u64 + 50)).await;
}

fn attempt(delivery_id: i64, owner: &str, next: DeliveryStatus, retry_in_ms: i64) -> Attempt {
    Attempt {
        delivery_id,
        owner: owner.into(),
        started_at_ms: 1_700,
        duration_ms: 5,
        status_code: Some(200),
        next_status: next,
        retry_in_ms,
        response: Some("ok".into()),
        error: None,
    }
}

#[tokio::test]
async fn deliveries_are_created_with_the_event_claimed_with_leases_and_replayed() {
    for db in databases().await {
        let store = db.open().await;
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
        let Stored::New {
            id: unrouted_id, ..
        } = store.insert(event("s", Some("e2"), 10)).await.unwrap()
        else {
            panic!()
        };
        assert_eq!(
            store.delivery_counts().await.unwrap(),
            DeliveryCounts {
                pending: 2,
                delivered: 0,
                dead: 0
            },
            "{}",
            db.backend
        );

        let claimed = store.claim("a", 10, SHORT, "w1").await.unwrap();
        assert_eq!(claimed.len(), 1);
        assert_eq!(claimed[0].webhook_id, webhook_id(&id.0, "a"));
        // Leased: nobody else gets it until the lease expires…
        assert!(store.claim("a", 10, SHORT, "w2").await.unwrap().is_empty());
        // …then it returns to the queue (a crashed worker's deliveries are not lost).
        outlive(SHORT).await;
        let again = store.claim("a", 10, LONG, "w2").await.unwrap();
        assert_eq!(again[0].delivery_id, claimed[0].delivery_id);
        // The first worker's late result is recorded but does not move the delivery.
        store
            .complete(attempt(
                claimed[0].delivery_id,
                "w1",
                DeliveryStatus::Delivered,
                0,
            ))
            .await
            .unwrap();
        assert_eq!(store.delivery_counts().await.unwrap().delivered, 0);
        store
            .complete(attempt(
                claimed[0].delivery_id,
                "w2",
                DeliveryStatus::Dead,
                0,
            ))
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
            .replay(vec![
                (id.clone(), "a".into()),
                (unrouted_id.clone(), "a".into()),
            ])
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
        assert_eq!(store.claim("a", 10, LONG, "w3").await.unwrap().len(), 2);
    }
}

#[tokio::test]
async fn a_failed_attempt_is_due_again_after_its_retry_delay() {
    for db in databases().await {
        let store = db.open().await;
        let mut e = event("s", Some("e1"), 3);
        e.destinations = vec![NewDelivery::queued("a")];
        store.insert(e).await.unwrap();
        let claimed = store.claim("a", 1, LONG, "w1").await.unwrap();
        store
            .complete(attempt(
                claimed[0].delivery_id,
                "w1",
                DeliveryStatus::Pending,
                SHORT,
            ))
            .await
            .unwrap();
        // Not leased any more, but not due before its retry delay.
        assert!(
            store.claim("a", 1, LONG, "w2").await.unwrap().is_empty(),
            "{}",
            db.backend
        );
        outlive(SHORT).await;
        let again = store.claim("a", 1, LONG, "w2").await.unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].attempts, 1);
    }
}

#[tokio::test]
async fn a_delivery_created_leased_is_claimed_only_when_its_lease_expires() {
    for db in databases().await {
        let store = db.open().await;
        let mut hot = event("s", Some("e1"), 10);
        hot.received_at_ms = 1_000;
        hot.destinations = vec![
            NewDelivery {
                destination: "a".into(),
                lease: Some(Lease {
                    owner: "w1".into(),
                    for_ms: LONG,
                }),
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
        let b = store.claim("b", 10, LONG, "w2").await.unwrap();
        assert_eq!(b[0].delivery_id, deliveries[1]);
        assert!(store.claim("a", 10, LONG, "w2").await.unwrap().is_empty());
        // The lease holder completes it with the id the insert returned.
        let mut done = attempt(deliveries[0], "w1", DeliveryStatus::Delivered, 0);
        done.status_code = Some(204);
        store.complete(done).await.unwrap();
        let a = store
            .deliveries(&id.0)
            .await
            .unwrap()
            .into_iter()
            .find(|d| d.destination == "a")
            .unwrap();
        assert_eq!((a.status, a.attempts), (DeliveryStatus::Delivered, 1));
        assert!(store.claim("a", 10, LONG, "w2").await.unwrap().is_empty());
        // Had the holder vanished, the expired lease would have put it back in the queue.
        let mut lost = event("s", Some("e2"), 10);
        lost.destinations = vec![NewDelivery {
            destination: "a".into(),
            lease: Some(Lease {
                owner: "gone".into(),
                for_ms: SHORT,
            }),
        }];
        let Stored::New { deliveries, .. } = store.insert(lost).await.unwrap() else {
            panic!()
        };
        assert!(store.claim("a", 10, LONG, "w2").await.unwrap().is_empty());
        outlive(SHORT).await;
        let again = store.claim("a", 10, LONG, "w2").await.unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].delivery_id, deliveries[0]);

        // A stopping dispatcher gives its leases up: due at once, not when they expire.
        assert_eq!(store.release("a", "w2").await.unwrap(), 1);
        assert_eq!(store.release("a", "w2").await.unwrap(), 0);
        let now_due = store.claim("a", 10, LONG, "w3").await.unwrap();
        assert_eq!(now_due[0].delivery_id, deliveries[0]);
    }
}

#[tokio::test]
async fn pauses_hold_and_stats_count_by_destination() {
    for db in databases().await {
        let store = db.open().await;
        assert!(store.set_paused("a", true).await.unwrap());
        assert!(!store.set_paused("a", true).await.unwrap());
        // A paused destination is listed even before it has a delivery.
        let stats = store.destination_stats().await.unwrap();
        assert_eq!(stats.len(), 1);
        assert_eq!(
            (
                stats[0].destination.as_str(),
                stats[0].paused,
                stats[0].counts.pending
            ),
            ("a", true, 0)
        );
        let mut e = event("s", Some("e1"), 3);
        e.received_at_ms = 1_000;
        e.id = EventId(uuid::Uuid::from_u128(1_000u128 << 80).to_string());
        e.destinations = vec![
            NewDelivery::queued("a"),
            NewDelivery {
                destination: "b".into(),
                lease: Some(Lease {
                    owner: "w".into(),
                    for_ms: LONG,
                }),
            },
        ];
        store.insert(e).await.unwrap();
        let stats = store.destination_stats().await.unwrap();
        let a = stats.iter().find(|s| s.destination == "a").unwrap();
        let b = stats.iter().find(|s| s.destination == "b").unwrap();
        assert!(a.paused && !b.paused);
        assert_eq!(
            (a.counts.pending, a.leased, a.oldest_pending_ms),
            (1, 0, Some(1_000))
        );
        assert_eq!((b.counts.pending, b.leased), (1, 1));
        store.close().await;
        let reopened = db.open().await;
        assert_eq!(reopened.paused().await.unwrap(), ["a"]);
        assert!(reopened.set_paused("a", false).await.unwrap());
        assert!(reopened.paused().await.unwrap().is_empty());
    }
}

#[tokio::test]
async fn a_replayed_pending_delivery_keeps_its_lease_and_failed_attempts_read_as_failed() {
    for db in databases().await {
        let store = db.open().await;
        let mut e = event("s", Some("e1"), 3);
        e.destinations = vec![NewDelivery::queued("a")];
        let Stored::New { id, .. } = store.insert(e).await.unwrap() else {
            panic!()
        };
        let claimed = store.claim("a", 1, LONG, "w1").await.unwrap();
        let mut failed = attempt(claimed[0].delivery_id, "w1", DeliveryStatus::Pending, 0);
        failed.status_code = Some(500);
        failed.error = Some("HTTP 500".into());
        store.complete(failed).await.unwrap();
        let history = &store.deliveries(&id.0).await.unwrap()[0].history;
        assert_eq!(history[0].outcome, AttemptOutcome::Failed);
        // In flight again, then replayed: due now, but still leased to its holder.
        let claimed = store.claim("a", 1, SHORT, "w2").await.unwrap();
        assert_eq!(claimed.len(), 1);
        store.replay(vec![(id.clone(), "a".into())]).await.unwrap();
        assert!(store.claim("a", 1, LONG, "w3").await.unwrap().is_empty());
        outlive(SHORT).await;
        assert_eq!(store.claim("a", 1, LONG, "w3").await.unwrap().len(), 1);
    }
}

/// Listings by delivery status walk the status index newest first (a page at a time), and
/// give the same events as testing each one, alone or with other filters and bounds.
#[tokio::test]
async fn status_listings_page_newest_first_alone_and_with_other_filters() {
    for db in databases().await {
        let store = db.open().await;
        // Twelve events to `a`, alternating sources; every even one also to `b`.
        let mut ids = Vec::new();
        for i in 0..12 {
            let source = if i % 2 == 0 { "s" } else { "t" };
            let mut e = event(source, Some(&format!("e{i}")), 3);
            e.destinations = vec![NewDelivery::queued("a")];
            if i % 2 == 0 {
                e.destinations.push(NewDelivery::queued("b"));
            }
            let Stored::New { id, .. } = store.insert(e).await.unwrap() else {
                panic!()
            };
            ids.push(id);
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
        // `a`: every third dies, the rest are delivered; `b` stays pending.
        for claimed in store.claim("a", 100, LONG, "w").await.unwrap() {
            let i = ids.iter().position(|id| *id == claimed.event_id).unwrap();
            let next = if i % 3 == 0 {
                DeliveryStatus::Dead
            } else {
                DeliveryStatus::Delivered
            };
            store
                .complete(attempt(claimed.delivery_id, "w", next, 0))
                .await
                .unwrap();
        }
        let newest_first = |pick: &dyn Fn(usize) -> bool| -> Vec<EventId> {
            (0..12)
                .rev()
                .filter(|i| pick(*i))
                .map(|i| ids[i].clone())
                .collect()
        };
        let listed = |filter: ListFilter| {
            let store = store.clone();
            async move {
                let mut seen = Vec::new();
                let mut before = None;
                loop {
                    let page = store
                        .list(ListFilter {
                            before: before.clone(),
                            limit: Some(2),
                            ..filter.clone()
                        })
                        .await
                        .unwrap();
                    if page.is_empty() {
                        return seen;
                    }
                    assert!(page.len() <= 2);
                    before = page.last().map(|e| e.id.clone());
                    seen.extend(page.into_iter().map(|e| e.id));
                }
            }
        };
        let status = |s| ListFilter {
            status: Some(s),
            ..Default::default()
        };
        assert_eq!(
            listed(status(EventStatus::Dead)).await,
            newest_first(&|i| i % 3 == 0)
        );
        assert_eq!(
            listed(status(EventStatus::Delivered)).await,
            newest_first(&|i| i % 3 != 0)
        );
        assert_eq!(
            listed(status(EventStatus::Pending)).await,
            newest_first(&|i| i % 2 == 0)
        );
        // With another filter, the events are tested one by one: same meaning.
        assert_eq!(
            listed(ListFilter {
                source: Some("s".into()),
                ..status(EventStatus::Dead)
            })
            .await,
            newest_first(&|i| i % 3 == 0 && i % 2 == 0)
        );
        // Time bounds narrow the walk itself.
        let at = |i: usize| EventId::millis_of(&ids[i]).unwrap();
        assert_eq!(
            listed(ListFilter {
                since_ms: Some(at(3)),
                until_ms: Some(at(9)),
                ..status(EventStatus::Delivered)
            })
            .await,
            newest_first(&|i| (3..9).contains(&i) && i % 3 != 0)
        );
        // A replay's selection (no page) means the same.
        let candidates: Vec<EventId> = store
            .replay_candidates(status(EventStatus::Dead))
            .await
            .unwrap()
            .into_iter()
            .rev()
            .map(|(e, _)| e.summary.id)
            .collect();
        assert_eq!(candidates, newest_first(&|i| i % 3 == 0));
    }
}
