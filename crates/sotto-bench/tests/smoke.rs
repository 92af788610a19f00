//! Smoke: every scenario for a second or two at tiny scale, asserting that real deliveries
//! happened. Figures are not checked (this is not a timed test; benchmarks are run by hand).
//!
//! The Sotto server runs in this test's process (`sotto_server::Server::start` with
//! `Config::for_tests`), not as the release binary the real runs use: a binary found in the
//! target directory could be missing or stale when only this crate's tests are built, while the
//! dev-dependency is always compiled from the current source. Everything else is the real path:
//! the same provisioning through the SDK, the same hand-over to raw sockets, the same load
//! generator, and the forwarder as its own process from this crate's binary.

mod common;

use common::{assert_ordered, in_process_server};
use std::path::PathBuf;
use std::time::Duration;

use sotto_bench::scenario::handshakes::{self, HandshakesSpec};
use sotto_bench::scenario::otr_relay::{self, OtrRelaySpec};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otr_relay_delivers_every_frame_through_sotto_and_the_forwarder() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (server, sotto) = in_process_server(&dir).await;
    let spec = OtrRelaySpec {
        pairs: 2,
        payload_bytes: 256,
        window: 4,
        rate: None,
        duration: Duration::from_millis(1500),
        frames_per_side: 4,
        sotto,
        forwarder: Some(PathBuf::from(env!("CARGO_BIN_EXE_sotto-bench"))),
        ejabberd: None,
        progress: false,
    };
    let report = otr_relay::run(&spec).await.expect("otr-relay runs");
    server.shutdown().await;

    assert_eq!(report.results.len(), 2, "sotto and the forwarder");
    for result in &report.results {
        assert!(result.delivered > 0, "{}: nothing delivered", result.target);
        assert_eq!(
            result.sent, result.delivered,
            "{}: every sent frame arrives",
            result.target
        );
        assert!(
            result.failed_connections.is_empty(),
            "{}: {:?}",
            result.target,
            result.failed_connections
        );
        assert!(
            !result
                .text_events
                .keys()
                .any(|kind| kind.starts_with("otr")),
            "{}: the relay refused or ended something: {:?}",
            result.target,
            result.text_events
        );
        assert_ordered(&result.latency);
    }
    assert!(
        report.results[1].cost.measured_apart,
        "the forwarder is its own process"
    );
    assert!(report.ratios.is_some());
    // An OTR frame of a 256-byte text is larger than the text (header, ratchet key, MAC).
    assert!(report.frame_bytes.0 > 256);
    assert!(report.markdown().contains("| sotto |"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otr_relay_at_a_fixed_rate_sends_about_that_rate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (server, sotto) = in_process_server(&dir).await;
    let spec = OtrRelaySpec {
        pairs: 1,
        payload_bytes: 64,
        window: 8,
        rate: Some(200.0),
        duration: Duration::from_millis(1000),
        frames_per_side: 2,
        sotto,
        forwarder: None,
        ejabberd: None,
        progress: false,
    };
    let report = otr_relay::run(&spec).await.expect("otr-relay runs");
    server.shutdown().await;

    let sotto = &report.results[0];
    assert_eq!(sotto.sent, sotto.delivered);
    // 200/s for one second, give or take the timer and a slow debug build.
    assert!(
        (100..=210).contains(&sotto.sent),
        "sent {} at 200/s",
        sotto.sent
    );
    assert_ordered(&sotto.latency);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshakes_complete_on_both_sides() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (server, sotto) = in_process_server(&dir).await;
    let spec = HandshakesSpec {
        pairs: 2,
        rate: 8.0,
        duration: Duration::from_millis(1500),
        sotto,
        progress: false,
    };
    let report = handshakes::run(&spec).await.expect("handshakes run");
    server.shutdown().await;

    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert!(report.established > 0);
    assert_eq!(report.started, report.established);
    assert_ordered(&report.latency);
}
