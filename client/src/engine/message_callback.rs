//! The one FFI shim of the client: BoringSSL's message callback
//! (`SSL_CTX_set_msg_callback`), which copies every handshake message, in
//! both directions, for the probe to turn into stages. quiche exposes no
//! handshake messages; this is how quicprobe sees them.

#![allow(unsafe_code)]

use std::cell::RefCell;

use super::handshake::TlsMessage;

thread_local! {
    /// Messages seen since the last drain. One event loop drives every
    /// connection of a run on one thread and drains after each call into
    /// quiche, so the messages always belong to the connection just driven.
    static MESSAGES: RefCell<Vec<TlsMessage>> = const { RefCell::new(Vec::new()) };
}

/// Takes the messages seen since the last call.
pub fn drain_messages() -> Vec<TlsMessage> {
    MESSAGES.with(|m| std::mem::take(&mut *m.borrow_mut()))
}

fn record_message(message: TlsMessage) {
    MESSAGES.with(|m| m.borrow_mut().push(message));
}

/// Installs the message callback on a context (`SSL_CTX_set_msg_callback`).
pub fn install_message_callback(builder: &mut boring::ssl::SslContextBuilder) {
    // SAFETY: the builder owns a live SSL_CTX; the callback is a plain
    // function with the signature BoringSSL expects and no user argument.
    unsafe { boring_sys::SSL_CTX_set_msg_callback(builder.as_ptr(), Some(on_tls_message)) }
}

/// BoringSSL's message callback: copies handshake messages for later parsing.
unsafe extern "C" fn on_tls_message(
    is_write: libc::c_int,
    _version: libc::c_int,
    content_type: libc::c_int,
    buf: *const libc::c_void,
    len: usize,
    _ssl: *mut boring_sys::SSL,
    _arg: *mut libc::c_void,
) {
    const HANDSHAKE: libc::c_int = 22;
    if content_type != HANDSHAKE || buf.is_null() || len == 0 {
        return;
    }
    // SAFETY: BoringSSL passes `len` readable bytes at `buf` for the duration
    // of the call; they are copied before it returns.
    let bytes = unsafe { std::slice::from_raw_parts(buf.cast::<u8>(), len) }.to_vec();
    // Nothing may unwind into BoringSSL: a panic here would abort.
    let recorded = std::panic::catch_unwind(|| {
        record_message(TlsMessage {
            outgoing: is_write != 0,
            bytes,
        });
    });
    if recorded.is_err() {
        log::error!("the TLS message callback failed; the message is not traced");
    }
}
