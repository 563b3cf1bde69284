//! `quicprobe scan`: every target of a file on one event loop, a bounded
//! number at a time, names resolved by a small pool of threads beside it,
//! one JSON line per target as it ends, then a summary.

use std::collections::HashSet;
use std::io::{self, Write};
use std::sync::mpsc::{Receiver, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use quicprobe_verifier::{AlertStyle, InputError, TrustStore};

use crate::cli::trust::load_trust;
use crate::cli::ScanArgs;
use crate::engine::config::{quic_config, ClientSetup, ConnectError};
use crate::engine::event_loop::{EventLoop, FedJob, Job, JobFeed};
use crate::engine::outcome::Outcome;
use crate::engine::probe::ProbeSettings;
use crate::engine::target::{ResolveEntry, TargetError};
use crate::report::explain::explain_chains;
use crate::scan::{self, Answer, Lookup, Resolver, ScanLine, ScanReport};

/// The idle timeout offered to servers; a scan closes as soon as the
/// handshake is done, so it only has to outlast that.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a scan could not start, or stopped (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("--targets {0}")]
    TargetsFile(String),
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Input(#[from] InputError),
    #[error(transparent)]
    Setup(#[from] ConnectError),
    #[error("scan: {0}")]
    Io(#[from] io::Error),
}

/// Runs `quicprobe scan`, writing JSON Lines to `out` as targets end, in
/// the order they end; returns the exit code.
pub fn run(args: &ScanArgs, out: &mut dyn Write) -> Result<u8, ScanError> {
    run_with_resolver(args, scan::system_resolver(), out)
}

/// `run`, with names looked up by `resolver` (tests make lookups slow or fail).
pub fn run_with_resolver(
    args: &ScanArgs,
    resolver: Resolver,
    out: &mut dyn Write,
) -> Result<u8, ScanError> {
    let settings = probe_settings(args)?;
    let lines = scan::read_targets_file(&args.targets).map_err(ScanError::TargetsFile)?;
    let trust = Arc::new(load_trust(&args.trust)?);
    let setup = ClientSetup {
        trust: trust.clone(),
        alert_style: AlertStyle::Strict,
        alpns: args.alpn.clone(),
        idle_timeout: IDLE_TIMEOUT,
        keylog: false,
        insecure: false,
        curves: None,
        early_data: false,
    };
    let (mut config, slot) = quic_config(&setup)?;
    let event_loop = EventLoop::new(args.concurrency)?;
    let started = Instant::now();
    let mut feed = ScanFeed {
        lines: &lines,
        ready: Vec::new(),
        awaiting_lookup: HashSet::new(),
        answers: None,
        trust,
        report: ScanReport::new(out),
    };
    let lookups = feed.route_lines(&args.resolve)?;
    feed.answers = Some(scan::spawn_resolvers(
        lookups,
        scan::RESOLVER_THREADS,
        resolver,
        event_loop.waker(),
    )?);
    event_loop.run(&mut feed, &mut config, &slot, &settings)?;
    feed.report_unanswered()?;
    Ok(feed.report.finish(started.elapsed())?)
}

fn probe_settings(args: &ScanArgs) -> Result<ProbeSettings, ScanError> {
    if args.concurrency == 0 {
        return Err(ScanError::Usage("--concurrency must be at least 1".into()));
    }
    let timeout = Duration::try_from_secs_f64(args.timeout)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| {
            ScanError::Usage(format!(
                "--timeout {}: not a positive number of seconds",
                args.timeout
            ))
        })?;
    Ok(ProbeSettings::plain(
        args.alpn.clone(),
        timeout,
        IDLE_TIMEOUT,
    ))
}

/// Feeds the event loop from the targets file and the resolver pool, and
/// reports each line as it ends. A job's index is its line's position in
/// `lines`.
struct ScanFeed<'a, 'w> {
    lines: &'a [ScanLine],
    /// Jobs ready for the loop, not yet taken.
    ready: Vec<FedJob>,
    /// Lines sent to the resolver pool and not answered yet.
    awaiting_lookup: HashSet<usize>,
    /// None until the pool starts; closed once every resolver thread ended.
    answers: Option<Receiver<Answer>>,
    trust: Arc<TrustStore>,
    report: ScanReport<'w>,
}

impl ScanFeed<'_, '_> {
    /// Reports the bad lines, readies the targets that need no lookup, and
    /// returns the lookups for the resolver pool.
    fn route_lines(&mut self, overrides: &[ResolveEntry]) -> io::Result<Vec<Lookup>> {
        let mut lookups = Vec::new();
        for (index, line) in self.lines.iter().enumerate() {
            let wanted = match &line.parsed {
                Ok(wanted) => wanted,
                Err(error) => {
                    self.report.bad_line(line, error)?;
                    continue;
                }
            };
            match scan::resolve_without_lookup(&wanted.target, overrides) {
                Some(addrs) => self.resolved(index, addrs)?,
                None => {
                    self.awaiting_lookup.insert(index);
                    lookups.push(Lookup {
                        index,
                        target: wanted.target.clone(),
                    });
                }
            }
        }
        Ok(lookups)
    }

    /// Readies a line's job, or reports why it has none.
    fn resolved(
        &mut self,
        index: usize,
        addrs: Result<Vec<std::net::SocketAddr>, TargetError>,
    ) -> io::Result<()> {
        let lines = self.lines;
        let Some((line, wanted)) = lines.get(index).and_then(ScanLine::with_target) else {
            return Ok(());
        };
        let no_address = || TargetError::Lookup {
            host: wanted.target.host.clone(),
            reason: "no address".into(),
        };
        let job = addrs.and_then(|addrs| {
            Job::for_addresses(wanted.target.clone(), &addrs).ok_or_else(no_address)
        });
        match job {
            Ok(job) => {
                self.ready.push(FedJob {
                    index,
                    job,
                    sni: wanted.sni.clone(),
                });
                Ok(())
            }
            Err(error) => self.report.resolve_failed(line, &wanted.target, &error),
        }
    }

    /// Every line must get its object: a lookup lost with its thread (a
    /// panic in the system resolver) is reported as a failed one.
    fn report_unanswered(&mut self) -> io::Result<()> {
        let mut lost: Vec<usize> = self.awaiting_lookup.drain().collect();
        lost.sort_unstable();
        for index in lost {
            let lines = self.lines;
            let Some((line, wanted)) = lines.get(index).and_then(ScanLine::with_target) else {
                continue;
            };
            let error = TargetError::Lookup {
                host: wanted.target.host.clone(),
                reason: "the resolver stopped before answering".into(),
            };
            self.report.resolve_failed(line, &wanted.target, &error)?;
        }
        Ok(())
    }

    fn take_answers(&mut self) -> io::Result<()> {
        let Some(answers) = &self.answers else {
            return Ok(());
        };
        let mut received = Vec::new();
        let closed = loop {
            match answers.try_recv() {
                Ok(answer) => received.push(answer),
                Err(TryRecvError::Empty) => break false,
                Err(TryRecvError::Disconnected) => break true,
            }
        };
        if closed {
            self.answers = None;
        }
        for answer in received {
            if self.awaiting_lookup.remove(&answer.index) {
                self.resolved(answer.index, answer.addrs)?;
            }
        }
        Ok(())
    }
}

impl JobFeed for ScanFeed<'_, '_> {
    fn take_ready(&mut self) -> io::Result<Vec<FedJob>> {
        self.take_answers()?;
        Ok(std::mem::take(&mut self.ready))
    }

    fn is_open(&self) -> bool {
        self.answers.is_some()
    }

    fn finished(&mut self, index: usize, outcome: Outcome) -> io::Result<()> {
        let Some(line) = self.lines.get(index) else {
            return Ok(());
        };
        // Rejected targets carry the verifier's diagnosis, as with connect.
        for outcome in explain_chains(vec![outcome], &self.trust) {
            self.report.outcome(line, &outcome)?;
        }
        Ok(())
    }

    fn could_not_start(&mut self, index: usize, job: &Job, error: io::Error) -> io::Result<()> {
        match self.lines.get(index) {
            Some(line) => self.report.could_not_start(line, job, &error),
            None => Ok(()),
        }
    }
}
