//! Every preset handshake over real HTTP: the gateway answers it exactly as the provider's
//! documentation expects (status, body, content type) and stores nothing. The requests and
//! answers are the presets' test vectors (`crates/verify/tests/vectors/`); their signed
//! timestamps are from the vectors' time, so the sources here take a wide tolerance.

use hookgate_verify::preset::{self, ParamKind};
use serde_json::Value;

use crate::support::*;

fn vector(name: &str) -> Value {
    let path = format!(
        "{}/../verify/tests/vectors/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

#[tokio::test]
async fn every_preset_handshake_is_answered_over_http_and_never_stored() {
    let mut config = String::new();
    let mut handshakes = Vec::new();
    for p in preset::catalogue() {
        let file = vector(p.name());
        let Some(list) = file["handshakes"].as_array().filter(|l| !l.is_empty()) else {
            continue;
        };
        // SNS's certificate is fetched from AWS: its handshakes go over HTTP in the CLI's
        // `sns_end_to_end` test, with a certificate served on loopback.
        if file["cases"][0]["keys"].get("certificates").is_some() {
            continue;
        }
        config.push_str(&format!(
            "[[source]]\nname = \"{0}\"\npath = \"/hs/{0}\"\npreset = \"{0}\"\n",
            p.name()
        ));
        for (key, value) in file["cases"][0]["params"].as_object().unwrap() {
            config.push_str(&format!("{key} = {}\n", quoted(value.as_str().unwrap())));
        }
        if p.param("tolerance")
            .is_some_and(|q| q.kind() == ParamKind::Duration)
        {
            config.push_str("tolerance = \"3650d\"\n");
        }
        for h in list {
            handshakes.push((p.name().to_owned(), h.clone()));
        }
    }
    assert!(handshakes.len() >= 10, "the handshakes shrank");
    let gw = spawn(&config).await;
    let client = client();
    for (name, h) in &handshakes {
        let what = format!("{name} `{}`", h["name"].as_str().unwrap());
        let mut url = gw.url(&format!("/hs/{name}"));
        if let Some(query) = h["query"].as_str() {
            url = format!("{url}?{query}");
        }
        let method = reqwest::Method::from_bytes(h["method"].as_str().unwrap().as_bytes()).unwrap();
        let mut request = client
            .request(method.clone(), &url)
            .body(h["body"].as_str().unwrap().to_owned());
        for pair in h["headers"].as_array().unwrap() {
            request = request.header(pair[0].as_str().unwrap(), pair[1].as_str().unwrap());
        }
        let response = request.send().await.unwrap();
        assert_eq!(
            response.status().as_u16() as u64,
            h["status"].as_u64().unwrap(),
            "{what}"
        );
        let headers = response.headers().clone();
        assert!(
            response.headers().get("hookgate-event-id").is_none(),
            "{what}: a handshake is not an event"
        );
        let body = response.text().await.unwrap();
        if method != reqwest::Method::HEAD {
            assert_eq!(body, h["reply"].as_str().unwrap(), "{what}");
        }
        if let Some(content_type) = h["content_type"].as_str() {
            assert_eq!(headers["content-type"], content_type, "{what}");
            assert_eq!(headers["x-content-type-options"], "nosniff", "{what}");
        }
    }
    // A GET that is no handshake of its source is refused, and nothing was stored.
    let (status, _, _) = {
        let response = client
            .get(gw.url("/hs/meta?hub.mode=subscribe&hub.challenge=1&hub.verify_token=wrong"))
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), (), ())
    };
    assert_eq!(status, 401, "a wrong verify token");
    assert!(gw.stored().await.is_empty(), "handshakes are never stored");
    gw.stop().await;
}
