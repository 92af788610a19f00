//! A user's end-to-end identity: the long-term keys behind E2E and off-the-record.
//!
//! The identity is an Olm [`Account`]: a Curve25519 key used in the triple Diffie-Hellman of the
//! off-the-record handshake and an Ed25519 key. Beside it sits the *room agreement key*, an X25519
//! key pair for HPKE (room key shares, see [`crate::rooms`]): vodozemac does not expose the Olm
//! account's identity secret, so HPKE needs a key pair whose secret we hold. Its public half is
//! published as a [`SignedAgreementKey`], signed by the Ed25519 key, so pinning the Ed25519 key
//! (the trust store, safety numbers) covers it too. It exists in two forms after unlocking:
//!
//! - [`Identity`]: the exportable form. It never holds one-time or fallback keys, so a key backup
//!   can never carry the secret half of a one-time key that an OTR session used.
//! - [`OtrIdentity`]: an in-memory copy that mints one-time keys for off-the-record handshakes. It
//!   has no export, serialisation, `Clone` or `Debug`, and its keys are zeroized when it is dropped.

use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, Kem, Serializable};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use vodozemac::olm::{
    Account, AccountPickle, InboundCreationResult, PreKeyMessage, Session, SessionConfig,
    SessionCreationError,
};
use vodozemac::{Curve25519PublicKey, Ed25519PublicKey, Ed25519Signature};
use zeroize::Zeroizing;

use crate::codec::{CodecError, Reader};

/// The HPKE private key type of the agreement key.
pub(crate) type AgreementSecret = <X25519HkdfSha256 as Kem>::PrivateKey;
/// The HPKE public key type of the agreement key.
pub(crate) type AgreementPublic = <X25519HkdfSha256 as Kem>::PublicKey;

/// Identity secret format v2: `"SOTTOID" | 2 | agreement secret [32] | account pickle (JSON)`.
/// Format v1 is the bare account pickle (JSON, so it starts with `{` and never with the magic).
const SECRET_MAGIC: &[u8; 7] = b"SOTTOID";
const SECRET_VERSION: u8 = 2;
/// What the identity signs to publish its agreement key (with the user id and the key).
const AGREEMENT_CONTEXT: &[u8] = b"sotto room agreement key v1";

/// Errors about identities and public identity keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum IdentityError {
    /// The identity holds one-time or fallback keys and must not be exported.
    #[error("this identity holds one-time or fallback keys and cannot be exported")]
    HoldsEphemeralKeys,
    /// The serialised identity inside a backup is malformed.
    #[error("the stored identity is malformed")]
    MalformedIdentity,
    /// A public key is not valid (wrong length, bad encoding).
    #[error("invalid public key")]
    InvalidPublicKey,
    /// A published agreement key's signature does not verify against the pinned identity key
    /// for that user (or it is malformed).
    #[error("the room agreement key is not signed by this user's identity key")]
    BadAgreementSignature,
}

/// The public half of a room agreement key (X25519, 32 bytes).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct AgreementKey([u8; 32]);

impl AgreementKey {
    /// The raw 32 bytes.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0
    }

    /// The unpadded base64 form, as the key directory carries it.
    pub fn to_base64(&self) -> String {
        vodozemac::base64_encode(self.0)
    }

    /// Parses [`AgreementKey::to_base64`] (exactly 32 bytes).
    pub fn from_base64(input: &str) -> Result<Self, IdentityError> {
        fixed_from_base64::<32>(input).map(Self)
    }

    pub(crate) fn hpke(&self) -> Result<AgreementPublic, IdentityError> {
        AgreementPublic::from_bytes(&self.0).map_err(|_| IdentityError::InvalidPublicKey)
    }
}

impl std::fmt::Debug for AgreementKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AgreementKey({})", self.to_base64())
    }
}

/// A room agreement key as published: the key and the identity's Ed25519 signature over
/// `"sotto room agreement key v1" | user id (i64 big-endian) | key`. Only
/// [`SignedAgreementKey::verify`] turns it into a usable [`AgreementKey`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignedAgreementKey {
    key: AgreementKey,
    signature: [u8; 64],
}

impl SignedAgreementKey {
    /// The unpadded base64 forms `(agreement_key, agreement_signature)` of the key directory.
    pub fn to_base64(&self) -> (String, String) {
        (
            self.key.to_base64(),
            vodozemac::base64_encode(self.signature),
        )
    }

    /// Parses the two directory fields (32 and 64 bytes, unpadded base64). Nothing is verified
    /// yet.
    pub fn from_base64(key: &str, signature: &str) -> Result<Self, IdentityError> {
        Ok(Self {
            key: AgreementKey::from_base64(key)?,
            signature: fixed_from_base64::<64>(signature)
                .map_err(|_| IdentityError::BadAgreementSignature)?,
        })
    }

    /// The key, once its signature verifies against `signer` — the *pinned* Ed25519 key of
    /// `user_id` (from the trust store, never from the same directory answer unchecked).
    pub fn verify(
        &self,
        signer: &Ed25519PublicKey,
        user_id: i64,
    ) -> Result<AgreementKey, IdentityError> {
        let signature = Ed25519Signature::from_slice(&self.signature)
            .map_err(|_| IdentityError::BadAgreementSignature)?;
        signer
            .verify(&agreement_message(user_id, &self.key), &signature)
            .map_err(|_| IdentityError::BadAgreementSignature)?;
        Ok(self.key)
    }

    /// The key without checking the signature: only to compare or display it.
    pub fn unverified_key(&self) -> AgreementKey {
        self.key
    }
}

fn agreement_message(user_id: i64, key: &AgreementKey) -> Vec<u8> {
    let mut message = Vec::with_capacity(AGREEMENT_CONTEXT.len() + 8 + 32);
    message.extend_from_slice(AGREEMENT_CONTEXT);
    message.extend_from_slice(&user_id.to_be_bytes());
    message.extend_from_slice(&key.0);
    message
}

/// Decodes unpadded (or padded) standard base64 of exactly `N` bytes.
fn fixed_from_base64<const N: usize>(input: &str) -> Result<[u8; N], IdentityError> {
    let bytes = Zeroizing::new(
        vodozemac::base64_decode(input.trim_end_matches('='))
            .map_err(|_| IdentityError::InvalidPublicKey)?,
    );
    bytes
        .as_slice()
        .try_into()
        .map_err(|_| IdentityError::InvalidPublicKey)
}

/// The public half of an identity, as published in the server's key directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicIdentity {
    /// The Curve25519 identity key used in the off-the-record triple Diffie-Hellman.
    pub curve25519: Curve25519PublicKey,
    /// The Ed25519 key, used for signatures in encrypted rooms.
    pub ed25519: Ed25519PublicKey,
}

impl PublicIdentity {
    /// Length of [`PublicIdentity::to_bytes`].
    pub const LENGTH: usize = 64;

    /// The 64-byte encoding: the Curve25519 key, then the Ed25519 key.
    pub fn to_bytes(&self) -> [u8; Self::LENGTH] {
        let mut out = [0u8; Self::LENGTH];
        let (curve, ed) = out.split_at_mut(32);
        curve.copy_from_slice(&self.curve25519.to_bytes());
        ed.copy_from_slice(self.ed25519.as_bytes());
        out
    }

    /// Decodes [`PublicIdentity::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, IdentityError> {
        let mut reader = Reader::new(bytes);
        let parsed = Self::read(&mut reader).map_err(|_| IdentityError::InvalidPublicKey)?;
        reader
            .finish()
            .map_err(|_| IdentityError::InvalidPublicKey)?;
        Ok(parsed)
    }

    pub(crate) fn read(reader: &mut Reader<'_>) -> Result<Self, CodecError> {
        let curve = reader.array::<32>()?;
        let ed = reader.array::<32>()?;
        Ok(Self {
            curve25519: Curve25519PublicKey::from_bytes(curve),
            ed25519: Ed25519PublicKey::from_slice(&ed).map_err(|_| CodecError::InvalidValue)?,
        })
    }

    /// The unpadded base64 forms `(curve25519, ed25519)`, as the key directory carries them.
    pub fn to_base64(&self) -> (String, String) {
        (self.curve25519.to_base64(), self.ed25519.to_base64())
    }

    /// Parses the unpadded base64 forms produced by [`PublicIdentity::to_base64`].
    pub fn from_base64(curve25519: &str, ed25519: &str) -> Result<Self, IdentityError> {
        Ok(Self {
            curve25519: Curve25519PublicKey::from_base64(curve25519)
                .map_err(|_| IdentityError::InvalidPublicKey)?,
            ed25519: ed25519_from_base64(ed25519)?,
        })
    }
}

/// Parses an Ed25519 public key from base64 without `Ed25519PublicKey::from_base64`, which in
/// vodozemac 0.11.1 panics on a 44-character input that decodes to 33 bytes (found by the
/// `keys_and_trust` fuzz target): decode, check the length, then build from the array.
pub fn ed25519_from_base64(input: &str) -> Result<Ed25519PublicKey, IdentityError> {
    let bytes = zeroize::Zeroizing::new(
        vodozemac::base64_decode(input).map_err(|_| IdentityError::InvalidPublicKey)?,
    );
    let array: [u8; 32] = bytes
        .as_slice()
        .try_into()
        .map_err(|_| IdentityError::InvalidPublicKey)?;
    Ed25519PublicKey::from_slice(&array).map_err(|_| IdentityError::InvalidPublicKey)
}

/// A user's exportable long-term identity. It never holds one-time keys.
pub struct Identity {
    account: Account,
    /// The room agreement key's secret (x25519-dalek zeroizes it on drop).
    agreement: AgreementSecret,
}

impl Identity {
    /// Generates a fresh identity from the operating system's (or browser's) random source.
    pub fn generate() -> Self {
        Self::with_new_agreement_key(Account::new())
    }

    /// Adopts an existing Olm account, for example one migrated from another client, with a new
    /// room agreement key. Refused if it holds one-time or fallback keys (published or not):
    /// their secrets must never reach a backup or an OTR identity.
    pub fn from_olm_account(account: Account) -> Result<Self, IdentityError> {
        let identity = Self::with_new_agreement_key(account);
        if identity.holds_ephemeral_keys()? {
            return Err(IdentityError::HoldsEphemeralKeys);
        }
        Ok(identity)
    }

    /// Like vodozemac's `Account::new`, this panics only if the platform has no randomness.
    fn with_new_agreement_key(account: Account) -> Self {
        let (agreement, _) = X25519HkdfSha256::gen_keypair();
        Self { account, agreement }
    }

    /// Bypasses the checks of [`Identity::from_olm_account`], to test the checks behind them.
    #[cfg(test)]
    pub(crate) fn unchecked_for_tests(account: Account) -> Self {
        Self::with_new_agreement_key(account)
    }

    /// The public half of the room agreement key.
    pub fn agreement_key(&self) -> AgreementKey {
        AgreementKey(
            X25519HkdfSha256::sk_to_pk(&self.agreement)
                .to_bytes()
                .into(),
        )
    }

    /// The agreement key signed for publication under `user_id`.
    pub fn signed_agreement_key(&self, user_id: i64) -> SignedAgreementKey {
        let key = self.agreement_key();
        let signature = self.sign(&agreement_message(user_id, &key)).to_bytes();
        SignedAgreementKey { key, signature }
    }

    /// Signs with the identity's Ed25519 key. Crate-internal: every signed message starts with
    /// its own context so that no signature can be replayed as another kind.
    pub(crate) fn sign(&self, message: &[u8]) -> Ed25519Signature {
        self.account.sign(message)
    }

    /// The agreement key pair in HPKE's types, for sealing and opening room key shares.
    pub(crate) fn agreement_pair(&self) -> (AgreementSecret, AgreementPublic) {
        (
            self.agreement.clone(),
            X25519HkdfSha256::sk_to_pk(&self.agreement),
        )
    }

    /// The public keys to publish.
    pub fn public(&self) -> PublicIdentity {
        let keys = self.account.identity_keys();
        PublicIdentity {
            curve25519: keys.curve25519,
            ed25519: keys.ed25519,
        }
    }

    /// A fresh in-memory copy for off-the-record handshakes (it needs no agreement key).
    pub fn otr_identity(&self) -> OtrIdentity {
        OtrIdentity {
            account: Account::from_pickle(self.account.pickle()),
        }
    }

    /// Whether the account holds one-time keys or any fallback key. vodozemac's
    /// `fallback_key()` lists only an unpublished one, so the pickle is probed for the current
    /// and the previous fallback key without copying any secret out of the zeroized buffer.
    fn holds_ephemeral_keys(&self) -> Result<bool, IdentityError> {
        if self.account.stored_one_time_key_count() > 0 {
            return Ok(true);
        }
        let pickle = pickle_bytes(&self.account)?;
        let probe: AccountProbe =
            serde_json::from_slice(&pickle).map_err(|_| IdentityError::MalformedIdentity)?;
        Ok(probe.fallback_keys.fallback_key.is_some()
            || probe.fallback_keys.previous_fallback_key.is_some())
    }

    /// The serialised secret keys (identity secret format v2), for sealing into a key backup.
    pub(crate) fn export_secret(&self) -> Result<Zeroizing<Vec<u8>>, IdentityError> {
        if self.holds_ephemeral_keys()? {
            return Err(IdentityError::HoldsEphemeralKeys);
        }
        let mut out = Zeroizing::new(Vec::with_capacity(16 * 1024));
        out.extend_from_slice(SECRET_MAGIC);
        out.push(SECRET_VERSION);
        out.extend_from_slice(&self.agreement.to_bytes());
        write_pickle(&self.account, &mut out)?;
        Ok(out)
    }

    /// Restores what [`Identity::export_secret`] produced, or a v1 secret (a bare account
    /// pickle), which gets a fresh agreement key: the second value is then `true`, and the
    /// caller re-seals the backup and publishes the new key.
    pub(crate) fn import_secret(bytes: &[u8]) -> Result<(Self, bool), IdentityError> {
        let (agreement, pickle, upgraded) = match bytes.strip_prefix(SECRET_MAGIC.as_slice()) {
            Some(rest) => {
                let mut reader = Reader::new(rest);
                if reader.u8().ok() != Some(SECRET_VERSION) {
                    return Err(IdentityError::MalformedIdentity);
                }
                let secret = Zeroizing::new(
                    reader
                        .array::<32>()
                        .map_err(|_| IdentityError::MalformedIdentity)?,
                );
                let agreement = AgreementSecret::from_bytes(secret.as_slice())
                    .map_err(|_| IdentityError::MalformedIdentity)?;
                let pickle = reader
                    .rest(usize::MAX)
                    .map_err(|_| IdentityError::MalformedIdentity)?;
                (Some(agreement), pickle, false)
            }
            None => (None, bytes, true),
        };
        let pickle: AccountPickle =
            serde_json::from_slice(pickle).map_err(|_| IdentityError::MalformedIdentity)?;
        let account = Account::from_pickle(pickle);
        let identity = match agreement {
            Some(agreement) => Self { account, agreement },
            None => Self::with_new_agreement_key(account),
        };
        if identity.holds_ephemeral_keys()? {
            return Err(IdentityError::HoldsEphemeralKeys);
        }
        Ok((identity, upgraded))
    }

    /// The v1 secret (the bare pickle), to test the upgrade path.
    pub(crate) fn export_v1_secret_for_tests(&self) -> Result<Zeroizing<Vec<u8>>, IdentityError> {
        pickle_bytes(&self.account)
    }
}

/// The account pickle as JSON, written into a buffer large enough that it never reallocates
/// (which would leave unzeroized copies of the secret keys behind).
fn pickle_bytes(account: &Account) -> Result<Zeroizing<Vec<u8>>, IdentityError> {
    let mut out = Zeroizing::new(Vec::with_capacity(16 * 1024));
    write_pickle(account, &mut out)?;
    Ok(out)
}

fn write_pickle(account: &Account, out: &mut Vec<u8>) -> Result<(), IdentityError> {
    serde_json::to_writer(out, &account.pickle()).map_err(|_| IdentityError::MalformedIdentity)
}

/// The parts of an account pickle that say whether fallback keys exist; the keys themselves
/// are skipped, never copied.
#[derive(Deserialize)]
struct AccountProbe {
    fallback_keys: FallbackProbe,
}

#[derive(Deserialize)]
struct FallbackProbe {
    fallback_key: Option<serde::de::IgnoredAny>,
    previous_fallback_key: Option<serde::de::IgnoredAny>,
}

/// The in-memory identity that mints one-time keys for off-the-record handshakes.
///
/// It is deliberately not `Clone`, `Debug` or serialisable: its one-time keys exist only here and
/// are removed when the handshake that needed them ends in any way.
pub struct OtrIdentity {
    account: Account,
}

impl OtrIdentity {
    /// The public identity keys (the same as the exportable identity's).
    pub fn public(&self) -> PublicIdentity {
        let keys = self.account.identity_keys();
        PublicIdentity {
            curve25519: keys.curve25519,
            ed25519: keys.ed25519,
        }
    }

    /// How many one-time key secrets this identity currently holds. Zero whenever no handshake is
    /// waiting for its pre-key message.
    pub fn one_time_key_count(&self) -> usize {
        self.account.stored_one_time_key_count()
    }

    pub(crate) fn generate_one_time_key(&mut self) -> Option<Curve25519PublicKey> {
        let created = self.account.generate_one_time_keys(1).created;
        self.account.mark_keys_as_published();
        created.first().copied()
    }

    pub(crate) fn remove_one_time_key(&mut self, key: Curve25519PublicKey) {
        // Dropping the returned secret zeroizes it.
        drop(self.account.remove_one_time_key(key));
    }

    pub(crate) fn create_outbound(
        &self,
        peer_identity_key: Curve25519PublicKey,
        one_time_key: Curve25519PublicKey,
    ) -> Result<Session, SessionCreationError> {
        self.account.create_outbound_session(
            SessionConfig::version_1(),
            peer_identity_key,
            one_time_key,
        )
    }

    pub(crate) fn create_inbound(
        &mut self,
        peer_identity_key: Curve25519PublicKey,
        message: &PreKeyMessage,
    ) -> Result<InboundCreationResult, SessionCreationError> {
        self.account
            .create_inbound_session(SessionConfig::version_1(), peer_identity_key, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_identity_round_trips_through_bytes_and_base64() {
        let identity = Identity::generate();
        let public = identity.public();
        assert_eq!(
            PublicIdentity::from_bytes(&public.to_bytes()).unwrap(),
            public
        );
        let (curve, ed) = public.to_base64();
        assert_eq!(PublicIdentity::from_base64(&curve, &ed).unwrap(), public);
        assert!(PublicIdentity::from_bytes(&[0u8; 63]).is_err());
        assert!(PublicIdentity::from_base64("not base64!", &ed).is_err());
        // 44 characters that decode to 33 bytes: vodozemac's own parser panics on this one.
        let hostile = "kHZ2Epgm/+h40djrv4fYP3zvSLfQMz7IEpI5l5ZjolCg";
        assert!(PublicIdentity::from_base64(&curve, hostile).is_err());
        for len in [0, 42, 43, 44, 45, 86] {
            let _ = PublicIdentity::from_base64(&curve, &"A".repeat(len));
        }
    }

    #[test]
    fn accounts_with_one_time_or_fallback_keys_are_refused_and_never_exported() {
        assert!(Identity::from_olm_account(Account::new()).is_ok());

        let mut with_otk = Account::new();
        with_otk.generate_one_time_keys(1);
        let mut with_fallback = Account::new();
        with_fallback.generate_fallback_key();
        let mut with_published_fallback = Account::new();
        with_published_fallback.generate_fallback_key();
        with_published_fallback.mark_keys_as_published();
        assert!(
            with_published_fallback.fallback_key().is_empty(),
            "vodozemac hides it"
        );
        let mut with_previous_fallback = Account::new();
        with_previous_fallback.generate_fallback_key();
        with_previous_fallback.mark_keys_as_published();
        with_previous_fallback.generate_fallback_key();
        with_previous_fallback.mark_keys_as_published();

        for account in [
            with_otk,
            with_fallback,
            with_published_fallback,
            with_previous_fallback,
        ] {
            // Refused on the way in ...
            let pickle = account.pickle();
            assert!(matches!(
                Identity::from_olm_account(account),
                Err(IdentityError::HoldsEphemeralKeys)
            ));
            // ... and, were one to get in, on the way out.
            let smuggled = Identity::unchecked_for_tests(Account::from_pickle(pickle));
            assert!(matches!(
                smuggled.export_secret(),
                Err(IdentityError::HoldsEphemeralKeys)
            ));
        }
    }

    #[test]
    fn otr_identity_minting_keys_leaves_the_exportable_identity_clean() {
        let identity = Identity::generate();
        let mut otr = identity.otr_identity();
        let key = otr.generate_one_time_key().unwrap();
        assert_eq!(otr.one_time_key_count(), 1);
        assert!(identity.export_secret().is_ok());
        otr.remove_one_time_key(key);
        assert_eq!(otr.one_time_key_count(), 0);
        assert_eq!(otr.public(), identity.public());
    }
}
