//! The off-the-record scenario suite. It runs natively and, compiled to wasm32, under
//! wasm-bindgen-test (see scripts/test.sh), so the browser build is held to the same behaviour.

mod common;

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use common::{Peer, established, pair, pump};
use sotto_crypto::otr::{
    AbortReason, EndReason, FailureReason, OtrError, OtrEvent, OtrState, Packet, PacketBody,
    PacketKind, reply_to_unknown_session,
};
use sotto_crypto::trust::TrustError;
use sotto_crypto::vodozemac::Curve25519PublicKey;
use sotto_crypto::vodozemac::olm::{OlmMessage, PreKeyMessage};

fn kinds(packets: &[Packet]) -> Vec<PacketKind> {
    packets.iter().map(Packet::kind).collect()
}

#[test]
fn start_accept_establish_then_talk_both_ways_with_acknowledgements() {
    let (mut alice, mut bob) = pair();
    assert_eq!(alice.state(), OtrState::NotStarted);

    let offer = alice.act(|s, k| s.start(k));
    assert_eq!(kinds(&offer), [PacketKind::Offer]);
    assert_eq!(alice.state(), OtrState::Offered);
    bob.deliver(offer);
    assert_eq!(bob.state(), OtrState::Invited);
    assert_eq!(bob.invitations(), 1);

    let accept = bob.act(|s, k| s.accept(k));
    assert_eq!(kinds(&accept), [PacketKind::Accept]);
    assert_eq!(bob.state(), OtrState::Establishing);
    assert_eq!(bob.otr.one_time_key_count(), 1);

    let confirm = alice.deliver(accept);
    assert_eq!(kinds(&confirm), [PacketKind::Frame]);
    assert_eq!(alice.state(), OtrState::Establishing);

    let ack = bob.deliver(confirm);
    assert_eq!(bob.state(), OtrState::Established);
    assert_eq!(
        bob.otr.one_time_key_count(),
        0,
        "the one-time key is consumed"
    );
    alice.deliver(ack);
    assert_eq!(alice.state(), OtrState::Established);
    assert_eq!(alice.session.session_id(), bob.session.session_id());

    let (id, packet) = alice.session.send_text("hello bob").unwrap();
    let acks = bob.deliver(vec![packet]);
    assert_eq!(bob.texts(), [(id, "hello bob".to_owned())]);
    alice.deliver(acks);
    assert_eq!(alice.delivered(), [id]);

    let (id, packet) = bob.session.send_text("hi alice").unwrap();
    let acks = alice.deliver(vec![packet]);
    assert_eq!(alice.texts(), [(id, "hi alice".to_owned())]);
    bob.deliver(acks);
    assert_eq!(bob.delivered(), [id]);
}

#[test]
fn no_content_can_be_encrypted_before_key_confirmation() {
    let (mut alice, mut bob) = pair();
    assert!(matches!(
        alice.session.send_text("x"),
        Err(OtrError::NotEstablished)
    ));
    let offer = alice.act(|s, k| s.start(k));
    assert!(matches!(
        alice.session.send_text("x"),
        Err(OtrError::NotEstablished)
    ));
    bob.deliver(offer);
    assert!(matches!(
        bob.session.send_text("x"),
        Err(OtrError::NotEstablished)
    ));
    let accept = bob.act(|s, k| s.accept(k));
    assert!(matches!(
        bob.session.send_text("x"),
        Err(OtrError::NotEstablished)
    ));
    alice.deliver(accept);
    assert_eq!(alice.state(), OtrState::Establishing);
    assert!(matches!(
        alice.session.send_text("x"),
        Err(OtrError::NotEstablished)
    ));
    assert!(matches!(
        alice.session.send_file("f", "text/plain", b"x"),
        Err(OtrError::NotEstablished)
    ));
}

#[test]
fn decline_ends_both_sides_and_destroys_nothing_it_did_not_have() {
    let (mut alice, mut bob) = pair();
    let offer = alice.act(|s, k| s.start(k));
    bob.deliver(offer);
    let decline = bob.act(|s, k| s.decline(k));
    assert_eq!(kinds(&decline), [PacketKind::Decline]);
    assert_eq!(bob.state(), OtrState::Declined);
    alice.deliver(decline);
    assert_eq!(alice.state(), OtrState::Declined);
    assert!(!alice.session.holds_keys() && !bob.session.holds_keys());
    assert_eq!(bob.otr.one_time_key_count(), 0);
    // Try again after a decline.
    let offer = alice.act(|s, k| s.start(k));
    bob.deliver(offer);
    assert_eq!(bob.state(), OtrState::Invited);
}

#[test]
fn cancel_during_each_phase_removes_keys_on_both_sides() {
    // Withdrawn invitation.
    let (mut alice, mut bob) = pair();
    let offer = alice.act(|s, k| s.start(k));
    bob.deliver(offer);
    let cancel = alice.act(|s, k| s.cancel(k));
    assert_eq!(alice.state(), OtrState::Ended(EndReason::CancelledHere));
    bob.deliver(cancel);
    assert_eq!(bob.state(), OtrState::Ended(EndReason::CancelledByPeer));

    // Cancelled after Bob accepted: Bob's one-time key must go.
    let (mut alice, mut bob) = pair();
    let offer = alice.act(|s, k| s.start(k));
    bob.deliver(offer);
    let accept = bob.act(|s, k| s.accept(k));
    assert_eq!(bob.otr.one_time_key_count(), 1);
    let cancel = alice.act(|s, k| s.cancel(k));
    bob.deliver(cancel);
    assert_eq!(bob.state(), OtrState::Ended(EndReason::CancelledByPeer));
    assert_eq!(bob.otr.one_time_key_count(), 0);
    assert!(!bob.session.holds_keys());
    // Alice's late answer to Bob's accept tells Bob (again) to drop it; nothing breaks.
    assert_eq!(kinds(&alice.deliver(accept)), [PacketKind::Cancel]);

    // Bob abandons while waiting for the pre-key message.
    let (mut alice, mut bob) = pair();
    let offer = alice.act(|s, k| s.start(k));
    bob.deliver(offer);
    let accept = bob.act(|s, k| s.accept(k));
    let cancel = bob.act(|s, k| s.cancel(k));
    assert_eq!(bob.otr.one_time_key_count(), 0);
    alice.deliver(accept);
    alice.deliver(cancel);
    assert_eq!(alice.state(), OtrState::Ended(EndReason::CancelledByPeer));
    assert!(!alice.session.holds_keys());
}

#[test]
fn timeout_in_each_waiting_state_holds_no_keys() {
    let (mut alice, mut bob) = pair();
    let offer = alice.act(|s, k| s.start(k));
    bob.deliver(offer);
    let _accept = bob.act(|s, k| s.accept(k));
    bob.act(|s, k| s.expire(k));
    alice.act(|s, k| s.expire(k));
    for peer in [&alice, &bob] {
        assert_eq!(peer.state(), OtrState::TimedOut);
        assert!(!peer.session.holds_keys());
        assert_eq!(peer.otr.one_time_key_count(), 0);
    }

    let (mut alice, mut bob) = pair();
    let offer = alice.act(|s, k| s.start(k));
    bob.deliver(offer);
    bob.act(|s, k| s.expire(k));
    assert_eq!(bob.state(), OtrState::TimedOut);
    let accept_after_timeout = bob.try_act(|s, k| s.accept(k));
    assert!(matches!(
        accept_after_timeout,
        Err(OtrError::IllegalTransition { .. })
    ));
}

#[test]
fn end_otr_is_authenticated_and_destroys_keys() {
    let (mut alice, mut bob) = established();
    let end = alice.act(|s, k| s.end(k));
    assert_eq!(kinds(&end), [PacketKind::End]);
    assert_eq!(alice.state(), OtrState::Ended(EndReason::EndedHere));
    bob.deliver(end);
    assert_eq!(
        bob.state(),
        OtrState::Ended(EndReason::EndedByPeer {
            authenticated: true
        })
    );
    assert!(!alice.session.holds_keys() && !bob.session.holds_keys());
    assert!(matches!(
        alice.session.send_text("after"),
        Err(OtrError::NotEstablished)
    ));

    // An end the relay made up is still an end (the relay can always cut a session), but it is
    // reported as unauthenticated.
    let (mut alice, mut bob) = established();
    let forged = Packet {
        session_id: alice.session.session_id().unwrap(),
        body: PacketBody::End(None),
    };
    bob.deliver(vec![forged]);
    assert_eq!(
        bob.state(),
        OtrState::Ended(EndReason::EndedByPeer {
            authenticated: false
        })
    );
    // Alice, who still holds her keys, can end too; nothing of hers outlives it.
    assert_eq!(kinds(&alice.act(|s, k| s.end(k))), [PacketKind::End]);
    assert!(!alice.session.holds_keys());
}

#[test]
fn illegal_transitions_are_errors_and_change_nothing() {
    let (mut alice, mut bob) = pair();
    for result in [
        alice.try_act(|s, k| s.accept(k)),
        alice.try_act(|s, k| s.decline(k)),
        alice.try_act(|s, k| s.cancel(k)),
        alice.try_act(|s, k| s.end(k)),
        alice.try_act(|s, k| s.expire(k)),
    ] {
        assert!(matches!(
            result,
            Err(OtrError::IllegalTransition {
                state: OtrState::NotStarted,
                ..
            })
        ));
    }
    let offer = alice.act(|s, k| s.start(k));
    assert!(matches!(
        alice.try_act(|s, k| s.start(k)),
        Err(OtrError::IllegalTransition { .. })
    ));
    assert!(matches!(
        alice.try_act(|s, k| s.accept(k)),
        Err(OtrError::IllegalTransition { .. })
    ));
    assert!(matches!(
        alice.try_act(|s, k| s.refresh(k)),
        Err(OtrError::IllegalTransition { .. })
    ));
    assert_eq!(alice.state(), OtrState::Offered);
    bob.deliver(offer);
    assert!(matches!(
        bob.try_act(|s, k| s.start(k)),
        Err(OtrError::IllegalTransition { .. })
    ));
    assert!(matches!(
        bob.try_act(|s, k| s.cancel(k)),
        Err(OtrError::IllegalTransition { .. })
    ));
    assert_eq!(bob.state(), OtrState::Invited);

    let (mut alice, _bob) = established();
    for result in [
        alice.try_act(|s, k| s.start(k)),
        alice.try_act(|s, k| s.accept(k)),
        alice.try_act(|s, k| s.decline(k)),
        alice.try_act(|s, k| s.cancel(k)),
        alice.try_act(|s, k| s.expire(k)),
    ] {
        assert!(matches!(
            result,
            Err(OtrError::IllegalTransition {
                state: OtrState::Established,
                ..
            })
        ));
    }
    assert_eq!(alice.state(), OtrState::Established);
}

#[test]
fn glare_resolves_to_one_session_on_both_sides() {
    for _ in 0..8 {
        let (mut alice, mut bob) = pair();
        let from_alice = alice.act(|s, k| s.start(k));
        let from_bob = bob.act(|s, k| s.start(k));
        // The offers cross on the wire.
        let to_alice = bob.deliver(from_alice);
        let to_bob = alice.deliver(from_bob);
        let mut to_bob = to_bob;
        to_bob.extend(pump_return(&mut alice, &mut bob, to_alice));
        pump(&mut alice, &mut bob, to_bob);
        assert_eq!(alice.state(), OtrState::Established);
        assert_eq!(bob.state(), OtrState::Established);
        assert_eq!(alice.session.session_id(), bob.session.session_id());
        assert_eq!(
            alice.invitations() + bob.invitations(),
            0,
            "nobody is asked twice"
        );
        let (_, packet) = alice.session.send_text("glare").unwrap();
        bob.deliver(vec![packet]);
        assert_eq!(bob.texts().len(), 1);
    }
}

/// Delivers `to_a` to `a` and returns what `a` answers for `b`.
fn pump_return(a: &mut Peer, _b: &mut Peer, to_a: Vec<Packet>) -> Vec<Packet> {
    a.deliver(to_a)
}

#[test]
fn refresh_keys_is_accepted_automatically_and_replaces_the_keys() {
    let (mut alice, mut bob) = established();
    let old = alice.session.session_id().unwrap();
    let (_, old_frame) = alice.session.send_text("before").unwrap();

    let offer = alice.act(|s, k| s.refresh(k));
    assert_eq!(alice.state(), OtrState::Offered);
    assert!(!alice.session.holds_keys(), "old keys destroyed at once");
    let invitations_before = bob.invitations();
    let answer = bob.deliver(offer);
    assert_eq!(
        kinds(&answer),
        [PacketKind::Accept],
        "accepted without asking Bob"
    );
    assert_eq!(bob.invitations(), invitations_before);
    assert!(
        bob.events
            .iter()
            .any(|e| matches!(e, OtrEvent::RefreshAccepted { .. }))
    );
    pump(&mut bob, &mut alice, answer);
    assert_eq!(alice.state(), OtrState::Established);
    assert_eq!(bob.state(), OtrState::Established);
    let new = alice.session.session_id().unwrap();
    assert_ne!(old, new);

    // A frame of the replaced session no longer decrypts: the receiver says the session is lost.
    let reply = bob.deliver(vec![old_frame]);
    assert_eq!(reply.len(), 1);
    assert_eq!(reply[0].session_id, old);
    assert_eq!(reply[0].body, PacketBody::Abort(AbortReason::LostSession));
    assert_eq!(bob.state(), OtrState::Established);

    let (_, packet) = bob.session.send_text("after refresh").unwrap();
    alice.deliver(vec![packet]);
    assert_eq!(alice.texts().last().unwrap().1, "after refresh");
}

#[test]
fn after_a_reload_the_lost_session_is_reported_and_refresh_asks_the_reloaded_side() {
    let (mut alice, bob) = established();
    // Bob reloads: his session object and keys are gone; a fresh one knows nothing.
    let mut bob = reload(bob);
    let (_, frame) = alice.session.send_text("are you there?").unwrap();
    let lost = bob.deliver(vec![frame.clone()]);
    assert_eq!(lost[0].body, PacketBody::Abort(AbortReason::LostSession));
    // The same answer whether or not the receiver ever had a session object.
    assert_eq!(
        reply_to_unknown_session(&frame.encode()),
        Some(lost[0].clone())
    );
    alice.deliver(lost);
    assert_eq!(alice.state(), OtrState::Failed(FailureReason::SessionLost));
    assert!(!alice.session.holds_keys());

    // Refresh Keys from Alice: Bob (who reloaded) is asked, not silently re-keyed.
    let offer = alice.act(|s, k| s.refresh(k));
    bob.deliver(offer);
    assert_eq!(bob.state(), OtrState::Invited);
    let accept = bob.act(|s, k| s.accept(k));
    pump(&mut bob, &mut alice, accept);
    assert_eq!(alice.state(), OtrState::Established);
    assert_eq!(bob.state(), OtrState::Established);
}

fn reload(peer: Peer) -> Peer {
    let Peer {
        user_id,
        identity,
        trust,
        ..
    } = peer;
    let otr = identity.otr_identity();
    let peer_user = if user_id == "alice" { "bob" } else { "alice" };
    Peer {
        session: sotto_crypto::otr::OtrSession::new(common::ROOM, &user_id, peer_user).unwrap(),
        user_id,
        identity,
        otr,
        trust,
        events: Vec::new(),
    }
}

#[test]
fn peer_disconnect_fails_the_session_and_destroys_keys() {
    let (mut alice, _bob) = established();
    let sent = alice.act(|s, k| Ok(s.peer_disconnected(k)));
    assert!(sent.is_empty());
    assert_eq!(
        alice.state(),
        OtrState::Failed(FailureReason::PeerDisconnected)
    );
    assert!(!alice.session.holds_keys());
}

#[test]
fn files_travel_in_chunks_and_are_acknowledged() {
    let (mut alice, mut bob) = established();
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let (id, packets) = alice
        .session
        .send_file("photo.png", "image/png", &data)
        .unwrap();
    assert_eq!(packets.len(), 4);
    let acks = bob.deliver(packets);
    let file = bob.events.iter().find_map(|e| match e {
        OtrEvent::File {
            id,
            name,
            media_type,
            data,
        } => Some((*id, name.clone(), media_type.clone(), data.to_vec())),
        _ => None,
    });
    assert_eq!(
        file,
        Some((id, "photo.png".into(), "image/png".into(), data))
    );
    alice.deliver(acks);
    assert_eq!(alice.delivered(), [id]);

    let too_big = vec![0u8; sotto_crypto::otr::MAX_FILE_BYTES as usize + 1];
    assert!(matches!(
        alice.session.send_file("big", "x", &too_big),
        Err(OtrError::TooLarge)
    ));
    let (_, empty) = alice.session.send_file("empty", "text/plain", &[]).unwrap();
    bob.deliver(empty);
    assert!(bob.events.iter().any(
        |e| matches!(e, OtrEvent::File { name, data, .. } if name == "empty" && data.is_empty())
    ));
}

#[test]
fn two_sessions_never_decrypt_each_others_frames() {
    let (mut alice1, mut bob1) = established();
    let (mut alice2, mut bob2) = established();
    let (_, frame1) = alice1.session.send_text("for bob1").unwrap();
    // Delivered as is: another session id, so "lost session" and nothing shown.
    let reply = bob2.deliver(vec![frame1.clone()]);
    assert_eq!(reply[0].body, PacketBody::Abort(AbortReason::LostSession));
    // Even relabelled with bob2's session id, it does not authenticate.
    let relabelled = Packet {
        session_id: bob2.session.session_id().unwrap(),
        body: frame1.body.clone(),
    };
    let result = bob2.try_act(|s, k| s.receive(k, &relabelled.encode()));
    assert!(matches!(result, Err(OtrError::Frame(_))));
    assert!(bob2.texts().is_empty());
    // Both sessions still work.
    bob1.deliver(vec![frame1]);
    assert_eq!(bob1.texts().len(), 1);
    let (_, frame2) = alice2.session.send_text("for bob2").unwrap();
    bob2.deliver(vec![frame2]);
    assert_eq!(bob2.texts().len(), 1);
}

// --- Relay attacks -------------------------------------------------------------------------

/// Runs a handshake in which the relay rewrites the pre-key message with `tamper`; returns the
/// two peers after the relay has delivered everything.
fn handshake_with_tampered_pre_key(
    tamper: impl Fn(&PreKeyMessage) -> PreKeyMessage,
) -> (Peer, Peer) {
    let (mut alice, mut bob) = pair();
    let offer = alice.act(|s, k| s.start(k));
    bob.deliver(offer);
    let accept = bob.act(|s, k| s.accept(k));
    let mut confirm = alice.deliver(accept);
    let PacketBody::Frame(OlmMessage::PreKey(pre_key)) = &confirm[0].body else {
        panic!("expected the pre-key message");
    };
    confirm[0].body = PacketBody::Frame(OlmMessage::PreKey(tamper(pre_key)));
    let abort = bob.deliver(confirm);
    assert_eq!(kinds(&abort), [PacketKind::Abort]);
    alice.deliver(abort);
    (alice, bob)
}

fn assert_handshake_failed_on_both_sides(alice: &Peer, bob: &Peer) {
    assert_eq!(
        bob.state(),
        OtrState::Failed(FailureReason::HandshakeRejected)
    );
    assert_eq!(
        alice.state(),
        OtrState::Failed(FailureReason::PeerRejectedHandshake)
    );
    assert!(!alice.session.holds_keys() && !bob.session.holds_keys());
    assert_eq!(bob.otr.one_time_key_count(), 0);
}

fn rogue_key() -> Curve25519PublicKey {
    sotto_crypto::identity::Identity::generate()
        .public()
        .curve25519
}

#[test]
fn relay_substituting_the_one_time_key_is_caught_on_both_sides() {
    let (alice, bob) = handshake_with_tampered_pre_key(|m| {
        let mut keys = m.session_keys();
        keys.one_time_key = rogue_key();
        PreKeyMessage::wrap(keys, m.message().clone())
    });
    assert_handshake_failed_on_both_sides(&alice, &bob);
}

#[test]
fn relay_substituting_the_one_time_key_in_the_accept_is_caught_on_both_sides() {
    let (mut alice, mut bob) = pair();
    let offer = alice.act(|s, k| s.start(k));
    bob.deliver(offer);
    let mut accept = bob.act(|s, k| s.accept(k));
    let PacketBody::Accept(inner) = &mut accept[0].body else {
        panic!()
    };
    inner.one_time_key = rogue_key();
    let confirm = alice.deliver(accept);
    let abort = bob.deliver(confirm);
    alice.deliver(abort);
    assert_handshake_failed_on_both_sides(&alice, &bob);
}

#[test]
fn relay_substituting_the_base_key_is_caught_on_both_sides() {
    let (alice, bob) = handshake_with_tampered_pre_key(|m| {
        let mut keys = m.session_keys();
        keys.base_key = rogue_key();
        PreKeyMessage::wrap(keys, m.message().clone())
    });
    assert_handshake_failed_on_both_sides(&alice, &bob);
}

#[test]
fn relay_substituting_the_identity_key_is_caught_on_both_sides() {
    let (alice, bob) = handshake_with_tampered_pre_key(|m| {
        let mut keys = m.session_keys();
        keys.identity_key = rogue_key();
        PreKeyMessage::wrap(keys, m.message().clone())
    });
    assert_handshake_failed_on_both_sides(&alice, &bob);
}

#[test]
fn a_handshake_replayed_into_another_room_fails_the_binding() {
    let (mut alice, mut bob) = pair();
    // Bob's conversation with Alice lives in another room than Alice's.
    bob.session = sotto_crypto::otr::OtrSession::new("other-room", "bob", "alice").unwrap();
    let offer = alice.act(|s, k| s.start(k));
    bob.deliver(offer);
    let accept = bob.act(|s, k| s.accept(k));
    let confirm = alice.deliver(accept);
    let abort = bob.deliver(confirm);
    assert_eq!(
        bob.state(),
        OtrState::Failed(FailureReason::BindingMismatch)
    );
    alice.deliver(abort);
    assert_eq!(
        alice.state(),
        OtrState::Failed(FailureReason::PeerRejectedHandshake)
    );
}

#[test]
fn a_false_directory_key_is_flagged_by_the_pin_and_the_safety_numbers_differ() {
    use sotto_crypto::safety::SafetyNumber;
    use sotto_crypto::trust::TrustDecision;

    let (mut alice, bob) = pair();
    let mallory = Peer::new("bob", "alice");
    // The directory now serves Mallory's key as Bob's: the pin catches it and blocks OTR.
    let decision = alice.trust.observe("bob", mallory.public());
    assert!(matches!(decision, TrustDecision::Changed { .. }));
    assert!(matches!(
        alice.try_act(|s, k| s.start(k)),
        Err(OtrError::Trust(TrustError::KeyChangedUnacknowledged))
    ));

    // A user who first meets "Bob" through a lying directory pins the false key: the handshake
    // with Mallory completes, and only comparing safety numbers reveals it.
    let mut carol = Peer::new("carol", "bob");
    let mut mallory = Peer::new("bob", "carol");
    carol.trust.observe("bob", mallory.public());
    mallory.trust.observe("carol", carol.public());
    let offer = carol.act(|s, k| s.start(k));
    mallory.deliver(offer);
    let accept = mallory.act(|s, k| s.accept(k));
    pump(&mut mallory, &mut carol, accept);
    assert_eq!(carol.state(), OtrState::Established);
    let seen_by_carol = SafetyNumber::new("carol", &carol.public(), "bob", &mallory.public());
    let seen_by_bob = SafetyNumber::new("bob", &bob.public(), "carol", &carol.public());
    assert_ne!(seen_by_carol, seen_by_bob);
}

#[test]
fn malformed_packets_are_errors_and_leave_the_session_intact() {
    let (mut alice, mut bob) = established();
    for bad in [&b""[..], &[1], &[9, 9, 9], &[1, 6, 0, 0], &[0xff; 40]] {
        assert!(matches!(
            bob.try_act(|s, k| s.receive(k, bad)),
            Err(OtrError::Malformed(_))
        ));
    }
    let (_, packet) = alice.session.send_text("still fine").unwrap();
    bob.deliver(vec![packet]);
    assert_eq!(bob.texts().len(), 1);
}

#[test]
fn the_relay_cannot_cancel_or_replay_its_way_into_a_false_story() {
    // A cancel in an established session is not how a peer ends: unauthenticated end.
    let (alice, mut bob) = established();
    let id = alice.session.session_id().unwrap();
    bob.deliver(vec![Packet {
        session_id: id,
        body: PacketBody::Cancel,
    }]);
    assert_eq!(
        bob.state(),
        OtrState::Ended(EndReason::EndedByPeer {
            authenticated: false
        })
    );

    // A replay of the offer of the session Bob holds changes nothing.
    let (mut alice, mut bob) = pair();
    let offer = alice.act(|s, k| s.start(k));
    bob.deliver(offer.clone());
    let accept = bob.act(|s, k| s.accept(k));
    pump(&mut bob, &mut alice, accept);
    assert_eq!(bob.state(), OtrState::Established);
    assert!(bob.deliver(offer.clone()).is_empty());
    assert_eq!(bob.state(), OtrState::Established);
    // ... nor after the session ended.
    let end = alice.act(|s, k| s.end(k));
    bob.deliver(end);
    let invitations = bob.invitations();
    bob.deliver(offer);
    assert_eq!(bob.invitations(), invitations);
    assert!(matches!(bob.state(), OtrState::Ended(_)));
}

#[test]
fn a_pre_key_message_may_only_use_the_one_time_key_minted_for_its_session() {
    // Bob accepts invitations in two rooms; one identity mints both one-time keys. The relay
    // answers room 2's handshake with the pre-key message of room 1.
    let (mut alice, mut bob) = pair();
    let offer1 = alice.act(|s, k| s.start(k));
    bob.deliver(offer1);
    let accept1 = bob.act(|s, k| s.accept(k));
    let confirm1 = alice.deliver(accept1);

    let mut bob_room2 = sotto_crypto::otr::OtrSession::new("room-2", "bob", "alice").unwrap();
    let mut alice_room2 = sotto_crypto::otr::OtrSession::new("room-2", "alice", "bob").unwrap();
    let offer2 = alice_room2
        .start(sotto_crypto::otr::OtrKeys {
            identity: &mut alice.otr,
            trust: &alice.trust,
        })
        .unwrap()
        .send;
    for packet in offer2 {
        bob_room2
            .receive(
                sotto_crypto::otr::OtrKeys {
                    identity: &mut bob.otr,
                    trust: &bob.trust,
                },
                &packet.encode(),
            )
            .unwrap();
    }
    let accept2 = bob_room2
        .accept(sotto_crypto::otr::OtrKeys {
            identity: &mut bob.otr,
            trust: &bob.trust,
        })
        .unwrap();
    assert_eq!(kinds(&accept2.send), [PacketKind::Accept]);
    assert_eq!(bob.otr.one_time_key_count(), 2);

    // Room 1's pre-key message, relabelled with room 2's session id.
    let stolen = Packet {
        session_id: bob_room2.session_id().unwrap(),
        body: confirm1[0].body.clone(),
    };
    let answer = bob_room2
        .receive(
            sotto_crypto::otr::OtrKeys {
                identity: &mut bob.otr,
                trust: &bob.trust,
            },
            &stolen.encode(),
        )
        .unwrap();
    assert_eq!(kinds(&answer.send), [PacketKind::Abort]);
    assert_eq!(
        bob_room2.state(),
        OtrState::Failed(FailureReason::HandshakeRejected)
    );
    // Room 1's key was not consumed: its own handshake still completes.
    assert_eq!(bob.otr.one_time_key_count(), 1);
    let ack = bob.deliver(confirm1);
    alice.deliver(ack);
    assert_eq!(bob.state(), OtrState::Established);
    assert_eq!(alice.state(), OtrState::Established);
    assert_eq!(bob.otr.one_time_key_count(), 0);
    let _ = alice_room2;
}

#[test]
fn timing_out_while_waiting_for_confirmation_tells_the_peer_and_holds_no_keys() {
    let (mut alice, mut bob) = pair();
    let offer = alice.act(|s, k| s.start(k));
    bob.deliver(offer);
    let accept = bob.act(|s, k| s.accept(k));
    let confirm = alice.deliver(accept);
    // The relay holds back Bob's confirmation; Alice's timer fires.
    let _held_back = bob.deliver(confirm);
    assert_eq!(bob.state(), OtrState::Established);
    let cancel = alice.act(|s, k| s.expire(k));
    assert_eq!(kinds(&cancel), [PacketKind::Cancel]);
    assert_eq!(alice.state(), OtrState::TimedOut);
    assert!(!alice.session.holds_keys());
    // Bob does not stay half-established.
    bob.deliver(cancel);
    assert!(matches!(bob.state(), OtrState::Ended(_)));
    assert!(!bob.session.holds_keys());
}

#[test]
fn discarding_a_session_removes_its_pending_one_time_key() {
    let (mut alice, mut bob) = pair();
    let offer = alice.act(|s, k| s.start(k));
    bob.deliver(offer);
    bob.act(|s, k| s.accept(k));
    assert_eq!(bob.otr.one_time_key_count(), 1);
    let Peer {
        session, mut otr, ..
    } = bob;
    session.discard(&mut otr);
    assert_eq!(otr.one_time_key_count(), 0);
}

#[test]
fn refresh_with_an_unacknowledged_key_change_still_destroys_the_old_keys() {
    let (mut alice, _bob) = established();
    let mallory = Peer::new("bob", "alice");
    alice.trust.observe("bob", mallory.public());
    assert!(matches!(
        alice.try_act(|s, k| s.refresh(k)),
        Err(OtrError::Trust(TrustError::KeyChangedUnacknowledged))
    ));
    assert!(!alice.session.holds_keys());
    assert_eq!(
        alice.state(),
        OtrState::Failed(FailureReason::PeerKeyChanged)
    );
}

#[test]
fn a_frame_of_the_replaced_session_never_decrypts_in_the_new_one() {
    // The same two people, the same identities: only the session differs.
    let (mut alice, mut bob) = established();
    let (_, old_frame) = alice.session.send_text("old session").unwrap();
    let offer = alice.act(|s, k| s.refresh(k));
    let answer = bob.deliver(offer);
    pump(&mut bob, &mut alice, answer);
    let new_id = bob.session.session_id().unwrap();
    let relabelled = Packet {
        session_id: new_id,
        body: old_frame.body,
    };
    assert!(matches!(
        bob.try_act(|s, k| s.receive(k, &relabelled.encode())),
        Err(OtrError::Frame(_))
    ));
    assert!(bob.texts().is_empty());
    assert_eq!(bob.state(), OtrState::Established);
}

#[test]
fn ids_that_cannot_be_bound_are_refused_up_front() {
    assert!(matches!(
        sotto_crypto::otr::OtrSession::new("", "a", "b"),
        Err(OtrError::InvalidIdentifier)
    ));
    let long = "x".repeat(256);
    assert!(sotto_crypto::otr::OtrSession::new("room", &long, "b").is_err());
    assert!(sotto_crypto::otr::OtrSession::new(&"r".repeat(255), "a", "b").is_ok());
}
