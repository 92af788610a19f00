//! Search service: full-text search over the rooms the caller belongs to (SQLite FTS5, ranked
//! by bm25, paginated). Owns the `message_search` table. Only text bodies are ever indexed;
//! encrypted envelopes never reach the index.

use sotto_api::rest::SearchResults;
use sotto_api::{ErrorCode, MessageId, RoomId};
use sqlx::SqliteConnection;

use crate::error::{ApiError, ApiResult};
use crate::services::accounts::Caller;
use crate::services::messages::Messages;
use crate::storage::Db;

/// Indexes a text body (inside the writer job that stores the message).
pub async fn index(
    conn: &mut SqliteConnection,
    id: MessageId,
    room: RoomId,
    text: &str,
) -> ApiResult<()> {
    sqlx::query("INSERT INTO message_search (body, room_id, message_id) VALUES ($1, $2, $3)")
        .bind(text)
        .bind(room)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Removes a message from the index.
pub async fn unindex(conn: &mut SqliteConnection, id: MessageId) -> ApiResult<()> {
    sqlx::query("DELETE FROM message_search WHERE message_id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Turns user input into an FTS5 query of quoted terms (all must match), so FTS syntax in the
/// input is taken literally and never errors.
fn fts_query(q: &str) -> Option<String> {
    let terms: Vec<String> = q
        .split_whitespace()
        .take(16)
        .map(|t| format!("\"{}\"", t.replace('"', "\"\"")))
        .collect();
    (!terms.is_empty()).then(|| terms.join(" "))
}

/// The search service.
#[derive(Clone)]
pub struct Search {
    db: Db,
    messages: Messages,
}

impl Search {
    /// Builds the service.
    pub fn new(db: Db, messages: Messages) -> Self {
        Search { db, messages }
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
        let Some(fts) = fts_query(q) else {
            return Err(ApiError::new(ErrorCode::InvalidInput, "the query is empty"));
        };
        let rows: Vec<(i64,)> = sqlx::query_as(
            "SELECT message_id FROM message_search WHERE message_search MATCH $1 \
             AND room_id IN (SELECT room_id FROM members WHERE user_id = $2) \
             ORDER BY bm25(message_search), message_id DESC LIMIT $3 OFFSET $4",
        )
        .bind(fts)
        .bind(caller.user_id)
        .bind(i64::from(limit) + 1)
        .bind(i64::from(offset))
        .fetch_all(&self.db.read)
        .await?;
        let more = rows.len() > limit as usize;
        let ids: Vec<MessageId> = rows.into_iter().take(limit as usize).map(|r| r.0).collect();
        let hits = self.messages.visible(&ids).await?;
        Ok(SearchResults {
            hits,
            next_offset: more.then_some(offset + limit),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::fts_query;

    #[test]
    fn fts_syntax_is_quoted() {
        assert_eq!(
            fts_query("hello world").as_deref(),
            Some("\"hello\" \"world\"")
        );
        assert_eq!(fts_query("a\"b OR").as_deref(), Some("\"a\"\"b\" \"OR\""));
        assert_eq!(fts_query("   "), None);
    }
}
