//! `persisted`: ordinary (stored) DM messages, the path every chat message takes: the sender
//! `POST`s `/api/v1/rooms/{id}/messages` (the realtime socket accepts no sends: its client
//! events are `ping`, `set_away` and `e2e_state` only), the server commits the message through
//! its single batching writer (with its FTS5 search entry and its event-log row, in the same
//! transaction), publishes `message_created` to every connection of both members, and answers
//! the request. So each message has two clocks:
//!
//! - **acknowledgement**: the instant before the request is handed to the HTTP client → the
//!   response (201) is back;
//! - **fan-out**: the same first instant → the partner's realtime socket receives the event.
//!
//! P pairs of users, one DM each; both sides send, each with at most `window` requests in flight
//! (over the HTTP client's keep-alive connection pool, so up to `window` TCP connections), or
//! open-loop at its share of `rate`. Each text starts with the sender's message counter, which
//! is how the receiver finds the send instant (acknowledgements and fan-outs of concurrent
//! requests come in commit order, not send order, so a FIFO as in `otr-relay` would not do).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde::Serialize;
use sotto_api::RoomId;
use sotto_api::realtime::ServerEvent;
use sotto_api::rest::{MessageBody, SendMessageRequest};
use sotto_client::{Client, Method};
use tokio::sync::{Barrier, Semaphore};
use tokio_tungstenite::tungstenite::Message;

use super::socket::{self, RawSocket, RealtimeTarget};
use super::{ScenarioError, SottoSource};
use crate::load::new_histogram;
use crate::process;
use crate::provision::{self, ProvisionError, RAISED_LIMITS};
use crate::report::{Machine, Percentiles, ProcessCost, machine_line};
use crate::spawn::{SOTTO_ENVIRONMENT, SottoProcess};

/// What to run.
#[derive(Debug, Clone)]
pub struct PersistedSpec {
    /// Pairs of users, one DM each; both sides send.
    pub pairs: usize,
    /// Bytes of text per message (the counter prefix included).
    pub payload_bytes: usize,
    /// Requests in flight per sender.
    pub window: usize,
    /// Messages per second offered, all senders together (open loop; the window still caps
    /// what is in flight); `None`: as fast as the window allows.
    pub rate: Option<f64>,
    /// Seconds of sending.
    pub duration: Duration,
    /// The Sotto server.
    pub sotto: SottoSource,
    /// Progress lines on stderr.
    pub progress: bool,
}

/// The `persisted` scenario's report (the `--json` file).
#[derive(Debug, Clone, Serialize)]
pub struct PersistedReport {
    /// Always `persisted`.
    pub scenario: &'static str,
    /// The machine.
    pub machine: Machine,
    /// Pairs (two senders each).
    pub pairs: usize,
    /// Text bytes per message.
    pub payload_bytes: usize,
    /// Requests in flight per sender (at most, with a rate).
    pub window: usize,
    /// Messages per second offered, when paced.
    pub offered_per_sec: Option<f64>,
    /// Seconds of sending.
    pub duration_secs: f64,
    /// Settings the bench raised on the server.
    pub settings: std::collections::BTreeMap<String, u64>,
    /// Environment the server ran with.
    pub server_environment: std::collections::BTreeMap<String, String>,
    /// Requests sent.
    pub sent: u64,
    /// Requests answered 201.
    pub acknowledged: u64,
    /// Acknowledged messages whose event reached the partner's socket.
    pub fanned_out: u64,
    /// Requests that failed (status or transport), with the first few errors.
    pub failed: u64,
    /// The first errors seen.
    pub errors: Vec<String>,
    /// Acknowledged messages per second (first send → last acknowledgement).
    pub acknowledged_per_sec: f64,
    /// Fanned-out messages per second (first send → last fan-out).
    pub fanned_out_per_sec: f64,
    /// Send → 201.
    pub ack_latency: Percentiles,
    /// Send → the partner's socket has the event.
    pub fanout_latency: Percentiles,
    /// The server's database commits during the run (`sotto_db_write_batches_total`), when
    /// `/metrics` answered.
    pub commits: Option<f64>,
    /// Acknowledged messages per commit.
    pub messages_per_commit: Option<f64>,
    /// The server's cost over the sending and the drain.
    pub cost: ProcessCost,
    /// Server CPU per acknowledged message, microseconds.
    pub cpu_us_per_message: f64,
    /// CPU the bench process used meanwhile, seconds.
    pub load_generator_cpu_secs: f64,
}

impl PersistedReport {
    /// The markdown summary.
    pub fn markdown(&self) -> String {
        let offered = match self.offered_per_sec {
            Some(rate) => format!(", {rate:.0} msg/s offered"),
            None => String::new(),
        };
        let mut out = format!(
            "## persisted: {} pairs (both sides send), {} B texts, window {}{offered}, {:.0} s\n\n",
            self.pairs, self.payload_bytes, self.window, self.duration_secs
        );
        out.push_str(&machine_line(&self.machine));
        out.push_str(
            "\n| sent | acked | fanned out | failed | acked/s | fanned-out/s | ack p50 ms | ack p99 ms | ack p99.9 ms | fan-out p50 ms | fan-out p99 ms | fan-out p99.9 ms | msgs/commit | server CPU s | CPU µs/msg | peak RSS MiB | bench CPU s |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
        );
        let ms = |us: f64| us / 1000.0;
        out.push_str(&format!(
            "| {} | {} | {} | {} | {:.0} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {:.2} | {:.1} | {:.1} | {:.2} |\n",
            self.sent,
            self.acknowledged,
            self.fanned_out,
            self.failed,
            self.acknowledged_per_sec,
            self.fanned_out_per_sec,
            ms(self.ack_latency.p50_us),
            ms(self.ack_latency.p99_us),
            ms(self.ack_latency.p999_us),
            ms(self.fanout_latency.p50_us),
            ms(self.fanout_latency.p99_us),
            ms(self.fanout_latency.p999_us),
            self.messages_per_commit
                .map_or_else(|| "?".to_owned(), |m| format!("{m:.1}")),
            self.cost.cpu_secs,
            self.cpu_us_per_message,
            self.cost.peak_rss_kib as f64 / 1024.0,
            self.load_generator_cpu_secs,
        ));
        if let Some(first) = self.errors.first() {
            out.push_str(&format!("\nfirst error: {first}\n"));
        }
        if !self.cost.measured_apart {
            out.push_str("\nThe server ran inside the bench process; CPU and memory include the load generator.\n");
        }
        out
    }
}

/// One direction of a pair: the sender's counter and the send instants not yet fanned out.
struct Lane {
    next: AtomicU64,
    pending: Mutex<HashMap<u64, Instant>>,
    sent: AtomicU64,
    acknowledged: AtomicU64,
    fanned_out: AtomicU64,
    /// Nanoseconds from the run's start to the last acknowledgement / fan-out.
    last_ack_ns: AtomicU64,
    last_fanout_ns: AtomicU64,
    /// Set once every request of the sender has been answered.
    sender_done: std::sync::atomic::AtomicBool,
}

impl Lane {
    fn new() -> Lane {
        Lane {
            next: AtomicU64::new(0),
            pending: Mutex::new(HashMap::new()),
            sent: AtomicU64::new(0),
            acknowledged: AtomicU64::new(0),
            fanned_out: AtomicU64::new(0),
            last_ack_ns: AtomicU64::new(0),
            last_fanout_ns: AtomicU64::new(0),
            sender_done: std::sync::atomic::AtomicBool::new(false),
        }
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Instant>> {
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn complete(&self) -> bool {
        self.sender_done.load(Ordering::Acquire)
            && self.fanned_out.load(Ordering::Relaxed) >= self.acknowledged.load(Ordering::Acquire)
    }
}

/// One side of a pair: its HTTP client (logged in) and its realtime socket.
struct Side {
    client: Client,
    socket: RawSocket,
}

struct PersistedPair {
    room: RoomId,
    first: Side,
    second: Side,
}

/// Runs the scenario.
pub async fn run(spec: &PersistedSpec) -> Result<PersistedReport, ScenarioError> {
    let mut machine = Machine::now();
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
    let outcome = async {
        let admin = provision::admin(&url, &setup_token).await?;
        let pairs = pairs(&admin, spec.pairs).await?;
        if spec.progress {
            eprintln!("persisted: {} pairs ready at {url}", spec.pairs);
        }
        let commits_before = socket::read_metric(&admin, "sotto_db_write_batches_total").await;
        let own_pid = std::process::id();
        let own_before = process::cpu_time(own_pid)?;
        let cpu_before = process::cpu_time(pid)?;
        let outcome = drive(pairs, spec).await;
        let cpu = process::cpu_time(pid)?.saturating_sub(cpu_before);
        let own = process::cpu_time(own_pid)?.saturating_sub(own_before);
        let peak_rss_kib = process::peak_rss_kib(pid)?;
        let commits_after = socket::read_metric(&admin, "sotto_db_write_batches_total").await;
        let commits = commits_before.zip(commits_after).map(|(b, a)| a - b);
        Ok::<_, ScenarioError>((outcome, cpu, own, peak_rss_kib, commits))
    }
    .await;
    if let Some(server) = spawned {
        server.stop();
    }
    let (outcome, cpu, own, peak_rss_kib, commits) = outcome?;
    machine.finish();
    let per_sec = |count: u64, ns: u64| count as f64 / (ns.max(1) as f64 / 1e9);
    Ok(PersistedReport {
        scenario: "persisted",
        machine,
        pairs: spec.pairs,
        payload_bytes: spec.payload_bytes,
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
        sent: outcome.sent,
        acknowledged: outcome.acknowledged,
        fanned_out: outcome.fanned_out,
        failed: outcome.failed,
        errors: outcome.errors,
        acknowledged_per_sec: per_sec(outcome.acknowledged, outcome.last_ack_ns),
        fanned_out_per_sec: per_sec(outcome.fanned_out, outcome.last_fanout_ns),
        ack_latency: Percentiles::from_nanos(&outcome.ack_ns),
        fanout_latency: Percentiles::from_nanos(&outcome.fanout_ns),
        messages_per_commit: commits
            .filter(|c| *c > 0.0)
            .map(|c| outcome.acknowledged as f64 / c),
        commits,
        cpu_us_per_message: cpu.as_secs_f64() * 1e6 / outcome.acknowledged.max(1) as f64,
        cost: ProcessCost {
            pid,
            measured_apart,
            cpu_secs: cpu.as_secs_f64(),
            peak_rss_kib,
        },
        load_generator_cpu_secs: own.as_secs_f64(),
    })
}

/// Creates the users (`bench-msg-<i>-a` / `-b`, logged in once), their DMs, and one realtime
/// socket per user.
async fn pairs(admin: &Client, count: usize) -> Result<Vec<PersistedPair>, ScenarioError> {
    let target = RealtimeTarget::from_url(admin.base_url())?;
    let mut tasks = tokio::task::JoinSet::new();
    for index in 0..count {
        let (admin, target) = (admin.clone(), target.clone());
        tasks.spawn(async move {
            let first = provision::user(&admin, &format!("bench-msg-{index}-a")).await?;
            let second = provision::user(&admin, &format!("bench-msg-{index}-b")).await?;
            let room = first
                .dm(second.user_id())
                .await
                .map_err(ProvisionError::from)?
                .id;
            let open = |client: Client| {
                let target = target.clone();
                async move {
                    let token = client.token().unwrap_or_default().to_owned();
                    let socket =
                        socket::connect(&target, &token, None, socket::small_buffers()).await?;
                    Ok::<_, ScenarioError>(Side { client, socket })
                }
            };
            let first = open(first).await?;
            let second = open(second).await?;
            Ok::<_, ScenarioError>((
                index,
                PersistedPair {
                    room,
                    first,
                    second,
                },
            ))
        });
    }
    let mut pairs = Vec::with_capacity(count);
    while let Some(joined) = tasks.join_next().await {
        let joined = joined.map_err(|e| ProvisionError::Handshake(e.to_string()))?;
        pairs.push(joined?);
    }
    pairs.sort_by_key(|(index, _)| *index);
    Ok(pairs.into_iter().map(|(_, pair)| pair).collect())
}

/// What the whole run produced.
struct DriveOutcome {
    sent: u64,
    acknowledged: u64,
    fanned_out: u64,
    failed: u64,
    errors: Vec<String>,
    last_ack_ns: u64,
    last_fanout_ns: u64,
    ack_ns: Histogram<u64>,
    fanout_ns: Histogram<u64>,
}

/// How long to wait for fan-outs after the last acknowledgement.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

async fn drive(pairs: Vec<PersistedPair>, spec: &PersistedSpec) -> DriveOutcome {
    let start = Instant::now();
    let send_until = start + spec.duration;
    let senders = pairs.len() * 2;
    let per_sender_rate = spec.rate.map(|r| r / senders.max(1) as f64);
    let everyone_done = Arc::new(Barrier::new(senders));
    let mut lanes = Vec::with_capacity(senders);
    let mut sending = tokio::task::JoinSet::new();
    let mut receiving = tokio::task::JoinSet::new();
    for pair in pairs {
        let forward = Arc::new(Lane::new());
        let backward = Arc::new(Lane::new());
        lanes.push(forward.clone());
        lanes.push(backward.clone());
        let first_id = pair.first.client.user_id();
        let second_id = pair.second.client.user_id();
        let clock = Clock { start, send_until };
        let payload = spec.payload_bytes;
        let window = spec.window.max(1);
        sending.spawn(send(
            pair.first.client,
            pair.room,
            forward.clone(),
            clock,
            payload,
            window,
            per_sender_rate,
        ));
        sending.spawn(send(
            pair.second.client,
            pair.room,
            backward.clone(),
            clock,
            payload,
            window,
            per_sender_rate,
        ));
        receiving.spawn(receive(
            pair.first.socket,
            second_id,
            backward,
            clock,
            everyone_done.clone(),
        ));
        receiving.spawn(receive(
            pair.second.socket,
            first_id,
            forward,
            clock,
            everyone_done.clone(),
        ));
    }
    let progress = spec.progress.then(|| {
        let lanes = lanes.clone();
        tokio::spawn(print_progress(lanes, start, spec.duration))
    });
    let mut ack_ns = new_histogram();
    let mut fanout_ns = new_histogram();
    let mut failed = 0;
    let mut errors = Vec::new();
    while let Some(joined) = sending.join_next().await {
        match joined {
            Ok(tally) => {
                let _ = ack_ns.add(&tally.latency_ns);
                failed += tally.failed;
                errors.extend(tally.errors);
            }
            Err(error) => errors.push(format!("sender task failed: {error}")),
        }
    }
    while let Some(joined) = receiving.join_next().await {
        match joined {
            Ok(tally) => {
                let _ = fanout_ns.add(&tally.latency_ns);
                errors.extend(tally.errors);
            }
            Err(error) => errors.push(format!("receiver task failed: {error}")),
        }
    }
    if let Some(progress) = progress {
        progress.abort();
        eprintln!();
    }
    errors.truncate(10);
    let sum = |f: fn(&Lane) -> u64| lanes.iter().map(|l| f(l)).sum::<u64>();
    let max = |f: fn(&Lane) -> u64| lanes.iter().map(|l| f(l)).max().unwrap_or(0);
    DriveOutcome {
        sent: sum(|l| l.sent.load(Ordering::Relaxed)),
        acknowledged: sum(|l| l.acknowledged.load(Ordering::Relaxed)),
        fanned_out: sum(|l| l.fanned_out.load(Ordering::Relaxed)),
        failed,
        errors,
        last_ack_ns: max(|l| l.last_ack_ns.load(Ordering::Relaxed)),
        last_fanout_ns: max(|l| l.last_fanout_ns.load(Ordering::Relaxed)),
        ack_ns,
        fanout_ns,
    }
}

#[derive(Debug, Clone, Copy)]
struct Clock {
    start: Instant,
    send_until: Instant,
}

impl Clock {
    fn since_start_ns(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.start).as_nanos()).unwrap_or(u64::MAX)
    }
}

struct Tally {
    latency_ns: Histogram<u64>,
    failed: u64,
    errors: Vec<String>,
}

fn record(histogram: &mut Histogram<u64>, elapsed: Duration) {
    let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
    let _ = histogram.record(nanos.max(1));
}

/// One sender: requests with at most `window` in flight, closed loop or paced.
async fn send(
    client: Client,
    room: RoomId,
    lane: Arc<Lane>,
    clock: Clock,
    payload: usize,
    window: usize,
    rate: Option<f64>,
) -> Tally {
    let mut tally = Tally {
        latency_ns: new_histogram(),
        failed: 0,
        errors: Vec::new(),
    };
    let path: Arc<str> = format!("/api/v1/rooms/{room}/messages").into();
    let filler: Arc<str> = "x".repeat(payload.saturating_sub(11)).into();
    let permits = Arc::new(Semaphore::new(window));
    let mut in_flight = tokio::task::JoinSet::new();
    let deadline = tokio::time::sleep_until(tokio::time::Instant::from_std(clock.send_until));
    tokio::pin!(deadline);
    let mut pace = rate.map(|per_sec| {
        let period = Duration::from_secs_f64(1.0 / per_sec.max(1e-3)).max(Duration::from_millis(1));
        let mut ticks = tokio::time::interval(period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        (per_sec, 0u64, ticks)
    });
    let spawn_one = |in_flight: &mut tokio::task::JoinSet<Result<Duration, String>>,
                     permit: tokio::sync::OwnedSemaphorePermit| {
        let (client, lane, path, filler) =
            (client.clone(), lane.clone(), path.clone(), filler.clone());
        in_flight.spawn(async move {
            let n = lane.next.fetch_add(1, Ordering::Relaxed);
            let request = SendMessageRequest {
                body: MessageBody::Text {
                    text: format!("{n:010} {filler}"),
                },
                attachment_id: None,
            };
            let body = serde_json::to_vec(&request).map_err(|e| e.to_string())?;
            let sent_at = Instant::now();
            lane.pending().insert(n, sent_at);
            lane.sent.fetch_add(1, Ordering::Relaxed);
            let response = client
                .raw(Method::POST, &path, Some(("application/json", body)), &[])
                .await;
            let elapsed = sent_at.elapsed();
            drop(permit);
            match response {
                Ok(r) if r.status == 201 || r.status == 200 => {
                    lane.acknowledged.fetch_add(1, Ordering::Release);
                    Ok(elapsed)
                }
                other => {
                    lane.pending().remove(&n);
                    Err(match other {
                        Ok(r) => format!(
                            "status {}: {}",
                            r.status,
                            String::from_utf8_lossy(&r.body)
                                .chars()
                                .take(200)
                                .collect::<String>()
                        ),
                        Err(e) => format!("request: {e}"),
                    })
                }
            }
        });
    };
    loop {
        tokio::select! {
            biased;
            Some(done) = in_flight.join_next() => note(&mut tally, &lane, clock, done),
            () = &mut deadline => break,
            permit = permits.clone().acquire_owned(), if pace.is_none() => {
                let Ok(permit) = permit else { break };
                spawn_one(&mut in_flight, permit);
            }
            _ = async {
                match &mut pace {
                    Some((_, _, ticks)) => ticks.tick().await,
                    None => std::future::pending().await,
                }
            }, if pace.is_some() => {
                if let Some((per_sec, scheduled, _)) = &mut pace {
                    let due = ((clock.start.elapsed().as_secs_f64() * *per_sec) as u64)
                        .saturating_sub(*scheduled);
                    for _ in 0..due {
                        // A message the window holds back stays due.
                        let Ok(permit) = permits.clone().try_acquire_owned() else { break };
                        *scheduled += 1;
                        spawn_one(&mut in_flight, permit);
                    }
                }
            }
        }
    }
    while let Some(done) = in_flight.join_next().await {
        note(&mut tally, &lane, clock, done);
    }
    lane.sender_done.store(true, Ordering::Release);
    tally
}

fn note(
    tally: &mut Tally,
    lane: &Lane,
    clock: Clock,
    done: Result<Result<Duration, String>, tokio::task::JoinError>,
) {
    match done {
        Ok(Ok(elapsed)) => {
            record(&mut tally.latency_ns, elapsed);
            lane.last_ack_ns
                .fetch_max(clock.since_start_ns(Instant::now()), Ordering::Relaxed);
        }
        Ok(Err(error)) => {
            tally.failed += 1;
            if tally.errors.len() < 3 {
                tally.errors.push(error);
            }
        }
        Err(error) => {
            tally.failed += 1;
            if tally.errors.len() < 3 {
                tally.errors.push(format!("request task: {error}"));
            }
        }
    }
}

/// One receiving socket: records the fan-out of every message the partner sent, until the
/// partner's sender is done and everything it had acknowledged has arrived (or the drain
/// timeout passes).
async fn receive(
    socket: RawSocket,
    partner: i64,
    inbound: Arc<Lane>,
    clock: Clock,
    everyone_done: Arc<Barrier>,
) -> Tally {
    let mut tally = Tally {
        latency_ns: new_histogram(),
        failed: 0,
        errors: Vec::new(),
    };
    let (mut sink, mut stream) = socket.split();
    let mut check = tokio::time::interval(Duration::from_millis(5));
    let mut give_up_at: Option<Instant> = None;
    loop {
        tokio::select! {
            biased;
            incoming = stream.next() => match incoming {
                Some(Ok(Message::Text(text))) => {
                    let now = Instant::now();
                    if let Ok(ServerEvent::MessageCreated { message, .. }) =
                        serde_json::from_str::<ServerEvent>(text.as_str())
                        && message.author_id == partner
                        && let MessageBody::Text { text } = &message.body
                        && let Some(n) = text.get(..10).and_then(|d| d.parse::<u64>().ok())
                    {
                        match inbound.pending().remove(&n) {
                            Some(sent_at) => {
                                record(&mut tally.latency_ns, now.saturating_duration_since(sent_at));
                                inbound.fanned_out.fetch_add(1, Ordering::Relaxed);
                                inbound
                                    .last_fanout_ns
                                    .fetch_max(clock.since_start_ns(now), Ordering::Relaxed);
                            }
                            None => tally.errors.push(format!("message {n} fanned out twice or never sent")),
                        }
                    }
                }
                Some(Ok(Message::Close(frame))) => {
                    tally.errors.push(format!("closed by the server: {frame:?}"));
                    break;
                }
                Some(Ok(_)) => {}
                Some(Err(error)) => {
                    tally.errors.push(format!("read: {error}"));
                    break;
                }
                None => {
                    tally.errors.push("connection ended".into());
                    break;
                }
            },
            _ = check.tick() => {
                if inbound.complete() {
                    break;
                }
                if inbound.sender_done.load(Ordering::Acquire) {
                    let limit = *give_up_at.get_or_insert_with(|| Instant::now() + DRAIN_TIMEOUT);
                    if Instant::now() >= limit {
                        tally.errors.push(format!(
                            "{} acknowledged messages never fanned out",
                            inbound.acknowledged.load(Ordering::Relaxed)
                                .saturating_sub(inbound.fanned_out.load(Ordering::Relaxed))
                        ));
                        break;
                    }
                }
            }
        }
    }
    everyone_done.wait().await;
    let _ = sink.close().await;
    tally
}

async fn print_progress(lanes: Vec<Arc<Lane>>, start: Instant, duration: Duration) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    let mut last = 0u64;
    loop {
        tick.tick().await;
        let acked: u64 = lanes
            .iter()
            .map(|l| l.acknowledged.load(Ordering::Relaxed))
            .sum();
        eprint!(
            "\r  {:>5.1}/{:.0} s  acknowledged {acked:>10}  ({:>8}/s)   ",
            start.elapsed().as_secs_f64(),
            duration.as_secs_f64(),
            acked - last
        );
        last = acked;
    }
}
