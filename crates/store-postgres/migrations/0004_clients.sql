-- OAuth clients, and the client each session belongs to. Same tables and meaning as on SQLite.
-- * A client's id is text: a UUID's hyphenated form for registered clients, `tessera` for the
--   built-in public client, which this migration creates (every database has it, and every
--   session from before clients existed belongs to it).
-- * `secret_hash` is the SHA-256 of a confidential client's 256-bit random secret (NULL for
--   public clients): the secret itself is shown once and never stored.
-- * Removal is a mark (`removed_at`), not a delete: sessions keep naming their client, and a
--   removed client's id can never authenticate again. Names are unique among clients that are
--   not removed (a partial unique index), so a name can be given again after a removal.
-- * `sessions.client_id` references `clients`; adding a column with a constant default does not
--   rewrite the table. A rotation never writes `client_id`, so its index keeps rotations HOT.
-- * `sessions_by_client` serves the revocation of a removed client's sessions.

CREATE TABLE clients (
    id          TEXT   PRIMARY KEY,
    name        TEXT   COLLATE "C" NOT NULL,
    kind        TEXT   NOT NULL CHECK (kind IN ('public', 'confidential')),
    secret_hash BYTEA,
    created_at  BIGINT NOT NULL,
    removed_at  BIGINT
);

CREATE UNIQUE INDEX clients_by_name ON clients (name) WHERE removed_at IS NULL;

INSERT INTO clients (id, name, kind, secret_hash, created_at, removed_at)
VALUES ('tessera', 'tessera', 'public', NULL, 0, NULL);

ALTER TABLE sessions ADD COLUMN client_id TEXT NOT NULL DEFAULT 'tessera' REFERENCES clients (id);

CREATE INDEX sessions_by_client ON sessions (client_id);
