//! The store contract: what every backend provides. A backend is one module implementing
//! [`Backend`]; [`crate::Store`] wraps whichever the URL names. Every backend passes the
//! same conformance suite (`tests/it`), run unchanged against each.

use crate::delivery::{
    Attempt, Claimed, DeliveryCounts, DeliveryRecord, DeliveryStatus, DestinationStats,
    ReplayTargets,
};
use crate::event::{EventRecord, EventSummary, ListFilter, NewEvent, Stored};
use crate::refusal::{Refusal, RefusalFilter, RefusalRecord};
use crate::retention::PruneRule;
use crate::{EventId, StoreError};

/// One storage backend. The guarantees each method must keep are on [`crate::Store`]'s
/// method of the same name. Leases, retries and pauses are timed by the backend's own
/// clock (never a caller's): several nodes sharing a database must agree on when a lease
/// ends.
#[async_trait::async_trait]
pub(crate) trait Backend: Send + Sync + 'static {
    /// What it is, for `Debug` and logs (never a password).
    fn describe(&self) -> String;

    /// Whether it keeps nothing (the benchmark baseline).
    fn is_discard(&self) -> bool {
        false
    }

    async fn insert(&self, event: NewEvent) -> Result<Stored, StoreError>;

    async fn ready(&self) -> Result<(), StoreError>;

    async fn list(&self, filter: ListFilter) -> Result<Vec<EventSummary>, StoreError>;

    async fn get(&self, id: String) -> Result<Option<EventRecord>, StoreError>;

    async fn get_many(&self, ids: Vec<EventId>) -> Result<Vec<EventRecord>, StoreError>;

    async fn claim(
        &self,
        destination: &str,
        limit: u32,
        lease_ms: i64,
        owner: &str,
    ) -> Result<Vec<Claimed>, StoreError>;

    async fn complete(&self, attempt: Attempt) -> Result<(), StoreError>;

    async fn replay(&self, targets: ReplayTargets) -> Result<usize, StoreError>;

    async fn release(&self, destination: &str, owner: &str) -> Result<usize, StoreError>;

    async fn deliveries(&self, event_id: String) -> Result<Vec<DeliveryRecord>, StoreError>;

    async fn delivery_counts(&self) -> Result<DeliveryCounts, StoreError>;

    async fn replay_candidates(
        &self,
        filter: ListFilter,
    ) -> Result<Vec<(EventRecord, Vec<(String, DeliveryStatus)>)>, StoreError>;

    async fn destination_stats(&self) -> Result<Vec<DestinationStats>, StoreError>;

    async fn prune(
        &self,
        rules: Vec<PruneRule>,
        limit: u32,
    ) -> Result<Vec<(String, u64)>, StoreError>;

    async fn prunable(&self, rules: Vec<PruneRule>) -> Result<Vec<(String, u64)>, StoreError>;

    async fn paused(&self) -> Result<Vec<String>, StoreError>;

    async fn set_paused(&self, destination: &str, paused: bool) -> Result<bool, StoreError>;

    fn record_refusal(&self, refusal: Refusal) -> bool;

    async fn refusals(&self, filter: RefusalFilter) -> Result<Vec<RefusalRecord>, StoreError>;

    async fn size_bytes(&self) -> Result<Option<u64>, StoreError>;

    async fn close(&self);
}
