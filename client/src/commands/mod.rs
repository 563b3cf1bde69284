//! One module per subcommand: each turns its arguments into the parts it
//! needs (through `cli::setup`), runs them, and prints. Nothing here is used
//! by another command.

pub mod clone;
pub mod connect;
pub mod demo;
pub mod get;
pub mod impair;
pub mod live;
pub mod scan;
pub mod serve;
pub mod verify;
