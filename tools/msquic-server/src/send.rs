//! Stream sends whose memory outlives the call.
//!
//! msquic keeps the QUIC_BUFFER array *and* the bytes it points at until it
//! reports SEND_COMPLETE, so both are boxed together and the box travels as
//! the send's client context; [`release`] frees it on SEND_COMPLETE.

use msquic::{BufferRef, SendFlags, Status, Stream};
use std::ffi::c_void;

/// The memory of one send in flight.
struct PendingSend {
    /// Owns the bytes when they are not `'static` (echoed data).
    _owned: Option<Vec<u8>>,
    buffer: [BufferRef; 1],
}

/// Sends bytes that live for the whole program (the response pattern).
pub fn send_static(stream: &Stream, bytes: &'static [u8], flags: SendFlags) -> Result<(), Status> {
    let pending = PendingSend {
        _owned: None,
        buffer: [BufferRef::from(bytes)],
    };
    start(stream, Box::new(pending), flags)
}

/// Sends bytes the send takes ownership of.
pub fn send_owned(stream: &Stream, bytes: Vec<u8>, flags: SendFlags) -> Result<(), Status> {
    // The Vec's heap block does not move when the Vec is moved into the box,
    // so the BufferRef stays valid.
    let buffer = [BufferRef::from(bytes.as_slice())];
    start(
        stream,
        Box::new(PendingSend {
            _owned: Some(bytes),
            buffer,
        }),
        flags,
    )
}

/// Frees the memory of a completed send.
///
/// # Safety
/// `client_context` must come from a SEND_COMPLETE event of a send made by
/// this module, and each one must be released once.
pub unsafe fn release(client_context: *const c_void) {
    if !client_context.is_null() {
        drop(unsafe { Box::from_raw(client_context as *mut PendingSend) });
    }
}

fn start(stream: &Stream, pending: Box<PendingSend>, flags: SendFlags) -> Result<(), Status> {
    let context = Box::into_raw(pending);
    // SAFETY: the buffer and its bytes live in `context` until `release`.
    let result = unsafe { stream.send(&(*context).buffer, flags, context as *const c_void) };
    if result.is_err() {
        // msquic did not take the send, so no SEND_COMPLETE will free it.
        drop(unsafe { Box::from_raw(context) });
    }
    result
}
