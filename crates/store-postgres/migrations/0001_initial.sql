-- Tessera's schema on PostgreSQL. Same tables and meaning as the SQLite schema; the differences
-- are PostgreSQL's own types and one choice about indexes.
-- * Ids are native UUIDs (16 bytes, compared as such).
-- * Times are BIGINT milliseconds since the Unix epoch (UTC), as the core's `Timestamp`: no time
--   zone or precision conversions between the two backends.
-- * A session row is the whole refresh-token family: its current generation and the keyed hash
--   of its current token. Rotation is one compare-and-swap
--   `UPDATE … WHERE id = $1 AND generation = $2 AND revoked_at IS NULL`; under READ COMMITTED
--   the losers of a race wait for the winner's row lock, re-check the WHERE clause against the
--   new row version and update nothing. Exactly one wins, across connections and processes.
-- * Rotation is the hot path, so no column it writes (generation, token_hash, rotated_at,
--   last_used_at) is indexed, and the table keeps 10% of each page free: the UPDATE can then be
--   a HOT update (no index entries written, the old version pruned in place). The cleanup job's
--   DELETE (revoked OR idle OR too old) scans the table instead; it runs rarely, in the
--   background, and an OR over three columns would hardly use indexes anyway.
-- * `username_key` (lower case) carries the case-insensitive uniqueness of usernames. It uses the
--   "C" collation so that order and equality are bytewise whatever the database's locale, like
--   SQLite's, and its unique index also serves `ORDER BY username_key`.
-- * `ip` is INET: validated by the database, compact, and queryable by network (`ip << '10/8'`).

CREATE TABLE users (
    id            UUID   PRIMARY KEY,
    username      TEXT   NOT NULL,
    username_key  TEXT   COLLATE "C" NOT NULL UNIQUE,
    password_hash TEXT   NOT NULL,
    created_at    BIGINT NOT NULL
);

CREATE TABLE sessions (
    id             UUID   PRIMARY KEY,
    user_id        UUID   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    generation     BIGINT NOT NULL CHECK (generation >= 0),
    token_hash     BYTEA  NOT NULL,
    created_at     BIGINT NOT NULL,
    rotated_at     BIGINT NOT NULL,
    last_used_at   BIGINT NOT NULL,
    revoked_at     BIGINT,
    revoked_reason TEXT,
    user_agent     TEXT,
    ip             INET
) WITH (fillfactor = 90);

-- Listing and revoking a user's sessions, and the cascade when a user is deleted.
CREATE INDEX sessions_by_user ON sessions (user_id);

-- Private keys (PKCS#8 DER or HMAC secret), AES-256-GCM sealed when `sealed` is true.
CREATE TABLE signing_keys (
    kid         TEXT    PRIMARY KEY,
    alg         TEXT    NOT NULL,
    private_key BYTEA   NOT NULL,
    sealed      BOOLEAN NOT NULL,
    created_at  BIGINT  NOT NULL,
    activate_at BIGINT  NOT NULL
);

-- Deployment-wide secrets (the refresh-token HMAC secret), sealed like the keys.
CREATE TABLE secrets (
    name     TEXT    PRIMARY KEY,
    material BYTEA   NOT NULL,
    sealed   BOOLEAN NOT NULL
);
