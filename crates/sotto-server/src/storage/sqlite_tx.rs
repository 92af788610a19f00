//! The writer's side of the SQLite backend: [`Tx`] over a synchronous `rusqlite` connection
//! owned by the writer thread (see [`super::writer`]).
//!
//! Why a second SQLite binding: sqlx runs each SQLite connection on a worker thread of its own
//! and hands every statement to it and its result back — two thread wake-ups per statement, and
//! a sent message takes about seven statements. On two cores those hand-offs, not SQLite, were
//! most of the persisted benchmark's cost (`docs/benchmarks.md`). Here the writer thread calls
//! SQLite directly, with cached prepared statements; the futures of [`Tx`] are ready when
//! returned (so a `Tx` call takes effect when it is made, awaited or not). Both bindings link
//! the same `libsqlite3-sys`, so there is one SQLite in the binary.
//!
//! Placeholders are `?N` (SQLite binds `?N` to position N; `$N` would be a *named* parameter
//! numbered by first appearance).

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, Params, Row, ffi, params};
use sotto_api::rest::{MembershipChange, Room, User};
use sotto_api::{ErrorCode, MessageId, RoomId, Seq, SessionId, UploadId, UserId};

use super::sqlite::{UPLOAD_COLUMNS, change_kind_str, kind_from, upload_from};
use super::{E2eRecord, Fut, NewRoomKey, NewUpload, RoomPolicy, Tx, UploadRecord};
use crate::error::{ApiError, ApiResult};

/// Prepared statements kept per connection: every statement a write job can run fits.
const STATEMENT_CACHE: usize = 96;

/// The writer's connection; implements [`Tx`] for the job being run.
pub(super) struct SqliteTx {
    conn: Connection,
}

/// A ready future: the work was done synchronously by the caller.
fn ready<'a, T: Send + 'a>(result: ApiResult<T>) -> Fut<'a, T> {
    Box::pin(std::future::ready(result))
}

fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _)
        if f.extended_code == ffi::SQLITE_CONSTRAINT_UNIQUE
            || f.extended_code == ffi::SQLITE_CONSTRAINT_PRIMARYKEY)
}

impl SqliteTx {
    /// Opens the (already migrated) database file for writing, with the pragmas every
    /// connection of the backend uses (see `sqlite::options`).
    pub(super) fn open(path: &Path) -> anyhow::Result<SqliteTx> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(Duration::from_secs(10))?;
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            anyhow::bail!("SQLite kept journal mode {mode:?}; the writer needs WAL");
        }
        // FULL: the commit fsyncs the WAL before the writer acknowledges the batch's jobs.
        conn.execute_batch(
            "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA secure_delete = ON;",
        )?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(SqliteTx { conn })
    }

    /// Runs a transaction-control statement (`BEGIN`, `SAVEPOINT`, `COMMIT`...).
    pub(super) fn control(&self, sql: &str) -> ApiResult<()> {
        self.conn.prepare_cached(sql)?.execute([])?;
        Ok(())
    }

    /// Whether a transaction is open (after a failed `COMMIT`, SQLite may or may not have
    /// rolled back by itself).
    pub(super) fn in_transaction(&self) -> bool {
        !self.conn.is_autocommit()
    }

    /// Runs a statement; the raw SQLite error, for callers that map a constraint to a code.
    fn exec_raw(&self, sql: &str, params: impl Params) -> rusqlite::Result<usize> {
        self.conn.prepare_cached(sql)?.execute(params)
    }

    /// Runs a statement; how many rows it changed.
    fn exec(&self, sql: &str, params: impl Params) -> ApiResult<usize> {
        Ok(self.exec_raw(sql, params)?)
    }

    /// Runs an `INSERT`; the new row's id.
    fn insert(&self, sql: &str, params: impl Params) -> ApiResult<i64> {
        self.exec(sql, params)?;
        Ok(self.conn.last_insert_rowid())
    }

    fn row<T>(
        &self,
        sql: &str,
        params: impl Params,
        f: impl FnOnce(&Row<'_>) -> rusqlite::Result<T>,
    ) -> ApiResult<Option<T>> {
        Ok(self
            .conn
            .prepare_cached(sql)?
            .query_row(params, f)
            .optional()?)
    }

    fn rows<T>(
        &self,
        sql: &str,
        params: impl Params,
        f: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
    ) -> ApiResult<Vec<T>> {
        Ok(self
            .conn
            .prepare_cached(sql)?
            .query_map(params, f)?
            .collect::<rusqlite::Result<_>>()?)
    }

    fn load_room(&self, id: RoomId) -> ApiResult<Option<Room>> {
        let room = self.row(
            "SELECT id, kind, name, owner_id, encrypted, epoch, key_id, key_epoch \
             FROM rooms WHERE id = ?1",
            [id],
            |r| {
                Ok(Room {
                    id: r.get(0)?,
                    kind: kind_from(&r.get::<_, String>(1)?),
                    name: r.get(2)?,
                    owner_id: r.get(3)?,
                    members: Vec::new(),
                    last_message: None,
                    unread_count: 0,
                    encrypted: r.get(4)?,
                    epoch: r.get(5)?,
                    key_id: r.get(6)?,
                    key_epoch: r.get(7)?,
                })
            },
        )?;
        let Some(mut room) = room else {
            return Ok(None);
        };
        room.members = self.rows(
            "SELECT user_id FROM members WHERE room_id = ?1 ORDER BY user_id",
            [id],
            |r| r.get(0),
        )?;
        Ok(Some(room))
    }

    fn detach_uploads_where(&self, select: &str, delete: &str, arg: i64) -> ApiResult<Vec<String>> {
        let names = self.rows(select, [arg], |r| r.get(0))?;
        self.exec(delete, [arg])?;
        Ok(names)
    }
}

impl Tx for SqliteTx {
    fn insert_user<'a>(
        &'a mut self,
        username: &'a str,
        hash: &'a str,
        is_admin: bool,
    ) -> Fut<'a, User> {
        let r = self.exec_raw(
            "INSERT INTO users (username, password_hash, is_admin, created_at) \
             VALUES (?1, ?2, ?3, ?4)",
            params![username, hash, is_admin, super::now_ms()],
        );
        ready(match r {
            Ok(_) => Ok(User {
                id: self.conn.last_insert_rowid(),
                username: username.to_string(),
                is_admin,
                deactivated: false,
            }),
            Err(e) if is_unique_violation(&e) => Err(ApiError::new(
                ErrorCode::UsernameTaken,
                "the username is taken",
            )),
            Err(e) => Err(e.into()),
        })
    }

    fn invite_usable<'a>(&'a mut self, token_hash: &'a str, now: i64) -> Fut<'a, bool> {
        ready(
            self.row(
                "SELECT 1 FROM invites \
                 WHERE token_hash = ?1 AND used_by IS NULL AND expires_at > ?2",
                params![token_hash, now],
                |_| Ok(()),
            )
            .map(|r| r.is_some()),
        )
    }

    fn use_invite<'a>(&'a mut self, token_hash: &'a str, user: UserId) -> Fut<'a, ()> {
        ready(
            self.exec(
                "UPDATE invites SET used_by = ?1 WHERE token_hash = ?2",
                params![user, token_hash],
            )
            .map(drop),
        )
    }

    fn insert_invite<'a>(
        &'a mut self,
        token_hash: &'a str,
        by: UserId,
        expires_at: i64,
    ) -> Fut<'a, ()> {
        ready(
            self.exec(
                "INSERT INTO invites (token_hash, created_by, expires_at) VALUES (?1, ?2, ?3)",
                params![token_hash, by, expires_at],
            )
            .map(drop),
        )
    }

    fn insert_session<'a>(
        &'a mut self,
        user: UserId,
        token_hash: &'a str,
        csrf: &'a str,
        kind: &'a str,
        user_agent: Option<&'a str>,
        now: i64,
    ) -> Fut<'a, SessionId> {
        ready(self.insert(
            "INSERT INTO sessions (user_id, token_hash, csrf_token, kind, user_agent, \
                 created_at, last_seen_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
            params![user, token_hash, csrf, kind, user_agent, now],
        ))
    }

    fn touch_session(&mut self, id: SessionId, now: i64) -> Fut<'_, ()> {
        ready(
            self.exec(
                "UPDATE sessions SET last_seen_at = ?1 WHERE id = ?2",
                params![now, id],
            )
            .map(drop),
        )
    }

    fn delete_session(&mut self, id: SessionId, user: UserId) -> Fut<'_, bool> {
        ready(
            self.exec(
                "DELETE FROM sessions WHERE id = ?1 AND user_id = ?2",
                params![id, user],
            )
            .map(|n| n > 0),
        )
    }

    fn delete_sessions_except(
        &mut self,
        user: UserId,
        keep: Option<SessionId>,
    ) -> Fut<'_, Vec<SessionId>> {
        let keep = keep.unwrap_or(-1);
        let run = || -> ApiResult<Vec<SessionId>> {
            let ids = self.rows(
                "SELECT id FROM sessions WHERE user_id = ?1 AND id <> ?2",
                params![user, keep],
                |r| r.get(0),
            )?;
            self.exec(
                "DELETE FROM sessions WHERE user_id = ?1 AND id <> ?2",
                params![user, keep],
            )?;
            Ok(ids)
        };
        ready(run())
    }

    fn set_password<'a>(&'a mut self, user: UserId, hash: &'a str) -> Fut<'a, ()> {
        ready(
            self.exec(
                "UPDATE users SET password_hash = ?1 WHERE id = ?2",
                params![hash, user],
            )
            .map(drop),
        )
    }

    fn admin_count(&mut self) -> Fut<'_, i64> {
        ready(
            self.row(
                "SELECT COUNT(*) FROM users WHERE is_admin = TRUE",
                [],
                |r| r.get(0),
            )
            .map(|n| n.unwrap_or(0)),
        )
    }

    fn replace_setup_token<'a>(&'a mut self, token_hash: &'a str, now: i64) -> Fut<'a, ()> {
        let run = || -> ApiResult<()> {
            self.exec("DELETE FROM setup_tokens", [])?;
            self.exec(
                "INSERT INTO setup_tokens (token_hash, created_at) VALUES (?1, ?2)",
                params![token_hash, now],
            )?;
            Ok(())
        };
        ready(run())
    }

    fn consume_setup_token<'a>(&'a mut self, token_hash: &'a str) -> Fut<'a, bool> {
        ready(
            self.exec(
                "DELETE FROM setup_tokens WHERE token_hash = ?1",
                [token_hash],
            )
            .map(|n| n > 0),
        )
    }

    fn clear_setup_tokens(&mut self) -> Fut<'_, ()> {
        ready(self.exec("DELETE FROM setup_tokens", []).map(drop))
    }

    fn deactivate_user(&mut self, user: UserId) -> Fut<'_, bool> {
        ready(
            self.exec("UPDATE users SET deactivated = TRUE WHERE id = ?1", [user])
                .map(|n| n > 0),
        )
    }

    fn room_by_key<'a>(&'a mut self, key: &'a str) -> Fut<'a, Option<RoomId>> {
        ready(
            self.row("SELECT id FROM rooms WHERE member_key = ?1", [key], |r| {
                r.get(0)
            }),
        )
    }

    fn insert_room<'a>(
        &'a mut self,
        kind: &'a str,
        name: Option<&'a str>,
        owner: Option<UserId>,
        member_key: Option<&'a str>,
        encrypted: bool,
        now: i64,
    ) -> Fut<'a, RoomId> {
        ready(self.insert(
            "INSERT INTO rooms (kind, name, owner_id, member_key, encrypted, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![kind, name, owner, member_key, encrypted, now],
        ))
    }

    fn insert_member(&mut self, room: RoomId, user: UserId, now: i64) -> Fut<'_, ()> {
        ready(
            self.exec(
                "INSERT INTO members (room_id, user_id, joined_at) VALUES (?1, ?2, ?3)",
                params![room, user, now],
            )
            .map(drop),
        )
    }

    fn room_members(&mut self, room: RoomId) -> Fut<'_, Vec<UserId>> {
        ready(self.rows(
            "SELECT user_id FROM members WHERE room_id = ?1",
            [room],
            |r| r.get(0),
        ))
    }

    fn member_exists(&mut self, room: RoomId, user: UserId) -> Fut<'_, bool> {
        ready(
            self.row(
                "SELECT 1 FROM members WHERE room_id = ?1 AND user_id = ?2",
                params![room, user],
                |_| Ok(()),
            )
            .map(|r| r.is_some()),
        )
    }

    fn delete_member(&mut self, room: RoomId, user: UserId) -> Fut<'_, ()> {
        ready(
            self.exec(
                "DELETE FROM members WHERE room_id = ?1 AND user_id = ?2",
                params![room, user],
            )
            .map(drop),
        )
    }

    fn load_room(&mut self, id: RoomId) -> Fut<'_, Option<Room>> {
        ready(SqliteTx::load_room(self, id))
    }

    fn bump_epoch(&mut self, room: RoomId) -> Fut<'_, i64> {
        let r = self
            .row(
                "UPDATE rooms SET epoch = epoch + 1 WHERE id = ?1 RETURNING epoch",
                [room],
                |r| r.get(0),
            )
            .and_then(|e| e.ok_or_else(|| ApiError::internal("no such room")));
        ready(r)
    }

    fn insert_room_change<'a>(
        &'a mut self,
        room: RoomId,
        change: &'a MembershipChange,
    ) -> Fut<'a, ()> {
        ready(
            self.exec(
                "INSERT INTO room_changes (room_id, epoch, kind, user_id, actor_id, at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    room,
                    change.epoch,
                    change_kind_str(change.kind),
                    change.user_id,
                    change.actor_id,
                    change.at
                ],
            )
            .map(drop),
        )
    }

    fn room_policy(&mut self, room: RoomId) -> Fut<'_, Option<RoomPolicy>> {
        ready(self.row(
            "SELECT encrypted, epoch, key_id, key_epoch FROM rooms WHERE id = ?1",
            [room],
            |r| {
                Ok(RoomPolicy {
                    encrypted: r.get(0)?,
                    epoch: r.get(1)?,
                    key_id: r.get(2)?,
                    key_epoch: r.get(3)?,
                })
            },
        ))
    }

    fn insert_room_key<'a>(&'a mut self, key: NewRoomKey<'a>) -> Fut<'a, ()> {
        let r = self.exec_raw(
            "INSERT INTO room_keys (key_id, room_id, epoch, distributor_id, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![key.key_id, key.room, key.epoch, key.distributor, key.now],
        );
        ready(match r {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => Err(ApiError::new(
                ErrorCode::E2eKeyIdTaken,
                "a room key with this id exists already",
            )),
            Err(e) => Err(e.into()),
        })
    }

    fn insert_room_key_share<'a>(
        &'a mut self,
        key_id: &'a str,
        user: UserId,
        share: &'a str,
    ) -> Fut<'a, ()> {
        ready(
            self.exec(
                "INSERT INTO room_key_shares (key_id, user_id, share) VALUES (?1, ?2, ?3)",
                params![key_id, user, share],
            )
            .map(drop),
        )
    }

    fn set_room_key<'a>(&'a mut self, room: RoomId, key_id: &'a str, epoch: i64) -> Fut<'a, ()> {
        ready(
            self.exec(
                "UPDATE rooms SET key_id = ?1, key_epoch = ?2 WHERE id = ?3",
                params![key_id, epoch, room],
            )
            .map(drop),
        )
    }

    fn insert_message<'a>(
        &'a mut self,
        room: RoomId,
        author: UserId,
        kind: &'a str,
        body: &'a str,
        now: i64,
    ) -> Fut<'a, MessageId> {
        ready(self.insert(
            "INSERT INTO messages (room_id, author_id, body_kind, body, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            params![room, author, kind, body, now],
        ))
    }

    fn update_message<'a>(
        &'a mut self,
        id: MessageId,
        kind: &'a str,
        body: &'a str,
        now: i64,
    ) -> Fut<'a, bool> {
        ready(
            self.exec(
                "UPDATE messages SET body_kind = ?1, body = ?2, edited_at = ?3 WHERE id = ?4",
                params![kind, body, now, id],
            )
            .map(|n| n > 0),
        )
    }

    fn delete_message(&mut self, id: MessageId) -> Fut<'_, bool> {
        ready(
            self.exec("DELETE FROM messages WHERE id = ?1", [id])
                .map(|n| n > 0),
        )
    }

    fn mark_read(&mut self, room: RoomId, user: UserId, message: MessageId) -> Fut<'_, ()> {
        ready(
            self.exec(
                "UPDATE members SET last_read_id = ?1 \
                 WHERE room_id = ?2 AND user_id = ?3 AND last_read_id < ?1",
                params![message, room, user],
            )
            .map(drop),
        )
    }

    fn append_event<'a>(
        &'a mut self,
        room: RoomId,
        message: Option<MessageId>,
        extra_user: Option<UserId>,
        payload: &'a str,
        now: i64,
    ) -> Fut<'a, Seq> {
        ready(self.insert(
            "INSERT INTO events (room_id, message_id, extra_user, payload, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            params![room, message, extra_user, payload, now],
        ))
    }

    fn prune_events(&mut self, older_than: i64) -> Fut<'_, u64> {
        let run = || -> ApiResult<u64> {
            let max: Option<i64> = self
                .row(
                    "SELECT MAX(seq) FROM events WHERE created_at < ?1",
                    [older_than],
                    |r| r.get(0),
                )?
                .flatten();
            let Some(max) = max else { return Ok(0) };
            let deleted = self.exec("DELETE FROM events WHERE seq <= ?1", [max])?;
            self.exec(
                "INSERT INTO meta (key, value) VALUES ('events_pruned_through', ?1) \
                 ON CONFLICT (key) DO UPDATE SET value = MAX(meta.value, excluded.value)",
                [max],
            )?;
            Ok(deleted as u64)
        };
        ready(run())
    }

    fn forget_message_events(&mut self, message: MessageId) -> Fut<'_, ()> {
        ready(
            self.exec("DELETE FROM events WHERE message_id = ?1", [message])
                .map(drop),
        )
    }

    fn message_events(&mut self, message: MessageId) -> Fut<'_, Vec<(Seq, String)>> {
        ready(self.rows(
            "SELECT seq, payload FROM events WHERE message_id = ?1 ORDER BY seq",
            [message],
            |r| Ok((r.get(0)?, r.get(1)?)),
        ))
    }

    fn set_event_payload<'a>(&'a mut self, seq: Seq, payload: &'a str) -> Fut<'a, ()> {
        ready(
            self.exec(
                "UPDATE events SET payload = ?2 WHERE seq = ?1",
                params![seq, payload],
            )
            .map(drop),
        )
    }

    fn index_text<'a>(&'a mut self, id: MessageId, room: RoomId, text: &'a str) -> Fut<'a, ()> {
        ready(
            self.exec(
                "INSERT INTO message_search (body, room_id, message_id) VALUES (?1, ?2, ?3)",
                params![text, room, id],
            )
            .map(drop),
        )
    }

    fn unindex(&mut self, id: MessageId) -> Fut<'_, ()> {
        ready(
            self.exec("DELETE FROM message_search WHERE message_id = ?1", [id])
                .map(drop),
        )
    }

    fn insert_upload<'a>(&'a mut self, u: NewUpload<'a>) -> Fut<'a, UploadId> {
        ready(self.insert(
            "INSERT INTO uploads (room_id, uploader_id, filename, content_type, size, \
                 storage_name, encrypted, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                u.room,
                u.uploader,
                u.filename,
                u.content_type,
                u.size,
                u.storage_name,
                u.encrypted,
                u.now
            ],
        ))
    }

    fn upload(&mut self, id: UploadId) -> Fut<'_, Option<UploadRecord>> {
        ready(self.row(
            &format!("SELECT {UPLOAD_COLUMNS} FROM uploads WHERE id = ?1"),
            [id],
            |r| {
                Ok(upload_from((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                    r.get(8)?,
                )))
            },
        ))
    }

    fn attach_upload(&mut self, id: UploadId, message: MessageId) -> Fut<'_, ()> {
        ready(
            self.exec(
                "UPDATE uploads SET message_id = ?1 WHERE id = ?2",
                params![message, id],
            )
            .map(drop),
        )
    }

    fn remove_orphan_uploads(&mut self, older_than: i64) -> Fut<'_, Vec<String>> {
        ready(self.detach_uploads_where(
            "SELECT storage_name FROM uploads WHERE message_id IS NULL AND created_at < ?1",
            "DELETE FROM uploads WHERE message_id IS NULL AND created_at < ?1",
            older_than,
        ))
    }

    fn detach_uploads(&mut self, message: MessageId) -> Fut<'_, Vec<String>> {
        ready(self.detach_uploads_where(
            "SELECT storage_name FROM uploads WHERE message_id = ?1",
            "DELETE FROM uploads WHERE message_id = ?1",
            message,
        ))
    }

    fn upsert_setting<'a>(&'a mut self, key: &'a str, value: &'a str, now: i64) -> Fut<'a, ()> {
        ready(
            self.exec(
                "INSERT INTO settings (key, value, updated_at) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value, \
                 updated_at = excluded.updated_at",
                params![key, value, now],
            )
            .map(drop),
        )
    }

    fn upsert_e2e_keys<'a>(
        &'a mut self,
        user: UserId,
        keys: &'a E2eRecord,
        now: i64,
    ) -> Fut<'a, ()> {
        let r = self.exec_raw(
            "INSERT INTO e2e_keys (user_id, curve25519, ed25519, key_backup, trust_store, \
             agreement_key, agreement_signature, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
             ON CONFLICT (user_id) DO UPDATE SET \
             agreement_key = CASE WHEN excluded.agreement_key IS NULL \
               AND e2e_keys.curve25519 = excluded.curve25519 \
               AND e2e_keys.ed25519 = excluded.ed25519 \
               THEN e2e_keys.agreement_key ELSE excluded.agreement_key END, \
             agreement_signature = CASE WHEN excluded.agreement_key IS NULL \
               AND e2e_keys.curve25519 = excluded.curve25519 \
               AND e2e_keys.ed25519 = excluded.ed25519 \
               THEN e2e_keys.agreement_signature ELSE excluded.agreement_signature END, \
             curve25519 = excluded.curve25519, \
             ed25519 = excluded.ed25519, key_backup = excluded.key_backup, \
             trust_store = excluded.trust_store, updated_at = excluded.updated_at",
            params![
                user,
                keys.curve25519,
                keys.ed25519,
                keys.key_backup,
                keys.trust_store,
                keys.agreement_key,
                keys.agreement_signature,
                now
            ],
        );
        ready(match r {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => Err(ApiError::new(
                ErrorCode::IdentityKeyTaken,
                "this identity key is registered to another user",
            )),
            Err(e) => Err(e.into()),
        })
    }

    fn set_trust_store<'a>(
        &'a mut self,
        user: UserId,
        trust_store: &'a str,
        now: i64,
    ) -> Fut<'a, bool> {
        ready(
            self.exec(
                "UPDATE e2e_keys SET trust_store = ?2, updated_at = ?3 WHERE user_id = ?1",
                params![user, trust_store, now],
            )
            .map(|n| n > 0),
        )
    }
}
