//! `otr-relay`: P pairs with established OTR sessions push pre-encrypted frames through the real
//! server, then the very same frames, sizes and pairing through the bare forwarder.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio_tungstenite::tungstenite::Bytes;

use super::{ScenarioError, SottoSource};
use crate::forwarder::PAIR_PATH;
use crate::load::{self, ClientSocket, LoadConfig, LoadOutcome, PairLink, client_websocket_config};
use crate::process;
use crate::provision::{self, RAISED_LIMITS};
use crate::report::{Machine, OtrRelayReport, Percentiles, ProcessCost, Ratios, RelayResult};
use crate::spawn::{ForwarderProcess, SOTTO_ENVIRONMENT, SottoProcess};

/// What to run.
#[derive(Debug, Clone)]
pub struct OtrRelaySpec {
    /// Pairs of connections.
    pub pairs: usize,
    /// Plaintext bytes per message.
    pub payload_bytes: usize,
    /// Frames in flight per direction of a pair.
    pub window: usize,
    /// Messages per second offered (all pairs, both directions); `None`: as fast as the
    /// window allows.
    pub rate: Option<f64>,
    /// Seconds of sending per target.
    pub duration: Duration,
    /// Distinct pre-encrypted frames per side (sent in a cycle).
    pub frames_per_side: usize,
    /// The Sotto server.
    pub sotto: SottoSource,
    /// A `sotto-bench` executable to run the forwarder from; `None` skips the forwarder.
    pub forwarder: Option<PathBuf>,
    /// Progress lines on stderr.
    pub progress: bool,
}

/// The frames of one pair, kept to replay them through the forwarder.
struct PairFrames {
    first: Arc<[Bytes]>,
    second: Arc<[Bytes]>,
}

/// Runs the scenario: Sotto first (its sessions produce the frames), then the forwarder.
pub async fn run(spec: &OtrRelaySpec) -> Result<OtrRelayReport, ScenarioError> {
    let mut machine = Machine::now();
    let config = LoadConfig {
        window: spec.window,
        rate: spec.rate,
        duration: spec.duration,
        drain_timeout: Duration::from_secs(10),
        progress: spec.progress,
    };

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
    note(
        spec.progress,
        &format!("sotto at {url}: setting up {} pairs", spec.pairs),
    );
    let sotto_run = async {
        let (links, frames) = sotto_pairs(&url, &setup_token, spec).await?;
        note(spec.progress, "sotto: running");
        measure("sotto", pid, measured_apart, links, config)
            .await
            .map(|r| (r, frames))
    }
    .await;
    if let Some(server) = spawned {
        server.stop();
    }
    let (sotto, frames) = sotto_run?;
    let frame_bytes = frames
        .iter()
        .flat_map(|f| f.first.iter().chain(f.second.iter()))
        .fold((usize::MAX, 0), |(min, max), f| {
            (min.min(f.len()), max.max(f.len()))
        });

    let mut results = vec![sotto];
    if let Some(exe) = &spec.forwarder {
        let forwarder = ForwarderProcess::spawn(exe)?;
        note(
            spec.progress,
            &format!("forwarder at {}: running", forwarder.addr),
        );
        let forwarder_run = async {
            let links = forwarder_pairs(&forwarder.addr, &frames).await?;
            measure("forwarder", forwarder.pid(), true, links, config).await
        }
        .await;
        forwarder.stop();
        results.push(forwarder_run?);
    }
    let ratios = match results.as_slice() {
        [sotto, forwarder] => Some(Ratios {
            throughput: sotto.delivered_per_sec / forwarder.delivered_per_sec,
            p99: sotto.latency.p99_us / forwarder.latency.p99_us,
        }),
        _ => None,
    };
    machine.finish();
    Ok(OtrRelayReport {
        scenario: "otr-relay",
        machine,
        pairs: spec.pairs,
        payload_bytes: spec.payload_bytes,
        frame_bytes,
        window: spec.window,
        offered_per_sec: spec.rate,
        duration_secs: spec.duration.as_secs_f64(),
        settings: RAISED_LIMITS
            .iter()
            .map(|(k, v)| ((*k).to_owned(), *v))
            .collect(),
        server_environment: SOTTO_ENVIRONMENT
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        results,
        ratios,
    })
}

/// Sets the server up, establishes every pair's session and hands it over to raw sockets.
async fn sotto_pairs(
    url: &str,
    setup_token: &str,
    spec: &OtrRelaySpec,
) -> Result<(Vec<PairLink>, Vec<PairFrames>), ScenarioError> {
    let admin = provision::admin(url, setup_token).await?;
    let pairs = provision::otr_pairs(&admin, "relay", spec.pairs).await?;
    let mut tasks = tokio::task::JoinSet::new();
    for (index, mut pair) in pairs.into_iter().enumerate() {
        let (payload, count) = (spec.payload_bytes, spec.frames_per_side);
        tasks.spawn(async move {
            provision::establish(&mut pair, Duration::from_secs(30)).await?;
            let relay = provision::hand_over(pair, payload, count).await?;
            Ok::<_, provision::ProvisionError>((index, relay))
        });
    }
    let mut relays = Vec::with_capacity(spec.pairs);
    while let Some(joined) = tasks.join_next().await {
        let joined = joined.map_err(|e| provision::ProvisionError::Handshake(e.to_string()))?;
        relays.push(joined?);
    }
    relays.sort_by_key(|(index, _)| *index);
    let mut links = Vec::with_capacity(relays.len());
    let mut frames = Vec::with_capacity(relays.len());
    for (_, relay) in relays {
        let first: Arc<[Bytes]> = relay.first_frames.into();
        let second: Arc<[Bytes]> = relay.second_frames.into();
        frames.push(PairFrames {
            first: first.clone(),
            second: second.clone(),
        });
        links.push(PairLink {
            first: relay.first,
            second: relay.second,
            first_frames: first,
            second_frames: second,
        });
    }
    Ok((links, frames))
}

/// Connects both sides of every pair to the forwarder, with the frames Sotto's run used.
async fn forwarder_pairs(
    addr: &str,
    frames: &[PairFrames],
) -> Result<Vec<PairLink>, ScenarioError> {
    let mut links = Vec::with_capacity(frames.len());
    for (index, pair) in frames.iter().enumerate() {
        let url = format!("ws://{addr}{PAIR_PATH}{index}");
        links.push(PairLink {
            first: connect(&url).await?,
            second: connect(&url).await?,
            first_frames: pair.first.clone(),
            second_frames: pair.second.clone(),
        });
    }
    Ok(links)
}

async fn connect(url: &str) -> Result<ClientSocket, ScenarioError> {
    let (socket, _) =
        tokio_tungstenite::connect_async_with_config(url, Some(client_websocket_config()), true)
            .await?;
    Ok(socket)
}

/// Runs the load against one target and reads what the target process cost meanwhile.
async fn measure(
    target: &str,
    pid: u32,
    measured_apart: bool,
    links: Vec<PairLink>,
    config: LoadConfig,
) -> Result<RelayResult, ScenarioError> {
    let own_pid = std::process::id();
    let own_before = process::cpu_time(own_pid)?;
    let cpu_before = process::cpu_time(pid)?;
    let outcome = load::run(links, config).await;
    let cpu = process::cpu_time(pid)?.saturating_sub(cpu_before);
    let own = process::cpu_time(own_pid)?.saturating_sub(own_before);
    let peak_rss_kib = process::peak_rss_kib(pid)?;
    Ok(result(
        target,
        outcome,
        own,
        ProcessCost {
            pid,
            measured_apart,
            cpu_secs: cpu.as_secs_f64(),
            peak_rss_kib,
        },
    ))
}

fn result(
    target: &str,
    outcome: LoadOutcome,
    load_generator_cpu: Duration,
    cost: ProcessCost,
) -> RelayResult {
    let seconds = outcome.elapsed.as_secs_f64().max(1e-9);
    RelayResult {
        target: target.to_owned(),
        sent: outcome.sent,
        delivered: outcome.delivered,
        elapsed_secs: seconds,
        delivered_per_sec: outcome.delivered as f64 / seconds,
        latency: Percentiles::from_nanos(&outcome.latency_ns),
        cpu_us_per_message: cost.cpu_secs * 1e6 / (outcome.delivered.max(1) as f64),
        load_generator_cpu_secs: load_generator_cpu.as_secs_f64(),
        cost,
        text_events: outcome.text_events.into_iter().collect::<BTreeMap<_, _>>(),
        failed_connections: outcome.failed_connections,
    }
}

fn note(progress: bool, line: &str) {
    if progress {
        eprintln!("{line}");
    }
}
