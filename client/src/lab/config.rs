//! The lab's configuration: the QUIC transport settings and the TLS context
//! that presents the chain exactly as the file holds it.

use std::path::Path;

use super::{LabError, LabSpec, MAX_DATAGRAM};

pub(super) fn server_config(spec: &LabSpec) -> Result<quiche::Config, LabError> {
    let mut config =
        quiche::Config::with_boring_ssl_ctx_builder(quiche::PROTOCOL_VERSION, server_tls(spec)?)
            .map_err(LabError::Config)?;
    let alpns: Vec<&[u8]> = spec.alpns.iter().map(|a| a.as_bytes()).collect();
    config
        .set_application_protos(&alpns)
        .map_err(LabError::Config)?;
    config.set_max_idle_timeout(10_000);
    // Resumption and 0-RTT, for clients that test them (--session-file).
    config.enable_early_data();
    config.set_max_recv_udp_payload_size(MAX_DATAGRAM);
    config.set_max_send_udp_payload_size(MAX_DATAGRAM);
    config.set_initial_max_data(100_000_000);
    config.set_initial_max_stream_data_bidi_local(10_000_000);
    config.set_initial_max_stream_data_bidi_remote(10_000_000);
    config.set_initial_max_stream_data_uni(10_000_000);
    config.set_initial_max_streams_bidi(100);
    config.set_initial_max_streams_uni(100);
    config.set_disable_active_migration(true);
    if let Some(params) = &spec.transport_parameters {
        params.apply(&mut config);
    }
    Ok(config)
}

/// The lab's TLS: the chain exactly as the file holds it, its key, and zlib
/// certificate compression when asked for.
fn server_tls(spec: &LabSpec) -> Result<boring::ssl::SslContextBuilder, LabError> {
    use boring::ssl::{SslContextBuilder, SslFiletype, SslMethod};
    let mut builder = SslContextBuilder::new(SslMethod::tls())?;
    load_pem(&spec.chain, |path| builder.set_certificate_chain_file(path))?;
    load_pem(&spec.key, |path| {
        // Parsed first, so that a key that reads but does not match the
        // certificate is told apart from one that does not read at all.
        let pem = std::fs::read(path).unwrap_or_default();
        boring::pkey::PKey::private_key_from_pem(&pem).map(drop)
    })?;
    builder
        .set_private_key_file(&spec.key, SslFiletype::PEM)
        .map_err(|_| LabError::KeyMismatch {
            key: spec.key.clone(),
            chain: spec.chain.clone(),
        })?;
    if spec.compress_certificates {
        builder.add_certificate_compression_algorithm(crate::engine::compression::Zlib)?;
    }
    staple(&mut builder, spec)?;
    if let Some(auth) = &spec.client_auth {
        ask_for_client_certificate(&mut builder, auth)?;
    }
    Ok(builder)
}

/// BoringSSL's own client verification (SSL_VERIFY_PEER, and
/// FAIL_IF_NO_PEER_CERT when required) against the `--client-ca` roots,
/// set on the context before quiche takes it; the roots' names go in the
/// CertificateRequest, as most servers configured with a client CA send them.
fn ask_for_client_certificate(
    builder: &mut boring::ssl::SslContextBuilder,
    auth: &super::ClientAuth,
) -> Result<(), LabError> {
    use boring::ssl::SslVerifyMode;
    use boring::x509::store::X509StoreBuilder;
    let roots = quicprobe_verifier::read_certificates(&auth.ca).map_err(|error| {
        let text = error.to_string();
        let prefix = format!("{}: ", auth.ca.display());
        LabError::Certificate {
            path: auth.ca.clone(),
            reason: text.strip_prefix(&prefix).unwrap_or(&text).to_owned(),
        }
    })?;
    let mut store = X509StoreBuilder::new()?;
    for root in &roots {
        store.add_cert(root.clone())?;
        builder.add_client_ca(root)?;
    }
    builder.set_cert_store(store.build());
    // BoringSSL will not resume a session of a verifying server without one.
    builder.set_session_id_context(b"quicprobe-lab")?;
    let mut mode = SslVerifyMode::PEER;
    if auth.required {
        mode |= SslVerifyMode::FAIL_IF_NO_PEER_CERT;
    }
    builder.set_verify(mode);
    Ok(())
}

/// What the lab staples to its chain, when told to.
fn staple(builder: &mut boring::ssl::SslContextBuilder, spec: &LabSpec) -> Result<(), LabError> {
    if let Some(response) = spec.ocsp_response.clone() {
        builder.set_status_callback(move |ssl| {
            ssl.set_ocsp_status(&response)?;
            Ok(true)
        })?;
    }
    if let Some(list) = &spec.sct_list {
        if !quicprobe_verifier::set_signed_cert_timestamp_list(builder, list) {
            return Err(LabError::MalformedSctList);
        }
    }
    Ok(())
}

/// Runs a BoringSSL loader on a file, turning its bare `ErrorStack` into a sentence.
fn load_pem(
    path: &Path,
    load: impl FnOnce(&Path) -> Result<(), boring::error::ErrorStack>,
) -> Result<(), LabError> {
    if !path.is_file() {
        return Err(LabError::Certificate {
            path: path.to_owned(),
            reason: "no such file".into(),
        });
    }
    load(path).map_err(|_| LabError::Certificate {
        path: path.to_owned(),
        reason: "not a PEM certificate chain or private key BoringSSL reads".into(),
    })
}
