//! The load driver (filled in below).
