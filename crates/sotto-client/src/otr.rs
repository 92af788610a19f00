//! Off the record in the SDK: [`OtrEndpoint`] joins one realtime connection, the user's unlocked
//! [`E2eKeys`] and one `sotto-crypto` [`OtrSession`] per DM room.
//!
//! The endpoint is the glue the crypto crate leaves to its caller: it announces the unlocked
//! identity on the connection, turns user actions into OTR packets addressed to the room's other
//! member, feeds incoming OTR frames (binary, channel [`otr::CHANNEL`]) and the relay's notices to
//! the right session, answers frames for sessions it does not hold with "lost session" (at most
//! once per session id and second, so two confused clients cannot loop), and hands everything
//! else on the connection back to the caller untouched.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sotto_api::ephemeral::{Incoming, Outgoing, Target};
use sotto_api::otr::{self, OtrNotice, OtrNoticeEvent};
use sotto_api::realtime::{ClientEvent, ServerEvent};
use sotto_api::rest::RoomKind;
use sotto_api::{RoomId, UserId};
use sotto_crypto::otr::{OtrError, OtrEvent, OtrKeys, OtrSession, OtrState, Packet, Step};
use sotto_crypto::otr::{SessionId, reply_to_unknown_session};
use sotto_crypto::safety::SafetyNumber;
use sotto_crypto::trust::TrustDecision;

use crate::e2e::crypto;
use crate::{Client, ConnectOptions, E2eKeys, Error, Realtime, RealtimeEvent, Result};

/// Something that happened on the endpoint.
#[derive(Debug)]
pub enum OtrUpdate {
    /// The OTR conversation of a room moved or received something (see [`OtrEvent`]).
    Event {
        /// The DM room.
        room: RoomId,
        /// What happened.
        event: OtrEvent,
    },
    /// The relay said something about a room's OTR session.
    Notice {
        /// The DM room.
        room: RoomId,
        /// What the relay said.
        notice: OtrNotice,
    },
    /// A packet from the peer could not be used (it did not decrypt, or was malformed).
    Rejected {
        /// The DM room.
        room: RoomId,
        /// Why.
        error: String,
    },
    /// Anything else on the connection (messages, presence, settings...).
    Other(RealtimeEvent),
}

struct Conversation {
    peer: UserId,
    session: OtrSession,
}

/// One client's off-the-record endpoint: a realtime connection plus the unlocked keys.
pub struct OtrEndpoint {
    realtime: Realtime,
    keys: E2eKeys,
    me: UserId,
    rooms: HashMap<RoomId, Conversation>,
    lost_replies: HashMap<[u8; 16], Instant>,
    /// Updates produced together (a packet can yield several events), handed out in order.
    pending: VecDeque<OtrUpdate>,
    /// Every OTR payload sent or received, when tapping is on (forensic tests).
    wire_tap: Option<Vec<Vec<u8>>>,
}

impl OtrEndpoint {
    /// Connects and announces that this connection's E2E identity is unlocked.
    pub async fn connect(client: &Client, keys: E2eKeys, opts: ConnectOptions) -> Result<Self> {
        let realtime = client.connect(opts).await?;
        let mut endpoint = Self {
            realtime,
            keys,
            me: client.user_id(),
            rooms: HashMap::new(),
            lost_replies: HashMap::new(),
            pending: VecDeque::new(),
            wire_tap: None,
        };
        endpoint.announce_unlocked().await?;
        Ok(endpoint)
    }

    /// Tells the server this connection is unlocked and waits until it has taken note: the
    /// server handles a connection's frames in order, so its answer to a ping sent afterwards
    /// proves it. Without the wait, a peer's offer could reach the server first and be refused
    /// as "locked". What arrives meanwhile is kept for [`OtrEndpoint::next`].
    async fn announce_unlocked(&mut self) -> Result<()> {
        const READY_WAIT: Duration = Duration::from_secs(30);
        self.realtime
            .send(&ClientEvent::E2eState { unlocked: true })?;
        // Distinct from any ping the caller sends itself on this connection.
        static READY_NONCE: AtomicU64 = AtomicU64::new(1 << 63);
        let nonce = READY_NONCE.fetch_add(1, Ordering::Relaxed);
        self.realtime.send(&ClientEvent::Ping { nonce })?;
        let deadline = tokio::time::Instant::now() + READY_WAIT;
        loop {
            let event = tokio::time::timeout_at(deadline, self.realtime.next())
                .await
                .map_err(|_| Error::Ws("the server did not confirm the unlocked state".into()))?
                .ok_or_else(|| Error::Ws("connection closed".into()))?;
            match event {
                RealtimeEvent::Event(ServerEvent::Pong { nonce: n }) if n == nonce => {
                    return Ok(());
                }
                other => {
                    if let Some(update) = self.absorb(other) {
                        self.pending.push_back(update);
                    }
                }
            }
        }
    }

    /// Records every OTR payload sent or received from now on (for tests that must prove the
    /// server kept none of them).
    pub fn tap_wire(&mut self) {
        self.wire_tap.get_or_insert_with(Vec::new);
    }

    /// The payloads recorded since [`OtrEndpoint::tap_wire`].
    pub fn tapped(&self) -> &[Vec<u8>] {
        self.wire_tap.as_deref().unwrap_or_default()
    }

    /// Simulates a network failure (no close handshake), waits `offline`, and connects again,
    /// taking back the old connection id when `resume` is set (the server allows that within
    /// its grace period). Every OTR conversation and key stays in memory meanwhile.
    pub async fn drop_and_reconnect(
        &mut self,
        client: &Client,
        offline: Duration,
        resume: bool,
    ) -> Result<bool> {
        let old_id = self.realtime.connection_id.clone();
        self.realtime.abort();
        tokio::time::sleep(offline).await;
        let opts = ConnectOptions {
            resume: resume.then_some(old_id),
            ..ConnectOptions::default()
        };
        self.realtime = client.connect(opts).await?;
        self.announce_unlocked().await?;
        Ok(self.realtime.resumed)
    }

    /// The realtime connection (its id, or to send other events).
    pub fn realtime(&self) -> &Realtime {
        &self.realtime
    }

    /// The unlocked keys (trust store, safety numbers).
    pub fn keys(&self) -> &E2eKeys {
        &self.keys
    }

    /// The unlocked keys, mutably (acknowledge a changed key, mark verified).
    pub fn keys_mut(&mut self) -> &mut E2eKeys {
        &mut self.keys
    }

    /// Gives the keys back and closes the connection cleanly (like closing the tab).
    pub async fn close(self) -> E2eKeys {
        self.realtime.close().await;
        self.keys
    }

    /// Drops the connection without a close handshake (like a network failure); the keys survive.
    pub fn drop_abruptly(self) -> E2eKeys {
        self.realtime.drop_abruptly();
        self.keys
    }

    /// Prepares the OTR conversation of a 1:1 DM: looks up the peer's keys in the directory and
    /// records them in the trust store (pinning on first use). A changed key is reported here and
    /// blocks OTR with that peer until acknowledged.
    pub async fn open(&mut self, client: &Client, room: RoomId) -> Result<TrustDecision> {
        let info = client.room(room).await?;
        if info.kind != RoomKind::Dm || info.members.len() != 2 {
            return Err(Error::Crypto(
                "off the record needs a 1:1 direct message".into(),
            ));
        }
        let peer = info
            .members
            .iter()
            .copied()
            .find(|id| *id != self.me)
            .ok_or_else(|| Error::Crypto("no peer in this room".into()))?;
        let decision = client.e2e_observe_peer(&mut self.keys, peer).await?;
        if !self.rooms.contains_key(&room) {
            let session =
                OtrSession::new(&room.to_string(), &self.me.to_string(), &peer.to_string())
                    .map_err(crypto)?;
            self.rooms.insert(room, Conversation { peer, session });
        }
        Ok(decision)
    }

    /// The state of a room's OTR conversation.
    pub fn state(&self, room: RoomId) -> OtrState {
        self.rooms
            .get(&room)
            .map_or(OtrState::NotStarted, |c| c.session.state())
    }

    /// The current OTR session id of a room, if any.
    pub fn session_id(&self, room: RoomId) -> Option<SessionId> {
        self.rooms.get(&room).and_then(|c| c.session.session_id())
    }

    /// The safety number with the room's peer.
    pub fn safety_number(&self, room: RoomId) -> Result<SafetyNumber> {
        let conversation = self.conversation(room)?;
        self.keys.safety_number(conversation.peer)
    }

    /// Start OTR.
    pub fn start(&mut self, room: RoomId) -> Result<Vec<OtrEvent>> {
        self.act(room, |session, keys| session.start(keys))
    }

    /// Accept the peer's invitation.
    pub fn accept(&mut self, room: RoomId) -> Result<Vec<OtrEvent>> {
        self.act(room, |session, keys| session.accept(keys))
    }

    /// Decline the peer's invitation.
    pub fn decline(&mut self, room: RoomId) -> Result<Vec<OtrEvent>> {
        self.act(room, |session, keys| session.decline(keys))
    }

    /// Withdraw an invitation or abandon a handshake.
    pub fn cancel(&mut self, room: RoomId) -> Result<Vec<OtrEvent>> {
        self.act(room, |session, keys| session.cancel(keys))
    }

    /// Refresh Keys.
    pub fn refresh(&mut self, room: RoomId) -> Result<Vec<OtrEvent>> {
        self.act(room, |session, keys| session.refresh(keys))
    }

    /// End OTR: following messages go back on the record (sent with the ordinary API).
    pub fn end(&mut self, room: RoomId) -> Result<Vec<OtrEvent>> {
        self.act(room, |session, keys| session.end(keys))
    }

    /// Sends an off-the-record text; returns its id, which a later `Delivered` names.
    pub fn send_text(&mut self, room: RoomId, text: &str) -> Result<u64> {
        let conversation = self.rooms.get_mut(&room).ok_or_else(no_conversation)?;
        let (id, packet) = conversation.session.send_text(text).map_err(crypto)?;
        let peer = conversation.peer;
        self.send_packet(room, peer, &packet)?;
        Ok(id)
    }

    /// Sends a small file off the record; returns its id.
    pub fn send_file(
        &mut self,
        room: RoomId,
        name: &str,
        media_type: &str,
        data: &[u8],
    ) -> Result<u64> {
        let conversation = self.rooms.get_mut(&room).ok_or_else(no_conversation)?;
        let (id, packets) = conversation
            .session
            .send_file(name, media_type, data)
            .map_err(crypto)?;
        let peer = conversation.peer;
        for packet in &packets {
            self.send_packet(room, peer, packet)?;
        }
        Ok(id)
    }

    /// The next update within `timeout`: OTR traffic is processed (answers are sent) on the way.
    pub async fn next(&mut self, timeout: Duration) -> Option<OtrUpdate> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(update) = self.pending.pop_front() {
                return Some(update);
            }
            let event = tokio::time::timeout_at(deadline, self.realtime.next())
                .await
                .ok()
                .flatten()?;
            if let Some(update) = self.absorb(event) {
                return Some(update);
            }
        }
    }

    /// Handles one realtime event: OTR packets go to their conversation (their updates are
    /// queued in `pending`), a notice becomes an update, anything else is handed through.
    fn absorb(&mut self, event: RealtimeEvent) -> Option<OtrUpdate> {
        match event {
            RealtimeEvent::Ephemeral(incoming) if incoming.channel == otr::CHANNEL => {
                self.on_packet(incoming);
                None
            }
            RealtimeEvent::Event(ServerEvent::Otr(notice)) => Some(self.on_notice(notice)),
            other => Some(OtrUpdate::Other(other)),
        }
    }

    /// Waits (at most `timeout`) for an update matching `pred`, collecting the others.
    pub async fn wait_for(
        &mut self,
        timeout: Duration,
        mut pred: impl FnMut(&OtrUpdate) -> bool,
    ) -> (Option<OtrUpdate>, Vec<OtrUpdate>) {
        let deadline = Instant::now() + timeout;
        let mut skipped = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next(left).await {
                Some(update) if pred(&update) => return (Some(update), skipped),
                Some(update) => skipped.push(update),
                None => return (None, skipped),
            }
        }
    }

    fn conversation(&self, room: RoomId) -> Result<&Conversation> {
        self.rooms.get(&room).ok_or_else(no_conversation)
    }

    fn act(
        &mut self,
        room: RoomId,
        action: impl FnOnce(&mut OtrSession, OtrKeys<'_>) -> std::result::Result<Step, OtrError>,
    ) -> Result<Vec<OtrEvent>> {
        let conversation = self.rooms.get_mut(&room).ok_or_else(no_conversation)?;
        let keys = OtrKeys {
            identity: &mut self.keys.otr,
            trust: &self.keys.trust,
        };
        let step = action(&mut conversation.session, keys).map_err(crypto)?;
        let peer = conversation.peer;
        for packet in &step.send {
            self.send_packet(room, peer, packet)?;
        }
        Ok(step.events)
    }

    fn send_packet(&mut self, room: RoomId, peer: UserId, packet: &Packet) -> Result<()> {
        let payload = packet.encode();
        if let Some(tap) = &mut self.wire_tap {
            tap.push(payload.clone());
        }
        self.realtime.send_ephemeral(&Outgoing {
            room_id: room,
            target: Target::User(peer),
            channel: otr::CHANNEL,
            payload,
        })
    }

    fn on_packet(&mut self, incoming: Incoming) {
        if let Some(tap) = &mut self.wire_tap {
            tap.push(incoming.payload.clone());
        }
        let room = incoming.room_id;
        let Some(conversation) = self.rooms.get_mut(&room) else {
            self.reply_lost(room, incoming.from_user, &incoming.payload);
            return;
        };
        // The sender is stamped by the server; a packet from anyone but the peer is ignored.
        if incoming.from_user != conversation.peer {
            return;
        }
        let keys = OtrKeys {
            identity: &mut self.keys.otr,
            trust: &self.keys.trust,
        };
        match conversation.session.receive(keys, &incoming.payload) {
            Ok(step) => {
                let peer = conversation.peer;
                for packet in &step.send {
                    // Lost-session answers are rate-limited like the unknown-room ones.
                    if is_lost_reply(packet) && !self.may_reply_lost(packet.session_id.0) {
                        continue;
                    }
                    let _ = self.send_packet(room, peer, packet);
                }
                self.pending.extend(
                    step.events
                        .into_iter()
                        .map(|event| OtrUpdate::Event { room, event }),
                );
            }
            Err(error) => self.pending.push_back(OtrUpdate::Rejected {
                room,
                error: error.to_string(),
            }),
        }
    }

    fn on_notice(&mut self, event: OtrNoticeEvent) -> OtrUpdate {
        let room = event.room_id;
        let current = |c: &Conversation| c.session.session_id().map(|id| id.to_hex());
        // A notice about an older session of the room (a refresh crossed it) changes nothing.
        if let Some(conversation) = self.rooms.get_mut(&room)
            && (event.session_id.is_none() || event.session_id == current(conversation))
        {
            let keys = OtrKeys {
                identity: &mut self.keys.otr,
                trust: &self.keys.trust,
            };
            let live = !matches!(
                conversation.session.state(),
                OtrState::NotStarted
                    | OtrState::Ended(_)
                    | OtrState::Declined
                    | OtrState::TimedOut
                    | OtrState::Failed(_)
            );
            // The relay has already forgotten the session in each of these cases, so whatever
            // the state machine would send is dropped.
            match &event.notice {
                OtrNotice::Expired if live => {
                    let _ = conversation.session.expire(keys);
                }
                OtrNotice::PeerDisconnected | OtrNotice::EndedByServer if live => {
                    let _ = conversation.session.peer_disconnected(keys);
                }
                OtrNotice::AcceptedElsewhere
                    if conversation.session.state() == OtrState::Invited =>
                {
                    let _ = conversation.session.expire(keys);
                }
                OtrNotice::Refused { .. }
                    if matches!(conversation.session.state(), OtrState::Offered) =>
                {
                    // The offer never left the server.
                    let _ = conversation.session.cancel(keys);
                }
                _ => {}
            }
        }
        OtrUpdate::Notice {
            room,
            notice: event.notice,
        }
    }

    fn reply_lost(&mut self, room: RoomId, from: UserId, payload: &[u8]) {
        if let Some(reply) = reply_to_unknown_session(payload)
            && self.may_reply_lost(reply.session_id.0)
        {
            let _ = self.send_packet(room, from, &reply);
        }
    }

    fn may_reply_lost(&mut self, session: [u8; 16]) -> bool {
        let now = Instant::now();
        self.lost_replies
            .retain(|_, at| now.duration_since(*at) < Duration::from_secs(1));
        if self.lost_replies.contains_key(&session) {
            return false;
        }
        self.lost_replies.insert(session, now);
        true
    }
}

fn is_lost_reply(packet: &Packet) -> bool {
    matches!(
        packet.body,
        sotto_crypto::otr::PacketBody::Abort(sotto_crypto::otr::AbortReason::LostSession)
    )
}

fn no_conversation() -> Error {
    Error::Crypto("open the room's OTR conversation first".into())
}

#[cfg(test)]
mod tests {
    use sotto_api::otr::{PacketKind as RelayKind, peek};
    use sotto_crypto::otr::{AbortReason, Accept, Offer, Packet, PacketBody, SessionId};
    use sotto_crypto::vodozemac::Curve25519PublicKey;

    /// The relay reads sotto-api's idea of the header; the clients write sotto-crypto's. They must
    /// agree on every kind, or the server would misroute packets.
    #[test]
    fn the_relay_header_agrees_with_the_crypto_packet_format() {
        let id = SessionId([0x5a; 16]);
        let cases = [
            (
                PacketBody::Offer(Offer {
                    versions: vec![1],
                    replaces: None,
                }),
                RelayKind::Offer,
            ),
            (
                PacketBody::Accept(Accept {
                    version: 1,
                    responder_nonce: [1; 16],
                    one_time_key: Curve25519PublicKey::from_bytes([2; 32]),
                }),
                RelayKind::Accept,
            ),
            (PacketBody::Decline, RelayKind::Decline),
            (PacketBody::Cancel, RelayKind::Cancel),
            (PacketBody::End(None), RelayKind::End),
            (
                PacketBody::Abort(AbortReason::LostSession),
                RelayKind::Abort,
            ),
        ];
        for (body, kind) in cases {
            let bytes = Packet {
                session_id: id,
                body,
            }
            .encode();
            assert_eq!(peek(&bytes), Some((kind, id.0)));
        }
        // Frames carry an olm message; a real one is built in the SDK's end-to-end tests, here
        // the header alone is checked.
        let mut frame = vec![
            sotto_crypto::otr::PACKET_VERSION,
            sotto_crypto::otr::PacketKind::Frame as u8,
        ];
        frame.extend_from_slice(&id.0);
        assert_eq!(peek(&frame), Some((RelayKind::Frame, id.0)));
        assert_eq!(
            sotto_api::otr::HEADER_LEN,
            sotto_crypto::otr::SESSION_ID_OFFSET + 16
        );
        assert_eq!(sotto_crypto::otr::KIND_OFFSET, 1);
    }
}
