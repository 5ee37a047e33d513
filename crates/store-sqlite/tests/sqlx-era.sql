-- A database as the sqlx-based SQLite store left it: both migrations applied and recorded in
-- sqlx's _sqlx_migrations (its DDL, checksums = SHA-384 of the files), user_version 0, one user.
PRAGMA foreign_keys=OFF;
BEGIN TRANSACTION;
CREATE TABLE users (
    id            BLOB    PRIMARY KEY NOT NULL,
    username      TEXT    NOT NULL,
    username_key  TEXT    NOT NULL UNIQUE,
    password_hash TEXT    NOT NULL,
    created_at    INTEGER NOT NULL
) STRICT;
INSERT INTO users VALUES(X'0190f5a1c2d37e4f8a9b0c1d2e3f4a5b','Alice','alice','$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g',1764633600000);
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
CREATE TABLE signing_keys (
    kid         TEXT    PRIMARY KEY NOT NULL,
    alg         TEXT    NOT NULL,
    private_key BLOB    NOT NULL,
    sealed      INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    activate_at INTEGER NOT NULL
) STRICT;
CREATE TABLE secrets (
    name     TEXT    PRIMARY KEY NOT NULL,
    material BLOB    NOT NULL,
    sealed   INTEGER NOT NULL
) STRICT;
CREATE TABLE _sqlx_migrations (
    version BIGINT PRIMARY KEY,
    description TEXT NOT NULL,
    installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    success BOOLEAN NOT NULL,
    checksum BLOB NOT NULL,
    execution_time BIGINT NOT NULL
);
INSERT INTO _sqlx_migrations VALUES(1,'initial','2026-12-02 01:50:05',1,X'cfb4d611f805cffe06dd4b24baa30ef3fc986212763a42117eca3476f151431b3fb3789047eac028f4cb1e756796ef96',1000000);
INSERT INTO _sqlx_migrations VALUES(2,'revocations','2026-12-02 01:50:05',1,X'a8a9c083d42566faf16cc0f6cddae9c3138d5ab4558072daccdf0a67ff4229601204c2023f2d626150d2311ab714e3bb',500000);
CREATE INDEX sessions_by_user ON sessions (user_id);
CREATE INDEX sessions_by_last_use ON sessions (last_used_at);
CREATE INDEX sessions_by_revocation ON sessions (revoked_at) WHERE revoked_at IS NOT NULL;
COMMIT;
