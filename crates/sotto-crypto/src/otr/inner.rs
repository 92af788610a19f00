//! What travels *inside* the encrypted channel. Version 1:
//!
//! ```text
//! 0   inner version = 1
//! 1   type: 1 confirm, 2 confirm-ack, 3 text, 4 ack, 5 end, 6 file chunk
//! ..  confirm      the handshake binding: u8 version, u16 + room id, u16 + offerer id,
//!                  u16 + responder id, session id[16], responder nonce[16], u16 + offered
//!                  versions, u8 0 | u8 1 + replaced session id[16], u16 + olm session id
//!     confirm-ack  32-byte SHA-256 of the encoded binding
//!     text         u64 message id, u32 length + UTF-8 text
//!     ack          u64 message id
//!     end          empty
//!     file chunk   u64 file id, u32 total size, u32 offset, u16 + name, u16 + media type,
//!                  u32 + data
//! ```
//!
//! Acknowledgements are encrypted like everything else, so the relay cannot forge "delivered".

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::packet::SessionId;
use crate::codec::{CodecError, Reader, Writer};

/// Version of the inner format.
pub const INNER_VERSION: u8 = 1;
/// The largest text message, in bytes of UTF-8.
pub const MAX_TEXT_BYTES: usize = 32 * 1024;
/// The largest file that can be sent off the record.
pub const MAX_FILE_BYTES: u32 = 4 * 1024 * 1024;
/// The largest chunk of a file in one frame.
pub const MAX_CHUNK_BYTES: usize = 32 * 1024;
const MAX_ID_BYTES: usize = 255;
const MAX_OFFERED_VERSIONS: usize = 8;
const MAX_FILE_NAME_BYTES: usize = 255;
const MAX_MEDIA_TYPE_BYTES: usize = 127;

/// Everything the first encrypted message binds, so that a handshake cannot be replayed into
/// another room, between other users, or under another session id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Binding {
    pub(crate) protocol_version: u8,
    pub(crate) room_id: String,
    pub(crate) offerer_user_id: String,
    pub(crate) responder_user_id: String,
    pub(crate) session_id: SessionId,
    pub(crate) responder_nonce: [u8; 16],
    /// The versions the offer listed, so a relay that trims the list is caught.
    pub(crate) offered_versions: Vec<u8>,
    /// The session the offer said it replaces.
    pub(crate) replaces: Option<SessionId>,
    /// vodozemac's session id: a hash of the offerer's identity key, the base key and the
    /// one-time key (the responder's identity key enters through the triple Diffie-Hellman).
    pub(crate) olm_session_id: String,
}

impl Binding {
    fn write(&self, out: &mut Writer) {
        out.u8(self.protocol_version)
            .bytes16(self.room_id.as_bytes())
            .bytes16(self.offerer_user_id.as_bytes())
            .bytes16(self.responder_user_id.as_bytes())
            .raw(&self.session_id.0)
            .raw(&self.responder_nonce)
            .bytes16(&self.offered_versions);
        match self.replaces {
            Some(old) => out.u8(1).raw(&old.0),
            None => out.u8(0),
        };
        out.bytes16(self.olm_session_id.as_bytes());
    }

    fn read(reader: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(Self {
            protocol_version: reader.u8()?,
            room_id: reader.str16(MAX_ID_BYTES)?.to_owned(),
            offerer_user_id: reader.str16(MAX_ID_BYTES)?.to_owned(),
            responder_user_id: reader.str16(MAX_ID_BYTES)?.to_owned(),
            session_id: SessionId(reader.array()?),
            responder_nonce: reader.array()?,
            offered_versions: reader.bytes16(MAX_OFFERED_VERSIONS)?.to_vec(),
            replaces: match reader.u8()? {
                0 => None,
                1 => Some(SessionId(reader.array()?)),
                other => return Err(CodecError::UnknownTag(other)),
            },
            olm_session_id: reader.str16(MAX_ID_BYTES)?.to_owned(),
        })
    }

    /// The hash the responder sends back as key confirmation.
    pub(crate) fn confirmation(&self) -> [u8; 32] {
        let mut out = Writer::with_capacity(128);
        out.raw(b"sotto-otr confirm v1");
        self.write(&mut out);
        Sha256::digest(out.into_vec()).into()
    }
}

/// One piece of a file sent off the record.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct FileChunk {
    pub(crate) file_id: u64,
    pub(crate) total_size: u32,
    pub(crate) offset: u32,
    pub(crate) name: String,
    pub(crate) media_type: String,
    pub(crate) data: Zeroizing<Vec<u8>>,
}

/// A message inside the channel.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Inner {
    Confirm(Binding),
    ConfirmAck([u8; 32]),
    Text { id: u64, text: Zeroizing<String> },
    Ack { id: u64 },
    End,
    FileChunk(FileChunk),
}

impl Inner {
    pub(crate) fn encode(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Writer::with_capacity(64);
        out.u8(INNER_VERSION);
        match self {
            Self::Confirm(binding) => {
                out.u8(1);
                binding.write(&mut out);
            }
            Self::ConfirmAck(hash) => {
                out.u8(2).raw(hash);
            }
            Self::Text { id, text } => {
                out.u8(3).u64(*id).bytes32(text.as_bytes());
            }
            Self::Ack { id } => {
                out.u8(4).u64(*id);
            }
            Self::End => {
                out.u8(5);
            }
            Self::FileChunk(chunk) => {
                out.u8(6)
                    .u64(chunk.file_id)
                    .u32(chunk.total_size)
                    .u32(chunk.offset)
                    .bytes16(chunk.name.as_bytes())
                    .bytes16(chunk.media_type.as_bytes())
                    .bytes32(&chunk.data);
            }
        }
        Zeroizing::new(out.into_vec())
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
        let mut reader = Reader::new(bytes);
        let version = reader.u8()?;
        if version != INNER_VERSION {
            return Err(CodecError::UnsupportedVersion(version));
        }
        let inner = match reader.u8()? {
            1 => Self::Confirm(Binding::read(&mut reader)?),
            2 => Self::ConfirmAck(reader.array()?),
            3 => Self::Text {
                id: reader.u64()?,
                text: Zeroizing::new(reader.str32(MAX_TEXT_BYTES)?.to_owned()),
            },
            4 => Self::Ack { id: reader.u64()? },
            5 => Self::End,
            6 => {
                let chunk = FileChunk {
                    file_id: reader.u64()?,
                    total_size: reader.u32()?,
                    offset: reader.u32()?,
                    name: reader.str16(MAX_FILE_NAME_BYTES)?.to_owned(),
                    media_type: reader.str16(MAX_MEDIA_TYPE_BYTES)?.to_owned(),
                    data: Zeroizing::new(reader.bytes32(MAX_CHUNK_BYTES)?.to_vec()),
                };
                let end = u64::from(chunk.offset) + chunk.data.len() as u64;
                if chunk.total_size > MAX_FILE_BYTES || end > u64::from(chunk.total_size) {
                    return Err(CodecError::InvalidValue);
                }
                Self::FileChunk(chunk)
            }
            other => return Err(CodecError::UnknownTag(other)),
        };
        reader.finish()?;
        Ok(inner)
    }
}

/// Whether `bytes`, if they decode as an inner message, re-encode to exactly the same bytes:
/// `None` for input that does not decode. The fuzz targets' entry point.
pub fn check_inner_round_trip(bytes: &[u8]) -> Option<bool> {
    let inner = Inner::decode(bytes).ok()?;
    let encoded = inner.encode();
    // Decoding is strict (exact lengths, no trailing bytes), so re-encoding is canonical.
    Some(Inner::decode(&encoded).ok().as_ref() == Some(&inner) && encoded.as_slice() == bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> Vec<Inner> {
        vec![
            Inner::Confirm(Binding {
                protocol_version: 1,
                room_id: "room".into(),
                offerer_user_id: "alice".into(),
                responder_user_id: "bob".into(),
                session_id: SessionId([5; 16]),
                responder_nonce: [6; 16],
                offered_versions: vec![1],
                replaces: Some(SessionId([7; 16])),
                olm_session_id: "olm".into(),
            }),
            Inner::ConfirmAck([1; 32]),
            Inner::Text {
                id: 42,
                text: Zeroizing::new("héllo".into()),
            },
            Inner::Ack { id: 42 },
            Inner::End,
            Inner::FileChunk(FileChunk {
                file_id: 1,
                total_size: 10,
                offset: 4,
                name: "a.txt".into(),
                media_type: "text/plain".into(),
                data: Zeroizing::new(vec![1, 2, 3]),
            }),
        ]
    }

    #[test]
    fn every_inner_message_round_trips_and_rejects_truncation() {
        for sample in samples() {
            let bytes = sample.encode();
            assert!(Inner::decode(&bytes).unwrap() == sample);
            assert_eq!(check_inner_round_trip(&bytes), Some(true));
            for len in 0..bytes.len() {
                assert!(Inner::decode(&bytes[..len]).is_err());
            }
        }
    }

    #[test]
    fn oversized_files_and_chunks_past_the_end_are_refused() {
        let chunk = |total_size, offset| {
            Inner::FileChunk(FileChunk {
                file_id: 1,
                total_size,
                offset,
                name: String::new(),
                media_type: String::new(),
                data: Zeroizing::new(vec![0; 8]),
            })
            .encode()
        };
        assert!(Inner::decode(&chunk(MAX_FILE_BYTES + 1, 0)).is_err());
        assert!(Inner::decode(&chunk(8, 1)).is_err());
        assert!(Inner::decode(&chunk(8, 0)).is_ok());
    }
}
