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

/// The presence service.
#[derive(Clone)]
pub struct Presence {
    /// user → connection id → away?
    live: Arc<Mutex<HashMap<UserId, Connections>>>,
    rooms: Rooms,
    bus: Arc<dyn Bus>,
}

fn status_of(conns: Option<&HashMap<Arc<str>, bool>>) -> Status {
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
            live: Arc::default(),
            rooms,
            bus,
        }
    }

    /// Current status of a user.
    pub fn status(&self, user: UserId) -> Status {
        self.live
            .lock()
            .map(|m| status_of(m.get(&user)))
            .unwrap_or(Status::Offline)
    }

    fn change(&self, user: UserId, f: impl FnOnce(&mut HashMap<Arc<str>, bool>)) -> Option<Status> {
        let mut m = self.live.lock().ok()?;
        let before = status_of(m.get(&user));
        let entry = m.entry(user).or_default();
        f(entry);
        if entry.is_empty() {
            m.remove(&user);
        }
        let after = status_of(m.get(&user));
        (before != after).then_some(after)
    }

    /// A connection opened.
    pub async fn connected(&self, user: UserId, conn: Arc<str>) {
        if let Some(s) = self.change(user, |c| {
            c.insert(conn, false);
        }) {
            self.push(user, s).await;
        }
    }

    /// A connection closed.
    pub async fn disconnected(&self, user: UserId, conn: &str) {
        if let Some(s) = self.change(user, |c| {
            c.remove(conn);
        }) {
            self.push(user, s).await;
        }
    }

    /// A connection reports away / back.
    pub async fn set_away(&self, user: UserId, conn: &Arc<str>, away: bool) {
        if let Some(s) = self.change(user, |c| {
            if let Some(a) = c.get_mut(conn) {
                *a = away;
            }
        }) {
            self.push(user, s).await;
        }
    }

    async fn push(&self, user: UserId, status: Status) {
        let Ok(json) = serde_json::to_string(&ServerEvent::Presence {
            user_id: user,
            status,
        }) else {
            return;
        };
        let json: Arc<str> = json.into();
        match self.rooms.co_members(user).await {
            Ok(users) => {
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
            Err(e) => tracing::warn!(error = %e, "presence fan-out failed"),
        }
    }
}
