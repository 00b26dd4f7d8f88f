//! OIDC key retrieval behind the verifier's [`KeyLookup`]: discovery
//! (`<issuer>/.well-known/openid-configuration` → `jwks_uri`), a cache per issuer (default
//! 1 h, shortened by `Cache-Control: max-age`), one fetch in flight per issuer, one refetch
//! on an unknown `kid` after a cooldown, and the last good keys kept while the issuer is
//! down. Only configured issuers are ever contacted, over https unless the source allows
//! plain http on loopback.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use hookgate_verify::scheme::aws_sns::SigningCertificate;
use hookgate_verify::{check_issuer_url, KeyLookup, KeySet};

/// Least time between two fetches of one issuer's keys triggered by unknown `kid`s.
pub const REFETCH_COOLDOWN: Duration = Duration::from_secs(10);
/// Shortest cache lifetime, whatever `max-age` says: an issuer cannot make us fetch per request.
pub const MIN_TTL: Duration = Duration::from_secs(30);
/// After a failed fetch, no other fetch of that issuer for this long, doubling with each
/// failure in a row up to [`MAX_BACKOFF`]: an attacker's request rate is never relayed to
/// an issuer that is down.
pub const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// The longest wait between fetches of an issuer that keeps failing.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// Largest discovery or JWKS document read.
pub const MAX_DOCUMENT: usize = 1024 * 1024;
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// Why keys could not be fetched.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// The issuer is not configured: it is never contacted.
    #[error("issuer `{0}` is not configured")]
    NotConfigured(String),
    /// The issuer or its `jwks_uri` could not be fetched or used.
    #[error("fetching keys of `{issuer}` failed: {reason}")]
    Failed {
        /// The issuer.
        issuer: String,
        /// What went wrong.
        reason: String,
    },
}

struct Cached {
    keys: Arc<KeySet>,
    expires: Instant,
}

struct IssuerKeys {
    issuer: String,
    allow_http: bool,
    ttl: Duration,
    current: RwLock<Option<Cached>>,
    fetching: tokio::sync::Mutex<()>,
    /// When the last fetch attempt ended, successful or not.
    last_fetch: Mutex<Option<Instant>>,
    /// Failed fetches in a row, and the last one's reason (reset by a success).
    failures: Mutex<(u32, String)>,
    fetches: std::sync::atomic::AtomicU64,
    background_refresh: std::sync::atomic::AtomicBool,
}

/// The key cache of every OIDC issuer the configuration trusts.
#[derive(Clone)]
pub struct KeyCache {
    client: reqwest::Client,
    /// AWS SNS signing certificates (kept across reconfigurations).
    pub certificates: crate::certificates::CertificateCache,
    /// Secrets handed over in handshakes (Asana's), by file.
    pub captured: crate::captured::CapturedSecrets,
    issuers: Arc<HashMap<String, Arc<IssuerKeys>>>,
    results: prometheus_client::metrics::family::Family<
        crate::metrics::KeyFetchLabels,
        prometheus_client::metrics::counter::Counter,
    >,
}

impl std::fmt::Debug for KeyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyCache")
            .field("issuers", &self.issuers.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl KeyCache {
    /// A cache for `issuers`: `(issuer, allow_http, ttl)`.
    pub fn new(issuers: impl IntoIterator<Item = (String, bool, Duration)>) -> KeyCache {
        KeyCache::counting(issuers, Default::default())
    }

    /// A cache for `issuers` that counts its fetches in `results` (by issuer and result).
    pub fn counting(
        issuers: impl IntoIterator<Item = (String, bool, Duration)>,
        results: prometheus_client::metrics::family::Family<
            crate::metrics::KeyFetchLabels,
            prometheus_client::metrics::counter::Counter,
        >,
    ) -> KeyCache {
        let client = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("hookgate/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("the HTTP client builds with static settings");
        let mut map = HashMap::new();
        for (issuer, allow_http, ttl) in issuers {
            map.entry(issuer.clone()).or_insert_with(|| {
                Arc::new(IssuerKeys {
                    issuer,
                    allow_http,
                    ttl,
                    current: RwLock::new(None),
                    fetching: tokio::sync::Mutex::new(()),
                    last_fetch: Mutex::new(None),
                    failures: Mutex::new((0, String::new())),
                    fetches: Default::default(),
                    background_refresh: Default::default(),
                })
            });
        }
        for issuer in map.keys() {
            for result in ["ok", "failed"] {
                // Every issuer's series exist from the start, at zero.
                let _ = results.get_or_create(&crate::metrics::KeyFetchLabels {
                    issuer: issuer.clone(),
                    result,
                });
            }
        }
        KeyCache {
            client,
            certificates: Default::default(),
            captured: Default::default(),
            issuers: Arc::new(map),
            results,
        }
    }

    /// The cache for a new configuration's `issuers`: an issuer it already had, with the
    /// same settings, keeps its keys, its backoff and its single fetch in flight (a reload
    /// does not make every issuer be fetched again); the others start empty.
    pub fn reconfigured(
        &self,
        issuers: impl IntoIterator<Item = (String, bool, Duration)>,
    ) -> KeyCache {
        let fresh = KeyCache::counting(issuers, self.results.clone());
        let issuers = fresh
            .issuers
            .iter()
            .map(|(name, new)| {
                let kept = self
                    .issuers
                    .get(name)
                    .filter(|old| old.allow_http == new.allow_http && old.ttl == new.ttl)
                    .unwrap_or(new);
                (name.clone(), kept.clone())
            })
            .collect();
        KeyCache {
            client: self.client.clone(),
            certificates: self.certificates.clone(),
            captured: self.captured.clone(),
            issuers: Arc::new(issuers),
            results: self.results.clone(),
        }
    }

    /// How many fetches of `issuer` were made (for tests and metrics).
    pub fn fetch_count(&self, issuer: &str) -> u64 {
        self.issuers
            .get(issuer)
            .map(|e| e.fetches.load(std::sync::atomic::Ordering::Relaxed))
            .unwrap_or(0)
    }

    /// Fetches `issuer`'s keys unless another task just did. Every path to the network is
    /// bounded: one fetch in flight per issuer (callers meanwhile wait for its result), after
    /// a failure none for [`FIRST_BACKOFF`] doubling up to [`MAX_BACKOFF`], and with
    /// `unknown_kid` none within [`REFETCH_COOLDOWN`] of the last one.
    pub async fn refresh(&self, issuer: &str, unknown_kid: bool) -> Result<(), FetchError> {
        let entry = self
            .issuers
            .get(issuer)
            .ok_or_else(|| FetchError::NotConfigured(issuer.to_owned()))?
            .clone();
        let started = Instant::now();
        let _single_flight = entry.fetching.lock().await;
        let last = *entry.last_fetch.lock().expect("lock");
        let (failures, reason) = entry.failures.lock().expect("lock").clone();
        let failed = |reason: String| FetchError::Failed {
            issuer: entry.issuer.clone(),
            reason,
        };
        if let Some(last) = last {
            // Someone fetched while we waited: take its result.
            if last >= started {
                return if failures == 0 {
                    Ok(())
                } else {
                    Err(failed(reason))
                };
            }
            if failures > 0 && last.elapsed() < backoff(failures) {
                return Err(failed(format!(
                    "{reason} (next try in at most {}s)",
                    backoff(failures).saturating_sub(last.elapsed()).as_secs() + 1
                )));
            }
            if unknown_kid && last.elapsed() < REFETCH_COOLDOWN {
                return Ok(());
            }
        }
        entry
            .fetches
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let result = self.fetch(&entry).await;
        *entry.last_fetch.lock().expect("lock") = Some(Instant::now());
        self.results
            .get_or_create(&crate::metrics::KeyFetchLabels {
                issuer: entry.issuer.clone(),
                result: if result.is_ok() { "ok" } else { "failed" },
            })
            .inc();
        {
            let mut failures = entry.failures.lock().expect("lock");
            *failures = match &result {
                Ok(_) => (0, String::new()),
                Err(reason) => (failures.0.saturating_add(1), reason.clone()),
            };
        }
        match result {
            Ok((keys, max_age)) => {
                let ttl = max_age.map_or(entry.ttl, |m| m.min(entry.ttl)).max(MIN_TTL);
                tracing::info!(issuer = %entry.issuer, keys = %keys.key_ids().join(","), ttl_secs = ttl.as_secs(), "fetched OIDC keys");
                *entry.current.write().expect("lock") = Some(Cached {
                    keys: Arc::new(keys),
                    expires: Instant::now() + ttl,
                });
                Ok(())
            }
            Err(reason) => {
                let kept = entry.current.read().expect("lock").is_some();
                tracing::warn!(issuer = %entry.issuer, %reason, kept_last_good_keys = kept, "fetching OIDC keys failed");
                Err(FetchError::Failed {
                    issuer: entry.issuer.clone(),
                    reason,
                })
            }
        }
    }

    async fn fetch(&self, entry: &IssuerKeys) -> Result<(KeySet, Option<Duration>), String> {
        let discovery_url = format!(
            "{}/.well-known/openid-configuration",
            entry.issuer.trim_end_matches('/')
        );
        let (discovery, _) = self.get(&discovery_url).await?;
        let discovery: serde_json::Value = serde_json::from_slice(&discovery)
            .map_err(|e| format!("discovery document is not JSON: {e}"))?;
        if let Some(stated) = discovery.get("issuer").and_then(|v| v.as_str()) {
            if stated.trim_end_matches('/') != entry.issuer.trim_end_matches('/') {
                return Err(format!("discovery document names issuer `{stated}`"));
            }
        }
        let jwks_uri = discovery
            .get("jwks_uri")
            .and_then(|v| v.as_str())
            .ok_or("discovery document has no jwks_uri")?;
        check_issuer_url(jwks_uri, entry.allow_http)
            .map_err(|m| format!("jwks_uri `{jwks_uri}`: {m}"))?;
        let (jwks, max_age) = self.get(jwks_uri).await?;
        let keys = KeySet::from_jwks(&jwks).map_err(|e| format!("{jwks_uri}: {e}"))?;
        Ok((keys, max_age))
    }

    async fn get(&self, url: &str) -> Result<(Vec<u8>, Option<Duration>), String> {
        let mut response = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        if !response.status().is_success() {
            return Err(format!("GET {url}: status {}", response.status()));
        }
        let max_age = response
            .headers()
            .get(reqwest::header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.split(',')
                    .find_map(|d| d.trim().strip_prefix("max-age=")?.parse::<u64>().ok())
            })
            .map(Duration::from_secs);
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?
        {
            if body.len() + chunk.len() > MAX_DOCUMENT {
                return Err(format!(
                    "GET {url}: document larger than {MAX_DOCUMENT} bytes"
                ));
            }
            body.extend_from_slice(&chunk);
        }
        Ok((body, max_age))
    }
}

/// The wait after `failures` failed fetches in a row.
fn backoff(failures: u32) -> Duration {
    FIRST_BACKOFF
        .saturating_mul(1 << failures.saturating_sub(1).min(16))
        .min(MAX_BACKOFF)
}

impl KeyLookup for KeyCache {
    /// The cached keys, fresh or not: stale keys keep verifying while a background refresh
    /// runs (and after it fails, while the issuer is down).
    fn keys(&self, issuer: &str) -> Option<Arc<KeySet>> {
        let entry = self.issuers.get(issuer)?;
        let current = entry.current.read().expect("lock");
        let cached = current.as_ref()?;
        let recently_tried = entry
            .last_fetch
            .lock()
            .expect("lock")
            .is_some_and(|t| t.elapsed() < REFETCH_COOLDOWN);
        if cached.expires <= Instant::now() && !recently_tried {
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                // One background refresh at a time per issuer.
                if !entry
                    .background_refresh
                    .swap(true, std::sync::atomic::Ordering::AcqRel)
                {
                    let cache = self.clone();
                    let issuer = issuer.to_owned();
                    let entry = entry.clone();
                    runtime.spawn(async move {
                        let _ = cache.refresh(&issuer, false).await;
                        entry
                            .background_refresh
                            .store(false, std::sync::atomic::Ordering::Release);
                    });
                }
            }
        }
        Some(cached.keys.clone())
    }

    fn certificate(&self, url: &str) -> Option<Arc<SigningCertificate>> {
        self.certificates.get(url)
    }

    fn captured_secret(&self, path: &str) -> Option<hookgate_verify::Secret> {
        self.captured.get(path)
    }
}
