//! The seam between the verifier and a TLS stack: a BoringSSL custom verify
//! callback that computes the verdict from the peer's chain, keeps it where
//! the caller can read it, and rejects with the TLS alert the policy chooses.

use std::sync::{Arc, Mutex, OnceLock};

use boring::ex_data::Index;
use boring::ssl::{
    NameType, Ssl, SslAlert, SslContextBuilder, SslRef, SslVerifyError, SslVerifyMode,
};
use boring::x509::X509;

use crate::aioquic::{aioquic_verdict, AioquicVerdict};
use crate::ffi;
use crate::trust::TrustStore;
use crate::verdict::{verify, PeerName, Verdict};
use crate::x509_error::X509Error;

/// Which TLS alert, and which words, a rejection sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AlertStyle {
    /// BoringSSL's verdict and words, with the alerts aioquic sends:
    /// `certificate_expired` (45) when the leaf's dates are wrong,
    /// `bad_certificate` (42) for everything else.
    #[default]
    Strict,
    /// aioquic's own order, alerts and words ("Certificate is no longer
    /// valid", "hostname 'x' doesn't match ..."), so that a server receives
    /// from quicprobe exactly what it receives from aioquic.
    Aioquic,
    /// BoringSSL's own mapping (`SSL_alert_from_verify_result`), e.g.
    /// `unknown_ca` (48) for a missing issuer.
    Boringssl,
}

impl AlertStyle {
    /// The alert and reason phrase for a rejected verdict. `aioquic` is what
    /// aioquic would say about the same chain.
    pub fn rejection(self, verdict: &Verdict, aioquic: &AioquicVerdict) -> (u8, String) {
        let boringssl_words = verdict.x509_error_string().to_owned();
        match (self, &aioquic.alert, &aioquic.reason) {
            (Self::Aioquic, Some(alert), Some(reason)) => (*alert, reason.clone()),
            // aioquic would accept (it checks no EKU): strict words, its alert.
            (Self::Aioquic | Self::Strict, _, _) => {
                let leaf_dates = matches!(
                    verdict.error,
                    Some(X509Error::CertHasExpired | X509Error::CertNotYetValid)
                ) && verdict.depth == Some(0);
                (if leaf_dates { 45 } else { 42 }, boringssl_words)
            }
            (Self::Boringssl, _, _) => (
                ffi::boringssl_alert_for(verdict.x509_error()),
                boringssl_words,
            ),
        }
    }
}

/// How the hook rejects a chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnReject {
    /// Fail the handshake at once: BoringSSL sends the alert itself.
    #[default]
    SendAlert,
    /// Pause the handshake (`SslVerifyError::Retry`) so that the caller can
    /// close the connection itself, for example with a QUIC CONNECTION_CLOSE
    /// carrying 0x100 + alert and the verdict's text as reason phrase. The
    /// handshake never completes.
    Pause,
    /// Let the handshake go on (`--insecure`). The verdict and the alert that
    /// would have been sent are still recorded, for the caller to report loudly.
    Continue,
}

/// What the hook does, besides verifying strictly.
#[derive(Debug, Clone)]
pub struct Policy {
    pub trust: Arc<TrustStore>,
    pub alert_style: AlertStyle,
    pub on_reject: OnReject,
}

impl Policy {
    pub fn new(trust: Arc<TrustStore>) -> Self {
        Self {
            trust,
            alert_style: AlertStyle::default(),
            on_reject: OnReject::default(),
        }
    }
}

/// One verification made during a handshake.
#[derive(Debug, Clone)]
pub struct CheckedChain {
    pub verdict: Verdict,
    /// The certificates as the peer sent them, leaf first.
    pub chain: Vec<X509>,
    /// The TLS alert chosen for a rejection; `None` when accepted.
    pub alert: Option<u8>,
    /// The reason phrase a rejection sends, in the words the style chose.
    pub rejection_reason: String,
    /// What aioquic would have said, worked out for every rejection.
    pub aioquic: Option<AioquicVerdict>,
    /// What the server stapled beside its chain, when the client asked.
    pub stapled: Stapled,
}

/// The OCSP response and SCT list a server may staple to its certificate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Stapled {
    /// Bytes of the stapled OCSP response (`status_request`), if any.
    pub ocsp_response_bytes: Option<usize>,
    /// Bytes of the SCT list (`signed_certificate_timestamp`), if any.
    pub sct_list_bytes: Option<usize>,
}

impl Stapled {
    fn of(ssl: &SslRef) -> Self {
        Self {
            ocsp_response_bytes: ssl.ocsp_status().map(<[u8]>::len),
            sct_list_bytes: ffi::signed_cert_timestamp_list_len(ssl),
        }
    }
}

impl CheckedChain {
    /// The QUIC transport error a rejection maps to: CRYPTO_ERROR 0x100 + alert.
    pub fn quic_error_code(&self) -> Option<u64> {
        self.alert.map(|alert| 0x100 + u64::from(alert))
    }

    /// The reason phrase for the close, e.g. "unable to get local issuer
    /// certificate"; "ok" when accepted.
    pub fn reason(&self) -> &str {
        if self.verdict.accepted {
            self.verdict.x509_error_string()
        } else {
            &self.rejection_reason
        }
    }
}

/// Shared between the hook and its caller: the latest verification made and,
/// for stacks whose `Ssl` the caller cannot reach (quiche), the name to check.
/// Clone it freely; all clones see the same slot.
#[derive(Debug, Clone, Default)]
pub struct VerdictSlot {
    inner: Arc<Mutex<SlotState>>,
}

#[derive(Debug, Default)]
struct SlotState {
    latest: Option<CheckedChain>,
    expected_name: Option<PeerName>,
}

impl VerdictSlot {
    /// Takes the latest verification, leaving the slot empty. A single-threaded
    /// caller that drives one handshake at a time reads it right after the
    /// call that fed the peer's Certificate message.
    pub fn take(&self) -> Option<CheckedChain> {
        self.lock().latest.take()
    }

    /// The name to check when the `Ssl` carries none in its ex-data.
    pub fn expect_name(&self, name: Option<PeerName>) {
        self.lock().expected_name = name;
    }

    fn put(&self, checked: CheckedChain) {
        self.lock().latest = Some(checked);
    }

    fn expected_name(&self) -> Option<PeerName> {
        self.lock().expected_name.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SlotState> {
        // A panic elsewhere while holding the lock leaves plain data behind.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn peer_name_index() -> Index<Ssl, PeerName> {
    static INDEX: OnceLock<Index<Ssl, PeerName>> = OnceLock::new();
    *INDEX.get_or_init(|| Ssl::new_ex_index().expect("BoringSSL ex-data index"))
}

fn checked_chain_index() -> Index<Ssl, CheckedChain> {
    static INDEX: OnceLock<Index<Ssl, CheckedChain>> = OnceLock::new();
    *INDEX.get_or_init(|| Ssl::new_ex_index().expect("BoringSSL ex-data index"))
}

/// Sets the name one connection's leaf must carry. Without it the hook uses
/// the slot's expected name, then the SNI.
pub fn set_peer_name(ssl: &mut SslRef, name: PeerName) {
    ssl.set_ex_data(peer_name_index(), name);
}

/// The verification made on this connection, once the peer's chain arrived.
pub fn checked_chain(ssl: &SslRef) -> Option<&CheckedChain> {
    ssl.ex_data(checked_chain_index())
}

/// Installs the verifier on a BoringSSL context. Install it *last*: anything
/// that calls `SSL_CTX_set_verify` afterwards (quiche's `verify_peer`)
/// replaces the callback.
pub fn install(builder: &mut SslContextBuilder, policy: Policy) -> VerdictSlot {
    let slot = VerdictSlot::default();
    let hook_slot = slot.clone();
    // Force the indices now: the callback must not be the first to ask.
    let _ = (peer_name_index(), checked_chain_index());
    builder.set_custom_verify_callback(SslVerifyMode::PEER, move |ssl| {
        // Nothing may unwind into BoringSSL: a panic here would abort the
        // process. A verification that cannot finish rejects the chain.
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            verify_peer_chain(ssl, &policy, &hook_slot)
        }))
        .unwrap_or_else(|_| {
            log::error!("the certificate verification failed inside BoringSSL's callback");
            Err(SslVerifyError::Invalid(SslAlert::INTERNAL_ERROR))
        })
    });
    slot
}

fn verify_peer_chain(
    ssl: &mut SslRef,
    policy: &Policy,
    slot: &VerdictSlot,
) -> Result<(), SslVerifyError> {
    // A paused handshake calls back again on every resumption: answer from
    // the verification already made.
    if let Some(done) = checked_chain(ssl) {
        return decision(done, policy);
    }
    let chain = peer_chain(ssl);
    let name = name_to_check(ssl, slot);
    let verdict = verify(&chain, &policy.trust, name.as_ref());
    // Only a rejection needs aioquic's words: an accepted chain costs nothing more.
    let aioquic =
        (!verdict.accepted).then(|| aioquic_verdict(&chain, &policy.trust, name.as_ref()));
    let rejection = aioquic
        .as_ref()
        .map(|aioquic| policy.alert_style.rejection(&verdict, aioquic));
    let checked = CheckedChain {
        alert: rejection.as_ref().map(|(alert, _)| *alert),
        rejection_reason: rejection.map(|(_, reason)| reason).unwrap_or_default(),
        verdict,
        chain,
        aioquic,
        stapled: Stapled::of(ssl),
    };
    log::debug!(
        "verify: {} (error {} at depth {:?})",
        if checked.verdict.accepted {
            "accepted"
        } else {
            "rejected"
        },
        checked.verdict.x509_error(),
        checked.verdict.depth
    );
    let result = decision(&checked, policy);
    slot.put(checked.clone());
    ssl.set_ex_data(checked_chain_index(), checked);
    result
}

fn decision(checked: &CheckedChain, policy: &Policy) -> Result<(), SslVerifyError> {
    match (checked.alert, policy.on_reject) {
        (None, _) => Ok(()),
        (Some(_), OnReject::Pause) => Err(SslVerifyError::Retry),
        (Some(_), OnReject::Continue) => Ok(()),
        (Some(alert), OnReject::SendAlert) => Err(SslVerifyError::Invalid(ffi::ssl_alert(alert))),
    }
}

/// The chain as the peer sent it. On a client, BoringSSL's peer chain
/// starts with the leaf.
fn peer_chain(ssl: &SslRef) -> Vec<X509> {
    ssl.peer_cert_chain()
        .map(|stack| stack.iter().map(|cert| cert.to_owned()).collect())
        .unwrap_or_default()
}

fn name_to_check(ssl: &SslRef, slot: &VerdictSlot) -> Option<PeerName> {
    ssl.ex_data(peer_name_index())
        .cloned()
        .or_else(|| slot.expected_name())
        .or_else(|| ssl.servername(NameType::HOST_NAME).map(PeerName::parse))
}
