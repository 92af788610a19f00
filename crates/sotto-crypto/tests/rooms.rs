//! End-to-end encrypted rooms: key distribution, envelopes, rotation, files and the backup
//! upgrade that gives old identities an agreement key. Runs natively and, compiled to wasm32,
//! under wasm-bindgen-test (see scripts/test.sh).

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use sotto_crypto::backup::{
    KdfParams, Passphrase, StorageKey, create_backup, create_v1_backup_for_tests, unlock_backup,
    unlock_backup_with_storage_key,
};
use sotto_crypto::files::{FILE_CHUNK, FileError, FileKey, decrypt_file, encrypt_file};
use sotto_crypto::identity::{Identity, IdentityError, SignedAgreementKey};
use sotto_crypto::rooms::{
    ENVELOPE_CIPHERTEXT_OFFSET, ENVELOPE_KEY_ID_OFFSET, ENVELOPE_SENDER_OFFSET, FileRef, KeyId,
    Member, RoomContent, RoomError, RoomKey, RoomKeyRing, create_shares, envelope_key_id,
    open_share, peek_share,
};

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

    fn say(&self, key_id: KeyId, text: &str) -> Vec<u8> {
        self.ring
            .encrypt(&self.identity, key_id, self.id, &RoomContent::text(text))
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
    let shares = create_shares(&from.identity, ROOM, from.id, &key, &members).unwrap();
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
            Some(&member_ids),
        )
        .unwrap();
        assert_eq!(key.id(), key_id);
        assert_eq!(header.key_id, key_id);
        assert_eq!(header.distributor, distributor_member.user_id());
        let mut sorted = member_ids.clone();
        sorted.sort_unstable();
        assert_eq!(header.recipients, sorted);
        assert!(user.ring.insert(key));
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
        .encrypt(&carol.identity, key_id, carol.id, &file)
        .unwrap();
    let decrypted = alice
        .ring
        .decrypt(&envelope, carol.id, &carol.identity.public().ed25519)
        .unwrap();
    assert_eq!(decrypted.content, file);
    assert!(!format!("{file:?}").contains("plan"), "no content in Debug");
    // An empty message is refused on both sides.
    assert_eq!(
        alice
            .ring
            .encrypt(&alice.identity, key_id, alice.id, &RoomContent::default()),
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
    let key = RoomKey::generate().unwrap();
    let members = [alice.member(), bob.member()];
    let shares = create_shares(&alice.identity, ROOM, alice.id, &key, &members).unwrap();
    let mut alice_ring = RoomKeyRing::new(ROOM);
    alice_ring.insert(key);
    let (bobs_key, _) =
        open_share(&bob.identity, ROOM, bob.id, &shares[1].1, &members[0], None).unwrap();
    let mut misfiled = RoomKeyRing::new(ROOM + 1);
    misfiled.insert(bobs_key);
    let envelope = alice_ring
        .encrypt(
            &alice.identity,
            misfiled.newest().unwrap(),
            alice.id,
            &RoomContent::text("x"),
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

#[test]
fn shares_from_non_members_with_wrong_recipients_or_for_other_rooms_are_refused() {
    let (alice, bob, carol, eve) = (User::new(1), User::new(2), User::new(3), User::new(66));
    let room_members = [alice.id, bob.id, carol.id];
    let key = RoomKey::generate().unwrap();

    // Eve is not a member, but distributes a key to the members and herself.
    let shares = create_shares(
        &eve.identity,
        ROOM,
        eve.id,
        &key,
        &[alice.member(), bob.member(), carol.member(), eve.member()],
    )
    .unwrap();
    let to_bob = &shares.iter().find(|(id, _)| *id == bob.id).unwrap().1;
    assert_eq!(
        open_share(
            &bob.identity,
            ROOM,
            bob.id,
            to_bob,
            &eve.member(),
            Some(&room_members)
        )
        .err(),
        Some(RoomError::DistributorNotMember)
    );
    // Eve distributes without naming herself: refused even without an expected membership.
    let shares = create_shares(
        &eve.identity,
        ROOM,
        eve.id,
        &key,
        &[alice.member(), bob.member(), eve.member()],
    )
    .unwrap();
    let to_bob = &shares.iter().find(|(id, _)| *id == bob.id).unwrap().1;
    let peeked = peek_share(to_bob).unwrap();
    assert_eq!(peeked.recipients, vec![1, 2, 66]);
    assert!(
        open_share(&bob.identity, ROOM, bob.id, to_bob, &eve.member(), None).is_ok(),
        "without an expected membership only the share's own list is checked"
    );

    // Alice (a member) shares with a list that leaves Carol out, or adds Eve.
    for members in [
        vec![alice.member(), bob.member()],
        vec![alice.member(), bob.member(), carol.member(), eve.member()],
    ] {
        let shares = create_shares(&alice.identity, ROOM, alice.id, &key, &members).unwrap();
        let to_bob = &shares.iter().find(|(id, _)| *id == bob.id).unwrap().1;
        assert_eq!(
            open_share(
                &bob.identity,
                ROOM,
                bob.id,
                to_bob,
                &alice.member(),
                Some(&room_members)
            )
            .err(),
            Some(RoomError::MembersMismatch)
        );
    }

    let members = [alice.member(), bob.member(), carol.member()];
    let shares = create_shares(&alice.identity, ROOM, alice.id, &key, &members).unwrap();
    let to_bob = &shares.iter().find(|(id, _)| *id == bob.id).unwrap().1;
    // For another room.
    assert_eq!(
        open_share(
            &bob.identity,
            ROOM + 1,
            bob.id,
            to_bob,
            &alice.member(),
            Some(&room_members)
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
            to_bob,
            &carol.member(),
            Some(&room_members)
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
            to_bob,
            &alice.member(),
            Some(&room_members)
        )
        .err(),
        Some(RoomError::Tampered)
    );
    // Eve, who is not a recipient, gets hold of Bob's share.
    assert_eq!(
        open_share(&eve.identity, ROOM, eve.id, to_bob, &alice.member(), None).err(),
        Some(RoomError::NotARecipient)
    );
    // Eve rewrites the header to add herself: the signature and HPKE's binding refuse it.
    let mut rewritten = to_bob.clone();
    rewritten[16] ^= 1; // the key id
    assert_eq!(
        open_share(
            &bob.identity,
            ROOM,
            bob.id,
            &rewritten,
            &alice.member(),
            Some(&room_members)
        )
        .err(),
        Some(RoomError::Tampered)
    );
    // Every flipped byte is refused, and every truncation.
    for index in 0..to_bob.len() {
        let mut tampered = to_bob.clone();
        tampered[index] ^= 0x01;
        assert!(
            open_share(
                &bob.identity,
                ROOM,
                bob.id,
                &tampered,
                &alice.member(),
                Some(&room_members)
            )
            .is_err(),
            "byte {index}"
        );
    }
    for len in 0..to_bob.len() {
        assert!(peek_share(&to_bob[..len]).is_err(), "length {len}");
    }
    // The honest share opens.
    assert!(
        open_share(
            &bob.identity,
            ROOM,
            bob.id,
            to_bob,
            &alice.member(),
            Some(&room_members)
        )
        .is_ok()
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
    // Adding a key twice changes nothing.
    assert_eq!(carol.ring.newest(), Some(first));
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
fn a_v1_backup_gets_an_agreement_key_and_offers_the_upgraded_backup() {
    let passphrase = Passphrase::generate().unwrap();
    let params = KdfParams::INSECURE_FOR_TESTS;
    let identity = Identity::generate();
    let old = create_v1_backup_for_tests(&identity, &passphrase, params).unwrap();

    // Unlocking with the passphrase upgrades: same identity, a new agreement key, new bytes.
    let unlocked = unlock_backup(&old, passphrase.as_str()).unwrap();
    assert_eq!(unlocked.identity.public(), identity.public());
    let upgraded = unlocked
        .upgraded_backup
        .clone()
        .expect("an upgraded backup");
    assert_ne!(upgraded, old);
    assert_eq!(
        upgraded.len(),
        old.len() + 40,
        "magic, version and the 32-byte secret"
    );
    let agreement = unlocked.identity.agreement_key();

    // The upgraded backup opens with the same passphrase and the same device key, keeps the
    // agreement key, and needs no further upgrade.
    let again = unlock_backup(&upgraded, passphrase.as_str()).unwrap();
    assert!(again.upgraded_backup.is_none());
    assert_eq!(again.identity.agreement_key(), agreement);
    let device_key = unlocked.storage_key.to_bytes();
    let by_device =
        unlock_backup_with_storage_key(&upgraded, StorageKey::from_bytes(&*device_key).unwrap())
            .unwrap();
    assert!(by_device.upgraded_backup.is_none());
    assert_eq!(by_device.identity.agreement_key(), agreement);

    // Unlocking the old backup with the device key upgrades too (with another fresh key, as the
    // old bytes were never replaced in this test).
    let old_by_device =
        unlock_backup_with_storage_key(&old, StorageKey::from_bytes(&*device_key).unwrap())
            .unwrap();
    let upgraded_by_device = old_by_device.upgraded_backup.expect("upgraded");
    let reopened = unlock_backup(&upgraded_by_device, passphrase.as_str()).unwrap();
    assert_eq!(
        reopened.identity.agreement_key(),
        old_by_device.identity.agreement_key()
    );
    assert_eq!(reopened.identity.public(), identity.public());

    // New backups are v2 from the start.
    let (fresh, created) = create_backup(Identity::generate(), &passphrase, params).unwrap();
    assert!(created.upgraded_backup.is_none());
    let fresh_unlocked = unlock_backup(&fresh, passphrase.as_str()).unwrap();
    assert!(fresh_unlocked.upgraded_backup.is_none());
    assert_eq!(
        fresh_unlocked.identity.agreement_key(),
        created.identity.agreement_key()
    );
}

#[test]
fn a_backup_written_before_encrypted_rooms_is_upgraded() {
    // Written by the browser package of commit f2a507d (see the vector's comment).
    let vector: serde_json::Value =
        serde_json::from_str(include_str!("vectors/v1_backup.json")).unwrap();
    let field = |name: &str| vector[name].as_str().unwrap().to_owned();
    let backup = sotto_crypto::rooms::from_base64(&field("key_backup")).unwrap();
    let device_key = sotto_crypto::rooms::from_base64(&field("device_key")).unwrap();

    let unlocked = unlock_backup(&backup, &field("passphrase")).unwrap();
    let (curve, ed) = unlocked.identity.public().to_base64();
    assert_eq!((curve, ed), (field("curve25519"), field("ed25519")));
    let upgraded = unlocked.upgraded_backup.expect("a v1 identity is upgraded");
    let again = unlock_backup(&upgraded, &field("passphrase")).unwrap();
    assert!(again.upgraded_backup.is_none());
    assert_eq!(
        again.identity.agreement_key(),
        unlocked.identity.agreement_key()
    );
    // The published agreement key verifies against the unchanged Ed25519 key.
    let owner: i64 = field("owner_user_id").parse().unwrap();
    let signed = again.identity.signed_agreement_key(owner);
    assert!(Member::verify(owner, again.identity.public().ed25519, &signed).is_ok());

    let by_device =
        unlock_backup_with_storage_key(&backup, StorageKey::from_bytes(&device_key).unwrap())
            .unwrap();
    assert!(by_device.upgraded_backup.is_some());
    let upgraded_by_device =
        unlock_backup_with_storage_key(&upgraded, StorageKey::from_bytes(&device_key).unwrap())
            .unwrap();
    assert!(upgraded_by_device.upgraded_backup.is_none());
}
