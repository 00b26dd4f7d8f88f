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
    let kept = tempfile::tempdir().unwrap();
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
            let value = match key.as_str() {
                // Where a handed-over secret is kept: this test's own directory.
                "secret_path" => kept.path().join(p.name()).display().to_string(),
                _ => value.as_str().unwrap().to_owned(),
            };
            config.push_str(&format!("{key} = {}\n", quoted(&value)));
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
        for pair in h["reply_headers"].as_array().unwrap() {
            assert_eq!(
                headers[pair[0].as_str().unwrap()],
                pair[1].as_str().unwrap(),
                "{what}"
            );
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

/// Asana hands its signing secret over once, in the handshake: it is echoed, kept in
/// `secret_path` (0600), used to verify the events that follow — after a restart too —
/// and a second handshake with another secret is refused without touching the file.
#[tokio::test]
async fn asana_keeps_the_secret_of_its_handshake_and_verifies_with_it() {
    use hookgate_verify::HashAlgorithm;
    let dir = tempfile::tempdir().unwrap();
    let secret_path = dir.path().join("asana.secret");
    let config = format!(
        "[[source]]\nname = \"asana\"\npath = \"/asana\"\npreset = \"asana\"\nsecret_path = {}\n",
        quoted(&secret_path.display().to_string())
    );
    let gw = spawn(&config).await;
    let body =
        r#"{"events":[{"action":"changed","resource":{"gid":"1202","resource_type":"task"}}]}"#;
    let secret = "b537207f20cbfa02357cf448134da559e8bd39d61597dcd5631b8012eae53e81";
    let signature = hex::encode(HashAlgorithm::Sha256.mac_of(secret.as_bytes(), body.as_bytes()));
    let event = |gw: &TestGateway| {
        let url = gw.url("/asana");
        let signature = signature.clone();
        async move {
            client()
                .post(url)
                .header("X-Hook-Signature", signature)
                .body(body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(event(&gw).await, 401, "no secret before the handshake");
    let handshake = |secret: &'static str| {
        client()
            .post(gw.url("/asana"))
            .header("X-Hook-Secret", secret)
            .send()
    };
    let response = handshake(secret).await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.headers()["x-hook-secret"], secret);
    assert_eq!(std::fs::read_to_string(&secret_path).unwrap(), secret);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&secret_path)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert_eq!(event(&gw).await, 200, "verified with the kept secret");
    let again = handshake(secret).await.unwrap();
    assert_eq!(again.status().as_u16(), 200, "the same handshake repeated");
    let other = handshake("0000111122223333").await.unwrap();
    assert_eq!(other.status().as_u16(), 409, "another secret is refused");
    assert_eq!(std::fs::read_to_string(&secret_path).unwrap(), secret);
    let stored = gw.stored().await;
    assert_eq!(stored.len(), 1, "the handshakes are not stored");
    let state = gw.stop().await;
    let gw = spawn_in(state, &config).await;
    assert_eq!(event(&gw).await, 200, "the kept secret survives a restart");
    gw.stop().await;

    // A file that cannot be written is hookgate's failure: 503, for Asana to retry.
    let unwritable =
        format!(
        "[[source]]\nname = \"asana\"\npath = \"/asana\"\npreset = \"asana\"\nsecret_path = {}\n",
        quoted(&dir.path().join("missing/asana.secret").display().to_string())
    );
    let gw = spawn(&unwritable).await;
    let response = client()
        .post(gw.url("/asana"))
        .header("X-Hook-Secret", secret)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 503);
    assert!(response.headers().contains_key("retry-after"));
    gw.stop().await;
}
