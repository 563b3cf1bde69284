//! Closes connection and stream handles away from their own callbacks.
//!
//! A handle must be closed after its SHUTDOWN_COMPLETE event, but the msquic
//! crate frees the Rust callback closure when the handle is closed: closing
//! inside SHUTDOWN_COMPLETE would free the closure while it is still running.
//! So the callback only hands the raw handle to this thread, whose close call
//! waits for the callback to return before msquic processes it.
//!
//! The reaper also counts live connections so that shutdown can wait until
//! every connection is closed before closing the registration.

use msquic::ffi::HQUIC;
use msquic::{Connection, ConnectionRef, Stream, StreamRef};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// A handle whose SHUTDOWN_COMPLETE has been delivered.
enum Finished {
    Stream(HQUIC),
    Connection(HQUIC),
}

// SAFETY: msquic handles may be closed from any thread.
unsafe impl Send for Finished {}

/// Where callbacks send finished handles; cheap to clone into every callback.
#[derive(Clone)]
pub struct Reaper {
    finished: Sender<Finished>,
    live_connections: Arc<(Mutex<usize>, Condvar)>,
}

impl Reaper {
    /// Starts the closing thread.
    pub fn start() -> Reaper {
        let (finished, queue) = mpsc::channel::<Finished>();
        let live_connections = Arc::new((Mutex::new(0usize), Condvar::new()));
        let counter = Arc::clone(&live_connections);
        std::thread::Builder::new()
            .name("handle-reaper".into())
            .spawn(move || {
                // Handles arrive in event order: a connection's streams finish
                // before the connection does, so they are closed before it.
                for handle in queue {
                    close(handle, &counter);
                }
            })
            .expect("cannot start the handle reaper thread");
        Reaper {
            finished,
            live_connections,
        }
    }

    /// Counts an accepted connection, which the reaper will close later.
    pub fn connection_accepted(&self) {
        *lock(&self.live_connections.0) += 1;
    }

    /// To be called from the stream's SHUTDOWN_COMPLETE event.
    pub fn close_stream(&self, stream: &StreamRef) {
        // SAFETY: the handle is only passed on; it is closed once, by the reaper.
        let _ = self
            .finished
            .send(Finished::Stream(unsafe { stream.as_raw() }));
    }

    /// To be called from the connection's SHUTDOWN_COMPLETE event.
    pub fn close_connection(&self, connection: &ConnectionRef) {
        // SAFETY: as for streams.
        let _ = self
            .finished
            .send(Finished::Connection(unsafe { connection.as_raw() }));
    }

    /// Waits until every accepted connection is closed; false on timeout.
    pub fn wait_for_no_connections(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let (count, changed) = &*self.live_connections;
        let mut live = lock(count);
        while *live > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            live = changed
                .wait_timeout(live, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        true
    }
}

/// Closes one handle (and frees its callback closure after msquic is done with it).
fn close(handle: Finished, live_connections: &(Mutex<usize>, Condvar)) {
    match handle {
        // SAFETY: the handle came from its own SHUTDOWN_COMPLETE and is
        // closed exactly once; dropping the owned value closes it.
        Finished::Stream(raw) => drop(unsafe { Stream::from_raw(raw) }),
        Finished::Connection(raw) => {
            drop(unsafe { Connection::from_raw(raw) });
            let (count, changed) = live_connections;
            let mut live = lock(count);
            *live = live.saturating_sub(1);
            changed.notify_all();
        }
    }
}

/// A poisoned counter is still a valid counter.
fn lock(count: &Mutex<usize>) -> std::sync::MutexGuard<'_, usize> {
    count.lock().unwrap_or_else(|e| e.into_inner())
}
