//! Smoke for the `persisted`, `connections` and `sweep` scenarios: a second or two each at tiny
//! scale, asserting that real work happened (as `smoke.rs` does for the relay scenarios, and
//! with the same in-process server, for the same reason: a `sotto` binary in the target
//! directory may be missing or stale when only this crate is built). Figures are not checked.

mod common;

use common::{assert_ordered, in_process_server};
use std::time::Duration;

use sotto_bench::scenario::SottoSource;
use sotto_bench::scenario::connections::{self, ConnectionsSpec};
use sotto_bench::scenario::persisted::{self, PersistedSpec};
use sotto_bench::scenario::sweep::{self, SweepReport, SweepSpec};

fn persisted_spec(sotto: SottoSource, rate: Option<f64>) -> PersistedSpec {
    PersistedSpec {
        pairs: 2,
        payload_bytes: 64,
        window: 4,
        rate,
        duration: Duration::from_millis(1200),
        sotto,
        progress: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persisted_acknowledges_and_fans_out_every_message() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (server, sotto) = in_process_server(&dir).await;
    let report = persisted::run(&persisted_spec(sotto, None))
        .await
        .expect("persisted runs");
    server.shutdown().await;

    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.failed, 0);
    assert!(report.acknowledged > 0, "nothing acknowledged");
    assert_eq!(report.sent, report.acknowledged);
    assert_eq!(
        report.fanned_out, report.acknowledged,
        "every acknowledged message reaches the partner"
    );
    assert!(report.acknowledged_per_sec > 0.0 && report.fanned_out_per_sec > 0.0);
    assert_ordered(&report.ack_latency);
    assert_ordered(&report.fanout_latency);
    assert!(report.cost.peak_rss_kib > 0);
    assert!(report.cost.cpu_secs > 0.0);
    // The commits counter of /metrics moved, and several messages may share a commit.
    assert!(report.commits.is_some_and(|c| c > 0.0));
    assert!(report.markdown().contains("| sent | acked |"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persisted_at_a_fixed_rate_sends_about_that_rate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (server, sotto) = in_process_server(&dir).await;
    let report = persisted::run(&persisted_spec(sotto, Some(100.0)))
        .await
        .expect("persisted runs");
    server.shutdown().await;

    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.fanned_out, report.acknowledged);
    // 100/s for 1.2 s, give or take the timer and a slow debug build.
    assert!(
        (60..=125).contains(&report.sent),
        "sent {} at 100/s",
        report.sent
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_open_from_several_sources_and_are_counted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (server, sotto) = in_process_server(&dir).await;
    let spec = ConnectionsSpec {
        connections: 60,
        users: 4,
        sources: 3,
        concurrency: 16,
        settle: Duration::from_millis(200),
        sotto,
        progress: false,
    };
    let report = connections::run(&spec).await.expect("connections run");
    server.shutdown().await;

    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.connected, 60);
    assert_eq!(report.failed, 0);
    assert_eq!(report.sources, ["127.0.0.1", "127.0.0.2", "127.0.0.3"]);
    // The server's own count. Its metrics are process-wide statics, so under `cargo test`
    // (tests as threads of one process) other tests' servers may add theirs.
    assert!(
        report.server_reports_open.is_some_and(|open| open >= 60.0),
        "{:?}",
        report.server_reports_open
    );
    assert!(report.rss_before_kib > 0 && report.rss_after_kib > 0);
    assert!(report.peak_rss_kib >= report.rss_after_kib);
    assert!(report.rss_per_connection_kib.is_finite());
    assert!(report.connect_secs > 0.0);
    assert_ordered(&report.connect_latency);
    assert!(report.bench_nofile.0 > 0);
    assert!(!report.measured_apart);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_persisted_sweep_steps_up_and_plots() {
    let spec = SweepSpec {
        start_rate: 40.0,
        factor: 1.5,
        max_steps: 2,
        p99_bound: Duration::from_secs(5),
        follow: 0.5,
    };
    // Each step gets a fresh server, as the real sweep does.
    let result = sweep::sweep("persisted", &spec, false, |rate| async move {
        let dir = tempfile::tempdir().expect("tempdir");
        let (server, sotto) = in_process_server(&dir).await;
        let mut step = persisted_spec(sotto, Some(rate));
        step.duration = Duration::from_millis(800);
        let report = persisted::run(&step).await;
        server.shutdown().await;
        Ok(sweep::persisted_points(&report?, rate))
    })
    .await
    .expect("sweeps");
    assert_eq!(result.steps.len(), 2, "{}", result.stopped);
    assert_eq!(result.steps[1][0].offered_per_sec, 60.0);
    for point in result.steps.iter().flatten() {
        assert!(point.throughput_per_sec > 0.0 && point.p99_us >= point.p50_us);
    }
    let report = SweepReport {
        scenario: "sweep",
        start_rate: 40.0,
        factor: 1.5,
        p99_bound_ms: 5000.0,
        follow: 0.5,
        sweeps: vec![result],
    };
    let svg = report.plot().svg();
    assert_eq!(
        svg.matches(r#"class="series""#).count(),
        2,
        "ack and fan-out"
    );
    assert!(report.markdown().contains("persisted: sotto (ack)"));
}
