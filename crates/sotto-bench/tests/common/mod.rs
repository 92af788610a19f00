//! What the bench's smoke tests share: the server in the test's own process, and the check
//! that latency percentiles are real and ordered.
#![allow(dead_code, unreachable_pub)]

use sotto_bench::report::Percentiles;
use sotto_bench::scenario::SottoSource;
use sotto_server::{Config, Server};

/// A fresh server in this process (its CPU and memory are the test's: `measured_apart` is false).
pub async fn in_process_server(dir: &tempfile::TempDir) -> (Server, SottoSource) {
    let server = Server::start(Config::for_tests(dir.path()))
        .await
        .expect("server starts");
    let source = SottoSource::Running {
        url: server.url().to_string(),
        setup_token: server.setup_token.clone().expect("fresh server"),
        pid: std::process::id(),
    };
    (server, source)
}

pub fn assert_ordered(latency: &Percentiles) {
    assert!(latency.samples > 0);
    assert!(
        latency.p50_us <= latency.p99_us
            && latency.p99_us <= latency.p999_us
            && latency.p999_us <= latency.max_us,
        "percentiles out of order: {latency:?}"
    );
}
