//! The `quicprobe` binary: parse, dispatch, map the result to an exit code.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use quicprobe::cli::{Cli, Command};
use quicprobe::{connect_cmd, demo_cmd, exit, impair_cmd, serve_cmd, verify_cmd};

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli);
    let code = match &cli.command {
        Command::Connect(args) => {
            finish(connect_cmd::run(args, cli.quiet).map(|o| (o.stdout, o.exit_code)))
        }
        Command::Verify(args) => finish(verify_cmd::run(args).map(|o| (o.stdout, o.exit_code))),
        Command::Serve(args) => finish(serve_cmd::run(args).map(|()| (String::new(), exit::OK))),
        Command::Demo(args) => finish(demo_cmd::run(args).map(|o| (o.stdout, o.exit_code))),
        Command::Get(args) => finish(
            quicprobe::get_cmd::run(args, cli.verbose > 0, &mut std::io::stdout().lock())
                .map(|code| (String::new(), code)),
        ),
        Command::Scan(args) => finish(
            quicprobe::scan_cmd::run(args, &mut std::io::stdout().lock())
                .map(|code| (String::new(), code)),
        ),
        Command::Impair(args) => finish(impair_cmd::run(args).map(|()| (String::new(), exit::OK))),
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
