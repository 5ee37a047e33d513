-- Paging of the revocation feed.
-- * `GET /auth/revocations` answers in pages ordered by (revoked_at, session id), and a page
--   starts just after the last entry of the previous one. Many sessions can share one
--   `revoked_at` (a logout everywhere stamps them all with one millisecond), so the id is part
--   of the order and of the position: a page is one range scan of this index,
--   `(revoked_at, id) > ($1, $2) ORDER BY revoked_at, id LIMIT $3`, however many sessions ended
--   in the window.
-- * It keeps 0001's index policy: a rotation writes neither `revoked_at` nor `id`, and the
--   index is partial, so live sessions (and so logins and rotations) never touch it; rotations
--   stay HOT updates. It still serves the cleanup job's `revoked_at < $1` branch.

DROP INDEX sessions_by_revocation;
CREATE INDEX sessions_by_revocation ON sessions (revoked_at, id) WHERE revoked_at IS NOT NULL;
