//! The key backup: the user's identity sealed under their E2E passphrase, stored by the server.
//!
//! The server keeps this blob and can attack it offline, so the passphrase is stretched with
//! Argon2id (strong parameters by default, stored in the blob so they can rise later) and the
//! default passphrase is generated with 100 bits of entropy.
//!
//! The passphrase does not encrypt the identity directly. It derives a key-encryption key that
//! wraps a random 256-bit *storage key*; the storage key seals the identity and, through
//! [`StorageKey`], the user's trust store. Changing the passphrase (and resetting the identity,
//! which is [`create_backup`] with a new [`Identity`]) draws a new storage key, so a backup cracked
//! once does not open later ones; the caller re-seals the trust store under the new key.
//!
//! Format, version 1 (all integers big-endian):
//!
//! ```text
//! "SOTTOKB" | version u8 = 1 | m_cost_kib u32 | t_cost u32 | p_cost u32 | salt [16]
//!   | wrapped storage key [24 nonce + 32 + 16 tag] | u32 len | sealed identity [len]
//! ```
//!
//! Both sealed parts bind the header (magic to salt) as associated data.
//!
//! The sealed identity is itself versioned (see `identity.rs`): v1 is the bare Olm account
//! pickle; v2 adds the room agreement key. A backup holding a v1 identity gets a fresh agreement
//! key when it is unlocked, and [`Unlocked::upgraded_backup`] carries the same backup with the
//! identity re-sealed as v2 (same header and wrapped storage key, so it opens with the same
//! passphrase *and* the same remembered device key). The outer format stays version 1: only the
//! storage key is needed to re-seal, which a device-key unlock has but a new header would not.

use argon2::{Algorithm, Argon2, Params, Version};
use thiserror::Error;
use zeroize::Zeroizing;

use crate::codec::{CodecError, Reader, Writer, random_bytes};
use crate::identity::{Identity, IdentityError, OtrIdentity};
use crate::seal::{SEAL_OVERHEAD, open, seal, subkey};

const MAGIC: &[u8; 7] = b"SOTTOKB";
/// The HKDF purpose of the identity's sealing key. It names the key, not the identity secret's
/// format (which is versioned inside), so it stays "v1".
const IDENTITY_PURPOSE: &[u8] = b"sotto identity v1";
const VERSION: u8 = 1;
const SALT_LEN: usize = 16;
const HEADER_LEN: usize = MAGIC.len() + 1 + 12 + SALT_LEN;
const WRAPPED_KEY_LEN: usize = SEAL_OVERHEAD + 32;
/// An identity pickle is well under 1 KiB; this bounds what a hostile server can make us allocate.
const MAX_SEALED_IDENTITY: usize = 16 * 1024;
/// Memory cost ceiling a blob may ask for: a hostile server must not make the client allocate more.
const MAX_M_COST_KIB: u32 = 256 * 1024;
const MAX_T_COST: u32 = 8;
const MAX_P_COST: u32 = 4;

/// Characters of generated passphrases: Crockford's base32, without look-alikes (0/O, 1/I/L, U).
const PASSPHRASE_ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const PASSPHRASE_GROUPS: usize = 5;
const PASSPHRASE_GROUP_LEN: usize = 4;
/// The strength floor for a custom passphrase, in estimated bits (see [`Passphrase::custom`]).
pub const MIN_CUSTOM_PASSPHRASE_BITS: u32 = 70;
/// A custom passphrase must also be at least this many characters long.
pub const MIN_CUSTOM_PASSPHRASE_CHARS: usize = 12;

/// Errors of the key backup.
#[derive(Debug, Error)]
pub enum BackupError {
    /// The passphrase is wrong, or the backup was tampered with (they are indistinguishable).
    #[error("wrong E2E passphrase, or the key backup was altered")]
    WrongPassphraseOrTampered,
    /// The blob is not a key backup, or is truncated.
    #[error("not a valid key backup: {0}")]
    Malformed(#[from] CodecError),
    /// The backup was written by a newer version of Sotto.
    #[error("key backup version {0} is not supported by this client")]
    UnsupportedVersion(u8),
    /// The stored Argon2 parameters are outside what this client accepts.
    #[error("key backup asks for unacceptable key-derivation parameters")]
    UnacceptableParameters,
    /// A custom passphrase is below the strength floor.
    #[error(
        "passphrase too weak: use at least {MIN_CUSTOM_PASSPHRASE_CHARS} characters and about {MIN_CUSTOM_PASSPHRASE_BITS} bits (mix words, digits and symbols), or the generated one"
    )]
    WeakPassphrase,
    /// The identity cannot be exported (it holds one-time keys) or is malformed.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// The platform's random number generator failed.
    #[error("no randomness available")]
    Randomness,
}

/// Argon2id cost parameters, stored in every backup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfParams {
    /// Memory in KiB.
    pub m_cost_kib: u32,
    /// Passes over memory.
    pub t_cost: u32,
    /// Lanes.
    pub p_cost: u32,
}

impl KdfParams {
    /// The default: 64 MiB, 3 passes, 1 lane.
    pub const DEFAULT: Self = Self {
        m_cost_kib: 64 * 1024,
        t_cost: 3,
        p_cost: 1,
    };

    /// Cheap parameters for tests only: they make an offline attack on the passphrase trivial.
    pub const INSECURE_FOR_TESTS: Self = Self {
        m_cost_kib: 64,
        t_cost: 1,
        p_cost: 1,
    };

    /// Whether these parameters are cheaper for an attacker than [`KdfParams::DEFAULT`].
    pub fn weaker_than_default(self) -> bool {
        self.m_cost_kib < Self::DEFAULT.m_cost_kib || self.t_cost < Self::DEFAULT.t_cost
    }

    fn argon2(self) -> Result<Argon2<'static>, BackupError> {
        if self.m_cost_kib > MAX_M_COST_KIB || self.t_cost > MAX_T_COST || self.p_cost > MAX_P_COST
        {
            return Err(BackupError::UnacceptableParameters);
        }
        let params = Params::new(self.m_cost_kib, self.t_cost, self.p_cost, Some(32))
            .map_err(|_| BackupError::UnacceptableParameters)?;
        Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
    }
}

impl Default for KdfParams {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// An E2E passphrase that passed the rules: generated, or custom above the strength floor.
pub struct Passphrase(Zeroizing<String>);

impl Passphrase {
    /// A generated passphrase: 20 characters of Crockford base32 (100 bits) in five groups of
    /// four, such as `K7PQ-3XMA-9RTV-B2HN-W4ZE`. Easy to read aloud and write down.
    pub fn generate() -> Result<Self, BackupError> {
        let random: [u8; PASSPHRASE_GROUPS * PASSPHRASE_GROUP_LEN] =
            random_bytes().map_err(|_| BackupError::Randomness)?;
        let random = Zeroizing::new(random);
        let mut out = Zeroizing::new(String::with_capacity(24));
        for (index, byte) in random.iter().enumerate() {
            if index > 0 && index % PASSPHRASE_GROUP_LEN == 0 {
                out.push('-');
            }
            // 256 is a multiple of 32, so masking keeps the distribution uniform.
            let symbol = PASSPHRASE_ALPHABET
                .get(usize::from(byte & 31))
                .copied()
                .unwrap_or(b'0');
            out.push(char::from(symbol));
        }
        Ok(Self(out))
    }

    /// A passphrase the user chose. Refused below the strength floor: at least
    /// [`MIN_CUSTOM_PASSPHRASE_CHARS`] characters and [`MIN_CUSTOM_PASSPHRASE_BITS`] estimated
    /// bits. The estimate is deliberately conservative: the size of the character classes used,
    /// counted only over characters that are not repeats or steps of the previous character.
    pub fn custom(passphrase: &str) -> Result<Self, BackupError> {
        if estimate_bits(passphrase) < MIN_CUSTOM_PASSPHRASE_BITS
            || passphrase.chars().count() < MIN_CUSTOM_PASSPHRASE_CHARS
        {
            return Err(BackupError::WeakPassphrase);
        }
        Ok(Self(Zeroizing::new(passphrase.to_owned())))
    }

    /// A passphrase as the user typed it: either in the generated format (five groups of four
    /// base32 characters — 100 bits whatever the characters happen to spell) or a custom one
    /// above the floor.
    pub fn from_user(passphrase: &str) -> Result<Self, BackupError> {
        if is_generated_format(passphrase) {
            return Ok(Self(Zeroizing::new(passphrase.to_owned())));
        }
        Self::custom(passphrase)
    }

    /// The passphrase text, to show the user once.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A conservative entropy estimate in bits; see [`Passphrase::custom`].
pub fn estimate_bits(passphrase: &str) -> u32 {
    let lowered: String = passphrase.chars().map(unleet).collect();
    if COMMON_BASES.iter().any(|base| lowered.contains(base)) {
        return 0;
    }
    let chars: Vec<char> = passphrase.chars().collect();
    let mut distinct = chars.clone();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() < MIN_DISTINCT_CHARS {
        return 0;
    }
    let (mut lower, mut upper, mut digit, mut other) = (false, false, false, false);
    let mut effective = 0u32;
    for (index, &c) in chars.iter().enumerate() {
        match c {
            'a'..='z' => lower = true,
            'A'..='Z' => upper = true,
            '0'..='9' => digit = true,
            _ => other = true,
        }
        // A character that repeats one of the last four, or steps by one from the previous
        // (abc, 321), adds nothing an attacker would pay for.
        let recent = chars
            .get(index.saturating_sub(4)..index)
            .unwrap_or_default();
        let repeats = recent.contains(&c);
        let steps = index
            .checked_sub(1)
            .and_then(|i| chars.get(i))
            .is_some_and(|&p| {
                let (p, c) = (u32::from(p), u32::from(c));
                p.checked_add(1) == Some(c) || c.checked_add(1) == Some(p)
            });
        if !repeats && !steps {
            effective = effective.saturating_add(1);
        }
    }
    let pool = u32::from(lower) * 26
        + u32::from(upper) * 26
        + u32::from(digit) * 10
        + u32::from(other) * 33;
    if pool < 2 {
        return 0;
    }
    // floor(log2(pool)) * effective characters: whole bits per character, rounded down.
    (u32::BITS - 1 - pool.leading_zeros()).saturating_mul(effective)
}

fn is_generated_format(passphrase: &str) -> bool {
    let groups: Vec<&str> = passphrase.split('-').collect();
    groups.len() == PASSPHRASE_GROUPS
        && groups.iter().all(|group| {
            group.len() == PASSPHRASE_GROUP_LEN
                && group.bytes().all(|b| PASSPHRASE_ALPHABET.contains(&b))
        })
}

/// Lower-cases and undoes the usual substitutions (p@ssw0rd → password).
fn unleet(c: char) -> char {
    match c {
        '@' | '4' => 'a',
        '3' => 'e',
        '1' | '!' | '|' => 'i',
        '0' => 'o',
        '$' | '5' => 's',
        '7' => 't',
        other => other.to_ascii_lowercase(),
    }
}

/// Base words of the most common passwords: a passphrase built on one of them is refused
/// whatever else it adds.
const COMMON_BASES: &[&str] = &[
    "password", "passwort", "qwerty", "azerty", "asdf", "zxcv", "iloveyou", "letmein", "welcome",
    "admin", "login", "monkey", "dragon", "football", "baseball", "soccer", "sunshine", "princess",
    "master", "shadow", "superman", "batman", "trustno", "secret", "summer", "winter", "spring",
    "autumn", "abc123", "123456", "654321", "111111", "changeme", "sotto",
];
/// A custom passphrase must use at least this many different characters.
const MIN_DISTINCT_CHARS: usize = 8;

/// The random key that seals the identity and the trust store. Zeroized on drop.
pub struct StorageKey(Zeroizing<[u8; 32]>);

impl StorageKey {
    fn random() -> Result<Self, BackupError> {
        let mut key = Zeroizing::new([0u8; 32]);
        getrandom::fill(key.as_mut_slice()).map_err(|_| BackupError::Randomness)?;
        Ok(Self(key))
    }

    /// The key's bytes, for a device that remembers the unlocked identity (the browser wraps
    /// them with a key it cannot export). Whoever holds them opens the backup and the trust store
    /// without the passphrase, until the passphrase changes or the identity is reset.
    pub fn to_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(*self.0)
    }

    /// The key from the bytes [`StorageKey::to_bytes`] gave.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, BackupError> {
        let bytes: &[u8; 32] = bytes
            .try_into()
            .map_err(|_| BackupError::WrongPassphraseOrTampered)?;
        Ok(Self(Zeroizing::new(*bytes)))
    }

    /// The subkey for one purpose, so the identity and the trust store never share a key.
    pub(crate) fn purpose(&self, info: &[u8]) -> Zeroizing<[u8; 32]> {
        subkey(&self.0, info)
    }
}

/// What a successful unlock yields.
pub struct Unlocked {
    /// The exportable identity, unchanged by anything OTR does.
    pub identity: Identity,
    /// The in-memory identity for off-the-record handshakes; it can never be exported.
    pub otr: OtrIdentity,
    /// The key that seals the trust store (see [`crate::trust::TrustStore`]).
    pub storage_key: StorageKey,
    /// The Argon2 parameters the backup was sealed with; when
    /// [`KdfParams::weaker_than_default`], re-seal it with [`change_passphrase`].
    pub kdf: KdfParams,
    /// Set when the backup held a v1 identity (no room agreement key): the identity got a fresh
    /// agreement key, and these are the re-sealed backup bytes. Store them and publish the
    /// new signed agreement key; until then the server still serves the old backup, and the
    /// next unlock would draw yet another agreement key.
    pub upgraded_backup: Option<Vec<u8>>,
}

/// Creates a key backup of `identity` under `passphrase`. Returns the blob and the unlocked keys.
pub fn create_backup(
    identity: Identity,
    passphrase: &Passphrase,
    params: KdfParams,
) -> Result<(Vec<u8>, Unlocked), BackupError> {
    let storage_key = StorageKey::random()?;
    let blob = write_blob(&identity, &storage_key, passphrase.as_str(), params)?;
    let otr = identity.otr_identity();
    Ok((
        blob,
        Unlocked {
            identity,
            otr,
            storage_key,
            kdf: params,
            upgraded_backup: None,
        },
    ))
}

/// A backup whose sealed identity is in the v1 format (no agreement key), as clients before
/// encrypted rooms wrote it: to test the upgrade path.
#[doc(hidden)]
pub fn create_v1_backup_for_tests(
    identity: &Identity,
    passphrase: &Passphrase,
    params: KdfParams,
) -> Result<Vec<u8>, BackupError> {
    let storage_key = StorageKey::random()?;
    let secret = identity.export_v1_secret_for_tests()?;
    write_blob_with_secret(&secret, &storage_key, passphrase.as_str(), params)
}

/// Opens a key backup with the user's passphrase.
pub fn unlock_backup(blob: &[u8], passphrase: &str) -> Result<Unlocked, BackupError> {
    let parsed = ParsedBackup::decode(blob)?;
    let kek = derive_kek(passphrase, &parsed.salt, parsed.params)?;
    let key = open(&kek, parsed.header, parsed.wrapped_key)
        .map_err(|_| BackupError::WrongPassphraseOrTampered)?;
    let mut storage_key = StorageKey(Zeroizing::new([0u8; 32]));
    if key.len() != 32 {
        return Err(BackupError::WrongPassphraseOrTampered);
    }
    storage_key.0.copy_from_slice(&key);
    open_identity(&parsed, storage_key)
}

/// Opens a key backup with its storage key (a device that remembered it), skipping Argon2. A key
/// from before a passphrase change or an identity reset no longer opens the backup.
pub fn unlock_backup_with_storage_key(
    blob: &[u8],
    storage_key: StorageKey,
) -> Result<Unlocked, BackupError> {
    open_identity(&ParsedBackup::decode(blob)?, storage_key)
}

fn open_identity(
    parsed: &ParsedBackup<'_>,
    storage_key: StorageKey,
) -> Result<Unlocked, BackupError> {
    let secret = open(
        &storage_key.purpose(IDENTITY_PURPOSE),
        parsed.header,
        parsed.identity,
    )
    .map_err(|_| BackupError::WrongPassphraseOrTampered)?;
    let (identity, upgraded) = Identity::import_secret(&secret)?;
    let upgraded_backup = if upgraded {
        // Same header and wrapped storage key: only the sealed identity changes.
        let sealed_identity = seal(
            &storage_key.purpose(IDENTITY_PURPOSE),
            parsed.header,
            &identity.export_secret()?,
        )
        .map_err(|_| BackupError::Randomness)?;
        let mut out = Writer::with_capacity(
            parsed.header.len() + parsed.wrapped_key.len() + 4 + sealed_identity.len(),
        );
        out.raw(parsed.header)
            .raw(parsed.wrapped_key)
            .bytes32(&sealed_identity);
        Some(out.into_vec())
    } else {
        None
    };
    let otr = identity.otr_identity();
    Ok(Unlocked {
        identity,
        otr,
        storage_key,
        kdf: parsed.params,
        upgraded_backup,
    })
}

/// Re-encrypts the identity under a new passphrase *and a new storage key* (new salt, new
/// nonces). Rotating the storage key means that whoever cracked an old backup learns nothing of
/// the new one. Re-seal the trust store under the returned key and store both together.
pub fn change_passphrase(
    identity: &Identity,
    new_passphrase: &Passphrase,
    params: KdfParams,
) -> Result<(Vec<u8>, StorageKey), BackupError> {
    let storage_key = StorageKey::random()?;
    let blob = write_blob(identity, &storage_key, new_passphrase.as_str(), params)?;
    Ok((blob, storage_key))
}

/// Reads the Argon2 parameters of a backup without the passphrase (to show a progress estimate).
pub fn backup_params(blob: &[u8]) -> Result<KdfParams, BackupError> {
    Ok(ParsedBackup::decode(blob)?.params)
}

fn write_blob(
    identity: &Identity,
    storage_key: &StorageKey,
    passphrase: &str,
    params: KdfParams,
) -> Result<Vec<u8>, BackupError> {
    write_blob_with_secret(&identity.export_secret()?, storage_key, passphrase, params)
}

fn write_blob_with_secret(
    secret: &[u8],
    storage_key: &StorageKey,
    passphrase: &str,
    params: KdfParams,
) -> Result<Vec<u8>, BackupError> {
    let salt: [u8; SALT_LEN] = random_bytes().map_err(|_| BackupError::Randomness)?;
    let mut header = Writer::with_capacity(HEADER_LEN);
    header
        .raw(MAGIC)
        .u8(VERSION)
        .u32(params.m_cost_kib)
        .u32(params.t_cost)
        .u32(params.p_cost)
        .raw(&salt);
    let header = header.into_vec();
    let kek = derive_kek(passphrase, &salt, params)?;
    let wrapped =
        seal(&kek, &header, storage_key.0.as_slice()).map_err(|_| BackupError::Randomness)?;
    let sealed_identity = seal(&storage_key.purpose(IDENTITY_PURPOSE), &header, secret)
        .map_err(|_| BackupError::Randomness)?;
    let mut out = Writer::with_capacity(header.len() + wrapped.len() + 4 + sealed_identity.len());
    out.raw(&header).raw(&wrapped).bytes32(&sealed_identity);
    Ok(out.into_vec())
}

fn derive_kek(
    passphrase: &str,
    salt: &[u8],
    params: KdfParams,
) -> Result<Zeroizing<[u8; 32]>, BackupError> {
    let mut kek = Zeroizing::new([0u8; 32]);
    params
        .argon2()?
        .hash_password_into(passphrase.as_bytes(), salt, kek.as_mut_slice())
        .map_err(|_| BackupError::UnacceptableParameters)?;
    Ok(kek)
}

/// A decoded, not yet decrypted, backup.
struct ParsedBackup<'a> {
    header: &'a [u8],
    params: KdfParams,
    salt: [u8; SALT_LEN],
    wrapped_key: &'a [u8],
    identity: &'a [u8],
}

impl<'a> ParsedBackup<'a> {
    fn decode(blob: &'a [u8]) -> Result<Self, BackupError> {
        let mut reader = Reader::new(blob);
        if reader.take(MAGIC.len())? != MAGIC {
            return Err(CodecError::InvalidValue.into());
        }
        let version = reader.u8()?;
        if version != VERSION {
            return Err(BackupError::UnsupportedVersion(version));
        }
        let params = KdfParams {
            m_cost_kib: reader.u32()?,
            t_cost: reader.u32()?,
            p_cost: reader.u32()?,
        };
        let salt = reader.array()?;
        let header = blob.get(..HEADER_LEN).ok_or(CodecError::Truncated)?;
        let wrapped_key = reader.take(WRAPPED_KEY_LEN)?;
        let identity = reader.bytes32(MAX_SEALED_IDENTITY)?;
        reader.finish()?;
        Ok(Self {
            header,
            params,
            salt,
            wrapped_key,
            identity,
        })
    }
}

/// Checks that `blob` is structurally a key backup (no decryption). The fuzz target's entry point.
pub fn validate_backup_format(blob: &[u8]) -> Result<KdfParams, BackupError> {
    backup_params(blob)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backup() -> (Vec<u8>, Unlocked, Passphrase) {
        let passphrase = Passphrase::generate().unwrap();
        let (blob, unlocked) = create_backup(
            Identity::generate(),
            &passphrase,
            KdfParams::INSECURE_FOR_TESTS,
        )
        .unwrap();
        (blob, unlocked, passphrase)
    }

    #[test]
    fn round_trip_restores_the_same_identity() {
        let (blob, unlocked, passphrase) = backup();
        let restored = unlock_backup(&blob, passphrase.as_str()).unwrap();
        assert_eq!(restored.identity.public(), unlocked.identity.public());
        assert_eq!(restored.otr.public(), unlocked.identity.public());
        assert_eq!(*restored.storage_key.0, *unlocked.storage_key.0);
        assert_eq!(backup_params(&blob).unwrap(), KdfParams::INSECURE_FOR_TESTS);
    }

    #[test]
    fn a_remembered_storage_key_opens_the_backup_until_the_passphrase_changes() {
        let (blob, unlocked, _) = backup();
        let remembered = unlocked.storage_key.to_bytes();
        let restored =
            unlock_backup_with_storage_key(&blob, StorageKey::from_bytes(&*remembered).unwrap())
                .unwrap();
        assert_eq!(restored.identity.public(), unlocked.identity.public());
        assert_eq!(*restored.storage_key.0, *remembered);

        let (new_blob, new_key) = change_passphrase(
            &unlocked.identity,
            &Passphrase::generate().unwrap(),
            KdfParams::INSECURE_FOR_TESTS,
        )
        .unwrap();
        assert!(matches!(
            unlock_backup_with_storage_key(
                &new_blob,
                StorageKey::from_bytes(&*remembered).unwrap()
            ),
            Err(BackupError::WrongPassphraseOrTampered)
        ));
        let fresh = unlock_backup_with_storage_key(&new_blob, new_key).unwrap();
        assert_eq!(fresh.identity.public(), unlocked.identity.public());
        assert!(StorageKey::from_bytes(&[0u8; 31]).is_err());
    }

    #[test]
    fn wrong_passphrase_is_a_clear_error() {
        let (blob, _, _) = backup();
        assert!(matches!(
            unlock_backup(&blob, "AAAA-AAAA-AAAA-AAAA-AAAA"),
            Err(BackupError::WrongPassphraseOrTampered)
        ));
    }

    #[test]
    fn every_tampered_byte_is_detected() {
        let (blob, _, passphrase) = backup();
        for index in 0..blob.len() {
            let mut tampered = blob.clone();
            tampered[index] ^= 0x01;
            assert!(
                unlock_backup(&tampered, passphrase.as_str()).is_err(),
                "byte {index}"
            );
        }
    }

    #[test]
    fn truncated_and_future_versions_are_refused() {
        let (blob, _, passphrase) = backup();
        for len in 0..blob.len() {
            assert!(matches!(
                unlock_backup(&blob[..len], passphrase.as_str()),
                Err(BackupError::Malformed(_))
            ));
        }
        let mut future = blob.clone();
        future[MAGIC.len()] = 2;
        assert!(matches!(
            unlock_backup(&future, passphrase.as_str()),
            Err(BackupError::UnsupportedVersion(2))
        ));
    }

    #[test]
    fn hostile_parameters_are_refused_before_any_work() {
        let (mut blob, _, passphrase) = backup();
        // m_cost = 4 GiB
        blob[MAGIC.len() + 1..MAGIC.len() + 5].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(
            unlock_backup(&blob, passphrase.as_str()),
            Err(BackupError::UnacceptableParameters)
        ));
    }

    #[test]
    fn changing_the_passphrase_keeps_the_identity_and_rotates_the_storage_key() {
        let (blob, unlocked, old) = backup();
        let new = Passphrase::custom("correct horse battery staple 42!").unwrap();
        let (new_blob, new_key) =
            change_passphrase(&unlocked.identity, &new, KdfParams::INSECURE_FOR_TESTS).unwrap();
        assert_ne!(new_blob, blob);
        assert!(unlock_backup(&new_blob, old.as_str()).is_err());
        let restored = unlock_backup(&new_blob, new.as_str()).unwrap();
        assert_eq!(restored.identity.public(), unlocked.identity.public());
        assert_eq!(*restored.storage_key.0, *new_key.0);
        assert_ne!(*restored.storage_key.0, *unlocked.storage_key.0);
    }

    #[test]
    fn the_header_is_bound_to_the_sealed_parts() {
        // Two backups of the same identity under the same passphrase and storage key differ in
        // their headers (random salts) and nonces. Behind a's header and wrapped key (which open
        // to the shared storage key), b's sealed identity decrypts under the right key: only the
        // header bound as associated data refuses it.
        let (_, unlocked, passphrase) = backup();
        let params = KdfParams::INSECURE_FOR_TESTS;
        let a = write_blob(
            &unlocked.identity,
            &unlocked.storage_key,
            passphrase.as_str(),
            params,
        )
        .unwrap();
        let b = write_blob(
            &unlocked.identity,
            &unlocked.storage_key,
            passphrase.as_str(),
            params,
        )
        .unwrap();
        let mut spliced = a[..HEADER_LEN + WRAPPED_KEY_LEN].to_vec();
        spliced.extend_from_slice(&b[HEADER_LEN + WRAPPED_KEY_LEN..]);
        assert!(unlock_backup(&a, passphrase.as_str()).is_ok());
        assert!(unlock_backup(&b, passphrase.as_str()).is_ok());
        assert!(matches!(
            unlock_backup(&spliced, passphrase.as_str()),
            Err(BackupError::WrongPassphraseOrTampered)
        ));
    }

    #[test]
    fn weak_parameters_are_reported_for_re_keying() {
        let (blob, unlocked, passphrase) = backup();
        assert!(unlocked.kdf.weaker_than_default());
        assert!(
            unlock_backup(&blob, passphrase.as_str())
                .unwrap()
                .kdf
                .weaker_than_default()
        );
        assert!(!KdfParams::DEFAULT.weaker_than_default());
    }

    #[test]
    fn generated_passphrases_have_the_documented_shape_and_strength() {
        let a = Passphrase::generate().unwrap();
        let b = Passphrase::generate().unwrap();
        assert_ne!(a.as_str(), b.as_str());
        assert_eq!(a.as_str().len(), 24);
        assert_eq!(a.as_str().split('-').count(), 5);
        assert!(
            a.as_str()
                .chars()
                .all(|c| c == '-' || PASSPHRASE_ALPHABET.contains(&(c as u8)))
        );
        // 20 symbols of 5 bits each.
        const { assert!(PASSPHRASE_GROUPS * PASSPHRASE_GROUP_LEN * 5 >= 90) };
    }

    #[test]
    fn weak_custom_passphrases_are_refused() {
        for weak in [
            "password",
            "aaaaaaaaaaaaaaaaaaaaaaaa",
            "abcdefghijklmnopqrstu",
            "123456789012345",
            "Summer2026!",
            "",
            // Common bases with decoration, and repetition patterns.
            "P@ssw0rd2024!",
            "iloveyou2024!",
            "Qwertyuiop1!?",
            "Summer@2026!x",
            "acacacacacacacacac",
            "a1a1a1a1a1a1a1",
            "éaéaéaéaéaéaéa",
            "abcabcabcabcabcabc",
        ] {
            assert!(
                matches!(Passphrase::custom(weak), Err(BackupError::WeakPassphrase)),
                "{weak}"
            );
        }
        for strong in [
            "correct horse battery staple 42!",
            "Tr0ub4dor&3-xylophone-quasar",
        ] {
            assert!(Passphrase::custom(strong).is_ok(), "{strong}");
        }
        // Every generated passphrase is accepted as typed, even one that happens to spell a
        // common word; a look-alike outside the alphabet is judged as custom.
        for _ in 0..50 {
            let generated = Passphrase::generate().unwrap();
            assert!(
                Passphrase::from_user(generated.as_str()).is_ok(),
                "{}",
                generated.as_str()
            );
        }
        assert!(Passphrase::from_user("ADM1-N000-0000-0000-0000").is_ok());
        assert!(Passphrase::from_user("password-0000-0000-0000").is_err());
        assert!(Passphrase::from_user("correct horse battery staple 42!").is_ok());
    }

    #[test]
    fn export_refuses_an_identity_with_one_time_keys() {
        let mut account = vodozemac::olm::Account::new();
        account.generate_one_time_keys(2);
        let passphrase = Passphrase::generate().unwrap();
        assert!(matches!(
            create_backup(
                Identity::unchecked_for_tests(account),
                &passphrase,
                KdfParams::INSECURE_FOR_TESTS
            ),
            Err(BackupError::Identity(IdentityError::HoldsEphemeralKeys))
        ));
    }
}
