//! `file`: append one fsynced JSON line per event.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use hookgate_verify::Encoding;
use serde::Deserialize;

use super::{AttemptReport, Message, Sink};
use crate::delivery::policy::Verdict;

/// `[[destination]] kind = "file"`: its own keys. One writer at a time, so no
/// `concurrency`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileConfig {
    /// Where to append, relative to the configuration file.
    path: Option<String>,
}

/// The keys of `kind = "file"` (besides the common ones).
pub(super) const KEYS: &[&str] = &["path"];

/// Validates the keys.
pub(super) fn build(config: FileConfig, base: &Path) -> Result<(Sink, usize), (String, String)> {
    let path = config.path.ok_or_else(|| {
        (
            "path".to_owned(),
            "a file destination needs `path`".to_owned(),
        )
    })?;
    let path = if Path::new(&path).is_absolute() {
        PathBuf::from(path)
    } else {
        base.join(path)
    };
    Ok((
        Sink::File(FileSink {
            path,
            file: Default::default(),
        }),
        1,
    ))
}

/// `file`: one JSON line per event (metadata and body), fsynced before success.
#[derive(Debug)]
pub struct FileSink {
    pub(crate) path: PathBuf,
    pub(crate) file: Arc<std::sync::Mutex<Option<std::fs::File>>>,
}

impl FileSink {
    pub(super) async fn deliver(&self, message: &Message<'_>) -> AttemptReport {
        let (event, webhook_id) = (message.event, message.key);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_path_is_required_and_relative_to_the_configuration() {
        let base = Path::new("/etc/hookgate");
        assert_eq!(
            build(FileConfig { path: None }, base).err().map(|e| e.0),
            Some("path".into())
        );
        let (sink, concurrency) = build(
            FileConfig {
                path: Some("out/events.jsonl".into()),
            },
            base,
        )
        .unwrap();
        let Sink::File(file) = sink else { panic!() };
        assert_eq!(
            (file.path.as_path(), concurrency),
            (Path::new("/etc/hookgate/out/events.jsonl"), 1)
        );
    }
}
