//! Everything the conformance suite needs comes from `hookgate_store::testing`.

pub use hookgate_store::testing::*;
