//! Providers' own published examples, verified through the presets.

use hookgate_verify::ErrorKind;

use crate::support::*;

#[test]
fn github_documentation_example() {
    // docs.github.com, "Validating webhook deliveries", testing values.
    let src = source("preset = \"github\"\nsecret = \"It's a Secret to Everybody\"");
    let sig = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
    let headers = [
        ("X-Hub-Signature-256", sig),
        ("X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"),
        ("X-GitHub-Event", "ping"),
    ];
    let ok = accept(&src, &request("/gh", b"Hello, World!", &headers), at(0)).unwrap();
    assert_eq!(
        ok.meta.id.as_deref(),
        Some("72d3162e-cc78-11e3-81ab-4c9367dc0958")
    );
    assert_eq!(ok.meta.topic.as_deref(), Some("ping"));
    assert_eq!(
        kind_of(accept(
            &src,
            &request("/gh", b"Hello, World?", &headers),
            at(0)
        )),
        ErrorKind::BadSignature
    );
}

const SLACK_BODY: &str = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";

#[test]
fn slack_documentation_example() {
    // api.slack.com, "Verifying requests from Slack".
    let src = source("preset = \"slack\"\nsecret = \"8f742231b10e8888abcd99yyyzzz85a5\"");
    let headers = [
        ("X-Slack-Request-Timestamp", "1531420618"),
        (
            "X-Slack-Signature",
            "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503",
        ),
    ];
    let req = request("/slack", SLACK_BODY.as_bytes(), &headers);
    assert!(accept(&src, &req, at(1_531_420_618 + 60)).is_ok());
    assert_eq!(
        kind_of(accept(&src, &req, at(1_531_420_618 + 301))),
        ErrorKind::StaleTimestamp
    );
    let replayed = request(
        "/slack",
        SLACK_BODY.as_bytes(),
        &[headers[1], ("X-Slack-Request-Timestamp", "1531420619")],
    );
    assert_eq!(
        kind_of(accept(&src, &replayed, at(1_531_420_618))),
        ErrorKind::BadSignature
    );
}

#[test]
fn standard_webhooks_reference_example_and_svix_headers() {
    // The example of the Standard Webhooks specification and Svix's documentation.
    let body = br#"{"test": 2432232314}"#;
    for preset in ["standard-webhooks", "svix"] {
        let src = source(&format!(
            "preset = \"{preset}\"\nsecret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\""
        ));
        for prefix in ["webhook-", "svix-"] {
            let id = format!("{prefix}id");
            let ts = format!("{prefix}timestamp");
            let sig = format!("{prefix}signature");
            let headers = [
                (id.as_str(), "msg_p5jXN8AQM9LWM0D4loKWxJek"),
                (ts.as_str(), "1614265330"),
                (
                    sig.as_str(),
                    "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
                ),
            ];
            let req = request("/sw", body, &headers);
            assert!(
                accept(&src, &req, at(1_614_265_330)).is_ok(),
                "{preset} {prefix}"
            );
            assert_eq!(
                kind_of(accept(&src, &req, at(1_614_265_330 + 301))),
                ErrorKind::StaleTimestamp
            );
        }
        // Several signatures, one valid among unknown versions and wrong ones.
        let headers = [
            ("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek"),
            ("webhook-timestamp", "1614265330"),
            ("webhook-signature", "v2,abc= v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="),
        ];
        assert!(accept(&src, &request("/sw", body, &headers), at(1_614_265_330)).is_ok());
    }
}

#[test]
fn outgoing_signer_reproduces_the_standard_webhooks_example() {
    let signer =
        hookgate_verify::WebhookSigner::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
    assert_eq!(
        signer
            .sign(
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1_614_265_330,
                br#"{"test": 2432232314}"#
            )
            .unwrap(),
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    );
    let rendered = format!("{signer:?}");
    assert!(!rendered.contains("MfKQ9r8"), "{rendered}");
    assert!(hookgate_verify::WebhookSigner::new("whpk_AAAA").is_err());
    assert!(hookgate_verify::WebhookSigner::new("not a secret").is_err());
}

#[test]
fn twilio_form_parameters_example() {
    // twilio-python's request validator tests: URL + sorted POST parameters.
    let src = source("preset = \"twilio\"\nsecret = \"12345\"\nurl = \"https://mycompany.com\"");
    let body = b"CallSid=CA1234567890ABCDE&Caller=%2B14158675309&Digits=1234&From=%2B14158675309&To=%2B18005551212";
    let mut req = request(
        "/myapp.php",
        body,
        &[
            ("X-Twilio-Signature", "RSOYDt4T1cUTdK1PDd93/VVr8B8="),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
    );
    req.query = Some("foo=1&bar=2".into());
    assert!(accept(&src, &req, at(0)).is_ok());
    // Parameter order in the body does not matter; their values do.
    let mut reordered = req.clone();
    reordered.body = b"To=%2B18005551212&From=%2B14158675309&Digits=1234&Caller=%2B14158675309&CallSid=CA1234567890ABCDE";
    assert!(accept(&src, &reordered, at(0)).is_ok());
    let mut changed = req.clone();
    changed.body = b"CallSid=CA1234567890ABCDE&Caller=%2B14158675309&Digits=9999&From=%2B14158675309&To=%2B18005551212";
    assert_eq!(
        kind_of(accept(&src, &changed, at(0))),
        ErrorKind::BadSignature
    );
    // The URL with the default port is accepted too, as Twilio's libraries do.
    let with_port =
        source("preset = \"twilio\"\nsecret = \"12345\"\nurl = \"https://mycompany.com:443\"");
    assert!(accept(&with_port, &req, at(0)).is_ok());
}

#[test]
fn twilio_json_body_sha256_example() {
    let src = source("preset = \"twilio\"\nsecret = \"12345\"\nurl = \"https://mycompany.com\"");
    let body = br#"{"property": "value", "boolean": true}"#;
    let mut req = request(
        "/myapp.php",
        body,
        &[
            ("X-Twilio-Signature", "a9nBmqA0ju/hNViExpshrM61xv4="),
            ("Content-Type", "application/json"),
        ],
    );
    req.query = Some(
        "foo=1&bar=2&bodySHA256=0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620"
            .into(),
    );
    assert!(accept(&src, &req, at(0)).is_ok());
    let mut tampered = req.clone();
    tampered.body = br#"{"property": "value", "boolean": false}"#;
    assert_eq!(
        kind_of(accept(&src, &tampered, at(0))),
        ErrorKind::BodyHashMismatch
    );
}
