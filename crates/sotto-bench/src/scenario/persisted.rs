//! `persisted`: ordinary (stored) DM messages, the path every chat message takes: the sender
//! `POST`s `/api/v1/rooms/{id}/messages` (the realtime socket accepts no sends: its client
//! events are `ping`, `set_away` and `e2e_state` only), the server commits the message through
//! its single batching writer (with its FTS5 search entry and its event-log row, in the same
//! transaction), publishes `message_created` to every connection of both members, and answers
//! the request. So each message has two clocks:
//!
//! - **acknowledgement**: the instant before the request is written → the response (201) is
//!   back;
//! - **fan-out**: the same first instant → the partner's realtime socket receives the event.
//!
//! P pairs of users, one DM each; both sides send, each over `window` keep-alive HTTP/1.1
//! connections with one request in flight on each: closed loop (the next request as soon as
//! the previous is answered), or paced, where every connection claims the next slot of one
//! schedule shared by all senders (`rate` messages/s) and waits for it (a slot claimed late is
//! sent at once; the window still caps what is in flight).
//!
//! The load generator shares the machine's cores with the server, so it does per message as
//! little as it can and allocates nothing on the happy path: each connection builds its
//! request once ([`http1`] writes it and reads the answer into a reused buffer) and rewrites
//! two fixed-width numbers in the text in place: the sender's message counter and the send
//! instant (nanoseconds since the run's start). The receiver reads both back from the raw event
//! frame without deserializing it, so the fan-out latency needs no table of send instants
//! shared between sender and receiver (acknowledgements and fan-outs of concurrent requests
//! come in commit order, not send order, so a FIFO as in `otr-relay` would not do either); the
//! counter, marked in a bitmap, catches duplicates.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures_util::stream::FuturesUnordered;
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde::Serialize;
use sotto_api::rest::{MessageBody, SendMessageRequest};
use sotto_api::{RoomId, UserId};
use sotto_client::Client;
use tokio::sync::Barrier;
use tokio_tungstenite::tungstenite::Message;

use super::http1::{self, Http1Connection};
use super::socket::{self, RawSocket, RealtimeTarget, SocketError};
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
    /// Bytes of text per message, the stamp included (its message number and send instant
    /// take 27, the least a text can have).
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

/// One direction of a pair: what its sender and the partner's receiver count, shared.
struct Lane {
    /// Requests sent; also the number the next message gets.
    sent: AtomicU64,
    acknowledged: AtomicU64,
    fanned_out: AtomicU64,
    /// Nanoseconds from the run's start to the last acknowledgement / fan-out.
    last_ack_ns: AtomicU64,
    last_fanout_ns: AtomicU64,
    /// Set once every request of the sender has been answered.
    sender_done: AtomicBool,
    /// Numbers of the messages whose request failed. Rare, so a lock is fine; kept so that a
    /// message committed although its request failed does not count as an acknowledged
    /// message fanned out.
    failed: Mutex<Vec<u64>>,
}

impl Lane {
    fn new() -> Lane {
        Lane {
            sent: AtomicU64::new(0),
            acknowledged: AtomicU64::new(0),
            fanned_out: AtomicU64::new(0),
            last_ack_ns: AtomicU64::new(0),
            last_fanout_ns: AtomicU64::new(0),
            sender_done: AtomicBool::new(false),
            failed: Mutex::new(Vec::new()),
        }
    }

    fn failed(&self) -> std::sync::MutexGuard<'_, Vec<u64>> {
        self.failed.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One side of a pair: its user, its realtime socket, and its sending connections with the
/// request they send.
struct Side {
    user_id: UserId,
    socket: RawSocket,
    connections: Vec<Http1Connection>,
    request: MessageRequest,
}

struct PersistedPair {
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
        let pairs = pairs(&admin, spec).await?;
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

/// Creates the users (`bench-msg-<i>-a` / `-b`, logged in once), their DMs, one realtime
/// socket per user, and `window` sending connections per user (opened before the clock starts,
/// so connecting is not measured).
async fn pairs(admin: &Client, spec: &PersistedSpec) -> Result<Vec<PersistedPair>, ScenarioError> {
    let target = RealtimeTarget::from_url(admin.base_url())?;
    let (window, payload) = (spec.window.max(1), spec.payload_bytes);
    let mut tasks = tokio::task::JoinSet::new();
    for index in 0..spec.pairs {
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
                    let token = client.token().unwrap_or_default();
                    let socket =
                        socket::connect(&target, token, None, socket::small_buffers()).await?;
                    let request = MessageRequest::new(target.server, room, token, payload)?;
                    let mut connections = Vec::with_capacity(window);
                    for _ in 0..window {
                        connections.push(
                            Http1Connection::connect(target.server)
                                .await
                                .map_err(SocketError::from)?,
                        );
                    }
                    Ok::<_, ScenarioError>(Side {
                        user_id: client.user_id(),
                        socket,
                        connections,
                        request,
                    })
                }
            };
            let first = open(first).await?;
            let second = open(second).await?;
            Ok::<_, ScenarioError>((index, PersistedPair { first, second }))
        });
    }
    let mut pairs = Vec::with_capacity(spec.pairs);
    while let Some(joined) = tasks.join_next().await {
        let joined = joined.map_err(|e| ProvisionError::Handshake(e.to_string()))?;
        pairs.push(joined?);
    }
    pairs.sort_by_key(|(index, _)| *index);
    Ok(pairs.into_iter().map(|(_, pair)| pair).collect())
}

/// Digits of the message number at the start of each text.
const NUMBER_DIGITS: usize = 10;
/// Digits of the send instant (nanoseconds since the run's start: 16 digits last 115 days).
const SENT_DIGITS: usize = 16;
/// The stamp: number, a space, send instant.
const STAMP_LEN: usize = NUMBER_DIGITS + 1 + SENT_DIGITS;

/// One sender's `POST`, head and body, built once; sending a message only rewrites the two
/// numbers of its stamp in place.
#[derive(Debug, Clone)]
struct MessageRequest {
    bytes: Vec<u8>,
    /// Where the number's digits start.
    number_at: usize,
    /// Where the send instant's digits start.
    sent_at: usize,
}

impl MessageRequest {
    /// The request for `room` with a text of `payload` bytes (at least the stamp): the body is
    /// the API's own `SendMessageRequest` serialized once, so it has the exact wire shape.
    fn new(
        server: SocketAddr,
        room: RoomId,
        token: &str,
        payload: usize,
    ) -> Result<MessageRequest, SocketError> {
        let text = template_text(payload);
        let body = serde_json::to_vec(&SendMessageRequest {
            body: MessageBody::Text { text: text.clone() },
            attachment_id: None,
        })
        .map_err(|e| SocketError::Opening(format!("message body: {e}")))?;
        // Digits can be rewritten in place only if the text went into the JSON verbatim, which
        // it does when it needs no escaping (digits, spaces and 'x' never do).
        let quoted = format!("\"{text}\"");
        let text_at = find(&body, quoted.as_bytes()).ok_or_else(|| {
            SocketError::Opening("the message text was escaped in its JSON".into())
        })? + 1;
        // The token goes into a header line as is.
        if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(SocketError::Opening(
                "the session token is not a header-safe value".into(),
            ));
        }
        let mut bytes = format!(
            "POST /api/v1/rooms/{room}/messages HTTP/1.1\r\nHost: {server}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        let number_at = bytes.len() + text_at;
        bytes.extend_from_slice(&body);
        Ok(MessageRequest {
            bytes,
            number_at,
            sent_at: number_at + NUMBER_DIGITS + 1,
        })
    }

    /// Writes `number` and `sent_ns` into the text; false if either does not fit its digits.
    fn stamp(&mut self, number: u64, sent_ns: u64) -> bool {
        http1::write_decimal(
            &mut self.bytes[self.number_at..self.number_at + NUMBER_DIGITS],
            number,
        ) && http1::write_decimal(
            &mut self.bytes[self.sent_at..self.sent_at + SENT_DIGITS],
            sent_ns,
        )
    }
}

/// The text before stamping: `0000000000 0000000000000000 xxx…`, `payload` bytes long (the
/// stamp's 27 at least).
fn template_text(payload: usize) -> String {
    let mut text = format!("{:0w$} {:0s$}", 0, 0, w = NUMBER_DIGITS, s = SENT_DIGITS);
    let filler = payload.saturating_sub(STAMP_LEN);
    if filler >= 2 {
        // A separator, as long as a filler follows it (a text ending in a blank might be
        // trimmed).
        text.push(' ');
        text.extend(std::iter::repeat_n('x', filler - 1));
    } else {
        text.extend(std::iter::repeat_n('x', filler));
    }
    text
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The number and send instant of a `message_created` event by `author`, read from the raw
/// frame without deserializing it (the fields are searched by their JSON keys; the stamp is
/// fixed-width digits at the start of the text). `None` for any other frame.
fn stamp_of(frame: &str, author: UserId) -> Option<(u64, u64)> {
    if !frame.contains(r#""type":"message_created""#) {
        return None;
    }
    let key = r#""author_id":"#;
    let after_author = &frame[frame.find(key)? + key.len()..];
    let digits = after_author.bytes().take_while(u8::is_ascii_digit).count();
    let id = http1::parse_decimal(&after_author.as_bytes()[..digits])?;
    if i64::try_from(id).ok()? != author {
        return None;
    }
    let key = r#""text":""#;
    let text = &after_author.as_bytes()[after_author.find(key)? + key.len()..];
    let stamp = text.get(..STAMP_LEN)?;
    if stamp[NUMBER_DIGITS] != b' ' {
        return None;
    }
    Some((
        http1::parse_decimal(&stamp[..NUMBER_DIGITS])?,
        http1::parse_decimal(&stamp[NUMBER_DIGITS + 1..])?,
    ))
}

/// The message numbers one receiver has seen (bit `n`), growing with the highest number.
#[derive(Debug, Default)]
struct Seen(Vec<u64>);

impl Seen {
    /// Marks `n`; false if it was marked already.
    fn insert(&mut self, n: u64) -> bool {
        let (word, bit) = ((n / 64) as usize, 1u64 << (n % 64));
        if word >= self.0.len() {
            // Doubling: amortized, not per message.
            self.0.resize((word + 1).max(self.0.len() * 2), 0);
        }
        let fresh = self.0[word] & bit == 0;
        self.0[word] |= bit;
        fresh
    }

    fn contains(&self, n: u64) -> bool {
        self.0
            .get((n / 64) as usize)
            .is_some_and(|word| word & (1u64 << (n % 64)) != 0)
    }
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

/// How long one request may go unanswered before it counts as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

async fn drive(pairs: Vec<PersistedPair>, spec: &PersistedSpec) -> DriveOutcome {
    let start = Instant::now();
    let send_until = start + spec.duration;
    let senders = pairs.len() * 2;
    let clock = Clock { start, send_until };
    let pace = spec.rate.map(|per_sec| {
        Arc::new(Pace {
            next_slot: AtomicU64::new(0),
            start,
            per_sec,
        })
    });
    let everyone_done = Arc::new(Barrier::new(senders));
    let mut lanes = Vec::with_capacity(senders);
    let mut sending = tokio::task::JoinSet::new();
    let mut receiving = tokio::task::JoinSet::new();
    for pair in pairs {
        let forward = Arc::new(Lane::new());
        let backward = Arc::new(Lane::new());
        lanes.push(forward.clone());
        lanes.push(backward.clone());
        let (first, second) = (pair.first, pair.second);
        sending.spawn(send(
            first.connections,
            first.request,
            forward.clone(),
            clock,
            pace.clone(),
        ));
        sending.spawn(send(
            second.connections,
            second.request,
            backward.clone(),
            clock,
            pace.clone(),
        ));
        receiving.spawn(receive(
            first.socket,
            second.user_id,
            backward,
            clock,
            everyone_done.clone(),
        ));
        receiving.spawn(receive(
            second.socket,
            first.user_id,
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

/// The paced mode's schedule, shared by every connection of every sender: slot `k` is due
/// `k / per_sec` seconds after the start.
struct Pace {
    next_slot: AtomicU64,
    start: Instant,
    per_sec: f64,
}

impl Pace {
    /// Claims the next slot; its due instant (`None` if it is beyond any representable one).
    fn claim(&self) -> Option<Instant> {
        let slot = self.next_slot.fetch_add(1, Ordering::Relaxed);
        let offset = Duration::try_from_secs_f64(slot as f64 / self.per_sec).ok()?;
        self.start.checked_add(offset)
    }
}

struct Tally {
    latency_ns: Histogram<u64>,
    failed: u64,
    errors: Vec<String>,
}

impl Tally {
    fn new() -> Tally {
        Tally {
            latency_ns: new_histogram(),
            failed: 0,
            errors: Vec::new(),
        }
    }

    /// Keeps the first few errors (a broken run would otherwise fill memory with copies).
    fn error(&mut self, error: String) {
        if self.errors.len() < 3 {
            self.errors.push(error);
        }
    }
}

fn record(histogram: &mut Histogram<u64>, nanos: u64) {
    let _ = histogram.record(nanos.max(1));
}

/// One sender: its `window` connections, each with one request in flight, in this one task
/// (they share its tally without contention).
async fn send(
    connections: Vec<Http1Connection>,
    request: MessageRequest,
    lane: Arc<Lane>,
    clock: Clock,
    pace: Option<Arc<Pace>>,
) -> Tally {
    let tally = Mutex::new(Tally::new());
    let server = connections.first().and_then(|c| c.peer_addr().ok());
    let mut running: FuturesUnordered<_> = connections
        .into_iter()
        .map(|connection| {
            send_over(
                connection,
                server,
                request.clone(),
                &lane,
                clock,
                pace.as_deref(),
                &tally,
            )
        })
        .collect();
    while running.next().await.is_some() {}
    drop(running);
    lane.sender_done.store(true, Ordering::Release);
    tally.into_inner().unwrap_or_else(PoisonError::into_inner)
}

/// One connection of a sender: the next request as soon as the previous is answered (closed
/// loop) or at the next slot it claims (paced), until the sending time is over. A connection
/// the server closed is opened again; one that cannot be ends this loop.
async fn send_over(
    connection: Http1Connection,
    server: Option<SocketAddr>,
    mut request: MessageRequest,
    lane: &Lane,
    clock: Clock,
    pace: Option<&Pace>,
    tally: &Mutex<Tally>,
) {
    let tally = || tally.lock().unwrap_or_else(PoisonError::into_inner);
    let mut open = Some(connection);
    let mut last_ack_ns = 0;
    loop {
        // Paced: latencies count from the slot's due instant, so a message that waited for a
        // free connection (the window full near saturation) counts its wait (no coordinated
        // omission). Closed loop: from the send.
        let mut due_at = None;
        if let Some(pace) = pace {
            let Some(due) = pace.claim().filter(|due| *due < clock.send_until) else {
                break;
            };
            if due > Instant::now() {
                tokio::time::sleep_until(tokio::time::Instant::from_std(due)).await;
            }
            due_at = Some(due);
        }
        let connection = match &mut open {
            Some(connection) => connection,
            None => {
                let reopened = match server {
                    Some(server) => Http1Connection::connect(server).await,
                    None => Err(std::io::Error::other("no server address")),
                };
                match reopened {
                    Ok(connection) => open.insert(connection),
                    Err(error) => {
                        tally().error(format!("reconnect: {error}"));
                        break;
                    }
                }
            }
        };
        let now = Instant::now();
        if now >= clock.send_until {
            break;
        }
        let sent_at = due_at.map_or(now, |due| due.min(now));
        let number = lane.sent.fetch_add(1, Ordering::Relaxed);
        if !request.stamp(number, clock.since_start_ns(sent_at)) {
            lane.failed().push(number);
            let mut tally = tally();
            tally.failed += 1;
            tally.error(format!("message {number}: its stamp does not fit the text"));
            break;
        }
        // What to remember of the answer, taken before the connection's buffer is reused.
        // A server that stops answering fails the request rather than hanging the run.
        let answer =
            tokio::time::timeout(REQUEST_TIMEOUT, connection.exchange(&request.bytes)).await;
        let outcome = match answer {
            Err(_) => Err((
                format!("request: no answer in {} s", REQUEST_TIMEOUT.as_secs()),
                true,
            )),
            Ok(answer) => match answer {
                Ok(response) if response.status == 201 || response.status == 200 => {
                    Ok(response.close)
                }
                Ok(response) => Err((
                    format!(
                        "status {}: {}",
                        response.status,
                        String::from_utf8_lossy(response.body)
                            .chars()
                            .take(200)
                            .collect::<String>()
                    ),
                    response.close,
                )),
                Err(error) => Err((format!("request: {error}"), true)),
            },
        };
        let answered_at = Instant::now();
        let close = match outcome {
            Ok(close) => {
                lane.acknowledged.fetch_add(1, Ordering::Release);
                last_ack_ns = clock.since_start_ns(answered_at);
                let elapsed = answered_at.saturating_duration_since(sent_at).as_nanos();
                record(
                    &mut tally().latency_ns,
                    u64::try_from(elapsed).unwrap_or(u64::MAX),
                );
                close
            }
            Err((error, close)) => {
                lane.failed().push(number);
                let mut tally = tally();
                tally.failed += 1;
                tally.error(error);
                close
            }
        };
        if close {
            open = None;
        }
    }
    lane.last_ack_ns.fetch_max(last_ack_ns, Ordering::Relaxed);
}

/// One receiving socket: records the fan-out of every message the partner sent, until the
/// partner's sender is done and everything it had acknowledged has arrived (or the drain
/// timeout passes).
async fn receive(
    socket: RawSocket,
    partner: UserId,
    inbound: Arc<Lane>,
    clock: Clock,
    everyone_done: Arc<Barrier>,
) -> Tally {
    let mut tally = Tally::new();
    let mut seen = Seen::default();
    let mut last_fanout_ns = 0;
    // Messages of the partner that fanned out although their request failed (known once the
    // sender is done); they are not acknowledged messages.
    let failed_seen = |seen: &Seen| {
        inbound
            .failed()
            .iter()
            .filter(|n| seen.contains(**n))
            .count() as u64
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
                    if let Some((n, sent_ns)) = stamp_of(text.as_str(), partner) {
                        if n >= inbound.sent.load(Ordering::Relaxed) {
                            tally.error(format!("message {n} fanned out but was never sent"));
                        } else if !seen.insert(n) {
                            tally.error(format!("message {n} fanned out twice"));
                        } else {
                            let now_ns = clock.since_start_ns(now);
                            record(&mut tally.latency_ns, now_ns.saturating_sub(sent_ns));
                            inbound.fanned_out.fetch_add(1, Ordering::Relaxed);
                            last_fanout_ns = now_ns;
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
                if inbound.sender_done.load(Ordering::Acquire) {
                    let fanned_out = inbound
                        .fanned_out
                        .load(Ordering::Relaxed)
                        .saturating_sub(failed_seen(&seen));
                    let acknowledged = inbound.acknowledged.load(Ordering::Acquire);
                    if fanned_out >= acknowledged {
                        break;
                    }
                    let limit = *give_up_at.get_or_insert_with(|| Instant::now() + DRAIN_TIMEOUT);
                    if Instant::now() >= limit {
                        tally.errors.push(format!(
                            "{} acknowledged messages never fanned out",
                            acknowledged - fanned_out
                        ));
                        break;
                    }
                }
            }
        }
    }
    // Only this receiver counts the lane's fan-outs, so the correction cannot race.
    inbound
        .fanned_out
        .fetch_sub(failed_seen(&seen), Ordering::Relaxed);
    inbound
        .last_fanout_ns
        .fetch_max(last_fanout_ns, Ordering::Relaxed);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn request(payload: usize) -> MessageRequest {
        let server = "127.0.0.1:8080".parse().expect("address");
        MessageRequest::new(server, 7, "tok3n", payload).expect("builds")
    }

    fn body(request: &MessageRequest) -> &[u8] {
        let at = find(&request.bytes, b"\r\n\r\n").expect("head ends") + 4;
        &request.bytes[at..]
    }

    #[test]
    fn the_request_is_the_api_body_with_the_stamp_in_place() {
        let mut request = request(64);
        assert!(request.stamp(42, 1_234_567_890));
        let head =
            String::from_utf8_lossy(&request.bytes[..request.bytes.len() - body(&request).len()]);
        assert!(head.starts_with("POST /api/v1/rooms/7/messages HTTP/1.1\r\n"));
        assert!(head.contains("\r\nAuthorization: Bearer tok3n\r\n"));
        assert!(head.contains(&format!("\r\nContent-Length: {}\r\n", body(&request).len())));
        let parsed: SendMessageRequest =
            serde_json::from_slice(body(&request)).expect("valid JSON");
        let MessageBody::Text { text } = parsed.body else {
            panic!("a text body");
        };
        assert_eq!(text.len(), 64);
        assert!(
            text.starts_with("0000000042 0000001234567890 xxx"),
            "{text}"
        );
        assert!(parsed.attachment_id.is_none());
    }

    #[test]
    fn texts_are_the_payload_long_or_the_stamp_at_least() {
        for payload in [0, 27, 28, 29, 256] {
            let text = template_text(payload);
            assert_eq!(text.len(), payload.max(STAMP_LEN), "{payload}");
            assert!(!text.ends_with(' '));
        }
    }

    #[test]
    fn stamps_too_large_for_their_digits_are_refused() {
        let mut request = request(64);
        assert!(!request.stamp(10_000_000_000, 0));
        assert!(!request.stamp(0, 10_000_000_000_000_000));
    }

    #[test]
    fn the_stamp_is_read_back_from_the_event_frame_of_the_partner_only() {
        let mut request = request(64);
        assert!(request.stamp(9, 77));
        let sent: SendMessageRequest = serde_json::from_slice(body(&request)).expect("valid");
        let event = sotto_api::realtime::ServerEvent::MessageCreated {
            seq: 5,
            message: sotto_api::rest::Message {
                id: 11,
                room_id: 7,
                author_id: 3,
                body: sent.body,
                attachment: None,
                created_at: 1,
                edited_at: None,
            },
        };
        let frame = serde_json::to_string(&event).expect("serializes");
        assert_eq!(stamp_of(&frame, 3), Some((9, 77)));
        assert_eq!(stamp_of(&frame, 33), None);
        let edited = frame.replace("message_created", "message_edited");
        assert_eq!(stamp_of(&edited, 3), None);
    }

    #[test]
    fn seen_marks_each_number_once() {
        let mut seen = Seen::default();
        assert!(seen.insert(0) && seen.insert(1000) && seen.insert(63));
        assert!(!seen.insert(1000));
        assert!(seen.contains(63) && !seen.contains(64) && !seen.contains(1_000_000));
    }
}
