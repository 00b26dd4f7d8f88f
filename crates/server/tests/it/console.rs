//! The web console: its session, CSRF and headers over real HTTP, and the whole console in
//! Debian's headless Chromium driven by Playwright (`ui-tests/console.mjs`).

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::{json, Value};

use crate::admin::{config, eventually, get, send, start_receiver, OPERATOR, READER};
use crate::support::*;

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
     connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// `POST /ui/login` with `token`; (status, the session cookie pair if one was set, body).
async fn login(gw: &TestGateway, token: &str) -> (u16, Option<String>, Value) {
    let response = client()
        .post(gw.url("/ui/login"))
        .json(&json!({ "token": token }))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let cookie = response
        .headers()
        .get("set-cookie")
        .map(|c| c.to_str().unwrap().to_owned());
    (status, cookie, response.json().await.unwrap())
}

fn pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_owned()
}

async fn with_cookie(
    gw: &TestGateway,
    method: reqwest::Method,
    path: &str,
    cookie: &str,
    extra: &[(&str, &str)],
) -> (u16, Value) {
    let mut request = client()
        .request(method, gw.url(path))
        .header("cookie", cookie);
    for (name, value) in extra {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_console_exists_only_where_the_admin_api_does() {
    let plain =
        spawn("[[source]]\nname = \"gh\"\npath = \"/gh\"\npreset = \"github\"\nsecret = \"s\"\n")
            .await;
    for path in ["/ui/", "/ui/app.js", "/ui/session", "/ui/events"] {
        assert_eq!(get(&plain, path, None).await.0, 404, "{path}");
    }
    let response = client()
        .post(plain.url("/ui/login"))
        .json(&json!({"token": OPERATOR}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    plain.stop().await;
}

#[tokio::test]
async fn the_console_is_served_from_the_binary_under_a_strict_policy() {
    let (url, _) = start_receiver().await;
    let gw = spawn(&config(&url)).await;
    let redirect = client().get(gw.url("/ui")).send().await.unwrap();
    assert_eq!(redirect.status(), 308);
    assert_eq!(redirect.headers()["location"], "/ui/");
    for (path, content_type, marker) in [
        (
            "/ui/",
            "text/html; charset=utf-8",
            "<script type=\"module\" src=\"/ui/app.js\">",
        ),
        (
            "/ui/events/some-id",
            "text/html; charset=utf-8",
            "/ui/app.js",
        ),
        (
            "/ui/app.js",
            "text/javascript; charset=utf-8",
            "textContent",
        ),
        ("/ui/app.css", "text/css; charset=utf-8", ".badge"),
        ("/ui/icon.svg", "image/svg+xml", "<svg"),
    ] {
        let response = client().get(gw.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let headers = response.headers().clone();
        assert_eq!(headers["content-type"], content_type, "{path}");
        assert_eq!(headers["content-security-policy"], CSP, "{path}");
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(headers["x-frame-options"], "DENY", "{path}");
        assert_eq!(headers["referrer-policy"], "no-referrer", "{path}");
        let text = response.text().await.unwrap();
        assert!(text.contains(marker), "{path}");
    }
    let text_of = async |path: &str| {
        let response = client().get(gw.url(path)).send().await.unwrap();
        response.text().await.unwrap()
    };
    // Nothing in the page is inline: the policy would block it.
    let html = text_of("/ui/").await;
    assert!(!html.contains("<script>") && !html.contains(" style=") && !html.contains("onclick"));
    let script = text_of("/ui/app.js").await;
    assert!(!script.contains("innerHTML") && !script.contains("insertAdjacentHTML"));
    // The API's answers, which hold what requests sent, are never sniffed nor cached.
    let api = client()
        .get(gw.url("/api/v1/events"))
        .bearer_auth(OPERATOR)
        .send()
        .await
        .unwrap();
    assert_eq!(api.headers()["x-content-type-options"], "nosniff");
    assert_eq!(api.headers()["cache-control"], "no-store");
    gw.stop().await;
}

#[tokio::test]
async fn a_session_cookie_reads_and_acts_only_with_its_csrf_token() {
    let (url, _) = start_receiver().await;
    let gw = spawn(&config(&url)).await;
    assert_eq!(send(&gw, "e1", "push").await, 200);

    let (status, body) = with_cookie(&gw, reqwest::Method::GET, "/ui/session", "", &[]).await;
    assert_eq!((status, &body), (200, &json!({"authenticated": false})));

    let (status, cookie, body) = login(&gw, "not-a-token").await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"]["kind"], "unauthorized");
    assert!(cookie.is_none());

    let (status, set_cookie, session) = login(&gw, OPERATOR).await;
    assert_eq!(status, 200, "{session}");
    let set_cookie = set_cookie.expect("a session cookie");
    assert!(set_cookie.starts_with("hookgate_session="), "{set_cookie}");
    assert!(set_cookie.contains("; HttpOnly") && set_cookie.contains("; SameSite=Strict"));
    assert!(set_cookie.contains("; Path=/") && !set_cookie.contains("Secure"));
    assert!(!set_cookie.contains(OPERATOR) && !session.to_string().contains(OPERATOR));
    assert_eq!(session["role"], "operator");
    let csrf = session["csrf"].as_str().unwrap().to_owned();
    let cookie = pair(&set_cookie);

    // Reads with the cookie alone.
    let (status, events) =
        with_cookie(&gw, reqwest::Method::GET, "/api/v1/events", &cookie, &[]).await;
    assert_eq!(status, 200);
    assert_eq!(events["items"].as_array().unwrap().len(), 1);
    let (status, again) = with_cookie(&gw, reqwest::Method::GET, "/ui/session", &cookie, &[]).await;
    assert_eq!((status, &again["csrf"]), (200, &json!(csrf)));

    // Acting needs the CSRF token, and a foreign Origin is refused even with it.
    let pause = "/api/v1/destinations/ok/pause";
    for headers in [
        vec![],
        vec![("x-hookgate-csrf", "wrong")],
        vec![
            ("x-hookgate-csrf", csrf.as_str()),
            ("origin", "https://evil.example"),
        ],
    ] {
        let (status, body) =
            with_cookie(&gw, reqwest::Method::POST, pause, &cookie, &headers).await;
        assert_eq!(status, 403, "{headers:?}: {body}");
        assert_eq!(body["error"]["kind"], "forbidden");
    }
    assert_eq!(
        get(&gw, "/api/v1/destinations/ok", Some(OPERATOR)).await.1["paused"],
        false
    );
    let origin = format!("http://{}", gw.addr);
    let (status, body) = with_cookie(
        &gw,
        reqwest::Method::POST,
        pause,
        &cookie,
        &[("x-hookgate-csrf", &csrf), ("origin", &origin)],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["paused"], true);

    // A reader's session reads, and may not act.
    let (_, reader_cookie, reader) = login(&gw, READER).await;
    let reader_cookie = pair(&reader_cookie.unwrap());
    assert_eq!(reader["role"], "reader");
    let (status, body) = with_cookie(
        &gw,
        reqwest::Method::POST,
        "/api/v1/destinations/ok/resume",
        &reader_cookie,
        &[("x-hookgate-csrf", reader["csrf"].as_str().unwrap())],
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("only read"));

    // Log in only with JSON, from this host.
    let form = client()
        .post(gw.url("/ui/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={OPERATOR}"))
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 400);
    assert!(form.headers().get("set-cookie").is_none());
    let foreign = client()
        .post(gw.url("/ui/login"))
        .header("origin", "https://evil.example")
        .json(&json!({"token": OPERATOR}))
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), 400);
    assert!(foreign.headers().get("set-cookie").is_none());

    // Logging out ends the session on the server, not just in the browser.
    let response = client()
        .post(gw.url("/ui/logout"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    let (status, _) = with_cookie(&gw, reqwest::Method::GET, "/api/v1/events", &cookie, &[]).await;
    assert_eq!(status, 401);
    let (status, _) = with_cookie(
        &gw,
        reqwest::Method::GET,
        "/api/v1/events",
        &reader_cookie,
        &[],
    )
    .await;
    assert_eq!(status, 200, "other sessions stay");
    gw.stop().await;
}

#[tokio::test]
async fn guessing_the_token_is_throttled_per_address() {
    let (url, _) = start_receiver().await;
    let gw = spawn(&config(&url)).await;
    for _ in 0..10 {
        assert_eq!(login(&gw, "guess").await.0, 401);
    }
    let response = client()
        .post(gw.url("/ui/login"))
        .json(&json!({"token": OPERATOR}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    let wait: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["kind"], "rate_limited");
    // The API's bearer tokens are not the console's login: they still work.
    assert_eq!(get(&gw, "/api/v1/events", Some(OPERATOR)).await.0, 200);
    gw.stop().await;
}

#[tokio::test]
async fn the_arrivals_chart_counts_stored_events_per_second() {
    let (url, _) = start_receiver().await;
    let gw = spawn(&config(&url)).await;
    for i in 0..7 {
        assert_eq!(send(&gw, &format!("a{i}"), "ping").await, 200);
    }
    // A duplicate and a refusal are not arrivals.
    assert_eq!(send(&gw, "a0", "ping").await, 200);
    assert_eq!(
        post(
            &gw.url("/gh"),
            b"{}".to_vec(),
            &[("X-GitHub-Event", "ping")]
        )
        .await
        .0,
        401
    );
    let (status, body) = get(&gw, "/api/v1/stats/arrivals?seconds=30", Some(READER)).await;
    assert_eq!(status, 200, "{body}");
    let items = body["items"].as_array().unwrap();
    assert_eq!(items.len(), 31);
    let total: u64 = items.iter().map(|i| i["count"].as_u64().unwrap()).sum();
    assert_eq!(total, 7);
    let seconds: Vec<i64> = items
        .iter()
        .map(|i| i["second"].as_i64().unwrap())
        .collect();
    assert!(seconds.windows(2).all(|w| w[1] == w[0] + 1));
    for bad in ["0", "300", "x"] {
        let (status, body) = get(
            &gw,
            &format!("/api/v1/stats/arrivals?seconds={bad}"),
            Some(READER),
        )
        .await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
    gw.stop().await;
}

/// What the browser test needs, or why it cannot run here.
fn browser() -> Result<(PathBuf, PathBuf), String> {
    let ui_tests = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ui-tests");
    let chromium =
        PathBuf::from(std::env::var("HOOKGATE_CHROMIUM").unwrap_or("/usr/bin/chromium".into()));
    if !chromium.exists() {
        return Err(format!(
            "{} not found (apt-get install chromium)",
            chromium.display()
        ));
    }
    if std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_err()
    {
        return Err("node not found".into());
    }
    if !ui_tests.join("node_modules/playwright-core").exists() {
        return Err("playwright-core not installed (npm ci --prefix ui-tests)".into());
    }
    Ok((ui_tests, chromium))
}

/// The whole console in a real browser: log in, the live events page and its chart,
/// filters, an event whose body, headers and topic hold script payloads (nothing runs),
/// replaying a dead delivery until it shows delivered, refused requests, pausing a
/// destination, replaying a destination's dead deliveries, sources. Screenshots land in `target/ui-screenshots`; with
/// `HOOKGATE_UPDATE_SCREENSHOTS=1` the README's two are copied to `docs/img`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_in_a_real_browser() {
    let (ui_tests, chromium) = match browser() {
        Ok(found) => found,
        Err(why) => {
            assert!(
                std::env::var("HOOKGATE_TEST_BROWSER").as_deref() != Ok("required"),
                "a browser is required (HOOKGATE_TEST_BROWSER=required): {why}"
            );
            eprintln!("skipped the_console_in_a_real_browser: {why}");
            return;
        }
    };
    let (url, receiver) = start_receiver().await;
    let gw = spawn(&config(&url)).await;
    // Accepted events: pushes go to `ok` and to `flip` (which answers 410 until healed, so
    // those die at once), pings only to `ok`.
    for i in 0..12 {
        assert_eq!(send(&gw, &format!("ping-{i}"), "ping").await, 200);
    }
    for i in 0..3 {
        assert_eq!(send(&gw, &format!("push-{i}"), "push").await, 200);
    }
    let payload = r#"<script>window.__xss=1</script>"><img src=x onerror="window.__xss=2">"#;
    let body = json!({"id": "xss", "comment": payload}).to_string();
    let (status, _, _) = send_signed(
        &gw,
        "gh",
        "/gh",
        body.as_bytes(),
        &[
            ("X-GitHub-Delivery", "xss-<script>window.__xss=3</script>"),
            ("X-GitHub-Event", &format!("ping{payload}")),
            ("X-Tenant", payload),
            ("X-Note", payload),
        ],
    )
    .await;
    assert_eq!(status, 200);
    // Refused: a forged signature carrying the payloads.
    let (status, _, _) = post(
        &gw.url("/gh"),
        body.clone().into_bytes(),
        &[
            ("X-GitHub-Event", payload),
            ("X-GitHub-Delivery", "forged"),
            ("X-Hub-Signature-256", "sha256=00"),
            ("X-Note", payload),
        ],
    )
    .await;
    assert_eq!(status, 401);
    eventually(
        "the pushes to flip to die",
        Duration::from_secs(20),
        async || {
            let (_, page) = get(&gw, "/api/v1/events?status=dead", Some(OPERATOR)).await;
            page["items"].as_array().unwrap().len() == 3
        },
    )
    .await;
    let id_of = async |provider_id: &str| -> String {
        let (_, page) = get(
            &gw,
            &format!("/api/v1/events?provider_id={}", url_escape(provider_id)),
            Some(OPERATOR),
        )
        .await;
        page["items"][0]["id"].as_str().unwrap().to_owned()
    };
    let xss_event = id_of("xss-<script>window.__xss=3</script>").await;
    let dead_event = id_of("push-1").await;
    receiver.healed.store(true, Ordering::SeqCst);

    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/ui-screenshots");
    let _ = std::fs::remove_dir_all(&shots);
    let output = tokio::process::Command::new("node")
        .arg(ui_tests.join("console.mjs"))
        .env("HOOKGATE_URL", format!("http://{}", gw.addr))
        .env("HOOKGATE_TOKEN", OPERATOR)
        .env("HOOKGATE_XSS_EVENT", &xss_event)
        .env("HOOKGATE_DEAD_EVENT", &dead_event)
        .env("HOOKGATE_DEAD_COUNT", "3")
        .env("HOOKGATE_EVENT_COUNT", "16")
        .env("HOOKGATE_SCREENSHOTS", &shots)
        .env("HOOKGATE_CHROMIUM", &chromium)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(180), output)
        .await
        .expect("the browser test finished within 3 minutes")
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the browser test failed:\n{stdout}\n{stderr}"
    );

    // What the browser did, seen from the API: the replayed delivery arrived, `ok` is paused.
    let (_, event) = get(&gw, &format!("/api/v1/events/{dead_event}"), Some(OPERATOR)).await;
    let flip = event["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["destination"] == "flip")
        .unwrap();
    assert_eq!(flip["status"], "delivered");
    // One replayed from its event's page, the other two from the destinations page.
    assert_eq!(receiver.count("flip"), 3);
    assert_eq!(
        get(&gw, "/api/v1/destinations/ok", Some(OPERATOR)).await.1["paused"],
        true
    );
    for name in [
        "login",
        "events",
        "events-dead",
        "event-payloads",
        "event",
        "refusals",
        "destinations",
        "sources",
    ] {
        let png = shots.join(format!("{name}.png"));
        let bytes = std::fs::read(&png).unwrap_or_else(|e| panic!("{}: {e}", png.display()));
        assert!(bytes.starts_with(b"\x89PNG"), "{}", png.display());
    }
    if std::env::var("HOOKGATE_UPDATE_SCREENSHOTS").as_deref() == Ok("1") {
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/img");
        std::fs::create_dir_all(&docs).unwrap();
        for name in ["events", "event"] {
            std::fs::copy(
                shots.join(format!("{name}.png")),
                docs.join(format!("console-{name}.png")),
            )
            .unwrap();
        }
    }
    gw.stop().await;
}

fn url_escape(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
