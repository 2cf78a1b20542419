//! Whole-system test support for hum: the harness for tests that run relays and engines
//! together, the observer proxy that records what the wire shows, the attack program
//! that scores what a curious relay or observer learns, and what a load run's relay
//! logs say when read back against its ground truth.

pub mod attack;
pub mod harness;
pub mod load_logs;
pub mod mesh;
pub mod observer;
