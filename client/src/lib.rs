//! # quicprobe
//!
//! The client side of quicprobe: the command line and everything it runs,
//! in rooms whose dependencies run one way (docs/architecture.md):
//!
//! - [`cli`]: the clap types, and the setup that turns arguments into ready
//!   objects (trust store, QUIC settings);
//! - [`commands`]: one module per subcommand, which runs the parts below and
//!   prints;
//! - [`engine`]: the event loop and the connection (a probe): QUIC, TLS
//!   stages, flights, requests, sessions, the outcome it ends with;
//! - [`report`]: what a person reads: traces in three styles, the chain
//!   rendered, the verifier's explanation attached to each outcome;
//! - [`scan`], [`aia`], [`lab`], [`impair`]: the scan engine, AIA fetching,
//!   the lab server and the impairment relay.
//!
//! `main.rs` only parses and dispatches; tests drive these modules directly.

#![deny(unsafe_code)]

pub mod aia;
pub mod capture;
pub mod cli;
pub mod commands;
pub mod engine;
pub mod exit;
pub mod fuzzing;
pub(crate) mod hex;
pub mod impair;
pub mod lab;
pub mod logging;
pub mod report;
pub mod scan;
