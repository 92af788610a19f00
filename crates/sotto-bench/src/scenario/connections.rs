//! `connections`: C idle, authenticated realtime connections. What each costs the server in
//! memory ((RSS after − RSS before) / C) and how long it takes to open them all.
//!
//! Users are created and logged in once each (`--users`, every connection of a user shares its
//! session token, as a user's tabs and devices do); users share no room, so a connection's
//! arrival is announced (presence) only to its own user's connections. Connections are spread
//! over several loopback source addresses (127.0.0.1, 127.0.0.2, …; the client socket is bound
//! before connecting) so the client side never runs out of ephemeral ports, and the bench raises
//! its own open-file limit to the hard limit before starting the server, which inherits it. A
//! connection counts once the server has sent `hello` and `catch_up_done` on it (it is
//! registered and fully set up). Each is then held by a task that keeps reading, so heartbeats
//! are answered, until every connection has been measured.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use tokio::sync::{Semaphore, watch};

use super::socket::{self, RealtimeTarget};
use super::{ScenarioError, SottoSource};
use crate::load::new_histogram;
use crate::process;
use crate::provision::{self, ProvisionError, RAISED_LIMITS};
use crate::report::{Machine, Percentiles, machine_line};
use crate::spawn::SottoProcess;

/// What to run.
#[derive(Debug, Clone)]
pub struct ConnectionsSpec {
    /// Connections to open.
    pub connections: usize,
    /// Users they belong to (each logged in once).
    pub users: usize,
    /// Loopback source addresses to spread them over (127.0.0.1 …).
    pub sources: u8,
    /// Connection attempts in flight at once.
    pub concurrency: usize,
    /// How long to hold them all before reading the server's memory.
    pub settle: Duration,
    /// The Sotto server.
    pub sotto: SottoSource,
    /// Progress lines on stderr.
    pub progress: bool,
}

/// The `connections` scenario's report.
#[derive(Debug, Clone, Serialize)]
pub struct ConnectionsReport {
    /// Always `connections`.
    pub scenario: &'static str,
    /// The machine.
    pub machine: Machine,
    /// Connections asked for.
    pub requested: usize,
    /// Connections that reached `catch_up_done`.
    pub connected: usize,
    /// Failed attempts, with the first errors.
    pub failed: usize,
    /// The first errors.
    pub errors: Vec<String>,
    /// Users.
    pub users: usize,
    /// Source addresses used.
    pub sources: Vec<String>,
    /// Attempts in flight at once.
    pub concurrency: usize,
    /// Seconds from the first attempt to the last `catch_up_done`.
    pub connect_secs: f64,
    /// Connections per second.
    pub connects_per_sec: f64,
    /// One connection's time: TCP connect → `catch_up_done`.
    pub connect_latency: Percentiles,
    /// The server's open realtime connections per its `/metrics` while all were held.
    pub server_reports_open: Option<f64>,
    /// The server's resident memory with its users logged in and no connection, KiB.
    pub rss_before_kib: u64,
    /// The same with every connection held (after `settle`), KiB.
    pub rss_after_kib: u64,
    /// The server's peak RSS over its life, KiB.
    pub peak_rss_kib: u64,
    /// (after − before) / connected, KiB.
    pub rss_per_connection_kib: f64,
    /// The bench process's own RSS growth per connection (client side), KiB.
    pub client_rss_per_connection_kib: f64,
    /// Whether the server ran apart from the bench (false: the memory figures include the
    /// clients).
    pub measured_apart: bool,
    /// The bench's open-file limit (soft, hard) after raising it.
    pub bench_nofile: (u64, u64),
    /// The server's open-file limit (soft, hard), from `/proc/PID/limits`.
    pub server_nofile: Option<(u64, u64)>,
    /// Settings the bench raised on the server.
    pub settings: std::collections::BTreeMap<String, u64>,
}

impl ConnectionsReport {
    /// The markdown summary.
    pub fn markdown(&self) -> String {
        let mut out = format!(
            "## connections: {} idle authenticated realtime connections, {} users, {} source addresses\n\n",
            self.requested,
            self.users,
            self.sources.len()
        );
        out.push_str(&machine_line(&self.machine));
        out.push_str(&format!(
            "\n| connected | failed | connect s | connects/s | connect p50 ms | p99 ms | p99.9 ms | server says open | RSS before MiB | RSS after MiB | peak RSS MiB | **server KiB/conn** | client KiB/conn |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n| {} | {} | {:.2} | {:.0} | {:.2} | {:.2} | {:.2} | {} | {:.1} | {:.1} | {:.1} | **{:.2}** | {:.2} |\n",
            self.connected,
            self.failed,
            self.connect_secs,
            self.connects_per_sec,
            self.connect_latency.p50_us / 1000.0,
            self.connect_latency.p99_us / 1000.0,
            self.connect_latency.p999_us / 1000.0,
            self.server_reports_open
                .map_or_else(|| "?".to_owned(), |n| format!("{n:.0}")),
            self.rss_before_kib as f64 / 1024.0,
            self.rss_after_kib as f64 / 1024.0,
            self.peak_rss_kib as f64 / 1024.0,
            self.rss_per_connection_kib,
            self.client_rss_per_connection_kib,
        ));
        out.push_str(&format!(
            "\nOpen-file limits: bench {:?}, server {:?}.\n",
            self.bench_nofile, self.server_nofile
        ));
        if let Some(first) = self.errors.first() {
            out.push_str(&format!("\nfirst error: {first}\n"));
        }
        if !self.measured_apart {
            out.push_str("\nThe server ran inside the bench process: its memory figures include the clients.\n");
        }
        out
    }
}

/// Runs the scenario.
pub async fn run(spec: &ConnectionsSpec) -> Result<ConnectionsReport, ScenarioError> {
    let mut machine = Machine::now();
    // Before the server starts, so the child inherits it.
    let bench_nofile = process::raise_open_file_limit(std::process::id());
    let (spawned, url, setup_token, pid) = match &spec.sotto {
        SottoSource::Spawn(bin) => {
            let server = SottoProcess::spawn(bin)?;
            let (url, token, pid) = (server.url.clone(), server.setup_token.clone(), server.pid());
            (Some(server), url, token, pid)
        }
        SottoSource::Running {
            url,
            setup_token,
            pid,
        } => (None, url.clone(), setup_token.clone(), *pid),
    };
    let measured_apart = spawned.is_some();
    let outcome = connect_all(spec, &url, &setup_token, pid).await;
    if let Some(server) = spawned {
        server.stop();
    }
    let mut report = outcome?;
    machine.finish();
    report.machine = machine;
    report.measured_apart = measured_apart;
    report.bench_nofile = bench_nofile;
    Ok(report)
}

async fn connect_all(
    spec: &ConnectionsSpec,
    url: &str,
    setup_token: &str,
    pid: u32,
) -> Result<ConnectionsReport, ScenarioError> {
    let admin = provision::admin(url, setup_token).await?;
    let users = spec.users.clamp(1, spec.connections.max(1));
    let mut tasks = tokio::task::JoinSet::new();
    let logins = Arc::new(Semaphore::new(32));
    for index in 0..users {
        let (admin, logins) = (admin.clone(), logins.clone());
        tasks.spawn(async move {
            let _permit = logins.acquire_owned().await;
            let client = provision::user(&admin, &format!("bench-conn-{index}")).await?;
            Ok::<_, ProvisionError>(client.token().unwrap_or_default().to_owned())
        });
    }
    let mut tokens = Vec::with_capacity(users);
    while let Some(joined) = tasks.join_next().await {
        let joined = joined.map_err(|e| ProvisionError::Handshake(e.to_string()))?;
        tokens.push(joined?);
    }
    let tokens: Arc<[String]> = tokens.into();
    let sources: Vec<IpAddr> = (1..=spec.sources.max(1))
        .map(|last| IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)))
        .collect();
    let target = RealtimeTarget::from_url(url)?;
    if spec.progress {
        eprintln!(
            "connections: {users} users logged in at {url}; opening {} connections",
            spec.connections
        );
    }

    // The baseline: users and sessions exist, no connection; let the set-up's work settle.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_before_kib = process::rss_kib(pid)?;
    let own_before_kib = process::rss_kib(std::process::id())?;

    let (release, released) = watch::channel(false);
    let attempts = Arc::new(Semaphore::new(spec.concurrency.max(1)));
    let (ready_tx, mut ready_rx) =
        tokio::sync::mpsc::unbounded_channel::<Result<Duration, String>>();
    let mut holders = tokio::task::JoinSet::new();
    let start = Instant::now();
    for index in 0..spec.connections {
        let permit = attempts.clone().acquire_owned().await;
        let (tokens, target, ready, mut released) = (
            tokens.clone(),
            target.clone(),
            ready_tx.clone(),
            released.clone(),
        );
        let source = sources[index % sources.len()];
        holders.spawn(async move {
            let began = Instant::now();
            let token = &tokens[index % tokens.len()];
            let opened =
                socket::connect(&target, token, Some(source), socket::small_buffers()).await;
            drop(permit);
            let socket = match opened {
                Ok(socket) => {
                    let _ = ready.send(Ok(began.elapsed()));
                    socket
                }
                Err(error) => {
                    let _ = ready.send(Err(format!("from {source}: {error}")));
                    return;
                }
            };
            drop(ready);
            let (mut sink, mut stream) = socket.split();
            // Hold the connection, answering pings, until released.
            loop {
                tokio::select! {
                    _ = released.changed() => break,
                    frame = stream.next() => if !matches!(frame, Some(Ok(_))) { return },
                }
            }
            let _ = sink.close().await;
        });
        if spec.progress && index > 0 && index % 1000 == 0 {
            eprint!(
                "\r  {index} attempts started ({:.1} s)   ",
                start.elapsed().as_secs_f64()
            );
        }
    }
    drop(ready_tx);
    let mut latency = new_histogram();
    let mut errors = Vec::new();
    let mut failed = 0;
    let mut last = start;
    while let Some(result) = ready_rx.recv().await {
        match result {
            Ok(elapsed) => {
                let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
                let _ = latency.record(nanos.max(1));
                last = Instant::now();
            }
            Err(error) => {
                failed += 1;
                if errors.len() < 5 {
                    errors.push(error);
                }
            }
        }
    }
    let connect_secs = last.saturating_duration_since(start).as_secs_f64();
    let connected = usize::try_from(latency.len()).unwrap_or(usize::MAX);
    if spec.progress {
        eprintln!("\r  {connected} connected, {failed} failed in {connect_secs:.2} s        ");
    }
    tokio::time::sleep(spec.settle).await;
    let rss_after_kib = process::rss_kib(pid)?;
    let own_after_kib = process::rss_kib(std::process::id())?;
    let peak_rss_kib = process::peak_rss_kib(pid)?;
    let server_reports_open = socket::read_metric(&admin, "sotto_connections_open").await;
    let server_nofile = process::open_file_limit(pid);
    let _ = release.send(true);
    while holders.join_next().await.is_some() {}

    let per = |after: u64, before: u64| (after as f64 - before as f64) / connected.max(1) as f64;
    Ok(ConnectionsReport {
        scenario: "connections",
        machine: Machine::now(),
        requested: spec.connections,
        connected,
        failed,
        errors,
        users,
        sources: sources.iter().map(ToString::to_string).collect(),
        concurrency: spec.concurrency,
        connect_secs,
        connects_per_sec: connected as f64 / connect_secs.max(1e-9),
        connect_latency: Percentiles::from_nanos(&latency),
        server_reports_open,
        rss_before_kib,
        rss_after_kib,
        peak_rss_kib,
        rss_per_connection_kib: per(rss_after_kib, rss_before_kib),
        client_rss_per_connection_kib: per(own_after_kib, own_before_kib),
        measured_apart: true,
        bench_nofile: (0, 0),
        server_nofile,
        settings: RAISED_LIMITS
            .iter()
            .map(|(k, v)| ((*k).to_owned(), *v))
            .collect(),
    })
}
