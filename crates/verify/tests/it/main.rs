//! Integration tests of hookgate-verify: one binary, one module per feature.

mod catalogue;
mod config;
mod jwt;
mod oidc;
mod properties;
mod published;
mod schemes;
mod seeds;
mod support;
mod vectors;
