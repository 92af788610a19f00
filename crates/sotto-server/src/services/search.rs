//! Search service: full-text search over the rooms the caller belongs to (SQLite FTS5, ranked
//! by bm25, paginated). Owns the `message_search` table. Only text bodies are ever indexed;
//! encrypted envelopes never reach the index, and every answer lists the caller's encrypted
//! rooms as `unsearched_rooms` (clients search what they decrypted, locally).

use sotto_api::rest::SearchResults;
use sotto_api::{ErrorCode, MessageId, RoomId};

use crate::error::{ApiError, ApiResult};
use crate::services::accounts::Caller;
use crate::services::messages::Messages;
use crate::services::rooms::Rooms;
use crate::storage::{Db, Tx};

/// Indexes a text body (inside the writer job that stores the message). Encrypted envelopes
/// must never be passed here.
pub async fn index(tx: &mut dyn Tx, id: MessageId, room: RoomId, text: &str) -> ApiResult<()> {
    tx.index_text(id, room, text).await
}

/// Removes a message from the index.
pub async fn unindex(tx: &mut dyn Tx, id: MessageId) -> ApiResult<()> {
    tx.unindex(id).await
}

/// Splits user input into at most 16 plain terms (all must match). The storage backend
/// quotes them, so query syntax in the input is taken literally and never errors.
fn terms(q: &str) -> Vec<String> {
    q.split_whitespace().take(16).map(str::to_string).collect()
}

/// The search service.
#[derive(Clone)]
pub struct Search {
    db: Db,
    messages: Messages,
    rooms: Rooms,
}

impl Search {
    /// Builds the service.
    pub fn new(db: Db, messages: Messages, rooms: Rooms) -> Self {
        Search {
            db,
            messages,
            rooms,
        }
    }

    /// Ranked hits in the caller's rooms.
    pub async fn search(
        &self,
        caller: &Caller,
        q: &str,
        limit: Option<u32>,
        offset: Option<u32>,
    ) -> ApiResult<SearchResults> {
        let limit = limit.unwrap_or(20);
        let offset = offset.unwrap_or(0);
        if !(1..=100).contains(&limit) || offset > 10_000 {
            return Err(ApiError::new(
                ErrorCode::InvalidInput,
                "limit is 1-100, offset at most 10000",
            ));
        }
        if q.len() > 500 {
            return Err(ApiError::new(
                ErrorCode::InvalidInput,
                "queries are at most 500 bytes",
            ));
        }
        let terms = terms(q);
        if terms.is_empty() {
            return Err(ApiError::new(ErrorCode::InvalidInput, "the query is empty"));
        }
        let mut ids = self
            .db
            .search(
                &terms,
                caller.user_id,
                i64::from(limit) + 1,
                i64::from(offset),
            )
            .await?;
        let more = ids.len() > limit as usize;
        ids.truncate(limit as usize);
        let hits = self.messages.by_ids(&ids).await?;
        let unsearched_rooms = self.rooms.encrypted_rooms_of(caller.user_id).await?;
        Ok(SearchResults {
            hits,
            next_offset: more.then_some(offset + limit),
            unsearched_rooms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::terms;

    #[test]
    fn input_becomes_plain_terms() {
        assert_eq!(terms("  hello   world "), vec!["hello", "world"]);
        assert_eq!(terms(&"x ".repeat(40)).len(), 16);
        assert!(terms("   ").is_empty());
    }
}
