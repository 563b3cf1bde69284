//! `quicprobe verify`: a server's chain checked offline, before it is deployed.

use quicprobe_verifier::{read_certificates, verify, Analysis, InputError, PeerName};
use serde_json::json;

use crate::aia::{run_aia_check, AiaReport, FetchSettings};
use crate::cli::trust::load_trust;
use crate::cli::VerifyArgs;
use crate::exit;
use crate::report::render;

/// What `verify` prints and the exit code it ends with.
pub struct VerifyOutput {
    pub stdout: String,
    pub exit_code: u8,
}

impl crate::exit::Failure for InputError {}

/// Runs `quicprobe verify`; `quiet` (`-q`) prints the verdict's one line.
/// An unreadable input is the only error.
pub fn run(args: &VerifyArgs, quiet: bool) -> Result<VerifyOutput, InputError> {
    let chain = read_certificates(&args.chain)?;
    let trust = load_trust(&args.trust)?;
    let name = peer_name(args);
    let verdict = verify(&chain, &trust, name.as_ref());
    let aia = args
        .aia_fetch
        .then(|| {
            let settings = FetchSettings {
                connect_to: args.aia_connect_to,
                ..FetchSettings::default()
            };
            run_aia_check(&chain, &trust, name.as_ref(), &settings)
        })
        .flatten();
    let fetched = aia.as_ref().map(AiaReport::evidence).unwrap_or_default();
    let evidence = crate::report::explain::evidence(&trust, !verdict.accepted, &fetched);
    let analysis = Analysis::explain_with(verdict, &chain, &trust, name.as_ref(), evidence);
    let exit_code = if analysis.verdict.accepted {
        exit::OK
    } else {
        exit::VERIFICATION_FAILED
    };
    let stdout = if args.json {
        json_report(&analysis, aia.as_ref(), exit_code)
    } else if quiet {
        verdict_line(args, &analysis)
    } else {
        let mut text = render::analysis(&analysis);
        if let Some(aia) = &aia {
            text.push_str(&format!("AIA: {}\n", aia.describe()));
        }
        text
    };
    Ok(VerifyOutput { stdout, exit_code })
}

/// `verify -q`: the verdict alone, in the words of `connect -q`'s line.
fn verdict_line(args: &VerifyArgs, analysis: &Analysis) -> String {
    let chain = args.chain.display();
    let verdict = &analysis.verdict;
    if verdict.accepted {
        return format!("quicprobe: ok: {chain}: the chain verifies\n");
    }
    format!(
        "quicprobe: ({}) {chain}: SSL certificate problem: verify error:num={}:{}\n",
        exit::VERIFICATION_FAILED,
        verdict.x509_error(),
        verdict.x509_error_string()
    )
}

fn peer_name(args: &VerifyArgs) -> Option<PeerName> {
    match (&args.host, args.ip) {
        (_, Some(ip)) => Some(PeerName::Ip(ip)),
        (Some(host), None) => Some(PeerName::parse(host)),
        (None, None) => None,
    }
}

/// One JSON object; `verdict`, `chain`, `diagnosis` and `accepted_by` are a contract.
fn json_report(analysis: &Analysis, aia: Option<&AiaReport>, exit_code: u8) -> String {
    let mut value = serde_json::to_value(analysis).unwrap_or_else(|_| json!({}));
    if let Some(object) = value.as_object_mut() {
        object.insert("exit_code".into(), json!(exit_code));
        object.insert("aia".into(), json!(aia));
        object.insert(
            "outcome".into(),
            json!(if analysis.verdict.accepted {
                "accepted"
            } else {
                "rejected"
            }),
        );
    }
    let mut text = serde_json::to_string_pretty(&value).unwrap_or_default();
    text.push('\n');
    text
}
