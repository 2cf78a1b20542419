//! Tests of the session against a relay made of `route`'s relay-side functions.
