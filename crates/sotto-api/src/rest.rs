//! JSON bodies of the HTTP API (`/api/v1/...`). Request bodies reject unknown fields, so a typo
//! in a client is an `unknown_field` error rather than a silently ignored option.
//!
//! Timestamps are milliseconds since the Unix epoch (UTC).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{MessageId, RoomId, Seq, SessionId, UploadId, UserId};

// ---------------------------------------------------------------- accounts
//
// Types carrying passwords or tokens write their `Debug` by hand, with the secrets redacted,
// so a stray `{:?}` in a log line cannot leak them.

/// Stands for a secret in `Debug` output.
struct Redacted;

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Debug for RegisterRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegisterRequest")
            .field("username", &self.username)
            .field("password", &Redacted)
            .field(
                "invite_token",
                &self.invite_token.as_ref().map(|_| Redacted),
            )
            .finish()
    }
}

impl fmt::Debug for LoginRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginRequest")
            .field("username", &self.username)
            .field("password", &Redacted)
            .field("cookie", &self.cookie)
            .finish()
    }
}

impl fmt::Debug for LoginResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginResponse")
            .field("token", &self.token.as_ref().map(|_| Redacted))
            .field("session_id", &self.session_id)
            .field("csrf_token", &Redacted)
            .field("user", &self.user)
            .finish()
    }
}

impl fmt::Debug for SetupRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SetupRequest")
            .field("token", &Redacted)
            .field("username", &self.username)
            .field("password", &Redacted)
            .finish()
    }
}

impl fmt::Debug for ChangePasswordRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChangePasswordRequest")
            .field("current_password", &Redacted)
            .field("new_password", &Redacted)
            .finish()
    }
}

impl fmt::Debug for Invite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Invite")
            .field("token", &Redacted)
            .field("url", &Redacted)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl fmt::Debug for CreateUserRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CreateUserRequest")
            .field("username", &self.username)
            .field("password", &Redacted)
            .field("is_admin", &self.is_admin)
            .finish()
    }
}

/// `POST /api/v1/accounts/register`.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    /// 3-32 characters: lowercase ASCII letters, digits, `_`, `.`, `-`; starts with a letter or digit.
    pub username: String,
    /// At least 8 characters, at most 1024 bytes.
    pub password: String,
    /// Required when the registration policy is `invite_only`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invite_token: Option<String>,
}

/// `POST /api/v1/accounts/login`.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// Username.
    pub username: String,
    /// Password.
    pub password: String,
    /// `true` for a browser session: the token is set as an HttpOnly, SameSite=Strict cookie and
    /// not returned in the body; writes then need the `X-CSRF-Token` header.
    #[serde(default)]
    pub cookie: bool,
}

/// Answer to login, set-up and registration.
#[derive(Clone, Serialize, Deserialize)]
pub struct LoginResponse {
    /// Bearer token (absent for cookie sessions). Secret: never log it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// The session's id (for listing and revoking).
    pub session_id: SessionId,
    /// Value for the `X-CSRF-Token` header on cookie-authenticated writes.
    pub csrf_token: String,
    /// The logged-in user.
    pub user: User,
}

/// `POST /api/v1/setup`: use the one-time admin set-up link printed on first start.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetupRequest {
    /// The token from the set-up link.
    pub token: String,
    /// Admin's username.
    pub username: String,
    /// Admin's password.
    pub password: String,
}

/// `POST /api/v1/accounts/password`.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    /// The current password.
    pub current_password: String,
    /// The new password. Every other session of the user is revoked.
    pub new_password: String,
}

/// A user as others see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Id.
    pub id: UserId,
    /// Username.
    pub username: String,
    /// Whether the user is an administrator.
    pub is_admin: bool,
    /// Whether an admin deactivated the user.
    pub deactivated: bool,
}

/// A user with their current presence (`GET /api/v1/users`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserWithPresence {
    /// The user.
    #[serde(flatten)]
    pub user: User,
    /// Current presence.
    pub presence: Presence,
}

/// Presence derived from live realtime connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Presence {
    /// At least one connection is open and not away.
    Online,
    /// Connections are open, all of them report away.
    Away,
    /// No open connection.
    Offline,
}

/// One of the caller's sessions (`GET /api/v1/sessions`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionInfo {
    /// Id, for `DELETE /api/v1/sessions/{id}`.
    pub id: SessionId,
    /// When it was created.
    pub created_at: i64,
    /// Last time it authenticated a request.
    pub last_seen_at: i64,
    /// `bearer` or `cookie`.
    pub kind: String,
    /// The `User-Agent` at login, if any.
    pub user_agent: Option<String>,
    /// Whether this is the session making the request.
    pub current: bool,
}

/// `POST /api/v1/admin/invites` answer.
#[derive(Clone, Serialize, Deserialize)]
pub struct Invite {
    /// The invite token (single use).
    pub token: String,
    /// A link containing it.
    pub url: String,
    /// Expiry.
    pub expires_at: i64,
}

/// `POST /api/v1/admin/users` (admins create accounts directly).
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateUserRequest {
    /// Username.
    pub username: String,
    /// Password.
    pub password: String,
    /// Make the user an admin.
    #[serde(default)]
    pub is_admin: bool,
}

// ---------------------------------------------------------------- rooms

/// The three kinds of room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoomKind {
    /// One-to-one direct message: exactly two members, fixed.
    Dm,
    /// Multi-user direct message: three or more members, fixed.
    MultiDm,
    /// Named private group with an owner; members invite, the owner kicks.
    Group,
}

/// `POST /api/v1/rooms/dm`: get or create the DM with another user.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DmRequest {
    /// The other user.
    pub user_id: UserId,
    /// End-to-end encrypted (`true`) or ordinary (`false`); absent: the admin setting
    /// `e2e.encrypt_new_dms` decides. An encrypted and an ordinary DM between the same people
    /// are two distinct rooms (at most one of each).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encrypted: Option<bool>,
}

/// `POST /api/v1/rooms/multi-dm`: get or create the multi-user DM with exactly these people.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MultiDmRequest {
    /// The other users (the caller is added); at least two others.
    pub user_ids: Vec<UserId>,
    /// As for [`DmRequest::encrypted`] (the setting `e2e.encrypt_new_dms` decides when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encrypted: Option<bool>,
}

/// `POST /api/v1/rooms/groups`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateGroupRequest {
    /// 1-80 characters.
    pub name: String,
    /// Initial members besides the caller (the owner).
    #[serde(default)]
    pub member_ids: Vec<UserId>,
    /// End-to-end encrypted or not; absent: the admin setting `e2e.encrypt_new_groups` decides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encrypted: Option<bool>,
}

/// `POST /api/v1/rooms/{id}/members`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddMemberRequest {
    /// The user to add.
    pub user_id: UserId,
}

/// `POST /api/v1/rooms/{id}/read`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarkReadRequest {
    /// Everything up to and including this message is read.
    pub message_id: MessageId,
}

/// A room as its members see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Room {
    /// Id.
    pub id: RoomId,
    /// Kind.
    pub kind: RoomKind,
    /// Name (groups only).
    pub name: Option<String>,
    /// Owner (groups only).
    pub owner_id: Option<UserId>,
    /// Member ids, ascending.
    pub members: Vec<UserId>,
    /// Newest message, if any (in the room list).
    #[serde(default)]
    pub last_message: Option<Message>,
    /// Messages by others after the caller's read marker (in the room list).
    #[serde(default)]
    pub unread_count: i64,
    /// End-to-end encrypted: only `encrypted` bodies and encrypted uploads are accepted.
    #[serde(default)]
    pub encrypted: bool,
    /// Membership epoch: 0 at creation, advanced by every membership change (add, remove,
    /// leave). An encrypted room needs a key of the current epoch before anyone may write.
    #[serde(default)]
    pub epoch: i64,
    /// The room's current key id (unpadded base64 of 16 bytes), if a key was distributed.
    #[serde(default)]
    pub key_id: Option<String>,
    /// The epoch the current key was distributed for; stale unless it equals `epoch`.
    #[serde(default)]
    pub key_epoch: Option<i64>,
}

// ---------------------------------------------------------------- room keys (E2E rooms)

/// One recipient's share of a room key: the room key sealed to them by the distributor
/// (opaque to the server; its format belongs to `sotto-crypto`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoomKeyShare {
    /// The recipient.
    pub user_id: UserId,
    /// The sealed share, standard base64 (at most 40 KiB decoded).
    pub share: String,
}

/// `PUT /api/v1/rooms/{id}/keys`: distribute a new room key to exactly the current members.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PutRoomKeyRequest {
    /// The key's id, standard base64 of 16 bytes, padded or not (stored and answered unpadded,
    /// 22 characters); never reused.
    pub key_id: String,
    /// The room's epoch the distributor saw; must be the current one.
    pub epoch: i64,
    /// One share per current member (the distributor included), no one else.
    pub shares: Vec<RoomKeyShare>,
}

/// A room key share as served to its recipient.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomKeyEntry {
    /// Key id.
    pub key_id: String,
    /// Epoch the key was distributed for.
    pub epoch: i64,
    /// Who distributed it (a member at the time).
    pub distributor_id: UserId,
    /// The caller's sealed share.
    pub share: String,
    /// Server time of distribution.
    pub created_at: i64,
}

/// What happened to a room's membership.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MembershipChangeKind {
    /// The user created the room.
    Created,
    /// The user was made a member (at creation by its creator, later by an invite).
    Added,
    /// The owner removed the user.
    Removed,
    /// The user left.
    Left,
}

/// One entry of a room's membership history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembershipChange {
    /// The room's epoch after the change.
    pub epoch: i64,
    /// What happened.
    pub kind: MembershipChangeKind,
    /// To whom.
    pub user_id: UserId,
    /// Who did it (absent for memberships older than the history).
    pub actor_id: Option<UserId>,
    /// Server time.
    pub at: i64,
}

/// `GET /api/v1/rooms/{id}/keys`: the caller's own key shares of the room (oldest first, never
/// another member's) and the room's whole membership history, so clients can show every
/// membership change — a member the server adds on its own is visible.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomKeys {
    /// Current epoch.
    pub epoch: i64,
    /// Current members, ascending.
    pub members: Vec<UserId>,
    /// Current key id, if any.
    pub key_id: Option<String>,
    /// The caller's shares, oldest first.
    pub keys: Vec<RoomKeyEntry>,
    /// Membership history, oldest first.
    pub changes: Vec<MembershipChange>,
}

// ---------------------------------------------------------------- messages

/// A message body: text the server may index, or an envelope it must not interpret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum MessageBody {
    /// Plain text, searchable.
    Text {
        /// The text.
        text: String,
    },
    /// An end-to-end encrypted envelope (base64 or any printable ASCII encoding chosen by the
    /// client; its contents are defined by `sotto-crypto`). Stored verbatim, never indexed.
    Encrypted {
        /// The opaque envelope.
        envelope: String,
    },
}

impl MessageBody {
    /// Size that counts against `messages.max_bytes`.
    pub fn len(&self) -> usize {
        match self {
            MessageBody::Text { text } => text.len(),
            MessageBody::Encrypted { envelope } => envelope.len(),
        }
    }

    /// Whether the body is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// `POST /api/v1/rooms/{id}/messages`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendMessageRequest {
    /// The body.
    pub body: MessageBody,
    /// An upload (made into the same room) to attach.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attachment_id: Option<UploadId>,
}

/// `PATCH /api/v1/messages/{id}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EditMessageRequest {
    /// The new body.
    pub body: MessageBody,
}

/// A stored message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// Id (server-assigned, increasing).
    pub id: MessageId,
    /// Room.
    pub room_id: RoomId,
    /// Author (stamped by the server).
    pub author_id: UserId,
    /// Body.
    pub body: MessageBody,
    /// Attached upload, if any.
    #[serde(default)]
    pub attachment: Option<UploadInfo>,
    /// Server time of sending.
    pub created_at: i64,
    /// Server time of the last edit.
    #[serde(default)]
    pub edited_at: Option<i64>,
}

/// `GET /api/v1/rooms/{id}/messages?before=&after=&limit=`. Messages are in ascending id order.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HistoryPage {
    /// The page, oldest first.
    pub messages: Vec<Message>,
    /// Cursor for the page before this one (older), if there is one.
    pub before: Option<String>,
    /// Cursor for the page after this one (newer), if there is one.
    pub after: Option<String>,
}

/// `GET /api/v1/search?q=&limit=&offset=`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SearchResults {
    /// Best first.
    pub hits: Vec<Message>,
    /// Offset of the next page, if there may be one.
    pub next_offset: Option<u32>,
    /// The caller's end-to-end encrypted rooms: the server cannot search them (clients search
    /// what they decrypted, locally).
    #[serde(default)]
    pub unsearched_rooms: Vec<RoomId>,
}

/// An uploaded file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadInfo {
    /// Id, for `GET /api/v1/uploads/{id}`.
    pub id: UploadId,
    /// Room it belongs to.
    pub room_id: RoomId,
    /// File name given by the uploader (sanitised).
    pub filename: String,
    /// Content type the server sniffed (not the one the client claimed).
    pub content_type: String,
    /// Size in bytes.
    pub size: i64,
    /// Whether the server serves it inline (raster images only).
    pub inline: bool,
    /// Uploaded as client-encrypted ciphertext (`?encrypted=true`): stored as
    /// `application/octet-stream`, never sniffed or served inline.
    #[serde(default)]
    pub encrypted: bool,
}

// ---------------------------------------------------------------- settings

/// Settings as a key → JSON value map (`GET /api/v1/settings`, `PUT /api/v1/admin/settings`).
pub type SettingsMap = BTreeMap<String, serde_json::Value>;

/// `GET /api/v1/healthz`-style answers and small acknowledgements.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Ok {
    /// Always `true`.
    pub ok: bool,
}

/// `GET /api/v1/ws` query string.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WsQuery {
    /// Last stored-event position the client saw; events after it are replayed first.
    #[serde(default)]
    pub since: Option<Seq>,
    /// The id of this session's connection that dropped abnormally moments ago: within the
    /// grace period the new connection takes over that id (so state bound to it, such as an
    /// off-the-record session, survives a network blip). Otherwise a new id is assigned.
    #[serde(default)]
    pub resume: Option<String>,
}

/// `PUT /api/v1/e2e/keys`: publish the caller's public identity keys and store, together, their
/// key backup and sealed trust store (opaque to the server). Replacing them is an identity reset:
/// the caller's peers will see a changed safety number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct E2eKeysUpload {
    /// Curve25519 identity key, unpadded base64 of 32 bytes.
    pub curve25519: String,
    /// Ed25519 key, unpadded base64 of 32 bytes.
    pub ed25519: String,
    /// The key backup, standard base64 (opaque; at most 64 KiB decoded).
    pub key_backup: String,
    /// The sealed trust store, standard base64 (opaque; at most 4 MiB decoded).
    pub trust_store: String,
    /// The room agreement key (X25519, for room key shares), unpadded base64 of 32 bytes. With
    /// the same identity keys, omitting it keeps the one published before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agreement_key: Option<String>,
    /// Ed25519 signature by the identity key over the agreement key (its format belongs to
    /// `sotto-crypto`), unpadded base64 of 64 bytes. Given together with `agreement_key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agreement_signature: Option<String>,
}

/// `GET /api/v1/e2e/keys/me`: the caller's own keys, backup and trust store.
pub type E2eOwnKeys = E2eKeysUpload;

/// `PUT /api/v1/e2e/trust-store`: replace the caller's sealed trust store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustStoreUpload {
    /// The sealed trust store, standard base64.
    pub trust_store: String,
}

/// `GET /api/v1/e2e/keys/{user_id}`: a user's public identity keys, readable by anyone who shares
/// or has shared a room with them (a removed member's old messages must still verify) (otherwise `404 not_found`, like a user without keys: `404 e2e_not_set_up`
/// only for the caller's own keys).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicKeys {
    /// Whose keys.
    pub user_id: UserId,
    /// Curve25519 identity key, unpadded base64.
    pub curve25519: String,
    /// Ed25519 key, unpadded base64.
    pub ed25519: String,
    /// Room agreement key, unpadded base64 (absent until the user's client published one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agreement_key: Option<String>,
    /// Its signature by the Ed25519 key, unpadded base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agreement_signature: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_passwords_or_tokens() {
        const SECRET: &str = "s3cret-value";
        let user = User {
            id: 1,
            username: "alice".into(),
            is_admin: false,
            deactivated: false,
        };
        let shown = [
            format!(
                "{:?}",
                RegisterRequest {
                    username: "alice".into(),
                    password: SECRET.into(),
                    invite_token: Some(SECRET.into()),
                }
            ),
            format!(
                "{:?}",
                LoginRequest {
                    username: "alice".into(),
                    password: SECRET.into(),
                    cookie: false,
                }
            ),
            format!(
                "{:?}",
                LoginResponse {
                    token: Some(SECRET.into()),
                    session_id: 1,
                    csrf_token: SECRET.into(),
                    user,
                }
            ),
            format!(
                "{:?}",
                SetupRequest {
                    token: SECRET.into(),
                    username: "alice".into(),
                    password: SECRET.into(),
                }
            ),
            format!(
                "{:?}",
                ChangePasswordRequest {
                    current_password: SECRET.into(),
                    new_password: SECRET.into(),
                }
            ),
            format!(
                "{:?}",
                Invite {
                    token: SECRET.into(),
                    url: format!("http://x/register#{SECRET}"),
                    expires_at: 0,
                }
            ),
            format!(
                "{:?}",
                CreateUserRequest {
                    username: "alice".into(),
                    password: SECRET.into(),
                    is_admin: false,
                }
            ),
        ];
        for s in &shown {
            assert!(!s.contains(SECRET), "{s}");
            assert!(s.contains("<redacted>"), "{s}");
        }
        assert!(shown[0].contains("alice"), "non-secrets stay visible");
    }
}
