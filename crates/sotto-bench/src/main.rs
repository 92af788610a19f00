//! The `sotto-bench` command line; see the library's documentation.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use serde::Serialize;
use sotto_bench::ejabberd::Modules;
use sotto_bench::forwarder::{self, ForwarderConfig, READY_LINE};
use sotto_bench::scenario::SottoSource;
use sotto_bench::scenario::connections::{self, ConnectionsSpec};
use sotto_bench::scenario::handshakes::{self, HandshakesSpec};
use sotto_bench::scenario::otr_relay::{self, OtrRelaySpec};
use sotto_bench::scenario::persisted::{self, PersistedSpec};
use sotto_bench::scenario::sweep::{self, SweepReport, SweepSpec};
use sotto_bench::spawn::find_sotto_binary;

/// Load tool for Sotto: OTR relay throughput and latency against the real server, a bare
/// WebSocket forwarder and ejabberd, OTR handshake rate, stored messages, idle connections, and
/// sweeps of the offered rate. Prints a markdown summary; `--json` writes all figures.
#[derive(Parser)]
#[command(name = "sotto-bench", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// P pairs with established OTR sessions send pre-encrypted frames through Sotto, then the
    /// same frames through the bare forwarder (and ejabberd with `--with-ejabberd`); reports
    /// each and the ratios.
    OtrRelay {
        /// Pairs of connections (two users, one DM, one OTR session each).
        #[arg(long, default_value_t = 50)]
        pairs: usize,
        /// Plaintext bytes per message (inside the encryption).
        #[arg(long, default_value_t = 256)]
        payload: usize,
        /// Frames in flight per direction of a pair.
        #[arg(long, default_value_t = 16)]
        window: usize,
        /// Messages per second offered, all pairs and directions together (open loop, the
        /// window still caps what is in flight) [default: as fast as the window allows].
        #[arg(long)]
        rate: Option<f64>,
        /// Seconds of sending per target.
        #[arg(long, default_value_t = 10.0)]
        duration: f64,
        /// Distinct pre-encrypted frames per side, sent in a cycle.
        #[arg(long, default_value_t = 32)]
        frames_per_side: usize,
        /// Skip the forwarder (Sotto only).
        #[arg(long)]
        no_forwarder: bool,
        /// Also run the same frames through ejabberd (XMPP, the peer): installed with
        /// `apt-get install -y ejabberd` when missing, started with its own configuration in a
        /// temporary directory, stopped at the end.
        #[arg(long)]
        with_ejabberd: bool,
        /// ejabberd's modules: `minimal` (mod_register alone) or `debian` (Debian's default
        /// set, less offline storage).
        #[arg(long, value_enum, default_value = "minimal")]
        ejabberd_modules: EjabberdModulesArg,
        #[command(flatten)]
        common: Common,
    },
    /// OTR handshakes per second and their latency (offer → established on both sides).
    Handshakes {
        /// Pairs handshaking concurrently.
        #[arg(long, default_value_t = 10)]
        pairs: usize,
        /// Handshakes per second offered, all pairs together.
        #[arg(long, default_value_t = 50.0)]
        rate: f64,
        /// Seconds of handshaking.
        #[arg(long, default_value_t = 10.0)]
        duration: f64,
        #[command(flatten)]
        common: Common,
    },
    /// Stored DM messages: P pairs send over HTTP (window W or rate R); acknowledgement and
    /// fan-out throughput and latency.
    Persisted {
        /// Pairs of users, one DM each; both sides send.
        #[arg(long, default_value_t = 50)]
        pairs: usize,
        /// Text bytes per message (at least 27: the counter and the send instant).
        #[arg(long, default_value_t = 256)]
        payload: usize,
        /// Requests in flight per sender (its keep-alive connections).
        #[arg(long, default_value_t = 4)]
        window: usize,
        /// Messages per second offered, all senders together (open loop, the window still
        /// caps what is in flight) [default: as fast as the window allows].
        #[arg(long)]
        rate: Option<f64>,
        /// Seconds of sending.
        #[arg(long, default_value_t = 10.0)]
        duration: f64,
        #[command(flatten)]
        common: Common,
    },
    /// C idle authenticated realtime connections: server memory per connection, time to
    /// connect them all.
    Connections {
        /// Connections to open.
        #[arg(long, default_value_t = 10_000)]
        connections: usize,
        /// Users they belong to (each logged in once).
        #[arg(long, default_value_t = 100)]
        users: usize,
        /// Loopback source addresses (127.0.0.1 … 127.0.0.N).
        #[arg(long, default_value_t = 8)]
        sources: u8,
        /// Connection attempts in flight at once.
        #[arg(long, default_value_t = 256)]
        concurrency: usize,
        /// Seconds to hold them before reading the server's memory.
        #[arg(long, default_value_t = 2.0)]
        settle: f64,
        #[command(flatten)]
        common: Common,
    },
    /// Steps the offered rate of otr-relay and persisted up (×factor per step) and writes a
    /// p99-versus-throughput plot (SVG).
    Sweep {
        /// Scenarios to sweep.
        #[arg(long, value_delimiter = ',', default_value = "otr-relay,persisted")]
        scenarios: Vec<SweptScenario>,
        /// First offered rate, messages/s (all senders together).
        #[arg(long, default_value_t = 1000.0)]
        start_rate: f64,
        /// Factor between steps.
        #[arg(long, default_value_t = 1.5)]
        factor: f64,
        /// Most steps per scenario.
        #[arg(long, default_value_t = 12)]
        max_steps: usize,
        /// Stop after a step whose p99 (Sotto; acknowledgement for persisted) exceeds this.
        #[arg(long, default_value_t = 100.0)]
        p99_bound_ms: f64,
        /// Stop after a step where Sotto delivers less than this share of the offered rate.
        #[arg(long, default_value_t = 0.9)]
        follow: f64,
        /// Pairs.
        #[arg(long, default_value_t = 50)]
        pairs: usize,
        /// Payload bytes (OTR plaintext; persisted text).
        #[arg(long, default_value_t = 256)]
        payload: usize,
        /// Window cap per direction (otr-relay) / per sender (persisted).
        #[arg(long, default_value_t = 16)]
        window: usize,
        /// Seconds per step and target.
        #[arg(long, default_value_t = 5.0)]
        duration: f64,
        /// Skip the forwarder on otr-relay steps.
        #[arg(long)]
        no_forwarder: bool,
        /// Write the plot here.
        #[arg(long, default_value = "sweep.svg")]
        svg: PathBuf,
        #[command(flatten)]
        common: Common,
    },
    /// Runs the bare forwarder (pairs connections at /pair/<id>, forwards binary frames).
    Forwarder {
        /// Address to listen on; port 0 picks one (printed on stdout).
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: String,
        /// WebSocket read buffer per connection, bytes.
        #[arg(long, default_value_t = ForwarderConfig::default().read_buffer)]
        read_buffer: usize,
        /// WebSocket write buffer per connection, bytes.
        #[arg(long, default_value_t = ForwarderConfig::default().write_buffer)]
        write_buffer: usize,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum SweptScenario {
    OtrRelay,
    Persisted,
}

/// `--ejabberd-modules`.
#[derive(Clone, Copy, clap::ValueEnum)]
enum EjabberdModulesArg {
    Minimal,
    Debian,
}

#[derive(clap::Args)]
struct Common {
    /// The `sotto` binary to measure [default: target/release/sotto].
    #[arg(long)]
    sotto_bin: Option<PathBuf>,
    /// Write every figure as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// No progress lines on stderr.
    #[arg(long)]
    quiet: bool,
}

impl Common {
    fn sotto(&self) -> anyhow::Result<SottoSource> {
        let bin = find_sotto_binary(self.sotto_bin.clone()).context(
            "no sotto binary: build it with `cargo build --release --bin sotto` or pass --sotto-bin",
        )?;
        Ok(SottoSource::Spawn(bin))
    }

    fn write_json(&self, report: &impl Serialize) -> anyhow::Result<()> {
        if let Some(path) = &self.json {
            let text = serde_json::to_string_pretty(report)?;
            std::fs::write(path, text + "\n")
                .with_context(|| format!("writing {}", path.display()))?;
        }
        Ok(())
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        match cli.command {
            Command::Forwarder {
                listen,
                read_buffer,
                write_buffer,
            } => {
                let listener = tokio::net::TcpListener::bind(&listen)
                    .await
                    .with_context(|| format!("binding {listen}"))?;
                println!("{READY_LINE}{}", listener.local_addr()?);
                forwarder::serve(
                    listener,
                    ForwarderConfig {
                        read_buffer,
                        write_buffer,
                    },
                )
                .await?;
                Ok(())
            }
            Command::OtrRelay {
                pairs,
                payload,
                window,
                rate,
                duration,
                frames_per_side,
                no_forwarder,
                with_ejabberd,
                ejabberd_modules,
                common,
            } => {
                let spec = OtrRelaySpec {
                    pairs,
                    payload_bytes: payload,
                    window,
                    rate,
                    duration: Duration::from_secs_f64(duration),
                    frames_per_side: frames_per_side.max(1),
                    sotto: common.sotto()?,
                    forwarder: if no_forwarder {
                        None
                    } else {
                        Some(std::env::current_exe()?)
                    },
                    ejabberd: with_ejabberd.then_some(match ejabberd_modules {
                        EjabberdModulesArg::Minimal => Modules::Minimal,
                        EjabberdModulesArg::Debian => Modules::Debian,
                    }),
                    progress: !common.quiet,
                };
                // On Ctrl-C the scenario's future is dropped, and with it the measured
                // processes' guards (ejabberd is stopped, not left running).
                let report = tokio::select! {
                    report = otr_relay::run(&spec) => report?,
                    _ = tokio::signal::ctrl_c() => anyhow::bail!("interrupted"),
                };
                common.write_json(&report)?;
                println!("{}", report.markdown());
                Ok(())
            }
            Command::Handshakes {
                pairs,
                rate,
                duration,
                common,
            } => {
                let spec = HandshakesSpec {
                    pairs,
                    rate,
                    duration: Duration::from_secs_f64(duration),
                    sotto: common.sotto()?,
                    progress: !common.quiet,
                };
                let report = handshakes::run(&spec).await?;
                common.write_json(&report)?;
                println!("{}", report.markdown());
                Ok(())
            }
            Command::Persisted {
                pairs,
                payload,
                window,
                rate,
                duration,
                common,
            } => {
                let spec = PersistedSpec {
                    pairs,
                    payload_bytes: payload,
                    window,
                    rate,
                    duration: Duration::from_secs_f64(duration),
                    sotto: common.sotto()?,
                    progress: !common.quiet,
                };
                let report = persisted::run(&spec).await?;
                common.write_json(&report)?;
                println!("{}", report.markdown());
                Ok(())
            }
            Command::Connections {
                connections: count,
                users,
                sources,
                concurrency,
                settle,
                common,
            } => {
                let spec = ConnectionsSpec {
                    connections: count,
                    users,
                    sources,
                    concurrency,
                    settle: Duration::from_secs_f64(settle),
                    sotto: common.sotto()?,
                    progress: !common.quiet,
                };
                let report = connections::run(&spec).await?;
                common.write_json(&report)?;
                println!("{}", report.markdown());
                Ok(())
            }
            Command::Sweep {
                scenarios,
                start_rate,
                factor,
                max_steps,
                p99_bound_ms,
                follow,
                pairs,
                payload,
                window,
                duration,
                no_forwarder,
                svg,
                common,
            } => {
                let spec = SweepSpec {
                    start_rate,
                    factor,
                    max_steps,
                    p99_bound: Duration::from_secs_f64(p99_bound_ms / 1000.0),
                    follow,
                };
                let sotto = common.sotto()?;
                let progress = !common.quiet;
                let duration = Duration::from_secs_f64(duration);
                let forwarder = if no_forwarder {
                    None
                } else {
                    Some(std::env::current_exe()?)
                };
                let mut sweeps = Vec::new();
                for scenario in scenarios {
                    let result = match scenario {
                        SweptScenario::OtrRelay => {
                            sweep::sweep("otr-relay", &spec, progress, |rate| {
                                let spec = OtrRelaySpec {
                                    pairs,
                                    payload_bytes: payload,
                                    window,
                                    rate: Some(rate),
                                    duration,
                                    frames_per_side: 32,
                                    sotto: sotto.clone(),
                                    forwarder: forwarder.clone(),
                                    ejabberd: None,
                                    progress: false,
                                };
                                async move {
                                    let report = otr_relay::run(&spec).await?;
                                    Ok(sweep::relay_points(&report, rate))
                                }
                            })
                            .await?
                        }
                        SweptScenario::Persisted => {
                            sweep::sweep("persisted", &spec, progress, |rate| {
                                let spec = PersistedSpec {
                                    pairs,
                                    payload_bytes: payload,
                                    window,
                                    rate: Some(rate),
                                    duration,
                                    sotto: sotto.clone(),
                                    progress: false,
                                };
                                async move {
                                    let report = persisted::run(&spec).await?;
                                    Ok(sweep::persisted_points(&report, rate))
                                }
                            })
                            .await?
                        }
                    };
                    sweeps.push(result);
                }
                let report = SweepReport {
                    scenario: "sweep",
                    start_rate,
                    factor,
                    p99_bound_ms,
                    follow,
                    sweeps,
                };
                std::fs::write(&svg, report.plot().svg())
                    .with_context(|| format!("writing {}", svg.display()))?;
                common.write_json(&report)?;
                println!("{}", report.markdown());
                Ok(())
            }
        }
    })
}
