//! Realtime events: JSON in WebSocket text frames on `/api/v1/ws`, tagged by `"type"`.
//!
//! Two classes travel on one socket:
//!
//! * **Stored events** carry a `seq` (a position in the server's event log). A client that
//!   reconnects with `?since=<last seq it saw>` first receives every stored event of its rooms
//!   after that position, in order, then `catch_up_done`, then live events — no gaps, no
//!   duplicates.
//! * **Live-only events** (`hello`, `presence`, `settings_changed`, `error`, `pong`) have no
//!   `seq` and are never replayed. Ephemeral payloads use binary frames, see
//!   [`crate::ephemeral`].

use serde::{Deserialize, Serialize};

use crate::rest::{Message, Presence, Room, SettingsMap};
use crate::{ErrorCode, MessageId, RoomId, Seq, SessionId, UserId};

/// Client → server text frames.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientEvent {
    /// Application-level ping; answered with `pong` carrying the same nonce.
    Ping {
        /// Echoed back.
        #[serde(default)]
        nonce: u64,
    },
    /// Mark this connection away (or back).
    SetAway {
        /// `true` for away.
        away: bool,
    },
    /// Whether this connection has its E2E identity unlocked (the user entered their E2E key).
    /// Only unlocked connections receive OTR offers; a connection starts locked.
    E2eState {
        /// `true` once unlocked; `false` after locking again.
        unlocked: bool,
    },
}

/// Server → client text frames.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerEvent {
    /// First frame on every connection.
    Hello {
        /// This connection's id: ephemeral events can be addressed to it.
        connection_id: String,
        /// The authenticated user.
        user_id: UserId,
        /// The session the connection belongs to.
        session_id: SessionId,
        /// Seconds between server heartbeats (WebSocket pings).
        heartbeat_secs: u64,
        /// Whether this connection took over the id of one that dropped (see `resume`).
        #[serde(default)]
        resumed: bool,
    },
    /// All stored events after `since` have been sent.
    CatchUpDone {
        /// Position of the last replayed event (or the `since` given).
        last_seq: Seq,
        /// `false` when more events were missed than the server replays; the client should
        /// reload room history over HTTP.
        complete: bool,
    },
    /// Answer to a client `ping`.
    Pong {
        /// The client's nonce.
        nonce: u64,
    },
    /// A message was sent to one of the caller's rooms.
    MessageCreated {
        /// Event position.
        seq: Seq,
        /// The message.
        message: Message,
    },
    /// A message was edited.
    MessageEdited {
        /// Event position.
        seq: Seq,
        /// The message after the edit.
        message: Message,
    },
    /// A message (and its attachment) was deleted.
    MessageDeleted {
        /// Event position.
        seq: Seq,
        /// Room.
        room_id: RoomId,
        /// Message.
        message_id: MessageId,
    },
    /// A room gained a member (sent to all members; the new member receives it too, which is
    /// how clients learn about rooms they were added to).
    MemberJoined {
        /// Event position.
        seq: Seq,
        /// The room after the change (boxed: a room is far larger than the other events).
        room: Box<Room>,
        /// Who joined.
        user_id: UserId,
    },
    /// A member left or was removed (the removed member receives it as well).
    MemberLeft {
        /// Event position.
        seq: Seq,
        /// Room.
        room_id: RoomId,
        /// Who left.
        user_id: UserId,
        /// `true` if the owner removed them.
        kicked: bool,
    },
    /// A new room key was distributed in an encrypted room (members fetch their share with
    /// `GET /api/v1/rooms/{id}/keys`).
    RoomKeyAdded {
        /// Event position.
        seq: Seq,
        /// Room.
        room_id: RoomId,
        /// The key's id.
        key_id: String,
        /// Who distributed it.
        distributor_id: UserId,
        /// The epoch it was distributed for.
        epoch: i64,
    },
    /// Presence of a user who shares a room with the caller (or the caller) changed.
    Presence {
        /// User.
        user_id: UserId,
        /// New presence.
        status: Presence,
    },
    /// Public settings changed; the full public set.
    SettingsChanged {
        /// Public settings.
        settings: SettingsMap,
    },
    /// The off-the-record relay tells this connection something about an OTR session: a refused
    /// packet, an invitation answered elsewhere or expired, a peer gone or unreachable, a session
    /// the server ended. Live only, never stored.
    Otr(crate::otr::OtrNoticeEvent),
    /// Something the client sent on this socket was refused. The connection stays open.
    Error {
        /// Stable code.
        code: ErrorCode,
        /// Human explanation.
        message: String,
    },
}

impl ServerEvent {
    /// The stored-event position, for stored events.
    pub fn seq(&self) -> Option<Seq> {
        match self {
            ServerEvent::MessageCreated { seq, .. }
            | ServerEvent::MessageEdited { seq, .. }
            | ServerEvent::MessageDeleted { seq, .. }
            | ServerEvent::MemberJoined { seq, .. }
            | ServerEvent::MemberLeft { seq, .. }
            | ServerEvent::RoomKeyAdded { seq, .. } => Some(*seq),
            _ => None,
        }
    }

    /// Sets the position of a stored event (no effect on live-only events).
    pub fn set_seq(&mut self, value: Seq) {
        match self {
            ServerEvent::MessageCreated { seq, .. }
            | ServerEvent::MessageEdited { seq, .. }
            | ServerEvent::MessageDeleted { seq, .. }
            | ServerEvent::MemberJoined { seq, .. }
            | ServerEvent::MemberLeft { seq, .. }
            | ServerEvent::RoomKeyAdded { seq, .. } => *seq = value,
            _ => {}
        }
    }
}

/// WebSocket close codes the server uses, with the reason string it sends.
pub mod close {
    /// The session was revoked or logged out.
    pub const SESSION_REVOKED: u16 = 4001;
    /// The user was deactivated.
    pub const DEACTIVATED: u16 = 4003;
    /// The client did not read fast enough; its outgoing queue overflowed.
    pub const SLOW_CONSUMER: u16 = 4008;
    /// The server is shutting down.
    pub const SHUTDOWN: u16 = 1001;
}
