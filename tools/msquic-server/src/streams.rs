//! What the server does with the streams a client opens.

use crate::hq::{self, Request};
use crate::reaper::Reaper;
use crate::send;
use msquic::{
    BufferRef, ReceiveFlags, SendFlags, Status, StreamEvent, StreamOpenFlags, StreamRef,
    StreamShutdownFlags,
};

/// The application protocol a connection speaks, chosen by its ALPN.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum App {
    /// HTTP/0.9: `GET /N` gets N pattern bytes.
    HqInterop,
    /// Everything else (`sample`, `h3`, ...): bidirectional streams are echoed.
    Echo,
}

impl App {
    pub fn for_alpn(alpn: &[u8]) -> App {
        if alpn == b"hq-interop" {
            App::HqInterop
        } else {
            App::Echo
        }
    }
}

/// At most this many response chunks wait for SEND_COMPLETE at once, which
/// bounds what one response holds in msquic's send buffer.
const MAX_CHUNKS_IN_FLIGHT: usize = 4;

/// Installs the handler for a stream the peer opened.
pub fn attach(stream: &StreamRef, flags: StreamOpenFlags, app: App, reaper: Reaper) {
    if flags.contains(StreamOpenFlags::UNIDIRECTIONAL) {
        // HTTP/3 control and QPACK streams: read and ignore.
        stream.set_callback_handler(move |stream, event| {
            if let StreamEvent::ShutdownComplete { .. } = event {
                reaper.close_stream(&stream);
            }
            Ok(())
        });
        return;
    }
    match app {
        App::HqInterop => {
            let mut state = HqStream::default();
            stream
                .set_callback_handler(move |stream, event| state.on_event(stream, event, &reaper));
        }
        App::Echo => {
            stream.set_callback_handler(move |stream, event| on_echo_event(stream, event, &reaper));
        }
    }
}

/// One hq-interop request and its response.
#[derive(Default)]
struct HqStream {
    /// Request bytes received so far (at most `hq::MAX_REQUEST` + a little).
    request: Vec<u8>,
    /// Set once the request is answered, well-formed or not.
    answered: bool,
    /// Body size asked for.
    size: u64,
    /// Body bytes handed to msquic so far.
    queued: u64,
    /// Sends not yet SEND_COMPLETE.
    in_flight: usize,
    /// The stream was aborted or a send failed: queue nothing more.
    stopped: bool,
}

impl HqStream {
    fn on_event(
        &mut self,
        stream: StreamRef,
        event: StreamEvent,
        reaper: &Reaper,
    ) -> Result<(), Status> {
        match event {
            StreamEvent::Receive { buffers, flags, .. } => {
                self.on_request_bytes(&stream, buffers, flags.contains(ReceiveFlags::FIN))
            }
            // A FIN may arrive without data.
            StreamEvent::PeerSendShutdown => self.on_request_bytes(&stream, &[], true),
            StreamEvent::SendComplete {
                cancelled,
                client_context,
            } => {
                // SAFETY: every send on this stream was made by `send`.
                unsafe { send::release(client_context) };
                self.in_flight = self.in_flight.saturating_sub(1);
                self.stopped |= cancelled;
                self.queue_body(&stream);
            }
            StreamEvent::PeerReceiveAborted { .. } => {
                // STOP_SENDING: the client wants no more of the body.
                self.stopped = true;
                let _ = stream.shutdown(StreamShutdownFlags::ABORT_SEND, 0);
            }
            StreamEvent::ShutdownComplete { .. } => reaper.close_stream(&stream),
            _ => {}
        }
        Ok(())
    }

    /// Collects the request line; answers it once it is complete.
    fn on_request_bytes(&mut self, stream: &StreamRef, buffers: &[BufferRef], fin: bool) {
        if self.answered {
            return;
        }
        for buffer in buffers {
            let room = (hq::MAX_REQUEST + 1).saturating_sub(self.request.len());
            let bytes = buffer.as_bytes();
            self.request
                .extend_from_slice(&bytes[..bytes.len().min(room)]);
        }
        match hq::parse_request(&self.request, fin) {
            Request::Incomplete => {}
            Request::Bytes(size) => {
                self.answered = true;
                self.size = size;
                if size == 0 {
                    let _ = stream.shutdown(StreamShutdownFlags::GRACEFUL, 0);
                } else {
                    self.queue_body(stream);
                }
            }
            Request::Invalid => {
                self.answered = true;
                if send::send_static(stream, hq::BAD_REQUEST_BODY, SendFlags::FIN).is_err() {
                    let _ = stream.shutdown(StreamShutdownFlags::ABORT, 0);
                }
            }
        }
    }

    /// Hands msquic the next chunks of the body, keeping a bounded number in
    /// flight; the last chunk carries the FIN.
    fn queue_body(&mut self, stream: &StreamRef) {
        while !self.stopped && self.in_flight < MAX_CHUNKS_IN_FLIGHT && self.queued < self.size {
            let len = (self.size - self.queued).min(hq::CHUNK as u64) as usize;
            let last = self.queued + len as u64 == self.size;
            let flags = if last {
                SendFlags::FIN
            } else {
                SendFlags::NONE
            };
            match send::send_static(stream, hq::pattern_at(self.queued, len), flags) {
                Ok(()) => {
                    self.queued += len as u64;
                    self.in_flight += 1;
                }
                Err(_) => {
                    self.stopped = true;
                    let _ = stream.shutdown(StreamShutdownFlags::ABORT, 0);
                }
            }
        }
    }
}

/// Echo: every byte received is sent back; the client's FIN is answered with ours.
fn on_echo_event(stream: StreamRef, event: StreamEvent, reaper: &Reaper) -> Result<(), Status> {
    match event {
        StreamEvent::Receive { buffers, .. } => {
            let data: Vec<u8> = buffers.iter().flat_map(|b| b.as_bytes()).copied().collect();
            if !data.is_empty() && send::send_owned(&stream, data, SendFlags::NONE).is_err() {
                let _ = stream.shutdown(StreamShutdownFlags::ABORT, 0);
            }
        }
        // GRACEFUL sends the FIN after everything queued before it.
        StreamEvent::PeerSendShutdown => {
            let _ = stream.shutdown(StreamShutdownFlags::GRACEFUL, 0);
        }
        StreamEvent::SendComplete { client_context, .. } => {
            // SAFETY: every send on this stream was made by `send`.
            unsafe { send::release(client_context) };
        }
        StreamEvent::PeerReceiveAborted { .. } => {
            let _ = stream.shutdown(StreamShutdownFlags::ABORT_SEND, 0);
        }
        StreamEvent::ShutdownComplete { .. } => reaper.close_stream(&stream),
        _ => {}
    }
    Ok(())
}
