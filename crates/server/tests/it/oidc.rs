//! PPS end to end against an OIDC issuer served on loopback: discovery + JWKS, key
//! rotation, issuer down → cached keys still verify, untrusted issuer never contacted.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use hookgate_verify::{Algorithm, SigningKeys};

use crate::support::*;

#[derive(Default)]
struct IssuerState {
    jwks: String,
    up: bool,
    discovery_hits: usize,
    jwks_hits: usize,
}

struct Issuer {
    url: String,
    state: Arc<Mutex<IssuerState>>,
}

async fn start_issuer() -> Issuer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let url = format!("http://127.0.0.1:{}", addr.port());
    let state = Arc::new(Mutex::new(IssuerState {
        up: true,
        ..Default::default()
    }));
    let issuer = url.clone();
    let app = axum::Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(move |State(s): State<Arc<Mutex<IssuerState>>>| {
                let issuer = issuer.clone();
                async move {
                    let mut s = s.lock().unwrap();
                    s.discovery_hits += 1;
                    if !s.up {
                        return StatusCode::SERVICE_UNAVAILABLE.into_response();
                    }
                    axum::Json(
                        serde_json::json!({"issuer": issuer, "jwks_uri": format!("{issuer}/jwks")}),
                    )
                    .into_response()
                }
            }),
        )
        .route(
            "/jwks",
            get(|State(s): State<Arc<Mutex<IssuerState>>>| async move {
                let mut s = s.lock().unwrap();
                s.jwks_hits += 1;
                if !s.up {
                    return StatusCode::SERVICE_UNAVAILABLE.into_response();
                }
                (
                    [
                        ("content-type", "application/json"),
                        ("cache-control", "public, max-age=3600"),
                    ],
                    s.jwks.clone(),
                )
                    .into_response()
            }),
        )
        .with_state(state.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Issuer { url, state }
}

fn rsa_key(kid: &str) -> (String, serde_json::Value) {
    let rsa = openssl::rsa::Rsa::generate(2048).unwrap();
    let pem = String::from_utf8(
        openssl::pkey::PKey::from_rsa(rsa)
            .unwrap()
            .private_key_to_pem_pkcs8()
            .unwrap(),
    )
    .unwrap();
    let mut jwk = josekit::jws::RS256
        .key_pair_from_pem(&pem)
        .unwrap()
        .to_jwk_public_key();
    jwk.set_key_id(kid);
    (pem, serde_json::from_str(&jwk.to_string()).unwrap())
}

fn pps_config(issuer: &str) -> String {
    format!(
        "[[source]]\nname = \"pps\"\npath = \"/pps\"\npreset = \"pps\"\nallow_http_issuers = true\n[source.issuers]\n{} = [\"pps-aud\"]\n\"http://127.0.0.1:9/never\" = []\n",
        quoted(issuer)
    )
}

/// The headers of a PPS request for `webhook_id`, its token minted by `issuer` with `pem`.
fn signed_pps(
    gw: &TestGateway,
    issuer: &str,
    pem: &str,
    kid: &str,
    webhook_id: &str,
) -> Vec<(String, String)> {
    let src = gw.gateway.config().sources[0].source.clone();
    let mut request = hookgate_verify::Request::post("/pps", PPS_BODY);
    for (k, v) in [
        ("X-Pps-Topic", "orders/placed"),
        ("X-Pps-Tenant-Id", "OU1243"),
        ("X-Pps-Webhook-Id", webhook_id),
        ("X-Pps-Triggered-At", "2024-01-1T10:00:00.7777748Z"),
    ] {
        request.headers.append(k, v);
    }
    let keys = SigningKeys {
        private_key_pem: Some(pem.to_owned()),
        key_id: Some(kid.into()),
        issuer: Some(issuer.into()),
        audience: Some("pps-aud".into()),
        algorithm: Some(Algorithm::RS256),
        ..Default::default()
    };
    src.sign(&mut request, time::OffsetDateTime::now_utc(), &keys)
        .unwrap();
    pairs(&request)
}

const PPS_BODY: &[u8] = br#"{"orderId":"SO-1"}"#;

async fn send_pps(
    gw: &TestGateway,
    issuer: &str,
    pem: &str,
    kid: &str,
    webhook_id: &str,
) -> (u16, String) {
    let headers = signed_pps(gw, issuer, pem, kid, webhook_id);
    let headers: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let (status, _, text) = post(&gw.url("/pps"), PPS_BODY.to_vec(), &headers).await;
    (status, text)
}

#[tokio::test]
async fn discovery_rotation_outage_and_untrusted_issuers() {
    let issuer = start_issuer().await;
    let (key1, jwk1) = rsa_key("k1");
    issuer.state.lock().unwrap().jwks = serde_json::json!({"keys": [jwk1]}).to_string();
    let gw = spawn(&pps_config(&issuer.url)).await;

    // First request: discovery + JWKS fetched once, event stored with the X-Pps-* metadata.
    assert_eq!(send_pps(&gw, &issuer.url, &key1, "k1", "w-1").await.0, 200);
    assert_eq!(send_pps(&gw, &issuer.url, &key1, "k1", "w-2").await.0, 200);
    {
        let s = issuer.state.lock().unwrap();
        assert_eq!((s.discovery_hits, s.jwks_hits), (1, 1), "keys are cached");
    }
    let (event, _) = event_by_provider_id(gw.gateway.store(), "w-1").await;
    assert_eq!(
        (
            event.summary.topic.as_deref().unwrap(),
            event.summary.tenant.as_deref().unwrap(),
            event.provider_timestamp.as_deref().unwrap()
        ),
        ("orders/placed", "OU1243", "2024-01-1T10:00:00.7777748Z")
    );

    // Rotation: the issuer publishes k2; a token with kid k2 triggers one refetch.
    let (key2, jwk2) = rsa_key("k2");
    issuer.state.lock().unwrap().jwks = serde_json::json!({"keys": [jwk1, jwk2]}).to_string();
    // Within the cooldown of the last fetch an unknown kid is not refetched…
    assert_eq!(send_pps(&gw, &issuer.url, &key2, "k2", "w-3").await.0, 403);
    assert_eq!(issuer.state.lock().unwrap().jwks_hits, 1);
    // …after it, it is, once.
    tokio::time::sleep(hookgate_server::jwks::REFETCH_COOLDOWN).await;
    assert_eq!(send_pps(&gw, &issuer.url, &key2, "k2", "w-4").await.0, 200);
    assert_eq!(issuer.state.lock().unwrap().jwks_hits, 2);

    // The issuer goes down: the cached keys still verify.
    issuer.state.lock().unwrap().up = false;
    assert_eq!(send_pps(&gw, &issuer.url, &key1, "k1", "w-5").await.0, 200);
    assert_eq!(send_pps(&gw, &issuer.url, &key2, "k2", "w-6").await.0, 200);

    // An untrusted issuer is refused (403) and never contacted.
    let stranger = start_issuer().await;
    stranger.state.lock().unwrap().jwks = serde_json::json!({"keys": [jwk1]}).to_string();
    let (status, text) = send_pps(&gw, &stranger.url, &key1, "k1", "w-7").await;
    assert_eq!((status, text.as_str()), (403, r#"{"error":"forbidden"}"#));
    let hits = {
        let s = stranger.state.lock().unwrap();
        (s.discovery_hits, s.jwks_hits)
    };
    assert_eq!(hits, (0, 0), "an untrusted issuer must never be contacted");

    // A token signed by a key the issuer never published: 403.
    let (rogue, _) = rsa_key("k1");
    assert_eq!(send_pps(&gw, &issuer.url, &rogue, "k1", "w-8").await.0, 403);
    assert_eq!(gw.stored().await.len(), 5);
    gw.stop().await;
}

#[tokio::test]
async fn issuer_down_before_any_key_is_known_is_500_and_nothing_is_stored() {
    let issuer = start_issuer().await;
    issuer.state.lock().unwrap().up = false;
    let (key, _) = rsa_key("k1");
    let gw = spawn(&pps_config(&issuer.url)).await;
    let (status, text) = send_pps(&gw, &issuer.url, &key, "k1", "w-1").await;
    assert_eq!(
        (status, text.as_str()),
        (500, r#"{"error":"internal error"}"#)
    );
    assert!(gw.stored().await.is_empty());
    gw.stop().await;
}

#[tokio::test]
async fn a_flood_against_an_issuer_that_is_down_is_not_relayed_to_it() {
    let issuer = start_issuer().await;
    issuer.state.lock().unwrap().up = false;
    let (key, jwk) = rsa_key("k1");
    issuer.state.lock().unwrap().jwks = serde_json::json!({"keys": [jwk]}).to_string();
    let gw = Arc::new(spawn(&pps_config(&issuer.url)).await);
    // One signed request, sent again and again by 8 keep-alive clients for 1.5 s: every one
    // needs keys that were never loaded.
    let headers = signed_pps(&gw, &issuer.url, &key, "k1", "flood");
    let until = std::time::Instant::now() + std::time::Duration::from_millis(1500);
    let mut clients = Vec::new();
    for _ in 0..8 {
        let (url, headers, http) = (gw.url("/pps"), headers.clone(), client());
        clients.push(tokio::spawn(async move {
            let mut sent = 0;
            while std::time::Instant::now() < until {
                let mut post = http.post(&url).body(PPS_BODY.to_vec());
                for (k, v) in &headers {
                    post = post.header(k, v);
                }
                assert_eq!(post.send().await.unwrap().status(), 500);
                sent += 1;
            }
            sent
        }));
    }
    let mut sent = 0;
    for c in clients {
        sent += c.await.unwrap();
    }
    let hits = issuer.state.lock().unwrap().discovery_hits;
    // One fetch at the start, at most one more once the first backoff (1 s) has passed.
    assert!(
        sent > 100 && (1..=2).contains(&hits),
        "{sent} requests caused {hits} fetches"
    );
    // The issuer comes back: after the backoff, keys are fetched and requests verify.
    issuer.state.lock().unwrap().up = true;
    tokio::time::sleep(
        hookgate_server::jwks::FIRST_BACKOFF * 2 + std::time::Duration::from_millis(100),
    )
    .await;
    assert_eq!(send_pps(&gw, &issuer.url, &key, "k1", "after").await.0, 200);
    let gw = Arc::into_inner(gw).unwrap();
    gw.stop().await;
}
