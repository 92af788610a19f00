//! A two-party harness: each peer has an identity, a trust store and an `OtrSession`; the test
//! plays the relay by moving packets between them (and can drop, reorder or rewrite them).

#![allow(dead_code, unreachable_pub)]

use sotto_crypto::backup::{KdfParams, Passphrase, create_backup};
use sotto_crypto::identity::{Identity, OtrIdentity, PublicIdentity};
use sotto_crypto::otr::{OtrEvent, OtrKeys, OtrSession, OtrState, Packet, Step};
use sotto_crypto::trust::TrustStore;

pub const ROOM: &str = "room-1";

pub struct Peer {
    pub user_id: String,
    pub identity: Identity,
    pub otr: OtrIdentity,
    pub trust: TrustStore,
    pub session: OtrSession,
    pub events: Vec<OtrEvent>,
}

impl Peer {
    pub fn new(user_id: &str, peer_user_id: &str) -> Self {
        let passphrase = Passphrase::generate().unwrap();
        let (_, unlocked) = create_backup(
            Identity::generate(),
            &passphrase,
            KdfParams::INSECURE_FOR_TESTS,
        )
        .unwrap();
        Self {
            user_id: user_id.to_owned(),
            identity: unlocked.identity,
            otr: unlocked.otr,
            trust: TrustStore::new(),
            session: OtrSession::new(ROOM, user_id, peer_user_id).unwrap(),
            events: Vec::new(),
        }
    }

    pub fn public(&self) -> PublicIdentity {
        self.identity.public()
    }

    pub fn keys(&mut self) -> OtrKeys<'_> {
        OtrKeys {
            identity: &mut self.otr,
            trust: &self.trust,
        }
    }

    /// Runs an action and keeps its events; returns the packets to relay.
    pub fn act(
        &mut self,
        action: impl FnOnce(&mut OtrSession, OtrKeys<'_>) -> Result<Step, sotto_crypto::otr::OtrError>,
    ) -> Vec<Packet> {
        let keys = OtrKeys {
            identity: &mut self.otr,
            trust: &self.trust,
        };
        let step = action(&mut self.session, keys).unwrap();
        self.events.extend(step.events);
        step.send
    }

    /// Runs an action that may fail; keeps its events on success.
    pub fn try_act(
        &mut self,
        action: impl FnOnce(&mut OtrSession, OtrKeys<'_>) -> Result<Step, sotto_crypto::otr::OtrError>,
    ) -> Result<Vec<Packet>, sotto_crypto::otr::OtrError> {
        let keys = OtrKeys {
            identity: &mut self.otr,
            trust: &self.trust,
        };
        let step = action(&mut self.session, keys)?;
        self.events.extend(step.events);
        Ok(step.send)
    }

    /// Delivers packets from the relay; returns the answers.
    pub fn deliver(&mut self, packets: Vec<Packet>) -> Vec<Packet> {
        let mut out = Vec::new();
        for packet in packets {
            let keys = OtrKeys {
                identity: &mut self.otr,
                trust: &self.trust,
            };
            let step = self.session.receive(keys, &packet.encode()).unwrap();
            self.events.extend(step.events);
            out.extend(step.send);
        }
        out
    }

    pub fn state(&self) -> OtrState {
        self.session.state()
    }

    pub fn texts(&self) -> Vec<(u64, String)> {
        self.events
            .iter()
            .filter_map(|e| match e {
                OtrEvent::Message { id, text } => Some((*id, text.to_string())),
                _ => None,
            })
            .collect()
    }

    pub fn delivered(&self) -> Vec<u64> {
        self.events
            .iter()
            .filter_map(|e| match e {
                OtrEvent::Delivered { id } => Some(*id),
                _ => None,
            })
            .collect()
    }

    pub fn invitations(&self) -> usize {
        self.events
            .iter()
            .filter(|e| matches!(e, OtrEvent::Invited { .. }))
            .count()
    }
}

/// Alice and Bob with each other's keys pinned (as after looking them up in the directory).
pub fn pair() -> (Peer, Peer) {
    let mut alice = Peer::new("alice", "bob");
    let mut bob = Peer::new("bob", "alice");
    alice.trust.observe("bob", bob.public());
    bob.trust.observe("alice", alice.public());
    (alice, bob)
}

/// Relays packets back and forth until both sides are quiet.
pub fn pump(a: &mut Peer, b: &mut Peer, mut to_b: Vec<Packet>) {
    let mut to_a = Vec::new();
    for _ in 0..20 {
        if to_a.is_empty() && to_b.is_empty() {
            return;
        }
        to_a.extend(b.deliver(std::mem::take(&mut to_b)));
        to_b.extend(a.deliver(std::mem::take(&mut to_a)));
    }
    panic!("the handshake did not settle");
}

/// Alice starts, Bob accepts: both established.
pub fn established() -> (Peer, Peer) {
    let (mut alice, mut bob) = pair();
    let offer = alice.act(|s, k| s.start(k));
    bob.deliver(offer);
    let accept = bob.act(|s, k| s.accept(k));
    pump(&mut bob, &mut alice, accept);
    assert_eq!(alice.state(), OtrState::Established);
    assert_eq!(bob.state(), OtrState::Established);
    (alice, bob)
}
