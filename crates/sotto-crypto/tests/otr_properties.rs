//! Property tests of the ratchet's delivery guarantees as the OTR session surfaces them:
//! exactly-once decryption under any reordering within the documented limits, the documented
//! behaviour at each limit and one past it, replays always refused, sessions isolated.

#![cfg(not(target_arch = "wasm32"))]

mod common;

use common::{Peer, established};
use proptest::prelude::*;
use sotto_crypto::otr::{FrameError, OtrError, OtrEvent, Packet};

/// vodozemac keeps at most this many skipped message keys per receiving chain.
const MAX_SKIPPED_KEYS: usize = 40;
/// vodozemac refuses a message this many positions past the next expected one, plus one.
const MAX_GAP: usize = 2000;

fn send_batch(sender: &mut Peer, count: usize) -> Vec<(u64, String, Packet)> {
    (0..count)
        .map(|i| {
            let text = format!("message {i}");
            let (id, packet) = sender.session.send_text(&text).unwrap();
            (id, text, packet)
        })
        .collect()
}

/// What one delivered packet showed: the `(id, text)` of each message.
type Received = Result<Vec<(u64, String)>, OtrError>;

fn receive(peer: &mut Peer, packet: &Packet) -> Received {
    let before = peer.events.len();
    peer.try_act(|s, k| s.receive(k, &packet.encode()))?;
    Ok(peer.events[before..]
        .iter()
        .filter_map(|e| match e {
            OtrEvent::Message { id, text } => Some((*id, text.to_string())),
            _ => None,
        })
        .collect())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn any_reordering_within_the_window_decrypts_each_message_exactly_once(
        order in (1usize..=MAX_SKIPPED_KEYS + 1).prop_flat_map(|n| Just((0..n).collect::<Vec<_>>()).prop_shuffle())
    ) {
        let (mut alice, mut bob) = established();
        let batch = send_batch(&mut alice, order.len());
        for &index in &order {
            let (id, text, packet) = &batch[index];
            prop_assert_eq!(receive(&mut bob, packet).unwrap(), vec![(*id, text.clone())]);
        }
        // Every replay fails, in any order, and shows nothing.
        for &index in order.iter().rev() {
            let result = receive(&mut bob, &batch[index].2);
            prop_assert!(matches!(result, Err(OtrError::Frame(FrameError::MessageKeyUnavailable))));
        }
        prop_assert_eq!(bob.texts().len(), order.len());
    }

    #[test]
    fn interleaved_conversations_in_both_directions_deliver_everything_once(
        script in proptest::collection::vec((any::<bool>(), 1usize..4, any::<bool>()), 1..12)
    ) {
        // Each step: who sends, how many, and whether the batch arrives reversed.
        let (mut alice, mut bob) = established();
        let mut expected_at_bob = 0;
        let mut expected_at_alice = 0;
        for (alice_sends, count, reversed) in script {
            let (sender, receiver) = if alice_sends { (&mut alice, &mut bob) } else { (&mut bob, &mut alice) };
            let mut batch = send_batch(sender, count);
            if reversed {
                batch.reverse();
            }
            for (id, text, packet) in &batch {
                prop_assert_eq!(receive(receiver, packet).unwrap(), vec![(*id, text.clone())]);
            }
            if alice_sends { expected_at_bob += count } else { expected_at_alice += count }
        }
        prop_assert_eq!(bob.texts().len(), expected_at_bob);
        prop_assert_eq!(alice.texts().len(), expected_at_alice);
    }

    #[test]
    fn frames_never_cross_into_another_session_of_the_same_two_people(text in "\\PC{0,64}") {
        // Same people, same identity keys; the refresh gives a new session.
        let (mut alice, mut bob) = established();
        let (_, old) = alice.session.send_text(&text).unwrap();
        let offer = alice.act(|s, k| s.refresh(k));
        let answer = bob.deliver(offer);
        common::pump(&mut bob, &mut alice, answer);
        let relabelled = Packet { session_id: bob.session.session_id().unwrap(), body: old.body };
        prop_assert!(receive(&mut bob, &relabelled).is_err());
        prop_assert!(bob.texts().is_empty());
    }
}

#[test]
fn at_the_skipped_key_limit_everything_decrypts_and_one_past_it_the_oldest_is_lost() {
    // At the limit: the newest of 41 arrives first, 40 keys are skipped and kept.
    let (mut alice, mut bob) = established();
    let batch = send_batch(&mut alice, MAX_SKIPPED_KEYS + 1);
    receive(&mut bob, &batch[MAX_SKIPPED_KEYS].2).unwrap();
    for (id, text, packet) in &batch[..MAX_SKIPPED_KEYS] {
        assert_eq!(
            receive(&mut bob, packet).unwrap(),
            vec![(*id, text.clone())]
        );
    }

    // One past: 41 keys skipped, the oldest is dropped; a typed error, the rest still decrypt.
    let (mut alice, mut bob) = established();
    let batch = send_batch(&mut alice, MAX_SKIPPED_KEYS + 2);
    receive(&mut bob, &batch[MAX_SKIPPED_KEYS + 1].2).unwrap();
    assert!(matches!(
        receive(&mut bob, &batch[0].2),
        Err(OtrError::Frame(FrameError::MessageKeyUnavailable))
    ));
    for (id, text, packet) in &batch[1..=MAX_SKIPPED_KEYS] {
        assert_eq!(
            receive(&mut bob, packet).unwrap(),
            vec![(*id, text.clone())]
        );
    }
    let (id, later) = alice.session.send_text("later").unwrap();
    assert_eq!(
        receive(&mut bob, &later).unwrap(),
        vec![(id, "later".to_owned())]
    );
}

#[test]
fn at_the_gap_limit_the_message_decrypts_and_one_past_it_is_refused_without_harm() {
    let (mut alice, mut bob) = established();
    let batch = send_batch(&mut alice, MAX_GAP + 2);
    // Index MAX_GAP + 1 is one past the limit: refused, and the session is unharmed.
    assert!(matches!(
        receive(&mut bob, &batch[MAX_GAP + 1].2),
        Err(OtrError::Frame(FrameError::GapTooLarge))
    ));
    // Index MAX_GAP is exactly at the limit: it decrypts.
    let (id, text, packet) = &batch[MAX_GAP];
    assert_eq!(
        receive(&mut bob, packet).unwrap(),
        vec![(*id, text.clone())]
    );
    // Now the refused one is within reach and decrypts; the far past is gone.
    let (id, text, packet) = &batch[MAX_GAP + 1];
    assert_eq!(
        receive(&mut bob, packet).unwrap(),
        vec![(*id, text.clone())]
    );
    assert!(receive(&mut bob, &batch[0].2).is_err());
    // The last 40 skipped ones are still there.
    let (id, text, packet) = &batch[MAX_GAP - 1];
    assert_eq!(
        receive(&mut bob, packet).unwrap(),
        vec![(*id, text.clone())]
    );
}

/// Alice sends one message the relay holds back, then `rounds` round trips (each makes Alice start
/// a new sending chain); then the held-back message is delivered.
fn held_back_across_round_trips(rounds: usize) -> (Received, Peer, Peer) {
    let (mut alice, mut bob) = established();
    let (_, held_back) = alice.session.send_text("held back").unwrap();
    for round in 0..rounds {
        let (_, to_bob) = alice.session.send_text(&format!("a{round}")).unwrap();
        let acks = bob.try_act(|s, k| s.receive(k, &to_bob.encode())).unwrap();
        for ack in acks {
            alice.try_act(|s, k| s.receive(k, &ack.encode())).unwrap();
        }
    }
    (receive(&mut bob, &held_back), alice, bob)
}

#[test]
fn messages_from_more_than_five_chains_ago_are_refused_and_later_ones_decrypt() {
    // Within five receiving chains the held-back message still decrypts.
    let (result, _, _) = held_back_across_round_trips(4);
    assert_eq!(result.unwrap().len(), 1);
    // Six chains later its chain is gone: a typed error, and the session goes on.
    let (result, mut alice, mut bob) = held_back_across_round_trips(6);
    assert!(matches!(result, Err(OtrError::Frame(_))));
    let (id, later) = alice.session.send_text("later").unwrap();
    assert_eq!(
        receive(&mut bob, &later).unwrap(),
        vec![(id, "later".to_owned())]
    );
}
