//! The durable delivery queue: one row per event × destination, created in the event's own
//! transaction; claimed with a lease (no transaction is held while delivering); every
//! attempt recorded.

use serde::{Deserialize, Serialize};

/// A delivery's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    /// Waiting for (another) attempt.
    Pending,
    /// A destination accepted it.
    Delivered,
    /// Attempts exhausted or a permanent refusal: kept for replay.
    Dead,
}

impl DeliveryStatus {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Dead => "dead",
        }
    }

    pub(crate) fn parse(text: &str) -> DeliveryStatus {
        match text {
            "delivered" => DeliveryStatus::Delivered,
            "dead" => DeliveryStatus::Dead,
            _ => DeliveryStatus::Pending,
        }
    }
}

/// The stable Standard Webhooks `webhook-id` of an event at a destination: a retry or a
/// replay carries the same one, so receivers can drop repeats.
pub fn webhook_id(event_id: &str, destination: &str) -> String {
    format!("msg_{}_{destination}", event_id.replace('-', ""))
}

/// A delivery a worker has leased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    /// The delivery row.
    pub delivery_id: i64,
    /// The event to deliver.
    pub event_id: String,
    /// Its stable `webhook-id`.
    pub webhook_id: String,
    /// Attempts made so far.
    pub attempts: i64,
}

/// What one attempt achieved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// The delivery row.
    pub delivery_id: i64,
    /// The lease owner that made the attempt.
    pub owner: String,
    /// When it started (Unix ms).
    pub started_at_ms: i64,
    /// How long it took.
    pub duration_ms: i64,
    /// HTTP status or exit code, when there was one.
    pub status_code: Option<i64>,
    /// The delivery's state after this attempt.
    pub next_status: DeliveryStatus,
    /// When to try again (pending only), Unix ms.
    pub next_at_ms: i64,
    /// Up to 1 KiB of the answer.
    pub response: Option<String>,
    /// What went wrong, if anything.
    pub error: Option<String>,
}

/// A delivery as listed for an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryRecord {
    /// Destination name.
    pub destination: String,
    /// Stable `webhook-id`.
    pub webhook_id: String,
    /// State.
    pub status: DeliveryStatus,
    /// Attempts made (since the last replay).
    pub attempts: i64,
    /// Next attempt (pending), Unix ms.
    pub next_at_ms: i64,
    /// The last error.
    pub last_error: Option<String>,
    /// Every attempt, oldest first.
    pub history: Vec<AttemptRecord>,
}

/// One recorded attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptRecord {
    /// Start, Unix ms.
    pub started_at_ms: i64,
    /// Duration.
    pub duration_ms: i64,
    /// HTTP status or exit code.
    pub status_code: Option<i64>,
    /// `delivered`, `pending` (will retry) or `dead`.
    pub outcome: String,
    /// Up to 1 KiB of the answer.
    pub response: Option<String>,
    /// What went wrong.
    pub error: Option<String>,
}

/// Which deliveries to replay.
#[derive(Debug, Clone, Default)]
pub struct ReplayFilter {
    /// One event.
    pub event_id: Option<String>,
    /// Events of this source.
    pub source: Option<String>,
    /// Topic pattern (`*` wildcard).
    pub topic: Option<String>,
    /// Only deliveries in this state (`pending`, `delivered`, `dead`), or `unrouted` events.
    pub status: Option<String>,
    /// Received at or after (Unix ms).
    pub since_ms: Option<i64>,
    /// Received before (Unix ms).
    pub until_ms: Option<i64>,
}

/// Deliveries to (re)create as pending: `(event id, destination)`.
pub type ReplayTargets = Vec<(String, String)>;

/// Counts of deliveries by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryCounts {
    /// Pending.
    pub pending: i64,
    /// Delivered.
    pub delivered: i64,
    /// Dead.
    pub dead: i64,
}
