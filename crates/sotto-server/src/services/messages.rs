//! Messages service: send, history (cursor pagination both ways), edit, delete, read markers.
//! Owns the table `messages` (and the `last_read_id` column of `members`).
//!
//! A body is text (indexed for search) or an encrypted envelope (stored verbatim, never
//! indexed, never interpreted).

use std::collections::HashMap;

use sotto_api::realtime::ServerEvent;
use sotto_api::rest::{HistoryPage, Message, MessageBody, Room, SendMessageRequest, UploadInfo};
use sotto_api::{ErrorCode, MessageId, RoomId};

use crate::error::{ApiError, ApiResult};
use crate::metrics::METRICS;
use crate::services::accounts::Caller;
use crate::services::rooms::Rooms;
use crate::services::settings::Settings;
use crate::services::{events, search, uploads};
use crate::storage::{Db, now_ms};

type MessageRow = (i64, i64, i64, String, String, i64, Option<i64>);

const COLUMNS: &str = "id, room_id, author_id, body_kind, body, created_at, edited_at";

fn split_body(body: &MessageBody) -> (&'static str, &str) {
    match body {
        MessageBody::Text { text } => ("text", text),
        MessageBody::Encrypted { envelope } => ("encrypted", envelope),
    }
}

fn message_from(row: MessageRow, attachment: Option<UploadInfo>) -> Message {
    let (id, room_id, author_id, kind, body, created_at, edited_at) = row;
    let body = if kind == "encrypted" {
        MessageBody::Encrypted { envelope: body }
    } else {
        MessageBody::Text { text: body }
    };
    Message {
        id,
        room_id,
        author_id,
        body,
        attachment,
        created_at,
        edited_at,
    }
}

/// Encodes a history cursor (opaque to clients).
fn cursor(id: MessageId) -> String {
    format!("m{id}")
}

fn parse_cursor(s: &str) -> ApiResult<MessageId> {
    s.strip_prefix('m')
        .filter(|d| !d.is_empty() && d.len() <= 19 && d.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|d| d.parse::<i64>().ok())
        .ok_or_else(|| ApiError::new(ErrorCode::BadCursor, "malformed cursor"))
}

/// The messages service.
#[derive(Clone)]
pub struct Messages {
    db: Db,
    rooms: Rooms,
    settings: Settings,
}

impl Messages {
    /// Builds the service.
    pub fn new(db: Db, rooms: Rooms, settings: Settings) -> Self {
        Messages {
            db,
            rooms,
            settings,
        }
    }

    fn check_body(&self, body: &MessageBody, has_attachment: bool) -> ApiResult<()> {
        let max = self.settings.int("messages.max_bytes") as usize;
        if body.len() > max {
            return Err(ApiError::new(
                ErrorCode::PayloadTooLarge,
                format!("message bodies are at most {max} bytes"),
            ));
        }
        match body {
            MessageBody::Text { text } => {
                if text.trim().is_empty() && !has_attachment {
                    return Err(ApiError::new(
                        ErrorCode::InvalidInput,
                        "the message is empty",
                    ));
                }
            }
            MessageBody::Encrypted { envelope } => {
                if envelope.is_empty() || !envelope.bytes().all(|b| b.is_ascii_graphic()) {
                    return Err(ApiError::new(
                        ErrorCode::InvalidInput,
                        "an envelope is non-empty printable ASCII",
                    ));
                }
            }
        }
        Ok(())
    }

    /// Sends a message; returns it with its server-assigned id and timestamp.
    pub async fn send(
        &self,
        caller: &Caller,
        room: RoomId,
        req: SendMessageRequest,
    ) -> ApiResult<Message> {
        self.rooms.require_member(room, caller.user_id).await?;
        self.check_body(&req.body, req.attachment_id.is_some())?;
        let author = caller.user_id;
        let msg = self
            .db
            .writer
            .write(move |conn, outbox| {
                Box::pin(async move {
                    let now = now_ms();
                    let (kind, body) = split_body(&req.body);
                    let r = sqlx::query(
                        "INSERT INTO messages (room_id, author_id, body_kind, body, created_at) \
                         VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(room)
                    .bind(author)
                    .bind(kind)
                    .bind(body)
                    .bind(now)
                    .execute(&mut *conn)
                    .await?;
                    let id = r.last_insert_rowid();
                    if let MessageBody::Text { text } = &req.body {
                        search::index(conn, id, room, text).await?;
                    }
                    let attachment = match req.attachment_id {
                        Some(up) => Some(uploads::attach(conn, up, room, author, id).await?),
                        None => None,
                    };
                    let message = Message {
                        id,
                        room_id: room,
                        author_id: author,
                        body: req.body,
                        attachment,
                        created_at: now,
                        edited_at: None,
                    };
                    events::append(
                        conn,
                        outbox,
                        room,
                        Some(id),
                        None,
                        ServerEvent::MessageCreated {
                            seq: 0,
                            message: message.clone(),
                        },
                    )
                    .await?;
                    Ok(message)
                })
            })
            .await?;
        METRICS.messages_sent.inc();
        Ok(msg)
    }

    async fn with_attachments(&self, rows: Vec<MessageRow>) -> ApiResult<Vec<Message>> {
        let ids: Vec<MessageId> = rows.iter().map(|r| r.0).collect();
        let mut att: HashMap<MessageId, UploadInfo> = uploads::for_messages(&self.db, &ids).await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let a = att.remove(&r.0);
                message_from(r, a)
            })
            .collect())
    }

    /// A page of history. With `before`, the `limit` messages older than the cursor; with
    /// `after`, the `limit` newer ones; with neither, the newest. Always oldest first.
    pub async fn history(
        &self,
        caller: &Caller,
        room: RoomId,
        before: Option<&str>,
        after: Option<&str>,
        limit: Option<i64>,
    ) -> ApiResult<HistoryPage> {
        let limit = limit.unwrap_or(50);
        if !(1..=200).contains(&limit) {
            return Err(ApiError::new(ErrorCode::InvalidInput, "limit is 1-200"));
        }
        let before = before.map(parse_cursor).transpose()?;
        let after = after.map(parse_cursor).transpose()?;
        self.rooms.require_member(room, caller.user_id).await?;
        let (mut rows, older, newer): (Vec<MessageRow>, bool, bool) = match (before, after) {
            (Some(_), Some(_)) => {
                return Err(ApiError::new(
                    ErrorCode::InvalidInput,
                    "give before or after, not both",
                ));
            }
            (b, None) => {
                let b = b.unwrap_or(i64::MAX);
                let mut rows: Vec<MessageRow> = sqlx::query_as(&format!(
                    "SELECT {COLUMNS} FROM messages WHERE room_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3"
                ))
                .bind(room)
                .bind(b)
                .bind(limit + 1)
                .fetch_all(&self.db.read)
                .await?;
                let older = rows.len() as i64 > limit;
                rows.truncate(limit as usize);
                rows.reverse();
                (rows, older, before.is_some())
            }
            (None, Some(a)) => {
                let mut rows: Vec<MessageRow> = sqlx::query_as(&format!(
                    "SELECT {COLUMNS} FROM messages WHERE room_id = $1 AND id > $2 ORDER BY id ASC LIMIT $3"
                ))
                .bind(room)
                .bind(a)
                .bind(limit + 1)
                .fetch_all(&self.db.read)
                .await?;
                let newer = rows.len() as i64 > limit;
                rows.truncate(limit as usize);
                (rows, true, newer)
            }
        };
        let first = rows.first().map(|r| r.0);
        let last = rows.last().map(|r| r.0);
        let messages = self.with_attachments(std::mem::take(&mut rows)).await?;
        Ok(HistoryPage {
            messages,
            before: if older { first.map(cursor) } else { None },
            after: if newer { last.map(cursor) } else { None },
        })
    }

    /// Messages by id that are in rooms of the caller, in the order given (for search).
    pub async fn visible(&self, ids: &[MessageId]) -> ApiResult<Vec<Message>> {
        let mut rows = Vec::with_capacity(ids.len());
        for id in ids {
            let row: Option<MessageRow> =
                sqlx::query_as(&format!("SELECT {COLUMNS} FROM messages WHERE id = $1"))
                    .bind(id)
                    .fetch_optional(&self.db.read)
                    .await?;
            rows.extend(row);
        }
        self.with_attachments(rows).await
    }

    async fn own_message(&self, caller: &Caller, id: MessageId) -> ApiResult<MessageRow> {
        let row: Option<MessageRow> =
            sqlx::query_as(&format!("SELECT {COLUMNS} FROM messages WHERE id = $1"))
                .bind(id)
                .fetch_optional(&self.db.read)
                .await?;
        let row = row.ok_or_else(|| ApiError::not_found("message"))?;
        if !self.rooms.is_member(row.1, caller.user_id).await? {
            return Err(ApiError::not_found("message"));
        }
        if row.2 != caller.user_id {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                "only the author may change a message",
            ));
        }
        Ok(row)
    }

    /// Edits the caller's own message; pushed live as `message_edited`.
    pub async fn edit(
        &self,
        caller: &Caller,
        id: MessageId,
        body: MessageBody,
    ) -> ApiResult<Message> {
        let row = self.own_message(caller, id).await?;
        self.check_body(&body, true)?;
        let room = row.1;
        let existing = self.with_attachments(vec![row]).await?.pop();
        let existing = existing.ok_or_else(|| ApiError::not_found("message"))?;
        self.db
            .writer
            .write(move |conn, outbox| {
                Box::pin(async move {
                    let now = now_ms();
                    let (kind, text) = split_body(&body);
                    let r = sqlx::query(
                        "UPDATE messages SET body_kind = $1, body = $2, edited_at = $3 WHERE id = $4",
                    )
                    .bind(kind)
                    .bind(text)
                    .bind(now)
                    .bind(id)
                    .execute(&mut *conn)
                    .await?;
                    if r.rows_affected() == 0 {
                        return Err(ApiError::not_found("message"));
                    }
                    search::unindex(conn, id).await?;
                    if let MessageBody::Text { text } = &body {
                        search::index(conn, id, room, text).await?;
                    }
                    let message = Message { body, edited_at: Some(now), ..existing };
                    events::append(
                        conn,
                        outbox,
                        room,
                        Some(id),
                        None,
                        ServerEvent::MessageEdited { seq: 0, message: message.clone() },
                    )
                    .await?;
                    Ok(message)
                })
            })
            .await
    }

    /// Deletes the caller's own message, its search entry, its replayable events and its
    /// attachment (file included); pushed live as `message_deleted`.
    pub async fn delete(&self, caller: &Caller, id: MessageId) -> ApiResult<()> {
        let row = self.own_message(caller, id).await?;
        let room = row.1;
        let files = self
            .db
            .writer
            .write(move |conn, outbox| {
                Box::pin(async move {
                    let files = uploads::detach_for_deletion(conn, id).await?;
                    search::unindex(conn, id).await?;
                    let r = sqlx::query("DELETE FROM messages WHERE id = $1")
                        .bind(id)
                        .execute(&mut *conn)
                        .await?;
                    if r.rows_affected() == 0 {
                        return Err(ApiError::not_found("message"));
                    }
                    events::forget_message(conn, id).await?;
                    events::append(
                        conn,
                        outbox,
                        room,
                        None,
                        None,
                        ServerEvent::MessageDeleted {
                            seq: 0,
                            room_id: room,
                            message_id: id,
                        },
                    )
                    .await?;
                    Ok(files)
                })
            })
            .await?;
        uploads::remove_files(&self.db, files).await;
        Ok(())
    }

    /// Moves the caller's read marker forward to `message_id`.
    pub async fn mark_read(
        &self,
        caller: &Caller,
        room: RoomId,
        message_id: MessageId,
    ) -> ApiResult<()> {
        self.rooms.require_member(room, caller.user_id).await?;
        let uid = caller.user_id;
        self.db
            .writer
            .write(move |conn, _| {
                Box::pin(async move {
                    sqlx::query(
                        "UPDATE members SET last_read_id = $1 \
                         WHERE room_id = $2 AND user_id = $3 AND last_read_id < $1",
                    )
                    .bind(message_id)
                    .bind(room)
                    .bind(uid)
                    .execute(&mut *conn)
                    .await?;
                    Ok(())
                })
            })
            .await
    }

    /// Fills in last message and unread count of the caller's rooms.
    pub async fn summarise(&self, caller: &Caller, rooms: &mut [Room]) -> ApiResult<()> {
        for room in rooms.iter_mut() {
            let last: Option<MessageRow> = sqlx::query_as(&format!(
                "SELECT {COLUMNS} FROM messages WHERE room_id = $1 ORDER BY id DESC LIMIT 1"
            ))
            .bind(room.id)
            .fetch_optional(&self.db.read)
            .await?;
            room.last_message = self
                .with_attachments(last.into_iter().collect())
                .await?
                .pop();
            let (n,): (i64,) = sqlx::query_as(
                "SELECT COUNT(*) FROM messages m JOIN members r ON r.room_id = m.room_id \
                 WHERE m.room_id = $1 AND r.user_id = $2 AND m.id > r.last_read_id AND m.author_id <> $2",
            )
            .bind(room.id)
            .bind(caller.user_id)
            .fetch_one(&self.db.read)
            .await?;
            room.unread_count = n;
        }
        Ok(())
    }
}
