//! Refused requests: why a provider's calls fail. A bounded ring, not an archive: the
//! store keeps the newest [`REFUSALS_KEPT`] (each at most [`REFUSAL_MAX_BYTES`]), so a
//! flood of forged requests can never fill the disk. The caller samples under a flood.

use serde::{Deserialize, Serialize};

/// Most refused requests kept; older ones are deleted as new ones arrive.
pub const REFUSALS_KEPT: i64 = 5_000;
/// Bytes of the body kept with a refusal.
pub const REFUSAL_BODY_BYTES: usize = 4096;
/// Bytes of headers (names and values) kept with a refusal.
pub const REFUSAL_HEADER_BYTES: usize = 4096;
/// Characters of the reason's detail kept with a refusal.
pub const REFUSAL_DETAIL_CHARS: usize = 512;
/// Upper bound of one stored refusal, so the whole ring stays under
/// `REFUSALS_KEPT × REFUSAL_MAX_BYTES` (about 45 MiB).
pub const REFUSAL_MAX_BYTES: usize =
    REFUSAL_BODY_BYTES + REFUSAL_HEADER_BYTES + REFUSAL_DETAIL_CHARS * 4 + 1024;

impl Refusal {
    /// Cuts every part to its bound (detail, headers, body), so a stored refusal never
    /// exceeds [`REFUSAL_MAX_BYTES`].
    pub fn bounded(mut self) -> Refusal {
        self.detail = cut_chars(&self.detail, REFUSAL_DETAIL_CHARS);
        self.path = cut_chars(&self.path, 512);
        self.kind = cut_chars(&self.kind, 64);
        self.source = cut_chars(&self.source, 128);
        let mut budget = REFUSAL_HEADER_BYTES;
        let mut kept = Vec::with_capacity(self.headers.len());
        for (name, value) in self.headers {
            let cost = name.len() + value.len();
            if cost > budget {
                kept.push(("hookgate-truncated".to_owned(), "true".to_owned()));
                break;
            }
            budget -= cost;
            kept.push((name, value));
        }
        self.headers = kept;
        if self.body_head.len() > REFUSAL_BODY_BYTES {
            self.body_head = self.body_head.slice(..REFUSAL_BODY_BYTES);
        }
        self
    }
}

fn cut_chars(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

/// A stored refused request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefusalRecord {
    /// Its id (grows with arrival; the cursor of listings).
    pub id: i64,
    /// The request as recorded.
    #[serde(flatten)]
    pub request: Refusal,
}

/// A refused request, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    /// The source whose path it reached.
    pub source: String,
    /// When (Unix ms).
    pub received_at_ms: i64,
    /// The TCP peer's address.
    pub peer: Option<String>,
    /// Why, as a stable snake_case kind (`bad_signature`, `too_large`, …).
    pub kind: String,
    /// What exactly, for operators (cut to [`REFUSAL_DETAIL_CHARS`]).
    pub detail: String,
    /// Request method.
    pub method: String,
    /// Request path and query (credential query parameters redacted).
    pub path: String,
    /// The HTTP status answered.
    pub status: u16,
    /// Headers, credentials redacted (cut to [`REFUSAL_HEADER_BYTES`] in all).
    pub headers: Vec<(String, String)>,
    /// The start of the body (cut to [`REFUSAL_BODY_BYTES`]).
    #[serde(skip)]
    pub body_head: bytes::Bytes,
    /// The whole body's size, as far as it was read.
    pub body_size: i64,
}

/// Which refusals to list, newest first.
#[derive(Debug, Clone, Default)]
pub struct RefusalFilter {
    /// Only this source.
    pub source: Option<String>,
    /// Only this kind.
    pub kind: Option<String>,
    /// At or after (Unix ms).
    pub since_ms: Option<i64>,
    /// Before (Unix ms).
    pub until_ms: Option<i64>,
    /// Only ids below this (the last id of the previous page).
    pub before: Option<i64>,
    /// At most this many; default 100.
    pub limit: Option<u32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_cuts_every_part() {
        let refusal = Refusal {
            source: "s".into(),
            received_at_ms: 1,
            peer: None,
            kind: "bad_signature".into(),
            detail: "é".repeat(12_000),
            method: "POST".into(),
            path: "/h".into(),
            status: 401,
            headers: (0..100)
                .map(|i| (format!("x-h{i}"), "v".repeat(100)))
                .collect(),
            body_head: bytes::Bytes::from(vec![b'x'; 1 << 20]),
            body_size: 1 << 20,
        }
        .bounded();
        assert_eq!(refusal.detail.chars().count(), REFUSAL_DETAIL_CHARS + 1);
        assert_eq!(refusal.body_head.len(), REFUSAL_BODY_BYTES);
        let header_bytes: usize = refusal.headers.iter().map(|(n, v)| n.len() + v.len()).sum();
        assert!(header_bytes <= REFUSAL_HEADER_BYTES + 32, "{header_bytes}");
        assert_eq!(refusal.headers.last().unwrap().0, "hookgate-truncated");
        assert_eq!(refusal.body_size, 1 << 20);
    }
}
