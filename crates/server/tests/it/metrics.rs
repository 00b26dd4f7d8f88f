//! `/metrics` read by a Prometheus text parser, with values checked after known traffic.

use std::collections::HashMap;
use std::time::Duration;

use crate::admin::{config, eventually, get, send, start_receiver, READER};
use crate::support::*;

/// Samples by name and sorted labels.
struct Scraped {
    samples: Vec<prometheus_parse::Sample>,
}

impl Scraped {
    async fn from(gw: &TestGateway) -> Scraped {
        let response = client()
            .get(gw.url("/metrics"))
            .bearer_auth(READER)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            content_type.starts_with("application/openmetrics-text"),
            "{content_type}"
        );
        let text = response.text().await.unwrap();
        let lines = text.lines().map(|l| Ok(l.to_owned()));
        let scrape = prometheus_parse::Scrape::parse(lines).expect("valid exposition text");
        assert!(!scrape.samples.is_empty());
        Scraped {
            samples: scrape.samples,
        }
    }

    fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let wanted: HashMap<&str, &str> = labels.iter().copied().collect();
        let sample = self.samples.iter().find(|s| {
            s.metric == name && wanted.iter().all(|(k, v)| s.labels.get(k) == Some(*v))
        })?;
        Some(match &sample.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => *v,
            prometheus_parse::Value::Histogram(buckets) => {
                buckets.iter().map(|b| b.count).fold(0.0, f64::max)
            }
            prometheus_parse::Value::Summary(_) => f64::NAN,
        })
    }

    fn expect(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.value(name, labels)
            .unwrap_or_else(|| panic!("no sample {name} {labels:?}"))
    }
}

#[tokio::test]
async fn metrics_count_what_happened() {
    let (url, receiver) = start_receiver().await;
    let gw = spawn(&config(&url)).await;
    for id in ["m-1", "m-2", "m-3"] {
        assert_eq!(send(&gw, id, "ping").await, 200);
    }
    assert_eq!(send(&gw, "m-1", "ping").await, 200, "a duplicate");
    assert_eq!(
        send(&gw, "m-4", "push").await,
        200,
        "to ok and flip (dead at once)"
    );
    for _ in 0..2 {
        let (status, _, _) = post(
            &gw.url("/gh"),
            "{}",
            &[("X-Hub-Signature-256", "sha256=00ff")],
        )
        .await;
        assert_eq!(status, 401);
    }
    eventually("deliveries", Duration::from_secs(10), async || {
        receiver.count("ok") == 4
            && get(&gw, "/api/v1/destinations/flip", Some(READER)).await.1["dead"] == 1
    })
    .await;

    let m = Scraped::from(&gw).await;
    let requests = |outcome: &str| {
        m.expect(
            "hookgate_requests_total",
            &[("source", "gh"), ("outcome", outcome)],
        )
    };
    assert_eq!(requests("accepted"), 4.0);
    assert_eq!(requests("duplicate"), 1.0);
    assert_eq!(requests("bad_signature"), 2.0);
    assert_eq!(
        requests("too_large"),
        0.0,
        "every outcome has a series from the start"
    );
    assert_eq!(
        m.expect("hookgate_ingest_seconds_count", &[("source", "gh")]),
        7.0
    );
    let deliveries = |d: &str, outcome: &str| {
        m.expect(
            "hookgate_deliveries_total",
            &[("destination", d), ("outcome", outcome)],
        )
    };
    assert_eq!(deliveries("ok", "delivered"), 4.0);
    assert_eq!(deliveries("flip", "dead"), 1.0);
    assert_eq!(deliveries("flip", "delivered"), 0.0);
    assert_eq!(
        m.expect(
            "hookgate_delivery_attempt_seconds_count",
            &[("destination", "ok")]
        ),
        4.0
    );
    let dispatched = m.expect(
        "hookgate_delivery_dispatch_total",
        &[("destination", "ok"), ("path", "handover")],
    ) + m.expect(
        "hookgate_delivery_dispatch_total",
        &[("destination", "ok"), ("path", "queue")],
    );
    assert_eq!(dispatched, 4.0);
    assert_eq!(
        m.expect("hookgate_dead_letters", &[("destination", "flip")]),
        1.0
    );
    assert_eq!(
        m.expect("hookgate_delivery_backlog", &[("destination", "ok")]),
        0.0
    );
    assert_eq!(
        m.expect(
            "hookgate_delivery_oldest_pending_age_seconds",
            &[("destination", "ok")]
        ),
        0.0
    );
    assert_eq!(
        m.expect("hookgate_destination_paused", &[("destination", "ok")]),
        0.0
    );
    assert!(m.expect("hookgate_store_size_bytes", &[]) > 0.0);
    // Every insert and attempt record went through a commit.
    let batches = m.expect("hookgate_store_commit_batch_size_count", &[]);
    let writes = m.expect("hookgate_store_commit_batch_size_sum", &[]);
    assert!(
        batches >= 1.0 && writes >= 5.0,
        "{batches} commits, {writes} writes"
    );
    assert_eq!(m.expect("hookgate_store_commit_failures_total", &[]), 0.0);
    assert_eq!(m.expect("hookgate_refusals_unrecorded_total", &[]), 0.0);
    gw.stop().await;
}

#[tokio::test]
async fn a_backlog_shows_in_the_gauges() {
    let (url, _) = start_receiver().await;
    let gw = spawn(&config(&url)).await;
    crate::admin::post_json(
        &gw,
        "/api/v1/destinations/ok/pause",
        crate::admin::OPERATOR,
        serde_json::json!({}),
    )
    .await;
    for i in 0..3 {
        assert_eq!(send(&gw, &format!("b-{i}"), "ping").await, 200);
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let m = Scraped::from(&gw).await;
    assert_eq!(
        m.expect("hookgate_delivery_backlog", &[("destination", "ok")]),
        3.0
    );
    assert_eq!(
        m.expect("hookgate_destination_paused", &[("destination", "ok")]),
        1.0
    );
    let age = m.expect(
        "hookgate_delivery_oldest_pending_age_seconds",
        &[("destination", "ok")],
    );
    assert!((1.0..60.0).contains(&age), "{age}");
    gw.stop().await;
}

#[tokio::test]
async fn oidc_key_fetches_are_counted_by_issuer_and_result() {
    // An issuer that is down: the fetch fails, and is counted as such.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let config = format!(
        "[admin]\ntoken = \"{}\"\nread_token = \"{}\"\n[[source]]\nname = \"pps\"\npath = \"/pps\"\npreset = \"pps\"\nallow_http_issuers = true\n[source.issuers]\n\"{issuer}\" = []\n",
        crate::admin::OPERATOR,
        READER
    );
    let gw = spawn(&config).await;
    let token = {
        // A syntactically valid token naming the issuer; its keys cannot be fetched.
        use base64::Engine as _;
        let b64 = |v: serde_json::Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
        };
        format!(
            "{}.{}.c2ln",
            b64(serde_json::json!({"alg": "RS256", "kid": "k1", "typ": "JWT"})),
            b64(serde_json::json!({"iss": issuer, "aud": "a", "exp": 4102444800u64}))
        )
    };
    let (status, _, _) = post(
        &gw.url("/pps"),
        "{}",
        &[("Authorization", &format!("Bearer {token}"))],
    )
    .await;
    assert_eq!(status, 500, "keys unavailable");
    let m = Scraped::from(&gw).await;
    assert_eq!(
        m.expect(
            "hookgate_oidc_key_fetches_total",
            &[("issuer", &issuer), ("result", "failed")]
        ),
        1.0
    );
    assert_eq!(
        m.expect(
            "hookgate_oidc_key_fetches_total",
            &[("issuer", &issuer), ("result", "ok")]
        ),
        0.0
    );
    assert_eq!(
        m.expect(
            "hookgate_requests_total",
            &[("source", "pps"), ("outcome", "keys_unavailable")]
        ),
        1.0
    );
    gw.stop().await;
}
