-- Revocations for resource services: `GET /auth/revocations?since=…` lists the sessions revoked
-- since a time, and every resource service polls it every few seconds.
-- * A partial index on `revoked_at`: it holds only revoked sessions (live ones have NULL), so it
--   stays small, costs nothing on login or rotation (neither writes `revoked_at`), and turns the
--   poll into a range scan of the last few minutes' revocations instead of a table scan.
-- * It also serves the cleanup job's `revoked_at < ?` branch.

CREATE INDEX sessions_by_revocation ON sessions (revoked_at) WHERE revoked_at IS NOT NULL;
