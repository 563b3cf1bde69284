//! # quicprobe
//!
//! The client side of quicprobe: the command line, and everything it runs.
//! `main.rs` only parses and dispatches; tests drive these modules directly.

pub mod cli;
pub mod exit;
pub mod render;
pub mod trust;
pub mod verify_cmd;
