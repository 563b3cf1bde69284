//! One `mio::Poll` drives every connection of a run, on one thread: all the
//! targets, and every repetition, up to `concurrency` at once. Each step is a
//! small function; nothing blocks but the poll itself, whose timeout is the
//! earliest timer of any connection.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::SocketAddr;
use std::time::Instant;

use mio::{Events, Interest, Poll, Token};
use quicprobe_verifier::VerdictSlot;

use crate::outcome::{Outcome, OutcomeKind};
use crate::probe::{Probe, ProbeSettings};
use crate::target::Target;

/// One connection to make.
#[derive(Debug, Clone)]
pub struct Job {
    pub target: Target,
    pub addr: SocketAddr,
    /// Addresses to try next, in order, if `addr` refuses (ICMP unreachable).
    pub fallbacks: Vec<SocketAddr>,
}

impl Job {
    pub fn new(target: Target, addr: SocketAddr) -> Self {
        Self {
            target,
            addr,
            fallbacks: Vec::new(),
        }
    }

    /// The same job on the next address, if there is one.
    fn next_address(&self) -> Option<Job> {
        let (next, rest) = self.fallbacks.split_first()?;
        Some(Job {
            target: self.target.clone(),
            addr: *next,
            fallbacks: rest.to_vec(),
        })
    }
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
        pending: jobs.into_iter().enumerate().collect(),
        active: HashMap::new(),
        refused: HashMap::new(),
        outcomes: Vec::new(),
        concurrency: concurrency.max(1),
    };
    loop {
        run.start_new(config, settings)?;
        // A first flight can already end a probe (ECONNREFUSED on send).
        run.collect_finished()?;
        if run.active.is_empty() {
            if run.pending.is_empty() {
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
    pending: VecDeque<(usize, Job)>,
    /// Each active probe's job, for trying its next address.
    active: HashMap<usize, (Probe, Job)>,
    /// Addresses that refused, per job, before the one that answered.
    refused: HashMap<usize, Vec<SocketAddr>>,
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
            let Some((index, job)) = self.pending.pop_front() else {
                return Ok(());
            };
            let mut probe = Probe::start(job.target.clone(), job.addr, config, settings)?;
            self.poll
                .registry()
                .register(&mut probe.socket, Token(index), Interest::READABLE)?;
            probe.step();
            self.active.insert(index, (probe, job));
        }
        Ok(())
    }

    /// Sleeps until a socket is readable or the earliest timer is due.
    fn wait(&mut self) -> io::Result<()> {
        let now = Instant::now();
        let timeout = self
            .active
            .values()
            .map(|(probe, _)| probe.next_wakeup())
            .min()
            .map(|at| at.saturating_duration_since(now));
        match self.poll.poll(&mut self.events, timeout) {
            Err(error) if error.kind() == io::ErrorKind::Interrupted => Ok(()),
            other => other,
        }
    }

    fn recv_ready(&mut self, slot: &VerdictSlot) {
        for event in &self.events {
            if let Some((probe, _)) = self.active.get_mut(&event.token().0) {
                probe.recv_all(slot);
            }
        }
    }

    fn fire_timers(&mut self) {
        for (probe, _) in self.active.values_mut() {
            probe.fire_timer();
        }
    }

    fn flush_sends(&mut self) {
        for (probe, _) in self.active.values_mut() {
            probe.step();
        }
    }

    /// Ends finished probes: their sockets are deregistered and dropped.
    fn collect_finished(&mut self) -> io::Result<()> {
        let finished: Vec<usize> = self
            .active
            .iter()
            .filter(|(_, (probe, _))| probe.is_finished())
            .map(|(index, _)| *index)
            .collect();
        for index in finished {
            let Some((mut probe, job)) = self.active.remove(&index) else {
                continue;
            };
            self.poll.registry().deregister(&mut probe.socket)?;
            let Some(mut outcome) = probe.take_outcome() else {
                continue;
            };
            if let (OutcomeKind::Refused, Some(next)) = (outcome.kind, job.next_address()) {
                log::info!("{} refused; trying {}", job.addr, next.addr);
                self.refused.entry(index).or_default().push(job.addr);
                self.pending.push_front((index, next));
                continue;
            }
            outcome.refused_before = self.refused.remove(&index).unwrap_or_default();
            self.outcomes.push((index, outcome));
        }
        Ok(())
    }
}
