//! The realtime bus: how events reach connections, wherever they are.
//!
//! Services publish [`BusMessage`]s; every node's [`crate::realtime::Hub`] subscribes and
//! delivers to the connections it holds. The in-process implementation is a broadcast channel;
//! a multi-node deployment puts NATS behind the same trait (core NATS is non-persistent, which
//! suits ephemeral events).
//!
//! **Invariant:** the bus never persists anything. Stored events reach it only *after* the
//! writer committed them; ephemeral frames reach it and nothing else.

use std::sync::Arc;

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
    /// A binary (ephemeral) frame.
    Binary(Arc<[u8]>),
}

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

/// Fan-out of realtime messages between services and connections.
pub trait Bus: Send + Sync + 'static {
    /// Publishes to every subscriber (never blocks, never stores).
    fn publish(&self, message: BusMessage);
    /// A new subscription, receiving everything published from now on.
    fn subscribe(&self) -> broadcast::Receiver<Arc<BusMessage>>;
}

/// In-process bus: one broadcast channel.
#[derive(Debug)]
pub struct InProcessBus {
    tx: broadcast::Sender<Arc<BusMessage>>,
}

impl InProcessBus {
    /// A bus buffering up to `capacity` messages per lagging subscriber.
    pub fn new(capacity: usize) -> Self {
        let (tx, _) = broadcast::channel(capacity);
        InProcessBus { tx }
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
}
