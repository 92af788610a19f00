//! Entry points shared by the fuzz targets (`fuzz/`) and the corpus replay test
//! (`tests/fuzz_corpus.rs`). Each takes arbitrary bytes, must never panic on bad input, and
//! panics only when a decoder breaks its own contract (decode → encode → decode differs).
//! Not part of the API.

#![allow(clippy::panic, clippy::indexing_slicing, missing_docs)]

use crate::backup::{KdfParams, backup_params, unlock_backup};
use crate::identity::PublicIdentity;
use crate::otr::{Packet, SessionId, reply_to_unknown_session};
use crate::rooms::{
    ENVELOPE_KEY_ID_OFFSET, KeyId, Member, RoomKey, RoomKeyRing, envelope_key_id, open_share,
    peek_share,
};

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

/// Arbitrary packets fed to a live session in each phase. The first byte picks the phase
/// (not started, offered, invited, waiting for the pre-key message, waiting for confirmation,
/// established); the rest is a series of `u16 length | flags | packet` records. Flag bit 0
/// stamps the session's current id into the packet, so mutations reach the deep states. Nothing
/// may panic, and no state may hold keys it should not.
pub fn session(bytes: &[u8]) {
    use crate::identity::Identity;
    use crate::otr::{OtrKeys, OtrSession, OtrState, SESSION_ID_OFFSET};
    use crate::trust::TrustStore;

    let Some((&phase, mut rest)) = bytes.split_first() else {
        return;
    };
    let (alice_id, bob_id) = (Identity::generate(), Identity::generate());
    let (mut alice_otr, mut bob_otr) = (alice_id.otr_identity(), bob_id.otr_identity());
    let (mut alice_trust, mut bob_trust) = (TrustStore::new(), TrustStore::new());
    alice_trust.observe("bob", bob_id.public());
    bob_trust.observe("alice", alice_id.public());
    let (Ok(mut alice), Ok(mut bob)) = (
        OtrSession::new("room", "alice", "bob"),
        OtrSession::new("room", "bob", "alice"),
    ) else {
        return;
    };
    macro_rules! keys {
        ($otr:expr, $trust:expr) => {
            OtrKeys {
                identity: &mut $otr,
                trust: &$trust,
            }
        };
    }
    // Drive a real handshake up to the chosen phase; Bob is the session under test.
    let mut to_bob = Vec::new();
    if phase % 6 >= 2 {
        let Ok(step) = alice.start(keys!(alice_otr, alice_trust)) else {
            return;
        };
        to_bob = step.send;
        for packet in to_bob.drain(..) {
            let _ = bob.receive_packet(keys!(bob_otr, bob_trust), packet);
        }
    }
    if phase % 6 >= 3 {
        let Ok(step) = bob.accept(keys!(bob_otr, bob_trust)) else {
            return;
        };
        for packet in step.send {
            if let Ok(step) = alice.receive_packet(keys!(alice_otr, alice_trust), packet) {
                to_bob.extend(step.send);
            }
        }
    }
    if phase % 6 >= 5 {
        for packet in to_bob.drain(..) {
            let _ = bob.receive_packet(keys!(bob_otr, bob_trust), packet);
        }
    }
    if phase % 6 == 1 {
        let _ = bob.start(keys!(bob_otr, bob_trust));
    }
    if phase % 6 == 4 {
        // Swap roles so the session under test waits for a confirmation.
        std::mem::swap(&mut alice, &mut bob);
        std::mem::swap(&mut alice_otr, &mut bob_otr);
        std::mem::swap(&mut alice_trust, &mut bob_trust);
    }

    while rest.len() >= 3 {
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        let flags = rest[2];
        let Some(record) = rest.get(3..3 + len) else {
            return;
        };
        rest = &rest[3 + len..];
        let mut packet = record.to_vec();
        if flags & 1 == 1
            && let (Some(id), Some(slot)) = (
                bob.session_id(),
                packet.get_mut(SESSION_ID_OFFSET..SESSION_ID_OFFSET + 16),
            )
        {
            slot.copy_from_slice(&id.0);
        }
        let _ = bob.receive(keys!(bob_otr, bob_trust), &packet);
        if bob.state() == OtrState::Established {
            let _ = bob.send_text("probe");
        }
        let holds = bob.holds_keys();
        let live = matches!(bob.state(), OtrState::Establishing | OtrState::Established);
        assert_eq!(holds, live, "keys held outside a live state");
        if !live {
            assert_eq!(
                bob_otr.one_time_key_count(),
                0,
                "one-time key outlived its handshake"
            );
        }
    }
}

thread_local! {
    /// One identity per fuzzing thread: generating keys per input would dominate the run.
    static FUZZ_IDENTITY: crate::identity::Identity = crate::identity::Identity::generate();
}

/// The fuzz identity as a verified member with user id `user_id`.
fn fuzz_member(identity: &crate::identity::Identity, user_id: i64) -> Member {
    Member::verify(
        user_id,
        identity.public().ed25519,
        &identity.signed_agreement_key(user_id),
    )
    .unwrap_or_else(|_| panic!("the harness's own member does not verify"))
}

/// Room message envelopes: the decoder and the key-id peek agree, and a ring holding a key
/// under the envelope's key id runs the whole decryption (AEAD, sender and signature checks,
/// JSON) without panicking.
pub fn room_envelope(bytes: &[u8]) {
    let peeked = envelope_key_id(bytes);
    if let Ok(key_id) = peeked {
        assert_eq!(
            bytes.get(ENVELOPE_KEY_ID_OFFSET..ENVELOPE_KEY_ID_OFFSET + 16),
            Some(key_id.0.as_slice()),
            "the key id is not where the documented offset says"
        );
    }
    let key_id = peeked.unwrap_or(KeyId([0; 16]));
    let mut ring = RoomKeyRing::new(1);
    ring.insert(RoomKey::from_parts_for_fuzzing(key_id, [7; 32]));
    let sender = bytes
        .get(24..32)
        .and_then(|b| b.try_into().ok())
        .map_or(0, i64::from_be_bytes);
    FUZZ_IDENTITY.with(|identity| {
        let _ = ring.decrypt(bytes, sender, &identity.public().ed25519);
    });
}

/// Room key shares: the decoder, and the whole opening (every check, HPKE) for the harness's
/// identity as distributor and recipient, with and without an expected membership.
pub fn room_share(bytes: &[u8]) {
    let Ok(header) = peek_share(bytes) else {
        return;
    };
    assert!(
        header.recipients.windows(2).all(|w| w[0] < w[1]),
        "recipients not strictly ascending"
    );
    FUZZ_IDENTITY.with(|identity| {
        let distributor = fuzz_member(identity, header.distributor);
        let recipient = header.recipients.first().copied().unwrap_or(0);
        let _ = open_share(
            identity,
            header.room_id,
            recipient,
            bytes,
            &distributor,
            None,
        );
        let _ = open_share(
            identity,
            header.room_id,
            recipient,
            bytes,
            &distributor,
            Some(&header.recipients),
        );
    });
}

/// Published agreement keys: `key signature` as text parses, re-encodes identically, and
/// verifies (or not) without panicking; also key ids and the base64 decoder.
pub fn agreement_key(bytes: &[u8]) {
    use crate::identity::SignedAgreementKey;
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    let _ = KeyId::from_base64(text);
    let _ = crate::rooms::from_base64(text);
    if let Some((key, signature)) = text.split_once(' ')
        && let Ok(signed) = SignedAgreementKey::from_base64(key, signature)
    {
        let (k, s) = signed.to_base64();
        assert_eq!(
            SignedAgreementKey::from_base64(&k, &s).ok(),
            Some(signed),
            "agreement key did not round-trip"
        );
        FUZZ_IDENTITY.with(|identity| {
            let _ = Member::verify(7, identity.public().ed25519, &signed);
        });
    }
}

/// Well-formed inputs for the room targets, to seed their corpora (`tests/fuzz_corpus.rs`,
/// the ignored `seed_room_corpora`): envelopes under the key `room_envelope` installs (so
/// mutations get past the AEAD), a share, and a signed agreement key.
pub fn room_seeds() -> Vec<(&'static str, Vec<u8>)> {
    use crate::rooms::{FileRef, RoomContent, create_shares};
    FUZZ_IDENTITY.with(|identity| {
        let mut seeds = Vec::new();
        let mut ring = RoomKeyRing::new(1);
        let key_id = KeyId([1; 16]);
        ring.insert(RoomKey::from_parts_for_fuzzing(key_id, [7; 32]));
        let file = RoomContent {
            text: Some("caption".into()),
            file: Some(FileRef {
                key: "a2V5".into(),
                nonce: "bm9uY2U=".into(),
                sha256: "aGFzaA==".into(),
                name: "a.txt".into(),
                media_type: "text/plain".into(),
                size: 3,
                upload_id: 9,
            }),
        };
        for content in [RoomContent::text("hello"), file] {
            if let Ok(envelope) = ring.encrypt(identity, key_id, 5, &content) {
                seeds.push(("room_envelope", envelope));
            }
        }
        let other = crate::identity::Identity::generate();
        let other_member = fuzz_member(&other, 6);
        if let Ok(key) = RoomKey::generate()
            && let Ok(shares) = create_shares(
                identity,
                3,
                5,
                &key,
                &[fuzz_member(identity, 5), other_member],
            )
        {
            seeds.extend(shares.into_iter().map(|(_, share)| ("room_share", share)));
        }
        let (key, signature) = identity.signed_agreement_key(7).to_base64();
        seeds.push(("agreement_key", format!("{key} {signature}").into_bytes()));
        seeds.push((
            "agreement_key",
            crate::rooms::KeyId([2; 16]).to_base64().into_bytes(),
        ));
        seeds
    })
}
