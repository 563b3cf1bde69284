//! `quicprobe get URL...`: requests over QUIC, as curl makes them, with all
//! the strictness of `connect`. Requests to the same origin share one
//! connection (HTTP/3 multiplexes them); origins run side by side on the one
//! event loop. Bodies go to stdout, in URL order, or to files.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::cli::setup::{
    addressing, chain_files, prepare, wants_body_digest, writable_file, write_out_format,
};
use crate::cli::GetArgs;
use crate::commands::live::{LiveFeed, Show};
use crate::engine::config::{run_feed, ConnectError};
use crate::engine::event_loop::Job;
use crate::engine::outcome::overall_exit_code;
use crate::engine::outcome::{Outcome, OutcomeKind};
use crate::engine::request::{RequestSpec, SinkSpec};
use crate::engine::target::Target;
use crate::report::explain::explain_chain;
use crate::report::trace::{self, TraceStyle};
use crate::report::write_out::WriteOut;

/// Runs `quicprobe get`: bodies (or JSON) to `out`, traces with `-v` and
/// errors to stderr. Returns the exit code.
pub fn run(args: &GetArgs, verbose: bool, out: &mut dyn Write) -> Result<u8, ConnectError> {
    let targets = plan(args)?;
    let (setup, mut settings) = prepare(&args.conn, TraceStyle::Native)?;
    let format = write_out_format(args.conn.write_out.as_deref())?;
    settings.body_digest = wants_body_digest(args.json, format.as_ref());
    let trust = setup.trust.clone();
    let addressing = addressing(&args.conn);
    let jobs = targets
        .into_iter()
        .map(|target| {
            let addrs = target.addresses(&addressing)?;
            Ok(Job {
                target,
                addr: addrs[0],
                fallbacks: addrs[1..].to_vec(),
            })
        })
        .collect::<Result<Vec<_>, ConnectError>>()?;
    let concurrency = jobs.len().max(1);
    // With -v, each origin's trace goes to stderr as it happens (grouped
    // per connection when there are several).
    let show = if verbose {
        Show::Trace(TraceStyle::Native)
    } else {
        Show::Nothing
    };
    let chains = chain_files(args.conn.save_chain.as_deref(), jobs.len() > 1)?;
    let mut feed = LiveFeed::new(jobs, concurrency, show, |index, mut outcome| {
        if let Some(files) = &chains {
            files.save(index + 1, &mut outcome);
        }
        explain_chain(outcome, &trust)
    });
    run_feed(&mut feed, concurrency, &setup, &settings, None)?;
    let outcomes = feed.into_outcomes();
    report(&outcomes, args.json, verbose, format.as_ref(), out);
    Ok(overall_exit_code(&outcomes))
}

/// What each outcome prints: bodies or JSON on stdout; on stderr curl's one
/// line for anything that went wrong (with -v, the trace ended with it).
fn report(
    outcomes: &[Outcome],
    json: bool,
    verbose: bool,
    format: Option<&WriteOut>,
    out: &mut dyn Write,
) {
    for outcome in outcomes {
        let worth_a_line =
            outcome.end.kind != OutcomeKind::Ok || !outcome.insecure_warning().is_empty();
        if !verbose && worth_a_line {
            eprintln!("{}", trace::summary_line(outcome));
        }
        // A closed pipe (`quicprobe get ... | head`) ends the output, not the run.
        let _ = if json {
            writeln!(out, "{}", outcome.to_json())
        } else {
            outcome
                .application
                .stdout_bodies
                .iter()
                .try_for_each(|body| out.write_all(body))
        };
        // -w: after the connection's data, as curl.
        if let Some(rendered) = format.map(|f| f.render(outcome)) {
            let _ = out.write_all(rendered.stdout.as_bytes());
            eprint!("{}", rendered.stderr);
        }
    }
}

/// The URLs as one target per origin, each with its requests in URL order.
fn plan(args: &GetArgs) -> Result<Vec<Target>, ConnectError> {
    if args.output.len() > args.urls.len() {
        return Err(usage("more -o files than URLs"));
    }
    let template = request_template(args)?;
    let mut origins: Vec<Target> = Vec::new();
    let mut index_of: HashMap<(String, u16), usize> = HashMap::new();
    for (n, url) in args.urls.iter().enumerate() {
        if !url.starts_with("https://") {
            return Err(usage(&format!("{url}: get takes https:// URLs")));
        }
        let target = Target::parse(url)?;
        let mut spec = template.clone();
        spec.path.clone_from(&target.path);
        spec.sink = sink_for(args, n, &target.path)?;
        let key = (target.host.clone(), target.port);
        let at = *index_of.entry(key).or_insert_with(|| {
            origins.push(Target {
                requests: Vec::new(),
                ..target.clone()
            });
            origins.len() - 1
        });
        origins[at].requests.push(spec);
    }
    Ok(origins)
}

/// Method, header fields and body, the same for every URL.
fn request_template(args: &GetArgs) -> Result<RequestSpec, ConnectError> {
    let headers = args
        .headers
        .iter()
        .map(|h| parse_header(h))
        .collect::<Result<Vec<_>, _>>()?;
    let (body, method) = match (&args.data, &args.send) {
        (Some(_), Some(_)) => return Err(usage("--data and --send do not go together")),
        (Some(data), None) => {
            let method = if args.method == "GET" {
                "POST".to_owned()
            } else {
                args.method.clone()
            };
            (read_data(data)?, method)
        }
        (None, Some(data)) => (read_data(data)?, args.method.clone()),
        (None, None) => (Vec::new(), args.method.clone()),
    };
    Ok(RequestSpec {
        method,
        path: String::new(),
        headers,
        body,
        sink: SinkSpec::Discard,
        include_headers: args.include,
    })
}

/// Where the Nth body goes: its -o file, its -O name, or stdout; a file
/// is opened now, before connecting, so that a lost body costs no transfer.
fn sink_for(args: &GetArgs, n: usize, path: &str) -> Result<SinkSpec, ConnectError> {
    if let Some(file) = args.output.get(n) {
        // curl's `-o -`: the body goes to stdout.
        if file.as_os_str() == "-" {
            return Ok(SinkSpec::Stdout);
        }
        writable_file("-o", file)?;
        return Ok(SinkSpec::File(file.clone()));
    }
    if args.remote_name {
        let file = remote_name(path)?;
        writable_file("-O", &file)?;
        return Ok(SinkSpec::File(file));
    }
    Ok(if args.json {
        SinkSpec::Discard
    } else {
        SinkSpec::Stdout
    })
}

/// curl's -O: the last segment of the path, which must be a plain file name.
pub fn remote_name(path: &str) -> Result<PathBuf, ConnectError> {
    let name = path
        .split(['?', '#'])
        .next()
        .unwrap_or_default()
        .rsplit('/')
        .next()
        .unwrap_or_default();
    if name.is_empty() || name == "." || name == ".." || name.contains('\\') {
        return Err(usage(&format!("-O: {path:?} has no file name to save to")));
    }
    Ok(Path::new(name).to_path_buf())
}

/// `name: value` -> (name, value).
pub fn parse_header(text: &str) -> Result<(String, String), ConnectError> {
    match text.split_once(':') {
        Some((name, value)) if !name.trim().is_empty() && !name.contains(char::is_whitespace) => {
            Ok((name.trim().to_owned(), value.trim().to_owned()))
        }
        _ => Err(usage(&format!("-H {text:?}: expected 'name: value'"))),
    }
}

/// A string, or `@FILE`'s bytes.
fn read_data(data: &str) -> Result<Vec<u8>, ConnectError> {
    match data.strip_prefix('@') {
        Some(path) => std::fs::read(path).map_err(|e| usage(&format!("{path}: {e}"))),
        None => Ok(data.as_bytes().to_vec()),
    }
}

fn usage(message: &str) -> ConnectError {
    ConnectError::Usage(message.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_names_are_plain_file_names() {
        assert_eq!(remote_name("/files/big.bin").unwrap(), Path::new("big.bin"));
        assert_eq!(remote_name("/a/b.txt?x=1").unwrap(), Path::new("b.txt"));
        assert!(remote_name("/").is_err());
        assert!(remote_name("/dir/..").is_err());
    }

    #[test]
    fn headers_need_a_name_and_a_colon() {
        assert_eq!(
            parse_header("Accept: text/plain").unwrap(),
            ("Accept".into(), "text/plain".into())
        );
        assert!(parse_header("no colon").is_err());
        assert!(parse_header(": empty").is_err());
        assert!(parse_header("bad name: x").is_err());
    }
}
