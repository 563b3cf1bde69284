//! The scan engine: feeds the event loop from the targets file and the
//! resolver pool, a bounded number at a time, and reports each line as it
//! ends.

use std::collections::HashSet;
use std::io;
use std::sync::mpsc::{Receiver, TryRecvError};
use std::sync::Arc;

use quicprobe_verifier::TrustStore;

use super::{Answer, Lookup, ScanLine, ScanReport};
use crate::capture::ChainFiles;
use crate::engine::event_loop::{FedJob, Job, JobFeed};
use crate::engine::outcome::Outcome;
use crate::engine::target::{ResolveEntry, TargetError};
use crate::report::explain::explain_chain;

/// Feeds the event loop from the targets file and the resolver pool, and
/// reports each line as it ends. A job's index is its line's position in
/// `lines`.
pub(crate) struct ScanFeed<'a, 'w> {
    lines: &'a [ScanLine],
    /// Jobs ready for the loop, not yet taken.
    ready: Vec<FedJob>,
    /// Lines sent to the resolver pool and not answered yet.
    awaiting_lookup: HashSet<usize>,
    /// None until the pool starts; closed once every resolver thread ended.
    pub(crate) answers: Option<Receiver<Answer>>,
    trust: Arc<TrustStore>,
    pub(crate) report: ScanReport<'w>,
    /// `--save-chain`: where each line's chain goes.
    pub(crate) chains: Option<ChainFiles>,
}

impl<'a, 'w> ScanFeed<'a, 'w> {
    /// A feed over `lines`, reporting to `report`; no lookup started yet.
    pub(crate) fn new(
        lines: &'a [ScanLine],
        trust: Arc<TrustStore>,
        report: ScanReport<'w>,
    ) -> Self {
        Self {
            lines,
            ready: Vec::new(),
            awaiting_lookup: HashSet::new(),
            answers: None,
            trust,
            report,
            chains: None,
        }
    }

    /// Reports the bad lines, readies the targets that need no lookup, and
    /// returns the lookups for the resolver pool.
    pub(crate) fn route_lines(&mut self, overrides: &[ResolveEntry]) -> io::Result<Vec<Lookup>> {
        let mut lookups = Vec::new();
        for (index, line) in self.lines.iter().enumerate() {
            let wanted = match &line.parsed {
                Ok(wanted) => wanted,
                Err(error) => {
                    self.report.bad_line(line, error)?;
                    continue;
                }
            };
            match super::resolve_without_lookup(&wanted.target, overrides) {
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
    pub(crate) fn report_unanswered(&mut self) -> io::Result<()> {
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
        let mut outcome = outcome;
        if let Some(files) = &self.chains {
            files.save(line.number, &mut outcome);
        }
        // Rejected targets carry the verifier's diagnosis, as with connect.
        let outcome = explain_chain(outcome, &self.trust);
        self.report.outcome(line, &outcome)
    }

    fn could_not_start(&mut self, index: usize, job: &Job, error: io::Error) -> io::Result<()> {
        match self.lines.get(index) {
            Some(line) => self.report.could_not_start(line, job, &error),
            None => Ok(()),
        }
    }
}
