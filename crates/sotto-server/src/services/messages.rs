//! Messages service: send, history (cursor pagination both ways), edit, delete, read markers.
//! Owns the table `messages` (and the `last_read_id` column of `members`).
//!
//! A body is text (indexed for search) or an encrypted envelope (stored verbatim, never
//! indexed; only its cleartext key id is read, see `room_keys`). An encrypted room takes only
//! envelopes under its current key, an ordinary room only text.

use std::collections::HashMap;

use sotto_api::realtime::ServerEvent;
use sotto_api::rest::{HistoryPage, Message, MessageBody, Room, SendMessageRequest, UploadInfo};
use sotto_api::{ErrorCode, MessageId, RoomId};

use crate::error::{ApiError, ApiResult};
use crate::metrics::METRICS;
use crate::services::accounts::Caller;
use crate::services::rooms::Rooms;
use crate::services::settings::Settings;
use crate::services::{events, room_keys, search, uploads};
use crate::storage::{Db, MessageRow, Tx, now_ms};

fn split_body(body: &MessageBody) -> (&'static str, &str) {
    match body {
        MessageBody::Text { text } => ("text", text),
        MessageBody::Encrypted { envelope } => ("encrypted", envelope),
    }
}

/// Checks a body against its room's encryption and key (inside the writer job).
async fn check_for_room(tx: &mut dyn Tx, room: RoomId, body: &MessageBody) -> ApiResult<()> {
    let policy = room_keys::policy(tx, room).await?;
    let envelope = match body {
        MessageBody::Text { .. } => None,
        MessageBody::Encrypted { envelope } => Some(envelope.as_str()),
    };
    room_keys::check_body(&policy, envelope)
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

/// Rewrites the logged `message_created` / `message_edited` events of `message` to its
/// current body (inside the edit's writer job), so the event log keeps no earlier text.
async fn rewrite_logged(tx: &mut dyn Tx, message: &Message) -> ApiResult<()> {
    for (seq, payload) in tx.message_events(message.id).await? {
        let mut ev: ServerEvent = serde_json::from_str(&payload).map_err(ApiError::internal)?;
        match &mut ev {
            ServerEvent::MessageCreated { message: m, .. }
            | ServerEvent::MessageEdited { message: m, .. }
                if m.id == message.id =>
            {
                m.body = message.body.clone();
                m.edited_at = message.edited_at;
            }
            _ => continue,
        }
        let payload = serde_json::to_string(&ev).map_err(ApiError::internal)?;
        tx.set_event_payload(seq, &payload).await?;
    }
    Ok(())
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
        // The membership check runs inside the writer job (one hand-off to the database
        // instead of two); the body's verdict is given after it, as before.
        let body_ok = self.check_body(&req.body, req.attachment_id.is_some());
        let author = caller.user_id;
        let msg = self
            .db
            .write(move |tx, outbox| {
                Box::pin(async move {
                    Rooms::require_member_tx(tx, room, author).await?;
                    body_ok?;
                    check_for_room(tx, room, &req.body).await?;
                    let now = now_ms();
                    let (kind, body) = split_body(&req.body);
                    let id = tx.insert_message(room, author, kind, body, now).await?;
                    if let MessageBody::Text { text } = &req.body {
                        search::index(tx, id, room, text).await?;
                    }
                    // An encrypted room's policy was checked above: its body is an envelope, and
                    // `attach` refuses an upload not declared encrypted there.
                    let attachment = match req.attachment_id {
                        Some(up) => Some(uploads::attach(tx, up, room, author, id).await?),
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
                    let ev = ServerEvent::MessageCreated {
                        seq: 0,
                        message: message.clone(),
                    };
                    events::append(tx, outbox, room, Some(id), None, ev).await?;
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
        let (rows, older, newer) = match (before, after) {
            (Some(_), Some(_)) => {
                return Err(ApiError::new(
                    ErrorCode::InvalidInput,
                    "give before or after, not both",
                ));
            }
            (b, None) => {
                let mut rows = self
                    .db
                    .messages_before(room, b.unwrap_or(i64::MAX), limit + 1)
                    .await?;
                let older = rows.len() as i64 > limit;
                rows.truncate(limit as usize);
                rows.reverse();
                (rows, older, before.is_some())
            }
            (None, Some(a)) => {
                let mut rows = self.db.messages_after(room, a, limit + 1).await?;
                let newer = rows.len() as i64 > limit;
                rows.truncate(limit as usize);
                (rows, true, newer)
            }
        };
        let first = rows.first().map(|r| r.0);
        let last = rows.last().map(|r| r.0);
        let messages = self.with_attachments(rows).await?;
        Ok(HistoryPage {
            messages,
            before: if older { first.map(cursor) } else { None },
            after: if newer { last.map(cursor) } else { None },
        })
    }

    /// Messages by id, in the order given (for search, which already restricted them to the
    /// caller's rooms).
    pub async fn by_ids(&self, ids: &[MessageId]) -> ApiResult<Vec<Message>> {
        let mut rows = Vec::with_capacity(ids.len());
        for id in ids {
            rows.extend(self.db.message(*id).await?);
        }
        self.with_attachments(rows).await
    }

    async fn own_message(&self, caller: &Caller, id: MessageId) -> ApiResult<MessageRow> {
        let row = self
            .db
            .message(id)
            .await?
            .ok_or_else(|| ApiError::not_found("message"))?;
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
        let room = row.1;
        let existing = self.with_attachments(vec![row]).await?.pop();
        let existing = existing.ok_or_else(|| ApiError::not_found("message"))?;
        // Only a message with an attachment may be left without text.
        self.check_body(&body, existing.attachment.is_some())?;
        self.db
            .write(move |tx, outbox| {
                Box::pin(async move {
                    check_for_room(tx, room, &body).await?;
                    let now = now_ms();
                    let (kind, text) = split_body(&body);
                    if !tx.update_message(id, kind, text, now).await? {
                        return Err(ApiError::not_found("message"));
                    }
                    search::unindex(tx, id).await?;
                    if let MessageBody::Text { text } = &body {
                        search::index(tx, id, room, text).await?;
                    }
                    let message = Message {
                        body,
                        edited_at: Some(now),
                        ..existing
                    };
                    // Catch-up must never replay the text the edit replaced: the earlier
                    // events of this message now carry the new body.
                    rewrite_logged(tx, &message).await?;
                    let ev = ServerEvent::MessageEdited {
                        seq: 0,
                        message: message.clone(),
                    };
                    events::append(tx, outbox, room, Some(id), None, ev).await?;
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
            .write(move |tx, outbox| {
                Box::pin(async move {
                    let files = tx.detach_uploads(id).await?;
                    search::unindex(tx, id).await?;
                    if !tx.delete_message(id).await? {
                        return Err(ApiError::not_found("message"));
                    }
                    // Catch-up must never replay the deleted content.
                    tx.forget_message_events(id).await?;
                    let ev = ServerEvent::MessageDeleted {
                        seq: 0,
                        room_id: room,
                        message_id: id,
                    };
                    events::append(tx, outbox, room, None, None, ev).await?;
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
            .write(move |tx, _| tx.mark_read(room, uid, message_id))
            .await
    }

    /// Fills in last message and unread count of the caller's rooms.
    pub async fn summarise(&self, caller: &Caller, rooms: &mut [Room]) -> ApiResult<()> {
        for room in rooms.iter_mut() {
            let last = self.db.messages_before(room.id, i64::MAX, 1).await?;
            room.last_message = self.with_attachments(last).await?.pop();
            room.unread_count = self.db.unread_count(room.id, caller.user_id).await?;
        }
        Ok(())
    }
}
