//! Replay, in one place for the admin API and `hookgate events replay`: which deliveries to
//! make pending again, and doing it.
//!
//! By default only what did not succeed is sent again: dead and pending deliveries, and
//! destinations the routes now choose that the event never had. A delivery that already
//! succeeded is sent again only with `include_delivered`. Replayed deliveries keep their
//! `webhook-id`, so receivers drop repeats.

use hookgate_store::{DeliveryStatus, EventStatus, ListFilter, ReplayTargets, Store, StoreError};

use crate::delivery::routing::Routes;

/// What to replay.
#[derive(Debug, Clone, Default)]
pub struct ReplayRequest {
    /// Which events (an id, or filters).
    pub filter: ListFilter,
    /// Only to this destination; otherwise to the event's destinations and what the routes
    /// choose now.
    pub destination: Option<String>,
    /// Also send again where the event was already delivered.
    pub include_delivered: bool,
}

impl ReplayRequest {
    /// Whether the request names any event or filter (replaying everything needs an
    /// explicit "all" from the caller).
    pub fn is_filtered(&self) -> bool {
        let f = &self.filter;
        f.event_id.is_some()
            || f.source.is_some()
            || f.topic.is_some()
            || f.tenant.is_some()
            || f.provider_id.is_some()
            || f.since_ms.is_some()
            || f.until_ms.is_some()
            || f.status.is_some()
    }
}

/// The deliveries a replay makes pending.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayPlan {
    /// Events the filter matched.
    pub events: usize,
    /// `(event id, destination)` to make pending, in event order.
    pub targets: ReplayTargets,
    /// Deliveries left alone because they already succeeded (no `include_delivered`).
    pub skipped_delivered: usize,
    /// Matched events with no destination at all (no delivery, no route, none named).
    pub without_destination: usize,
}

/// Works out what `request` replays; writes nothing (a dry run is this alone).
pub async fn plan(
    store: &Store,
    routes: Option<&Routes>,
    request: &ReplayRequest,
) -> Result<ReplayPlan, StoreError> {
    let candidates = store.replay_candidates(request.filter.clone()).await?;
    // A status filter picks deliveries, not only events: `--status dead` replays the dead
    // deliveries of the matched events, not their pending ones.
    let wanted_status = match request.filter.status {
        Some(EventStatus::Pending) => Some(DeliveryStatus::Pending),
        Some(EventStatus::Dead) => Some(DeliveryStatus::Dead),
        Some(EventStatus::Delivered) => Some(DeliveryStatus::Delivered),
        Some(EventStatus::Unrouted) | None => None,
    };
    let mut plan = ReplayPlan {
        events: candidates.len(),
        ..Default::default()
    };
    for (event, existing) in &candidates {
        let mut destinations: Vec<String> = match &request.destination {
            Some(one) => vec![one.clone()],
            None => existing.iter().map(|(d, _)| d.clone()).collect(),
        };
        if request.destination.is_none() && wanted_status.is_none() {
            if let Some(routes) = routes {
                for d in routes.destinations(
                    &event.summary.source,
                    event.summary.topic.as_deref(),
                    &event.body,
                ) {
                    if !destinations.contains(&d) {
                        destinations.push(d);
                    }
                }
            }
        }
        if destinations.is_empty() {
            plan.without_destination += 1;
        }
        for destination in destinations {
            let state = existing
                .iter()
                .find(|(d, _)| *d == destination)
                .map(|(_, s)| *s);
            if wanted_status.is_some() && state != wanted_status {
                continue;
            }
            if state == Some(DeliveryStatus::Delivered) && !request.include_delivered {
                plan.skipped_delivered += 1;
                continue;
            }
            plan.targets.push((event.summary.id.clone(), destination));
        }
    }
    Ok(plan)
}

/// Makes `plan`'s deliveries pending, in chunks (one commit each), telling `progress` how
/// many are done after each. Returns how many.
pub async fn apply(
    store: &Store,
    plan: &ReplayPlan,
    mut progress: impl FnMut(usize),
) -> Result<usize, StoreError> {
    let mut done = 0;
    for chunk in plan.targets.chunks(500) {
        done += store.replay(chunk.to_vec()).await?;
        progress(done);
    }
    Ok(done)
}
