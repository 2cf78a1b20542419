//! Group messaging with Signal-style sender keys (in progress).
