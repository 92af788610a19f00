-- The E2E key directory (owned by services/e2e.rs): each user's public identity keys, and their
-- key backup and trust store, both sealed by the client and opaque to the server. Nothing of
-- the off-the-record relay is ever stored, here or anywhere.
CREATE TABLE e2e_keys (
    user_id     INTEGER PRIMARY KEY REFERENCES users(id),
    curve25519  TEXT NOT NULL UNIQUE,
    ed25519     TEXT NOT NULL,
    key_backup  TEXT NOT NULL,
    trust_store TEXT NOT NULL,
    updated_at  BIGINT NOT NULL
);
