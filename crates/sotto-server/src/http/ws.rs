//! The realtime WebSocket (`GET /api/v1/ws`): one per client connection.
//!
//! A connection: authenticate (bearer or cookie) and check `Origin` before upgrading; register
//! with the hub (so live events start queueing, except stored ones while catching up); send
//! `hello`; replay stored events after `since`, switch stored events to live and read the log
//! once more, and send `catch_up_done`; then loop over queued frames, client frames, server
//! close orders and heartbeats. Stored events already replayed are dropped from the live queue
//! by `seq`, so the client sees no gap and no duplicate. When it ends, presence is updated and a
//! `ConnectionClosed { clean }` signal goes on the bus.
//!
//! Binary frames on the OTR channel and `e2e_state` events go to the off-the-record relay
//! service ([`crate::services::otr_relay`]), which decides everything about them; other
//! ephemeral channels are rate-limited per connection and routed here.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::http::header;
use axum::response::Response;
use futures_util::SinkExt;
use sotto_api::ephemeral::{Incoming, OutgoingRef, Target};
use sotto_api::otr;
use sotto_api::realtime::{ClientEvent, ServerEvent};
use sotto_api::rest::WsQuery;
use sotto_api::{ErrorCode, Seq};

use super::extract::{ApiQuery, Auth};
use crate::app::App;
use crate::bus::{BusMessage, Frame};
use crate::error::{ApiError, ApiResult};
use crate::metrics::METRICS;
use crate::realtime::ConnHandle;
use crate::secrets::random_hex;
use crate::services::accounts::Caller;
use crate::services::events;
use crate::services::otr_relay::Departure;

/// Largest client text frame (client events are tiny).
const MAX_CLIENT_TEXT: usize = 4096;
/// Longest client ephemeral header (version, target kind, room, connection id, channel): a
/// frame may exceed `otr.max_frame_bytes` by this much.
const MAX_EPHEMERAL_HEADER: usize = 1 + 1 + 8 + 1 + sotto_api::ephemeral::MAX_CONNECTION_ID_LEN + 1;
/// Most stored events replayed on reconnect before asking the client to reload history.
const MAX_CATCH_UP: i64 = 10_000;
/// Stored events read per page of a catch-up.
const CATCH_UP_PAGE: i64 = 500;

/// Most queued frames written to the socket before one flush. Frames already queued when the
/// first one is taken are fed into the write buffer together (which writes to the socket
/// whenever it holds `--ws-write-buffer` bytes) and flushed once: under load one system call
/// carries many frames; alone, a frame still leaves at once. The bound keeps one busy
/// connection from holding its task for long.
const MAX_WRITE_BATCH: usize = 64;

fn origin_allowed(app: &App, headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        // Not a browser (browsers always send Origin on WebSocket upgrades).
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    if origin == app.public_url || app.config.allowed_origins.iter().any(|o| o == origin) {
        return true;
    }
    // Same origin as the host the browser connected to.
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    !host.is_empty() && (origin == format!("http://{host}") || origin == format!("https://{host}"))
}

pub(super) async fn upgrade(
    State(app): State<App>,
    headers: HeaderMap,
    Auth(caller): Auth,
    ApiQuery(q): ApiQuery<WsQuery>,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> ApiResult<Response> {
    if !origin_allowed(&app, &headers) {
        return Err(ApiError::new(
            ErrorCode::OriginRejected,
            "cross-origin WebSocket refused",
        ));
    }
    let ws =
        ws.map_err(|_| ApiError::new(ErrorCode::InvalidInput, "expected a WebSocket upgrade"))?;
    let cfg = &app.config;
    let ws = ws
        .read_buffer_size(cfg.ws_read_buffer)
        .write_buffer_size(cfg.ws_write_buffer)
        .max_message_size(cfg.ws_max_message)
        .max_frame_size(cfg.ws_max_message);
    Ok(ws.on_upgrade(move |socket| run(app, socket, caller, q.since, q.resume)))
}

fn text(ev: &ServerEvent) -> Message {
    Message::Text(Utf8Bytes::from(
        serde_json::to_string(ev).unwrap_or_default(),
    ))
}

fn error_frame(code: ErrorCode, message: impl Into<String>) -> Frame {
    let ev = ServerEvent::Error {
        code,
        message: message.into(),
    };
    Frame::Text {
        json: serde_json::to_string(&ev).unwrap_or_default().into(),
        seq: None,
    }
}

/// How a connection ended.
enum End {
    /// The client sent a close frame.
    Clean,
    /// Network loss, protocol error or heartbeat timeout.
    Dropped,
    /// The server closed it (revoked, deactivated, slow, shutdown), with this close code.
    Server(u16),
}

async fn run(
    app: App,
    mut socket: WebSocket,
    caller: Caller,
    since: Option<Seq>,
    resume: Option<String>,
) {
    // Fix the starting position before registering (see `serve`).
    let since = match since {
        Some(s) => s,
        None => match Box::pin(events::head(&app.db)).await {
            Ok(h) => h,
            Err(_) => return,
        },
    };
    let grace = Duration::from_secs(app.config.resume_grace_secs);
    let resumed = resume
        .as_deref()
        .and_then(|id| app.hub.claim(id, caller.session_id, grace));
    let is_resumed = resumed.is_some();
    let conn_id: Arc<str> = resumed.unwrap_or_else(|| format!("c_{}", random_hex(12)).into());
    let reg = app.hub.register(
        conn_id.clone(),
        caller.user_id,
        caller.session_id,
        app.config.ws_queue,
    );
    METRICS.connections_total.inc();
    METRICS.connections_open.inc();
    Box::pin(app.presence.connected(caller.user_id, conn_id.clone())).await;
    app.otr
        .connection_opened(&conn_id, caller.user_id, is_resumed);
    app.bus.publish(BusMessage::ConnectionOpened {
        connection_id: conn_id.clone(),
        user_id: caller.user_id,
        resumed: is_resumed,
    });
    let end = serve(&app, &mut socket, &caller, &conn_id, since, is_resumed, reg).await;
    app.hub.unregister(&conn_id);
    METRICS.connections_open.dec();
    Box::pin(app.presence.disconnected(caller.user_id, &conn_id)).await;
    let clean = matches!(end, End::Clean);
    let resumable = matches!(end, End::Dropped);
    // Only a connection that may come back keeps its OTR sessions through the grace period
    // (told to the relay before the id becomes claimable, so a resume always finds it away).
    app.otr.connection_closed(
        &conn_id,
        match end {
            End::Dropped => Departure::Resumable,
            End::Server(sotto_api::realtime::close::DEACTIVATED) => Departure::Deactivated,
            End::Clean | End::Server(_) => Departure::Gone,
        },
    );
    if resumable {
        app.hub
            .remember_drop(conn_id.clone(), caller.session_id, grace);
    }
    app.bus.publish(BusMessage::ConnectionClosed {
        connection_id: conn_id.clone(),
        user_id: caller.user_id,
        clean,
    });
    tracing::debug!(connection = %conn_id, clean, "connection closed");
}

async fn serve(
    app: &App,
    socket: &mut WebSocket,
    caller: &Caller,
    conn_id: &Arc<str>,
    since: Seq,
    resumed: bool,
    reg: crate::realtime::Registration,
) -> End {
    let crate::realtime::Registration { conn, mut kill } = reg;
    let hb = Duration::from_secs(app.config.heartbeat_secs.max(1));
    // The hello and the catch-up run once, in their own heap allocation that is freed when
    // they are done: their futures (database reads) are far larger than the idle loop's, and
    // an async fn's state is as large as its largest await, for the connection's whole life.
    let mut last_seq = match Box::pin(start(
        app, socket, &mut kill, caller, conn_id, since, resumed, hb, &conn,
    ))
    .await
    {
        Ok(s) => s,
        Err(end) => return end,
    };

    // Beats since the client was last heard from: counted rather than timed, so a frame costs
    // no clock read (the relay's hot path; a clock read per frame was ~2% of its CPU).
    let mut silent_beats = 0u32;
    let mut beat = tokio::time::interval_at(tokio::time::Instant::now() + hb, hb);
    // A task held up past several beats counts one, not a burst of them.
    beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            order = &mut kill => {
                let order = order.unwrap_or((1011, "closed"));
                close_with(socket, order).await;
                return End::Server(order.0);
            }
            frame = conn.recv() => {
                if let Err(end) = push_queued(socket, &mut kill, &conn, frame, &mut last_seq).await {
                    return end;
                }
            }
            incoming = socket.recv() => {
                silent_beats = 0;
                match incoming {
                    Some(Ok(Message::Text(t))) => on_text(app, caller, conn_id, &conn, t.as_str()).await,
                    Some(Ok(Message::Binary(b))) => on_binary(app, caller, conn_id, &conn, &b).await,
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                    Some(Ok(Message::Close(_))) => return End::Clean,
                    Some(Err(_)) | None => return End::Dropped,
                }
            }
            _ = beat.tick() => {
                // Silent for more than three heartbeats (the client answers each ping).
                silent_beats += 1;
                if silent_beats > 3 {
                    return End::Dropped;
                }
                if let Err(end) = push(socket, &mut kill, Message::Ping(Vec::new().into())).await {
                    return end;
                }
            }
        }
    }
}

/// Sends `hello`, replays the stored events after `since` and sends `catch_up_done`; returns
/// the position of the last stored event sent.
#[allow(clippy::too_many_arguments)]
async fn start(
    app: &App,
    socket: &mut WebSocket,
    kill: &mut tokio::sync::oneshot::Receiver<crate::realtime::CloseOrder>,
    caller: &Caller,
    conn_id: &Arc<str>,
    since: Seq,
    resumed: bool,
    hb: Duration,
    conn: &ConnHandle,
) -> Result<Seq, End> {
    let hello = ServerEvent::Hello {
        connection_id: conn_id.to_string(),
        user_id: caller.user_id,
        session_id: caller.session_id,
        heartbeat_secs: hb.as_secs(),
        resumed,
    };
    push(socket, kill, text(&hello)).await?;

    // Catch-up: everything stored after `since`.
    // `since` is the client's position, or (for a fresh start) the head of the log read
    // *before* the connection was registered: events committed after that point arrive exactly
    // once, either replayed here or live (deduplicated by `seq`).
    let mut last_seq = since.max(0);
    let mut replayed = 0;
    let mut complete = true;
    // Events before the retention horizon are gone: replay what is left, say it is not all.
    match app.db.events_pruned_through().await {
        Ok(pruned) if last_seq < pruned => {
            last_seq = pruned;
            complete = false;
        }
        Ok(_) => {}
        Err(_) => return Err(End::Dropped),
    }
    // Live stored events are not queued until `finish_catch_up` (the hub skips them), so a
    // long replay in a busy room cannot fill the queue. When the log is exhausted, switch to
    // live and read it once more: what was committed before the switch is read there, what
    // comes after is queued (and deduplicated by `seq` below).
    let mut live = false;
    loop {
        let batch = match events::since(&app.db, caller.user_id, last_seq, CATCH_UP_PAGE).await {
            Ok(b) => b,
            Err(_) => return Err(End::Dropped),
        };
        // A prune may have run since the position was checked: if it reached past where this
        // batch started, events this replay never sent may be gone. Say so rather than claim a
        // complete catch-up (checked after the read, so the prune that mattered is seen).
        match app.db.events_pruned_through().await {
            Ok(pruned) if last_seq < pruned => complete = false,
            Ok(_) => {}
            Err(_) => return Err(End::Dropped),
        }
        if batch.is_empty() {
            if live {
                break;
            }
            conn.finish_catch_up();
            live = true;
            continue;
        }
        let whole_log = (batch.len() as i64) < CATCH_UP_PAGE;
        for (seq, json) in batch {
            push(socket, kill, Message::Text(Utf8Bytes::from(json))).await?;
            last_seq = seq;
            replayed += 1;
        }
        // Once live, a page that is not full held everything committed before the switch (the
        // read began after it); later events are in the queue. Reading on would chase a busy
        // room's log while the queue, not drained during the replay, fills up.
        if live && whole_log {
            break;
        }
        if replayed >= MAX_CATCH_UP {
            complete = false;
            break;
        }
    }
    // Cut short (the client reloads history over HTTP): live events from here on.
    conn.finish_catch_up();
    let done = text(&ServerEvent::CatchUpDone { last_seq, complete });
    push(socket, kill, done).await?;

    Ok(last_seq)
}

/// Sends one frame, unless a close order arrives first: a send blocks while the client does not
/// read, and a server close order (revocation, slow consumer, shutdown) must still win.
async fn push(
    socket: &mut WebSocket,
    kill: &mut tokio::sync::oneshot::Receiver<crate::realtime::CloseOrder>,
    msg: Message,
) -> Result<(), End> {
    tokio::select! {
        r = socket.send(msg) => r.map_err(|_| End::Dropped),
        order = kill => {
            let order = order.unwrap_or((1011, "closed"));
            close_with(socket, order).await;
            Err(End::Server(order.0))
        }
    }
}

/// The message for a queued frame, or `None` for a stored event already replayed.
fn queued_message(frame: Frame, last_seq: &mut Seq) -> Option<Message> {
    match frame {
        Frame::Text { json, seq } => {
            if let Some(s) = seq {
                if s <= *last_seq {
                    return None; // already replayed
                }
                *last_seq = s;
            }
            Some(Message::Text(Utf8Bytes::from(&*json)))
        }
        // The relay's bytes as they are: a reference count, no copy.
        Frame::Binary(bytes) => Some(Message::Binary(bytes)),
    }
}

/// Writes `first` and the frames queued behind it (at most [`MAX_WRITE_BATCH`]) and flushes
/// once, unless a close order arrives first (as [`push`]).
async fn push_queued(
    socket: &mut WebSocket,
    kill: &mut tokio::sync::oneshot::Receiver<crate::realtime::CloseOrder>,
    conn: &ConnHandle,
    first: Frame,
    last_seq: &mut Seq,
) -> Result<(), End> {
    tokio::select! {
        r = feed_queued(socket, conn, first, last_seq) => r.map_err(|_| End::Dropped),
        order = kill => {
            let order = order.unwrap_or((1011, "closed"));
            close_with(socket, order).await;
            Err(End::Server(order.0))
        }
    }
}

async fn feed_queued(
    socket: &mut WebSocket,
    conn: &ConnHandle,
    first: Frame,
    last_seq: &mut Seq,
) -> Result<(), axum::Error> {
    let mut next = Some(first);
    let mut fed = 0;
    while let Some(frame) = next.take() {
        if let Some(msg) = queued_message(frame, last_seq) {
            socket.feed(msg).await?;
        }
        fed += 1;
        if fed < MAX_WRITE_BATCH {
            next = conn.try_recv();
        }
    }
    socket.flush().await
}

/// Sends a close frame, giving up quickly if the client is not reading.
async fn close_with(socket: &mut WebSocket, (code, reason): crate::realtime::CloseOrder) {
    let frame = Message::Close(Some(CloseFrame {
        code,
        reason: Utf8Bytes::from_static(reason),
    }));
    let _ = tokio::time::timeout(Duration::from_secs(1), socket.send(frame)).await;
}

async fn on_text(app: &App, caller: &Caller, conn_id: &Arc<str>, conn: &ConnHandle, t: &str) {
    if t.len() > MAX_CLIENT_TEXT {
        conn.reply(error_frame(
            ErrorCode::PayloadTooLarge,
            "client events are at most 4096 bytes",
        ));
        return;
    }
    match serde_json::from_str::<ClientEvent>(t) {
        Ok(ClientEvent::Ping { nonce }) => {
            let json = serde_json::to_string(&ServerEvent::Pong { nonce }).unwrap_or_default();
            conn.reply(Frame::Text {
                json: json.into(),
                seq: None,
            });
        }
        Ok(ClientEvent::SetAway { away }) => {
            app.presence.set_away(caller.user_id, conn_id, away).await
        }
        Ok(ClientEvent::E2eState { unlocked }) => app.otr.set_unlocked(conn_id, unlocked),
        Err(e) => {
            let code = if e.to_string().contains("unknown variant")
                || e.to_string().contains("unknown field")
            {
                ErrorCode::UnknownField
            } else {
                ErrorCode::BadFrame
            };
            conn.reply(error_frame(code, "unreadable client event"));
        }
    }
}

async fn on_binary(app: &App, caller: &Caller, conn_id: &Arc<str>, conn: &ConnHandle, b: &[u8]) {
    let max = app.settings.otr().max_frame_bytes;
    if b.len() > max + MAX_EPHEMERAL_HEADER {
        conn.reply(error_frame(
            ErrorCode::PayloadTooLarge,
            format!("ephemeral frames are at most {max} bytes"),
        ));
        return;
    }
    let out = match OutgoingRef::decode(b) {
        Ok(o) => o,
        Err(e) => {
            conn.reply(error_frame(ErrorCode::BadFrame, e.to_string()));
            return;
        }
    };
    // Off-the-record packets: the relay decides everything (and answers with `otr` notices).
    if out.channel == otr::CHANNEL {
        app.otr.handle(caller, conn_id, out).await;
        return;
    }
    // Other channels read room membership from the database: a future several times the size
    // of the relay's, in its own allocation so that every connection's state does not carry it.
    Box::pin(other_channel(app, caller, conn_id, conn, b, out)).await;
}

/// An ephemeral frame on a channel other than the relay's: rate-limited, routed by membership.
async fn other_channel(
    app: &App,
    caller: &Caller,
    conn_id: &Arc<str>,
    conn: &ConnHandle,
    b: &[u8],
    out: OutgoingRef<'_>,
) {
    let max = app.settings.otr().max_frame_bytes;
    if b.len() > max {
        conn.reply(error_frame(
            ErrorCode::PayloadTooLarge,
            format!("ephemeral frames are at most {max} bytes"),
        ));
        return;
    }
    if !app.otr.allow_other_channel(conn_id) {
        conn.reply(error_frame(
            ErrorCode::RateLimited,
            "too many ephemeral frames; slow down",
        ));
        return;
    }
    // One answer for every routing failure, so probing reveals nothing about rooms or users.
    let unreachable = || error_frame(ErrorCode::TargetUnreachable, "target unreachable");
    if !app
        .rooms
        .is_member(out.room_id, caller.user_id)
        .await
        .unwrap_or(false)
    {
        conn.reply(unreachable());
        return;
    }
    let target_user = match &out.target {
        Target::User(u) => Some(*u),
        Target::Connection(c) => app.hub.owner(c),
    };
    let Some(target_user) = target_user else {
        conn.reply(unreachable());
        return;
    };
    if app.hub.user_connections(target_user) == 0
        || !app
            .rooms
            .is_member(out.room_id, target_user)
            .await
            .unwrap_or(false)
    {
        conn.reply(unreachable());
        return;
    }
    let frame = bytes::Bytes::from(Incoming::encode_parts(
        out.room_id,
        caller.user_id,
        conn_id,
        out.channel,
        out.payload,
    ));
    METRICS.ephemeral_relayed.inc();
    match out.target {
        Target::User(user_id) => app.bus.publish(BusMessage::User {
            user_id,
            frame: Frame::Binary(frame),
        }),
        Target::Connection(c) => app.bus.to_connection(c.into(), Frame::Binary(frame)),
    }
}
