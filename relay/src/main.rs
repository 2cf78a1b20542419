//! The `hum-relay` binary.
fn main() {}
