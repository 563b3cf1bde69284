//! # quicprobe
//!
//! The client side of quicprobe: the command line, and everything it runs.
//! `main.rs` only parses and dispatches; tests drive these modules directly.

pub mod aia;
pub mod alerts;
pub mod cli;
pub mod compression;
pub mod connect_cmd;
pub mod datapath;
pub mod demo_cmd;
pub mod event_loop;
pub mod exit;
pub mod fingerprint;
pub mod flights;
pub mod fuzzing;
pub mod get_cmd;
pub mod handshake;
pub mod impair;
pub mod impair_cmd;
pub mod lab;
pub mod outcome;
pub mod probe;
pub mod render;
pub mod request;
pub mod scan;
pub mod scan_cmd;
pub mod serve_cmd;
pub mod session;
pub mod target;
pub mod trace;
pub mod trust;
pub mod verify_cmd;
