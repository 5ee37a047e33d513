-- Login throttling counters, shared by every instance on the database. The same table and
-- meaning as the SQLite schema.
-- * One row per counter: `scope` is `name` (a username's key), `device` (a device token's id)
--   or `address` (a client IP, an IPv6 client's /64), `key` the value. The row is the counter's
--   whole state: when its window of failures opened, its last failure, how many in the window.
--   Holds are not stored: they follow from the row (see `CountFailure` in the core crate), so
--   taking a failure back is one decrement.
-- * An attempt is one upsert (`INSERT … ON CONFLICT DO UPDATE … WHERE not held … RETURNING`):
--   concurrent attempts on one counter, from any instance, queue on its row lock and each sees
--   the count the previous one committed.
-- * No index beyond the key, and `fillfactor = 90`: each attempt updates its row, and with no
--   indexed column changing the updates stay HOT. The cleanup job deletes counters quiet for
--   15 minutes with a scan of a table that holds only recent failures.

CREATE TABLE login_failures (
    scope     TEXT    NOT NULL,
    key       TEXT    NOT NULL,
    opened_at BIGINT  NOT NULL,
    last_at   BIGINT  NOT NULL,
    failures  INTEGER NOT NULL,
    PRIMARY KEY (scope, key)
) WITH (fillfactor = 90);
