//! End-to-end encrypted rooms: room keys, their distribution to members, and message envelopes.
//!
//! A member creates a [`RoomKey`] (32 random bytes with a random 16-byte [`KeyId`]) whenever
//! the membership changes, and seals one *share* of it to every member ([`create_shares`]) with
//! HPKE in Auth mode (RFC 9180: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20-Poly1305) from
//! the distributor's room agreement key to the recipient's. The shares carry a header — room id,
//! key id, distributor, the sorted recipient list — that is HPKE's associated data and is also
//! signed by the distributor's Ed25519 identity key, so a recipient ([`open_share`]) knows who
//! distributed the key and to whom. Keys go into a per-room [`RoomKeyRing`], which encrypts and
//! decrypts message envelopes: XChaCha20-Poly1305 under a key derived from the room key, then an
//! Ed25519 signature by the sender, so a member holding the room key still cannot write in
//! another member's name.
//!
//! Share format, version 1 (integers big-endian; user and room ids are `i64`):
//!
//! ```text
//! offset 0   "SOTTORS"                 magic
//!        7   version u8 = 1
//!        8   room id i64               ┐
//!       16   key id [16]               │ the canonical header: HPKE associated data, and
//!       32   distributor id i64        │ signed as "sotto room key share v1" | header
//!       40   count u16 (1..=4096)      │
//!       42   recipient ids i64 × count ┘ strictly ascending
//!   42+8n    enc [32]                  HPKE encapsulated key
//!   74+8n    ciphertext [48]           the 32-byte room key + 16-byte tag
//!  122+8n    signature [64]            Ed25519 by the distributor
//!  186+8n    end
//! ```
//!
//! Envelope format, version 1 (a message body `{"type": "encrypted", "envelope": base64}`):
//!
//! ```text
//! offset 0   "SOTTOE2"                 magic
//!        7   version u8 = 1
//!        8   key id [16]               which room key (the server checks it at this offset)
//!       24   sender user id u64        (an i64 that is not negative)
//!       32   nonce [24]
//!       56   len u32
//!       60   ciphertext [len]          XChaCha20-Poly1305 under HKDF-SHA256(room key,
//!                                      "sotto room message v1"), associated data =
//!                                      room id i64 | bytes 0..60
//!   60+len   signature [64]            Ed25519 by the sender over room id i64 | bytes 0..60+len
//!  124+len   end
//! ```
//!
//! The plaintext is JSON ([`RoomContent`]). Every decoder checks every length before using it
//! and returns an error, never panics (fuzzed: `fuzz/fuzz_targets/room_*`).

use base64::Engine;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{KeyInit, XChaCha20Poly1305, XNonce};
use hpke::aead::ChaCha20Poly1305;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, OpModeR, OpModeS, Serializable};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use vodozemac::{Ed25519PublicKey, Ed25519Signature};
use zeroize::Zeroizing;

use crate::codec::{CodecError, Reader, Writer, random_bytes};
use crate::identity::{AgreementKey, Identity, IdentityError, SignedAgreementKey};
use crate::seal::subkey;

/// A user id, as the server numbers users.
pub type UserId = i64;
/// A room id, as the server numbers rooms.
pub type RoomId = i64;

const SHARE_MAGIC: &[u8; 7] = b"SOTTORS";
const SHARE_VERSION: u8 = 1;
/// HPKE's `info`, and the context of the distributor's signature over the share header.
const SHARE_CONTEXT: &[u8] = b"sotto room key share v1";
/// The most recipients one share names; also bounds what a hostile share makes us allocate.
pub const MAX_RECIPIENTS: usize = 4096;
const ENC_LEN: usize = 32;
const SEALED_KEY_LEN: usize = 32 + 16;
const SIGNATURE_LEN: usize = 64;

const ENVELOPE_MAGIC: &[u8; 7] = b"SOTTOE2";
const ENVELOPE_VERSION: u8 = 1;
const MESSAGE_KEY_INFO: &[u8] = b"sotto room message v1";
/// Where the key id sits in an envelope (16 bytes), for a server that checks it without parsing.
pub const ENVELOPE_KEY_ID_OFFSET: usize = 8;
/// Where the sender's user id sits in an envelope (u64 big-endian).
pub const ENVELOPE_SENDER_OFFSET: usize = 24;
/// Where the nonce sits in an envelope (24 bytes).
pub const ENVELOPE_NONCE_OFFSET: usize = 32;
/// Where the ciphertext starts; the bytes before it are the envelope's cleartext header.
pub const ENVELOPE_CIPHERTEXT_OFFSET: usize = 60;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
/// The largest message plaintext (the JSON content), in bytes.
pub const MAX_PLAINTEXT: usize = 64 * 1024;

/// Why a room key, share or envelope was refused. The first five are what a reader of a message
/// can be shown; the rest concern key distribution.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RoomError {
    /// The room key this message was written under has not been shared with this user (yet).
    #[error("the room key {0} has not been shared with you")]
    KeyNotShared(KeyId),
    /// The ciphertext or its header was altered (the AEAD or the share's signature failed).
    #[error("the encrypted message or key was altered")]
    Tampered,
    /// The envelope names another sender than the server says wrote it, or its signature is
    /// not the claimed sender's: a member tried to write in someone else's name.
    #[error("the message was not written by the member it claims to be from")]
    WrongSender,
    /// A format version this client does not know.
    #[error("unknown format version {0}")]
    UnknownVersion(u8),
    /// The bytes are not an envelope or share (bad magic, lengths, trailing bytes, bad JSON).
    #[error("malformed encrypted data")]
    Malformed,
    /// The content is too large to encrypt (see [`MAX_PLAINTEXT`]) or names too many members.
    #[error("too large")]
    TooLarge,
    /// The content has neither text nor a file.
    #[error("a message needs text or a file")]
    EmptyContent,
    /// The share is for another room.
    #[error("this room key share is for another room")]
    WrongRoom,
    /// The share names another distributor than the one it was presented with.
    #[error("this room key share was distributed by someone else")]
    WrongDistributor,
    /// The distributor is not among the members (the recipients, or the expected membership).
    #[error("this room key was distributed by someone who is not a member")]
    DistributorNotMember,
    /// This user is not among the share's recipients.
    #[error("this room key share does not name you as a recipient")]
    NotARecipient,
    /// The share's recipients are not the membership the caller expects.
    #[error("this room key was shared with other members than the room has")]
    MembersMismatch,
    /// The member list given to [`create_shares`] is unusable: empty, a user twice, or without
    /// the distributor's own current keys.
    #[error("invalid member list")]
    InvalidMembers,
    /// A member's keys are invalid, or an agreement key is not signed by its owner.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// The platform's random number generator failed.
    #[error("no randomness available")]
    Randomness,
}

impl From<CodecError> for RoomError {
    fn from(err: CodecError) -> Self {
        match err {
            CodecError::UnsupportedVersion(version) => Self::UnknownVersion(version),
            _ => Self::Malformed,
        }
    }
}

/// Standard base64; padding optional on input.
const BASE64_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Standard base64 with padding: how envelopes, shares and key ids travel.
pub fn to_base64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// Decodes standard base64, with or without padding.
pub fn from_base64(text: &str) -> Result<Vec<u8>, RoomError> {
    BASE64_LENIENT
        .decode(text)
        .map_err(|_| RoomError::Malformed)
}

/// The random 16-byte id of a room key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(pub [u8; 16]);

impl KeyId {
    /// Standard base64 with padding (24 characters).
    pub fn to_base64(&self) -> String {
        to_base64(&self.0)
    }

    /// Parses [`KeyId::to_base64`] (padding optional).
    pub fn from_base64(text: &str) -> Result<Self, RoomError> {
        from_base64(text)?
            .as_slice()
            .try_into()
            .map(Self)
            .map_err(|_| RoomError::Malformed)
    }
}

impl std::fmt::Debug for KeyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyId({})", self.to_base64())
    }
}

impl std::fmt::Display for KeyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_base64())
    }
}

/// A room key: 32 random bytes and their id. Like the off-the-record types it has no `Clone`,
/// `Debug` or serialisation, and it is zeroized when dropped; it leaves memory only sealed in a
/// share.
pub struct RoomKey {
    id: KeyId,
    secret: Zeroizing<[u8; 32]>,
}

impl RoomKey {
    /// A fresh random key with a fresh random id.
    pub fn generate() -> Result<Self, RoomError> {
        let mut secret = Zeroizing::new([0u8; 32]);
        getrandom::fill(secret.as_mut_slice()).map_err(|_| RoomError::Randomness)?;
        Ok(Self {
            id: KeyId(random_bytes().map_err(|_| RoomError::Randomness)?),
            secret,
        })
    }

    /// The key's id.
    pub fn id(&self) -> KeyId {
        self.id
    }

    /// A key with a chosen id and secret, for the fuzz harness only.
    pub(crate) fn from_parts_for_fuzzing(id: KeyId, secret: [u8; 32]) -> Self {
        Self {
            id,
            secret: Zeroizing::new(secret),
        }
    }

    fn message_key(&self) -> Zeroizing<[u8; 32]> {
        subkey(&self.secret, MESSAGE_KEY_INFO)
    }
}

/// A room member whose keys were checked: the Ed25519 identity key the caller pinned, and an
/// agreement key whose signature verified against it. Only [`Member::verify`] makes one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    user_id: UserId,
    ed25519: Ed25519PublicKey,
    agreement: AgreementKey,
}

impl Member {
    /// Checks `agreement` against `ed25519`, which must be the user's *pinned* identity key.
    pub fn verify(
        user_id: UserId,
        ed25519: Ed25519PublicKey,
        agreement: &SignedAgreementKey,
    ) -> Result<Self, RoomError> {
        let agreement = agreement.verify(&ed25519, user_id)?;
        // Refuse a key HPKE cannot use now rather than at the first share.
        agreement.hpke()?;
        Ok(Self {
            user_id,
            ed25519,
            agreement,
        })
    }

    /// The member's user id.
    pub fn user_id(&self) -> UserId {
        self.user_id
    }

    /// The member's Ed25519 identity key.
    pub fn ed25519(&self) -> Ed25519PublicKey {
        self.ed25519
    }

    /// The member's verified agreement key.
    pub fn agreement_key(&self) -> AgreementKey {
        self.agreement
    }
}

/// What a share says about its key: which room, which key, who distributed it, and to whom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareHeader {
    /// The room the key is for.
    pub room_id: RoomId,
    /// The key's id.
    pub key_id: KeyId,
    /// Who created and distributed the key.
    pub distributor: UserId,
    /// Everyone the key was shared with, ascending (the distributor among them).
    pub recipients: Vec<UserId>,
}

impl ShareHeader {
    /// The canonical encoding: HPKE's associated data and what the distributor signs (after
    /// the context string).
    fn encode(&self) -> Vec<u8> {
        let mut out = Writer::with_capacity(42 + 8 * self.recipients.len());
        out.u64(self.room_id as u64)
            .raw(&self.key_id.0)
            .u64(self.distributor as u64);
        // Callers keep the list within MAX_RECIPIENTS, far below u16::MAX.
        out.u16(u16::try_from(self.recipients.len()).unwrap_or(u16::MAX));
        for recipient in &self.recipients {
            out.u64(*recipient as u64);
        }
        out.into_vec()
    }

    fn signed_message(encoded: &[u8]) -> Vec<u8> {
        let mut message = Vec::with_capacity(SHARE_CONTEXT.len() + encoded.len());
        message.extend_from_slice(SHARE_CONTEXT);
        message.extend_from_slice(encoded);
        message
    }
}

fn read_id(reader: &mut Reader<'_>) -> Result<i64, CodecError> {
    Ok(reader.u64()? as i64)
}

/// A decoded, not yet verified, share.
struct ParsedShare<'a> {
    header: ShareHeader,
    encoded_header: &'a [u8],
    enc: &'a [u8],
    sealed_key: &'a [u8],
    signature: [u8; SIGNATURE_LEN],
}

impl<'a> ParsedShare<'a> {
    fn decode(bytes: &'a [u8]) -> Result<Self, RoomError> {
        let mut reader = Reader::new(bytes);
        if reader.take(SHARE_MAGIC.len())? != SHARE_MAGIC {
            return Err(RoomError::Malformed);
        }
        let version = reader.u8()?;
        if version != SHARE_VERSION {
            return Err(RoomError::UnknownVersion(version));
        }
        let room_id = read_id(&mut reader)?;
        let key_id = KeyId(reader.array()?);
        let distributor = read_id(&mut reader)?;
        let count = usize::from(reader.u16()?);
        if count == 0 || count > MAX_RECIPIENTS {
            return Err(RoomError::Malformed);
        }
        let mut recipients = Vec::with_capacity(count);
        for _ in 0..count {
            let id = read_id(&mut reader)?;
            // Strictly ascending: one canonical encoding per recipient set.
            if recipients.last().is_some_and(|&last| last >= id) {
                return Err(RoomError::Malformed);
            }
            recipients.push(id);
        }
        let header_end = SHARE_MAGIC.len() + 1 + 34 + 8 * count;
        let encoded_header = bytes
            .get(SHARE_MAGIC.len() + 1..header_end)
            .ok_or(RoomError::Malformed)?;
        let enc = reader.take(ENC_LEN)?;
        let sealed_key = reader.take(SEALED_KEY_LEN)?;
        let signature = reader.array()?;
        reader.finish()?;
        Ok(Self {
            header: ShareHeader {
                room_id,
                key_id,
                distributor,
                recipients,
            },
            encoded_header,
            enc,
            sealed_key,
            signature,
        })
    }
}

/// Checks that `bytes` is structurally a share and returns its header (nothing is verified).
/// The fuzz target's entry point, and useful to show who distributed a key before opening it.
pub fn peek_share(bytes: &[u8]) -> Result<ShareHeader, RoomError> {
    ParsedShare::decode(bytes).map(|parsed| parsed.header)
}

/// Seals one share of `key` to each of `members` (which must include the distributor with its
/// own current keys, and name nobody twice). Returns `(user id, share bytes)` per member,
/// ascending by user id. Check the members' keys with [`Member::verify`] against the pinned
/// identity keys first: a share is only as private as the agreement keys it is sealed to.
pub fn create_shares(
    identity: &Identity,
    room_id: RoomId,
    distributor: UserId,
    key: &RoomKey,
    members: &[Member],
) -> Result<Vec<(UserId, Vec<u8>)>, RoomError> {
    let mut members: Vec<&Member> = members.iter().collect();
    members.sort_unstable_by_key(|member| member.user_id);
    if members.is_empty() {
        return Err(RoomError::InvalidMembers);
    }
    if members.len() > MAX_RECIPIENTS {
        return Err(RoomError::TooLarge);
    }
    if members
        .windows(2)
        .any(|pair| matches!(pair, [a, b] if a.user_id == b.user_id))
    {
        return Err(RoomError::InvalidMembers);
    }
    let own = identity.public();
    let own_agreement = identity.agreement_key();
    if !members.iter().any(|member| {
        member.user_id == distributor
            && member.ed25519 == own.ed25519
            && member.agreement == own_agreement
    }) {
        return Err(RoomError::InvalidMembers);
    }
    let header = ShareHeader {
        room_id,
        key_id: key.id,
        distributor,
        recipients: members.iter().map(|member| member.user_id).collect(),
    };
    let encoded = header.encode();
    let signature = identity
        .sign(&ShareHeader::signed_message(&encoded))
        .to_bytes();
    let (secret, public) = identity.agreement_pair();
    let mode = OpModeS::<X25519HkdfSha256>::Auth((secret, public));
    let mut shares = Vec::with_capacity(members.len());
    for member in members {
        let recipient = member.agreement.hpke()?;
        // hpke draws the ephemeral key from getrandom and would panic if it failed; the room
        // key was just drawn from the same source, so it is working. What can fail is the
        // Diffie-Hellman with a (signed, but hostile) low-order agreement key.
        let (enc, sealed) =
            hpke::single_shot_seal::<ChaCha20Poly1305, HkdfSha256, X25519HkdfSha256>(
                &mode,
                &recipient,
                SHARE_CONTEXT,
                key.secret.as_slice(),
                &encoded,
            )
            .map_err(|_| RoomError::Identity(IdentityError::InvalidPublicKey))?;
        let mut out = Writer::with_capacity(
            SHARE_MAGIC.len() + 1 + encoded.len() + ENC_LEN + sealed.len() + SIGNATURE_LEN,
        );
        out.raw(SHARE_MAGIC)
            .u8(SHARE_VERSION)
            .raw(&encoded)
            .raw(&enc.to_bytes())
            .raw(&sealed)
            .raw(&signature);
        shares.push((member.user_id, out.into_vec()));
    }
    Ok(shares)
}

/// Opens a share addressed to `recipient` (this identity's user) for `room_id`, distributed by
/// `distributor` (whose keys the caller verified with [`Member::verify`]). Checks, in order: the
/// format and version; the room; that the share names this distributor; that the distributor
/// and the recipient are among the recipients; when `expected_members` is given (the membership
/// the client knows for that moment), that the distributor is one of them and the recipient list
/// equals it; the distributor's signature over the header; HPKE's authentication of the
/// distributor's agreement key. Returns the key and the header.
pub fn open_share(
    identity: &Identity,
    room_id: RoomId,
    recipient: UserId,
    share: &[u8],
    distributor: &Member,
    expected_members: Option<&[UserId]>,
) -> Result<(RoomKey, ShareHeader), RoomError> {
    let parsed = ParsedShare::decode(share)?;
    let header = &parsed.header;
    if header.room_id != room_id {
        return Err(RoomError::WrongRoom);
    }
    if header.distributor != distributor.user_id {
        return Err(RoomError::WrongDistributor);
    }
    if let Some(expected) = expected_members {
        if !expected.contains(&header.distributor) {
            return Err(RoomError::DistributorNotMember);
        }
        // Equal as sets, without sorting (the recipients are already strictly ascending).
        let same = expected
            .iter()
            .all(|id| header.recipients.binary_search(id).is_ok())
            && header.recipients.iter().all(|id| expected.contains(id));
        if !same {
            return Err(RoomError::MembersMismatch);
        }
    }
    if header
        .recipients
        .binary_search(&header.distributor)
        .is_err()
    {
        return Err(RoomError::DistributorNotMember);
    }
    if header.recipients.binary_search(&recipient).is_err() {
        return Err(RoomError::NotARecipient);
    }
    let signature =
        Ed25519Signature::from_slice(&parsed.signature).map_err(|_| RoomError::Tampered)?;
    distributor
        .ed25519
        .verify(
            &ShareHeader::signed_message(parsed.encoded_header),
            &signature,
        )
        .map_err(|_| RoomError::Tampered)?;
    let enc = <X25519HkdfSha256 as hpke::Kem>::EncappedKey::from_bytes(parsed.enc)
        .map_err(|_| RoomError::Malformed)?;
    let (secret, _) = identity.agreement_pair();
    let opened = Zeroizing::new(
        hpke::single_shot_open::<ChaCha20Poly1305, HkdfSha256, X25519HkdfSha256>(
            &OpModeR::Auth(distributor.agreement.hpke()?),
            &secret,
            &enc,
            SHARE_CONTEXT,
            parsed.sealed_key,
            parsed.encoded_header,
        )
        .map_err(|_| RoomError::Tampered)?,
    );
    let mut key = Zeroizing::new([0u8; 32]);
    if opened.len() != key.len() {
        return Err(RoomError::Tampered);
    }
    key.copy_from_slice(&opened);
    Ok((
        RoomKey {
            id: header.key_id,
            secret: key,
        },
        parsed.header,
    ))
}

/// What a message says, as JSON: text, a file, or a file with a caption.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RoomContent {
    /// The message text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// An attached encrypted file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<FileRef>,
}

impl RoomContent {
    /// A text message.
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            text: Some(text.into()),
            file: None,
        }
    }
}

/// Message content stays out of logs: only its shape is shown.
impl std::fmt::Debug for RoomContent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoomContent")
            .field("text_len", &self.text.as_ref().map(String::len))
            .field("file", &self.file)
            .finish()
    }
}

/// An encrypted file as a message refers to it: where it is, and how to open it
/// ([`crate::files::decrypt_file`]).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRef {
    /// The file key, standard base64.
    pub key: String,
    /// The STREAM nonce, standard base64.
    pub nonce: String,
    /// SHA-256 of the ciphertext (the uploaded bytes), standard base64.
    pub sha256: String,
    /// The file name.
    pub name: String,
    /// The media type of the plaintext.
    #[serde(rename = "type")]
    pub media_type: String,
    /// The plaintext size in bytes.
    pub size: u64,
    /// The upload holding the ciphertext.
    pub upload_id: i64,
}

/// The file key stays out of logs.
impl std::fmt::Debug for FileRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileRef")
            .field("size", &self.size)
            .field("upload_id", &self.upload_id)
            .finish_non_exhaustive()
    }
}

/// A decrypted, authenticated message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decrypted {
    /// The room key it was written under.
    pub key_id: KeyId,
    /// Its sender (equal to the author the caller named, or decryption fails).
    pub sender: UserId,
    /// What it says.
    pub content: RoomContent,
}

/// A decoded, not yet verified, envelope.
struct ParsedEnvelope<'a> {
    key_id: KeyId,
    sender: UserId,
    nonce: [u8; NONCE_LEN],
    header: &'a [u8],
    ciphertext: &'a [u8],
    signed: &'a [u8],
    signature: [u8; SIGNATURE_LEN],
}

impl<'a> ParsedEnvelope<'a> {
    fn decode(bytes: &'a [u8]) -> Result<Self, RoomError> {
        let mut reader = Reader::new(bytes);
        if reader.take(ENVELOPE_MAGIC.len())? != ENVELOPE_MAGIC {
            return Err(RoomError::Malformed);
        }
        let version = reader.u8()?;
        if version != ENVELOPE_VERSION {
            return Err(RoomError::UnknownVersion(version));
        }
        let key_id = KeyId(reader.array()?);
        let sender = i64::try_from(reader.u64()?).map_err(|_| RoomError::Malformed)?;
        let nonce = reader.array()?;
        let ciphertext = reader.bytes32(MAX_PLAINTEXT + TAG_LEN)?;
        if ciphertext.len() < TAG_LEN {
            return Err(RoomError::Malformed);
        }
        let signature = reader.array()?;
        reader.finish()?;
        let signed_len = ENVELOPE_CIPHERTEXT_OFFSET + ciphertext.len();
        Ok(Self {
            key_id,
            sender,
            nonce,
            header: bytes
                .get(..ENVELOPE_CIPHERTEXT_OFFSET)
                .ok_or(RoomError::Malformed)?,
            ciphertext,
            signed: bytes.get(..signed_len).ok_or(RoomError::Malformed)?,
            signature,
        })
    }
}

/// The key id in an envelope's cleartext header (bytes 8..24), after checking that the whole
/// envelope is well-formed. Nothing is decrypted or verified.
pub fn envelope_key_id(envelope: &[u8]) -> Result<KeyId, RoomError> {
    ParsedEnvelope::decode(envelope).map(|parsed| parsed.key_id)
}

fn envelope_aad(room_id: RoomId, header: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(8 + header.len());
    aad.extend_from_slice(&room_id.to_be_bytes());
    aad.extend_from_slice(header);
    aad
}

/// The room keys this user holds for one room, in the order they arrived (a room gathers a key
/// per membership change, so a list is small, and smaller in wasm than a hash map).
pub struct RoomKeyRing {
    room_id: RoomId,
    keys: Vec<RoomKey>,
}

impl RoomKeyRing {
    /// An empty ring for `room_id`.
    pub fn new(room_id: RoomId) -> Self {
        Self {
            room_id,
            keys: Vec::new(),
        }
    }

    /// The room this ring belongs to.
    pub fn room_id(&self) -> RoomId {
        self.room_id
    }

    /// Adds a key; it becomes the newest unless the ring already had it. Returns whether it was
    /// new.
    pub fn insert(&mut self, key: RoomKey) -> bool {
        if self.contains(key.id) {
            return false;
        }
        self.keys.push(key);
        true
    }

    fn get(&self, key_id: KeyId) -> Option<&RoomKey> {
        self.keys.iter().find(|key| key.id == key_id)
    }

    /// Whether the ring holds this key.
    pub fn contains(&self, key_id: KeyId) -> bool {
        self.get(key_id).is_some()
    }

    /// The key added last (the one to write under, unless the server says another is current).
    pub fn newest(&self) -> Option<KeyId> {
        self.keys.last().map(|key| key.id)
    }

    /// How many keys the ring holds.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the ring is empty.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Encrypts and signs `content` as `sender` (this identity's user) under the key `key_id`.
    pub fn encrypt(
        &self,
        identity: &Identity,
        key_id: KeyId,
        sender: UserId,
        content: &RoomContent,
    ) -> Result<Vec<u8>, RoomError> {
        if content.text.is_none() && content.file.is_none() {
            return Err(RoomError::EmptyContent);
        }
        let key = self.get(key_id).ok_or(RoomError::KeyNotShared(key_id))?;
        let sender_bits = u64::try_from(sender).map_err(|_| RoomError::Malformed)?;
        let mut plaintext = Zeroizing::new(Vec::with_capacity(256));
        serde_json::to_writer(&mut *plaintext, content).map_err(|_| RoomError::Malformed)?;
        if plaintext.len() > MAX_PLAINTEXT {
            return Err(RoomError::TooLarge);
        }
        let nonce: [u8; NONCE_LEN] = random_bytes().map_err(|_| RoomError::Randomness)?;
        let ciphertext_len = plaintext.len() + TAG_LEN;
        let mut out =
            Writer::with_capacity(ENVELOPE_CIPHERTEXT_OFFSET + ciphertext_len + SIGNATURE_LEN);
        out.raw(ENVELOPE_MAGIC)
            .u8(ENVELOPE_VERSION)
            .raw(&key_id.0)
            .u64(sender_bits)
            .raw(&nonce)
            // At most MAX_PLAINTEXT + TAG_LEN, checked above.
            .u32(u32::try_from(ciphertext_len).map_err(|_| RoomError::TooLarge)?);
        let mut bytes = out.into_vec();
        let aad = envelope_aad(self.room_id, &bytes);
        let ciphertext = XChaCha20Poly1305::new(&(*key.message_key()).into())
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: &plaintext,
                    aad: &aad,
                },
            )
            .map_err(|_| RoomError::TooLarge)?;
        bytes.extend_from_slice(&ciphertext);
        let signature = identity.sign(&envelope_aad(self.room_id, &bytes));
        bytes.extend_from_slice(&signature.to_bytes());
        Ok(bytes)
    }

    /// Decrypts an envelope the server says `author` wrote, given `author_ed25519`, the author's
    /// *pinned* identity key. Checks, in order: the format ([`RoomError::Malformed`],
    /// [`RoomError::UnknownVersion`]); that this ring holds the key
    /// ([`RoomError::KeyNotShared`]); the AEAD over the header and the room id
    /// ([`RoomError::Tampered`]); that the envelope's sender is the author and the signature is
    /// theirs ([`RoomError::WrongSender`]: the content came from someone holding the room key,
    /// but not from the author); and that the content is valid JSON.
    pub fn decrypt(
        &self,
        envelope: &[u8],
        author: UserId,
        author_ed25519: &Ed25519PublicKey,
    ) -> Result<Decrypted, RoomError> {
        let parsed = ParsedEnvelope::decode(envelope)?;
        let key = self
            .get(parsed.key_id)
            .ok_or(RoomError::KeyNotShared(parsed.key_id))?;
        let aad = envelope_aad(self.room_id, parsed.header);
        let plaintext = Zeroizing::new(
            XChaCha20Poly1305::new(&(*key.message_key()).into())
                .decrypt(
                    &XNonce::from(parsed.nonce),
                    Payload {
                        msg: parsed.ciphertext,
                        aad: &aad,
                    },
                )
                .map_err(|_| RoomError::Tampered)?,
        );
        if parsed.sender != author {
            return Err(RoomError::WrongSender);
        }
        let signature =
            Ed25519Signature::from_slice(&parsed.signature).map_err(|_| RoomError::WrongSender)?;
        author_ed25519
            .verify(&envelope_aad(self.room_id, parsed.signed), &signature)
            .map_err(|_| RoomError::WrongSender)?;
        let content: RoomContent =
            serde_json::from_slice(&plaintext).map_err(|_| RoomError::Malformed)?;
        if content.text.is_none() && content.file.is_none() {
            return Err(RoomError::Malformed);
        }
        Ok(Decrypted {
            key_id: parsed.key_id,
            sender: parsed.sender,
            content,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_match_the_layout() {
        assert_eq!(ENVELOPE_KEY_ID_OFFSET, ENVELOPE_MAGIC.len() + 1);
        assert_eq!(ENVELOPE_SENDER_OFFSET, ENVELOPE_KEY_ID_OFFSET + 16);
        assert_eq!(ENVELOPE_NONCE_OFFSET, ENVELOPE_SENDER_OFFSET + 8);
        assert_eq!(
            ENVELOPE_CIPHERTEXT_OFFSET,
            ENVELOPE_NONCE_OFFSET + NONCE_LEN + 4
        );
    }

    #[test]
    fn key_ids_round_trip_through_base64_with_or_without_padding() {
        let id = KeyId([7; 16]);
        let text = id.to_base64();
        assert_eq!(text.len(), 24);
        assert_eq!(KeyId::from_base64(&text).unwrap(), id);
        assert_eq!(KeyId::from_base64(text.trim_end_matches('=')).unwrap(), id);
        assert!(KeyId::from_base64("AAAA").is_err());
        assert!(KeyId::from_base64("not base64!").is_err());
    }
}
