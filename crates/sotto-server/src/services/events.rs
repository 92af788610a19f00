//! The stored-event log (table `events`): every stored realtime event gets a position (`seq`)
//! so a reconnecting client can catch up without gaps or duplicates. Ephemeral events never
//! come here.

use std::sync::Arc;

use sotto_api::realtime::ServerEvent;
use sotto_api::{MessageId, RoomId, Seq, UserId};
use sqlx::SqliteConnection;

use crate::bus::{BusMessage, Frame};
use crate::error::{ApiError, ApiResult};
use crate::storage::{Db, WriteOutbox, now_ms};

/// Appends `event` (inside a writer job), stamps its `seq`, and queues it for publication
/// after the commit.
pub async fn append(
    conn: &mut SqliteConnection,
    outbox: &mut WriteOutbox,
    room_id: RoomId,
    message_id: Option<MessageId>,
    extra_user: Option<UserId>,
    mut event: ServerEvent,
) -> ApiResult<Seq> {
    let payload = serde_json::to_string(&event).map_err(ApiError::internal)?;
    let r = sqlx::query(
        "INSERT INTO events (room_id, message_id, extra_user, payload, created_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(room_id)
    .bind(message_id)
    .bind(extra_user)
    .bind(payload)
    .bind(now_ms())
    .execute(&mut *conn)
    .await?;
    let seq = r.last_insert_rowid();
    event.set_seq(seq);
    let json: Arc<str> = serde_json::to_string(&event)
        .map_err(ApiError::internal)?
        .into();
    outbox.push(BusMessage::Room {
        room_id,
        extra_user,
        frame: Frame::Text {
            json,
            seq: Some(seq),
        },
    });
    Ok(seq)
}

/// Removes the logged events of a message (when it is deleted, its content must not be
/// replayed by catch-up).
pub async fn forget_message(conn: &mut SqliteConnection, message_id: MessageId) -> ApiResult<()> {
    sqlx::query("DELETE FROM events WHERE message_id = $1")
        .bind(message_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Stored events after `since` for the rooms `user` is in now (or was removed from, for the
/// removal event itself), oldest first, at most `limit`, each as JSON with its `seq`.
pub async fn since(db: &Db, user: UserId, since: Seq, limit: i64) -> ApiResult<Vec<(Seq, String)>> {
    let rows: Vec<(i64, String)> = sqlx::query_as(
        "SELECT seq, payload FROM events WHERE seq > $1 AND \
         (room_id IN (SELECT room_id FROM members WHERE user_id = $2) OR extra_user = $2) \
         ORDER BY seq LIMIT $3",
    )
    .bind(since)
    .bind(user)
    .bind(limit)
    .fetch_all(&db.read)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for (seq, payload) in rows {
        let mut ev: ServerEvent = serde_json::from_str(&payload).map_err(ApiError::internal)?;
        ev.set_seq(seq);
        out.push((seq, serde_json::to_string(&ev).map_err(ApiError::internal)?));
    }
    Ok(out)
}

/// The newest position.
pub async fn head(db: &Db) -> ApiResult<Seq> {
    let (h,): (Option<i64>,) = sqlx::query_as("SELECT MAX(seq) FROM events")
        .fetch_one(&db.read)
        .await?;
    Ok(h.unwrap_or(0))
}
