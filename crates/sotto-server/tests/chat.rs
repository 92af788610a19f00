//! Rooms, messages, realtime delivery, catch-up, ephemeral events, presence, search, uploads,
//! settings and restart.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::{PW, TestServer, expect};
use serde_json::json;
use sotto_api::ErrorCode;
use sotto_api::ephemeral::{Outgoing, Target};
use sotto_api::realtime::{ClientEvent, ServerEvent};
use sotto_api::rest::{MessageBody, Presence, RoomKind, SendMessageRequest};
use sotto_client::{Client, ConnectOptions, RealtimeEvent};
use sotto_server::bus::BusMessage;

fn code<T: std::fmt::Debug>(r: Result<T, sotto_client::Error>) -> ErrorCode {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e.code().unwrap_or_else(|| panic!("no code in {e}")),
    }
}

fn created(e: &RealtimeEvent) -> Option<(i64, String)> {
    match e {
        RealtimeEvent::Event(ServerEvent::MessageCreated { seq, message }) => match &message.body {
            MessageBody::Text { text } => Some((*seq, text.clone())),
            MessageBody::Encrypted { envelope } => Some((*seq, envelope.clone())),
        },
        _ => None,
    }
}

async fn three(ts: &TestServer) -> (Client, Client, Client, Client) {
    let admin = ts.admin().await;
    let a = ts.user(&admin, "alice").await;
    let b = ts.user(&admin, "bob").await;
    let c = ts.user(&admin, "carol").await;
    (admin, a, b, c)
}

#[tokio::test]
async fn dm_get_or_create_is_idempotent_under_concurrency() {
    let ts = TestServer::start().await;
    let (_admin, a, b, _c) = three(&ts).await;
    let mut calls = Vec::new();
    for i in 0..16 {
        let (a, b) = (a.clone(), b.clone());
        calls.push(tokio::spawn(async move {
            if i % 2 == 0 {
                a.dm(b.user_id()).await
            } else {
                b.dm(a.user_id()).await
            }
        }));
    }
    let mut ids = HashSet::new();
    for c in calls {
        let room = c.await.expect("join").expect("dm");
        assert_eq!(room.kind, RoomKind::Dm);
        assert_eq!(room.members.len(), 2);
        ids.insert(room.id);
    }
    assert_eq!(ids.len(), 1, "exactly one DM room");
    assert_eq!(a.rooms().await.expect("rooms").len(), 1);
    assert_eq!(code(a.dm(a.user_id()).await), ErrorCode::InvalidInput);
    assert_eq!(code(a.dm(424_242).await), ErrorCode::NotFound);
}

#[tokio::test]
async fn multi_user_dm_and_group_flows() {
    let ts = TestServer::start().await;
    let (admin, a, b, c) = three(&ts).await;
    let m1 = a.multi_dm(&[b.user_id(), c.user_id()]).await.expect("mdm");
    let m2 = c
        .multi_dm(&[a.user_id(), b.user_id()])
        .await
        .expect("same mdm");
    assert_eq!(m1.id, m2.id);
    assert_eq!(m1.kind, RoomKind::MultiDm);
    assert_eq!(m1.members.len(), 3);
    assert_eq!(
        code(a.multi_dm(&[b.user_id()]).await),
        ErrorCode::InvalidInput
    );
    assert_eq!(
        code(a.add_member(m1.id, admin.user_id()).await),
        ErrorCode::NotAllowed
    );

    let mut rt_c = c.connect(ConnectOptions::default()).await.expect("connect");
    let g = a
        .create_group("Project X", &[b.user_id()])
        .await
        .expect("group");
    assert_eq!(g.owner_id, Some(a.user_id()));
    assert_eq!(g.name.as_deref(), Some("Project X"));
    // c is not a member: the group is invisible to them.
    assert_eq!(code(c.room(g.id).await), ErrorCode::NotFound);
    assert_eq!(code(c.send_text(g.id, "hi").await), ErrorCode::NotFound);
    // b invites c; c learns about it live.
    b.add_member(g.id, c.user_id()).await.expect("invite");
    expect(&mut rt_c, "member_joined", |e| {
        matches!(e, RealtimeEvent::Event(ServerEvent::MemberJoined { room, user_id, .. }) if room.id == g.id && *user_id == c.user_id())
    })
    .await;
    c.send_text(g.id, "hello group").await.expect("send");
    // Only the owner kicks.
    assert_eq!(
        code(b.remove_member(g.id, c.user_id()).await),
        ErrorCode::Forbidden
    );
    a.remove_member(g.id, c.user_id()).await.expect("kick");
    expect(&mut rt_c, "member_left", |e| {
        matches!(e, RealtimeEvent::Event(ServerEvent::MemberLeft { room_id, kicked: true, .. }) if *room_id == g.id)
    })
    .await;
    assert_eq!(
        code(c.history(g.id, None, None, None).await),
        ErrorCode::NotFound
    );
    // b leaves.
    b.remove_member(g.id, b.user_id()).await.expect("leave");
    assert_eq!(a.room(g.id).await.expect("room").members, vec![a.user_id()]);
    // Room list: last message and unread count.
    let mdm_msg = b.send_text(m1.id, "unread one").await.expect("send");
    b.send_text(m1.id, "unread two").await.expect("send");
    let rooms = a.rooms().await.expect("rooms");
    let r = rooms.iter().find(|r| r.id == m1.id).expect("mdm listed");
    assert_eq!(r.unread_count, 2);
    assert_eq!(
        r.last_message.as_ref().map(|m| m.body.clone()),
        Some(MessageBody::Text {
            text: "unread two".into()
        })
    );
    a.mark_read(m1.id, mdm_msg.id).await.expect("mark read");
    let rooms = a.rooms().await.expect("rooms");
    assert_eq!(
        rooms.iter().find(|r| r.id == m1.id).map(|r| r.unread_count),
        Some(1)
    );
}

#[tokio::test]
async fn a_message_reaches_both_connections_of_the_other_member_live() {
    let ts = TestServer::start().await;
    let (_admin, a, b, _c) = three(&ts).await;
    let room = a.dm(b.user_id()).await.expect("dm");
    let mut b1 = b.connect(ConnectOptions::default()).await.expect("b1");
    let mut b2 = b.connect(ConnectOptions::default()).await.expect("b2");
    let mut a1 = a.connect(ConnectOptions::default()).await.expect("a1");
    assert_ne!(b1.connection_id, b2.connection_id);
    let sent = a.send_text(room.id, "hello bob").await.expect("send");
    assert!(sent.id > 0 && sent.created_at > 0);
    assert_eq!(sent.author_id, a.user_id());
    for rt in [&mut b1, &mut b2, &mut a1] {
        let ev = expect(rt, "message", |e| created(e).is_some()).await;
        assert_eq!(created(&ev).map(|c| c.1), Some("hello bob".to_string()));
    }
}

#[tokio::test]
async fn history_paginates_both_ways() {
    let ts = TestServer::start().await;
    let (_admin, a, b, _c) = three(&ts).await;
    let room = a.dm(b.user_id()).await.expect("dm");
    let mut ids = Vec::new();
    for i in 0..25 {
        ids.push(
            a.send_text(room.id, &format!("m{i}"))
                .await
                .expect("send")
                .id,
        );
    }
    // Backwards from the newest.
    let mut seen = Vec::new();
    let mut page = b
        .history(room.id, None, None, Some(10))
        .await
        .expect("page");
    assert!(page.after.is_none());
    loop {
        let mut chunk: Vec<i64> = page.messages.iter().map(|m| m.id).collect();
        chunk.extend(seen);
        seen = chunk;
        match page.before.clone() {
            Some(c) => {
                page = b
                    .history(room.id, Some(&c), None, Some(10))
                    .await
                    .expect("page")
            }
            None => break,
        }
    }
    assert_eq!(seen, ids);
    // Forwards from the oldest.
    let first = b
        .history(room.id, None, Some(&format!("m{}", ids[0])), Some(7))
        .await
        .expect("page");
    let mut fwd = vec![ids[0]];
    let mut page = first;
    loop {
        fwd.extend(page.messages.iter().map(|m| m.id));
        match page.after.clone() {
            Some(c) => {
                page = b
                    .history(room.id, None, Some(&c), Some(7))
                    .await
                    .expect("page")
            }
            None => break,
        }
    }
    assert_eq!(fwd, ids);
}

#[tokio::test]
async fn edit_and_delete_are_pushed_live() {
    let ts = TestServer::start().await;
    let (_admin, a, b, _c) = three(&ts).await;
    let room = a.dm(b.user_id()).await.expect("dm");
    let mut rt = b.connect(ConnectOptions::default()).await.expect("connect");
    let m = a.send_text(room.id, "typo").await.expect("send");
    assert_eq!(
        code(
            b.edit(
                m.id,
                MessageBody::Text {
                    text: "hijack".into()
                }
            )
            .await
        ),
        ErrorCode::Forbidden
    );
    assert_eq!(code(b.delete_message(m.id).await), ErrorCode::Forbidden);
    let edited = a
        .edit(
            m.id,
            MessageBody::Text {
                text: "fixed".into(),
            },
        )
        .await
        .expect("edit");
    assert!(edited.edited_at.is_some());
    expect(&mut rt, "edit", |e| {
        matches!(e, RealtimeEvent::Event(ServerEvent::MessageEdited { message, .. })
            if message.id == m.id && message.body == MessageBody::Text { text: "fixed".into() })
    })
    .await;
    a.delete_message(m.id).await.expect("delete");
    expect(&mut rt, "delete", |e| {
        matches!(e, RealtimeEvent::Event(ServerEvent::MessageDeleted { message_id, .. }) if *message_id == m.id)
    })
    .await;
    assert!(
        b.history(room.id, None, None, None)
            .await
            .expect("history")
            .messages
            .is_empty()
    );
    assert_eq!(code(a.delete_message(m.id).await), ErrorCode::NotFound);
}

#[tokio::test]
async fn search_finds_text_and_never_an_encrypted_envelope() {
    let ts = TestServer::start().await;
    let (_admin, a, b, c) = three(&ts).await;
    let room = a.dm(b.user_id()).await.expect("dm");
    a.send_text(room.id, "the quokka is a happy marsupial")
        .await
        .expect("send");
    a.send_text(room.id, "nothing to see").await.expect("send");
    // An ordinary room takes no envelope (encrypted rooms are tested in e2e_rooms.rs).
    assert_eq!(
        code(
            a.send_encrypted(room.id, "quokkaENVELOPEsecretquokka")
                .await
        ),
        ErrorCode::E2eRoomNotEncrypted
    );
    a.send_text(room.id, "quokka quokka quokka")
        .await
        .expect("send");
    let r = b.search("quokka", None, None).await.expect("search");
    assert_eq!(r.hits.len(), 2);
    assert!(
        r.hits
            .iter()
            .all(|m| matches!(m.body, MessageBody::Text { .. }))
    );
    assert_eq!(
        r.hits[0].body,
        MessageBody::Text {
            text: "quokka quokka quokka".into()
        },
        "ranked"
    );
    assert!(
        b.search("quokkaENVELOPEsecretquokka", None, None)
            .await
            .expect("search")
            .hits
            .is_empty()
    );
    // Pagination.
    let p1 = b.search("quokka", Some(1), None).await.expect("page 1");
    assert_eq!(p1.hits.len(), 1);
    assert_eq!(p1.next_offset, Some(1));
    let p2 = b
        .search("quokka", Some(1), p1.next_offset)
        .await
        .expect("page 2");
    assert_eq!(p2.hits.len(), 1);
    assert_ne!(p1.hits[0].id, p2.hits[0].id);
    // Not a member: nothing.
    assert!(
        c.search("quokka", None, None)
            .await
            .expect("search")
            .hits
            .is_empty()
    );
    // FTS syntax is taken literally.
    b.search("\"unbalanced AND (", None, None)
        .await
        .expect("no syntax error");
}

#[tokio::test]
async fn index_writes_follow_their_jobs_within_a_shared_batch() {
    let ts = TestServer::start().await;
    let (_admin, a, b, _c) = three(&ts).await;
    let room = a.dm(b.user_id()).await.expect("dm").id;
    // Sent at once so they share commits. Every third is refused after its text was queued for
    // the index (its attachment does not exist): its index write must go with it.
    let sends = (0..30).map(|i| {
        let a = a.clone();
        tokio::spawn(async move {
            let req = SendMessageRequest {
                body: MessageBody::Text {
                    text: format!("wombat number{i}"),
                },
                attachment_id: (i % 3 == 0).then_some(999_999),
            };
            (i, a.send(room, &req).await)
        })
    });
    let mut kept = Vec::new();
    for send in sends {
        let (i, result) = send.await.expect("join");
        match result {
            Ok(m) => kept.push(m.id),
            Err(e) => assert_eq!(i % 3, 0, "only the bad attachments fail: {e}"),
        }
    }
    assert_eq!(kept.len(), 20);
    // An edit and a delete, also at once: the edit's unindex and index keep their order.
    let (edit, delete) = tokio::join!(
        a.edit(
            kept[0],
            MessageBody::Text {
                text: "numbat now".into()
            }
        ),
        a.delete_message(kept[1])
    );
    edit.expect("edit");
    delete.expect("delete");
    let hits = b
        .search("wombat", Some(50), None)
        .await
        .expect("search")
        .hits;
    let mut found: Vec<_> = hits.iter().map(|m| m.id).collect();
    found.sort_unstable();
    assert_eq!(
        found,
        kept[2..],
        "refused, edited and deleted messages are not found"
    );
    let numbat = b.search("numbat", None, None).await.expect("search").hits;
    assert_eq!(numbat.iter().map(|m| m.id).collect::<Vec<_>>(), [kept[0]]);
}

#[tokio::test]
async fn uploads_are_access_controlled_and_html_is_an_attachment() {
    let ts = TestServer::start().await;
    let (_admin, a, b, c) = three(&ts).await;
    let room = a.dm(b.user_id()).await.expect("dm");
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDRfake".to_vec();
    let img = a
        .upload(room.id, "cat.png", png.clone())
        .await
        .expect("upload png");
    assert!(img.inline);
    assert_eq!(img.content_type, "image/png");
    let html = a
        .upload(
            room.id,
            "evil.html",
            b"<html><script>alert(1)</script></html>".to_vec(),
        )
        .await
        .expect("upload");
    assert!(!html.inline);
    let svg = a
        .upload(
            room.id,
            "x.svg",
            b"<svg xmlns='http://www.w3.org/2000/svg'/>".to_vec(),
        )
        .await
        .expect("upload");
    assert!(!svg.inline);
    let msg = a
        .send(
            room.id,
            &SendMessageRequest {
                body: MessageBody::Text {
                    text: "see file".into(),
                },
                attachment_id: Some(html.id),
            },
        )
        .await
        .expect("send with attachment");
    assert_eq!(msg.attachment.as_ref().map(|u| u.id), Some(html.id));
    // Other members may read an upload once it is sent.
    for up in [img.id, svg.id] {
        a.send(
            room.id,
            &SendMessageRequest {
                body: MessageBody::Text {
                    text: "another file".into(),
                },
                attachment_id: Some(up),
            },
        )
        .await
        .expect("send with attachment");
    }

    let d = b.download(img.id).await.expect("member downloads");
    assert_eq!(d.body, png);
    assert_eq!(d.header("x-content-type-options"), Some("nosniff"));
    assert!(
        d.header("content-disposition")
            .is_some_and(|v| v.starts_with("inline"))
    );
    for id in [html.id, svg.id] {
        let d = b.download(id).await.expect("download");
        assert!(
            d.header("content-disposition")
                .is_some_and(|v| v.starts_with("attachment"))
        );
        assert!(
            d.header("content-security-policy")
                .is_some_and(|v| v.contains("sandbox"))
        );
        assert_eq!(d.header("content-type"), Some("application/octet-stream"));
        assert_eq!(d.header("x-content-type-options"), Some("nosniff"));
    }
    assert_eq!(
        code(c.download(img.id).await),
        ErrorCode::NotFound,
        "non-member refused"
    );
    assert_eq!(
        code(c.upload(room.id, "x.txt", b"hi".to_vec()).await),
        ErrorCode::NotFound
    );

    // Deleting the message deletes the file.
    let files_before = std::fs::read_dir(ts.dir.path().join("uploads"))
        .expect("dir")
        .count();
    a.delete_message(msg.id).await.expect("delete");
    assert_eq!(code(b.download(html.id).await), ErrorCode::NotFound);
    let files_after = std::fs::read_dir(ts.dir.path().join("uploads"))
        .expect("dir")
        .count();
    assert_eq!(files_after, files_before - 1);
}

#[tokio::test]
async fn uploads_over_the_limit_are_refused() {
    let ts = TestServer::start().await;
    let (admin, a, b, _c) = three(&ts).await;
    let mut m = sotto_api::rest::SettingsMap::new();
    m.insert("uploads.max_bytes".into(), json!(1000));
    admin.update_settings(&m).await.expect("settings");
    let room = a.dm(b.user_id()).await.expect("dm");
    assert_eq!(
        code(a.upload(room.id, "big.bin", vec![7u8; 5000]).await),
        ErrorCode::PayloadTooLarge
    );
    a.upload(room.id, "small.bin", vec![7u8; 999])
        .await
        .expect("under the limit");
    let tmp = std::fs::read_dir(ts.dir.path().join("uploads/tmp"))
        .expect("tmp")
        .count();
    assert_eq!(tmp, 0, "no temp files left behind");
}

#[tokio::test]
async fn settings_changes_reach_connected_clients_and_only_admins_write() {
    let ts = TestServer::start().await;
    let (admin, a, _b, _c) = three(&ts).await;
    let mut rt = a.connect(ConnectOptions::default()).await.expect("connect");
    let mut m = sotto_api::rest::SettingsMap::new();
    m.insert("otr.enabled".into(), json!(false));
    assert_eq!(code(a.update_settings(&m).await), ErrorCode::Forbidden);
    assert_eq!(code(a.admin_settings().await), ErrorCode::Forbidden);
    admin.update_settings(&m).await.expect("admin writes");
    let ev = expect(&mut rt, "settings_changed", |e| {
        matches!(e, RealtimeEvent::Event(ServerEvent::SettingsChanged { .. }))
    })
    .await;
    let RealtimeEvent::Event(ServerEvent::SettingsChanged { settings }) = ev else {
        unreachable!()
    };
    assert_eq!(settings["otr.enabled"], json!(false));
    assert!(
        !settings.contains_key("ratelimit.login_per_ip_per_min"),
        "private settings stay private"
    );
    assert_eq!(
        a.settings().await.expect("public")["otr.enabled"],
        json!(false)
    );
    assert!(
        admin
            .admin_settings()
            .await
            .expect("all")
            .contains_key("ratelimit.login_per_ip_per_min")
    );
}

#[tokio::test]
async fn presence_goes_online_then_offline_when_the_last_connection_closes() {
    let ts = TestServer::start().await;
    let (_admin, a, b, _c) = three(&ts).await;
    a.dm(b.user_id()).await.expect("dm");
    let mut rt_a = a.connect(ConnectOptions::default()).await.expect("a");
    let is = |user: i64, status: Presence| move |e: &RealtimeEvent| matches!(e, RealtimeEvent::Event(ServerEvent::Presence { user_id, status: s }) if *user_id == user && *s == status);
    let b1 = b.connect(ConnectOptions::default()).await.expect("b1");
    expect(&mut rt_a, "bob online", is(b.user_id(), Presence::Online)).await;
    let b2 = b.connect(ConnectOptions::default()).await.expect("b2");
    b2.send(&ClientEvent::SetAway { away: true }).expect("away");
    b1.send(&ClientEvent::SetAway { away: true }).expect("away");
    expect(&mut rt_a, "bob away", is(b.user_id(), Presence::Away)).await;
    b1.close().await;
    let users = a.users().await.expect("users");
    assert_eq!(
        users
            .iter()
            .find(|u| u.user.id == b.user_id())
            .map(|u| u.presence),
        Some(Presence::Away)
    );
    b2.close().await;
    expect(&mut rt_a, "bob offline", is(b.user_id(), Presence::Offline)).await;
    let users = a.users().await.expect("users");
    assert_eq!(
        users
            .iter()
            .find(|u| u.user.id == b.user_id())
            .map(|u| u.presence),
        Some(Presence::Offline)
    );
}

#[tokio::test]
async fn reconnect_catches_up_without_gaps_or_duplicates() {
    let ts = TestServer::start().await;
    let (_admin, a, b, _c) = three(&ts).await;
    let room = a.dm(b.user_id()).await.expect("dm");
    let mut rt = b.connect(ConnectOptions::default()).await.expect("connect");
    for i in 0..3 {
        a.send_text(room.id, &format!("before {i}"))
            .await
            .expect("send");
    }
    for _ in 0..3 {
        expect(&mut rt, "message", |e| created(e).is_some()).await;
    }
    let since = rt.last_seq();
    rt.drop_abruptly();
    let mut expected = Vec::new();
    for i in 0..5 {
        expected.push(format!("missed {i}"));
        a.send_text(room.id, &format!("missed {i}"))
            .await
            .expect("send");
    }
    // Keep sending while the reconnect happens.
    let sender = {
        let a = a.clone();
        tokio::spawn(async move {
            for i in 0..20 {
                a.send_text(room.id, &format!("during {i}"))
                    .await
                    .expect("send");
            }
        })
    };
    for i in 0..20 {
        expected.push(format!("during {i}"));
    }
    let mut rt = b
        .connect(ConnectOptions {
            since: Some(since),
            ..ConnectOptions::default()
        })
        .await
        .expect("reconnect");
    sender.await.expect("sender");
    let mut got = Vec::new();
    let mut seqs = Vec::new();
    let mut caught_up = false;
    // Both must happen, in either order: the "during" messages may all be committed before the
    // replay reads them (then catch_up_done comes last) or arrive live after it.
    let deadline = tokio::time::Instant::now() + common::WAIT;
    while got.len() < expected.len() || !caught_up {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let ev = rt
            .next_within(left)
            .await
            .unwrap_or_else(|| panic!("timed out: caught up {caught_up}, got {got:?}"));
        if let Some((seq, text)) = created(&ev) {
            seqs.push(seq);
            got.push(text);
        } else if let RealtimeEvent::Event(ServerEvent::CatchUpDone { complete, .. }) = ev {
            assert!(complete);
            caught_up = true;
        }
    }
    assert!(caught_up);
    assert_eq!(got, expected, "every missed message exactly once, in order");
    assert!(seqs.windows(2).all(|w| w[0] < w[1]));
    let extra = rt.drain(Duration::from_millis(300)).await;
    assert!(
        extra.iter().all(|e| created(e).is_none()),
        "no duplicates afterwards"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_long_catch_up_in_a_busy_room_does_not_cut_off_a_client_that_keeps_up() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    // A small queue: the messages sent during the replay would overflow it if they were queued.
    // Several worker threads, so the senders really run while the server replays.
    let ts = TestServer::start_with(|c| c.ws_queue = 8).await;
    let (_admin, a, b, _c) = three(&ts).await;
    let room = a.dm(b.user_id()).await.expect("dm");
    let mut expected = HashSet::new();
    for chunk in 0..60 {
        let mut sends = tokio::task::JoinSet::new();
        for i in 0..10 {
            // Long messages make for a longer replay.
            let text = format!("backlog {} {}", chunk * 10 + i, "x".repeat(8000));
            expected.insert(text.clone());
            let a = a.clone();
            sends.spawn(async move { a.send_text(room.id, &text).await.map(|_| ()) });
        }
        while let Some(r) = sends.join_next().await {
            r.expect("join").expect("send");
        }
    }
    // The room stays busy (four senders, each at most one message per 5 ms: a rate a client
    // can keep up with while it also reads the backlog; unpaced, the senders outrun any reader
    // and cutting it off would be right) until the client has caught up.
    let caught_up = Arc::new(AtomicBool::new(false));
    let senders: Vec<_> = (0..4)
        .map(|t| {
            let (a, caught_up) = (a.clone(), caught_up.clone());
            tokio::spawn(async move {
                let mut sent = Vec::new();
                while !caught_up.load(Ordering::SeqCst) {
                    let text = format!("live {t} {}", sent.len());
                    a.send_text(room.id, &text).await.expect("send");
                    sent.push(text);
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                sent
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let mut rt = b
        .connect(ConnectOptions {
            since: Some(0),
            ..ConnectOptions::default()
        })
        .await
        .expect("reconnect");
    let mut got = HashSet::new();
    let mut last = 0;
    let mut live_in_catch_up = 0;
    let mut senders = Some(senders);
    while senders.is_some() || got.len() < expected.len() {
        let ev = rt.next_within(common::WAIT).await.unwrap_or_else(|| {
            panic!(
                "timed out: caught up {}, {} of {}",
                senders.is_none(),
                got.len(),
                expected.len()
            )
        });
        match &ev {
            RealtimeEvent::Closed { .. } => panic!("the client was cut off: {ev:?}"),
            RealtimeEvent::Event(ServerEvent::CatchUpDone { complete, .. }) => {
                assert!(complete);
                caught_up.store(true, Ordering::SeqCst);
                for s in senders.take().expect("one catch_up_done") {
                    expected.extend(s.await.expect("sender"));
                }
            }
            _ => {
                if let Some((seq, text)) = created(&ev) {
                    assert!(seq > last, "in order, no duplicate");
                    last = seq;
                    if senders.is_some() && text.starts_with("live") {
                        live_in_catch_up += 1;
                    }
                    assert!(got.insert(text), "no duplicate");
                }
            }
        }
    }
    assert_eq!(got, expected, "every message exactly once");
    assert!(
        live_in_catch_up > 8,
        "more live messages than the queue holds came with the catch-up: {live_in_catch_up}"
    );
    let extra = rt.drain(Duration::from_millis(200)).await;
    assert!(
        extra.iter().all(|e| created(e).is_none()),
        "no duplicates afterwards: {extra:?}"
    );
}

#[tokio::test]
async fn an_ephemeral_event_reaches_exactly_one_connection_and_is_never_replayed() {
    let ts = TestServer::start().await;
    let (_admin, a, b, c) = three(&ts).await;
    let room = a.dm(b.user_id()).await.expect("dm");
    let mut a1 = a.connect(ConnectOptions::default()).await.expect("a1");
    let mut b1 = b.connect(ConnectOptions::default()).await.expect("b1");
    let mut b2 = b.connect(ConnectOptions::default()).await.expect("b2");
    let mut c1 = c.connect(ConnectOptions::default()).await.expect("c1");
    let since_b1 = {
        // Settle the connections' catch-up markers.
        expect(&mut b1, "catch-up", |e| {
            matches!(e, RealtimeEvent::Event(ServerEvent::CatchUpDone { .. }))
        })
        .await;
        b1.last_seq()
    };
    // b1 → every connection of alice (one).
    b1.send_ephemeral(&Outgoing {
        room_id: room.id,
        target: Target::User(a.user_id()),
        channel: 2,
        payload: b"offer".to_vec(),
    })
    .expect("send");
    let ev = expect(&mut a1, "ephemeral", |e| {
        matches!(e, RealtimeEvent::Ephemeral(_))
    })
    .await;
    let RealtimeEvent::Ephemeral(inc) = ev else {
        unreachable!()
    };
    assert_eq!(inc.from_user, b.user_id(), "sender stamped by the server");
    assert_eq!(inc.from_connection, b1.connection_id);
    assert_eq!(inc.payload, b"offer");
    // alice → exactly b1.
    a1.send_ephemeral(&Outgoing {
        room_id: room.id,
        target: Target::Connection(inc.from_connection.clone()),
        channel: 2,
        payload: b"accept".to_vec(),
    })
    .expect("send");
    let ev = expect(&mut b1, "ephemeral", |e| {
        matches!(e, RealtimeEvent::Ephemeral(_))
    })
    .await;
    assert!(
        matches!(ev, RealtimeEvent::Ephemeral(i) if i.payload == b"accept" && i.from_connection == a1.connection_id)
    );
    assert!(
        b2.drain(Duration::from_millis(300))
            .await
            .iter()
            .all(|e| !matches!(e, RealtimeEvent::Ephemeral(_))),
        "b2 gets nothing"
    );
    // A non-member cannot route into the room; unknown connections are unreachable.
    c1.send_ephemeral(&Outgoing {
        room_id: room.id,
        target: Target::User(a.user_id()),
        channel: 2,
        payload: vec![1],
    })
    .expect("send");
    let unreachable = |e: &RealtimeEvent| {
        matches!(
            e,
            RealtimeEvent::Event(ServerEvent::Error {
                code: ErrorCode::TargetUnreachable,
                ..
            })
        )
    };
    // The server answers a frame either by routing it or with an error to its sender: the
    // non-member's own error proves nothing was routed.
    expect(&mut c1, "the non-member's frame refused", unreachable).await;
    a1.send_ephemeral(&Outgoing {
        room_id: room.id,
        target: Target::Connection("c_nope".into()),
        channel: 2,
        payload: vec![1],
    })
    .expect("send");
    let ev = expect(&mut a1, "unreachable (or a leaked frame)", |e| {
        unreachable(e) || matches!(e, RealtimeEvent::Ephemeral(_))
    })
    .await;
    assert!(unreachable(&ev), "nothing reached alice: {ev:?}");
    // Reconnect: nothing ephemeral is replayed.
    b1.close().await;
    let mut b1 = b
        .connect(ConnectOptions {
            since: Some(since_b1),
            ..ConnectOptions::default()
        })
        .await
        .expect("reconnect");
    let replay = b1.drain(Duration::from_millis(500)).await;
    assert!(
        replay
            .iter()
            .any(|e| matches!(e, RealtimeEvent::Event(ServerEvent::CatchUpDone { .. })))
    );
    assert!(
        replay
            .iter()
            .all(|e| !matches!(e, RealtimeEvent::Ephemeral(_)))
    );
}

#[tokio::test]
async fn connection_closed_signal_tells_clean_close_from_abnormal_drop() {
    let ts = TestServer::start().await;
    let (_admin, a, _b, _c) = three(&ts).await;
    let mut bus = ts.server().subscribe_bus();
    let rt1 = a.connect(ConnectOptions::default()).await.expect("connect");
    let rt2 = a.connect(ConnectOptions::default()).await.expect("connect");
    let (id1, id2) = (rt1.connection_id.clone(), rt2.connection_id.clone());
    rt1.close().await;
    rt2.drop_abruptly();
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + common::WAIT;
    while seen.len() < 2 {
        let msg = tokio::time::timeout_at(deadline, bus.recv())
            .await
            .expect("signal")
            .expect("bus");
        if let BusMessage::ConnectionClosed {
            connection_id,
            clean,
            ..
        } = &*msg
        {
            seen.push((connection_id.to_string(), *clean));
        }
    }
    assert!(seen.contains(&(id1, true)), "clean close: {seen:?}");
    assert!(seen.contains(&(id2, false)), "abnormal drop: {seen:?}");
}

#[tokio::test]
async fn a_slow_consumer_is_cut_off_while_others_keep_receiving() {
    let ts = TestServer::start_with(|c| c.ws_queue = 8).await;
    let (_admin, a, b, c) = three(&ts).await;
    let room = a.dm(b.user_id()).await.expect("dm");
    let group = a.create_group("g", &[c.user_id()]).await.expect("group");
    let mut bus = ts.server().subscribe_bus();
    // Bob's connection buffers one event and never reads.
    let slow = b
        .connect(ConnectOptions {
            buffer: 1,
            ..ConnectOptions::default()
        })
        .await
        .expect("slow");
    let slow_id = slow.connection_id.clone();
    let mut fast = c.connect(ConnectOptions::default()).await.expect("fast");
    let a1 = a.connect(ConnectOptions::default()).await.expect("a1");
    let payload = vec![0x5a; 60_000];
    let mut cut = false;
    'outer: for _ in 0..40 {
        for _ in 0..20 {
            a1.send_ephemeral(&Outgoing {
                room_id: room.id,
                target: Target::Connection(slow_id.clone()),
                channel: 2,
                payload: payload.clone(),
            })
            .expect("send");
        }
        while let Ok(Ok(msg)) = tokio::time::timeout(Duration::from_millis(50), bus.recv()).await {
            if let BusMessage::ConnectionClosed {
                connection_id,
                clean,
                ..
            } = &*msg
                && **connection_id == *slow_id
            {
                assert!(!clean);
                cut = true;
                break 'outer;
            }
        }
    }
    assert!(cut, "the slow connection was cut off");
    a.send_text(group.id, "still flowing").await.expect("send");
    let ev = expect(&mut fast, "message", |e| created(e).is_some()).await;
    assert_eq!(created(&ev).map(|c| c.1), Some("still flowing".into()));
    drop(slow);
}

#[tokio::test]
async fn history_survives_a_restart() {
    let mut ts = TestServer::start().await;
    let (_admin, a, b, _c) = three(&ts).await;
    let room = a.dm(b.user_id()).await.expect("dm");
    a.send_text(room.id, "persisted").await.expect("send");
    let dir = ts.dir.path().to_path_buf();
    ts.stop().await;
    let server = sotto_server::Server::start(sotto_server::Config::for_tests(&dir))
        .await
        .expect("restart");
    assert!(
        server.setup_token.is_none(),
        "admin exists: no new set-up link"
    );
    let mut b2 = Client::new(server.url());
    b2.login("bob", PW).await.expect("login after restart");
    let page = b2
        .history(room.id, None, None, None)
        .await
        .expect("history");
    assert_eq!(page.messages.len(), 1);
    assert_eq!(
        page.messages[0].body,
        MessageBody::Text {
            text: "persisted".into()
        }
    );
    assert_eq!(
        b2.search("persisted", None, None)
            .await
            .expect("search")
            .hits
            .len(),
        1
    );
    server.shutdown().await;
}

async fn closed_signal(
    bus: &mut tokio::sync::broadcast::Receiver<std::sync::Arc<BusMessage>>,
    id: &str,
) -> bool {
    let deadline = tokio::time::Instant::now() + common::WAIT;
    loop {
        let msg = tokio::time::timeout_at(deadline, bus.recv())
            .await
            .expect("signal")
            .expect("bus");
        if let BusMessage::ConnectionClosed {
            connection_id,
            clean,
            ..
        } = &*msg
            && &**connection_id == id
        {
            return *clean;
        }
    }
}

#[tokio::test]
async fn a_dropped_connection_id_can_be_resumed_by_its_session_within_the_grace_period() {
    let ts = TestServer::start().await;
    let (_admin, a, b, _c) = three(&ts).await;
    let room = a.dm(b.user_id()).await.expect("dm");
    let mut bus = ts.server().subscribe_bus();
    let rt = a.connect(ConnectOptions::default()).await.expect("connect");
    let id = rt.connection_id.clone();
    rt.drop_abruptly();
    assert!(!closed_signal(&mut bus, &id).await, "abnormal drop");

    // Another session of the same user cannot take the id.
    let mut a_other = ts.client();
    a_other.login("alice", PW).await.expect("login");
    let thief = a_other
        .connect(ConnectOptions {
            resume: Some(id.clone()),
            ..ConnectOptions::default()
        })
        .await
        .expect("connect");
    assert!(!thief.resumed);
    assert_ne!(thief.connection_id, id);

    // The same session gets it back, and ephemeral events addressed to it arrive.
    let mut back = a
        .connect(ConnectOptions {
            resume: Some(id.clone()),
            ..ConnectOptions::default()
        })
        .await
        .expect("resume");
    assert!(back.resumed);
    assert_eq!(back.connection_id, id);
    let b1 = b.connect(ConnectOptions::default()).await.expect("b");
    b1.send_ephemeral(&Outgoing {
        room_id: room.id,
        target: Target::Connection(id.clone()),
        channel: 2,
        payload: b"still here".to_vec(),
    })
    .expect("send");
    expect(
        &mut back,
        "ephemeral",
        |e| matches!(e, RealtimeEvent::Ephemeral(i) if i.payload == b"still here"),
    )
    .await;

    // A clean close releases nothing to resume.
    back.close().await;
    assert!(closed_signal(&mut bus, &id).await, "clean close");
    let fresh = a
        .connect(ConnectOptions {
            resume: Some(id.clone()),
            ..ConnectOptions::default()
        })
        .await
        .expect("connect");
    assert!(!fresh.resumed);
    assert_ne!(fresh.connection_id, id);
}

/// Regression: dropping the SDK's connection while its task was writing queued frames used to
/// send a close frame (the task saw its outgoing channel end before the abort took effect), so
/// the server took a "network failure" for a clean close and released the id and its OTR
/// sessions. The race needs the task running on another worker at the moment of the drop, so
/// every round queues frames just before dropping.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_dropped_while_it_writes_is_a_drop_not_a_close() {
    let ts = TestServer::start().await;
    let (_admin, a, _b, _c) = three(&ts).await;
    let mut bus = ts.server().subscribe_bus();
    for round in 0..40 {
        let mut rt = a.connect(ConnectOptions::default()).await.expect("connect");
        let id = rt.connection_id.clone();
        // Read what the server sends on its own (presence), and then send frames it does not
        // answer: data left unread would make the client's kernel reset the connection, which
        // the server takes for a drop whatever came before.
        rt.drain(Duration::from_millis(30)).await;
        for frame in 0..24 {
            rt.send(&ClientEvent::E2eState {
                unlocked: frame % 2 == 0,
            })
            .expect("send");
        }
        // Drop at a different moment of the task's work each round (0 to 195 µs in).
        let spin = std::time::Instant::now();
        while spin.elapsed() < Duration::from_micros(round * 5) {
            std::hint::spin_loop();
        }
        rt.drop_abruptly();
        assert!(
            !closed_signal(&mut bus, &id).await,
            "round {round}: an abrupt drop was seen as a clean close"
        );
        let back = a
            .connect(ConnectOptions {
                resume: Some(id.clone()),
                ..ConnectOptions::default()
            })
            .await
            .expect("resume");
        assert!(
            back.resumed,
            "round {round}: the dropped id was not offered back"
        );
        back.close().await;
        assert!(
            closed_signal(&mut bus, &id).await,
            "round {round}: clean close"
        );
    }
}

#[tokio::test]
async fn a_dropped_connection_id_is_not_resumable_after_the_grace_period() {
    let ts = TestServer::start_with(|c| c.resume_grace_secs = 1).await;
    let (_admin, a, _b, _c) = three(&ts).await;
    let mut bus = ts.server().subscribe_bus();
    let rt = a.connect(ConnectOptions::default()).await.expect("connect");
    let id = rt.connection_id.clone();
    rt.drop_abruptly();
    assert!(!closed_signal(&mut bus, &id).await);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let late = a
        .connect(ConnectOptions {
            resume: Some(id.clone()),
            ..ConnectOptions::default()
        })
        .await
        .expect("connect");
    assert!(!late.resumed);
    assert_ne!(late.connection_id, id);
}

#[tokio::test]
async fn connections_opened_while_messages_flow_miss_nothing_after_their_start() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    let ts = TestServer::start().await;
    let (_admin, a, b, _c) = three(&ts).await;
    let room = a.dm(b.user_id()).await.expect("dm");
    let total = 80;
    // Index of the message being sent now (its send may have started before a connect).
    let sending = Arc::new(AtomicUsize::new(0));
    let sender = {
        let (a, sending) = (a.clone(), sending.clone());
        tokio::spawn(async move {
            for i in 0..total {
                sending.store(i, Ordering::SeqCst);
                a.send_text(room.id, &format!("n{i}")).await.expect("send");
            }
        })
    };
    let mut conns = Vec::new();
    for _ in 0..12 {
        let rt = b.connect(ConnectOptions::default()).await.expect("connect");
        // Every message whose send started after `connect` returned must arrive.
        let floor = sending.load(Ordering::SeqCst) + 1;
        conns.push((rt, floor));
    }
    sender.await.expect("sender");
    for (mut rt, floor) in conns {
        let mut got = Vec::new();
        while got.last().map(String::as_str) != Some(&*format!("n{}", total - 1)) {
            let ev = rt
                .next_within(common::WAIT)
                .await
                .expect("the last message arrives");
            if let Some((_, text)) = created(&ev) {
                got.push(text);
            }
        }
        let first: usize = got[0][1..].parse().expect("n<i>");
        assert!(
            first <= floor,
            "started at n{first} but n{floor} was sent after connecting"
        );
        // What a connection sees is a gap-free, duplicate-free suffix of what was sent.
        let want: Vec<String> = (first..total).map(|i| format!("n{i}")).collect();
        assert_eq!(got, want);
    }
}

#[tokio::test]
async fn a_client_that_stops_answering_heartbeats_is_dropped() {
    let ts = TestServer::start_with(|c| c.heartbeat_secs = 1).await;
    let (_admin, a, b, _c) = three(&ts).await;
    a.dm(b.user_id()).await.expect("dm");
    let mut bus = ts.server().subscribe_bus();
    // A buffer of one event: once it holds `catch_up_done`, the SDK stops reading the socket,
    // so the server's pings go unanswered.
    let stuck = b
        .connect(ConnectOptions {
            buffer: 1,
            ..ConnectOptions::default()
        })
        .await
        .expect("connect");
    let id = stuck.connection_id.clone();
    let mut healthy = a.connect(ConnectOptions::default()).await.expect("connect");
    let started = std::time::Instant::now();
    assert!(!closed_signal(&mut bus, &id).await, "dropped as abnormal");
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "not before the heartbeat timeout"
    );
    // The connection that reads (and so answers pings) is still there.
    healthy.send(&ClientEvent::Ping { nonce: 1 }).expect("ping");
    expect(&mut healthy, "pong", |e| {
        matches!(e, RealtimeEvent::Event(ServerEvent::Pong { nonce: 1 }))
    })
    .await;
    drop(stuck);
}

#[tokio::test]
async fn retention_prunes_old_events_and_unattached_uploads() {
    let ts = TestServer::start_with(|c| {
        c.event_retention_secs = 1;
        c.orphan_upload_secs = 1;
    })
    .await;
    let (_admin, a, b, _c) = three(&ts).await;
    let room = a.dm(b.user_id()).await.expect("dm");
    a.send_text(room.id, "old one").await.expect("send");
    let orphan = a
        .upload(room.id, "never-sent.txt", b"orphan".to_vec())
        .await
        .expect("upload");
    let kept = a
        .upload(room.id, "sent.txt", b"kept".to_vec())
        .await
        .expect("upload");
    a.send(
        room.id,
        &SendMessageRequest {
            body: MessageBody::Text {
                text: "with file".into(),
            },
            attachment_id: Some(kept.id),
        },
    )
    .await
    .expect("send");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    sotto_server::app::run_maintenance(ts.server().app()).await;
    a.send_text(room.id, "new one").await.expect("send");

    // Catch-up from the beginning: only what is left, flagged incomplete.
    let mut rt = b
        .connect(ConnectOptions {
            since: Some(0),
            ..ConnectOptions::default()
        })
        .await
        .expect("connect");
    let mut replayed = Vec::new();
    let complete = loop {
        match rt.next_within(common::WAIT).await.expect("event") {
            RealtimeEvent::Event(ServerEvent::CatchUpDone { complete, .. }) => break complete,
            ev => replayed.extend(created(&ev).map(|c| c.1)),
        }
    };
    assert!(!complete, "the client learns that older events were pruned");
    assert_eq!(replayed, vec!["new one".to_string()]);
    // History itself is not affected by event retention.
    assert_eq!(
        b.history(room.id, None, None, None)
            .await
            .expect("history")
            .messages
            .len(),
        3
    );

    assert_eq!(
        code(b.download(orphan.id).await),
        ErrorCode::NotFound,
        "unattached upload removed"
    );
    assert_eq!(
        b.download(kept.id)
            .await
            .expect("attached upload kept")
            .body,
        b"kept"
    );
}

#[tokio::test]
async fn a_prune_that_empties_the_log_keeps_the_head_for_fresh_connections() {
    let ts = TestServer::start_with(|c| c.event_retention_secs = 1).await;
    let (_admin, a, b, _c) = three(&ts).await;
    let room = a.dm(b.user_id()).await.expect("dm");
    a.send_text(room.id, "soon pruned").await.expect("send");
    let catch_up = |since: Option<i64>| {
        let b = &b;
        async move {
            let mut rt = b
                .connect(ConnectOptions {
                    since,
                    ..ConnectOptions::default()
                })
                .await
                .expect("connect");
            loop {
                match rt.next_within(common::WAIT).await.expect("event") {
                    RealtimeEvent::Event(ServerEvent::CatchUpDone { last_seq, complete }) => {
                        break (last_seq, complete, rt);
                    }
                    RealtimeEvent::Event(ServerEvent::Hello { .. }) => {}
                    ev => panic!("nothing to replay, got {ev:?}"),
                }
            }
        }
    };
    let (head, complete, _) = catch_up(None).await;
    assert!(complete);
    assert!(head > 0);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    sotto_server::app::run_maintenance(ts.server().app()).await;
    let app = ts.server().app();
    let left = sotto_server::services::events::since(&app.db, b.user_id(), 0, 10)
        .await
        .expect("read the log");
    assert!(left.is_empty(), "the prune emptied the log");
    assert_eq!(app.db.events_pruned_through().await.expect("pruned"), head);

    // A fresh connection starts at the head, which the prune did not move back: it missed
    // nothing, and a client that had seen everything resumes complete too.
    let (fresh, complete, mut rt) = catch_up(None).await;
    assert_eq!((fresh, complete), (head, true));
    let (resumed, complete, _) = catch_up(Some(head)).await;
    assert_eq!((resumed, complete), (head, true));
    // Only a client from before the pruned range is told it missed something.
    let (_, complete, _) = catch_up(Some(0)).await;
    assert!(!complete);
    // Live events go on after the head.
    a.send_text(room.id, "after the prune").await.expect("send");
    let ev = expect(&mut rt, "the new message", |e| created(e).is_some()).await;
    let RealtimeEvent::Event(ev) = ev else {
        unreachable!()
    };
    assert!(ev.seq().expect("stored") > head);
}

/// Every file under `dir`, recursively.
fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[tokio::test]
async fn an_edit_leaves_no_trace_of_the_old_text_in_catch_up_or_on_disk() {
    let mut ts = TestServer::start().await;
    let (_admin, a, b, _c) = three(&ts).await;
    let room = a.dm(b.user_id()).await.expect("dm");
    const OLD: &str = "regrettable first draft 7f3a";
    let msg = a.send_text(room.id, OLD).await.expect("send");
    a.edit(
        msg.id,
        MessageBody::Text {
            text: "better words".into(),
        },
    )
    .await
    .expect("first edit");
    a.edit(
        msg.id,
        MessageBody::Text {
            text: "final words".into(),
        },
    )
    .await
    .expect("second edit");

    let mut rt = b
        .connect(ConnectOptions {
            since: Some(0),
            ..ConnectOptions::default()
        })
        .await
        .expect("connect");
    let mut replayed = Vec::new();
    loop {
        match rt.next_within(common::WAIT).await.expect("event") {
            RealtimeEvent::Event(ServerEvent::CatchUpDone { .. }) => break,
            RealtimeEvent::Event(ev) => replayed.push(serde_json::to_string(&ev).expect("json")),
            _ => {}
        }
    }
    assert!(
        replayed.iter().any(|e| e.contains("message_created")),
        "the message is still replayed: {replayed:?}"
    );
    for ev in &replayed {
        assert!(!ev.contains(OLD), "catch-up replays the old text: {ev}");
        assert!(
            !ev.contains("better words"),
            "catch-up replays an intermediate text: {ev}"
        );
    }
    let created = replayed
        .iter()
        .find(|e| e.contains("message_created"))
        .expect("created");
    assert!(created.contains("final words"), "{created}");
    rt.close().await;

    // Stop the server and checkpoint the WAL into the database file, as SQLite eventually
    // does by itself; then no file under the data directory may hold the old text.
    ts.stop().await;
    {
        use sqlx::{ConnectOptions as _, Connection as _};
        let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(ts.dir.path().join("sotto.db"))
            .connect()
            .await
            .expect("open the database");
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&mut conn)
            .await
            .expect("checkpoint");
        conn.close().await.expect("close");
    }
    for path in files_under(ts.dir.path()) {
        // SQLite may remove its -wal/-shm files while we look: a file that is gone holds nothing.
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => panic!("read {}: {e}", path.display()),
        };
        assert!(
            !bytes.windows(OLD.len()).any(|w| w == OLD.as_bytes()),
            "{} still holds the old text",
            path.display()
        );
    }
}

#[tokio::test]
async fn an_upload_not_yet_sent_is_readable_by_its_uploader_only() {
    let ts = TestServer::start().await;
    let (_admin, a, b, _c) = three(&ts).await;
    let room = a
        .create_group("drafts", &[b.user_id()])
        .await
        .expect("group");
    let up = a
        .upload(room.id, "draft.txt", b"not sent yet".to_vec())
        .await
        .expect("upload");
    assert_eq!(
        a.download(up.id).await.expect("the uploader reads it").body,
        b"not sent yet"
    );
    assert_eq!(
        code(b.download(up.id).await),
        ErrorCode::NotFound,
        "another member cannot see an unsent upload"
    );
    a.send(
        room.id,
        &SendMessageRequest {
            body: MessageBody::Text {
                text: "here it is".into(),
            },
            attachment_id: Some(up.id),
        },
    )
    .await
    .expect("send");
    assert_eq!(
        b.download(up.id).await.expect("sent: members read it").body,
        b"not sent yet"
    );
}

#[tokio::test]
async fn concurrent_presence_changes_are_published_in_order() {
    let ts = TestServer::start().await;
    let (_admin, a, b, _c) = three(&ts).await;
    a.dm(b.user_id()).await.expect("dm");
    let mut rt_a = a.connect(ConnectOptions::default()).await.expect("a");
    let conns = [
        b.connect(ConnectOptions::default()).await.expect("b1"),
        b.connect(ConnectOptions::default()).await.expect("b2"),
        b.connect(ConnectOptions::default()).await.expect("b3"),
    ];
    // Three connections flip between away and back concurrently and all end away.
    for i in 0..60 {
        for c in &conns {
            c.send(&ClientEvent::SetAway { away: i % 2 == 1 })
                .expect("away");
        }
    }
    let deadline = tokio::time::Instant::now() + common::WAIT;
    loop {
        let users = a.users().await.expect("users");
        let now = users
            .iter()
            .find(|u| u.user.id == b.user_id())
            .map(|u| u.presence);
        if now == Some(Presence::Away) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "bob never became away"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let seen: Vec<Presence> = rt_a
        .drain(Duration::from_millis(500))
        .await
        .into_iter()
        .filter_map(|e| match e {
            RealtimeEvent::Event(ServerEvent::Presence { user_id, status })
                if user_id == b.user_id() =>
            {
                Some(status)
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        seen.last(),
        Some(&Presence::Away),
        "the last word is the current status: {seen:?}"
    );
    assert!(
        seen.windows(2).all(|w| w[0] != w[1]),
        "every publication is a change: {seen:?}"
    );
}

#[tokio::test]
async fn concurrent_settings_updates_push_a_view_with_both() {
    let ts = TestServer::start().await;
    let (admin, a, _b, _c) = three(&ts).await;
    let mut rt = a.connect(ConnectOptions::default()).await.expect("connect");
    for round in 0..8u64 {
        let timeout = 100 + round;
        let max_bytes = 2000 + round;
        let one = {
            let admin = admin.clone();
            tokio::spawn(async move {
                let mut m = sotto_api::rest::SettingsMap::new();
                m.insert("otr.invite_timeout_secs".into(), json!(timeout));
                admin.update_settings(&m).await
            })
        };
        let two = {
            let admin = admin.clone();
            tokio::spawn(async move {
                let mut m = sotto_api::rest::SettingsMap::new();
                m.insert("messages.max_bytes".into(), json!(max_bytes));
                admin.update_settings(&m).await
            })
        };
        one.await.expect("join").expect("update one");
        two.await.expect("join").expect("update two");
        let mut last = None;
        for _ in 0..2 {
            let ev = expect(&mut rt, "settings_changed", |e| {
                matches!(e, RealtimeEvent::Event(ServerEvent::SettingsChanged { .. }))
            })
            .await;
            if let RealtimeEvent::Event(ServerEvent::SettingsChanged { settings }) = ev {
                last = Some(settings);
            }
        }
        let last = last.expect("two pushes");
        assert_eq!(
            (
                &last["otr.invite_timeout_secs"],
                &last["messages.max_bytes"]
            ),
            (&json!(timeout), &json!(max_bytes)),
            "round {round}: the last view pushed holds both changes"
        );
    }
}
