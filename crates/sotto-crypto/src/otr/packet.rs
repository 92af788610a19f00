//! The OTR packet: what one client hands the relay for the other.
//!
//! The relay (the server) needs the kind and the session id to route and police packets, and
//! nothing else; both sit at fixed offsets so it can read them without parsing the rest. Version 1:
//!
//! ```text
//! 0      format version = 1
//! 1      kind: 1 offer, 2 accept, 3 decline, 4 cancel, 5 end, 6 frame, 7 abort
//! 2..18  session id (16 bytes, chosen by the offerer)
//! 18..   body:
//!        offer   u8 n, n × u8 protocol versions (1..=8 entries), u8 flags (bit 0: refresh),
//!                [16-byte id of the session it replaces, if refresh]
//!        accept  u8 chosen version, 16-byte responder nonce, 32-byte one-time key
//!        decline, cancel: empty
//!        end     u8 0 | u8 1 + olm message (the encrypted, authenticated "end")
//!        frame   olm message
//!        abort   u8 reason
//! olm message = u8 type (0 pre-key, 1 normal) + the message bytes
//! ```
//!
//! Nothing here is signed (deniability); the one-time key and everything after the handshake are
//! authenticated by the triple Diffie-Hellman and the key confirmation instead.

use std::fmt;

use vodozemac::Curve25519PublicKey;
use vodozemac::olm::OlmMessage;

use crate::codec::{CodecError, Reader, Writer, random_bytes};

/// The largest packet this version encodes or accepts (the relay's frame limit).
pub const MAX_PACKET_BYTES: usize = 64 * 1024;
/// The packet format version.
pub const PACKET_VERSION: u8 = 1;
/// Offset of the kind byte, for relays.
pub const KIND_OFFSET: usize = 1;
/// Offset of the 16-byte session id, for relays.
pub const SESSION_ID_OFFSET: usize = 2;
const MAX_OFFERED_VERSIONS: usize = 8;

/// A 128-bit off-the-record session id, chosen at random by the offerer.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SessionId(pub [u8; 16]);

impl SessionId {
    /// A fresh random id.
    pub(crate) fn random() -> Result<Self, getrandom::Error> {
        random_bytes().map(Self)
    }

    /// Lower-case hex, as used in logs of the client and in the relay API.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Parses 32 hex digits.
    pub fn from_hex(hex: &str) -> Option<Self> {
        if hex.len() != 32 || !hex.is_ascii() {
            return None;
        }
        let mut out = [0u8; 16];
        for (index, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(hex.get(index * 2..index * 2 + 2)?, 16).ok()?;
        }
        Some(Self(out))
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({})", self.to_hex())
    }
}

/// Why a side aborted a session, carried in an abort packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AbortReason {
    /// The receiver holds no session with this id (it reloaded, or never had it): "session lost".
    LostSession,
    /// The handshake failed on the receiver's side (bad key, failed decryption, bad binding).
    HandshakeFailed,
    /// No protocol version in common.
    UnsupportedVersion,
    /// The receiver saw a message it cannot accept in its state.
    ProtocolViolation,
}

impl AbortReason {
    fn to_byte(self) -> u8 {
        match self {
            Self::LostSession => 1,
            Self::HandshakeFailed => 2,
            Self::UnsupportedVersion => 3,
            Self::ProtocolViolation => 4,
        }
    }

    fn from_byte(byte: u8) -> Result<Self, CodecError> {
        Ok(match byte {
            1 => Self::LostSession,
            2 => Self::HandshakeFailed,
            3 => Self::UnsupportedVersion,
            4 => Self::ProtocolViolation,
            other => return Err(CodecError::UnknownTag(other)),
        })
    }
}

/// The kind of a packet, readable by the relay at [`KIND_OFFSET`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketKind {
    /// Invitation to go off the record.
    Offer = 1,
    /// The invitation is accepted; carries the responder's one-time key.
    Accept = 2,
    /// The invitation is declined.
    Decline = 3,
    /// The offerer withdraws the invitation (or abandons the handshake).
    Cancel = 4,
    /// End OTR.
    End = 5,
    /// An encrypted message.
    Frame = 6,
    /// The session failed on the sender's side.
    Abort = 7,
}

impl PacketKind {
    /// Parses the kind byte.
    pub fn from_byte(byte: u8) -> Result<Self, CodecError> {
        Ok(match byte {
            1 => Self::Offer,
            2 => Self::Accept,
            3 => Self::Decline,
            4 => Self::Cancel,
            5 => Self::End,
            6 => Self::Frame,
            7 => Self::Abort,
            other => return Err(CodecError::UnknownTag(other)),
        })
    }
}

/// An invitation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    /// Protocol versions the offerer supports, most preferred first.
    pub versions: Vec<u8>,
    /// The session this offer replaces (Refresh Keys); the peer accepts such an offer by itself
    /// when it holds that session.
    pub replaces: Option<SessionId>,
}

/// The responder's answer to an offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accept {
    /// The protocol version chosen from the offer.
    pub version: u8,
    /// 16 random bytes of the responder, bound into the key confirmation.
    pub responder_nonce: [u8; 16],
    /// A fresh one-time key of the responder's in-memory OTR identity.
    pub one_time_key: Curve25519PublicKey,
}

/// The body of a packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PacketBody {
    /// See [`Offer`].
    Offer(Offer),
    /// See [`Accept`].
    Accept(Accept),
    /// The invitation is declined.
    Decline,
    /// The invitation or handshake is withdrawn.
    Cancel,
    /// End OTR, with the encrypted end message when the session was established.
    End(Option<OlmMessage>),
    /// An encrypted message.
    Frame(OlmMessage),
    /// The session failed on the sender's side.
    Abort(AbortReason),
}

/// One OTR packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// The session the packet belongs to.
    pub session_id: SessionId,
    /// What it says.
    pub body: PacketBody,
}

impl Packet {
    /// The kind of this packet.
    pub fn kind(&self) -> PacketKind {
        match self.body {
            PacketBody::Offer(_) => PacketKind::Offer,
            PacketBody::Accept(_) => PacketKind::Accept,
            PacketBody::Decline => PacketKind::Decline,
            PacketBody::Cancel => PacketKind::Cancel,
            PacketBody::End(_) => PacketKind::End,
            PacketBody::Frame(_) => PacketKind::Frame,
            PacketBody::Abort(_) => PacketKind::Abort,
        }
    }

    /// Encodes the packet.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Writer::with_capacity(64);
        out.u8(PACKET_VERSION)
            .u8(self.kind() as u8)
            .raw(&self.session_id.0);
        match &self.body {
            PacketBody::Offer(offer) => {
                let count = offer.versions.len().min(MAX_OFFERED_VERSIONS);
                out.u8(count as u8)
                    .raw(offer.versions.get(..count).unwrap_or_default());
                match offer.replaces {
                    Some(old) => out.u8(1).raw(&old.0),
                    None => out.u8(0),
                };
            }
            PacketBody::Accept(accept) => {
                out.u8(accept.version)
                    .raw(&accept.responder_nonce)
                    .raw(accept.one_time_key.as_bytes());
            }
            PacketBody::Decline | PacketBody::Cancel => {}
            PacketBody::End(None) => {
                out.u8(0);
            }
            PacketBody::End(Some(message)) => {
                out.u8(1);
                write_olm(&mut out, message);
            }
            PacketBody::Frame(message) => write_olm(&mut out, message),
            PacketBody::Abort(reason) => {
                out.u8(reason.to_byte());
            }
        }
        out.into_vec()
    }

    /// Decodes a packet; any malformed input is an error, never a panic.
    pub fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
        if bytes.len() > MAX_PACKET_BYTES {
            return Err(CodecError::TooLong);
        }
        let mut reader = Reader::new(bytes);
        let version = reader.u8()?;
        if version != PACKET_VERSION {
            return Err(CodecError::UnsupportedVersion(version));
        }
        let kind = PacketKind::from_byte(reader.u8()?)?;
        let session_id = SessionId(reader.array()?);
        let body = match kind {
            PacketKind::Offer => {
                let count = usize::from(reader.u8()?);
                if count == 0 || count > MAX_OFFERED_VERSIONS {
                    return Err(CodecError::InvalidValue);
                }
                let versions = reader.take(count)?.to_vec();
                let replaces = match reader.u8()? {
                    0 => None,
                    1 => Some(SessionId(reader.array()?)),
                    other => return Err(CodecError::UnknownTag(other)),
                };
                PacketBody::Offer(Offer { versions, replaces })
            }
            PacketKind::Accept => PacketBody::Accept(Accept {
                version: reader.u8()?,
                responder_nonce: reader.array()?,
                one_time_key: Curve25519PublicKey::from_bytes(reader.array()?),
            }),
            PacketKind::Decline => PacketBody::Decline,
            PacketKind::Cancel => PacketBody::Cancel,
            PacketKind::End => match reader.u8()? {
                0 => PacketBody::End(None),
                1 => PacketBody::End(Some(read_olm(&mut reader)?)),
                other => return Err(CodecError::UnknownTag(other)),
            },
            PacketKind::Frame => PacketBody::Frame(read_olm(&mut reader)?),
            PacketKind::Abort => PacketBody::Abort(AbortReason::from_byte(reader.u8()?)?),
        };
        reader.finish()?;
        Ok(Self { session_id, body })
    }

    /// Reads only the kind and the session id, as a relay does.
    pub fn peek(bytes: &[u8]) -> Result<(PacketKind, SessionId), CodecError> {
        let mut reader = Reader::new(bytes);
        let version = reader.u8()?;
        if version != PACKET_VERSION {
            return Err(CodecError::UnsupportedVersion(version));
        }
        let kind = PacketKind::from_byte(reader.u8()?)?;
        Ok((kind, SessionId(reader.array()?)))
    }
}

fn write_olm(out: &mut Writer, message: &OlmMessage) {
    let (message_type, bytes) = message.to_parts();
    out.u8(message_type as u8).raw(&bytes);
}

fn read_olm(reader: &mut Reader<'_>) -> Result<OlmMessage, CodecError> {
    let message_type = reader.u8()?;
    if message_type > 1 {
        return Err(CodecError::UnknownTag(message_type));
    }
    let bytes = reader.rest(MAX_PACKET_BYTES)?;
    OlmMessage::from_parts(usize::from(message_type), bytes).map_err(|_| CodecError::InvalidValue)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_round_trip_through_hex() {
        let id = SessionId::random().unwrap();
        assert_eq!(SessionId::from_hex(&id.to_hex()), Some(id));
        assert_eq!(SessionId::from_hex("zz"), None);
        assert_eq!(SessionId::from_hex(&"é".repeat(16)), None);
    }

    #[test]
    fn control_packets_round_trip_and_peek() {
        let session_id = SessionId([7; 16]);
        let bodies = [
            PacketBody::Offer(Offer {
                versions: vec![1],
                replaces: None,
            }),
            PacketBody::Offer(Offer {
                versions: vec![2, 1],
                replaces: Some(SessionId([1; 16])),
            }),
            PacketBody::Accept(Accept {
                version: 1,
                responder_nonce: [3; 16],
                one_time_key: Curve25519PublicKey::from_bytes([9; 32]),
            }),
            PacketBody::Decline,
            PacketBody::Cancel,
            PacketBody::End(None),
            PacketBody::Abort(AbortReason::LostSession),
        ];
        for body in bodies {
            let packet = Packet { session_id, body };
            let bytes = packet.encode();
            assert_eq!(Packet::decode(&bytes).unwrap(), packet);
            assert_eq!(Packet::peek(&bytes).unwrap(), (packet.kind(), session_id));
            for len in 0..bytes.len() {
                assert!(Packet::decode(&bytes[..len]).is_err());
            }
            let mut longer = bytes.clone();
            longer.push(0);
            assert_eq!(Packet::decode(&longer), Err(CodecError::TrailingBytes));
        }
    }

    #[test]
    fn bad_headers_are_typed_errors() {
        assert_eq!(Packet::decode(&[]), Err(CodecError::Truncated));
        assert_eq!(
            Packet::decode(&[2, 1]),
            Err(CodecError::UnsupportedVersion(2))
        );
        let mut bytes = vec![1, 99];
        bytes.extend_from_slice(&[0; 16]);
        assert_eq!(Packet::decode(&bytes), Err(CodecError::UnknownTag(99)));
        assert_eq!(
            Packet::decode(&vec![1; MAX_PACKET_BYTES + 1]),
            Err(CodecError::TooLong)
        );
        let mut empty_offer = vec![1, 1];
        empty_offer.extend_from_slice(&[0; 16]);
        empty_offer.extend_from_slice(&[0, 0]);
        assert_eq!(Packet::decode(&empty_offer), Err(CodecError::InvalidValue));
    }
}
