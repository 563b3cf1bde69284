//! Build facts for `quicprobe --version`: the quiche and boring versions
//! this binary was linked with (from the workspace's Cargo.lock, the one
//! place that says exactly), and the git commit it was built from ("unknown"
//! outside a git checkout, or without git). Nothing here is needed at run
//! time: the facts become compile-time strings (`cli::version`).

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    println!("cargo:rerun-if-changed=build.rs");

    let lock_path = manifest_dir.join("../Cargo.lock");
    let lock = std::fs::read_to_string(&lock_path).unwrap_or_default();
    watch(&lock_path);
    for (name, variable) in [
        ("quiche", "QUICPROBE_QUICHE_VERSION"),
        ("boring", "QUICPROBE_BORING_VERSION"),
        ("boring-sys", "QUICPROBE_BORING_SYS_VERSION"),
    ] {
        let version = locked_version(&lock, name).unwrap_or_else(|| "unknown".to_owned());
        println!("cargo:rustc-env={variable}={version}");
    }

    let commit = git(&manifest_dir, &["rev-parse", "--short", "HEAD"]);
    println!(
        "cargo:rustc-env=QUICPROBE_GIT_COMMIT={}",
        commit.as_deref().unwrap_or("unknown")
    );
    for file in git_files_naming_the_commit(&manifest_dir) {
        watch(&file);
    }
}

/// The version of package `name` in Cargo.lock's `[[package]]` entries.
fn locked_version(lock: &str, name: &str) -> Option<String> {
    let wanted = format!("name = \"{name}\"");
    let mut lines = lock.lines().map(str::trim);
    while let Some(line) = lines.next() {
        if line == wanted {
            let version = lines.next()?.strip_prefix("version = \"")?;
            return version.strip_suffix('"').map(str::to_owned);
        }
    }
    None
}

/// The files whose change means another commit: HEAD, the branch it points
/// to, and packed-refs (where a branch lives once git packs it). Asked of git
/// itself, since a worktree keeps them apart from the checkout.
fn git_files_naming_the_commit(dir: &Path) -> Vec<PathBuf> {
    let mut wanted = vec!["HEAD".to_owned(), "packed-refs".to_owned()];
    wanted.extend(git(dir, &["symbolic-ref", "-q", "HEAD"]));
    wanted
        .iter()
        .filter_map(|name| git(dir, &["rev-parse", "--git-path", name]))
        .map(|path| dir.join(path))
        .collect()
}

/// Cargo reruns this script when a watched file changes; a file that does not
/// exist would make it rerun on every build, so only existing ones are watched.
fn watch(path: &Path) {
    if path.is_file() {
        println!("cargo:rerun-if-changed={}", path.display());
    }
}

/// One line of git's output, or None when git is missing or fails.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8(output.stdout).ok()?;
    let line = text.trim();
    (!line.is_empty()).then(|| line.to_owned())
}
