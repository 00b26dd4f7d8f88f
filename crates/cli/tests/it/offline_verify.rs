//! `hookgate verify` on captured requests: the exact one-line explanations, `--at`, and the
//! providers' published examples.

use std::path::Path;

use crate::support::*;

const CONFIG: &str = r#"
[[source]]
name = "github"
path = "/gh"
preset = "github"
secret = "It's a Secret to Everybody"
[[source]]
name = "github-other-secret"
path = "/gh2"
preset = "github"
secret = "another secret"
[[source]]
name = "slack"
path = "/slack"
preset = "slack"
secret = "8f742231b10e8888abcd99yyyzzz85a5"
[[source]]
name = "standard-webhooks"
path = "/sw"
preset = "standard-webhooks"
secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
[[source]]
name = "twilio"
path = "/myapp.php"
preset = "twilio"
secret = "12345"
url = "https://mycompany.com"
"#;

const GITHUB: &str = "POST /gh HTTP/1.1\r\nHost: example.com\r\nX-GitHub-Event: ping\r\nX-GitHub-Delivery: 72d3162e-cc78-11e3-81ab-4c9367dc0958\r\nX-Hub-Signature-256: sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17\r\nContent-Length: 13\r\n\r\nHello, World!";

const SLACK: &str = "POST /slack HTTP/1.1\nHost: example.com\nX-Slack-Request-Timestamp: 1531420618\nX-Slack-Signature: v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503\nContent-Type: application/x-www-form-urlencoded\n\ntoken=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";

const STANDARD: &str = "POST /sw HTTP/1.1\r\nwebhook-id: msg_p5jXN8AQM9LWM0D4loKWxJek\r\nwebhook-timestamp: 1614265330\r\nwebhook-signature: v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=\r\n\r\n{\"test\": 2432232314}";

const TWILIO_FORM: &str = "POST /myapp.php?foo=1&bar=2 HTTP/1.1\r\nHost: mycompany.com\r\nX-Twilio-Signature: RSOYDt4T1cUTdK1PDd93/VVr8B8=\r\nContent-Type: application/x-www-form-urlencoded\r\n\r\nCallSid=CA1234567890ABCDE&Caller=%2B14158675309&Digits=1234&From=%2B14158675309&To=%2B18005551212";

const TWILIO_JSON: &str = "POST /myapp.php?foo=1&bar=2&bodySHA256=0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620 HTTP/1.1\r\nHost: mycompany.com\r\nX-Twilio-Signature: a9nBmqA0ju/hNViExpshrM61xv4=\r\nContent-Type: application/json\r\n\r\n{\"property\": \"value\", \"boolean\": true}";

/// Runs `hookgate verify` and returns (exit code, the one line printed).
fn verify(dir: &Path, source: &str, request: &str, at: Option<&str>) -> (i32, String) {
    let file = dir.join(format!("{}.http", unique_number()));
    std::fs::write(&file, request).unwrap();
    let mut command = hookgate();
    command
        .args(["verify", "--config"])
        .arg(dir.join("hookgate.toml"))
        .args(["--source", source, "--request"])
        .arg(&file);
    if let Some(at) = at {
        command.args(["--at", at]);
    }
    let out = command.output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        stdout.lines().count(),
        1,
        "one line: {stdout:?} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap(), stdout.trim_end().to_owned())
}

/// A number no earlier call in this test binary returned.
fn unique_number() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hookgate.toml"), CONFIG).unwrap();
    dir
}

#[test]
fn valid_tampered_wrong_key() {
    let dir = setup();
    assert_eq!(
        verify(dir.path(), "github", GITHUB, None),
        (
            0,
            "ok: hmac key=secret#0 id=72d3162e-cc78-11e3-81ab-4c9367dc0958 topic=ping".into()
        )
    );
    let mismatch = "bad_signature: `X-Hub-Signature-256` does not match the HMAC-SHA256 of `{body}` with any of the 1 configured secret(s)";
    assert_eq!(
        verify(
            dir.path(),
            "github",
            &GITHUB.replace("Hello, World!", "Hello, World?"),
            None
        ),
        (3, mismatch.into())
    );
    assert_eq!(
        verify(dir.path(), "github-other-secret", GITHUB, None),
        (3, mismatch.into())
    );
    assert_eq!(
        verify(
            dir.path(),
            "github",
            &GITHUB.replace("sha256=757107", "sha1=757107"),
            None
        ),
        (
            3,
            "unsupported_algorithm: `X-Hub-Signature-256` names `sha1`; only `sha256=` is accepted"
                .into()
        )
    );
    assert_eq!(
        verify(
            dir.path(),
            "github",
            &GITHUB.replace("X-Hub-Signature-256", "X-Hub-Signature"),
            None
        ),
        (
            3,
            "missing_credential: header `X-Hub-Signature-256` is missing".into()
        )
    );
}

#[test]
fn stale_requests_pass_as_of_their_time() {
    let dir = setup();
    let (code, line) = verify(dir.path(), "slack", SLACK, None);
    assert_eq!(code, 3);
    assert!(
        line.starts_with(
            "stale_timestamp: timestamp 2018-07-12T18:36:58Z is more than 5m from now (20"
        ),
        "{line}"
    );
    assert_eq!(
        verify(dir.path(), "slack", SLACK, Some("2018-07-12T18:46:58Z")),
        (3, "stale_timestamp: timestamp 2018-07-12T18:36:58Z is more than 5m from now (2018-07-12T18:46:58Z)".into())
    );
    assert_eq!(
        verify(dir.path(), "slack", SLACK, Some("2018-07-12T18:37:30Z")),
        (0, "ok: hmac key=secret#0".into())
    );
    assert_eq!(
        verify(dir.path(), "slack", SLACK, Some("1531420618")),
        (0, "ok: hmac key=secret#0".into())
    );
}

#[test]
fn published_examples_pass_with_at() {
    let dir = setup();
    assert_eq!(
        verify(dir.path(), "github", GITHUB, Some("2014-04-25T00:00:00Z")).0,
        0
    );
    assert_eq!(
        verify(dir.path(), "slack", SLACK, Some("2018-07-12T18:36:58Z")).0,
        0
    );
    assert_eq!(
        verify(
            dir.path(),
            "standard-webhooks",
            STANDARD,
            Some("2021-02-25T15:02:10Z")
        ),
        (
            0,
            "ok: standard-webhooks-v1 key=secret#0 id=msg_p5jXN8AQM9LWM0D4loKWxJek".into()
        )
    );
    assert_eq!(
        verify(dir.path(), "twilio", TWILIO_FORM, None),
        (0, "ok: twilio key=secret#0".into())
    );
    assert_eq!(
        verify(dir.path(), "twilio", TWILIO_JSON, None),
        (0, "ok: twilio key=secret#0".into())
    );
    assert_eq!(
        verify(
            dir.path(),
            "twilio",
            &TWILIO_JSON.replace("\"boolean\": true", "\"boolean\": false"),
            None
        ),
        (
            3,
            "body_hash_mismatch: bodySHA256 does not match the body".into()
        )
    );
}

#[test]
fn a_request_captured_by_send_dry_run_verifies() {
    let dir = setup();
    let out = hookgate()
        .args(["send", "http://example.com/gh", "--config"])
        .arg(dir.path().join("hookgate.toml"))
        .args([
            "--source",
            "github",
            "--event-id",
            "captured-1",
            "--dry-run",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let captured = String::from_utf8(out.stdout).unwrap();
    assert!(
        captured.starts_with("POST /gh HTTP/1.1\r\nHost: example.com\r\n"),
        "{captured}"
    );
    let (code, line) = verify(dir.path(), "github", &captured, None);
    assert_eq!(
        (code, line.as_str()),
        (0, "ok: hmac key=secret#0 id=captured-1")
    );
}

#[test]
fn send_and_verify_need_only_the_secrets_of_their_source() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("hookgate.toml");
    std::fs::write(
        &config,
        "[[source]]\nname = \"github\"\npath = \"/gh\"\npreset = \"github\"\nsecret = \"${HOOKGATE_TEST_GH_SECRET}\"\n\
         [[source]]\nname = \"other\"\npath = \"/other\"\npreset = \"github\"\nsecret = \"${HOOKGATE_TEST_NEVER_SET}\"\n",
    )
    .unwrap();
    let out = hookgate()
        .args(["send", "http://example.com/gh", "--config"])
        .arg(&config)
        .args(["--source", "github", "--event-id", "only-mine", "--dry-run"])
        .env("HOOKGATE_TEST_GH_SECRET", "gh-secret")
        .env_remove("HOOKGATE_TEST_NEVER_SET")
        .output()
        .unwrap();
    let (code, captured, stderr) = outcome(out);
    assert_eq!(code, Some(0), "{stderr}");
    let file = dir.path().join("captured.http");
    std::fs::write(&file, &captured).unwrap();
    let out = hookgate()
        .args(["verify", "--config"])
        .arg(&config)
        .args(["--source", "github", "--request"])
        .arg(&file)
        .env("HOOKGATE_TEST_GH_SECRET", "gh-secret")
        .env_remove("HOOKGATE_TEST_NEVER_SET")
        .output()
        .unwrap();
    let (code, stdout, stderr) = outcome(out);
    assert_eq!(
        (code, stdout.trim_end()),
        (Some(0), "ok: hmac key=secret#0 id=only-mine"),
        "{stderr}"
    );
    // Its own secret is still required, and named.
    let out = hookgate()
        .args(["send", "http://example.com/gh", "--config"])
        .arg(&config)
        .args(["--source", "github", "--dry-run"])
        .env_remove("HOOKGATE_TEST_GH_SECRET")
        .output()
        .unwrap();
    let (code, _, stderr) = outcome(out);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr
            .contains("source[0].secret: environment variable HOOKGATE_TEST_GH_SECRET is not set"),
        "{stderr}"
    );
    // A source that does not exist is named.
    let out = hookgate()
        .args(["send", "http://example.com/gh", "--config"])
        .arg(&config)
        .args(["--source", "gitlab", "--dry-run"])
        .output()
        .unwrap();
    let (code, _, stderr) = outcome(out);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("no source named `gitlab`"), "{stderr}");
}
