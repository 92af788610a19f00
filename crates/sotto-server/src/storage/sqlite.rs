//! The SQLite implementation of [`Storage`]: sqlx for migrations and a small read pool (WAL
//! mode: readers never wait for the writer), and one batching writer thread on its own
//! synchronous connection ([`super::sqlite_tx`] implements [`Tx`] there). The SQL is kept
//! close to portable (`$n` placeholders, `BIGINT` millisecond timestamps) so a PostgreSQL
//! implementation can reuse most of it; SQLite-only parts are marked: FTS5 search,
//! `VACUUM INTO`, pragmas, `last_insert_rowid`.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sotto_api::rest::{
    MembershipChange, MembershipChangeKind, Room, RoomKeyEntry, RoomKind, UploadInfo, User,
};
use sotto_api::{MessageId, RoomId, Seq, UploadId, UserId};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection, SqliteConnection, SqlitePool};

use super::writer::Writer;
use super::{
    E2eRecord, Fut, MessageRow, SessionRecord, SessionRow, Storage, UploadRecord, WriteJob,
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
        let mut migrate_conn = opts.connect().await?;
        migrator().run_direct(&mut migrate_conn).await?;
        migrate_conn.close().await?;
        let writer = Writer::start(&data_dir.join(DB_FILE), bus, batch_max)?;
        let read = SqlitePoolOptions::new()
            .max_connections(4)
            .min_connections(1)
            .connect_with(opts.clone())
            .await?;
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

pub(super) fn kind_from(s: &str) -> RoomKind {
    match s {
        "dm" => RoomKind::Dm,
        "multi_dm" => RoomKind::MultiDm,
        _ => RoomKind::Group,
    }
}

const MESSAGE_COLUMNS: &str = "id, room_id, author_id, body_kind, body, created_at, edited_at";
pub(super) const UPLOAD_COLUMNS: &str =
    "id, room_id, filename, content_type, size, uploader_id, storage_name, message_id, encrypted";

pub(super) type UploadTuple = (
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

pub(super) fn upload_from(r: UploadTuple) -> UploadRecord {
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

pub(super) fn change_kind_str(k: MembershipChangeKind) -> &'static str {
    match k {
        MembershipChangeKind::Created => "created",
        MembershipChangeKind::Added => "added",
        MembershipChangeKind::Removed => "removed",
        MembershipChangeKind::Left => "left",
    }
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
