//! Secrets a provider hands over in a handshake (Asana's `X-Hook-Secret`), kept in the file
//! the source names, so the `hmac` check's `secret_from_handshake` finds them — after a
//! restart too. The first handshake's secret is kept; a later one with another secret is
//! refused (the file is never overwritten); delete the file to take a new one.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use hookgate_verify::Secret;

/// How long "no file yet" is remembered: a flood of unsigned requests before the handshake
/// is not a file read each.
const ABSENT_FOR: Duration = Duration::from_secs(1);

/// Why [`CapturedSecrets::keep`] kept nothing.
#[derive(Debug, PartialEq, Eq)]
pub enum NotKept {
    /// The file holds another secret: the handshake is refused.
    Conflict(String),
    /// The file could not be written or read: hookgate's side failed.
    Io(String),
}

/// What [`CapturedSecrets::keep`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Kept {
    /// The secret is new: written to its file.
    Written,
    /// The file already held this very secret (the provider repeated its handshake).
    Same,
}

/// The captured secrets, by file.
#[derive(Clone, Default)]
pub struct CapturedSecrets {
    known: Arc<RwLock<HashMap<String, Result<Secret, Instant>>>>,
}

impl CapturedSecrets {
    /// The secret kept in `path`, if any.
    pub fn get(&self, path: &str) -> Option<Secret> {
        match self.known.read().expect("lock").get(path) {
            Some(Ok(secret)) => return Some(secret.clone()),
            Some(Err(at)) if at.elapsed() < ABSENT_FOR => return None,
            _ => {}
        }
        let read = std::fs::read_to_string(path)
            .ok()
            .map(|text| text.trim().to_owned())
            .filter(|text| !text.is_empty())
            .map(Secret::new);
        let mut known = self.known.write().expect("lock");
        match read {
            Some(secret) => {
                known.insert(path.to_owned(), Ok(secret.clone()));
                Some(secret)
            }
            None => {
                known.insert(path.to_owned(), Err(Instant::now()));
                None
            }
        }
    }

    /// Keeps `secret` in `path` unless the file exists: the same secret again is fine, another
    /// one is refused.
    pub fn keep(&self, path: &str, secret: &str) -> Result<Kept, NotKept> {
        let mut file = match open_new(path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let held = std::fs::read_to_string(path)
                    .map_err(|e| NotKept::Io(format!("{path} exists but cannot be read: {e}")))?;
                return if hookgate_verify::ct_eq_any_len(held.trim().as_bytes(), secret.as_bytes())
                {
                    Ok(Kept::Same)
                } else {
                    Err(NotKept::Conflict(format!(
                        "{path} already holds another secret; delete it to accept a new handshake"
                    )))
                };
            }
            Err(e) => return Err(NotKept::Io(format!("cannot create {path}: {e}"))),
        };
        file.write_all(secret.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|e| NotKept::Io(format!("cannot write {path}: {e}")))?;
        self.known
            .write()
            .expect("lock")
            .insert(path.to_owned(), Ok(Secret::new(secret)));
        Ok(Kept::Written)
    }
}

#[cfg(unix)]
fn open_new(path: &str) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn open_new(path: &str) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_secret_is_kept_and_another_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("asana.secret");
        let path = path.to_str().unwrap();
        let secrets = CapturedSecrets::default();
        assert!(secrets.get(path).is_none());
        assert_eq!(secrets.keep(path, "abc123"), Ok(Kept::Written));
        assert_eq!(secrets.get(path).unwrap().expose(), b"abc123");
        assert_eq!(secrets.keep(path, "abc123"), Ok(Kept::Same));
        assert!(matches!(
            secrets.keep(path, "other"),
            Err(NotKept::Conflict(reason)) if reason.contains("already holds")
        ));
        assert_eq!(std::fs::read_to_string(path).unwrap(), "abc123");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // After a restart, the file is read.
        assert_eq!(
            CapturedSecrets::default().get(path).unwrap().expose(),
            b"abc123"
        );
        let missing_dir = dir.path().join("no/such/dir/x");
        assert!(matches!(
            secrets.keep(missing_dir.to_str().unwrap(), "s"),
            Err(NotKept::Io(reason)) if reason.contains("cannot create")
        ));
    }
}
