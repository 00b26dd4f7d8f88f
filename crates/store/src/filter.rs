//! What the SQL backends say alike: a [`ListFilter`] as a `WHERE` clause, and an event's
//! summed-up status. Each backend gives only what its SQL writes differently.

use crate::event::{EventId, EventStatus, ListFilter};

/// The indexes the listings need, the same SQL on both backends (one migration each): by
/// provider id, by delivery status (walked newest first, see [`where_clause`]), and
/// unrouted events.
pub(crate) const LISTING_INDEXES: &str = "
CREATE INDEX events_provider_id ON events(dedupe_key) WHERE dedupe_key IS NOT NULL;
CREATE INDEX deliveries_status ON deliveries(status, event_id);
CREATE INDEX events_unrouted ON events(id) WHERE routing = 'unrouted';
";

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

/// Terms joined by `AND`, and their parameters in placeholder order.
struct Clause {
    terms: Vec<String>,
    values: Vec<String>,
    placeholder: fn(usize) -> String,
}

impl Clause {
    /// `sql` with each `?` numbered in turn, `parameters` added in that order.
    fn numbered(&mut self, sql: &str, parameters: Vec<String>) -> String {
        let mut parameters = parameters.into_iter();
        let mut out = String::new();
        for (i, piece) in sql.split('?').enumerate() {
            if i > 0 {
                self.values
                    .push(parameters.next().expect("a parameter per placeholder"));
                out.push_str(&(self.placeholder)(self.values.len()));
            }
            out.push_str(piece);
        }
        out
    }

    /// A term with one `?`.
    fn term(&mut self, sql: &str, value: String) {
        let term = self.numbered(sql, vec![value]);
        self.terms.push(term);
    }
}

/// The `WHERE` clause of `filter` and its parameters, all text, numbered from 1.
/// `newest_first` is the page size of a listing ordered by id descending: a status filter
/// then walks the deliveries' status index from the newest event down and stops after a
/// page, where testing each event for a delivery in that status would scan the whole
/// table when few match (a store of a million events with none pending).
pub(crate) fn where_clause(
    filter: &ListFilter,
    dialect: &Dialect,
    newest_first: Option<u32>,
) -> (String, Vec<String>) {
    let mut clause = Clause {
        terms: Vec::new(),
        values: Vec::new(),
        placeholder: dialect.placeholder,
    };
    if let Some(id) = &filter.event_id {
        clause.term("id = ?", id.0.clone());
    }
    if let Some(source) = &filter.source {
        clause.term("source = ?", source.clone());
    }
    if let Some(topic) = &filter.topic {
        let (operator, pattern) = (dialect.topic)(topic);
        clause.term(&format!("topic {operator} ?"), pattern);
    }
    if let Some(tenant) = &filter.tenant {
        clause.term("tenant = ?", tenant.clone());
    }
    if let Some(provider_id) = &filter.provider_id {
        clause.term("dedupe_key = ?", provider_id.clone());
    }
    // Time ranges are id ranges (ids sort by arrival), and so is the cursor.
    let id_bounds: Vec<(&str, String)> = [
        filter.since_ms.map(|ms| (">=", EventId::lowest_at(ms))),
        filter.until_ms.map(|ms| ("<", EventId::lowest_at(ms))),
        filter.before.as_ref().map(|before| ("<", before.0.clone())),
    ]
    .into_iter()
    .flatten()
    .collect();
    for (operator, bound) in &id_bounds {
        clause.term(&format!("id {operator} ?"), bound.clone());
    }
    // Only the id bounds narrow the walk down the status index; any other term could
    // reject the page it stops after, so with one the events are tested one by one.
    let only_id_bounds = filter.event_id.is_none()
        && filter.source.is_none()
        && filter.topic.is_none()
        && filter.tenant.is_none()
        && filter.provider_id.is_none();
    match (filter.status, newest_first) {
        (Some(EventStatus::Unrouted), _) => clause.terms.push("routing = 'unrouted'".into()),
        (Some(status), Some(page)) if only_id_bounds => {
            let mut walk =
                String::from("SELECT DISTINCT event_id FROM deliveries WHERE status = ?");
            let mut parameters = vec![status.as_str().to_owned()];
            for (operator, bound) in &id_bounds {
                walk.push_str(&format!(" AND event_id {operator} ?"));
                parameters.push(bound.clone());
            }
            let walk = clause.numbered(&walk, parameters);
            clause.terms.push(format!(
                "id IN ({walk} ORDER BY event_id DESC LIMIT {page})"
            ));
        }
        (Some(status), _) => clause.term(
            "EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = events.id AND d.status = ?)",
            status.as_str().to_owned(),
        ),
        (None, _) => {}
    }
    if clause.terms.is_empty() {
        clause.terms.push(dialect.always.into());
    }
    (clause.terms.join(" AND "), clause.values)
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
