//! The system's roots, found the way OpenSSL-based tools find them (issue
//! 19): `SSL_CERT_FILE`, `SSL_CERT_DIR` (several hashed directories), both
//! together, else the distributions' places from one table, searched here
//! under a temporary root laid out as Debian and as Fedora lay theirs; and
//! one clear error when there are none. Nothing here reads this machine's
//! roots or environment: each test gives the search its root and variables.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use boring::x509::X509;
use quicprobe_verifier::{
    read_certificates, InputError, RootsEnv, RootsOrigin, SystemRoots, TrustSource, TrustStore,
};
use tempfile::TempDir;

fn certs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../certs")
}

/// Distinct roots of the scenarios, to put in bundles and directories.
fn distinct_roots(count: usize) -> Vec<X509> {
    let files = [
        certs_dir().join("lab-root.pem"),
        certs_dir().join("no-cacert-private-root/system-bundle.pem"),
        certs_dir().join("untrusted-root/roots.pem"),
        certs_dir().join("rekeyed-root/roots.pem"),
        certs_dir().join("leaf-from-private-root/roots.pem"),
    ];
    let mut roots: Vec<X509> = Vec::new();
    for file in files {
        for root in read_certificates(&file).expect("scenario roots") {
            let der = root.to_der().expect("DER");
            if !roots.iter().any(|r| r.to_der().expect("DER") == der) {
                roots.push(root);
            }
        }
    }
    assert!(roots.len() >= count, "only {} distinct roots", roots.len());
    roots.truncate(count);
    roots
}

fn pem_of(roots: &[X509]) -> Vec<u8> {
    roots
        .iter()
        .flat_map(|root| root.to_pem().expect("PEM"))
        .collect()
}

fn write_bundle(path: &Path, roots: &[X509]) {
    std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
    std::fs::write(path, pem_of(roots)).expect("write bundle");
}

/// A hashed directory as `openssl rehash` makes it. quicprobe reads every
/// file with a hashed name, so the names only need the right shape.
fn write_hashed_dir(dir: &Path, roots: &[X509]) {
    std::fs::create_dir_all(dir).expect("mkdir");
    for (index, root) in roots.iter().enumerate() {
        let name = format!("{:08x}.0", 0x1a2b_3c00 + index);
        std::fs::write(dir.join(name), root.to_pem().expect("PEM")).expect("write root");
    }
}

fn env(cert_file: Option<&Path>, cert_dir: Option<&[&Path]>) -> RootsEnv {
    RootsEnv {
        cert_file: cert_file.map(Path::to_owned),
        cert_dir: cert_dir.map(|dirs| std::env::join_paths(dirs).expect("no ':' in the paths")),
    }
}

/// A root that holds nothing: the distributions' places are all absent.
fn empty_root() -> TempDir {
    tempfile::tempdir().expect("temporary root")
}

fn holds_all(store: &TrustStore, roots: &[X509]) -> bool {
    roots.iter().all(|root| store.holds(root))
}

#[test]
fn ssl_cert_file_alone_is_the_system_store() {
    let temp = empty_root();
    let bundle = temp.path().join("my-bundle.pem");
    let roots = distinct_roots(2);
    write_bundle(&bundle, &roots);
    // A Debian layout under the root too: the variable wins, nothing else is read.
    write_bundle(
        &temp.path().join("etc/ssl/certs/ca-certificates.crt"),
        &distinct_roots(4)[2..],
    );

    let store = TrustStore::system_in(temp.path(), &env(Some(&bundle), None)).expect("roots");
    assert_eq!(store.source(), TrustSource::System);
    assert_eq!(store.sources(), std::slice::from_ref(&bundle));
    assert_eq!(store.roots().len(), 2);
    assert!(holds_all(&store, &roots));
    let summary = store.summary();
    assert_eq!(summary.paths, vec![bundle.clone()]);
    assert_eq!(summary.certificates, 2);
    assert_eq!(
        summary.describe(),
        format!("system bundle {} (2 certificates)", bundle.display())
    );
}

#[test]
fn ssl_cert_dir_with_two_directories_loads_both() {
    let temp = empty_root();
    let roots = distinct_roots(3);
    let first = temp.path().join("first");
    let second = temp.path().join("second");
    write_hashed_dir(&first, &roots[..1]);
    write_hashed_dir(&second, &roots[1..]);

    let env = env(None, Some(&[&first, &second]));
    let found = SystemRoots::search(temp.path(), &env).expect("found");
    assert_eq!(found.origin, RootsOrigin::Environment);
    assert!(found.files.is_empty());
    assert_eq!(found.dirs, vec![first.clone(), second.clone()]);

    let store = found.load().expect("roots");
    assert_eq!(store.sources(), [first.clone(), second.clone()]);
    assert_eq!(store.roots().len(), 3);
    assert!(holds_all(&store, &roots));
    assert_eq!(
        store.summary().describe(),
        format!(
            "system directory {}, system directory {} (3 certificates)",
            first.display(),
            second.display()
        )
    );
}

#[test]
fn ssl_cert_file_and_ssl_cert_dir_together_are_both_loaded() {
    let temp = empty_root();
    let roots = distinct_roots(3);
    let bundle = temp.path().join("bundle.pem");
    let dir = temp.path().join("hashed");
    write_bundle(&bundle, &roots[..2]);
    // The directory repeats a root of the bundle, as Debian's does: counted once.
    write_hashed_dir(&dir, &roots[1..]);

    let store =
        TrustStore::system_in(temp.path(), &env(Some(&bundle), Some(&[&dir]))).expect("roots");
    assert_eq!(store.sources(), [bundle.clone(), dir.clone()]);
    assert_eq!(store.roots().len(), 3);
    assert!(holds_all(&store, &roots));
}

#[test]
fn empty_entries_of_ssl_cert_dir_are_ignored() {
    let temp = empty_root();
    let dir = temp.path().join("hashed");
    write_hashed_dir(&dir, &distinct_roots(1));
    let mut list = OsString::from(":");
    list.push(dir.as_os_str());
    list.push("::");
    let env = RootsEnv {
        cert_file: None,
        cert_dir: Some(list),
    };
    let found = SystemRoots::search(temp.path(), &env).expect("found");
    assert_eq!(found.dirs, vec![dir]);
}

#[test]
fn debian_layout_under_a_root_is_found() {
    let temp = empty_root();
    let roots = distinct_roots(3);
    let certs = temp.path().join("etc/ssl/certs");
    write_bundle(&certs.join("ca-certificates.crt"), &roots);
    // update-ca-certificates makes the hashed links from the same roots.
    write_hashed_dir(&certs, &roots);

    let found = SystemRoots::search(temp.path(), &RootsEnv::default()).expect("found");
    assert_eq!(found.origin, RootsOrigin::Distribution);
    assert_eq!(found.files, vec![certs.join("ca-certificates.crt")]);
    assert_eq!(found.dirs, vec![certs.clone()]);
    let store = found.load().expect("roots");
    assert_eq!(
        store.roots().len(),
        3,
        "the bundle and its hashed links are the same roots"
    );
    assert_eq!(
        store.summary().describe(),
        format!(
            "system bundle {}, system directory {} (3 certificates)",
            certs.join("ca-certificates.crt").display(),
            certs.display()
        )
    );
}

#[test]
fn fedora_layout_under_a_root_is_found() {
    let temp = empty_root();
    let roots = distinct_roots(2);
    // update-ca-trust's extracted bundle, and the legacy name beside it;
    // /etc/pki/tls/certs holds bundles only, no hashed names.
    let extracted = temp
        .path()
        .join("etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem");
    write_bundle(&extracted, &roots);
    write_bundle(&temp.path().join("etc/pki/tls/certs/ca-bundle.crt"), &roots);

    let found = SystemRoots::search(temp.path(), &RootsEnv::default()).expect("found");
    assert_eq!(found.files, vec![extracted.clone()]);
    assert!(found.dirs.is_empty(), "{:?}", found.dirs);
    let store = found.load().expect("roots");
    assert_eq!(store.sources(), [extracted]);
    assert!(holds_all(&store, &roots));
}

#[test]
fn no_roots_anywhere_is_one_error_naming_what_was_tried_and_what_to_do() {
    let temp = empty_root();
    let error = TrustStore::system_in(temp.path(), &RootsEnv::default()).expect_err("no roots");
    assert!(
        matches!(error, InputError::NoSystemRoots { .. }),
        "{error:?}"
    );
    let text = error.to_string();
    assert!(!text.contains('\n'), "one line: {text}");
    for tried in [
        "SSL_CERT_FILE and SSL_CERT_DIR are unset".to_owned(),
        temp.path().join("etc/ssl").display().to_string(),
        temp.path().join("etc/pki/tls").display().to_string(),
        "ca-certificates.crt".to_owned(),
        "tls-ca-bundle.pem".to_owned(),
    ] {
        assert!(text.contains(&tried), "{tried} missing from: {text}");
    }
    for way in ["--cacert", "--capath", "SSL_CERT_FILE=", "SSL_CERT_DIR="] {
        assert!(text.contains(way), "{way} missing from: {text}");
    }
}

#[test]
fn a_variable_naming_nothing_is_an_error_naming_the_variable() {
    let temp = empty_root();
    let missing = temp.path().join("missing.pem");
    let error =
        TrustStore::system_in(temp.path(), &env(Some(&missing), None)).expect_err("missing");
    assert_eq!(
        error.to_string(),
        format!("SSL_CERT_FILE names {}: no such file", missing.display())
    );

    let not_hashed = temp.path().join("plain");
    std::fs::create_dir_all(&not_hashed).expect("mkdir");
    let error = TrustStore::system_in(temp.path(), &env(None, Some(&[&not_hashed])))
        .expect_err("no hashed names");
    let text = error.to_string();
    assert!(text.starts_with("SSL_CERT_DIR names "), "{text}");
    assert!(text.contains("openssl rehash"), "{text}");
}
