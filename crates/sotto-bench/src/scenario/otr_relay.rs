//! `otr-relay`: P pairs with established OTR sessions push pre-encrypted frames through the real
//! server, then the very same frames, sizes and pairing through the bare forwarder, and
//! optionally through ejabberd as XMPP chat messages whose body is the base64 text of the same
//! frames (the peer: [`crate::ejabberd`], [`crate::xmpp`]).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio_tungstenite::tungstenite::Bytes;

use super::{ScenarioError, SottoSource};
use crate::ejabberd::{self, EjabberdServer};
use crate::forwarder::PAIR_PATH;
use crate::load::{self, ClientSocket, LoadConfig, LoadOutcome, PairLink, client_websocket_config};
use crate::process;
use crate::provision::{self, RAISED_LIMITS};
use crate::report::{
    EjabberdSetup, Machine, OtrRelayReport, PeerRatios, Percentiles, ProcessCost, Ratios,
    RelayResult,
};
use crate::spawn::{ForwarderProcess, SOTTO_ENVIRONMENT, SottoProcess};
use crate::xmpp::{self, Account, XmppConnection};

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
    /// Also run ejabberd (installed from Debian's package when missing) as the peer, with
    /// these modules.
    pub ejabberd: Option<ejabberd::Modules>,
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
    // Fail before the long part when the peer cannot be had.
    let installed = if spec.ejabberd.is_some() {
        note(spec.progress, "ejabberd: checking the package");
        Some(
            tokio::task::spawn_blocking(ejabberd::ensure_installed)
                .await
                .map_err(|e| ejabberd::EjabberdError::NotReady(format!("install task: {e}")))??,
        )
    } else {
        None
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
    let mut ejabberd_setup = None;
    if let (Some(installed), Some(modules)) = (installed, spec.ejabberd) {
        let (result, setup) =
            run_ejabberd(&frames, installed, modules, config, spec.progress).await?;
        results.push(result);
        ejabberd_setup = Some(setup);
    }
    let by_target = |name: &str| results.iter().find(|r| r.target == name);
    let ratios = match (by_target("sotto"), by_target("forwarder")) {
        (Some(sotto), Some(forwarder)) => Some(Ratios {
            throughput: sotto.delivered_per_sec / forwarder.delivered_per_sec,
            p99: sotto.latency.p99_us / forwarder.latency.p99_us,
        }),
        _ => None,
    };
    let ejabberd_ratios = match (by_target("sotto"), by_target("ejabberd")) {
        (Some(sotto), Some(ejabberd)) => Some(PeerRatios {
            throughput: sotto.delivered_per_sec / ejabberd.delivered_per_sec,
            cpu_per_message: sotto.cpu_us_per_message / ejabberd.cpu_us_per_message,
            p99: sotto.latency.p99_us / ejabberd.latency.p99_us,
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
        ejabberd: ejabberd_setup,
        ejabberd_ratios,
    })
}

/// Starts ejabberd, registers and logs in both users of every pair, replays the frames as
/// chat messages, and stops it (on every path: the server is a drop guard).
async fn run_ejabberd(
    frames: &[PairFrames],
    installed: ejabberd::Installed,
    modules: ejabberd::Modules,
    config: LoadConfig,
    progress: bool,
) -> Result<(RelayResult, EjabberdSetup), ScenarioError> {
    let server = tokio::task::spawn_blocking(move || EjabberdServer::start(modules))
        .await
        .map_err(|e| ejabberd::EjabberdError::NotReady(format!("start task: {e}")))??;
    note(
        progress,
        &format!(
            "ejabberd {} at {} (node {}, up in {:.1} s): registering {} users",
            installed.version,
            server.addr,
            server.node(),
            server.start_up.as_secs_f64(),
            frames.len() * 2
        ),
    );
    let registering = std::time::Instant::now();
    let links = xmpp_pairs(server.addr, frames).await?;
    let users_took = registering.elapsed();
    let stanza_bytes = links
        .iter()
        .flat_map(|l| l.first_frames.iter().chain(l.second_frames.iter()))
        .fold((usize::MAX, 0), |(min, max), f| {
            (min.min(f.len()), max.max(f.len()))
        });
    note(progress, "ejabberd: running");
    let result = measure("ejabberd", server.pid(), true, links, config).await?;
    let setup = EjabberdSetup {
        version: installed.version,
        installed_now: installed.installed_now,
        install_check_secs: installed.took.as_secs_f64(),
        start_up_secs: server.start_up.as_secs_f64(),
        register_and_login_secs: users_took.as_secs_f64(),
        stanza_bytes,
        modules,
        config: ejabberd::config(server.addr.port(), modules),
    };
    server.stop();
    Ok((result, setup))
}

/// Two XMPP users per pair (registered in-band, logged in, bound, available) whose messages
/// carry the base64 text of the frames Sotto's run used, addressed to the partner's full JID.
async fn xmpp_pairs(
    addr: std::net::SocketAddr,
    frames: &[PairFrames],
) -> Result<Vec<PairLink<XmppConnection>>, ScenarioError> {
    let account = |index: usize, side: &str| Account {
        addr,
        domain: ejabberd::DOMAIN.to_owned(),
        user: format!("pair{index}{side}"),
        password: "bench".to_owned(),
        resource: "bench".to_owned(),
    };
    let mut tasks = tokio::task::JoinSet::new();
    for (index, pair) in frames.iter().enumerate() {
        let (first, second) = (account(index, "a"), account(index, "b"));
        let stanzas = |to: &Account, frames: &Arc<[Bytes]>| -> Arc<[Bytes]> {
            let to = to.full_jid();
            frames.iter().map(|f| xmpp::chat_stanza(&to, f)).collect()
        };
        let (first_frames, second_frames) =
            (stanzas(&second, &pair.first), stanzas(&first, &pair.second));
        tasks.spawn(async move {
            let timeout = Duration::from_secs(30);
            let first = XmppConnection::register_and_connect(&first, timeout).await?;
            let second = XmppConnection::register_and_connect(&second, timeout).await?;
            Ok::<_, xmpp::XmppError>((
                index,
                PairLink {
                    first,
                    second,
                    first_frames,
                    second_frames,
                },
            ))
        });
    }
    let mut links = Vec::with_capacity(frames.len());
    while let Some(joined) = tasks.join_next().await {
        let joined = joined.map_err(|e| xmpp::XmppError::Io(std::io::Error::other(e)))?;
        links.push(joined?);
    }
    links.sort_by_key(|(index, _)| *index);
    Ok(links.into_iter().map(|(_, link)| link).collect())
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
async fn measure<C: load::LoadConnection>(
    target: &str,
    pid: u32,
    measured_apart: bool,
    links: Vec<PairLink<C>>,
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
