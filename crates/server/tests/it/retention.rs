//! Retention: old finished events go, pending ones stay, ingest goes on meanwhile.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use crate::admin::{eventually, get, post_json, send, start_receiver, OPERATOR};
use crate::support::*;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn config(receiver: &str) -> String {
    let destination = |name: &str, extra: &str| {
        format!("[[destination]]\nname = \"{name}\"\nkind = \"http\"\nurl = \"{receiver}/{name}\"\nsecret = \"{SECRET}\"\n{extra}\n")
    };
    format!(
        "[store]\nretention = \"2s\"\n[admin]\ntoken = \"{OPERATOR}\"\n\
         [[source]]\nname = \"gh\"\npath = \"/gh\"\npreset = \"github\"\nsecret = \"s\"\ntenant = \"header:X-Tenant\"\n\
         {}{}{}\
         [[route]]\ntopic = \"ping\"\nto = [\"ok\"]\n\
         [[route]]\ntopic = \"fail\"\nto = [\"flip\"]\n\
         [[route]]\ntopic = \"hold\"\nto = [\"held\"]\n",
        destination("ok", ""),
        destination("flip", "max_attempts = 1"),
        destination("held", ""),
    )
}

async fn exists(gw: &TestGateway, provider_id: &str) -> bool {
    let (status, page) = get(
        gw,
        &format!("/api/v1/events?provider_id={provider_id}"),
        Some(OPERATOR),
    )
    .await;
    assert_eq!(status, 200);
    !page["items"].as_array().unwrap().is_empty()
}

#[tokio::test]
async fn old_finished_events_are_pruned_pending_ones_stay_and_ingest_goes_on() {
    let (url, receiver) = start_receiver().await;
    let gw = Arc::new(spawn(&config(&url)).await);
    post_json(&gw, "/api/v1/destinations/held/pause", OPERATOR, json!({})).await;
    for (id, topic) in [
        ("done", "ping"),
        ("died", "fail"),
        ("nowhere", "none"),
        ("waiting", "hold"),
    ] {
        assert_eq!(send(&gw, id, topic).await, 200);
    }
    eventually("delivered and dead", Duration::from_secs(10), async || {
        let (_, d) = get(&gw, "/api/v1/destinations/flip", Some(OPERATOR)).await;
        receiver.count("ok") == 1 && d["dead"] == 1
    })
    .await;
    // Load while retention runs: every request is answered 200.
    let load = {
        let gw = gw.clone();
        tokio::spawn(async move {
            for i in 0..60 {
                assert_eq!(send(&gw, &format!("load-{i}"), "ping").await, 200);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    eventually(
        "the old finished events pruned",
        Duration::from_secs(15),
        async || {
            !exists(&gw, "done").await
                && !exists(&gw, "died").await
                && !exists(&gw, "nowhere").await
        },
    )
    .await;
    assert!(
        exists(&gw, "waiting").await,
        "an event with a pending delivery stays"
    );
    load.await.unwrap();
    // The newest events (younger than 2 s) are still there.
    assert!(exists(&gw, "load-59").await);
    let response = client()
        .get(gw.url("/metrics"))
        .bearer_auth(OPERATOR)
        .send()
        .await
        .unwrap();
    let text = response.text().await.unwrap();
    let pruned: f64 = text
        .lines()
        .find(|l| l.starts_with("hookgate_events_pruned_total{source=\"gh\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .unwrap()
        .parse()
        .unwrap();
    assert!(pruned >= 3.0, "{pruned}");
    // Resumed, the held event is delivered, then pruned like the others.
    post_json(&gw, "/api/v1/destinations/held/resume", OPERATOR, json!({})).await;
    eventually(
        "the held event delivered, then pruned",
        Duration::from_secs(15),
        async || receiver.count("held") == 1 && !exists(&gw, "waiting").await,
    )
    .await;
    let gw = Arc::into_inner(gw).unwrap();
    gw.stop().await;
}
