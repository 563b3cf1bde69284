//! The msquic objects of one server: registration, configuration, listener.

use crate::cli::Args;
use crate::connection::{self, status_name};
use crate::reaper::Reaper;
use msquic::{
    Addr, Api, BufferRef, CertificateFile, Configuration, Credential, CredentialConfig,
    CredentialFlags, Listener,
    ListenerEvent, Registration, RegistrationConfig, Settings, Status, StatusCode,
    PARAM_GLOBAL_RETRY_MEMORY_PERCENT,
};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Streams a client may open at once. HTTP/3 clients need 3 unidirectional
/// ones (control, QPACK encoder and decoder); msquic's default is 0.
const PEER_BIDI_STREAMS: u16 = 100;
const PEER_UNIDI_STREAMS: u16 = 3;

/// How long `stop` waits for connections to finish closing.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

pub struct Server {
    // Field order is drop order: listener, then configuration, then registration.
    listener: Listener,
    configuration: Arc<Configuration>,
    registration: Registration,
    reaper: Reaper,
    local_addr: SocketAddr,
}

impl Server {
    /// Starts listening. The error is one line for the user.
    pub fn start(args: &Args) -> Result<Server, String> {
        let registration = Registration::new(
            &RegistrationConfig::new().set_app_name("quicprobe-msquic-server".into()),
        )
        .map_err(|status| format!("cannot start msquic: {}", status_name(&status)))?;
        if args.retry {
            force_retry().map_err(|status| {
                format!("cannot make msquic send Retry: {}", status_name(&status))
            })?;
        }
        let alpn: Vec<BufferRef> = args
            .alpn
            .iter()
            .map(|a| BufferRef::from(a.as_str()))
            .collect();
        let configuration = Arc::new(open_configuration(&registration, &alpn, args)?);
        let reaper = Reaper::start();
        let listener = open_listener(&registration, Arc::clone(&configuration), reaper.clone())?;
        listener
            .start(&alpn, Some(&Addr::from(args.listen)))
            .map_err(|status| listen_error(args.listen, &status))?;
        let local_addr = listener
            .get_local_addr()
            .ok()
            .and_then(|addr| addr.as_socket())
            .unwrap_or(args.listen);
        Ok(Server {
            listener,
            configuration,
            registration,
            reaper,
            local_addr,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting, closes every connection (application error 0) and
    /// releases msquic. Returns false if connections were still closing
    /// after the wait; msquic is then left open, since closing the
    /// registration would block until they are done.
    pub fn stop(self) -> bool {
        self.listener.stop();
        self.registration.shutdown();
        let all_closed = self.reaper.wait_for_no_connections(CLOSE_WAIT);
        drop(self.listener);
        drop(self.configuration);
        if all_closed {
            drop(self.registration);
        } else {
            std::mem::forget(self.registration);
        }
        all_closed
    }
}

/// Makes msquic answer every new connection attempt with Retry: the retry
/// memory limit is the share of memory that handshakes may use before msquic
/// starts sending Retry, and at 0 it is always exceeded.
fn force_retry() -> Result<(), Status> {
    let percent: u16 = 0;
    // SAFETY: the parameter is a u16, passed with its size; null means global.
    unsafe {
        Api::set_param(
            std::ptr::null_mut(),
            PARAM_GLOBAL_RETRY_MEMORY_PERCENT,
            std::mem::size_of::<u16>() as u32,
            &percent as *const u16 as *const std::ffi::c_void,
        )
    }
}

/// The server settings and credential: the chain is sent exactly as in the file.
fn open_configuration(
    registration: &Registration,
    alpn: &[BufferRef],
    args: &Args,
) -> Result<Configuration, String> {
    let settings = Settings::new()
        .set_IdleTimeoutMs(args.idle_ms)
        .set_PeerBidiStreamCount(PEER_BIDI_STREAMS)
        .set_PeerUnidiStreamCount(PEER_UNIDI_STREAMS);
    let configuration = Configuration::open(registration, alpn, Some(&settings))
        .map_err(|status| format!("msquic refused the settings: {}", status_name(&status)))?;
    // Note the order: CertificateFile::new takes the key first.
    let files = CertificateFile::new(
        args.key.display().to_string(),
        args.cert.display().to_string(),
    );
    let credential = client_authentication(
        CredentialConfig::new().set_credential(Credential::CertificateFile(files)),
        args,
    );
    configuration
        .load_credential(&credential)
        .map_err(|status| {
            format!(
                "msquic cannot load certificate {} with key {} ({}); is the key the leaf's?",
                args.cert.display(),
                args.key.display(),
                status_name(&status)
            )
        })?;
    Ok(configuration)
}

/// `--require-client-cert --client-ca FILE`: msquic's flags for client
/// authentication on its OpenSSL (quictls) build. REQUIRE_CLIENT_AUTHENTICATION
/// sets SSL_VERIFY_PEER | FAIL_IF_NO_PEER_CERT; USE_TLS_BUILTIN_CERTIFICATE_VALIDATION
/// makes OpenSSL's X509_verify_cert decide (msquic's platform check on Linux
/// fails every certificate); SET_CA_CERTIFICATE_FILE loads the roots
/// (SSL_CTX_load_verify_locations).
fn client_authentication(credential: CredentialConfig, args: &Args) -> CredentialConfig {
    let Some(ca) = &args.client_ca else {
        return credential;
    };
    credential
        .set_credential_flags(
            CredentialFlags::REQUIRE_CLIENT_AUTHENTICATION
                | CredentialFlags::USE_TLS_BUILTIN_CERTIFICATE_VALIDATION,
        )
        .set_ca_certificate_file(ca.display().to_string())
}

fn open_listener(
    registration: &Registration,
    configuration: Arc<Configuration>,
    reaper: Reaper,
) -> Result<Listener, String> {
    Listener::open(registration, move |_, event| match event {
        ListenerEvent::NewConnection { info, connection } => {
            connection::accept(&connection, &info, &configuration, &reaper)
        }
        ListenerEvent::StopComplete { .. } => Ok(()),
    })
    .map_err(|status| format!("cannot open msquic listener: {}", status_name(&status)))
}

fn listen_error(addr: SocketAddr, status: &Status) -> String {
    if status.try_as_status_code().ok() == Some(StatusCode::QUIC_STATUS_ADDRESS_IN_USE) {
        format!("cannot listen on {addr}: address in use")
    } else {
        format!("cannot listen on {addr}: {}", status_name(status))
    }
}
