//! Whole-system test support for hum: the harness for tests that run relays and engines
//! together, and the observer proxy that records what the wire shows.

pub mod harness;
pub mod observer;
