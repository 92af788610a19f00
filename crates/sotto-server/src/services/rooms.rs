//! Rooms service: direct messages (get-or-create, idempotent), multi-user direct messages and
//! named private groups with invite / leave / kick, ordinary or end-to-end encrypted. Owns the
//! tables `rooms`, `members` and `room_changes` (the membership history).
//!
//! Every membership change (creation, add, remove, leave) is recorded in `room_changes`, and
//! every change after creation advances the room's epoch: an encrypted room then needs a new
//! room key before anyone may write (see the room-keys service), so nobody writes under a key a
//! removed member holds, and clients can show every change (a member the server adds on its own
//! is visible).

use sotto_api::realtime::ServerEvent;
use sotto_api::rest::{MembershipChange, MembershipChangeKind, Room, RoomKind};
use sotto_api::{ErrorCode, RoomId, UserId};

use crate::error::{ApiError, ApiResult};
use crate::services::accounts::{Accounts, Caller};
use crate::services::events;
use crate::services::settings::Settings;
use crate::storage::{Db, Tx, WriteOutbox, now_ms};

/// The rooms service.
#[derive(Clone)]
pub struct Rooms {
    db: Db,
    accounts: Accounts,
    settings: Settings,
}

/// Records a membership change at the room's epoch after it.
async fn record_change(
    tx: &mut dyn Tx,
    room: RoomId,
    epoch: i64,
    kind: MembershipChangeKind,
    user_id: UserId,
    actor_id: UserId,
    at: i64,
) -> ApiResult<()> {
    let change = MembershipChange {
        epoch,
        kind,
        user_id,
        actor_id: Some(actor_id),
        at,
    };
    tx.insert_room_change(room, &change).await
}

/// Records a new room's initial members at epoch 0: the creator `created` it, the others were
/// `added` by the creator.
async fn record_creation(
    tx: &mut dyn Tx,
    room: RoomId,
    creator: UserId,
    members: &[UserId],
    at: i64,
) -> ApiResult<()> {
    record_change(
        tx,
        room,
        0,
        MembershipChangeKind::Created,
        creator,
        creator,
        at,
    )
    .await?;
    for m in members.iter().filter(|m| **m != creator) {
        record_change(tx, room, 0, MembershipChangeKind::Added, *m, creator, at).await?;
    }
    Ok(())
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
        room: Box::new(room),
        user_id,
    };
    events::append(tx, outbox, room_id, None, None, ev).await?;
    Ok(())
}

impl Rooms {
    /// Builds the service.
    pub fn new(db: Db, accounts: Accounts, settings: Settings) -> Self {
        Rooms {
            db,
            accounts,
            settings,
        }
    }

    /// Whether a new room is encrypted: as asked, or else as the admin setting `default_key`
    /// says. Asking for an encrypted room while E2E is off is refused; the setting alone then
    /// yields an ordinary room.
    fn encrypted(&self, asked: Option<bool>, default_key: &str) -> ApiResult<bool> {
        let enabled = self.settings.flag("e2e.enabled");
        match asked {
            Some(true) if !enabled => Err(ApiError::new(
                ErrorCode::E2eDisabled,
                "end-to-end encryption is disabled on this server",
            )),
            Some(v) => Ok(v),
            None => Ok(enabled && self.settings.flag(default_key)),
        }
    }

    /// A room's membership history, oldest first (the caller must be a member).
    pub async fn changes(&self, room: RoomId) -> ApiResult<Vec<MembershipChange>> {
        self.db.room_changes(room).await
    }

    /// The caller's encrypted rooms.
    pub async fn encrypted_rooms_of(&self, user: UserId) -> ApiResult<Vec<RoomId>> {
        self.db.encrypted_room_ids_of(user).await
    }

    /// Whether `a` and `b` are or were members of one room.
    pub async fn have_shared_room(&self, a: UserId, b: UserId) -> ApiResult<bool> {
        self.db.have_shared_room(a, b).await
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
    /// people always return the same room. An encrypted and an ordinary room of the same
    /// people are distinct (their member keys differ), at most one of each.
    async fn get_or_create_fixed(
        &self,
        kind: RoomKind,
        creator: UserId,
        mut members: Vec<UserId>,
        encrypted: bool,
    ) -> ApiResult<Room> {
        members.sort_unstable();
        members.dedup();
        let key = members
            .iter()
            .map(|m| m.to_string())
            .collect::<Vec<_>>()
            .join(",");
        let suffix = if encrypted { "+e2e" } else { "" };
        let key = format!("{}{suffix}:{key}", kind_str(kind));
        self.db
            .write(move |tx, outbox| {
                Box::pin(async move {
                    let id = match tx.room_by_key(&key).await? {
                        Some(id) => id,
                        None => {
                            let now = now_ms();
                            let id = tx
                                .insert_room(kind_str(kind), None, None, Some(&key), encrypted, now)
                                .await?;
                            for m in &members {
                                tx.insert_member(id, *m, now).await?;
                            }
                            record_creation(tx, id, creator, &members, now).await?;
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

    /// Gets or creates the 1:1 DM between the caller and `other` (encrypted or not, see
    /// [`Rooms::encrypted`]).
    pub async fn dm(
        &self,
        caller: &Caller,
        other: UserId,
        encrypted: Option<bool>,
    ) -> ApiResult<Room> {
        if other == caller.user_id {
            return Err(ApiError::new(
                ErrorCode::InvalidInput,
                "a DM needs another user",
            ));
        }
        let encrypted = self.encrypted(encrypted, "e2e.encrypt_new_dms")?;
        self.require_active_users(&[other]).await?;
        self.get_or_create_fixed(
            RoomKind::Dm,
            caller.user_id,
            vec![caller.user_id, other],
            encrypted,
        )
        .await
    }

    /// Gets or creates the multi-user DM of the caller and `others` (3+ people in all).
    pub async fn multi_dm(
        &self,
        caller: &Caller,
        others: Vec<UserId>,
        encrypted: Option<bool>,
    ) -> ApiResult<Room> {
        let encrypted = self.encrypted(encrypted, "e2e.encrypt_new_dms")?;
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
        self.get_or_create_fixed(RoomKind::MultiDm, caller.user_id, all, encrypted)
            .await
    }

    /// Creates a group owned by the caller.
    pub async fn create_group(
        &self,
        caller: &Caller,
        name: String,
        members: Vec<UserId>,
        encrypted: Option<bool>,
    ) -> ApiResult<Room> {
        let encrypted = self.encrypted(encrypted, "e2e.encrypt_new_groups")?;
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
                        .insert_room("group", Some(&name), Some(owner), None, encrypted, now)
                        .await?;
                    for m in &all {
                        tx.insert_member(id, *m, now).await?;
                    }
                    record_creation(tx, id, owner, &all, now).await?;
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
        let actor = caller.user_id;
        self.db
            .write(move |tx, outbox| {
                Box::pin(async move {
                    if !tx.member_exists(room, user).await? {
                        let now = now_ms();
                        tx.insert_member(room, user, now).await?;
                        let epoch = tx.bump_epoch(room).await?;
                        let kind = MembershipChangeKind::Added;
                        record_change(tx, room, epoch, kind, user, actor, now).await?;
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
        let actor = caller.user_id;
        self.db
            .write(move |tx, outbox| {
                Box::pin(async move {
                    // Checked again inside the job: two concurrent removals advance the epoch once.
                    if !tx.member_exists(room, user).await? {
                        return Err(ApiError::not_found("member"));
                    }
                    tx.delete_member(room, user).await?;
                    let epoch = tx.bump_epoch(room).await?;
                    let kind = if kicked {
                        MembershipChangeKind::Removed
                    } else {
                        MembershipChangeKind::Left
                    };
                    record_change(tx, room, epoch, kind, user, actor, now_ms()).await?;
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
