//! [`SqliteStore`]: Tessera's [`Store`] on SQLite (rusqlite, SQLite bundled), in WAL mode.
//!
//! The embedded default: one file, no server. Several processes may share the file (a second
//! server, the CLI), but for several machines use the PostgreSQL store. Start at
//! [`SqliteStore::connect`]; the schema and its reasons are in `migrations/`.
//!
//! # Threads
//!
//! - **One writer thread** owns the only connection this process writes with. Callers send it
//!   a closure over a channel and await a oneshot answer: one hand-off per request, not per
//!   statement. The thread runs whatever is queued (up to 64 writes) in one `BEGIN IMMEDIATE`
//!   transaction, each write in a savepoint of its own, and commits once: a failed write rolls
//!   back its savepoint and fails its caller only, and every caller is answered after the
//!   commit, never before. A new kind of write is one closure `FnOnce(&Connection) ->
//!   rusqlite::Result<T>` passed to `Writer::write` (`writer.rs`); several statements in one
//!   closure commit together or not at all.
//! - **Reader connections** (up to 4, opened on demand) serve reads on tokio's blocking
//!   threads. In WAL mode a reader sees the last commit and never waits for the writer, so a
//!   session read (`LiveSession`, `/auth/me`) does not queue behind refreshes.
//!
//! A write whose caller has gone (a cancelled request) is skipped; a panic inside a write fails
//! that write only; a writer thread that has stopped turns every later write into
//! [`StoreError::Unavailable`] rather than a hang. Another process writing to the same file is
//! waited for (busy timeout 5 s), then [`StoreError::Unavailable`].
//!
//! # Durability
//!
//! WAL with `synchronous=NORMAL`: a commit is written to the WAL before its callers are
//! answered but not synced. A process that dies (even `kill -9`) loses no answered write: the
//! WAL is in the operating system's hands. A power loss or kernel crash may roll back the last
//! commits before the last sync (a checkpoint syncs): a client may then hold a refresh token
//! one rotation ahead of the database, which it presents as unknown and logs in again. A
//! rotation is one statement, so no crash leaves a session forked. `synchronous=FULL` would
//! sync every batch; group commit makes that cheaper than per statement, but it is not what
//! this store does.
//!
//! # The WAL's size
//!
//! SQLite checkpoints the WAL after commits that take it past 1000 pages (~4 MiB). Under
//! sustained reads that checkpoint may never find a moment to restart the file from the top,
//! so the writer also looks at the WAL's size once a second between batches and truncates it
//! (`wal_checkpoint(TRUNCATE)`) when it exceeds 32 MiB.
//!
//! # Migrations
//!
//! The schema's version is SQLite's `user_version`. A database written by the earlier,
//! sqlx-based version of this crate (with sqlx's `_sqlx_migrations` table and `user_version`
//! 0) opens as it is: sqlx's record is adopted. The reverse does not hold: a database created
//! by this version has no `_sqlx_migrations` table, and a build from before the change
//! refuses it.

mod migrate;
mod readers;
mod writer;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{Connection, OpenFlags, OptionalExtension, Row, params};
use tessera_core::events::{Delivery, EventRow, EventState, NewEvent, StoredEvent};
use tessera_core::{
    ClientKind, ClientRecord, CountFailure, Counted, Counter, CurrentRotation, EventBacklog,
    FailureState, LiveBounds, RevokeReason, SealedBlob, SessionRecord, SigningAlg, Store,
    StoreError, StoredKey, Timestamp, User, UserSummary, revocation_page_start,
};
use uuid::Uuid;

use crate::readers::Readers;
use crate::writer::Writer;

/// How long a statement waits for another process's write lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// A SQLite database holding users, sessions and keys. Clones share the writer thread and the
/// reader connections; the thread ends with the last clone (or at [`SqliteStore::close`]).
#[derive(Clone)]
pub struct SqliteStore {
    path: PathBuf,
    writer: Writer,
    readers: Readers,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `url` and applies pending migrations.
    ///
    /// `url` is `sqlite://path` (`sqlite:///abs/path` for an absolute one) or `sqlite:path`;
    /// the one option accepted is `?mode=rwc` (what this does anyway). In-memory databases are
    /// not supported: the writer and the readers are separate connections to one file.
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), tessera_core::StoreError> {
    /// let store = tessera_store_sqlite::SqliteStore::connect("sqlite://tessera.db").await?;
    /// # Ok(()) }
    /// ```
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let store = Self::connect_without_migrating(url).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Opens the database without applying migrations.
    pub async fn connect_without_migrating(url: &str) -> Result<Self, StoreError> {
        let path = path_of(url)?;
        let opened = path.clone();
        let conn = tokio::task::spawn_blocking(move || {
            create_private(&opened)?;
            open_writer(&opened).map_err(|e| cannot_open(&opened, &e))
        })
        .await
        .map_err(|e| StoreError::Other(Box::new(e)))??;
        let mut wal = path.clone().into_os_string();
        wal.push("-wal");
        let writer =
            Writer::spawn(conn, wal.into()).map_err(|e| StoreError::Unavailable(Box::new(e)))?;
        Ok(Self {
            readers: Readers::new(path.clone()),
            path,
            writer,
        })
    }

    /// Applies pending migrations (idempotent).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match self.writer.write(migrate::migrate).await? {
            migrate::Outcome::Current => Ok(()),
            migrate::Outcome::Newer(version) => Err(StoreError::Other(
                format!("the database's schema (version {version}) is newer than this build knows")
                    .into(),
            )),
        }
    }

    /// Commits queued writes, checkpoints the WAL and closes every connection. Later calls
    /// fail with [`StoreError::Unavailable`].
    pub async fn close(&self) {
        self.readers.close();
        self.writer.close().await;
    }
}

/// The file a `sqlite:` URL names (an error for URLs the store refuses).
pub fn database_path(url: &str) -> Result<PathBuf, StoreError> {
    path_of(url)
}

/// The file a `sqlite:` URL names.
fn path_of(url: &str) -> Result<PathBuf, StoreError> {
    let invalid =
        |why: &str| StoreError::Other(format!("invalid SQLite URL `{url}`: {why}").into());
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .ok_or_else(|| invalid("it does not start with sqlite:"))?;
    let (path, options) = rest.split_once('?').unwrap_or((rest, ""));
    if let Some(option) = options
        .split('&')
        .find(|o| !o.is_empty() && *o != "mode=rwc")
    {
        return Err(invalid(&format!("unsupported option `{option}`")));
    }
    if path.is_empty() || path == ":memory:" || path.starts_with("file:") {
        return Err(invalid("a file path is needed (no in-memory databases)"));
    }
    Ok(PathBuf::from(path))
}

/// A connection with the settings every connection needs: the busy timeout (another process
/// may hold the write lock), cached statements.
fn open(path: &Path, flags: OpenFlags) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(path, flags | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // Every statement this crate runs, with room to spare: none is ever re-parsed.
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

fn open_writer(path: &Path) -> rusqlite::Result<Connection> {
    let conn = open(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
    )?;
    conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))?;
    // NORMAL in WAL mode loses no committed transaction when the process dies (only on power
    // loss may the last ones roll back), at a fraction of FULL's fsync cost.
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", true)?;
    Ok(conn)
}

/// Creates a missing database file readable and writable by its owner only (0600), before
/// SQLite opens it: SQLite gives the WAL and shared-memory files it creates beside it the main
/// file's mode, so none of the three is readable by others, whatever the umask. A file that
/// exists is left as it is.
fn create_private(path: &Path) -> Result<(), StoreError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(StoreError::Other(
            format!("cannot create {}: {}", path.display(), io_reason(path, &e)).into(),
        )),
    }
}

/// Why SQLite could not open `path`, in the operating system's words when SQLite has none
/// better than "unable to open database file".
fn cannot_open(path: &Path, e: &rusqlite::Error) -> StoreError {
    let reason = match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::CannotOpen) => std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .err()
            .map(|io| io_reason(path, &io)),
        _ => None,
    };
    match reason {
        Some(reason) => {
            StoreError::Other(format!("cannot open {}: {reason}", path.display()).into())
        }
        None => classify(e),
    }
}

fn io_reason(path: &Path, e: &std::io::Error) -> String {
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
    match (e.kind(), parent) {
        (std::io::ErrorKind::NotFound, Some(dir)) if !dir.exists() => {
            format!("the directory {} does not exist", dir.display())
        }
        (std::io::ErrorKind::PermissionDenied, _) => {
            format!("permission denied ({e})")
        }
        _ => e.to_string(),
    }
}

/// Sorts SQLite errors into the store's three outcomes. The error's text goes with it, not
/// its type: no rusqlite type leaves this crate.
fn classify(e: &rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode;
    use rusqlite::ffi::{SQLITE_CONSTRAINT_PRIMARYKEY, SQLITE_CONSTRAINT_UNIQUE};
    let text = || -> Box<dyn std::error::Error + Send + Sync> { e.to_string().into() };
    match e {
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(
                f.extended_code,
                SQLITE_CONSTRAINT_UNIQUE | SQLITE_CONSTRAINT_PRIMARYKEY
            ) =>
        {
            StoreError::Conflict
        }
        // Busy or locked after the busy timeout, or the file unreachable: the database is
        // there but jammed, or the disk is.
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(
                f.code,
                ErrorCode::DatabaseBusy
                    | ErrorCode::DatabaseLocked
                    | ErrorCode::CannotOpen
                    | ErrorCode::SystemIoFailure
                    | ErrorCode::DiskFull
                    | ErrorCode::OperationAborted
            ) =>
        {
            StoreError::Unavailable(text())
        }
        _ => StoreError::Other(text()),
    }
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Other(format!("corrupt row: {what}").into())
}

fn uuid(bytes: &[u8]) -> Result<Uuid, StoreError> {
    Uuid::from_slice(bytes).map_err(|_| corrupt("id is not 16 bytes"))
}

fn ms(t: Timestamp) -> i64 {
    t.as_millis()
}

/// A throttle counter's row: `(opened_at, last_at, failures)`.
fn failure_state(
    (opened_at, last_at, failures): (i64, i64, i64),
) -> Result<FailureState, StoreError> {
    Ok(FailureState {
        opened_at: Timestamp::from_millis(opened_at),
        last_at: Timestamp::from_millis(last_at),
        failures: u32::try_from(failures).map_err(|_| corrupt("failure count"))?,
    })
}

fn generation(g: u64) -> Result<i64, StoreError> {
    i64::try_from(g).map_err(|_| corrupt("generation overflow"))
}

/// Writes events into the outbox, inside the caller's write (so in its transaction).
fn emit(c: &Connection, events: &[NewEvent]) -> rusqlite::Result<()> {
    let mut insert = c.prepare_cached(INSERT_EVENT)?;
    for e in events {
        insert.execute(params![
            e.id.as_bytes(),
            e.kind.as_str(),
            ms(e.created_at),
            e.data
        ])?;
    }
    Ok(())
}

/// Runs a revoking statement that returns `(id, user_id)` of each session it ended, and writes
/// their events (with `reason`, the one the statement wrote). Returns how many it ended.
fn revoke_and_emit(
    c: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    reason: RevokeReason,
    now: Timestamp,
) -> rusqlite::Result<u64> {
    let ended = c
        .prepare_cached(sql)?
        .query_map(params, |r| {
            Ok((
                Uuid::from_bytes(r.get::<_, [u8; 16]>(0)?),
                Uuid::from_bytes(r.get::<_, [u8; 16]>(1)?),
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    emit(c, &NewEvent::sessions_revoked(&ended, reason, now))?;
    Ok(ended.len() as u64)
}

fn read_event(r: &Row<'_>) -> rusqlite::Result<EventRow> {
    Ok(EventRow {
        id: Uuid::from_bytes(r.get::<_, [u8; 16]>(0)?),
        kind: r.get(1)?,
        created_at: r.get(2)?,
        data: r.get(3)?,
        state: r.get(4)?,
        attempts: r.get(5)?,
        next_attempt_at: r.get(6)?,
        lease_until: r.get(7)?,
        retry_since: r.get(8)?,
        finished_at: r.get(9)?,
        last_error: r.get(10)?,
    })
}

fn stored_events(rows: Vec<EventRow>) -> Result<Vec<StoredEvent>, StoreError> {
    rows.into_iter()
        .map(|r| {
            r.into_event()
                .ok_or_else(|| corrupt("unknown event type or state"))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// SQL. One constant per statement, so a change to the `Store` trait finds each in one place.

const PING: &str = "SELECT 1";
/// `CountFailure`'s statement (its SQL form is written beside the rule, in the core crate).
const COUNT_FAILURE: &str = "INSERT INTO login_failures (scope, key, opened_at, last_at, failures) \
     VALUES (?1, ?2, ?3, ?3, 1) \
     ON CONFLICT (scope, key) DO UPDATE SET \
     opened_at = CASE WHEN login_failures.opened_at <= ?4 THEN ?3 ELSE login_failures.opened_at END, \
     failures = CASE WHEN login_failures.opened_at <= ?4 THEN 1 \
                ELSE login_failures.failures + 1 END, \
     last_at = ?3 \
     WHERE NOT (login_failures.failures > ?5 AND login_failures.last_at > ?3 - \
       CASE WHEN login_failures.failures <= ?5 THEN 0 \
            WHEN login_failures.failures - ?5 - 1 >= ?6 THEN ?7 \
            ELSE ?8 << (login_failures.failures - ?5 - 1) END) \
     RETURNING failures";
const FAILURES: &str =
    "SELECT opened_at, last_at, failures FROM login_failures WHERE scope = ? AND key = ?";
const FORGET_FAILURES: &str = "DELETE FROM login_failures WHERE scope = ? AND key = ?";
const TAKE_BACK_FAILURE: &str = "UPDATE login_failures SET failures = failures - 1 \
     WHERE scope = ? AND key = ? AND opened_at <= ? AND failures > 0";
const DELETE_QUIET_FAILURES: &str = "DELETE FROM login_failures WHERE last_at < ?";
const FAILURE_COUNTERS: &str = "SELECT count(*) FILTER (WHERE scope = 'name'), \
     count(*) FILTER (WHERE scope = 'address') FROM login_failures";
const INSERT_USER: &str = "INSERT INTO users (id, username, username_key, password_hash, created_at, \
     disabled_at) VALUES (?, ?, ?, ?, ?, ?)";
const USER_BY_NAME: &str = "SELECT id, username, password_hash, created_at, disabled_at \
     FROM users WHERE username_key = ?";
const USER_BY_ID: &str =
    "SELECT id, username, password_hash, created_at, disabled_at FROM users WHERE id = ?";
const USERS: &str = "SELECT id, username, password_hash, created_at, disabled_at FROM users \
     ORDER BY username_key";
/// Ids compare as bytes in SQLite, as UUIDs do in PostgreSQL: the same order on both.
const USERS_PAGE: &str = "SELECT u.id, u.username, u.password_hash, u.created_at, u.disabled_at, \
     (SELECT count(*) FROM sessions s WHERE s.user_id = u.id AND s.revoked_at IS NULL \
      AND s.last_used_at > ?2 AND s.created_at > ?3) \
     FROM users u WHERE (?1 IS NULL OR u.id > ?1) ORDER BY u.id LIMIT ?4";
const SET_DISABLED: &str = "UPDATE users SET disabled_at = \
     CASE WHEN ?2 IS NULL THEN NULL ELSE coalesce(disabled_at, ?2) END WHERE id = ?1";
const KEEP_DELETED_REVOCATIONS: &str = "INSERT INTO deleted_user_revocations (session_id, revoked_at) \
     SELECT id, coalesce(revoked_at, ?2) FROM sessions WHERE user_id = ?1 \
     ON CONFLICT (session_id) DO NOTHING";
const DELETE_USER: &str = "DELETE FROM users WHERE id = ?";
const LIVE_SESSION_OF: &str =
    "SELECT 1 FROM sessions WHERE id = ? AND user_id = ? AND revoked_at IS NULL";
const SET_PASSWORD: &str = "UPDATE users SET password_hash = ? WHERE id = ?";
const REVOKE_OTHER_SESSIONS: &str = "UPDATE sessions SET revoked_at = ?, revoked_reason = ? \
     WHERE user_id = ? AND id <> ? AND revoked_at IS NULL RETURNING id, user_id";
const REPLACE_RESET_TOKEN: &str = "INSERT INTO password_resets (user_id, token_hash, expires_at) \
     SELECT id, ?2, ?3 FROM users WHERE id = ?1 \
     ON CONFLICT (user_id) DO UPDATE SET token_hash = excluded.token_hash, \
     expires_at = excluded.expires_at";
const USE_RESET_TOKEN: &str =
    "DELETE FROM password_resets WHERE token_hash = ? AND expires_at > ? RETURNING user_id";
const DELETE_EXPIRED_RESETS: &str = "DELETE FROM password_resets WHERE expires_at < ?";
const DELETE_DELETED_REVOCATIONS: &str =
    "DELETE FROM deleted_user_revocations WHERE revoked_at < ?";
const INSERT_SESSION: &str = "INSERT INTO sessions (id, user_id, generation, token_hash, created_at, \
     rotated_at, last_used_at, revoked_at, revoked_reason, user_agent, ip, client_id, dpop_jkt) \
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
/// A login's session: only for a user still enabled and with the password the login checked.
const OPEN_SESSION: &str = "INSERT INTO sessions (id, user_id, generation, token_hash, created_at, \
     rotated_at, last_used_at, revoked_at, revoked_reason, user_agent, ip, client_id, dpop_jkt) \
     SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?14 FROM users \
     WHERE id = ?2 AND disabled_at IS NULL AND password_hash = ?13";
/// The columns [`SessionRow::read`] expects, in its order.
macro_rules! session_select {
    ($where:literal) => {
        concat!(
            "SELECT s.id, s.user_id, u.username, s.generation, s.token_hash, s.created_at, \
             s.rotated_at, s.last_used_at, s.revoked_at, s.revoked_reason, s.user_agent, s.ip, \
             s.client_id, s.dpop_jkt FROM sessions s JOIN users u ON u.id = s.user_id ",
            $where
        )
    };
}
const SESSION: &str = session_select!("WHERE s.id = ?");
const UNREVOKED_SESSIONS: &str = session_select!(
    "WHERE s.revoked_at IS NULL AND (?1 IS NULL OR s.user_id = ?1) ORDER BY s.last_used_at DESC"
);
const ROTATE_SESSION: &str = "UPDATE sessions SET generation = generation + 1, token_hash = ?, \
     rotated_at = ?, last_used_at = ? WHERE id = ? AND generation = ? AND revoked_at IS NULL";
/// The refresh fast path: `rules::decide`'s `Rotate` conditions in the `WHERE`.
const ROTATE_CURRENT: &str = "UPDATE sessions SET generation = generation + 1, token_hash = ?, \
     rotated_at = ?, last_used_at = ? \
     WHERE id = ? AND generation = ? AND token_hash = ? AND revoked_at IS NULL \
     AND last_used_at > ? AND created_at > ? AND (?9 IS NULL OR client_id = ?9) \
     AND (dpop_jkt IS NULL OR dpop_jkt = ?10) \
     RETURNING id, user_id, \
     (SELECT username FROM users WHERE users.id = sessions.user_id) AS username, \
     generation, token_hash, created_at, rotated_at, last_used_at, revoked_at, \
     revoked_reason, user_agent, ip, client_id, dpop_jkt";
/// A proof id, unless recorded and unexpired: an expired record is taken over.
const INSERT_DPOP_JTI: &str = "INSERT INTO dpop_jtis (id, expires_at) VALUES (?1, ?2) \
     ON CONFLICT (id) DO UPDATE SET expires_at = excluded.expires_at \
     WHERE dpop_jtis.expires_at <= ?3";
const DELETE_EXPIRED_DPOP_JTIS: &str = "DELETE FROM dpop_jtis WHERE expires_at <= ?";
const REVOKE_SESSION: &str = "UPDATE sessions SET revoked_at = ?, revoked_reason = ? \
     WHERE id = ? AND revoked_at IS NULL RETURNING id, user_id";
const REVOKE_USER_SESSIONS: &str = "UPDATE sessions SET revoked_at = ?, revoked_reason = ? \
     WHERE user_id = ? AND revoked_at IS NULL RETURNING id, user_id";
/// What deleting a user ends: its sessions still live (`RETURNING`'s shape, for the events).
const LIVE_SESSIONS_OF: &str =
    "SELECT id, user_id FROM sessions WHERE user_id = ? AND revoked_at IS NULL";
const DELETE_SESSIONS: &str =
    "DELETE FROM sessions WHERE revoked_at < ? OR last_used_at < ? OR created_at < ?";
/// Two ranges, each of an index on `(revoked_at, id)` (`IS NOT NULL` names the sessions index's
/// partial condition): ended sessions, and the sessions of deleted users; merged, one page.
const REVOKED_SESSIONS_PAGE: &str = "SELECT id, revoked_at FROM ( \
     SELECT * FROM (SELECT id, revoked_at FROM sessions \
       WHERE revoked_at IS NOT NULL AND (revoked_at, id) > (?1, ?2) \
       ORDER BY revoked_at, id LIMIT ?3) \
     UNION ALL SELECT * FROM (SELECT session_id, revoked_at FROM deleted_user_revocations \
       WHERE (revoked_at, session_id) > (?1, ?2) ORDER BY revoked_at, session_id LIMIT ?3)) \
     ORDER BY revoked_at, id LIMIT ?3";
const INSERT_CLIENT: &str = "INSERT INTO clients (id, name, kind, secret_hash, created_at, removed_at) \
     VALUES (?, ?, ?, ?, ?, ?)";
const CLIENT: &str =
    "SELECT id, name, kind, secret_hash, created_at, removed_at FROM clients WHERE id = ?";
const CLIENTS: &str = "SELECT id, name, kind, secret_hash, created_at, removed_at FROM clients \
     WHERE removed_at IS NULL ORDER BY created_at, rowid";
const REMOVE_CLIENT: &str = "UPDATE clients SET removed_at = ? WHERE id = ? AND removed_at IS NULL";
const REVOKE_CLIENT_SESSIONS: &str = "UPDATE sessions SET revoked_at = ?, revoked_reason = ? \
     WHERE client_id = ? AND revoked_at IS NULL RETURNING id, user_id";
const KEYS: &str =
    "SELECT kid, alg, private_key, sealed, created_at, activate_at FROM signing_keys";
const INSERT_KEY: &str = "INSERT INTO signing_keys (kid, alg, private_key, sealed, created_at, \
     activate_at) VALUES (?, ?, ?, ?, ?, ?)";
const SECRET: &str = "SELECT material, sealed FROM secrets WHERE name = ?";
/// The columns [`read_event`] expects, in its order, after `$head`.
macro_rules! event_columns {
    ($head:literal $(, $tail:literal)?) => {
        concat!(
            $head,
            " id, type, created_at, data, state, attempts, next_attempt_at, lease_until, \
             retry_since, finished_at, last_error"
            $(, $tail)?
        )
    };
}
const INSERT_EVENT: &str = "INSERT INTO events (id, type, created_at, data, next_attempt_at, \
     retry_since) VALUES (?1, ?2, ?3, ?4, ?3, ?3)";
/// The due pending events whose lease has lapsed, oldest due first, claimed. One writer at a
/// time (and SQLite's lock across processes) makes the claim exclusive.
const CLAIM_EVENTS: &str = event_columns!(
    "UPDATE events SET lease_until = ?2, attempts = attempts + 1 \
     WHERE id IN (SELECT id FROM events WHERE state = 'pending' AND next_attempt_at <= ?1 \
       AND (lease_until IS NULL OR lease_until <= ?1) ORDER BY next_attempt_at LIMIT ?3) \
     RETURNING"
);
const FINISH_EVENT: &str = "UPDATE events SET state = ?3, \
     next_attempt_at = coalesce(?4, next_attempt_at), finished_at = ?5, \
     last_error = coalesce(?6, last_error), lease_until = NULL \
     WHERE id = ?1 AND lease_until = ?2 AND state = 'pending'";
const EVENTS: &str = event_columns!(
    "SELECT",
    " FROM events WHERE (?1 IS NULL OR state = ?1) ORDER BY created_at DESC, id DESC LIMIT ?2"
);
const RETRY_EVENT: &str = "UPDATE events SET state = 'pending', next_attempt_at = ?2, \
     retry_since = ?2, attempts = 0, lease_until = NULL, finished_at = NULL \
     WHERE id = ?1 AND state <> 'delivered'";
const EVENT_BACKLOG: &str = "SELECT \
     (SELECT count(*) FROM events WHERE state = 'pending'), \
     (SELECT min(created_at) FROM events WHERE state = 'pending'), \
     (SELECT count(*) FROM events WHERE state = 'failed')";
const DELETE_EVENTS: &str = "DELETE FROM events \
     WHERE (created_at < ?1 AND state = 'delivered' AND finished_at < ?1) \
     OR (created_at < ?2 AND state = 'pending' AND attempts = 0 AND retry_since < ?2)";
const INSERT_SECRET_IF_ABSENT: &str = "INSERT INTO secrets (name, material, sealed) VALUES (?, ?, ?) \
     ON CONFLICT (name) DO NOTHING";

// ---------------------------------------------------------------------------------------------
// Rows as SQLite returns them; turned into domain types (which may fail) off the database
// threads.

struct UserRow {
    id: Vec<u8>,
    username: String,
    password_hash: String,
    created_at: i64,
    disabled_at: Option<i64>,
}

impl UserRow {
    fn read(r: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: r.get(0)?,
            username: r.get(1)?,
            password_hash: r.get(2)?,
            created_at: r.get(3)?,
            disabled_at: r.get(4)?,
        })
    }
}

impl TryFrom<UserRow> for User {
    type Error = StoreError;
    fn try_from(r: UserRow) -> Result<Self, StoreError> {
        Ok(User {
            id: uuid(&r.id)?,
            username: r.username,
            password_hash: r.password_hash,
            created_at: Timestamp::from_millis(r.created_at),
            disabled_at: r.disabled_at.map(Timestamp::from_millis),
        })
    }
}

struct ClientRow {
    id: String,
    name: String,
    kind: String,
    secret_hash: Option<Vec<u8>>,
    created_at: i64,
    removed_at: Option<i64>,
}

impl ClientRow {
    fn read(r: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: r.get(0)?,
            name: r.get(1)?,
            kind: r.get(2)?,
            secret_hash: r.get(3)?,
            created_at: r.get(4)?,
            removed_at: r.get(5)?,
        })
    }
}

impl TryFrom<ClientRow> for ClientRecord {
    type Error = StoreError;
    fn try_from(r: ClientRow) -> Result<Self, StoreError> {
        Ok(ClientRecord {
            id: r.id,
            name: r.name,
            kind: ClientKind::parse(&r.kind).ok_or_else(|| corrupt("unknown client kind"))?,
            secret_hash: r.secret_hash,
            created_at: Timestamp::from_millis(r.created_at),
            removed_at: r.removed_at.map(Timestamp::from_millis),
        })
    }
}

struct SessionRow {
    id: Vec<u8>,
    user_id: Vec<u8>,
    username: String,
    generation: i64,
    token_hash: Vec<u8>,
    created_at: i64,
    rotated_at: i64,
    last_used_at: i64,
    revoked_at: Option<i64>,
    revoked_reason: Option<String>,
    user_agent: Option<String>,
    ip: Option<String>,
    client_id: String,
    dpop_jkt: Option<String>,
}

impl SessionRow {
    fn read(r: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: r.get(0)?,
            user_id: r.get(1)?,
            username: r.get(2)?,
            generation: r.get(3)?,
            token_hash: r.get(4)?,
            created_at: r.get(5)?,
            rotated_at: r.get(6)?,
            last_used_at: r.get(7)?,
            revoked_at: r.get(8)?,
            revoked_reason: r.get(9)?,
            user_agent: r.get(10)?,
            ip: r.get(11)?,
            client_id: r.get(12)?,
            dpop_jkt: r.get(13)?,
        })
    }
}

impl TryFrom<SessionRow> for SessionRecord {
    type Error = StoreError;
    fn try_from(r: SessionRow) -> Result<Self, StoreError> {
        Ok(SessionRecord {
            id: uuid(&r.id)?,
            user_id: uuid(&r.user_id)?,
            username: r.username,
            generation: u64::try_from(r.generation).map_err(|_| corrupt("negative generation"))?,
            token_hash: r.token_hash,
            created_at: Timestamp::from_millis(r.created_at),
            rotated_at: Timestamp::from_millis(r.rotated_at),
            last_used_at: Timestamp::from_millis(r.last_used_at),
            revoked_at: r.revoked_at.map(Timestamp::from_millis),
            revoked_reason: r
                .revoked_reason
                .map(|name| {
                    RevokeReason::parse(&name).ok_or_else(|| corrupt("unknown revoke reason"))
                })
                .transpose()?,
            user_agent: r.user_agent,
            ip: r
                .ip
                .map(|ip| IpAddr::from_str(&ip))
                .transpose()
                .map_err(|_| corrupt("bad ip"))?,
            client_id: r.client_id,
            dpop_jkt: r.dpop_jkt,
        })
    }
}

struct KeyRow {
    kid: String,
    alg: String,
    material: Vec<u8>,
    sealed: bool,
    created_at: i64,
    activate_at: i64,
}

impl TryFrom<KeyRow> for StoredKey {
    type Error = StoreError;
    fn try_from(r: KeyRow) -> Result<Self, StoreError> {
        Ok(StoredKey {
            kid: r.kid,
            alg: SigningAlg::from_str(&r.alg).map_err(|_| corrupt("unknown key algorithm"))?,
            private: SealedBlob {
                material: r.material,
                sealed: r.sealed,
            },
            created_at: Timestamp::from_millis(r.created_at),
            activate_at: Timestamp::from_millis(r.activate_at),
        })
    }
}

fn sessions(rows: Vec<SessionRow>) -> Result<Vec<SessionRecord>, StoreError> {
    rows.into_iter().map(SessionRecord::try_from).collect()
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> Result<(), StoreError> {
        self.readers
            .read(|c| c.prepare_cached(PING)?.query_row([], |_| Ok(())))
            .await
    }

    /// The writer's connection and the readers'.
    fn pool_status(&self) -> Option<tessera_core::PoolStatus> {
        let (open, idle, most) = self.readers.status();
        let n = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
        Some(tessera_core::PoolStatus {
            open: 1 + n(open),
            idle: n(idle),
            max: 1 + n(most),
        })
    }

    async fn insert_user(&self, user: &User) -> Result<(), StoreError> {
        let (id, name, key) = (user.id, user.username.clone(), user.username_key());
        let (hash, at) = (user.password_hash.clone(), ms(user.created_at));
        let disabled = user.disabled_at.map(ms);
        self.writer
            .write(move |c| {
                c.prepare_cached(INSERT_USER)?.execute(params![
                    id.as_bytes(),
                    name,
                    key,
                    hash,
                    at,
                    disabled
                ])
            })
            .await?;
        Ok(())
    }

    async fn user_by_name(&self, username_key: &str) -> Result<Option<User>, StoreError> {
        let key = username_key.to_owned();
        self.readers.one(USER_BY_NAME, [key], UserRow::read).await
    }

    async fn users(&self) -> Result<Vec<User>, StoreError> {
        self.readers.all(USERS, [], UserRow::read).await
    }

    async fn user_by_id(&self, id: Uuid) -> Result<Option<User>, StoreError> {
        self.readers
            .one(USER_BY_ID, [id.into_bytes()], UserRow::read)
            .await
    }

    async fn users_page(
        &self,
        after: Option<Uuid>,
        limit: u32,
        live: LiveBounds,
    ) -> Result<Vec<UserSummary>, StoreError> {
        let (used_after, created_after) = (ms(live.used_after), ms(live.created_after));
        self.readers
            .read(move |c| {
                c.prepare_cached(USERS_PAGE)?
                    .query_map(
                        params![
                            after.map(|a| a.into_bytes()),
                            used_after,
                            created_after,
                            limit
                        ],
                        |r| Ok((UserRow::read(r)?, r.get::<_, i64>(5)?)),
                    )?
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .await?
            .into_iter()
            .map(|(row, n)| {
                Ok(UserSummary {
                    user: User::try_from(row)?,
                    live_sessions: u64::try_from(n).map_err(|_| corrupt("negative count"))?,
                })
            })
            .collect()
    }

    async fn set_disabled(
        &self,
        user_id: Uuid,
        disabled_at: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<Option<u64>, StoreError> {
        self.writer
            .write(move |c| {
                let found = c
                    .prepare_cached(SET_DISABLED)?
                    .execute(params![user_id.as_bytes(), disabled_at.map(ms)])?;
                if found == 0 {
                    return Ok(None);
                }
                if disabled_at.is_none() {
                    return Ok(Some(0));
                }
                emit(c, &[NewEvent::user_disabled(user_id, now)])?;
                let reason = RevokeReason::Admin;
                let revoked = revoke_and_emit(
                    c,
                    REVOKE_USER_SESSIONS,
                    params![ms(now), reason.as_str(), user_id.as_bytes()],
                    reason,
                    now,
                )?;
                Ok(Some(revoked))
            })
            .await
    }

    async fn delete_user(&self, user_id: Uuid, now: Timestamp) -> Result<bool, StoreError> {
        self.writer
            .write(move |c| {
                c.prepare_cached(KEEP_DELETED_REVOCATIONS)?
                    .execute(params![user_id.as_bytes(), ms(now)])?;
                // The events of the sessions that end with the user, while they are there.
                revoke_and_emit(
                    c,
                    LIVE_SESSIONS_OF,
                    [user_id.as_bytes()],
                    RevokeReason::Admin,
                    now,
                )?;
                // Sessions and the reset token go with the user (ON DELETE CASCADE).
                let deleted = c
                    .prepare_cached(DELETE_USER)?
                    .execute([user_id.as_bytes()])?;
                if deleted == 1 {
                    emit(c, &[NewEvent::user_deleted(user_id, now)])?;
                }
                Ok(deleted == 1)
            })
            .await
    }

    async fn change_password(
        &self,
        user_id: Uuid,
        keep: Uuid,
        password_hash: &str,
        now: Timestamp,
        reason: RevokeReason,
    ) -> Result<Option<u64>, StoreError> {
        let hash = password_hash.to_owned();
        self.writer
            .write(move |c| {
                let live = c
                    .prepare_cached(LIVE_SESSION_OF)?
                    .query_row([keep.as_bytes(), user_id.as_bytes()], |_| Ok(()))
                    .optional()?;
                if live.is_none() {
                    return Ok(None);
                }
                c.prepare_cached(SET_PASSWORD)?
                    .execute(params![hash, user_id.as_bytes()])?;
                emit(c, &[NewEvent::password_changed(user_id, "change", now)])?;
                let revoked = revoke_and_emit(
                    c,
                    REVOKE_OTHER_SESSIONS,
                    params![
                        ms(now),
                        reason.as_str(),
                        user_id.as_bytes(),
                        keep.as_bytes()
                    ],
                    reason,
                    now,
                )?;
                Ok(Some(revoked))
            })
            .await
    }

    async fn replace_reset_token(
        &self,
        user_id: Uuid,
        token_hash: &[u8],
        expires_at: Timestamp,
        event: Option<&NewEvent>,
    ) -> Result<bool, StoreError> {
        let (hash, event) = (token_hash.to_vec(), event.cloned());
        self.writer
            .write(move |c| {
                let written = c.prepare_cached(REPLACE_RESET_TOKEN)?.execute(params![
                    user_id.as_bytes(),
                    hash,
                    ms(expires_at)
                ])? == 1;
                if written && let Some(event) = event {
                    emit(c, &[event])?;
                }
                Ok(written)
            })
            .await
    }

    async fn use_reset_token(
        &self,
        token_hash: &[u8],
        now: Timestamp,
        password_hash: &str,
    ) -> Result<Option<(Uuid, u64)>, StoreError> {
        let (token_hash, password_hash) = (token_hash.to_vec(), password_hash.to_owned());
        let found = self
            .writer
            .write(move |c| {
                // Stepped to its end (not `query_row`), so the statement is reset before the
                // next one runs.
                let Some(user_id) = c
                    .prepare_cached(USE_RESET_TOKEN)?
                    .query_map(params![token_hash, ms(now)], |r| r.get::<_, Vec<u8>>(0))?
                    .collect::<rusqlite::Result<Vec<_>>>()?
                    .pop()
                else {
                    return Ok(None);
                };
                c.prepare_cached(SET_PASSWORD)?
                    .execute(params![password_hash, user_id])?;
                let user = Uuid::from_slice(&user_id).map_err(|e| {
                    rusqlite::Error::FromSqlConversionFailure(
                        0,
                        rusqlite::types::Type::Blob,
                        e.into(),
                    )
                })?;
                emit(c, &[NewEvent::password_changed(user, "reset", now)])?;
                let reason = RevokeReason::PasswordChanged;
                let revoked = revoke_and_emit(
                    c,
                    REVOKE_USER_SESSIONS,
                    params![ms(now), reason.as_str(), user_id],
                    reason,
                    now,
                )?;
                Ok(Some((user, revoked)))
            })
            .await?;
        Ok(found)
    }

    async fn open_session(
        &self,
        s: &SessionRecord,
        password_hash: &str,
    ) -> Result<bool, StoreError> {
        let s = s.clone();
        let g = generation(s.generation)?;
        let hash = password_hash.to_owned();
        let event = NewEvent::session_created(&s);
        self.writer
            .write(move |c| {
                let inserted = c.prepare_cached(OPEN_SESSION)?.execute(params![
                    s.id.as_bytes(),
                    s.user_id.as_bytes(),
                    g,
                    s.token_hash,
                    ms(s.created_at),
                    ms(s.rotated_at),
                    ms(s.last_used_at),
                    s.revoked_at.map(ms),
                    s.revoked_reason.map(RevokeReason::as_str),
                    s.user_agent,
                    s.ip.map(|ip| ip.to_string()),
                    s.client_id,
                    hash,
                    s.dpop_jkt,
                ])? == 1;
                if inserted {
                    emit(c, &[event])?;
                }
                Ok(inserted)
            })
            .await
    }

    async fn insert_session(&self, s: &SessionRecord) -> Result<(), StoreError> {
        let s = s.clone();
        let g = generation(s.generation)?;
        self.writer
            .write(move |c| {
                c.prepare_cached(INSERT_SESSION)?.execute(params![
                    s.id.as_bytes(),
                    s.user_id.as_bytes(),
                    g,
                    s.token_hash,
                    ms(s.created_at),
                    ms(s.rotated_at),
                    ms(s.last_used_at),
                    s.revoked_at.map(ms),
                    s.revoked_reason.map(RevokeReason::as_str),
                    s.user_agent,
                    s.ip.map(|ip| ip.to_string()),
                    s.client_id,
                    s.dpop_jkt,
                ])
            })
            .await?;
        Ok(())
    }

    async fn session(&self, id: Uuid) -> Result<Option<SessionRecord>, StoreError> {
        self.readers
            .one(SESSION, [id.into_bytes()], SessionRow::read)
            .await
    }

    async fn rotate_session(
        &self,
        id: Uuid,
        from_generation: u64,
        new_hash: &[u8],
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let from = generation(from_generation)?;
        let new_hash = new_hash.to_vec();
        let changed = self
            .writer
            .write(move |c| {
                c.prepare_cached(ROTATE_SESSION)?.execute(params![
                    new_hash,
                    ms(now),
                    ms(now),
                    id.as_bytes(),
                    from
                ])
            })
            .await?;
        Ok(changed == 1)
    }

    async fn rotate_current(
        &self,
        r: &CurrentRotation<'_>,
    ) -> Result<Option<SessionRecord>, StoreError> {
        let from = generation(r.generation)?;
        let (id, current, new_hash) = (r.id, r.current_hash.to_vec(), r.new_hash.to_vec());
        let (now, used_after, created_after) =
            (ms(r.now), ms(r.live.used_after), ms(r.live.created_after));
        let client_id = r.client_id.map(str::to_owned);
        let dpop_jkt = r.dpop_jkt.map(str::to_owned);
        self.writer
            .write(move |c| {
                // Stepped to its end (not `query_row`), so the statement is done and reset
                // before the batch commits.
                c.prepare_cached(ROTATE_CURRENT)?
                    .query_map(
                        params![
                            new_hash,
                            now,
                            now,
                            id.as_bytes(),
                            from,
                            current,
                            used_after,
                            created_after,
                            client_id,
                            dpop_jkt
                        ],
                        SessionRow::read,
                    )?
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .await?
            .pop()
            .map(SessionRecord::try_from)
            .transpose()
    }

    async fn revoke_session(
        &self,
        id: Uuid,
        now: Timestamp,
        reason: RevokeReason,
    ) -> Result<bool, StoreError> {
        let changed = self
            .writer
            .write(move |c| {
                revoke_and_emit(
                    c,
                    REVOKE_SESSION,
                    params![ms(now), reason.as_str(), id.as_bytes()],
                    reason,
                    now,
                )
            })
            .await?;
        Ok(changed == 1)
    }

    async fn revoke_user_sessions(
        &self,
        user_id: Uuid,
        now: Timestamp,
        reason: RevokeReason,
    ) -> Result<u64, StoreError> {
        self.writer
            .write(move |c| {
                revoke_and_emit(
                    c,
                    REVOKE_USER_SESSIONS,
                    params![ms(now), reason.as_str(), user_id.as_bytes()],
                    reason,
                    now,
                )
            })
            .await
    }

    async fn unrevoked_sessions(
        &self,
        user_id: Option<Uuid>,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        sessions(
            self.readers
                .read(move |c| {
                    c.prepare_cached(UNREVOKED_SESSIONS)?
                        .query_map([user_id.map(|u| u.into_bytes())], SessionRow::read)?
                        .collect()
                })
                .await?,
        )
    }

    async fn revoked_sessions_page(
        &self,
        since: Timestamp,
        after: Option<(Timestamp, Uuid)>,
        limit: u32,
    ) -> Result<Vec<(Uuid, Timestamp)>, StoreError> {
        let (at, id) = revocation_page_start(since, after);
        let rows = self
            .readers
            .read(move |c| {
                c.prepare_cached(REVOKED_SESSIONS_PAGE)?
                    .query_map(params![ms(at), id.as_bytes().as_slice(), limit], |r| {
                        Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)?))
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .await?;
        rows.into_iter()
            .map(|(id, at)| Ok((uuid(&id)?, Timestamp::from_millis(at))))
            .collect()
    }

    async fn delete_sessions(
        &self,
        revoked_before: Timestamp,
        used_before: Timestamp,
        created_before: Timestamp,
    ) -> Result<u64, StoreError> {
        let deleted = self
            .writer
            .write(move |c| {
                let sessions = c.prepare_cached(DELETE_SESSIONS)?.execute(params![
                    ms(revoked_before),
                    ms(used_before),
                    ms(created_before)
                ])?;
                let kept = c
                    .prepare_cached(DELETE_DELETED_REVOCATIONS)?
                    .execute([ms(revoked_before)])?;
                c.prepare_cached(DELETE_EXPIRED_RESETS)?
                    .execute([ms(revoked_before)])?;
                Ok(sessions + kept)
            })
            .await?;
        Ok(deleted as u64)
    }

    async fn count_failure(&self, count: &CountFailure<'_>) -> Result<Counted, StoreError> {
        let (scope, key) = (count.counter.scope.as_str(), count.counter.key.clone());
        let (now, closed_before) = (ms(count.now), ms(count.closed_before));
        let (free, doublings) = (count.free, count.doublings);
        let (first, max) = (count.first_hold_ms, count.max_hold_ms);
        let (counted, state) = self
            .writer
            .write(move |c| {
                // Stepped to its end (not `query_row`), so the statement is reset before the
                // next one runs.
                let counted = !c
                    .prepare_cached(COUNT_FAILURE)?
                    .query_map(
                        params![scope, key, now, closed_before, free, doublings, max, first],
                        |_| Ok(()),
                    )?
                    .collect::<rusqlite::Result<Vec<()>>>()?
                    .is_empty();
                if counted {
                    return Ok((true, None));
                }
                // In the same write, so nothing changed in between.
                let state = c
                    .prepare_cached(FAILURES)?
                    .query_row(params![scope, key], |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            r.get::<_, i64>(1)?,
                            r.get::<_, i64>(2)?,
                        ))
                    })
                    .optional()?;
                Ok((false, state))
            })
            .await?;
        if counted {
            return Ok(Counted::Yes);
        }
        Ok(Counted::Held(state.map(failure_state).transpose()?))
    }

    async fn clear_failures(
        &self,
        forget: &[Counter],
        take_back: Option<&Counter>,
        counted_at: Timestamp,
    ) -> Result<(), StoreError> {
        let forget: Vec<(&'static str, String)> = forget
            .iter()
            .map(|c| (c.scope.as_str(), c.key.clone()))
            .collect();
        let take_back = take_back.map(|c| (c.scope.as_str(), c.key.clone()));
        self.writer
            .write(move |c| {
                for (scope, key) in &forget {
                    c.prepare_cached(FORGET_FAILURES)?
                        .execute(params![scope, key])?;
                }
                if let Some((scope, key)) = &take_back {
                    c.prepare_cached(TAKE_BACK_FAILURE)?.execute(params![
                        scope,
                        key,
                        ms(counted_at)
                    ])?;
                }
                Ok(())
            })
            .await
    }

    async fn delete_quiet_failures(&self, quiet_before: Timestamp) -> Result<u64, StoreError> {
        let deleted = self
            .writer
            .write(move |c| {
                c.prepare_cached(DELETE_QUIET_FAILURES)?
                    .execute([ms(quiet_before)])
            })
            .await?;
        Ok(deleted as u64)
    }

    async fn failure_counters(&self) -> Result<(u64, u64), StoreError> {
        let (names, addresses) = self
            .readers
            .read(|c| {
                c.prepare_cached(FAILURE_COUNTERS)?
                    .query_row([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))
            })
            .await?;
        let n = |v: i64| u64::try_from(v).map_err(|_| corrupt("negative count"));
        Ok((n(names)?, n(addresses)?))
    }

    async fn insert_client(&self, client: &ClientRecord) -> Result<(), StoreError> {
        let c = client.clone();
        self.writer
            .write(move |conn| {
                conn.prepare_cached(INSERT_CLIENT)?.execute(params![
                    c.id,
                    c.name,
                    c.kind.as_str(),
                    c.secret_hash,
                    ms(c.created_at),
                    c.removed_at.map(ms)
                ])
            })
            .await?;
        Ok(())
    }

    async fn client(&self, id: &str) -> Result<Option<ClientRecord>, StoreError> {
        let id = id.to_owned();
        self.readers.one(CLIENT, [id], ClientRow::read).await
    }

    async fn clients(&self) -> Result<Vec<ClientRecord>, StoreError> {
        self.readers.all(CLIENTS, [], ClientRow::read).await
    }

    async fn remove_client(&self, id: &str, now: Timestamp) -> Result<Option<u64>, StoreError> {
        let id = id.to_owned();
        let reason = RevokeReason::ClientRemoved;
        // Both statements in one write: they commit together or not at all.
        self.writer
            .write(move |c| {
                if c.prepare_cached(REMOVE_CLIENT)?
                    .execute(params![ms(now), id])?
                    == 0
                {
                    return Ok(None);
                }
                let ended = revoke_and_emit(
                    c,
                    REVOKE_CLIENT_SESSIONS,
                    params![ms(now), reason.as_str(), id],
                    reason,
                    now,
                )?;
                Ok(Some(ended))
            })
            .await
    }

    async fn insert_dpop_jti(
        &self,
        id: u128,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let written = self
            .writer
            .write(move |c| {
                c.prepare_cached(INSERT_DPOP_JTI)?.execute(params![
                    id.to_be_bytes(),
                    ms(expires_at),
                    ms(now)
                ])
            })
            .await?;
        Ok(written == 1)
    }

    async fn delete_expired_dpop_jtis(&self, now: Timestamp) -> Result<u64, StoreError> {
        let deleted = self
            .writer
            .write(move |c| {
                c.prepare_cached(DELETE_EXPIRED_DPOP_JTIS)?
                    .execute([ms(now)])
            })
            .await?;
        Ok(deleted as u64)
    }

    async fn keys(&self) -> Result<Vec<StoredKey>, StoreError> {
        self.readers
            .read(|c| {
                c.prepare_cached(KEYS)?
                    .query_map([], |r| {
                        Ok(KeyRow {
                            kid: r.get(0)?,
                            alg: r.get(1)?,
                            material: r.get(2)?,
                            sealed: r.get(3)?,
                            created_at: r.get(4)?,
                            activate_at: r.get(5)?,
                        })
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .await?
            .into_iter()
            .map(StoredKey::try_from)
            .collect()
    }

    async fn insert_key(&self, key: &StoredKey) -> Result<(), StoreError> {
        let key = key.clone();
        self.writer
            .write(move |c| {
                c.prepare_cached(INSERT_KEY)?.execute(params![
                    key.kid,
                    key.alg.as_str(),
                    key.private.material,
                    key.private.sealed,
                    ms(key.created_at),
                    ms(key.activate_at)
                ])
            })
            .await?;
        Ok(())
    }

    async fn secret(&self, name: &str) -> Result<Option<SealedBlob>, StoreError> {
        let name = name.to_owned();
        self.readers
            .read(move |c| {
                c.prepare_cached(SECRET)?
                    .query_row([name], |r| {
                        Ok(SealedBlob {
                            material: r.get(0)?,
                            sealed: r.get(1)?,
                        })
                    })
                    .optional()
            })
            .await
    }

    async fn insert_secret_if_absent(
        &self,
        name: &str,
        secret: &SealedBlob,
    ) -> Result<(), StoreError> {
        let (name, material, sealed) = (name.to_owned(), secret.material.clone(), secret.sealed);
        self.writer
            .write(move |c| {
                c.prepare_cached(INSERT_SECRET_IF_ABSENT)?
                    .execute(params![name, material, sealed])
            })
            .await?;
        Ok(())
    }

    async fn record_event(&self, event: &NewEvent) -> Result<(), StoreError> {
        let event = event.clone();
        self.writer.write(move |c| emit(c, &[event])).await
    }

    async fn claim_events(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let rows = self
            .writer
            .write(move |c| {
                c.prepare_cached(CLAIM_EVENTS)?
                    .query_map(params![ms(now), ms(lease_until), limit], read_event)?
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .await?;
        stored_events(rows)
    }

    async fn finish_event(
        &self,
        id: Uuid,
        lease_until: Timestamp,
        now: Timestamp,
        outcome: &Delivery,
    ) -> Result<bool, StoreError> {
        let to = outcome.columns(now);
        let (state, next, finished) = (to.state.as_str(), to.next_attempt_at, to.finished_at);
        let error = to.last_error.map(str::to_owned);
        let changed = self
            .writer
            .write(move |c| {
                c.prepare_cached(FINISH_EVENT)?.execute(params![
                    id.as_bytes(),
                    ms(lease_until),
                    state,
                    next.map(ms),
                    finished.map(ms),
                    error
                ])
            })
            .await?;
        Ok(changed == 1)
    }

    async fn events(
        &self,
        state: Option<EventState>,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let state = state.map(EventState::as_str);
        let rows = self
            .readers
            .read(move |c| {
                c.prepare_cached(EVENTS)?
                    .query_map(params![state, limit], read_event)?
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .await?;
        stored_events(rows)
    }

    async fn retry_event(&self, id: Uuid, now: Timestamp) -> Result<bool, StoreError> {
        let changed = self
            .writer
            .write(move |c| {
                c.prepare_cached(RETRY_EVENT)?
                    .execute(params![id.as_bytes(), ms(now)])
            })
            .await?;
        Ok(changed == 1)
    }

    async fn event_backlog(&self) -> Result<EventBacklog, StoreError> {
        let (pending, oldest, failed) = self
            .readers
            .read(|c| {
                c.prepare_cached(EVENT_BACKLOG)?.query_row([], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, Option<i64>>(1)?,
                        r.get::<_, i64>(2)?,
                    ))
                })
            })
            .await?;
        Ok(EventBacklog {
            pending: u64::try_from(pending).unwrap_or(0),
            oldest_pending: oldest.map(Timestamp::from_millis),
            failed: u64::try_from(failed).unwrap_or(0),
        })
    }

    async fn delete_events(
        &self,
        delivered_before: Timestamp,
        unsent_before: Timestamp,
    ) -> Result<u64, StoreError> {
        let deleted = self
            .writer
            .write(move |c| {
                c.prepare_cached(DELETE_EVENTS)?
                    .execute(params![ms(delivered_before), ms(unsent_before)])
            })
            .await?;
        Ok(deleted as u64)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn urls_name_a_file() {
        assert_eq!(path_of("sqlite://t.db").unwrap(), PathBuf::from("t.db"));
        assert_eq!(
            path_of("sqlite:///tmp/t.db").unwrap(),
            PathBuf::from("/tmp/t.db")
        );
        assert_eq!(path_of("sqlite:t.db").unwrap(), PathBuf::from("t.db"));
        assert_eq!(
            path_of("sqlite://t.db?mode=rwc").unwrap(),
            PathBuf::from("t.db")
        );
        for bad in [
            "sqlite::memory:",
            "sqlite://t.db?mode=ro",
            "postgres://x",
            "sqlite://",
        ] {
            assert!(path_of(bad).is_err(), "{bad}");
        }
    }
}
