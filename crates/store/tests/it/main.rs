//! The store contract: one conformance suite that every backend runs unchanged. Each test
//! runs once per backend this machine has (see `support::databases`), each time on a fresh
//! database of its own.

mod deliveries;
mod events;
mod postgres;
mod refusals;
mod retention;
mod support;
