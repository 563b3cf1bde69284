//! The connection engine: one `mio` event loop driving many quiche
//! connections (probes), and what each connection is made of: the datapath,
//! the TLS handshake stages, the flights, requests, sessions, and the
//! outcome it ends with.

pub(crate) mod alerts;
pub mod client_identity;
pub(crate) mod compression;
pub mod config;
pub(crate) mod datapath;
pub(crate) mod endpoint;
pub mod event_loop;
pub mod fingerprint;
pub mod flights;
pub mod handshake;
pub mod limits;
pub(crate) mod message_callback;
pub mod outcome;
pub mod params;
pub mod probe;
pub mod request;
pub(crate) mod session;
pub mod target;
