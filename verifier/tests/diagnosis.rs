//! The diagnosis of each scenario: the fault named, the warnings raised, and
//! the client families said to accept it.

use std::path::{Path, PathBuf};

use quicprobe_verifier::{
    read_certificates, Analysis, ChainWarning, Fault, PeerName, TrustStore, X509Error,
};

fn analyse(name: &str) -> Analysis {
    let dir: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../certs")
        .join(name);
    let chain = read_certificates(&dir.join("chain.pem")).unwrap();
    let trust = TrustStore::from_pem_files(&[dir.join("roots.pem")]).unwrap();
    let host = std::fs::read_to_string(dir.join("host")).unwrap();
    Analysis::run(&chain, &trust, Some(&PeerName::parse(host.trim())))
}

fn has_warning(analysis: &Analysis, wanted: fn(&ChainWarning) -> bool) -> bool {
    analysis.warnings.iter().any(wanted)
}

#[test]
fn leaf_only_names_the_missing_intermediate_and_where_the_leaf_says_it_lives() {
    let analysis = analyse("leaf-only");
    let Fault::MissingIntermediate {
        missing,
        aia_ca_issuers,
        ..
    } = &analysis.diagnosis.fault
    else {
        panic!("got {:?}", analysis.diagnosis.fault);
    };
    assert_eq!(
        missing,
        "CN=R11 (quicprobe lab), O=Let's Encrypt (quicprobe lab)"
    );
    assert_eq!(aia_ca_issuers.as_deref(), Some("http://r11.i.lencr.test/"));
    assert!(analysis.diagnosis.fix.contains("fullchain.pem"));
}

#[test]
fn leaf_only_is_accepted_only_by_aia_fetching_families() {
    let analysis = analyse("leaf-only");
    for (family, accepted) in &analysis.accepted_by {
        let fetches_aia = matches!(*family, "dotnet" | "windows_cryptoapi" | "chrome");
        assert_eq!(*accepted, fetches_aia, "{family}");
    }
}

/// The path stops at B, a CA the server sent: A may be a root the client
/// lacks or an intermediate the server left out (issue 9: `missing_issuer`).
#[test]
fn missing_intermediate_without_aia_is_an_undecided_missing_issuer_rejected_by_every_family() {
    let analysis = analyse("missing-intermediate");
    assert!(matches!(
        analysis.diagnosis.fault,
        Fault::MissingIssuer {
            aia_ca_issuers: None,
            ..
        }
    ));
    assert!(!analysis.diagnosis.certain);
    assert!(analysis.accepted_by.values().all(|accepted| !accepted));
}

#[test]
fn untrusted_root_and_self_signed_leaf_are_named() {
    assert!(matches!(
        analyse("untrusted-root").diagnosis.fault,
        Fault::UntrustedRoot { .. }
    ));
    assert!(matches!(
        analyse("self-signed-leaf").diagnosis.fault,
        Fault::SelfSignedLeaf { .. }
    ));
}

#[test]
fn expired_certificates_are_named_with_their_depth() {
    assert!(matches!(
        analyse("expired-leaf").diagnosis.fault,
        Fault::Expired { depth: 0, .. }
    ));
    assert!(matches!(
        analyse("expired-intermediate").diagnosis.fault,
        Fault::Expired { depth: 1, .. }
    ));
    assert!(matches!(
        analyse("not-yet-valid-leaf").diagnosis.fault,
        Fault::NotYetValid { depth: 0, .. }
    ));
}

#[test]
fn a_name_only_in_the_cn_is_called_out() {
    let analysis = analyse("cn-without-san");
    assert!(matches!(
        analysis.diagnosis.fault,
        Fault::NameMismatch {
            only_in_common_name: true,
            ..
        }
    ));
    assert!(analysis
        .diagnosis
        .fix
        .contains("subjectAltName DNS:localhost"));
}

#[test]
fn a_plain_hostname_mismatch_lists_the_names_the_certificate_has() {
    let analysis = analyse("hostname-mismatch");
    let Fault::NameMismatch { dialled, san, .. } = &analysis.diagnosis.fault else {
        panic!("got {:?}", analysis.diagnosis.fault);
    };
    assert_eq!(dialled, "localhost");
    assert_eq!(san, &["DNS:other.example.test".to_owned()]);
}

#[test]
fn extension_faults_are_named() {
    assert!(matches!(
        analyse("intermediate-not-ca").diagnosis.fault,
        Fault::NotACa { .. }
    ));
    assert!(matches!(
        analyse("pathlen-exceeded").diagnosis.fault,
        Fault::PathLengthExceeded { .. }
    ));
    assert!(matches!(
        analyse("client-auth-eku").diagnosis.fault,
        Fault::NotForServers { .. }
    ));
    assert!(matches!(
        analyse("name-constraints").diagnosis.fault,
        Fault::NameConstraintViolation { .. }
    ));
}

#[test]
fn chain_shape_problems_are_warnings_that_do_not_change_the_verdict() {
    let wrong_order = analyse("wrong-order");
    assert!(wrong_order.verdict.accepted);
    assert!(has_warning(&wrong_order, |w| matches!(
        w,
        ChainWarning::WrongOrder { at: 1 }
    )));

    let duplicate = analyse("duplicate-certificate");
    assert!(duplicate.verdict.accepted);
    assert!(has_warning(&duplicate, |w| matches!(
        w,
        ChainWarning::Duplicate { at: 2, first_at: 1 }
    )));

    let root = analyse("root-included");
    assert!(root.verdict.accepted);
    assert!(has_warning(&root, |w| matches!(
        w,
        ChainWarning::NeedlessRoot { at: 2 }
    )));

    let extra = analyse("extra-unrelated");
    assert!(extra.verdict.accepted);
    assert!(has_warning(&extra, |w| matches!(
        w,
        ChainWarning::CertifiesNothing { at: 2 }
    )));
}

#[test]
fn a_clean_chain_has_no_warning() {
    let analysis = analyse("full-chain");
    assert!(analysis.verdict.accepted);
    assert!(analysis.warnings.is_empty(), "{:?}", analysis.warnings);
    assert_eq!(analysis.diagnosis.fault, Fault::None);
}

#[test]
fn a_chain_larger_than_the_amplification_budget_is_flagged() {
    let analysis = analyse("rsa4096-chain");
    assert!(analysis.verdict.accepted);
    assert!(analysis.total_der_bytes > 3600);
    assert!(has_warning(&analysis, |w| matches!(
        w,
        ChainWarning::ExceedsAmplificationBudget { .. }
    )));
}

#[test]
fn cross_signed_root_sent_by_the_server_is_not_needed() {
    let analysis = analyse("cross-signed");
    assert!(analysis.verdict.accepted);
    assert_eq!(
        analysis.verdict.built_certificates.len(),
        3,
        "leaf, R, trusted X"
    );
}

fn analyse_as(name: &str, host: &str) -> Analysis {
    let dir: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../certs")
        .join(name);
    let chain = read_certificates(&dir.join("chain.pem")).unwrap();
    let trust = TrustStore::from_pem_files(&[dir.join("roots.pem")]).unwrap();
    Analysis::run(&chain, &trust, Some(&PeerName::parse(host)))
}

#[test]
fn every_fault_is_reported_the_verdicts_first() {
    let analysis = analyse_as("leaf-only", "wrong.example");
    assert_eq!(
        analysis.verdict.x509_error(),
        20,
        "the strict verdict is the first fault"
    );
    let others: Vec<(i32, u32)> = analysis
        .other_faults
        .iter()
        .map(|f| (f.error.code(), f.depth))
        .collect();
    assert_eq!(others, [(62, 0)], "the wrong name is reported too");
}

#[test]
fn other_faults_come_most_useful_first_while_the_verdict_stays_boringssls_first() {
    // BoringSSL finds 24 (the intermediate is no CA), then 26 (the purpose
    // check, at the same certificate), then 62 (the leaf's name): the wrong
    // name says more, so it is listed first.
    let analysis = analyse_as("intermediate-not-ca", "wrong.example");
    assert_eq!(
        (analysis.verdict.error, analysis.verdict.depth),
        (Some(X509Error::InvalidCa), Some(1)),
        "the verdict is BoringSSL's first fault"
    );
    let others: Vec<(X509Error, u32)> = analysis
        .other_faults
        .iter()
        .map(|f| (f.error, f.depth))
        .collect();
    assert_eq!(
        others,
        [
            (X509Error::HostnameMismatch, 0),
            (X509Error::InvalidPurpose, 1)
        ]
    );
}

#[test]
fn fetching_the_missing_intermediate_does_not_help_when_the_name_is_wrong_too() {
    let analysis = analyse_as("leaf-only", "wrong.example");
    assert!(analysis.accepted_by.values().all(|accepted| !accepted));
}

#[test]
fn a_chain_with_one_fault_has_no_other_faults() {
    assert!(analyse("leaf-only").other_faults.is_empty());
    assert!(analyse("expired-leaf").other_faults.is_empty());
    assert!(analyse("full-chain").other_faults.is_empty());
}
