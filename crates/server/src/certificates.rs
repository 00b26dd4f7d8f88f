//! AWS SNS signing certificates behind the verifier's [`KeyLookup::certificate`]: fetched
//! only when a verified-as-SNS URL names one (the verifier accepts nothing but
//! `https://sns.<region>.amazonaws.com/….pem`), one fetch at a time, at most
//! [`MAX_CERTIFICATES`] kept for [`TTL`], a failed URL not fetched again for
//! [`FAILURE_BACKOFF`]: a flood of forged messages is never relayed to AWS.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use hookgate_verify::scheme::aws_sns::SigningCertificate;

/// How long a certificate is kept before it is fetched again (SNS certificates change
/// with notice, months apart).
pub const TTL: Duration = Duration::from_secs(24 * 3600);
/// The most certificates kept (SNS uses one per region, rotated rarely).
pub const MAX_CERTIFICATES: usize = 64;
/// After a failed fetch of a URL, none for this long.
pub const FAILURE_BACKOFF: Duration = Duration::from_secs(30);
/// Largest certificate read.
pub const MAX_CERTIFICATE: usize = 64 * 1024;
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Default)]
struct State {
    loaded: HashMap<String, (Arc<SigningCertificate>, Instant)>,
    failed: HashMap<String, (Instant, String)>,
}

/// The certificates fetched so far.
#[derive(Clone)]
pub struct CertificateCache {
    client: reqwest::Client,
    state: Arc<RwLock<State>>,
    fetching: Arc<tokio::sync::Mutex<()>>,
}

impl Default for CertificateCache {
    fn default() -> Self {
        CertificateCache {
            client: reqwest::Client::builder()
                .timeout(FETCH_TIMEOUT)
                .redirect(reqwest::redirect::Policy::none())
                .user_agent(concat!("hookgate/", env!("CARGO_PKG_VERSION")))
                .build()
                .expect("the HTTP client builds with static settings"),
            state: Default::default(),
            fetching: Default::default(),
        }
    }
}

impl CertificateCache {
    /// The certificate at `url`, if loaded and fresh.
    pub fn get(&self, url: &str) -> Option<Arc<SigningCertificate>> {
        let state = self.state.read().expect("lock");
        let (cert, at) = state.loaded.get(url)?;
        (at.elapsed() < TTL).then(|| cert.clone())
    }

    /// Fetches `url` (already checked by the verifier to be an SNS certificate URL) unless
    /// it is loaded, or failed less than [`FAILURE_BACKOFF`] ago.
    pub async fn fetch(&self, url: &str) -> Result<(), String> {
        let _single_flight = self.fetching.lock().await;
        if self.get(url).is_some() {
            return Ok(());
        }
        if let Some((at, reason)) = self.state.read().expect("lock").failed.get(url) {
            if at.elapsed() < FAILURE_BACKOFF {
                return Err(format!(
                    "{reason} (not retried for {}s)",
                    FAILURE_BACKOFF.as_secs()
                ));
            }
        }
        let outcome = self.download(url).await;
        let mut state = self.state.write().expect("lock");
        match outcome {
            Ok(cert) => {
                state.failed.remove(url);
                if state.loaded.len() >= MAX_CERTIFICATES {
                    // The oldest goes: a stale one is fetched again if it is still used.
                    if let Some(oldest) = state
                        .loaded
                        .iter()
                        .min_by_key(|(_, (_, at))| *at)
                        .map(|(u, _)| u.clone())
                    {
                        state.loaded.remove(&oldest);
                    }
                }
                state
                    .loaded
                    .insert(url.to_owned(), (Arc::new(cert), Instant::now()));
                tracing::info!(certificate = url, "SNS signing certificate fetched");
                Ok(())
            }
            Err(reason) => {
                if state.failed.len() >= MAX_CERTIFICATES {
                    state.failed.clear();
                }
                state
                    .failed
                    .insert(url.to_owned(), (Instant::now(), reason.clone()));
                Err(reason)
            }
        }
    }

    async fn download(&self, url: &str) -> Result<SigningCertificate, String> {
        let fail =
            |e: &dyn std::fmt::Display| format!("fetching the certificate {url} failed: {e}");
        let mut response = self.client.get(url).send().await.map_err(|e| fail(&e))?;
        if !response.status().is_success() {
            return Err(fail(&format!("status {}", response.status())));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| fail(&e))? {
            if body.len() + chunk.len() > MAX_CERTIFICATE {
                return Err(fail(&format!("larger than {MAX_CERTIFICATE} bytes")));
            }
            body.extend_from_slice(&chunk);
        }
        SigningCertificate::from_pem(&body).map_err(|e| fail(&e))
    }

    /// GETs an SNS subscription URL (already checked to be one), to confirm a subscription.
    pub async fn visit(&self, url: &str) -> Result<(), String> {
        let response = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(format!("status {}", response.status()))
        }
    }
}
