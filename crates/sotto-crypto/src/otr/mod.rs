//! Off-the-record conversations: temporary, end-to-end encrypted, authenticated, deniable.
//!
//! # The handshake
//!
//! ```text
//! offerer A                         relay                       responder B
//!   Offer{versions, session id}  ───────────────────────▶  Invited: Accept / Decline
//!                                ◀───────────────────────  Accept{version, nonce, one-time key}
//!   olm outbound session: 3DH(A identity, A base key, B identity from A's trust store, B OTK)
//!   Frame(pre-key: Confirm{binding}) ─────────────────────▶
//!                          olm inbound session with A's identity key from B's trust store;
//!                          the binding must name this version, room, A as offerer, B as
//!                          responder, this session id, B's nonce and the olm session id
//!                                ◀───────────────────────  Frame(ConfirmAck{SHA-256(binding)})
//!   Established                                             Established (after sending it)
//! ```
//!
//! - Identity keys come only from the caller's [`TrustStore`](crate::trust::TrustStore); no
//!   handshake message can introduce one. A relay that swaps the one-time key, the base key or the
//!   identity key inside the pre-key message makes the triple Diffie-Hellman or vodozemac's checks
//!   fail, and both sides end in [`OtrState::Failed`].
//! - Nothing is signed: authentication is implicit in the Diffie-Hellman, so either party could
//!   have produced the transcript (deniability).
//! - No user content can be encrypted before the key confirmation: [`OtrSession::send_text`]
//!   answers [`OtrError::NotEstablished`].
//! - The one-time key is minted by the in-memory [`OtrIdentity`](crate::identity::OtrIdentity)
//!   and removed when the handshake ends in any way; fallback keys are never used.
//!
//! # After the handshake
//!
//! Messages ride vodozemac's double ratchet (`SessionConfig::version_1()`), which gives forward
//! secrecy per message and heals after a compromise. Inside the channel travel texts, encrypted
//! delivery acknowledgements, file chunks and the authenticated "end".
//!
//! Limits (vodozemac's, surfaced as [`FrameError`]):
//! - a message decrypts at most once (a replay is [`FrameError::MessageKeyUnavailable`]);
//! - out-of-order delivery works while at most 40 message keys are skipped in one chain (the 41st
//!   oldest skipped key is dropped) and within the last 5 receiving chains;
//! - a message more than 2000 positions ahead in its chain is [`FrameError::GapTooLarge`];
//! - after any such error the session keeps working for later messages.
//!
//! Refresh Keys starts a new handshake naming the session it replaces; a peer that holds that
//! session accepts by itself. Glare (both offer at once) resolves to the offer with the lower
//! session id, on both sides, without another round trip.

mod inner;
mod packet;
mod session;

pub use inner::{
    INNER_VERSION, MAX_CHUNK_BYTES, MAX_FILE_BYTES, MAX_TEXT_BYTES, check_inner_round_trip,
};
pub use packet::{
    AbortReason, Accept, KIND_OFFSET, MAX_PACKET_BYTES, Offer, PACKET_VERSION, Packet, PacketBody,
    PacketKind, SESSION_ID_OFFSET, SessionId,
};
pub use session::{
    EndReason, FailureReason, FrameError, MAX_IDENTIFIER_BYTES, MAX_INCOMING_FILES, OtrError,
    OtrEvent, OtrKeys, OtrSession, OtrState, PROTOCOL_VERSION, Step, reply_to_unknown_session,
};
