-- Accounts: disabled users, password-reset tokens, and what a deleted user leaves behind. The
-- same tables and meaning as the SQLite schema.
-- * `users.disabled_at`: NULL for an enabled user. Disabling updates the user's row first (so
--   a concurrent login's `INSERT … SELECT … FOR SHARE` waits for it) and then revokes the
--   sessions in a new statement, which sees every session committed before.
-- * `password_resets`: one row per user (the primary key), so a newer token replaces, and so
--   voids, an older one. Only the token's keyed hash is stored (unique: a used token is found by
--   it). The row goes with its user (ON DELETE CASCADE), when used, or when the cleanup job
--   finds it expired.
-- * `deleted_user_revocations`: deleting a user deletes their sessions (ON DELETE CASCADE), but
--   resource services must still learn, through the revocation feed, that those sessions ended.
--   The session id and the time it was revoked are kept here, with nothing that names the
--   user, until the cleanup job purges them with the other ended sessions.

ALTER TABLE users ADD COLUMN disabled_at BIGINT;

CREATE TABLE password_resets (
    user_id    UUID   PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    token_hash BYTEA  NOT NULL UNIQUE,
    expires_at BIGINT NOT NULL
);

CREATE TABLE deleted_user_revocations (
    session_id UUID   PRIMARY KEY,
    revoked_at BIGINT NOT NULL
);

-- The feed's page, one range `(revoked_at, session_id) > ($1, $2)` read in order, as for
-- `sessions_by_revocation`; also the cleanup's `revoked_at < $1`.
CREATE INDEX deleted_user_revocations_by_time ON deleted_user_revocations (revoked_at, session_id);
