//! Ephemeral events: the binary WebSocket frame class.
//!
//! An ephemeral event is routed to one user (all their connections) or to **exactly one
//! connection**, is never stored, and is never replayed on reconnect. Its payload is opaque to
//! the server, which only rewrites the header: it stamps the sender from the authenticated
//! connection and never trusts one claimed by the client. The off-the-record relay (its own
//! `channel`) is built on this class.
//!
//! Layout (all integers big-endian):
//!
//! ```text
//! client -> server:  u8 version=1 | u8 target_kind (0=user, 1=connection) | i64 room_id
//!                    | target: i64 user_id  or  u8 len + len bytes connection id (UTF-8)
//!                    | u8 channel | payload...
//! server -> client:  u8 version=1 | i64 room_id | i64 from_user | u8 len + from_connection
//!                    | u8 channel | payload...
//! ```
//!
//! Decoding never panics; every malformed input is a [`DecodeError`].

use crate::{RoomId, UserId};

/// The only version so far.
pub const VERSION: u8 = 1;

/// Longest connection id on the wire.
pub const MAX_CONNECTION_ID_LEN: usize = 64;

/// Where a client wants an ephemeral event to go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Every open connection of this user.
    User(UserId),
    /// Exactly this connection.
    Connection(String),
}

/// Client → server ephemeral frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// The room both sender and recipient belong to; routing is only allowed within it.
    pub room_id: RoomId,
    /// Recipient.
    pub target: Target,
    /// Application channel (e.g. OTR); opaque to the transport.
    pub channel: u8,
    /// Opaque payload.
    pub payload: Vec<u8>,
}

/// Server → client ephemeral frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incoming {
    /// Room.
    pub room_id: RoomId,
    /// Sender, stamped by the server.
    pub from_user: UserId,
    /// Sending connection, stamped by the server (reply to it with [`Target::Connection`]).
    pub from_connection: String,
    /// Application channel.
    pub channel: u8,
    /// Opaque payload.
    pub payload: Vec<u8>,
}

/// Why a binary frame could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// The frame ended before the header did.
    Truncated,
    /// Unknown version byte.
    UnknownVersion(u8),
    /// Unknown target kind byte.
    UnknownTargetKind(u8),
    /// A connection id is empty, too long or not UTF-8.
    BadConnectionId,
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::Truncated => f.write_str("frame truncated"),
            DecodeError::UnknownVersion(v) => write!(f, "unknown frame version {v}"),
            DecodeError::UnknownTargetKind(k) => write!(f, "unknown target kind {k}"),
            DecodeError::BadConnectionId => f.write_str("bad connection id"),
        }
    }
}

impl std::error::Error for DecodeError {}

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.buf.len() < n {
            return Err(DecodeError::Truncated);
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }
    fn i64(&mut self) -> Result<i64, DecodeError> {
        let mut b = [0u8; 8];
        b.copy_from_slice(self.take(8)?);
        Ok(i64::from_be_bytes(b))
    }
    fn conn_id(&mut self) -> Result<String, DecodeError> {
        let len = self.u8()? as usize;
        if len == 0 || len > MAX_CONNECTION_ID_LEN {
            return Err(DecodeError::BadConnectionId);
        }
        let bytes = self.take(len)?;
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| DecodeError::BadConnectionId)
    }
}

fn put_conn_id(out: &mut Vec<u8>, id: &str) {
    // Ids longer than the limit are never produced by a server; clamp defensively.
    let bytes = &id.as_bytes()[..id.len().min(MAX_CONNECTION_ID_LEN)];
    out.push(bytes.len() as u8);
    out.extend_from_slice(bytes);
}

impl Outgoing {
    /// Encodes the frame.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(32 + self.payload.len());
        out.push(VERSION);
        match &self.target {
            Target::User(_) => out.push(0),
            Target::Connection(_) => out.push(1),
        }
        out.extend_from_slice(&self.room_id.to_be_bytes());
        match &self.target {
            Target::User(u) => out.extend_from_slice(&u.to_be_bytes()),
            Target::Connection(c) => put_conn_id(&mut out, c),
        }
        out.push(self.channel);
        out.extend_from_slice(&self.payload);
        out
    }

    /// Decodes a frame.
    pub fn decode(frame: &[u8]) -> Result<Self, DecodeError> {
        OutgoingRef::decode(frame).map(|f| Outgoing {
            room_id: f.room_id,
            target: f.target,
            channel: f.channel,
            payload: f.payload.to_vec(),
        })
    }
}

/// A client → server frame decoded in place: the payload borrows the frame, so a relay can
/// check the header and forward the payload without copying it first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingRef<'a> {
    /// The room both sender and recipient belong to.
    pub room_id: RoomId,
    /// Recipient.
    pub target: Target,
    /// Application channel.
    pub channel: u8,
    /// Opaque payload, a slice of the frame.
    pub payload: &'a [u8],
}

impl<'a> OutgoingRef<'a> {
    /// Decodes a frame (the same rules as [`Outgoing::decode`]).
    pub fn decode(frame: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader { buf: frame };
        let version = r.u8()?;
        if version != VERSION {
            return Err(DecodeError::UnknownVersion(version));
        }
        let kind = r.u8()?;
        let room_id = r.i64()?;
        let target = match kind {
            0 => Target::User(r.i64()?),
            1 => Target::Connection(r.conn_id()?),
            k => return Err(DecodeError::UnknownTargetKind(k)),
        };
        let channel = r.u8()?;
        Ok(OutgoingRef {
            room_id,
            target,
            channel,
            payload: r.buf,
        })
    }
}

impl Incoming {
    /// Encodes the frame.
    pub fn encode(&self) -> Vec<u8> {
        Self::encode_parts(
            self.room_id,
            self.from_user,
            &self.from_connection,
            self.channel,
            &self.payload,
        )
    }

    /// Encodes from parts, so a relay can forward a payload slice without building a struct.
    pub fn encode_parts(
        room_id: RoomId,
        from_user: UserId,
        from_connection: &str,
        channel: u8,
        payload: &[u8],
    ) -> Vec<u8> {
        // Exactly the header's length: one allocation, never grown.
        let id_len = from_connection.len().min(MAX_CONNECTION_ID_LEN);
        let mut out = Vec::with_capacity(1 + 8 + 8 + 1 + id_len + 1 + payload.len());
        out.push(VERSION);
        out.extend_from_slice(&room_id.to_be_bytes());
        out.extend_from_slice(&from_user.to_be_bytes());
        put_conn_id(&mut out, from_connection);
        out.push(channel);
        out.extend_from_slice(payload);
        out
    }

    /// Decodes a frame.
    pub fn decode(frame: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader { buf: frame };
        let version = r.u8()?;
        if version != VERSION {
            return Err(DecodeError::UnknownVersion(version));
        }
        let room_id = r.i64()?;
        let from_user = r.i64()?;
        let from_connection = r.conn_id()?;
        let channel = r.u8()?;
        Ok(Incoming {
            room_id,
            from_user,
            from_connection,
            channel,
            payload: r.buf.to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let o = Outgoing {
            room_id: 7,
            target: Target::Connection("c_abc".into()),
            channel: 3,
            payload: b"opaque".to_vec(),
        };
        assert_eq!(Outgoing::decode(&o.encode()).unwrap(), o);
        let o = Outgoing {
            room_id: -1,
            target: Target::User(42),
            channel: 0,
            payload: vec![],
        };
        assert_eq!(Outgoing::decode(&o.encode()).unwrap(), o);
        let i = Incoming {
            room_id: 1,
            from_user: 2,
            from_connection: "c_x".into(),
            channel: 9,
            payload: vec![0, 1, 2],
        };
        assert_eq!(Incoming::decode(&i.encode()).unwrap(), i);
    }

    #[test]
    fn the_borrowing_decoder_reads_the_payload_in_place() {
        let frame = Outgoing {
            room_id: 7,
            target: Target::User(42),
            channel: 1,
            payload: b"opaque".to_vec(),
        }
        .encode();
        let r = OutgoingRef::decode(&frame).unwrap();
        assert_eq!(
            (r.room_id, &r.target, r.channel, r.payload),
            (7, &Target::User(42), 1, &b"opaque"[..])
        );
        assert!(std::ptr::eq(
            r.payload.as_ptr(),
            frame[frame.len() - 6..].as_ptr()
        ));
        // The stamped frame is encoded into exactly its own length.
        let id = "c_0123456789abcdef01234567";
        let out = Incoming::encode_parts(7, 2, id, 1, r.payload);
        assert_eq!(out.len(), out.capacity());
        assert_eq!(Incoming::decode(&out).unwrap().from_connection, id);
    }

    #[test]
    fn every_prefix_of_a_frame_is_rejected_without_panicking() {
        let o = Outgoing {
            room_id: 7,
            target: Target::Connection("c_abc".into()),
            channel: 3,
            payload: vec![],
        };
        let bytes = o.encode();
        for n in 0..bytes.len() {
            assert!(Outgoing::decode(&bytes[..n]).is_err(), "prefix {n}");
        }
        assert_eq!(
            Outgoing::decode(&[2, 0]),
            Err(DecodeError::UnknownVersion(2))
        );
        let mut bad = bytes.clone();
        bad[1] = 9;
        assert_eq!(
            Outgoing::decode(&bad),
            Err(DecodeError::UnknownTargetKind(9))
        );
        let mut zero_len = bytes;
        zero_len[10] = 0;
        assert_eq!(
            Outgoing::decode(&zero_len),
            Err(DecodeError::BadConnectionId)
        );
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // A small deterministic sweep standing in for a fuzzer.
        let mut x: u32 = 0x1234_5678;
        for len in 0..200usize {
            let mut buf = Vec::with_capacity(len);
            for _ in 0..len {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                buf.push((x & 0xff) as u8);
            }
            if let Some(b) = buf.first_mut() {
                *b = VERSION;
            }
            let _ = Outgoing::decode(&buf);
            let _ = Incoming::decode(&buf);
        }
    }
}
