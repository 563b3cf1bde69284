//! Why quicprobe pauses the handshake instead of letting BoringSSL send the
//! alert: on the alert path quiche turns the alert into the right code
//! (0x100 + alert) but sends no reason phrase, so the server never learns
//! why. This test pins down what the server receives either way.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use boring::ssl::{SslContextBuilder, SslMethod};
use quicprobe::engine::event_loop::{self, Job};
use quicprobe::engine::probe::ProbeSettings;
use quicprobe::engine::target::Target;
use quicprobe::lab::{self, LabSpec};
use quicprobe_verifier::{install, OnReject, Policy, TrustStore};

fn close_seen_by_server(on_reject: OnReject) -> (bool, u64, String) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../certs/leaf-only");
    let lab = lab::spawn(LabSpec::for_scenario(&dir, "127.0.0.1:0".parse().unwrap())).unwrap();
    let trust = Arc::new(TrustStore::from_pem_files(&[dir.join("roots.pem")]).unwrap());
    let mut builder = SslContextBuilder::new(SslMethod::tls()).unwrap();
    let mut policy = Policy::new(trust);
    policy.on_reject = on_reject;
    let slot = install(&mut builder, policy);
    let mut config =
        quiche::Config::with_boring_ssl_ctx_builder(quiche::PROTOCOL_VERSION, builder).unwrap();
    config.set_application_protos(&[b"h3"]).unwrap();
    config.set_max_idle_timeout(5_000);
    let settings = ProbeSettings::plain(
        vec!["h3".into()],
        Duration::from_secs(5),
        Duration::from_secs(30),
    );
    let job = Job::new(
        Target::parse(&format!("localhost:{}", lab.addr().port())).unwrap(),
        lab.addr(),
    );
    event_loop::run(vec![job], 1, &mut config, &slot, &settings).unwrap();
    let close = lab
        .wait_for_close(Duration::from_secs(5))
        .expect("the lab receives a close");
    (close.is_app, close.error_code, close.reason)
}

#[test]
fn pausing_lets_quicprobe_send_0x12a_with_the_verdict_as_reason() {
    assert_eq!(
        close_seen_by_server(OnReject::Pause),
        (
            false,
            0x12a,
            "unable to get local issuer certificate".into()
        )
    );
}

#[test]
fn boringssl_alert_path_through_quiche_loses_the_reason() {
    assert_eq!(
        close_seen_by_server(OnReject::SendAlert),
        (false, 0x12a, String::new()),
        "the alert's code, and no reason phrase"
    );
}
