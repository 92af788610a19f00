//! Entry points shared by the fuzz targets (`fuzz/`) and the corpus replay test
//! (`tests/fuzz_corpus.rs`). Each takes arbitrary bytes, must never panic on bad input, and
//! panics only when a decoder breaks its own contract (decode → encode → decode differs).
//! Not part of the API.

#![allow(clippy::panic, missing_docs)]

use crate::backup::{KdfParams, backup_params, unlock_backup};
use crate::identity::PublicIdentity;
use crate::otr::{Packet, SessionId, reply_to_unknown_session};

/// OTR packets: decode, and a decodable packet survives encode → decode unchanged.
pub fn packet(bytes: &[u8]) {
    let _ = Packet::peek(bytes);
    let _ = reply_to_unknown_session(bytes);
    if let Ok(packet) = Packet::decode(bytes) {
        let encoded = packet.encode();
        match Packet::decode(&encoded) {
            Ok(again) if again == packet => {}
            _ => panic!("packet did not survive encode -> decode"),
        }
    }
}

/// Messages inside the channel: decodable input re-encodes to exactly the same bytes.
pub fn inner(bytes: &[u8]) {
    if crate::otr::check_inner_round_trip(bytes) == Some(false) {
        panic!("inner message did not round-trip");
    }
}

/// Key backups: parsing never panics; where the stored parameters are cheap, the full unlock
/// (Argon2id, unwrap, open, import) runs too and must fail cleanly.
pub fn backup(bytes: &[u8]) {
    if let Ok(params) = backup_params(bytes) {
        let cheap = KdfParams::INSECURE_FOR_TESTS;
        if params.m_cost_kib <= cheap.m_cost_kib && params.t_cost <= 1 && params.p_cost <= 1 {
            let _ = unlock_backup(bytes, "fuzz");
        }
    }
}

/// The trust store's plaintext (after decryption) and public keys in their encodings.
pub fn keys_and_trust(bytes: &[u8]) {
    let _ = crate::trust::TrustStore::decode_plaintext(bytes);
    if let Ok(keys) = PublicIdentity::from_bytes(bytes) {
        assert_eq!(
            PublicIdentity::from_bytes(&keys.to_bytes()).ok(),
            Some(keys)
        );
    }
    if let Ok(text) = std::str::from_utf8(bytes) {
        if let Some(id) = SessionId::from_hex(text) {
            assert_eq!(SessionId::from_hex(&id.to_hex()), Some(id));
        }
        if let Some((curve, ed)) = text.split_once(' ') {
            let _ = PublicIdentity::from_base64(curve, ed);
        }
    }
}
