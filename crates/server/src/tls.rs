//! TLS on the listeners (rustls): TLS 1.2 and 1.3 only, HTTP/1.1 and HTTP/2 offered through
//! ALPN. The certificate and key are read from PEM files, and read again by
//! [`Tls::reload`] (on SIGHUP): connections already open keep the certificate they started
//! with, new ones get the new one, and a pair that does not load leaves the old one serving.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls;
use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert};
use tokio_rustls::rustls::sign::CertifiedKey;

/// Why a certificate or key could not be used.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct TlsError {
    /// The file.
    pub path: String,
    /// What is wrong.
    pub reason: String,
}

/// The listener's TLS: its configuration and the certificate it serves.
#[derive(Clone)]
pub struct Tls {
    acceptor: tokio_rustls::TlsAcceptor,
    current: Arc<Current>,
}

impl Tls {
    /// The certificate and key files.
    pub fn paths(&self) -> (&Path, &Path) {
        (&self.current.cert, &self.current.key)
    }
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("cert", &self.current.cert)
            .field("key", &self.current.key)
            .finish()
    }
}

#[derive(Debug)]
struct Current {
    cert: PathBuf,
    key: PathBuf,
    loaded: RwLock<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for Current {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.loaded.read().expect("certificate lock").clone())
    }
}

fn load(cert: &Path, key: &Path) -> Result<Arc<CertifiedKey>, TlsError> {
    let fail = |path: &Path, reason: String| TlsError {
        path: path.display().to_string(),
        reason,
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| fail(cert, format!("cannot read a PEM certificate: {e}")))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| fail(cert, format!("not a PEM certificate chain: {e}")))?;
    if chain.is_empty() {
        return Err(fail(cert, "holds no certificate".into()));
    }
    let private = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| fail(key, format!("cannot read a PEM private key: {e}")))?;
    let signing = rustls::crypto::ring::sign::any_supported_type(&private)
        .map_err(|e| fail(key, format!("unusable private key: {e}")))?;
    let certified = CertifiedKey::new(chain, signing);
    certified
        .keys_match()
        .map_err(|e| fail(key, format!("does not belong to the certificate: {e}")))?;
    Ok(Arc::new(certified))
}

impl Tls {
    /// Loads `cert` (a PEM chain, leaf first) and `key` (PEM, PKCS#8, PKCS#1 or SEC1).
    pub fn new(cert: &Path, key: &Path) -> Result<Tls, TlsError> {
        let current = Arc::new(Current {
            cert: cert.to_owned(),
            key: key.to_owned(),
            loaded: RwLock::new(load(cert, key)?),
        });
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| TlsError {
                path: cert.display().to_string(),
                reason: format!("TLS setup: {e}"),
            })?
            .with_no_client_auth()
            .with_cert_resolver(current.clone());
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Tls {
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
            current,
        })
    }

    /// Reads the certificate and key again. On error the previous pair keeps serving.
    pub fn reload(&self) -> Result<(), TlsError> {
        let loaded = load(&self.current.cert, &self.current.key)?;
        *self.current.loaded.write().expect("certificate lock") = loaded;
        Ok(())
    }

    pub(crate) fn acceptor(&self) -> &tokio_rustls::TlsAcceptor {
        &self.acceptor
    }
}
