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

    /// Parses the stored spelling; anything else is `None` (a corrupt row is an error,
    /// never taken for `pending`).
    pub fn parse(text: &str) -> Option<DeliveryStatus> {
        Some(match text {
            "pending" => DeliveryStatus::Pending,
            "delivered" => DeliveryStatus::Delivered,
            "dead" => DeliveryStatus::Dead,
            _ => return None,
        })
    }
}

impl std::fmt::Display for DeliveryStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What one attempt came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AttemptOutcome {
    /// The destination accepted it.
    Delivered,
    /// It failed and will be tried again.
    Failed,
    /// It failed for good (attempts exhausted or a permanent refusal).
    Dead,
}

impl AttemptOutcome {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptOutcome::Delivered => "delivered",
            AttemptOutcome::Failed => "failed",
            AttemptOutcome::Dead => "dead",
        }
    }

    /// The outcome of an attempt after which its delivery is in `next`.
    pub fn of(next: DeliveryStatus) -> AttemptOutcome {
        match next {
            DeliveryStatus::Delivered => AttemptOutcome::Delivered,
            DeliveryStatus::Pending => AttemptOutcome::Failed,
            DeliveryStatus::Dead => AttemptOutcome::Dead,
        }
    }

    /// Parses the stored spelling. Stores written before `failed` existed recorded a
    /// failed attempt as `pending` (the delivery's state after it).
    pub fn parse(text: &str) -> Option<AttemptOutcome> {
        Some(match text {
            "delivered" => AttemptOutcome::Delivered,
            "failed" | "pending" => AttemptOutcome::Failed,
            "dead" => AttemptOutcome::Dead,
            _ => return None,
        })
    }
}

impl std::fmt::Display for AttemptOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
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
    pub event_id: crate::EventId,
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
    /// How long after it is recorded to try again (pending only), in ms: counted on the
    /// store's clock.
    pub retry_in_ms: i64,
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
    /// What it came to.
    pub outcome: AttemptOutcome,
    /// Up to 1 KiB of the answer.
    pub response: Option<String>,
    /// What went wrong.
    pub error: Option<String>,
}

/// Deliveries to (re)create as pending: `(event id, destination)`.
pub type ReplayTargets = Vec<(crate::EventId, String)>;

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

impl DeliveryCounts {
    /// Adds `n` deliveries in `status`.
    pub fn add(&mut self, status: DeliveryStatus, n: i64) {
        match status {
            DeliveryStatus::Pending => self.pending += n,
            DeliveryStatus::Delivered => self.delivered += n,
            DeliveryStatus::Dead => self.dead += n,
        }
    }
}

/// One destination's deliveries as the store sees them.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DestinationStats {
    /// The destination's name.
    pub destination: String,
    /// Deliveries by state.
    pub counts: DeliveryCounts,
    /// Pending deliveries currently leased (being attempted, or handed to a dispatcher).
    pub leased: i64,
    /// Arrival time (Unix ms) of the oldest event with a pending delivery here.
    pub oldest_pending_ms: Option<i64>,
    /// Whether an operator paused it.
    pub paused: bool,
}
