//! The off-the-record relay: forwards OTR packets (ephemeral channel [`otr::CHANNEL`]) between
//! exactly two connections and enforces the rules of design.md guarantee 6, in memory only.
//!
//! **Invariant: no path to storage.** This service holds no database handle and writes nothing
//! anywhere: no table, no upload, no log line (at any level), no metric label. It reads room
//! membership through [`Rooms`] and asks [`E2e`] whether a user has published keys; everything
//! it knows about sessions lives in the maps below and dies with the process.
//!
//! What it sees of a packet is the 18-byte header ([`otr::peek`]): kind and session id. Routing:
//!
//! - an offer in a 1:1 DM goes to every connection of the other member that announced its E2E
//!   identity unlocked (`e2e_state`), after the checks (enabled, DM of two, keys on both sides,
//!   sender unlocked, peer online and unlocked, offer rate);
//! - the first `Accept` from one of those connections binds the session to it and to the
//!   offering connection; the other invited connections get `accepted_elsewhere`;
//! - every later packet goes only to the other bound connection; a packet from any other
//!   connection, or for an unknown session, is refused with the same `otr_unknown_session`;
//! - decline, cancel, end and abort are forwarded and then end the relay session;
//! - an invitation whose handshake has not completed (a frame seen from each side after the
//!   accept) within `otr.invite_timeout_secs` expires: both sides are told and it is forgotten.
//!
//! Connections: a clean close ends the connection's sessions and tells the peer at once
//! (`peer_disconnected`); an abnormal drop keeps them for the resume grace period, during which
//! packets for that connection are refused with `peer_unreachable` (never queued); a resume
//! within the grace continues; the grace running out ends them like a clean close.
//!
//! The server ends sessions itself (`ended_by_server`, to both sides) when an admin turns
//! `otr.enabled` off and when a user is deactivated.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use sotto_api::ephemeral::{Incoming, OutgoingRef, Target};
use sotto_api::otr::{self, OtrNotice, OtrNoticeEvent, OtrSessionId, PacketKind};
use sotto_api::realtime::ServerEvent;
use sotto_api::rest::RoomKind;
use sotto_api::{ErrorCode, RoomId, UserId};

use crate::bus::{Bus, BusMessage, DisconnectTarget, FastMap, Frame};
use crate::metrics::METRICS;
use crate::services::accounts::Caller;
use crate::services::e2e::E2e;
use crate::services::rooms::Rooms;
use crate::services::settings::Settings;

/// How often timers (invitation expiry, grace expiry, OTR switched off) are checked.
const TICK: Duration = Duration::from_millis(200);
/// Offers are counted per (room, sender) over this window.
const OFFER_WINDOW: Duration = Duration::from_secs(60);

type ConnId = Arc<str>;
type SessionKey = (RoomId, OtrSessionId);

/// A token bucket: `rate` tokens a second, at most `burst`.
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn new(burst: f64) -> Self {
        Bucket {
            tokens: burst,
            last: Instant::now(),
        }
    }

    fn take(&mut self, rate: f64, burst: f64) -> bool {
        let now = Instant::now();
        let elapsed = now.duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * rate).min(burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// What the relay knows of one connection.
#[derive(Debug)]
struct Conn {
    user: UserId,
    unlocked: bool,
    /// Set while the connection is away after an abnormal drop (grace period).
    dropped_at: Option<Instant>,
    /// OTR packets.
    otr_bucket: Bucket,
    /// Every other ephemeral channel.
    other_bucket: Bucket,
    /// Sessions that ended while this connection was away: told on resume.
    missed: Vec<(RoomId, OtrSessionId, OtrNotice)>,
}

impl Conn {
    fn online(&self) -> bool {
        self.dropped_at.is_none()
    }
}

/// One relay session.
#[derive(Debug)]
struct Session {
    room: RoomId,
    id: OtrSessionId,
    offerer: ConnId,
    /// The offering user (the offerer connection's owner).
    offerer_user: UserId,
    peer: UserId,
    /// Connections of the peer the offer went to (until one accepts).
    invited: Vec<ConnId>,
    /// The peer's connection that accepted.
    bound: Option<ConnId>,
    created: Instant,
    /// A frame has been relayed from the offerer / from the peer since the accept.
    framed: (bool, bool),
}

impl Session {
    fn complete(&self) -> bool {
        self.bound.is_some() && self.framed.0 && self.framed.1
    }

    fn involves(&self, c: &str) -> bool {
        &*self.offerer == c || self.bound.as_deref() == Some(c)
    }
}

#[derive(Default)]
struct State {
    conns: FastMap<ConnId, Conn>,
    /// Keyed by client-chosen session ids: foldhash is seeded per map, and sessions exist only
    /// within the offer rate limit.
    sessions: FastMap<SessionKey, Session>,
    offers: HashMap<(RoomId, UserId), VecDeque<Instant>>,
}

/// How a connection ended, as far as its OTR sessions are concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Departure {
    /// Dropped abnormally: it may come back within the grace period and keep its sessions.
    Resumable,
    /// Closed cleanly (reload, closed tab) or by the server (logout, revocation, slow
    /// consumer, shutdown): its sessions end now and the peer is told `peer_disconnected`.
    Gone,
    /// Closed because its user was deactivated: its sessions end with `ended_by_server`.
    Deactivated,
}

/// What to send once the lock is released.
enum Out {
    Notice(ConnId, OtrNoticeEvent),
    Packet(ConnId, Bytes),
}

fn notice(to: &ConnId, room: RoomId, id: Option<&OtrSessionId>, n: OtrNotice) -> Out {
    Out::Notice(
        to.clone(),
        OtrNoticeEvent {
            room_id: room,
            session_id: id.map(otr::session_hex),
            notice: n,
        },
    )
}

fn refused(code: ErrorCode, message: &str) -> OtrNotice {
    OtrNotice::Refused {
        code,
        message: message.to_string(),
    }
}

fn unknown_session() -> OtrNotice {
    refused(
        ErrorCode::OtrUnknownSession,
        "no such off-the-record session on this connection",
    )
}

/// The relay service.
#[derive(Clone)]
pub struct OtrRelay {
    state: Arc<Mutex<State>>,
    bus: Arc<dyn Bus>,
    settings: Settings,
    rooms: Rooms,
    e2e: E2e,
    grace: Duration,
}

impl OtrRelay {
    /// Builds the relay; `grace` is the resume grace period of dropped connections.
    pub fn new(
        bus: Arc<dyn Bus>,
        settings: Settings,
        rooms: Rooms,
        e2e: E2e,
        grace: Duration,
    ) -> Self {
        OtrRelay {
            state: Arc::default(),
            bus,
            settings,
            rooms,
            e2e,
            grace,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn send(&self, out: Vec<Out>) {
        for o in out {
            match o {
                Out::Notice(to, ev) => {
                    let json = serde_json::to_string(&ServerEvent::Otr(ev)).unwrap_or_default();
                    let frame = Frame::Text {
                        json: json.into(),
                        seq: None,
                    };
                    self.bus.to_connection(to, frame);
                }
                Out::Packet(to, bytes) => self.forward(to, bytes),
            }
        }
    }

    /// Hands a packet to a connection (counted, unlabeled).
    fn forward(&self, to: ConnId, packet: Bytes) {
        METRICS.ephemeral_relayed.inc();
        self.bus.to_connection(to, Frame::Binary(packet));
    }

    fn bucket_limits(&self) -> (f64, f64) {
        let l = self.settings.otr();
        (l.frames_per_sec, l.frame_burst)
    }

    // ------------------------------------------------------------ connections

    /// A connection opened (`resumed`: it took back the id of one that dropped within the
    /// grace period, and keeps its sessions and its unlocked state).
    pub fn connection_opened(&self, id: &ConnId, user: UserId, resumed: bool) {
        let (_, burst) = self.bucket_limits();
        let mut out = Vec::new();
        {
            let mut st = self.lock();
            match st.conns.get_mut(id) {
                Some(c) if resumed && c.user == user => {
                    c.dropped_at = None;
                    for (room, sid, n) in c.missed.drain(..) {
                        out.push(notice(id, room, Some(&sid), n));
                    }
                }
                _ => {
                    st.conns.insert(
                        id.clone(),
                        Conn {
                            user,
                            unlocked: false,
                            dropped_at: None,
                            otr_bucket: Bucket::new(burst),
                            other_bucket: Bucket::new(burst),
                            missed: Vec::new(),
                        },
                    );
                }
            }
        }
        self.send(out);
    }

    /// A connection ended.
    pub fn connection_closed(&self, id: &str, how: Departure) {
        let mut out = Vec::new();
        {
            let mut st = self.lock();
            match how {
                Departure::Resumable => {
                    if let Some(c) = st.conns.get_mut(id) {
                        c.dropped_at = Some(Instant::now());
                    }
                }
                Departure::Gone => gone(&mut st, id, &mut out),
                Departure::Deactivated => {
                    end_sessions_of(&mut st, id, OtrNotice::EndedByServer, &mut out);
                    st.conns.remove(id);
                }
            }
        }
        self.send(out);
    }

    /// The connection announced whether its E2E identity is unlocked. Locking ends the
    /// connection's sessions (the peer is told `peer_disconnected`).
    pub fn set_unlocked(&self, id: &str, unlocked: bool) {
        let mut out = Vec::new();
        {
            let mut st = self.lock();
            let Some(c) = st.conns.get_mut(id) else {
                return;
            };
            c.unlocked = unlocked;
            if !unlocked {
                end_sessions_of(&mut st, id, OtrNotice::PeerDisconnected, &mut out);
            }
        }
        self.send(out);
    }

    /// Whether a connection may send one more ephemeral frame on a channel other than OTR
    /// (the same token bucket settings as OTR frames, counted separately).
    pub fn allow_other_channel(&self, id: &str) -> bool {
        let (rate, burst) = self.bucket_limits();
        let mut st = self.lock();
        st.conns
            .get_mut(id)
            .is_some_and(|c| c.other_bucket.take(rate, burst))
    }

    // ------------------------------------------------------------ packets

    /// Handles one OTR packet sent by `conn` (authenticated as `caller`). Every refusal is an
    /// `otr` notice to the sending connection; nothing refused is ever forwarded.
    ///
    /// The hot path — a packet of a bound session from one of its two connections, addressed
    /// to the other party — takes one lock and touches no database: the checks that the room
    /// is a DM of exactly these two people were made when the session was offered and
    /// accepted, and a DM's members never change (`Rooms` lets only groups gain or lose
    /// members). What can end a bound session — a departure, locking, deactivation, OTR being
    /// switched off — ends it in the relay's own state, so the lookup would add nothing.
    /// Every other packet (offers, answers to an invitation, anything from a third
    /// connection) reads the room as before.
    pub async fn handle(&self, caller: &Caller, conn: &ConnId, out: OutgoingRef<'_>) {
        let room = out.room_id;
        let peeked = otr::peek(out.payload);
        let sid = peeked.map(|(_, id)| id);
        let refuse = |code: ErrorCode, msg: &str| {
            self.send(vec![notice(conn, room, sid.as_ref(), refused(code, msg))]);
        };
        let limits = self.settings.otr();
        if !limits.enabled {
            return refuse(
                ErrorCode::OtrDisabled,
                "off-the-record conversations are disabled on this server",
            );
        }
        if out.payload.len() > limits.max_frame_bytes {
            let max = limits.max_frame_bytes;
            return refuse(
                ErrorCode::PayloadTooLarge,
                &format!("OTR packets are at most {max} bytes"),
            );
        }
        // The packet as the peer receives it (the sender stamped by the server): the one copy
        // of the payload the relay makes, shared by every recipient.
        let incoming = Bytes::from(Incoming::encode_parts(
            room,
            caller.user_id,
            conn,
            otr::CHANNEL,
            out.payload,
        ));
        let mut sent = Vec::new();
        {
            let mut st = self.lock();
            let allowed = st
                .conns
                .get_mut(&**conn)
                .is_some_and(|c| c.otr_bucket.take(limits.frames_per_sec, limits.frame_burst));
            if !allowed {
                drop(st);
                return refuse(ErrorCode::RateLimited, "too many OTR packets; slow down");
            }
            if let Some((kind, sid)) = peeked
                && kind != PacketKind::Offer
            {
                match bound_recipient(&mut st, conn, caller.user_id, room, sid, kind, &out.target) {
                    // The common case (a frame of an established session, the peer online):
                    // one session lookup, nothing collected to send.
                    Bound::To(to) => {
                        drop(st);
                        return self.forward(to, incoming);
                    }
                    Bound::Route => {
                        route(&mut st, conn, room, sid, kind, incoming, &mut sent);
                        drop(st);
                        return self.send(sent);
                    }
                    Bound::No => {}
                }
            }
        }
        // Everything else reads the room (and for an offer the key directory) from the
        // database: a future several times the size of the bound path's, boxed so that every
        // connection's state does not carry it (an async fn is as large as its largest await).
        Box::pin(self.handle_unbound(caller, conn, out, peeked, incoming)).await;
    }

    /// [`Self::handle`] for a packet that is not part of a session this connection holds.
    async fn handle_unbound(
        &self,
        caller: &Caller,
        conn: &ConnId,
        out: OutgoingRef<'_>,
        peeked: Option<(PacketKind, OtrSessionId)>,
        incoming: Bytes,
    ) {
        let room = out.room_id;
        let sid = peeked.map(|(_, id)| id);
        let refuse = |code: ErrorCode, msg: &str| {
            self.send(vec![notice(conn, room, sid.as_ref(), refused(code, msg))]);
        };
        let mut sent = Vec::new();
        let Some((kind, sid)) = peeked else {
            return refuse(ErrorCode::BadFrame, "not an OTR packet");
        };
        // The room: a DM of exactly two, the sender one of them, the target the other.
        let not_dm = || {
            refuse(
                ErrorCode::OtrNotDirectMessage,
                "off the record is only possible in a direct message between two people",
            )
        };
        let Ok(r) = self.rooms.get(caller, room).await else {
            return not_dm();
        };
        if r.kind != RoomKind::Dm || r.members.len() != 2 || !r.members.contains(&caller.user_id) {
            return not_dm();
        }
        let Some(peer) = r.members.iter().copied().find(|u| *u != caller.user_id) else {
            return not_dm();
        };
        let target_ok = match &out.target {
            Target::User(u) => *u == peer,
            Target::Connection(c) => {
                self.lock().conns.get(c.as_str()).map(|c| c.user) == Some(peer)
            }
        };
        if !target_ok {
            return not_dm();
        }
        if kind == PacketKind::Offer {
            let (mine, theirs) = (
                self.e2e.has_keys(caller.user_id).await,
                self.e2e.has_keys(peer).await,
            );
            self.offer(
                caller.user_id,
                conn,
                room,
                sid,
                peer,
                mine,
                theirs,
                incoming,
            );
        } else {
            route(&mut self.lock(), conn, room, sid, kind, incoming, &mut sent);
            self.send(sent);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn offer(
        &self,
        user: UserId,
        conn: &ConnId,
        room: RoomId,
        sid: OtrSessionId,
        peer: UserId,
        my_keys: bool,
        peer_keys: bool,
        packet: Bytes,
    ) {
        let mut out = Vec::new();
        let per_min = self.settings.int("ratelimit.otr_offers_per_min").max(1) as usize;
        {
            let mut st = self.lock();
            let unlocked = st.conns.get(&**conn).is_some_and(|c| c.unlocked);
            let peer_conns: Vec<(ConnId, bool)> = st
                .conns
                .iter()
                .filter(|(_, c)| c.user == peer && c.online())
                .map(|(id, c)| (id.clone(), c.unlocked))
                .collect();
            let refusal = if !my_keys || !unlocked {
                Some((
                    ErrorCode::OtrNoKeys,
                    "enter your E2E key on this connection first",
                ))
            } else if !peer_keys {
                Some((
                    ErrorCode::OtrPeerNoKeys,
                    "the other person has not set up end-to-end encryption",
                ))
            } else if peer_conns.is_empty() {
                Some((ErrorCode::OtrPeerOffline, "the other person is offline"))
            } else if !peer_conns.iter().any(|(_, u)| *u) {
                Some((
                    ErrorCode::OtrPeerLocked,
                    "the other person has not entered their E2E key",
                ))
            } else if st.sessions.contains_key(&(room, sid)) {
                Some((ErrorCode::InvalidInput, "this session id is already in use"))
            } else {
                None
            };
            if refusal.is_none() {
                let recent = st.offers.entry((room, user)).or_default();
                while recent.front().is_some_and(|t| t.elapsed() >= OFFER_WINDOW) {
                    recent.pop_front();
                }
                if recent.len() >= per_min {
                    drop(st);
                    self.send(vec![notice(
                        conn,
                        room,
                        Some(&sid),
                        refused(
                            ErrorCode::RateLimited,
                            "too many OTR invitations; wait a minute",
                        ),
                    )]);
                    return;
                }
                recent.push_back(Instant::now());
            }
            if let Some((code, msg)) = refusal {
                out.push(notice(conn, room, Some(&sid), refused(code, msg)));
            } else {
                let invited: Vec<ConnId> = peer_conns
                    .into_iter()
                    .filter(|(_, u)| *u)
                    .map(|(c, _)| c)
                    .collect();
                for c in &invited {
                    out.push(Out::Packet(c.clone(), packet.clone()));
                }
                st.sessions.insert(
                    (room, sid),
                    Session {
                        room,
                        id: sid,
                        offerer: conn.clone(),
                        offerer_user: user,
                        peer,
                        invited,
                        bound: None,
                        created: Instant::now(),
                        framed: (false, false),
                    },
                );
            }
        }
        self.send(out);
    }

    // ------------------------------------------------------------ timers and server actions

    /// Ends every session with `ended_by_server` on both sides (OTR disabled).
    pub fn end_all(&self) {
        let mut out = Vec::new();
        {
            let mut st = self.lock();
            let sessions: Vec<Session> = st.sessions.drain().map(|(_, s)| s).collect();
            for s in sessions {
                tell_both(&mut st, &s, None, OtrNotice::EndedByServer, &mut out);
            }
        }
        self.send(out);
    }

    /// Ends every session of a user's connections with `ended_by_server` on both sides
    /// (deactivation).
    pub fn end_user(&self, user: UserId) {
        let mut out = Vec::new();
        {
            let mut st = self.lock();
            let keys: Vec<SessionKey> = st
                .sessions
                .iter()
                .filter(|(_, s)| {
                    s.peer == user || st.conns.get(&s.offerer).is_some_and(|c| c.user == user)
                })
                .map(|(k, _)| *k)
                .collect();
            for k in keys {
                if let Some(s) = st.sessions.remove(&k) {
                    tell_both(&mut st, &s, None, OtrNotice::EndedByServer, &mut out);
                }
            }
        }
        self.send(out);
    }

    /// Runs the timers: invitation expiry, grace expiry, and OTR being switched off.
    pub fn tick(&self) {
        if !self.settings.otr().enabled {
            if !self.lock().sessions.is_empty() {
                self.end_all();
            }
            return;
        }
        let timeout = Duration::from_secs(self.settings.int("otr.invite_timeout_secs"));
        let mut out = Vec::new();
        {
            let mut st = self.lock();
            let expired: Vec<SessionKey> = st
                .sessions
                .iter()
                .filter(|(_, s)| !s.complete() && s.created.elapsed() >= timeout)
                .map(|(k, _)| *k)
                .collect();
            for k in expired {
                if let Some(s) = st.sessions.remove(&k) {
                    tell_both(&mut st, &s, None, OtrNotice::Expired, &mut out);
                }
            }
            let lapsed: Vec<ConnId> = st
                .conns
                .iter()
                .filter(|(_, c)| c.dropped_at.is_some_and(|t| t.elapsed() >= self.grace))
                .map(|(id, _)| id.clone())
                .collect();
            for id in lapsed {
                gone(&mut st, &id, &mut out);
            }
            st.offers
                .retain(|_, v| v.back().is_some_and(|t| t.elapsed() < OFFER_WINDOW));
        }
        self.send(out);
    }

    /// Runs the relay's background work until the bus closes: timers, and server-side ends
    /// (deactivated users).
    pub async fn run(self) {
        let mut rx = self.bus.subscribe();
        let mut every = tokio::time::interval(TICK);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = every.tick() => self.tick(),
                msg = rx.recv() => match msg {
                    Ok(m) => {
                        if let BusMessage::Disconnect { target: DisconnectTarget::User(u), .. } = &*m {
                            self.end_user(*u);
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                },
            }
        }
    }

    /// Number of live relay sessions (tests and diagnostics; carries nothing else).
    pub fn session_count(&self) -> usize {
        self.lock().sessions.len()
    }
}

/// What the hot path makes of a packet (see [`bound_recipient`]).
enum Bound {
    /// A packet of a bound session this connection holds, for the other party, who is online
    /// and whom it does not end: forward it to this connection (the session is updated).
    To(ConnId),
    /// A packet of a bound session this connection holds, addressed to the other party, that
    /// [`route`] must handle (it ends the session, or the other side is away).
    Route,
    /// Not a session this connection holds: the room must be read.
    No,
}

/// Whether `conn` (authenticated as `user`) is one of the two connections of the bound session
/// `(room, sid)` and addressed its packet to the other party (the same target check the slow
/// path makes). Then the packet needs no membership lookup: see [`OtrRelay::handle`]. The
/// common case is routed here, with the one lookup of the session; what it does is exactly
/// what [`route`] does for it.
fn bound_recipient(
    st: &mut State,
    conn: &ConnId,
    user: UserId,
    room: RoomId,
    sid: OtrSessionId,
    kind: PacketKind,
    target: &Target,
) -> Bound {
    let State {
        conns, sessions, ..
    } = st;
    let Some(s) = sessions.get_mut(&(room, sid)) else {
        return Bound::No;
    };
    let Some(bound) = &s.bound else {
        return Bound::No;
    };
    let from_offerer = s.offerer == *conn && s.offerer_user == user;
    let (other, to) = if from_offerer {
        (s.peer, bound)
    } else if bound == conn && s.peer == user {
        (s.offerer_user, &s.offerer)
    } else {
        return Bound::No;
    };
    let addressed = match target {
        Target::User(u) => *u == other,
        Target::Connection(c) => conns.get(c.as_str()).map(|c| c.user) == Some(other),
    };
    if !addressed {
        return Bound::No;
    }
    if kind.ends_session() || !conns.get(to).is_some_and(Conn::online) {
        return Bound::Route;
    }
    let to = to.clone();
    if kind == PacketKind::Frame {
        if from_offerer {
            s.framed.0 = true;
        } else {
            s.framed.1 = true;
        }
    }
    Bound::To(to)
}

/// Routes a packet of an existing session (anything but an offer), pushing what to send.
fn route(
    st: &mut State,
    conn: &ConnId,
    room: RoomId,
    sid: OtrSessionId,
    kind: PacketKind,
    packet: Bytes,
    out: &mut Vec<Out>,
) {
    let key = (room, sid);
    let Some(s) = st.sessions.get_mut(&key) else {
        out.push(notice(conn, room, Some(&sid), unknown_session()));
        return;
    };
    let from_offerer = s.offerer == *conn;
    // A bound session (every packet after the handshake's accept): exactly one recipient, no
    // list to build.
    if let Some(bound) = &s.bound {
        let to = if from_offerer {
            bound
        } else if bound == conn {
            &s.offerer
        } else {
            out.push(notice(conn, room, Some(&sid), unknown_session()));
            return;
        };
        // A connection away within its grace period receives nothing, and nothing waits.
        if st.conns.get(to).is_some_and(Conn::online) {
            out.push(Out::Packet(to.clone(), packet));
            if kind == PacketKind::Frame {
                if from_offerer {
                    s.framed.0 = true;
                } else {
                    s.framed.1 = true;
                }
            }
        } else {
            out.push(notice(conn, room, Some(&sid), OtrNotice::PeerUnreachable));
        }
        if kind.ends_session() {
            end_routed(st, key, conn, from_offerer, out);
        }
        return;
    }
    // An invitation: the offerer's cancel goes to every invited connection; an invited
    // connection's answer goes to the offerer.
    let to: Vec<ConnId> = if from_offerer && kind.ends_session() {
        s.invited.clone()
    } else if s.invited.contains(conn)
        && matches!(
            kind,
            PacketKind::Accept | PacketKind::Decline | PacketKind::Abort | PacketKind::Cancel
        )
    {
        vec![s.offerer.clone()]
    } else {
        Vec::new()
    };
    if to.is_empty() {
        out.push(notice(conn, room, Some(&sid), unknown_session()));
        return;
    }
    // A connection away within its grace period receives nothing, and nothing waits.
    let reachable: Vec<ConnId> = to
        .into_iter()
        .filter(|c| st.conns.get(c).is_some_and(Conn::online))
        .collect();
    if reachable.is_empty() {
        out.push(notice(conn, room, Some(&sid), OtrNotice::PeerUnreachable));
    }
    for c in &reachable {
        out.push(Out::Packet(c.clone(), packet.clone()));
    }
    if kind == PacketKind::Accept && !from_offerer {
        if reachable.is_empty() {
            // The offerer is away: the accept did not arrive, nothing is bound.
        } else {
            s.bound = Some(conn.clone());
            for other in s.invited.drain(..) {
                if other != *conn {
                    out.push(notice(
                        &other,
                        room,
                        Some(&sid),
                        OtrNotice::AcceptedElsewhere,
                    ));
                }
            }
            let offerer = s.offerer.clone();
            supersede(st, key, &offerer, conn, out);
        }
    }
    if kind.ends_session() {
        end_routed(st, key, conn, from_offerer, out);
    }
}

/// A decline, cancel, end or abort was routed: the relay session is over.
fn end_routed(
    st: &mut State,
    key: SessionKey,
    conn: &ConnId,
    from_offerer: bool,
    out: &mut Vec<Out>,
) {
    let Some(s) = st.sessions.remove(&key) else {
        return;
    };
    let (room, sid) = key;
    // The peer's other connections that were still invited learn it is over.
    if !from_offerer {
        for other in &s.invited {
            if other != conn {
                out.push(notice(
                    other,
                    room,
                    Some(&sid),
                    OtrNotice::AcceptedElsewhere,
                ));
            }
        }
    }
    // A party away in its grace period learns it when it comes back.
    for c in [Some(&s.offerer), s.bound.as_ref()].into_iter().flatten() {
        if c != conn
            && let Some(away) = st.conns.get_mut(c)
            && !away.online()
        {
            away.missed.push((room, sid, OtrNotice::PeerDisconnected));
        }
    }
}

/// Tells both sides of a removed session `n`, except `skip`. A side away in its grace period
/// is told when it comes back.
fn tell_both(st: &mut State, s: &Session, skip: Option<&str>, n: OtrNotice, out: &mut Vec<Out>) {
    let mut to: Vec<ConnId> = vec![s.offerer.clone()];
    match &s.bound {
        Some(b) => to.push(b.clone()),
        None => to.extend(s.invited.iter().cloned()),
    }
    for c in to {
        if Some(&*c) == skip {
            continue;
        }
        match st.conns.get_mut(&c) {
            Some(conn) if conn.online() => out.push(notice(&c, s.room, Some(&s.id), n.clone())),
            Some(conn) => conn.missed.push((s.room, s.id, n.clone())),
            None => {}
        }
    }
}

/// Ends every session a connection holds (offered or bound), telling the other side `n`; an
/// invitation it merely received is withdrawn from it.
fn end_sessions_of(st: &mut State, id: &str, n: OtrNotice, out: &mut Vec<Out>) {
    let keys: Vec<SessionKey> = st
        .sessions
        .iter()
        .filter(|(_, s)| s.involves(id))
        .map(|(k, _)| *k)
        .collect();
    for k in keys {
        if let Some(s) = st.sessions.remove(&k) {
            tell_both(st, &s, Some(id), n.clone(), out);
        }
    }
    // Invitations it received but did not answer.
    let mut orphaned = Vec::new();
    for (k, s) in st.sessions.iter_mut() {
        if s.bound.is_none() && s.invited.iter().any(|c| &**c == id) {
            s.invited.retain(|c| &**c != id);
            if s.invited.is_empty() {
                orphaned.push(*k);
            }
        }
    }
    // Nobody is left to answer: the offerer learns the peer is gone.
    for k in orphaned {
        if let Some(s) = st.sessions.remove(&k) {
            tell_both(st, &s, Some(id), n.clone(), out);
        }
    }
}

/// A connection is gone for good: its sessions end (`peer_disconnected`) and it is forgotten.
fn gone(st: &mut State, id: &str, out: &mut Vec<Out>) {
    end_sessions_of(st, id, OtrNotice::PeerDisconnected, out);
    st.conns.remove(id);
}

/// A new session was bound between `a` (offerer) and `b` (accepter) in a room. A client holds
/// one session per room, so every other session of that room that `a` or `b` offered or holds
/// is over (a Refresh Keys, or the losing offer of a glare): `a` and `b` are not told (they moved
/// on), the other side of such a session is (`peer_disconnected` if it held it,
/// `accepted_elsewhere` if it was only invited).
fn supersede(st: &mut State, key: SessionKey, a: &ConnId, b: &ConnId, out: &mut Vec<Out>) {
    let ours = |c: &ConnId| c == a || c == b;
    let old: Vec<SessionKey> = st
        .sessions
        .iter()
        .filter(|(k, s)| {
            **k != key
                && s.room == key.0
                && (ours(&s.offerer) || s.bound.as_ref().is_some_and(ours))
        })
        .map(|(k, _)| *k)
        .collect();
    for k in old {
        let Some(s) = st.sessions.remove(&k) else {
            continue;
        };
        let mut tell = |c: &ConnId, n: OtrNotice| {
            if ours(c) {
                return;
            }
            match st.conns.get_mut(c) {
                Some(conn) if conn.online() => out.push(notice(c, s.room, Some(&s.id), n)),
                Some(conn) => conn.missed.push((s.room, s.id, n)),
                None => {}
            }
        };
        match &s.bound {
            Some(bound) => {
                tell(&s.offerer, OtrNotice::PeerDisconnected);
                tell(bound, OtrNotice::PeerDisconnected);
            }
            None => {
                for c in &s.invited {
                    tell(c, OtrNotice::AcceptedElsewhere);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_allows_a_burst_then_the_rate() {
        let mut b = Bucket::new(3.0);
        assert!((0..3).all(|_| b.take(1000.0, 3.0)));
        // Refill happens with time only.
        b.last = Instant::now();
        b.tokens = 0.0;
        assert!(!b.take(0.001, 3.0));
        b.last -= Duration::from_millis(20);
        assert!(b.take(100.0, 3.0), "2 tokens refilled");
        b.last -= Duration::from_secs(100);
        assert!(b.take(100.0, 3.0));
        assert!(b.tokens <= 2.0, "capped at the burst");
    }
}
