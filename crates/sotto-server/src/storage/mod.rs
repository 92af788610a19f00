//! Storage: the [`Storage`] trait (reads, the write entry point, backup) and the [`Tx`] trait
//! (what a write job may do inside its transaction), with one implementation per backend. Today
//! that is SQLite ([`sqlite::SqliteStorage`]: WAL mode, embedded migrations, one batching
//! writer); PostgreSQL goes behind the same traits later.
//!
//! Services never see SQL or a database type: they call these methods, and every write is a
//! job passed to [`Storage::write`], run inside one transaction (a failed job leaves nothing
//! half-written). The SQLite implementation runs all jobs on one writer thread that batches them
//! into one commit — SQLite allows one writer anyway, and batching turns many small
//! transactions into one fsync. Stored events a job puts in its outbox are published on the bus
//! *after* the commit, in commit order.
//!
//! Each service owns its tables; the methods are grouped here by owner.

pub mod sqlite;
mod sqlite_tx;
mod writer;

use std::any::Any;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;

use sotto_api::rest::{MembershipChange, Room, RoomKeyEntry, UploadInfo, User};
use sotto_api::{MessageId, RoomId, Seq, SessionId, UploadId, UserId};

use crate::bus::BusMessage;
use crate::error::{ApiError, ApiResult};

pub use sqlite::{DB_FILE, UPLOADS_DIR};

/// A boxed storage future.
pub type Fut<'a, T> = Pin<Box<dyn Future<Output = ApiResult<T>> + Send + 'a>>;

/// What a job hands the writer besides its own writes: bus messages to publish once (and only
/// if) the batch is committed, and search-index writes to apply just before that commit.
///
/// Index writes wait for the end of the batch because FTS5 flushes its pending index data to
/// disk whenever a savepoint opens, and every job runs in its own savepoint: written inline,
/// each message cost two index flushes and left tiny segments to merge (27% of the server's
/// instructions in the persisted benchmark). A rolled-back job's outbox is discarded, index
/// writes included; a failed index write fails the whole batch, so no acknowledged message is
/// ever missing from the index.
#[derive(Default)]
pub struct WriteOutbox {
    messages: Vec<BusMessage>,
    search: Vec<SearchWrite>,
}

/// A deferred write to the search index.
pub(crate) enum SearchWrite {
    Index {
        id: MessageId,
        room: RoomId,
        text: String,
    },
    Unindex(MessageId),
}

impl WriteOutbox {
    /// Publishes `message` after the commit.
    pub fn push(&mut self, message: BusMessage) {
        self.messages.push(message);
    }

    /// Indexes a text body for search, just before the commit.
    pub fn index_text(&mut self, id: MessageId, room: RoomId, text: &str) {
        self.search.push(SearchWrite::Index {
            id,
            room,
            text: text.to_string(),
        });
    }

    /// Removes a message from the search index, just before the commit (after any earlier
    /// index write of the same batch, so order is kept).
    pub fn unindex(&mut self, id: MessageId) {
        self.search.push(SearchWrite::Unindex(id));
    }

    /// Applies the search-index writes in the order the jobs made them (by the writer, outside
    /// every savepoint, just before the commit).
    pub(super) async fn apply_search_writes(&mut self, tx: &mut dyn Tx) -> ApiResult<()> {
        for write in self.search.drain(..) {
            match write {
                SearchWrite::Index { id, room, text } => tx.index_text(id, room, &text).await?,
                SearchWrite::Unindex(id) => tx.unindex(id).await?,
            }
        }
        Ok(())
    }

    /// The bus messages, once the batch is committed.
    pub(super) fn into_messages(self) -> Vec<BusMessage> {
        self.messages
    }

    pub(super) fn append(&mut self, other: &mut WriteOutbox) {
        self.messages.append(&mut other.messages);
        self.search.append(&mut other.search);
    }
}

/// A type-erased write job (see [`Storage::write`] on `dyn Storage` for the typed entry).
pub type WriteJob = Box<
    dyn for<'c> FnOnce(&'c mut dyn Tx, &'c mut WriteOutbox) -> Fut<'c, Box<dyn Any + Send>> + Send,
>;

/// A session looked up by its token hash.
#[derive(Debug, Clone)]
pub struct SessionRecord {
    /// Session id.
    pub id: SessionId,
    /// Owner.
    pub user_id: UserId,
    /// CSRF token.
    pub csrf_token: String,
    /// Last use.
    pub last_seen_at: i64,
    /// Owner is an admin.
    pub is_admin: bool,
    /// Owner is deactivated.
    pub deactivated: bool,
}

/// A session as listed to its owner: (id, created_at, last_seen_at, kind, user_agent).
pub type SessionRow = (SessionId, i64, i64, String, Option<String>);

/// A stored message: (id, room, author, body kind, body, created_at, edited_at).
pub type MessageRow = (MessageId, RoomId, UserId, String, String, i64, Option<i64>);

/// An upload with where it lives and what it is attached to.
#[derive(Debug, Clone)]
pub struct UploadRecord {
    /// Public description.
    pub info: UploadInfo,
    /// Uploader.
    pub uploader_id: UserId,
    /// File name inside the uploads directory.
    pub storage_name: String,
    /// Message it is attached to, if any.
    pub message_id: Option<MessageId>,
}

/// An upload to record.
#[derive(Debug, Clone, Copy)]
pub struct NewUpload<'a> {
    /// Room.
    pub room: RoomId,
    /// Uploader.
    pub uploader: UserId,
    /// Sanitised file name.
    pub filename: &'a str,
    /// Sniffed content type.
    pub content_type: &'a str,
    /// Size in bytes.
    pub size: i64,
    /// File name inside the uploads directory.
    pub storage_name: &'a str,
    /// Declared client-encrypted.
    pub encrypted: bool,
    /// Time of upload.
    pub now: i64,
}

/// What the messages and room-keys services check about a room inside a write job: whether it
/// is encrypted, its membership epoch and its current key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomPolicy {
    /// End-to-end encrypted.
    pub encrypted: bool,
    /// Membership epoch.
    pub epoch: i64,
    /// Current key id.
    pub key_id: Option<String>,
    /// Epoch of the current key.
    pub key_epoch: Option<i64>,
}

/// A room key to record, with one sealed share per recipient.
#[derive(Debug, Clone, Copy)]
pub struct NewRoomKey<'a> {
    /// Room.
    pub room: RoomId,
    /// Key id (unpadded base64).
    pub key_id: &'a str,
    /// Epoch it is for.
    pub epoch: i64,
    /// Distributor.
    pub distributor: UserId,
    /// Time of distribution.
    pub now: i64,
}

/// A user's entry in the E2E key directory. The backup and trust store are sealed by the
/// client; the server stores them as the opaque base64 text it received.
#[derive(Clone)]
pub struct E2eRecord {
    /// Curve25519 identity key (unpadded base64).
    pub curve25519: String,
    /// Ed25519 key (unpadded base64).
    pub ed25519: String,
    /// Sealed key backup (base64).
    pub key_backup: String,
    /// Sealed trust store (base64).
    pub trust_store: String,
    /// Room agreement key (unpadded base64), if published.
    pub agreement_key: Option<String>,
    /// Its signature (unpadded base64), with the key.
    pub agreement_signature: Option<String>,
}

impl std::fmt::Debug for E2eRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("E2eRecord")
            .field("curve25519", &self.curve25519)
            .field("ed25519", &self.ed25519)
            .field(
                "key_backup",
                &format_args!("<{} chars>", self.key_backup.len()),
            )
            .field(
                "trust_store",
                &format_args!("<{} chars>", self.trust_store.len()),
            )
            .field("agreement_key", &self.agreement_key)
            .finish()
    }
}

/// Reads, the write entry point and maintenance. One implementation per backend.
pub trait Storage: Send + Sync + 'static {
    // ------------------------------------------------------------ accounts
    /// A user by id.
    fn user(&self, id: UserId) -> Fut<'_, Option<User>>;
    /// Every user, active first, by name.
    fn users(&self) -> Fut<'_, Vec<User>>;
    /// A user and their password hash, by username.
    fn user_for_login<'a>(&'a self, username: &'a str) -> Fut<'a, Option<(User, String)>>;
    /// A user's password hash.
    fn password_hash(&self, user: UserId) -> Fut<'_, Option<String>>;
    /// A session by the hash of its token.
    fn session_by_token<'a>(&'a self, token_hash: &'a str) -> Fut<'a, Option<SessionRecord>>;
    /// A user's sessions.
    fn sessions_of(&self, user: UserId) -> Fut<'_, Vec<SessionRow>>;

    // ------------------------------------------------------------ rooms
    /// Whether `user` is in `room`.
    fn is_member(&self, room: RoomId, user: UserId) -> Fut<'_, bool>;
    /// Members of a room.
    fn members(&self, room: RoomId) -> Fut<'_, Vec<UserId>>;
    /// Everyone sharing a room with `user`.
    fn co_members(&self, user: UserId) -> Fut<'_, Vec<UserId>>;
    /// Rooms of a user.
    fn room_ids_of(&self, user: UserId) -> Fut<'_, Vec<RoomId>>;
    /// A room with its members.
    fn room(&self, id: RoomId) -> Fut<'_, Option<Room>>;
    /// The encrypted rooms `user` is in, ascending.
    fn encrypted_room_ids_of(&self, user: UserId) -> Fut<'_, Vec<RoomId>>;
    /// A room's membership history, oldest first.
    fn room_changes(&self, room: RoomId) -> Fut<'_, Vec<MembershipChange>>;
    /// Whether `a` and `b` are or were members of one room (by the membership history).
    fn have_shared_room(&self, a: UserId, b: UserId) -> Fut<'_, bool>;

    // ------------------------------------------------------------ room keys
    /// `user`'s own shares of `room`'s keys, oldest first.
    fn room_key_shares(&self, room: RoomId, user: UserId) -> Fut<'_, Vec<RoomKeyEntry>>;

    // ------------------------------------------------------------ messages
    /// Up to `limit` messages of a room with id < `before`, newest first.
    fn messages_before(
        &self,
        room: RoomId,
        before: MessageId,
        limit: i64,
    ) -> Fut<'_, Vec<MessageRow>>;
    /// Up to `limit` messages of a room with id > `after`, oldest first.
    fn messages_after(
        &self,
        room: RoomId,
        after: MessageId,
        limit: i64,
    ) -> Fut<'_, Vec<MessageRow>>;
    /// A message.
    fn message(&self, id: MessageId) -> Fut<'_, Option<MessageRow>>;
    /// Messages by others after `user`'s read marker in `room`.
    fn unread_count(&self, room: RoomId, user: UserId) -> Fut<'_, i64>;

    // ------------------------------------------------------------ event log
    /// Stored events after `since` for `user`'s rooms (or addressed to them), oldest first.
    fn events_since(&self, user: UserId, since: Seq, limit: i64) -> Fut<'_, Vec<(Seq, String)>>;
    /// The newest position: the largest seq stored or pruned, so pruning never moves it back.
    fn events_head(&self) -> Fut<'_, Seq>;
    /// Events up to this position were pruned by retention (0 if none were).
    fn events_pruned_through(&self) -> Fut<'_, Seq>;

    // ------------------------------------------------------------ search
    /// Message ids matching a (backend-escaped) query of plain terms in `user`'s rooms, best first.
    fn search<'a>(
        &'a self,
        terms: &'a [String],
        user: UserId,
        limit: i64,
        offset: i64,
    ) -> Fut<'a, Vec<MessageId>>;

    // ------------------------------------------------------------ uploads
    /// An upload.
    fn upload(&self, id: UploadId) -> Fut<'_, Option<UploadRecord>>;
    /// Attachments of the given messages.
    fn uploads_of_messages<'a>(&'a self, ids: &'a [MessageId]) -> Fut<'a, Vec<UploadRecord>>;
    /// The file names (inside the uploads directory) of every recorded upload.
    fn upload_files(&self) -> Fut<'_, Vec<String>>;
    /// Where upload files live.
    fn uploads_dir(&self) -> PathBuf;

    // ------------------------------------------------------------ settings
    /// Stored settings as (key, JSON text).
    fn settings(&self) -> Fut<'_, Vec<(String, String)>>;

    // ------------------------------------------------------------ e2e key directory
    /// A user's keys, backup and trust store.
    fn e2e_keys(&self, user: UserId) -> Fut<'_, Option<E2eRecord>>;

    // ------------------------------------------------------------ writes and maintenance
    /// Runs a write job in its own transaction (or savepoint of a batch) and returns its output
    /// after the commit. Use the typed [`dyn Storage::write`](Storage) helper instead.
    fn write_erased(&self, job: WriteJob) -> Fut<'_, Box<dyn Any + Send>>;
    /// Writes a consistent copy of the database to `dest` while running.
    fn backup_into<'a>(&'a self, dest: &'a Path) -> Fut<'a, ()>;
    /// Closes connections.
    fn close(&self) -> Fut<'_, ()>;
}

impl dyn Storage {
    /// Runs `job` as one atomic write and returns its result once committed. If the job fails,
    /// its writes are rolled back and its outbox discarded.
    pub async fn write<T, F>(&self, job: F) -> ApiResult<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut dyn Tx, &'c mut WriteOutbox) -> Fut<'c, T> + Send + 'static,
    {
        let erased: WriteJob = Box::new(move |tx, outbox| {
            let fut = job(tx, outbox);
            Box::pin(async move { fut.await.map(|v| Box::new(v) as Box<dyn Any + Send>) })
        });
        let out = self.write_erased(erased).await?;
        out.downcast::<T>()
            .map(|b| *b)
            .map_err(|_| ApiError::internal("write job type mismatch"))
    }
}

/// What a write job may do, inside its transaction. Await every call: a backend may do the work
/// when the call is made (SQLite's does) or only when it is polled.
pub trait Tx: Send {
    // ------------------------------------------------------------ accounts
    /// Inserts a user; `username_taken` if the name exists.
    fn insert_user<'a>(
        &'a mut self,
        username: &'a str,
        hash: &'a str,
        is_admin: bool,
    ) -> Fut<'a, User>;
    /// Whether an invite is unused and unexpired.
    fn invite_usable<'a>(&'a mut self, token_hash: &'a str, now: i64) -> Fut<'a, bool>;
    /// Marks an invite used.
    fn use_invite<'a>(&'a mut self, token_hash: &'a str, user: UserId) -> Fut<'a, ()>;
    /// Stores an invite.
    fn insert_invite<'a>(
        &'a mut self,
        token_hash: &'a str,
        by: UserId,
        expires_at: i64,
    ) -> Fut<'a, ()>;
    /// Stores a session; returns its id.
    fn insert_session<'a>(
        &'a mut self,
        user: UserId,
        token_hash: &'a str,
        csrf: &'a str,
        kind: &'a str,
        user_agent: Option<&'a str>,
        now: i64,
    ) -> Fut<'a, SessionId>;
    /// Records a session's use.
    fn touch_session(&mut self, id: SessionId, now: i64) -> Fut<'_, ()>;
    /// Deletes one of `user`'s sessions; false if there was none.
    fn delete_session(&mut self, id: SessionId, user: UserId) -> Fut<'_, bool>;
    /// Deletes `user`'s sessions except `keep`; returns the deleted ids.
    fn delete_sessions_except(
        &mut self,
        user: UserId,
        keep: Option<SessionId>,
    ) -> Fut<'_, Vec<SessionId>>;
    /// Sets a password hash.
    fn set_password<'a>(&'a mut self, user: UserId, hash: &'a str) -> Fut<'a, ()>;
    /// Number of admins.
    fn admin_count(&mut self) -> Fut<'_, i64>;
    /// Replaces any set-up token with this one.
    fn replace_setup_token<'a>(&'a mut self, token_hash: &'a str, now: i64) -> Fut<'a, ()>;
    /// Deletes a set-up token; false if it did not exist.
    fn consume_setup_token<'a>(&'a mut self, token_hash: &'a str) -> Fut<'a, bool>;
    /// Deletes every set-up token.
    fn clear_setup_tokens(&mut self) -> Fut<'_, ()>;
    /// Deactivates a user; false if there is none.
    fn deactivate_user(&mut self, user: UserId) -> Fut<'_, bool>;

    // ------------------------------------------------------------ rooms
    /// The room with this fixed member key (DMs).
    fn room_by_key<'a>(&'a mut self, key: &'a str) -> Fut<'a, Option<RoomId>>;
    /// Inserts a room.
    fn insert_room<'a>(
        &'a mut self,
        kind: &'a str,
        name: Option<&'a str>,
        owner: Option<UserId>,
        member_key: Option<&'a str>,
        encrypted: bool,
        now: i64,
    ) -> Fut<'a, RoomId>;
    /// Adds a member.
    fn insert_member(&mut self, room: RoomId, user: UserId, now: i64) -> Fut<'_, ()>;
    /// The members of a room, read in this transaction: who an event appended in it goes to.
    fn room_members(&mut self, room: RoomId) -> Fut<'_, Vec<UserId>>;
    /// Whether `user` is in `room`.
    fn member_exists(&mut self, room: RoomId, user: UserId) -> Fut<'_, bool>;
    /// Removes a member.
    fn delete_member(&mut self, room: RoomId, user: UserId) -> Fut<'_, ()>;
    /// A room with its members.
    fn load_room(&mut self, id: RoomId) -> Fut<'_, Option<Room>>;
    /// Advances a room's membership epoch; returns the new one.
    fn bump_epoch(&mut self, room: RoomId) -> Fut<'_, i64>;
    /// Records a membership change (`kind`: created, added, removed, left).
    fn insert_room_change<'a>(
        &'a mut self,
        room: RoomId,
        change: &'a MembershipChange,
    ) -> Fut<'a, ()>;
    /// A room's encryption, epoch and current key.
    fn room_policy(&mut self, room: RoomId) -> Fut<'_, Option<RoomPolicy>>;

    // ------------------------------------------------------------ room keys
    /// Records a room key; `e2e_key_id_taken` if the id exists.
    fn insert_room_key<'a>(&'a mut self, key: NewRoomKey<'a>) -> Fut<'a, ()>;
    /// Stores one recipient's share of a key.
    fn insert_room_key_share<'a>(
        &'a mut self,
        key_id: &'a str,
        user: UserId,
        share: &'a str,
    ) -> Fut<'a, ()>;
    /// Makes a key the room's current one.
    fn set_room_key<'a>(&'a mut self, room: RoomId, key_id: &'a str, epoch: i64) -> Fut<'a, ()>;

    // ------------------------------------------------------------ messages
    /// Inserts a message; returns its id.
    fn insert_message<'a>(
        &'a mut self,
        room: RoomId,
        author: UserId,
        kind: &'a str,
        body: &'a str,
        now: i64,
    ) -> Fut<'a, MessageId>;
    /// Replaces a body; false if there is no such message.
    fn update_message<'a>(
        &'a mut self,
        id: MessageId,
        kind: &'a str,
        body: &'a str,
        now: i64,
    ) -> Fut<'a, bool>;
    /// Deletes a message; false if there was none.
    fn delete_message(&mut self, id: MessageId) -> Fut<'_, bool>;
    /// Moves a read marker forward.
    fn mark_read(&mut self, room: RoomId, user: UserId, message: MessageId) -> Fut<'_, ()>;

    // ------------------------------------------------------------ event log
    /// Appends an event; returns its position.
    fn append_event<'a>(
        &'a mut self,
        room: RoomId,
        message: Option<MessageId>,
        extra_user: Option<UserId>,
        payload: &'a str,
        now: i64,
    ) -> Fut<'a, Seq>;
    /// Deletes events older than `older_than` (ms) and records how far pruning went; returns
    /// how many were deleted.
    fn prune_events(&mut self, older_than: i64) -> Fut<'_, u64>;
    /// Forgets the logged events of a message.
    fn forget_message_events(&mut self, message: MessageId) -> Fut<'_, ()>;
    /// The logged events of a message as (seq, payload), oldest first.
    fn message_events(&mut self, message: MessageId) -> Fut<'_, Vec<(Seq, String)>>;
    /// Replaces a logged event's payload.
    fn set_event_payload<'a>(&'a mut self, seq: Seq, payload: &'a str) -> Fut<'a, ()>;

    // ------------------------------------------------------------ search
    /// Indexes a text body.
    fn index_text<'a>(&'a mut self, id: MessageId, room: RoomId, text: &'a str) -> Fut<'a, ()>;
    /// Removes a message from the index.
    fn unindex(&mut self, id: MessageId) -> Fut<'_, ()>;

    // ------------------------------------------------------------ uploads
    /// Records an upload; returns its id.
    fn insert_upload<'a>(&'a mut self, upload: NewUpload<'a>) -> Fut<'a, UploadId>;
    /// An upload (inside the transaction).
    fn upload(&mut self, id: UploadId) -> Fut<'_, Option<UploadRecord>>;
    /// Attaches an upload to a message.
    fn attach_upload(&mut self, id: UploadId, message: MessageId) -> Fut<'_, ()>;
    /// Deletes uploads never attached to a message and older than `older_than` (ms); returns
    /// their storage names.
    fn remove_orphan_uploads(&mut self, older_than: i64) -> Fut<'_, Vec<String>>;
    /// Deletes a message's uploads; returns their storage names.
    fn detach_uploads(&mut self, message: MessageId) -> Fut<'_, Vec<String>>;

    // ------------------------------------------------------------ settings
    /// Stores a setting.
    fn upsert_setting<'a>(&'a mut self, key: &'a str, value: &'a str, now: i64) -> Fut<'a, ()>;

    // ------------------------------------------------------------ e2e key directory
    /// Publishes or replaces a user's keys, backup and trust store; `identity_key_taken` if the
    /// Curve25519 key belongs to another user. An absent agreement key keeps the stored one
    /// while the identity keys stay the same.
    fn upsert_e2e_keys<'a>(
        &'a mut self,
        user: UserId,
        keys: &'a E2eRecord,
        now: i64,
    ) -> Fut<'a, ()>;
    /// Replaces a user's trust store; false if they have no keys.
    fn set_trust_store<'a>(
        &'a mut self,
        user: UserId,
        trust_store: &'a str,
        now: i64,
    ) -> Fut<'a, bool>;
}

/// The database handle services hold.
pub type Db = Arc<dyn Storage>;

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
