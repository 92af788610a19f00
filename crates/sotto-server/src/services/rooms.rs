//! Rooms service: direct messages (get-or-create, idempotent), multi-user direct messages and
//! named private groups with invite / leave / kick. Owns the tables `rooms` and `members`.

use sotto_api::realtime::ServerEvent;
use sotto_api::rest::{Room, RoomKind};
use sotto_api::{ErrorCode, RoomId, UserId};
use sqlx::SqliteConnection;

use crate::error::{ApiError, ApiResult};
use crate::services::accounts::{Accounts, Caller};
use crate::services::events;
use crate::storage::{Db, WriteOutbox, now_ms};

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

fn kind_from(s: &str) -> RoomKind {
    match s {
        "dm" => RoomKind::Dm,
        "multi_dm" => RoomKind::MultiDm,
        _ => RoomKind::Group,
    }
}

/// Loads a room with its members.
pub async fn load_room(conn: &mut SqliteConnection, id: RoomId) -> ApiResult<Option<Room>> {
    let row: Option<(i64, String, Option<String>, Option<i64>)> =
        sqlx::query_as("SELECT id, kind, name, owner_id FROM rooms WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?;
    let Some((id, kind, name, owner_id)) = row else {
        return Ok(None);
    };
    let members: Vec<(i64,)> =
        sqlx::query_as("SELECT user_id FROM members WHERE room_id = $1 ORDER BY user_id")
            .bind(id)
            .fetch_all(&mut *conn)
            .await?;
    Ok(Some(Room {
        id,
        kind: kind_from(&kind),
        name,
        owner_id,
        members: members.into_iter().map(|m| m.0).collect(),
        last_message: None,
        unread_count: 0,
    }))
}

async fn add_member_row(
    conn: &mut SqliteConnection,
    room_id: RoomId,
    user_id: UserId,
) -> ApiResult<()> {
    sqlx::query("INSERT INTO members (room_id, user_id, joined_at) VALUES ($1, $2, $3)")
        .bind(room_id)
        .bind(user_id)
        .bind(now_ms())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

async fn announce_joined(
    conn: &mut SqliteConnection,
    outbox: &mut WriteOutbox,
    room_id: RoomId,
    user_id: UserId,
) -> ApiResult<()> {
    let room = load_room(conn, room_id)
        .await?
        .ok_or_else(|| ApiError::internal("room vanished"))?;
    events::append(
        conn,
        outbox,
        room_id,
        None,
        None,
        ServerEvent::MemberJoined {
            seq: 0,
            room,
            user_id,
        },
    )
    .await?;
    Ok(())
}

impl Rooms {
    /// Builds the service.
    pub fn new(db: Db, accounts: Accounts) -> Self {
        Rooms { db, accounts }
    }

    /// Whether `user` is a member of `room`.
    pub async fn is_member(&self, room: RoomId, user: UserId) -> ApiResult<bool> {
        let row: Option<(i64,)> =
            sqlx::query_as("SELECT 1 FROM members WHERE room_id = $1 AND user_id = $2")
                .bind(room)
                .bind(user)
                .fetch_optional(&self.db.read)
                .await?;
        Ok(row.is_some())
    }

    /// `not_found` unless `user` is a member (never revealing whether the room exists).
    pub async fn require_member(&self, room: RoomId, user: UserId) -> ApiResult<()> {
        if self.is_member(room, user).await? {
            Ok(())
        } else {
            Err(ApiError::not_found("room"))
        }
    }

    /// Members of a room.
    pub async fn members(&self, room: RoomId) -> ApiResult<Vec<UserId>> {
        let rows: Vec<(i64,)> = sqlx::query_as("SELECT user_id FROM members WHERE room_id = $1")
            .bind(room)
            .fetch_all(&self.db.read)
            .await?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }

    /// Everyone who shares at least one room with `user` (including `user`).
    pub async fn co_members(&self, user: UserId) -> ApiResult<Vec<UserId>> {
        let rows: Vec<(i64,)> = sqlx::query_as(
            "SELECT DISTINCT b.user_id FROM members a JOIN members b ON a.room_id = b.room_id \
             WHERE a.user_id = $1",
        )
        .bind(user)
        .fetch_all(&self.db.read)
        .await?;
        let mut v: Vec<UserId> = rows.into_iter().map(|r| r.0).collect();
        if !v.contains(&user) {
            v.push(user);
        }
        Ok(v)
    }

    /// A room the caller is in.
    pub async fn get(&self, caller: &Caller, room: RoomId) -> ApiResult<Room> {
        self.require_member(room, caller.user_id).await?;
        let mut conn = self.db.read.acquire().await?;
        load_room(&mut conn, room)
            .await?
            .ok_or_else(|| ApiError::not_found("room"))
    }

    /// The caller's rooms (without last message / unread, which the messages service adds).
    pub async fn list(&self, caller: &Caller) -> ApiResult<Vec<Room>> {
        let ids: Vec<(i64,)> =
            sqlx::query_as("SELECT room_id FROM members WHERE user_id = $1 ORDER BY room_id")
                .bind(caller.user_id)
                .fetch_all(&self.db.read)
                .await?;
        let mut conn = self.db.read.acquire().await?;
        let mut rooms = Vec::with_capacity(ids.len());
        for (id,) in ids {
            if let Some(r) = load_room(&mut conn, id).await? {
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
    /// The writer serialises calls and `member_key` is unique, so concurrent calls for the
    /// same people always return the same room.
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
            .writer
            .write(move |conn, outbox| {
                Box::pin(async move {
                    let existing: Option<(i64,)> =
                        sqlx::query_as("SELECT id FROM rooms WHERE member_key = $1")
                            .bind(&key)
                            .fetch_optional(&mut *conn)
                            .await?;
                    let id = match existing {
                        Some((id,)) => id,
                        None => {
                            let r = sqlx::query(
                                "INSERT INTO rooms (kind, member_key, created_at) VALUES ($1, $2, $3)",
                            )
                            .bind(kind_str(kind))
                            .bind(&key)
                            .bind(now_ms())
                            .execute(&mut *conn)
                            .await?;
                            let id = r.last_insert_rowid();
                            for m in &members {
                                add_member_row(conn, id, *m).await?;
                            }
                            for m in &members {
                                announce_joined(conn, outbox, id, *m).await?;
                            }
                            id
                        }
                    };
                    load_room(conn, id).await?.ok_or_else(|| ApiError::internal("room vanished"))
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
            .writer
            .write(move |conn, outbox| {
                Box::pin(async move {
                    let r = sqlx::query(
                        "INSERT INTO rooms (kind, name, owner_id, created_at) VALUES ('group', $1, $2, $3)",
                    )
                    .bind(&name)
                    .bind(owner)
                    .bind(now_ms())
                    .execute(&mut *conn)
                    .await?;
                    let id = r.last_insert_rowid();
                    for m in &all {
                        add_member_row(conn, id, *m).await?;
                    }
                    for m in &all {
                        announce_joined(conn, outbox, id, *m).await?;
                    }
                    load_room(conn, id).await?.ok_or_else(|| ApiError::internal("room vanished"))
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
            .writer
            .write(move |conn, outbox| {
                Box::pin(async move {
                    let present: Option<(i64,)> =
                        sqlx::query_as("SELECT 1 FROM members WHERE room_id = $1 AND user_id = $2")
                            .bind(room)
                            .bind(user)
                            .fetch_optional(&mut *conn)
                            .await?;
                    if present.is_none() {
                        add_member_row(conn, room, user).await?;
                        announce_joined(conn, outbox, room, user).await?;
                    }
                    load_room(conn, room)
                        .await?
                        .ok_or_else(|| ApiError::internal("room vanished"))
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
            .writer
            .write(move |conn, outbox| {
                Box::pin(async move {
                    sqlx::query("DELETE FROM members WHERE room_id = $1 AND user_id = $2")
                        .bind(room)
                        .bind(user)
                        .execute(&mut *conn)
                        .await?;
                    events::append(
                        conn,
                        outbox,
                        room,
                        None,
                        Some(user),
                        ServerEvent::MemberLeft {
                            seq: 0,
                            room_id: room,
                            user_id: user,
                            kicked,
                        },
                    )
                    .await?;
                    Ok(())
                })
            })
            .await
    }
}
