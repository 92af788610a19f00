//! End-to-end encrypted rooms in the SDK: the I/O around `sotto-crypto`'s `rooms` and `files`.
//!
//! * **Keys.** [`Client::room_sync_keys`] fetches the caller's own shares of a room's keys
//!   (`GET /rooms/{id}/keys`) and opens the new ones into the room's key ring. A share is accepted
//!   only from a distributor whose agreement key verifies against their *pinned* identity key,
//!   and only if its recipients are exactly the room's members at the key's epoch, as the room's
//!   membership history says. [`Client::room_ensure_key`] creates and distributes a new key when
//!   the room has none the caller holds for the current epoch, and retries on
//!   `e2e_key_members_mismatch` (the membership moved meanwhile).
//! * **Messages.** [`Client::room_send`] encrypts under the current key (a fresh one after any
//!   membership change, retrying on `e2e_room_key_stale`); [`Client::room_history`] fetches and
//!   decrypts the whole history, telling for each message which key it used and, when it cannot be
//!   read, why ([`ReadError`]).
//! * **Files.** [`Client::room_send_file`] encrypts a file with its own key, uploads the
//!   ciphertext declared encrypted and sends the key inside the message;
//!   [`Client::room_download_file`] downloads and decrypts it.
//! * **Search.** The server cannot search encrypted rooms; [`search_decrypted`] searches what
//!   the client decrypted.
//!
//! Pins made while looking up members go into the caller's trust store; save it with
//! [`Client::e2e_save_trust_store`].

use std::collections::{BTreeSet, HashMap};

use sotto_api::rest::{
    MembershipChange, MembershipChangeKind, Message, MessageBody, PutRoomKeyRequest, RoomKeyShare,
    SendMessageRequest,
};
use sotto_api::{ErrorCode, RoomId, UserId};
use sotto_crypto::files::{FileKey, decrypt_file, encrypt_file};
use sotto_crypto::identity::{PublicIdentity, SignedAgreementKey};
use sotto_crypto::rooms::{
    FileRef, KeyId, Member, RoomContent, RoomError, RoomKey, RoomKeyRing, create_shares,
    envelope_key_id, from_base64, open_share, to_base64,
};
use sotto_crypto::trust::TrustDecision;
use sotto_crypto::vodozemac::Ed25519PublicKey;

use crate::e2e::crypto;
use crate::{Client, E2eKeys, Error, Result};

/// How often a send or a key distribution is retried when the room's membership moved
/// underneath it.
const ATTEMPTS: usize = 4;

/// Why a message of an encrypted room could not be read (what a reader can be shown).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadError {
    /// The room key it was written under was not shared with this user (for example, it was
    /// written before they joined: members get the keys from their join on).
    KeyNotShared,
    /// The ciphertext or its header was altered.
    Tampered,
    /// It claims another sender than the member who wrote it, or its signature is not the
    /// author's: an insider tried to write in someone else's name.
    WrongSender,
    /// A format version this client does not know.
    UnknownVersion(u8),
    /// Not an envelope at all (or its content is not valid).
    Malformed,
    /// The author's identity keys could not be looked up, or they changed and the change was not
    /// acknowledged yet.
    AuthorUnknown(String),
    /// A plaintext body in an encrypted room (the server refuses these; shown if one appears).
    NotEncrypted,
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::KeyNotShared => f.write_str("key not shared with you"),
            ReadError::Tampered => f.write_str("tampered: the message was altered"),
            ReadError::WrongSender => {
                f.write_str("forged: not written by the member it claims to be from")
            }
            ReadError::UnknownVersion(v) => write!(f, "unknown message format version {v}"),
            ReadError::Malformed => f.write_str("not a valid encrypted message"),
            ReadError::AuthorUnknown(why) => write!(f, "cannot check the author: {why}"),
            ReadError::NotEncrypted => f.write_str("unencrypted message in an encrypted room"),
        }
    }
}

impl From<RoomError> for ReadError {
    fn from(e: RoomError) -> Self {
        match e {
            RoomError::KeyNotShared(_) => ReadError::KeyNotShared,
            RoomError::Tampered => ReadError::Tampered,
            RoomError::WrongSender => ReadError::WrongSender,
            RoomError::UnknownVersion(v) => ReadError::UnknownVersion(v),
            _ => ReadError::Malformed,
        }
    }
}

/// A message of an encrypted room, as this client reads it.
#[derive(Debug, Clone)]
pub struct RoomMessage {
    /// The stored message (its body is the envelope).
    pub message: Message,
    /// The room key it was written under (from the envelope's cleartext header), if readable.
    pub key_id: Option<String>,
    /// What it says, or why it cannot be read.
    pub content: std::result::Result<RoomContent, ReadError>,
}

impl RoomMessage {
    /// The decrypted text, if any.
    pub fn text(&self) -> Option<&str> {
        self.content.as_ref().ok()?.text.as_deref()
    }
}

/// A share this client refused to open, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusedShare {
    /// The key's id.
    pub key_id: String,
    /// Who distributed it.
    pub distributor_id: UserId,
    /// Why it was refused (a non-member distributor, a wrong recipient list, tampering, …).
    pub reason: String,
}

/// What [`Client::room_sync_keys`] learned about a room.
#[derive(Debug, Clone)]
pub struct RoomKeyState {
    /// The room's epoch.
    pub epoch: i64,
    /// Its current members.
    pub members: Vec<UserId>,
    /// Its current key, if the caller holds it and it is of the current epoch.
    pub usable_key: Option<String>,
    /// Its membership history (show every change: a member the server adds is visible).
    pub changes: Vec<MembershipChange>,
    /// Members the server lists that the history does not explain, and members of the history
    /// it does not list: a server adding someone silently shows up here. While this is not
    /// empty, [`Client::room_ensure_key`] distributes no key.
    pub unexplained_members: Vec<UserId>,
    /// Shares refused by this sync.
    pub refused: Vec<RefusedShare>,
}

/// The members of a room at each epoch, replayed from its membership history.
fn members_at(changes: &[MembershipChange], epoch: i64) -> Vec<UserId> {
    let mut members = BTreeSet::new();
    for c in changes.iter().take_while(|c| c.epoch <= epoch) {
        match c.kind {
            MembershipChangeKind::Created | MembershipChangeKind::Added => {
                members.insert(c.user_id);
            }
            MembershipChangeKind::Removed | MembershipChangeKind::Left => {
                members.remove(&c.user_id);
            }
        }
    }
    members.into_iter().collect()
}

/// Opens an envelope with the room's key ring, given the author's key (or why it is unknown).
fn open_message(
    keys: &E2eKeys,
    room: RoomId,
    message: Message,
    author_key: std::result::Result<Ed25519PublicKey, ReadError>,
) -> RoomMessage {
    let MessageBody::Encrypted { envelope } = &message.body else {
        return RoomMessage {
            message,
            key_id: None,
            content: Err(ReadError::NotEncrypted),
        };
    };
    let bytes = match from_base64(envelope) {
        Ok(b) => b,
        Err(e) => {
            return RoomMessage {
                message,
                key_id: None,
                content: Err(e.into()),
            };
        }
    };
    let key_id = match envelope_key_id(&bytes) {
        Ok(k) => k.to_base64(),
        Err(e) => {
            return RoomMessage {
                message,
                key_id: None,
                content: Err(e.into()),
            };
        }
    };
    let content = author_key.and_then(|author_key| {
        let Some(ring) = keys.rings.get(&room) else {
            // No key of this room was ever shared with this client.
            return Err(ReadError::KeyNotShared);
        };
        ring.decrypt(&bytes, message.author_id, &author_key)
            .map(|d| d.content)
            .map_err(ReadError::from)
    });
    RoomMessage {
        message,
        key_id: Some(key_id),
        content,
    }
}

fn key_id_of(text: &str) -> Result<KeyId> {
    KeyId::from_base64(text).map_err(crypto)
}

/// Case-insensitive local search over decrypted messages: every whitespace-separated term of
/// `query` must occur in the text or the file name. The server cannot search encrypted rooms
/// (it lists them as `unsearched_rooms`); this is the client's side of search.
pub fn search_decrypted<'a>(messages: &'a [RoomMessage], query: &str) -> Vec<&'a RoomMessage> {
    let terms: Vec<String> = query.split_whitespace().map(str::to_lowercase).collect();
    if terms.is_empty() {
        return Vec::new();
    }
    messages
        .iter()
        .filter(|m| {
            let Ok(content) = &m.content else {
                return false;
            };
            let haystack = format!(
                "{} {}",
                content.text.as_deref().unwrap_or(""),
                content.file.as_ref().map_or("", |f| f.name.as_str())
            )
            .to_lowercase();
            terms.iter().all(|t| haystack.contains(t.as_str()))
        })
        .collect()
}

impl Client {
    /// A room member's verified keys: their identity keys from the directory, pinned on first
    /// use (a changed key is refused until acknowledged), and their agreement key checked
    /// against the pinned Ed25519 key. The caller's own come from their identity.
    pub async fn room_member(&self, keys: &mut E2eKeys, user: UserId) -> Result<Member> {
        if user == keys.user {
            let own = keys.identity.public();
            return Member::verify(user, own.ed25519, &keys.identity.signed_agreement_key(user))
                .map_err(crypto);
        }
        let pinned = self.pinned_identity(keys, user).await?;
        let entry = self.directory_entry(user).await?;
        let (Some(key), Some(signature)) = (entry.agreement_key, entry.agreement_signature) else {
            return Err(Error::Crypto(format!(
                "user {user} has not published a room agreement key yet"
            )));
        };
        let signed = SignedAgreementKey::from_base64(&key, &signature).map_err(crypto)?;
        Member::verify(user, pinned.ed25519, &signed).map_err(crypto)
    }

    /// `user`'s pinned identity keys, pinning the directory's on first use.
    async fn pinned_identity(&self, keys: &mut E2eKeys, user: UserId) -> Result<PublicIdentity> {
        let served = self.public_keys(user).await?;
        match keys.trust.observe(&user.to_string(), served) {
            TrustDecision::PinnedNow | TrustDecision::Matches { .. } => Ok(served),
            TrustDecision::Changed { .. } => Err(Error::Crypto(format!(
                "the identity key of user {user} changed; acknowledge the change first"
            ))),
        }
    }

    /// The Ed25519 key an author's messages must be signed with (the caller's own, or the
    /// author's pinned key).
    async fn author_key(
        &self,
        keys: &mut E2eKeys,
        author: UserId,
    ) -> std::result::Result<Ed25519PublicKey, ReadError> {
        if author == keys.user {
            return Ok(keys.identity.public().ed25519);
        }
        self.pinned_identity(keys, author)
            .await
            .map(|p| p.ed25519)
            .map_err(|e| ReadError::AuthorUnknown(e.to_string()))
    }

    /// Fetches the caller's shares of `room`'s keys and opens the ones not in its key ring yet.
    /// A share is refused (and reported in [`RoomKeyState::refused`]) unless its distributor's
    /// keys verify, the distributor was a member and its recipients are exactly the room's
    /// members at the key's epoch.
    pub async fn room_sync_keys(&self, keys: &mut E2eKeys, room: RoomId) -> Result<RoomKeyState> {
        let state = self.room_keys(room).await?;
        let me = keys.user;
        let mut refused = Vec::new();
        for entry in &state.keys {
            let key_id = key_id_of(&entry.key_id)?;
            if keys.rings.get(&room).is_some_and(|r| r.contains(key_id)) {
                continue;
            }
            let opened = match self.room_member(keys, entry.distributor_id).await {
                Ok(distributor) => {
                    let expected = members_at(&state.changes, entry.epoch);
                    from_base64(&entry.share)
                        .and_then(|share| {
                            open_share(
                                &keys.identity,
                                room,
                                me,
                                &share,
                                &distributor,
                                Some(&expected),
                            )
                        })
                        .map_err(|e| e.to_string())
                        .and_then(|(key, header)| {
                            if header.key_id == key_id {
                                Ok(key)
                            } else {
                                Err("the share is for another key than announced".to_string())
                            }
                        })
                }
                Err(e) => Err(e.to_string()),
            };
            match opened {
                Ok(key) => {
                    keys.rings
                        .entry(room)
                        .or_insert_with(|| RoomKeyRing::new(room))
                        .insert(key);
                }
                Err(reason) => refused.push(RefusedShare {
                    key_id: entry.key_id.clone(),
                    distributor_id: entry.distributor_id,
                    reason,
                }),
            }
        }
        // The current key is usable if it is of the current epoch and this client holds it.
        let usable_key = state.key_id.clone().filter(|current| {
            state
                .keys
                .iter()
                .any(|k| &k.key_id == current && k.epoch == state.epoch)
                && key_id_of(current)
                    .is_ok_and(|id| keys.rings.get(&room).is_some_and(|r| r.contains(id)))
        });
        let explained: BTreeSet<UserId> = members_at(&state.changes, state.epoch)
            .into_iter()
            .collect();
        let listed: BTreeSet<UserId> = state.members.iter().copied().collect();
        let unexplained_members = explained.symmetric_difference(&listed).copied().collect();
        Ok(RoomKeyState {
            epoch: state.epoch,
            members: state.members,
            usable_key,
            changes: state.changes,
            refused,
            unexplained_members,
        })
    }

    /// The room's current key id, after creating and distributing a new key to the current
    /// members if the caller holds none of the current epoch. Retries when the membership moved
    /// meanwhile (`e2e_key_members_mismatch`). Refuses while the server's member list disagrees
    /// with the room's membership history ([`RoomKeyState::unexplained_members`]): a member the
    /// server added silently gets no key.
    pub async fn room_ensure_key(&self, keys: &mut E2eKeys, room: RoomId) -> Result<String> {
        let mut last = None;
        for _ in 0..ATTEMPTS {
            let state = self.room_sync_keys(keys, room).await?;
            if let Some(current) = state.usable_key {
                return Ok(current);
            }
            if !state.unexplained_members.is_empty() {
                return Err(Error::Crypto(format!(
                    "the room's members do not match its membership history ({:?}): no key is \
                     shared until this is resolved",
                    state.unexplained_members
                )));
            }
            let mut members = Vec::with_capacity(state.members.len());
            for m in &state.members {
                members.push(self.room_member(keys, *m).await?);
            }
            let key = RoomKey::generate().map_err(crypto)?;
            let shares =
                create_shares(&keys.identity, room, keys.user, &key, &members).map_err(crypto)?;
            let key_id = key.id().to_base64();
            let req = PutRoomKeyRequest {
                key_id: key_id.clone(),
                epoch: state.epoch,
                shares: shares
                    .into_iter()
                    .map(|(user_id, share)| RoomKeyShare {
                        user_id,
                        share: to_base64(&share),
                    })
                    .collect(),
            };
            match self.put_room_key(room, &req).await {
                Ok(()) => {
                    keys.rings
                        .entry(room)
                        .or_insert_with(|| RoomKeyRing::new(room))
                        .insert(key);
                    return Ok(key_id);
                }
                Err(e) if e.code() == Some(ErrorCode::E2eKeyMembersMismatch) => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| Error::Crypto("could not distribute a room key".into())))
    }

    /// Encrypts `content` under the room's current key (distributing a new one first if
    /// needed) and sends it, with an encrypted upload attached if given. The key this client
    /// received last is tried first, without asking the server (one round trip per message);
    /// when the server answers `e2e_room_key_stale` (the membership changed), the keys are
    /// synced, a new one distributed if needed, and the send retried.
    pub async fn room_send(
        &self,
        keys: &mut E2eKeys,
        room: RoomId,
        content: &RoomContent,
        attachment: Option<sotto_api::UploadId>,
    ) -> Result<Message> {
        let mut last = None;
        let mut newest = keys.rings.get(&room).and_then(RoomKeyRing::newest);
        for _ in 0..ATTEMPTS {
            let key_id = match newest.take() {
                Some(k) => k,
                None => key_id_of(&self.room_ensure_key(keys, room).await?)?,
            };
            let ring = keys
                .rings
                .get(&room)
                .ok_or_else(|| Error::Crypto("no key ring for this room".into()))?;
            let envelope = ring
                .encrypt(&keys.identity, key_id, keys.user, content)
                .map_err(crypto)?;
            let req = SendMessageRequest {
                body: MessageBody::Encrypted {
                    envelope: to_base64(&envelope),
                },
                attachment_id: attachment,
            };
            match self.send(room, &req).await {
                Err(e) if e.code() == Some(ErrorCode::E2eRoomKeyStale) => last = Some(e),
                other => return other,
            }
        }
        Err(last.unwrap_or_else(|| Error::Crypto("could not send".into())))
    }

    /// Sends an encrypted text message.
    pub async fn room_send_text(
        &self,
        keys: &mut E2eKeys,
        room: RoomId,
        text: &str,
    ) -> Result<Message> {
        self.room_send(keys, room, &RoomContent::text(text), None)
            .await
    }

    /// Encrypts a file with its own key, uploads the ciphertext (declared encrypted) and sends
    /// a message carrying the file's key, name and type, with an optional caption.
    pub async fn room_send_file(
        &self,
        keys: &mut E2eKeys,
        room: RoomId,
        name: &str,
        media_type: &str,
        bytes: &[u8],
        caption: Option<&str>,
    ) -> Result<Message> {
        let encrypted = encrypt_file(bytes).map_err(crypto)?;
        let upload = self.upload_encrypted(room, encrypted.ciphertext).await?;
        let content = RoomContent {
            text: caption.map(str::to_string),
            file: Some(FileRef {
                key: encrypted.key.to_base64(),
                nonce: to_base64(&encrypted.nonce),
                sha256: to_base64(&encrypted.sha256),
                name: name.to_string(),
                media_type: media_type.to_string(),
                size: bytes.len() as u64,
                upload_id: upload.id,
            }),
        };
        self.room_send(keys, room, &content, Some(upload.id)).await
    }

    /// Downloads an encrypted file a message refers to and decrypts it (the ciphertext's hash
    /// is checked first).
    pub async fn room_download_file(&self, file: &FileRef) -> Result<Vec<u8>> {
        let raw = self.download(file.upload_id).await?;
        let key = FileKey::from_base64(&file.key).map_err(crypto)?;
        let nonce = from_base64(&file.nonce).map_err(crypto)?;
        let sha256 = from_base64(&file.sha256).map_err(crypto)?;
        let mut plaintext = decrypt_file(&raw.body, &key, &nonce, &sha256).map_err(crypto)?;
        Ok(std::mem::take(&mut *plaintext))
    }

    /// Decrypts one message of `room` with the keys this client holds.
    pub async fn room_decrypt(
        &self,
        keys: &mut E2eKeys,
        room: RoomId,
        message: Message,
    ) -> RoomMessage {
        let author_key = self.author_key(keys, message.author_id).await;
        open_message(keys, room, message, author_key)
    }

    /// The whole history of an encrypted room, oldest first, decrypted as far as this client
    /// can: its key shares are synced first, then every message says which key it used and
    /// either its content or why it cannot be read.
    pub async fn room_history(&self, keys: &mut E2eKeys, room: RoomId) -> Result<Vec<RoomMessage>> {
        self.room_sync_keys(keys, room).await?;
        let mut stored = Vec::new();
        let mut before: Option<String> = None;
        loop {
            let page = self
                .history(room, before.as_deref(), None, Some(200))
                .await?;
            let mut messages = page.messages;
            messages.extend(stored);
            stored = messages;
            match page.before {
                Some(b) => before = Some(b),
                None => break,
            }
        }
        let mut out = Vec::with_capacity(stored.len());
        // One directory lookup per author, not per message.
        let mut authors: HashMap<UserId, std::result::Result<Ed25519PublicKey, ReadError>> =
            HashMap::new();
        for m in stored {
            let author_key = match authors.get(&m.author_id) {
                Some(k) => k.clone(),
                None => {
                    let k = self.author_key(keys, m.author_id).await;
                    authors.insert(m.author_id, k.clone());
                    k
                }
            };
            out.push(open_message(keys, room, m, author_key));
        }
        Ok(out)
    }
}
