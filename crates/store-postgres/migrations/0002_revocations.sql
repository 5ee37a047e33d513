-- Revocations for resource services: `GET /auth/revocations?since=…` lists the sessions revoked
-- since a time, and every resource service polls it every few seconds, so it must not scan the
-- table.
-- * This is the one index on `sessions` besides the primary key and `user_id`, and it keeps the
--   index policy of 0001 (no index on a column a rotation writes): a rotation writes
--   generation, token_hash, rotated_at and last_used_at, never `revoked_at`, and only rotates
--   unrevoked rows, so rotations stay HOT updates.
-- * Partial (`WHERE revoked_at IS NOT NULL`): live sessions are not in it at all, so logins do
--   not write it either; only a revocation (once per session) adds an entry.
-- * It also serves the cleanup job's `revoked_at < $1` branch.

CREATE INDEX sessions_by_revocation ON sessions (revoked_at) WHERE revoked_at IS NOT NULL;
