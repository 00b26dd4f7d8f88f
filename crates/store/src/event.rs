//! Events as the store sees them.

use serde::{Deserialize, Serialize};

/// hookgate's own event id: a UUIDv7, so ids sort by arrival time.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct EventId(pub String);

impl EventId {
    /// A new time-ordered id.
    pub fn new() -> Self {
        EventId(uuid::Uuid::now_v7().to_string())
    }
}

impl EventId {
    /// The smallest id of millisecond `ms`: ids sort by time, so time ranges are id ranges
    /// (UUIDv7: the first 48 bits are the Unix milliseconds, the text sorts like them).
    pub fn lowest_at(ms: i64) -> String {
        let ms = ms.clamp(0, (1 << 48) - 1) as u128;
        uuid::Uuid::from_u128(ms << 80).hyphenated().to_string()
    }
}

impl Default for EventId {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Display for EventId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// An event to store.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// hookgate's id.
    pub id: EventId,
    /// The source name.
    pub source: String,
    /// The provider's event id; `None` means the event is never deduplicated.
    pub dedupe_key: Option<String>,
    /// Topic.
    pub topic: Option<String>,
    /// Tenant.
    pub tenant: Option<String>,
    /// The provider's timestamp as sent.
    pub provider_timestamp: Option<String>,
    /// Arrival time, Unix milliseconds.
    pub received_at_ms: i64,
    /// Request method.
    pub method: String,
    /// Request path and query.
    pub path: String,
    /// Headers with credential headers already redacted.
    pub headers: Vec<(String, String)>,
    /// The raw body.
    pub body: bytes::Bytes,
    /// What verification established (scheme, key id, issuer, subject) as JSON.
    pub verification: serde_json::Value,
    /// The destinations its routes chose; a delivery row each, in the same transaction.
    /// Empty: the event is stored as unrouted.
    pub destinations: Vec<NewDelivery>,
}

impl NewEvent {
    /// The event as [`crate::Store::get`] will read it back once stored.
    pub fn to_record(&self) -> EventRecord {
        EventRecord {
            summary: EventSummary {
                id: self.id.0.clone(),
                source: self.source.clone(),
                dedupe_key: self.dedupe_key.clone(),
                topic: self.topic.clone(),
                tenant: self.tenant.clone(),
                received_at_ms: self.received_at_ms,
                size: self.body.len() as i64,
            },
            provider_timestamp: self.provider_timestamp.clone(),
            method: self.method.clone(),
            path: self.path.clone(),
            headers: self.headers.clone(),
            body: self.body.clone(),
            verification: self.verification.clone(),
            routed: !self.destinations.is_empty(),
        }
    }
}

/// A delivery created with its event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    /// The destination's name.
    pub destination: String,
    /// Created already leased to a running dispatcher, which gets the event in memory and
    /// needs no claim; without a lease it waits in the queue to be claimed.
    pub lease: Option<Lease>,
}

impl NewDelivery {
    /// A delivery that waits in the queue to be claimed.
    pub fn queued(destination: impl Into<String>) -> NewDelivery {
        NewDelivery {
            destination: destination.into(),
            lease: None,
        }
    }
}

/// Who holds a delivery, and until when (Unix ms). A lease that expires unfinished puts
/// the delivery back in the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The dispatcher's owner id.
    pub owner: std::sync::Arc<str>,
    /// Expiry, Unix ms.
    pub until_ms: i64,
}

/// What an insert found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stored {
    /// Newly stored under this id, with its delivery rows (in `destinations` order).
    New {
        /// hookgate's id.
        id: EventId,
        /// The delivery rows' ids.
        deliveries: Vec<i64>,
    },
    /// Already stored (same source and dedupe key) under this id; nothing was written.
    Duplicate(EventId),
}

/// A stored event without headers and body, for listings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventSummary {
    /// hookgate's id.
    pub id: String,
    /// Source name.
    pub source: String,
    /// The provider's event id.
    pub dedupe_key: Option<String>,
    /// Topic.
    pub topic: Option<String>,
    /// Tenant.
    pub tenant: Option<String>,
    /// Arrival time, Unix milliseconds.
    pub received_at_ms: i64,
    /// Body size in bytes.
    pub size: i64,
}

/// A stored event in full.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventRecord {
    /// The listing fields.
    #[serde(flatten)]
    pub summary: EventSummary,
    /// The provider's timestamp as sent.
    pub provider_timestamp: Option<String>,
    /// Request method.
    pub method: String,
    /// Request path and query.
    pub path: String,
    /// Headers (credentials redacted).
    pub headers: Vec<(String, String)>,
    /// The raw body.
    #[serde(skip)]
    pub body: bytes::Bytes,
    /// The verification summary.
    pub verification: serde_json::Value,
    /// Whether any route chose a destination for it.
    pub routed: bool,
}

/// Which events to list.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    /// Only this source.
    pub source: Option<String>,
    /// Only topics matching this SQL LIKE pattern (`*` is read as `%`).
    pub topic: Option<String>,
    /// Received at or after (Unix ms).
    pub since_ms: Option<i64>,
    /// Received before (Unix ms).
    pub until_ms: Option<i64>,
    /// Only events with a delivery in this state (`pending`, `delivered`, `dead`), or
    /// `unrouted` events.
    pub status: Option<String>,
    /// At most this many; default 100.
    pub limit: Option<u32>,
}
