//! Integration tests of the gateway: real TCP on port 0, a real SQLite file per test.

mod admin;
mod bad_input;
mod brokers;
mod console;
mod delivery;
mod handshakes;
mod limits;
mod metrics;
mod oidc;
mod postgres;
mod retention;
mod seeds;
mod store;
mod support;
mod tls;
