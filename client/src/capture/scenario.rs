//! A failure turned into a scenario folder that reproduces it anywhere,
//! offline (issue 17): the chain as sent, cloned with keys of its own (no
//! key of the real server, no CA key at all), the anchors the verdict
//! depended on, the issuers known to be missing, what the server was seen
//! to do, and a README that is a ready-to-paste bug report.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use boring::x509::X509;
use quicprobe_verifier::clone::{
    clone_chain, rename_text as rename, CloneError, CloneInput, Cloned, Rename,
};
use quicprobe_verifier::{Analysis, PeerName, TrustSource, TrustStore, Verdict};

use crate::lab::scenario::{Seen, SEEN_FILE};
use crate::report::render;

/// Why an existing folder is refused.
pub const OCCUPIED: &str =
    "the folder exists and is not empty (--force writes a scenario's files into it)";

/// What a scenario is made from: a chain as a server sent it, the name it
/// was checked for, and the client's roots.
pub struct Capture<'a> {
    pub chain: &'a [X509],
    /// The name dialled (SNI, and the name the certificate must carry).
    pub host: Option<String>,
    pub trust: &'a TrustStore,
    /// Issuers known to be missing: fetched with --aia-fetch or given with
    /// --extra. They go to `missing-issuer.pem`, never into the chain.
    pub missing: Vec<X509>,
    /// What the server was seen to do, for a live capture.
    pub seen: Option<Seen>,
    /// The live trace, for the README (a capture from a file has none).
    pub trace: Option<String>,
    pub renames: &'a [Rename],
}

/// Why no scenario was written.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("{}: {OCCUPIED}", .0.display())]
    Exists(PathBuf),
    #[error("{}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the chain is empty: nothing to clone")]
    Empty,
    #[error("--save-scenario: the server sent no chain (the connection ended before its Certificate), nothing to capture")]
    NoChain,
    #[error("cloning: {0}")]
    Clone(#[from] CloneError),
    #[error("TLS: {0}")]
    Tls(#[from] boring::error::ErrorStack),
    #[error(
        "the clone does not reproduce the verdict: the original is {original}, the clone {clone} \
         (please report this: the scenario would mislead)"
    )]
    VerdictChanged { original: String, clone: String },
}

impl CaptureError {
    /// Writing failed (curl's 23); anything else is the input's fault.
    pub fn is_write_error(&self) -> bool {
        matches!(self, Self::Exists(_) | Self::Write { .. })
    }
}

/// What was written, for the command to report.
#[derive(Debug)]
pub struct Written {
    pub dir: PathBuf,
    pub expected: String,
    pub files: Vec<&'static str>,
    pub leaf_is_ca: bool,
}

/// Clones the capture and writes its folder. `force` lets an existing,
/// non-empty folder be written into (only the files named here are replaced).
pub fn write_scenario(capture: &Capture, out: &Path, force: bool) -> Result<Written, CaptureError> {
    if capture.chain.is_empty() {
        return Err(CaptureError::Empty);
    }
    prepare_folder(out, force)?;
    let name = capture.host.as_deref().map(PeerName::parse);
    let original = Analysis::run(capture.chain, capture.trust, name.as_ref());
    let anchors = Anchors::of(capture);
    let cloned = clone_chain(&CloneInput {
        chain: capture.chain,
        anchors: &anchors.all,
        missing: &capture.missing,
        renames: capture.renames,
    })?;
    let host = capture.host.as_deref().map(|h| rename(h, capture.renames));
    let (trusted, bundled) = cloned
        .anchors
        .split_at(anchors.trusted.min(cloned.anchors.len()));
    let roots = roots_pem(trusted)?;
    let clone_trust = TrustStore::builder()
        .add_pem_bytes(&out.join("roots.pem"), roots.as_bytes())
        .and_then(|builder| builder.build())
        .ok();
    let clone_name = host.as_deref().map(PeerName::parse);
    let replayed = clone_trust
        .as_ref()
        .map(|trust| Analysis::run(&cloned.chain, trust, clone_name.as_ref()));
    let expected = expected_line(&original.verdict);
    let clone_expected = replayed.as_ref().map_or_else(
        || expected_line_untrusted(&cloned),
        |a| expected_line(&a.verdict),
    );
    if clone_expected != expected {
        return Err(CaptureError::VerdictChanged {
            original: expected,
            clone: clone_expected,
        });
    }
    let mut files = Vec::new();
    let mut write = |file: &'static str, text: &[u8]| -> Result<(), CaptureError> {
        let path = out.join(file);
        std::fs::write(&path, text).map_err(|source| CaptureError::Write { path, source })?;
        files.push(file);
        Ok(())
    };
    write("chain.pem", pem_of(&cloned.chain)?.as_bytes())?;
    write("key.pem", &cloned.leaf_key.private_key_to_pem_pkcs8()?)?;
    write("roots.pem", roots.as_bytes())?;
    if !cloned.missing.is_empty() {
        write("missing-issuer.pem", pem_of(&cloned.missing)?.as_bytes())?;
    }
    // certs/'s way of saying the client used the system bundle, and what
    // the system bundle held that the verdict or the diagnosis looked at.
    if anchors.system_trust {
        write("trust", b"system\n")?;
        write("system-bundle.pem", roots.as_bytes())?;
    } else if !bundled.is_empty() {
        write("system-bundle.pem", pem_of(bundled)?.as_bytes())?;
    }
    write(
        "host",
        format!("{}\n", host.as_deref().unwrap_or("localhost")).as_bytes(),
    )?;
    write("expected", format!("{expected}\n").as_bytes())?;
    write(
        "description",
        format!("{}\n", description(capture, &expected)).as_bytes(),
    )?;
    if let Some(seen) = &capture.seen {
        let json =
            serde_json::to_string_pretty(&renamed_seen(seen, capture.renames)).unwrap_or_default();
        write(SEEN_FILE, format!("{json}\n").as_bytes())?;
    }
    let shown = replayed.as_ref().unwrap_or(&original);
    let readme = readme(capture, out, shown, &expected, &cloned, host.as_deref());
    write("README.md", rename(&readme, capture.renames).as_bytes())?;
    Ok(Written {
        dir: out.to_owned(),
        expected,
        files,
        leaf_is_ca: cloned.leaf_is_ca,
    })
}

/// Whether a scenario may be written to `out`: a new folder, an empty one,
/// or with `force` any (checked before connecting, so nothing is wasted).
pub fn check_folder(out: &Path, force: bool) -> Result<(), CaptureError> {
    let occupied = std::fs::read_dir(out).is_ok_and(|mut entries| entries.next().is_some());
    if (occupied && !force) || out.is_file() {
        return Err(CaptureError::Exists(out.to_owned()));
    }
    Ok(())
}

/// A new folder, or an empty one; an existing one with files only with `force`.
fn prepare_folder(out: &Path, force: bool) -> Result<(), CaptureError> {
    check_folder(out, force)?;
    std::fs::create_dir_all(out).map_err(|source| CaptureError::Write {
        path: out.to_owned(),
        source,
    })
}

/// The anchors to clone: the client's own (first), then those of the system
/// bundle the diagnosis consults when the client chose its own roots.
struct Anchors {
    all: Vec<X509>,
    /// How many of `all` are the client's trust store.
    trusted: usize,
    /// The client's trust store was the system bundle.
    system_trust: bool,
}

impl Anchors {
    fn of(capture: &Capture) -> Self {
        let mut all = anchors_for(capture.chain, &capture.missing, capture.trust.roots());
        let trusted = all.len();
        let system_trust = capture.trust.source() == TrustSource::System;
        if !system_trust {
            if let Some(bundle) = crate::report::explain::system_bundle() {
                let extra = anchors_for(capture.chain, &capture.missing, bundle.roots());
                all.extend(extra.into_iter().filter(|cert| !capture.trust.holds(cert)));
            }
        }
        Self {
            all,
            trusted,
            system_trust,
        }
    }
}

/// The store certificates the verdict can depend on: those whose subject is
/// the issuer or the subject of a certificate sent or known missing (the
/// root a chain verifies against, a trusted intermediate, a root of the same
/// name with another key). The rest of a system bundle is left out.
fn anchors_for(chain: &[X509], missing: &[X509], roots: &[X509]) -> Vec<X509> {
    let names: Vec<Vec<u8>> = chain
        .iter()
        .chain(missing)
        .flat_map(|cert| [cert.issuer_name().to_der(), cert.subject_name().to_der()])
        .filter_map(Result::ok)
        .collect();
    roots
        .iter()
        .filter(|root| {
            root.subject_name()
                .to_der()
                .is_ok_and(|subject| names.contains(&subject))
        })
        .cloned()
        .collect()
}

/// roots.pem: the cloned anchors, or, when none of the client's roots took
/// part, one unrelated throwaway root, so that the folder still names a
/// trust store (an empty one is no PEM file) and nothing in it is trusted.
fn roots_pem(anchors: &[X509]) -> Result<String, CaptureError> {
    if anchors.is_empty() {
        return Ok(format!(
            "# No root of the original trust store took part in the verdict;\n\
             # this one is unrelated to the chain and only names a store.\n{}",
            pem_of(&[unrelated_root()?])?
        ));
    }
    Ok(pem_of(anchors)?)
}

/// A self-signed root that certifies nothing of the chain.
fn unrelated_root() -> Result<X509, boring::error::ErrorStack> {
    use boring::ec::{EcGroup, EcKey};
    use boring::hash::MessageDigest;
    use boring::nid::Nid;
    use boring::pkey::PKey;
    use boring::x509::{X509Builder, X509NameBuilder};
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
    let key = PKey::from_ec_key(EcKey::generate(&group)?)?;
    let mut name = X509NameBuilder::new()?;
    name.append_entry_by_text("CN", "quicprobe clone: unrelated root")?;
    let name = name.build();
    let mut builder = X509Builder::new()?;
    builder.set_version(2)?;
    builder.set_subject_name(&name)?;
    builder.set_issuer_name(&name)?;
    builder.set_pubkey(&key)?;
    builder.set_not_before(boring::asn1::Asn1Time::days_from_now(0)?.as_ref())?;
    builder.set_not_after(boring::asn1::Asn1Time::days_from_now(3650)?.as_ref())?;
    builder.sign(&key, MessageDigest::sha256())?;
    Ok(builder.build())
}

fn pem_of(certs: &[X509]) -> Result<String, boring::error::ErrorStack> {
    let mut out = String::new();
    for cert in certs {
        out.push_str(&String::from_utf8_lossy(&cert.to_pem()?));
    }
    Ok(out)
}

/// certs/'s `expected` line: `accepted`, or `rejected ERROR DEPTH`.
pub fn expected_line(verdict: &Verdict) -> String {
    if verdict.accepted {
        "accepted".into()
    } else {
        format!(
            "rejected {} {}",
            verdict.x509_error(),
            verdict.depth.map_or(-1, i64::from)
        )
    }
}

/// When the cloned roots cannot even be read as a store.
fn expected_line_untrusted(cloned: &Cloned) -> String {
    format!("unverifiable ({} certificates)", cloned.chain.len())
}

fn renamed_seen(seen: &Seen, renames: &[Rename]) -> Seen {
    Seen {
        target: rename(&seen.target, renames),
        ..seen.clone()
    }
}

fn description(capture: &Capture, expected: &str) -> String {
    match &capture.seen {
        Some(seen) => format!(
            "Clone of the chain {} sent on {} ({expected})",
            seen.target, seen.when
        ),
        None => format!("Clone of a saved chain ({expected})"),
    }
}

/// The bug report: what was dialled and when, the verdict, the trace, the
/// chain, the cause and fix, and how to replay it.
fn readme(
    capture: &Capture,
    out: &Path,
    analysis: &Analysis,
    expected: &str,
    cloned: &Cloned,
    host: Option<&str>,
) -> String {
    let mut text = String::from("# quicprobe scenario: a captured handshake failure, cloned\n\n");
    match &capture.seen {
        Some(seen) => {
            let _ = writeln!(
                text,
                "Dialled `{}` ({}) on {}; the server chose ALPN {} and looked like {}.\n",
                seen.target,
                seen.address,
                seen.when,
                seen.alpn.as_deref().unwrap_or("(none)"),
                seen.server_implementation.as_deref().unwrap_or("(unknown)")
            );
        }
        None => text.push_str("Made from a saved chain (`quicprobe clone`).\n\n"),
    }
    let _ = writeln!(text, "**Verdict:** {expected}\n");
    text.push_str(&clone_notes(capture, cloned));
    if let Some(trace) = &capture.trace {
        let _ = writeln!(text, "## Trace\n\n```\n{}```\n", trace);
    }
    let _ = writeln!(
        text,
        "## Chain, cause and fix (of the clone, which is verified the same way)\n\n```\n{}```\n",
        render::analysis(analysis)
    );
    text.push_str(&replay_commands(out, host.unwrap_or("localhost")));
    text
}

/// What a clone is and is not, in the README.
fn clone_notes(capture: &Capture, cloned: &Cloned) -> String {
    let mut text = String::from(
        "Every certificate here is a **clone**: the original's names, serial, dates, \
         extensions, key type and size and signature algorithm, byte for byte, with a new key, \
         signed by the clone of its issuer, and marked with a private non-critical extension \
         (`quicprobe clone of sha256:...`). No CA key was kept: a clone can issue nothing. \
         The only key here is the cloned leaf's (`key.pem`), which the lab needs to serve it.\n\n",
    );
    if cloned.leaf_is_ca {
        text.push_str(
            "The leaf is itself a CA certificate (basicConstraints cA=TRUE, as `openssl req \
             -x509` makes them): `key.pem` could sign certificates that chain to this \
             scenario's roots. Keep it to the lab.\n\n",
        );
    }
    if capture.trust.source() == quicprobe_verifier::TrustSource::System {
        text.push_str(
            "The client used the system bundle: `roots.pem` holds clones of the relevant \
             anchors only (those named by the chain), not the whole bundle.\n\n",
        );
    }
    if !cloned.unmarked.is_empty() {
        let _ = writeln!(
            text,
            "Not marked (version 1 or 2 certificates have no extensions, and changing the \
             version would change what verification reads): {}.\n",
            list(&cloned.unmarked)
        );
    }
    if !cloned.issuer_not_given.is_empty() {
        let _ = writeln!(
            text,
            "Signed by a throwaway key, because their issuer was neither sent nor trusted \
             nor known: {}. What was missing stays missing.\n",
            list(&cloned.issuer_not_given)
        );
    }
    if !cloned.unused_renames.is_empty() {
        let unused: Vec<String> = cloned
            .unused_renames
            .iter()
            .map(|r| format!("{}={}", r.from, r.to))
            .collect();
        let _ = writeln!(
            text,
            "Renames that matched nothing: {}.\n",
            unused.join(", ")
        );
    }
    if !cloned.missing.is_empty() {
        text.push_str(
            "`missing-issuer.pem` holds clones of the issuers the server left out (as fetched \
             over AIA or given with --extra); they stay out of the chain.\n\n",
        );
    }
    text
}

fn replay_commands(out: &Path, host: &str) -> String {
    let dir = out.display();
    format!(
        "## Replay\n\n\
         Serve the clone (answers as the server did, with `seen.json`):\n\n\
         ```\nquicprobe serve --scenario {dir} --listen 127.0.0.1:4433\n```\n\n\
         quicprobe:\n\n\
         ```\nquicprobe connect --cacert {dir}/roots.pem --resolve {host}:4433:127.0.0.1 https://{host}:4433/\n```\n\n\
         aioquic (its example client, or quicprobe's scripts/aioquic/connect.py):\n\n\
         ```\npython examples/http3_client.py --ca-certs {dir}/roots.pem https://{host}:4433/\n\
         python scripts/aioquic/connect.py 127.0.0.1 4433 --server-name {host} --cafile {dir}/roots.pem\n```\n\n\
         The msquic test server (tools/msquic-server):\n\n\
         ```\nquicprobe-msquic-server --listen 127.0.0.1:4433 --cert {dir}/chain.pem --key {dir}/key.pem\n```\n\n\
         With `--aia-serve`, `quicprobe serve` also answers the AIA URLs of the missing issuers: \
         quicprobe reaches them with `--aia-fetch --aia-connect-to ADDR`; other clients need the \
         URL's host in /etc/hosts pointing at 127.0.0.1 and the port it names.\n"
    )
}

fn list(positions: &[quicprobe_verifier::clone::Position]) -> String {
    positions
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
