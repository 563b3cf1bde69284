//! The `quicprobe` binary: parse, dispatch, map the result to an exit code.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use quicprobe::cli::{Cli, Command};
use quicprobe::commands::{connect, demo, get, impair, scan, serve, verify};
use quicprobe::exit;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli);
    let code = match &cli.command {
        Command::Connect(args) => {
            finish(connect::run(args, cli.quiet).map(|o| (o.stdout, o.exit_code)))
        }
        Command::Verify(args) => finish(verify::run(args).map(|o| (o.stdout, o.exit_code))),
        Command::Serve(args) => finish(serve::run(args).map(|()| (String::new(), exit::OK))),
        Command::Demo(args) => finish(demo::run(args, cli.quiet).map(|o| (o.stdout, o.exit_code))),
        Command::Get(args) => finish(
            get::run(args, cli.verbose > 0, &mut std::io::stdout().lock())
                .map(|code| (String::new(), code)),
        ),
        Command::Scan(args) => {
            finish(scan::run(args, &mut std::io::stdout().lock()).map(|code| (String::new(), code)))
        }
        Command::Impair(args) => finish(impair::run(args).map(|()| (String::new(), exit::OK))),
    };
    ExitCode::from(code)
}

/// Prints a command's output, or its one-line error; returns the exit code.
fn finish<E: std::fmt::Display>(result: Result<(String, u8), E>) -> u8 {
    match result {
        Ok((stdout, code)) => {
            // A closed pipe (`quicprobe ... | head`) is not worth a panic.
            let _ = std::io::stdout().write_all(stdout.as_bytes());
            code
        }
        Err(error) => {
            eprintln!("quicprobe: {error}");
            exit::USAGE
        }
    }
}

/// RUST_LOG wins; otherwise -v/-q pick the level.
fn init_logging(cli: &Cli) {
    let default_level = match (cli.quiet, cli.verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        (false, _) => "trace",
    };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(default_level))
        .format_timestamp_millis()
        .init();
}
