//! Off the record end to end: two SDK clients with real `sotto-crypto` sessions talk through a
//! real server (port 0, temporary data directory). The relay's rules with hand-built packets are
//! in `otr_relay.rs`; here the whole product path is exercised.

mod common;

use std::time::Duration;

use common::{TestServer, WAIT};
use sotto_api::otr::OtrNotice;
use sotto_api::rest::MessageBody;
use sotto_client::sotto_crypto::backup::{KdfParams, Passphrase};
use sotto_client::sotto_crypto::otr::{EndReason, FailureReason, OtrEvent, OtrState};
use sotto_client::{Client, ConnectOptions, E2eKeys, OtrEndpoint, OtrUpdate};

const CHEAP: KdfParams = KdfParams::INSECURE_FOR_TESTS;

struct Pair {
    _ts: TestServer,
    admin: Client,
    alice: Client,
    bob: Client,
    room: i64,
    a: OtrEndpoint,
    b: OtrEndpoint,
    bob_passphrase: String,
}

async fn keys(client: &Client) -> (E2eKeys, String) {
    let passphrase = Passphrase::generate().unwrap();
    let keys = client
        .e2e_setup(&passphrase, CHEAP)
        .await
        .expect("e2e setup");
    (keys, passphrase.as_str().to_owned())
}

async fn pair() -> Pair {
    let ts = TestServer::start().await;
    let admin = ts.admin().await;
    let alice = ts.user(&admin, "alice").await;
    let bob = ts.user(&admin, "bob").await;
    let room = alice.dm(bob.user_id()).await.unwrap().id;
    let (a_keys, _) = keys(&alice).await;
    let (b_keys, bob_passphrase) = keys(&bob).await;
    let mut a = OtrEndpoint::connect(&alice, a_keys, ConnectOptions::default())
        .await
        .unwrap();
    let mut b = OtrEndpoint::connect(&bob, b_keys, ConnectOptions::default())
        .await
        .unwrap();
    a.open(&alice, room).await.unwrap();
    b.open(&bob, room).await.unwrap();
    Pair {
        _ts: ts,
        admin,
        alice,
        bob,
        room,
        a,
        b,
        bob_passphrase,
    }
}

/// Pumps both endpoints until `done` holds for the pair's states, or panics.
async fn settle(p: &mut Pair, what: &str, done: impl Fn(OtrState, OtrState) -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !done(p.a.state(p.room), p.b.state(p.room)) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}: {:?} / {:?}",
            p.a.state(p.room),
            p.b.state(p.room)
        );
        p.a.next(Duration::from_millis(20)).await;
        p.b.next(Duration::from_millis(20)).await;
    }
}

/// Whether an update is an invitation to go off the record.
fn invited(update: &OtrUpdate) -> bool {
    matches!(
        update,
        OtrUpdate::Event {
            event: OtrEvent::Invited { .. },
            ..
        }
    )
}

async fn establish(p: &mut Pair) {
    p.a.start(p.room).unwrap();
    let (invited, _) = p.b.wait_for(WAIT, invited).await;
    assert!(invited.is_some(), "bob is invited");
    p.b.accept(p.room).unwrap();
    settle(p, "established", |a, b| {
        a == OtrState::Established && b == OtrState::Established
    })
    .await;
}

async fn expect_text(endpoint: &mut OtrEndpoint, want: &str) -> u64 {
    let (found, _) = endpoint
        .wait_for(WAIT, |u| matches!(u, OtrUpdate::Event { event: OtrEvent::Message { text, .. }, .. } if text.as_str() == want))
        .await;
    match found {
        Some(OtrUpdate::Event {
            event: OtrEvent::Message { id, .. },
            ..
        }) => id,
        other => panic!("no message {want:?}: {other:?}"),
    }
}

async fn expect_delivered(endpoint: &mut OtrEndpoint, id: u64) {
    let (found, _) = endpoint
        .wait_for(WAIT, |u| matches!(u, OtrUpdate::Event { event: OtrEvent::Delivered { id: d }, .. } if *d == id))
        .await;
    assert!(found.is_some(), "delivery of {id} acknowledged");
}

async fn expect_notice(
    endpoint: &mut OtrEndpoint,
    what: &str,
    pred: impl Fn(&OtrNotice) -> bool,
) -> OtrNotice {
    let (found, _) = endpoint
        .wait_for(
            WAIT,
            |u| matches!(u, OtrUpdate::Notice { notice, .. } if pred(notice)),
        )
        .await;
    match found {
        Some(OtrUpdate::Notice { notice, .. }) => notice,
        other => panic!("no {what} notice: {other:?}"),
    }
}

#[tokio::test]
async fn a_conversation_both_ways_with_acknowledgements_refresh_and_end() {
    let mut p = pair().await;
    establish(&mut p).await;
    assert_eq!(p.a.session_id(p.room), p.b.session_id(p.room));
    assert_eq!(
        p.a.safety_number(p.room).unwrap(),
        p.b.safety_number(p.room).unwrap()
    );

    let id = p.a.send_text(p.room, "off the record, alice").unwrap();
    expect_text(&mut p.b, "off the record, alice").await;
    expect_delivered(&mut p.a, id).await;
    let id = p.b.send_text(p.room, "off the record, bob").unwrap();
    expect_text(&mut p.a, "off the record, bob").await;
    expect_delivered(&mut p.b, id).await;

    // Refresh Keys mid-conversation: Bob's client accepts by itself.
    let old = p.a.session_id(p.room);
    p.a.refresh(p.room).unwrap();
    let (auto, skipped) =
        p.b.wait_for(WAIT, |u| {
            matches!(
                u,
                OtrUpdate::Event {
                    event: OtrEvent::RefreshAccepted { .. },
                    ..
                }
            )
        })
        .await;
    assert!(auto.is_some(), "refresh accepted automatically");
    assert!(!skipped.iter().any(invited));
    settle(&mut p, "re-established", |a, b| {
        a == OtrState::Established && b == OtrState::Established
    })
    .await;
    assert_ne!(p.a.session_id(p.room), old);
    let id = p.b.send_text(p.room, "after refresh").unwrap();
    expect_text(&mut p.a, "after refresh").await;
    expect_delivered(&mut p.b, id).await;

    // A file off the record.
    let data: Vec<u8> = (0..50_000u32).map(|i| (i % 253) as u8).collect();
    p.a.send_file(p.room, "notes.bin", "application/octet-stream", &data)
        .unwrap();
    let (file, _) =
        p.b.wait_for(WAIT, |u| {
            matches!(
                u,
                OtrUpdate::Event {
                    event: OtrEvent::File { .. },
                    ..
                }
            )
        })
        .await;
    match file {
        Some(OtrUpdate::Event {
            event: OtrEvent::File {
                data: got, name, ..
            },
            ..
        }) => {
            assert_eq!(name, "notes.bin");
            assert_eq!(got.as_slice(), data.as_slice());
        }
        other => panic!("no file: {other:?}"),
    }

    // End OTR: back on the record, by choice; ordinary messages are stored again.
    p.a.end(p.room).unwrap();
    settle(&mut p, "ended", |a, b| {
        matches!(a, OtrState::Ended(EndReason::EndedHere))
            && matches!(
                b,
                OtrState::Ended(EndReason::EndedByPeer {
                    authenticated: true
                })
            )
    })
    .await;
    p.alice
        .send_text(p.room, "back on the record")
        .await
        .unwrap();
    let history = p.bob.history(p.room, None, None, None).await.unwrap();
    let texts: Vec<String> = history
        .messages
        .iter()
        .filter_map(|m| match &m.body {
            MessageBody::Text { text } => Some(text.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        texts,
        ["back on the record"],
        "OTR messages are not in history"
    );
    assert_eq!(
        p.a.keys().one_time_key_count() + p.b.keys().one_time_key_count(),
        0
    );
    drop(p.admin);
}

#[tokio::test]
async fn a_clean_close_is_reported_at_once_and_a_short_drop_keeps_the_session() {
    let mut p = pair().await;
    establish(&mut p).await;

    // A short network drop: Bob comes back with the same connection id, the session goes on.
    let resumed =
        p.b.drop_and_reconnect(&p.bob, Duration::from_millis(300), true)
            .await
            .unwrap();
    assert!(resumed, "the server let Bob take back his connection");
    let id = p.a.send_text(p.room, "still here?").unwrap();
    expect_text(&mut p.b, "still here?").await;
    expect_delivered(&mut p.a, id).await;

    // Bob closes the tab: Alice is told at once.
    let Pair {
        mut a,
        b,
        room,
        bob,
        ..
    } = p;
    let bob_keys = b.close().await;
    expect_notice(&mut a, "peer disconnected", |n| {
        matches!(n, OtrNotice::PeerDisconnected)
    })
    .await;
    assert_eq!(
        a.state(room),
        OtrState::Failed(FailureReason::PeerDisconnected)
    );

    // Bob opens a new tab (his unlocked keys survive in this test); Refresh Keys asks him again.
    let mut b = OtrEndpoint::connect(&bob, bob_keys, ConnectOptions::default())
        .await
        .unwrap();
    b.open(&bob, room).await.unwrap();
    a.refresh(room).unwrap();
    let (invited, _) = b.wait_for(WAIT, invited).await;
    assert!(
        invited.is_some(),
        "the reloaded side is asked, not re-keyed silently"
    );
    b.accept(room).unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    while !(a.state(room) == OtrState::Established && b.state(room) == OtrState::Established) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "re-established after reload"
        );
        a.next(Duration::from_millis(20)).await;
        b.next(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn both_unlocked_tabs_see_the_offer_and_only_the_one_that_accepts_holds_the_session() {
    let mut p = pair().await;
    let second_keys = p.bob.e2e_unlock(&p.bob_passphrase).await.unwrap();
    let mut b2 = OtrEndpoint::connect(&p.bob, second_keys, ConnectOptions::default())
        .await
        .unwrap();
    b2.open(&p.bob, p.room).await.unwrap();

    p.a.start(p.room).unwrap();
    for endpoint in [&mut p.b, &mut b2] {
        let (invited, _) = endpoint.wait_for(WAIT, invited).await;
        assert!(invited.is_some(), "every unlocked tab sees the invitation");
    }
    p.b.accept(p.room).unwrap();
    expect_notice(&mut b2, "accepted elsewhere", |n| {
        matches!(n, OtrNotice::AcceptedElsewhere)
    })
    .await;
    settle(&mut p, "established", |a, b| {
        a == OtrState::Established && b == OtrState::Established
    })
    .await;
    p.a.send_text(p.room, "only for the tab that accepted")
        .unwrap();
    expect_text(&mut p.b, "only for the tab that accepted").await;
    let (leaked, _) = b2
        .wait_for(Duration::from_millis(500), |u| {
            matches!(u, OtrUpdate::Event { .. })
        })
        .await;
    assert!(
        leaked.is_none(),
        "the other tab receives nothing of the session: {leaked:?}"
    );
    assert_eq!(b2.state(p.room), OtrState::TimedOut);
}

#[tokio::test]
async fn decline_and_admin_disabling_otr_mid_session() {
    let mut p = pair().await;
    p.a.start(p.room).unwrap();
    p.b.wait_for(WAIT, invited).await;
    p.b.decline(p.room).unwrap();
    settle(&mut p, "declined", |a, b| {
        a == OtrState::Declined && b == OtrState::Declined
    })
    .await;

    establish(&mut p).await;
    let mut off = sotto_api::rest::SettingsMap::new();
    off.insert("otr.enabled".into(), serde_json::json!(false));
    p.admin.update_settings(&off).await.unwrap();
    expect_notice(&mut p.a, "ended by server", |n| {
        matches!(n, OtrNotice::EndedByServer)
    })
    .await;
    expect_notice(&mut p.b, "ended by server", |n| {
        matches!(n, OtrNotice::EndedByServer)
    })
    .await;
    assert!(!matches!(p.a.state(p.room), OtrState::Established));
    assert!(!matches!(p.b.state(p.room), OtrState::Established));
    p.a.refresh(p.room).unwrap();
    let notice = expect_notice(&mut p.a, "refused", |n| {
        matches!(n, OtrNotice::Refused { .. })
    })
    .await;
    assert!(
        matches!(
            notice,
            OtrNotice::Refused {
                code: sotto_api::ErrorCode::OtrDisabled,
                ..
            }
        ),
        "{notice:?}"
    );
}

#[tokio::test]
async fn an_offer_to_a_locked_or_offline_peer_is_refused_at_once() {
    let p = pair().await;
    // Bob locked: his only connection closes and a new one never announces an unlocked identity.
    let Pair {
        mut a,
        b,
        room,
        bob,
        ..
    } = p;
    let _bob_keys = b.close().await;
    a.start(room).unwrap();
    let notice = expect_notice(&mut a, "refused (offline)", |n| {
        matches!(n, OtrNotice::Refused { .. })
    })
    .await;
    assert!(
        matches!(
            notice,
            OtrNotice::Refused {
                code: sotto_api::ErrorCode::OtrPeerOffline,
                ..
            }
        ),
        "{notice:?}"
    );
    let _locked = bob.connect(ConnectOptions::default()).await.unwrap();
    a.start(room).unwrap();
    let notice = expect_notice(&mut a, "refused (locked)", |n| {
        matches!(n, OtrNotice::Refused { .. })
    })
    .await;
    assert!(
        matches!(
            notice,
            OtrNotice::Refused {
                code: sotto_api::ErrorCode::OtrPeerLocked,
                ..
            }
        ),
        "{notice:?}"
    );
}
