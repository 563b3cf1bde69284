//! One `mio::Poll` drives every connection of a run, on one thread: all the
//! targets, and every repetition, up to `concurrency` at once. Each step is a
//! small function; nothing blocks but the poll itself, whose timeout is the
//! earliest timer of any connection.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::time::Instant;

use mio::{Events, Interest, Poll, Token};
use quicprobe_verifier::VerdictSlot;

use crate::outcome::Outcome;
use crate::probe::{Probe, ProbeSettings};
use crate::target::Target;

/// One connection to make.
#[derive(Debug, Clone)]
pub struct Job {
    pub target: Target,
    pub addr: SocketAddr,
}

/// Runs every job, `concurrency` at a time, and returns their outcomes in job order.
pub fn run(
    jobs: Vec<Job>,
    concurrency: usize,
    config: &mut quiche::Config,
    slot: &VerdictSlot,
    settings: &ProbeSettings,
) -> io::Result<Vec<Outcome>> {
    let mut run = Run {
        poll: Poll::new()?,
        events: Events::with_capacity(1024),
        pending: jobs.into_iter().enumerate().collect::<Vec<_>>().into_iter(),
        active: HashMap::new(),
        outcomes: Vec::new(),
        concurrency: concurrency.max(1),
    };
    loop {
        run.start_new(config, settings)?;
        // A first flight can already end a probe (ECONNREFUSED on send).
        run.collect_finished()?;
        if run.active.is_empty() {
            if run.pending.len() == 0 {
                break;
            }
            continue;
        }
        run.wait()?;
        run.recv_ready(slot);
        run.fire_timers();
        run.flush_sends();
        run.collect_finished()?;
    }
    run.outcomes.sort_by_key(|(index, _)| *index);
    Ok(run
        .outcomes
        .into_iter()
        .map(|(_, outcome)| outcome)
        .collect())
}

struct Run {
    poll: Poll,
    events: Events,
    pending: std::vec::IntoIter<(usize, Job)>,
    active: HashMap<usize, Probe>,
    outcomes: Vec<(usize, Outcome)>,
    concurrency: usize,
}

impl Run {
    /// Starts jobs until `concurrency` are in flight; each sends its Initial.
    fn start_new(
        &mut self,
        config: &mut quiche::Config,
        settings: &ProbeSettings,
    ) -> io::Result<()> {
        while self.active.len() < self.concurrency {
            let Some((index, job)) = self.pending.next() else {
                return Ok(());
            };
            let mut probe = Probe::start(job.target, job.addr, config, settings)?;
            self.poll
                .registry()
                .register(&mut probe.socket, Token(index), Interest::READABLE)?;
            probe.step();
            self.active.insert(index, probe);
        }
        Ok(())
    }

    /// Sleeps until a socket is readable or the earliest timer is due.
    fn wait(&mut self) -> io::Result<()> {
        let now = Instant::now();
        let timeout = self
            .active
            .values()
            .map(Probe::next_wakeup)
            .min()
            .map(|at| at.saturating_duration_since(now));
        match self.poll.poll(&mut self.events, timeout) {
            Err(error) if error.kind() == io::ErrorKind::Interrupted => Ok(()),
            other => other,
        }
    }

    fn recv_ready(&mut self, slot: &VerdictSlot) {
        for event in &self.events {
            if let Some(probe) = self.active.get_mut(&event.token().0) {
                probe.recv_all(slot);
            }
        }
    }

    fn fire_timers(&mut self) {
        for probe in self.active.values_mut() {
            probe.fire_timer();
        }
    }

    fn flush_sends(&mut self) {
        for probe in self.active.values_mut() {
            probe.step();
        }
    }

    /// Ends finished probes: their sockets are deregistered and dropped.
    fn collect_finished(&mut self) -> io::Result<()> {
        let finished: Vec<usize> = self
            .active
            .iter()
            .filter(|(_, probe)| probe.is_finished())
            .map(|(index, _)| *index)
            .collect();
        for index in finished {
            if let Some(mut probe) = self.active.remove(&index) {
                self.poll.registry().deregister(&mut probe.socket)?;
                if let Some(outcome) = probe.take_outcome() {
                    self.outcomes.push((index, outcome));
                }
            }
        }
        Ok(())
    }
}
