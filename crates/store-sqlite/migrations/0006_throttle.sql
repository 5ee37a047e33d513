-- Login throttling counters, shared by every process on the database.
-- * One row per counter: `scope` is `name` (a username's key), `device` (a device token's id)
--   or `address` (a client IP, an IPv6 client's /64), `key` the value. The row is the counter's
--   whole state: when its window of failures opened, its last failure, how many in the window.
--   Holds are not stored: they follow from the row (see `CountFailure` in the core crate), so
--   taking a failure back is one decrement.
-- * An attempt is one upsert (`INSERT … ON CONFLICT DO UPDATE … WHERE not held … RETURNING`),
--   atomic by itself: racing attempts are counted one after the other.
-- * No index beyond the key: the cleanup job deletes counters quiet for 15 minutes with a scan
--   of a table that holds only recent failures.

CREATE TABLE login_failures (
    scope     TEXT    NOT NULL,
    key       TEXT    NOT NULL,
    opened_at INTEGER NOT NULL,
    last_at   INTEGER NOT NULL,
    failures  INTEGER NOT NULL,
    PRIMARY KEY (scope, key)
) STRICT, WITHOUT ROWID;
