//! The schema's migrations (`migrations/*.sql`), counted in SQLite's `user_version`.
//!
//! Databases created before this store moved from sqlx to rusqlite recorded their migrations
//! in sqlx's `_sqlx_migrations` table instead, and have `user_version` 0. Those are adopted:
//! the highest version sqlx applied successfully becomes `user_version` (the files and their
//! numbers are the same), and the table is left in place, unused.

use rusqlite::{Connection, OptionalExtension};

/// In order; a database at `user_version` n has the first n applied. Append only.
const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/0001_initial.sql"),
    include_str!("../migrations/0002_revocations.sql"),
    include_str!("../migrations/0003_hardening.sql"),
    include_str!("../migrations/0004_clients.sql"),
    include_str!("../migrations/0005_accounts.sql"),
    include_str!("../migrations/0006_throttle.sql"),
    include_str!("../migrations/0007_events.sql"),
    include_str!("../migrations/0008_dpop.sql"),
];

/// How a migration run ended, when SQLite itself did not fail.
pub(crate) enum Outcome {
    /// The schema is current.
    Current,
    /// The database was migrated by a newer build, to this version.
    Newer(i64),
}

/// Applies what is pending. Runs in one savepoint of the writer, so a failure applies nothing
/// and a second process migrating at the same time waits, then finds nothing to do.
pub(crate) fn migrate(conn: &Connection) -> rusqlite::Result<Outcome> {
    let known = i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX);
    let mut applied: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if applied == 0 {
        applied = applied_by_sqlx(conn)?;
    }
    if applied > known {
        return Ok(Outcome::Newer(applied));
    }
    for sql in MIGRATIONS
        .iter()
        .skip(usize::try_from(applied).unwrap_or(0))
    {
        conn.execute_batch(sql)?;
    }
    conn.pragma_update(None, "user_version", known)?;
    Ok(Outcome::Current)
}

fn applied_by_sqlx(conn: &Connection) -> rusqlite::Result<i64> {
    let has_table = conn
        .query_row(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
            [],
            |_| Ok(()),
        )
        .optional()?
        .is_some();
    if !has_table {
        return Ok(0);
    }
    conn.query_row(
        "SELECT coalesce(max(version), 0) FROM _sqlx_migrations WHERE success",
        [],
        |r| r.get(0),
    )
}
