//! What the SQL backends say alike: a [`ListFilter`] as a `WHERE` clause, and an event's
//! summed-up status. Each backend gives only what its SQL writes differently.

use crate::event::{EventId, EventStatus, ListFilter};

/// How a backend's SQL differs where a filter is concerned.
pub(crate) struct Dialect {
    /// The `n`-th parameter (from 1): `?1`, `$1`.
    pub placeholder: fn(usize) -> String,
    /// A topic glob (the routes' meaning: `*`, `?`, everything else literal) as an SQL
    /// operator and its pattern.
    pub topic: fn(&str) -> (&'static str, String),
    /// A clause that always holds, for a filter without terms.
    pub always: &'static str,
}

/// The `WHERE` clause of `filter` and its parameters, all text, numbered from 1.
pub(crate) fn where_clause(filter: &ListFilter, dialect: &Dialect) -> (String, Vec<String>) {
    let mut terms: Vec<String> = Vec::new();
    let mut values: Vec<String> = Vec::new();
    let mut term = |sql: &str, value: String| {
        values.push(value);
        terms.push(sql.replace('?', &(dialect.placeholder)(values.len())));
    };
    if let Some(id) = &filter.event_id {
        term("id = ?", id.0.clone());
    }
    if let Some(source) = &filter.source {
        term("source = ?", source.clone());
    }
    if let Some(topic) = &filter.topic {
        let (operator, pattern) = (dialect.topic)(topic);
        term(&format!("topic {operator} ?"), pattern);
    }
    if let Some(tenant) = &filter.tenant {
        term("tenant = ?", tenant.clone());
    }
    if let Some(provider_id) = &filter.provider_id {
        term("dedupe_key = ?", provider_id.clone());
    }
    if let Some(ms) = filter.since_ms {
        term("id >= ?", EventId::lowest_at(ms));
    }
    if let Some(ms) = filter.until_ms {
        term("id < ?", EventId::lowest_at(ms));
    }
    if let Some(before) = &filter.before {
        term("id < ?", before.0.clone());
    }
    match filter.status {
        Some(EventStatus::Unrouted) => terms.push("routing = 'unrouted'".into()),
        Some(status) => term(
            "EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = events.id AND d.status = ?)",
            status.as_str().to_owned(),
        ),
        None => {}
    }
    if terms.is_empty() {
        terms.push(dialect.always.into());
    }
    (terms.join(" AND "), values)
}

/// The summed-up state ([`EventStatus`]) as an SQL expression: pending while any delivery
/// still is, else dead if any died, else delivered.
macro_rules! event_status {
    () => {
        "CASE WHEN routing = 'unrouted' THEN 'unrouted' \
         WHEN EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = events.id AND d.status = 'pending') THEN 'pending' \
         WHEN EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = events.id AND d.status = 'dead') THEN 'dead' \
         ELSE 'delivered' END"
    };
}
pub(crate) use event_status;
