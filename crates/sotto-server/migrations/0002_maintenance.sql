-- Bookkeeping for background maintenance (event-log retention).
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
CREATE INDEX events_created ON events(created_at);
CREATE INDEX uploads_orphans ON uploads(message_id, created_at);
