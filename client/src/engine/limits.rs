//! The open-file limit. Connections share the run's sockets, but with
//! `--qlog-dir` each connection in flight holds its qlog file open, so a run
//! of many at once needs as many descriptors. The soft limit (often
//! 1,024) is raised to the hard one, as servers do at start; when even the
//! hard limit is too low, the person is told before connections fail one by
//! one with "Too many open files".

use nix::sys::resource::{getrlimit, setrlimit, Resource};

/// Descriptors a run needs besides its connections' files: stdio, the
/// poll, its waker, the shared sockets, files being written.
const OVERHEAD: u64 = 64;

/// What the limit came to, for the caller to log or warn about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenFiles {
    pub soft: u64,
    pub hard: u64,
    /// The soft limit was raised (from this).
    pub raised_from: Option<u64>,
}

impl OpenFiles {
    /// How many connections can be in flight at once under this limit.
    pub fn connections(&self) -> u64 {
        self.soft.saturating_sub(OVERHEAD)
    }
}

/// Raises the soft limit to the hard one when `in_flight` connections need
/// more than it allows; says what it did (info) or why it could not (warn).
pub fn make_room_for(in_flight: usize) -> Option<OpenFiles> {
    let needed = u64::try_from(in_flight)
        .unwrap_or(u64::MAX)
        .saturating_add(OVERHEAD);
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).ok()?;
    let mut limits = OpenFiles {
        soft,
        hard,
        raised_from: None,
    };
    if soft < needed && soft < hard {
        let target = needed.min(hard).max(soft);
        if setrlimit(Resource::RLIMIT_NOFILE, target, hard).is_ok() {
            log::info!("open files: soft limit raised from {soft} to {target} (hard {hard}) for {in_flight} connections in flight");
            limits.soft = target;
            limits.raised_from = Some(soft);
        }
    }
    if limits.soft < needed {
        log::warn!(
            "{in_flight} connections in flight need about {needed} open files, but the limit is {} \
             (hard {hard}): beyond about {} at once they fail with 'Too many open files'; \
             raise it (ulimit -n, or LimitNOFILE= for a service) or lower --concurrency",
            limits.soft,
            limits.connections()
        );
    }
    Some(limits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_is_made_up_to_the_hard_limit_and_never_above_it() {
        let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
        let limits = make_room_for(100).expect("limits");
        assert!(limits.soft <= hard);
        assert!(limits.soft >= 164.min(hard));
        let (soft_now, _) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
        assert_eq!(soft_now, limits.soft);
    }
}
