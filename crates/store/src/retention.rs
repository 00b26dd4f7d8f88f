//! Retention: finished events (every delivery delivered or dead, or unrouted) older than a
//! source's retention are deleted, in small batches, with their deliveries and attempts. An
//! event with a pending delivery is never deleted, however old.
//!
//! SQLite keeps the pages it frees and reuses them for new events: the file stops growing
//! once retention runs, but does not shrink (run `VACUUM` offline to shrink it).

/// Which events a pass deletes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PruneRule {
    /// Events of this source; `None`: of every source but those in `except`.
    pub source: Option<String>,
    /// With `source = None`: sources that have rules of their own.
    pub except: Vec<String>,
    /// Events received before this (Unix ms).
    pub older_than_ms: i64,
}

/// Events deleted at most per writer transaction, so pruning holds the writer for a few
/// milliseconds at a time and ingest goes on between batches.
pub const PRUNE_BATCH: u32 = 256;
