//! Files of encrypted rooms: each file gets its own random key and is encrypted in chunks with
//! the STREAM construction (`aead-stream`'s `StreamBE32` over XChaCha20-Poly1305: a 19-byte
//! random nonce prefix, a 32-bit big-endian chunk counter and a "last chunk" flag in every
//! chunk's nonce). Reordered, dropped, duplicated or truncated chunks fail to decrypt, and so does
//! a file cut at a chunk boundary (its new last chunk was not sealed as the last one).
//!
//! Layout of the ciphertext: the plaintext in chunks of [`FILE_CHUNK`] bytes, each followed by
//! its 16-byte tag; the last chunk may be shorter (an empty file is one empty last chunk, 16
//! bytes). The key, nonce and the SHA-256 *of the ciphertext* travel inside the encrypted
//! message ([`crate::rooms::FileRef`]); the hash is checked before any decryption, so a client
//! can tell a wrong download from a tampered one.

use aead_stream::{DecryptorBE32, EncryptorBE32};
use chacha20poly1305::XChaCha20Poly1305;
use sha2::{Digest, Sha256};
use thiserror::Error;
use zeroize::Zeroizing;

use crate::codec::random_bytes;
use crate::rooms::{from_base64, to_base64};

/// Plaintext bytes per chunk.
pub const FILE_CHUNK: usize = 64 * 1024;
const TAG_LEN: usize = 16;
/// Length of the STREAM nonce prefix (XChaCha20's 24 bytes minus STREAM's 5).
pub const FILE_NONCE_LEN: usize = 19;

/// Why a file could not be encrypted or decrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum FileError {
    /// The ciphertext's SHA-256 is not the one the message names: a different or altered upload.
    #[error("the downloaded file is not the one the message refers to")]
    HashMismatch,
    /// A chunk failed to authenticate: altered, reordered or truncated.
    #[error("the file was altered or truncated")]
    Tampered,
    /// A key, nonce or hash has the wrong length or encoding.
    #[error("invalid file key, nonce or hash")]
    Malformed,
    /// More chunks than the 32-bit counter allows.
    #[error("file too large")]
    TooLarge,
    /// The platform's random number generator failed.
    #[error("no randomness available")]
    Randomness,
}

/// A file key (zeroized on drop; no `Clone` or `Debug`).
pub struct FileKey(Zeroizing<[u8; 32]>);

impl FileKey {
    /// Standard base64 with padding, for [`crate::rooms::FileRef::key`].
    pub fn to_base64(&self) -> String {
        to_base64(self.0.as_slice())
    }

    /// Parses [`FileKey::to_base64`].
    pub fn from_base64(text: &str) -> Result<Self, FileError> {
        let bytes = Zeroizing::new(from_base64(text).map_err(|_| FileError::Malformed)?);
        let mut key = Zeroizing::new([0u8; 32]);
        if bytes.len() != key.len() {
            return Err(FileError::Malformed);
        }
        key.copy_from_slice(&bytes);
        Ok(Self(key))
    }
}

/// An encrypted file and what opens it.
pub struct EncryptedFile {
    /// The bytes to upload.
    pub ciphertext: Vec<u8>,
    /// The file's own random key.
    pub key: FileKey,
    /// The STREAM nonce prefix.
    pub nonce: [u8; FILE_NONCE_LEN],
    /// SHA-256 of `ciphertext`.
    pub sha256: [u8; 32],
}

/// Encrypts `plaintext` under a fresh random key.
pub fn encrypt_file(plaintext: &[u8]) -> Result<EncryptedFile, FileError> {
    let mut key = Zeroizing::new([0u8; 32]);
    getrandom::fill(key.as_mut_slice()).map_err(|_| FileError::Randomness)?;
    let nonce: [u8; FILE_NONCE_LEN] = random_bytes().map_err(|_| FileError::Randomness)?;
    let chunks = plaintext.len().div_ceil(FILE_CHUNK).max(1);
    let mut ciphertext = Vec::with_capacity(plaintext.len() + chunks * TAG_LEN);
    let mut encryptor = EncryptorBE32::<XChaCha20Poly1305>::new(&(*key).into(), &nonce.into());
    let mut rest = plaintext;
    while rest.len() > FILE_CHUNK {
        let (chunk, tail) = rest.split_at(FILE_CHUNK);
        ciphertext.extend_from_slice(
            &encryptor
                .encrypt_next(chunk)
                .map_err(|_| FileError::TooLarge)?,
        );
        rest = tail;
    }
    ciphertext.extend_from_slice(
        &encryptor
            .encrypt_last(rest)
            .map_err(|_| FileError::TooLarge)?,
    );
    let sha256 = Sha256::digest(&ciphertext).into();
    Ok(EncryptedFile {
        ciphertext,
        key: FileKey(key),
        nonce,
        sha256,
    })
}

/// Checks the hash, then decrypts every chunk in order; the last must be sealed as the last.
pub fn decrypt_file(
    ciphertext: &[u8],
    key: &FileKey,
    nonce: &[u8],
    sha256: &[u8],
) -> Result<Zeroizing<Vec<u8>>, FileError> {
    let nonce: [u8; FILE_NONCE_LEN] = nonce.try_into().map_err(|_| FileError::Malformed)?;
    let expected: [u8; 32] = sha256.try_into().map_err(|_| FileError::Malformed)?;
    let actual: [u8; 32] = Sha256::digest(ciphertext).into();
    if actual != expected {
        return Err(FileError::HashMismatch);
    }
    let mut plaintext = Zeroizing::new(Vec::with_capacity(ciphertext.len()));
    let mut decryptor = DecryptorBE32::<XChaCha20Poly1305>::new(&(*key.0).into(), &nonce.into());
    let mut rest = ciphertext;
    // A full-size chunk is the last one only if nothing follows it.
    while rest.len() > FILE_CHUNK + TAG_LEN {
        let (chunk, tail) = rest.split_at(FILE_CHUNK + TAG_LEN);
        let opened = Zeroizing::new(
            decryptor
                .decrypt_next(chunk)
                .map_err(|_| FileError::Tampered)?,
        );
        plaintext.extend_from_slice(&opened);
        rest = tail;
    }
    let opened = Zeroizing::new(
        decryptor
            .decrypt_last(rest)
            .map_err(|_| FileError::Tampered)?,
    );
    plaintext.extend_from_slice(&opened);
    Ok(plaintext)
}
