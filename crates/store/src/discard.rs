//! `discard://`: acknowledges without storing. The load benchmark's baseline only; the
//! gateway announces it with a warning.

use crate::backend::Backend;
use crate::delivery::{
    Attempt, Claimed, DeliveryCounts, DeliveryRecord, DeliveryStatus, DestinationStats,
    ReplayTargets,
};
use crate::event::{EventRecord, EventSummary, ListFilter, NewEvent, Stored};
use crate::refusal::{Refusal, RefusalFilter, RefusalRecord};
use crate::retention::PruneRule;
use crate::{EventId, StoreError};

pub(crate) struct Discard;

#[async_trait::async_trait]
impl Backend for Discard {
    fn describe(&self) -> String {
        "discard".into()
    }

    fn is_discard(&self) -> bool {
        true
    }

    async fn insert(&self, event: NewEvent) -> Result<Stored, StoreError> {
        Ok(Stored::New {
            id: event.id,
            deliveries: Vec::new(),
        })
    }

    async fn ready(&self) -> Result<(), StoreError> {
        Ok(())
    }

    async fn list(&self, _: ListFilter) -> Result<Vec<EventSummary>, StoreError> {
        Ok(Vec::new())
    }

    async fn get(&self, _: String) -> Result<Option<EventRecord>, StoreError> {
        Ok(None)
    }

    async fn get_many(&self, _: Vec<EventId>) -> Result<Vec<EventRecord>, StoreError> {
        Ok(Vec::new())
    }

    async fn claim(&self, _: &str, _: u32, _: i64, _: &str) -> Result<Vec<Claimed>, StoreError> {
        Ok(Vec::new())
    }

    async fn complete(&self, _: Attempt) -> Result<(), StoreError> {
        Ok(())
    }

    async fn replay(&self, _: ReplayTargets) -> Result<usize, StoreError> {
        Ok(0)
    }

    async fn release(&self, _: &str, _: &str) -> Result<usize, StoreError> {
        Ok(0)
    }

    async fn deliveries(&self, _: String) -> Result<Vec<DeliveryRecord>, StoreError> {
        Ok(Vec::new())
    }

    async fn delivery_counts(&self) -> Result<DeliveryCounts, StoreError> {
        Ok(DeliveryCounts::default())
    }

    async fn replay_candidates(
        &self,
        _: ListFilter,
    ) -> Result<Vec<(EventRecord, Vec<(String, DeliveryStatus)>)>, StoreError> {
        Ok(Vec::new())
    }

    async fn destination_stats(&self) -> Result<Vec<DestinationStats>, StoreError> {
        Ok(Vec::new())
    }

    async fn prune(&self, _: Vec<PruneRule>, _: u32) -> Result<Vec<(String, u64)>, StoreError> {
        Ok(Vec::new())
    }

    async fn prunable(&self, _: Vec<PruneRule>) -> Result<Vec<(String, u64)>, StoreError> {
        Ok(Vec::new())
    }

    async fn paused(&self) -> Result<Vec<String>, StoreError> {
        Ok(Vec::new())
    }

    async fn set_paused(&self, _: &str, _: bool) -> Result<bool, StoreError> {
        Ok(false)
    }

    fn record_refusal(&self, _: Refusal) -> bool {
        false
    }

    async fn refusals(&self, _: RefusalFilter) -> Result<Vec<RefusalRecord>, StoreError> {
        Ok(Vec::new())
    }

    async fn size_bytes(&self) -> Result<Option<u64>, StoreError> {
        Ok(None)
    }

    async fn close(&self) {}
}
