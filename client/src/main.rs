//! The `quicprobe` binary: parse, dispatch, map the result to an exit code.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use quicprobe::cli::{Cli, Command};
use quicprobe::commands::{clone, connect, demo, get, impair, scan, serve, verify};
use quicprobe::exit;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return ExitCode::from(usage_error(&error)),
    };
    quicprobe::logging::init(cli.quiet, cli.verbose);
    let code = match &cli.command {
        Command::Connect(args) => {
            finish(connect::run(args, cli.quiet).map(|o| (o.stdout, o.exit_code)))
        }
        Command::Verify(args) => {
            finish(verify::run(args, cli.quiet).map(|o| (o.stdout, o.exit_code)))
        }
        Command::Serve(args) => {
            finish(serve::run(args, cli.quiet).map(|()| (String::new(), exit::OK)))
        }
        Command::Clone(args) => finish(clone::run(args).map(|text| (text, exit::OK))),
        Command::Demo(args) => finish(demo::run(args, cli.quiet).map(|o| (o.stdout, o.exit_code))),
        Command::Get(args) => finish(
            get::run(args, cli.verbose > 0, &mut std::io::stdout().lock())
                .map(|code| (String::new(), code)),
        ),
        Command::Scan(args) => {
            finish(scan::run(args, &mut std::io::stdout().lock()).map(|code| (String::new(), code)))
        }
        Command::Impair(args) => {
            finish(impair::run(args, cli.quiet).map(|()| (String::new(), exit::OK)))
        }
    };
    ExitCode::from(code)
}

/// Prints a command's output, or its one-line error; returns the exit code.
fn finish<E: exit::Failure>(result: Result<(String, u8), E>) -> u8 {
    match result {
        Ok((stdout, code)) => {
            // A closed pipe (`quicprobe ... | head`) is not worth a panic.
            let _ = std::io::stdout().write_all(stdout.as_bytes());
            code
        }
        Err(error) => {
            eprintln!("quicprobe: {error}");
            error.exit_code()
        }
    }
}

/// clap's help and version go out as clap prints them; its errors become
/// one `quicprobe: ...` line (flag and value included), exit 2.
fn usage_error(error: &clap::Error) -> u8 {
    use clap::error::ErrorKind;
    if matches!(
        error.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = error.print();
        // 0 for help and version, 2 for help shown because nothing was asked.
        return u8::try_from(error.exit_code()).unwrap_or(exit::USAGE);
    }
    eprintln!(
        "quicprobe: {} (see --help)",
        quicprobe::cli::one_line(&error.to_string())
    );
    exit::USAGE
}
