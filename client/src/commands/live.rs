//! The feed `connect`, `get` and `demo` run their jobs through: each
//! connection's trace printed as it goes (the native and aioquic styles on
//! stderr, as curl's `-v`; the JSON style on stdout, being data), its
//! outcome finished (explained) the moment it ends, and a Ctrl-C that stops
//! the run and keeps what ended.
//!
//! One connection at a time prints each line when its event happens. With
//! several in flight, each connection's lines are held and printed together
//! when it ends, in the order connections end: interleaved, they could not
//! be read.

use std::collections::HashMap;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::engine::event_loop::{FedJob, Job, JobFeed};
use crate::engine::handshake::{ConnectionStart, KeysDropped, StageEvent};
use crate::engine::outcome::{Outcome, OutcomeKind};
use crate::report::trace::{self, LiveTrace, TraceStyle};

/// What is printed of each connection as it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Show {
    /// The whole trace in a style.
    Trace(TraceStyle),
    /// curl's last line only (`-q`).
    SummaryLine,
    /// The last line of the first `limit` connections that failed (`--repeat`).
    Failures { limit: usize },
    /// Nothing: the command prints the outcomes itself.
    Nothing,
}

/// The feed of one run. `F` makes an ended connection's outcome final (the
/// chain explained, and whatever else the command adds) before it is
/// printed; it is given the job's index (from 0) too.
pub struct LiveFeed<'a, F: FnMut(usize, Outcome) -> Outcome> {
    jobs: Vec<FedJob>,
    show: Show,
    /// Several connections in flight: lines are held per connection.
    grouped: bool,
    traces: HashMap<usize, Held>,
    finish: F,
    outcomes: Vec<(usize, Outcome)>,
    failures_shown: usize,
    stop: Arc<AtomicBool>,
    /// Where a person's lines go (stderr), and where data goes (stdout).
    people: Box<dyn Write + 'a>,
    data: Box<dyn Write + 'a>,
}

/// One connection's trace and, when grouped, the lines held back.
struct Held {
    trace: LiveTrace,
    text: String,
}

impl<'a, F: FnMut(usize, Outcome) -> Outcome> LiveFeed<'a, F> {
    pub fn new(jobs: Vec<Job>, concurrency: usize, show: Show, finish: F) -> Self {
        Self {
            jobs: FedJob::numbered(jobs),
            show,
            grouped: concurrency > 1,
            traces: HashMap::new(),
            finish,
            outcomes: Vec::new(),
            failures_shown: 0,
            stop: Arc::new(AtomicBool::new(false)),
            people: Box::new(io::stderr()),
            data: Box::new(io::stdout()),
        }
    }

    /// Where the lines go, instead of stderr and stdout (for tests).
    pub fn with_outputs(mut self, people: Box<dyn Write + 'a>, data: Box<dyn Write + 'a>) -> Self {
        self.people = people;
        self.data = data;
        self
    }

    /// The flag a Ctrl-C sets; the run stops at the loop's next turn.
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        self.stop.clone()
    }

    /// Whether the run was stopped before every job ended.
    pub fn was_stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// The outcomes of the jobs that ended, in job order.
    pub fn into_outcomes(mut self) -> Vec<Outcome> {
        self.outcomes.sort_by_key(|(index, _)| *index);
        self.outcomes.into_iter().map(|(_, o)| o).collect()
    }

    fn style(&self) -> Option<TraceStyle> {
        match self.show {
            Show::Trace(style) => Some(style),
            _ => None,
        }
    }

    /// Renders a connection's next piece of trace with `render`, then prints
    /// its lines now, or holds them until the connection ends (`last`).
    fn advance(&mut self, index: usize, last: bool, render: impl FnOnce(&mut LiveTrace) -> String) {
        let Some(style) = self.style() else {
            return;
        };
        let held = self.traces.entry(index).or_insert_with(|| Held {
            trace: LiveTrace::new(style, index),
            text: String::new(),
        });
        let text = render(&mut held.trace);
        held.text.push_str(&text);
        // Called every turn of the loop: nothing new, nothing to write.
        if (self.grouped || text.is_empty()) && !last {
            return;
        }
        let text = std::mem::take(&mut held.text);
        if last {
            self.traces.remove(&index);
        }
        let out = if style.is_data() {
            &mut self.data
        } else {
            &mut self.people
        };
        // A closed pipe ends the output, not the run.
        let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
    }

    /// `-q` and `--repeat`: curl's last line for the connections it shows.
    fn summary_line(&mut self, outcome: &Outcome) {
        let show = match self.show {
            Show::SummaryLine => true,
            Show::Failures { limit } if outcome.end.kind != OutcomeKind::Ok => {
                self.failures_shown += 1;
                self.failures_shown <= limit
            }
            _ => false,
        };
        if show {
            let _ = writeln!(self.people, "{}", trace::summary_line(outcome));
        }
    }
}

impl<F: FnMut(usize, Outcome) -> Outcome> JobFeed for LiveFeed<'_, F> {
    fn take_ready(&mut self) -> io::Result<Vec<FedJob>> {
        Ok(std::mem::take(&mut self.jobs))
    }

    fn is_open(&self) -> bool {
        false
    }

    fn finished(&mut self, index: usize, outcome: Outcome) -> io::Result<()> {
        let outcome = (self.finish)(index, outcome);
        self.advance(index, true, |trace| trace.finish(&outcome));
        self.summary_line(&outcome);
        self.outcomes.push((index, outcome));
        Ok(())
    }

    fn is_live(&self) -> bool {
        self.style().is_some()
    }

    fn started(&mut self, index: usize, start: &ConnectionStart) {
        self.advance(index, false, |trace| trace.start(start));
    }

    fn refused(&mut self, index: usize, addr: SocketAddr) {
        self.advance(index, false, |trace| trace.refused(addr));
    }

    fn progressed(&mut self, index: usize, stages: &[StageEvent], keys: Option<KeysDropped>) {
        self.advance(index, false, |trace| trace.stages(stages, keys));
    }

    fn stop_requested(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}
