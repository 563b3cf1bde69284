//! What every `--help` ends with: examples, and the exit codes from the one
//! table in `exit.rs` (so that the help cannot drift from the code).

use crate::exit;
use crate::report::write_out;

const CONNECT: &str = "\
Examples:
  quicprobe connect example.com:443
  quicprobe connect --cacert roots.pem https://localhost:4433/
  quicprobe connect -q -w '%{exit_code} %{verdict} %{time_handshake}\\n' example.com
  quicprobe connect --trace-style aioquic --json-file out.jsonl host:4433
  quicprobe connect --repeat 200 --concurrency 50 host:4433

Timeouts: --connect-timeout (alias --timeout) 10 s bounds the handshake; -m/--max-time
bounds the whole connection (no limit by default: quiche's --idle-timeout, 30 s, ends a
stalled one).

Output: the trace (native, aioquic) and errors on stderr, each line when its event happens
(with --concurrency > 1, each connection's trace as one block when it ends); data (--json,
--trace-style json, -w) on stdout.

Body digest: a response body is hashed (SHA-256, the JSON's body_sha256) only when an output
shows it: --json, --json-file, --trace-style json, -w '%{json}' or -w '%{body_sha256}'.
Otherwise body_sha256 is null and the trace leaves it out: hashing costs CPU on downloads.";

const GET: &str = "\
Examples:
  quicprobe get https://example.com/
  quicprobe get -o page.html -w '%{http_code} %{size_download}\\n' https://example.com/
  quicprobe get -f -s -o - https://example.com/missing      # exit 22, no body
  quicprobe get --alpn hq-interop https://localhost:4433/a https://localhost:4433/b

Timeouts: --connect-timeout (alias --timeout) 10 s bounds the handshake; -m/--max-time
bounds the whole transfer (no limit by default: quiche's --idle-timeout, 30 s, ends a
stalled one). `-o -` writes to stdout.

Body digest: a response body is hashed (SHA-256, the JSON's body_sha256) only when an output
shows it: --json, -w '%{json}' or -w '%{body_sha256}'. Otherwise body_sha256 is null and
the -v trace leaves it out: hashing costs CPU on downloads.";

const SCAN: &str = "\
Examples:
  quicprobe scan --targets hosts.txt --concurrency 100 > results.jsonl
  quicprobe scan --targets hosts.txt --connect-timeout 2 --cacert roots.pem

Output (JSON Lines on stdout), one object per target line in the order the targets end \
(sort on `line` for file order):
  a connection: `connect --json`'s object, plus \"line\" and \"input\"
  a name that does not resolve: outcome \"resolve_failed\" (exit code 6, curl's)
  a bad line: {\"line\", \"input\", \"outcome\": \"bad_line\", \"error\"} (exit code 2)
then {\"summary\": {targets, outcomes, bad_lines, slowest, elapsed_ms, exit_code}}.
The exit code is 0 when every line is ok; otherwise that of the first failing line in the
file; 2 alone, with one line on stderr, when the targets file cannot be read.
--connect-timeout is 5 s here, not connect's 10: a scan meets many dead targets.";

const VERIFY: &str = "\
Examples:
  quicprobe verify --chain fullchain.pem --host example.com
  quicprobe verify --chain leaf.pem --cacert roots.pem --host localhost --json
  quicprobe verify -q --chain fullchain.pem --host example.com   # one line: the verdict";

const SERVE: &str = "\
Examples:
  quicprobe serve --scenario leaf-only --listen 127.0.0.1:4433
  quicprobe serve --chain chain.pem --key key.pem --retry";

const CLONE: &str = "\
Examples:
  quicprobe connect --save-chain sent.pem example.com:443
  quicprobe clone --chain sent.pem --host example.com --out failure/
  quicprobe clone --chain sent.pem --host example.com --rename example.com=example.test --out share/
  quicprobe serve --scenario failure/ --listen 127.0.0.1:4433";

const DEMO: &str = "\
Examples:
  quicprobe demo
  quicprobe demo --json";

const IMPAIR: &str = "\
Examples:
  quicprobe impair --listen 127.0.0.1:5000 --upstream 127.0.0.1:4433 --loss 20 --seed 7
  quicprobe impair --listen 127.0.0.1:5000 --upstream 127.0.0.1:4433 --truncate 1000";

fn with_exit_codes(examples: &str) -> String {
    format!("{examples}\n\n{}", exit::help_text())
}

/// Each command's `after_help`.
pub fn connect() -> String {
    format!("{}\n{}", with_exit_codes(CONNECT), write_out::help_text())
}

pub fn get() -> String {
    format!("{}\n{}", with_exit_codes(GET), write_out::help_text())
}

pub fn scan() -> String {
    with_exit_codes(SCAN)
}

pub fn verify() -> String {
    with_exit_codes(VERIFY)
}

pub fn serve() -> String {
    with_exit_codes(SERVE)
}

pub fn demo() -> String {
    with_exit_codes(DEMO)
}

/// `impair` keeps its own notes, before the examples.
pub fn impair(notes: &str) -> String {
    with_exit_codes(&format!("{notes}\n\n{IMPAIR}"))
}

/// The top-level `quicprobe --help`.
pub fn top() -> String {
    with_exit_codes(
        "Examples:\n  quicprobe connect example.com\n  quicprobe get -o - https://example.com/\n  \
         quicprobe verify --chain fullchain.pem --host example.com\n\n\
         Each command's --help has its own examples.",
    )
}

pub fn clone() -> String {
    with_exit_codes(CLONE)
}
