//! The off-the-record relay: what the server may read of an OTR packet, and the notices it sends.
//!
//! OTR packets travel as [`crate::ephemeral`] binary frames on channel [`CHANNEL`]. The payload is
//! an OTR packet whose format `sotto-crypto` owns; the relay reads only its fixed header:
//!
//! ```text
//! 0      packet format version (1)
//! 1      kind (see [`PacketKind`])
//! 2..18  session id, 16 bytes, chosen by the offerer
//! 18..   opaque to the server (one-time key, ciphertext, ...)
//! ```
//!
//! The client addresses an OTR frame to the room's other member (`Target::User`); the server
//! ignores that choice beyond checking it and routes by session: an offer goes to every
//! connection of the peer that has its E2E identity unlocked, the first accept binds the session
//! to one connection on each side, and every later packet goes only to the other of those two.
//! A `sotto-client` test checks that this header agrees with `sotto-crypto`'s encoder.

use serde::{Deserialize, Serialize};

use crate::{ErrorCode, RoomId};

/// The ephemeral channel byte of OTR packets.
pub const CHANNEL: u8 = 1;
/// The only packet format version so far.
pub const PACKET_VERSION: u8 = 1;
/// Length of the relay-visible header.
pub const HEADER_LEN: usize = 18;

/// What a packet is, as far as the relay cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PacketKind {
    /// An invitation; starts a relay session.
    Offer,
    /// The invitation is accepted; binds the session to the accepting connection.
    Accept,
    /// The invitation is declined; ends the relay session.
    Decline,
    /// The offer or handshake is withdrawn; ends the relay session.
    Cancel,
    /// End OTR; ends the relay session.
    End,
    /// An encrypted message (handshake confirmation or content).
    Frame,
    /// The sender's side failed or holds no such session; ends the relay session.
    Abort,
}

impl PacketKind {
    /// Parses the kind byte.
    pub fn from_byte(byte: u8) -> Option<Self> {
        Some(match byte {
            1 => Self::Offer,
            2 => Self::Accept,
            3 => Self::Decline,
            4 => Self::Cancel,
            5 => Self::End,
            6 => Self::Frame,
            7 => Self::Abort,
            _ => return None,
        })
    }

    /// Whether the relay session ends once this packet is forwarded.
    pub fn ends_session(self) -> bool {
        matches!(self, Self::Decline | Self::Cancel | Self::End | Self::Abort)
    }
}

/// A 128-bit OTR session id, as the relay sees it.
pub type OtrSessionId = [u8; 16];

/// Reads the relay-visible header of an OTR packet. Never panics.
pub fn peek(payload: &[u8]) -> Option<(PacketKind, OtrSessionId)> {
    let header = payload.get(..HEADER_LEN)?;
    let (&version, rest) = header.split_first()?;
    if version != PACKET_VERSION {
        return None;
    }
    let (&kind, id) = rest.split_first()?;
    Some((PacketKind::from_byte(kind)?, id.try_into().ok()?))
}

/// Lower-case hex of a session id, as notices carry it.
pub fn session_hex(id: &OtrSessionId) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

/// Something the relay itself tells a client about an OTR session (as opposed to packets from
/// the peer, which arrive as binary frames). Carried by the live `otr` realtime event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "notice", rename_all = "snake_case")]
pub enum OtrNotice {
    /// The packet was refused and not forwarded; `code` says why (for example
    /// `otr_disabled`, `otr_peer_offline`, `otr_peer_locked`, `otr_peer_no_keys`, `otr_no_keys`,
    /// `otr_not_direct_message`, `otr_unknown_session`, `rate_limited`, `payload_too_large`).
    Refused {
        /// Stable code.
        code: ErrorCode,
        /// Human explanation.
        message: String,
    },
    /// Another connection of the same user accepted the invitation first.
    AcceptedElsewhere,
    /// The invitation expired (`otr.invite_timeout_secs`) before the handshake completed.
    Expired,
    /// The peer's connection that held the session closed (reload, closed tab) or did not come
    /// back within the grace period: the session is over.
    PeerDisconnected,
    /// The peer's connection dropped and may come back within the grace period; the packet was
    /// not delivered and is not queued.
    PeerUnreachable,
    /// The server ended the session: OTR was disabled by an admin, or a user was deactivated.
    EndedByServer,
}

/// The live `otr` realtime event's fields (see [`crate::realtime::ServerEvent::Otr`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OtrNoticeEvent {
    /// The DM room.
    pub room_id: RoomId,
    /// The OTR session (hex), when the notice concerns one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// What happened.
    #[serde(flatten)]
    pub notice: OtrNotice,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peek_reads_the_header_and_refuses_anything_else() {
        let mut packet = vec![1, 6];
        packet.extend_from_slice(&[7; 16]);
        packet.extend_from_slice(b"ciphertext");
        assert_eq!(peek(&packet), Some((PacketKind::Frame, [7; 16])));
        assert_eq!(
            peek(&packet[..HEADER_LEN]),
            Some((PacketKind::Frame, [7; 16]))
        );
        for len in 0..HEADER_LEN {
            assert_eq!(peek(&packet[..len]), None);
        }
        packet[0] = 2;
        assert_eq!(peek(&packet), None);
        packet[0] = 1;
        packet[1] = 0;
        assert_eq!(peek(&packet), None);
        assert_eq!(session_hex(&[0xab; 16]), "ab".repeat(16));
    }

    #[test]
    fn notices_have_a_stable_json_shape() {
        let event = OtrNoticeEvent {
            room_id: 5,
            session_id: Some("00".repeat(16)),
            notice: OtrNotice::Refused {
                code: ErrorCode::OtrPeerLocked,
                message: "m".into(),
            },
        };
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["notice"], "refused");
        assert_eq!(json["code"], "otr_peer_locked");
        assert_eq!(
            serde_json::from_value::<OtrNoticeEvent>(json).unwrap(),
            event
        );
        let json = serde_json::to_value(OtrNoticeEvent {
            room_id: 1,
            session_id: None,
            notice: OtrNotice::Expired,
        })
        .unwrap();
        assert_eq!(json, serde_json::json!({"room_id": 1, "notice": "expired"}));
    }
}
