//! Tests of the real `hookgate` binary.

mod catalogue;
mod commands;
mod delivery;
mod durability;
mod golden;
mod logs;
mod nodes;
mod offline_verify;
mod reload;
mod simulator;
mod support;
