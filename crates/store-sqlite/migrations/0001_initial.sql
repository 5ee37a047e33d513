-- Tessera's schema on SQLite.
-- * Ids are UUIDs stored as 16-byte BLOBs: half the index size of their text form.
-- * Times are INTEGER milliseconds since the Unix epoch (UTC), as the core's `Timestamp`.
-- * A session row is the whole refresh-token family: its current generation and the keyed
--   hash of its current token. Rotation is one compare-and-swap UPDATE on (id, generation),
--   atomic by itself, so a crash leaves either the old or the new token current, never both.
-- * `username_key` (lower case) carries the case-insensitive uniqueness of usernames.
-- * STRICT tables make SQLite refuse values of the wrong type instead of converting them.

CREATE TABLE users (
    id            BLOB    PRIMARY KEY NOT NULL,
    username      TEXT    NOT NULL,
    username_key  TEXT    NOT NULL UNIQUE,
    password_hash TEXT    NOT NULL,
    created_at    INTEGER NOT NULL
) STRICT;

CREATE TABLE sessions (
    id             BLOB    PRIMARY KEY NOT NULL,
    user_id        BLOB    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    generation     INTEGER NOT NULL,
    token_hash     BLOB    NOT NULL,
    created_at     INTEGER NOT NULL,
    rotated_at     INTEGER NOT NULL,
    last_used_at   INTEGER NOT NULL,
    revoked_at     INTEGER,
    revoked_reason TEXT,
    user_agent     TEXT,
    ip             TEXT
) STRICT;

-- Listing and revoking a user's sessions.
CREATE INDEX sessions_by_user ON sessions (user_id);
-- The cleanup job's scan for ended sessions.
CREATE INDEX sessions_by_last_use ON sessions (last_used_at);

-- Private keys (PKCS#8 DER or HMAC secret), AES-256-GCM sealed when `sealed` = 1.
CREATE TABLE signing_keys (
    kid         TEXT    PRIMARY KEY NOT NULL,
    alg         TEXT    NOT NULL,
    private_key BLOB    NOT NULL,
    sealed      INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    activate_at INTEGER NOT NULL
) STRICT;

-- Deployment-wide secrets (the refresh-token HMAC secret), sealed like the keys.
CREATE TABLE secrets (
    name     TEXT    PRIMARY KEY NOT NULL,
    material BLOB    NOT NULL,
    sealed   INTEGER NOT NULL
) STRICT;
