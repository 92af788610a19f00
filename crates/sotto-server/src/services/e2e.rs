//! The E2E key directory: each user's public identity keys (readable by people who share a room
//! with them), and their key backup and trust store, sealed by the client and opaque to the
//! server (readable and replaceable by their owner only). Owns the `e2e_keys` table.
//!
//! Nothing of the off-the-record relay passes through here: the relay only asks whether a user
//! has published keys.

use sotto_api::rest::{E2eKeysUpload, E2eOwnKeys, PublicKeys, TrustStoreUpload};
use sotto_api::{ErrorCode, UserId};

use crate::error::{ApiError, ApiResult};
use crate::services::accounts::Caller;
use crate::services::rooms::Rooms;
use crate::services::settings::Settings;
use crate::storage::{Db, E2eRecord, now_ms};

/// Largest decoded key backup.
pub const MAX_KEY_BACKUP: usize = 64 * 1024;
/// Largest decoded trust store.
pub const MAX_TRUST_STORE: usize = 4 * 1024 * 1024;

/// The value of a standard base64 character.
pub fn b64_value(c: u8) -> Option<u8> {
    Some(match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => return None,
    })
}

/// Whether `s` is a 32-byte key in unpadded standard base64 (43 characters, canonical).
pub fn is_key(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 43
        && b.iter().all(|&c| b64_value(c).is_some())
        // 43 characters carry 258 bits: the last two must be zero.
        && b64_value(b[42]).is_some_and(|v| v & 0b11 == 0)
}

/// Whether `s` is a 64-byte signature in unpadded standard base64 (86 characters, canonical).
pub fn is_signature(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 86
        && b.iter().all(|&c| b64_value(c).is_some())
        // 86 characters carry 516 bits: the last four must be zero.
        && b64_value(b[85]).is_some_and(|v| v & 0x0f == 0)
}

/// The first `n` bytes that the standard base64 text `s` encodes, or `None` if `s` is shorter
/// or not base64 there. Reads only the characters it needs (the server peeks at an envelope's
/// cleartext header without decoding the rest).
pub fn b64_prefix(s: &str, n: usize) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(n);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes() {
        if out.len() == n {
            break;
        }
        acc = (acc << 6) | u32::from(b64_value(c)?);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    (out.len() == n).then_some(out)
}

/// The decoded length of standard base64 (padded or not), or `None` if it is not base64.
pub fn decoded_len(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let body = b
        .strip_suffix(b"==")
        .or_else(|| b.strip_suffix(b"="))
        .unwrap_or(b);
    if body.len() != b.len() && !b.len().is_multiple_of(4) {
        return None;
    }
    if !body.iter().all(|&c| b64_value(c).is_some()) {
        return None;
    }
    match body.len() % 4 {
        0 => Some(body.len() / 4 * 3),
        2 => Some(body.len() / 4 * 3 + 1),
        3 => Some(body.len() / 4 * 3 + 2),
        _ => None,
    }
}

fn check_blob(what: &str, s: &str, max: usize) -> ApiResult<()> {
    match decoded_len(s) {
        None => Err(ApiError::new(
            ErrorCode::InvalidInput,
            format!("{what} must be standard base64"),
        )),
        Some(0) => Err(ApiError::new(
            ErrorCode::InvalidInput,
            format!("{what} must not be empty"),
        )),
        Some(n) if n > max => Err(ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("{what} is at most {max} bytes"),
        )),
        Some(_) => Ok(()),
    }
}

/// The key directory service.
#[derive(Clone)]
pub struct E2e {
    db: Db,
    rooms: Rooms,
    settings: Settings,
}

impl E2e {
    /// Builds the service.
    pub fn new(db: Db, rooms: Rooms, settings: Settings) -> Self {
        E2e {
            db,
            rooms,
            settings,
        }
    }

    fn require_enabled(&self) -> ApiResult<()> {
        if self.settings.flag("e2e.enabled") {
            Ok(())
        } else {
            Err(ApiError::new(
                ErrorCode::E2eDisabled,
                "end-to-end encryption is disabled on this server",
            ))
        }
    }

    /// Publishes (or resets) the caller's keys with their backup and trust store. Refused with
    /// `e2e_disabled` while `e2e.enabled` is off (so is a trust-store update); reads keep
    /// working, so existing users can still unlock.
    pub async fn publish(&self, caller: &Caller, up: E2eKeysUpload) -> ApiResult<()> {
        self.require_enabled()?;
        if !is_key(&up.curve25519) || !is_key(&up.ed25519) {
            return Err(ApiError::new(
                ErrorCode::InvalidInput,
                "keys must be 32 bytes in unpadded standard base64 (43 characters)",
            ));
        }
        match (&up.agreement_key, &up.agreement_signature) {
            (None, None) => {}
            (Some(k), Some(sig)) if is_key(k) && is_signature(sig) => {}
            _ => {
                return Err(ApiError::new(
                    ErrorCode::InvalidInput,
                    "agreement_key (32 bytes, 43 characters) and agreement_signature (64 bytes, \
                     86 characters) come together, in unpadded standard base64",
                ));
            }
        }
        check_blob("key_backup", &up.key_backup, MAX_KEY_BACKUP)?;
        check_blob("trust_store", &up.trust_store, MAX_TRUST_STORE)?;
        let user = caller.user_id;
        let record = E2eRecord {
            curve25519: up.curve25519,
            ed25519: up.ed25519,
            key_backup: up.key_backup,
            trust_store: up.trust_store,
            agreement_key: up.agreement_key,
            agreement_signature: up.agreement_signature,
        };
        self.db
            .write(move |tx, _| {
                Box::pin(async move { tx.upsert_e2e_keys(user, &record, now_ms()).await })
            })
            .await
    }

    /// The caller's own keys, backup and trust store.
    pub async fn own(&self, caller: &Caller) -> ApiResult<E2eOwnKeys> {
        let r = self.db.e2e_keys(caller.user_id).await?.ok_or_else(|| {
            ApiError::new(
                ErrorCode::E2eNotSetUp,
                "end-to-end encryption is not set up",
            )
        })?;
        Ok(E2eOwnKeys {
            curve25519: r.curve25519,
            ed25519: r.ed25519,
            key_backup: r.key_backup,
            trust_store: r.trust_store,
            agreement_key: r.agreement_key,
            agreement_signature: r.agreement_signature,
        })
    }

    /// Replaces the caller's trust store.
    pub async fn set_trust_store(&self, caller: &Caller, up: TrustStoreUpload) -> ApiResult<()> {
        self.require_enabled()?;
        check_blob("trust_store", &up.trust_store, MAX_TRUST_STORE)?;
        let user = caller.user_id;
        let stored = self
            .db
            .write(move |tx, _| {
                Box::pin(async move { tx.set_trust_store(user, &up.trust_store, now_ms()).await })
            })
            .await?;
        if stored {
            Ok(())
        } else {
            Err(ApiError::new(
                ErrorCode::E2eNotSetUp,
                "end-to-end encryption is not set up",
            ))
        }
    }

    /// A user's public keys, for someone who shares or has shared a room with them (by the
    /// rooms' membership history: a removed member's old messages must still verify), and the
    /// caller's own keys. Anyone else gets `not_found`, exactly like a user without keys.
    pub async fn public_keys(&self, caller: &Caller, user: UserId) -> ApiResult<PublicKeys> {
        let not_found = || ApiError::not_found("keys");
        if user != caller.user_id && !self.rooms.have_shared_room(caller.user_id, user).await? {
            return Err(not_found());
        }
        let r = self.db.e2e_keys(user).await?.ok_or_else(not_found)?;
        Ok(PublicKeys {
            user_id: user,
            curve25519: r.curve25519,
            ed25519: r.ed25519,
            agreement_key: r.agreement_key,
            agreement_signature: r.agreement_signature,
        })
    }

    /// Whether a user has published E2E keys (the relay's check).
    pub async fn has_keys(&self, user: UserId) -> bool {
        matches!(self.db.e2e_keys(user).await, Ok(Some(_)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_canonical_unpadded_base64_of_32_bytes() {
        assert!(is_key(&"A".repeat(43)));
        assert!(is_key(&format!("{}E", "A".repeat(42))));
        assert!(
            !is_key(&format!("{}B", "A".repeat(42))),
            "non-zero tail bits"
        );
        assert!(!is_key(&format!("{}=", "A".repeat(43))));
        assert!(!is_key(&"A".repeat(44)));
        assert!(
            !is_key(&format!("{}-", "A".repeat(42))),
            "url-safe alphabet"
        );
    }

    #[test]
    fn signatures_and_prefixes() {
        assert!(is_signature(&"A".repeat(86)));
        assert!(is_signature(&format!("{}Q", "A".repeat(85))));
        assert!(!is_signature(&format!("{}B", "A".repeat(85))), "stray bits");
        assert!(!is_signature(&"A".repeat(85)));
        assert_eq!(b64_prefix("U09UVE9FMgE", 8), Some(b"SOTTOE2\x01".to_vec()));
        assert_eq!(b64_prefix("U09UVE9FMgE=", 7), Some(b"SOTTOE2".to_vec()));
        assert_eq!(b64_prefix("U09U", 4), None, "too short");
        assert_eq!(b64_prefix("U0*U", 2), None);
        assert_eq!(b64_prefix("", 0), Some(Vec::new()));
    }

    #[test]
    fn decoded_lengths() {
        assert_eq!(decoded_len(""), Some(0));
        assert_eq!(decoded_len("AAAA"), Some(3));
        assert_eq!(decoded_len("AA=="), Some(1));
        assert_eq!(decoded_len("AAA="), Some(2));
        assert_eq!(decoded_len("AAA"), Some(2));
        assert_eq!(decoded_len("A"), None);
        assert_eq!(decoded_len("A==="), None);
        assert_eq!(decoded_len("AA*A"), None);
        assert_eq!(decoded_len("AAA=AAA="), None);
    }
}
