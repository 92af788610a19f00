//! The trust store: the peers' identity keys, pinned on first use, and "verified" marks.
//!
//! The store is sealed under the user's [`StorageKey`] and bound to the owner's user id, so the
//! server can keep it for the user (it follows them across browsers) but can neither read it nor
//! alter it, nor hand one user's store to another. A peer whose key differs from the pin is
//! *changed*: off-the-record with that peer is blocked until the user acknowledges the new key,
//! which re-pins it and clears any "verified" mark.
//!
//! Known limit: the server could serve an older sealed store (a rollback) to make the client
//! forget a later pin. That can only re-open trust on first use for a peer pinned since; it can
//! never substitute a key without the change being visible to whoever compares safety numbers.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use thiserror::Error;
use vodozemac::Curve25519PublicKey;

use crate::backup::StorageKey;
use crate::identity::PublicIdentity;
use crate::seal::{open, seal};

const MAGIC: &[u8; 7] = b"SOTTOTS";
const VERSION: u8 = 1;
const PURPOSE: &[u8] = b"sotto trust store v1";
/// A sealed store larger than this is refused before decryption.
pub const MAX_SEALED_TRUST_STORE: usize = 4 * 1024 * 1024;

/// Errors of the trust store.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum TrustError {
    /// The peer has no pinned key yet; look it up and call [`TrustStore::observe`] first.
    #[error("no key pinned for this user yet")]
    NotPinned,
    /// The peer's key changed and the user has not acknowledged it: OTR is blocked.
    #[error("this user's safety number changed; acknowledge it before going off the record")]
    KeyChangedUnacknowledged,
    /// A verify or acknowledge call named keys that are not the ones the store knows.
    #[error("these are not the keys on record for this user")]
    KeysDoNotMatch,
    /// The sealed store is malformed, tampered with, belongs to another user, or was sealed
    /// under another key.
    #[error("the trust store cannot be opened (wrong key, other owner, or altered)")]
    CannotOpen,
    /// The sealed store was written by a newer version.
    #[error("trust store version {0} is not supported")]
    UnsupportedVersion(u8),
    /// The platform's random number generator failed.
    #[error("no randomness available")]
    Randomness,
}

/// What the store says about a key the directory just served for a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::large_enum_variant, reason = "a short-lived return value")]
pub enum TrustDecision {
    /// First time this peer is seen: the key is now pinned.
    PinnedNow,
    /// The key matches the pin. `verified` says whether the user compared safety numbers.
    Matches {
        /// Whether the user marked this key as verified.
        verified: bool,
    },
    /// The key differs from the pin. OTR with the peer is blocked until acknowledged.
    Changed {
        /// The key that was pinned.
        pinned: PublicIdentity,
        /// Whether the old key had been verified (a stronger warning).
        was_verified: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Pin {
    keys: PublicIdentity,
    verified: bool,
    /// A different key the directory served since, not yet acknowledged.
    pending_change: Option<PublicIdentity>,
}

/// The pinned identity keys of every peer this user has met.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustStore {
    pins: BTreeMap<String, Pin>,
}

impl TrustStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records the key the directory serves for `user_id`, pinning it on first use.
    pub fn observe(&mut self, user_id: &str, keys: PublicIdentity) -> TrustDecision {
        match self.pins.get_mut(user_id) {
            None => {
                self.pins.insert(
                    user_id.to_owned(),
                    Pin {
                        keys,
                        verified: false,
                        pending_change: None,
                    },
                );
                TrustDecision::PinnedNow
            }
            Some(pin) if pin.keys == keys => {
                pin.pending_change = None;
                TrustDecision::Matches {
                    verified: pin.verified,
                }
            }
            Some(pin) => {
                pin.pending_change = Some(keys);
                TrustDecision::Changed {
                    pinned: pin.keys,
                    was_verified: pin.verified,
                }
            }
        }
    }

    /// The user accepts `keys` as the peer's new identity: re-pin, unverified.
    pub fn acknowledge_change(
        &mut self,
        user_id: &str,
        keys: PublicIdentity,
    ) -> Result<(), TrustError> {
        let pin = self.pins.get_mut(user_id).ok_or(TrustError::NotPinned)?;
        if pin.pending_change != Some(keys) {
            return Err(TrustError::KeysDoNotMatch);
        }
        *pin = Pin {
            keys,
            verified: false,
            pending_change: None,
        };
        Ok(())
    }

    /// The user compared safety numbers for `keys` and they matched.
    pub fn mark_verified(&mut self, user_id: &str, keys: PublicIdentity) -> Result<(), TrustError> {
        let pin = self.pins.get_mut(user_id).ok_or(TrustError::NotPinned)?;
        if pin.keys != keys || pin.pending_change.is_some() {
            return Err(TrustError::KeysDoNotMatch);
        }
        pin.verified = true;
        Ok(())
    }

    /// Removes the "verified" mark.
    pub fn clear_verified(&mut self, user_id: &str) -> Result<(), TrustError> {
        let pin = self.pins.get_mut(user_id).ok_or(TrustError::NotPinned)?;
        pin.verified = false;
        Ok(())
    }

    /// The pinned keys of `user_id`, if any.
    pub fn pinned(&self, user_id: &str) -> Option<PublicIdentity> {
        self.pins.get(user_id).map(|pin| pin.keys)
    }

    /// Whether the pinned key of `user_id` is marked verified.
    pub fn is_verified(&self, user_id: &str) -> bool {
        self.pins
            .get(user_id)
            .is_some_and(|pin| pin.verified && pin.pending_change.is_none())
    }

    /// The key an off-the-record handshake with `user_id` must use. Fails while a change is
    /// unacknowledged. This is the only source of a peer key for OTR.
    pub fn otr_peer_key(&self, user_id: &str) -> Result<Curve25519PublicKey, TrustError> {
        let pin = self.pins.get(user_id).ok_or(TrustError::NotPinned)?;
        if pin.pending_change.is_some() {
            return Err(TrustError::KeyChangedUnacknowledged);
        }
        Ok(pin.keys.curve25519)
    }

    /// Seals the store for the server to keep, bound to `owner_user_id`.
    pub fn seal(&self, key: &StorageKey, owner_user_id: &str) -> Result<Vec<u8>, TrustError> {
        let json =
            zeroize::Zeroizing::new(serde_json::to_vec(self).map_err(|_| TrustError::CannotOpen)?);
        let sealed = seal(&key.purpose(PURPOSE), &aad(owner_user_id), &json)
            .map_err(|_| TrustError::Randomness)?;
        let mut out = Vec::with_capacity(MAGIC.len() + 1 + sealed.len());
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Opens a store sealed by [`TrustStore::seal`] for the same owner and key.
    pub fn open(key: &StorageKey, owner_user_id: &str, sealed: &[u8]) -> Result<Self, TrustError> {
        if sealed.len() > MAX_SEALED_TRUST_STORE {
            return Err(TrustError::CannotOpen);
        }
        let body = sealed
            .strip_prefix(MAGIC.as_slice())
            .ok_or(TrustError::CannotOpen)?;
        let (&version, body) = body.split_first().ok_or(TrustError::CannotOpen)?;
        if version != VERSION {
            return Err(TrustError::UnsupportedVersion(version));
        }
        let json = open(&key.purpose(PURPOSE), &aad(owner_user_id), body)
            .map_err(|_| TrustError::CannotOpen)?;
        Self::decode_plaintext(&json)
    }

    /// Parses the decrypted contents of a sealed store.
    pub(crate) fn decode_plaintext(json: &[u8]) -> Result<Self, TrustError> {
        serde_json::from_slice(json).map_err(|_| TrustError::CannotOpen)
    }
}

fn aad(owner_user_id: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(MAGIC.len() + 1 + owner_user_id.len());
    aad.extend_from_slice(MAGIC);
    aad.push(VERSION);
    aad.extend_from_slice(owner_user_id.as_bytes());
    aad
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backup::{KdfParams, Passphrase, create_backup};
    use crate::identity::Identity;

    fn key() -> StorageKey {
        let passphrase = Passphrase::generate().unwrap();
        create_backup(
            Identity::generate(),
            &passphrase,
            KdfParams::INSECURE_FOR_TESTS,
        )
        .unwrap()
        .1
        .storage_key
    }

    #[test]
    fn first_use_pins_and_a_change_blocks_otr_until_acknowledged() {
        let mut store = TrustStore::new();
        let bob = Identity::generate().public();
        let mallory = Identity::generate().public();
        assert_eq!(store.otr_peer_key("bob"), Err(TrustError::NotPinned));
        assert_eq!(store.observe("bob", bob), TrustDecision::PinnedNow);
        assert_eq!(
            store.observe("bob", bob),
            TrustDecision::Matches { verified: false }
        );
        store.mark_verified("bob", bob).unwrap();
        assert_eq!(
            store.observe("bob", bob),
            TrustDecision::Matches { verified: true }
        );
        assert_eq!(store.otr_peer_key("bob"), Ok(bob.curve25519));

        assert_eq!(
            store.observe("bob", mallory),
            TrustDecision::Changed {
                pinned: bob,
                was_verified: true
            }
        );
        assert_eq!(
            store.otr_peer_key("bob"),
            Err(TrustError::KeyChangedUnacknowledged)
        );
        assert!(!store.is_verified("bob"));
        assert_eq!(
            store.mark_verified("bob", mallory),
            Err(TrustError::KeysDoNotMatch)
        );
        assert_eq!(
            store.acknowledge_change("bob", bob),
            Err(TrustError::KeysDoNotMatch)
        );
        store.acknowledge_change("bob", mallory).unwrap();
        assert_eq!(store.otr_peer_key("bob"), Ok(mallory.curve25519));
        assert!(!store.is_verified("bob"));
    }

    #[test]
    fn sealed_store_round_trips_and_resists_tampering_and_swapping() {
        let key = key();
        let mut store = TrustStore::new();
        store.observe("bob", Identity::generate().public());
        let sealed = store.seal(&key, "alice").unwrap();
        assert_eq!(TrustStore::open(&key, "alice", &sealed).unwrap(), store);
        assert_eq!(
            TrustStore::open(&key, "carol", &sealed),
            Err(TrustError::CannotOpen)
        );
        assert_eq!(
            TrustStore::open(&self::key(), "alice", &sealed),
            Err(TrustError::CannotOpen)
        );
        for index in 0..sealed.len() {
            let mut tampered = sealed.clone();
            tampered[index] ^= 0x80;
            assert!(
                TrustStore::open(&key, "alice", &tampered).is_err(),
                "byte {index}"
            );
        }
        for len in 0..sealed.len() {
            assert!(TrustStore::open(&key, "alice", &sealed[..len]).is_err());
        }
    }
}
