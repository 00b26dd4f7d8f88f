//! Destinations: `http` (the original body, re-signed as Standard Webhooks), `command` (a
//! program with the body on stdin), `file` (one fsynced JSON line per event).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hookgate_store::EventRecord;
use hookgate_verify::{Context, Encoding, Template};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::policy::Verdict;

/// Bytes of an answer kept with each attempt.
pub const SNIPPET: usize = 1024;

/// What an attempt produced.
#[derive(Debug)]
pub struct AttemptReport {
    /// The verdict for the retry policy.
    pub verdict: Verdict,
    /// HTTP status or exit code.
    pub status_code: Option<i64>,
    /// Up to [`SNIPPET`] bytes of the answer.
    pub response: Option<String>,
    /// What went wrong.
    pub error: Option<String>,
}

/// A configured destination's way of delivering.
#[derive(Debug)]
pub enum Sink {
    /// POST to a URL.
    Http(Box<HttpSink>),
    /// Run a program.
    Command(CommandSink),
    /// Append to a file.
    File(FileSink),
}

impl Sink {
    /// `http`, `command` or `file`.
    pub fn kind(&self) -> &'static str {
        match self {
            Sink::Http(_) => "http",
            Sink::Command(_) => "command",
            Sink::File(_) => "file",
        }
    }

    /// Delivers `event` once, as attempt number `attempt`.
    pub async fn deliver(
        &self,
        event: &EventRecord,
        webhook_id: &str,
        attempt: u32,
    ) -> AttemptReport {
        match self {
            Sink::Http(s) => s.deliver(event, webhook_id).await,
            Sink::Command(s) => s.deliver(event, webhook_id, attempt).await,
            Sink::File(s) => s.deliver(event, webhook_id).await,
        }
    }
}

fn header<'a>(event: &'a EventRecord, name: &str) -> Option<&'a str> {
    event
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn snippet(bytes: &[u8]) -> String {
    let cut = bytes.len().min(SNIPPET);
    String::from_utf8_lossy(&bytes[..cut]).into_owned()
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
    async fn deliver(&self, event: &EventRecord, webhook_id: &str) -> AttemptReport {
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

/// `command`: runs `argv` (templated like adnanh/webhook's pass-arguments, with hookgate's
/// template language over the stored request) with the body on stdin and the event's
/// metadata in `HOOKGATE_*` variables. Exit 0 is success; past the timeout the program
/// and its children (its process group) are killed.
#[derive(Debug)]
pub struct CommandSink {
    pub(crate) argv: Vec<Template>,
    pub(crate) timeout: Duration,
}

impl CommandSink {
    async fn deliver(&self, event: &EventRecord, webhook_id: &str, attempt: u32) -> AttemptReport {
        let fail = |error: String| AttemptReport {
            verdict: Verdict::Retry { after: None },
            status_code: None,
            response: None,
            error: Some(error),
        };
        let (path, query) = match event.path.split_once('?') {
            Some((p, q)) => (p.to_owned(), Some(q.to_owned())),
            None => (event.path.clone(), None),
        };
        let request = hookgate_verify::Request {
            method: event.method.clone(),
            path,
            query,
            headers: event
                .headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_bytes().to_vec()))
                .collect(),
            body: &event.body,
            peer: None,
        };
        let ctx = Context::new(&request);
        let mut argv = Vec::with_capacity(self.argv.len());
        for template in &self.argv {
            match template.render_string(&ctx) {
                Ok(arg) => argv.push(without_nul(&arg).into_owned()),
                Err(e) => {
                    return AttemptReport {
                        verdict: Verdict::Permanent,
                        status_code: None,
                        response: None,
                        error: Some(format!("argument `{template}`: {e}")),
                    }
                }
            }
        }
        let mut command = tokio::process::Command::new(&argv[0]);
        command
            .args(&argv[1..])
            .env("HOOKGATE_EVENT_ID", &*event.summary.id)
            .env("HOOKGATE_WEBHOOK_ID", webhook_id)
            .env(
                "HOOKGATE_SOURCE",
                without_nul(&event.summary.source).as_ref(),
            )
            .env(
                "HOOKGATE_TOPIC",
                without_nul(event.summary.topic.as_deref().unwrap_or("")).as_ref(),
            )
            .env(
                "HOOKGATE_TENANT",
                without_nul(event.summary.tenant.as_deref().unwrap_or("")).as_ref(),
            )
            .env(
                "HOOKGATE_DEDUPE_ID",
                without_nul(event.summary.dedupe_key.as_deref().unwrap_or("")).as_ref(),
            )
            .env(
                "HOOKGATE_RECEIVED_AT_MS",
                event.summary.received_at_ms.to_string(),
            )
            .env("HOOKGATE_ATTEMPT", attempt.to_string())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let mut child = match command.spawn() {
            Ok(c) => c,
            Err(e) => return fail(format!("cannot start `{}`: {e}", argv[0])),
        };
        let pid = child.id();
        let mut stdin = child.stdin.take();
        let mut stdout = child.stdout.take();
        let mut stderr = child.stderr.take();
        let body = event.body.clone();
        let run = async {
            if let Some(mut input) = stdin.take() {
                // A program that does not read its stdin is not an error.
                let _ = input.write_all(&body).await;
                drop(input);
            }
            let mut out = Vec::new();
            let mut err = Vec::new();
            let read_out = async {
                if let Some(s) = stdout.as_mut() {
                    let _ = s.read_to_end(&mut out).await;
                }
            };
            let read_err = async {
                if let Some(s) = stderr.as_mut() {
                    let _ = s.read_to_end(&mut err).await;
                }
            };
            tokio::join!(read_out, read_err);
            let status = child.wait().await;
            (status, out, err)
        };
        match tokio::time::timeout(self.timeout, run).await {
            Ok((Ok(status), out, err)) => {
                let mut answer = out;
                answer.extend_from_slice(&err);
                let code = status.code().map(i64::from);
                if status.success() {
                    AttemptReport {
                        verdict: Verdict::Delivered,
                        status_code: code,
                        response: Some(snippet(&answer)),
                        error: None,
                    }
                } else {
                    let mut error = match code {
                        Some(c) => format!("exit code {c}"),
                        None => "killed by a signal".to_owned(),
                    };
                    // What the program said last is usually why it failed.
                    let tail = stderr_tail(&err);
                    if !tail.is_empty() {
                        error.push_str(": ");
                        error.push_str(&tail);
                    }
                    AttemptReport {
                        verdict: Verdict::Retry { after: None },
                        status_code: code,
                        response: Some(snippet(&answer)),
                        error: Some(error),
                    }
                }
            }
            Ok((Err(e), ..)) => fail(format!("waiting for `{}`: {e}", argv[0])),
            Err(_) => {
                if let Some(pid) = pid {
                    // The whole group: a shell script's children die with it.
                    let _ = nix::sys::signal::killpg(
                        nix::unistd::Pid::from_raw(pid as i32),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
                fail(format!(
                    "timed out after {} and was killed",
                    humantime::format_duration(self.timeout)
                ))
            }
        }
    }
}

/// `text` with NUL characters replaced by U+FFFD: a program's arguments and environment
/// cannot hold a NUL, and a provider's topic (or any templated value) must not make a
/// command delivery impossible.
fn without_nul(text: &str) -> std::borrow::Cow<'_, str> {
    if text.contains('\0') {
        text.replace('\0', "\u{fffd}").into()
    } else {
        text.into()
    }
}

/// Bytes of a failed command's stderr kept in its attempt's error.
const STDERR_TAIL: usize = 512;

/// The last [`STDERR_TAIL`] bytes of `stderr`, on one line: trimmed, line breaks as ` | `,
/// other control characters dropped.
fn stderr_tail(stderr: &[u8]) -> String {
    let start = stderr.len().saturating_sub(STDERR_TAIL);
    let text = String::from_utf8_lossy(&stderr[start..]);
    let lines: Vec<String> = text
        .lines()
        .map(|l| l.chars().filter(|c| !c.is_control()).collect::<String>())
        .map(|l| l.trim().to_owned())
        .filter(|l| !l.is_empty())
        .collect();
    let joined = lines.join(" | ");
    if start > 0 {
        format!("…{joined}")
    } else {
        joined
    }
}

/// `file`: one JSON line per event (metadata and body), fsynced before success.
#[derive(Debug)]
pub struct FileSink {
    pub(crate) path: PathBuf,
    pub(crate) file: Arc<std::sync::Mutex<Option<std::fs::File>>>,
}

impl FileSink {
    async fn deliver(&self, event: &EventRecord, webhook_id: &str) -> AttemptReport {
        let body = match std::str::from_utf8(&event.body) {
            Ok(text) => serde_json::json!({"body": text, "body_encoding": "utf-8"}),
            Err(_) => {
                serde_json::json!({"body": Encoding::Base64.encode(&event.body), "body_encoding": "base64"})
            }
        };
        let mut line = serde_json::json!({
            "event_id": event.summary.id,
            "webhook_id": webhook_id,
            "source": event.summary.source,
            "topic": event.summary.topic,
            "tenant": event.summary.tenant,
            "dedupe_id": event.summary.dedupe_key,
            "received_at_ms": event.summary.received_at_ms,
            "headers": event.headers,
            "verification": event.verification,
        });
        line.as_object_mut()
            .expect("an object")
            .extend(body.as_object().expect("an object").clone());
        let mut text = line.to_string();
        text.push('\n');
        let (path, file) = (self.path.clone(), self.file.clone());
        let written = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            use std::io::Write;
            let mut guard = file
                .lock()
                .map_err(|_| std::io::Error::other("file lock poisoned"))?;
            if guard.is_none() {
                use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
                // What providers sent: readable by the gateway's user alone.
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::DirBuilder::new()
                        .recursive(true)
                        .mode(0o700)
                        .create(dir)?;
                }
                *guard = Some(
                    std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .mode(0o600)
                        .open(&path)?,
                );
            }
            let f = guard.as_mut().expect("opened above");
            f.write_all(text.as_bytes())?;
            f.sync_data()
        })
        .await;
        match written {
            Ok(Ok(())) => AttemptReport {
                verdict: Verdict::Delivered,
                status_code: None,
                response: None,
                error: None,
            },
            Ok(Err(e)) => AttemptReport {
                verdict: Verdict::Retry { after: None },
                status_code: None,
                response: None,
                error: Some(format!("{}: {e}", self.path.display())),
            },
            Err(e) => AttemptReport {
                verdict: Verdict::Retry { after: None },
                status_code: None,
                response: None,
                error: Some(e.to_string()),
            },
        }
    }
}
