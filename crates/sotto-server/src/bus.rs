//! The realtime bus: how events reach connections, wherever they are.
//!
//! Services publish [`BusMessage`]s; every node's [`crate::realtime::Hub`] subscribes and
//! delivers to the connections it holds. The in-process implementation is a broadcast channel;
//! a multi-node deployment puts NATS behind the same trait (core NATS is non-persistent, which
//! suits ephemeral events).
//!
//! **Invariant:** the bus never persists anything. Stored events reach it only *after* the
//! writer committed them; ephemeral frames reach it and nothing else.

use std::sync::{Arc, OnceLock};

use sotto_api::{RoomId, Seq, SessionId, UserId};
use tokio::sync::broadcast;

/// A frame ready to go on a socket, serialised once for every recipient.
#[derive(Debug, Clone)]
pub enum Frame {
    /// A JSON text frame. `seq` is set for stored events (used to drop duplicates after
    /// catch-up).
    Text {
        /// The JSON.
        json: Arc<str>,
        /// Stored-event position.
        seq: Option<Seq>,
    },
    /// A binary (ephemeral) frame: reference-counted bytes that go to the socket as they are
    /// (no copy per recipient or per hop).
    Binary(bytes::Bytes),
}

/// A map looked up for every relayed or delivered frame (connections, OTR sessions): hashed
/// with foldhash, seeded per map, rather than SipHash. Connection ids are server-chosen random;
/// session ids are the client's, but exist only within the offer rate limit.
pub type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// Who a disconnect order is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisconnectTarget {
    /// Every connection of a session (logout, revoke).
    Session(SessionId),
    /// Every connection of a user (deactivation).
    User(UserId),
}

/// Something published on the bus.
#[derive(Debug, Clone)]
pub enum BusMessage {
    /// A committed stored event of a room. `recipients` are the members as of the event's own
    /// transaction (plus whoever must learn of it besides them, e.g. someone just removed), so
    /// delivery needs no lookup and sees exactly the membership the event was written under.
    Room {
        /// Room.
        room_id: RoomId,
        /// Who receives it.
        recipients: Arc<[UserId]>,
        /// The event.
        frame: Frame,
    },
    /// Live-only frame for every connection of a user.
    User {
        /// Recipient.
        user_id: UserId,
        /// Frame.
        frame: Frame,
    },
    /// Frame for exactly one connection.
    Connection {
        /// Recipient connection id.
        connection_id: Arc<str>,
        /// Frame.
        frame: Frame,
    },
    /// Live-only frame for every connection.
    Everyone {
        /// Frame.
        frame: Frame,
    },
    /// Close connections now.
    Disconnect {
        /// Whose.
        target: DisconnectTarget,
        /// WebSocket close code (see `sotto_api::realtime::close`).
        code: u16,
        /// Close reason.
        reason: &'static str,
    },
    /// A connection opened (`resumed`: it took over the id of one that dropped abnormally
    /// within the grace period).
    ConnectionOpened {
        /// Connection.
        connection_id: Arc<str>,
        /// Its user.
        user_id: UserId,
        /// Whether it resumed a dropped connection's id.
        resumed: bool,
    },
    /// A connection ended. `clean` is true when the client closed the WebSocket properly (tab
    /// closed or reloaded), false for an abnormal drop (network loss, heartbeat timeout,
    /// slow-consumer cut-off). The off-the-record relay reacts differently to the two.
    ConnectionClosed {
        /// Connection.
        connection_id: Arc<str>,
        /// Its user.
        user_id: UserId,
        /// Clean close or abnormal drop.
        clean: bool,
    },
}

/// The connections of this node, as a place frames for exactly one connection can be handed
/// to directly (implemented by [`crate::realtime::Hub`]).
pub trait LocalConnections: Send + Sync + 'static {
    /// Queues `frame` for the connection if it is open on this node (never waits: a full queue
    /// cuts it off). False when it is not here.
    fn deliver_to(&self, connection_id: &str, frame: Frame) -> bool;
}

/// Fan-out of realtime messages between services and connections.
pub trait Bus: Send + Sync + 'static {
    /// Publishes to every subscriber (never blocks, never stores).
    fn publish(&self, message: BusMessage);
    /// A new subscription, receiving everything published from now on.
    fn subscribe(&self) -> broadcast::Receiver<Arc<BusMessage>>;
    /// Sends a frame to exactly one connection, wherever it is: by default a
    /// [`BusMessage::Connection`]. An implementation may hand it straight to the connection's
    /// queue when the connection is on this node, which is what the off-the-record relay's
    /// frames need (thousands a second, each for one connection). Frames sent this way to one
    /// connection arrive in the order they were sent; they are not ordered against other
    /// bus messages (nothing relies on that: stored events carry their own `seq`).
    fn to_connection(&self, connection_id: Arc<str>, frame: Frame) {
        self.publish(BusMessage::Connection {
            connection_id,
            frame,
        });
    }
}

/// In-process bus: one broadcast channel, and the node's connections for frames addressed to
/// exactly one of them.
pub struct InProcessBus {
    tx: broadcast::Sender<Arc<BusMessage>>,
    /// Set once the hub exists: frames for one connection then skip the broadcast (no
    /// allocation for the message, no wake-up of every subscriber, no second hop through the
    /// dispatcher task).
    local: OnceLock<Arc<dyn LocalConnections>>,
}

impl std::fmt::Debug for InProcessBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InProcessBus")
            .field("local", &self.local.get().is_some())
            .finish_non_exhaustive()
    }
}

impl InProcessBus {
    /// A bus buffering up to `capacity` messages per lagging subscriber.
    pub fn new(capacity: usize) -> Self {
        let (tx, _) = broadcast::channel(capacity);
        InProcessBus {
            tx,
            local: OnceLock::new(),
        }
    }

    /// Hands frames for one connection directly to this node's connections from now on (the
    /// first call wins). In one process every connection is local, so a frame for a
    /// connection that is not there has nowhere else to go, as with the dispatcher.
    pub fn attach_local(&self, local: Arc<dyn LocalConnections>) {
        let _ = self.local.set(local);
    }
}

impl Bus for InProcessBus {
    fn publish(&self, message: BusMessage) {
        // No subscriber is not an error (e.g. the admin CLI).
        let _ = self.tx.send(Arc::new(message));
    }

    fn subscribe(&self) -> broadcast::Receiver<Arc<BusMessage>> {
        self.tx.subscribe()
    }

    fn to_connection(&self, connection_id: Arc<str>, frame: Frame) {
        match self.local.get() {
            Some(local) => {
                local.deliver_to(&connection_id, frame);
            }
            None => self.publish(BusMessage::Connection {
                connection_id,
                frame,
            }),
        }
    }
}
