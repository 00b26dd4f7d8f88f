//! Rate limits: per source and per peer, 429 with `Retry-After`, before verification.

use std::net::IpAddr;

use crate::support::*;

async fn post_from(local: &str, url: &str, headers: &[(&str, &str)]) -> (u16, Option<String>) {
    let client = reqwest::Client::builder()
        .local_address(local.parse::<IpAddr>().unwrap())
        .build()
        .unwrap();
    let mut request = client.post(url).body("{}");
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let response = request.send().await.unwrap();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (response.status().as_u16(), retry_after)
}

#[tokio::test]
async fn a_flood_on_one_source_gets_429_before_verification_and_leaves_the_others_alone() {
    let gw = spawn(
        "[[source]]\nname = \"limited\"\npath = \"/limited\"\npreset = \"github\"\nsecret = \"s\"\nrate_limit = \"1/h\"\nburst = 3\n\
         [[source]]\nname = \"other\"\npath = \"/other\"\npreset = \"github\"\nsecret = \"s\"\n",
    )
    .await;
    // Unsigned requests: refused by verification (401) while within the burst…
    for _ in 0..3 {
        assert_eq!(
            post_from("127.0.0.1", &gw.url("/limited"), &[]).await.0,
            401
        );
    }
    // …then answered 429 without being verified at all, from any peer.
    for peer in ["127.0.0.1", "127.0.0.2"] {
        let (status, retry_after) = post_from(peer, &gw.url("/limited"), &[]).await;
        assert_eq!(status, 429);
        let seconds: u64 = retry_after.expect("Retry-After").parse().unwrap();
        assert!((1..=3600).contains(&seconds), "{seconds}");
    }
    // The other source is not affected.
    for _ in 0..10 {
        assert_eq!(post_from("127.0.0.1", &gw.url("/other"), &[]).await.0, 401);
    }
    let counts = gw.gateway.metrics().sources()[0].counts();
    let count = |outcome: &str| counts.iter().find(|(o, _)| *o == outcome).unwrap().1;
    assert_eq!((count("rate_limited"), count("missing_credential")), (2, 3));
    gw.stop().await;
}

#[tokio::test]
async fn one_noisy_peer_is_limited_and_the_others_are_not() {
    let gw = spawn(
        "[server]\npeer_rate_limit = \"1/h\"\npeer_burst = 2\n\
         [[source]]\nname = \"a\"\npath = \"/a\"\npreset = \"github\"\nsecret = \"s\"\n\
         [[source]]\nname = \"b\"\npath = \"/b\"\npreset = \"github\"\nsecret = \"s\"\n",
    )
    .await;
    assert_eq!(post_from("127.0.0.1", &gw.url("/a"), &[]).await.0, 401);
    assert_eq!(post_from("127.0.0.1", &gw.url("/b"), &[]).await.0, 401);
    // The peer's budget is across sources.
    assert_eq!(post_from("127.0.0.1", &gw.url("/a"), &[]).await.0, 429);
    assert_eq!(post_from("127.0.0.1", &gw.url("/b"), &[]).await.0, 429);
    assert_eq!(post_from("127.0.0.2", &gw.url("/a"), &[]).await.0, 401);
    // Health is not rate limited.
    let health = reqwest::Client::builder()
        .local_address("127.0.0.1".parse::<IpAddr>().unwrap())
        .build()
        .unwrap()
        .get(gw.url("/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    gw.stop().await;
}
