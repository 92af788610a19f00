//! End-to-end keys in the SDK: set up, unlock, change the passphrase, reset, and the trust store.
//!
//! The cryptography is `sotto-crypto`'s; this module moves its sealed blobs to and from the
//! server's key directory (`/api/v1/e2e/...`). The server only ever sees public keys and sealed
//! blobs. The key backup and the trust store are always uploaded together, because a new
//! passphrase or a reset draws a new storage key that the trust store must be sealed under.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::Method;
use std::collections::HashMap;

use sotto_api::rest::{E2eKeysUpload, E2eOwnKeys, Ok as OkBody, PublicKeys, TrustStoreUpload};
use sotto_api::{RoomId, UserId};
use sotto_crypto::backup::{self, KdfParams, Passphrase, StorageKey, create_backup, unlock_backup};
use sotto_crypto::identity::{Identity, OtrIdentity, PublicIdentity};
use sotto_crypto::rooms::RoomKeyRing;
use sotto_crypto::safety::SafetyNumber;
use sotto_crypto::trust::{TrustDecision, TrustStore};

use crate::{Client, Error, Result};

/// The unlocked E2E state of one client: identity, OTR identity, storage key, trust store, and
/// the room keys it opened (one key ring per encrypted room, in memory only: a new client gets
/// them again from the shares the server keeps for it). Not `Clone` or `Debug`; dropping it
/// zeroizes the keys.
pub struct E2eKeys {
    pub(crate) identity: Identity,
    pub(crate) otr: OtrIdentity,
    storage_key: StorageKey,
    pub(crate) trust: TrustStore,
    pub(crate) user: UserId,
    owner: String,
    kdf: KdfParams,
    pub(crate) rings: HashMap<RoomId, RoomKeyRing>,
}

impl E2eKeys {
    /// The public identity keys.
    pub fn public(&self) -> PublicIdentity {
        self.identity.public()
    }

    /// The trust store (pins and verified marks).
    pub fn trust(&self) -> &TrustStore {
        &self.trust
    }

    /// The identity (for `sotto-crypto` calls the SDK does not wrap).
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// The room keys this client holds for `room`, if it opened any.
    pub fn room_ring(&self, room: RoomId) -> Option<&RoomKeyRing> {
        self.rings.get(&room)
    }

    /// Whether the backup was sealed with weaker-than-default key derivation; re-seal it with
    /// [`Client::e2e_change_passphrase`].
    pub fn needs_rekey(&self) -> bool {
        self.kdf.weaker_than_default()
    }

    /// How many one-time key secrets the OTR identity holds (zero unless a handshake waits).
    pub fn one_time_key_count(&self) -> usize {
        self.otr.one_time_key_count()
    }

    /// Accepts a peer's changed identity key (after the user saw the warning).
    pub fn acknowledge_change(&mut self, user: UserId, keys: PublicIdentity) -> Result<()> {
        self.trust
            .acknowledge_change(&user.to_string(), keys)
            .map_err(crypto)
    }

    /// Marks a peer verified (the user compared safety numbers).
    pub fn mark_verified(&mut self, user: UserId, keys: PublicIdentity) -> Result<()> {
        self.trust
            .mark_verified(&user.to_string(), keys)
            .map_err(crypto)
    }

    /// The safety number with a pinned peer.
    pub fn safety_number(&self, peer: UserId) -> Result<SafetyNumber> {
        let peer_id = peer.to_string();
        let pinned = self
            .trust
            .pinned(&peer_id)
            .ok_or_else(|| Error::Crypto("no key pinned for this user yet".into()))?;
        Ok(SafetyNumber::new(
            &self.owner,
            &self.identity.public(),
            &peer_id,
            &pinned,
        ))
    }

    fn sealed_trust_store(&self) -> Result<String> {
        let sealed = self
            .trust
            .seal(&self.storage_key, &self.owner)
            .map_err(crypto)?;
        Ok(STANDARD.encode(sealed))
    }

    /// What `PUT /e2e/keys` publishes: the identity keys, the room agreement key signed by
    /// the identity, the backup and the sealed trust store.
    fn upload(&self, backup: &[u8]) -> Result<E2eKeysUpload> {
        let (curve25519, ed25519) = self.identity.public().to_base64();
        let (agreement_key, agreement_signature) =
            self.identity.signed_agreement_key(self.user).to_base64();
        Ok(E2eKeysUpload {
            curve25519,
            ed25519,
            key_backup: STANDARD.encode(backup),
            trust_store: self.sealed_trust_store()?,
            agreement_key: Some(agreement_key),
            agreement_signature: Some(agreement_signature),
        })
    }
}

pub(crate) fn crypto(err: impl std::fmt::Display) -> Error {
    Error::Crypto(err.to_string())
}

impl Client {
    /// Sets up E2E keys: a new identity sealed under `passphrase`, published with an empty trust
    /// store. Also the way to *reset* an identity (see [`Client::e2e_reset`]).
    pub async fn e2e_setup(&self, passphrase: &Passphrase, params: KdfParams) -> Result<E2eKeys> {
        let (backup, unlocked) =
            create_backup(Identity::generate(), passphrase, params).map_err(crypto)?;
        let keys = E2eKeys {
            identity: unlocked.identity,
            otr: unlocked.otr,
            storage_key: unlocked.storage_key,
            trust: TrustStore::new(),
            user: self.user_id(),
            owner: self.user_id().to_string(),
            kdf: params,
            rings: HashMap::new(),
        };
        let _: OkBody = self
            .call(
                Method::PUT,
                "/api/v1/e2e/keys",
                Some(&keys.upload(&backup)?),
            )
            .await?;
        Ok(keys)
    }

    /// Enters the E2E key on this client: fetches the key backup and trust store and opens them.
    /// A v1 backup (from before encrypted rooms) gets a room agreement key at this first unlock:
    /// the upgraded backup and the signed agreement key are published at once (the identity keys
    /// stay the same, so this is no identity reset). So is an agreement key the directory lacks.
    pub async fn e2e_unlock(&self, passphrase: &str) -> Result<E2eKeys> {
        let own: E2eOwnKeys = self.get("/api/v1/e2e/keys/me").await?;
        let backup = STANDARD.decode(&own.key_backup).map_err(crypto)?;
        let sealed = STANDARD.decode(&own.trust_store).map_err(crypto)?;
        let unlocked = unlock_backup(&backup, passphrase).map_err(crypto)?;
        let owner = self.user_id().to_string();
        let trust = TrustStore::open(&unlocked.storage_key, &owner, &sealed).map_err(crypto)?;
        let keys = E2eKeys {
            identity: unlocked.identity,
            otr: unlocked.otr,
            storage_key: unlocked.storage_key,
            trust,
            user: self.user_id(),
            owner,
            kdf: unlocked.kdf,
            rings: HashMap::new(),
        };
        let published = keys.identity.agreement_key().to_base64();
        let republish = match unlocked.upgraded_backup {
            Some(upgraded) => Some(upgraded),
            None if own.agreement_key.as_deref() != Some(published.as_str()) => Some(backup),
            None => None,
        };
        if let Some(backup) = republish {
            let _: OkBody = self
                .call(
                    Method::PUT,
                    "/api/v1/e2e/keys",
                    Some(&keys.upload(&backup)?),
                )
                .await?;
        }
        Ok(keys)
    }

    /// Re-seals the identity under a new passphrase (and a new storage key); uploads the backup
    /// and the re-sealed trust store together.
    pub async fn e2e_change_passphrase(
        &self,
        keys: &mut E2eKeys,
        new_passphrase: &Passphrase,
        params: KdfParams,
    ) -> Result<()> {
        let (backup, storage_key) =
            backup::change_passphrase(&keys.identity, new_passphrase, params).map_err(crypto)?;
        keys.storage_key = storage_key;
        keys.kdf = params;
        let _: OkBody = self
            .call(
                Method::PUT,
                "/api/v1/e2e/keys",
                Some(&keys.upload(&backup)?),
            )
            .await?;
        Ok(())
    }

    /// Resets the E2E identity: new keys (peers will see a changed safety number), the trust
    /// store kept. Every OTR session of the old identity is over.
    pub async fn e2e_reset(
        &self,
        keys: &mut E2eKeys,
        passphrase: &Passphrase,
        params: KdfParams,
    ) -> Result<()> {
        let (backup, unlocked) =
            create_backup(Identity::generate(), passphrase, params).map_err(crypto)?;
        keys.identity = unlocked.identity;
        keys.otr = unlocked.otr;
        keys.storage_key = unlocked.storage_key;
        keys.kdf = params;
        let _: OkBody = self
            .call(
                Method::PUT,
                "/api/v1/e2e/keys",
                Some(&keys.upload(&backup)?),
            )
            .await?;
        Ok(())
    }

    /// Stores the trust store after pins or verified marks changed.
    pub async fn e2e_save_trust_store(&self, keys: &E2eKeys) -> Result<()> {
        let body = TrustStoreUpload {
            trust_store: keys.sealed_trust_store()?,
        };
        let _: OkBody = self
            .call(Method::PUT, "/api/v1/e2e/trust-store", Some(&body))
            .await?;
        Ok(())
    }

    /// The raw key backup the server holds for the caller (tests decrypt it to inspect it).
    pub async fn e2e_own_backup(&self) -> Result<Vec<u8>> {
        let own: E2eOwnKeys = self.get("/api/v1/e2e/keys/me").await?;
        STANDARD.decode(&own.key_backup).map_err(crypto)
    }

    /// A user's public identity keys from the directory (only for users who share or shared a
    /// room with the caller).
    pub async fn public_keys(&self, user: UserId) -> Result<PublicIdentity> {
        let keys = self.directory_entry(user).await?;
        PublicIdentity::from_base64(&keys.curve25519, &keys.ed25519).map_err(crypto)
    }

    /// A user's entry in the key directory as published (identity keys, and the room agreement
    /// key with its signature once their client published one), not yet checked.
    pub async fn directory_entry(&self, user: UserId) -> Result<PublicKeys> {
        self.get(&format!("/api/v1/e2e/keys/{user}")).await
    }

    /// Looks up a peer's keys and records them in the trust store (pinning on first use).
    pub async fn e2e_observe_peer(
        &self,
        keys: &mut E2eKeys,
        user: UserId,
    ) -> Result<TrustDecision> {
        let public = self.public_keys(user).await?;
        Ok(keys.trust.observe(&user.to_string(), public))
    }
}
