//! The realtime hub: the registry of this node's open connections and the dispatcher that
//! takes [`BusMessage`]s off the bus and puts frames into the right connections' queues.
//!
//! Every connection has a **bounded** outgoing queue ([`ConnHandle`]). Delivery never waits:
//! when a queue is full, that connection is cut off (close code `SLOW_CONSUMER`) and everyone
//! else carries on. The queue holds no buffer while it is empty, so an idle connection costs
//! nothing for it (a channel would allocate its first block of slots up front).
//! Room events go to every connection of every member; user events to every connection of one
//! user; connection events to exactly one connection.
//!
//! While a connection replays the stored-event log (catch-up), live *stored* events are not
//! queued for it: they are in the log, and the replay reads the log once more after switching
//! back to live delivery ([`ConnHandle::finish_catch_up`]). So a long replay in a busy room cannot fill the
//! queue of a client that keeps up.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, Instant};

use futures_util::task::AtomicWaker;
use sotto_api::realtime::close;
use sotto_api::{SessionId, UserId};
use tokio::sync::{broadcast, oneshot};

use crate::bus::{Bus, BusMessage, DisconnectTarget, FastMap, Frame, LocalConnections};
use crate::metrics::METRICS;

/// Why a connection is being closed by the server.
pub type CloseOrder = (u16, &'static str);

/// A queue that has held more frames than this gives its buffer back once drained: a burst
/// does not stay resident for the connection's life.
const QUEUE_KEEP: usize = 64;

/// This node's view of one open connection, and its outgoing queue.
pub struct ConnHandle {
    /// Owner.
    pub user_id: UserId,
    /// Session.
    pub session_id: SessionId,
    /// Frames waiting for the connection's task (at most `capacity`).
    queue: Mutex<VecDeque<Frame>>,
    /// The queue's length, readable without the lock: the connection's task looks for more
    /// frames after every one it writes and on every turn of its loop, and the queue is
    /// usually empty.
    queued_len: AtomicUsize,
    capacity: usize,
    /// Wakes the connection's task when a frame is queued. An `AtomicWaker`, not a `Notify`:
    /// the task polls `recv` on every turn of its loop and usually gives it up for a client
    /// frame, and a `Notify` waiter costs a lock to register and another to drop each time.
    queued: AtomicWaker,
    kill: Mutex<Option<oneshot::Sender<CloseOrder>>>,
    /// True while the connection replays the log: live stored events are then skipped.
    catching_up: AtomicBool,
}

impl ConnHandle {
    /// Orders the connection closed (first order wins).
    pub fn close(&self, order: CloseOrder) {
        if let Some(k) = self.kill.lock().ok().and_then(|mut k| k.take()) {
            let _ = k.send(order);
        }
    }

    /// Queues a frame without waiting; a full queue cuts the connection off. A stored event
    /// (one with a `seq`) is skipped while the connection is catching up: the replay reads it
    /// from the log.
    pub fn deliver(&self, frame: Frame) {
        if matches!(frame, Frame::Text { seq: Some(_), .. })
            && self.catching_up.load(Ordering::SeqCst)
        {
            return;
        }
        if !self.push(frame) {
            if self.kill.lock().map(|k| k.is_some()).unwrap_or(false) {
                METRICS.slow_consumers.inc();
            }
            self.close((close::SLOW_CONSUMER, "slow consumer"));
        }
    }

    /// Queues an answer to something the connection sent. A full queue drops it: that client
    /// is about to be cut off anyway.
    pub fn reply(&self, frame: Frame) {
        let _ = self.push(frame);
    }

    /// Queues a frame unless the queue is full (false).
    fn push(&self, frame: Frame) -> bool {
        {
            let Ok(mut queue) = self.queue.lock() else {
                return false;
            };
            if queue.len() >= self.capacity {
                return false;
            }
            queue.push_back(frame);
            self.queued_len.store(queue.len(), Ordering::SeqCst);
        }
        self.queued.wake();
        true
    }

    /// The next queued frame, if any (never waits).
    pub fn try_recv(&self) -> Option<Frame> {
        // A frame being pushed right now may be missed here; its push wakes `recv` after it.
        if self.queued_len.load(Ordering::SeqCst) == 0 {
            return None;
        }
        let mut queue = self.queue.lock().ok()?;
        let frame = queue.pop_front();
        self.queued_len.store(queue.len(), Ordering::SeqCst);
        if queue.is_empty() && queue.capacity() > QUEUE_KEEP {
            *queue = VecDeque::new();
        }
        frame
    }

    /// The next queued frame, waiting for one. Only the connection's own task calls this (an
    /// `AtomicWaker` holds one waker).
    pub async fn recv(&self) -> Frame {
        std::future::poll_fn(|cx| {
            if let Some(frame) = self.try_recv() {
                return Poll::Ready(frame);
            }
            self.queued.register(cx.waker());
            // A frame pushed between the first look and the registration woke nobody: look again.
            match self.try_recv() {
                Some(frame) => Poll::Ready(frame),
                None => Poll::Pending,
            }
        })
        .await
    }

    /// Ends the catch-up phase: from now on live stored events are queued again. Every stored
    /// event skipped before was committed before this call, so a log read started after it
    /// sees them all.
    pub fn finish_catch_up(&self) {
        self.catching_up.store(false, Ordering::SeqCst);
    }
}

/// Who reserved a dropped connection id, and since when.
type Reservation = (SessionId, Instant);

/// The connection registry of this node.
#[derive(Clone)]
pub struct Hub {
    conns: Arc<Mutex<FastMap<Arc<str>, Arc<ConnHandle>>>>,
    by_user: Arc<Mutex<FastMap<UserId, Vec<Arc<str>>>>>,
    /// Ids of connections that dropped abnormally, reserved for their session until the grace
    /// period ends.
    dropped: Arc<Mutex<FastMap<Arc<str>, Reservation>>>,
}

/// What a connection task gets back from [`Hub::register`].
pub struct Registration {
    /// The connection's handle: its queue (frames to send, and answers to what the client
    /// sent) and its catch-up switch.
    pub conn: Arc<ConnHandle>,
    /// Fires when the server wants the connection closed.
    pub kill: oneshot::Receiver<CloseOrder>,
}

impl Hub {
    /// An empty hub.
    pub fn new() -> Self {
        Hub {
            conns: Arc::default(),
            by_user: Arc::default(),
            dropped: Arc::default(),
        }
    }

    /// Registers a connection with a queue of `queue` frames, in its catch-up phase.
    pub fn register(
        &self,
        id: Arc<str>,
        user_id: UserId,
        session_id: SessionId,
        queue: usize,
    ) -> Registration {
        let (ktx, krx) = oneshot::channel();
        let handle = Arc::new(ConnHandle {
            user_id,
            session_id,
            queue: Mutex::new(VecDeque::new()),
            queued_len: AtomicUsize::new(0),
            capacity: queue.max(1),
            queued: AtomicWaker::new(),
            kill: Mutex::new(Some(ktx)),
            catching_up: AtomicBool::new(true),
        });
        if let Ok(mut c) = self.conns.lock() {
            c.insert(id.clone(), handle.clone());
        }
        if let Ok(mut u) = self.by_user.lock() {
            u.entry(user_id).or_default().push(id);
        }
        Registration {
            conn: handle,
            kill: krx,
        }
    }

    /// Removes a connection.
    pub fn unregister(&self, id: &str) {
        let removed = self.conns.lock().ok().and_then(|mut c| c.remove(id));
        if let (Some(h), Ok(mut u)) = (removed, self.by_user.lock())
            && let Some(v) = u.get_mut(&h.user_id)
        {
            {
                v.retain(|c| &**c != id);
                if v.is_empty() {
                    u.remove(&h.user_id);
                }
            }
        }
    }

    /// The owner of a connection on this node.
    pub fn owner(&self, id: &str) -> Option<UserId> {
        self.conns.lock().ok()?.get(id).map(|h| h.user_id)
    }

    /// Reserves the id of a connection that dropped abnormally for its session.
    pub fn remember_drop(&self, id: Arc<str>, session: SessionId, grace: Duration) {
        if let Ok(mut d) = self.dropped.lock() {
            d.retain(|_, (_, at)| at.elapsed() < grace);
            d.insert(id, (session, Instant::now()));
        }
    }

    /// Takes a reserved id back for `session` if it dropped less than `grace` ago and is not
    /// open. Returns the id to use.
    pub fn claim(&self, id: &str, session: SessionId, grace: Duration) -> Option<Arc<str>> {
        let mut d = self.dropped.lock().ok()?;
        let (key, (owner, at)) = d.get_key_value(id).map(|(k, v)| (k.clone(), *v))?;
        if owner != session || at.elapsed() >= grace || self.owner(id).is_some() {
            return None;
        }
        d.remove(id);
        Some(key)
    }

    /// Orders every connection closed (shutdown).
    pub fn close_all(&self, order: CloseOrder) {
        for h in self.all() {
            h.close(order);
        }
    }

    /// Number of open connections of a user on this node.
    pub fn user_connections(&self, user: UserId) -> usize {
        self.by_user
            .lock()
            .map(|u| u.get(&user).map_or(0, Vec::len))
            .unwrap_or(0)
    }

    fn handles_of(&self, user: UserId) -> Vec<Arc<ConnHandle>> {
        let ids = self
            .by_user
            .lock()
            .map(|u| u.get(&user).cloned().unwrap_or_default())
            .unwrap_or_default();
        let Ok(c) = self.conns.lock() else {
            return Vec::new();
        };
        ids.iter().filter_map(|i| c.get(i).cloned()).collect()
    }

    fn all(&self) -> Vec<Arc<ConnHandle>> {
        self.conns
            .lock()
            .map(|c| c.values().cloned().collect())
            .unwrap_or_default()
    }

    fn deliver_user(&self, user: UserId, frame: &Frame) {
        for h in self.handles_of(user) {
            h.deliver(frame.clone());
        }
    }

    /// Runs the dispatcher until the bus closes. Messages are handled one at a time, in bus
    /// order, so stored events reach each connection in `seq` order.
    pub async fn run(self, bus: Arc<dyn Bus>) {
        let mut rx = bus.subscribe();
        loop {
            let msg = match rx.recv().await {
                Ok(m) => m,
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    // Missed events: every connection must catch up from its last seq.
                    tracing::error!(
                        missed = n,
                        "realtime dispatcher lagged; closing connections"
                    );
                    for h in self.all() {
                        h.close((close::SLOW_CONSUMER, "server overloaded; reconnect"));
                    }
                    continue;
                }
                Err(broadcast::error::RecvError::Closed) => break,
            };
            match &*msg {
                BusMessage::Room {
                    recipients, frame, ..
                } => {
                    for user in recipients.iter() {
                        self.deliver_user(*user, frame);
                    }
                }
                BusMessage::User { user_id, frame } => self.deliver_user(*user_id, frame),
                BusMessage::Connection {
                    connection_id,
                    frame,
                } => {
                    self.deliver_to(connection_id, frame.clone());
                }
                BusMessage::Everyone { frame } => {
                    for h in self.all() {
                        h.deliver(frame.clone());
                    }
                }
                BusMessage::Disconnect {
                    target,
                    code,
                    reason,
                } => {
                    let targets: Vec<Arc<ConnHandle>> = match target {
                        DisconnectTarget::User(u) => self.handles_of(*u),
                        DisconnectTarget::Session(s) => self
                            .all()
                            .into_iter()
                            .filter(|h| h.session_id == *s)
                            .collect(),
                    };
                    for h in targets {
                        h.close((*code, reason));
                    }
                }
                BusMessage::ConnectionOpened { .. } | BusMessage::ConnectionClosed { .. } => {}
            }
        }
    }
}

impl LocalConnections for Hub {
    fn deliver_to(&self, connection_id: &str, frame: Frame) -> bool {
        let h = self
            .conns
            .lock()
            .ok()
            .and_then(|c| c.get(connection_id).cloned());
        match h {
            Some(h) => {
                h.deliver(frame);
                true
            }
            None => false,
        }
    }
}

impl Default for Hub {
    fn default() -> Self {
        Hub::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binary(n: u8) -> Frame {
        Frame::Binary(bytes::Bytes::from(vec![n]))
    }

    fn byte(frame: Frame) -> u8 {
        match frame {
            Frame::Binary(b) => b[0],
            Frame::Text { .. } => panic!("a text frame"),
        }
    }

    #[tokio::test]
    async fn the_queue_keeps_order_holds_no_buffer_idle_and_cuts_off_when_full() {
        let hub = Hub::new();
        let mut reg = hub.register("c_1".into(), 1, 1, 100);
        let conn = reg.conn.clone();
        assert_eq!(conn.queue.lock().map(|q| q.capacity()).ok(), Some(0));

        // A burst larger than what is kept: delivered in order, then the buffer is released.
        for n in 0..100 {
            conn.deliver(binary(n));
        }
        assert_eq!(byte(conn.recv().await), 0);
        for n in 1..100 {
            assert_eq!(conn.try_recv().map(byte), Some(n));
        }
        assert!(conn.try_recv().is_none());
        assert_eq!(conn.queue.lock().map(|q| q.capacity()).ok(), Some(0));

        // A frame queued while nobody waits is not lost (the wake-up is kept).
        conn.deliver(binary(7));
        assert_eq!(byte(conn.recv().await), 7);

        // Full: the answer to the client is dropped, a delivery cuts the connection off.
        for n in 0..100 {
            conn.deliver(binary(n));
        }
        conn.reply(binary(200));
        assert!(reg.kill.try_recv().is_err(), "no order yet");
        conn.deliver(binary(201));
        assert_eq!(
            reg.kill.try_recv().ok(),
            Some((close::SLOW_CONSUMER, "slow consumer"))
        );
    }
}
