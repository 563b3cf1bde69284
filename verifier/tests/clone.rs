//! The clone engine (issue 17): every scenario of certs/ cloned with fresh
//! keys gets the same verdict from its cloned roots as the original from
//! its roots, while everything verification reads stays byte for byte the
//! same; chains made here with openssl cover the key types and signature
//! algorithms the scenarios do not (RSA-PSS, RSA with exponent 3, P-384,
//! Ed25519), repeated and multi-valued RDNs, v1 certificates and garbage
//! extensions.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use boring::x509::X509;
use quicprobe_verifier::clone::{
    clone_chain, CloneError, CloneInput, Cloned, Position, Rename, CLONE_MARKER_OID_BYTES,
};
use quicprobe_verifier::{read_certificates, verify, PeerName, TrustStore, Verdict};
use x509_parser::prelude::{FromDer, X509Certificate};

// ---------------------------------------------------------------- helpers

/// A verdict reduced to what a clone must reproduce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Accepted,
    Rejected { code: i32, depth: Option<u32> },
}

fn outcome(verdict: &Verdict) -> Outcome {
    if verdict.accepted {
        Outcome::Accepted
    } else {
        Outcome::Rejected {
            code: verdict.x509_error(),
            depth: verdict.depth,
        }
    }
}

struct Scenario {
    name: String,
    chain: Vec<X509>,
    roots: Vec<X509>,
    missing: Vec<X509>,
    host: String,
}

fn certs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../certs")
}

fn scenarios() -> Vec<Scenario> {
    let mut found: Vec<Scenario> = fs::read_dir(certs_dir())
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|dir| dir.join("expected").is_file())
        .map(|dir| Scenario {
            name: dir.file_name().unwrap().to_string_lossy().into_owned(),
            chain: read_certificates(&dir.join("chain.pem")).unwrap(),
            roots: read_certificates(&dir.join("roots.pem")).unwrap_or_default(),
            missing: read_certificates(&dir.join("missing-issuer.pem")).unwrap_or_default(),
            host: fs::read_to_string(dir.join("host"))
                .unwrap()
                .trim()
                .to_owned(),
        })
        .collect();
    found.sort_by(|a, b| a.name.cmp(&b.name));
    assert!(
        found.len() >= 30,
        "the whole catalogue, found {}",
        found.len()
    );
    found
}

/// Every scenario and its clone (no renames), made once for all the tests
/// that read them: the RSA-4096 chain's keys take seconds to generate.
fn cloned_scenarios() -> &'static [(Scenario, Cloned)] {
    static CLONED: OnceLock<Vec<(Scenario, Cloned)>> = OnceLock::new();
    CLONED.get_or_init(|| {
        scenarios()
            .into_iter()
            .map(|s| {
                let cloned = clone_of(&s.chain, &s.roots, &s.missing, &[]);
                (s, cloned)
            })
            .collect()
    })
}

/// One scenario and its clone, by name.
fn cloned_scenario(name: &str) -> &'static (Scenario, Cloned) {
    cloned_scenarios()
        .iter()
        .find(|(s, _)| s.name == name)
        .unwrap_or_else(|| panic!("scenario {name}"))
}

fn store(certs: &[X509]) -> TrustStore {
    let pem: Vec<u8> = certs.iter().flat_map(|c| c.to_pem().unwrap()).collect();
    let mut builder = TrustStore::builder();
    if !pem.is_empty() {
        builder
            .add_pem_bytes(Path::new("clone-test"), &pem)
            .unwrap();
    }
    builder.build().unwrap()
}

fn verdict(chain: &[X509], roots: &[X509], host: &str) -> Outcome {
    outcome(&verify(chain, &store(roots), Some(&PeerName::parse(host))))
}

fn clone_of(chain: &[X509], anchors: &[X509], missing: &[X509], renames: &[Rename]) -> Cloned {
    clone_chain(&CloneInput {
        chain,
        anchors,
        missing,
        renames,
    })
    .unwrap_or_else(|e| panic!("clone failed: {e}"))
}

fn der(cert: &X509) -> Vec<u8> {
    cert.to_der().unwrap()
}

/// A test-local TLV splitter, independent of the engine's own: (tag, whole
/// TLV) for each element of `input`.
fn tlvs(mut input: &[u8]) -> Vec<(u8, &[u8])> {
    let mut out = Vec::new();
    while !input.is_empty() {
        let tag = input[0];
        let (len, header) = match input[1] {
            n if n < 0x80 => (n as usize, 2),
            n => {
                let count = (n & 0x7f) as usize;
                let len = input[2..2 + count]
                    .iter()
                    .fold(0usize, |acc, &b| (acc << 8) | b as usize);
                (len, 2 + count)
            }
        };
        out.push((tag, &input[..header + len]));
        input = &input[header + len..];
    }
    out
}

fn content(tlv: &[u8]) -> &[u8] {
    let header = if tlv[1] < 0x80 {
        2
    } else {
        2 + (tlv[1] & 0x7f) as usize
    };
    &tlv[header..]
}

/// The parts of a certificate: TBS fields and the outer signature algorithm.
struct Parts {
    tbs_fields: Vec<Vec<u8>>,
    outer_algorithm: Vec<u8>,
}

fn parts(cert: &X509) -> Parts {
    let der = der(cert);
    let outer = tlvs(&der);
    let cert_parts = tlvs(content(outer[0].1));
    Parts {
        tbs_fields: tlvs(content(cert_parts[0].1))
            .into_iter()
            .map(|(_, raw)| raw.to_vec())
            .collect(),
        outer_algorithm: cert_parts[1].1.to_vec(),
    }
}

/// The extensions of a v3 TBS's fields, each as its whole TLV.
fn extensions(fields: &[Vec<u8>]) -> Vec<Vec<u8>> {
    fields
        .iter()
        .find(|f| f[0] == 0xa3)
        .map(|f| {
            let list = tlvs(content(f));
            tlvs(content(list[0].1))
                .into_iter()
                .map(|(_, e)| e.to_vec())
                .collect()
        })
        .unwrap_or_default()
}

fn marker_text(cert: &X509) -> Option<String> {
    let der = der(cert);
    let (_, parsed) = X509Certificate::from_der(&der).unwrap();
    let extension = parsed
        .extensions()
        .iter()
        .find(|e| e.oid.as_bytes() == CLONE_MARKER_OID_BYTES)?;
    assert!(!extension.critical, "the marker must be non-critical");
    // value = UTF8String
    assert_eq!(extension.value[0], 0x0c);
    Some(String::from_utf8(content(extension.value).to_vec()).unwrap())
}

fn fingerprint(cert: &X509) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, &der(cert));
    digest
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Asserts everything but the key, the signature and the marker is the
/// original's, byte for byte.
fn assert_kept(original: &X509, clone: &X509, what: &str) {
    let (o, c) = (parts(original), parts(clone));
    assert_eq!(
        o.outer_algorithm, c.outer_algorithm,
        "{what}: outer signature algorithm"
    );
    let version = usize::from(o.tbs_fields[0][0] == 0xa0);
    let spki = version + 5;
    for (i, (a, b)) in o.tbs_fields.iter().zip(&c.tbs_fields).enumerate() {
        if i != spki && a[0] != 0xa3 {
            assert_eq!(a, b, "{what}: TBS field {i}");
        }
    }
    assert_ne!(o.tbs_fields[spki], c.tbs_fields[spki], "{what}: a new key");
    let (oe, ce) = (extensions(&o.tbs_fields), extensions(&c.tbs_fields));
    if !oe.is_empty() || o.tbs_fields.len() != c.tbs_fields.len() {
        assert_eq!(
            ce.len(),
            oe.len() + 1,
            "{what}: one extension more, the marker"
        );
        assert_eq!(&ce[..oe.len()], &oe[..], "{what}: extensions kept in order");
    }
    let (ok, ck) = (original.public_key().unwrap(), clone.public_key().unwrap());
    assert_eq!(
        (ok.id(), ok.bits()),
        (ck.id(), ck.bits()),
        "{what}: key type and size"
    );
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn read(dir: &Path, file: &str) -> X509 {
    X509::from_pem(&fs::read(dir.join(file)).unwrap()).unwrap()
}

fn write(dir: &Path, file: &str, text: &str) {
    fs::write(dir.join(file), text).unwrap();
}

// ------------------------------------------------------ every scenario

#[test]
fn every_scenario_clone_gets_the_original_verdict() {
    let mut wrong = Vec::new();
    for (s, cloned) in cloned_scenarios() {
        let original = verdict(&s.chain, &s.roots, &s.host);
        let got = verdict(&cloned.chain, &cloned.anchors, &s.host);
        if got != original {
            wrong.push(format!("{}: original {original:?}, clone {got:?}", s.name));
        }
        // With the known missing intermediates supplied, the clone completes
        // as the original does.
        if !s.missing.is_empty() {
            let mut completed = s.chain.clone();
            completed.extend(s.missing.iter().cloned());
            let mut cloned_completed = cloned.chain.clone();
            cloned_completed.extend(cloned.missing.iter().cloned());
            let (o, c) = (
                verdict(&completed, &s.roots, &s.host),
                verdict(&cloned_completed, &cloned.anchors, &s.host),
            );
            if o != c {
                wrong.push(format!("{} + missing: original {o:?}, clone {c:?}", s.name));
            }
        }
    }
    assert!(wrong.is_empty(), "verdicts differ:\n{}", wrong.join("\n"));
}

#[test]
fn every_scenario_clone_keeps_names_serial_validity_and_extensions_and_is_marked() {
    for (s, cloned) in cloned_scenarios() {
        let pairs = s
            .chain
            .iter()
            .zip(&cloned.chain)
            .chain(s.roots.iter().zip(&cloned.anchors))
            .chain(s.missing.iter().zip(&cloned.missing));
        for (i, (original, clone)) in pairs.enumerate() {
            let what = format!("{} #{i}", s.name);
            assert_kept(original, clone, &what);
            assert_eq!(
                marker_text(clone).as_deref(),
                Some(format!("quicprobe clone of sha256:{}", fingerprint(original)).as_str()),
                "{what}: marker"
            );
            assert_eq!(
                clone.subject_name().to_der().unwrap(),
                original.subject_name().to_der().unwrap(),
                "{what}: subject as BoringSSL reads it"
            );
        }
        assert!(cloned.unmarked.is_empty(), "{}: all v3", s.name);
        assert!(
            cloned.chain[0]
                .public_key()
                .unwrap()
                .public_eq(&cloned.leaf_key),
            "{}: the key returned is the cloned leaf's",
            s.name
        );
    }
}

#[test]
fn no_scenario_clone_verifies_against_the_original_roots() {
    for (s, cloned) in cloned_scenarios() {
        let mut everything = cloned.chain.clone();
        everything.extend(cloned.missing.iter().cloned());
        assert!(
            !verify(
                &everything,
                &store(&s.roots),
                Some(&PeerName::parse(&s.host))
            )
            .accepted,
            "{}: a clone verified against the original roots",
            s.name
        );
    }
}

#[test]
fn duplicates_in_the_chain_map_to_one_clone_and_a_root_sent_is_its_anchor() {
    for name in ["duplicate-certificate", "root-included"] {
        let (s, cloned) = cloned_scenario(name);
        let all_originals: Vec<&X509> = s.chain.iter().chain(&s.roots).collect();
        let all_clones: Vec<&X509> = cloned.chain.iter().chain(&cloned.anchors).collect();
        let mut shared = 0;
        for (i, a) in all_originals.iter().enumerate() {
            for (j, b) in all_originals.iter().enumerate().skip(i + 1) {
                let same = der(a) == der(b);
                shared += usize::from(same);
                assert_eq!(
                    same,
                    der(all_clones[i]) == der(all_clones[j]),
                    "{name}: {i} and {j}"
                );
            }
        }
        assert!(shared > 0, "{name} has a certificate twice");
    }
}

#[test]
fn issuers_not_given_stay_missing_and_loops_are_handled() {
    let s = scenarios()
        .into_iter()
        .find(|s| s.name == "leaf-only")
        .unwrap();
    let cloned = clone_of(&s.chain, &s.roots, &[], &[]);
    assert_eq!(cloned.issuer_not_given, vec![Position::Chain(0)]);

    let (_, cloned) = cloned_scenario("hostile-issuer-loop");
    // A and B sign each other; their clones do too.
    assert!(cloned.chain[1]
        .verify(&cloned.chain[2].public_key().unwrap())
        .unwrap());
    assert!(cloned.chain[2]
        .verify(&cloned.chain[1].public_key().unwrap())
        .unwrap());
}

#[test]
fn cross_signed_certificates_sharing_a_key_share_the_new_one() {
    let (s, cloned) = cloned_scenario("cross-signed");
    let originals: Vec<&X509> = s.chain.iter().chain(&s.roots).collect();
    let clones: Vec<&X509> = cloned.chain.iter().chain(&cloned.anchors).collect();
    let mut pairs = 0;
    for i in 0..originals.len() {
        for j in i + 1..originals.len() {
            let (a, b) = (
                originals[i].public_key().unwrap(),
                originals[j].public_key().unwrap(),
            );
            if a.public_eq(&b) && der(originals[i]) != der(originals[j]) {
                pairs += 1;
                assert!(clones[i]
                    .public_key()
                    .unwrap()
                    .public_eq(&clones[j].public_key().unwrap()));
            }
        }
    }
    assert!(pairs > 0, "cross-signed has two certificates with one key");
}

// ---------------------------------------------------------------- renames

const SCENARIO_RENAMES: &[&str] = &[
    "localhost=renamed-host.example",
    "lab.test=lab.example",
    "quicprobe lab=Acme Corp",
];

fn renamed(text: &str, renames: &[Rename]) -> String {
    renames
        .iter()
        .fold(text.to_owned(), |t, r| t.replace(&r.from, &r.to))
}

fn contains_ignoring_case(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

#[test]
fn every_scenario_renamed_keeps_its_verdict_and_leaves_no_old_name() {
    let renames: Vec<Rename> = SCENARIO_RENAMES
        .iter()
        .map(|r| r.parse().unwrap())
        .collect();
    let mut wrong = Vec::new();
    for s in scenarios() {
        let original = verdict(&s.chain, &s.roots, &s.host);
        let cloned = clone_of(&s.chain, &s.roots, &s.missing, &renames);
        let host = renamed(&s.host, &renames);
        let got = verdict(&cloned.chain, &cloned.anchors, &host);
        if got != original {
            wrong.push(format!(
                "{}: original {original:?}, renamed clone {got:?}",
                s.name
            ));
        }
        let every = cloned
            .chain
            .iter()
            .chain(&cloned.anchors)
            .chain(&cloned.missing);
        for (i, clone) in every.enumerate() {
            for rename in &renames {
                if contains_ignoring_case(&der(clone), &rename.from) {
                    wrong.push(format!("{} #{i}: {:?} is still there", s.name, rename.from));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn a_rename_that_matches_nothing_is_reported() {
    let s = scenarios()
        .into_iter()
        .find(|s| s.name == "full-chain")
        .unwrap();
    let renames: Vec<Rename> = ["localhost=x.example", "nowhere.example=y.example"]
        .iter()
        .map(|r| r.parse().unwrap())
        .collect();
    let cloned = clone_of(&s.chain, &s.roots, &s.missing, &renames);
    assert_eq!(cloned.unused_renames, vec![renames[1].clone()]);
}

// ------------------------------------------- chains made here with openssl

const P256: &[&str] = &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"];
const CA: &[&str] = &["-addext", "basicConstraints=critical,CA:TRUE"];

/// `NAME.pem`, self-signed for 30 days, with its key: a new one as `key`
/// says (saved as `NAME.key`), or an existing one (`-key FILE`).
fn self_signed(dir: &Path, name: &str, key: &[&str], subject: &str, extra: &[&str]) {
    let (key_out, pem) = (format!("{name}.key"), format!("{name}.pem"));
    let mut args = vec![
        "req", "-x509", "-out", &pem, "-days", "30", "-subj", subject,
    ];
    args.extend(key);
    if key.first() == Some(&"-newkey") {
        args.extend(["-nodes", "-keyout", &key_out]);
    }
    args.extend(extra);
    openssl(dir, &args);
}

/// A new key `NAME.key` and its request `NAME.csr`.
fn request(dir: &Path, name: &str, key: &[&str], subject: &str) {
    let (key_out, csr) = (format!("{name}.key"), format!("{name}.csr"));
    let mut args = vec![
        "req", "-new", "-nodes", "-keyout", &key_out, "-out", &csr, "-subj", subject,
    ];
    args.extend(key);
    openssl(dir, &args);
}

/// `NAME.pem` from `NAME.csr`, issued by `CA.pem` for 10 days.
fn issue(dir: &Path, name: &str, ca: &str, extra: &[&str]) {
    let (csr, pem) = (format!("{name}.csr"), format!("{name}.pem"));
    let (ca_pem, ca_key) = (format!("{ca}.pem"), format!("{ca}.key"));
    let mut args = vec![
        "x509", "-req", "-in", &csr, "-CA", &ca_pem, "-CAkey", &ca_key, "-days", "10", "-out", &pem,
    ];
    args.extend(extra);
    openssl(dir, &args);
}

/// root (RSA-2048, self-signed with RSA-PSS, salt 32, repeated and
/// multi-valued RDNs) -> intermediate (P-384, signed with RSA-PSS) -> leaf
/// (Ed25519, signed with ECDSA-SHA384, SAN www.example.com, AIA, an unknown
/// extension holding garbage DER).
fn pss_chain(dir: &Path) -> (Vec<X509>, Vec<X509>) {
    write(dir, "ca.ext", "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n");
    write(dir, "leaf.ext", "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:www.example.com,DNS:example.com\n1.3.6.1.4.1.99999.1=DER:ff:ff:00:13:37\nauthorityInfoAccess=caIssuers;URI:http://ca.example.com/i.der\n");
    let pss = [
        "-sha256",
        "-sigopt",
        "rsa_padding_mode:pss",
        "-sigopt",
        "rsa_pss_saltlen:32",
        "-sigopt",
        "rsa_mgf1_md:sha256",
    ];
    let root_subject = "/C=XX/O=Example Org/OU=Unit/OU=Unit/CN=Example Root+serialNumber=42";
    self_signed(
        dir,
        "root",
        &["-newkey", "rsa:2048"],
        root_subject,
        &[CA, &pss].concat(),
    );
    request(
        dir,
        "int",
        &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384"],
        "/O=Example Org/CN=Example Intermediate",
    );
    issue(
        dir,
        "int",
        "root",
        &[&["-set_serial", "7", "-extfile", "ca.ext"][..], &pss].concat(),
    );
    request(dir, "leaf", &["-newkey", "ed25519"], "/CN=www.example.com");
    issue(
        dir,
        "leaf",
        "int",
        &["-set_serial", "0x00ff01", "-sha384", "-extfile", "leaf.ext"],
    );
    (
        vec![read(dir, "leaf.pem"), read(dir, "int.pem")],
        vec![read(dir, "root.pem")],
    )
}

#[test]
fn an_rsa_pss_ecdsa_p384_ed25519_chain_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let (chain, roots) = pss_chain(dir.path());
    assert_eq!(
        verdict(&chain, &roots, "www.example.com"),
        Outcome::Accepted,
        "the original"
    );
    let cloned = clone_of(&chain, &roots, &[], &[]);
    assert_eq!(
        verdict(&cloned.chain, &cloned.anchors, "www.example.com"),
        Outcome::Accepted
    );
    for (o, c) in chain
        .iter()
        .zip(&cloned.chain)
        .chain(roots.iter().zip(&cloned.anchors))
    {
        assert_kept(o, c, "pss chain");
        assert!(marker_text(c).is_some());
    }
    assert_eq!(cloned.leaf_key.id(), boring::pkey::Id::ED25519);
    assert!(!cloned.leaf_is_ca);
    let name = PeerName::parse("www.example.com");
    assert!(
        !verify(&cloned.chain, &store(&roots), Some(&name)).accepted,
        "not by the original root"
    );
}

#[test]
fn repeated_and_multi_valued_rdns_survive_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let (chain, roots) = pss_chain(dir.path());
    let cloned = clone_of(&chain, &roots, &[], &[]);
    let subject = cloned.anchors[0].subject_name().to_der().unwrap();
    assert_eq!(subject, roots[0].subject_name().to_der().unwrap());
    let text = quicprobe_verifier::name_one_line(cloned.anchors[0].subject_name());
    assert_eq!(text.matches("Unit").count(), 2, "{text}");
    // The multi-valued RDN: one SET holding two attributes.
    let rdns = tlvs(content(&subject));
    assert!(
        rdns.iter().any(|(_, rdn)| tlvs(content(rdn)).len() == 2),
        "a multi-valued RDN"
    );
}

#[test]
fn an_rsa_chain_with_exponent_3_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d,
        "leaf.ext",
        "subjectAltName=DNS:rsa.example.com\nextendedKeyUsage=serverAuth\n",
    );
    openssl(
        d,
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-pkeyopt",
            "rsa_keygen_pubexp:3",
            "-out",
            "root.key",
        ],
    );
    self_signed(
        d,
        "root",
        &["-key", "root.key"],
        "/CN=RSA Root",
        &[CA, &["-sha512"]].concat(),
    );
    request(d, "leaf", &["-newkey", "rsa:3072"], "/CN=rsa.example.com");
    issue(d, "leaf", "root", &["-sha256", "-extfile", "leaf.ext"]);
    let (chain, roots) = (vec![read(d, "leaf.pem")], vec![read(d, "root.pem")]);
    assert_eq!(
        verdict(&chain, &roots, "rsa.example.com"),
        Outcome::Accepted
    );
    let cloned = clone_of(&chain, &roots, &[], &[]);
    assert_eq!(
        verdict(&cloned.chain, &cloned.anchors, "rsa.example.com"),
        Outcome::Accepted
    );
    let root_key = cloned.anchors[0].public_key().unwrap().rsa().unwrap();
    assert_eq!(
        (root_key.n().num_bits(), root_key.e().to_vec()),
        (2048, vec![3])
    );
    assert_eq!(cloned.leaf_key.bits(), 3072);
    assert_kept(&chain[0], &cloned.chain[0], "rsa leaf");
}

#[test]
fn a_self_signed_ca_leaf_is_reported_and_its_key_is_the_one_returned() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // What `openssl req -x509` makes by default: a self-signed CA leaf.
    let p521 = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-521"];
    self_signed(
        d,
        "c",
        &p521,
        "/CN=selfie.example",
        &["-addext", "subjectAltName=DNS:selfie.example"],
    );
    let chain = vec![read(d, "c.pem")];
    let cloned = clone_of(&chain, &[], &[], &[]);
    assert!(cloned.leaf_is_ca);
    assert!(cloned.issuer_not_given.is_empty(), "it signs itself");
    assert!(cloned.chain[0].verify(&cloned.leaf_key).unwrap());
    assert_eq!(cloned.leaf_key.bits(), 521);
    assert_eq!(
        verdict(&cloned.chain, &[], "selfie.example"),
        verdict(&chain, &[], "selfie.example")
    );
}

#[test]
fn a_v1_certificate_is_cloned_unmarked_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    self_signed(d, "root", P256, "/CN=V3 Root", CA);
    request(d, "leaf", P256, "/CN=v1.example");
    // No -extfile, and OpenSSL 3.0's x509 -req: a v1 certificate.
    issue(d, "leaf", "root", &[]);
    let chain = vec![read(d, "leaf.pem")];
    let leaf_der = der(&chain[0]);
    let (_, parsed) = X509Certificate::from_der(&leaf_der).unwrap();
    assert_eq!(parsed.version().0, 0, "openssl made a v1 certificate");
    let roots = vec![read(d, "root.pem")];
    let cloned = clone_of(&chain, &roots, &[], &[]);
    assert_eq!(cloned.unmarked, vec![Position::Chain(0)]);
    assert!(marker_text(&cloned.chain[0]).is_none());
    assert!(marker_text(&cloned.anchors[0]).is_some());
    assert_kept(&chain[0], &cloned.chain[0], "v1 leaf");
    assert_eq!(
        verdict(&cloned.chain, &cloned.anchors, "v1.example"),
        verdict(&chain, &roots, "v1.example")
    );
}

#[test]
fn garbage_in_a_known_extension_is_copied_as_opaque_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A SAN whose value is not a GeneralNames, and policies that are not
    // DER: BoringSSL reads the certificate but rejects it when verifying;
    // the clone must do the same.
    write(
        d,
        "leaf.ext",
        "2.5.29.17=DER:30:05:82:ff:00\n2.5.29.32=DER:ff\n",
    );
    self_signed(d, "root", P256, "/CN=Root", CA);
    request(d, "leaf", P256, "/CN=garbage.example");
    issue(d, "leaf", "root", &["-extfile", "leaf.ext"]);
    let leaf = read(d, "leaf.pem");
    let (chain, roots) = (vec![leaf], vec![read(d, "root.pem")]);
    let cloned = clone_of(&chain, &roots, &[], &[]);
    assert_kept(&chain[0], &cloned.chain[0], "garbage leaf");
    assert_eq!(
        verdict(&cloned.chain, &cloned.anchors, "garbage.example"),
        verdict(&chain, &roots, "garbage.example"),
    );
    // A rename walks name extensions; one it cannot parse stays as written.
    let renames: Vec<Rename> = vec!["garbage=tidy".parse().unwrap()];
    let renamed = clone_of(&chain, &roots, &[], &renames);
    let (o, r) = (parts(&chain[0]), parts(&renamed.chain[0]));
    let kept = extensions(&o.tbs_fields);
    assert_eq!(&extensions(&r.tbs_fields)[..kept.len()], &kept[..]);
    assert!(
        quicprobe_verifier::name_one_line(renamed.chain[0].subject_name()).contains("tidy.example")
    );
}

#[test]
fn a_root_with_the_issuer_name_but_another_key_does_not_become_the_issuer() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Two roots with one name and no key identifiers, so that only the
    // signature tells them apart; the leaf is from the first, the store
    // holds the second (a re-keyed root).
    let no_ids = [
        "-addext",
        "subjectKeyIdentifier=none",
        "-addext",
        "authorityKeyIdentifier=none",
    ];
    for root in ["old", "new"] {
        self_signed(d, root, P256, "/CN=Same Name Root", &[CA, &no_ids].concat());
    }
    write(d, "leaf.ext", "subjectAltName=DNS:rekeyed.example\nsubjectKeyIdentifier=none\nauthorityKeyIdentifier=none\n");
    request(d, "leaf", P256, "/CN=rekeyed.example");
    issue(d, "leaf", "old", &["-extfile", "leaf.ext"]);
    let (chain, roots) = (vec![read(d, "leaf.pem")], vec![read(d, "new.pem")]);
    let original = verdict(&chain, &roots, "rekeyed.example");
    assert!(matches!(original, Outcome::Rejected { .. }), "{original:?}");
    let cloned = clone_of(&chain, &roots, &[], &[]);
    assert_eq!(cloned.issuer_not_given, vec![Position::Chain(0)]);
    assert_eq!(
        verdict(&cloned.chain, &cloned.anchors, "rekeyed.example"),
        original
    );
}

#[test]
fn an_empty_chain_is_a_typed_error() {
    let result = clone_chain(&CloneInput {
        chain: &[],
        anchors: &[],
        missing: &[],
        renames: &[],
    });
    assert!(matches!(result, Err(CloneError::EmptyChain)));
}

#[test]
fn an_unsupported_key_type_is_a_typed_error_naming_the_certificate() {
    let dir = tempfile::tempdir().unwrap();
    self_signed(
        dir.path(),
        "c",
        &["-newkey", "ed448"],
        "/CN=ed448.example",
        &[],
    );
    let cert = read(dir.path(), "c.pem");
    let input = CloneInput {
        chain: std::slice::from_ref(&cert),
        anchors: &[],
        missing: &[],
        renames: &[],
    };
    match clone_chain(&input) {
        Err(CloneError::UnsupportedKey {
            position, subject, ..
        }) => {
            assert_eq!(position, Position::Chain(0));
            assert!(subject.contains("ed448.example"), "{subject}");
        }
        other => panic!("expected UnsupportedKey, got {other:?}"),
    }
}

#[test]
fn a_clone_of_a_clone_carries_one_marker_naming_its_direct_original() {
    let s = scenarios()
        .into_iter()
        .find(|s| s.name == "full-chain")
        .unwrap();
    let first = clone_of(&s.chain, &s.roots, &[], &[]);
    let second = clone_of(&first.chain, &first.anchors, &[], &[]);
    let second_der = der(&second.chain[0]);
    let (_, parsed) = X509Certificate::from_der(&second_der).unwrap();
    let markers = parsed
        .extensions()
        .iter()
        .filter(|e| e.oid.as_bytes() == CLONE_MARKER_OID_BYTES)
        .count();
    assert_eq!(markers, 1);
    assert_eq!(
        marker_text(&second.chain[0]).unwrap(),
        format!("quicprobe clone of sha256:{}", fingerprint(&first.chain[0]))
    );
    assert_eq!(
        verdict(&second.chain, &second.anchors, &s.host),
        Outcome::Accepted
    );
}

#[test]
fn corrupted_certificates_give_a_clone_or_a_typed_error_never_a_panic() {
    let (s, _) = cloned_scenario("full-chain");
    let original = der(&s.chain[0]);
    let (mut read_by_boringssl, mut cloned) = (0, 0);
    for at in 0..original.len() {
        for flip in [0x01u8, 0x80] {
            let mut bytes = original.clone();
            bytes[at] ^= flip;
            let Ok(cert) = X509::from_der(&bytes) else {
                continue;
            };
            read_by_boringssl += 1;
            let result = clone_chain(&CloneInput {
                chain: std::slice::from_ref(&cert),
                anchors: &s.roots,
                missing: &[],
                renames: &["localhost=x.example".parse().unwrap()],
            });
            cloned += usize::from(result.is_ok());
        }
    }
    assert!(
        read_by_boringssl > 100 && cloned > 100,
        "{read_by_boringssl} read, {cloned} cloned"
    );
}
