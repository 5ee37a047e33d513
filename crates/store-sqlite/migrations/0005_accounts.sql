-- Accounts: disabled users, password-reset tokens, and what a deleted user leaves behind.
-- * `users.disabled_at`: NULL for an enabled user. Disabling writes it and revokes the user's
--   sessions in the same transaction.
-- * `password_resets`: one row per user (the primary key), so a newer token replaces, and so
--   voids, an older one. Only the token's keyed hash is stored (unique: a used token is found by
--   it). The row goes with its user (ON DELETE CASCADE), when used, or when the cleanup job
--   finds it expired.
-- * `deleted_user_revocations`: deleting a user deletes their sessions (ON DELETE CASCADE), but
--   resource services must still learn, through the revocation feed, that those sessions ended.
--   The session id and the time it was revoked are kept here, with nothing that names the
--   user, until the cleanup job purges them with the other ended sessions.

ALTER TABLE users ADD COLUMN disabled_at INTEGER;

CREATE TABLE password_resets (
    user_id    BLOB    PRIMARY KEY NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash BLOB    NOT NULL UNIQUE,
    expires_at INTEGER NOT NULL
) STRICT;

CREATE TABLE deleted_user_revocations (
    session_id BLOB    PRIMARY KEY NOT NULL,
    revoked_at INTEGER NOT NULL
) STRICT;

-- The feed's page, one range `(revoked_at, session_id) > (?, ?)` read in order, as for
-- `sessions_by_revocation`; also the cleanup's `revoked_at < ?`.
CREATE INDEX deleted_user_revocations_by_time ON deleted_user_revocations (revoked_at, session_id);
