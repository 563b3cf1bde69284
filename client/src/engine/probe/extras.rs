//! What a probe attaches to its connection besides the handshake: the
//! saved session it offers and saves, the key log, and the qlog tap that
//! spots HANDSHAKE_DONE (quiche does not expose it) and tees to a file.

use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

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

    /// quiche's qlog, always on: it is where the HANDSHAKE_DONE frame can be
    /// seen (quiche does not expose it), and it is teed to a file on request.
    pub(super) fn attach_qlog(&mut self, dir: Option<&PathBuf>, handshake_done: Arc<AtomicBool>) {
        let file = dir.and_then(|dir| {
            let path = dir.join(format!("quicprobe-{}.sqlog", self.scid_hex));
            std::fs::File::create(&path)
                .map_err(|error| log::warn!("qlog {}: {error}", path.display()))
                .ok()
        });
        self.qlog_to_file = file.is_some();
        let tap = QlogTap {
            file,
            line: Vec::new(),
            handshake_done,
        };
        // Only packet_received events are looked at; the cheaper Core level
        // has them. A file gets quiche's default, Base.
        let level = if self.qlog_to_file {
            quiche::QlogLevel::Base
        } else {
            quiche::QlogLevel::Core
        };
        self.conn.set_qlog_with_level(
            Box::new(tap),
            "quicprobe".into(),
            format!(
                "quicprobe connect {}:{}",
                self.target.host, self.target.port
            ),
            level,
        );
    }

    /// Serialising qlog costs about a third of a download's client CPU, and
    /// once HANDSHAKE_DONE has been seen nobody reads it unless it goes to a
    /// file. Finishing the streamer makes quiche skip the serialisation.
    pub(super) fn stop_qlog_once_confirmed(&mut self) {
        if self.qlog_to_file || !self.handshake_done.load(Ordering::Relaxed) {
            return;
        }
        if let Some(streamer) = self.conn.qlog_streamer() {
            // Err only when already finished, which is what we want.
            let _ = streamer.finish_log();
        }
    }
}

/// Watches quiche's qlog for a received HANDSHAKE_DONE frame, and copies it
/// to a file when one is asked for.
struct QlogTap {
    file: Option<std::fs::File>,
    line: Vec<u8>,
    handshake_done: Arc<AtomicBool>,
}

impl QlogTap {
    /// A longer line is cut; one packet's event is far shorter.
    const MAX_LINE: usize = 64 * 1024;

    fn push_capped(&mut self, bytes: &[u8]) {
        let room = Self::MAX_LINE.saturating_sub(self.line.len());
        self.line.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    /// Looks at one complete line, then clears it (keeping its allocation).
    fn take_line(&mut self) {
        let has = |needle: &[u8]| memchr::memmem::find(&self.line, needle).is_some();
        if has(b"packet_received") && has(b"\"handshake_done\"") {
            self.handshake_done.store(true, Ordering::Relaxed);
        }
        self.line.clear();
    }
}

impl Write for QlogTap {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(file) = self.file.as_mut() {
            file.write_all(buf)?;
        }
        // Once HANDSHAKE_DONE is seen there is nothing left to look for: a
        // download's events pass straight through (they cost 30% of the CPU
        // of a bulk download when every byte was still scanned).
        if self.handshake_done.load(Ordering::Relaxed) {
            self.line.clear();
            return Ok(buf.len());
        }
        let mut rest = buf;
        while let Some(end) = memchr::memchr(b'\n', rest) {
            self.push_capped(&rest[..end]);
            self.take_line();
            rest = &rest[end + 1..];
        }
        self.push_capped(rest);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.file.as_mut() {
            Some(file) => file.flush(),
            None => Ok(()),
        }
    }
}
