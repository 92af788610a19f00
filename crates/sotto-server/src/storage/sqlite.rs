//! The SQLite implementation of [`Storage`] and [`Tx`]: sqlx, WAL mode, embedded migrations, a
//! small read pool and one batching writer. The SQL is kept close to portable (`$n`
//! placeholders, `BIGINT` millisecond timestamps) so a PostgreSQL implementation can reuse most
//! of it; SQLite-only parts are marked: FTS5 search, `VACUUM INTO`, pragmas, `last_insert_rowid`.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sotto_api::rest::{
    MembershipChange, MembershipChangeKind, Room, RoomKeyEntry, RoomKind, UploadInfo, User,
};
use sotto_api::{ErrorCode, MessageId, RoomId, Seq, SessionId, UploadId, UserId};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions, SqliteConnection, SqlitePool};

use super::writer::Writer;
use super::{
    E2eRecord, Fut, MessageRow, NewRoomKey, NewUpload, RoomPolicy, SessionRecord, SessionRow,
    Storage, Tx, UploadRecord, WriteJob,
};
use crate::bus::Bus;
use crate::error::ApiError;

/// The database file's name inside the data directory.
pub const DB_FILE: &str = "sotto.db";
/// The uploads directory's name inside the data directory.
pub const UPLOADS_DIR: &str = "uploads";

/// The embedded migrations, applied in order at start.
fn migrator() -> Migrator {
    let migrations = vec![
        Migration::new(
            1,
            "init".into(),
            MigrationType::Simple,
            include_str!("../../migrations/0001_init.sql").into(),
            false,
        ),
        Migration::new(
            2,
            "maintenance".into(),
            MigrationType::Simple,
            include_str!("../../migrations/0002_maintenance.sql").into(),
            false,
        ),
        Migration::new(
            3,
            "e2e_keys".into(),
            MigrationType::Simple,
            include_str!("../../migrations/0003_e2e_keys.sql").into(),
            false,
        ),
        Migration::new(
            4,
            "e2e_rooms".into(),
            MigrationType::Simple,
            include_str!("../../migrations/0004_e2e_rooms.sql").into(),
            false,
        ),
    ];
    Migrator {
        migrations: migrations.into(),
        ..Migrator::DEFAULT
    }
}

fn options(path: &Path) -> Result<SqliteConnectOptions, sqlx::Error> {
    Ok(
        SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: every commit fsyncs the WAL before it returns, so a write job (a sent
            // message) is durable before it is acknowledged. The writer batches jobs, so this is
            // one fsync per batch, not per message.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            // Deleted and edited message text is overwritten with zeros in the file rather than
            // left in free pages (SQLite-only).
            .pragma("secure_delete", "ON")
            .busy_timeout(Duration::from_secs(10))
            .disable_statement_logging(),
    )
}

/// SQLite storage.
pub struct SqliteStorage {
    read: SqlitePool,
    writer: Writer,
    data_dir: PathBuf,
}

impl SqliteStorage {
    /// Opens (creating if needed) the database under `data_dir`, migrates it and starts the
    /// writer task, which publishes committed events on `bus`.
    pub async fn open(
        data_dir: &Path,
        bus: Arc<dyn Bus>,
        batch_max: usize,
    ) -> anyhow::Result<Arc<dyn Storage>> {
        std::fs::create_dir_all(data_dir.join(UPLOADS_DIR).join("tmp"))?;
        let opts = options(&data_dir.join(DB_FILE))?;
        let mut write_conn = opts.connect().await?;
        migrator().run_direct(&mut write_conn).await?;
        let read = SqlitePoolOptions::new()
            .max_connections(4)
            .min_connections(1)
            .connect_with(opts.clone())
            .await?;
        let writer = Writer::start(write_conn, bus, batch_max);
        Ok(Arc::new(SqliteStorage {
            read,
            writer,
            data_dir: data_dir.to_path_buf(),
        }))
    }
}

type UserTuple = (i64, String, bool, bool);

fn user_from(row: UserTuple) -> User {
    User {
        id: row.0,
        username: row.1,
        is_admin: row.2,
        deactivated: row.3,
    }
}

fn kind_from(s: &str) -> RoomKind {
    match s {
        "dm" => RoomKind::Dm,
        "multi_dm" => RoomKind::MultiDm,
        _ => RoomKind::Group,
    }
}

const MESSAGE_COLUMNS: &str = "id, room_id, author_id, body_kind, body, created_at, edited_at";
const UPLOAD_COLUMNS: &str =
    "id, room_id, filename, content_type, size, uploader_id, storage_name, message_id, encrypted";

type UploadTuple = (
    i64,
    i64,
    String,
    String,
    i64,
    i64,
    String,
    Option<i64>,
    bool,
);

fn upload_from(r: UploadTuple) -> UploadRecord {
    let (
        id,
        room_id,
        filename,
        content_type,
        size,
        uploader_id,
        storage_name,
        message_id,
        encrypted,
    ) = r;
    let inline = !encrypted && crate::services::uploads::is_inline(&content_type);
    UploadRecord {
        info: UploadInfo {
            id,
            room_id,
            filename,
            content_type,
            size,
            inline,
            encrypted,
        },
        uploader_id,
        storage_name,
        message_id,
    }
}

async fn load_room(conn: &mut SqliteConnection, id: RoomId) -> Result<Option<Room>, ApiError> {
    type RoomTuple = (
        i64,
        String,
        Option<String>,
        Option<i64>,
        bool,
        i64,
        Option<String>,
        Option<i64>,
    );
    let row: Option<RoomTuple> = sqlx::query_as(
        "SELECT id, kind, name, owner_id, encrypted, epoch, key_id, key_epoch          FROM rooms WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((id, kind, name, owner_id, encrypted, epoch, key_id, key_epoch)) = row else {
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
        encrypted,
        epoch,
        key_id,
        key_epoch,
    }))
}

fn change_kind_from(s: &str) -> MembershipChangeKind {
    match s {
        "created" => MembershipChangeKind::Created,
        "removed" => MembershipChangeKind::Removed,
        "left" => MembershipChangeKind::Left,
        _ => MembershipChangeKind::Added,
    }
}

fn change_kind_str(k: MembershipChangeKind) -> &'static str {
    match k {
        MembershipChangeKind::Created => "created",
        MembershipChangeKind::Added => "added",
        MembershipChangeKind::Removed => "removed",
        MembershipChangeKind::Left => "left",
    }
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(|d| d.is_unique_violation())
}

impl Storage for SqliteStorage {
    fn user(&self, id: UserId) -> Fut<'_, Option<User>> {
        Box::pin(async move {
            let row: Option<UserTuple> = sqlx::query_as(
                "SELECT id, username, is_admin, deactivated FROM users WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(&self.read)
            .await?;
            Ok(row.map(user_from))
        })
    }

    fn users(&self) -> Fut<'_, Vec<User>> {
        Box::pin(async move {
            let rows: Vec<UserTuple> = sqlx::query_as(
                "SELECT id, username, is_admin, deactivated FROM users ORDER BY deactivated, username",
            )
            .fetch_all(&self.read)
            .await?;
            Ok(rows.into_iter().map(user_from).collect())
        })
    }

    fn user_for_login<'a>(&'a self, username: &'a str) -> Fut<'a, Option<(User, String)>> {
        Box::pin(async move {
            let row: Option<(i64, String, bool, bool, String)> = sqlx::query_as(
                "SELECT id, username, is_admin, deactivated, password_hash FROM users WHERE username = $1",
            )
            .bind(username)
            .fetch_optional(&self.read)
            .await?;
            Ok(row.map(|(id, u, a, d, h)| (user_from((id, u, a, d)), h)))
        })
    }

    fn password_hash(&self, user: UserId) -> Fut<'_, Option<String>> {
        Box::pin(async move {
            let row: Option<(String,)> =
                sqlx::query_as("SELECT password_hash FROM users WHERE id = $1")
                    .bind(user)
                    .fetch_optional(&self.read)
                    .await?;
            Ok(row.map(|r| r.0))
        })
    }

    fn session_by_token<'a>(&'a self, token_hash: &'a str) -> Fut<'a, Option<SessionRecord>> {
        Box::pin(async move {
            let row: Option<(i64, i64, String, i64, bool, bool)> = sqlx::query_as(
                "SELECT s.id, s.user_id, s.csrf_token, s.last_seen_at, u.is_admin, u.deactivated \
                 FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = $1",
            )
            .bind(token_hash)
            .fetch_optional(&self.read)
            .await?;
            Ok(row.map(
                |(id, user_id, csrf_token, last_seen_at, is_admin, deactivated)| SessionRecord {
                    id,
                    user_id,
                    csrf_token,
                    last_seen_at,
                    is_admin,
                    deactivated,
                },
            ))
        })
    }

    fn sessions_of(&self, user: UserId) -> Fut<'_, Vec<SessionRow>> {
        Box::pin(async move {
            Ok(sqlx::query_as(
                "SELECT id, created_at, last_seen_at, kind, user_agent FROM sessions \
                 WHERE user_id = $1 ORDER BY id",
            )
            .bind(user)
            .fetch_all(&self.read)
            .await?)
        })
    }

    fn is_member(&self, room: RoomId, user: UserId) -> Fut<'_, bool> {
        Box::pin(async move {
            let row: Option<(i64,)> =
                sqlx::query_as("SELECT 1 FROM members WHERE room_id = $1 AND user_id = $2")
                    .bind(room)
                    .bind(user)
                    .fetch_optional(&self.read)
                    .await?;
            Ok(row.is_some())
        })
    }

    fn members(&self, room: RoomId) -> Fut<'_, Vec<UserId>> {
        Box::pin(async move {
            let rows: Vec<(i64,)> =
                sqlx::query_as("SELECT user_id FROM members WHERE room_id = $1")
                    .bind(room)
                    .fetch_all(&self.read)
                    .await?;
            Ok(rows.into_iter().map(|r| r.0).collect())
        })
    }

    fn co_members(&self, user: UserId) -> Fut<'_, Vec<UserId>> {
        Box::pin(async move {
            let rows: Vec<(i64,)> = sqlx::query_as(
                "SELECT DISTINCT b.user_id FROM members a JOIN members b ON a.room_id = b.room_id \
                 WHERE a.user_id = $1",
            )
            .bind(user)
            .fetch_all(&self.read)
            .await?;
            Ok(rows.into_iter().map(|r| r.0).collect())
        })
    }

    fn room_ids_of(&self, user: UserId) -> Fut<'_, Vec<RoomId>> {
        Box::pin(async move {
            let rows: Vec<(i64,)> =
                sqlx::query_as("SELECT room_id FROM members WHERE user_id = $1 ORDER BY room_id")
                    .bind(user)
                    .fetch_all(&self.read)
                    .await?;
            Ok(rows.into_iter().map(|r| r.0).collect())
        })
    }

    fn room(&self, id: RoomId) -> Fut<'_, Option<Room>> {
        Box::pin(async move {
            let mut conn = self.read.acquire().await?;
            load_room(&mut conn, id).await
        })
    }

    fn encrypted_room_ids_of(&self, user: UserId) -> Fut<'_, Vec<RoomId>> {
        Box::pin(async move {
            let rows: Vec<(i64,)> = sqlx::query_as(
                "SELECT r.id FROM rooms r JOIN members m ON m.room_id = r.id \
                 WHERE m.user_id = $1 AND r.encrypted = TRUE ORDER BY r.id",
            )
            .bind(user)
            .fetch_all(&self.read)
            .await?;
            Ok(rows.into_iter().map(|r| r.0).collect())
        })
    }

    fn room_changes(&self, room: RoomId) -> Fut<'_, Vec<MembershipChange>> {
        Box::pin(async move {
            let rows: Vec<(i64, String, i64, Option<i64>, i64)> = sqlx::query_as(
                "SELECT epoch, kind, user_id, actor_id, at FROM room_changes \
                 WHERE room_id = $1 ORDER BY id",
            )
            .bind(room)
            .fetch_all(&self.read)
            .await?;
            Ok(rows
                .into_iter()
                .map(|(epoch, kind, user_id, actor_id, at)| MembershipChange {
                    epoch,
                    kind: change_kind_from(&kind),
                    user_id,
                    actor_id,
                    at,
                })
                .collect())
        })
    }

    fn have_shared_room(&self, a: UserId, b: UserId) -> Fut<'_, bool> {
        Box::pin(async move {
            let row: Option<(i64,)> = sqlx::query_as(
                "SELECT 1 FROM room_changes x JOIN room_changes y ON x.room_id = y.room_id \
                 WHERE x.user_id = $1 AND y.user_id = $2 LIMIT 1",
            )
            .bind(a)
            .bind(b)
            .fetch_optional(&self.read)
            .await?;
            Ok(row.is_some())
        })
    }

    fn room_key_shares(&self, room: RoomId, user: UserId) -> Fut<'_, Vec<RoomKeyEntry>> {
        Box::pin(async move {
            let rows: Vec<(String, i64, i64, String, i64)> = sqlx::query_as(
                "SELECT k.key_id, k.epoch, k.distributor_id, s.share, k.created_at \
                 FROM room_key_shares s JOIN room_keys k ON k.key_id = s.key_id \
                 WHERE k.room_id = $1 AND s.user_id = $2 ORDER BY k.created_at, k.rowid",
            )
            .bind(room)
            .bind(user)
            .fetch_all(&self.read)
            .await?;
            Ok(rows
                .into_iter()
                .map(
                    |(key_id, epoch, distributor_id, share, created_at)| RoomKeyEntry {
                        key_id,
                        epoch,
                        distributor_id,
                        share,
                        created_at,
                    },
                )
                .collect())
        })
    }

    fn messages_before(
        &self,
        room: RoomId,
        before: MessageId,
        limit: i64,
    ) -> Fut<'_, Vec<MessageRow>> {
        Box::pin(async move {
            Ok(sqlx::query_as(&format!(
                "SELECT {MESSAGE_COLUMNS} FROM messages WHERE room_id = $1 AND id < $2 \
                 ORDER BY id DESC LIMIT $3"
            ))
            .bind(room)
            .bind(before)
            .bind(limit)
            .fetch_all(&self.read)
            .await?)
        })
    }

    fn messages_after(
        &self,
        room: RoomId,
        after: MessageId,
        limit: i64,
    ) -> Fut<'_, Vec<MessageRow>> {
        Box::pin(async move {
            Ok(sqlx::query_as(&format!(
                "SELECT {MESSAGE_COLUMNS} FROM messages WHERE room_id = $1 AND id > $2 \
                 ORDER BY id ASC LIMIT $3"
            ))
            .bind(room)
            .bind(after)
            .bind(limit)
            .fetch_all(&self.read)
            .await?)
        })
    }

    fn message(&self, id: MessageId) -> Fut<'_, Option<MessageRow>> {
        Box::pin(async move {
            Ok(sqlx::query_as(&format!(
                "SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = $1"
            ))
            .bind(id)
            .fetch_optional(&self.read)
            .await?)
        })
    }

    fn unread_count(&self, room: RoomId, user: UserId) -> Fut<'_, i64> {
        Box::pin(async move {
            let (n,): (i64,) = sqlx::query_as(
                "SELECT COUNT(*) FROM messages m JOIN members r ON r.room_id = m.room_id \
                 WHERE m.room_id = $1 AND r.user_id = $2 AND m.id > r.last_read_id \
                 AND m.author_id <> $2",
            )
            .bind(room)
            .bind(user)
            .fetch_one(&self.read)
            .await?;
            Ok(n)
        })
    }

    fn events_since(&self, user: UserId, since: Seq, limit: i64) -> Fut<'_, Vec<(Seq, String)>> {
        Box::pin(async move {
            Ok(sqlx::query_as(
                "SELECT seq, payload FROM events WHERE seq > $1 AND \
                 (room_id IN (SELECT room_id FROM members WHERE user_id = $2) OR extra_user = $2) \
                 ORDER BY seq LIMIT $3",
            )
            .bind(since)
            .bind(user)
            .bind(limit)
            .fetch_all(&self.read)
            .await?)
        })
    }

    fn events_pruned_through(&self) -> Fut<'_, Seq> {
        Box::pin(async move {
            let row: Option<(i64,)> =
                sqlx::query_as("SELECT value FROM meta WHERE key = 'events_pruned_through'")
                    .fetch_optional(&self.read)
                    .await?;
            Ok(row.map_or(0, |r| r.0))
        })
    }

    fn events_head(&self) -> Fut<'_, Seq> {
        Box::pin(async move {
            // The pruned-through position counts too: a prune that empties the log must not
            // take the head back to 0 (a fresh connection would then be told its catch-up is
            // incomplete). One statement, so both come from the same snapshot.
            let (h,): (Option<i64>,) = sqlx::query_as(
                "SELECT MAX(s) FROM (SELECT MAX(seq) AS s FROM events \
                 UNION ALL SELECT value AS s FROM meta WHERE key = 'events_pruned_through') AS h",
            )
            .fetch_one(&self.read)
            .await?;
            Ok(h.unwrap_or(0))
        })
    }

    fn search<'a>(
        &'a self,
        terms: &'a [String],
        user: UserId,
        limit: i64,
        offset: i64,
    ) -> Fut<'a, Vec<MessageId>> {
        Box::pin(async move {
            // SQLite-only: FTS5. Every term is quoted, so FTS syntax in input is literal.
            let fts = terms
                .iter()
                .map(|t| format!("\"{}\"", t.replace('"', "\"\"")))
                .collect::<Vec<_>>()
                .join(" ");
            let rows: Vec<(i64,)> = sqlx::query_as(
                "SELECT message_id FROM message_search WHERE message_search MATCH $1 \
                 AND room_id IN (SELECT room_id FROM members WHERE user_id = $2) \
                 ORDER BY bm25(message_search), message_id DESC LIMIT $3 OFFSET $4",
            )
            .bind(fts)
            .bind(user)
            .bind(limit)
            .bind(offset)
            .fetch_all(&self.read)
            .await?;
            Ok(rows.into_iter().map(|r| r.0).collect())
        })
    }

    fn upload(&self, id: UploadId) -> Fut<'_, Option<UploadRecord>> {
        Box::pin(async move {
            let row: Option<UploadTuple> = sqlx::query_as(&format!(
                "SELECT {UPLOAD_COLUMNS} FROM uploads WHERE id = $1"
            ))
            .bind(id)
            .fetch_optional(&self.read)
            .await?;
            Ok(row.map(upload_from))
        })
    }

    fn uploads_of_messages<'a>(&'a self, ids: &'a [MessageId]) -> Fut<'a, Vec<UploadRecord>> {
        Box::pin(async move {
            if ids.is_empty() {
                return Ok(Vec::new());
            }
            // Ids are integers, so inlining them is safe.
            let list = ids
                .iter()
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(",");
            let rows: Vec<UploadTuple> = sqlx::query_as(&format!(
                "SELECT {UPLOAD_COLUMNS} FROM uploads WHERE message_id IN ({list})"
            ))
            .fetch_all(&self.read)
            .await?;
            Ok(rows.into_iter().map(upload_from).collect())
        })
    }

    fn upload_files(&self) -> Fut<'_, Vec<String>> {
        Box::pin(async move {
            let rows: Vec<(String,)> = sqlx::query_as("SELECT storage_name FROM uploads")
                .fetch_all(&self.read)
                .await?;
            Ok(rows.into_iter().map(|r| r.0).collect())
        })
    }

    fn uploads_dir(&self) -> PathBuf {
        self.data_dir.join(UPLOADS_DIR)
    }

    fn settings(&self) -> Fut<'_, Vec<(String, String)>> {
        Box::pin(async move {
            Ok(sqlx::query_as("SELECT key, value FROM settings")
                .fetch_all(&self.read)
                .await?)
        })
    }

    fn e2e_keys(&self, user: UserId) -> Fut<'_, Option<E2eRecord>> {
        Box::pin(async move {
            type KeysTuple = (
                String,
                String,
                String,
                String,
                Option<String>,
                Option<String>,
            );
            let row: Option<KeysTuple> = sqlx::query_as(
                "SELECT curve25519, ed25519, key_backup, trust_store, agreement_key, \
                 agreement_signature FROM e2e_keys WHERE user_id = $1",
            )
            .bind(user)
            .fetch_optional(&self.read)
            .await?;
            Ok(row.map(
                |(
                    curve25519,
                    ed25519,
                    key_backup,
                    trust_store,
                    agreement_key,
                    agreement_signature,
                )| {
                    E2eRecord {
                        curve25519,
                        ed25519,
                        key_backup,
                        trust_store,
                        agreement_key,
                        agreement_signature,
                    }
                },
            ))
        })
    }

    fn write_erased(&self, job: WriteJob) -> Fut<'_, Box<dyn std::any::Any + Send>> {
        Box::pin(self.writer.submit(job))
    }

    fn backup_into<'a>(&'a self, dest: &'a Path) -> Fut<'a, ()> {
        Box::pin(async move {
            // SQLite-only: VACUUM INTO reads one consistent snapshot while writers continue.
            let dest = dest.to_string_lossy().to_string();
            sqlx::query("VACUUM INTO $1")
                .bind(dest)
                .execute(&self.read)
                .await?;
            Ok(())
        })
    }

    fn close(&self) -> Fut<'_, ()> {
        Box::pin(async move {
            // The writer first: its queued jobs commit, then its connection closes.
            self.writer.close().await;
            self.read.close().await;
            Ok(())
        })
    }
}

impl Tx for SqliteConnection {
    fn insert_user<'a>(
        &'a mut self,
        username: &'a str,
        hash: &'a str,
        is_admin: bool,
    ) -> Fut<'a, User> {
        Box::pin(async move {
            let r = sqlx::query(
                "INSERT INTO users (username, password_hash, is_admin, created_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(username)
            .bind(hash)
            .bind(is_admin)
            .bind(super::now_ms())
            .execute(&mut *self)
            .await;
            match r {
                Ok(r) => Ok(User {
                    id: r.last_insert_rowid(),
                    username: username.to_string(),
                    is_admin,
                    deactivated: false,
                }),
                Err(e)
                    if e.as_database_error()
                        .is_some_and(|d| d.is_unique_violation()) =>
                {
                    Err(ApiError::new(
                        ErrorCode::UsernameTaken,
                        "the username is taken",
                    ))
                }
                Err(e) => Err(e.into()),
            }
        })
    }

    fn invite_usable<'a>(&'a mut self, token_hash: &'a str, now: i64) -> Fut<'a, bool> {
        Box::pin(async move {
            let ok: Option<(String,)> = sqlx::query_as(
                "SELECT token_hash FROM invites \
                 WHERE token_hash = $1 AND used_by IS NULL AND expires_at > $2",
            )
            .bind(token_hash)
            .bind(now)
            .fetch_optional(&mut *self)
            .await?;
            Ok(ok.is_some())
        })
    }

    fn use_invite<'a>(&'a mut self, token_hash: &'a str, user: UserId) -> Fut<'a, ()> {
        Box::pin(async move {
            sqlx::query("UPDATE invites SET used_by = $1 WHERE token_hash = $2")
                .bind(user)
                .bind(token_hash)
                .execute(&mut *self)
                .await?;
            Ok(())
        })
    }

    fn insert_invite<'a>(
        &'a mut self,
        token_hash: &'a str,
        by: UserId,
        expires_at: i64,
    ) -> Fut<'a, ()> {
        Box::pin(async move {
            sqlx::query(
                "INSERT INTO invites (token_hash, created_by, expires_at) VALUES ($1, $2, $3)",
            )
            .bind(token_hash)
            .bind(by)
            .bind(expires_at)
            .execute(&mut *self)
            .await?;
            Ok(())
        })
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
        Box::pin(async move {
            let r = sqlx::query(
                "INSERT INTO sessions (user_id, token_hash, csrf_token, kind, user_agent, \
                 created_at, last_seen_at) VALUES ($1, $2, $3, $4, $5, $6, $6)",
            )
            .bind(user)
            .bind(token_hash)
            .bind(csrf)
            .bind(kind)
            .bind(user_agent)
            .bind(now)
            .execute(&mut *self)
            .await?;
            Ok(r.last_insert_rowid())
        })
    }

    fn touch_session(&mut self, id: SessionId, now: i64) -> Fut<'_, ()> {
        Box::pin(async move {
            sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE id = $2")
                .bind(now)
                .bind(id)
                .execute(&mut *self)
                .await?;
            Ok(())
        })
    }

    fn delete_session(&mut self, id: SessionId, user: UserId) -> Fut<'_, bool> {
        Box::pin(async move {
            let r = sqlx::query("DELETE FROM sessions WHERE id = $1 AND user_id = $2")
                .bind(id)
                .bind(user)
                .execute(&mut *self)
                .await?;
            Ok(r.rows_affected() > 0)
        })
    }

    fn delete_sessions_except(
        &mut self,
        user: UserId,
        keep: Option<SessionId>,
    ) -> Fut<'_, Vec<SessionId>> {
        Box::pin(async move {
            let keep = keep.unwrap_or(-1);
            let ids: Vec<(i64,)> =
                sqlx::query_as("SELECT id FROM sessions WHERE user_id = $1 AND id <> $2")
                    .bind(user)
                    .bind(keep)
                    .fetch_all(&mut *self)
                    .await?;
            sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND id <> $2")
                .bind(user)
                .bind(keep)
                .execute(&mut *self)
                .await?;
            Ok(ids.into_iter().map(|r| r.0).collect())
        })
    }

    fn set_password<'a>(&'a mut self, user: UserId, hash: &'a str) -> Fut<'a, ()> {
        Box::pin(async move {
            sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
                .bind(hash)
                .bind(user)
                .execute(&mut *self)
                .await?;
            Ok(())
        })
    }

    fn admin_count(&mut self) -> Fut<'_, i64> {
        Box::pin(async move {
            let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM users WHERE is_admin = TRUE")
                .fetch_one(&mut *self)
                .await?;
            Ok(n)
        })
    }

    fn replace_setup_token<'a>(&'a mut self, token_hash: &'a str, now: i64) -> Fut<'a, ()> {
        Box::pin(async move {
            sqlx::query("DELETE FROM setup_tokens")
                .execute(&mut *self)
                .await?;
            sqlx::query("INSERT INTO setup_tokens (token_hash, created_at) VALUES ($1, $2)")
                .bind(token_hash)
                .bind(now)
                .execute(&mut *self)
                .await?;
            Ok(())
        })
    }

    fn consume_setup_token<'a>(&'a mut self, token_hash: &'a str) -> Fut<'a, bool> {
        Box::pin(async move {
            let r = sqlx::query("DELETE FROM setup_tokens WHERE token_hash = $1")
                .bind(token_hash)
                .execute(&mut *self)
                .await?;
            Ok(r.rows_affected() > 0)
        })
    }

    fn clear_setup_tokens(&mut self) -> Fut<'_, ()> {
        Box::pin(async move {
            sqlx::query("DELETE FROM setup_tokens")
                .execute(&mut *self)
                .await?;
            Ok(())
        })
    }

    fn deactivate_user(&mut self, user: UserId) -> Fut<'_, bool> {
        Box::pin(async move {
            let r = sqlx::query("UPDATE users SET deactivated = TRUE WHERE id = $1")
                .bind(user)
                .execute(&mut *self)
                .await?;
            Ok(r.rows_affected() > 0)
        })
    }

    fn room_by_key<'a>(&'a mut self, key: &'a str) -> Fut<'a, Option<RoomId>> {
        Box::pin(async move {
            let row: Option<(i64,)> = sqlx::query_as("SELECT id FROM rooms WHERE member_key = $1")
                .bind(key)
                .fetch_optional(&mut *self)
                .await?;
            Ok(row.map(|r| r.0))
        })
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
        Box::pin(async move {
            let r = sqlx::query(
                "INSERT INTO rooms (kind, name, owner_id, member_key, encrypted, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(kind)
            .bind(name)
            .bind(owner)
            .bind(member_key)
            .bind(encrypted)
            .bind(now)
            .execute(&mut *self)
            .await?;
            Ok(r.last_insert_rowid())
        })
    }

    fn insert_member(&mut self, room: RoomId, user: UserId, now: i64) -> Fut<'_, ()> {
        Box::pin(async move {
            sqlx::query("INSERT INTO members (room_id, user_id, joined_at) VALUES ($1, $2, $3)")
                .bind(room)
                .bind(user)
                .bind(now)
                .execute(&mut *self)
                .await?;
            Ok(())
        })
    }

    fn room_members(&mut self, room: RoomId) -> Fut<'_, Vec<UserId>> {
        Box::pin(async move {
            let rows: Vec<(i64,)> =
                sqlx::query_as("SELECT user_id FROM members WHERE room_id = $1")
                    .bind(room)
                    .fetch_all(&mut *self)
                    .await?;
            Ok(rows.into_iter().map(|r| r.0).collect())
        })
    }

    fn member_exists(&mut self, room: RoomId, user: UserId) -> Fut<'_, bool> {
        Box::pin(async move {
            let row: Option<(i64,)> =
                sqlx::query_as("SELECT 1 FROM members WHERE room_id = $1 AND user_id = $2")
                    .bind(room)
                    .bind(user)
                    .fetch_optional(&mut *self)
                    .await?;
            Ok(row.is_some())
        })
    }

    fn delete_member(&mut self, room: RoomId, user: UserId) -> Fut<'_, ()> {
        Box::pin(async move {
            sqlx::query("DELETE FROM members WHERE room_id = $1 AND user_id = $2")
                .bind(room)
                .bind(user)
                .execute(&mut *self)
                .await?;
            Ok(())
        })
    }

    fn load_room(&mut self, id: RoomId) -> Fut<'_, Option<Room>> {
        Box::pin(load_room(self, id))
    }

    fn bump_epoch(&mut self, room: RoomId) -> Fut<'_, i64> {
        Box::pin(async move {
            let (epoch,): (i64,) =
                sqlx::query_as("UPDATE rooms SET epoch = epoch + 1 WHERE id = $1 RETURNING epoch")
                    .bind(room)
                    .fetch_one(&mut *self)
                    .await?;
            Ok(epoch)
        })
    }

    fn insert_room_change<'a>(
        &'a mut self,
        room: RoomId,
        change: &'a MembershipChange,
    ) -> Fut<'a, ()> {
        Box::pin(async move {
            sqlx::query(
                "INSERT INTO room_changes (room_id, epoch, kind, user_id, actor_id, at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(room)
            .bind(change.epoch)
            .bind(change_kind_str(change.kind))
            .bind(change.user_id)
            .bind(change.actor_id)
            .bind(change.at)
            .execute(&mut *self)
            .await?;
            Ok(())
        })
    }

    fn room_policy(&mut self, room: RoomId) -> Fut<'_, Option<RoomPolicy>> {
        Box::pin(async move {
            let row: Option<(bool, i64, Option<String>, Option<i64>)> = sqlx::query_as(
                "SELECT encrypted, epoch, key_id, key_epoch FROM rooms WHERE id = $1",
            )
            .bind(room)
            .fetch_optional(&mut *self)
            .await?;
            Ok(row.map(|(encrypted, epoch, key_id, key_epoch)| RoomPolicy {
                encrypted,
                epoch,
                key_id,
                key_epoch,
            }))
        })
    }

    fn insert_room_key<'a>(&'a mut self, key: NewRoomKey<'a>) -> Fut<'a, ()> {
        Box::pin(async move {
            let r = sqlx::query(
                "INSERT INTO room_keys (key_id, room_id, epoch, distributor_id, created_at) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(key.key_id)
            .bind(key.room)
            .bind(key.epoch)
            .bind(key.distributor)
            .bind(key.now)
            .execute(&mut *self)
            .await;
            match r {
                Ok(_) => Ok(()),
                Err(e) if is_unique_violation(&e) => Err(ApiError::new(
                    ErrorCode::E2eKeyIdTaken,
                    "a room key with this id exists already",
                )),
                Err(e) => Err(e.into()),
            }
        })
    }

    fn insert_room_key_share<'a>(
        &'a mut self,
        key_id: &'a str,
        user: UserId,
        share: &'a str,
    ) -> Fut<'a, ()> {
        Box::pin(async move {
            sqlx::query("INSERT INTO room_key_shares (key_id, user_id, share) VALUES ($1, $2, $3)")
                .bind(key_id)
                .bind(user)
                .bind(share)
                .execute(&mut *self)
                .await?;
            Ok(())
        })
    }

    fn set_room_key<'a>(&'a mut self, room: RoomId, key_id: &'a str, epoch: i64) -> Fut<'a, ()> {
        Box::pin(async move {
            sqlx::query("UPDATE rooms SET key_id = $1, key_epoch = $2 WHERE id = $3")
                .bind(key_id)
                .bind(epoch)
                .bind(room)
                .execute(&mut *self)
                .await?;
            Ok(())
        })
    }

    fn insert_message<'a>(
        &'a mut self,
        room: RoomId,
        author: UserId,
        kind: &'a str,
        body: &'a str,
        now: i64,
    ) -> Fut<'a, MessageId> {
        Box::pin(async move {
            let r = sqlx::query(
                "INSERT INTO messages (room_id, author_id, body_kind, body, created_at) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(room)
            .bind(author)
            .bind(kind)
            .bind(body)
            .bind(now)
            .execute(&mut *self)
            .await?;
            Ok(r.last_insert_rowid())
        })
    }

    fn update_message<'a>(
        &'a mut self,
        id: MessageId,
        kind: &'a str,
        body: &'a str,
        now: i64,
    ) -> Fut<'a, bool> {
        Box::pin(async move {
            let r = sqlx::query(
                "UPDATE messages SET body_kind = $1, body = $2, edited_at = $3 WHERE id = $4",
            )
            .bind(kind)
            .bind(body)
            .bind(now)
            .bind(id)
            .execute(&mut *self)
            .await?;
            Ok(r.rows_affected() > 0)
        })
    }

    fn delete_message(&mut self, id: MessageId) -> Fut<'_, bool> {
        Box::pin(async move {
            let r = sqlx::query("DELETE FROM messages WHERE id = $1")
                .bind(id)
                .execute(&mut *self)
                .await?;
            Ok(r.rows_affected() > 0)
        })
    }

    fn mark_read(&mut self, room: RoomId, user: UserId, message: MessageId) -> Fut<'_, ()> {
        Box::pin(async move {
            sqlx::query(
                "UPDATE members SET last_read_id = $1 \
                 WHERE room_id = $2 AND user_id = $3 AND last_read_id < $1",
            )
            .bind(message)
            .bind(room)
            .bind(user)
            .execute(&mut *self)
            .await?;
            Ok(())
        })
    }

    fn append_event<'a>(
        &'a mut self,
        room: RoomId,
        message: Option<MessageId>,
        extra_user: Option<UserId>,
        payload: &'a str,
        now: i64,
    ) -> Fut<'a, Seq> {
        Box::pin(async move {
            let r = sqlx::query(
                "INSERT INTO events (room_id, message_id, extra_user, payload, created_at) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(room)
            .bind(message)
            .bind(extra_user)
            .bind(payload)
            .bind(now)
            .execute(&mut *self)
            .await?;
            Ok(r.last_insert_rowid())
        })
    }

    fn prune_events(&mut self, older_than: i64) -> Fut<'_, u64> {
        Box::pin(async move {
            let (max,): (Option<i64>,) =
                sqlx::query_as("SELECT MAX(seq) FROM events WHERE created_at < $1")
                    .bind(older_than)
                    .fetch_one(&mut *self)
                    .await?;
            let Some(max) = max else { return Ok(0) };
            let r = sqlx::query("DELETE FROM events WHERE seq <= $1")
                .bind(max)
                .execute(&mut *self)
                .await?;
            sqlx::query(
                "INSERT INTO meta (key, value) VALUES ('events_pruned_through', $1) \
                 ON CONFLICT (key) DO UPDATE SET value = MAX(meta.value, excluded.value)",
            )
            .bind(max)
            .execute(&mut *self)
            .await?;
            Ok(r.rows_affected())
        })
    }

    fn forget_message_events(&mut self, message: MessageId) -> Fut<'_, ()> {
        Box::pin(async move {
            sqlx::query("DELETE FROM events WHERE message_id = $1")
                .bind(message)
                .execute(&mut *self)
                .await?;
            Ok(())
        })
    }

    fn message_events(&mut self, message: MessageId) -> Fut<'_, Vec<(Seq, String)>> {
        Box::pin(async move {
            Ok(
                sqlx::query_as(
                    "SELECT seq, payload FROM events WHERE message_id = $1 ORDER BY seq",
                )
                .bind(message)
                .fetch_all(&mut *self)
                .await?,
            )
        })
    }

    fn set_event_payload<'a>(&'a mut self, seq: Seq, payload: &'a str) -> Fut<'a, ()> {
        Box::pin(async move {
            sqlx::query("UPDATE events SET payload = $2 WHERE seq = $1")
                .bind(seq)
                .bind(payload)
                .execute(&mut *self)
                .await?;
            Ok(())
        })
    }

    fn index_text<'a>(&'a mut self, id: MessageId, room: RoomId, text: &'a str) -> Fut<'a, ()> {
        Box::pin(async move {
            sqlx::query(
                "INSERT INTO message_search (body, room_id, message_id) VALUES ($1, $2, $3)",
            )
            .bind(text)
            .bind(room)
            .bind(id)
            .execute(&mut *self)
            .await?;
            Ok(())
        })
    }

    fn unindex(&mut self, id: MessageId) -> Fut<'_, ()> {
        Box::pin(async move {
            sqlx::query("DELETE FROM message_search WHERE message_id = $1")
                .bind(id)
                .execute(&mut *self)
                .await?;
            Ok(())
        })
    }

    fn insert_upload<'a>(&'a mut self, u: NewUpload<'a>) -> Fut<'a, UploadId> {
        Box::pin(async move {
            let r = sqlx::query(
                "INSERT INTO uploads (room_id, uploader_id, filename, content_type, size, \
                 storage_name, encrypted, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(u.room)
            .bind(u.uploader)
            .bind(u.filename)
            .bind(u.content_type)
            .bind(u.size)
            .bind(u.storage_name)
            .bind(u.encrypted)
            .bind(u.now)
            .execute(&mut *self)
            .await?;
            Ok(r.last_insert_rowid())
        })
    }

    fn upload(&mut self, id: UploadId) -> Fut<'_, Option<UploadRecord>> {
        Box::pin(async move {
            let row: Option<UploadTuple> = sqlx::query_as(&format!(
                "SELECT {UPLOAD_COLUMNS} FROM uploads WHERE id = $1"
            ))
            .bind(id)
            .fetch_optional(&mut *self)
            .await?;
            Ok(row.map(upload_from))
        })
    }

    fn attach_upload(&mut self, id: UploadId, message: MessageId) -> Fut<'_, ()> {
        Box::pin(async move {
            sqlx::query("UPDATE uploads SET message_id = $1 WHERE id = $2")
                .bind(message)
                .bind(id)
                .execute(&mut *self)
                .await?;
            Ok(())
        })
    }

    fn remove_orphan_uploads(&mut self, older_than: i64) -> Fut<'_, Vec<String>> {
        Box::pin(async move {
            let rows: Vec<(String,)> = sqlx::query_as(
                "SELECT storage_name FROM uploads WHERE message_id IS NULL AND created_at < $1",
            )
            .bind(older_than)
            .fetch_all(&mut *self)
            .await?;
            sqlx::query("DELETE FROM uploads WHERE message_id IS NULL AND created_at < $1")
                .bind(older_than)
                .execute(&mut *self)
                .await?;
            Ok(rows.into_iter().map(|r| r.0).collect())
        })
    }

    fn detach_uploads(&mut self, message: MessageId) -> Fut<'_, Vec<String>> {
        Box::pin(async move {
            let rows: Vec<(String,)> =
                sqlx::query_as("SELECT storage_name FROM uploads WHERE message_id = $1")
                    .bind(message)
                    .fetch_all(&mut *self)
                    .await?;
            sqlx::query("DELETE FROM uploads WHERE message_id = $1")
                .bind(message)
                .execute(&mut *self)
                .await?;
            Ok(rows.into_iter().map(|r| r.0).collect())
        })
    }

    fn upsert_setting<'a>(&'a mut self, key: &'a str, value: &'a str, now: i64) -> Fut<'a, ()> {
        Box::pin(async move {
            sqlx::query(
                "INSERT INTO settings (key, value, updated_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value, \
                 updated_at = excluded.updated_at",
            )
            .bind(key)
            .bind(value)
            .bind(now)
            .execute(&mut *self)
            .await?;
            Ok(())
        })
    }

    fn upsert_e2e_keys<'a>(
        &'a mut self,
        user: UserId,
        keys: &'a E2eRecord,
        now: i64,
    ) -> Fut<'a, ()> {
        Box::pin(async move {
            let r = sqlx::query(
                "INSERT INTO e2e_keys (user_id, curve25519, ed25519, key_backup, trust_store, \
                 agreement_key, agreement_signature, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
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
            )
            .bind(user)
            .bind(&keys.curve25519)
            .bind(&keys.ed25519)
            .bind(&keys.key_backup)
            .bind(&keys.trust_store)
            .bind(&keys.agreement_key)
            .bind(&keys.agreement_signature)
            .bind(now)
            .execute(&mut *self)
            .await;
            match r {
                Ok(_) => Ok(()),
                Err(e) if is_unique_violation(&e) => Err(ApiError::new(
                    ErrorCode::IdentityKeyTaken,
                    "this identity key is registered to another user",
                )),
                Err(e) => Err(e.into()),
            }
        })
    }

    fn set_trust_store<'a>(
        &'a mut self,
        user: UserId,
        trust_store: &'a str,
        now: i64,
    ) -> Fut<'a, bool> {
        Box::pin(async move {
            let r = sqlx::query(
                "UPDATE e2e_keys SET trust_store = $2, updated_at = $3 WHERE user_id = $1",
            )
            .bind(user)
            .bind(trust_store)
            .bind(now)
            .execute(&mut *self)
            .await?;
            Ok(r.rows_affected() > 0)
        })
    }
}
