//! The `hum` binary.
fn main() {}
