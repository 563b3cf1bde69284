//! `-w/--write-out FORMAT`, as curl's: after each connection, FORMAT with
//! its `%{variables}` filled in from the outcome. curl's variables keep
//! curl's meaning where QUIC has one (`time_appconnect` is the handshake);
//! quicprobe's own say what curl has no word for (`verdict`, `fault`, ...).
//! `VARIABLES` is the one table: `--help` and docs/usage.md list it.

use std::path::Path;

use crate::engine::outcome::{Outcome, OutcomeKind};

/// Every variable and what it gives, in the order `--help` lists them.
pub const VARIABLES: &[(&str, &str)] = &[
    ("exit_code", "the connection's exit code (0, 60, 28, ...)"),
    (
        "errormsg",
        "the failure in words (the JSON's explanation); empty when ok",
    ),
    (
        "http_code",
        "the first response's HTTP status, 000 when none (also response_code)",
    ),
    (
        "http_version",
        "3 for h3, 0.9 for hq-interop, 0 when no HTTP was spoken",
    ),
    (
        "url",
        "the URL (or host:port) of the connection (also url_effective)",
    ),
    ("remote_ip", "the server's address"),
    ("remote_port", "the server's port"),
    ("local_ip", "our address"),
    ("local_port", "our UDP port"),
    (
        "time_connect",
        "seconds to the handshake's end, as time_appconnect: QUIC connects and secures at once",
    ),
    (
        "time_appconnect",
        "seconds to the handshake's end (our Finished sent); 0.000000 when none",
    ),
    ("time_total", "seconds from the first packet to the end"),
    ("size_download", "body bytes received, all responses"),
    (
        "ssl_verify_result",
        "the X509 verify error number; 0 when the chain verified (or none came)",
    ),
    ("json", "the outcome's JSON object, as --json prints it"),
    (
        "outcome",
        "quicprobe: ok, verification_failed, timeout, ... (the JSON's outcome)",
    ),
    (
        "verdict",
        "quicprobe: accepted or rejected; empty when no chain came",
    ),
    (
        "fault",
        "quicprobe: the diagnosis kind (missing_intermediate, ...); empty without one",
    ),
    (
        "x509_error",
        "quicprobe: the X509 verify error number; empty when accepted",
    ),
    (
        "x509_error_string",
        "quicprobe: its words (unable to get local issuer certificate, ...)",
    ),
    (
        "close_code",
        "quicprobe: the CONNECTION_CLOSE error code, hex (0x12a); empty without one",
    ),
    (
        "close_reason",
        "quicprobe: the CONNECTION_CLOSE reason phrase",
    ),
    (
        "time_handshake",
        "quicprobe: milliseconds to the handshake's end (the JSON's handshake_ms)",
    ),
    ("alpn", "quicprobe: the ALPN the server chose"),
    ("tls_cipher", "quicprobe: the TLS cipher suite"),
    ("tls_group", "quicprobe: the key exchange group"),
    (
        "body_sha256",
        "quicprobe: the first response body's SHA-256, hex; bodies are hashed only when -w or the JSON asks",
    ),
    (
        "stdout",
        "switch: what follows goes to stdout (the default)",
    ),
    ("stderr", "switch: what follows goes to stderr"),
];

/// Names curl gives twice.
const ALIASES: &[(&str, &str)] = &[("response_code", "http_code"), ("url_effective", "url")];

/// Why a format cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WriteOutError {
    #[error("-w {format:?}: unknown variable %{{{name}}} (--help lists them)")]
    Unknown { format: String, name: String },
    #[error("-w {0:?}: a %{{ without its closing }}")]
    Unclosed(String),
    #[error("-w @{path}: cannot read: {reason}")]
    Read { path: String, reason: String },
}

/// Where a piece of output goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stream {
    Stdout,
    Stderr,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    /// A variable, by its name in `VARIABLES` (aliases resolved).
    Variable(&'static str),
    Switch(Stream),
}

/// A parsed `-w` format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteOut {
    parts: Vec<Part>,
}

/// What one connection writes: to stdout and to stderr.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Rendered {
    pub stdout: String,
    pub stderr: String,
}

impl WriteOut {
    /// Whether the format shows a body's digest (`%{body_sha256}`, or the
    /// JSON that holds it), so that the run must hash bodies.
    pub fn shows_body_digest(&self) -> bool {
        self.parts
            .iter()
            .any(|part| matches!(part, Part::Variable("body_sha256" | "json")))
    }

    /// The `-w` argument: a format, or `@FILE` to read it from FILE, as curl.
    pub fn from_arg(arg: &str) -> Result<Self, WriteOutError> {
        match arg.strip_prefix('@') {
            Some(path) => {
                let format = std::fs::read_to_string(Path::new(path)).map_err(|error| {
                    WriteOutError::Read {
                        path: path.to_owned(),
                        reason: error.to_string(),
                    }
                })?;
                Self::parse(&format)
            }
            None => Self::parse(arg),
        }
    }

    /// `%{name}` variables, `%%` for a percent sign, and curl's `\n`, `\r`,
    /// `\t` and `\\` escapes; anything else is text.
    pub fn parse(format: &str) -> Result<Self, WriteOutError> {
        let mut parts = Vec::new();
        let mut text = String::new();
        let mut rest = format;
        while let Some(c) = rest.chars().next() {
            if let Some(after) = rest.strip_prefix("%{") {
                let (name, tail) = after
                    .split_once('}')
                    .ok_or_else(|| WriteOutError::Unclosed(format.to_owned()))?;
                if !text.is_empty() {
                    parts.push(Part::Text(std::mem::take(&mut text)));
                }
                parts.push(part_named(name).ok_or_else(|| WriteOutError::Unknown {
                    format: format.to_owned(),
                    name: name.to_owned(),
                })?);
                rest = tail;
                continue;
            }
            let (unescaped, used) = match (c, rest[c.len_utf8()..].chars().next()) {
                ('%', Some('%')) => ('%', 2),
                ('\\', Some('n')) => ('\n', 2),
                ('\\', Some('r')) => ('\r', 2),
                ('\\', Some('t')) => ('\t', 2),
                ('\\', Some('\\')) => ('\\', 2),
                _ => (c, c.len_utf8()),
            };
            text.push(unescaped);
            rest = &rest[used..];
        }
        if !text.is_empty() {
            parts.push(Part::Text(text));
        }
        Ok(Self { parts })
    }

    /// The format filled in for one connection.
    pub fn render(&self, outcome: &Outcome) -> Rendered {
        let mut rendered = Rendered::default();
        let mut stream = Stream::Stdout;
        for part in &self.parts {
            let text = match part {
                Part::Switch(to) => {
                    stream = *to;
                    continue;
                }
                Part::Text(text) => text.clone(),
                Part::Variable(name) => value(name, outcome),
            };
            match stream {
                Stream::Stdout => rendered.stdout.push_str(&text),
                Stream::Stderr => rendered.stderr.push_str(&text),
            }
        }
        rendered
    }
}

/// The `--help` summary: the variables' names, curl's then quicprobe's.
pub fn help_text() -> String {
    let names: Vec<String> = VARIABLES
        .iter()
        .map(|(name, _)| format!("%{{{name}}}"))
        .collect();
    let mut text = String::from("Write-out variables (-w; docs/usage.md says what each gives):\n");
    let mut line = String::from(" ");
    for name in names {
        if line.len() + name.len() > 78 {
            text.push_str(&line);
            text.push('\n');
            line = String::from(" ");
        }
        line.push(' ');
        line.push_str(&name);
    }
    text.push_str(&line);
    text.push_str(
        "\n  time_* are seconds as curl's, but %{time_handshake} is milliseconds;\n  \
         escapes \\n \\r \\t \\\\ and %% work; -w @FILE reads the format from FILE.\n",
    );
    text
}

fn part_named(name: &str) -> Option<Part> {
    let name = ALIASES
        .iter()
        .find(|(alias, _)| *alias == name)
        .map_or(name, |(_, canonical)| canonical);
    match name {
        "stdout" => Some(Part::Switch(Stream::Stdout)),
        "stderr" => Some(Part::Switch(Stream::Stderr)),
        _ => VARIABLES
            .iter()
            .find(|(known, _)| *known == name)
            .map(|(known, _)| Part::Variable(known)),
    }
}

/// One variable's value for one outcome.
fn value(name: &str, outcome: &Outcome) -> String {
    let verdict = outcome.chain.checked.as_ref().map(|c| &c.verdict);
    let close = outcome.end.close.as_ref();
    let handshake_secs = outcome.handshake.handshake_ms.unwrap_or(0.0) / 1000.0;
    match name {
        "exit_code" => outcome.exit_code().to_string(),
        "errormsg" if outcome.end.kind == OutcomeKind::Ok => String::new(),
        "errormsg" => outcome.explain(),
        "http_code" => format!(
            "{:03}",
            outcome.response().and_then(|r| r.status).unwrap_or(0)
        ),
        "http_version" => http_version(outcome.handshake.alpn.as_deref()).into(),
        "url" => url(outcome),
        "remote_ip" => outcome.peer.addr.ip().to_string(),
        "remote_port" => outcome.peer.addr.port().to_string(),
        "local_ip" => outcome
            .peer
            .local_addr
            .map_or_else(String::new, |a| a.ip().to_string()),
        "local_port" => outcome
            .peer
            .local_addr
            .map_or_else(String::new, |a| a.port().to_string()),
        "time_connect" | "time_appconnect" => format!("{handshake_secs:.6}"),
        "time_total" => format!("{:.6}", outcome.end.elapsed.as_secs_f64()),
        "size_download" => outcome
            .application
            .responses
            .iter()
            .map(|r| r.body_bytes)
            .sum::<usize>()
            .to_string(),
        "ssl_verify_result" => verdict.map_or(0, |v| v.x509_error()).to_string(),
        "json" => outcome.to_json().to_string(),
        "outcome" => outcome.end.kind.name().into(),
        "verdict" => verdict
            .map(|v| if v.accepted { "accepted" } else { "rejected" })
            .unwrap_or_default()
            .into(),
        "fault" => outcome
            .chain
            .analysis
            .as_ref()
            .map(|a| a.diagnosis.fault.kind())
            .filter(|kind| *kind != "none")
            .unwrap_or_default()
            .into(),
        "x509_error" => verdict
            .filter(|v| !v.accepted)
            .map_or_else(String::new, |v| v.x509_error().to_string()),
        "x509_error_string" => verdict
            .filter(|v| !v.accepted)
            .map_or("", |v| v.x509_error_string())
            .into(),
        "close_code" => close.map_or_else(String::new, |c| format!("{:#x}", c.error_code)),
        "close_reason" => close.map_or_else(String::new, |c| c.reason.clone()),
        "time_handshake" => outcome
            .handshake
            .handshake_ms
            .map_or_else(String::new, |ms| format!("{ms:.3}")),
        "alpn" => outcome.handshake.alpn.clone().unwrap_or_default(),
        "tls_cipher" => outcome.handshake.tls.cipher.clone().unwrap_or_default(),
        "body_sha256" => outcome
            .response()
            .and_then(|r| r.body_sha256.clone())
            .unwrap_or_default(),
        "tls_group" => outcome.handshake.tls.group.clone().unwrap_or_default(),
        _ => String::new(),
    }
}

/// curl's %{http_version} for the ALPN the server chose.
fn http_version(alpn: Option<&str>) -> &'static str {
    match alpn {
        Some("h3") => "3",
        Some("hq-interop") => "0.9",
        _ => "0",
    }
}

/// The URL asked for, or host:port for a handshake without a request.
fn url(outcome: &Outcome) -> String {
    match outcome.response() {
        Some(response) => format!("https://{}{}", outcome.peer.target, response.path),
        None => outcome.peer.target.clone(),
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::time::Duration;

    use super::*;
    use crate::engine::request::Response;

    fn outcome() -> Outcome {
        let addr: SocketAddr = "127.0.0.1:4433".parse().unwrap();
        let mut outcome = Outcome::bare(
            OutcomeKind::Ok,
            "localhost:4433".into(),
            addr,
            "00".into(),
            Vec::new(),
        );
        outcome.peer.local_addr = Some("127.0.0.1:50000".parse().unwrap());
        outcome.handshake.alpn = Some("h3".into());
        outcome.handshake.handshake_ms = Some(2.5);
        outcome.end.elapsed = Duration::from_millis(40);
        outcome.application.responses = vec![Response {
            path: "/x".into(),
            status: Some(200),
            body_bytes: 33,
            complete: true,
            ..Response::default()
        }];
        outcome
    }

    fn stdout(format: &str) -> String {
        WriteOut::parse(format).unwrap().render(&outcome()).stdout
    }

    #[test]
    fn curls_variables_take_curls_meaning() {
        assert_eq!(stdout("%{http_code} %{response_code}"), "200 200");
        assert_eq!(stdout("%{remote_ip}:%{remote_port}"), "127.0.0.1:4433");
        assert_eq!(stdout("%{local_port}"), "50000");
        assert_eq!(stdout("%{time_appconnect}"), "0.002500");
        assert_eq!(stdout("%{time_total}"), "0.040000");
        assert_eq!(stdout("%{size_download}"), "33");
        assert_eq!(stdout("%{url_effective}"), "https://localhost:4433/x");
        assert_eq!(stdout("%{http_version}"), "3");
        assert_eq!(stdout("%{exit_code}%{errormsg}"), "0");
        assert_eq!(stdout("%{ssl_verify_result}"), "0");
    }

    #[test]
    fn quicprobes_own_variables() {
        assert_eq!(stdout("%{time_handshake}"), "2.500");
        assert_eq!(stdout("%{outcome} %{alpn}"), "ok h3");
        // No chain, no close: empty, not made up.
        assert_eq!(
            stdout("[%{verdict}%{close_code}%{fault}%{x509_error}]"),
            "[]"
        );
        let json: serde_json::Value = serde_json::from_str(&stdout("%{json}")).unwrap();
        assert_eq!(json["outcome"], "ok");
    }

    #[test]
    fn escapes_percent_signs_and_streams() {
        assert_eq!(stdout(r"a\tb\n100%% %x\\"), "a\tb\n100% %x\\");
        let rendered = WriteOut::parse("%{exit_code}%{stderr}err %{http_code}%{stdout}!")
            .unwrap()
            .render(&outcome());
        assert_eq!(rendered.stdout, "0!");
        assert_eq!(rendered.stderr, "err 200");
    }

    #[test]
    fn bad_formats_name_the_variable() {
        let error = WriteOut::parse("%{nope}").unwrap_err();
        assert!(error.to_string().contains("%{nope}"), "{error}");
        assert!(matches!(
            WriteOut::parse("%{http_code"),
            Err(WriteOutError::Unclosed(_))
        ));
        assert!(matches!(
            WriteOut::from_arg("@/nonexistent/format"),
            Err(WriteOutError::Read { .. })
        ));
    }

    #[test]
    fn every_listed_variable_renders_without_panicking() {
        for (name, _) in VARIABLES {
            let _ = stdout(&format!("%{{{name}}}"));
        }
        for format in ["%", "%{", "\\", "%{}", "é%{url}é", "%%{url}"] {
            let _ = WriteOut::parse(format).map(|w| w.render(&outcome()));
        }
    }
}
