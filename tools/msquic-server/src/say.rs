//! One line on stdout per event, flushed at once: tests read the server's
//! stdout line by line while it runs.

use std::io::Write;

/// Writes one line to stdout and flushes it.
///
/// Errors (a closed pipe) are ignored on purpose: this runs inside msquic
/// callbacks, where a panic (as `println!` would raise) aborts the process.
pub fn line(args: std::fmt::Arguments) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_fmt(args);
    let _ = out.write_all(b"\n");
    let _ = out.flush();
}

/// `say!("connected peer={peer}")`: see [`line`].
macro_rules! say {
    ($($arg:tt)*) => { $crate::say::line(format_args!($($arg)*)) };
}
pub(crate) use say;
