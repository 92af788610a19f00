//! The off-the-record state machine for one 1:1 conversation.
//!
//! An [`OtrSession`] is sans-I/O: the caller feeds it user actions ([`OtrSession::start`],
//! [`OtrSession::accept`], …) and packets from the relay ([`OtrSession::receive`]); it answers with
//! a [`Step`]: packets to hand to the relay and [`OtrEvent`]s to show. Timers and connections
//! belong to the caller, who reports them as events ([`OtrSession::expire`],
//! [`OtrSession::peer_disconnected`]).
//!
//! One `OtrSession` lives per DM room and outlives individual sessions: Refresh Keys replaces the
//! session (a new session id, new keys) inside the same object.

use std::collections::BTreeMap;
use std::fmt;

use thiserror::Error;
use vodozemac::Curve25519PublicKey;
use vodozemac::olm::{DecryptionError, OlmMessage, Session};
use zeroize::Zeroizing;

use super::inner::{Binding, FileChunk, Inner, MAX_CHUNK_BYTES, MAX_FILE_BYTES, MAX_TEXT_BYTES};
use super::packet::{AbortReason, Accept, Offer, Packet, PacketBody, SessionId};
use crate::codec::{CodecError, random_bytes};
use crate::identity::OtrIdentity;
use crate::trust::{TrustError, TrustStore};

/// The protocol version this implementation speaks.
pub const PROTOCOL_VERSION: u8 = 1;
const SUPPORTED_VERSIONS: &[u8] = &[PROTOCOL_VERSION];
/// At most this many files may be arriving at once in one session.
pub const MAX_INCOMING_FILES: usize = 4;
/// The longest room or user id, in bytes.
pub const MAX_IDENTIFIER_BYTES: usize = 255;

/// The visible state of an off-the-record conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtrState {
    /// Nothing has happened yet.
    NotStarted,
    /// We invited the peer and wait for an answer.
    Offered,
    /// The peer invited us; Accept or Decline.
    Invited,
    /// Keys are being agreed and confirmed; no content can flow yet.
    Establishing,
    /// Off the record: messages flow encrypted and unstored.
    Established,
    /// The conversation is back on the record.
    Ended(EndReason),
    /// The invitation was declined (by either side).
    Declined,
    /// The invitation or handshake timed out.
    TimedOut,
    /// The session failed; Refresh Keys or Start OTR again.
    Failed(FailureReason),
}

/// How a conversation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// This side chose End OTR.
    EndedHere,
    /// The peer chose End OTR. `authenticated` is true when the end arrived encrypted in the
    /// session (the relay could not have forged it).
    EndedByPeer {
        /// Whether the end message decrypted in the session.
        authenticated: bool,
    },
    /// This side withdrew its invitation or abandoned the handshake.
    CancelledHere,
    /// The peer withdrew its invitation or abandoned the handshake.
    CancelledByPeer,
}

/// Why a session failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureReason {
    /// The peer's handshake message did not verify (substituted key, failed decryption, unknown
    /// one-time key, mismatched identity key).
    HandshakeRejected,
    /// The first encrypted message bound another room, other users or another session.
    BindingMismatch,
    /// The key confirmation did not match.
    ConfirmationMismatch,
    /// The peer reported that our handshake failed on its side.
    PeerRejectedHandshake,
    /// The peer holds no such session (it reloaded): "session lost — Refresh Keys".
    SessionLost,
    /// The peer's connection closed.
    PeerDisconnected,
    /// No protocol version in common.
    NoCommonVersion,
    /// The peer sent something its state does not allow.
    ProtocolViolation,
    /// The peer's identity key changed and the change is not acknowledged.
    PeerKeyChanged,
}

/// Something to show the user.
pub enum OtrEvent {
    /// The state changed.
    StateChanged(OtrState),
    /// The peer invites us off the record (show Accept / Decline).
    Invited {
        /// The offered session.
        session_id: SessionId,
        /// The offer replaces a session we no longer hold (the peer pressed Refresh Keys).
        refresh: bool,
    },
    /// The peer refreshed the keys of our established session; we accepted by ourselves.
    RefreshAccepted {
        /// The new session.
        session_id: SessionId,
    },
    /// An off-the-record message.
    Message {
        /// The sender's message id (for display and de-duplication).
        id: u64,
        /// The text.
        text: Zeroizing<String>,
    },
    /// The peer's client decrypted our message `id`.
    Delivered {
        /// Our message id.
        id: u64,
    },
    /// A file arrived off the record.
    File {
        /// The sender's file id.
        id: u64,
        /// The file name the sender gave.
        name: String,
        /// The media type the sender gave (untrusted: render as a download unless an image).
        media_type: String,
        /// The bytes.
        data: Zeroizing<Vec<u8>>,
    },
}

impl fmt::Debug for OtrEvent {
    // Content is never formatted, so an event that reaches a log leaks nothing.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::StateChanged(state) => write!(f, "StateChanged({state:?})"),
            Self::Invited {
                session_id,
                refresh,
            } => {
                write!(f, "Invited({session_id:?}, refresh: {refresh})")
            }
            Self::RefreshAccepted { session_id } => write!(f, "RefreshAccepted({session_id:?})"),
            Self::Message { id, .. } => write!(f, "Message({id}, <redacted>)"),
            Self::Delivered { id } => write!(f, "Delivered({id})"),
            Self::File { id, data, .. } => write!(f, "File({id}, {} bytes)", data.len()),
        }
    }
}

/// What the caller must do after feeding the session: send these packets, show these events.
#[derive(Debug, Default)]
pub struct Step {
    /// Packets for the relay, in order.
    pub send: Vec<Packet>,
    /// Things to show, in order.
    pub events: Vec<OtrEvent>,
}

/// Why a frame in an established session did not decrypt. The session stays usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum FrameError {
    /// The message key is gone: the message was already decrypted (a replay) or is older than the
    /// reordering window (more than 40 messages skipped in its chain, or more than 5 chains ago).
    #[error("message already decrypted, or too old to decrypt")]
    MessageKeyUnavailable,
    /// The message is more than 2000 messages ahead of its chain.
    #[error("message too far ahead")]
    GapTooLarge,
    /// The message does not authenticate in this session.
    #[error("message does not authenticate")]
    Tampered,
    /// The decrypted content is malformed.
    #[error("malformed content")]
    MalformedContent,
}

/// Errors of the state machine.
#[derive(Debug, Error)]
pub enum OtrError {
    /// The action is not allowed in the current state; nothing changed.
    #[error("cannot {action} while {state:?}")]
    IllegalTransition {
        /// The state the session was in.
        state: OtrState,
        /// What was attempted.
        action: &'static str,
    },
    /// User content can only be sent once the session is established (after key confirmation).
    #[error("off-the-record session not established")]
    NotEstablished,
    /// The packet could not be decoded.
    #[error("malformed packet: {0}")]
    Malformed(#[from] CodecError),
    /// A frame of the established session did not decrypt; later frames still can.
    #[error("frame not decrypted: {0}")]
    Frame(#[from] FrameError),
    /// The text or file is larger than the protocol allows.
    #[error("content too large")]
    TooLarge,
    /// The peer's key is not usable for OTR (not pinned, or changed and not acknowledged).
    #[error(transparent)]
    Trust(#[from] TrustError),
    /// No randomness was available.
    #[error("no randomness available")]
    Randomness,
    /// The olm session refused to encrypt (non-contributory key).
    #[error("encryption failed")]
    Encryption,
    /// A room or user id is empty or longer than 255 bytes.
    #[error("room and user ids must be 1 to 255 bytes")]
    InvalidIdentifier,
}

/// What a session holds in each phase. Keys live only in the phases that need them.
enum Phase {
    Idle(OtrState),
    Offered {
        id: SessionId,
        terms: Offer,
        peer_key: Curve25519PublicKey,
    },
    Invited {
        id: SessionId,
        version: u8,
        terms: Offer,
    },
    AwaitingPreKey {
        id: SessionId,
        version: u8,
        terms: Offer,
        nonce: [u8; 16],
        one_time_key: Curve25519PublicKey,
        peer_key: Curve25519PublicKey,
    },
    AwaitingConfirmation {
        id: SessionId,
        olm: Box<Session>,
        expected: [u8; 32],
    },
    Established {
        id: SessionId,
        olm: Box<Session>,
    },
}

impl Phase {
    fn state(&self) -> OtrState {
        match self {
            Self::Idle(state) => *state,
            Self::Offered { .. } => OtrState::Offered,
            Self::Invited { .. } => OtrState::Invited,
            Self::AwaitingPreKey { .. } | Self::AwaitingConfirmation { .. } => {
                OtrState::Establishing
            }
            Self::Established { .. } => OtrState::Established,
        }
    }

    fn session_id(&self) -> Option<SessionId> {
        match self {
            Self::Idle(_) => None,
            Self::Offered { id, .. }
            | Self::Invited { id, .. }
            | Self::AwaitingPreKey { id, .. }
            | Self::AwaitingConfirmation { id, .. }
            | Self::Established { id, .. } => Some(*id),
        }
    }
}

struct IncomingFile {
    name: String,
    media_type: String,
    total: u32,
    received: u32,
    data: Zeroizing<Vec<u8>>,
}

/// Which end of the handshake this side is.
#[derive(Clone, Copy)]
enum Side {
    Offerer,
    Responder,
}

/// The caller's keys, lent to the session for one call.
pub struct OtrKeys<'a> {
    /// The in-memory OTR identity (mints and removes one-time keys).
    pub identity: &'a mut OtrIdentity,
    /// The trust store: the only source of the peer's identity key.
    pub trust: &'a TrustStore,
}

/// The off-the-record state machine of one DM room. Not `Clone`, `Debug` or serialisable: its
/// keys cannot leave memory, and dropping it zeroizes them.
pub struct OtrSession {
    room_id: String,
    local_user_id: String,
    peer_user_id: String,
    phase: Phase,
    /// The last session that reached Established, so a peer's refresh of it is accepted even if
    /// our copy just failed (for example a frame crossed the refresh).
    last_established: Option<SessionId>,
    next_message_id: u64,
    incoming_files: BTreeMap<u64, IncomingFile>,
}

impl OtrSession {
    /// A conversation in `room_id` between `local_user_id` and `peer_user_id`, not started.
    /// Each id must be 1 to 255 bytes (they are bound into the handshake).
    pub fn new(room_id: &str, local_user_id: &str, peer_user_id: &str) -> Result<Self, OtrError> {
        let valid = |id: &str| (1..=MAX_IDENTIFIER_BYTES).contains(&id.len());
        if !(valid(room_id) && valid(local_user_id) && valid(peer_user_id)) {
            return Err(OtrError::InvalidIdentifier);
        }
        Ok(Self {
            room_id: room_id.to_owned(),
            local_user_id: local_user_id.to_owned(),
            peer_user_id: peer_user_id.to_owned(),
            phase: Phase::Idle(OtrState::NotStarted),
            last_established: None,
            next_message_id: 1,
            incoming_files: BTreeMap::new(),
        })
    }

    /// Drops the conversation, removing a pending one-time key from `identity` too. Prefer this
    /// to a plain drop, which zeroizes the session's own keys but cannot reach the identity.
    pub fn discard(mut self, identity: &mut OtrIdentity) {
        self.transition(
            identity,
            Phase::Idle(OtrState::NotStarted),
            &mut Step::default(),
        );
    }

    /// The visible state.
    pub fn state(&self) -> OtrState {
        self.phase.state()
    }

    /// The id of the current (offered, invited, establishing or established) session.
    pub fn session_id(&self) -> Option<SessionId> {
        self.phase.session_id()
    }

    /// The room this conversation belongs to.
    pub fn room_id(&self) -> &str {
        &self.room_id
    }

    /// The peer's user id.
    pub fn peer_user_id(&self) -> &str {
        &self.peer_user_id
    }

    /// Whether the session holds any key material (an olm session or a pending one-time key).
    /// False in every terminal state.
    pub fn holds_keys(&self) -> bool {
        matches!(
            self.phase,
            Phase::AwaitingPreKey { .. }
                | Phase::AwaitingConfirmation { .. }
                | Phase::Established { .. }
        )
    }

    /// Start OTR: invite the peer.
    pub fn start(&mut self, keys: OtrKeys<'_>) -> Result<Step, OtrError> {
        match self.phase {
            Phase::Idle(_) => self.offer(keys, None),
            _ => Err(self.illegal("start OTR")),
        }
    }

    /// Refresh Keys: replace the session with a new one (new keys); the old keys are destroyed.
    pub fn refresh(&mut self, keys: OtrKeys<'_>) -> Result<Step, OtrError> {
        match &self.phase {
            Phase::Established { id, .. } => {
                let replaces = Some(*id);
                if let Err(err) = keys.trust.otr_peer_key(&self.peer_user_id) {
                    // The user asked for new keys: the old ones go even though no new session
                    // can start until the changed key is acknowledged.
                    let failed = Phase::Idle(OtrState::Failed(FailureReason::PeerKeyChanged));
                    self.transition(keys.identity, failed, &mut Step::default());
                    return Err(err.into());
                }
                self.offer(keys, replaces)
            }
            Phase::Idle(_) => {
                let replaces = self.last_established;
                self.offer(keys, replaces)
            }
            _ => Err(self.illegal("refresh keys")),
        }
    }

    /// Accept the peer's invitation.
    pub fn accept(&mut self, keys: OtrKeys<'_>) -> Result<Step, OtrError> {
        match self.phase {
            Phase::Invited {
                id,
                version,
                ref terms,
            } => {
                let terms = terms.clone();
                let mut step = Step::default();
                self.accept_offer(keys, id, version, terms, &mut step)?;
                Ok(step)
            }
            _ => Err(self.illegal("accept")),
        }
    }

    /// Decline the peer's invitation.
    pub fn decline(&mut self, keys: OtrKeys<'_>) -> Result<Step, OtrError> {
        match self.phase {
            Phase::Invited { id, .. } => {
                let mut step = Step::default();
                step.send.push(Packet {
                    session_id: id,
                    body: PacketBody::Decline,
                });
                self.transition(keys.identity, Phase::Idle(OtrState::Declined), &mut step);
                Ok(step)
            }
            _ => Err(self.illegal("decline")),
        }
    }

    /// Withdraw our invitation, or abandon a handshake in progress.
    pub fn cancel(&mut self, keys: OtrKeys<'_>) -> Result<Step, OtrError> {
        match self.phase {
            Phase::Offered { id, .. }
            | Phase::AwaitingPreKey { id, .. }
            | Phase::AwaitingConfirmation { id, .. } => {
                let mut step = Step::default();
                step.send.push(Packet {
                    session_id: id,
                    body: PacketBody::Cancel,
                });
                let next = Phase::Idle(OtrState::Ended(EndReason::CancelledHere));
                self.transition(keys.identity, next, &mut step);
                Ok(step)
            }
            _ => Err(self.illegal("cancel")),
        }
    }

    /// End OTR. Following messages go back on the record, by the user's explicit choice.
    pub fn end(&mut self, keys: OtrKeys<'_>) -> Result<Step, OtrError> {
        match &mut self.phase {
            Phase::Established { id, olm } => {
                let id = *id;
                let message = olm
                    .encrypt(Inner::End.encode())
                    .map_err(|_| OtrError::Encryption)?;
                let mut step = Step::default();
                step.send.push(Packet {
                    session_id: id,
                    body: PacketBody::End(Some(message)),
                });
                let next = Phase::Idle(OtrState::Ended(EndReason::EndedHere));
                self.transition(keys.identity, next, &mut step);
                Ok(step)
            }
            Phase::Offered { .. }
            | Phase::AwaitingPreKey { .. }
            | Phase::AwaitingConfirmation { .. } => self.cancel(keys),
            _ => Err(self.illegal("end OTR")),
        }
    }

    /// The invitation timed out (the relay said so, or the caller's timer fired).
    pub fn expire(&mut self, keys: OtrKeys<'_>) -> Result<Step, OtrError> {
        match self.phase {
            Phase::Invited { .. } => {
                let mut step = Step::default();
                self.transition(keys.identity, Phase::Idle(OtrState::TimedOut), &mut step);
                Ok(step)
            }
            Phase::Offered { id, .. }
            | Phase::AwaitingPreKey { id, .. }
            | Phase::AwaitingConfirmation { id, .. } => {
                // Tell the peer too, so a side that got further does not stay half-established.
                let mut step = Step::default();
                step.send.push(Packet {
                    session_id: id,
                    body: PacketBody::Cancel,
                });
                self.transition(keys.identity, Phase::Idle(OtrState::TimedOut), &mut step);
                Ok(step)
            }
            _ => Err(self.illegal("time out")),
        }
    }

    /// The relay reports that the peer's connection closed (reload, closed tab, grace expired).
    pub fn peer_disconnected(&mut self, keys: OtrKeys<'_>) -> Step {
        let mut step = Step::default();
        if !matches!(self.phase, Phase::Idle(_)) {
            let next = Phase::Idle(OtrState::Failed(FailureReason::PeerDisconnected));
            self.transition(keys.identity, next, &mut step);
        }
        step
    }

    /// Encrypts a text message. Only once established; returns the message id and the packet.
    pub fn send_text(&mut self, text: &str) -> Result<(u64, Packet), OtrError> {
        if text.len() > MAX_TEXT_BYTES {
            return Err(OtrError::TooLarge);
        }
        let id = self.next_message_id;
        let inner = Inner::Text {
            id,
            text: Zeroizing::new(text.to_owned()),
        };
        let packet = self.encrypt(&inner)?;
        self.next_message_id += 1;
        Ok((id, packet))
    }

    /// Encrypts a small file as a series of chunks. Only once established; at most
    /// [`MAX_FILE_BYTES`]. Returns the file id (acknowledged like a message id) and the packets.
    pub fn send_file(
        &mut self,
        name: &str,
        media_type: &str,
        data: &[u8],
    ) -> Result<(u64, Vec<Packet>), OtrError> {
        let total_size = u32::try_from(data.len()).map_err(|_| OtrError::TooLarge)?;
        if total_size > MAX_FILE_BYTES || name.len() > 255 || media_type.len() > 127 {
            return Err(OtrError::TooLarge);
        }
        if !matches!(self.phase, Phase::Established { .. }) {
            return Err(OtrError::NotEstablished);
        }
        let file_id = self.next_message_id;
        let mut packets = Vec::with_capacity(data.len() / MAX_CHUNK_BYTES + 1);
        let mut offset = 0u32;
        // An empty file is one empty chunk.
        let chunks: Vec<&[u8]> = if data.is_empty() {
            vec![&[]]
        } else {
            data.chunks(MAX_CHUNK_BYTES).collect()
        };
        for chunk in chunks {
            let inner = Inner::FileChunk(FileChunk {
                file_id,
                total_size,
                offset,
                name: name.to_owned(),
                media_type: media_type.to_owned(),
                data: Zeroizing::new(chunk.to_vec()),
            });
            packets.push(self.encrypt(&inner)?);
            offset += chunk.len() as u32;
        }
        self.next_message_id += 1;
        Ok((file_id, packets))
    }

    /// Feeds a packet from the relay (the encoded bytes).
    pub fn receive(&mut self, keys: OtrKeys<'_>, bytes: &[u8]) -> Result<Step, OtrError> {
        let packet = Packet::decode(bytes)?;
        self.receive_packet(keys, packet)
    }

    /// Feeds a decoded packet from the relay.
    pub fn receive_packet(&mut self, keys: OtrKeys<'_>, packet: Packet) -> Result<Step, OtrError> {
        let id = packet.session_id;
        let current = self.phase.session_id();
        let mut step = Step::default();
        match packet.body {
            PacketBody::Offer(offer) => self.on_offer(keys, id, offer, &mut step)?,
            PacketBody::Accept(accept) => self.on_accept(keys, id, accept, &mut step)?,
            PacketBody::Frame(message) => self.on_frame(keys, id, message, &mut step)?,
            PacketBody::Decline => {
                if matches!(self.phase, Phase::Offered { id: ours, .. } if ours == id) {
                    self.transition(keys.identity, Phase::Idle(OtrState::Declined), &mut step);
                }
            }
            PacketBody::Cancel => {
                if current == Some(id) {
                    // The peer ends an established session with an encrypted end; a cancel there
                    // is unauthenticated, and reported as such.
                    let reason = if matches!(self.phase, Phase::Established { .. }) {
                        EndReason::EndedByPeer {
                            authenticated: false,
                        }
                    } else {
                        EndReason::CancelledByPeer
                    };
                    self.transition(
                        keys.identity,
                        Phase::Idle(OtrState::Ended(reason)),
                        &mut step,
                    );
                }
            }
            PacketBody::End(message) => {
                if current == Some(id) {
                    let authenticated = match (&mut self.phase, message) {
                        (Phase::Established { olm, .. }, Some(message)) => olm
                            .decrypt(&message)
                            .ok()
                            .and_then(|plain| Inner::decode(&Zeroizing::new(plain)).ok())
                            .is_some_and(|inner| inner == Inner::End),
                        _ => false,
                    };
                    let reason = EndReason::EndedByPeer { authenticated };
                    self.transition(
                        keys.identity,
                        Phase::Idle(OtrState::Ended(reason)),
                        &mut step,
                    );
                }
            }
            PacketBody::Abort(reason) => {
                // Never answered, so two confused clients cannot loop.
                if current == Some(id) {
                    let failure = match reason {
                        AbortReason::LostSession => FailureReason::SessionLost,
                        AbortReason::HandshakeFailed => FailureReason::PeerRejectedHandshake,
                        AbortReason::UnsupportedVersion => FailureReason::NoCommonVersion,
                        AbortReason::ProtocolViolation => FailureReason::ProtocolViolation,
                    };
                    let next = Phase::Idle(OtrState::Failed(failure));
                    self.transition(keys.identity, next, &mut step);
                }
            }
        }
        Ok(step)
    }

    fn offer(&mut self, keys: OtrKeys<'_>, replaces: Option<SessionId>) -> Result<Step, OtrError> {
        let peer_key = keys.trust.otr_peer_key(&self.peer_user_id)?;
        let id = SessionId::random().map_err(|_| OtrError::Randomness)?;
        let terms = Offer {
            versions: SUPPORTED_VERSIONS.to_vec(),
            replaces,
        };
        let mut step = Step::default();
        step.send.push(Packet {
            session_id: id,
            body: PacketBody::Offer(terms.clone()),
        });
        self.transition(
            keys.identity,
            Phase::Offered {
                id,
                terms,
                peer_key,
            },
            &mut step,
        );
        Ok(step)
    }

    fn accept_offer(
        &mut self,
        keys: OtrKeys<'_>,
        id: SessionId,
        version: u8,
        terms: Offer,
        step: &mut Step,
    ) -> Result<(), OtrError> {
        let peer_key = keys.trust.otr_peer_key(&self.peer_user_id)?;
        let nonce = random_bytes().map_err(|_| OtrError::Randomness)?;
        let one_time_key = keys
            .identity
            .generate_one_time_key()
            .ok_or(OtrError::Randomness)?;
        step.send.push(Packet {
            session_id: id,
            body: PacketBody::Accept(Accept {
                version,
                responder_nonce: nonce,
                one_time_key,
            }),
        });
        let next = Phase::AwaitingPreKey {
            id,
            version,
            terms,
            nonce,
            one_time_key,
            peer_key,
        };
        self.transition(keys.identity, next, step);
        Ok(())
    }

    fn on_offer(
        &mut self,
        keys: OtrKeys<'_>,
        id: SessionId,
        offer: Offer,
        step: &mut Step,
    ) -> Result<(), OtrError> {
        let Some(version) = offer
            .versions
            .iter()
            .copied()
            .find(|v| SUPPORTED_VERSIONS.contains(v))
        else {
            step.send.push(Packet {
                session_id: id,
                body: PacketBody::Abort(AbortReason::UnsupportedVersion),
            });
            return Ok(());
        };
        // A replay of the offer of the session we hold (or held last) is the relay's doing, not
        // the peer's: the peer always offers under a fresh id.
        if Some(id) == self.phase.session_id() || Some(id) == self.last_established {
            return Ok(());
        }
        let refreshes_ours = offer.replaces.is_some() && offer.replaces == self.last_established;
        let automatic = match &self.phase {
            // Glare: both sides offered at once. The lower session id wins on both sides, so the
            // two clients agree without talking: the loser accepts the winner's offer.
            // (An equal id is a replay of our own offer, ignored above.)
            Phase::Offered { id: ours, .. } => {
                if id > *ours {
                    return Ok(());
                }
                true
            }
            Phase::Established { id: ours, .. } => offer.replaces == Some(*ours),
            Phase::Idle(OtrState::Failed(_)) => refreshes_ours,
            _ => false,
        };
        if automatic && keys.trust.otr_peer_key(&self.peer_user_id).is_ok() {
            if refreshes_ours {
                step.events
                    .push(OtrEvent::RefreshAccepted { session_id: id });
            }
            return self.accept_offer(keys, id, version, offer, step);
        }
        step.events.push(OtrEvent::Invited {
            session_id: id,
            refresh: offer.replaces.is_some(),
        });
        let next = Phase::Invited {
            id,
            version,
            terms: offer,
        };
        self.transition(keys.identity, next, step);
        Ok(())
    }

    fn on_accept(
        &mut self,
        keys: OtrKeys<'_>,
        id: SessionId,
        accept: Accept,
        step: &mut Step,
    ) -> Result<(), OtrError> {
        let Phase::Offered {
            id: ours,
            ref terms,
            peer_key,
        } = self.phase
        else {
            // An answer to an offer we no longer hold: tell the peer to drop its one-time key.
            step.send.push(Packet {
                session_id: id,
                body: PacketBody::Cancel,
            });
            return Ok(());
        };
        if ours != id {
            step.send.push(Packet {
                session_id: id,
                body: PacketBody::Cancel,
            });
            return Ok(());
        }
        if !terms.versions.contains(&accept.version) {
            return self.fail(keys, id, FailureReason::NoCommonVersion, step);
        }
        let terms = terms.clone();
        let Ok(mut olm) = keys.identity.create_outbound(peer_key, accept.one_time_key) else {
            return self.fail(keys, id, FailureReason::HandshakeRejected, step);
        };
        let binding = self.binding(
            Side::Offerer,
            accept.version,
            id,
            accept.responder_nonce,
            terms,
            &olm,
        );
        let message = olm
            .encrypt(Inner::Confirm(binding.clone()).encode())
            .map_err(|_| OtrError::Encryption)?;
        step.send.push(Packet {
            session_id: id,
            body: PacketBody::Frame(message),
        });
        let next = Phase::AwaitingConfirmation {
            id,
            olm: Box::new(olm),
            expected: binding.confirmation(),
        };
        self.transition(keys.identity, next, step);
        Ok(())
    }

    fn on_frame(
        &mut self,
        keys: OtrKeys<'_>,
        id: SessionId,
        message: OlmMessage,
        step: &mut Step,
    ) -> Result<(), OtrError> {
        if self.phase.session_id() != Some(id) || !self.holds_keys() {
            step.send.push(Packet {
                session_id: id,
                body: PacketBody::Abort(AbortReason::LostSession),
            });
            return Ok(());
        }
        match &mut self.phase {
            Phase::AwaitingPreKey {
                version,
                terms,
                nonce,
                one_time_key,
                peer_key,
                ..
            } => {
                let (version, nonce, one_time_key, peer_key) =
                    (*version, *nonce, *one_time_key, *peer_key);
                let terms = terms.clone();
                let OlmMessage::PreKey(pre_key) = message else {
                    return self.fail(keys, id, FailureReason::ProtocolViolation, step);
                };
                // Only the one-time key minted for this session may be used: the identity serves
                // every room, and a pre-key message must not consume another room's key.
                if pre_key.one_time_key() != one_time_key {
                    return self.fail(keys, id, FailureReason::HandshakeRejected, step);
                }
                // The identity key is the pinned one; vodozemac refuses a pre-key message that
                // names another, and the 3DH fails if the base or one-time key was swapped.
                let Ok(created) = keys.identity.create_inbound(peer_key, &pre_key) else {
                    return self.fail(keys, id, FailureReason::HandshakeRejected, step);
                };
                let mut olm = created.session;
                let plaintext = Zeroizing::new(created.plaintext);
                let expected = self.binding(Side::Responder, version, id, nonce, terms, &olm);
                match Inner::decode(&plaintext) {
                    Ok(Inner::Confirm(binding)) if binding == expected => {}
                    _ => return self.fail(keys, id, FailureReason::BindingMismatch, step),
                }
                let ack = olm
                    .encrypt(Inner::ConfirmAck(expected.confirmation()).encode())
                    .map_err(|_| OtrError::Encryption)?;
                step.send.push(Packet {
                    session_id: id,
                    body: PacketBody::Frame(ack),
                });
                self.last_established = Some(id);
                self.transition(
                    keys.identity,
                    Phase::Established {
                        id,
                        olm: Box::new(olm),
                    },
                    step,
                );
            }
            Phase::AwaitingConfirmation { olm, expected, .. } => {
                let expected = *expected;
                let confirmed = olm
                    .decrypt(&message)
                    .ok()
                    .and_then(|plain| Inner::decode(&Zeroizing::new(plain)).ok())
                    .is_some_and(|inner| inner == Inner::ConfirmAck(expected));
                if !confirmed {
                    return self.fail(keys, id, FailureReason::ConfirmationMismatch, step);
                }
                let Phase::AwaitingConfirmation { olm, .. } =
                    std::mem::replace(&mut self.phase, Phase::Idle(OtrState::Establishing))
                else {
                    return Ok(());
                };
                self.last_established = Some(id);
                self.transition(keys.identity, Phase::Established { id, olm }, step);
            }
            Phase::Established { olm, .. } => {
                let plaintext = Zeroizing::new(olm.decrypt(&message).map_err(frame_error)?);
                let inner = Inner::decode(&plaintext).map_err(|_| FrameError::MalformedContent)?;
                self.on_content(keys, inner, step)?;
            }
            Phase::Idle(_) | Phase::Offered { .. } | Phase::Invited { .. } => {}
        }
        Ok(())
    }

    fn on_content(
        &mut self,
        keys: OtrKeys<'_>,
        inner: Inner,
        step: &mut Step,
    ) -> Result<(), OtrError> {
        match inner {
            Inner::Text { id, text } => {
                step.events.push(OtrEvent::Message { id, text });
                step.send.push(self.encrypt(&Inner::Ack { id })?);
            }
            Inner::Ack { id } => step.events.push(OtrEvent::Delivered { id }),
            Inner::FileChunk(chunk) => {
                if let Some(event) = self.assemble(chunk)? {
                    if let OtrEvent::File { id, .. } = event {
                        step.send.push(self.encrypt(&Inner::Ack { id })?);
                    }
                    step.events.push(event);
                }
            }
            Inner::End => {
                let reason = EndReason::EndedByPeer {
                    authenticated: true,
                };
                self.transition(keys.identity, Phase::Idle(OtrState::Ended(reason)), step);
            }
            Inner::Confirm(_) | Inner::ConfirmAck(_) => {
                // A late duplicate of the handshake: harmless, and already consumed by olm.
                return Err(FrameError::MalformedContent.into());
            }
        }
        Ok(())
    }

    fn assemble(&mut self, chunk: FileChunk) -> Result<Option<OtrEvent>, OtrError> {
        if !self.incoming_files.contains_key(&chunk.file_id) {
            if self.incoming_files.len() >= MAX_INCOMING_FILES {
                return Err(OtrError::TooLarge);
            }
            self.incoming_files.insert(
                chunk.file_id,
                IncomingFile {
                    name: chunk.name.clone(),
                    media_type: chunk.media_type.clone(),
                    total: chunk.total_size,
                    received: 0,
                    data: Zeroizing::new(vec![0; chunk.total_size as usize]),
                },
            );
        }
        let Some(file) = self.incoming_files.get_mut(&chunk.file_id) else {
            return Ok(None);
        };
        // Chunks travel in order through one ratchet chain; anything else (a gap, an overlap,
        // a changed size) is malformed, and the partial file is dropped.
        if file.total != chunk.total_size || chunk.offset != file.received {
            self.incoming_files.remove(&chunk.file_id);
            return Err(FrameError::MalformedContent.into());
        }
        let start = chunk.offset as usize;
        let target = file
            .data
            .get_mut(start..start + chunk.data.len())
            .ok_or(FrameError::MalformedContent)?;
        target.copy_from_slice(&chunk.data);
        file.received = file.received.saturating_add(chunk.data.len() as u32);
        if file.received < file.total {
            return Ok(None);
        }
        let Some(file) = self.incoming_files.remove(&chunk.file_id) else {
            return Ok(None);
        };
        Ok(Some(OtrEvent::File {
            id: chunk.file_id,
            name: file.name,
            media_type: file.media_type,
            data: file.data,
        }))
    }

    fn encrypt(&mut self, inner: &Inner) -> Result<Packet, OtrError> {
        let Phase::Established { id, olm } = &mut self.phase else {
            return Err(OtrError::NotEstablished);
        };
        let message = olm
            .encrypt(inner.encode())
            .map_err(|_| OtrError::Encryption)?;
        Ok(Packet {
            session_id: *id,
            body: PacketBody::Frame(message),
        })
    }

    /// What the handshake binds, as this side sees it.
    fn binding(
        &self,
        local: Side,
        version: u8,
        id: SessionId,
        responder_nonce: [u8; 16],
        terms: Offer,
        olm: &Session,
    ) -> Binding {
        let (offerer, responder) = match local {
            Side::Offerer => (&self.local_user_id, &self.peer_user_id),
            Side::Responder => (&self.peer_user_id, &self.local_user_id),
        };
        Binding {
            protocol_version: version,
            room_id: self.room_id.clone(),
            offerer_user_id: offerer.clone(),
            responder_user_id: responder.clone(),
            session_id: id,
            responder_nonce,
            offered_versions: terms.versions,
            replaces: terms.replaces,
            olm_session_id: olm.session_id(),
        }
    }

    /// Fails the current handshake: destroys its keys and tells the peer.
    fn fail(
        &mut self,
        keys: OtrKeys<'_>,
        id: SessionId,
        reason: FailureReason,
        step: &mut Step,
    ) -> Result<(), OtrError> {
        let abort = match reason {
            FailureReason::NoCommonVersion => AbortReason::UnsupportedVersion,
            FailureReason::ProtocolViolation => AbortReason::ProtocolViolation,
            _ => AbortReason::HandshakeFailed,
        };
        step.send.push(Packet {
            session_id: id,
            body: PacketBody::Abort(abort),
        });
        self.transition(keys.identity, Phase::Idle(OtrState::Failed(reason)), step);
        Ok(())
    }

    /// Moves to `next`, destroying whatever the old phase held: a pending one-time key is removed
    /// from the identity, an olm session is dropped (vodozemac zeroizes it), partial files go.
    fn transition(&mut self, identity: &mut OtrIdentity, next: Phase, step: &mut Step) {
        let before = self.phase.state();
        let old = std::mem::replace(&mut self.phase, next);
        if let Phase::AwaitingPreKey { one_time_key, .. } = old {
            // After a successful inbound session vodozemac already removed it; removing is
            // idempotent.
            identity.remove_one_time_key(one_time_key);
        }
        drop(old);
        if !matches!(self.phase, Phase::Established { .. }) {
            self.incoming_files.clear();
        }
        let after = self.phase.state();
        if before != after {
            step.events.push(OtrEvent::StateChanged(after));
        }
    }

    fn illegal(&self, action: &'static str) -> OtrError {
        OtrError::IllegalTransition {
            state: self.state(),
            action,
        }
    }
}

fn frame_error(error: DecryptionError) -> FrameError {
    match error {
        DecryptionError::MissingMessageKey(_) => FrameError::MessageKeyUnavailable,
        DecryptionError::TooBigMessageGap(_, _) => FrameError::GapTooLarge,
        _ => FrameError::Tampered,
    }
}

/// Replies to a packet for a session the caller holds no [`OtrSession`] for at all (for example
/// after a reload): frames get "lost session", so the sender sees "session lost — Refresh Keys"
/// instead of silence. Other packets need no answer.
pub fn reply_to_unknown_session(packet_bytes: &[u8]) -> Option<Packet> {
    let (kind, session_id) = Packet::peek(packet_bytes).ok()?;
    (kind == super::packet::PacketKind::Frame).then_some(Packet {
        session_id,
        body: PacketBody::Abort(AbortReason::LostSession),
    })
}

/// Compile-time proof that session state cannot be copied, printed or serialised out of memory.
mod not_exportable {
    use super::{OtrSession, Phase};
    use crate::identity::OtrIdentity;

    /// Resolves to one impl unless `T` also implements the probed trait, in which case the
    /// inference below becomes ambiguous and compilation fails.
    trait AmbiguousIfImplemented<Marker> {
        fn check() {}
    }
    impl<T: ?Sized> AmbiguousIfImplemented<()> for T {}

    macro_rules! assert_not_impl {
        ($ty:ty: $($probe:path),+) => {
            $(const _: () = {
                struct Probe;
                impl<T: ?Sized + $probe> AmbiguousIfImplemented<Probe> for T {}
                let _ = <$ty as AmbiguousIfImplemented<_>>::check;
            };)+
        };
    }

    assert_not_impl!(OtrSession: Clone, std::fmt::Debug, serde::Serialize);
    assert_not_impl!(Phase: Clone, std::fmt::Debug, serde::Serialize);
    assert_not_impl!(OtrIdentity: Clone, std::fmt::Debug, serde::Serialize);
    // The room keys of encrypted rooms are held to the same rule (checked here, beside the rest).
    assert_not_impl!(crate::rooms::RoomKey: Clone, std::fmt::Debug, serde::Serialize);
    assert_not_impl!(crate::rooms::RoomKeyRing: Clone, std::fmt::Debug, serde::Serialize);
    assert_not_impl!(crate::files::FileKey: Clone, std::fmt::Debug, serde::Serialize);
    assert_not_impl!(crate::identity::Identity: Clone, std::fmt::Debug, serde::Serialize);
}
