//! `http`: POST the original body, re-signed as Standard Webhooks, to a URL.

use std::time::Duration;

use serde::Deserialize;

use super::{header, snippet, AttemptReport, Message, Sink, SNIPPET};
use crate::delivery::policy::Verdict;

/// `[[destination]] kind = "http"`: its own keys.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct HttpConfig {
    /// The URL.
    url: Option<String>,
    /// The Standard Webhooks secret (`whsec_…`, or `whsk_…` to sign v1a).
    secret: Option<String>,
    /// Deliveries in flight at once; default 16.
    concurrency: Option<usize>,
    /// Statuses besides 410 that are permanent failures (no retry).
    permanent_statuses: Option<Vec<u16>>,
}

/// The keys of `kind = "http"` (besides the common ones).
pub(super) const KEYS: &[&str] = &["url", "secret", "concurrency", "permanent_statuses"];

/// Validates the keys; errors name the key.
pub(super) fn build(
    config: HttpConfig,
    timeout: Duration,
) -> Result<(Sink, usize), (String, String)> {
    let err = |key: &str, message: String| (key.to_owned(), message);
    let url = config
        .url
        .ok_or_else(|| err("url", "an http destination needs `url`".into()))?;
    let parsed: http::Uri = url
        .parse()
        .map_err(|e| err("url", format!("`{url}` is not a URL: {e}")))?;
    if !matches!(parsed.scheme_str(), Some("http" | "https")) || parsed.host().is_none() {
        return Err(err(
            "url",
            "must be an http:// or https:// URL with a host".into(),
        ));
    }
    let secret = config
        .secret
        .filter(|s| !s.is_empty())
        .ok_or_else(|| err("secret", "deliveries are signed as Standard Webhooks: set `secret` (make one with `hookgate keygen --alg whsec`)".into()))?;
    let signer = hookgate_verify::WebhookSigner::new(&secret)
        .map_err(|e| err("secret", format!("not a whsec_/whsk_ secret: {e}")))?;
    let concurrency = config.concurrency.unwrap_or(16);
    let client = http_client(concurrency.max(1), timeout).map_err(|e| err("url", e))?;
    let permanent = config.permanent_statuses.unwrap_or_default();
    if let Some(bad) = permanent.iter().find(|s| !(400..500).contains(*s)) {
        return Err(err(
            "permanent_statuses",
            format!("{bad} is not a 4xx status"),
        ));
    }
    Ok((
        Sink::Http(Box::new(HttpSink {
            url: parsed,
            signer,
            client,
            timeout,
            permanent,
        })),
        concurrency,
    ))
}

/// `http`: the original body and content type, `webhook-id` (stable per event and
/// destination), `webhook-timestamp`, `webhook-signature` (Standard Webhooks v1 with the
/// destination's secret), `hookgate-source`, `hookgate-topic`, `hookgate-event-id`.
///
/// hyper's pooled client directly, not reqwest: delivery is the hot path, and reqwest's
/// layers (redirects, retries, proxies, header-map copies) cost about a fifth of it while
/// hookgate uses none of them (redirects are not followed; retries are the policy's).
#[derive(Debug)]
pub struct HttpSink {
    pub(crate) url: http::Uri,
    pub(crate) signer: hookgate_verify::WebhookSigner,
    pub(crate) client: HttpClient,
    pub(crate) timeout: Duration,
    pub(crate) permanent: Vec<u16>,
}

/// A pooled HTTP/1.1 client for http:// and https:// (the system's TLS).
pub type HttpClient = hyper_util::client::legacy::Client<
    hyper_tls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    http_body_util::Full<bytes::Bytes>,
>;

/// A client for one destination: `connections` kept alive, connecting within `timeout`.
pub fn http_client(connections: usize, timeout: Duration) -> Result<HttpClient, String> {
    let mut http = hyper_util::client::legacy::connect::HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(timeout));
    let tls = native_tls::TlsConnector::new().map_err(|e| format!("TLS setup failed: {e}"))?;
    let https = hyper_tls::HttpsConnector::from((http, tls.into()));
    Ok(
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .pool_timer(hyper_util::rt::TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(connections)
            .build(https),
    )
}

const USER_AGENT: &str = concat!("hookgate/", env!("CARGO_PKG_VERSION"));

/// A header value from event data: as is when it is one, else with every byte outside
/// visible ASCII and space percent-encoded (a topic is the provider's text).
fn header_value(text: &str) -> http::HeaderValue {
    http::HeaderValue::from_str(text).unwrap_or_else(|_| {
        let mut encoded = String::with_capacity(text.len() * 3);
        for byte in text.bytes() {
            if (0x20..0x7f).contains(&byte) && byte != b'%' {
                encoded.push(byte as char);
            } else {
                encoded.push_str(&format!("%{byte:02X}"));
            }
        }
        http::HeaderValue::from_str(&encoded).expect("visible ASCII is a header value")
    })
}

impl HttpSink {
    pub(super) async fn deliver(&self, message: &Message<'_>) -> AttemptReport {
        let (event, webhook_id) = (message.event, message.key);
        let failed = |verdict, error: String| AttemptReport {
            verdict,
            status_code: None,
            response: None,
            error: Some(error),
        };
        let timestamp = time::OffsetDateTime::now_utc().unix_timestamp();
        let signature = match self.signer.sign(webhook_id, timestamp, &event.body) {
            Ok(s) => s,
            Err(e) => return failed(Verdict::Permanent, e.to_string()),
        };
        let mut request = http::Request::post(self.url.clone())
            .header(
                http::header::CONTENT_TYPE,
                header_value(header(event, "content-type").unwrap_or("application/json")),
            )
            .header(http::header::USER_AGENT, USER_AGENT)
            .header("webhook-id", header_value(webhook_id))
            .header("webhook-timestamp", timestamp)
            .header("webhook-signature", header_value(&signature))
            .header("hookgate-source", header_value(&event.summary.source))
            .header("hookgate-event-id", header_value(&event.summary.id));
        if let Some(topic) = &event.summary.topic {
            request = request.header("hookgate-topic", header_value(topic));
        }
        let request = match request.body(http_body_util::Full::new(event.body.clone())) {
            Ok(r) => r,
            Err(e) => return failed(Verdict::Permanent, format!("cannot build the request: {e}")),
        };
        let exchange = async {
            let response = self.client.request(request).await?;
            let (parts, mut body) = response.into_parts();
            let mut kept = Vec::new();
            while kept.len() < SNIPPET {
                use http_body_util::BodyExt as _;
                match body.frame().await {
                    Some(Ok(frame)) => {
                        if let Some(data) = frame.data_ref() {
                            kept.extend_from_slice(data);
                        }
                    }
                    // The status decides; a body cut short is not a failed delivery.
                    Some(Err(_)) | None => break,
                }
            }
            Ok::<_, hyper_util::client::legacy::Error>((parts, kept))
        };
        let (parts, body) = match tokio::time::timeout(self.timeout, exchange).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(e)) => {
                let what = if e.is_connect() {
                    "connection failed"
                } else {
                    "request failed"
                };
                let cause = std::error::Error::source(&e)
                    .map(|c| format!(": {c}"))
                    .unwrap_or_default();
                return failed(
                    Verdict::Retry { after: None },
                    format!("{what}: {e}{cause}"),
                );
            }
            Err(_) => {
                return failed(
                    Verdict::Retry { after: None },
                    format!(
                        "timed out after {}",
                        humantime::format_duration(self.timeout)
                    ),
                )
            }
        };
        let status = parts.status.as_u16();
        let retry_after = parts
            .headers
            .get(http::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let verdict = match status {
            200..=299 => Verdict::Delivered,
            429 | 503 => Verdict::Retry { after: retry_after },
            s if s == 410 || self.permanent.contains(&s) => Verdict::Permanent,
            _ => Verdict::Retry { after: None },
        };
        let error = (!matches!(verdict, Verdict::Delivered)).then(|| format!("HTTP {status}"));
        AttemptReport {
            verdict,
            status_code: Some(i64::from(status)),
            response: Some(snippet(&body)),
            error,
        }
    }
}

/// `Retry-After`: seconds, or an HTTP date.
fn parse_retry_after(value: &str) -> Option<Duration> {
    if let Ok(seconds) = value.trim().parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value.trim()).ok()?;
    Some(
        at.duration_since(std::time::SystemTime::now())
            .unwrap_or_default(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(url: &str, secret: Option<&str>, permanent: Option<Vec<u16>>) -> HttpConfig {
        HttpConfig {
            url: Some(url.into()),
            secret: secret.map(str::to_owned),
            concurrency: None,
            permanent_statuses: permanent,
        }
    }

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    #[test]
    fn keys_are_checked_and_errors_name_them() {
        let timeout = Duration::from_secs(1);
        let key = |r: Result<(Sink, usize), (String, String)>| r.err().map(|(k, _)| k);
        assert_eq!(
            key(build(config("ftp://h/", Some(SECRET), None), timeout)),
            Some("url".into())
        );
        assert_eq!(
            key(build(config("http://h/", None, None), timeout)),
            Some("secret".into())
        );
        // A public key is not a signing secret.
        assert_eq!(
            key(build(
                config(
                    "http://h/",
                    Some("whpk_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwMfKQ9r8GKYo="),
                    None
                ),
                timeout
            )),
            Some("secret".into())
        );
        assert_eq!(
            key(build(
                config("http://h/", Some(SECRET), Some(vec![500])),
                timeout
            )),
            Some("permanent_statuses".into())
        );
        let (sink, concurrency) = build(
            config("https://h/x", Some(SECRET), Some(vec![422])),
            timeout,
        )
        .unwrap();
        assert_eq!((sink.kind(), concurrency), ("http", 16));
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        assert_eq!(parse_retry_after(" 7 "), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }
}
