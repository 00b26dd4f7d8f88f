//! The five founding providers (PPS, Trivial Security, QI Tech, Entrupy, freispace) end to
//! end: the accepted request is stored and answered as the provider's documentation says;
//! every refusal gets the documented status and body and stores nothing.

use crate::support::*;

#[tokio::test]
async fn entrupy_over_http() {
    let f = &fixtures()["entrupy"];
    let gw = spawn(&format!(
        "[[source]]\nname = \"entrupy\"\npath = \"/notify\"\npreset = \"entrupy\"\nsecret = {}",
        quoted(f["secret"].as_str().unwrap())
    ))
    .await;
    let body = f["body"].as_str().unwrap();
    let sig = f["headers"]["Entrupy-Signature"].as_str().unwrap();
    let (status, headers, text) = post(
        &gw.url("/notify"),
        body.to_owned(),
        &[("Entrupy-Signature", sig)],
    )
    .await;
    assert_eq!((status, text.as_str()), (200, r#"{"status":"ok"}"#));
    assert_eq!(headers["content-type"], "application/json");
    for (headers, what) in [
        (vec![], "missing"),
        (vec![("Entrupy-Signature", "SHA1:abc=")], "other hash"),
        (vec![("Entrupy-Signature", "SHA256:AAAA")], "wrong"),
        (vec![("Entrupy-Signature", "garbage")], "malformed"),
    ] {
        let (status, _, text) = post(&gw.url("/notify"), body.to_owned(), &headers).await;
        assert_eq!(
            (status, text.as_str()),
            (401, r#"{"error":"unauthorized"}"#),
            "{what}"
        );
    }
    let stored = gw.stored().await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].2, body.as_bytes());
    assert!(
        stored[0]
            .3
            .contains(r#"["entrupy-signature","[redacted]"]"#),
        "{}",
        stored[0].3
    );
    assert!(!stored[0].3.contains(sig));
    gw.stop().await;
}

#[tokio::test]
async fn freispace_over_http() {
    let f = &fixtures()["freispace"];
    let gw = spawn(&format!("[[source]]\nname = \"freispace\"\npath = \"/webhook\"\npreset = \"freispace\"\nsecret = {}", quoted(f["secret"].as_str().unwrap()))).await;
    let body = f["body"].as_str().unwrap();
    let sig = f["headers"]["X-Freispace-Signature"].as_str().unwrap();
    let (status, _, text) = post(
        &gw.url("/webhook"),
        body.to_owned(),
        &[("X-Freispace-Signature", sig)],
    )
    .await;
    assert_eq!(
        (status, text.as_str()),
        (200, r#"{"message":"Webhook processed successfully"}"#)
    );
    let (status, _, text) = post(&gw.url("/webhook"), body.to_owned(), &[]).await;
    assert_eq!(
        (status, text.as_str()),
        (400, r#"{"message":"Missing signature"}"#)
    );
    let (status, _, text) = post(
        &gw.url("/webhook"),
        body.to_owned(),
        &[("X-Freispace-Signature", &"f".repeat(64))],
    )
    .await;
    assert_eq!(
        (status, text.as_str()),
        (403, r#"{"message":"Invalid signature"}"#)
    );
    assert_eq!(gw.stored().await.len(), 1);
    gw.stop().await;
}

#[tokio::test]
async fn qitech_over_http() {
    let f = &fixtures()["qitech"];
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("qitech_public.pem"),
        f["public_key"].as_str().unwrap(),
    )
    .unwrap();
    let gw = spawn(&format!(
        "[[source]]\nname = \"qitech\"\npath = \"/client_webhook_endpoint\"\npreset = \"qitech\"\npublic_key_file = {}\napi_client_key = {}",
        quoted(&dir.path().join("qitech_public.pem").display().to_string()),
        quoted(f["api_client_key"].as_str().unwrap())
    ))
    .await;
    let body = f["body"].as_str().unwrap().as_bytes();
    let src = gw.gateway.config().sources[0].source.clone();
    let sign = |path: &str, body: &'static [u8]| {
        let mut r = hookgate_verify::Request::post(path, body);
        let keys = hookgate_verify::SigningKeys {
            private_key_pem: Some(f["private_key"].as_str().unwrap().to_owned()),
            ..Default::default()
        };
        src.sign(&mut r, time::OffsetDateTime::now_utc(), &keys)
            .unwrap();
        pairs(&r)
    };
    let body: &'static [u8] = Box::leak(body.to_vec().into_boxed_slice());
    let good = sign("/client_webhook_endpoint", body);
    let as_refs = |h: &Vec<(String, String)>| {
        h.iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect::<Vec<_>>()
    };
    let send = |headers: Vec<(String, String)>, body: &'static [u8]| {
        let url = gw.url("/client_webhook_endpoint");
        async move {
            let headers: Vec<(&str, &str)> = headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            post(&url, body.to_vec(), &headers).await
        }
    };
    let (status, _, text) = send(as_refs(&good), body).await;
    assert_eq!((status, text.as_str()), (200, r#"{"status":"ok"}"#));
    // Signed for another path; tampered body; wrong API key; no token.
    let (status, _, _) = send(sign("/elsewhere", body), body).await;
    assert_eq!(status, 403);
    let (status, _, _) = send(as_refs(&good), br#"{"body_sample": "tampered"}"#).await;
    assert_eq!(status, 403);
    let mut wrong_key = as_refs(&good);
    wrong_key.retain(|(k, _)| k != "api-client-key");
    wrong_key.push(("API-CLIENT-KEY".into(), "not-the-key".into()));
    assert_eq!(send(wrong_key, body).await.0, 403);
    let no_token: Vec<(String, String)> = as_refs(&good)
        .into_iter()
        .filter(|(k, _)| k != "authorization")
        .collect();
    assert_eq!(send(no_token, body).await.0, 403);
    assert_eq!(gw.stored().await.len(), 1);
    gw.stop().await;
}

#[tokio::test]
async fn trivialsec_over_http() {
    let gw = spawn(
        "[[source]]\nname = \"trivialsec\"\npath = \"/webhook/trivialsec\"\npreset = \"trivialsec\"\nsecret = \"s3cret\"\naccount = \"youraccountname\"\nsubject = \"urn:uuid:bc6e2cd5-1f59-487f-b05b-49946bd078b2\"",
    )
    .await;
    let body = br#"{"event_id":"0f6c7b34-8f5d-4b43-9a7c-6e9b5b1d2c11","event_name":"report_created","timestamp":"2024-01-01T10:00:00","payload":{"id":1}}"#;
    let (status, _, text) = send_signed(&gw, "trivialsec", "/webhook/trivialsec", body, &[]).await;
    assert_eq!((status, text.as_str()), (200, "null"));
    // The same event again: the original success, marked as a duplicate, not stored twice.
    let (status, headers, text) =
        send_signed(&gw, "trivialsec", "/webhook/trivialsec", body, &[]).await;
    assert_eq!(
        (
            status,
            text.as_str(),
            headers["hookgate-duplicate"].to_str().unwrap()
        ),
        (200, "null", "true")
    );
    // Auth failures: empty 403, as FastAPI's Response(status_code=403).
    let (status, headers, text) = post(
        &gw.url("/webhook/trivialsec"),
        body.to_vec(),
        &[("Authorization", "Bearer not.a.token")],
    )
    .await;
    assert_eq!((status, text.as_str()), (403, ""));
    assert!(headers.get("content-type").is_none());
    let (status, _, text) = post(&gw.url("/webhook/trivialsec"), body.to_vec(), &[]).await;
    assert_eq!((status, text.as_str()), (403, ""));
    // Payload model: 422.
    let bad = br#"{"event_id":"0f6c7b34-8f5d-4b43-9a7c-6e9b5b1d2c11","event_name":"nope","timestamp":"2024-01-01T10:00:00","payload":{}}"#;
    let (status, _, text) = send_signed(&gw, "trivialsec", "/webhook/trivialsec", bad, &[]).await;
    assert_eq!(status, 422, "{text}");
    let stored = gw.stored().await;
    assert_eq!(stored.len(), 1);
    assert_eq!(
        stored[0].1.as_deref(),
        Some("0f6c7b34-8f5d-4b43-9a7c-6e9b5b1d2c11")
    );
    gw.stop().await;
}
