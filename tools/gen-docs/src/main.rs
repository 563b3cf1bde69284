//! `quicprobe-gen-docs OUT_DIR`: the man pages (`OUT_DIR/man/quicprobe.1`,
//! one `quicprobe-COMMAND.1` per subcommand) and the bash, zsh and fish
//! completions (`OUT_DIR/completions/`) of quicprobe, made from the same clap
//! definitions the binary parses with, so they cannot drift from it.
//! scripts/package runs it before cargo-deb packs what it wrote.
//!
//! A separate binary, so that quicprobe itself carries neither generator.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::CommandFactory;
use clap_complete::Shell;
use quicprobe::cli::Cli;

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let (Some(out), None) = (args.next(), args.next()) else {
        eprintln!("usage: quicprobe-gen-docs OUT_DIR");
        return ExitCode::from(2);
    };
    match generate(Path::new(&out)) {
        Ok(written) => {
            for path in written {
                println!("{}", path.display());
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("quicprobe-gen-docs: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Writes every page and completion script under `out`; returns their paths.
fn generate(out: &Path) -> std::io::Result<Vec<PathBuf>> {
    let man = out.join("man");
    let completions = out.join("completions");
    std::fs::create_dir_all(&man)?;
    std::fs::create_dir_all(&completions)?;
    // generate_to writes one page per (sub)command, without clap's `help`
    // pseudo-subcommand, named as git names its pages (quicprobe-connect.1).
    clap_mangen::generate_to(Cli::command(), &man)?;
    let mut written = sorted_files(&man)?;
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        let mut command = Cli::command();
        written.push(clap_complete::generate_to(
            shell,
            &mut command,
            "quicprobe",
            &completions,
        )?);
    }
    Ok(written)
}

fn sorted_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = std::fs::read_dir(dir)?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<std::io::Result<Vec<_>>>()?;
    files.sort();
    Ok(files)
}
