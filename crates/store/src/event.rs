//! Events as the store sees them.

use serde::{Deserialize, Serialize};

/// hookgate's own event id: a UUIDv7, so ids sort by arrival time. The one type for it
/// everywhere (stored events, summaries, claims); it reads as a `&str` where one is asked.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventId(pub String);

impl std::ops::Deref for EventId {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for EventId {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for EventId {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl PartialEq<String> for EventId {
    fn eq(&self, other: &String) -> bool {
        &self.0 == other
    }
}

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

impl EventId {
    /// The arrival time (Unix ms) a UUIDv7 id carries in its first 48 bits; `None` for an
    /// id that is not one.
    pub fn millis_of(id: &str) -> Option<i64> {
        let hex: String = id.chars().filter(|c| *c != '-').take(12).collect();
        if hex.len() != 12 {
            return None;
        }
        i64::from_str_radix(&hex, 16).ok()
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
                id: self.id.clone(),
                source: self.source.clone(),
                dedupe_key: self.dedupe_key.clone(),
                topic: self.topic.clone(),
                tenant: self.tenant.clone(),
                received_at_ms: self.received_at_ms,
                size: self.body.len() as i64,
                status: if self.destinations.is_empty() {
                    EventStatus::Unrouted
                } else {
                    EventStatus::Pending
                },
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

/// Who holds a delivery, and for how long from the commit, by the store's clock (a
/// database shared by several nodes keeps the one clock they agree on). A lease that
/// expires unfinished puts the delivery back in the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The dispatcher's owner id.
    pub owner: std::sync::Arc<str>,
    /// How long it holds, in ms.
    pub for_ms: i64,
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
    pub id: EventId,
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
    /// Where its deliveries stand, summed up.
    pub status: EventStatus,
}

/// An event's deliveries summed up: the worst state of any of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventStatus {
    /// No route chose a destination for it.
    Unrouted,
    /// A delivery is waiting for (another) attempt.
    Pending,
    /// A delivery is dead (and none is pending).
    Dead,
    /// Every delivery succeeded.
    Delivered,
}

impl EventStatus {
    /// The stable spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            EventStatus::Unrouted => "unrouted",
            EventStatus::Pending => "pending",
            EventStatus::Dead => "dead",
            EventStatus::Delivered => "delivered",
        }
    }

    /// Parses the stable spelling.
    pub fn parse(text: &str) -> Option<EventStatus> {
        Some(match text {
            "unrouted" => EventStatus::Unrouted,
            "pending" => EventStatus::Pending,
            "dead" => EventStatus::Dead,
            "delivered" => EventStatus::Delivered,
            _ => return None,
        })
    }
}

impl std::fmt::Display for EventStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
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

/// Which events to list or replay. Every field narrows the selection.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    /// One event, by hookgate's id.
    pub event_id: Option<EventId>,
    /// Only this source.
    pub source: Option<String>,
    /// Only topics matching this glob: `*` any run, `?` one character; everything else,
    /// `%` and `_` included, is literal.
    pub topic: Option<String>,
    /// Only this tenant.
    pub tenant: Option<String>,
    /// Only this provider event id (the dedupe key).
    pub provider_id: Option<String>,
    /// Received at or after (Unix ms).
    pub since_ms: Option<i64>,
    /// Received before (Unix ms).
    pub until_ms: Option<i64>,
    /// Only events with a delivery in this state (`pending`, `delivered`, `dead`), or
    /// `unrouted` events.
    pub status: Option<EventStatus>,
    /// Cursor: only events older than this id (the last id of the previous page). Ids grow
    /// with arrival, so pages stay stable while new events arrive.
    pub before: Option<EventId>,
    /// At most this many (listing: default 100; replay: all).
    pub limit: Option<u32>,
}
