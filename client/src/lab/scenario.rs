//! Finding a scenario of certs/ by name, and what a captured scenario
//! recorded of the server it was captured from (`seen.json`).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::LabSpec;
use crate::engine::params::ServerParameters;

/// The file of a captured scenario that says what the server was seen to do.
pub const SEEN_FILE: &str = "seen.json";

/// What the server a scenario was captured from was seen to do, so that
/// the lab can answer as it did (`quicprobe serve --scenario DIR`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    /// What was dialled: `host:port`, and the address it resolved to.
    pub target: String,
    pub address: String,
    /// When, RFC 3339 UTC.
    pub when: String,
    /// The ALPN the server chose, if the handshake got that far.
    pub alpn: Option<String>,
    /// The transport parameters it sent.
    pub transport_parameters: Option<ServerParameters>,
    /// Which implementation it seemed to be.
    pub server_implementation: Option<String>,
}

impl Seen {
    /// `seen.json` of a scenario folder, when it has one. A file that is
    /// there but unreadable is an error: a replay must not silently differ.
    pub fn read(dir: &Path) -> Result<Option<Self>, String> {
        let path = dir.join(SEEN_FILE);
        if !path.is_file() {
            return Ok(None);
        }
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| format!("{}: not what quicprobe wrote ({e})", path.display()))
    }
}

/// Where an installed quicprobe keeps its scenarios, relative to the
/// prefix it is installed in: /usr/bin/quicprobe -> /usr/share/quicprobe/certs.
const INSTALLED_CERTS: &str = "share/quicprobe/certs";

/// The certs/ folders quicprobe looks in for a scenario by name, in order:
/// the current directory's, the installed one (beside the executable), and
/// the source checkout's the executable was built in (target/debug/quicprobe
/// -> certs/). Found from where the executable is now, never from where it
/// was built, so a copied or packaged binary finds its own scenarios.
pub fn scenario_dirs() -> Vec<PathBuf> {
    let mut dirs = vec![PathBuf::from("certs")];
    if let Some(exe_dir) = executable_dir() {
        dirs.extend(exe_dir.parent().map(|prefix| prefix.join(INSTALLED_CERTS)));
        dirs.extend(checkout_certs(&exe_dir));
    }
    dirs
}

/// The folder of the running executable, symlinks resolved (so that a link
/// in ~/bin to a checkout's binary still finds the checkout).
fn executable_dir() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let exe = exe.canonicalize().unwrap_or(exe);
    exe.parent().map(Path::to_owned)
}

/// The certs/ of the source checkout that holds `exe_dir`: the nearest
/// folder above it with the workspace's Cargo.toml and certs/scenarios.json.
fn checkout_certs(exe_dir: &Path) -> Option<PathBuf> {
    exe_dir
        .ancestors()
        .find(|dir| dir.join("Cargo.toml").is_file() && dir.join("certs/scenarios.json").is_file())
        .map(|dir| dir.join("certs"))
}

/// A scenario folder: NAME as a path to a folder holding chain.pem, else
/// `NAME` under each of [`scenario_dirs`] in turn.
pub fn find_scenario(name: &str) -> Option<PathBuf> {
    std::iter::once(PathBuf::from(name))
        .chain(scenario_dirs().into_iter().map(|dir| dir.join(name)))
        .find(|dir| dir.join("chain.pem").is_file() && dir.join("key.pem").is_file())
}

/// Where [`find_scenario`] looked, for the error that says it found nothing.
pub fn scenario_dirs_tried() -> String {
    scenario_dirs()
        .iter()
        .map(|dir| dir.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

impl LabSpec {
    /// A captured scenario is served as its server answered: the ALPN it
    /// chose (offered first, the lab's own after it, so that a client
    /// offering only another still gets an answer) and the transport
    /// parameters it sent. Returns the line that says so.
    pub fn answer_as_seen(&mut self, seen: &Seen) -> String {
        if let Some(alpn) = &seen.alpn {
            self.alpns.retain(|a| a != alpn);
            self.alpns.insert(0, alpn.clone());
        }
        self.transport_parameters = seen.transport_parameters;
        format!(
            "replays {} as seen {} ({}): ALPN {}, {} transport parameters",
            seen.target,
            seen.when,
            seen.server_implementation
                .as_deref()
                .unwrap_or("server unknown"),
            seen.alpn.as_deref().unwrap_or("(none chosen)"),
            if seen.transport_parameters.is_some() {
                "its"
            } else {
                "the lab's"
            }
        )
    }
}
