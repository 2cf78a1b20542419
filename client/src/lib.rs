//! hum: the terminal client.
