//! What a person reads: the trace of each connection in three styles
//! (native, aioquic's, JSON), the chain rendered as a tree with its verdict
//! and diagnosis, and the verifier's explanation attached to each outcome.

pub(crate) mod explain;
pub(crate) mod render;
pub mod trace;
pub mod write_out;
