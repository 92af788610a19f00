//! The ejabberd peer end to end: otr-relay for a few seconds at two pairs against Sotto and
//! ejabberd, through the real path (package check, generated configuration, `ejabberdctl
//! foreground`, in-band registration, SASL PLAIN, binding, presence, the same load generator).
//!
//! Not skipped when ejabberd is missing: the scenario installs it with `apt-get install -y
//! ejabberd` (root, Debian), and if that fails the test fails with apt-get's reason. There is no
//! honest XMPP test without an XMPP server; the scanner's own tests are unit tests in
//! `src/xmpp.rs`. Takes about 10 s: Sotto's set-up and 3 s of load, ejabberd's start-up (about
//! 2 s), registration and 3 s of load, and its stop (about 1 s).
//!
//! Sotto runs in this test's process (see `smoke.rs` for why); ejabberd is always its own
//! process, so its figures are measured apart.

mod common;

use common::in_process_server;
use std::time::Duration;

use sotto_bench::scenario::otr_relay::{self, OtrRelaySpec};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otr_relay_delivers_every_frame_through_ejabberd_too() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (server, sotto) = in_process_server(&dir).await;
    let spec = OtrRelaySpec {
        pairs: 2,
        payload_bytes: 256,
        window: 4,
        rate: None,
        duration: Duration::from_secs(3),
        frames_per_side: 4,
        sotto,
        forwarder: None,
        ejabberd: Some(sotto_bench::ejabberd::Modules::Minimal),
        progress: false,
    };
    let report = match otr_relay::run(&spec).await {
        Ok(report) => report,
        Err(error) => panic!("otr-relay with ejabberd failed: {error}"),
    };
    server.shutdown().await;

    let ejabberd = report
        .results
        .iter()
        .find(|r| r.target == "ejabberd")
        .expect("an ejabberd result");
    assert!(ejabberd.delivered > 0, "nothing delivered through ejabberd");
    assert_eq!(
        ejabberd.sent, ejabberd.delivered,
        "every sent message arrives"
    );
    assert!(
        ejabberd.failed_connections.is_empty(),
        "{:?}",
        ejabberd.failed_connections
    );
    assert!(
        ejabberd.text_events.is_empty(),
        "only messages arrive during the run: {:?}",
        ejabberd.text_events
    );
    assert!(ejabberd.cost.measured_apart);
    assert!(ejabberd.cost.cpu_secs > 0.0, "beam.smp's CPU was read");
    assert!(ejabberd.cost.peak_rss_kib > 10 * 1024, "beam.smp's memory");
    let latency = &ejabberd.latency;
    assert!(latency.p50_us <= latency.p99_us && latency.p99_us <= latency.max_us);

    let setup = report.ejabberd.as_ref().expect("ejabberd's set-up");
    assert!(setup.version.starts_with("23."), "{}", setup.version);
    // A message is the base64 text of a frame, so larger than the frame.
    assert!(setup.stanza_bytes.0 > report.frame_bytes.1);
    assert!(report.ejabberd_ratios.is_some());
    assert!(
        beam_processes_of_this_test().is_empty(),
        "ejabberd is stopped after the run: {:?}",
        beam_processes_of_this_test()
    );
    let markdown = report.markdown();
    assert!(markdown.contains("| ejabberd |") && markdown.contains("Sotto / ejabberd"));
    eprintln!(
        "ejabberd {}: install check {:.2} s, start-up {:.1} s, users {:.2} s",
        setup.version, setup.install_check_secs, setup.start_up_secs, setup.register_and_login_secs
    );
}

/// `beam.smp` processes whose node name this process gave (`sotto_bench_<pid>_<n>@localhost`).
fn beam_processes_of_this_test() -> Vec<String> {
    let prefix = format!("sotto_bench_{}_", std::process::id());
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            let cmdline = std::fs::read(path.join("cmdline")).ok()?;
            let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            (text.contains("beam.smp") && text.contains(&prefix)).then_some(text)
        })
        .collect()
}
