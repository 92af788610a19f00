//! The realtime connection: a background task reads the socket into a bounded channel (so a
//! caller that stops reading eventually stops the socket being read, like a slow client) and
//! writes what the caller sends.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use sotto_api::ephemeral::{Incoming, Outgoing};
use sotto_api::realtime::{ClientEvent, ServerEvent};
use sotto_api::{ErrorBody, Seq};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Bytes, Message, Utf8Bytes};

use crate::{Error, Result};

/// Options for [`crate::Client::connect`].
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Resume after this stored-event position (catch-up).
    pub since: Option<Seq>,
    /// An `Origin` header to send (browsers always send one).
    pub origin: Option<String>,
    /// How many received events to buffer before the socket stops being read.
    pub buffer: usize,
    /// Take over the id of this session's connection that dropped moments ago.
    pub resume: Option<String>,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            since: None,
            origin: None,
            buffer: 4096,
            resume: None,
        }
    }
}

/// What a connection delivers.
#[derive(Debug, Clone, PartialEq)]
pub enum RealtimeEvent {
    /// A JSON event.
    Event(ServerEvent),
    /// A binary ephemeral event.
    Ephemeral(Incoming),
    /// The connection ended (`code` is the server's close code, if it sent one).
    Closed {
        /// Close code.
        code: Option<u16>,
        /// Close reason.
        reason: String,
    },
}

enum Outbound {
    Text(String),
    Binary(Vec<u8>),
    Close,
}

/// An open realtime connection.
pub struct Realtime {
    /// This connection's id (from `hello`).
    pub connection_id: String,
    /// Whether the server let this connection take over a dropped connection's id.
    pub resumed: bool,
    events: mpsc::Receiver<RealtimeEvent>,
    out: mpsc::UnboundedSender<Outbound>,
    last_seq: Arc<AtomicI64>,
    task: JoinHandle<()>,
}

pub(crate) async fn connect(
    base: &str,
    headers: Vec<(String, String)>,
    opts: ConnectOptions,
) -> Result<Realtime> {
    let ws_base = base
        .replacen("http://", "ws://", 1)
        .replacen("https://", "wss://", 1);
    let mut query = Vec::new();
    if let Some(s) = opts.since {
        query.push(format!("since={s}"));
    }
    if let Some(r) = &opts.resume {
        // Server-issued ids are `c_` + hex, so they need no escaping; refuse anything else.
        if !r.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(Error::Ws("malformed connection id".into()));
        }
        query.push(format!("resume={r}"));
    }
    let url = format!("{ws_base}/api/v1/ws?{}", query.join("&"));
    let mut req = url
        .into_client_request()
        .map_err(|e| Error::Ws(e.to_string()))?;
    for (k, v) in headers
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .chain(opts.origin.clone().map(|o| ("origin".to_string(), o)))
    {
        let v = HeaderValue::from_str(&v).map_err(|e| Error::Ws(e.to_string()))?;
        let k: tokio_tungstenite::tungstenite::http::HeaderName =
            k.parse().map_err(|_| Error::Ws("bad header".into()))?;
        req.headers_mut().insert(k, v);
    }
    let (mut ws, _) = match tokio_tungstenite::connect_async(req).await {
        Ok(ok) => ok,
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            let status = resp.status().as_u16();
            let body = resp.body().clone().unwrap_or_default();
            return Err(match serde_json::from_slice::<ErrorBody>(&body) {
                Ok(b) => Error::Api {
                    status,
                    code: b.error.code,
                    message: b.error.message,
                },
                Err(_) => Error::Ws(format!("handshake refused with {status}")),
            });
        }
        Err(e) => return Err(Error::Ws(e.to_string())),
    };
    // The first frame is always `hello`.
    let (connection_id, resumed) = match tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
    {
        Ok(Some(Ok(Message::Text(t)))) => match serde_json::from_str::<ServerEvent>(t.as_str()) {
            Ok(ServerEvent::Hello {
                connection_id,
                resumed,
                ..
            }) => (connection_id, resumed),
            _ => return Err(Error::Decode("expected hello".into())),
        },
        _ => return Err(Error::Ws("no hello".into())),
    };
    let (tx, events) = mpsc::channel(opts.buffer.max(1));
    let (out, mut out_rx) = mpsc::unbounded_channel::<Outbound>();
    let last_seq = Arc::new(AtomicI64::new(opts.since.unwrap_or(0)));
    let task = tokio::spawn(async move {
        let closed = loop {
            tokio::select! {
                m = ws.next() => match m {
                    Some(Ok(Message::Text(t))) => {
                        let ev = match serde_json::from_str::<ServerEvent>(t.as_str()) {
                            Ok(ev) => ev,
                            Err(_) => continue,
                        };
                        if tx.send(RealtimeEvent::Event(ev)).await.is_err() {
                            break None;
                        }
                    }
                    Some(Ok(Message::Binary(b))) => {
                        if let Ok(i) = Incoming::decode(&b)
                            && tx.send(RealtimeEvent::Ephemeral(i)).await.is_err()
                        {
                            break None;
                        }
                    }
                    Some(Ok(Message::Close(f))) => {
                        break Some(RealtimeEvent::Closed {
                            code: f.as_ref().map(|f| u16::from(f.code)),
                            reason: f.map(|f| f.reason.to_string()).unwrap_or_default(),
                        });
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => break Some(RealtimeEvent::Closed { code: None, reason: e.to_string() }),
                    None => break Some(RealtimeEvent::Closed { code: None, reason: "eof".into() }),
                },
                o = out_rx.recv() => {
                    let r = match o {
                        Some(Outbound::Text(t)) => ws.send(Message::Text(Utf8Bytes::from(t))).await,
                        Some(Outbound::Binary(b)) => ws.send(Message::Binary(Bytes::from(b))).await,
                        // Every sender is gone: the `Realtime` was dropped, which is a network
                        // failure by contract (`drop_abruptly`, `Drop`), never a close handshake.
                        // Its abort lands only when this poll ends, so a task that was busy
                        // writing when the value was dropped gets here first; a close frame sent
                        // now would let the server end the connection's OTR sessions and refuse
                        // to resume its id.
                        None => break None,
                        Some(Outbound::Close) => {
                            let _ = ws.send(Message::Close(Some(CloseFrame {
                                code: 1000.into(),
                                reason: Utf8Bytes::from_static("bye"),
                            }))).await;
                            // Drain until the server answers the close.
                            while let Ok(Some(Ok(m))) = tokio::time::timeout(Duration::from_secs(2), ws.next()).await {
                                if matches!(m, Message::Close(_)) { break; }
                            }
                            break Some(RealtimeEvent::Closed { code: Some(1000), reason: "closed by client".into() });
                        }
                    };
                    if let Err(e) = r {
                        break Some(RealtimeEvent::Closed { code: None, reason: e.to_string() });
                    }
                }
            }
        };
        if let Some(c) = closed {
            let _ = tx.send(c).await;
        }
    });
    Ok(Realtime {
        connection_id,
        resumed,
        events,
        out,
        last_seq,
        task,
    })
}

impl Realtime {
    /// Records the position of an event the caller has taken, so [`Realtime::last_seq`] never
    /// runs ahead of what the caller processed (a reconnect then misses nothing buffered).
    fn taken(&self, ev: Option<RealtimeEvent>) -> Option<RealtimeEvent> {
        if let Some(RealtimeEvent::Event(ev)) = &ev {
            if let Some(s) = ev.seq() {
                self.last_seq.fetch_max(s, Ordering::SeqCst);
            }
            if let ServerEvent::CatchUpDone { last_seq, .. } = ev {
                self.last_seq.fetch_max(*last_seq, Ordering::SeqCst);
            }
        }
        ev
    }

    /// The next event; `None` once the connection is gone and everything was read.
    pub async fn next(&mut self) -> Option<RealtimeEvent> {
        let ev = self.events.recv().await;
        self.taken(ev)
    }

    /// The next event within `d`.
    pub async fn next_within(&mut self, d: Duration) -> Option<RealtimeEvent> {
        let ev = tokio::time::timeout(d, self.events.recv())
            .await
            .ok()
            .flatten();
        self.taken(ev)
    }

    /// Waits (at most `d`) for an event matching `pred`, discarding others.
    pub async fn wait_for(
        &mut self,
        d: Duration,
        mut pred: impl FnMut(&RealtimeEvent) -> bool,
    ) -> Option<RealtimeEvent> {
        let deadline = tokio::time::Instant::now() + d;
        loop {
            let ev = tokio::time::timeout_at(deadline, self.events.recv())
                .await
                .ok()
                .flatten();
            let ev = self.taken(ev)?;
            if pred(&ev) {
                return Some(ev);
            }
        }
    }

    /// Everything that arrives within `d`.
    pub async fn drain(&mut self, d: Duration) -> Vec<RealtimeEvent> {
        let deadline = tokio::time::Instant::now() + d;
        let mut v = Vec::new();
        while let Ok(Some(ev)) = tokio::time::timeout_at(deadline, self.events.recv()).await {
            if let Some(ev) = self.taken(Some(ev)) {
                v.push(ev);
            }
        }
        v
    }

    /// The last stored-event position seen (pass as `since` when reconnecting).
    pub fn last_seq(&self) -> Seq {
        self.last_seq.load(Ordering::SeqCst)
    }

    /// Sends a client event.
    pub fn send(&self, ev: &ClientEvent) -> Result<()> {
        let t = serde_json::to_string(ev).map_err(|e| Error::Decode(e.to_string()))?;
        self.send_raw_text(t)
    }

    /// Sends any text frame (tests use it for malformed input).
    pub fn send_raw_text(&self, t: String) -> Result<()> {
        self.out
            .send(Outbound::Text(t))
            .map_err(|_| Error::Ws("connection closed".into()))
    }

    /// Sends an ephemeral (binary) event.
    pub fn send_ephemeral(&self, ev: &Outgoing) -> Result<()> {
        self.send_raw_binary(ev.encode())
    }

    /// Sends any binary frame.
    pub fn send_raw_binary(&self, b: Vec<u8>) -> Result<()> {
        self.out
            .send(Outbound::Binary(b))
            .map_err(|_| Error::Ws("connection closed".into()))
    }

    /// Closes cleanly (a WebSocket close handshake), like a tab being closed.
    pub async fn close(mut self) {
        let _ = self.out.send(Outbound::Close);
        while let Some(ev) = self.events.recv().await {
            if matches!(ev, RealtimeEvent::Closed { .. }) {
                break;
            }
        }
        let _ = (&mut self.task).await;
    }

    /// Drops the TCP connection without a close handshake, like a network failure.
    pub fn drop_abruptly(self) {
        self.task.abort();
    }

    /// Like [`Realtime::drop_abruptly`] without giving up the value (the caller reconnects).
    pub fn abort(&self) {
        self.task.abort();
    }
}

impl Drop for Realtime {
    fn drop(&mut self) {
        self.task.abort();
    }
}
