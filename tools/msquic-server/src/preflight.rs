//! Checks made before msquic is started, because msquic's own answers are
//! too vague to act on: its logging is compiled out on Linux, so a bad key
//! or certificate is reported only as QUIC_STATUS_TLS_ERROR, and its listener
//! binds with SO_REUSEPORT, so a second server on a busy port starts silently
//! and shares the port with the first.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;

/// Fails unless `path` is a readable PEM file holding at least one certificate.
pub fn check_certificate_file(path: &Path) -> Result<(), String> {
    let text = read_pem(path, "certificate")?;
    if !text.contains("-----BEGIN CERTIFICATE-----") {
        return Err(format!(
            "certificate file {} contains no PEM certificate (-----BEGIN CERTIFICATE-----)",
            path.display()
        ));
    }
    Ok(())
}

/// Fails unless `path` is a readable PEM file holding a private key (PKCS#8,
/// RSA or EC form).
pub fn check_key_file(path: &Path) -> Result<(), String> {
    let text = read_pem(path, "key")?;
    let has_key = text
        .lines()
        .any(|line| line.starts_with("-----BEGIN ") && line.ends_with("PRIVATE KEY-----"));
    if !has_key {
        return Err(format!(
            "key file {} contains no PEM private key (-----BEGIN ... PRIVATE KEY-----)",
            path.display()
        ));
    }
    if text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
        return Err(format!(
            "key file {} is encrypted; a key without a passphrase is needed",
            path.display()
        ));
    }
    Ok(())
}

/// Fails with "address in use" if another socket already holds `addr`.
///
/// The probe socket is dropped before msquic binds. A race with another
/// process in between is possible but harmless for tests, which pick ports.
pub fn check_port_free(addr: SocketAddr) -> Result<(), String> {
    match UdpSocket::bind(addr) {
        Ok(_probe) => Ok(()),
        Err(err) if err.kind() == io::ErrorKind::AddrInUse => {
            Err(format!("cannot listen on {addr}: address in use"))
        }
        Err(err) => Err(format!("cannot listen on {addr}: {err}")),
    }
}

/// Reads a PEM file as text; `what` names it in the error ("certificate", "key").
fn read_pem(path: &Path, what: &str) -> Result<String, String> {
    let bytes = std::fs::read(path)
        .map_err(|err| format!("cannot read {what} file {}: {err}", path.display()))?;
    String::from_utf8(bytes)
        .map_err(|_| format!("{what} file {} is not PEM text (DER?)", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_file(name: &str, contents: &str) -> std::path::PathBuf {
        let path = std::env::temp_dir().join(format!(
            "msquic-server-preflight-{}-{name}",
            std::process::id()
        ));
        std::fs::write(&path, contents).unwrap();
        path
    }

    #[test]
    fn missing_certificate_file_is_reported_with_its_path() {
        let err = check_certificate_file(Path::new("/nonexistent/chain.pem")).unwrap_err();
        assert!(err.contains("/nonexistent/chain.pem"), "{err}");
    }

    #[test]
    fn key_file_without_private_key_is_rejected() {
        let path = temp_file("nokey.pem", "-----BEGIN CERTIFICATE-----\n");
        assert!(check_key_file(&path).is_err());
    }

    #[test]
    fn ec_private_key_is_accepted() {
        let path = temp_file("ec.pem", "-----BEGIN EC PRIVATE KEY-----\nAA==\n");
        assert!(check_key_file(&path).is_ok());
    }

    #[test]
    fn busy_port_is_reported_as_address_in_use() {
        let holder = UdpSocket::bind("127.0.0.1:0").unwrap();
        let err = check_port_free(holder.local_addr().unwrap()).unwrap_err();
        assert!(err.ends_with("address in use"), "{err}");
    }
}
