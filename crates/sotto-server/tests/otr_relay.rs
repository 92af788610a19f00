//! The off-the-record relay, driven through raw ephemeral frames with hand-built OTR packets
//! (header + arbitrary bytes: the relay never needs real crypto). Every rule of the relay, with
//! exact codes.

mod common;

use std::time::Duration;

use common::{PW, TestServer, expect};
use serde_json::json;
use sotto_api::ephemeral::{Incoming, Outgoing, Target};
use sotto_api::otr::{OtrNotice, OtrNoticeEvent, session_hex};
use sotto_api::realtime::{ClientEvent, ServerEvent};
use sotto_api::rest::SettingsMap;
use sotto_api::{ErrorCode, RoomId, UserId};
use sotto_client::{Client, ConnectOptions, Method, Realtime, RealtimeEvent};

const OFFER: u8 = 1;
const ACCEPT: u8 = 2;
const DECLINE: u8 = 3;
const CANCEL: u8 = 4;
const END: u8 = 5;
const FRAME: u8 = 6;
const ABORT: u8 = 7;
const ALL_KINDS: [u8; 7] = [OFFER, ACCEPT, DECLINE, CANCEL, END, FRAME, ABORT];

const QUIET: Duration = Duration::from_millis(400);

fn packet(kind: u8, sid: [u8; 16], body: &[u8]) -> Vec<u8> {
    let mut p = vec![1, kind];
    p.extend_from_slice(&sid);
    p.extend_from_slice(body);
    p
}

fn send_to(rt: &Realtime, room: RoomId, target: Target, payload: Vec<u8>) {
    rt.send_ephemeral(&Outgoing {
        room_id: room,
        target,
        channel: 1,
        payload,
    })
    .expect("send");
}

fn send(rt: &Realtime, room: RoomId, to: UserId, kind: u8, sid: [u8; 16], body: &[u8]) {
    send_to(rt, room, Target::User(to), packet(kind, sid, body));
}

/// A distinct valid key.
fn key(n: u64) -> String {
    format!("{n:A>42}A")
}

async fn publish_keys(c: &Client) {
    let n = c.user_id() as u64;
    let body = json!({"curve25519": key(n * 2), "ed25519": key(n * 2 + 1), "key_backup": "AAAA", "trust_store": "AAAA"});
    let r = c
        .raw(
            Method::PUT,
            "/api/v1/e2e/keys",
            Some(("application/json", serde_json::to_vec(&body).unwrap())),
            &[],
        )
        .await
        .expect("publish");
    assert_eq!(r.status, 200);
}

/// Round trip on the connection so that everything sent before was processed.
async fn sync(rt: &mut Realtime) {
    let nonce = rand_nonce();
    rt.send(&ClientEvent::Ping { nonce }).expect("ping");
    expect(
        rt,
        "pong",
        |e| matches!(e, RealtimeEvent::Event(ServerEvent::Pong { nonce: n }) if *n == nonce),
    )
    .await;
}

fn rand_nonce() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(1);
    N.fetch_add(1, Ordering::Relaxed)
}

async fn connect(c: &Client) -> Realtime {
    let mut rt = c.connect(ConnectOptions::default()).await.expect("connect");
    expect(&mut rt, "catch-up", |e| {
        matches!(e, RealtimeEvent::Event(ServerEvent::CatchUpDone { .. }))
    })
    .await;
    rt
}

async fn unlocked(c: &Client) -> Realtime {
    let mut rt = connect(c).await;
    rt.send(&ClientEvent::E2eState { unlocked: true })
        .expect("unlock");
    sync(&mut rt).await;
    rt
}

async fn notice(rt: &mut Realtime) -> OtrNoticeEvent {
    match expect(rt, "otr notice", |e| {
        matches!(e, RealtimeEvent::Event(ServerEvent::Otr(_)))
    })
    .await
    {
        RealtimeEvent::Event(ServerEvent::Otr(n)) => n,
        _ => unreachable!(),
    }
}

async fn refused(rt: &mut Realtime) -> ErrorCode {
    match notice(rt).await.notice {
        OtrNotice::Refused { code, .. } => code,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

async fn incoming(rt: &mut Realtime) -> Incoming {
    match expect(
        rt,
        "otr packet",
        |e| matches!(e, RealtimeEvent::Ephemeral(i) if i.channel == 1),
    )
    .await
    {
        RealtimeEvent::Ephemeral(i) => i,
        _ => unreachable!(),
    }
}

/// Nothing OTR arrives (neither packet nor notice) for a moment.
async fn silent(rt: &mut Realtime, who: &str) {
    let got: Vec<_> = rt
        .drain(QUIET)
        .await
        .into_iter()
        .filter(|e| {
            matches!(
                e,
                RealtimeEvent::Ephemeral(_) | RealtimeEvent::Event(ServerEvent::Otr(_))
            )
        })
        .collect();
    assert!(got.is_empty(), "{who} got {got:?}");
}

/// No packet arrives for a moment (notices are fine).
async fn no_packet(rt: &mut Realtime, who: &str) {
    let got: Vec<_> = rt
        .drain(QUIET)
        .await
        .into_iter()
        .filter(|e| matches!(e, RealtimeEvent::Ephemeral(_)))
        .collect();
    assert!(got.is_empty(), "{who} got {got:?}");
}

struct World {
    ts: TestServer,
    admin: Client,
    a: Client,
    b: Client,
    c: Client,
    room: RoomId,
}

async fn world_with(tweak: impl FnOnce(&mut sotto_server::Config)) -> World {
    let ts = TestServer::start_with(tweak).await;
    let admin = ts.admin().await;
    let a = ts.user(&admin, "alice").await;
    let b = ts.user(&admin, "bob").await;
    let c = ts.user(&admin, "carol").await;
    for u in [&a, &b, &c] {
        publish_keys(u).await;
    }
    let room = a.dm(b.user_id()).await.expect("dm").id;
    World {
        ts,
        admin,
        a,
        b,
        c,
        room,
    }
}

async fn world() -> World {
    world_with(|_| {}).await
}

async fn set(admin: &Client, key: &str, value: serde_json::Value) {
    let mut m = SettingsMap::new();
    m.insert(key.into(), value);
    admin.update_settings(&m).await.expect("settings");
}

/// Offer from `a1` accepted by `b1`; returns after the accept reached `a1`.
async fn establish(w: &World, a1: &mut Realtime, b1: &mut Realtime, sid: [u8; 16]) {
    send(a1, w.room, w.b.user_id(), OFFER, sid, b"offer");
    let offer = incoming(b1).await;
    assert_eq!(offer.payload, packet(OFFER, sid, b"offer"));
    send(b1, w.room, w.a.user_id(), ACCEPT, sid, b"otk");
    let acc = incoming(a1).await;
    assert_eq!(acc.payload, packet(ACCEPT, sid, b"otk"));
}

#[tokio::test]
async fn an_offer_reaches_every_unlocked_connection_and_the_first_accept_wins() {
    let w = world().await;
    let mut a1 = unlocked(&w.a).await;
    let mut a2 = unlocked(&w.a).await;
    let mut b1 = unlocked(&w.b).await;
    let mut b2 = unlocked(&w.b).await;
    let mut b3 = connect(&w.b).await; // locked
    let sid = [1; 16];
    send(&a1, w.room, w.b.user_id(), OFFER, sid, b"offer-body");
    for b in [&mut b1, &mut b2] {
        let inc = incoming(b).await;
        assert_eq!(inc.payload, packet(OFFER, sid, b"offer-body"));
        assert_eq!(inc.from_user, w.a.user_id(), "sender stamped by the server");
        assert_eq!(inc.from_connection, a1.connection_id);
        assert_eq!(inc.room_id, w.room);
    }
    silent(&mut b3, "locked b3").await;
    silent(&mut a2, "a2").await;

    // b2 accepts first; b1 is told; b1's late accept is refused like an unknown session.
    send(&b2, w.room, w.a.user_id(), ACCEPT, sid, b"otk");
    let acc = incoming(&mut a1).await;
    assert_eq!(acc.payload, packet(ACCEPT, sid, b"otk"));
    assert_eq!(acc.from_connection, b2.connection_id);
    let n = notice(&mut b1).await;
    assert_eq!(
        (n.room_id, n.session_id.as_deref(), n.notice),
        (
            w.room,
            Some(session_hex(&sid).as_str()),
            OtrNotice::AcceptedElsewhere
        )
    );
    send(&b1, w.room, w.a.user_id(), ACCEPT, sid, b"late");
    assert_eq!(refused(&mut b1).await, ErrorCode::OtrUnknownSession);

    // Frames flow between a1 and b2 only.
    send(&a1, w.room, w.b.user_id(), FRAME, sid, b"binding");
    assert_eq!(
        incoming(&mut b2).await.payload,
        packet(FRAME, sid, b"binding")
    );
    send(&b2, w.room, w.a.user_id(), FRAME, sid, b"confirm");
    assert_eq!(
        incoming(&mut a1).await.payload,
        packet(FRAME, sid, b"confirm")
    );
    for _ in 0..3 {
        send(&a1, w.room, w.b.user_id(), FRAME, sid, b"msg");
        assert_eq!(incoming(&mut b2).await.payload, packet(FRAME, sid, b"msg"));
    }
    // Addressing a1's frame to a connection does not change where it goes.
    send_to(
        &a1,
        w.room,
        Target::Connection(b1.connection_id.clone()),
        packet(FRAME, sid, b"to b1?"),
    );
    assert_eq!(
        incoming(&mut b2).await.payload,
        packet(FRAME, sid, b"to b1?")
    );
    // The other connections of both users receive nothing of it.
    silent(&mut b1, "b1").await;
    no_packet(&mut b3, "b3").await;
    silent(&mut a2, "a2").await;
    // a2 (same user, not bound) cannot send into the session.
    send(&a2, w.room, w.b.user_id(), FRAME, sid, b"from a2");
    assert_eq!(refused(&mut a2).await, ErrorCode::OtrUnknownSession);
    no_packet(&mut b2, "b2").await;

    // End: forwarded, then the relay session is over.
    send(&a1, w.room, w.b.user_id(), END, sid, b"");
    assert_eq!(incoming(&mut b2).await.payload, packet(END, sid, b""));
    send(&a1, w.room, w.b.user_id(), FRAME, sid, b"after end");
    assert_eq!(refused(&mut a1).await, ErrorCode::OtrUnknownSession);
    send(&b2, w.room, w.a.user_id(), FRAME, sid, b"after end");
    assert_eq!(refused(&mut b2).await, ErrorCode::OtrUnknownSession);
    no_packet(&mut a1, "a1").await;
}

#[tokio::test]
async fn a_refresh_replaces_the_session_of_the_same_connections() {
    let w = world().await;
    let mut a1 = unlocked(&w.a).await;
    let mut b1 = unlocked(&w.b).await;
    let mut b2 = unlocked(&w.b).await;
    let old = [30; 16];
    establish_seen_by(&w, &mut a1, &mut b1, &mut b2, old).await;
    // Refresh Keys: a new offer while the old session lives; b1 accepts it.
    let new = [31; 16];
    send(&a1, w.room, w.b.user_id(), OFFER, new, b"");
    incoming(&mut b1).await;
    incoming(&mut b2).await;
    send(&b1, w.room, w.a.user_id(), ACCEPT, new, b"");
    incoming(&mut a1).await;
    assert_eq!(notice(&mut b2).await.notice, OtrNotice::AcceptedElsewhere);
    // The old session is gone without a notice to the two that moved on.
    send(&b1, w.room, w.a.user_id(), FRAME, old, b"old");
    assert_eq!(refused(&mut b1).await, ErrorCode::OtrUnknownSession);
    silent(&mut a1, "a1").await;
    send(&a1, w.room, w.b.user_id(), FRAME, new, b"new");
    assert_eq!(incoming(&mut b1).await.payload, packet(FRAME, new, b"new"));

    // Refreshed again, but accepted by b2: b1, which held the replaced session, is told.
    let newer = [32; 16];
    send(&a1, w.room, w.b.user_id(), OFFER, newer, b"");
    incoming(&mut b1).await;
    incoming(&mut b2).await;
    send(&b2, w.room, w.a.user_id(), ACCEPT, newer, b"");
    incoming(&mut a1).await;
    let mut seen = Vec::new();
    for _ in 0..2 {
        let n = notice(&mut b1).await;
        seen.push((n.session_id.unwrap_or_default(), n.notice));
    }
    seen.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(
        seen,
        vec![
            (session_hex(&new), OtrNotice::PeerDisconnected),
            (session_hex(&newer), OtrNotice::AcceptedElsewhere),
        ]
    );
    send(&b1, w.room, w.a.user_id(), FRAME, new, b"");
    assert_eq!(refused(&mut b1).await, ErrorCode::OtrUnknownSession);
    send(&a1, w.room, w.b.user_id(), FRAME, newer, b"newest");
    assert_eq!(
        incoming(&mut b2).await.payload,
        packet(FRAME, newer, b"newest")
    );
    no_packet(&mut b1, "b1").await;
}

/// Like [`establish`], with a second invited connection of the peer told it lost the race.
async fn establish_seen_by(
    w: &World,
    a1: &mut Realtime,
    b1: &mut Realtime,
    b2: &mut Realtime,
    sid: [u8; 16],
) {
    send(a1, w.room, w.b.user_id(), OFFER, sid, b"");
    incoming(b1).await;
    incoming(b2).await;
    send(b1, w.room, w.a.user_id(), ACCEPT, sid, b"");
    incoming(a1).await;
    assert_eq!(notice(b2).await.notice, OtrNotice::AcceptedElsewhere);
}

#[tokio::test]
async fn decline_and_cancel_end_the_invitation() {
    let w = world().await;
    let mut a1 = unlocked(&w.a).await;
    let mut b1 = unlocked(&w.b).await;
    let mut b2 = unlocked(&w.b).await;
    let sid = [2; 16];
    send(&a1, w.room, w.b.user_id(), OFFER, sid, b"");
    incoming(&mut b1).await;
    incoming(&mut b2).await;
    send(&b1, w.room, w.a.user_id(), DECLINE, sid, b"");
    assert_eq!(incoming(&mut a1).await.payload, packet(DECLINE, sid, b""));
    assert_eq!(notice(&mut b2).await.notice, OtrNotice::AcceptedElsewhere);
    send(&b2, w.room, w.a.user_id(), ACCEPT, sid, b"");
    assert_eq!(refused(&mut b2).await, ErrorCode::OtrUnknownSession);
    no_packet(&mut a1, "a1").await;

    // Cancel before anyone answers: every invited connection gets it.
    let sid = [3; 16];
    send(&a1, w.room, w.b.user_id(), OFFER, sid, b"");
    incoming(&mut b1).await;
    incoming(&mut b2).await;
    send(&a1, w.room, w.b.user_id(), CANCEL, sid, b"");
    assert_eq!(incoming(&mut b1).await.payload, packet(CANCEL, sid, b""));
    assert_eq!(incoming(&mut b2).await.payload, packet(CANCEL, sid, b""));
    send(&b1, w.room, w.a.user_id(), ACCEPT, sid, b"");
    assert_eq!(refused(&mut b1).await, ErrorCode::OtrUnknownSession);
}

#[tokio::test]
async fn an_unanswered_invitation_expires_for_both_sides() {
    let w = world().await;
    set(&w.admin, "otr.invite_timeout_secs", json!(5)).await;
    let mut a1 = unlocked(&w.a).await;
    let mut b1 = unlocked(&w.b).await;
    let sid = [4; 16];
    let started = std::time::Instant::now();
    send(&a1, w.room, w.b.user_id(), OFFER, sid, b"");
    incoming(&mut b1).await;
    let wait = Duration::from_secs(8);
    for rt in [&mut a1, &mut b1] {
        let ev = rt
            .wait_for(wait, |e| {
                matches!(e, RealtimeEvent::Event(ServerEvent::Otr(_)))
            })
            .await
            .expect("expired notice");
        let RealtimeEvent::Event(ServerEvent::Otr(n)) = ev else {
            unreachable!()
        };
        assert_eq!(n.notice, OtrNotice::Expired);
        assert_eq!(n.session_id, Some(session_hex(&sid)));
    }
    assert!(started.elapsed() >= Duration::from_secs(5));
    // Forgotten: a late accept is refused.
    send(&b1, w.room, w.a.user_id(), ACCEPT, sid, b"");
    assert_eq!(refused(&mut b1).await, ErrorCode::OtrUnknownSession);
    no_packet(&mut a1, "a1").await;
}

#[tokio::test]
async fn offers_are_refused_at_once_saying_which_condition_fails() {
    let w = world().await;
    let d = w.ts.user(&w.admin, "dave").await; // no keys
    let dm_d = w.a.dm(d.user_id()).await.expect("dm").id;
    let multi =
        w.a.multi_dm(&[w.b.user_id(), w.c.user_id()])
            .await
            .expect("multi")
            .id;
    let group =
        w.a.create_group("g", &[w.b.user_id()])
            .await
            .expect("group")
            .id;
    let sid = [5; 16];
    let mut a1 = unlocked(&w.a).await;

    // Peer offline.
    send(&a1, w.room, w.b.user_id(), OFFER, sid, b"");
    let n = notice(&mut a1).await;
    assert_eq!(n.room_id, w.room);
    assert!(
        matches!(
            n.notice,
            OtrNotice::Refused {
                code: ErrorCode::OtrPeerOffline,
                ..
            }
        ),
        "{n:?}"
    );
    // Peer online but locked.
    let mut b1 = connect(&w.b).await;
    send(&a1, w.room, w.b.user_id(), OFFER, sid, b"");
    assert_eq!(refused(&mut a1).await, ErrorCode::OtrPeerLocked);
    silent(&mut b1, "locked b1").await;
    // Peer without keys (online and "unlocked").
    let _d1 = unlocked(&d).await;
    send(&a1, dm_d, d.user_id(), OFFER, sid, b"");
    assert_eq!(refused(&mut a1).await, ErrorCode::OtrPeerNoKeys);
    // Sender locked, and sender without keys.
    let mut b1u = unlocked(&w.b).await;
    let mut a_locked = connect(&w.a).await;
    send(&a_locked, w.room, w.b.user_id(), OFFER, sid, b"");
    assert_eq!(refused(&mut a_locked).await, ErrorCode::OtrNoKeys);
    let mut d1 = unlocked(&d).await;
    send(&d1, dm_d, w.a.user_id(), OFFER, sid, b"");
    assert_eq!(refused(&mut d1).await, ErrorCode::OtrNoKeys);
    // Locking again: no more offers to that connection.
    a1.send(&ClientEvent::E2eState { unlocked: false })
        .expect("lock");
    sync(&mut a1).await;
    send(&b1u, w.room, w.a.user_id(), OFFER, sid, b"");
    assert_eq!(refused(&mut b1u).await, ErrorCode::OtrPeerLocked);
    a1.send(&ClientEvent::E2eState { unlocked: true })
        .expect("unlock");
    sync(&mut a1).await;
    // Multi-user DM and group.
    let _c1 = unlocked(&w.c).await;
    for room in [multi, group] {
        send(&a1, room, w.b.user_id(), OFFER, sid, b"");
        assert_eq!(refused(&mut a1).await, ErrorCode::OtrNotDirectMessage);
    }
    // The DM, but addressed to someone else.
    send(&a1, w.room, w.c.user_id(), OFFER, sid, b"");
    assert_eq!(refused(&mut a1).await, ErrorCode::OtrNotDirectMessage);
    send(&a1, w.room, w.a.user_id(), OFFER, sid, b"");
    assert_eq!(refused(&mut a1).await, ErrorCode::OtrNotDirectMessage);
    // Not an OTR packet.
    send_to(&a1, w.room, Target::User(w.b.user_id()), vec![1, 99, 0]);
    assert_eq!(refused(&mut a1).await, ErrorCode::BadFrame);
    // Too large.
    let big = vec![0u8; 65_537];
    send(&a1, w.room, w.b.user_id(), OFFER, [6; 16], &big);
    assert_eq!(refused(&mut a1).await, ErrorCode::PayloadTooLarge);
    // OTR disabled.
    set(&w.admin, "otr.enabled", json!(false)).await;
    send(&a1, w.room, w.b.user_id(), OFFER, sid, b"");
    assert_eq!(refused(&mut a1).await, ErrorCode::OtrDisabled);
    // Nothing of all that reached bob.
    no_packet(&mut b1u, "b1u").await;
    no_packet(&mut b1, "b1").await;
}

#[tokio::test]
async fn disabling_otr_ends_live_sessions_on_both_sides() {
    let w = world().await;
    let mut a1 = unlocked(&w.a).await;
    let mut b1 = unlocked(&w.b).await;
    let sid = [7; 16];
    establish(&w, &mut a1, &mut b1, sid).await;
    set(&w.admin, "otr.enabled", json!(false)).await;
    for rt in [&mut a1, &mut b1] {
        let n = notice(rt).await;
        assert_eq!(n.notice, OtrNotice::EndedByServer);
        assert_eq!(n.session_id, Some(session_hex(&sid)));
    }
    send(&a1, w.room, w.b.user_id(), FRAME, sid, b"");
    assert_eq!(refused(&mut a1).await, ErrorCode::OtrDisabled);
    send(&a1, w.room, w.b.user_id(), OFFER, [8; 16], b"");
    assert_eq!(refused(&mut a1).await, ErrorCode::OtrDisabled);
    no_packet(&mut b1, "b1").await;
    // Back on: a fresh session works, the old one stays gone.
    set(&w.admin, "otr.enabled", json!(true)).await;
    send(&a1, w.room, w.b.user_id(), FRAME, sid, b"");
    assert_eq!(refused(&mut a1).await, ErrorCode::OtrUnknownSession);
    establish(&w, &mut a1, &mut b1, [9; 16]).await;
}

#[tokio::test]
async fn a_deactivated_users_sessions_end() {
    let w = world().await;
    let mut a1 = unlocked(&w.a).await;
    let mut b1 = unlocked(&w.b).await;
    let sid = [10; 16];
    establish(&w, &mut a1, &mut b1, sid).await;
    w.admin.deactivate(w.b.user_id()).await.expect("deactivate");
    let n = notice(&mut a1).await;
    assert_eq!(n.notice, OtrNotice::EndedByServer);
    send(&a1, w.room, w.b.user_id(), FRAME, sid, b"");
    assert_eq!(refused(&mut a1).await, ErrorCode::OtrUnknownSession);
}

/// A bound session's packets are routed from the relay's own state, without reading the room
/// (the hot path): the rules that reading enforced still hold — the target must be the other
/// party, a DM's members cannot change underneath a session, settings apply at once, and a
/// deactivated offerer ends it for the peer at once.
#[tokio::test]
async fn a_bound_session_keeps_every_rule_without_reading_the_room() {
    let w = world().await;
    let mut a1 = unlocked(&w.a).await;
    let mut b1 = unlocked(&w.b).await;
    let mut c1 = unlocked(&w.c).await;
    let sid = [15; 16];
    establish(&w, &mut a1, &mut b1, sid).await;
    // Addressed to anyone but the other party: refused as for an offer, never forwarded.
    for to in [w.c.user_id(), w.a.user_id(), 424_242] {
        send(&a1, w.room, to, FRAME, sid, b"astray");
        assert_eq!(refused(&mut a1).await, ErrorCode::OtrNotDirectMessage);
    }
    send_to(
        &a1,
        w.room,
        Target::Connection(c1.connection_id.clone()),
        packet(FRAME, sid, b"astray"),
    );
    assert_eq!(refused(&mut a1).await, ErrorCode::OtrNotDirectMessage);
    no_packet(&mut b1, "b1").await;
    silent(&mut c1, "c1").await;
    // Addressed to the peer's connection: delivered, stamped with the sender.
    send_to(
        &b1,
        w.room,
        Target::Connection(a1.connection_id.clone()),
        packet(FRAME, sid, b"to a1"),
    );
    let inc = incoming(&mut a1).await;
    assert_eq!(
        (inc.from_user, inc.from_connection.as_str(), inc.payload),
        (
            w.b.user_id(),
            b1.connection_id.as_str(),
            packet(FRAME, sid, b"to a1")
        )
    );
    // A DM's members are fixed: nobody leaves, is removed or joins under a live session.
    assert!(w.a.remove_member(w.room, w.b.user_id()).await.is_err());
    assert!(w.b.remove_member(w.room, w.b.user_id()).await.is_err());
    assert!(w.a.add_member(w.room, w.c.user_id()).await.is_err());
    // Settings apply to the next packet (a 1050-byte packet: over the relay's new limit, within
    // the socket's allowance for the ephemeral header).
    set(&w.admin, "otr.max_frame_bytes", json!(1024)).await;
    send(&a1, w.room, w.b.user_id(), FRAME, sid, &[0u8; 1032]);
    assert_eq!(refused(&mut a1).await, ErrorCode::PayloadTooLarge);
    no_packet(&mut b1, "b1").await;
    send(&a1, w.room, w.b.user_id(), FRAME, sid, b"small");
    assert_eq!(
        incoming(&mut b1).await.payload,
        packet(FRAME, sid, b"small")
    );
    // The offerer is deactivated: the peer is told at once and the session is gone.
    w.admin.deactivate(w.a.user_id()).await.expect("deactivate");
    let n = notice(&mut b1).await;
    assert_eq!(
        (n.notice, n.session_id),
        (OtrNotice::EndedByServer, Some(session_hex(&sid)))
    );
    send(&b1, w.room, w.a.user_id(), FRAME, sid, b"late");
    assert_eq!(refused(&mut b1).await, ErrorCode::OtrUnknownSession);
    no_packet(&mut a1, "a1").await;
}

#[tokio::test]
async fn offer_and_frame_rates_are_limited_and_the_excess_is_never_forwarded() {
    let w = world().await;
    set(&w.admin, "ratelimit.otr_frame_burst", json!(20)).await;
    set(&w.admin, "ratelimit.otr_frames_per_sec", json!(1)).await;
    let mut a1 = unlocked(&w.a).await;
    let mut b1 = unlocked(&w.b).await;
    // Offers: 5 per minute per pair; the 6th is refused and not forwarded.
    for i in 0..5u8 {
        send(&a1, w.room, w.b.user_id(), OFFER, [100 + i; 16], b"");
        assert_eq!(incoming(&mut b1).await.payload[2], 100 + i);
    }
    send(&a1, w.room, w.b.user_id(), OFFER, [110; 16], b"");
    let n = notice(&mut a1).await;
    assert_eq!(n.session_id, Some(session_hex(&[110; 16])));
    assert!(
        matches!(
            n.notice,
            OtrNotice::Refused {
                code: ErrorCode::RateLimited,
                ..
            }
        ),
        "{n:?}"
    );
    no_packet(&mut b1, "b1").await;
    // bob may still invite alice (the limit is per direction of the pair).
    let sid = [120; 16];
    send(&b1, w.room, w.a.user_id(), OFFER, sid, b"");
    incoming(&mut a1).await;
    send(&a1, w.room, w.b.user_id(), ACCEPT, sid, b"");
    incoming(&mut b1).await;
    // Frames: a burst of 20 (7 already spent by alice: 6 offers, 1 accept), then refused.
    let mut forwarded = 0;
    let mut limited = 0;
    for i in 0..30u8 {
        send(&a1, w.room, w.b.user_id(), FRAME, sid, &[i]);
    }
    let events = b1.drain(Duration::from_millis(600)).await;
    for e in &events {
        if matches!(e, RealtimeEvent::Ephemeral(_)) {
            forwarded += 1;
        }
    }
    for e in a1.drain(Duration::from_millis(300)).await {
        if let RealtimeEvent::Event(ServerEvent::Otr(OtrNoticeEvent {
            notice: OtrNotice::Refused { code, .. },
            ..
        })) = e
        {
            assert_eq!(code, ErrorCode::RateLimited);
            limited += 1;
        }
    }
    // 20 tokens minus 7 spent, plus at most one refilled meanwhile (1 per second).
    assert!((13..=14).contains(&forwarded), "{forwarded}");
    assert_eq!(forwarded + limited, 30);
}

#[tokio::test]
async fn other_ephemeral_channels_are_rate_limited_per_connection() {
    let w = world().await;
    set(&w.admin, "ratelimit.otr_frame_burst", json!(10)).await;
    set(&w.admin, "ratelimit.otr_frames_per_sec", json!(1)).await;
    let mut a1 = connect(&w.a).await;
    let mut b1 = connect(&w.b).await;
    for _ in 0..15 {
        a1.send_ephemeral(&Outgoing {
            room_id: w.room,
            target: Target::User(w.b.user_id()),
            channel: 2,
            payload: b"typing".to_vec(),
        })
        .expect("send");
    }
    let got = b1
        .drain(Duration::from_millis(600))
        .await
        .into_iter()
        .filter(|e| matches!(e, RealtimeEvent::Ephemeral(_)))
        .count();
    assert_eq!(got, 10);
    let limited = a1
        .drain(Duration::from_millis(300))
        .await
        .into_iter()
        .filter(|e| {
            matches!(
                e,
                RealtimeEvent::Event(ServerEvent::Error {
                    code: ErrorCode::RateLimited,
                    ..
                })
            )
        })
        .count();
    assert_eq!(limited, 5);
}

#[tokio::test]
async fn forged_packets_from_a_third_user_and_a_non_accepting_connection_reach_nobody() {
    let w = world().await;
    let dm_ac = w.a.dm(w.c.user_id()).await.expect("dm").id;
    let mut a1 = unlocked(&w.a).await;
    let mut b1 = unlocked(&w.b).await;
    let mut b2 = unlocked(&w.b).await;
    let mut c1 = unlocked(&w.c).await;
    let sid = [11; 16];
    send(&a1, w.room, w.b.user_id(), OFFER, sid, b"");
    incoming(&mut b1).await;
    incoming(&mut b2).await;
    send(&b1, w.room, w.a.user_id(), ACCEPT, sid, b"");
    incoming(&mut a1).await;
    assert_eq!(notice(&mut b2).await.notice, OtrNotice::AcceptedElsewhere);

    // Carol: every kind, with the A–B room, her own DM with alice, unknown rooms; the real
    // session id and a random one; every user id as target.
    let mut codes = Vec::new();
    for kind in ALL_KINDS {
        for room in [w.room, dm_ac, 999_999] {
            for s in [sid, [12; 16]] {
                for to in [w.a.user_id(), w.b.user_id(), w.c.user_id(), 424_242] {
                    if kind == OFFER && room == dm_ac && to == w.a.user_id() {
                        continue; // a legitimate offer of her own
                    }
                    send(&c1, room, to, kind, s, b"forged");
                    let n = notice(&mut c1).await;
                    let OtrNotice::Refused { code, message } = n.notice else {
                        panic!("{n:?}")
                    };
                    assert!(!message.contains("bob") && !message.contains("alice"));
                    codes.push((kind == OFFER, code));
                }
            }
        }
    }
    // Carol learns only "not a DM you are in" or "no such session": never which exists.
    for (_, code) in &codes {
        assert!(
            matches!(
                code,
                ErrorCode::OtrNotDirectMessage | ErrorCode::OtrUnknownSession
            ),
            "{codes:?}"
        );
    }
    // In her own DM with alice, the A–B session id and a made-up one answer the same.
    for kind in [ACCEPT, DECLINE, CANCEL, END, FRAME, ABORT] {
        send(&c1, dm_ac, w.a.user_id(), kind, sid, b"x");
        let real = refused(&mut c1).await;
        send(&c1, dm_ac, w.a.user_id(), kind, [13; 16], b"x");
        let fake = refused(&mut c1).await;
        assert_eq!(
            (real, fake),
            (ErrorCode::OtrUnknownSession, ErrorCode::OtrUnknownSession)
        );
    }
    // b2 (bob's connection that did not accept): every kind, real and made-up session ids.
    for kind in [ACCEPT, DECLINE, CANCEL, END, FRAME, ABORT] {
        for s in [sid, [14; 16]] {
            send(&b2, w.room, w.a.user_id(), kind, s, b"forged");
            assert_eq!(refused(&mut b2).await, ErrorCode::OtrUnknownSession);
            send_to(
                &b2,
                w.room,
                Target::Connection(a1.connection_id.clone()),
                packet(kind, s, b"forged"),
            );
            assert_eq!(refused(&mut b2).await, ErrorCode::OtrUnknownSession);
        }
    }
    // Nothing reached the session's two connections, and it still works.
    no_packet(&mut a1, "a1").await;
    no_packet(&mut b1, "b1").await;
    send(&a1, w.room, w.b.user_id(), FRAME, sid, b"still");
    assert_eq!(
        incoming(&mut b1).await.payload,
        packet(FRAME, sid, b"still")
    );
    send(&b1, w.room, w.a.user_id(), FRAME, sid, b"fine");
    let inc = incoming(&mut a1).await;
    assert_eq!(
        (inc.from_user, inc.payload),
        (w.b.user_id(), packet(FRAME, sid, b"fine"))
    );
}

#[tokio::test]
async fn a_clean_close_tells_the_peer_at_once() {
    let w = world().await;
    let mut a1 = unlocked(&w.a).await;
    let mut b1 = unlocked(&w.b).await;
    let sid = [20; 16];
    establish(&w, &mut a1, &mut b1, sid).await;
    b1.close().await;
    let n = notice(&mut a1).await;
    assert_eq!(
        (n.notice, n.session_id),
        (OtrNotice::PeerDisconnected, Some(session_hex(&sid)))
    );
    send(&a1, w.room, w.b.user_id(), FRAME, sid, b"");
    assert_eq!(refused(&mut a1).await, ErrorCode::OtrUnknownSession);
}

#[tokio::test]
async fn an_abnormal_drop_keeps_the_session_for_the_grace_period() {
    let w = world_with(|c| c.resume_grace_secs = 2).await;
    let mut a1 = unlocked(&w.a).await;
    let mut b1 = unlocked(&w.b).await;
    let sid = [21; 16];
    establish(&w, &mut a1, &mut b1, sid).await;
    let b1_id = b1.connection_id.clone();
    b1.drop_abruptly();
    // Frames meanwhile: "peer unreachable", never queued.
    let mut unreachable = false;
    for _ in 0..50 {
        send(&a1, w.room, w.b.user_id(), FRAME, sid, b"while away");
        if let Some(RealtimeEvent::Event(ServerEvent::Otr(n))) = a1
            .wait_for(Duration::from_millis(100), |e| {
                matches!(e, RealtimeEvent::Event(ServerEvent::Otr(_)))
            })
            .await
        {
            assert_eq!(n.notice, OtrNotice::PeerUnreachable);
            unreachable = true;
            break;
        }
    }
    assert!(unreachable, "the drop was noticed");
    // Back within the grace: the session continues.
    let mut b1 =
        w.b.connect(ConnectOptions {
            resume: Some(b1_id.clone()),
            ..ConnectOptions::default()
        })
        .await
        .expect("resume");
    assert!(b1.resumed);
    sync(&mut b1).await;
    send(&a1, w.room, w.b.user_id(), FRAME, sid, b"welcome back");
    let inc = incoming(&mut b1).await;
    assert_eq!(inc.payload, packet(FRAME, sid, b"welcome back"));
    send(&b1, w.room, w.a.user_id(), FRAME, sid, b"thanks");
    assert_eq!(
        incoming(&mut a1).await.payload,
        packet(FRAME, sid, b"thanks")
    );
    // Nothing sent while it was away was queued for it.
    let replayed = b1
        .drain(QUIET)
        .await
        .into_iter()
        .filter(|e| matches!(e, RealtimeEvent::Ephemeral(i) if i.payload.ends_with(b"while away")))
        .count();
    assert_eq!(replayed, 0);

    // The resumed connection kept its unlocked state: a new offer reaches it.
    send(&a1, w.room, w.b.user_id(), OFFER, [23; 16], b"");
    assert_eq!(
        incoming(&mut b1).await.payload,
        packet(OFFER, [23; 16], b"")
    );

    // Dropped again and not back within the grace: the peer is told about the session and
    // the pending offer, both are over.
    b1.drop_abruptly();
    let started = std::time::Instant::now();
    let mut told = Vec::new();
    while told.len() < 2 {
        let ev = a1
            .wait_for(Duration::from_secs(6), |e| {
                matches!(e, RealtimeEvent::Event(ServerEvent::Otr(_)))
            })
            .await;
        let Some(RealtimeEvent::Event(ServerEvent::Otr(n))) = ev else {
            panic!("peer_disconnected after the grace; got {told:?}")
        };
        assert_eq!(n.notice, OtrNotice::PeerDisconnected);
        told.push(n.session_id.unwrap_or_default());
    }
    told.sort();
    assert_eq!(told, vec![session_hex(&sid), session_hex(&[23; 16])]);
    assert!(started.elapsed() >= Duration::from_millis(1500));
    send(&a1, w.room, w.b.user_id(), FRAME, sid, b"");
    assert_eq!(refused(&mut a1).await, ErrorCode::OtrUnknownSession);
    // Bob back with a new connection: a new session works.
    let mut b2 = unlocked(&w.b).await;
    establish(&w, &mut a1, &mut b2, [22; 16]).await;
    let _ = PW;
}

#[test]
fn the_relay_has_no_path_to_storage_logs_or_labels() {
    let src = include_str!("../src/services/otr_relay.rs");
    for forbidden in [
        "tracing::",
        "log::",
        "println!",
        "eprintln!",
        "dbg!",
        "crate::storage",
        "Db",
        "uploads",
        "std::fs",
        "tokio::fs",
    ] {
        assert!(
            !src.contains(forbidden),
            "otr_relay.rs mentions {forbidden}"
        );
    }
    // The only metric it touches is the unlabeled relayed-frames counter.
    assert_eq!(src.matches("METRICS.").count(), 1);
    assert!(src.contains("METRICS.ephemeral_relayed.inc()"));
}
