//! hum: end-to-end encrypted terminal chat whose traffic looks the same whether you talk
//! or not.
//!
//! The crate has a headless engine (sessions, outbox, store, relay links) and two faces
//! on top of it: the ratatui TUI and the line-oriented `--plain` mode. They speak through
//! the types in [`api`].
#![forbid(unsafe_code)]

pub mod api;
pub mod command;
pub mod demo;
pub mod engine;
pub mod plain;
pub mod ui;
