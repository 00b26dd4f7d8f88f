//! Events to put in the databases `hookgate_store::testing` gives.

use hookgate_store::{EventId, NewEvent};

pub use hookgate_store::testing::*;

/// An event of `source` with provider id `key` and a body of `size` bytes.
pub fn event(source: &str, key: Option<&str>, size: usize) -> NewEvent {
    NewEvent {
        id: EventId::new(),
        source: source.into(),
        dedupe_key: key.map(str::to_owned),
        topic: Some("orders/created".into()),
        tenant: None,
        provider_timestamp: None,
        received_at_ms: 1,
        method: "POST".into(),
        path: "/h".into(),
        headers: vec![("content-type".into(), "application/json".into())],
        body: bytes::Bytes::from(vec![b'x'; size]),
        verification: serde_json::json!({"scheme": "hmac"}),
        destinations: Vec::new(),
    }
}
