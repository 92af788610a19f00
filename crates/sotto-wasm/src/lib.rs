//! The browser face of `sotto-crypto`, through wasm-bindgen.
//!
//! JavaScript never holds key material or session objects. Everything secret lives in one
//! Rust-side registry per page (a `thread_local`; wasm in the browser is single-threaded): the
//! unlocked identity, the in-memory OTR identity, the trust store, one [`OtrSession`] per DM
//! room and one [`RoomKeyRing`] per encrypted room. JavaScript names a session or a ring by its
//! room id. End OTR, decline, timeout, cancel, [`otr_destroy`], [`room_forget`] and [`lock`] drop
//! the Rust objects, which zeroizes their keys, whether or not JavaScript ever lets go of
//! anything. (A file key does go to JavaScript: it travels inside the encrypted message.)
//!
//! What zeroize cannot reach: strings and bytes copied *into* JavaScript — decrypted message
//! text, file bytes, the generated passphrase, the sealed blobs — live in the JavaScript heap until
//! its garbage collector reclaims them. The browser client keeps OTR messages only in tab memory
//! (never in storage) and drops its references when the session ends or the tab reloads.
//!
//! Errors are thrown as JavaScript `Error`s with a stable `code` property (for example
//! `"wrong_passphrase"`, `"key_changed"`, `"not_established"`).

#![forbid(unsafe_code)]
#![deny(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::cell::RefCell;
use std::collections::HashMap;

use js_sys::{Array, Object, Reflect, Uint8Array};
use serde::{Deserialize, Serialize};
use sotto_crypto::backup::{
    self, BackupError, KdfParams, Passphrase, StorageKey, Unlocked, create_backup, unlock_backup,
};
use sotto_crypto::files::{self, FileError, FileKey};
use sotto_crypto::identity::{
    Identity, IdentityError, OtrIdentity, PublicIdentity, SignedAgreementKey, ed25519_from_base64,
};
use sotto_crypto::otr::{
    EndReason, FailureReason, OtrError, OtrEvent, OtrKeys, OtrSession, OtrState, Packet, Step,
    reply_to_unknown_session,
};
use sotto_crypto::rooms::{
    self, KeyId, Member, RoomContent, RoomError, RoomKey, RoomKeyRing, UserId,
};
use sotto_crypto::safety::SafetyNumber;
use sotto_crypto::trust::{TrustDecision, TrustError, TrustStore};
use wasm_bindgen::prelude::*;
use zeroize::Zeroizing;

/// Everything secret of one page.
#[derive(Default)]
struct Registry {
    unlocked: Option<UnlockedState>,
    sessions: HashMap<String, OtrSession>,
    rings: HashMap<rooms::RoomId, RoomKeyRing>,
}

struct UnlockedState {
    identity: Identity,
    otr: OtrIdentity,
    storage_key: StorageKey,
    trust: TrustStore,
    owner_user_id: String,
}

thread_local! {
    static REGISTRY: RefCell<Registry> = RefCell::new(Registry::default());
}

fn with_registry<T>(f: impl FnOnce(&mut Registry) -> Result<T, JsValue>) -> Result<T, JsValue> {
    REGISTRY.with(|registry| f(&mut registry.borrow_mut()))
}

fn error(code: &str, message: &str) -> JsValue {
    let error = js_sys::Error::new(message);
    let _ = Reflect::set(&error, &"code".into(), &code.into());
    error.into()
}

fn locked() -> JsValue {
    error("locked", "enter your E2E key first")
}

fn backup_error(err: BackupError) -> JsValue {
    let code = match err {
        BackupError::WrongPassphraseOrTampered => "wrong_passphrase",
        BackupError::Malformed(_) => "malformed_backup",
        BackupError::UnsupportedVersion(_) => "unsupported_backup_version",
        BackupError::UnacceptableParameters => "unacceptable_backup_parameters",
        BackupError::WeakPassphrase => "weak_passphrase",
        BackupError::Identity(_) => "identity_not_exportable",
        BackupError::Randomness => "no_randomness",
    };
    error(code, &err.to_string())
}

fn trust_error(err: TrustError) -> JsValue {
    let code = match err {
        TrustError::NotPinned => "peer_not_pinned",
        TrustError::KeyChangedUnacknowledged => "key_changed",
        TrustError::KeysDoNotMatch => "keys_do_not_match",
        TrustError::CannotOpen => "trust_store_unreadable",
        TrustError::UnsupportedVersion(_) => "unsupported_trust_store_version",
        TrustError::Randomness => "no_randomness",
    };
    error(code, &err.to_string())
}

fn otr_error(err: OtrError) -> JsValue {
    let code = match &err {
        OtrError::IllegalTransition { .. } => "illegal_transition",
        OtrError::NotEstablished => "not_established",
        OtrError::Malformed(_) => "malformed_packet",
        OtrError::Frame(_) => "frame_not_decrypted",
        OtrError::TooLarge => "too_large",
        OtrError::Trust(TrustError::KeyChangedUnacknowledged) => "key_changed",
        OtrError::Trust(_) => "peer_not_pinned",
        OtrError::Randomness => "no_randomness",
        OtrError::Encryption => "encryption_failed",
        OtrError::InvalidIdentifier => "invalid_identifier",
    };
    error(code, &err.to_string())
}

fn params(insecure_for_tests: bool) -> KdfParams {
    if insecure_for_tests {
        KdfParams::INSECURE_FOR_TESTS
    } else {
        KdfParams::DEFAULT
    }
}

fn public_keys_json(identity: &Identity, owner_user_id: &str) -> Result<String, JsValue> {
    let (curve, ed) = identity.public().to_base64();
    let (agreement, signature) = identity
        .signed_agreement_key(numeric_id(owner_user_id)?)
        .to_base64();
    Ok(format!(
        r#"{{"curve25519":"{curve}","ed25519":"{ed}","agreement_key":"{agreement}","agreement_signature":"{signature}"}}"#
    ))
}

/// A user or room id as JavaScript passes it: the server's integer, as a decimal string.
fn numeric_id(id: &str) -> Result<i64, JsValue> {
    id.parse().map_err(|_| {
        error(
            "invalid_identifier",
            "user and room ids are decimal integers",
        )
    })
}

fn peer_keys(curve25519: &str, ed25519: &str) -> Result<PublicIdentity, JsValue> {
    PublicIdentity::from_base64(curve25519, ed25519)
        .map_err(|_| error("invalid_public_key", "invalid public key"))
}

// --- Passphrases -----------------------------------------------------------------------------

/// A generated E2E passphrase (100 bits, five groups of four characters).
#[wasm_bindgen(js_name = generatePassphrase)]
pub fn generate_passphrase() -> Result<String, JsValue> {
    Passphrase::generate()
        .map(|p| p.as_str().to_owned())
        .map_err(backup_error)
}

/// Throws `weak_passphrase` if a custom passphrase is below the strength floor.
#[wasm_bindgen(js_name = checkPassphrase)]
pub fn check_passphrase(passphrase: String) -> Result<(), JsValue> {
    accepted_passphrase(Zeroizing::new(passphrase)).map(drop)
}

/// The conservative strength estimate of a passphrase, in bits (for a strength meter).
#[wasm_bindgen(js_name = passphraseBits)]
pub fn passphrase_bits(passphrase: String) -> u32 {
    backup::estimate_bits(&Zeroizing::new(passphrase))
}

// --- Identity and key backup -----------------------------------------------------------------

/// What the server keeps for the user, always stored together: the key backup and the trust
/// store sealed under the backup's storage key.
#[wasm_bindgen]
pub struct SealedKeys {
    backup: Vec<u8>,
    trust_store: Vec<u8>,
}

#[wasm_bindgen]
impl SealedKeys {
    /// The key backup (the identity sealed under the E2E passphrase).
    #[wasm_bindgen(getter)]
    pub fn backup(&self) -> Uint8Array {
        Uint8Array::from(self.backup.as_slice())
    }

    /// The trust store sealed under the backup's storage key.
    #[wasm_bindgen(getter, js_name = trustStore)]
    pub fn trust_store(&self) -> Uint8Array {
        Uint8Array::from(self.trust_store.as_slice())
    }
}

fn sealed_keys(backup: Vec<u8>, state: &UnlockedState) -> Result<SealedKeys, JsValue> {
    let trust_store = state
        .trust
        .seal(&state.storage_key, &state.owner_user_id)
        .map_err(trust_error)?;
    Ok(SealedKeys {
        backup,
        trust_store,
    })
}

/// A generated passphrase is accepted as typed; anything else must pass the strength floor.
fn accepted_passphrase(passphrase: Zeroizing<String>) -> Result<Passphrase, JsValue> {
    Passphrase::from_user(&passphrase).map_err(backup_error)
}

/// Creates a new identity sealed under `passphrase` (generated, or custom above the floor) and
/// keeps it unlocked with an empty trust store. Returns both blobs for the server.
#[wasm_bindgen(js_name = createIdentity)]
pub fn create_identity(
    owner_user_id: &str,
    passphrase: String,
    insecure_test_params: bool,
) -> Result<SealedKeys, JsValue> {
    let passphrase = accepted_passphrase(Zeroizing::new(passphrase))?;
    let (blob, unlocked) = create_backup(
        Identity::generate(),
        &passphrase,
        params(insecure_test_params),
    )
    .map_err(backup_error)?;
    with_registry(|registry| {
        *registry = Registry::default();
        let state = UnlockedState {
            identity: unlocked.identity,
            otr: unlocked.otr,
            storage_key: unlocked.storage_key,
            trust: TrustStore::new(),
            owner_user_id: owner_user_id.to_owned(),
        };
        let sealed = sealed_keys(blob, &state)?;
        registry.unlocked = Some(state);
        Ok(sealed)
    })
}

/// What an unlock found out about the backup.
#[wasm_bindgen]
pub struct UnlockResult {
    needs_rekey: bool,
    upgraded_backup: Option<Vec<u8>>,
}

#[wasm_bindgen]
impl UnlockResult {
    /// The backup's key-derivation parameters are weaker than today's defaults: re-seal it with
    /// `changePassphrase`.
    #[wasm_bindgen(getter, js_name = needsRekey)]
    pub fn needs_rekey(&self) -> bool {
        self.needs_rekey
    }

    /// Set when the backup predates encrypted rooms: the identity got a room agreement key, and
    /// these are the re-sealed backup bytes. Store them with the public keys (`publicKeys()`, now
    /// with the agreement key) and the trust store (`PUT /api/v1/e2e/keys`).
    #[wasm_bindgen(getter, js_name = upgradedBackup)]
    pub fn upgraded_backup(&self) -> Option<Uint8Array> {
        self.upgraded_backup.as_deref().map(Uint8Array::from)
    }
}

/// Installs an unlocked identity in the registry, dropping every session and key ring of the
/// previous one.
fn install(unlocked: Unlocked, trust: TrustStore, owner_user_id: &str) -> UnlockResult {
    let result = UnlockResult {
        needs_rekey: unlocked.kdf.weaker_than_default(),
        upgraded_backup: unlocked.upgraded_backup,
    };
    REGISTRY.with(|registry| {
        *registry.borrow_mut() = Registry {
            unlocked: Some(UnlockedState {
                identity: unlocked.identity,
                otr: unlocked.otr,
                storage_key: unlocked.storage_key,
                trust,
                owner_user_id: owner_user_id.to_owned(),
            }),
            ..Registry::default()
        };
    });
    result
}

/// Enters the E2E key: opens the key backup and the sealed trust store. A missing trust store is
/// refused (`trust_store_missing`) unless `start_empty_trust_store` says the user agreed to lose
/// their pins and verified marks — otherwise a server could make the client forget every pin by
/// withholding the store. See [`UnlockResult`] for what the caller must act on.
#[wasm_bindgen]
pub fn unlock(
    owner_user_id: &str,
    key_backup: &[u8],
    passphrase: String,
    sealed_trust_store: Option<Vec<u8>>,
    start_empty_trust_store: bool,
) -> Result<UnlockResult, JsValue> {
    let passphrase = Zeroizing::new(passphrase);
    let unlocked = unlock_backup(key_backup, &passphrase).map_err(backup_error)?;
    let trust = match sealed_trust_store {
        Some(sealed) if !sealed.is_empty() => {
            TrustStore::open(&unlocked.storage_key, owner_user_id, &sealed).map_err(trust_error)?
        }
        _ if start_empty_trust_store => TrustStore::new(),
        _ => {
            return Err(error(
                "trust_store_missing",
                "the trust store that goes with this key backup is missing",
            ));
        }
    };
    Ok(install(unlocked, trust, owner_user_id))
}

/// The unlocked identity's storage key, for "remember on this device": the page wraps it with a
/// non-extractable WebCrypto key and keeps only the wrapped form. It opens the server's key
/// backup without the passphrase until the passphrase changes or the identity is reset.
#[wasm_bindgen(js_name = deviceKey)]
pub fn device_key() -> Result<Uint8Array, JsValue> {
    with_registry(|registry| {
        let state = registry.unlocked.as_ref().ok_or_else(locked)?;
        Ok(Uint8Array::from(state.storage_key.to_bytes().as_slice()))
    })
}

/// Unlocks with a remembered device key instead of the passphrase (no Argon2). A key from before a
/// passphrase change or reset fails with `wrong_passphrase`: forget it and ask for the
/// passphrase. The trust store is required, as in [`unlock`]; so is acting on the
/// [`UnlockResult`].
#[wasm_bindgen(js_name = unlockWithDeviceKey)]
pub fn unlock_with_device_key(
    owner_user_id: &str,
    key_backup: &[u8],
    device_key: &[u8],
    sealed_trust_store: &[u8],
) -> Result<UnlockResult, JsValue> {
    let storage_key = StorageKey::from_bytes(device_key).map_err(backup_error)?;
    let unlocked =
        backup::unlock_backup_with_storage_key(key_backup, storage_key).map_err(backup_error)?;
    let trust = TrustStore::open(&unlocked.storage_key, owner_user_id, sealed_trust_store)
        .map_err(trust_error)?;
    Ok(install(unlocked, trust, owner_user_id))
}

/// Forgets everything secret: identity, trust store, every OTR session and every room key ring
/// (keys zeroized).
#[wasm_bindgen]
pub fn lock() {
    REGISTRY.with(|registry| *registry.borrow_mut() = Registry::default());
}

/// Whether an identity is unlocked in this page.
#[wasm_bindgen(js_name = isUnlocked)]
pub fn is_unlocked() -> bool {
    REGISTRY.with(|registry| registry.borrow().unlocked.is_some())
}

/// The public keys to publish, as JSON `{"curve25519", "ed25519", "agreement_key",
/// "agreement_signature"}` (unpadded base64). The agreement key is signed for the owner's user
/// id, so the owner id given at unlock must be the server's (decimal) user id.
#[wasm_bindgen(js_name = publicKeys)]
pub fn public_keys() -> Result<String, JsValue> {
    with_registry(|registry| {
        let state = registry.unlocked.as_ref().ok_or_else(locked)?;
        public_keys_json(&state.identity, &state.owner_user_id)
    })
}

/// Re-seals the identity under a new passphrase and a new storage key, and the trust store under
/// the new key. Store both returned blobs together.
#[wasm_bindgen(js_name = changePassphrase)]
pub fn change_passphrase(
    new_passphrase: String,
    insecure_test_params: bool,
) -> Result<SealedKeys, JsValue> {
    let passphrase = accepted_passphrase(Zeroizing::new(new_passphrase))?;
    with_registry(|registry| {
        let state = registry.unlocked.as_mut().ok_or_else(locked)?;
        let (blob, storage_key) =
            backup::change_passphrase(&state.identity, &passphrase, params(insecure_test_params))
                .map_err(backup_error)?;
        state.storage_key = storage_key;
        sealed_keys(blob, state)
    })
}

/// Resets the E2E identity: new keys under `passphrase` and a new storage key (peers will see a
/// changed safety number; publish the new public keys). The trust store is kept and re-sealed.
/// Ends every OTR session.
#[wasm_bindgen(js_name = resetIdentity)]
pub fn reset_identity(
    passphrase: String,
    insecure_test_params: bool,
) -> Result<SealedKeys, JsValue> {
    let passphrase = accepted_passphrase(Zeroizing::new(passphrase))?;
    let (blob, unlocked) = create_backup(
        Identity::generate(),
        &passphrase,
        params(insecure_test_params),
    )
    .map_err(backup_error)?;
    with_registry(|registry| {
        let Registry {
            unlocked: state,
            sessions,
            ..
        } = registry;
        let state = state.as_mut().ok_or_else(locked)?;
        sessions.clear();
        state.identity = unlocked.identity;
        state.otr = unlocked.otr;
        state.storage_key = unlocked.storage_key;
        sealed_keys(blob, state)
    })
}

// --- Trust store and safety numbers -----------------------------------------------------------

/// Seals the trust store for the server to keep (after pins or verified marks changed).
#[wasm_bindgen(js_name = sealTrustStore)]
pub fn seal_trust_store() -> Result<Uint8Array, JsValue> {
    with_registry(|registry| {
        let state = registry.unlocked.as_ref().ok_or_else(locked)?;
        let sealed = state
            .trust
            .seal(&state.storage_key, &state.owner_user_id)
            .map_err(trust_error)?;
        Ok(Uint8Array::from(sealed.as_slice()))
    })
}

/// Records the keys the directory serves for a peer. Returns `"pinned_now"`, `"matches"`,
/// `"matches_verified"`, `"changed"` or `"changed_verified"` (a verified key changed).
#[wasm_bindgen(js_name = observePeer)]
pub fn observe_peer(user_id: &str, curve25519: &str, ed25519: &str) -> Result<String, JsValue> {
    let keys = peer_keys(curve25519, ed25519)?;
    with_registry(|registry| {
        let state = registry.unlocked.as_mut().ok_or_else(locked)?;
        Ok(match state.trust.observe(user_id, keys) {
            TrustDecision::PinnedNow => "pinned_now",
            TrustDecision::Matches { verified: false } => "matches",
            TrustDecision::Matches { verified: true } => "matches_verified",
            TrustDecision::Changed {
                was_verified: false,
                ..
            } => "changed",
            TrustDecision::Changed {
                was_verified: true, ..
            } => "changed_verified",
        }
        .to_owned())
    })
}

/// The user acknowledges a peer's changed key: re-pin it (unverified).
#[wasm_bindgen(js_name = acknowledgeChange)]
pub fn acknowledge_change(user_id: &str, curve25519: &str, ed25519: &str) -> Result<(), JsValue> {
    let keys = peer_keys(curve25519, ed25519)?;
    with_registry(|registry| {
        let state = registry.unlocked.as_mut().ok_or_else(locked)?;
        state
            .trust
            .acknowledge_change(user_id, keys)
            .map_err(trust_error)
    })
}

/// The user compared safety numbers with the peer and they matched.
#[wasm_bindgen(js_name = markVerified)]
pub fn mark_verified(user_id: &str, curve25519: &str, ed25519: &str) -> Result<(), JsValue> {
    let keys = peer_keys(curve25519, ed25519)?;
    with_registry(|registry| {
        let state = registry.unlocked.as_mut().ok_or_else(locked)?;
        state
            .trust
            .mark_verified(user_id, keys)
            .map_err(trust_error)
    })
}

/// Removes the "verified" mark of a peer.
#[wasm_bindgen(js_name = clearVerified)]
pub fn clear_verified(user_id: &str) -> Result<(), JsValue> {
    with_registry(|registry| {
        let state = registry.unlocked.as_mut().ok_or_else(locked)?;
        state.trust.clear_verified(user_id).map_err(trust_error)
    })
}

/// Whether the peer's pinned key is marked verified.
#[wasm_bindgen(js_name = isVerified)]
pub fn is_verified(user_id: &str) -> Result<bool, JsValue> {
    with_registry(|registry| {
        let state = registry.unlocked.as_ref().ok_or_else(locked)?;
        Ok(state.trust.is_verified(user_id))
    })
}

/// The safety number with a pinned peer, as 12 groups of 5 digits separated by spaces.
#[wasm_bindgen(js_name = safetyNumber)]
pub fn safety_number(peer_user_id: &str) -> Result<String, JsValue> {
    with_registry(|registry| {
        let state = registry.unlocked.as_ref().ok_or_else(locked)?;
        let peer = state
            .trust
            .pinned(peer_user_id)
            .ok_or_else(|| trust_error(TrustError::NotPinned))?;
        let own = state.identity.public();
        Ok(SafetyNumber::new(&state.owner_user_id, &own, peer_user_id, &peer).to_string())
    })
}

/// The safety number of any two users and keys (for tests and for showing a changed number).
#[wasm_bindgen(js_name = safetyNumberOf)]
pub fn safety_number_of(
    user_a: &str,
    curve25519_a: &str,
    ed25519_a: &str,
    user_b: &str,
    curve25519_b: &str,
    ed25519_b: &str,
) -> Result<String, JsValue> {
    let a = peer_keys(curve25519_a, ed25519_a)?;
    let b = peer_keys(curve25519_b, ed25519_b)?;
    Ok(SafetyNumber::new(user_a, &a, user_b, &b)
        .digits()
        .to_owned())
}

// --- Off the record ---------------------------------------------------------------------------

/// Opens (or returns the existing) OTR conversation of a DM room.
#[wasm_bindgen(js_name = otrOpen)]
pub fn otr_open(room_id: &str, local_user_id: &str, peer_user_id: &str) -> Result<(), JsValue> {
    with_registry(|registry| {
        if !registry.sessions.contains_key(room_id) {
            let session =
                OtrSession::new(room_id, local_user_id, peer_user_id).map_err(otr_error)?;
            registry.sessions.insert(room_id.to_owned(), session);
        }
        Ok(())
    })
}

/// Drops a room's OTR conversation: its keys and any pending one-time key.
#[wasm_bindgen(js_name = otrDestroy)]
pub fn otr_destroy(room_id: &str) {
    REGISTRY.with(|registry| {
        let mut registry = registry.borrow_mut();
        let Registry {
            unlocked, sessions, ..
        } = &mut *registry;
        if let Some(session) = sessions.remove(room_id) {
            match unlocked {
                Some(state) => session.discard(&mut state.otr),
                // Locked: the identity that held any one-time key is already gone.
                None => drop(session),
            }
        }
    });
}

/// How many one-time key secrets the in-memory OTR identity holds (0 unless a handshake waits).
#[wasm_bindgen(js_name = otrOneTimeKeyCount)]
pub fn otr_one_time_key_count() -> Result<u32, JsValue> {
    with_registry(|registry| {
        let state = registry.unlocked.as_ref().ok_or_else(locked)?;
        Ok(state.otr.one_time_key_count() as u32)
    })
}

/// The state of a room's OTR conversation: `"not_started"`, `"offered"`, `"invited"`,
/// `"establishing"`, `"established"`, `"ended"`, `"declined"`, `"timed_out"` or `"failed"`.
#[wasm_bindgen(js_name = otrState)]
pub fn otr_state(room_id: &str) -> String {
    REGISTRY.with(|registry| {
        registry
            .borrow()
            .sessions
            .get(room_id)
            .map_or("not_started", |session| state_name(session.state()))
            .to_owned()
    })
}

/// Whether a room's OTR conversation holds any key material.
#[wasm_bindgen(js_name = otrHoldsKeys)]
pub fn otr_holds_keys(room_id: &str) -> bool {
    REGISTRY.with(|registry| {
        registry
            .borrow()
            .sessions
            .get(room_id)
            .is_some_and(OtrSession::holds_keys)
    })
}

/// The current session id of a room (32 hex digits), if any.
#[wasm_bindgen(js_name = otrSessionId)]
pub fn otr_session_id(room_id: &str) -> Option<String> {
    REGISTRY.with(|registry| {
        registry
            .borrow()
            .sessions
            .get(room_id)
            .and_then(OtrSession::session_id)
            .map(|id| id.to_hex())
    })
}

/// The outcome of an OTR call: packets for the relay and events to show.
#[wasm_bindgen]
pub struct OtrStep {
    packets: Array,
    events: Array,
    message_id: Option<f64>,
}

#[wasm_bindgen]
impl OtrStep {
    /// Encoded packets (`Uint8Array`s) to send through the relay, in order.
    #[wasm_bindgen(getter)]
    pub fn packets(&self) -> Array {
        self.packets.clone()
    }

    /// Events to show, in order: objects with a `type` of `"state"` (`state`, `reason`),
    /// `"invited"` (`sessionId`, `refresh`), `"refresh_accepted"` (`sessionId`), `"message"`
    /// (`id`, `text`), `"delivered"` (`id`) or `"file"` (`id`, `name`, `mediaType`, `data`).
    #[wasm_bindgen(getter)]
    pub fn events(&self) -> Array {
        self.events.clone()
    }

    /// For sends: the id of the message or file, which a later `"delivered"` event names.
    #[wasm_bindgen(getter, js_name = messageId)]
    pub fn message_id(&self) -> Option<f64> {
        self.message_id
    }
}

fn set(object: &Object, key: &str, value: JsValue) {
    let _ = Reflect::set(object, &key.into(), &value);
}

fn state_name(state: OtrState) -> &'static str {
    match state {
        OtrState::NotStarted => "not_started",
        OtrState::Offered => "offered",
        OtrState::Invited => "invited",
        OtrState::Establishing => "establishing",
        OtrState::Established => "established",
        OtrState::Ended(_) => "ended",
        OtrState::Declined => "declined",
        OtrState::TimedOut => "timed_out",
        OtrState::Failed(_) => "failed",
    }
}

fn state_reason(state: OtrState) -> Option<&'static str> {
    Some(match state {
        OtrState::Ended(EndReason::EndedHere) => "ended_here",
        OtrState::Ended(EndReason::EndedByPeer {
            authenticated: true,
        }) => "ended_by_peer",
        OtrState::Ended(EndReason::EndedByPeer {
            authenticated: false,
        }) => "ended_unauthenticated",
        OtrState::Ended(EndReason::CancelledHere) => "cancelled_here",
        OtrState::Ended(EndReason::CancelledByPeer) => "cancelled_by_peer",
        OtrState::Failed(FailureReason::HandshakeRejected) => "handshake_rejected",
        OtrState::Failed(FailureReason::BindingMismatch) => "binding_mismatch",
        OtrState::Failed(FailureReason::ConfirmationMismatch) => "confirmation_mismatch",
        OtrState::Failed(FailureReason::PeerRejectedHandshake) => "peer_rejected_handshake",
        OtrState::Failed(FailureReason::SessionLost) => "session_lost",
        OtrState::Failed(FailureReason::PeerDisconnected) => "peer_disconnected",
        OtrState::Failed(FailureReason::NoCommonVersion) => "no_common_version",
        OtrState::Failed(FailureReason::ProtocolViolation) => "protocol_violation",
        OtrState::Failed(FailureReason::PeerKeyChanged) => "peer_key_changed",
        _ => return None,
    })
}

fn packets_array(packets: &[Packet]) -> Array {
    packets
        .iter()
        .map(|packet| JsValue::from(Uint8Array::from(packet.encode().as_slice())))
        .collect()
}

fn to_js(step: Step, message_id: Option<u64>) -> OtrStep {
    let events = Array::new();
    for event in step.events {
        let object = Object::new();
        match event {
            OtrEvent::StateChanged(state) => {
                set(&object, "type", "state".into());
                set(&object, "state", state_name(state).into());
                if let Some(reason) = state_reason(state) {
                    set(&object, "reason", reason.into());
                }
            }
            OtrEvent::Invited {
                session_id,
                refresh,
            } => {
                set(&object, "type", "invited".into());
                set(&object, "sessionId", session_id.to_hex().into());
                set(&object, "refresh", refresh.into());
            }
            OtrEvent::RefreshAccepted { session_id } => {
                set(&object, "type", "refresh_accepted".into());
                set(&object, "sessionId", session_id.to_hex().into());
            }
            OtrEvent::Message { id, text } => {
                set(&object, "type", "message".into());
                set(&object, "id", (id as f64).into());
                set(&object, "text", text.as_str().into());
            }
            OtrEvent::Delivered { id } => {
                set(&object, "type", "delivered".into());
                set(&object, "id", (id as f64).into());
            }
            OtrEvent::File {
                id,
                name,
                media_type,
                data,
            } => {
                set(&object, "type", "file".into());
                set(&object, "id", (id as f64).into());
                set(&object, "name", name.into());
                set(&object, "mediaType", media_type.into());
                set(&object, "data", Uint8Array::from(data.as_slice()).into());
            }
        }
        events.push(&object);
    }
    OtrStep {
        packets: packets_array(&step.send),
        events,
        message_id: message_id.map(|id| id as f64),
    }
}

/// Runs `action` on a room's session with the unlocked keys.
fn with_session(
    room_id: &str,
    action: impl FnOnce(&mut OtrSession, OtrKeys<'_>) -> Result<Step, OtrError>,
) -> Result<OtrStep, JsValue> {
    with_registry(|registry| {
        let state = registry.unlocked.as_mut().ok_or_else(locked)?;
        let session = registry
            .sessions
            .get_mut(room_id)
            .ok_or_else(|| error("no_session", "open the room's OTR conversation first"))?;
        let keys = OtrKeys {
            identity: &mut state.otr,
            trust: &state.trust,
        };
        action(session, keys)
            .map(|step| to_js(step, None))
            .map_err(otr_error)
    })
}

/// Start OTR: invite the peer.
#[wasm_bindgen(js_name = otrStart)]
pub fn otr_start(room_id: &str) -> Result<OtrStep, JsValue> {
    with_session(room_id, |session, keys| session.start(keys))
}

/// Accept the peer's invitation.
#[wasm_bindgen(js_name = otrAccept)]
pub fn otr_accept(room_id: &str) -> Result<OtrStep, JsValue> {
    with_session(room_id, |session, keys| session.accept(keys))
}

/// Decline the peer's invitation.
#[wasm_bindgen(js_name = otrDecline)]
pub fn otr_decline(room_id: &str) -> Result<OtrStep, JsValue> {
    with_session(room_id, |session, keys| session.decline(keys))
}

/// Withdraw our invitation or abandon the handshake.
#[wasm_bindgen(js_name = otrCancel)]
pub fn otr_cancel(room_id: &str) -> Result<OtrStep, JsValue> {
    with_session(room_id, |session, keys| session.cancel(keys))
}

/// End OTR.
#[wasm_bindgen(js_name = otrEnd)]
pub fn otr_end(room_id: &str) -> Result<OtrStep, JsValue> {
    with_session(room_id, |session, keys| session.end(keys))
}

/// Refresh Keys.
#[wasm_bindgen(js_name = otrRefresh)]
pub fn otr_refresh(room_id: &str) -> Result<OtrStep, JsValue> {
    with_session(room_id, |session, keys| session.refresh(keys))
}

/// The invitation timed out.
#[wasm_bindgen(js_name = otrExpire)]
pub fn otr_expire(room_id: &str) -> Result<OtrStep, JsValue> {
    with_session(room_id, |session, keys| session.expire(keys))
}

/// The relay reports that the peer's connection closed.
#[wasm_bindgen(js_name = otrPeerDisconnected)]
pub fn otr_peer_disconnected(room_id: &str) -> Result<OtrStep, JsValue> {
    with_session(room_id, |session, keys| Ok(session.peer_disconnected(keys)))
}

/// A packet from the relay for this room.
#[wasm_bindgen(js_name = otrReceive)]
pub fn otr_receive(room_id: &str, packet: &[u8]) -> Result<OtrStep, JsValue> {
    with_session(room_id, |session, keys| session.receive(keys, packet))
}

/// Encrypts a text message; `messageId` of the result names it in a later `"delivered"` event.
#[wasm_bindgen(js_name = otrSendText)]
pub fn otr_send_text(room_id: &str, text: String) -> Result<OtrStep, JsValue> {
    let text = Zeroizing::new(text);
    send_content(room_id, |session| {
        session
            .send_text(&text)
            .map(|(id, packet)| (id, vec![packet]))
    })
}

/// Encrypts a small file (at most 4 MiB) as chunks.
#[wasm_bindgen(js_name = otrSendFile)]
pub fn otr_send_file(
    room_id: &str,
    name: &str,
    media_type: &str,
    data: Vec<u8>,
) -> Result<OtrStep, JsValue> {
    let data = Zeroizing::new(data);
    send_content(room_id, |session| {
        session.send_file(name, media_type, &data)
    })
}

/// Encrypts content in a room's established session; the step carries its id.
fn send_content(
    room_id: &str,
    encrypt: impl FnOnce(&mut OtrSession) -> Result<(u64, Vec<Packet>), OtrError>,
) -> Result<OtrStep, JsValue> {
    with_registry(|registry| {
        let session = registry
            .sessions
            .get_mut(room_id)
            .ok_or_else(|| error("no_session", "open the room's OTR conversation first"))?;
        let (id, send) = encrypt(session).map_err(otr_error)?;
        Ok(to_js(
            Step {
                send,
                events: Vec::new(),
            },
            Some(id),
        ))
    })
}

/// The answer to a packet for a room with no OTR conversation in this page (after a reload):
/// "lost session" for frames, nothing for other packets.
#[wasm_bindgen(js_name = otrReplyToUnknown)]
pub fn otr_reply_to_unknown(packet: &[u8]) -> Option<Uint8Array> {
    reply_to_unknown_session(packet).map(|reply| Uint8Array::from(reply.encode().as_slice()))
}

// --- Encrypted rooms ----------------------------------------------------------------------------

fn room_error(err: RoomError) -> JsValue {
    let code = match &err {
        RoomError::KeyNotShared(_) => "e2e_key_not_shared",
        RoomError::Tampered => "e2e_tampered",
        RoomError::WrongSender => "e2e_wrong_sender",
        RoomError::UnknownVersion(_) => "e2e_unknown_version",
        RoomError::Malformed => "e2e_malformed",
        RoomError::TooLarge => "e2e_too_large",
        RoomError::EmptyContent => "e2e_empty_content",
        RoomError::WrongRoom => "e2e_share_wrong_room",
        RoomError::WrongDistributor => "e2e_share_wrong_distributor",
        RoomError::DistributorNotMember => "e2e_share_distributor_not_member",
        RoomError::NotARecipient => "e2e_share_not_recipient",
        RoomError::MembersMismatch => "e2e_share_members_mismatch",
        RoomError::InvalidMembers => "e2e_invalid_members",
        RoomError::Identity(IdentityError::BadAgreementSignature) => "e2e_bad_agreement_signature",
        RoomError::Identity(_) => "invalid_public_key",
        RoomError::Randomness => "no_randomness",
    };
    error(code, &err.to_string())
}

fn room_locked() -> JsValue {
    error("e2e_locked", "enter your E2E key to read encrypted rooms")
}

fn malformed(what: &str) -> JsValue {
    error("e2e_malformed", what)
}

/// A member as the directory publishes them (`membersJson`, `distributorJson`); the user id is
/// the server's number (plain serde derives: an untagged number-or-string id cost ~10 KiB of
/// wasm).
#[derive(Deserialize)]
struct MemberJson {
    user_id: i64,
    ed25519: String,
    agreement_key: String,
    agreement_signature: String,
}

/// Verifies a member's agreement key against their Ed25519 key. When the page has pinned that
/// user, the given Ed25519 key must be the pinned one (`key_changed` otherwise), so a directory
/// that swaps keys is caught here too, not only by the caller.
fn verified_member(state: &UnlockedState, member: &MemberJson) -> Result<Member, JsValue> {
    let ed25519 = pinned_ed25519(state, member.user_id, &member.ed25519)?;
    let signed =
        SignedAgreementKey::from_base64(&member.agreement_key, &member.agreement_signature)
            .map_err(|err| room_error(err.into()))?;
    Member::verify(member.user_id, ed25519, &signed).map_err(room_error)
}

/// Parses an Ed25519 key and checks it against what this page knows for the user: the trust
/// store's pin, or for the page's own user the unlocked identity (`key_changed` if it differs).
fn pinned_ed25519(
    state: &UnlockedState,
    user_id: UserId,
    ed25519: &str,
) -> Result<sotto_crypto::vodozemac::Ed25519PublicKey, JsValue> {
    let key = ed25519_from_base64(ed25519)
        .map_err(|_| error("invalid_public_key", "invalid public key"))?;
    let known = if user_id.to_string() == state.owner_user_id {
        Some(state.identity.public().ed25519)
    } else {
        state
            .trust
            .pinned(&user_id.to_string())
            .map(|pinned| pinned.ed25519)
    };
    if known.is_some_and(|known| known != key) {
        return Err(trust_error(TrustError::KeyChangedUnacknowledged));
    }
    Ok(key)
}

fn parse_json<'a, T: Deserialize<'a>>(text: &'a str, what: &str) -> Result<T, JsValue> {
    serde_json::from_str(text).map_err(|_| malformed(what))
}

fn base64_bytes(text: &str, what: &str) -> Result<Vec<u8>, JsValue> {
    rooms::from_base64(text).map_err(|_| malformed(what))
}

#[derive(Serialize)]
struct ShareJson {
    user_id: i64,
    share: String,
}

#[derive(Serialize)]
struct CreatedKeyJson {
    key_id: String,
    shares: Vec<ShareJson>,
}

/// Creates a new room key for `membersJson` — `[{"user_id", "ed25519", "agreement_key",
/// "agreement_signature"}]`, the caller included — after verifying every agreement signature
/// (and that each Ed25519 key is the pinned one, for pinned users). Adds the key to this page's
/// ring for the room and returns `{"key_id", "shares": [{"user_id", "share"}]}` (standard
/// base64) for `PUT /api/v1/rooms/{id}/keys`.
#[wasm_bindgen(js_name = roomCreateKey)]
pub fn room_create_key(
    room_id: &str,
    local_user_id: &str,
    members_json: &str,
) -> Result<String, JsValue> {
    let room = numeric_id(room_id)?;
    let local = numeric_id(local_user_id)?;
    let members: Vec<MemberJson> = parse_json(members_json, "membersJson is not a member list")?;
    with_registry(|registry| {
        let state = registry.unlocked.as_ref().ok_or_else(room_locked)?;
        let members = members
            .iter()
            .map(|member| verified_member(state, member))
            .collect::<Result<Vec<_>, _>>()?;
        let key = RoomKey::generate().map_err(room_error)?;
        let shares = rooms::create_shares(&state.identity, room, local, &key, &members)
            .map_err(room_error)?;
        let created = CreatedKeyJson {
            key_id: key.id().to_base64(),
            shares: shares
                .into_iter()
                .map(|(user_id, share)| ShareJson {
                    user_id,
                    share: rooms::to_base64(&share),
                })
                .collect(),
        };
        registry
            .rings
            .entry(room)
            .or_insert_with(|| RoomKeyRing::new(room))
            .insert(key);
        serde_json::to_string(&created).map_err(|_| malformed("cannot encode the shares"))
    })
}

#[derive(Serialize)]
struct AddedShareJson {
    key_id: String,
    distributor_id: i64,
    recipients: Vec<i64>,
}

/// Opens a share addressed to this user and adds its key to the room's ring. `distributorJson`
/// has the shape of a member of [`room_create_key`]; `expectedMembersJson` (an array of user
/// ids as numbers, or null) is the membership the page knows for the key's epoch: when given, the share's
/// recipients must equal it. Returns `{"key_id", "distributor_id", "recipients"}`.
#[wasm_bindgen(js_name = roomAddShare)]
pub fn room_add_share(
    room_id: &str,
    local_user_id: &str,
    share_b64: &str,
    distributor_json: &str,
    expected_members_json: Option<String>,
) -> Result<String, JsValue> {
    let room = numeric_id(room_id)?;
    let local = numeric_id(local_user_id)?;
    let share = base64_bytes(share_b64, "the share is not base64")?;
    let distributor: MemberJson = parse_json(distributor_json, "distributorJson is not a member")?;
    let expected = expected_members_json
        .map(|json| parse_json::<Vec<i64>>(&json, "expectedMembersJson is not a list of user ids"))
        .transpose()?;
    with_registry(|registry| {
        let state = registry.unlocked.as_ref().ok_or_else(room_locked)?;
        let distributor = verified_member(state, &distributor)?;
        let (key, header) = rooms::open_share(
            &state.identity,
            room,
            local,
            &share,
            &distributor,
            expected.as_deref(),
        )
        .map_err(room_error)?;
        registry
            .rings
            .entry(room)
            .or_insert_with(|| RoomKeyRing::new(room))
            .insert(key);
        serde_json::to_string(&AddedShareJson {
            key_id: header.key_id.to_base64(),
            distributor_id: header.distributor,
            recipients: header.recipients,
        })
        .map_err(|_| malformed("cannot encode the share header"))
    })
}

/// Encrypts and signs `plaintextJson` (`{"text"}` or `{"file": {...}, "text"?}`) under the key
/// `keyIdB64` of the room. `senderUserId` must be this page's user. Returns the envelope in
/// standard base64.
#[wasm_bindgen(js_name = roomEncrypt)]
pub fn room_encrypt(
    room_id: &str,
    key_id_b64: &str,
    sender_user_id: &str,
    plaintext_json: String,
) -> Result<String, JsValue> {
    let plaintext_json = Zeroizing::new(plaintext_json);
    let room = numeric_id(room_id)?;
    let sender = numeric_id(sender_user_id)?;
    let key_id = KeyId::from_base64(key_id_b64).map_err(room_error)?;
    let content: RoomContent = parse_json(&plaintext_json, "the plaintext is not message JSON")?;
    with_registry(|registry| {
        let state = registry.unlocked.as_ref().ok_or_else(room_locked)?;
        if numeric_id(&state.owner_user_id)? != sender {
            return Err(room_error(RoomError::WrongSender));
        }
        let ring = registry
            .rings
            .get(&room)
            .ok_or_else(|| room_error(RoomError::KeyNotShared(key_id)))?;
        ring.encrypt(&state.identity, key_id, sender, &content)
            .map(|envelope| rooms::to_base64(&envelope))
            .map_err(room_error)
    })
}

#[derive(Serialize)]
struct DecryptedJson<'a> {
    key_id: String,
    sender_id: i64,
    content: &'a RoomContent,
}

/// Decrypts an envelope that the server says `authorUserId` wrote; `authorEd25519` is the
/// author's pinned Ed25519 key (checked against this page's pin too). Returns `{"key_id",
/// "sender_id", "content"}`. Errors: `e2e_key_not_shared`, `e2e_locked`, `e2e_tampered`,
/// `e2e_wrong_sender`, `e2e_unknown_version`, `e2e_malformed` (and `key_changed` when the
/// given key is not the pinned one).
#[wasm_bindgen(js_name = roomDecrypt)]
pub fn room_decrypt(
    room_id: &str,
    envelope_b64: &str,
    author_user_id: &str,
    author_ed25519: &str,
) -> Result<String, JsValue> {
    let room = numeric_id(room_id)?;
    let author = numeric_id(author_user_id)?;
    let envelope = base64_bytes(envelope_b64, "the envelope is not base64")?;
    with_registry(|registry| {
        let state = registry.unlocked.as_ref().ok_or_else(room_locked)?;
        let author_key = pinned_ed25519(state, author, author_ed25519)?;
        let Some(ring) = registry.rings.get(&room) else {
            let key_id = rooms::envelope_key_id(&envelope).map_err(room_error)?;
            return Err(room_error(RoomError::KeyNotShared(key_id)));
        };
        let decrypted = ring
            .decrypt(&envelope, author, &author_key)
            .map_err(room_error)?;
        serde_json::to_string(&DecryptedJson {
            key_id: decrypted.key_id.to_base64(),
            sender_id: decrypted.sender,
            content: &decrypted.content,
        })
        .map_err(|_| malformed("cannot encode the message"))
    })
}

/// The key id of an envelope (standard base64), read from its cleartext header.
#[wasm_bindgen(js_name = roomEnvelopeKeyId)]
pub fn room_envelope_key_id(envelope_b64: &str) -> Result<String, JsValue> {
    let envelope = base64_bytes(envelope_b64, "the envelope is not base64")?;
    rooms::envelope_key_id(&envelope)
        .map(|id| id.to_base64())
        .map_err(room_error)
}

/// Whether this page holds the room key `keyIdB64` for the room.
#[wasm_bindgen(js_name = roomHasKey)]
pub fn room_has_key(room_id: &str, key_id_b64: &str) -> Result<bool, JsValue> {
    let room = numeric_id(room_id)?;
    let key_id = KeyId::from_base64(key_id_b64).map_err(room_error)?;
    Ok(REGISTRY.with(|registry| {
        registry
            .borrow()
            .rings
            .get(&room)
            .is_some_and(|ring| ring.contains(key_id))
    }))
}

/// Drops a room's key ring (its keys are zeroized); the shares on the server can refill it.
#[wasm_bindgen(js_name = roomForget)]
pub fn room_forget(room_id: &str) -> Result<(), JsValue> {
    let room = numeric_id(room_id)?;
    REGISTRY.with(|registry| drop(registry.borrow_mut().rings.remove(&room)));
    Ok(())
}

fn file_error(err: FileError) -> JsValue {
    let code = match err {
        FileError::HashMismatch => "e2e_file_hash_mismatch",
        FileError::Tampered => "e2e_tampered",
        FileError::Malformed => "e2e_malformed",
        FileError::TooLarge => "e2e_too_large",
        FileError::Randomness => "no_randomness",
    };
    error(code, &err.to_string())
}

/// An encrypted file: the bytes to upload, and what the message must carry to open them.
#[wasm_bindgen]
pub struct EncryptedFile {
    ciphertext: Vec<u8>,
    key: Zeroizing<String>,
    nonce: String,
    sha256: String,
}

#[wasm_bindgen]
impl EncryptedFile {
    /// The bytes to upload.
    #[wasm_bindgen(getter)]
    pub fn ciphertext(&self) -> Uint8Array {
        Uint8Array::from(self.ciphertext.as_slice())
    }

    /// The file's key, standard base64 (goes into the encrypted message, nowhere else).
    #[wasm_bindgen(getter)]
    pub fn key(&self) -> String {
        self.key.as_str().to_owned()
    }

    /// The STREAM nonce, standard base64.
    #[wasm_bindgen(getter)]
    pub fn nonce(&self) -> String {
        self.nonce.clone()
    }

    /// SHA-256 of the ciphertext, standard base64.
    #[wasm_bindgen(getter)]
    pub fn sha256(&self) -> String {
        self.sha256.clone()
    }
}

/// Encrypts a file under a fresh key (chunked STREAM, see sotto-crypto's `files`).
#[wasm_bindgen(js_name = fileEncrypt)]
pub fn file_encrypt(bytes: &[u8]) -> Result<EncryptedFile, JsValue> {
    let encrypted = files::encrypt_file(bytes).map_err(file_error)?;
    Ok(EncryptedFile {
        key: Zeroizing::new(encrypted.key.to_base64()),
        nonce: rooms::to_base64(&encrypted.nonce),
        sha256: rooms::to_base64(&encrypted.sha256),
        ciphertext: encrypted.ciphertext,
    })
}

/// Checks the ciphertext's hash, then decrypts it. Errors: `e2e_file_hash_mismatch`,
/// `e2e_tampered` (altered, reordered or truncated), `e2e_malformed`.
#[wasm_bindgen(js_name = fileDecrypt)]
pub fn file_decrypt(
    ciphertext: &[u8],
    key: &str,
    nonce: &str,
    sha256: &str,
) -> Result<Uint8Array, JsValue> {
    let key = FileKey::from_base64(key).map_err(file_error)?;
    let nonce = base64_bytes(nonce, "the nonce is not base64")?;
    let sha256 = base64_bytes(sha256, "the hash is not base64")?;
    let plaintext = files::decrypt_file(ciphertext, &key, &nonce, &sha256).map_err(file_error)?;
    Ok(Uint8Array::from(plaintext.as_slice()))
}
