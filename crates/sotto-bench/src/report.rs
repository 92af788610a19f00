//! What a run reports: serializable results (the `--json` file) and their markdown summary.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::process;

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Percentiles {
    /// Number of samples.
    pub samples: u64,
    /// Median.
    pub p50_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// 99.9th percentile.
    pub p999_us: f64,
    /// Largest sample.
    pub max_us: f64,
    /// Mean.
    pub mean_us: f64,
}

impl Percentiles {
    /// From a histogram of nanoseconds.
    pub fn from_nanos(histogram: &Histogram<u64>) -> Percentiles {
        let us = |ns: u64| ns as f64 / 1000.0;
        Percentiles {
            samples: histogram.len(),
            p50_us: us(histogram.value_at_quantile(0.50)),
            p99_us: us(histogram.value_at_quantile(0.99)),
            p999_us: us(histogram.value_at_quantile(0.999)),
            max_us: us(histogram.max()),
            mean_us: histogram.mean() / 1000.0,
        }
    }
}

/// The machine and how busy it was.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// CPUs available to the bench.
    pub cpus: usize,
    /// CPU model.
    pub cpu_model: Option<String>,
    /// 1/5/15-minute load average when the scenario started.
    pub load_average_before: Option<String>,
    /// The same when it ended.
    pub load_average_after: Option<String>,
}

impl Machine {
    /// Describes this machine now (call [`Machine::finish`] at the end).
    pub fn now() -> Machine {
        Machine {
            cpus: process::cpu_count(),
            cpu_model: process::cpu_model(),
            load_average_before: process::load_average(),
            load_average_after: None,
        }
    }

    /// Records the load average at the end.
    pub fn finish(&mut self) {
        self.load_average_after = process::load_average();
    }
}

/// What the measured process (server or forwarder) cost during the measured part of the run.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ProcessCost {
    /// Process id.
    pub pid: u32,
    /// Whether the process is the target alone (false when the server ran inside the bench's
    /// own process, as in the smoke test: then CPU and memory include the load generator).
    pub measured_apart: bool,
    /// User + system CPU time over the measured part, seconds.
    pub cpu_secs: f64,
    /// Peak resident memory over the process's life (`VmHWM`), KiB.
    pub peak_rss_kib: u64,
}

/// One relay target's figures.
#[derive(Debug, Clone, Serialize)]
pub struct RelayResult {
    /// `sotto` or `forwarder`.
    pub target: String,
    /// Frames sent.
    pub sent: u64,
    /// Frames received.
    pub delivered: u64,
    /// Seconds from the first send to the end of the drain.
    pub elapsed_secs: f64,
    /// Delivered frames per second.
    pub delivered_per_sec: f64,
    /// Send-to-receive latency.
    pub latency: Percentiles,
    /// The target process's cost.
    pub cost: ProcessCost,
    /// Target CPU per delivered message, microseconds.
    pub cpu_us_per_message: f64,
    /// CPU the bench process itself used meanwhile (the load generator), seconds.
    pub load_generator_cpu_secs: f64,
    /// Text events seen on the sockets during the run, by kind.
    pub text_events: BTreeMap<String, u64>,
    /// Connections that failed, with their first error.
    pub failed_connections: Vec<String>,
}

/// Sotto divided by the forwarder.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Ratios {
    /// Delivered messages/s, Sotto / forwarder.
    pub throughput: f64,
    /// p99 latency, Sotto / forwarder.
    pub p99: f64,
}

/// Sotto divided by ejabberd (the peer).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct PeerRatios {
    /// Delivered messages/s, Sotto / ejabberd.
    pub throughput: f64,
    /// Target CPU per delivered message, Sotto / ejabberd.
    pub cpu_per_message: f64,
    /// p99 latency, Sotto / ejabberd.
    pub p99: f64,
}

/// How the ejabberd peer was set up.
#[derive(Debug, Clone, Serialize)]
pub struct EjabberdSetup {
    /// Debian's package version.
    pub version: String,
    /// Whether this run installed the package.
    pub installed_now: bool,
    /// Seconds spent checking for (and installing) the package.
    pub install_check_secs: f64,
    /// Seconds from `ejabberdctl foreground` to the c2s port answering.
    pub start_up_secs: f64,
    /// Seconds to register, log in and bind every user (in parallel).
    pub register_and_login_secs: f64,
    /// Size of the `<message>` stanzas sent (min, max), bytes.
    pub stanza_bytes: (usize, usize),
    /// The module set (`minimal` or `debian`).
    pub modules: crate::ejabberd::Modules,
    /// The configuration it ran with (YAML).
    pub config: String,
}

/// The `otr-relay` scenario's report.
#[derive(Debug, Clone, Serialize)]
pub struct OtrRelayReport {
    /// Always `otr-relay`.
    pub scenario: &'static str,
    /// The machine.
    pub machine: Machine,
    /// Pairs (two connections each).
    pub pairs: usize,
    /// Plaintext bytes per message (inside the encryption).
    pub payload_bytes: usize,
    /// Size of the client→server WebSocket payload of each frame (min, max), bytes.
    pub frame_bytes: (usize, usize),
    /// Frames in flight per direction of a pair (at most, with a rate).
    pub window: usize,
    /// Messages per second offered, when the run was paced; `None`: as fast as the window allows.
    pub offered_per_sec: Option<f64>,
    /// Seconds of sending per target.
    pub duration_secs: f64,
    /// Settings the bench raised on the server.
    pub settings: BTreeMap<String, u64>,
    /// Environment the server ran with.
    pub server_environment: BTreeMap<String, String>,
    /// One entry per target, Sotto first.
    pub results: Vec<RelayResult>,
    /// Sotto / forwarder, when both ran.
    pub ratios: Option<Ratios>,
    /// The ejabberd peer's set-up, when it ran.
    pub ejabberd: Option<EjabberdSetup>,
    /// Sotto / ejabberd, when both ran.
    pub ejabberd_ratios: Option<PeerRatios>,
}

impl OtrRelayReport {
    /// The markdown summary.
    pub fn markdown(&self) -> String {
        let offered = match self.offered_per_sec {
            Some(rate) => format!(", {rate:.0} msg/s offered"),
            None => String::new(),
        };
        let mut out = format!(
            "## otr-relay: {} pairs, {} B payloads ({}–{} B frames), window {}{offered}, {:.0} s per target\n\n",
            self.pairs,
            self.payload_bytes,
            self.frame_bytes.0,
            self.frame_bytes.1,
            self.window,
            self.duration_secs
        );
        out.push_str(&machine_line(&self.machine));
        out.push_str("\n| target | delivered/s | sent | delivered | p50 µs | p99 µs | p99.9 µs | max µs | CPU s | CPU µs/msg | peak RSS MiB | load generator CPU s |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n");
        for r in &self.results {
            out.push_str(&format!(
                "| {} | {:.0} | {} | {} | {:.0} | {:.0} | {:.0} | {:.0} | {:.2} | {:.2} | {:.1} | {:.2} |\n",
                r.target,
                r.delivered_per_sec,
                r.sent,
                r.delivered,
                r.latency.p50_us,
                r.latency.p99_us,
                r.latency.p999_us,
                r.latency.max_us,
                r.cost.cpu_secs,
                r.cpu_us_per_message,
                r.cost.peak_rss_kib as f64 / 1024.0,
                r.load_generator_cpu_secs,
            ));
        }
        if let Some(ratios) = self.ratios {
            out.push_str(&format!(
                "\nSotto / forwarder: throughput {:.2}, p99 {:.2}\n",
                ratios.throughput, ratios.p99
            ));
        }
        if let Some(ratios) = self.ejabberd_ratios {
            out.push_str(&format!(
                "\nSotto / ejabberd: throughput {:.2}, CPU per message {:.2}, p99 {:.2}\n",
                ratios.throughput, ratios.cpu_per_message, ratios.p99
            ));
        }
        if let Some(setup) = &self.ejabberd {
            out.push_str(&format!(
                "\nejabberd {} ({:?} modules): {}–{} B stanzas (base64 of the same frames), started in {:.1} s, \
                 {} users registered and logged in in {:.1} s{}\n",
                setup.version,
                setup.modules,
                setup.stanza_bytes.0,
                setup.stanza_bytes.1,
                setup.start_up_secs,
                self.pairs * 2,
                setup.register_and_login_secs,
                if setup.installed_now {
                    format!(
                        ", installed by this run in {:.0} s",
                        setup.install_check_secs
                    )
                } else {
                    String::new()
                }
            ));
        }
        for r in &self.results {
            if !r.text_events.is_empty() {
                out.push_str(&format!(
                    "\n{} text events: {:?}\n",
                    r.target, r.text_events
                ));
            }
            if !r.failed_connections.is_empty() {
                out.push_str(&format!(
                    "\n{}: {} connections failed, first: {}\n",
                    r.target,
                    r.failed_connections.len(),
                    r.failed_connections[0]
                ));
            }
            if !r.cost.measured_apart {
                out.push_str(&format!(
                    "\n{}: ran inside the bench process; CPU and memory include the load generator\n",
                    r.target
                ));
            }
        }
        out
    }
}

/// The `handshakes` scenario's report.
#[derive(Debug, Clone, Serialize)]
pub struct HandshakesReport {
    /// Always `handshakes`.
    pub scenario: &'static str,
    /// The machine.
    pub machine: Machine,
    /// Pairs handshaking concurrently.
    pub pairs: usize,
    /// Offered handshakes per second, all pairs.
    pub offered_per_sec: f64,
    /// Seconds of handshaking.
    pub duration_secs: f64,
    /// Settings the bench raised on the server.
    pub settings: BTreeMap<String, u64>,
    /// Handshakes started.
    pub started: u64,
    /// Handshakes that reached established on both sides.
    pub established: u64,
    /// Failed handshakes, with the first errors.
    pub failures: Vec<String>,
    /// Established handshakes per second.
    pub established_per_sec: f64,
    /// Offer → established on both sides.
    pub latency: Percentiles,
    /// The server's cost.
    pub cost: ProcessCost,
}

impl HandshakesReport {
    /// The markdown summary.
    pub fn markdown(&self) -> String {
        let mut out = format!(
            "## handshakes: {} pairs, {:.0}/s offered, {:.0} s\n\n",
            self.pairs, self.offered_per_sec, self.duration_secs
        );
        out.push_str(&machine_line(&self.machine));
        out.push_str(&format!(
            "\n| started | established | failed | established/s | p50 ms | p99 ms | p99.9 ms | max ms | server CPU s | peak RSS MiB |\n|---|---|---|---|---|---|---|---|---|---|\n| {} | {} | {} | {:.1} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.1} |\n",
            self.started,
            self.established,
            self.failures.len(),
            self.established_per_sec,
            self.latency.p50_us / 1000.0,
            self.latency.p99_us / 1000.0,
            self.latency.p999_us / 1000.0,
            self.latency.max_us / 1000.0,
            self.cost.cpu_secs,
            self.cost.peak_rss_kib as f64 / 1024.0,
        ));
        if let Some(first) = self.failures.first() {
            out.push_str(&format!("\nfirst failure: {first}\n"));
        }
        out
    }
}

/// The machine and its load averages, one markdown line.
pub fn machine_line(machine: &Machine) -> String {
    format!(
        "Machine: {} CPUs ({}), load average {} before, {} after.\n",
        machine.cpus,
        machine.cpu_model.as_deref().unwrap_or("unknown model"),
        machine.load_average_before.as_deref().unwrap_or("?"),
        machine.load_average_after.as_deref().unwrap_or("?"),
    )
}
