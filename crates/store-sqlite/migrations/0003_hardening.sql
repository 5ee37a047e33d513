-- Paging of the revocation feed.
-- * `GET /auth/revocations` answers in pages ordered by (revoked_at, session id), and a page
--   starts just after the last entry of the previous one. Many sessions can share one
--   `revoked_at` (a logout everywhere stamps them all with one millisecond), so the id is part
--   of the order and of the position: a page is one range of this index, read in its order,
--   however many sessions ended in the window.
-- * Partial, like the index it replaces: only revoked sessions are in it, so logins and
--   rotations never write it. It still serves the cleanup job's `revoked_at < ?` branch.
-- * `id` is the BLOB primary key, not the rowid, so it has to be named: an index on
--   `revoked_at` alone would carry the rowid and sort ties by it.

DROP INDEX sessions_by_revocation;
CREATE INDEX sessions_by_revocation ON sessions (revoked_at, id) WHERE revoked_at IS NOT NULL;
