//! The `quicprobe` binary: parse, dispatch, map the result to an exit code.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use quicprobe::cli::{Cli, Command};
use quicprobe::{exit, verify_cmd};

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli);
    let code = match &cli.command {
        Command::Verify(args) => match verify_cmd::run(args) {
            Ok(output) => {
                print_stdout(&output.stdout);
                output.exit_code
            }
            Err(error) => fail_input(&error),
        },
    };
    ExitCode::from(code)
}

/// RUST_LOG wins; otherwise -v/-q pick the level.
fn init_logging(cli: &Cli) {
    let default_level = match (cli.quiet, cli.verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "debug",
        (false, _) => "trace",
    };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(default_level))
        .format_timestamp_millis()
        .init();
}

fn print_stdout(text: &str) {
    // A closed pipe (`quicprobe verify ... | head`) is not an error worth a panic.
    let _ = std::io::stdout().write_all(text.as_bytes());
}

fn fail_input(error: &dyn std::fmt::Display) -> u8 {
    eprintln!("quicprobe: {error}");
    exit::USAGE
}
