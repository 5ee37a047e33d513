-- DPoP (RFC 9449): sessions bound to a key, and the proofs already accepted. Same tables and
-- meaning as on SQLite.
-- * `sessions.dpop_jkt` is the RFC 7638 thumbprint of the key a session is bound to (NULL:
--   unbound). It is public (it is in every access token's `cnf`), so it is stored as it is.
--   Adding a nullable column without a default does not rewrite the table.
-- * `dpop_jtis` holds a 16-byte fingerprint of each accepted proof's key and `jti`, until the
--   proof could no longer be accepted anyway (`expires_at`, ms). The primary key makes a second
--   insert of one fingerprint a conflict: a replay, whichever instance saw the first. Expired
--   rows are purged by the cleanup job (every 10 minutes), so the table holds at most about ten
--   minutes of proofs; an expired row not yet purged does not block its id.

ALTER TABLE sessions ADD COLUMN dpop_jkt TEXT;

CREATE TABLE dpop_jtis (
    id         BYTEA  PRIMARY KEY,
    expires_at BIGINT NOT NULL
);

CREATE INDEX dpop_jtis_by_expiry ON dpop_jtis (expires_at);
