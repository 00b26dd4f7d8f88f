//! What the broker sinks (`nats`, `redis`, `amqp`, `mqtt`) share: their connection keys,
//! the metadata every message carries, one connection kept and replaced when it fails,
//! and the reports of an attempt.
//!
//! A broker attempt succeeds only on the broker's acknowledgement; anything else (no
//! connection, a timeout, a negative acknowledgement) is a failed attempt that the shared
//! retry policy tries again, so a broker that is down loses nothing.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use super::{header, AttemptReport, Message};
use crate::delivery::policy::Verdict;

/// The keys every broker sink has (besides the common ones of `[[destination]]`).
pub(super) const KEYS: &[&str] = &["url", "username", "password", "tls_ca", "concurrency"];

/// The keys every broker sink has, as written. `password` may come from `password_file`
/// or `${ENV}` like every value.
#[derive(Debug, Deserialize)]
pub(super) struct BrokerKeys {
    /// The broker's address; its scheme says whether TLS is used.
    pub url: Option<String>,
    /// Credentials, when not in the URL.
    pub username: Option<String>,
    pub password: Option<String>,
    /// A PEM file of the certificate authorities to trust for TLS instead of the
    /// system's, relative to the configuration file.
    pub tls_ca: Option<String>,
    /// Attempts in flight at once.
    pub concurrency: Option<usize>,
}

/// [`BrokerKeys`] checked.
#[derive(Clone)]
pub(super) struct Endpoint {
    pub url: String,
    pub username: Option<String>,
    pub password: Option<String>,
    /// NATS's token, instead of a user and password.
    pub token: Option<String>,
    pub tls_ca: Option<PathBuf>,
    /// Whether the URL's scheme asks for TLS.
    pub tls: bool,
}

/// Without the password, the token, or the URL's user information.
impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let url = match (self.url.find("://"), self.url.rfind('@')) {
            (Some(scheme), Some(at)) if at > scheme => {
                format!(
                    "{}://<redacted>@{}",
                    &self.url[..scheme],
                    &self.url[at + 1..]
                )
            }
            _ => self.url.clone(),
        };
        f.debug_struct("Endpoint")
            .field("url", &url)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("tls_ca", &self.tls_ca)
            .field("tls", &self.tls)
            .finish()
    }
}

impl BrokerKeys {
    /// The endpoint, its URL's scheme one of `plain` or `secure` (TLS). `what` names the
    /// kind in errors.
    pub fn endpoint(
        self,
        what: &str,
        plain: &str,
        secure: &str,
        base: &Path,
    ) -> Result<Endpoint, (String, String)> {
        let err = |key: &str, message: String| (key.to_owned(), message);
        let url = self
            .url
            .ok_or_else(|| err("url", format!("a {what} destination needs `url`")))?;
        let scheme = url.split("://").next().unwrap_or_default();
        let tls = if scheme == secure {
            true
        } else if scheme == plain && url.contains("://") {
            false
        } else {
            // The URL may hold a password: not repeated in the message.
            return Err(err(
                "url",
                format!("must start with {plain}:// (or {secure}:// for TLS)"),
            ));
        };
        // Redis's `requirepass` takes a password alone; the others need a user.
        if self.password.is_some() && self.username.is_none() && what != "redis" {
            return Err(err(
                "username",
                "`password` is set without `username`".into(),
            ));
        }
        let tls_ca = self.tls_ca.map(|p| {
            if Path::new(&p).is_absolute() {
                PathBuf::from(p)
            } else {
                base.join(p)
            }
        });
        if let Some(ca) = &tls_ca {
            if !tls {
                return Err(err(
                    "tls_ca",
                    format!("is only used over TLS: write {secure}:// in `url`"),
                ));
            }
            if let Err(e) = std::fs::metadata(ca) {
                return Err(err("tls_ca", format!("cannot read {}: {e}", ca.display())));
            }
        }
        Ok(Endpoint {
            url,
            username: self.username,
            password: self.password,
            token: None,
            tls_ca,
            tls,
        })
    }
}

impl Endpoint {
    /// The certificate authorities' PEM, when `tls_ca` names a file.
    pub fn read_ca(&self) -> Result<Option<Vec<u8>>, String> {
        self.tls_ca
            .as_ref()
            .map(|path| {
                std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
            })
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endpoint_prints_no_credentials() {
        let endpoint = Endpoint {
            url: "amqp://guest:hunter2@rabbit:5672/%2f".into(),
            username: Some("hookgate".into()),
            password: Some("s3cret".into()),
            token: Some("t0ken".into()),
            tls_ca: None,
            tls: false,
        };
        let printed = format!("{endpoint:?}");
        for secret in ["hunter2", "s3cret", "t0ken"] {
            assert!(!printed.contains(secret), "{printed}");
        }
        assert!(
            printed.contains("amqp://<redacted>@rabbit:5672/%2f"),
            "{printed}"
        );
    }
}

/// The metadata a broker message carries beside the body, as name and value:
/// `webhook-id` (the idempotency key, stable across attempts), `hookgate-event-id`,
/// `hookgate-source`, `hookgate-topic` and `hookgate-tenant` when the event has them, and
/// the original `content-type`.
pub(super) fn metadata<'a>(message: &Message<'a>) -> Vec<(&'static str, &'a str)> {
    let event = message.event;
    let mut pairs = vec![
        ("webhook-id", message.key),
        ("hookgate-event-id", &*event.summary.id),
        ("hookgate-source", event.summary.source.as_str()),
    ];
    if let Some(topic) = &event.summary.topic {
        pairs.push(("hookgate-topic", topic));
    }
    if let Some(tenant) = &event.summary.tenant {
        pairs.push(("hookgate-tenant", tenant));
    }
    pairs.push((
        "content-type",
        header(event, "content-type").unwrap_or("application/json"),
    ));
    pairs
}

/// The broker acknowledged: `response` says what it answered (a sequence, an entry id).
pub(super) fn acked(response: impl Into<String>) -> AttemptReport {
    AttemptReport {
        verdict: Verdict::Delivered,
        status_code: None,
        response: Some(response.into()),
        error: None,
    }
}

/// Not acknowledged: tried again under the retry policy.
pub(super) fn failed(error: impl Into<String>) -> AttemptReport {
    AttemptReport {
        verdict: Verdict::Retry { after: None },
        status_code: None,
        response: None,
        error: Some(error.into()),
    }
}

/// Can never be acknowledged as it is (a name the broker cannot take): dead at once.
pub(super) fn refused(error: impl Into<String>) -> AttemptReport {
    AttemptReport {
        verdict: Verdict::Permanent,
        status_code: None,
        response: None,
        error: Some(error.into()),
    }
}

/// One connection shared by a sink's attempts, made on first use and made again after it
/// failed.
///
/// Connecting runs in a task of its own (bounded by the sink's timeout), which attempts
/// wait for, up to their own deadline: an attempt that gives up never cancels it, so a
/// broker coming back is reconnected to once, however many attempts queue behind it.
#[derive(Debug)]
pub(super) struct Shared<T> {
    slot: std::sync::Mutex<Slot<T>>,
}

#[derive(Debug)]
enum Slot<T> {
    Empty,
    Connecting(tokio::sync::watch::Receiver<Option<Result<Arc<T>, String>>>),
    Ready(Arc<T>),
}

impl<T> Default for Shared<T> {
    fn default() -> Self {
        Shared {
            slot: std::sync::Mutex::new(Slot::Empty),
        }
    }
}

impl<T: Send + Sync + 'static> Shared<T> {
    /// The connection; when there is none, `connect` makes it (within `limit`).
    pub async fn get<F>(
        &self,
        limit: Duration,
        connect: impl FnOnce() -> F,
    ) -> Result<Arc<T>, String>
    where
        F: Future<Output = Result<T, String>> + Send + 'static,
    {
        let mut outcome = {
            let mut slot = self.slot.lock().expect("connection slot");
            match &*slot {
                Slot::Ready(connection) => return Ok(connection.clone()),
                Slot::Connecting(outcome) => outcome.clone(),
                Slot::Empty => {
                    let (done, outcome) = tokio::sync::watch::channel(None);
                    let connecting = connect();
                    tokio::spawn(async move {
                        let result = match tokio::time::timeout(limit, connecting).await {
                            Ok(result) => result.map(Arc::new),
                            Err(_) => Err(format!(
                                "not connected within {}",
                                humantime::format_duration(limit)
                            )),
                        };
                        done.send_replace(Some(result));
                    });
                    *slot = Slot::Connecting(outcome.clone());
                    outcome
                }
            }
        };
        let result = match outcome.wait_for(Option::is_some).await {
            Ok(result) => result.clone().expect("waited for a result"),
            Err(_) => Err("the connecting task ended without a result".to_owned()),
        };
        // The first to see how it went puts it in the slot (if it is still this attempt's).
        let mut slot = self.slot.lock().expect("connection slot");
        if let Slot::Connecting(current) = &*slot {
            if current.same_channel(&outcome) {
                *slot = match &result {
                    Ok(connection) => Slot::Ready(connection.clone()),
                    Err(_) => Slot::Empty,
                };
            }
        }
        result
    }

    /// One attempt on the connection (made first if there is none), within `limit` in
    /// all. A connection on which an attempt gets no answer in time is dropped: a
    /// partition shows as silence, not as an error, and a new connection finds out.
    pub async fn attempt<F, A, AF>(
        &self,
        limit: Duration,
        connect: impl FnOnce() -> F,
        attempt: A,
    ) -> AttemptReport
    where
        F: Future<Output = Result<T, String>> + Send + 'static,
        A: FnOnce(Arc<T>) -> AF,
        AF: Future<Output = AttemptReport>,
    {
        let deadline = tokio::time::Instant::now() + limit;
        let within = humantime::format_duration(limit);
        let connection = match tokio::time::timeout_at(deadline, self.get(limit, connect)).await {
            Ok(Ok(connection)) => connection,
            Ok(Err(e)) => return failed(e),
            Err(_) => return failed(format!("not connected within {within}")),
        };
        match tokio::time::timeout_at(deadline, attempt(connection.clone())).await {
            Ok(report) => report,
            Err(_) => {
                self.discard(&connection);
                failed(format!("no acknowledgement within {within}"))
            }
        }
    }

    /// `failed` is broken: the next attempt connects again (unless another attempt has
    /// already replaced it).
    pub fn discard(&self, failed: &Arc<T>) {
        let mut slot = self.slot.lock().expect("connection slot");
        if matches!(&*slot, Slot::Ready(c) if Arc::ptr_eq(c, failed)) {
            *slot = Slot::Empty;
        }
    }
}
