//! XChaCha20-Poly1305 sealing with random nonces, and HKDF subkeys. Shared by the key backup and
//! the trust store; nothing here is a new primitive, only the glue around audited ones.

use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{KeyInit, XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::codec::random_bytes;

/// Bytes a sealed box adds to its plaintext: a 24-byte nonce and a 16-byte tag.
pub(crate) const SEAL_OVERHEAD: usize = NONCE_LEN + 16;
const NONCE_LEN: usize = 24;

/// Why sealing or opening failed. Deliberately coarse: an attacker learns nothing about why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SealError {
    /// No randomness was available for the nonce.
    Random,
    /// Wrong key, tampered ciphertext or associated data, or truncated input.
    Open,
}

/// Encrypts `plaintext` under `key`, binding `aad`; returns `nonce || ciphertext || tag`.
pub(crate) fn seal(key: &[u8; 32], aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, SealError> {
    let nonce: [u8; NONCE_LEN] = random_bytes().map_err(|_| SealError::Random)?;
    let cipher = XChaCha20Poly1305::new(&(*key).into());
    let ciphertext = cipher
        .encrypt(
            &XNonce::from(nonce),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .map_err(|_| SealError::Open)?;
    let mut out = Vec::with_capacity(NONCE_LEN + ciphertext.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ciphertext);
    Ok(out)
}

/// Opens what [`seal`] produced.
pub(crate) fn open(
    key: &[u8; 32],
    aad: &[u8],
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, SealError> {
    if sealed.len() < SEAL_OVERHEAD {
        return Err(SealError::Open);
    }
    let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
    let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| SealError::Open)?;
    let cipher = XChaCha20Poly1305::new(&(*key).into());
    cipher
        .decrypt(
            &XNonce::from(nonce),
            Payload {
                msg: ciphertext,
                aad,
            },
        )
        .map(Zeroizing::new)
        .map_err(|_| SealError::Open)
}

/// A 32-byte subkey of `key` for one purpose (HKDF-SHA-256 with `info` naming the purpose).
pub(crate) fn subkey(key: &[u8; 32], info: &[u8]) -> Zeroizing<[u8; 32]> {
    let mut out = Zeroizing::new([0u8; 32]);
    // 32 bytes is far below HKDF-SHA-256's limit of 255 * 32, so expansion cannot fail.
    let _ = Hkdf::<Sha256>::new(None, key).expand(info, out.as_mut_slice());
    out
}
