//! Human output: the chain as a tree, the verdict in OpenSSL's words, the
//! diagnosis, and which client families would accept the chain.

use std::fmt::Write;

use quicprobe_verifier::{Analysis, CertificateSummary, ClientFamily};

/// The whole report for one analysed chain.
pub fn analysis(analysis: &Analysis) -> String {
    let mut out = String::new();
    chain_tree(&mut out, analysis);
    flight_lines(&mut out, analysis);
    trust_store_line(&mut out, analysis);
    verdict_lines(&mut out, analysis);
    diagnosis_lines(&mut out, analysis);
    corrected_chain_lines(&mut out, analysis);
    alternatives_lines(&mut out, analysis);
    families_lines(&mut out, analysis);
    out
}

/// The Handshake flight's size, and a warning when quiche cannot take it.
fn flight_lines(out: &mut String, analysis: &Analysis) {
    let flight = &analysis.handshake_flight;
    let _ = writeln!(out, "{}", flight.describe());
    if let Some(warning) = flight.warning() {
        let _ = writeln!(out, "  ! {warning}");
    }
}

/// `Trust store: --cacert roots.pem (3 certificates)`: in every verdict,
/// accepted or not.
pub fn trust_store_line(out: &mut String, analysis: &Analysis) {
    let _ = writeln!(
        out,
        "Trust store: {}",
        analysis.diagnosis.trust_store.describe()
    );
}

/// The chain the server should send, numbered, when it must change.
fn corrected_chain_lines(out: &mut String, analysis: &Analysis) {
    let corrected = &analysis.diagnosis.corrected_chain;
    if corrected.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "Corrected chain (what the server should send, leaf first, no root):"
    );
    for (number, entry) in corrected.iter().enumerate() {
        let _ = writeln!(
            out,
            "  {}. {} ({})",
            number + 1,
            entry.subject,
            quicprobe_verifier::entry_note(entry)
        );
    }
}

/// The other causes that fit the evidence, and how to tell them apart; an
/// alternative's fix only when the main fix does not already give it.
fn alternatives_lines(out: &mut String, analysis: &Analysis) {
    let diagnosis = &analysis.diagnosis;
    if diagnosis.alternatives.is_empty() {
        return;
    }
    let _ = writeln!(out, "Not certain: other causes fit the same evidence:");
    for alternative in &diagnosis.alternatives {
        let _ = writeln!(out, "  - {}: {}", alternative.kind, alternative.cause);
        let already_said = diagnosis
            .fix
            .to_lowercase()
            .contains(&alternative.fix.to_lowercase());
        if !already_said {
            let _ = writeln!(out, "    Fix: {}", alternative.fix);
        }
    }
    let mut tells: Vec<&str> = diagnosis
        .alternatives
        .iter()
        .map(|a| a.tell_apart.as_str())
        .collect();
    tells.dedup();
    for tell in tells {
        let _ = writeln!(out, "  To tell: {tell}");
    }
}

/// The chain as sent, as a tree, with its warnings.
pub fn chain_tree(out: &mut String, analysis: &Analysis) {
    let count = analysis.chain.len();
    let _ = writeln!(
        out,
        "Certificate chain as sent: {count} certificate{}, {} bytes of DER",
        if count == 1 { "" } else { "s" },
        analysis.total_der_bytes
    );
    for cert in &analysis.chain {
        certificate_node(out, cert, cert.depth + 1 == count);
    }
    for warning in &analysis.diagnosis.warnings {
        let _ = writeln!(out, "  ! {warning}");
    }
}

fn certificate_node(out: &mut String, cert: &CertificateSummary, last: bool) {
    let (branch, stem) = if last {
        ("└─", "   ")
    } else {
        ("├─", "│  ")
    };
    let _ = writeln!(out, " {branch} {} s:{}", cert.depth, cert.subject);
    let mut detail = |line: String| {
        let _ = writeln!(out, " {stem}   {line}");
    };
    detail(format!("i:{}", cert.issuer));
    detail(format!(
        "{}, {}, serial {}{}",
        key_label(cert),
        cert.signature_algorithm,
        cert.serial,
        if cert.is_ca { ", CA" } else { "" }
    ));
    detail(format!("valid {} .. {}", cert.not_before, cert.not_after));
    if !cert.san.is_empty() {
        detail(format!("SAN {}", cert.san.join(", ")));
    }
    for url in &cert.aia_ca_issuers {
        detail(format!("AIA caIssuers {url}"));
    }
    for url in &cert.ocsp {
        detail(format!("AIA OCSP {url}"));
    }
    detail(format!("sha256 {}", cert.sha256));
}

/// "EC P-256", "RSA 4096": the names people search for.
fn key_label(cert: &CertificateSummary) -> String {
    match cert.curve.as_deref() {
        Some("prime256v1") => "EC P-256".into(),
        Some("secp384r1") => "EC P-384".into(),
        Some("secp521r1") => "EC P-521".into(),
        Some(curve) => format!("EC {curve}"),
        None => format!("{} {}", cert.key_type, cert.key_bits),
    }
}

fn verdict_lines(out: &mut String, analysis: &Analysis) {
    let verdict = &analysis.verdict;
    let name = verdict
        .peer_name
        .as_ref()
        .map_or_else(|| "(no name checked)".to_owned(), |n| n.to_string());
    if verdict.accepted {
        let _ = writeln!(out, "Verdict: ACCEPTED for {name} (verify return:0, ok)");
        return;
    }
    let depth = verdict
        .depth
        .map_or_else(|| "?".to_owned(), |d| d.to_string());
    let _ = writeln!(
        out,
        "Verdict: REJECTED for {name}: verify error:num={}:{} at depth {depth}",
        verdict.x509_error(),
        verdict.x509_error_string()
    );
    if let Some(subject) = &verdict.certificate {
        let _ = writeln!(out, "  depth={depth} {subject}");
    }
}

fn diagnosis_lines(out: &mut String, analysis: &Analysis) {
    let diagnosis = &analysis.diagnosis;
    let certainty = if diagnosis.certain { "" } else { " (likely)" };
    let _ = writeln!(
        out,
        "Fault: {}{certainty}; evidence: {}",
        diagnosis.fault.kind(),
        diagnosis.evidence
    );
    let _ = writeln!(out, "Cause: {}", diagnosis.cause);
    let _ = writeln!(out, "Fix:   {}", diagnosis.fix);
    if !analysis.other_faults.is_empty() {
        let _ = writeln!(
            out,
            "Also reported (strict clients stop at the first fault; some follow from it):"
        );
    }
    for fault in &analysis.other_faults {
        let _ = writeln!(
            out,
            "  verify error:num={}:{} at depth {}{}",
            fault.error.code(),
            fault.error.text(),
            fault.depth,
            fault
                .certificate
                .as_deref()
                .map_or_else(String::new, |c| format!(" ({c})"))
        );
    }
}

fn families_lines(out: &mut String, analysis: &Analysis) {
    let (accept, reject): (Vec<ClientFamily>, Vec<ClientFamily>) = ClientFamily::ALL
        .into_iter()
        .partition(|family| analysis.accepted_by.get(family.key()).copied() == Some(true));
    let labels = |families: &[ClientFamily]| {
        if families.is_empty() {
            "none".to_owned()
        } else {
            families
                .iter()
                .map(|f| f.label())
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    let _ = writeln!(out, "Clients that would accept it: {}", labels(&accept));
    let _ = writeln!(out, "Clients that would reject it: {}", labels(&reject));
    if !analysis.verdict.accepted && accept.iter().any(|f| f.fetches_aia()) {
        let _ = writeln!(
            out,
            "  (AIA-fetching clients accept only if the caIssuers URL serves the missing \
             certificate; --aia-fetch tries it)"
        );
    }
}
