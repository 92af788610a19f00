//! End-to-end encrypted rooms: key distribution, envelopes, rotation, files and the agreement
//! key derived from the identity (the same from every backup). Runs natively and, compiled to wasm32,
//! under wasm-bindgen-test (see scripts/test.sh).

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use sotto_crypto::backup::{
    KdfParams, Passphrase, StorageKey, change_passphrase, create_backup, unlock_backup,
    unlock_backup_with_storage_key,
};
use sotto_crypto::files::{FILE_CHUNK, FileError, FileKey, decrypt_file, encrypt_file};
use sotto_crypto::identity::{Identity, IdentityError, SignedAgreementKey};
use sotto_crypto::rooms::{
    ENVELOPE_CIPHERTEXT_OFFSET, ENVELOPE_KEY_ID_OFFSET, ENVELOPE_SENDER_OFFSET, FileRef, KeyId,
    MAX_RECIPIENTS, Member, RoomContent, RoomError, RoomKey, RoomKeyRing, create_shares,
    envelope_key_id, open_share, peek_share,
};
use sotto_crypto::vodozemac::olm::Account;

const ROOM: i64 = 42;

struct User {
    id: i64,
    identity: Identity,
    ring: RoomKeyRing,
}

impl User {
    fn new(id: i64) -> Self {
        Self {
            id,
            identity: Identity::generate(),
            ring: RoomKeyRing::new(ROOM),
        }
    }

    /// What another client verifies after looking this user up in the directory.
    fn member(&self) -> Member {
        let signed = self.identity.signed_agreement_key(self.id);
        let (key, signature) = signed.to_base64();
        let published = SignedAgreementKey::from_base64(&key, &signature).unwrap();
        Member::verify(self.id, self.identity.public().ed25519, &published).unwrap()
    }

    /// Writes under `key_id` for the membership the key was shared with.
    fn say(&self, key_id: KeyId, text: &str) -> Vec<u8> {
        let members = self.ring.recipients(key_id).unwrap().to_vec();
        self.ring
            .encrypt(
                &self.identity,
                key_id,
                self.id,
                &RoomContent::text(text),
                &members,
            )
            .unwrap()
    }

    fn read(&self, envelope: &[u8], author: &User) -> Result<String, RoomError> {
        let decrypted =
            self.ring
                .decrypt(envelope, author.id, &author.identity.public().ed25519)?;
        assert_eq!(decrypted.sender, author.id);
        Ok(decrypted.content.text.unwrap())
    }
}

/// `distributor` creates a key for `members` and everyone (the distributor too) adds their
/// share, checking it against the membership. Returns the key id.
fn distribute(distributor: usize, users: &mut [&mut User]) -> KeyId {
    let members: Vec<Member> = users.iter().map(|user| user.member()).collect();
    let member_ids: Vec<i64> = users.iter().map(|user| user.id).collect();
    let key = RoomKey::generate().unwrap();
    let key_id = key.id();
    let from = &users[distributor];
    let created = create_shares(&from.identity, ROOM, from.id, &key, &members).unwrap();
    let shares = created.shares;
    let distributor_member = members[distributor];
    assert_eq!(shares.len(), users.len());
    for user in users.iter_mut() {
        let share = &shares.iter().find(|(id, _)| *id == user.id).unwrap().1;
        let (key, header) = open_share(
            &user.identity,
            ROOM,
            user.id,
            share,
            &distributor_member,
            &member_ids,
        )
        .unwrap();
        assert_eq!(header, created.header);
        assert_eq!(key.id(), key_id);
        assert_eq!(header.key_id, key_id);
        assert_eq!(header.distributor, distributor_member.user_id());
        let mut sorted = member_ids.clone();
        sorted.sort_unstable();
        assert_eq!(header.recipients, sorted);
        assert_eq!(user.ring.insert(key, &header), Ok(true));
        assert_eq!(user.ring.newest(), Some(key_id));
    }
    key_id
}

#[test]
fn members_exchange_a_key_and_read_each_other() {
    let (mut alice, mut bob, mut carol) = (User::new(1), User::new(2), User::new(3));
    let key_id = distribute(0, &mut [&mut alice, &mut bob, &mut carol]);
    let envelope = bob.say(key_id, "hello room");
    assert_eq!(envelope_key_id(&envelope).unwrap(), key_id);
    assert_eq!(
        &envelope[ENVELOPE_KEY_ID_OFFSET..ENVELOPE_KEY_ID_OFFSET + 16],
        &key_id.0
    );
    assert_eq!(
        &envelope[ENVELOPE_SENDER_OFFSET..ENVELOPE_SENDER_OFFSET + 8],
        &2u64.to_be_bytes()
    );
    for reader in [&alice, &bob, &carol] {
        assert_eq!(reader.read(&envelope, &bob).unwrap(), "hello room");
    }
    // Files ride inside the content.
    let file = RoomContent {
        text: Some("the plan".into()),
        file: Some(FileRef {
            key: "k".into(),
            nonce: "n".into(),
            sha256: "h".into(),
            name: "plan.pdf".into(),
            media_type: "application/pdf".into(),
            size: 1234,
            upload_id: 9,
        }),
    };
    let envelope = carol
        .ring
        .encrypt(&carol.identity, key_id, carol.id, &file, &[3, 2, 1])
        .unwrap();
    let decrypted = alice
        .ring
        .decrypt(&envelope, carol.id, &carol.identity.public().ed25519)
        .unwrap();
    assert_eq!(decrypted.content, file);
    assert!(!format!("{file:?}").contains("plan"), "no content in Debug");
    // An empty message is refused on both sides.
    assert_eq!(
        alice.ring.encrypt(
            &alice.identity,
            key_id,
            alice.id,
            &RoomContent::default(),
            &[1, 2, 3]
        ),
        Err(RoomError::EmptyContent)
    );
}

#[test]
fn an_insider_cannot_write_in_another_members_name() {
    let (mut alice, mut bob, mut mallory) = (User::new(1), User::new(2), User::new(3));
    let key_id = distribute(0, &mut [&mut alice, &mut bob, &mut mallory]);
    // Mallory holds the room key and claims to be Bob in the envelope, signing with her key.
    let forged = mallory
        .ring
        .encrypt(
            &mallory.identity,
            key_id,
            bob.id,
            &RoomContent::text("pay mallory"),
            &[1, 2, 3],
        )
        .unwrap();
    // The server stamps the real author (Mallory): the envelope's sender differs.
    assert_eq!(alice.read(&forged, &mallory), Err(RoomError::WrongSender));
    // A server colluding with Mallory stamps Bob: the signature is not Bob's.
    assert_eq!(alice.read(&forged, &bob), Err(RoomError::WrongSender));
    // Mallory's honest message is hers, and cannot be passed off as Bob's either.
    let honest = mallory.say(key_id, "hi");
    assert_eq!(alice.read(&honest, &mallory).unwrap(), "hi");
    assert_eq!(alice.read(&honest, &bob), Err(RoomError::WrongSender));
}

#[test]
fn every_flipped_byte_of_an_envelope_is_refused() {
    let (mut alice, mut bob) = (User::new(1), User::new(2));
    let key_id = distribute(0, &mut [&mut alice, &mut bob]);
    let envelope = alice.say(key_id, "tamper with me");
    for index in 0..envelope.len() {
        for bit in [0x01, 0x80] {
            let mut tampered = envelope.clone();
            tampered[index] ^= bit;
            let result = bob.read(&tampered, &alice);
            assert!(result.is_err(), "byte {index} bit {bit:#x}");
            // The ciphertext and the authenticated header report tampering precisely.
            // (The sender's top bit would make it negative: malformed.)
            if (ENVELOPE_SENDER_OFFSET + 1..envelope.len() - 64).contains(&index)
                && !(56..60).contains(&index)
            {
                assert_eq!(result, Err(RoomError::Tampered), "byte {index}");
            }
        }
    }
    // Truncated at every length, and with trailing bytes.
    for len in 0..envelope.len() {
        assert!(bob.read(&envelope[..len], &alice).is_err(), "length {len}");
    }
    let mut longer = envelope.clone();
    longer.push(0);
    assert_eq!(bob.read(&longer, &alice), Err(RoomError::Malformed));
    let mut future = envelope.clone();
    future[7] = 2;
    assert_eq!(bob.read(&future, &alice), Err(RoomError::UnknownVersion(2)));
    assert_eq!(envelope_key_id(&future), Err(RoomError::UnknownVersion(2)));
    // The same key in another room's ring does not open it: the room id is associated data.
    // (A ring refuses a header for another room, so the misfiled ring is built by relabelling
    // the header, as a client with a bug could.)
    let key = RoomKey::generate().unwrap();
    let members = [alice.member(), bob.member()];
    let created = create_shares(&alice.identity, ROOM, alice.id, &key, &members).unwrap();
    let mut alice_ring = RoomKeyRing::new(ROOM);
    assert_eq!(alice_ring.insert(key, &created.header), Ok(true));
    let (bobs_key, mut header) = open_share(
        &bob.identity,
        ROOM,
        bob.id,
        &created.shares[1].1,
        &members[0],
        &[1, 2],
    )
    .unwrap();
    let mut misfiled = RoomKeyRing::new(ROOM + 1);
    assert_eq!(
        misfiled.insert(RoomKey::generate().unwrap(), &header),
        Err(RoomError::WrongRoom)
    );
    header.room_id = ROOM + 1;
    assert_eq!(misfiled.insert(bobs_key, &header), Ok(true));
    let envelope = alice_ring
        .encrypt(
            &alice.identity,
            misfiled.newest().unwrap(),
            alice.id,
            &RoomContent::text("x"),
            &[1, 2],
        )
        .unwrap();
    assert_eq!(
        misfiled
            .decrypt(&envelope, alice.id, &alice.identity.public().ed25519)
            .err(),
        Some(RoomError::Tampered)
    );
    assert_eq!(ENVELOPE_CIPHERTEXT_OFFSET, 60);
}

#[test]
fn an_unknown_key_is_reported_by_id() {
    let (mut alice, mut bob) = (User::new(1), User::new(2));
    let key_id = distribute(0, &mut [&mut alice, &mut bob]);
    let envelope = alice.say(key_id, "before you joined");
    let carol = User::new(3);
    assert_eq!(
        carol.read(&envelope, &alice),
        Err(RoomError::KeyNotShared(key_id))
    );
}

/// Bob's share of `shares`.
fn share_of(shares: &[(i64, Vec<u8>)], user: &User) -> Vec<u8> {
    shares
        .iter()
        .find(|(id, _)| *id == user.id)
        .unwrap()
        .1
        .clone()
}

#[test]
fn shares_from_non_members_with_wrong_recipients_or_for_other_rooms_are_refused() {
    let (alice, bob, carol, eve) = (User::new(1), User::new(2), User::new(3), User::new(66));
    let room_members = [alice.id, bob.id, carol.id];
    let key = RoomKey::generate().unwrap();

    // Eve is not a member, but distributes a key to the members and herself.
    let created = create_shares(
        &eve.identity,
        ROOM,
        eve.id,
        &key,
        &[alice.member(), bob.member(), carol.member(), eve.member()],
    )
    .unwrap();
    let to_bob = share_of(&created.shares, &bob);
    assert_eq!(
        open_share(
            &bob.identity,
            ROOM,
            bob.id,
            &to_bob,
            &eve.member(),
            &room_members
        )
        .err(),
        Some(RoomError::DistributorNotMember)
    );
    // (A share whose recipients leave out its own distributor can only be built by hand; see
    // the unit test `a_distributor_missing_from_the_recipients_is_refused` in rooms.rs.)

    // Alice (a member) shares with a list that leaves Carol out, or adds Eve.
    for members in [
        vec![alice.member(), bob.member()],
        vec![alice.member(), bob.member(), carol.member(), eve.member()],
    ] {
        let created = create_shares(&alice.identity, ROOM, alice.id, &key, &members).unwrap();
        let to_bob = share_of(&created.shares, &bob);
        assert_eq!(
            open_share(
                &bob.identity,
                ROOM,
                bob.id,
                &to_bob,
                &alice.member(),
                &room_members
            )
            .err(),
            Some(RoomError::MembersMismatch)
        );
    }
    // An expected membership without the distributor refuses even Alice's honest share.
    let members = [alice.member(), bob.member(), carol.member()];
    let created = create_shares(&alice.identity, ROOM, alice.id, &key, &members).unwrap();
    let to_bob = share_of(&created.shares, &bob);
    assert_eq!(
        open_share(
            &bob.identity,
            ROOM,
            bob.id,
            &to_bob,
            &alice.member(),
            &[2, 3]
        )
        .err(),
        Some(RoomError::DistributorNotMember)
    );
    // For another room.
    assert_eq!(
        open_share(
            &bob.identity,
            ROOM + 1,
            bob.id,
            &to_bob,
            &alice.member(),
            &room_members
        )
        .err(),
        Some(RoomError::WrongRoom)
    );
    // Presented as coming from Carol.
    assert_eq!(
        open_share(
            &bob.identity,
            ROOM,
            bob.id,
            &to_bob,
            &carol.member(),
            &room_members
        )
        .err(),
        Some(RoomError::WrongDistributor)
    );
    // Bob's share opened by Carol (she is a recipient, but the share is sealed to Bob).
    assert_eq!(
        open_share(
            &carol.identity,
            ROOM,
            carol.id,
            &to_bob,
            &alice.member(),
            &room_members
        )
        .err(),
        Some(RoomError::Tampered)
    );
    // Eve, who is not a recipient, gets hold of Bob's share (and claims the room's membership
    // includes her).
    assert_eq!(
        open_share(
            &eve.identity,
            ROOM,
            eve.id,
            &to_bob,
            &alice.member(),
            &room_members
        )
        .err(),
        Some(RoomError::NotARecipient)
    );
    // Eve (or the server) rewrites the header to insert herself into the recipient list, and
    // Bob's client is told she is a member: Alice's signature and HPKE's binding refuse it.
    let mut header = peek_share(&to_bob).unwrap();
    assert_eq!(header.recipients, vec![1, 2, 3]);
    header.recipients.push(eve.id);
    let count_at = 72;
    let recipients_end = count_at + 2 + 8 * 3;
    let mut rewritten = to_bob[..count_at].to_vec();
    rewritten.extend_from_slice(&4u16.to_be_bytes());
    rewritten.extend_from_slice(&to_bob[count_at + 2..recipients_end]);
    rewritten.extend_from_slice(&eve.id.to_be_bytes());
    rewritten.extend_from_slice(&to_bob[recipients_end..]);
    assert_eq!(peek_share(&rewritten).unwrap(), header);
    let with_eve = [alice.id, bob.id, carol.id, eve.id];
    assert_eq!(
        open_share(
            &bob.identity,
            ROOM,
            bob.id,
            &rewritten,
            &alice.member(),
            &with_eve
        )
        .err(),
        Some(RoomError::Tampered)
    );
    // Every flipped byte is refused, and every truncation.
    for index in 0..to_bob.len() {
        let mut tampered = to_bob.clone();
        tampered[index] ^= 0x01;
        let result = open_share(
            &bob.identity,
            ROOM,
            bob.id,
            &tampered,
            &alice.member(),
            &room_members,
        );
        assert!(result.is_err(), "byte {index}");
    }
    for len in 0..to_bob.len() {
        assert_eq!(
            peek_share(&to_bob[..len]),
            Err(RoomError::Malformed),
            "length {len}"
        );
    }
    // The honest share opens.
    let (opened, header) = open_share(
        &bob.identity,
        ROOM,
        bob.id,
        &to_bob,
        &alice.member(),
        &room_members,
    )
    .unwrap();
    assert_eq!(header, created.header);
    assert_eq!(opened.id(), key.id());
}

#[test]
fn a_key_is_written_only_for_its_recipients_and_read_only_from_them() {
    let (mut alice, mut bob, mut carol) = (User::new(1), User::new(2), User::new(3));
    let key_id = distribute(0, &mut [&mut alice, &mut bob]);
    assert_eq!(alice.ring.recipients(key_id), Some([1, 2].as_slice()));
    let text = RoomContent::text("for alice and bob");
    // Carol joined, but the key was shared before: writing under it for the new membership is
    // refused (re-key first), as is writing for a membership that lost someone.
    for members in [vec![1, 2, 3], vec![1], vec![]] {
        assert_eq!(
            alice
                .ring
                .encrypt(&alice.identity, key_id, alice.id, &text, &members),
            Err(RoomError::MembersMismatch),
            "{members:?}"
        );
    }
    // Order and repetition do not matter.
    let envelope = alice
        .ring
        .encrypt(&alice.identity, key_id, alice.id, &text, &[2, 1, 2])
        .unwrap();
    assert_eq!(bob.read(&envelope, &alice).unwrap(), "for alice and bob");
    // Once a key is shared with Carol too, her messages under it are read.
    let shared = distribute(0, &mut [&mut alice, &mut bob, &mut carol]);
    let from_carol = carol.say(shared, "hi");
    assert_eq!(alice.read(&from_carol, &carol).unwrap(), "hi");
    let mut narrow = RoomKeyRing::new(ROOM);
    let key = RoomKey::generate().unwrap();
    let created = create_shares(
        &alice.identity,
        ROOM,
        alice.id,
        &key,
        &[alice.member(), bob.member()],
    )
    .unwrap();
    assert_eq!(narrow.insert(key, &created.header), Ok(true));
    let mut carol_ring = RoomKeyRing::new(ROOM);
    let (carols_copy, header) = open_share(
        &bob.identity,
        ROOM,
        bob.id,
        &share_of(&created.shares, &bob),
        &alice.member(),
        &[1, 2],
    )
    .unwrap();
    // Carol got hold of the key (say, from Bob's leaked memory): she can encrypt with it, but
    // a member's client refuses her as the author of a message under a key not shared with her.
    assert_eq!(carol_ring.insert(carols_copy, &header), Ok(true));
    let leaked = carol_ring
        .encrypt(
            &carol.identity,
            header.key_id,
            carol.id,
            &RoomContent::text("I am not a recipient"),
            &[1, 2],
        )
        .unwrap();
    assert_eq!(
        narrow
            .decrypt(&leaked, carol.id, &carol.identity.public().ed25519)
            .err(),
        Some(RoomError::WrongSender)
    );
}

#[test]
fn a_key_id_held_with_another_secret_or_recipients_is_a_conflict() {
    let (alice, bob) = (User::new(1), User::new(2));
    let members = [alice.member(), bob.member()];
    let key = RoomKey::generate().unwrap();
    let created = create_shares(&alice.identity, ROOM, alice.id, &key, &members).unwrap();
    let open = |share: &[u8]| {
        open_share(&bob.identity, ROOM, bob.id, share, &alice.member(), &[1, 2]).unwrap()
    };
    let mut ring = RoomKeyRing::new(ROOM);
    let (first, header) = open(&created.shares[1].1);
    assert_eq!(ring.insert(first, &header), Ok(true));
    // The same share again (the server re-sends it) changes nothing.
    let (again, header_again) = open(&created.shares[1].1);
    assert_eq!(ring.insert(again, &header_again), Ok(false));
    assert_eq!(ring.len(), 1);
    // A header that does not commit to the key is refused.
    let other = RoomKey::generate().unwrap();
    assert_eq!(ring.insert(other, &header), Err(RoomError::Tampered));
    // The same key id with the same secret but other recipients is a conflict.
    let mut wider = header.clone();
    wider.recipients.push(3);
    let (same, _) = open(&created.shares[1].1);
    assert_eq!(ring.insert(same, &wider), Err(RoomError::KeyConflict));
    assert_eq!(ring.recipients(header.key_id), Some([1, 2].as_slice()));
}

#[test]
fn an_encrypted_room_has_at_most_256_members() {
    assert_eq!(MAX_RECIPIENTS, 256);
    let alice = User::new(1);
    let key = RoomKey::generate().unwrap();
    let extra = Identity::generate();
    let signed = extra.signed_agreement_key(0);
    let mut members = vec![alice.member()];
    // The same verified keys under many user ids (each signed for its own id).
    for id in 2..=256 {
        let signed = extra.signed_agreement_key(id);
        members.push(Member::verify(id, extra.public().ed25519, &signed).unwrap());
    }
    let created = create_shares(&alice.identity, ROOM, alice.id, &key, &members).unwrap();
    assert_eq!(created.shares.len(), 256);
    assert_eq!(created.shares[0].1.len(), 218 + 8 * 256);
    members.push(Member::verify(0, extra.public().ed25519, &signed).unwrap());
    assert_eq!(
        create_shares(&alice.identity, ROOM, alice.id, &key, &members).err(),
        Some(RoomError::TooManyMembers)
    );
}

#[test]
fn a_distributor_signing_with_another_agreement_key_is_refused() {
    // Mallory publishes Bob's agreement key as hers: the signature is Bob's, not hers.
    let (bob, mallory) = (User::new(2), User::new(3));
    let bobs = bob.identity.signed_agreement_key(bob.id);
    assert!(matches!(
        Member::verify(mallory.id, mallory.identity.public().ed25519, &bobs),
        Err(RoomError::Identity(IdentityError::BadAgreementSignature))
    ));
    // Bob's signed key does not transfer to another user id either.
    assert!(Member::verify(mallory.id, bob.identity.public().ed25519, &bobs).is_err());
    let (key, signature) = bobs.to_base64();
    assert_eq!(key.len(), 43);
    assert_eq!(signature.len(), 86);
    assert!(SignedAgreementKey::from_base64(&key, &signature[1..]).is_err());
    assert!(SignedAgreementKey::from_base64(&key[1..], &signature).is_err());
}

#[test]
fn the_member_list_must_hold_the_distributor_once_with_its_current_keys() {
    let (alice, bob) = (User::new(1), User::new(2));
    let key = RoomKey::generate().unwrap();
    for members in [
        vec![],
        vec![bob.member()],
        vec![alice.member(), bob.member(), bob.member()],
    ] {
        assert_eq!(
            create_shares(&alice.identity, ROOM, alice.id, &key, &members).err(),
            Some(RoomError::InvalidMembers)
        );
    }
}

#[test]
fn old_keys_open_old_messages_and_a_removed_member_cannot_read_new_ones() {
    let (mut alice, mut bob, mut carol) = (User::new(1), User::new(2), User::new(3));
    let first = distribute(0, &mut [&mut alice, &mut bob, &mut carol]);
    let before = alice.say(first, "before the rotation");
    // Carol leaves; Bob rotates for the remaining members.
    let second = distribute(1, &mut [&mut alice, &mut bob]);
    assert_ne!(first, second);
    assert_eq!(alice.ring.newest(), Some(second));
    assert_eq!(alice.ring.len(), 2);
    let after = alice.say(second, "after the rotation");
    for reader in [&alice, &bob] {
        assert_eq!(reader.read(&before, &alice).unwrap(), "before the rotation");
        assert_eq!(reader.read(&after, &alice).unwrap(), "after the rotation");
    }
    assert_eq!(carol.read(&before, &alice).unwrap(), "before the rotation");
    assert_eq!(
        carol.read(&after, &alice),
        Err(RoomError::KeyNotShared(second))
    );
    // Carol's ring still ends at the first key.
    assert_eq!(carol.ring.newest(), Some(first));
    assert_eq!(carol.ring.len(), 1);
}

#[test]
fn files_round_trip_and_refuse_truncation_reordering_and_tampering() {
    for len in [
        0,
        1,
        FILE_CHUNK - 1,
        FILE_CHUNK,
        FILE_CHUNK + 1,
        3 * FILE_CHUNK + 7,
    ] {
        let plaintext: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let encrypted = encrypt_file(&plaintext).unwrap();
        assert_eq!(
            encrypted.ciphertext.len(),
            len + 16 * len.div_ceil(FILE_CHUNK).max(1)
        );
        let key = FileKey::from_base64(&encrypted.key.to_base64()).unwrap();
        let opened = decrypt_file(
            &encrypted.ciphertext,
            &key,
            &encrypted.nonce,
            &encrypted.sha256,
        )
        .unwrap();
        assert_eq!(*opened, plaintext, "length {len}");
    }

    let plaintext: Vec<u8> = (0..3 * FILE_CHUNK + 100).map(|i| (i % 7) as u8).collect();
    let encrypted = encrypt_file(&plaintext).unwrap();
    let (key, nonce) = (&encrypted.key, &encrypted.nonce);
    let open = |ciphertext: &[u8]| {
        let hash: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(ciphertext).into();
        decrypt_file(ciphertext, key, nonce, &hash)
    };
    let chunk = FILE_CHUNK + 16;
    let chunks: Vec<&[u8]> = encrypted.ciphertext.chunks(chunk).collect();
    assert_eq!(chunks.len(), 4);
    // Cut at a chunk boundary (the hash recomputed, as an attacker who also rewrites the
    // message could): the new last chunk was not sealed as the last one.
    for keep in 1..chunks.len() {
        assert_eq!(
            open(&chunks[..keep].concat()).err(),
            Some(FileError::Tampered)
        );
    }
    // Cut anywhere else.
    assert_eq!(
        open(&encrypted.ciphertext[..encrypted.ciphertext.len() - 1]).err(),
        Some(FileError::Tampered)
    );
    // Reordered or duplicated chunks.
    let swapped = [chunks[1], chunks[0], chunks[2], chunks[3]].concat();
    assert_eq!(open(&swapped).err(), Some(FileError::Tampered));
    let duplicated = [chunks[0], chunks[0], chunks[1], chunks[2], chunks[3]].concat();
    assert_eq!(open(&duplicated).err(), Some(FileError::Tampered));
    // A flipped byte anywhere (with a matching hash), and the hash check itself.
    for index in [
        0,
        100,
        chunk - 1,
        chunk,
        2 * chunk + 5,
        encrypted.ciphertext.len() - 1,
    ] {
        let mut tampered = encrypted.ciphertext.clone();
        tampered[index] ^= 1;
        assert_eq!(
            open(&tampered).err(),
            Some(FileError::Tampered),
            "byte {index}"
        );
        assert_eq!(
            decrypt_file(&tampered, key, nonce, &encrypted.sha256).err(),
            Some(FileError::HashMismatch)
        );
    }
    // Another file's key, a wrong nonce, malformed inputs.
    let other = encrypt_file(&plaintext).unwrap();
    assert_eq!(
        decrypt_file(&encrypted.ciphertext, &other.key, nonce, &encrypted.sha256).err(),
        Some(FileError::Tampered)
    );
    assert_eq!(
        decrypt_file(&encrypted.ciphertext, key, &other.nonce, &encrypted.sha256).err(),
        Some(FileError::Tampered)
    );
    assert_eq!(
        decrypt_file(&encrypted.ciphertext, key, &nonce[1..], &encrypted.sha256).err(),
        Some(FileError::Malformed)
    );
    assert!(FileKey::from_base64("AAAA").is_err());
}

#[test]
fn the_agreement_key_is_derived_from_the_identity_the_same_from_every_backup() {
    let passphrase = Passphrase::generate().unwrap();
    let params = KdfParams::INSECURE_FOR_TESTS;
    let identity = Identity::generate();
    let agreement = identity.agreement_key();
    let public = identity.public();
    // The backup holds the bare account, as backups from before encrypted rooms do.
    let (blob, created) = create_backup(identity, &passphrase, params).unwrap();
    assert_eq!(created.identity.agreement_key(), agreement);
    // Two unlocks of the same backup, one by passphrase and one by device key, and an unlock of
    // the re-sealed backup after a passphrase change: always the same agreement key.
    let first = unlock_backup(&blob, passphrase.as_str()).unwrap();
    let second = unlock_backup(&blob, passphrase.as_str()).unwrap();
    let device_key = first.storage_key.to_bytes();
    let by_device =
        unlock_backup_with_storage_key(&blob, StorageKey::from_bytes(&*device_key).unwrap())
            .unwrap();
    let new_passphrase = Passphrase::generate().unwrap();
    let (resealed, _) = change_passphrase(&first.identity, &new_passphrase, params).unwrap();
    let after_change = unlock_backup(&resealed, new_passphrase.as_str()).unwrap();
    for unlocked in [&first, &second, &by_device, &after_change] {
        assert_eq!(unlocked.identity.public(), public);
        assert_eq!(unlocked.identity.agreement_key(), agreement);
    }
    // The published key verifies for the user under the identity key.
    let signed = first.identity.signed_agreement_key(7);
    assert_eq!(
        Member::verify(7, public.ed25519, &signed)
            .unwrap()
            .agreement_key(),
        agreement
    );
    // An adopted Olm account gets the same key every time, and another account another one.
    let account = Account::new();
    let adopt = || Identity::from_olm_account(Account::from_pickle(account.pickle())).unwrap();
    assert_eq!(adopt().agreement_key(), adopt().agreement_key());
    assert_ne!(adopt().agreement_key(), agreement);
}

#[test]
fn a_backup_written_before_encrypted_rooms_yields_the_same_agreement_key_at_every_unlock() {
    // Written by the browser package of commit f2a507d, before the agreement key existed (the
    // same vector as on branch e2e-crypto).
    let vector: serde_json::Value =
        serde_json::from_str(include_str!("vectors/v1_backup.json")).unwrap();
    let field = |name: &str| vector[name].as_str().unwrap().to_owned();
    let backup = sotto_crypto::rooms::from_base64(&field("key_backup")).unwrap();
    let device_key = sotto_crypto::rooms::from_base64(&field("device_key")).unwrap();
    let unlocks = [
        unlock_backup(&backup, &field("passphrase")).unwrap(),
        unlock_backup(&backup, &field("passphrase")).unwrap(),
        unlock_backup_with_storage_key(&backup, StorageKey::from_bytes(&device_key).unwrap())
            .unwrap(),
    ];
    for unlocked in &unlocks {
        let (curve, ed) = unlocked.identity.public().to_base64();
        assert_eq!((curve, ed), (field("curve25519"), field("ed25519")));
        // A known answer: the derivation is part of the format, it must never change.
        assert_eq!(
            unlocked.identity.agreement_key().to_base64(),
            AGREEMENT_KEY_OF_THE_V1_VECTOR
        );
    }
    let owner: i64 = field("owner_user_id").parse().unwrap();
    let signed = unlocks[0].identity.signed_agreement_key(owner);
    assert!(Member::verify(owner, unlocks[0].identity.public().ed25519, &signed).is_ok());
}

/// The agreement key derived from the identity in `vectors/v1_backup.json`.
const AGREEMENT_KEY_OF_THE_V1_VECTOR: &str = "TfF+sfJEwJeWqzK5ULoE2Z9Ucmrd3lytB2btUTE3pgY";
