//! `hookgate send` against a running `hookgate serve`, for every preset: the provider's
//! success answer and a stored event; with a wrong secret, the provider's refusal.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use crate::support::*;

fn run(command: &mut Command) -> Output {
    command.output().unwrap()
}

fn keygen(dir: &Path, alg: &str, prefix: &str) {
    let out = run(hookgate()
        .args(["keygen", "--alg", alg, "--out"])
        .arg(dir.join(prefix)));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Starts `hookgate oidc-issuer` and returns (child, issuer URL).
fn start_issuer(key: &Path) -> (std::process::Child, String) {
    let mut child = hookgate()
        .args(["oidc-issuer", "--listen", "127.0.0.1:0", "--key"])
        .arg(key)
        .env("HOOKGATE_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stderr));
    let url = loop {
        let line = lines.next().expect("oidc-issuer exited").unwrap();
        if let Some(rest) = line.split("OIDC issuer ").nth(1) {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    (child, url)
}

/// (preset, path, arguments that sign correctly, arguments that do not, the refusal status)
type Case<'a> = (&'a str, &'a str, Vec<String>, Vec<String>, u16);

#[test]
fn send_to_serve_for_every_preset() {
    let dir = tempfile::tempdir().unwrap();
    keygen(dir.path(), "ES512", "qitech");
    keygen(dir.path(), "ES512", "other");
    keygen(dir.path(), "RS256", "issuer");
    keygen(dir.path(), "RS256", "rogue");
    let (mut issuer, issuer_url) = start_issuer(&dir.path().join("issuer.pem"));
    let config = format!(
        r#"
[server]
listen = "127.0.0.1:0"
[[source]]
name = "entrupy"
path = "/notify"
preset = "entrupy"
secret = "s-entrupy"
[[source]]
name = "freispace"
path = "/freispace"
preset = "freispace"
secret = "s-freispace"
[[source]]
name = "qitech"
path = "/client_webhook_endpoint"
preset = "qitech"
public_key_file = "qitech.pub.pem"
api_client_key = "client-key"
[[source]]
name = "trivialsec"
path = "/webhook/trivialsec"
preset = "trivialsec"
secret = "s-trivialsec"
account = "acct"
subject = "urn:uuid:bc6e2cd5-1f59-487f-b05b-49946bd078b2"
[[source]]
name = "pps"
path = "/pps"
preset = "pps"
allow_http_issuers = true
[source.issuers]
"{issuer_url}" = ["pps-aud"]
[[source]]
name = "standard-webhooks"
path = "/sw"
preset = "standard-webhooks"
secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
[[source]]
name = "svix"
path = "/svix"
preset = "svix"
secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
[[source]]
name = "github"
path = "/github"
preset = "github"
secret = "s-github"
[[source]]
name = "stripe"
path = "/stripe"
preset = "stripe"
secret = "s-stripe"
[[source]]
name = "slack"
path = "/slack"
preset = "slack"
secret = "s-slack"
[[source]]
name = "shopify"
path = "/shopify"
preset = "shopify"
secret = "s-shopify"
[[source]]
name = "gitlab"
path = "/gitlab"
preset = "gitlab"
secret = "s-gitlab"
[[source]]
name = "twilio"
path = "/twilio"
preset = "twilio"
secret = "s-twilio"
url = "http://127.0.0.1"
"#
    );
    std::fs::write(dir.path().join("hookgate.toml"), config).unwrap();
    let running = start(dir.path(), &dir.path().join("hookgate.toml"), &[]);
    let port = running.addr.port();
    // Twilio signs the public URL it calls: the source's url is that base.
    let toml = std::fs::read_to_string(dir.path().join("hookgate.toml")).unwrap();
    assert!(toml.contains("url = \"http://127.0.0.1\""));

    let cases: Vec<Case> = vec![
        (
            "entrupy",
            "/notify",
            vec!["--secret".into(), "s-entrupy".into()],
            vec!["--secret".into(), "wrong".into()],
            401,
        ),
        (
            "freispace",
            "/freispace",
            vec!["--secret".into(), "s-freispace".into()],
            vec!["--secret".into(), "wrong".into()],
            403,
        ),
        (
            "qitech",
            "/client_webhook_endpoint",
            vec![
                "--key".into(),
                "qitech.pem".into(),
                "--param".into(),
                "api_client_key=client-key".into(),
            ],
            vec![
                "--key".into(),
                "other.pem".into(),
                "--param".into(),
                "api_client_key=client-key".into(),
            ],
            403,
        ),
        (
            "trivialsec",
            "/webhook/trivialsec",
            vec![
                "--secret".into(),
                "s-trivialsec".into(),
                "--param".into(),
                "account=acct".into(),
                "--param".into(),
                "subject=urn:uuid:bc6e2cd5-1f59-487f-b05b-49946bd078b2".into(),
            ],
            vec![
                "--secret".into(),
                "wrong".into(),
                "--param".into(),
                "account=acct".into(),
                "--param".into(),
                "subject=urn:uuid:bc6e2cd5-1f59-487f-b05b-49946bd078b2".into(),
            ],
            403,
        ),
        (
            "pps",
            "/pps",
            vec![
                "--issuer".into(),
                issuer_url.clone(),
                "--issuer-key".into(),
                "issuer.pem".into(),
                "--audience".into(),
                "pps-aud".into(),
            ],
            vec![
                "--issuer".into(),
                issuer_url.clone(),
                "--issuer-key".into(),
                "rogue.pem".into(),
                "--audience".into(),
                "pps-aud".into(),
            ],
            403,
        ),
        (
            "standard-webhooks",
            "/sw",
            vec![
                "--secret".into(),
                "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into(),
            ],
            vec!["--secret".into(), "whsec_d3Jvbmc=".into()],
            401,
        ),
        (
            "svix",
            "/svix",
            vec![
                "--secret".into(),
                "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into(),
            ],
            vec!["--secret".into(), "whsec_d3Jvbmc=".into()],
            401,
        ),
        (
            "github",
            "/github",
            vec!["--secret".into(), "s-github".into()],
            vec!["--secret".into(), "wrong".into()],
            401,
        ),
        (
            "stripe",
            "/stripe",
            vec!["--secret".into(), "s-stripe".into()],
            vec!["--secret".into(), "wrong".into()],
            401,
        ),
        (
            "slack",
            "/slack",
            vec!["--secret".into(), "s-slack".into()],
            vec!["--secret".into(), "wrong".into()],
            401,
        ),
        (
            "shopify",
            "/shopify",
            vec!["--secret".into(), "s-shopify".into()],
            vec!["--secret".into(), "wrong".into()],
            401,
        ),
        (
            "gitlab",
            "/gitlab",
            vec!["--secret".into(), "s-gitlab".into()],
            vec!["--secret".into(), "wrong".into()],
            401,
        ),
        (
            "twilio",
            "/twilio",
            vec![
                "--secret".into(),
                "s-twilio".into(),
                "--param".into(),
                "url=http://127.0.0.1".into(),
            ],
            vec![
                "--secret".into(),
                "wrong".into(),
                "--param".into(),
                "url=http://127.0.0.1".into(),
            ],
            401,
        ),
    ];
    for (preset, path, good, bad, refusal) in &cases {
        let url = format!("http://127.0.0.1:{port}{path}");
        let out = run(hookgate()
            .args(["send", &url, "--preset", preset])
            .args(good)
            .current_dir(dir.path()));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.starts_with("HTTP/1.1 200"),
            "{preset}: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = run(hookgate()
            .args(["send", &url, "--preset", preset])
            .args(bad)
            .current_dir(dir.path()));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(3), "{preset}: {stdout}");
        assert!(
            stdout.starts_with(&format!("HTTP/1.1 {refusal}")),
            "{preset}: {stdout}"
        );
    }
    let stored = stored_events(&dir.path().join("hookgate-data/hookgate.db"));
    for (preset, ..) in &cases {
        let count = stored
            .iter()
            .filter(|(e, _)| e.summary.source == *preset)
            .count();
        assert_eq!(count, 1, "{preset}: one event stored");
    }
    // The same event id sent twice is acknowledged and stored once.
    for _ in 0..2 {
        let out = run(hookgate()
            .args([
                "send",
                &format!("http://127.0.0.1:{port}/github"),
                "--preset",
                "github",
                "--secret",
                "s-github",
                "--event-id",
                "same-delivery",
            ])
            .current_dir(dir.path()));
        assert!(out.status.success());
    }
    let count = stored_events(&dir.path().join("hookgate-data/hookgate.db"))
        .iter()
        .filter(|(e, _)| e.summary.dedupe_key.as_deref() == Some("same-delivery"))
        .count();
    assert_eq!(count, 1);
    let (code, _) = running.terminate();
    assert_eq!(code, Some(0));
    issuer.kill().unwrap();
    issuer.wait().unwrap();
}

#[test]
fn missing_preset_parameters_say_which_flag() {
    let out = run(hookgate()
        .args(["send", "http://127.0.0.1:1/x", "--preset", "entrupy"])
        .env_remove("WEBHOOK_ENDPOINT_SECRET_KEY"));
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim_end(), "error: preset entrupy: secret: preset `entrupy` needs `secret` — pass --secret (or set WEBHOOK_ENDPOINT_SECRET_KEY)");
    let out = run(hookgate().args(["send", "http://127.0.0.1:1/x", "--preset", "qitech"]));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim_end(),
        "error: preset qitech signs with an ES512 private key: pass --key FILE"
    );
    // Nothing listens on port 1: a runtime failure, exit 1.
    let out = run(hookgate().args([
        "send",
        "http://127.0.0.1:1/x",
        "--preset",
        "github",
        "--secret",
        "s",
    ]));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr)
        .starts_with("error: sending to http://127.0.0.1:1/x: "));
}
