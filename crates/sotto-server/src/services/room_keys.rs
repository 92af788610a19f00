//! Room keys of end-to-end encrypted rooms: a member distributes a new room key as one sealed
//! share per current member (`PUT /rooms/{id}/keys`), each member fetches only their own shares
//! (`GET /rooms/{id}/keys`), and the messages service refuses envelopes under anything but the
//! room's current key of the current epoch. Owns the tables `room_keys` and `room_key_shares`,
//! and sets the room's current key (`rooms.key_id`, `rooms.key_epoch`).
//!
//! The server never opens a share or an envelope: it checks who receives a key (exactly the
//! current members, at the current epoch) and reads the envelope's cleartext key id. Whether a
//! share or an envelope is authentic is the clients' check (`sotto-crypto`).

use sotto_api::realtime::ServerEvent;
use sotto_api::rest::{PutRoomKeyRequest, RoomKeys};
use sotto_api::{ErrorCode, RoomId};

use crate::error::{ApiError, ApiResult};
use crate::services::accounts::Caller;
use crate::services::e2e::{b64_prefix, b64_value, decoded_len};
use crate::services::events;
use crate::services::rooms::Rooms;
use crate::storage::{Db, NewRoomKey, RoomPolicy, Tx, now_ms};

/// Largest decoded share. A v1 share names every recipient (186 + 8 per recipient bytes), so
/// this admits the 4096 recipients `sotto-crypto` allows.
pub const MAX_SHARE: usize = 40 * 1024;
/// Magic of envelope v1's cleartext header.
pub const ENVELOPE_MAGIC: &[u8; 7] = b"SOTTOE2";
/// The only envelope version this server accepts.
pub const ENVELOPE_VERSION: u8 = 1;
/// Bytes of the header the server reads: magic, version, key id.
const HEADER_LEN: usize = 7 + 1 + 16;
/// The smallest whole envelope v1: header, sender id (8), nonce (24), length (4), an empty
/// ciphertext's tag (16), signature (64).
const MIN_ENVELOPE: usize = HEADER_LEN + 8 + 24 + 4 + 16 + 64;

/// A 16-byte key id in canonical standard base64, padded (24 characters) or not (22), in its
/// stored form: unpadded. `None` if it is anything else.
pub fn normalize_key_id(s: &str) -> Option<String> {
    let s = if s.len() == 24 {
        s.strip_suffix("==")?
    } else {
        s
    };
    let canonical = s.len() == 22
        && decoded_len(s) == Some(16)
        // 22 characters carry 132 bits: the last four must be zero.
        && s.bytes().last().and_then(b64_value).is_some_and(|v| v & 0x0f == 0);
    canonical.then(|| s.to_string())
}

fn plaintext_refused(what: &str) -> ApiError {
    ApiError::new(
        ErrorCode::E2ePlaintextRefused,
        format!("this room is end-to-end encrypted: {what} is refused"),
    )
}

fn not_encrypted(what: &str) -> ApiError {
    ApiError::new(
        ErrorCode::E2eRoomNotEncrypted,
        format!("this room is not end-to-end encrypted: {what} does not apply"),
    )
}

/// The room's policy inside a write job (the room exists: membership was checked).
pub async fn policy(tx: &mut dyn Tx, room: RoomId) -> ApiResult<RoomPolicy> {
    tx.room_policy(room)
        .await?
        .ok_or_else(|| ApiError::not_found("room"))
}

/// Checks a message body against the room (inside the message's writer job): an encrypted room
/// takes only envelopes under its current key of the current epoch, an ordinary room no
/// envelope at all.
pub fn check_body(policy: &RoomPolicy, envelope: Option<&str>) -> ApiResult<()> {
    match (policy.encrypted, envelope) {
        (false, None) => Ok(()),
        (false, Some(_)) => Err(not_encrypted("an encrypted message")),
        (true, None) => Err(plaintext_refused("a plaintext message")),
        (true, Some(env)) => check_envelope(policy, env),
    }
}

/// Reads envelope v1's cleartext header (`"SOTTOE2" | version 1 | key id [16] | …`, base64) and
/// refuses it unless its key is the room's current key and that key is of the current epoch.
fn check_envelope(policy: &RoomPolicy, envelope: &str) -> ApiResult<()> {
    let bad = |why: &str| ApiError::new(ErrorCode::E2eBadEnvelope, why.to_string());
    if decoded_len(envelope).is_none_or(|n| n < MIN_ENVELOPE) {
        return Err(bad(
            "an envelope is standard base64 of at least a whole v1 header",
        ));
    }
    let header = b64_prefix(envelope, HEADER_LEN).ok_or_else(|| bad("malformed envelope"))?;
    let (magic, rest) = header.split_at(ENVELOPE_MAGIC.len());
    if magic != ENVELOPE_MAGIC {
        return Err(bad("not a Sotto envelope"));
    }
    let (version, key_id) = rest.split_at(1);
    if version != [ENVELOPE_VERSION] {
        return Err(bad("unknown envelope version"));
    }
    let current = policy
        .key_id
        .as_deref()
        .and_then(|k| b64_prefix(k, 16))
        .filter(|_| policy.key_epoch == Some(policy.epoch));
    match current {
        Some(k) if k == key_id => Ok(()),
        _ => Err(ApiError::new(
            ErrorCode::E2eRoomKeyStale,
            "the room's membership changed (or it has no key yet): distribute a new room key first",
        )),
    }
}

/// Checks an upload's declaration against the room: an encrypted room takes only encrypted
/// uploads, an ordinary room none.
pub fn check_upload(policy: &RoomPolicy, encrypted: bool) -> ApiResult<()> {
    match (policy.encrypted, encrypted) {
        (true, false) => Err(plaintext_refused("an upload not declared encrypted")),
        (false, true) => Err(not_encrypted("an encrypted upload")),
        _ => Ok(()),
    }
}

/// Checks an attachment against the room (inside the message's writer job).
pub fn check_attachment(policy: &RoomPolicy, encrypted: bool) -> ApiResult<()> {
    if policy.encrypted && !encrypted {
        Err(plaintext_refused("attaching a plaintext upload"))
    } else {
        Ok(())
    }
}

/// The room-keys service.
#[derive(Clone)]
pub struct RoomKeyService {
    db: Db,
    rooms: Rooms,
}

impl RoomKeyService {
    /// Builds the service.
    pub fn new(db: Db, rooms: Rooms) -> Self {
        RoomKeyService { db, rooms }
    }

    /// Distributes a new room key: the caller is a member of the encrypted room, `epoch` is the
    /// room's and the shares go to exactly its current members. The key becomes the room's
    /// current key and `room_key_added` goes to the members.
    pub async fn put(
        &self,
        caller: &Caller,
        room: RoomId,
        req: PutRoomKeyRequest,
    ) -> ApiResult<()> {
        let Some(key_id) = normalize_key_id(&req.key_id) else {
            return Err(ApiError::new(
                ErrorCode::InvalidInput,
                "key_id is 16 bytes in standard base64",
            ));
        };
        let req = PutRoomKeyRequest { key_id, ..req };
        for s in &req.shares {
            match decoded_len(&s.share) {
                Some(n) if (1..=MAX_SHARE).contains(&n) => {}
                Some(n) if n > MAX_SHARE => {
                    return Err(ApiError::new(
                        ErrorCode::PayloadTooLarge,
                        format!("a share is at most {MAX_SHARE} bytes"),
                    ));
                }
                _ => {
                    return Err(ApiError::new(
                        ErrorCode::InvalidInput,
                        "a share is non-empty standard base64",
                    ));
                }
            }
        }
        let distributor = caller.user_id;
        self.db
            .write(move |tx, outbox| {
                Box::pin(async move {
                    Rooms::require_member_tx(tx, room, distributor).await?;
                    let policy = policy(tx, room).await?;
                    if !policy.encrypted {
                        return Err(not_encrypted("a room key"));
                    }
                    let mut members = tx.room_members(room).await?;
                    members.sort_unstable();
                    let mut recipients: Vec<_> = req.shares.iter().map(|s| s.user_id).collect();
                    recipients.sort_unstable();
                    if req.epoch != policy.epoch || recipients != members {
                        return Err(ApiError::new(
                            ErrorCode::E2eKeyMembersMismatch,
                            "the key must be for the room's current epoch and members: refetch and retry",
                        ));
                    }
                    let now = now_ms();
                    tx.insert_room_key(NewRoomKey {
                        room,
                        key_id: &req.key_id,
                        epoch: req.epoch,
                        distributor,
                        now,
                    })
                    .await?;
                    for s in &req.shares {
                        tx.insert_room_key_share(&req.key_id, s.user_id, &s.share)
                            .await?;
                    }
                    tx.set_room_key(room, &req.key_id, req.epoch).await?;
                    let ev = ServerEvent::RoomKeyAdded {
                        seq: 0,
                        room_id: room,
                        key_id: req.key_id,
                        distributor_id: distributor,
                        epoch: req.epoch,
                    };
                    events::append(tx, outbox, room, None, None, ev).await?;
                    Ok(())
                })
            })
            .await
    }

    /// The caller's own shares of the room's keys and the room's membership history. Any room
    /// the caller is in answers (an ordinary room has no keys, but its history is useful too).
    pub async fn get(&self, caller: &Caller, room: RoomId) -> ApiResult<RoomKeys> {
        let r = self.rooms.get(caller, room).await?;
        let keys = self.db.room_key_shares(room, caller.user_id).await?;
        let changes = self.rooms.changes(room).await?;
        Ok(RoomKeys {
            epoch: r.epoch,
            members: r.members,
            key_id: r.key_id,
            keys,
            changes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(encrypted: bool, epoch: i64, key: Option<(&str, i64)>) -> RoomPolicy {
        RoomPolicy {
            encrypted,
            epoch,
            key_id: key.map(|k| k.0.to_string()),
            key_epoch: key.map(|k| k.1),
        }
    }

    fn b64(bytes: &[u8]) -> String {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(bytes)
    }

    fn envelope(version: u8, key_id: &[u8; 16], len: usize) -> String {
        let mut v = ENVELOPE_MAGIC.to_vec();
        v.push(version);
        v.extend_from_slice(key_id);
        v.resize(len, 0xaa);
        b64(&v)
    }

    #[test]
    fn key_ids_are_canonical_base64_of_16_bytes() {
        let id = b64(&[7; 16]);
        assert_eq!(normalize_key_id(&id), Some(id.clone()));
        assert_eq!(
            normalize_key_id(&format!("{id}==")),
            Some(id.clone()),
            "padded"
        );
        assert!(normalize_key_id(&b64(&[0xff; 16])).is_some());
        assert_eq!(normalize_key_id(&b64(&[7; 15])), None);
        assert_eq!(normalize_key_id(&b64(&[7; 17])), None);
        assert_eq!(normalize_key_id(&format!("{id}=")), None);
        assert_eq!(normalize_key_id(&format!("{id}AA")), None);
        assert_eq!(
            normalize_key_id("AAAAAAAAAAAAAAAAAAAAAB"),
            None,
            "stray bits"
        );
        assert_eq!(normalize_key_id("AAAAAAAAAAAAAAAAAAAA-A"), None, "url-safe");
    }

    #[test]
    fn envelopes_are_checked_by_their_header() {
        let key = [3u8; 16];
        let id = b64(&key);
        let current = policy(true, 2, Some((&id, 2)));
        let code = |p: &RoomPolicy, e: &str| check_body(p, Some(e)).err().map(|e| e.code);
        assert_eq!(code(&current, &envelope(1, &key, MIN_ENVELOPE)), None);
        assert_eq!(code(&current, &envelope(1, &key, 400)), None);
        // Padded base64 is fine too (140 bytes: one `=`).
        let padded = format!("{}=", envelope(1, &key, MIN_ENVELOPE));
        assert_eq!(code(&current, &padded), None);
        let stale = policy(true, 3, Some((&id, 2)));
        assert_eq!(
            code(&stale, &envelope(1, &key, 200)),
            Some(ErrorCode::E2eRoomKeyStale)
        );
        assert_eq!(
            code(&current, &envelope(1, &[4; 16], 200)),
            Some(ErrorCode::E2eRoomKeyStale)
        );
        let keyless = policy(true, 0, None);
        assert_eq!(
            code(&keyless, &envelope(1, &key, 200)),
            Some(ErrorCode::E2eRoomKeyStale)
        );
        for bad in [
            envelope(2, &key, 200),
            envelope(1, &key, MIN_ENVELOPE - 1),
            b64(b"XOTTOE2\x01aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
            "not base64 at all".to_string(),
            String::new(),
            "A".repeat(5),
        ] {
            assert_eq!(code(&current, &bad), Some(ErrorCode::E2eBadEnvelope), "{bad}");
        }
        assert_eq!(
            check_body(&current, None).err().map(|e| e.code),
            Some(ErrorCode::E2ePlaintextRefused)
        );
        assert_eq!(
            check_body(&policy(false, 0, None), Some(&envelope(1, &key, 200)))
                .err()
                .map(|e| e.code),
            Some(ErrorCode::E2eRoomNotEncrypted)
        );
        assert!(check_body(&policy(false, 0, None), None).is_ok());
    }
}
