//! One client connection of the lab: it announces the handshake and the
//! close it receives, and once the handshake is done runs the application
//! protocol the client negotiated (h3 or hq-interop).

use std::collections::HashMap;
use std::net::SocketAddr;

use super::h3::serve_h3;
use super::hq::serve_hq;
use super::response::PendingBody;
use super::LabEvent;

pub(super) struct LabConnection {
    pub(super) conn: quiche::Connection,
    pub(super) peer: SocketAddr,
    pub(super) app: Option<LabApp>,
    pub(super) announced_established: bool,
    pub(super) announced_close: bool,
}

/// The application protocol a connection negotiated.
pub(super) enum LabApp {
    Http3 {
        // Boxed: an h3 connection is large next to the hq-interop state.
        h3: Box<quiche::h3::Connection>,
        pending: HashMap<u64, PendingBody>,
    },
    HqInterop {
        requests: HashMap<u64, Vec<u8>>,
        pending: HashMap<u64, PendingBody>,
    },
}

impl LabConnection {
    pub(super) fn after_recv(&mut self, on_event: &mut dyn FnMut(LabEvent)) {
        if self.conn.is_established() && !self.announced_established {
            self.announced_established = true;
            let alpn = String::from_utf8_lossy(self.conn.application_proto()).into_owned();
            let event = LabEvent::HandshakeDone {
                peer: self.peer,
                alpn: alpn.clone(),
            };
            log::info!("lab: {event}");
            on_event(event);
            self.app = start_app(&mut self.conn, &alpn);
        }
        self.announce_peer_close(on_event);
        if let Some(app) = self.app.as_mut() {
            app.serve(&mut self.conn, self.peer, on_event);
        }
    }

    pub(super) fn announce_peer_close(&mut self, on_event: &mut dyn FnMut(LabEvent)) {
        if self.announced_close {
            return;
        }
        let Some(error) = self.conn.peer_error() else {
            return;
        };
        self.announced_close = true;
        let event = LabEvent::CloseReceived {
            peer: self.peer,
            is_app: error.is_app,
            error_code: error.error_code,
            reason: String::from_utf8_lossy(&error.reason).into_owned(),
        };
        log::info!("lab: {event}");
        on_event(event);
    }
}

fn start_app(conn: &mut quiche::Connection, alpn: &str) -> Option<LabApp> {
    match alpn {
        "h3" => {
            let config = quiche::h3::Config::new().ok()?;
            let h3 = quiche::h3::Connection::with_transport(conn, &config)
                .map_err(|error| log::warn!("lab: h3 setup: {error}"))
                .ok()?;
            Some(LabApp::Http3 {
                h3: Box::new(h3),
                pending: HashMap::new(),
            })
        }
        "hq-interop" => Some(LabApp::HqInterop {
            requests: HashMap::new(),
            pending: HashMap::new(),
        }),
        _ => None,
    }
}

impl LabApp {
    fn serve(
        &mut self,
        conn: &mut quiche::Connection,
        peer: SocketAddr,
        on_event: &mut dyn FnMut(LabEvent),
    ) {
        match self {
            Self::Http3 { h3, pending } => serve_h3(h3, pending, conn, peer, on_event),
            Self::HqInterop { requests, pending } => {
                serve_hq(requests, pending, conn, peer, on_event)
            }
        }
    }
}
