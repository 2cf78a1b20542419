//! Whole-system test support for hum.
