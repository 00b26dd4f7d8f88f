//! Tests of the real `hookgate` binary.

mod commands;
mod delivery;
mod durability;
mod golden;
mod offline_verify;
mod simulator;
mod support;
