-- Sotto schema, version 1. Portable SQL where possible (PostgreSQL later): integer keys,
-- TEXT, BIGINT millisecond timestamps. SQLite-only parts are marked.

-- accounts service
CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    is_admin      BOOLEAN NOT NULL DEFAULT FALSE,
    deactivated   BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    BIGINT NOT NULL
);

CREATE TABLE sessions (
    id           INTEGER PRIMARY KEY,
    user_id      BIGINT NOT NULL REFERENCES users(id),
    token_hash   TEXT NOT NULL UNIQUE,
    csrf_token   TEXT NOT NULL,
    kind         TEXT NOT NULL,
    user_agent   TEXT,
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL
);
CREATE INDEX sessions_user ON sessions(user_id);

CREATE TABLE invites (
    token_hash TEXT PRIMARY KEY,
    created_by BIGINT NOT NULL REFERENCES users(id),
    expires_at BIGINT NOT NULL,
    used_by    BIGINT REFERENCES users(id)
);

CREATE TABLE setup_tokens (
    token_hash TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL
);

-- rooms service
CREATE TABLE rooms (
    id         INTEGER PRIMARY KEY,
    kind       TEXT NOT NULL,
    name       TEXT,
    owner_id   BIGINT REFERENCES users(id),
    -- sorted member ids of a DM / multi-user DM; makes get-or-create idempotent
    member_key TEXT UNIQUE,
    created_at BIGINT NOT NULL
);

CREATE TABLE members (
    room_id      BIGINT NOT NULL REFERENCES rooms(id),
    user_id      BIGINT NOT NULL REFERENCES users(id),
    last_read_id BIGINT NOT NULL DEFAULT 0,
    joined_at    BIGINT NOT NULL,
    PRIMARY KEY (room_id, user_id)
);
CREATE INDEX members_user ON members(user_id);

-- messages service
CREATE TABLE messages (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    room_id    BIGINT NOT NULL REFERENCES rooms(id),
    author_id  BIGINT NOT NULL REFERENCES users(id),
    body_kind  TEXT NOT NULL,
    body       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    edited_at  BIGINT
);
CREATE INDEX messages_room ON messages(room_id, id);

-- realtime event log (stored events only; ephemeral events never come here)
CREATE TABLE events (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    room_id    BIGINT NOT NULL,
    message_id BIGINT,
    extra_user BIGINT,
    payload    TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX events_room ON events(room_id, seq);
CREATE INDEX events_message ON events(message_id);

-- uploads service
CREATE TABLE uploads (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    room_id      BIGINT NOT NULL REFERENCES rooms(id),
    uploader_id  BIGINT NOT NULL REFERENCES users(id),
    filename     TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size         BIGINT NOT NULL,
    storage_name TEXT NOT NULL,
    message_id   BIGINT,
    created_at   BIGINT NOT NULL
);
CREATE INDEX uploads_message ON uploads(message_id);

-- settings service
CREATE TABLE settings (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- search service (SQLite-only: FTS5; PostgreSQL would use tsvector)
CREATE VIRTUAL TABLE message_search USING fts5(
    body,
    room_id UNINDEXED,
    message_id UNINDEXED,
    tokenize = 'unicode61'
);
