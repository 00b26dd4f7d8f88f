//! Tests of the real `hookgate` binary.

mod commands;
mod durability;
mod support;
