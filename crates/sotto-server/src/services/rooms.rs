//! Rooms service: direct messages (get-or-create, idempotent), multi-user direct messages and
//! named private groups with invite / leave / kick. Owns the tables `rooms` and `members`.

use sotto_api::realtime::ServerEvent;
use sotto_api::rest::{Room, RoomKind};
use sotto_api::{ErrorCode, RoomId, UserId};

use crate::error::{ApiError, ApiResult};
use crate::services::accounts::{Accounts, Caller};
use crate::services::events;
use crate::storage::{Db, Tx, WriteOutbox, now_ms};

/// The rooms service.
#[derive(Clone)]
pub struct Rooms {
    db: Db,
    accounts: Accounts,
}

fn kind_str(k: RoomKind) -> &'static str {
    match k {
        RoomKind::Dm => "dm",
        RoomKind::MultiDm => "multi_dm",
        RoomKind::Group => "group",
    }
}

async fn reload(tx: &mut dyn Tx, room: RoomId) -> ApiResult<Room> {
    tx.load_room(room)
        .await?
        .ok_or_else(|| ApiError::internal("room vanished"))
}

async fn announce_joined(
    tx: &mut dyn Tx,
    outbox: &mut WriteOutbox,
    room_id: RoomId,
    user_id: UserId,
) -> ApiResult<()> {
    let room = reload(tx, room_id).await?;
    let ev = ServerEvent::MemberJoined {
        seq: 0,
        room,
        user_id,
    };
    events::append(tx, outbox, room_id, None, None, ev).await?;
    Ok(())
}

impl Rooms {
    /// Builds the service.
    pub fn new(db: Db, accounts: Accounts) -> Self {
        Rooms { db, accounts }
    }

    /// Whether `user` is a member of `room`.
    pub async fn is_member(&self, room: RoomId, user: UserId) -> ApiResult<bool> {
        self.db.is_member(room, user).await
    }

    /// `not_found` unless `user` is a member (never revealing whether the room exists).
    pub async fn require_member(&self, room: RoomId, user: UserId) -> ApiResult<()> {
        if self.is_member(room, user).await? {
            Ok(())
        } else {
            Err(ApiError::not_found("room"))
        }
    }

    /// [`Rooms::require_member`] inside a writer job: the check reads the same transaction the
    /// job writes in, so it costs no extra round trip and sees no stale membership.
    pub async fn require_member_tx(tx: &mut dyn Tx, room: RoomId, user: UserId) -> ApiResult<()> {
        if tx.member_exists(room, user).await? {
            Ok(())
        } else {
            Err(ApiError::not_found("room"))
        }
    }

    /// Members of a room.
    pub async fn members(&self, room: RoomId) -> ApiResult<Vec<UserId>> {
        self.db.members(room).await
    }

    /// Everyone who shares at least one room with `user` (including `user`).
    pub async fn co_members(&self, user: UserId) -> ApiResult<Vec<UserId>> {
        let mut v = self.db.co_members(user).await?;
        if !v.contains(&user) {
            v.push(user);
        }
        Ok(v)
    }

    /// A room the caller is in.
    pub async fn get(&self, caller: &Caller, room: RoomId) -> ApiResult<Room> {
        self.require_member(room, caller.user_id).await?;
        self.db
            .room(room)
            .await?
            .ok_or_else(|| ApiError::not_found("room"))
    }

    /// The caller's rooms (without last message / unread, which the messages service adds).
    pub async fn list(&self, caller: &Caller) -> ApiResult<Vec<Room>> {
        let ids = self.db.room_ids_of(caller.user_id).await?;
        let mut rooms = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(r) = self.db.room(id).await? {
                rooms.push(r);
            }
        }
        Ok(rooms)
    }

    async fn require_active_users(&self, ids: &[UserId]) -> ApiResult<()> {
        for id in ids {
            match self.accounts.user(*id).await? {
                Some(u) if !u.deactivated => {}
                _ => return Err(ApiError::not_found("user")),
            }
        }
        Ok(())
    }

    /// Gets or creates the room whose fixed member set is `members` (DMs and multi-user DMs).
    /// Writes are serialised and `member_key` is unique, so concurrent calls for the same
    /// people always return the same room.
    async fn get_or_create_fixed(
        &self,
        kind: RoomKind,
        mut members: Vec<UserId>,
    ) -> ApiResult<Room> {
        members.sort_unstable();
        members.dedup();
        let key = members
            .iter()
            .map(|m| m.to_string())
            .collect::<Vec<_>>()
            .join(",");
        let key = format!("{}:{key}", kind_str(kind));
        self.db
            .write(move |tx, outbox| {
                Box::pin(async move {
                    let id = match tx.room_by_key(&key).await? {
                        Some(id) => id,
                        None => {
                            let now = now_ms();
                            let id = tx
                                .insert_room(kind_str(kind), None, None, Some(&key), now)
                                .await?;
                            for m in &members {
                                tx.insert_member(id, *m, now).await?;
                            }
                            for m in &members {
                                announce_joined(tx, outbox, id, *m).await?;
                            }
                            id
                        }
                    };
                    reload(tx, id).await
                })
            })
            .await
    }

    /// Gets or creates the 1:1 DM between the caller and `other`.
    pub async fn dm(&self, caller: &Caller, other: UserId) -> ApiResult<Room> {
        if other == caller.user_id {
            return Err(ApiError::new(
                ErrorCode::InvalidInput,
                "a DM needs another user",
            ));
        }
        self.require_active_users(&[other]).await?;
        self.get_or_create_fixed(RoomKind::Dm, vec![caller.user_id, other])
            .await
    }

    /// Gets or creates the multi-user DM of the caller and `others` (3+ people in all).
    pub async fn multi_dm(&self, caller: &Caller, others: Vec<UserId>) -> ApiResult<Room> {
        let mut all = others;
        all.push(caller.user_id);
        all.sort_unstable();
        all.dedup();
        if all.len() < 3 || all.len() > 50 {
            return Err(ApiError::new(
                ErrorCode::InvalidInput,
                "a multi-user DM has 3 to 50 people including you",
            ));
        }
        self.require_active_users(&all).await?;
        self.get_or_create_fixed(RoomKind::MultiDm, all).await
    }

    /// Creates a group owned by the caller.
    pub async fn create_group(
        &self,
        caller: &Caller,
        name: String,
        members: Vec<UserId>,
    ) -> ApiResult<Room> {
        let name = name.trim().to_string();
        if name.is_empty() || name.chars().count() > 80 || name.chars().any(char::is_control) {
            return Err(ApiError::new(
                ErrorCode::InvalidInput,
                "group names are 1-80 printable characters",
            ));
        }
        let mut all = members;
        all.retain(|m| *m != caller.user_id);
        all.sort_unstable();
        all.dedup();
        if all.len() > 1000 {
            return Err(ApiError::new(ErrorCode::InvalidInput, "too many members"));
        }
        self.require_active_users(&all).await?;
        all.insert(0, caller.user_id);
        let owner = caller.user_id;
        self.db
            .write(move |tx, outbox| {
                Box::pin(async move {
                    let now = now_ms();
                    let id = tx
                        .insert_room("group", Some(&name), Some(owner), None, now)
                        .await?;
                    for m in &all {
                        tx.insert_member(id, *m, now).await?;
                    }
                    for m in &all {
                        announce_joined(tx, outbox, id, *m).await?;
                    }
                    reload(tx, id).await
                })
            })
            .await
    }

    /// Adds `user` to a group the caller is in (any member may invite).
    pub async fn add_member(&self, caller: &Caller, room: RoomId, user: UserId) -> ApiResult<Room> {
        let current = self.get(caller, room).await?;
        if current.kind != RoomKind::Group {
            return Err(ApiError::new(
                ErrorCode::NotAllowed,
                "only groups take new members",
            ));
        }
        self.require_active_users(&[user]).await?;
        self.db
            .write(move |tx, outbox| {
                Box::pin(async move {
                    if !tx.member_exists(room, user).await? {
                        tx.insert_member(room, user, now_ms()).await?;
                        announce_joined(tx, outbox, room, user).await?;
                    }
                    reload(tx, room).await
                })
            })
            .await
    }

    /// Removes `user` from a group: the caller leaving, or the owner kicking someone.
    pub async fn remove_member(
        &self,
        caller: &Caller,
        room: RoomId,
        user: UserId,
    ) -> ApiResult<()> {
        let current = self.get(caller, room).await?;
        if current.kind != RoomKind::Group {
            return Err(ApiError::new(
                ErrorCode::NotAllowed,
                "direct messages have fixed members",
            ));
        }
        let kicked = user != caller.user_id;
        if kicked && current.owner_id != Some(caller.user_id) {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                "only the owner removes members",
            ));
        }
        if !current.members.contains(&user) {
            return Err(ApiError::not_found("member"));
        }
        self.db
            .write(move |tx, outbox| {
                Box::pin(async move {
                    tx.delete_member(room, user).await?;
                    let ev = ServerEvent::MemberLeft {
                        seq: 0,
                        room_id: room,
                        user_id: user,
                        kicked,
                    };
                    events::append(tx, outbox, room, None, Some(user), ev).await?;
                    Ok(())
                })
            })
            .await
    }
}
