-- Events: the outbox of the webhook sender, with the same columns and meaning as the SQLite
-- schema. A row is written in the same transaction (or statement) as the change it reports, so
-- a committed change always has its event, a rolled-back one none, and a crash between the
-- commit and the send loses nothing.
-- * `id`: the event id (UUID v7); `msg_` and its hex digits are the `webhook-id`, the same on
--   every attempt. `data` is the body's `data` object as JSON text, built by core (text, not
--   jsonb: it is sent byte for byte and never queried); a reset token in it is sealed.
-- * No foreign keys: an event outlives the user and session it names (`user.deleted`).
-- * Several instances share the outbox: a sender claims due rows with `FOR UPDATE SKIP LOCKED`
--   and sets `lease_until` (60 s ahead), so no other instance takes them until the lease lapses;
--   it records the outcome only if its lease is still the row's. Instances compare leases with
--   their own clocks: keep them in sync (NTP), as the key rotation already asks.
-- * `events_due`: pending rows by due time, the sender's query; delivered and failed rows are
--   not in it. `events_by_time`: listings, newest first, and the cleanup's ranges (a delivered
--   or unsent event to delete was created before the cutoff). `events_failed`: the metrics'
--   count of failed events, read at every scrape, without a scan of the delivered ones.

CREATE TABLE events (
    id              UUID    PRIMARY KEY,
    type            TEXT    NOT NULL,
    created_at      BIGINT  NOT NULL,
    data            TEXT    NOT NULL,
    state           TEXT    NOT NULL DEFAULT 'pending',
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT  NOT NULL,
    lease_until     BIGINT,
    retry_since     BIGINT  NOT NULL,
    finished_at     BIGINT,
    last_error      TEXT
);

CREATE INDEX events_due ON events (next_attempt_at) WHERE state = 'pending';
CREATE INDEX events_by_time ON events (created_at);
CREATE INDEX events_failed ON events (created_at) WHERE state = 'failed';
