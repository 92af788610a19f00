//! The stored-event log (table `events`): every stored realtime event gets a position (`seq`)
//! so a reconnecting client can catch up without gaps or duplicates. Ephemeral events never
//! come here.

use std::sync::Arc;

use sotto_api::realtime::ServerEvent;
use sotto_api::{MessageId, RoomId, Seq, UserId};

use crate::bus::{BusMessage, Frame};
use crate::error::{ApiError, ApiResult};
use crate::storage::{Db, Tx, WriteOutbox, now_ms};

/// Appends `event` (inside a writer job), stamps its `seq`, and queues it for publication
/// after the commit.
pub async fn append(
    tx: &mut dyn Tx,
    outbox: &mut WriteOutbox,
    room_id: RoomId,
    message_id: Option<MessageId>,
    extra_user: Option<UserId>,
    mut event: ServerEvent,
) -> ApiResult<Seq> {
    let payload = serde_json::to_string(&event).map_err(ApiError::internal)?;
    let seq = tx
        .append_event(room_id, message_id, extra_user, &payload, now_ms())
        .await?;
    event.set_seq(seq);
    let json: Arc<str> = serde_json::to_string(&event)
        .map_err(ApiError::internal)?
        .into();
    let mut recipients = tx.room_members(room_id).await?;
    if let Some(extra) = extra_user
        && !recipients.contains(&extra)
    {
        recipients.push(extra);
    }
    outbox.push(BusMessage::Room {
        room_id,
        recipients: recipients.into(),
        frame: Frame::Text {
            json,
            seq: Some(seq),
        },
    });
    Ok(seq)
}

/// Stored events after `since` for the rooms `user` is in now (or was removed from, for the
/// removal event itself), oldest first, at most `limit`, each as JSON with its `seq`.
pub async fn since(db: &Db, user: UserId, since: Seq, limit: i64) -> ApiResult<Vec<(Seq, String)>> {
    let rows = db.events_since(user, since, limit).await?;
    let mut out = Vec::with_capacity(rows.len());
    for (seq, payload) in rows {
        let mut ev: ServerEvent = serde_json::from_str(&payload).map_err(ApiError::internal)?;
        ev.set_seq(seq);
        out.push((seq, serde_json::to_string(&ev).map_err(ApiError::internal)?));
    }
    Ok(out)
}

/// Deletes events older than `retention`; a client resuming from before the pruned range is
/// told its catch-up is incomplete.
pub async fn prune(db: &Db, retention: std::time::Duration) -> ApiResult<u64> {
    let cutoff = now_ms() - retention.as_millis() as i64;
    db.write(move |tx, _| tx.prune_events(cutoff)).await
}

/// The newest position.
pub async fn head(db: &Db) -> ApiResult<Seq> {
    db.events_head().await
}
