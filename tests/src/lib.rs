//! Whole-system test support for hum: the harness for tests that run relays and engines
//! together, the observer proxy that records what the wire shows, and the attack program
//! that scores what a curious relay or observer learns.

pub mod attack;
pub mod harness;
pub mod observer;
