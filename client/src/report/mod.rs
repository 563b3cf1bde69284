//! What a person reads: the trace of each connection in three styles
//! (native, aioquic's, JSON), the chain rendered as a tree with its verdict
//! and diagnosis, and the verifier's explanation attached to each outcome.

pub mod explain;
pub mod render;
pub mod trace;
