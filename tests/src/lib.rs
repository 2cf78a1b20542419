//! Whole-system test support for hum: the harness for tests that run relays and engines
//! together.

pub mod harness;
