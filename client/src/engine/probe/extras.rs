//! What a probe attaches to its connection besides the handshake: the
//! saved session it offers and saves, the key log, and the qlog file.

use std::path::PathBuf;

use super::Probe;
use crate::engine::session;

impl Probe {
    /// `--session-file`: offers the ticket saved for this host and port.
    pub(super) fn offer_saved_session(&mut self) {
        let Some(path) = self.settings.session_file.clone() else {
            return;
        };
        match session::load(&path, &self.target.authority()) {
            Ok(Some(bytes)) => match self.conn.set_session(&bytes) {
                Ok(()) => self.session_offered = true,
                Err(error) => log::warn!("{}: session not usable: {error}", path.display()),
            },
            Ok(None) => {}
            Err(error) => log::warn!("{error}; not resuming"),
        }
    }

    /// Saves this connection's ticket, only if its chain was verified and
    /// accepted (a resumed session was, when it was first made). A file
    /// that cannot be written is a write error (exit 23).
    pub(super) fn save_session(&mut self) {
        let Some(path) = &self.settings.session_file else {
            return;
        };
        let verified = match &self.checked {
            Some(checked) => checked.verdict.accepted,
            None => self.conn.is_resumed(),
        };
        let Some(ticket) = self.conn.session().filter(|_| verified) else {
            return;
        };
        if let Err(error) = session::save(path, &self.target.authority(), ticket) {
            self.write_error = Some(format!("--session-file {error}"));
        }
    }

    pub(super) fn attach_keylog(&mut self, keylog: Option<&PathBuf>) {
        use std::os::unix::fs::OpenOptionsExt;
        let Some(path) = keylog else { return };
        // TLS secrets: readable by the owner only (a file that exists keeps its mode).
        match std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)
        {
            Ok(file) => self.conn.set_keylog(Box::new(file)),
            Err(error) => log::warn!("keylog {}: {error}", path.display()),
        }
    }

    /// `--qlog-dir`: quiche's qlog for the whole connection, to a file.
    /// Without one qlog stays off: when it was our HANDSHAKE_DONE detector,
    /// building and serialising its events took about an eighth of a
    /// handshake's client CPU (docs/benchmarks.md).
    pub(super) fn attach_qlog(&mut self, dir: Option<&PathBuf>) {
        let Some(dir) = dir else { return };
        let path = dir.join(format!("quicprobe-{}.sqlog", self.scid_hex));
        let file = match std::fs::File::create(&path) {
            Ok(file) => file,
            Err(error) => {
                log::warn!("qlog {}: {error}", path.display());
                return;
            }
        };
        self.conn.set_qlog_with_level(
            Box::new(file),
            "quicprobe".into(),
            format!(
                "quicprobe connect {}:{}",
                self.target.host, self.target.port
            ),
            quiche::QlogLevel::Base,
        );
    }
}
