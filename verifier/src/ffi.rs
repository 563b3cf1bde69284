//! The few BoringSSL calls the `boring` crate does not wrap.
//!
//! Every `unsafe` block of the verifier lives here, each one a single call with
//! the reason it is sound written beside it.

#![allow(unsafe_code)]

use boring::ssl::SslAlert;
use boring::x509::{X509StoreContextRef, X509VerifyError};
use foreign_types::ForeignTypeRef;

/// `X509_PURPOSE_SSL_SERVER`: the leaf must be fit for a TLS server (EKU
/// serverAuth or no EKU at all), and every CA above it must allow that too.
const PURPOSE_SSL_SERVER: libc::c_int = 2;

/// Sets the TLS-server purpose on a store context that `X509StoreContext::init`
/// has initialised. boring exposes no setter for the purpose.
pub(crate) fn set_tls_server_purpose(ctx: &mut X509StoreContextRef) -> bool {
    // SAFETY: `ctx` is a live, initialised X509_STORE_CTX borrowed for the
    // duration of the call; X509_STORE_CTX_get0_param never returns NULL for an
    // initialised context and set_purpose only writes into that param.
    unsafe {
        let param = boring_sys::X509_STORE_CTX_get0_param(ctx.as_ptr());
        boring_sys::X509_VERIFY_PARAM_set_purpose(param, PURPOSE_SSL_SERVER) == 1
    }
}

/// The standard text of an X509 verify error number, exactly as BoringSSL's
/// `X509_verify_cert_error_string` names it.
pub fn verify_error_string(code: i32) -> &'static str {
    if code == 0 {
        return "ok";
    }
    // SAFETY: X509_verify_cert_error_string returns a static string for every
    // number, known or not ("unknown certificate verification error"), so any
    // value is sound here; `from_raw` is only marked unsafe for that reason.
    match unsafe { X509VerifyError::from_raw(code) } {
        Ok(()) => "ok",
        Err(error) => error.error_string(),
    }
}

/// The TLS alert BoringSSL itself would send for an X509 verify error
/// (`SSL_alert_from_verify_result`), e.g. 48 unknown_ca for error 20.
pub fn boringssl_alert_for(code: i32) -> u8 {
    // SAFETY: a pure function of its integer argument.
    let alert = unsafe { boring_sys::SSL_alert_from_verify_result(libc::c_long::from(code)) };
    u8::try_from(alert).unwrap_or(80)
}

/// boring's `SslAlert` has no public constructor from a number: map the
/// alerts a certificate rejection can carry to its constants.
pub(crate) fn ssl_alert(code: u8) -> SslAlert {
    match code {
        40 => SslAlert::HANDSHAKE_FAILURE,
        42 => SslAlert::BAD_CERTIFICATE,
        43 => SslAlert::UNSUPPORTED_CERTIFICATE,
        44 => SslAlert::CERTIFICATE_REVOKED,
        45 => SslAlert::CERTIFICATE_EXPIRED,
        46 => SslAlert::CERTIFICATE_UNKNOWN,
        48 => SslAlert::UNKNOWN_CA,
        49 => SslAlert::ACCESS_DENIED,
        50 => SslAlert::DECODE_ERROR,
        51 => SslAlert::DECRYPT_ERROR,
        111 => SslAlert::CERTIFICATE_UNOBTAINABLE,
        112 => SslAlert::UNRECOGNIZED_NAME,
        _ => SslAlert::INTERNAL_ERROR,
    }
}

/// A fault `X509_verify_cert` reported to the verify callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReportedFault {
    pub code: i32,
    pub depth: u32,
    pub subject: Option<String>,
}

thread_local! {
    /// Faults reported during the current verification on this thread.
    static REPORTED: std::cell::RefCell<Vec<ReportedFault>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// Makes the verification go on past each error, recording every one, so
/// that a chain with several faults can be explained in full. The verdict
/// itself never comes from such a run: a strict client stops at the first.
pub(crate) fn record_every_fault(ctx: &mut X509StoreContextRef) {
    take_reported_faults();
    // SAFETY: `ctx` is a live, initialised X509_STORE_CTX; the callback is a
    // plain function with the signature BoringSSL expects.
    unsafe { boring_sys::X509_STORE_CTX_set_verify_cb(ctx.as_ptr(), Some(record_and_continue)) }
}

/// The faults recorded since `record_every_fault`.
pub(crate) fn take_reported_faults() -> Vec<ReportedFault> {
    REPORTED.with(|r| {
        r.try_borrow_mut()
            .map(|mut r| std::mem::take(&mut *r))
            .unwrap_or_default()
    })
}

unsafe extern "C" fn record_and_continue(
    ok: libc::c_int,
    ctx: *mut boring_sys::X509_STORE_CTX,
) -> libc::c_int {
    if ok == 0 && !ctx.is_null() {
        // SAFETY: BoringSSL passes the context being verified, alive for the
        // duration of the call; it is only read.
        let ctx = unsafe { X509StoreContextRef::from_ptr(ctx) };
        let fault = ReportedFault {
            code: ctx.verify_result().err().map_or(0, |e| e.as_raw()),
            depth: ctx.error_depth(),
            subject: ctx
                .current_cert()
                .map(|c| crate::names::one_line(c.subject_name())),
        };
        REPORTED.with(|r| {
            if let Ok(mut r) = r.try_borrow_mut() {
                r.push(fault);
            }
        });
    }
    1
}

/// The length of the SCT list the server sent in the TLS handshake
/// (`signed_certificate_timestamp` extension), if any. boring wraps no getter.
pub(crate) fn signed_cert_timestamp_list_len(ssl: &boring::ssl::SslRef) -> Option<usize> {
    let mut data: *const u8 = std::ptr::null();
    let mut len: usize = 0;
    // SAFETY: `ssl` is a live SSL borrowed for the call; BoringSSL writes a
    // pointer into its own memory and a length through the two out-pointers,
    // which point at our locals, and we read only the length.
    unsafe { boring_sys::SSL_get0_signed_cert_timestamp_list(ssl.as_ptr(), &mut data, &mut len) };
    (len > 0).then_some(len)
}

/// Gives a server context the SCT list to staple to its certificate
/// (`SSL_CTX_set_signed_cert_timestamp_list`), for the lab. boring wraps no
/// setter. False when BoringSSL finds the list malformed.
pub fn set_signed_cert_timestamp_list(
    builder: &mut boring::ssl::SslContextBuilder,
    list: &[u8],
) -> bool {
    // SAFETY: the builder owns a live SSL_CTX; BoringSSL copies `list` (a
    // pointer and length into our slice, valid for the call) before returning.
    unsafe {
        boring_sys::SSL_CTX_set_signed_cert_timestamp_list(
            builder.as_ptr(),
            list.as_ptr(),
            list.len(),
        ) == 1
    }
}
