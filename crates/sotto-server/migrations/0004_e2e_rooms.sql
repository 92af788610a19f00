-- End-to-end encrypted rooms (issue 7).

-- rooms service: whether a room is encrypted, its membership epoch (advanced by every
-- membership change) and its current room key (set by the room-keys service).
ALTER TABLE rooms ADD COLUMN encrypted BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE rooms ADD COLUMN epoch BIGINT NOT NULL DEFAULT 0;
ALTER TABLE rooms ADD COLUMN key_id TEXT;
ALTER TABLE rooms ADD COLUMN key_epoch BIGINT;

-- rooms service: the membership history of every room (created / added / removed / left), so
-- clients can show every change, and so "has shared a room" survives a removal. Memberships
-- older than this table are recorded once as 'added' with no actor.
CREATE TABLE room_changes (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    room_id  BIGINT NOT NULL REFERENCES rooms(id),
    epoch    BIGINT NOT NULL,
    kind     TEXT NOT NULL,
    user_id  BIGINT NOT NULL REFERENCES users(id),
    actor_id BIGINT REFERENCES users(id),
    at       BIGINT NOT NULL
);
CREATE INDEX room_changes_room ON room_changes(room_id, id);
CREATE INDEX room_changes_user ON room_changes(user_id, room_id);
INSERT INTO room_changes (room_id, epoch, kind, user_id, actor_id, at)
    SELECT room_id, 0, 'added', user_id, NULL, joined_at FROM members ORDER BY room_id, joined_at;

-- room-keys service: room keys (ids unique across the server) and one sealed share per
-- recipient, opaque to the server and served to that recipient only.
CREATE TABLE room_keys (
    key_id         TEXT PRIMARY KEY,
    room_id        BIGINT NOT NULL REFERENCES rooms(id),
    epoch          BIGINT NOT NULL,
    distributor_id BIGINT NOT NULL REFERENCES users(id),
    created_at     BIGINT NOT NULL
);
CREATE TABLE room_key_shares (
    key_id  TEXT NOT NULL REFERENCES room_keys(key_id),
    user_id BIGINT NOT NULL REFERENCES users(id),
    share   TEXT NOT NULL,
    PRIMARY KEY (key_id, user_id)
);
CREATE INDEX room_key_shares_user ON room_key_shares(user_id, key_id);

-- uploads service: declared client-encrypted uploads (stored as application/octet-stream).
ALTER TABLE uploads ADD COLUMN encrypted BOOLEAN NOT NULL DEFAULT FALSE;

-- e2e service: the room agreement key and its signature by the identity key.
ALTER TABLE e2e_keys ADD COLUMN agreement_key TEXT;
ALTER TABLE e2e_keys ADD COLUMN agreement_signature TEXT;
