//! End-to-end encrypted rooms, the server's side (issue 7), against a real server: creation
//! defaults from the admin settings, refusal of plaintext (messages, edits, uploads,
//! attachments) in encrypted rooms and of envelopes in ordinary ones, room key distribution to
//! exactly the current members with shares served only to their owner, the stale-key refusal
//! after every membership change, the membership history, `room_key_added` over a real
//! WebSocket, a canary scan of the database and the upload files, and search.
//!
//! Envelopes here are opaque fakes with a correct v1 cleartext header: the server reads only the
//! header and never depends on `sotto-crypto`.

mod common;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use common::{TestServer, expect, files_under, occurrences};
use serde_json::json;
use sotto_api::realtime::ServerEvent;
use sotto_api::rest::{
    MembershipChangeKind, MessageBody, PutRoomKeyRequest, RoomKeyShare, SendMessageRequest,
    SettingsMap,
};
use sotto_api::{ErrorCode, RoomId, UserId};
use sotto_client::{Client, ConnectOptions, RealtimeEvent};

fn code<T: std::fmt::Debug>(r: Result<T, sotto_client::Error>) -> ErrorCode {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e.code().unwrap_or_else(|| panic!("no code in {e}")),
    }
}

/// A key id from a small number (16 bytes).
fn key_bytes(n: u8) -> [u8; 16] {
    [n; 16]
}

fn key_id(n: u8) -> String {
    STANDARD_NO_PAD.encode(key_bytes(n))
}

/// A fake envelope v1 under key `n`: the right cleartext header, then `payload` where the
/// ciphertext goes (and zeros for the rest). Standard base64, as clients send it.
fn envelope(n: u8, sender: UserId, payload: &[u8]) -> String {
    let mut v = b"SOTTOE2".to_vec();
    v.push(1);
    v.extend_from_slice(&key_bytes(n));
    v.extend_from_slice(&sender.to_be_bytes());
    v.extend_from_slice(&[9; 24]);
    v.extend_from_slice(&(payload.len() as u32 + 16).to_be_bytes());
    v.extend_from_slice(payload);
    v.extend_from_slice(&[0; 16 + 64]);
    STANDARD.encode(v)
}

/// The share a test hands `user` for key `n` (opaque to the server; distinct per recipient, so
/// the test can tell whose share it was given).
fn share_for(n: u8, user: UserId) -> String {
    STANDARD.encode(format!("share of key {n} for user {user}"))
}

fn key_request(n: u8, epoch: i64, members: &[UserId]) -> PutRoomKeyRequest {
    PutRoomKeyRequest {
        key_id: key_id(n),
        epoch,
        shares: members
            .iter()
            .map(|u| RoomKeyShare {
                user_id: *u,
                share: share_for(n, *u),
            })
            .collect(),
    }
}

async fn send_env(
    c: &Client,
    room: RoomId,
    n: u8,
) -> Result<sotto_api::rest::Message, sotto_client::Error> {
    c.send_encrypted(room, &envelope(n, c.user_id(), b"opaque ciphertext"))
        .await
}

async fn set(admin: &Client, key: &str, value: serde_json::Value) {
    let mut m = SettingsMap::new();
    m.insert(key.into(), value);
    admin.update_settings(&m).await.expect("settings");
}

#[tokio::test]
async fn creation_follows_the_request_then_the_admin_settings() {
    let ts = TestServer::start().await;
    let admin = ts.admin().await;
    let a = ts.user(&admin, "alice").await;
    let b = ts.user(&admin, "bob").await;
    let c = ts.user(&admin, "carol").await;
    let settings = a.settings().await.expect("public settings");
    assert_eq!(settings["e2e.encrypt_new_dms"], json!(false));
    assert_eq!(settings["e2e.encrypt_new_groups"], json!(false));

    // Defaults off: ordinary rooms, unless asked.
    let plain_dm = a.dm(b.user_id()).await.expect("dm");
    assert!(!plain_dm.encrypted);
    assert_eq!((plain_dm.epoch, plain_dm.key_id.clone()), (0, None));
    let e2e_dm = a.dm_with(b.user_id(), Some(true)).await.expect("e2e dm");
    assert!(e2e_dm.encrypted);
    assert_ne!(
        e2e_dm.id, plain_dm.id,
        "an encrypted and an ordinary DM are distinct"
    );
    // Get-or-create: at most one of each, from either side.
    assert_eq!(
        b.dm_with(a.user_id(), Some(true)).await.expect("again").id,
        e2e_dm.id
    );
    assert_eq!(
        b.dm_with(a.user_id(), Some(false)).await.expect("again").id,
        plain_dm.id
    );
    assert!(!a.create_group("g", &[]).await.expect("group").encrypted);
    assert!(
        a.create_group_with("g", &[], Some(true))
            .await
            .expect("group")
            .encrypted
    );
    let others = [b.user_id(), c.user_id()];
    assert!(!a.multi_dm(&others).await.expect("multi").encrypted);

    // DMs and multi-user DMs follow `e2e.encrypt_new_dms`, groups `e2e.encrypt_new_groups`.
    set(&admin, "e2e.encrypt_new_dms", json!(true)).await;
    assert_eq!(a.dm(b.user_id()).await.expect("dm").id, e2e_dm.id);
    assert!(b.dm(c.user_id()).await.expect("dm").encrypted);
    let multi = a.multi_dm(&others).await.expect("multi");
    assert!(multi.encrypted);
    assert!(!a.create_group("g", &[]).await.expect("group").encrypted);
    assert!(
        !a.multi_dm_with(&others, Some(false))
            .await
            .expect("multi")
            .encrypted
    );
    set(&admin, "e2e.encrypt_new_groups", json!(true)).await;
    assert!(a.create_group("g", &[]).await.expect("group").encrypted);
    assert!(
        !a.create_group_with("g", &[], Some(false))
            .await
            .expect("group")
            .encrypted
    );

    // With E2E off, asking is refused and the settings alone give ordinary rooms.
    set(&admin, "e2e.enabled", json!(false)).await;
    assert_eq!(
        code(a.create_group_with("g", &[], Some(true)).await),
        ErrorCode::E2eDisabled
    );
    assert!(!a.create_group("g", &[]).await.expect("group").encrypted);
    // The room list shows the flag too.
    let listed = a.rooms().await.expect("rooms");
    assert!(listed.iter().any(|r| r.id == e2e_dm.id && r.encrypted));
    assert!(listed.iter().any(|r| r.id == plain_dm.id && !r.encrypted));
}

#[tokio::test]
async fn plaintext_is_refused_in_encrypted_rooms_and_envelopes_in_ordinary_ones() {
    let ts = TestServer::start().await;
    let admin = ts.admin().await;
    let a = ts.user(&admin, "alice").await;
    let b = ts.user(&admin, "bob").await;
    let room = a
        .create_group_with("secret", &[b.user_id()], Some(true))
        .await
        .expect("group");
    let plain = a.dm_with(b.user_id(), Some(false)).await.expect("dm");
    a.put_room_key(room.id, &key_request(1, 0, &[a.user_id(), b.user_id()]))
        .await
        .expect("key");

    // Messages.
    assert_eq!(
        code(a.send_text(room.id, "hello").await),
        ErrorCode::E2ePlaintextRefused
    );
    assert_eq!(
        code(send_env(&a, plain.id, 1).await),
        ErrorCode::E2eRoomNotEncrypted
    );
    let sent = send_env(&a, room.id, 1).await.expect("envelope");
    // Edits: a text body is refused, an envelope under the current key is fine.
    assert_eq!(
        code(
            a.edit(
                sent.id,
                MessageBody::Text {
                    text: "oops".into()
                }
            )
            .await
        ),
        ErrorCode::E2ePlaintextRefused
    );
    let edited = a
        .edit(
            sent.id,
            MessageBody::Encrypted {
                envelope: envelope(1, a.user_id(), b"edited"),
            },
        )
        .await
        .expect("edit");
    assert!(edited.edited_at.is_some());
    let text = a.send_text(plain.id, "ordinary").await.expect("text");
    assert_eq!(
        code(
            a.edit(
                text.id,
                MessageBody::Encrypted {
                    envelope: envelope(1, a.user_id(), b"x"),
                },
            )
            .await
        ),
        ErrorCode::E2eRoomNotEncrypted
    );
    // Malformed envelopes: a stable code, nothing stored.
    let mut wrong_magic = STANDARD
        .decode(envelope(1, a.user_id(), b"x"))
        .expect("b64");
    wrong_magic[0] = b'X';
    let mut wrong_version = wrong_magic.clone();
    wrong_version[0] = b'S';
    wrong_version[7] = 2;
    for bad in [
        STANDARD.encode(&wrong_magic),
        STANDARD.encode(&wrong_version),
        STANDARD.encode(b"SOTTOE2\x01short"),
        "not-base64!".to_string(),
    ] {
        assert_eq!(
            code(a.send_encrypted(room.id, &bad).await),
            ErrorCode::E2eBadEnvelope,
            "{bad}"
        );
    }

    // Uploads: declared encrypted or refused, and the other way round.
    assert_eq!(
        code(
            a.upload(room.id, "notes.txt", b"plain words".to_vec())
                .await
        ),
        ErrorCode::E2ePlaintextRefused
    );
    assert_eq!(
        code(a.upload_encrypted(plain.id, vec![1, 2, 3]).await),
        ErrorCode::E2eRoomNotEncrypted
    );
    // Even bytes that sniff as an image stay opaque.
    let png_like = b"\x89PNG\r\n\x1a\nciphertext".to_vec();
    let up = a
        .upload_encrypted(room.id, png_like.clone())
        .await
        .expect("encrypted upload");
    assert!(up.encrypted && !up.inline);
    assert_eq!(up.content_type, "application/octet-stream");
    assert_eq!(up.filename, "encrypted.bin");
    // Attachments: a plaintext body with it is refused; so is a plaintext upload from
    // elsewhere; an envelope with the encrypted upload is fine.
    let attach = |body: MessageBody, id| SendMessageRequest {
        body,
        attachment_id: Some(id),
    };
    assert_eq!(
        code(
            a.send(
                room.id,
                &attach(
                    MessageBody::Text {
                        text: "see file".into()
                    },
                    up.id
                )
            )
            .await
        ),
        ErrorCode::E2ePlaintextRefused
    );
    let plain_up = a
        .upload(plain.id, "a.txt", b"plain".to_vec())
        .await
        .expect("plain upload");
    let env = MessageBody::Encrypted {
        envelope: envelope(1, a.user_id(), b"file key"),
    };
    assert_eq!(
        code(a.send(room.id, &attach(env.clone(), plain_up.id)).await),
        ErrorCode::NotFound
    );
    let with_file = a
        .send(room.id, &attach(env, up.id))
        .await
        .expect("envelope with file");
    assert_eq!(with_file.attachment.as_ref().map(|u| u.id), Some(up.id));
    let dl = b.download(up.id).await.expect("download");
    assert_eq!(dl.body, png_like, "stored verbatim");
    assert_eq!(dl.header("content-type"), Some("application/octet-stream"));
    assert!(
        dl.header("content-disposition")
            .is_some_and(|d| d.starts_with("attachment")),
        "never inline"
    );
    // Only envelopes in the room's history.
    let history = b.history(room.id, None, None, None).await.expect("history");
    assert_eq!(history.messages.len(), 2);
    assert!(
        history
            .messages
            .iter()
            .all(|m| matches!(m.body, MessageBody::Encrypted { .. }))
    );
}

#[tokio::test]
async fn room_keys_go_to_exactly_the_members_and_every_change_needs_a_new_one() {
    let ts = TestServer::start().await;
    let admin = ts.admin().await;
    let a = ts.user(&admin, "alice").await;
    let b = ts.user(&admin, "bob").await;
    let c = ts.user(&admin, "carol").await;
    let d = ts.user(&admin, "dave").await;
    let (ai, bi, ci) = (a.user_id(), b.user_id(), c.user_id());
    let room = a
        .create_group_with("team", &[bi], Some(true))
        .await
        .expect("group");
    assert_eq!((room.epoch, room.key_id.clone()), (0, None));
    let mut rt = b.connect(ConnectOptions::default()).await.expect("connect");

    // No key yet: nobody can write.
    assert_eq!(
        code(send_env(&a, room.id, 1).await),
        ErrorCode::E2eRoomKeyStale
    );
    // Wrong recipients or epoch: refused, so the client refetches and retries.
    for bad in [
        key_request(1, 0, &[ai]),
        key_request(1, 0, &[ai, bi, ci]),
        key_request(1, 0, &[ai, bi, bi]),
        key_request(1, 1, &[ai, bi]),
    ] {
        assert_eq!(
            code(a.put_room_key(room.id, &bad).await),
            ErrorCode::E2eKeyMembersMismatch
        );
    }
    // A non-member, an ordinary room, a malformed key id or share.
    assert_eq!(
        code(c.put_room_key(room.id, &key_request(1, 0, &[ai, bi])).await),
        ErrorCode::NotFound
    );
    let plain = a
        .create_group_with("plain", &[bi], Some(false))
        .await
        .expect("group");
    assert_eq!(
        code(
            a.put_room_key(plain.id, &key_request(1, 0, &[ai, bi]))
                .await
        ),
        ErrorCode::E2eRoomNotEncrypted
    );
    let mut bad_id = key_request(1, 0, &[ai, bi]);
    bad_id.key_id = STANDARD_NO_PAD.encode([1u8; 15]);
    assert_eq!(
        code(a.put_room_key(room.id, &bad_id).await),
        ErrorCode::InvalidInput
    );
    let mut bad_share = key_request(1, 0, &[ai, bi]);
    bad_share.shares[0].share = "*".into();
    assert_eq!(
        code(a.put_room_key(room.id, &bad_share).await),
        ErrorCode::InvalidInput
    );
    let mut big_share = key_request(1, 0, &[ai, bi]);
    big_share.shares[0].share = STANDARD.encode(vec![0u8; 40 * 1024 + 1]);
    assert_eq!(
        code(a.put_room_key(room.id, &big_share).await),
        ErrorCode::PayloadTooLarge
    );

    // The right key: stored, announced over the socket, current.
    a.put_room_key(room.id, &key_request(1, 0, &[ai, bi]))
        .await
        .expect("key 1");
    let ev = expect(&mut rt, "room_key_added", |e| {
        matches!(e, RealtimeEvent::Event(ServerEvent::RoomKeyAdded { .. }))
    })
    .await;
    let RealtimeEvent::Event(ServerEvent::RoomKeyAdded {
        seq,
        room_id,
        key_id: announced,
        distributor_id,
        epoch,
    }) = ev
    else {
        unreachable!()
    };
    assert!(seq > 0, "a stored event");
    assert_eq!(
        (room_id, announced, distributor_id, epoch),
        (room.id, key_id(1), ai, 0)
    );
    let r = a.room(room.id).await.expect("room");
    assert_eq!((r.key_id, r.key_epoch), (Some(key_id(1)), Some(0)));
    send_env(&a, room.id, 1).await.expect("current key");
    send_env(&b, room.id, 1).await.expect("current key");
    assert_eq!(
        code(send_env(&a, room.id, 2).await),
        ErrorCode::E2eRoomKeyStale
    );
    // Key ids are never reused (not even after the room moved on).
    assert_eq!(
        code(a.put_room_key(room.id, &key_request(1, 0, &[ai, bi])).await),
        ErrorCode::E2eKeyIdTaken
    );

    // Add: epoch 1, the old key is stale until a key for the three of them is put.
    let r = b.add_member(room.id, ci).await.expect("add carol");
    assert_eq!(r.epoch, 1);
    assert_eq!(
        code(send_env(&a, room.id, 1).await),
        ErrorCode::E2eRoomKeyStale
    );
    assert_eq!(
        code(b.put_room_key(room.id, &key_request(2, 1, &[ai, bi])).await),
        ErrorCode::E2eKeyMembersMismatch
    );
    assert_eq!(
        code(
            b.put_room_key(room.id, &key_request(2, 0, &[ai, bi, ci]))
                .await
        ),
        ErrorCode::E2eKeyMembersMismatch
    );
    // Padded base64 is accepted; the id is stored and answered unpadded.
    let mut padded = key_request(2, 1, &[ai, bi, ci]);
    padded.key_id = STANDARD.encode(key_bytes(2));
    b.put_room_key(room.id, &padded).await.expect("key 2");
    assert_eq!(a.room(room.id).await.expect("room").key_id, Some(key_id(2)));
    send_env(&c, room.id, 2).await.expect("carol writes");

    // Shares are served to their owner only, oldest first.
    let carol_keys = c.room_keys(room.id).await.expect("carol's keys");
    assert_eq!(carol_keys.keys.len(), 1, "nothing from before she joined");
    assert_eq!(carol_keys.keys[0].share, share_for(2, ci));
    assert_eq!(carol_keys.keys[0].distributor_id, bi);
    let bob_keys = b.room_keys(room.id).await.expect("bob's keys");
    let shares: Vec<_> = bob_keys.keys.iter().map(|k| k.share.clone()).collect();
    assert_eq!(shares, [share_for(1, bi), share_for(2, bi)]);
    assert_eq!(
        (
            bob_keys.epoch,
            bob_keys.key_id.clone(),
            bob_keys.members.clone()
        ),
        (1, Some(key_id(2)), vec![ai, bi, ci])
    );
    assert_eq!(code(d.room_keys(room.id).await), ErrorCode::NotFound);

    // Remove: epoch 2; leave: epoch 3; each needs a new key.
    a.remove_member(room.id, bi).await.expect("kick bob");
    assert_eq!(
        code(send_env(&a, room.id, 2).await),
        ErrorCode::E2eRoomKeyStale
    );
    assert_eq!(
        code(b.room_keys(room.id).await),
        ErrorCode::NotFound,
        "bob is out"
    );
    assert_eq!(
        code(
            a.put_room_key(room.id, &key_request(3, 2, &[ai, bi, ci]))
                .await
        ),
        ErrorCode::E2eKeyMembersMismatch,
        "never a share for a removed member"
    );
    a.put_room_key(room.id, &key_request(3, 2, &[ai, ci]))
        .await
        .expect("key 3");
    send_env(&a, room.id, 3).await.expect("after removal");
    c.remove_member(room.id, ci).await.expect("carol leaves");
    assert_eq!(
        code(send_env(&a, room.id, 3).await),
        ErrorCode::E2eRoomKeyStale
    );
    a.put_room_key(room.id, &key_request(4, 3, &[ai]))
        .await
        .expect("key 4");
    send_env(&a, room.id, 4).await.expect("after leaving");
    // An edit under a stale key is refused like a send.
    let m = send_env(&a, room.id, 4).await.expect("send");
    a.add_member(room.id, d.user_id()).await.expect("add dave");
    assert_eq!(
        code(
            a.edit(
                m.id,
                MessageBody::Encrypted {
                    envelope: envelope(4, ai, b"edited")
                }
            )
            .await
        ),
        ErrorCode::E2eRoomKeyStale
    );

    // The whole membership history, with the epoch after each change and who made it.
    let changes: Vec<_> = a
        .room_keys(room.id)
        .await
        .expect("keys")
        .changes
        .into_iter()
        .map(|c| (c.epoch, c.kind, c.user_id, c.actor_id))
        .collect();
    use MembershipChangeKind::*;
    assert_eq!(
        changes,
        [
            (0, Created, ai, Some(ai)),
            (0, Added, bi, Some(ai)),
            (1, Added, ci, Some(bi)),
            (2, Removed, bi, Some(ai)),
            (3, Left, ci, Some(ci)),
            (4, Added, d.user_id(), Some(ai)),
        ]
    );
    // Ordinary rooms and DMs keep a history too; DMs never change.
    let dm_changes = a
        .room_keys(a.dm(bi).await.expect("dm").id)
        .await
        .expect("dm history")
        .changes;
    assert_eq!(dm_changes.len(), 2);
    assert_eq!(dm_changes[0].kind, Created);
    drop(rt);
}

#[tokio::test]
async fn agreement_keys_are_published_checked_and_outlive_a_shared_room() {
    let ts = TestServer::start().await;
    let admin = ts.admin().await;
    let a = ts.user(&admin, "alice").await;
    let b = ts.user(&admin, "bob").await;
    let curve = format!("{:A>42}A", 1);
    let ed = format!("{:A>42}A", 2);
    let agreement = format!("{:A>42}A", 3);
    let signature = format!("{:A>85}A", 4);
    let put = |c: &Client, body: serde_json::Value| {
        let c = c.clone();
        async move {
            c.raw(
                sotto_client::Method::PUT,
                "/api/v1/e2e/keys",
                Some(("application/json", serde_json::to_vec(&body).expect("json"))),
                &[],
            )
            .await
            .expect("request")
        }
    };
    let base = json!({"curve25519": curve, "ed25519": ed, "key_backup": "YmFja3Vw", "trust_store": "dHJ1c3Q="});
    let with = |k: &str, s: &str| {
        let mut v = base.clone();
        v["agreement_key"] = json!(k);
        v["agreement_signature"] = json!(s);
        v
    };
    // Malformed or alone: refused.
    for bad in [
        with(&agreement, &signature[..85]),
        with(&format!("{agreement}="), &signature),
        with(&agreement, &format!("{}B", &signature[..85])),
    ] {
        let r = put(&a, bad).await;
        assert_eq!(
            (r.status, r.error_code()),
            (400, Some(ErrorCode::InvalidInput))
        );
    }
    let mut alone = base.clone();
    alone["agreement_key"] = json!(agreement);
    assert_eq!(
        put(&a, alone).await.error_code(),
        Some(ErrorCode::InvalidInput)
    );
    // Published without one first (a v1 client), then upgraded with the same identity keys.
    assert_eq!(put(&a, base.clone()).await.status, 200);
    assert_eq!(put(&a, with(&agreement, &signature)).await.status, 200);
    let room = a.create_group("g", &[b.user_id()]).await.expect("group");
    let k = b.directory_entry(a.user_id()).await.expect("keys");
    assert_eq!(
        (k.agreement_key.as_deref(), k.agreement_signature.as_deref()),
        (Some(agreement.as_str()), Some(signature.as_str()))
    );
    // Re-publishing the same identity without it (a new passphrase from an old client) keeps it.
    assert_eq!(put(&a, base.clone()).await.status, 200);
    let k = b.directory_entry(a.user_id()).await.expect("keys");
    assert_eq!(k.agreement_key.as_deref(), Some(agreement.as_str()));
    // A removed member still reads the keys of the people they shared the room with (their old
    // messages must verify), and the other way round.
    a.remove_member(room.id, b.user_id()).await.expect("kick");
    assert_eq!(
        b.directory_entry(a.user_id()).await.expect("keys").ed25519,
        ed
    );
    // A reset (new identity keys) without an agreement key drops the old one.
    let mut reset = base.clone();
    reset["curve25519"] = json!(format!("{:A>42}A", 5));
    assert_eq!(put(&a, reset).await.status, 200);
    let k = b.directory_entry(a.user_id()).await.expect("keys");
    assert_eq!(k.agreement_key, None);
}

#[tokio::test]
async fn only_ciphertext_at_rest_and_server_search_skips_encrypted_rooms() {
    let ts = TestServer::start().await;
    let admin = ts.admin().await;
    let a = ts.user(&admin, "alice").await;
    let b = ts.user(&admin, "bob").await;
    let room = a.dm_with(b.user_id(), Some(true)).await.expect("e2e dm");
    let plain = a.dm_with(b.user_id(), Some(false)).await.expect("dm");
    let members = [a.user_id(), b.user_id()];
    a.put_room_key(room.id, &key_request(7, 0, &members))
        .await
        .expect("key");

    // The canaries travel only base64-encoded (messages) or hex-encoded (the upload): what the
    // server was given must be stored verbatim, and the decoded canary must appear nowhere.
    let msg_canary = "E2E-MESSAGE-CANARY-9f3b1c";
    let file_canary = "E2E-FILE-CANARY-4d2a7e";
    let env = envelope(7, a.user_id(), msg_canary.as_bytes());
    let sent = a.send_encrypted(room.id, &env).await.expect("send");
    let edited_env = envelope(7, a.user_id(), format!("{msg_canary} edited").as_bytes());
    a.edit(
        sent.id,
        MessageBody::Encrypted {
            envelope: edited_env.clone(),
        },
    )
    .await
    .expect("edit");
    let hex: String = file_canary
        .repeat(50)
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect();
    let up = a
        .upload_encrypted(room.id, hex.clone().into_bytes())
        .await
        .expect("upload");
    a.send(
        room.id,
        &SendMessageRequest {
            body: MessageBody::Encrypted {
                envelope: envelope(7, a.user_id(), b"file message"),
            },
            attachment_id: Some(up.id),
        },
    )
    .await
    .expect("attach");
    let ordinary = "ordinary-canary-plaintext";
    a.send_text(plain.id, ordinary).await.expect("text");

    // Server search: nothing from the encrypted room (not even its base64), which is listed.
    for q in [msg_canary, edited_env.as_str(), "9f3b1c"] {
        let r = b.search(q, None, None).await.expect("search");
        assert!(r.hits.is_empty(), "{q}: {:?}", r.hits);
        assert_eq!(r.unsearched_rooms, vec![room.id]);
    }
    let r = b.search(ordinary, None, None).await.expect("search");
    assert_eq!(r.hits.len(), 1, "ordinary rooms are searched");
    assert_eq!(r.unsearched_rooms, vec![room.id]);
    let outsider = ts.user(&admin, "carol").await;
    let r = outsider.search(ordinary, None, None).await.expect("search");
    assert!(r.hits.is_empty() && r.unsearched_rooms.is_empty());

    // Scan the database, its WAL and the uploads directory while the server runs.
    let mut files = Vec::new();
    files_under(ts.dir.path(), &mut files);
    let scanned: Vec<(String, Vec<u8>)> = files
        .iter()
        .map(|f| {
            (
                f.display().to_string(),
                std::fs::read(f).unwrap_or_default(),
            )
        })
        .collect();
    assert!(
        scanned.iter().any(|(n, _)| n.ends_with("-wal")),
        "the WAL is scanned: {:?}",
        scanned.iter().map(|s| &s.0).collect::<Vec<_>>()
    );
    let everywhere = |needle: &[u8]| -> usize {
        scanned
            .iter()
            .map(|(_, bytes)| occurrences(bytes, needle))
            .sum()
    };
    for canary in [msg_canary, file_canary] {
        assert_eq!(
            everywhere(canary.as_bytes()),
            0,
            "{canary} found decoded at rest"
        );
    }
    // The scan works: it finds what the server was given, verbatim, and the ordinary text.
    assert!(
        everywhere(edited_env.as_bytes()) > 0,
        "the envelope is stored verbatim"
    );
    assert!(
        everywhere(hex.as_bytes()) > 0,
        "the upload is stored verbatim"
    );
    assert!(
        everywhere(ordinary.as_bytes()) > 0,
        "the scan finds plaintext"
    );
}
