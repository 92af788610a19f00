//! Presence service: online / away / offline derived from live realtime connections, pushed to
//! everyone who shares a room with the user. Kept in memory (it is a fact about live sockets,
//! not data); a multi-node deployment would aggregate it over the bus.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use sotto_api::UserId;
use sotto_api::realtime::ServerEvent;
use sotto_api::rest::Presence as Status;

use crate::bus::{Bus, BusMessage, Frame};
use crate::services::rooms::Rooms;

/// A user's open connections: id → away?
type Connections = HashMap<Arc<str>, bool>;

#[derive(Default)]
struct State {
    /// user → connection id → away?
    live: HashMap<UserId, Connections>,
    /// The last status published for each user not offline.
    published: HashMap<UserId, Status>,
}

/// The presence service.
///
/// A change is applied under the lock; the co-members to tell are then looked up (a database
/// read, so outside the lock); and back under the lock the *current* status is published if
/// it differs from the last one published. Publications therefore happen in lock order and
/// the last one always reflects the latest state, however the lookups of concurrent changes
/// interleave.
#[derive(Clone)]
pub struct Presence {
    state: Arc<Mutex<State>>,
    rooms: Rooms,
    bus: Arc<dyn Bus>,
}

impl State {
    /// Applies `f` to the user's connections; true if their status now differs from the one
    /// last published.
    fn change(&mut self, user: UserId, f: impl FnOnce(&mut Connections)) -> bool {
        let entry = self.live.entry(user).or_default();
        f(entry);
        if entry.is_empty() {
            self.live.remove(&user);
        }
        self.pending(user).is_some()
    }

    /// The user's current status if it was not published yet.
    fn pending(&self, user: UserId) -> Option<Status> {
        let now = status_of(self.live.get(&user));
        let last = self
            .published
            .get(&user)
            .copied()
            .unwrap_or(Status::Offline);
        (now != last).then_some(now)
    }

    /// The status to publish now (recorded as published), if any.
    fn take_pending(&mut self, user: UserId) -> Option<Status> {
        let status = self.pending(user)?;
        if status == Status::Offline {
            self.published.remove(&user);
        } else {
            self.published.insert(user, status);
        }
        Some(status)
    }
}

fn status_of(conns: Option<&Connections>) -> Status {
    match conns {
        None => Status::Offline,
        Some(c) if c.is_empty() => Status::Offline,
        Some(c) if c.values().all(|away| *away) => Status::Away,
        Some(_) => Status::Online,
    }
}

impl Presence {
    /// Builds the service.
    pub fn new(rooms: Rooms, bus: Arc<dyn Bus>) -> Self {
        Presence {
            state: Arc::default(),
            rooms,
            bus,
        }
    }

    /// Current status of a user.
    pub fn status(&self, user: UserId) -> Status {
        self.state
            .lock()
            .map(|m| status_of(m.live.get(&user)))
            .unwrap_or(Status::Offline)
    }

    fn change(&self, user: UserId, f: impl FnOnce(&mut Connections)) -> bool {
        self.state.lock().is_ok_and(|mut m| m.change(user, f))
    }

    /// A connection opened.
    pub async fn connected(&self, user: UserId, conn: Arc<str>) {
        if self.change(user, |c| {
            c.insert(conn, false);
        }) {
            self.push(user).await;
        }
    }

    /// A connection closed.
    pub async fn disconnected(&self, user: UserId, conn: &str) {
        if self.change(user, |c| {
            c.remove(conn);
        }) {
            self.push(user).await;
        }
    }

    /// A connection reports away / back.
    pub async fn set_away(&self, user: UserId, conn: &Arc<str>, away: bool) {
        if self.change(user, |c| {
            if let Some(a) = c.get_mut(conn) {
                *a = away;
            }
        }) {
            self.push(user).await;
        }
    }

    /// Tells the user's co-members their current status, unless it was already told.
    async fn push(&self, user: UserId) {
        let users = match self.rooms.co_members(user).await {
            Ok(users) => users,
            Err(e) => {
                tracing::warn!(error = %e, "presence fan-out failed");
                return;
            }
        };
        let Ok(mut m) = self.state.lock() else {
            return;
        };
        // Re-read under the lock: a later change may have happened during the lookup.
        let Some(status) = m.take_pending(user) else {
            return;
        };
        let Ok(json) = serde_json::to_string(&ServerEvent::Presence {
            user_id: user,
            status,
        }) else {
            return;
        };
        let json: Arc<str> = json.into();
        for u in users {
            self.bus.publish(BusMessage::User {
                user_id: u,
                frame: Frame::Text {
                    json: json.clone(),
                    seq: None,
                },
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_late_lookup_publishes_the_current_status_not_the_one_it_started_with() {
        let mut st = State::default();
        let conn: Arc<str> = "c1".into();
        // Change 1 (online) starts its co-member lookup...
        assert!(st.change(7, |c| {
            c.insert(conn.clone(), false);
        }));
        // ...change 2 (offline) happens and its lookup finishes first: nothing was ever
        // published, and the user is offline again, so there is nothing to say.
        assert!(!st.change(7, |c| {
            c.remove(&conn);
        }));
        assert_eq!(st.take_pending(7), None);
        // Change 1's lookup finishes last: it must not announce the stale "online".
        assert_eq!(st.take_pending(7), None);

        // Online, then away before the first lookup ends: the first publication already says
        // away, and the second has nothing left to say.
        st.change(7, |c| {
            c.insert(conn.clone(), false);
        });
        st.change(7, |c| {
            c.insert(conn.clone(), true);
        });
        assert_eq!(st.take_pending(7), Some(Status::Away));
        assert_eq!(st.take_pending(7), None);
        assert!(st.change(7, |c| {
            c.remove(&conn);
        }));
        assert_eq!(st.take_pending(7), Some(Status::Offline));
        assert!(st.published.is_empty() && st.live.is_empty());
    }
}
