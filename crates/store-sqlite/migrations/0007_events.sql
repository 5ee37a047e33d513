-- Events: the outbox of the webhook sender. A row is written in the same transaction as the
-- change it reports (a login, a revocation, a password change …), so a committed change always
-- has its event, a rolled-back one none, and a crash between the commit and the send loses
-- nothing: the sender finds the row after a restart.
-- * `id`: the event id (UUID v7); `msg_` and its hex digits are the `webhook-id`, the same on
--   every attempt. `data` is the body's `data` object as JSON text, built by core; a reset
--   token in it is sealed (core's `EventSealer`), never stored as it is.
-- * No foreign keys: an event outlives the user and session it names (`user.deleted`).
-- * `state`: pending, delivered or failed. A pending row is due at `next_attempt_at`; a sender
--   claims it by setting `lease_until` (and counting the attempt), so nobody else takes it
--   until the lease lapses (60 s); it then records the outcome if its lease is still the
--   row's. `retry_since` is when retrying began (creation, or an operator's retry): delivery
--   gives up a day after it. `finished_at`: delivered or given up.
-- * `events_due`: the sender's query, pending rows by due time; only pending rows are in it.
--   `events_by_time`: listings, newest first, and the cleanup's ranges (a delivered or unsent
--   event to delete was created before the cutoff). `events_failed`: the metrics' count of
--   failed events, read at every scrape, without a scan of the delivered ones.

CREATE TABLE events (
    id              BLOB    PRIMARY KEY NOT NULL,
    type            TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    data            TEXT    NOT NULL,
    state           TEXT    NOT NULL DEFAULT 'pending',
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    lease_until     INTEGER,
    retry_since     INTEGER NOT NULL,
    finished_at     INTEGER,
    last_error      TEXT
) STRICT;

CREATE INDEX events_due ON events (next_attempt_at) WHERE state = 'pending';
CREATE INDEX events_by_time ON events (created_at);
CREATE INDEX events_failed ON events (created_at) WHERE state = 'failed';
