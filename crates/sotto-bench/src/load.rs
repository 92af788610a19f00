//! The load generator shared by every relay target: pairs of already-connected WebSockets, each
//! side sending pre-built frames with at most `window` frames in flight towards its partner.
//!
//! It is built to stay out of the measurement on a machine it shares with the server:
//! - one task per connection, which both sends and receives;
//! - frames are built before the run and sent as reference-counted `Bytes` (no copy, no
//!   allocation per message on the sending side);
//! - frames that fit the window are fed into the write buffer and flushed once;
//! - with a rate, each connection sends open-loop at its share of it (the window still caps
//!   what is in flight), so two targets can be compared at the same offered load;
//! - latency is measured with a per-direction FIFO of send instants: the frame format has no
//!   unencrypted place for a timestamp, and one connection delivers frames in order, so the
//!   n-th frame received was the n-th frame sent. The FIFO holds at most `window` instants and is
//!   allocated once.
//!
//! A connection is anything that implements [`LoadConnection`]: a WebSocket (Sotto, the
//! forwarder) here, an XMPP stream in [`crate::xmpp`] (ejabberd).

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use tokio::net::TcpStream;
use tokio::sync::{Barrier, Semaphore};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Bytes, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// A client WebSocket as the load generator drives it.
pub type ClientSocket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The client side's WebSocket buffers: small reads, a write buffer that holds a window's worth.
pub fn client_websocket_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(64 * 1024)
        .max_write_buffer_size(256 * 1024)
}

/// A connection the load generator can drive: split into a half that sends pre-built frames and
/// a half that reports what arrives.
pub trait LoadConnection: Send + 'static {
    /// The sending half.
    type Sender: LoadSender;
    /// The receiving half.
    type Receiver: LoadReceiver;
    /// Splits the connection.
    fn split(self) -> (Self::Sender, Self::Receiver);
}

/// The sending half of a [`LoadConnection`].
pub trait LoadSender: Send + 'static {
    /// Queues one pre-built frame (already in the target's wire format) for the next flush.
    fn feed(&mut self, frame: &Bytes) -> impl Future<Output = Result<(), String>> + Send;
    /// Writes out everything fed.
    fn flush(&mut self) -> impl Future<Output = Result<(), String>> + Send;
    /// Ends the connection cleanly.
    fn close(&mut self) -> impl Future<Output = ()> + Send;
}

/// What the receiving half of a connection saw.
#[derive(Debug)]
pub enum Arrival {
    /// One of the partner's frames.
    Frame,
    /// Something else worth counting, labelled (`presence`, `otr/refused/rate_limited`...).
    Event(String),
    /// The other end closed the connection (with what it said).
    Closed(String),
    /// Something to ignore (a ping, a pong).
    Ignored,
}

/// The receiving half of a [`LoadConnection`].
pub trait LoadReceiver: Send + 'static {
    /// The next arrival; `None` when the connection has ended. Must be cancel-safe: the load
    /// generator polls it in a `select!` and drops it when another branch wins.
    fn next(&mut self) -> impl Future<Output = Option<Result<Arrival, String>>> + Send;
}

impl LoadConnection for ClientSocket {
    type Sender = futures_util::stream::SplitSink<ClientSocket, Message>;
    type Receiver = futures_util::stream::SplitStream<ClientSocket>;

    fn split(self) -> (Self::Sender, Self::Receiver) {
        StreamExt::split(self)
    }
}

impl LoadSender for futures_util::stream::SplitSink<ClientSocket, Message> {
    async fn feed(&mut self, frame: &Bytes) -> Result<(), String> {
        SinkExt::feed(self, Message::Binary(frame.clone()))
            .await
            .map_err(|error| format!("write: {error}"))
    }

    async fn flush(&mut self) -> Result<(), String> {
        SinkExt::flush(self)
            .await
            .map_err(|error| format!("write: {error}"))
    }

    async fn close(&mut self) {
        let _ = SinkExt::close(self).await;
    }
}

impl LoadReceiver for futures_util::stream::SplitStream<ClientSocket> {
    async fn next(&mut self) -> Option<Result<Arrival, String>> {
        let message = match StreamExt::next(self).await? {
            Ok(message) => message,
            Err(error) => return Some(Err(format!("read: {error}"))),
        };
        Some(Ok(match message {
            Message::Binary(_) => Arrival::Frame,
            Message::Text(text) => Arrival::Event(text_event_kind(text.as_str())),
            Message::Close(frame) => Arrival::Closed(format!("{frame:?}")),
            _ => Arrival::Ignored,
        }))
    }
}

/// Two connected sockets and the frames each side sends (cycled in order).
pub struct PairLink<C = ClientSocket> {
    /// The first side's socket.
    pub first: C,
    /// The second side's socket.
    pub second: C,
    /// What the first side sends, already in the target's wire format.
    pub first_frames: Arc<[Bytes]>,
    /// What the second side sends.
    pub second_frames: Arc<[Bytes]>,
}

/// How hard and how long to push.
#[derive(Debug, Clone, Copy)]
pub struct LoadConfig {
    /// Frames in flight per direction of a pair.
    pub window: usize,
    /// Messages per second offered, all connections together; `None` sends as fast as the
    /// window allows. With a rate the window still caps what is in flight.
    pub rate: Option<f64>,
    /// How long the senders send.
    pub duration: Duration,
    /// How long to wait for frames still in flight after the senders stop.
    pub drain_timeout: Duration,
    /// Print a progress line on stderr every second.
    pub progress: bool,
}

/// What a run delivered.
#[derive(Debug)]
pub struct LoadOutcome {
    /// Frames sent, both directions, all pairs.
    pub sent: u64,
    /// Frames received by the partner.
    pub delivered: u64,
    /// From the first send to the end of the drain.
    pub elapsed: Duration,
    /// Send-to-receive time of every delivered frame, nanoseconds.
    pub latency_ns: Histogram<u64>,
    /// Text events received during the run, by kind (`otr/refused/rate_limited`, `presence`...).
    pub text_events: BTreeMap<String, u64>,
    /// Connections that failed before the end (with the first error seen).
    pub failed_connections: Vec<String>,
}

/// One direction of a pair: written by the sender, read by the receiver.
struct Lane {
    window: Semaphore,
    send_instants: Mutex<VecDeque<Instant>>,
    sent: AtomicU64,
    delivered: AtomicU64,
    finished: AtomicBool,
}

impl Lane {
    fn new(window: usize) -> Lane {
        Lane {
            window: Semaphore::new(window),
            send_instants: Mutex::new(VecDeque::with_capacity(window)),
            sent: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            finished: AtomicBool::new(false),
        }
    }

    fn instants(&self) -> std::sync::MutexGuard<'_, VecDeque<Instant>> {
        self.send_instants
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// What one connection's task reports.
struct ConnectionTally {
    latency_ns: Histogram<u64>,
    text_events: BTreeMap<String, u64>,
    error: Option<String>,
}

/// Drives every pair for `config.duration`, then drains.
pub async fn run<C: LoadConnection>(pairs: Vec<PairLink<C>>, config: LoadConfig) -> LoadOutcome {
    let window = config.window.max(1);
    let start = Instant::now();
    let send_until = start + config.duration;
    let give_up_at = send_until + config.drain_timeout;
    let mut lanes = Vec::with_capacity(pairs.len() * 2);
    let mut tasks = tokio::task::JoinSet::new();
    let everyone_done = Arc::new(Barrier::new(pairs.len() * 2));
    let per_connection_rate = config
        .rate
        .map_or(0.0, |rate| rate / (pairs.len().max(1) * 2) as f64);
    for pair in pairs {
        let forward = Arc::new(Lane::new(window));
        let backward = Arc::new(Lane::new(window));
        lanes.push(forward.clone());
        lanes.push(backward.clone());
        let deadlines = Deadlines {
            send_until,
            give_up_at,
        };
        tasks.spawn(drive(
            pair.first,
            pair.first_frames,
            forward.clone(),
            backward.clone(),
            deadlines,
            per_connection_rate,
            everyone_done.clone(),
        ));
        tasks.spawn(drive(
            pair.second,
            pair.second_frames,
            backward,
            forward,
            deadlines,
            per_connection_rate,
            everyone_done.clone(),
        ));
    }
    let progress = config.progress.then(|| {
        let lanes = lanes.clone();
        tokio::spawn(print_progress(lanes, start, config.duration))
    });

    let mut latency_ns = new_histogram();
    let mut text_events = BTreeMap::new();
    let mut failed_connections = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(tally) => {
                let _ = latency_ns.add(&tally.latency_ns);
                for (kind, count) in tally.text_events {
                    *text_events.entry(kind).or_insert(0) += count;
                }
                if let Some(error) = tally.error {
                    failed_connections.push(error);
                }
            }
            Err(error) => failed_connections.push(format!("task failed: {error}")),
        }
    }
    let elapsed = start.elapsed();
    if let Some(progress) = progress {
        progress.abort();
        eprintln!();
    }
    LoadOutcome {
        sent: lanes.iter().map(|l| l.sent.load(Ordering::Relaxed)).sum(),
        delivered: lanes
            .iter()
            .map(|l| l.delivered.load(Ordering::Relaxed))
            .sum(),
        elapsed,
        latency_ns,
        text_events,
        failed_connections,
    }
}

#[derive(Debug, Clone, Copy)]
struct Deadlines {
    send_until: Instant,
    give_up_at: Instant,
}

/// Largest number of frames fed before one flush.
const MAX_BATCH: usize = 64;

/// One connection: sends on `outbound` while the window allows, receives what `inbound` carries.
async fn drive<C: LoadConnection>(
    socket: C,
    frames: Arc<[Bytes]>,
    outbound: Arc<Lane>,
    inbound: Arc<Lane>,
    deadlines: Deadlines,
    per_connection_rate: f64,
    everyone_done: Arc<Barrier>,
) -> ConnectionTally {
    let mut tally = ConnectionTally {
        latency_ns: new_histogram(),
        text_events: BTreeMap::new(),
        error: None,
    };
    let (mut sink, mut stream) = socket.split();
    let mut next_frame = 0usize;
    let mut sending = !frames.is_empty();
    if !sending {
        outbound.finished.store(true, Ordering::Release);
    }
    let send_deadline = tokio::time::Instant::from_std(deadlines.send_until);
    // While draining, check every few milliseconds whether the partner's frames have all arrived.
    let mut drain_check = tokio::time::interval(Duration::from_millis(5));
    let mut pace = (per_connection_rate > 0.0).then(|| Pace::new(per_connection_rate));
    loop {
        tokio::select! {
            biased;
            incoming = stream.next() => match incoming {
                Some(Ok(Arrival::Frame)) => {
                    let now = Instant::now();
                    let sent_at = inbound.instants().pop_front();
                    match sent_at {
                        Some(at) => {
                            let nanos = now.saturating_duration_since(at).as_nanos();
                            let _ = tally.latency_ns.record(u64::try_from(nanos).unwrap_or(u64::MAX).max(1));
                        }
                        None => *tally.text_events.entry("unmatched binary frame".into()).or_insert(0) += 1,
                    }
                    inbound.delivered.fetch_add(1, Ordering::Relaxed);
                    inbound.window.add_permits(1);
                }
                Some(Ok(Arrival::Event(kind))) => {
                    *tally.text_events.entry(kind).or_insert(0) += 1;
                }
                Some(Ok(Arrival::Closed(frame))) => {
                    // The partner closing once everything has arrived is the normal end (the
                    // forwarder passes its close on); anything earlier is a failure.
                    if sending || !lane_complete(&inbound) {
                        tally.error = Some(format!("closed by the server: {frame}"));
                    }
                    break;
                }
                Some(Ok(Arrival::Ignored)) => {}
                Some(Err(error)) => {
                    tally.error = Some(error);
                    break;
                }
                None => {
                    if sending || !lane_complete(&inbound) {
                        tally.error = Some("connection ended".into());
                    }
                    break;
                }
            },
            permit = outbound.window.acquire(), if sending && pace.is_none() => {
                let Ok(permit) = permit else { break };
                permit.forget();
                // Everything else the window allows goes into the same flush.
                let permits = 1 + take_permits(&outbound, MAX_BATCH - 1);
                if let Err(error) = send_batch(&mut sink, &frames, &mut next_frame, &outbound, permits).await {
                    tally.error = Some(error);
                    break;
                }
            },
            () = next_tick(&mut pace), if sending && pace.is_some() => {
                let due = pace.as_ref().map_or(0, |p| p.due());
                let permits = take_permits(&outbound, due.min(MAX_BATCH as u64) as usize);
                if permits > 0 {
                    if let Some(pace) = &mut pace {
                        pace.scheduled += permits;
                    }
                    if let Err(error) = send_batch(&mut sink, &frames, &mut next_frame, &outbound, permits).await {
                        tally.error = Some(error);
                        break;
                    }
                }
            },
            () = tokio::time::sleep_until(send_deadline), if sending => {
                sending = false;
                outbound.finished.store(true, Ordering::Release);
            },
            _ = drain_check.tick(), if !sending => {
                if lane_complete(&inbound) || Instant::now() >= deadlines.give_up_at {
                    break;
                }
            },
        }
    }
    outbound.finished.store(true, Ordering::Release);
    // Nobody closes before every connection has stopped reading: a relay tells the partner of
    // a closed connection (Sotto's `peer_disconnected`), which is the end of the run, not part
    // of it. Then close cleanly, so a relay sees a departure rather than a network failure.
    everyone_done.wait().await;
    sink.close().await;
    tally
}

/// Takes up to `most` more window permits without waiting; returns how many.
fn take_permits(lane: &Lane, most: usize) -> u64 {
    let mut taken = 0;
    while taken < most as u64 {
        match lane.window.try_acquire() {
            Ok(permit) => permit.forget(),
            Err(_) => break,
        }
        taken += 1;
    }
    taken
}

/// Feeds `count` frames (their permits already taken) and flushes once.
async fn send_batch<S: LoadSender>(
    sink: &mut S,
    frames: &[Bytes],
    next_frame: &mut usize,
    outbound: &Lane,
    count: u64,
) -> Result<(), String> {
    let mut result = Ok(());
    let mut fed = 0;
    while fed < count {
        outbound.instants().push_back(Instant::now());
        let frame = &frames[*next_frame % frames.len()];
        *next_frame = next_frame.wrapping_add(1);
        fed += 1;
        if let Err(error) = sink.feed(frame).await {
            result = Err(error);
            break;
        }
    }
    if result.is_ok()
        && let Err(error) = sink.flush().await
    {
        result = Err(error);
    }
    outbound.sent.fetch_add(fed, Ordering::Release);
    if result.is_err() {
        outbound.finished.store(true, Ordering::Release);
    }
    result
}

/// Open-loop pacing of one connection: frames are due at a steady rate from the start; a
/// frame the window holds back stays due and goes out as soon as a permit returns.
struct Pace {
    start: Instant,
    per_sec: f64,
    scheduled: u64,
    ticks: tokio::time::Interval,
}

impl Pace {
    fn new(per_sec: f64) -> Pace {
        // Tokio's timer has millisecond resolution: tick at most every millisecond and send
        // whatever has come due since.
        let period = Duration::from_secs_f64(1.0 / per_sec).max(Duration::from_millis(1));
        let mut ticks = tokio::time::interval(period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        Pace {
            start: Instant::now(),
            per_sec,
            scheduled: 0,
            ticks,
        }
    }

    fn due(&self) -> u64 {
        let target = (self.start.elapsed().as_secs_f64() * self.per_sec) as u64;
        target.saturating_sub(self.scheduled)
    }
}

async fn next_tick(pace: &mut Option<Pace>) {
    match pace {
        Some(pace) => {
            pace.ticks.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// Whether the sender of a lane has stopped and everything it sent has arrived.
fn lane_complete(lane: &Lane) -> bool {
    lane.finished.load(Ordering::Acquire)
        && lane.delivered.load(Ordering::Relaxed) >= lane.sent.load(Ordering::Acquire)
}

/// A short label for a text event: its `type`, and for OTR notices the notice and code.
fn text_event_kind(text: &str) -> String {
    let Ok(value) = serde_json::from_str::<serde_json::Value>(text) else {
        return "unreadable text".into();
    };
    ["type", "notice", "code"]
        .iter()
        .filter_map(|key| value.get(key).and_then(|v| v.as_str()))
        .collect::<Vec<_>>()
        .join("/")
}

/// A histogram of nanoseconds from 1 ns to 100 s, 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 100_000_000_000, 3).expect("constant, valid bounds")
}

async fn print_progress(lanes: Vec<Arc<Lane>>, start: Instant, duration: Duration) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    let mut last = 0u64;
    loop {
        tick.tick().await;
        let delivered: u64 = lanes
            .iter()
            .map(|l| l.delivered.load(Ordering::Relaxed))
            .sum();
        eprint!(
            "\r  {:>5.1}/{:.0} s  delivered {delivered:>10}  ({:>8}/s)   ",
            start.elapsed().as_secs_f64(),
            duration.as_secs_f64(),
            delivered - last
        );
        last = delivered;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_events_are_labelled_by_type_notice_and_code() {
        assert_eq!(
            text_event_kind(
                r#"{"type":"otr","room_id":1,"notice":"refused","code":"rate_limited","message":"x"}"#
            ),
            "otr/refused/rate_limited"
        );
        assert_eq!(
            text_event_kind(r#"{"type":"presence","user_id":1,"status":"online"}"#),
            "presence"
        );
        assert_eq!(text_event_kind("not json"), "unreadable text");
    }
}
