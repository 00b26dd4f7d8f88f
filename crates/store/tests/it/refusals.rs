//! Refused requests: a bounded ring, listed newest first.

use hookgate_store::*;

use crate::support::*;

#[tokio::test]
async fn refusals_are_a_bounded_ring_listed_newest_first() {
    for db in databases().await {
        let store = db.open().await;
        let refusal = |i: i64| Refusal {
            source: if i % 2 == 0 { "a" } else { "b" }.into(),
            received_at_ms: 1_000 + i,
            peer: Some("127.0.0.1:5000".into()),
            kind: "bad_signature".into(),
            detail: format!("refusal {i}"),
            method: "POST".into(),
            path: "/h".into(),
            status: 401,
            headers: vec![("x-signature".into(), "[redacted]".into())],
            body_head: bytes::Bytes::from_static(b"{}"),
            body_size: 2,
        };
        let total = REFUSALS_KEPT + 300;
        for i in 0..total {
            while !store.record_refusal(refusal(i)) {
                tokio::task::yield_now().await;
            }
        }
        // Recorded without waiting: they are committed soon after.
        let started = std::time::Instant::now();
        let kept = loop {
            let kept = store
                .refusals(RefusalFilter {
                    limit: Some(u32::try_from(total).unwrap()),
                    ..Default::default()
                })
                .await
                .unwrap();
            if kept
                .first()
                .is_some_and(|r| r.request.detail == format!("refusal {}", total - 1))
                || started.elapsed() > std::time::Duration::from_secs(10)
            {
                break kept;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        };
        assert_eq!(kept.len() as i64, REFUSALS_KEPT, "{}", db.backend);
        assert_eq!(
            kept.last().unwrap().request.detail,
            format!("refusal {}", total - REFUSALS_KEPT),
            "the oldest go first"
        );
        let newest = store
            .refusals(RefusalFilter {
                source: Some("b".into()),
                limit: Some(3),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(newest.len(), 3);
        assert_eq!(newest[0].request.detail, format!("refusal {}", total - 1));
        assert!(newest[0].id > newest[1].id);
        let next = store
            .refusals(RefusalFilter {
                source: Some("b".into()),
                before: Some(newest[2].id),
                limit: Some(1),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(next[0].request.detail, format!("refusal {}", total - 7));
        assert_eq!(next[0].request.headers, refusal(0).headers);
    }
}
