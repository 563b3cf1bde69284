//! What to do to the datagrams, and on which paths.

use std::fmt;
use std::time::Duration;

use super::rng::Percent;

/// Which way a datagram travels through the relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Path {
    ToServer,
    ToClient,
}

/// Which paths the impairments apply to; the other one relays untouched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    #[default]
    Both,
    ToServer,
    ToClient,
}

impl Direction {
    pub fn covers(self, path: Path) -> bool {
        match self {
            Direction::Both => true,
            Direction::ToServer => path == Path::ToServer,
            Direction::ToClient => path == Path::ToClient,
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::Both => "both directions",
            Direction::ToServer => "to the server only",
            Direction::ToClient => "to the client only",
        })
    }
}

/// What the relay does to the datagrams of the impaired paths.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Impairments {
    pub seed: u64,
    pub loss: Percent,
    /// Hold up to this many datagrams per client and path, then release
    /// them shuffled; 0 or 1 keeps the order.
    pub reorder_window: usize,
    /// The longest a datagram waits in the hold-back window, so that a
    /// flight smaller than the window is not held forever.
    pub reorder_hold: Duration,
    pub duplicate: Percent,
    pub delay: Duration,
    /// The delay varies uniformly by up to this much either way.
    pub jitter: Duration,
    /// The chance that a datagram gets one random bit flipped.
    pub corrupt: Percent,
    /// Datagrams longer than this are cut to it.
    pub truncate: Option<usize>,
    /// After this many datagrams on the impaired paths, nothing more passes.
    pub blackhole_after: Option<u64>,
    pub direction: Direction,
}

impl fmt::Display for Impairments {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if !self.loss.is_zero() {
            parts.push(format!("loss {}", self.loss));
        }
        if self.reorder_window > 1 {
            parts.push(format!(
                "reorder window {} (hold {} ms)",
                self.reorder_window,
                self.reorder_hold.as_millis()
            ));
        }
        if !self.duplicate.is_zero() {
            parts.push(format!("duplicate {}", self.duplicate));
        }
        if !self.delay.is_zero() || !self.jitter.is_zero() {
            parts.push(format!(
                "delay {} ms ± {} ms",
                self.delay.as_millis(),
                self.jitter.as_millis()
            ));
        }
        if !self.corrupt.is_zero() {
            parts.push(format!("corrupt {}", self.corrupt));
        }
        if let Some(size) = self.truncate {
            parts.push(format!("truncate to {size} bytes"));
        }
        if let Some(after) = self.blackhole_after {
            parts.push(format!("black hole after {after} datagrams"));
        }
        if parts.is_empty() {
            parts.push("no impairment".to_owned());
        }
        write!(
            f,
            "{}, {}, seed {}",
            parts.join(", "),
            self.direction,
            self.seed
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directions_cover_their_paths() {
        assert!(Direction::Both.covers(Path::ToServer) && Direction::Both.covers(Path::ToClient));
        assert!(Direction::ToServer.covers(Path::ToServer));
        assert!(!Direction::ToServer.covers(Path::ToClient));
        assert!(!Direction::ToClient.covers(Path::ToServer));
    }
}
