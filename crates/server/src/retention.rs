//! Retention while serving: every so often, finished events older than their source's
//! retention are deleted in batches of [`PRUNE_BATCH`] (one short writer transaction each,
//! ingest going on between them). An event with a pending delivery is never deleted.

use std::sync::Arc;
use std::time::Duration;

use hookgate_store::{PruneRule, Store, StoreError, PRUNE_BATCH};

use crate::Gateway;

/// The rules for `now_ms`: a rule per source with a retention of its own, and one for every
/// other source (removed ones included) when `[store] retention` is set.
pub fn rules(
    default: Option<Duration>,
    sources: &[(String, Duration)],
    now_ms: i64,
) -> Vec<PruneRule> {
    let before = |keep: Duration| now_ms - keep.as_millis() as i64;
    let mut rules: Vec<PruneRule> = sources
        .iter()
        .map(|(source, keep)| PruneRule {
            source: Some(source.clone()),
            except: Vec::new(),
            older_than_ms: before(*keep),
        })
        .collect();
    if let Some(keep) = default {
        rules.push(PruneRule {
            source: None,
            except: sources.iter().map(|(s, _)| s.clone()).collect(),
            older_than_ms: before(keep),
        });
    }
    rules
}

/// How often retention looks for events to delete: a tenth of the shortest retention,
/// between 100 ms and a minute.
pub fn interval(default: Option<Duration>, sources: &[(String, Duration)]) -> Option<Duration> {
    let shortest = sources.iter().map(|(_, d)| *d).chain(default).min()?;
    Some((shortest / 10).clamp(Duration::from_millis(100), Duration::from_secs(60)))
}

/// Deletes everything `rules` select now, batch after batch; returns how many per source.
/// `each` is told of every batch.
pub async fn prune_all(
    store: &Store,
    rules: &[PruneRule],
    mut each: impl FnMut(&[(String, u64)]),
) -> Result<Vec<(String, u64)>, StoreError> {
    let mut total: Vec<(String, u64)> = Vec::new();
    loop {
        let pruned = store.prune(rules.to_vec(), PRUNE_BATCH).await?;
        each(&pruned);
        let n: u64 = pruned.iter().map(|(_, n)| n).sum();
        for (source, count) in pruned {
            match total.iter_mut().find(|(s, _)| *s == source) {
                Some((_, t)) => *t += count,
                None => total.push((source, count)),
            }
        }
        if n < u64::from(PRUNE_BATCH) {
            return Ok(total);
        }
        // Let the requests that queued behind this batch commit before the next one.
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// How often the retention task looks again at a configuration without retention (a
/// reload may add one).
const IDLE_CHECK: Duration = Duration::from_secs(60);

/// The gateway's retention task, until `stopped`. It reads the configuration in force at
/// each round, so a reload changes the rules.
pub(crate) async fn run(gateway: Arc<Gateway>, mut stopped: tokio::sync::watch::Receiver<bool>) {
    let mut first = true;
    loop {
        let config = gateway.config();
        let sources: Vec<(String, Duration)> = config
            .sources
            .iter()
            .filter_map(|s| s.retention.map(|r| (s.name.clone(), r)))
            .collect();
        let every = interval(config.retention, &sources);
        // The first round prunes at once, as a restart may find much to delete.
        let wait = match (every, first) {
            (Some(_), true) => Duration::ZERO,
            (Some(every), false) => every,
            (None, _) => IDLE_CHECK,
        };
        first = false;
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = crate::became(&mut stopped, true) => return,
        }
        if every.is_none() {
            continue;
        }
        let rules = rules(config.retention, &sources, crate::now_ms());
        match prune_all(&gateway.store, &rules, |batch| {
            gateway.metrics.pruned(batch)
        })
        .await
        {
            Ok(pruned) if !pruned.is_empty() => {
                for (source, events) in pruned {
                    tracing::info!(source = %source, events, "pruned finished events past retention");
                }
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "retention: cannot prune; will try again"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_and_interval_follow_the_configuration() {
        let day = Duration::from_secs(86_400);
        let sources = vec![("short".to_owned(), Duration::from_secs(10))];
        let rules = rules(Some(30 * day), &sources, 100_000_000_000);
        assert_eq!(
            rules,
            [
                PruneRule {
                    source: Some("short".into()),
                    except: vec![],
                    older_than_ms: 100_000_000_000 - 10_000
                },
                PruneRule {
                    source: None,
                    except: vec!["short".into()],
                    older_than_ms: 100_000_000_000 - 30 * 86_400_000
                },
            ]
        );
        assert_eq!(
            interval(Some(30 * day), &sources),
            Some(Duration::from_secs(1))
        );
        assert_eq!(interval(Some(30 * day), &[]), Some(Duration::from_secs(60)));
        assert_eq!(
            interval(Some(Duration::from_secs(1)), &[]),
            Some(Duration::from_millis(100))
        );
        assert_eq!(interval(None, &[]), None);
    }
}
