//! hum-relay: the in-memory TLS relay that beats the ticks.
