//! Property tests of encrypted rooms: any content round-trips and any change to an envelope is
//! refused; any member set can open its shares and nobody else can; any file length round-trips
//! and any truncation fails; the decoders never panic on arbitrary bytes.

#![cfg(not(target_arch = "wasm32"))]

use std::sync::LazyLock;

use proptest::prelude::*;
use sotto_crypto::files::{FILE_CHUNK, decrypt_file, encrypt_file};
use sotto_crypto::identity::Identity;
use sotto_crypto::rooms::{
    Member, RoomContent, RoomKey, RoomKeyRing, create_shares, envelope_key_id, open_share,
    peek_share,
};

const ROOM: i64 = 7;

/// Generating identities dominates the run time, so the properties share a few.
static IDENTITIES: LazyLock<Vec<Identity>> =
    LazyLock::new(|| (0..6).map(|_| Identity::generate()).collect());

fn member(index: usize, user_id: i64) -> Member {
    let identity = &IDENTITIES[index];
    Member::verify(
        user_id,
        identity.public().ed25519,
        &identity.signed_agreement_key(user_id),
    )
    .unwrap()
}

/// A ring holding one fresh key for ROOM, and the key's id.
fn ring() -> (RoomKeyRing, sotto_crypto::rooms::KeyId) {
    let mut ring = RoomKeyRing::new(ROOM);
    let key = RoomKey::generate().unwrap();
    let id = key.id();
    ring.insert(key);
    (ring, id)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn any_text_round_trips_and_any_single_change_is_refused(
        text in ".{0,300}",
        sender in 0i64..=i64::MAX,
        flip in any::<prop::sample::Index>(),
        bit in 0u8..8,
        cut in any::<prop::sample::Index>(),
    ) {
        let (ring, key_id) = ring();
        let identity = &IDENTITIES[0];
        let ed25519 = identity.public().ed25519;
        let envelope = ring.encrypt(identity, key_id, sender, &RoomContent::text(text.clone())).unwrap();
        let decrypted = ring.decrypt(&envelope, sender, &ed25519).unwrap();
        prop_assert_eq!(decrypted.content.text, Some(text));
        prop_assert_eq!(decrypted.sender, sender);
        prop_assert_eq!(envelope_key_id(&envelope).unwrap(), key_id);

        let mut tampered = envelope.clone();
        tampered[flip.index(envelope.len())] ^= 1 << bit;
        prop_assert!(ring.decrypt(&tampered, sender, &ed25519).is_err());
        prop_assert!(ring.decrypt(&envelope[..cut.index(envelope.len())], sender, &ed25519).is_err());
        // Another author (or the right author with another key) never passes.
        prop_assert!(ring.decrypt(&envelope, sender ^ 1, &ed25519).is_err());
        prop_assert!(ring.decrypt(&envelope, sender, &IDENTITIES[1].public().ed25519).is_err());
    }

    #[test]
    fn every_member_opens_its_share_and_nobody_else_does(
        ids in prop::collection::btree_set(0i64..1000, 1..=5),
        distributor in any::<prop::sample::Index>(),
    ) {
        let ids: Vec<i64> = ids.into_iter().collect();
        let members: Vec<Member> = ids.iter().enumerate().map(|(i, &id)| member(i, id)).collect();
        let from = distributor.index(ids.len());
        let key = RoomKey::generate().unwrap();
        let shares = create_shares(&IDENTITIES[from], ROOM, ids[from], &key, &members).unwrap();
        prop_assert_eq!(shares.len(), ids.len());
        for (i, &id) in ids.iter().enumerate() {
            let share = &shares.iter().find(|(user, _)| *user == id).unwrap().1;
            prop_assert_eq!(&peek_share(share).unwrap().recipients, &ids);
            let (opened, header) =
                open_share(&IDENTITIES[i], ROOM, id, share, &members[from], Some(&ids)).unwrap();
            prop_assert_eq!(opened.id(), key.id());
            prop_assert_eq!(header.distributor, ids[from]);
            // The sixth identity is never a member: it cannot open anyone's share.
            prop_assert!(open_share(&IDENTITIES[5], ROOM, id, share, &members[from], None).is_err());
            // Nor can a member open another member's share.
            let j = (i + 1) % ids.len();
            if j != i {
                prop_assert!(
                    open_share(&IDENTITIES[j], ROOM, ids[j], share, &members[from], Some(&ids)).is_err()
                );
            }
        }
    }

    #[test]
    fn any_file_length_round_trips_and_any_truncation_fails(
        len in prop_oneof![0usize..300, (FILE_CHUNK - 2)..(FILE_CHUNK + 2), (2 * FILE_CHUNK - 1)..(2 * FILE_CHUNK + 1)],
        cut in any::<prop::sample::Index>(),
    ) {
        let plaintext: Vec<u8> = (0..len).map(|i| (i * 31 % 256) as u8).collect();
        let encrypted = encrypt_file(&plaintext).unwrap();
        let opened = decrypt_file(&encrypted.ciphertext, &encrypted.key, &encrypted.nonce, &encrypted.sha256).unwrap();
        prop_assert_eq!(&*opened, &plaintext);
        let short = &encrypted.ciphertext[..cut.index(encrypted.ciphertext.len())];
        let hash: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(short).into();
        prop_assert!(decrypt_file(short, &encrypted.key, &encrypted.nonce, &hash).is_err());
    }

    #[test]
    fn the_decoders_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let _ = envelope_key_id(&bytes);
        let _ = peek_share(&bytes);
        let (ring, _) = ring();
        let _ = ring.decrypt(&bytes, 1, &IDENTITIES[0].public().ed25519);
        let _ = open_share(&IDENTITIES[0], ROOM, 1, &bytes, &member(1, 2), None);
        // The same with a valid header in front, so the length checks deeper in are reached.
        let mut prefixed = b"SOTTOE2\x01".to_vec();
        prefixed.extend_from_slice(&bytes);
        let _ = envelope_key_id(&prefixed);
        let _ = ring.decrypt(&prefixed, 1, &IDENTITIES[0].public().ed25519);
        let mut prefixed = b"SOTTORS\x01".to_vec();
        prefixed.extend_from_slice(&bytes);
        let _ = peek_share(&prefixed);
    }
}
