//! End-to-end encrypted rooms end to end (issue 7): SDK clients with real `sotto-crypto` keys
//! talk through a real server (port 0, temporary data directory). The server's own rules, with
//! fake envelopes, are in `e2e_rooms.rs`; here the whole product path is exercised: history on a
//! new client, removal and late joining, forgery, tampering and a key from a non-member, the
//! at-rest scan and search.

mod common;

use common::{TestServer, files_under, occurrences};
use sotto_api::rest::MessageBody;
use sotto_api::{ErrorCode, RoomId, UserId};
use sotto_client::sotto_crypto::backup::{KdfParams, Passphrase};
use sotto_client::sotto_crypto::rooms::{
    Member, RoomContent, RoomError, RoomKey, create_shares, from_base64, open_share, to_base64,
};
use sotto_client::{Client, E2eKeys, ReadError, RoomMessage, search_decrypted};

const CHEAP: KdfParams = KdfParams::INSECURE_FOR_TESTS;

struct Person {
    client: Client,
    keys: E2eKeys,
    passphrase: String,
    name: &'static str,
}

impl Person {
    fn id(&self) -> UserId {
        self.client.user_id()
    }

    async fn say(&mut self, room: RoomId, text: &str) -> sotto_api::rest::Message {
        self.client
            .room_send_text(&mut self.keys, room, text)
            .await
            .unwrap_or_else(|e| panic!("{} sends: {e}", self.name))
    }

    async fn read(&mut self, room: RoomId) -> Vec<RoomMessage> {
        self.client
            .room_history(&mut self.keys, room)
            .await
            .unwrap_or_else(|e| panic!("{} reads: {e}", self.name))
    }

    /// This person's verified keys as a room member (as anyone would check them).
    fn member(&self) -> Member {
        let id = self.id();
        Member::verify(
            id,
            self.keys.public().ed25519,
            &self.keys.identity().signed_agreement_key(id),
        )
        .expect("own keys verify")
    }
}

async fn person(ts: &TestServer, admin: &Client, name: &'static str) -> Person {
    let client = ts.user(admin, name).await;
    let passphrase = Passphrase::generate().expect("passphrase");
    let keys = client
        .e2e_setup(&passphrase, CHEAP)
        .await
        .expect("e2e setup");
    Person {
        client,
        keys,
        passphrase: passphrase.as_str().to_owned(),
        name,
    }
}

fn texts(history: &[RoomMessage]) -> Vec<Result<String, ReadError>> {
    history
        .iter()
        .map(|m| {
            m.content
                .clone()
                .map(|c| c.text.unwrap_or_else(|| "<file>".into()))
        })
        .collect()
}

fn code<T: std::fmt::Debug>(r: Result<T, sotto_client::Error>) -> ErrorCode {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e.code().unwrap_or_else(|| panic!("no code in {e}")),
    }
}

#[tokio::test]
async fn a_member_unlocks_on_a_new_client_and_reads_the_whole_history() {
    let ts = TestServer::start().await;
    let admin = ts.admin().await;
    let mut alice = person(&ts, &admin, "alice").await;
    let mut bob = person(&ts, &admin, "bob").await;
    let carol = person(&ts, &admin, "carol").await;
    let room = alice
        .client
        .create_group_with("project", &[bob.id()], Some(true))
        .await
        .expect("group")
        .id;
    alice.say(room, "first, under the first key").await;
    bob.say(room, "bob answers under the same key").await;
    alice
        .client
        .add_member(room, carol.id())
        .await
        .expect("add carol");
    alice.say(room, "after carol joined: a new key").await;
    let photo = b"\x89PNG not really a photo, but private".repeat(3000);
    bob.client
        .room_send_file(
            &mut bob.keys,
            room,
            "holiday.png",
            "image/png",
            &photo,
            Some("the photo"),
        )
        .await
        .expect("send file");

    // Bob on a new device: log in, enter the E2E key, read everything.
    let mut device = ts.client();
    device.login("bob", common::PW).await.expect("login");
    let mut keys = device.e2e_unlock(&bob.passphrase).await.expect("unlock");
    assert!(
        keys.room_ring(room).is_none(),
        "a new client starts without room keys"
    );
    let history = device.room_history(&mut keys, room).await.expect("history");
    assert_eq!(
        texts(&history),
        [
            Ok("first, under the first key".to_string()),
            Ok("bob answers under the same key".to_string()),
            Ok("after carol joined: a new key".to_string()),
            Ok("the photo".to_string()),
        ]
    );
    // Which key each message used: two keys, changed by carol's joining.
    let ids: Vec<_> = history
        .iter()
        .map(|m| m.key_id.clone().expect("key id"))
        .collect();
    assert_eq!(ids[0], ids[1]);
    assert_ne!(ids[1], ids[2]);
    assert_eq!(ids[2], ids[3]);
    assert_eq!(keys.room_ring(room).map(|r| r.len()), Some(2));
    // The file, downloaded and decrypted on the new device.
    let file = history[3]
        .content
        .as_ref()
        .expect("readable")
        .file
        .clone()
        .expect("a file");
    assert_eq!(
        (file.name.as_str(), file.size),
        ("holiday.png", photo.len() as u64)
    );
    let upload = history[3].message.attachment.clone().expect("attachment");
    assert!(upload.encrypted && upload.content_type == "application/octet-stream");
    assert_eq!(
        device.room_download_file(&file).await.expect("download"),
        photo
    );
    // The new device writes too, under the current key.
    let sent = device
        .room_send_text(&mut keys, room, "from the new device")
        .await
        .expect("send");
    let read = alice.read(room).await;
    assert_eq!(read.last().map(|m| m.message.id), Some(sent.id));
    assert_eq!(
        read.last().and_then(RoomMessage::text),
        Some("from the new device")
    );
    assert_eq!(
        read.last().and_then(|m| m.key_id.clone()),
        Some(ids[3].clone())
    );
}

#[tokio::test]
async fn removed_and_late_members_read_exactly_their_share_of_the_history() {
    let ts = TestServer::start().await;
    let admin = ts.admin().await;
    let mut alice = person(&ts, &admin, "alice").await;
    let mut bob = person(&ts, &admin, "bob").await;
    let mut carol = person(&ts, &admin, "carol").await;
    let room = alice
        .client
        .create_group_with("team", &[bob.id()], Some(true))
        .await
        .expect("group")
        .id;
    alice.say(room, "before anyone changed").await;
    bob.say(room, "bob was here").await;
    // Bob holds the first key.
    assert_eq!(bob.read(room).await.len(), 2);

    // Bob is removed; what follows is under a key he never gets.
    alice
        .client
        .remove_member(room, bob.id())
        .await
        .expect("remove bob");
    alice.say(room, "said after bob left").await;
    assert_eq!(
        code(bob.client.room_history(&mut bob.keys, room).await),
        ErrorCode::NotFound,
        "the server serves a removed member nothing"
    );
    // Even with the envelope in hand (a leak, a malicious server), his key ring cannot open it.
    let history = alice.read(room).await;
    let after = history.last().expect("message").message.clone();
    let MessageBody::Encrypted { envelope } = &after.body else {
        panic!("an envelope")
    };
    let bytes = from_base64(envelope).expect("base64");
    let bob_ring = bob.keys.room_ring(room).expect("bob's old keys");
    assert_eq!(bob_ring.len(), 1);
    let refused = bob_ring
        .decrypt(&bytes, alice.id(), &alice.keys.public().ed25519)
        .expect_err("no key");
    assert!(matches!(refused, RoomError::KeyNotShared(_)), "{refused:?}");
    // The old messages stay readable to him locally (his ring still opens them).
    let MessageBody::Encrypted { envelope } = &history[0].message.body else {
        panic!("an envelope")
    };
    let old = bob_ring
        .decrypt(
            &from_base64(envelope).expect("base64"),
            alice.id(),
            &alice.keys.public().ed25519,
        )
        .expect("old message");
    assert_eq!(old.content.text.as_deref(), Some("before anyone changed"));

    // Carol joins later: she reads from her join on; the earlier messages say why not.
    alice
        .client
        .add_member(room, carol.id())
        .await
        .expect("add carol");
    alice.say(room, "welcome carol").await;
    let seen = carol.read(room).await;
    assert_eq!(
        texts(&seen),
        [
            Err(ReadError::KeyNotShared),
            Err(ReadError::KeyNotShared),
            Err(ReadError::KeyNotShared),
            Ok("welcome carol".to_string()),
        ]
    );
    assert_eq!(
        seen[0].content.clone().unwrap_err().to_string(),
        "key not shared with you"
    );
    assert!(
        seen.iter().all(|m| m.key_id.is_some()),
        "the key each message used is known"
    );
    carol.say(room, "thanks").await;
    // Every membership change is there for clients to show.
    let state = alice
        .client
        .room_sync_keys(&mut alice.keys, room)
        .await
        .expect("sync");
    assert_eq!(state.changes.len(), 4, "{:?}", state.changes);
    assert!(state.refused.is_empty());
    assert!(state.unexplained_members.is_empty());

    // A server that adds a member on its own without recording the change (here: written
    // straight into its database) is caught: the member list disagrees with the history.
    let dave = ts.user(&admin, "dave").await;
    let db = ts.database().await;
    sqlx::query("INSERT INTO members (room_id, user_id, joined_at) VALUES ($1, $2, 0)")
        .bind(room)
        .bind(dave.user_id())
        .execute(&db)
        .await
        .expect("ghost member");
    let state = alice
        .client
        .room_sync_keys(&mut alice.keys, room)
        .await
        .expect("sync");
    assert_eq!(state.unexplained_members, vec![dave.user_id()]);
    // Even with the epoch moved too (so that a new key is due), no key goes to the ghost.
    sqlx::query("UPDATE rooms SET epoch = epoch + 1 WHERE id = $1")
        .bind(room)
        .execute(&db)
        .await
        .expect("epoch");
    let refused = alice
        .client
        .room_send_text(&mut alice.keys, room, "to whom?")
        .await
        .expect_err("no key for a ghost");
    assert!(
        refused.to_string().contains("membership history"),
        "{refused}"
    );
    db.close().await;
}

#[tokio::test]
async fn a_send_after_a_sync_that_saw_a_new_member_distributes_a_key_first() {
    let ts = TestServer::start().await;
    let admin = ts.admin().await;
    let mut alice = person(&ts, &admin, "alice").await;
    let bob = person(&ts, &admin, "bob").await;
    let mut carol = person(&ts, &admin, "carol").await;
    let room = alice
        .client
        .create_group_with("pair", &[bob.id()], Some(true))
        .await
        .expect("group")
        .id;
    alice.say(room, "before carol").await;
    alice
        .client
        .add_member(room, carol.id())
        .await
        .expect("add carol");
    // Alice's sync sees carol, but nobody shared a key with her yet: the newest key alice holds
    // was shared with alice and bob only, so it cannot be used for the current members...
    let state = alice
        .client
        .room_sync_keys(&mut alice.keys, room)
        .await
        .expect("sync");
    assert_eq!(state.usable_key, None);
    let ring = alice.keys.room_ring(room).expect("alice's keys");
    let old = ring.newest().expect("a key");
    assert_eq!(
        ring.encrypt(
            alice.keys.identity(),
            old,
            alice.id(),
            &RoomContent::text("not for carol's eyes"),
            &state.members,
        )
        .expect_err("mismatch"),
        RoomError::MembersMismatch
    );
    // ...so the send syncs, distributes a key to all three, and goes out under it.
    alice.say(room, "welcome carol").await;
    assert_ne!(
        alice.keys.room_ring(room).and_then(|r| r.newest()),
        Some(old)
    );
    assert_eq!(
        texts(&carol.read(room).await),
        [
            Err(ReadError::KeyNotShared),
            Ok("welcome carol".to_string())
        ]
    );
}

#[tokio::test]
async fn forged_senders_tampered_envelopes_and_foreign_keys_are_rejected() {
    let ts = TestServer::start().await;
    let admin = ts.admin().await;
    let mut alice = person(&ts, &admin, "alice").await;
    let mut bob = person(&ts, &admin, "bob").await;
    let mut mallory = person(&ts, &admin, "mallory").await;
    let eve = person(&ts, &admin, "eve").await;
    let members = [bob.id(), mallory.id()];
    let room = alice
        .client
        .create_group_with("trio", &members, Some(true))
        .await
        .expect("group")
        .id;
    alice.say(room, "hello from alice").await;
    mallory.say(room, "mallory, honestly").await;

    let current: Vec<UserId> = {
        let mut v = vec![alice.id(), bob.id(), mallory.id()];
        v.sort_unstable();
        v
    };
    // Mallory holds the room key and writes an envelope claiming to be alice.
    let ring = mallory.keys.room_ring(room).expect("mallory's keys");
    let key_id = ring.newest().expect("a key");
    let forged = ring
        .encrypt(
            mallory.keys.identity(),
            key_id,
            alice.id(),
            &RoomContent::text("alice says: send mallory the money"),
            &current,
        )
        .expect("encrypt");
    // The server reads the cleartext sender and refuses it, so no member ever sees the row...
    assert_eq!(
        code(
            mallory
                .client
                .send_encrypted(room, &to_base64(&forged))
                .await
        ),
        ErrorCode::Forbidden
    );
    // Tampering: a valid envelope of alice's with one ciphertext byte flipped.
    let ring = alice.keys.room_ring(room).expect("alice's keys");
    let mut tampered = ring
        .encrypt(
            alice.keys.identity(),
            key_id,
            alice.id(),
            &RoomContent::text("meet at noon"),
            &current,
        )
        .expect("encrypt");
    tampered[61] ^= 1;
    alice
        .client
        .send_encrypted(room, &to_base64(&tampered))
        .await
        .expect("the header is intact, so the server stores it");

    let seen = bob.read(room).await;
    assert_eq!(
        texts(&seen),
        [
            Ok("hello from alice".to_string()),
            Ok("mallory, honestly".to_string()),
            Err(ReadError::Tampered),
        ]
    );
    // ...and a server that stored it anyway, stamped with either author, would not help: the
    // envelope names alice but the signature is mallory's.
    let bob_ring = bob.keys.room_ring(room).expect("bob's keys");
    assert_eq!(
        bob_ring
            .decrypt(&forged, alice.id(), &alice.keys.public().ed25519)
            .expect_err("forged"),
        RoomError::WrongSender
    );
    assert_eq!(
        bob_ring
            .decrypt(&forged, mallory.id(), &mallory.keys.public().ed25519)
            .expect_err("forged"),
        RoomError::WrongSender
    );

    // Eve is no member. The server refuses her key...
    let key = RoomKey::generate().expect("key");
    let shares = create_shares(
        eve.keys.identity(),
        room,
        eve.id(),
        &key,
        &[alice.member(), bob.member(), mallory.member(), eve.member()],
    )
    .expect("shares");
    let req = sotto_api::rest::PutRoomKeyRequest {
        key_id: key.id().to_base64(),
        epoch: 0,
        shares: shares
            .shares
            .iter()
            .map(|(user_id, share)| sotto_api::rest::RoomKeyShare {
                user_id: *user_id,
                share: to_base64(share),
            })
            .collect(),
    };
    assert_eq!(
        code(eve.client.put_room_key(room, &req).await),
        ErrorCode::NotFound
    );
    // ...and a client refuses it anyway (a server that served it would not get it accepted).
    let (_, for_alice) = shares
        .shares
        .iter()
        .find(|(u, _)| *u == alice.id())
        .expect("alice's share");
    let refused = open_share(
        alice.keys.identity(),
        room,
        alice.id(),
        for_alice,
        &eve.member(),
        &current,
    )
    .err()
    .expect("refused");
    assert_eq!(refused, RoomError::DistributorNotMember);
}

#[tokio::test]
async fn only_ciphertext_at_rest_and_only_the_client_finds_encrypted_messages() {
    let ts = TestServer::start().await;
    let admin = ts.admin().await;
    let mut alice = person(&ts, &admin, "alice").await;
    let mut bob = person(&ts, &admin, "bob").await;
    let room = alice
        .client
        .dm_with(bob.id(), Some(true))
        .await
        .expect("e2e dm")
        .id;
    let text_canary = "zebracanary-text-5c1e0a";
    let file_canary = "zebracanary-file-77b2f4";
    let name_canary = "zebracanary-name-19d3c8.txt";
    alice
        .say(room, &format!("the password is {text_canary}"))
        .await;
    alice
        .client
        .room_send_file(
            &mut alice.keys,
            room,
            name_canary,
            "text/plain",
            file_canary.repeat(100).as_bytes(),
            None,
        )
        .await
        .expect("file");
    bob.say(room, "noted").await;

    // Server search: nothing, and it says which rooms it could not search.
    for q in [text_canary, "password", name_canary] {
        let r = bob.client.search(q, None, None).await.expect("search");
        assert!(r.hits.is_empty(), "{q}");
        assert_eq!(r.unsearched_rooms, vec![room]);
    }
    // Local search over the decrypted history finds them.
    let history = bob.read(room).await;
    let found = search_decrypted(&history, "PASSWORD is");
    assert_eq!(found.len(), 1);
    assert!(found[0].text().is_some_and(|t| t.contains(text_canary)));
    assert_eq!(
        search_decrypted(&history, "zebracanary-name").len(),
        1,
        "file names too"
    );
    assert!(search_decrypted(&history, "absent").is_empty());

    // At rest: the database, its WAL and the upload files hold no canary in any form the
    // server could read (the scan finds an ordinary message, so it works).
    let plain = alice
        .client
        .dm_with(bob.id(), Some(false))
        .await
        .expect("dm")
        .id;
    alice
        .client
        .send_text(plain, "ordinary zebracanary-plain")
        .await
        .expect("text");
    let mut files = Vec::new();
    files_under(ts.dir.path(), &mut files);
    let mut total = 0;
    let mut plain_seen = 0;
    for f in &files {
        let bytes = std::fs::read(f).unwrap_or_default();
        total += bytes.len();
        plain_seen += occurrences(&bytes, b"zebracanary-plain");
        for canary in [text_canary, file_canary, name_canary] {
            assert_eq!(
                occurrences(&bytes, canary.as_bytes()),
                0,
                "{canary} in {}",
                f.display()
            );
        }
    }
    assert!(files.iter().any(|f| f.to_string_lossy().ends_with("-wal")));
    assert!(total > 0 && plain_seen > 0, "the scan finds plaintext");
}

#[tokio::test]
async fn a_pre_rooms_v1_backup_unlocks_and_publishes_its_derived_agreement_key() {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use sotto_client::sotto_crypto::backup::unlock_backup;
    use sotto_client::sotto_crypto::trust::TrustStore;

    // Written by the browser package of commit f2a507d, before the agreement key existed.
    let vector: serde_json::Value = serde_json::from_str(include_str!(
        "../../sotto-crypto/tests/vectors/v1_backup.json"
    ))
    .expect("vector");
    let field = |name: &str| vector[name].as_str().expect(name).to_owned();
    let v1 = STANDARD.decode(field("key_backup")).expect("base64");
    let passphrase = field("passphrase");

    let ts = TestServer::start().await;
    let admin = ts.admin().await;
    let alice = person(&ts, &admin, "alice").await;
    let bob = person(&ts, &admin, "bob").await;
    bob.client
        .dm_with(alice.id(), Some(true))
        .await
        .expect("a shared room");
    // Alice's directory entry as a client from before encrypted rooms left it: the vector's
    // identity and v1 backup, published without an agreement key.
    let opened = unlock_backup(&v1, &passphrase).expect("v1 opens");
    let trust = TrustStore::new()
        .seal(&opened.storage_key, &alice.id().to_string())
        .expect("seal");
    let body = serde_json::json!({
        "curve25519": field("curve25519"), "ed25519": field("ed25519"),
        "key_backup": STANDARD.encode(&v1), "trust_store": STANDARD.encode(trust),
    });
    let r = alice
        .client
        .raw(
            sotto_client::Method::PUT,
            "/api/v1/e2e/keys",
            Some(("application/json", serde_json::to_vec(&body).expect("json"))),
            &[],
        )
        .await
        .expect("put");
    assert_eq!(r.status, 200);
    let before = bob.client.directory_entry(alice.id()).await.expect("entry");
    assert_eq!(
        before.agreement_key, None,
        "new identity keys, no agreement key"
    );

    // The unlock derives the agreement key and publishes it; the backup stays as it was.
    let keys = alice.client.e2e_unlock(&passphrase).await.expect("unlock");
    let derived = keys.identity().agreement_key().to_base64();
    // The same known answer as sotto-crypto's test of this vector.
    assert_eq!(derived, "TfF+sfJEwJeWqzK5ULoE2Z9Ucmrd3lytB2btUTE3pgY");
    let published = bob.client.directory_entry(alice.id()).await.expect("entry");
    assert_eq!(published.agreement_key, Some(derived.clone()));
    assert_eq!(
        (published.curve25519, published.ed25519),
        (field("curve25519"), field("ed25519"))
    );
    assert_eq!(alice.client.e2e_own_backup().await.expect("backup"), v1);
    // The next unlock derives the same key.
    let again = alice.client.e2e_unlock(&passphrase).await.expect("unlock");
    assert_eq!(again.identity().agreement_key().to_base64(), derived);
    // And bob can share a room key with her published agreement key.
    let mut bob = bob;
    let room = bob
        .client
        .dm_with(alice.id(), Some(true))
        .await
        .expect("dm")
        .id;
    bob.say(room, "hello v1").await;
    let mut alice = Person {
        keys,
        passphrase,
        ..alice
    };
    assert_eq!(alice.read(room).await[0].text(), Some("hello v1"));
}
