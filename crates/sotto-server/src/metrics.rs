//! Prometheus metrics, hand-written text exposition (no dependency). Labels never carry user
//! names, room names, ids or content — only fixed, low-cardinality values.

use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// A monotonically increasing count.
#[derive(Debug)]
pub struct Counter(AtomicU64);

impl Counter {
    const fn new() -> Self {
        Counter(AtomicU64::new(0))
    }
    /// Adds one.
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    /// Current value.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down.
#[derive(Debug)]
pub struct Gauge(AtomicI64);

impl Gauge {
    const fn new() -> Self {
        Gauge(AtomicI64::new(0))
    }
    /// Adds one.
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    /// Subtracts one.
    pub fn dec(&self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
    /// Current value.
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Upper bounds of the latency buckets, seconds.
const BUCKETS: [f64; 10] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0];

/// A latency histogram.
#[derive(Debug)]
pub struct Histogram {
    buckets: [AtomicU64; 10],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    const fn new() -> Self {
        Histogram {
            buckets: [const { AtomicU64::new(0) }; 10],
            count: AtomicU64::new(0),
            sum_micros: AtomicU64::new(0),
        }
    }

    /// Records one observation.
    pub fn observe(&self, d: std::time::Duration) {
        let s = d.as_secs_f64();
        for (i, b) in BUCKETS.iter().enumerate() {
            if s <= *b {
                self.buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add(d.as_micros() as u64, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (i, b) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "{name}_bucket{{le=\"{b}\"}} {}",
                self.buckets[i].load(Ordering::Relaxed)
            );
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {count}");
    }
}

/// Every metric of the process.
#[derive(Debug)]
pub struct Metrics {
    /// Open realtime connections.
    pub connections_open: Gauge,
    /// Realtime connections ever accepted.
    pub connections_total: Counter,
    /// Connections cut off because their queue overflowed.
    pub slow_consumers: Counter,
    /// Stored messages sent.
    pub messages_sent: Counter,
    /// Ephemeral frames relayed to a connection.
    pub ephemeral_relayed: Counter,
    /// HTTP requests answered, by status class.
    pub http_2xx: Counter,
    /// 4xx answers.
    pub http_4xx: Counter,
    /// 5xx answers.
    pub http_5xx: Counter,
    /// HTTP request latency.
    pub http_latency: Histogram,
    /// Database write batches committed.
    pub db_batches: Counter,
}

/// The process-wide metrics.
pub static METRICS: Metrics = Metrics {
    connections_open: Gauge::new(),
    connections_total: Counter::new(),
    slow_consumers: Counter::new(),
    messages_sent: Counter::new(),
    ephemeral_relayed: Counter::new(),
    http_2xx: Counter::new(),
    http_4xx: Counter::new(),
    http_5xx: Counter::new(),
    http_latency: Histogram::new(),
    db_batches: Counter::new(),
};

impl Metrics {
    /// Prometheus text exposition format 0.0.4.
    pub fn render(&self) -> String {
        let mut o = String::new();
        let mut counter = |name: &str, help: &str, v: u64| {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}");
        };
        counter(
            "sotto_connections_total",
            "Realtime connections accepted.",
            self.connections_total.get(),
        );
        counter(
            "sotto_slow_consumers_total",
            "Connections cut off for not reading.",
            self.slow_consumers.get(),
        );
        counter(
            "sotto_messages_sent_total",
            "Stored messages sent.",
            self.messages_sent.get(),
        );
        counter(
            "sotto_ephemeral_frames_relayed_total",
            "Ephemeral frames relayed.",
            self.ephemeral_relayed.get(),
        );
        counter(
            "sotto_db_write_batches_total",
            "Database write batches committed.",
            self.db_batches.get(),
        );
        let _ = writeln!(
            o,
            "# HELP sotto_http_responses_total HTTP responses by status class.\n\
             # TYPE sotto_http_responses_total counter\n\
             sotto_http_responses_total{{class=\"2xx\"}} {}\n\
             sotto_http_responses_total{{class=\"4xx\"}} {}\n\
             sotto_http_responses_total{{class=\"5xx\"}} {}",
            self.http_2xx.get(),
            self.http_4xx.get(),
            self.http_5xx.get()
        );
        let _ = writeln!(
            o,
            "# HELP sotto_connections_open Open realtime connections.\n\
             # TYPE sotto_connections_open gauge\nsotto_connections_open {}",
            self.connections_open.get()
        );
        self.http_latency.render(
            &mut o,
            "sotto_http_request_duration_seconds",
            "HTTP request latency.",
        );
        o
    }
}
