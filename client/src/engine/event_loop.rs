//! One `mio::Poll` drives every connection of a run, on one thread: all the
//! targets, and every repetition, up to `concurrency` at once. Each step is a
//! small function; nothing blocks but the poll itself, whose timeout is the
//! earliest timer of any connection. The connections share the run's
//! sockets, one per address family ([`Endpoint`]).
//!
//! Jobs come from a [`JobFeed`]: all at once (`connect`, through [`run`]), or
//! while the loop runs (`scan`, whose names are resolved on other threads,
//! which wake the poll through the loop's [`Waker`]). Outcomes go back to the
//! feed as each job ends.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use mio::{Events, Poll, Token, Waker};
use quicprobe_verifier::VerdictSlot;

use crate::engine::datapath::{Datapath, Scratch};
use crate::engine::endpoint::Endpoint;
use crate::engine::handshake::{ConnectionStart, KeysDropped, StageEvent};
use crate::engine::outcome::{Outcome, OutcomeKind};
use crate::engine::probe::{Probe, ProbeSettings};
use crate::engine::target::Target;

/// The poll token of the waker; the endpoint's sockets have two more.
const WAKE_TOKEN: Token = Token(usize::MAX);

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

    /// The job for a target resolved to `addrs`, or None when there is none.
    pub fn for_addresses(target: Target, addrs: &[SocketAddr]) -> Option<Self> {
        let (first, rest) = addrs.split_first()?;
        Some(Self {
            target,
            addr: *first,
            fallbacks: rest.to_vec(),
        })
    }

    /// The same job on the next address, if there is one.
    fn next_address(&self) -> Option<Job> {
        Self::for_addresses(self.target.clone(), &self.fallbacks)
    }
}

/// A job as a feed hands it over: its index (unique in the run, the key of
/// its outcome) and, when it has its own, the name for SNI and the certificate.
#[derive(Debug, Clone)]
pub struct FedJob {
    pub index: usize,
    pub job: Job,
    /// Replaces `ProbeSettings::sni` for this job.
    pub sni: Option<String>,
}

impl FedJob {
    /// Jobs known in advance, numbered in order from 0, none with an SNI of its own.
    pub fn numbered(jobs: Vec<Job>) -> Vec<FedJob> {
        jobs.into_iter()
            .enumerate()
            .map(|(index, job)| FedJob {
                index,
                job,
                sni: None,
            })
            .collect()
    }
}

/// Where a run's jobs come from and where their outcomes go.
pub trait JobFeed {
    /// The jobs that became ready since the last call.
    fn take_ready(&mut self) -> io::Result<Vec<FedJob>>;
    /// Whether more jobs may still come; the run ends when the feed is closed
    /// and every job has ended. A feed that is open must wake the loop (see
    /// [`EventLoop::waker`]) when it has new jobs or closes.
    fn is_open(&self) -> bool;
    /// A job's outcome, once its last address has been tried.
    fn finished(&mut self, index: usize, outcome: Outcome) -> io::Result<()>;
    /// Whether the feed shows connections as they go: only then are
    /// [`JobFeed::started`], [`JobFeed::refused`] and [`JobFeed::progressed`]
    /// called (a scan of thousands of targets has no use for them).
    fn is_live(&self) -> bool {
        false
    }
    /// A job's connection started on one of its addresses.
    fn started(&mut self, index: usize, start: &ConnectionStart) {
        let _ = (index, start);
    }
    /// A job's address refused; the next one is tried.
    fn refused(&mut self, index: usize, addr: SocketAddr) {
        let _ = (index, addr);
    }
    /// A job's connection reached new stages: `stages` holds all so far.
    fn progressed(&mut self, index: usize, stages: &[StageEvent], keys: Option<KeysDropped>) {
        let _ = (index, stages, keys);
    }
    /// Whether the run should stop now (Ctrl-C): jobs not yet started are
    /// dropped, and connections in flight are abandoned without an outcome.
    fn stop_requested(&self) -> bool {
        false
    }
    /// A job that could not even open its socket on any of its addresses
    /// (e.g. IPv6 on a host without it). By default the whole run fails.
    fn could_not_start(&mut self, index: usize, job: &Job, error: io::Error) -> io::Result<()> {
        let _ = (index, job);
        Err(error)
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
    let mut feed = AllAtOnce {
        jobs: FedJob::numbered(jobs),
        outcomes: Vec::new(),
    };
    EventLoop::new(concurrency)?.run(&mut feed, config, slot, settings)?;
    feed.outcomes.sort_by_key(|(index, _)| *index);
    Ok(feed
        .outcomes
        .into_iter()
        .map(|(_, outcome)| outcome)
        .collect())
}

/// Jobs known before the run starts; outcomes kept for the end.
struct AllAtOnce {
    jobs: Vec<FedJob>,
    outcomes: Vec<(usize, Outcome)>,
}

impl JobFeed for AllAtOnce {
    fn take_ready(&mut self) -> io::Result<Vec<FedJob>> {
        Ok(std::mem::take(&mut self.jobs))
    }

    fn is_open(&self) -> bool {
        false
    }

    fn finished(&mut self, index: usize, outcome: Outcome) -> io::Result<()> {
        self.outcomes.push((index, outcome));
        Ok(())
    }
}

/// The loop before it runs: made first so that a feed's threads can hold its waker.
pub struct EventLoop {
    run: Run,
    /// Held for the whole run: when the last feeding thread drops its copy,
    /// the waker's file descriptor must stay open, or its last wake-up
    /// (the one saying the feed closed) is lost with it.
    waker: Arc<Waker>,
}

impl EventLoop {
    pub fn new(concurrency: usize) -> io::Result<Self> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKE_TOKEN)?);
        Ok(Self {
            run: Run {
                poll,
                events: Events::with_capacity(1024),
                pending: VecDeque::new(),
                active: HashMap::new(),
                refused: HashMap::new(),
                concurrency: concurrency.max(1),
                scratch: Scratch::new(),
                endpoint: Endpoint::new(None),
            },
            waker,
        })
    }

    /// What other threads call to wake the loop when they feed it.
    pub fn waker(&self) -> Arc<Waker> {
        self.waker.clone()
    }

    /// Runs until the feed is closed and every job has ended.
    pub fn run(
        mut self,
        feed: &mut dyn JobFeed,
        config: &mut quiche::Config,
        slot: &VerdictSlot,
        settings: &ProbeSettings,
    ) -> io::Result<()> {
        let run = &mut self.run;
        run.endpoint = Endpoint::new(settings.local_ports);
        // One copy for the whole run, shared by every probe.
        let settings = Arc::new(settings.clone());
        loop {
            if feed.stop_requested() {
                return Ok(());
            }
            run.pending.extend(feed.take_ready()?);
            run.start_new(feed, config, &settings)?;
            // A first flight can already end a probe (ECONNREFUSED on send).
            run.collect_finished(feed)?;
            if run.active.is_empty() {
                if !run.pending.is_empty() {
                    continue;
                }
                if !feed.is_open() {
                    return Ok(());
                }
            }
            // With nothing active, this sleeps until the feed wakes it.
            run.wait()?;
            run.recv_ready(slot);
            run.fire_timers();
            run.flush_sends();
            if feed.is_live() {
                run.report_progress(feed);
            }
            run.collect_finished(feed)?;
        }
    }
}

struct Run {
    poll: Poll,
    events: Events,
    pending: VecDeque<FedJob>,
    /// Each active probe and its job, for trying its next address. Boxed:
    /// a probe is about 1 KiB, and the table has up to twice as many slots
    /// as probes, every one of them touched.
    active: HashMap<usize, (Box<Probe>, FedJob)>,
    /// Addresses that refused, per job, before the one that answered.
    refused: HashMap<usize, Vec<SocketAddr>>,
    concurrency: usize,
    /// The datagram buffers, lent to one probe at a time.
    scratch: Scratch,
    /// The sockets every probe shares, and which probe each connection ID is.
    endpoint: Endpoint,
}

impl Run {
    /// Starts jobs until `concurrency` are in flight; each sends its Initial.
    fn start_new(
        &mut self,
        feed: &mut dyn JobFeed,
        config: &mut quiche::Config,
        settings: &Arc<ProbeSettings>,
    ) -> io::Result<()> {
        while self.active.len() < self.concurrency {
            let Some(fed) = self.pending.pop_front() else {
                return Ok(());
            };
            // A scan line may name its own SNI: only those get settings of their own.
            let settings = match &fed.sni {
                Some(sni) => Arc::new(ProbeSettings {
                    sni: Some(sni.clone()),
                    ..ProbeSettings::clone(settings)
                }),
                None => Arc::clone(settings),
            };
            let mut probe = match self.open_probe(&fed, config, &settings) {
                Ok(probe) => probe,
                Err(error) => {
                    self.could_not_start(feed, fed, error)?;
                    continue;
                }
            };
            if feed.is_live() {
                feed.started(fed.index, &probe.start_info());
            }
            probe.step(&mut self.scratch);
            if let Some(error) = probe.take_start_error() {
                self.could_not_start(feed, fed, error)?;
                continue;
            }
            if feed.is_live() {
                let (stages, keys) = probe.progress_so_far();
                feed.progressed(fed.index, stages, keys);
            }
            self.endpoint
                .add(probe.connection_key(), fed.index, probe.addr);
            self.active.insert(fed.index, (Box::new(probe), fed));
        }
        Ok(())
    }

    /// A job's connection, on the run's socket for its address family.
    fn open_probe(
        &mut self,
        fed: &FedJob,
        config: &mut quiche::Config,
        settings: &Arc<ProbeSettings>,
    ) -> io::Result<Probe> {
        let addr = fed.job.addr;
        let socket = self.endpoint.socket_for(addr, self.poll.registry())?;
        Probe::start(fed.job.target.clone(), addr, config, settings, socket)
    }

    /// A socket that cannot be opened is treated as a refusal: the next
    /// address is tried, and only the last one's error is the job's.
    fn could_not_start(
        &mut self,
        feed: &mut dyn JobFeed,
        fed: FedJob,
        error: io::Error,
    ) -> io::Result<()> {
        if let Some(next) = fed.job.next_address() {
            log::info!("{}: {error}; trying {}", fed.job.addr, next.addr);
            self.pending.push_front(FedJob { job: next, ..fed });
            return Ok(());
        }
        self.refused.remove(&fed.index);
        feed.could_not_start(fed.index, &fed.job, error)
    }

    /// Sleeps until a socket is readable, the feed wakes it, or the earliest
    /// timer is due.
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

    /// Reads what each readable socket holds, and the refusals queued on it.
    fn recv_ready(&mut self, slot: &VerdictSlot) {
        // At most the two sockets, and no allocation on each wake-up.
        let mut ready: [Option<(Arc<Datapath>, bool)>; 2] = [None, None];
        let sockets = self.events.iter().filter_map(|event| {
            let socket = self.endpoint.socket_of(event.token())?;
            Some((socket, event.is_error()))
        });
        for (entry, socket) in ready.iter_mut().zip(sockets) {
            *entry = Some(socket);
        }
        for (socket, has_errors) in ready.into_iter().flatten() {
            self.receive_all(&socket, slot);
            if has_errors {
                self.take_refusals(&socket);
            }
        }
    }

    /// Every datagram waiting on `socket`, a batch per system call, each to
    /// the probe whose connection ID it carries.
    fn receive_all(&mut self, socket: &Datapath, slot: &VerdictSlot) {
        loop {
            match socket.recv_batch(&mut self.scratch) {
                Ok(filled) => {
                    let (arrivals, space) = self.scratch.arrivals_and_send_space(filled);
                    for arrival in arrivals {
                        let index = self.endpoint.job_for(arrival.datagram, arrival.from);
                        match index.and_then(|index| self.active.get_mut(&index)) {
                            Some((probe, _)) => probe.receive(arrival, slot, space),
                            None => log::trace!("datagram from {} for no connection", arrival.from),
                        }
                    }
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return,
                // An ICMP refusal's pending error: its details are queued.
                Err(error) if error.kind() == io::ErrorKind::ConnectionRefused => {
                    self.take_refusals(socket);
                }
                Err(error) => {
                    log::debug!("recv: {error}");
                    return;
                }
            }
        }
    }

    /// Ends the connections the socket's queued ICMP refusals name.
    fn take_refusals(&mut self, socket: &Datapath) {
        for refusal in socket.take_refusals() {
            for index in self.endpoint.refused_connections(&refusal) {
                if let Some((probe, _)) = self.active.get_mut(&index) {
                    probe.refuse();
                }
            }
        }
    }

    /// Hands the live feed what each connection reached since the last turn.
    fn report_progress(&self, feed: &mut dyn JobFeed) {
        for (index, (probe, _)) in &self.active {
            let (stages, keys) = probe.progress_so_far();
            feed.progressed(*index, stages, keys);
        }
    }

    fn fire_timers(&mut self) {
        for (probe, _) in self.active.values_mut() {
            probe.fire_timer();
        }
    }

    fn flush_sends(&mut self) {
        for (probe, _) in self.active.values_mut() {
            probe.step(&mut self.scratch);
        }
    }

    /// Ends finished probes: their connection IDs are forgotten, and their
    /// outcomes go to the feed unless another address is left to try.
    fn collect_finished(&mut self, feed: &mut dyn JobFeed) -> io::Result<()> {
        let finished: Vec<usize> = self
            .active
            .iter()
            .filter(|(_, (probe, _))| probe.is_finished())
            .map(|(index, _)| *index)
            .collect();
        for index in finished {
            let Some((mut probe, fed)) = self.active.remove(&index) else {
                continue;
            };
            self.endpoint.remove(&probe.connection_key());
            let Some(mut outcome) = probe.take_outcome() else {
                continue;
            };
            if let (OutcomeKind::Refused, Some(next)) = (outcome.end.kind, fed.job.next_address()) {
                log::info!("{} refused; trying {}", fed.job.addr, next.addr);
                self.refused.entry(index).or_default().push(fed.job.addr);
                if feed.is_live() {
                    feed.refused(index, fed.job.addr);
                }
                self.pending.push_front(FedJob { job: next, ..fed });
                continue;
            }
            outcome.peer.refused_before = self.refused.remove(&index).unwrap_or_default();
            feed.finished(index, outcome)?;
        }
        Ok(())
    }
}

/// Ctrl-C (and SIGTERM) set `stop` and wake the loop, so that the run ends
/// at once with what it has. The thread lives until the process ends.
pub fn stop_on_signals(stop: Arc<AtomicBool>, waker: Arc<Waker>) -> io::Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            if signals.forever().next().is_some() {
                stop.store(true, Ordering::Relaxed);
                let _ = waker.wake();
            }
        })?;
    Ok(())
}
