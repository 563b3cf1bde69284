//! The parts of `quicprobe scan`: the targets file, the resolver pool that
//! looks names up off the event loop, and the report (a JSON object per line
//! as each ends, then one summary object).

mod feed;

pub(crate) use feed::ScanFeed;

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::time::Duration;

use mio::Waker;
use serde_json::{json, Value};

use crate::engine::event_loop::Job;
use crate::engine::outcome::{Outcome, OutcomeKind};
use crate::engine::target::{ResolveEntry, Target, TargetError};
use crate::exit;

/// The largest targets file read, so that a path such as /dev/zero ends in
/// an error rather than in exhausted memory.
pub const MAX_TARGETS_FILE: u64 = 16 * 1024 * 1024;

/// How many names are looked up at once.
pub const RESOLVER_THREADS: usize = 4;

/// How many of the slowest targets the summary names.
const SLOWEST_SHOWN: usize = 5;
/// How many connection times are held before the list is cut back.
const TIMES_KEPT: usize = 256;

/// A line of the targets file that names a target, or tries to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanLine {
    /// Counted from 1, as editors do.
    pub number: usize,
    /// The line as written, without its line ending.
    pub input: String,
    /// The target, or why the line is not one.
    pub parsed: Result<LineTarget, LineError>,
}

/// Why a line of the targets file names no target; says the line's number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    #[error("line {line}: not UTF-8 text")]
    NotUtf8 { line: usize },
    #[error("line {line}: expected host[:port] [sni], found {words} words")]
    TooManyWords { line: usize, words: usize },
    #[error("line {line}: {source}")]
    BadTarget { line: usize, source: TargetError },
}

/// Why the targets file cannot be read as one.
#[derive(Debug, thiserror::Error)]
pub enum TargetsFileError {
    #[error("{}: {source}", path.display())]
    Unreadable { path: PathBuf, source: io::Error },
    #[error("{}: larger than {} MiB, not a targets file", path.display(), limit / (1024 * 1024))]
    TooLarge { path: PathBuf, limit: u64 },
}

impl ScanLine {
    /// The line and its target, when it names one.
    pub fn with_target(&self) -> Option<(&Self, &LineTarget)> {
        self.parsed.as_ref().ok().map(|wanted| (self, wanted))
    }
}

/// What a good line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineTarget {
    pub target: Target,
    /// The name to send in SNI and to find in the certificate, when it is
    /// not the target's host.
    pub sni: Option<String>,
}

/// Reads a targets file, bounded by [`MAX_TARGETS_FILE`].
pub fn read_targets_file(path: &Path) -> Result<Vec<ScanLine>, TargetsFileError> {
    let unreadable = |source: io::Error| TargetsFileError::Unreadable {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(unreadable)?;
    let mut bytes = Vec::new();
    file.take(MAX_TARGETS_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(unreadable)?;
    if bytes.len() as u64 > MAX_TARGETS_FILE {
        return Err(TargetsFileError::TooLarge {
            path: path.to_owned(),
            limit: MAX_TARGETS_FILE,
        });
    }
    Ok(parse_targets(&bytes))
}

/// The lines that name a target or fail to; blank lines and comments are
/// left out. Each line is decoded on its own, so one line of binary garbage
/// is one bad line, not a bad file.
pub fn parse_targets(bytes: &[u8]) -> Vec<ScanLine> {
    bytes
        .split(|byte| *byte == b'\n')
        .enumerate()
        .filter_map(|(at, raw)| {
            let number = at + 1;
            let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
            let (input, parsed) = match std::str::from_utf8(raw) {
                Ok(text) => (text.to_owned(), parse_line(number, text)?),
                Err(_) => (
                    String::from_utf8_lossy(raw).into_owned(),
                    Err(LineError::NotUtf8 { line: number }),
                ),
            };
            Some(ScanLine {
                number,
                input,
                parsed,
            })
        })
        .collect()
}

/// `host[:port] [sni]`, `#` starting a comment; None for a line with nothing else.
fn parse_line(line: usize, text: &str) -> Option<Result<LineTarget, LineError>> {
    let text = text.split_once('#').map_or(text, |(before, _)| before);
    let words: Vec<&str> = text.split_whitespace().collect();
    let (target, sni) = match words.as_slice() {
        [] => return None,
        [target] => (*target, None),
        [target, sni] => (*target, Some((*sni).to_owned())),
        more => {
            return Some(Err(LineError::TooManyWords {
                line,
                words: more.len(),
            }))
        }
    };
    Some(
        Target::parse(target)
            .map(|target| LineTarget { target, sni })
            .map_err(|source| LineError::BadTarget { line, source }),
    )
}

/// The addresses of a target that needs no lookup: a `--resolve` entry or
/// an IP literal. None when the name must go to the resolver.
pub fn resolve_without_lookup(
    target: &Target,
    overrides: &[ResolveEntry],
) -> Option<Result<Vec<SocketAddr>, TargetError>> {
    let overridden = overrides
        .iter()
        .any(|e| e.host.eq_ignore_ascii_case(&target.host) && e.port == target.port);
    (overridden || target.host.parse::<IpAddr>().is_ok()).then(|| target.resolve_all(overrides))
}

/// How a name becomes addresses: the system's resolver in the binary, a
/// slower or stranger one in tests.
pub type Resolver = Arc<dyn Fn(&Target) -> Result<Vec<SocketAddr>, TargetError> + Send + Sync>;

/// The system's resolver, except for names under `.invalid`, which RFC 6761
/// §6.4 says never resolve and resolvers should answer at once: no query
/// leaves the machine for them.
pub fn system_resolver() -> Resolver {
    Arc::new(|target: &Target| {
        let host = target.host.trim_end_matches('.').to_ascii_lowercase();
        if host == "invalid" || host.ends_with(".invalid") {
            return Err(TargetError::Lookup {
                host: target.host.clone(),
                reason: ".invalid names never resolve (RFC 6761)".into(),
            });
        }
        target.resolve_all(&[])
    })
}

/// A name to look up for the line at `index`.
#[derive(Debug, Clone)]
pub struct Lookup {
    pub index: usize,
    pub target: Target,
}

/// What the resolver found for the line at `index`.
#[derive(Debug)]
pub struct Answer {
    pub index: usize,
    pub addrs: Result<Vec<SocketAddr>, TargetError>,
}

/// Starts up to `threads` threads that work through `lookups` in order.
/// Each answer is sent on the returned channel and wakes the event loop, so
/// a slow lookup holds up one thread, never the loop. The channel closes
/// (and the loop is woken once more) when every thread has ended.
pub fn spawn_resolvers(
    lookups: Vec<Lookup>,
    threads: usize,
    resolver: Resolver,
    waker: Arc<Waker>,
) -> io::Result<Receiver<Answer>> {
    let (sender, answers) = mpsc::channel();
    let lookups = Arc::new(lookups);
    let next = Arc::new(AtomicUsize::new(0));
    for number in 0..threads.min(lookups.len()) {
        let mut out = AnswerSender {
            sender: Some(sender.clone()),
            waker: waker.clone(),
        };
        let (lookups, next, resolver) = (lookups.clone(), next.clone(), resolver.clone());
        std::thread::Builder::new()
            .name(format!("quicprobe-resolver-{number}"))
            .spawn(move || {
                while let Some(lookup) = lookups.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let addrs = resolver(&lookup.target);
                    if !out.send(Answer {
                        index: lookup.index,
                        addrs,
                    }) {
                        // The loop is gone: nobody wants the rest.
                        return;
                    }
                }
            })?;
    }
    Ok(answers)
}

/// A resolver thread's end of the channel. Dropped, even by a panic, it
/// closes its sender first and then wakes the loop, so the loop always
/// sees the channel close instead of sleeping forever.
struct AnswerSender {
    sender: Option<Sender<Answer>>,
    waker: Arc<Waker>,
}

impl AnswerSender {
    /// Sends and wakes the loop; false when the loop has stopped listening.
    fn send(&mut self, answer: Answer) -> bool {
        let sent = self
            .sender
            .as_ref()
            .is_some_and(|sender| sender.send(answer).is_ok());
        let _ = self.waker.wake();
        sent
    }
}

impl Drop for AnswerSender {
    fn drop(&mut self) {
        drop(self.sender.take());
        let _ = self.waker.wake();
    }
}

/// The ways a line can end besides a connection's [`OutcomeKind`].
const LINE_ONLY_OUTCOMES: [&str; 2] = ["resolve_failed", "connect_failed"];
const PROBE_OUTCOMES: [OutcomeKind; 6] = [
    OutcomeKind::Ok,
    OutcomeKind::VerificationFailed,
    OutcomeKind::HandshakeFailed,
    OutcomeKind::Timeout,
    OutcomeKind::Refused,
    OutcomeKind::PartialResponse,
];

/// Writes one JSON object per line as each ends, and keeps what the
/// summary needs.
pub struct ScanReport<'w> {
    out: &'w mut dyn Write,
    /// Every outcome name, zero or not, so the summary's shape never changes.
    outcomes: BTreeMap<&'static str, usize>,
    bad_lines: usize,
    /// (elapsed_ms, line, target) of the slowest connections so far: cut
    /// back to the slowest few whenever it holds `TIMES_KEPT`, so that a long
    /// scan's memory does not grow with its targets.
    times: Vec<(f64, usize, String)>,
    /// The earliest failing line in the file and its exit code.
    first_failure: Option<(usize, u8)>,
}

impl<'w> ScanReport<'w> {
    pub fn new(out: &'w mut dyn Write) -> Self {
        let names = PROBE_OUTCOMES
            .iter()
            .map(|kind| kind.name())
            .chain(LINE_ONLY_OUTCOMES);
        Self {
            out,
            outcomes: names.map(|name| (name, 0)).collect(),
            bad_lines: 0,
            times: Vec::new(),
            first_failure: None,
        }
    }

    /// A line that names no target; it counts as a usage error (exit 2).
    pub fn bad_line(&mut self, line: &ScanLine, error: &LineError) -> io::Result<()> {
        self.bad_lines += 1;
        self.note_exit_code(line.number, exit::USAGE);
        self.write(json!({
            "line": line.number,
            "input": line.input,
            "exit_code": exit::USAGE,
            "outcome": "bad_line",
            "error": error.to_string(),
        }))
    }

    /// A target whose name has no address (curl's words, curl's code).
    pub fn resolve_failed(
        &mut self,
        line: &ScanLine,
        target: &Target,
        error: &TargetError,
    ) -> io::Result<()> {
        let reason = match error {
            TargetError::Lookup { reason, .. } => reason.clone(),
            other => other.to_string(),
        };
        let explanation = format!("could not resolve host: {} ({reason})", target.host);
        self.line_only(
            "resolve_failed",
            exit::RESOLVE_FAILED,
            line,
            target,
            explanation,
        )
    }

    /// A target for which not even a socket could be opened, on any of its
    /// addresses: curl's "could not connect".
    pub fn could_not_start(
        &mut self,
        line: &ScanLine,
        job: &Job,
        error: &io::Error,
    ) -> io::Result<()> {
        let explanation = format!("cannot open a UDP socket to {}: {error}", job.addr);
        self.line_only(
            "connect_failed",
            exit::REFUSED,
            line,
            &job.target,
            explanation,
        )
    }

    /// A connection's outcome: `connect --json`'s object with the line added.
    pub fn outcome(&mut self, line: &ScanLine, outcome: &Outcome) -> io::Result<()> {
        self.count(outcome.end.kind.name(), line.number, outcome.exit_code());
        self.times.push((
            outcome.end.elapsed.as_secs_f64() * 1000.0,
            line.number,
            outcome.peer.target.clone(),
        ));
        if self.times.len() >= TIMES_KEPT {
            self.keep_slowest();
        }
        let mut value = outcome.to_json();
        if let Some(object) = value.as_object_mut() {
            object.insert("line".into(), line.number.into());
            object.insert("input".into(), line.input.clone().into());
        }
        self.write(value)
    }

    /// The slowest `SLOWEST_SHOWN`, slowest first; a stable sort, so that of
    /// equal times the earlier stays first, as if every time had been kept.
    fn keep_slowest(&mut self) {
        self.times.sort_by(|a, b| b.0.total_cmp(&a.0));
        self.times.truncate(SLOWEST_SHOWN);
    }

    /// Writes the summary object; returns the run's exit code.
    pub fn finish(mut self, elapsed: Duration) -> io::Result<u8> {
        self.keep_slowest();
        let slowest: Vec<Value> = self
            .times
            .iter()
            .take(SLOWEST_SHOWN)
            .map(|(ms, line, target)| json!({"line": line, "target": target, "elapsed_ms": ms}))
            .collect();
        let exit_code = self.first_failure.map_or(exit::OK, |(_, code)| code);
        self.write(json!({
            "summary": {
                "targets": self.outcomes.values().sum::<usize>(),
                "outcomes": self.outcomes,
                "bad_lines": self.bad_lines,
                "slowest": slowest,
                "elapsed_ms": elapsed.as_secs_f64() * 1000.0,
                "exit_code": exit_code,
            }
        }))?;
        Ok(exit_code)
    }

    fn line_only(
        &mut self,
        outcome: &'static str,
        exit_code: u8,
        line: &ScanLine,
        target: &Target,
        explanation: String,
    ) -> io::Result<()> {
        self.count(outcome, line.number, exit_code);
        self.write(json!({
            "line": line.number,
            "input": line.input,
            "exit_code": exit_code,
            "outcome": outcome,
            "explanation": explanation,
            "target": target.authority(),
        }))
    }

    fn count(&mut self, outcome: &'static str, line: usize, exit_code: u8) {
        *self.outcomes.entry(outcome).or_default() += 1;
        self.note_exit_code(line, exit_code);
    }

    /// The run ends with the exit code of its first failing line in the
    /// file, whatever order the lines ended in.
    fn note_exit_code(&mut self, line: usize, exit_code: u8) {
        if exit_code != exit::OK && self.first_failure.is_none_or(|(first, _)| line < first) {
            self.first_failure = Some((line, exit_code));
        }
    }

    fn write(&mut self, value: Value) -> io::Result<()> {
        writeln!(self.out, "{value}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (host, port, sni) of a good line.
    type Wanted = (String, u16, Option<String>);

    fn parsed(text: &str) -> Vec<(usize, Result<Wanted, String>)> {
        parse_targets(text.as_bytes())
            .into_iter()
            .map(|line| {
                let parsed = line
                    .parsed
                    .map(|t| (t.target.host, t.target.port, t.sni))
                    .map_err(|error| error.to_string());
                (line.number, parsed)
            })
            .collect()
    }

    #[test]
    fn comments_and_blank_lines_are_skipped_and_lines_keep_their_numbers() {
        let lines =
            parsed("# a comment\n\n   \nexample.test  # trailing\r\n[::1]:4433 localhost\n");
        assert_eq!(
            lines,
            vec![
                (4, Ok(("example.test".into(), 443, None))),
                (5, Ok(("::1".into(), 4433, Some("localhost".into())))),
            ]
        );
    }

    #[test]
    fn bad_lines_say_their_number_and_why() {
        let lines = parsed("host:99999\nhost:1 sni extra\n:443\n[::1\n");
        let errors: Vec<String> = lines.into_iter().filter_map(|(_, r)| r.err()).collect();
        assert_eq!(errors.len(), 4, "{errors:?}");
        assert!(errors[0].starts_with("line 1: ") && errors[0].contains("bad port"));
        assert!(errors[1].starts_with("line 2: ") && errors[1].contains("3 words"));
        assert!(errors[2].starts_with("line 3: "));
        assert!(errors[3].starts_with("line 4: "));
    }

    #[test]
    fn a_line_of_binary_garbage_is_one_bad_line() {
        let lines = parse_targets(b"ok.test\n\xff\xfe:1\nok.test:2\n");
        assert_eq!(lines.len(), 3);
        assert_eq!(
            lines[1].parsed.as_ref().map_err(ToString::to_string),
            Err("line 2: not UTF-8 text".to_owned())
        );
        assert!(lines[2].parsed.is_ok());
    }

    #[test]
    fn overrides_and_ip_literals_need_no_lookup_but_names_do() {
        let entry: ResolveEntry = "named.test:4433:127.0.0.1".parse().unwrap();
        let overrides = [entry];
        let named = Target::parse("named.test:4433").unwrap();
        let literal = Target::parse("127.0.0.1:4433").unwrap();
        let other = Target::parse("other.test:4433").unwrap();
        assert!(resolve_without_lookup(&named, &overrides).is_some());
        assert!(resolve_without_lookup(&literal, &overrides).is_some());
        assert!(resolve_without_lookup(&other, &overrides).is_none());
    }

    #[test]
    fn invalid_names_fail_without_a_query() {
        let target = Target::parse("does-not-exist.INVALID.:443").unwrap();
        let error = system_resolver()(&target).unwrap_err();
        assert!(error.to_string().contains("RFC 6761"), "{error}");
    }
}
