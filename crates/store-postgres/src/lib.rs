//! [`PostgresStore`]: Tessera's [`Store`] on PostgreSQL, through sqlx.
//!
//! The backend for several `tessera` instances sharing one database: every rule that must hold
//! across instances (one winner per rotation, the first writer of a secret wins, unique
//! usernames) is enforced by PostgreSQL itself, in single statements, not by locks in this
//! process. It is not a general database layer: it knows Tessera's four tables and nothing else,
//! and no `sqlx::Error` leaves it (every failure becomes a [`StoreError`]).
//!
//! Start at [`PostgresStore::connect`]; the schema and its reasons are in `migrations/`. With the
//! `test-support` feature, the `testing` module hands out a throwaway database per test.
//!
//! ```no_run
//! # async fn demo() -> Result<(), tessera_core::StoreError> {
//! use std::sync::Arc;
//! use tessera_store_postgres::PostgresStore;
//!
//! let store = PostgresStore::connect("postgres://tessera@db.internal/tessera").await?;
//! let store: Arc<dyn tessera_core::Store> = Arc::new(store);
//! store.ping().await?;
//! # Ok(()) }
//! ```

use std::net::IpAddr;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::migrate::MigrateError;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{FromRow, Postgres, Row};
use tessera_core::events::{Delivery, EventRow, EventState, NewEvent, StoredEvent};
use tessera_core::{
    ClientKind, ClientRecord, CountFailure, Counted, Counter, CurrentRotation, EventBacklog,
    FailureState, LiveBounds, RevokeReason, SealedBlob, SessionRecord, SigningAlg, Store,
    StoreError, StoredKey, Timestamp, User, UserSummary, revocation_page_start,
};
use uuid::Uuid;

#[cfg(feature = "test-support")]
pub mod testing;

/// Connections per instance. Each request holds one for a single statement, so a few per core
/// serve thousands of requests a second; several instances multiply it, and PostgreSQL's default
/// `max_connections` is 100.
const MAX_CONNECTIONS: u32 = 16;

/// How long a caller waits for a connection (including opening one) before the store reports
/// [`StoreError::Unavailable`]: an unreachable or hung server fails requests fast instead of
/// piling them up, while a server restarting quickly is ridden out.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

/// PostgreSQL's `statement_timeout` on Tessera's connections. Every request-path statement
/// touches a row or a few and takes a millisecond or so; one still running after this is stuck
/// (behind a lock, on a jammed server), and the server cancels it (SQLSTATE 57014), so a request
/// fails with [`StoreError::Unavailable`] instead of hanging, and no abandoned statement lingers
/// in the server to take effect later.
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(3);

/// How long this process waits for a statement's answer once it has a connection. A little more
/// than [`STATEMENT_TIMEOUT`], so normally the server cancels first and the connection stays
/// usable; this limit is for a server or a network that stops answering altogether (a hung
/// host, dropped packets), which nothing on the server side can end. The connection is then
/// closed, never reused.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(4);

/// For statements that may legitimately run long on a big database (the cleanup `DELETE`, the
/// operator's full listings): five minutes, set for their own transaction only.
const LONG_STATEMENT_TIMEOUT: &str = "SET LOCAL statement_timeout = '300s'";
const LONG_ANSWER_TIMEOUT: Duration = Duration::from_secs(301);

/// Runs one statement (`$run`, an expression using the connection `$conn`) on a connection from
/// `$store`'s pool within `$limit` ([`ANSWER_TIMEOUT`] when omitted); its error is classified.
/// A macro rather than a function because the statement borrows both the caller's data and the
/// connection, for as long as it runs.
/// `bounded!(long self, |c| …)` runs it in a transaction with the long limits.
macro_rules! bounded {
    ($store:expr, |$conn:ident| $run:expr) => {
        bounded!($store, ANSWER_TIMEOUT, |$conn| $run)
    };
    (long $store:expr, |$conn:ident| $run:expr) => {
        bounded!($store, LONG_ANSWER_TIMEOUT, |conn| async move {
            use sqlx::Connection as _;
            let mut tx = conn.begin().await?;
            sqlx::query(LONG_STATEMENT_TIMEOUT)
                .execute(&mut *tx)
                .await?;
            let $conn: &mut sqlx::PgConnection = &mut tx;
            let result = $run.await?;
            tx.commit().await?;
            Ok::<_, sqlx::Error>(result)
        })
    };
    ($store:expr, $limit:expr, |$conn:ident| $run:expr) => {{
        let mut pooled = $store.pool.acquire().await.map_err(classify)?;
        let $conn: &mut sqlx::PgConnection = &mut pooled;
        let answer = tokio::time::timeout($limit, $run).await;
        settle(pooled, answer)
    }};
}

/// The outcome of a [`bounded!`] statement. A connection whose answer never came is closed
/// rather than returned to the pool: it may still be waiting for that answer.
fn settle<T>(
    mut pooled: PoolConnection<Postgres>,
    answer: Result<Result<T, sqlx::Error>, tokio::time::error::Elapsed>,
) -> Result<T, StoreError> {
    match answer {
        Ok(result) => result.map_err(classify),
        Err(elapsed) => {
            pooled.close_on_drop();
            Err(StoreError::Unavailable(Box::new(elapsed)))
        }
    }
}

/// A PostgreSQL database holding users, sessions and keys. Cheap to clone (the pool is shared).
#[derive(Clone, Debug)]
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user:password@host:port/database`, the
    /// usual `PG*` environment variables fill in what it leaves out) and applies pending
    /// migrations.
    ///
    /// An unreachable server yields [`StoreError::Unavailable`] within about five seconds; a
    /// malformed URL, a missing database or refused credentials yield [`StoreError::Other`].
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let store = Self::connect_without_migrating(url).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Connects without applying migrations. The pool holds up to 16 connections and waits at
    /// most 3 s for one (retrying a refused connection meanwhile, as from a server that is
    /// starting up); it opens one connection now, so a bad URL or a down server is reported here
    /// rather than on first use.
    ///
    /// Every statement is bounded in time: PostgreSQL cancels it after 3 s (`statement_timeout`,
    /// unless the URL's `options` set one), and the store stops waiting for an answer after 4 s
    /// (the few operator and cleanup statements that may run long get 5 minutes). So while the
    /// database is down, hung or jammed, every call fails with [`StoreError::Unavailable`]
    /// within seconds, and succeeds again once it is back, with no restart.
    pub async fn connect_without_migrating(url: &str) -> Result<Self, StoreError> {
        let mut options = PgConnectOptions::from_str(url).map_err(classify)?;
        if options.get_application_name().is_none() {
            // Names Tessera's connections in `pg_stat_activity` (unless the URL names them).
            options = options.application_name("tessera");
        }
        if !options
            .get_options()
            .is_some_and(|o| o.contains("statement_timeout"))
        {
            options = options.options([(
                "statement_timeout",
                format!("{}ms", STATEMENT_TIMEOUT.as_millis()),
            )]);
        }
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            // No ping before each hand-out: it was a second round trip on every request (refresh
            // 2 100 -> 2 900 req/s, `me` 3 300 -> 4 000 without it; BENCHMARKS.md). A connection
            // the server dropped (a restart, a failover) then fails its next statement, which is
            // `Unavailable` (a 503 the client retries); recovery without a restart is tested
            // (tests/api/faults.rs, a database stopped under load).
            .test_before_acquire(false)
            .connect_with(options.clone())
            .await;
        match pool {
            Ok(pool) => Ok(Self { pool }),
            Err(e) => Err(connect_error(&options, e).await),
        }
    }

    /// Wraps a pool configured by the caller (tests, or a host app that shares its pool). The
    /// pool's database must be migrated (see [`PostgresStore::migrate`]).
    pub fn from_pool(pool: PgPool) -> Self {
        Self { pool }
    }

    /// Applies pending migrations (idempotent). Safe when several instances start at once:
    /// sqlx serialises migrators with a PostgreSQL advisory lock. Migrations run without a
    /// statement time limit (building an index on a big table takes what it takes).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await.map_err(classify)?;
        // The setting lives as long as the connection, which is therefore closed afterwards
        // rather than returned to the pool.
        conn.close_on_drop();
        sqlx::query("SET statement_timeout = 0")
            .execute(&mut *conn)
            .await
            .map_err(classify)?;
        sqlx::migrate!("./migrations")
            .run(&mut *conn)
            .await
            .map_err(|e| match e {
                MigrateError::Execute(e) | MigrateError::ExecuteMigration(e, _) => {
                    match classify(e) {
                        StoreError::Unavailable(e) => StoreError::Unavailable(e),
                        // A failed migration is never a conflict the caller could act on.
                        StoreError::Conflict => StoreError::Other("migration conflict".into()),
                        other => other,
                    }
                }
                e => other(e),
            })
    }

    /// Closes every connection, waiting for those in use to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn other(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Other(Box::new(e))
}

/// Sorts sqlx errors into the store's three outcomes.
fn classify(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict,
        // The server is unreachable or going away: class 08 (connection exception), 57P01
        // (admin shutdown), 57P02 (crash shutdown), 57P03 (cannot connect now: starting up,
        // shutting down, in recovery), 53300 (too many connections); or jammed: 57014 (query
        // canceled, by `statement_timeout`), 55P03 (lock not available).
        sqlx::Error::Database(db)
            if db.code().is_some_and(|code| {
                code.starts_with("08")
                    || matches!(
                        &*code,
                        "57P01" | "57P02" | "57P03" | "53300" | "57014" | "55P03"
                    )
            }) =>
        {
            StoreError::Unavailable(Box::new(e))
        }
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => StoreError::Unavailable(Box::new(e)),
        _ => StoreError::Other(Box::new(e)),
    }
}

/// A failed first connection, saying where to and why. The pool retries a refused connection
/// until its timeout and then says only "pool timed out"; one direct attempt gives the reason
/// (connection refused, no such host, the server's authentication error).
async fn connect_error(options: &PgConnectOptions, e: sqlx::Error) -> StoreError {
    use sqlx::Connection;
    let at = format!("{}:{}", options.get_host(), options.get_port());
    let e = match e {
        sqlx::Error::PoolTimedOut => {
            match tokio::time::timeout(ACQUIRE_TIMEOUT, sqlx::PgConnection::connect_with(options))
                .await
            {
                Ok(Err(direct)) => direct,
                Ok(Ok(_)) | Err(_) => sqlx::Error::PoolTimedOut,
            }
        }
        e => e,
    };
    // sqlx's Display already ends with the I/O error's own text: no cause chain.
    let text = format!("PostgreSQL at {at}: {e}");
    match classify(e) {
        StoreError::Unavailable(_) => StoreError::Unavailable(text.into()),
        _ => StoreError::Other(text.into()),
    }
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Other(format!("corrupt row: {what}").into())
}

fn ms(t: Timestamp) -> i64 {
    t.as_millis()
}

fn generation(g: u64) -> Result<i64, StoreError> {
    i64::try_from(g).map_err(|_| corrupt("generation overflow"))
}

#[derive(FromRow)]
struct UserRow {
    id: Uuid,
    username: String,
    password_hash: String,
    created_at: i64,
    disabled_at: Option<i64>,
}

impl From<UserRow> for User {
    fn from(r: UserRow) -> Self {
        User {
            id: r.id,
            username: r.username,
            password_hash: r.password_hash,
            created_at: Timestamp::from_millis(r.created_at),
            disabled_at: r.disabled_at.map(Timestamp::from_millis),
        }
    }
}

#[derive(FromRow)]
struct UserSummaryRow {
    #[sqlx(flatten)]
    user: UserRow,
    live_sessions: i64,
}

const USER_COLUMNS: &str = "id, username, password_hash, created_at, disabled_at";

/// Revokes every unrevoked session of a user (`$1`) at `$2` with reason `$3`, returning the
/// `(id, user_id)` of each for its events.
const REVOKE_USER_SESSIONS: &str = "UPDATE sessions SET revoked_at = $2, revoked_reason = $3 \
     WHERE user_id = $1 AND revoked_at IS NULL RETURNING id, user_id";

/// Writes events into the outbox, in one statement whatever their number, on the caller's
/// connection (so in its transaction).
async fn emit(c: &mut sqlx::PgConnection, events: &[NewEvent]) -> Result<(), sqlx::Error> {
    if events.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO events (id, type, created_at, data, next_attempt_at, retry_since) \
         SELECT id, type, at, data, at, at \
         FROM unnest($1::uuid[], $2::text[], $3::bigint[], $4::text[]) AS e(id, type, at, data)",
    )
    .bind(events.iter().map(|e| e.id).collect::<Vec<_>>())
    .bind(events.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>())
    .bind(events.iter().map(|e| ms(e.created_at)).collect::<Vec<_>>())
    .bind(events.iter().map(|e| e.data.as_str()).collect::<Vec<_>>())
    .execute(c)
    .await?;
    Ok(())
}

/// Writes the events of the sessions a revoking statement ended (its `(id, user_id)` rows, with
/// the `reason` it wrote) and returns how many it ended.
async fn emit_revoked(
    c: &mut sqlx::PgConnection,
    ended: &[(Uuid, Uuid)],
    reason: RevokeReason,
    now: Timestamp,
) -> Result<u64, sqlx::Error> {
    emit(c, &NewEvent::sessions_revoked(ended, reason, now)).await?;
    Ok(ended.len() as u64)
}

/// The outbox's columns, in [`EventRow`]'s order.
const EVENT_COLUMNS: &str = "id, type, created_at, data, state, attempts, next_attempt_at, \
     lease_until, retry_since, finished_at, last_error";

fn stored_events(rows: Vec<sqlx::postgres::PgRow>) -> Result<Vec<StoredEvent>, StoreError> {
    rows.iter()
        .map(|r| {
            let row = EventRow {
                id: r.try_get(0)?,
                kind: r.try_get(1)?,
                created_at: r.try_get(2)?,
                data: r.try_get(3)?,
                state: r.try_get(4)?,
                attempts: i64::from(r.try_get::<i32, _>(5)?),
                next_attempt_at: r.try_get(6)?,
                lease_until: r.try_get(7)?,
                retry_since: r.try_get(8)?,
                finished_at: r.try_get(9)?,
                last_error: r.try_get(10)?,
            };
            Ok::<_, sqlx::Error>(row)
        })
        .map(|row| {
            row.map_err(classify)?
                .into_event()
                .ok_or_else(|| corrupt("unknown event type or state"))
        })
        .collect()
}

/// Takes the user's row lock for the rest of the transaction: account changes of one user run
/// one at a time, and a login's `FOR SHARE` insert waits for them.
const LOCK_USER: &str = "SELECT 1 FROM users WHERE id = $1 FOR UPDATE";

#[derive(FromRow)]
struct SessionRow {
    id: Uuid,
    user_id: Uuid,
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

#[derive(FromRow)]
struct ClientRow {
    id: String,
    name: String,
    kind: String,
    secret_hash: Option<Vec<u8>>,
    created_at: i64,
    removed_at: Option<i64>,
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

const CLIENT_COLUMNS: &str = "id, name, kind, secret_hash, created_at, removed_at FROM clients";

impl TryFrom<SessionRow> for SessionRecord {
    type Error = StoreError;
    fn try_from(r: SessionRow) -> Result<Self, StoreError> {
        Ok(SessionRecord {
            id: r.id,
            user_id: r.user_id,
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

// `host(ip)`: the address alone as text (`text(ip)` would append `/32`).
const SESSION_COLUMNS: &str = "s.id, s.user_id, u.username, s.generation, s.token_hash, s.created_at, \
     s.rotated_at, s.last_used_at, s.revoked_at, s.revoked_reason, s.user_agent, host(s.ip) AS ip, \
     s.client_id, s.dpop_jkt FROM sessions s JOIN users u ON u.id = s.user_id";

#[async_trait]
impl Store for PostgresStore {
    async fn ping(&self) -> Result<(), StoreError> {
        bounded!(self, |c| sqlx::query("SELECT 1").execute(c))?;
        Ok(())
    }

    fn pool_status(&self) -> Option<tessera_core::PoolStatus> {
        Some(tessera_core::PoolStatus {
            open: self.pool.size(),
            idle: u32::try_from(self.pool.num_idle()).unwrap_or(u32::MAX),
            max: MAX_CONNECTIONS,
        })
    }

    async fn insert_user(&self, user: &User) -> Result<(), StoreError> {
        bounded!(self, |c| sqlx::query(
            "INSERT INTO users (id, username, username_key, password_hash, created_at, \
             disabled_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(user.id)
        .bind(&user.username)
        .bind(user.username_key())
        .bind(&user.password_hash)
        .bind(ms(user.created_at))
        .bind(user.disabled_at.map(ms))
        .execute(c))?;
        Ok(())
    }

    async fn user_by_name(&self, username_key: &str) -> Result<Option<User>, StoreError> {
        Ok(
            bounded!(self, |c| sqlx::query_as::<_, UserRow>(sqlx::AssertSqlSafe(
                format!("SELECT {USER_COLUMNS} FROM users WHERE username_key = $1")
            ))
            .bind(username_key)
            .fetch_optional(c))?
            .map(User::from),
        )
    }

    async fn users(&self) -> Result<Vec<User>, StoreError> {
        // Every user: an operator's listing, which may take a while on a big database.
        Ok(bounded!(long self, |c| sqlx::query_as::<_, UserRow>(
            sqlx::AssertSqlSafe(format!(
                "SELECT {USER_COLUMNS} FROM users ORDER BY username_key"
            ))
        )
        .fetch_all(c))?
        .into_iter()
        .map(User::from)
        .collect())
    }

    async fn user_by_id(&self, id: Uuid) -> Result<Option<User>, StoreError> {
        Ok(
            bounded!(self, |c| sqlx::query_as::<_, UserRow>(sqlx::AssertSqlSafe(
                format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1")
            ))
            .bind(id)
            .fetch_optional(c))?
            .map(User::from),
        )
    }

    async fn users_page(
        &self,
        after: Option<Uuid>,
        limit: u32,
        live: LiveBounds,
    ) -> Result<Vec<UserSummary>, StoreError> {
        let rows = bounded!(self, |c| sqlx::query_as::<_, UserSummaryRow>(
            "SELECT u.id, u.username, u.password_hash, u.created_at, u.disabled_at, \
             (SELECT count(*) FROM sessions s WHERE s.user_id = u.id AND s.revoked_at IS NULL \
              AND s.last_used_at > $2 AND s.created_at > $3) AS live_sessions \
             FROM users u WHERE ($1::uuid IS NULL OR u.id > $1) ORDER BY u.id LIMIT $4",
        )
        .bind(after)
        .bind(ms(live.used_after))
        .bind(ms(live.created_after))
        .bind(i64::from(limit))
        .fetch_all(c))?;
        rows.into_iter()
            .map(|r| {
                Ok(UserSummary {
                    user: r.user.into(),
                    live_sessions: u64::try_from(r.live_sessions)
                        .map_err(|_| corrupt("negative count"))?,
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
        bounded!(self, |c| async move {
            use sqlx::Connection as _;
            let mut tx = c.begin().await?;
            // The user's row first: a login's `FOR SHARE` insert now waits for this
            // transaction, and the revocation below (a new statement, a new snapshot) sees
            // every session inserted before.
            let found = sqlx::query(
                "UPDATE users SET disabled_at = \
                 CASE WHEN $2::bigint IS NULL THEN NULL ELSE coalesce(disabled_at, $2) END \
                 WHERE id = $1",
            )
            .bind(user_id)
            .bind(disabled_at.map(ms))
            .execute(&mut *tx)
            .await?
            .rows_affected();
            let revoked = if found == 0 {
                None
            } else if disabled_at.is_none() {
                Some(0)
            } else {
                emit(&mut tx, &[NewEvent::user_disabled(user_id, now)]).await?;
                let reason = RevokeReason::Admin;
                let ended: Vec<(Uuid, Uuid)> = sqlx::query_as(REVOKE_USER_SESSIONS)
                    .bind(user_id)
                    .bind(ms(now))
                    .bind(reason.as_str())
                    .fetch_all(&mut *tx)
                    .await?;
                Some(emit_revoked(&mut tx, &ended, reason, now).await?)
            };
            tx.commit().await?;
            Ok::<_, sqlx::Error>(revoked)
        })
    }

    async fn delete_user(&self, user_id: Uuid, now: Timestamp) -> Result<bool, StoreError> {
        bounded!(self, |c| async move {
            use sqlx::Connection as _;
            let mut tx = c.begin().await?;
            if sqlx::query(LOCK_USER)
                .bind(user_id)
                .fetch_optional(&mut *tx)
                .await?
                .is_none()
            {
                return Ok(false);
            }
            sqlx::query(
                "INSERT INTO deleted_user_revocations (session_id, revoked_at) \
                 SELECT id, coalesce(revoked_at, $2) FROM sessions WHERE user_id = $1 \
                 ON CONFLICT (session_id) DO NOTHING",
            )
            .bind(user_id)
            .bind(ms(now))
            .execute(&mut *tx)
            .await?;
            // The events of the sessions that end with the user, while they are there.
            let ended: Vec<(Uuid, Uuid)> = sqlx::query_as(
                "SELECT id, user_id FROM sessions WHERE user_id = $1 AND revoked_at IS NULL",
            )
            .bind(user_id)
            .fetch_all(&mut *tx)
            .await?;
            emit_revoked(&mut tx, &ended, RevokeReason::Admin, now).await?;
            // Sessions and the reset token go with the user (ON DELETE CASCADE).
            let deleted = sqlx::query("DELETE FROM users WHERE id = $1")
                .bind(user_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            emit(&mut tx, &[NewEvent::user_deleted(user_id, now)]).await?;
            tx.commit().await?;
            Ok::<_, sqlx::Error>(deleted == 1)
        })
    }

    async fn change_password(
        &self,
        user_id: Uuid,
        keep: Uuid,
        password_hash: &str,
        now: Timestamp,
        reason: RevokeReason,
    ) -> Result<Option<u64>, StoreError> {
        bounded!(self, |c| async move {
            use sqlx::Connection as _;
            let mut tx = c.begin().await?;
            // Changes of one user queue here; each later statement sees what the one before
            // committed (READ COMMITTED takes a snapshot per statement).
            sqlx::query(LOCK_USER)
                .bind(user_id)
                .fetch_optional(&mut *tx)
                .await?;
            let live = sqlx::query(
                "SELECT 1 FROM sessions WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL",
            )
            .bind(keep)
            .bind(user_id)
            .fetch_optional(&mut *tx)
            .await?;
            if live.is_none() {
                return Ok(None);
            }
            sqlx::query("UPDATE users SET password_hash = $2 WHERE id = $1")
                .bind(user_id)
                .bind(password_hash)
                .execute(&mut *tx)
                .await?;
            emit(
                &mut tx,
                &[NewEvent::password_changed(user_id, "change", now)],
            )
            .await?;
            let ended: Vec<(Uuid, Uuid)> = sqlx::query_as(
                "UPDATE sessions SET revoked_at = $3, revoked_reason = $4 \
                 WHERE user_id = $1 AND id <> $2 AND revoked_at IS NULL RETURNING id, user_id",
            )
            .bind(user_id)
            .bind(keep)
            .bind(ms(now))
            .bind(reason.as_str())
            .fetch_all(&mut *tx)
            .await?;
            let revoked = emit_revoked(&mut tx, &ended, reason, now).await?;
            tx.commit().await?;
            Ok::<_, sqlx::Error>(Some(revoked))
        })
    }

    async fn replace_reset_token(
        &self,
        user_id: Uuid,
        token_hash: &[u8],
        expires_at: Timestamp,
        event: Option<&NewEvent>,
    ) -> Result<bool, StoreError> {
        // With an event, one statement: the event is written only with the token, and only
        // for a user that exists (and then once: `RETURNING` gives one row).
        let done = bounded!(self, |c| {
            sqlx::query(
            "WITH reset AS (INSERT INTO password_resets (user_id, token_hash, expires_at) \
             SELECT id, $2, $3 FROM users WHERE id = $1 \
             ON CONFLICT (user_id) DO UPDATE SET token_hash = excluded.token_hash, \
             expires_at = excluded.expires_at RETURNING user_id), \
             event AS (INSERT INTO events (id, type, created_at, data, next_attempt_at, retry_since) \
             SELECT $4, $5, $6, $7, $6, $6 FROM reset WHERE $4::uuid IS NOT NULL) \
             SELECT count(*) FROM reset",
        )
        .bind(user_id)
        .bind(token_hash)
        .bind(ms(expires_at))
        .bind(event.map(|e| e.id))
        .bind(event.map(|e| e.kind.as_str()))
        .bind(event.map(|e| ms(e.created_at)))
        .bind(event.map(|e| e.data.as_str()))
        .fetch_one(c)
        })?;
        let written: i64 = done.try_get(0).map_err(classify)?;
        Ok(written == 1)
    }

    async fn use_reset_token(
        &self,
        token_hash: &[u8],
        now: Timestamp,
        password_hash: &str,
    ) -> Result<Option<(Uuid, u64)>, StoreError> {
        bounded!(self, |c| async move {
            use sqlx::Connection as _;
            let mut tx = c.begin().await?;
            // Two uses of one token: the second waits for the first's row lock, then finds the
            // row gone.
            let user_id: Option<(Uuid,)> = sqlx::query_as(
                "DELETE FROM password_resets WHERE token_hash = $1 AND expires_at > $2 \
                 RETURNING user_id",
            )
            .bind(token_hash)
            .bind(ms(now))
            .fetch_optional(&mut *tx)
            .await?;
            let Some((user_id,)) = user_id else {
                return Ok(None);
            };
            sqlx::query("UPDATE users SET password_hash = $2 WHERE id = $1")
                .bind(user_id)
                .bind(password_hash)
                .execute(&mut *tx)
                .await?;
            emit(
                &mut tx,
                &[NewEvent::password_changed(user_id, "reset", now)],
            )
            .await?;
            let reason = RevokeReason::PasswordChanged;
            let ended: Vec<(Uuid, Uuid)> = sqlx::query_as(REVOKE_USER_SESSIONS)
                .bind(user_id)
                .bind(ms(now))
                .bind(reason.as_str())
                .fetch_all(&mut *tx)
                .await?;
            let revoked = emit_revoked(&mut tx, &ended, reason, now).await?;
            tx.commit().await?;
            Ok::<_, sqlx::Error>(Some((user_id, revoked)))
        })
    }

    async fn open_session(
        &self,
        s: &SessionRecord,
        password_hash: &str,
    ) -> Result<bool, StoreError> {
        // `FOR SHARE` waits for a transaction that holds the user's row (a disable, delete,
        // password change or reset) and then re-checks the conditions on the row as committed.
        // The `session.created` event is written by the same statement, only with the session.
        let event = NewEvent::session_created(s);
        let done = bounded!(self, |c| {
            sqlx::query(
                "WITH s AS (INSERT INTO sessions (id, user_id, generation, token_hash, created_at, \
             rotated_at, last_used_at, revoked_at, revoked_reason, user_agent, ip, client_id, \
             dpop_jkt) \
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::inet, $12, $18 FROM users \
             WHERE id = $2 AND disabled_at IS NULL AND password_hash = $13 FOR SHARE \
             RETURNING id) \
             INSERT INTO events (id, type, created_at, data, next_attempt_at, retry_since) \
             SELECT $14, $15, $16, $17, $16, $16 FROM s",
            )
            .bind(s.id)
            .bind(s.user_id)
            .bind(generation(s.generation)?)
            .bind(&s.token_hash)
            .bind(ms(s.created_at))
            .bind(ms(s.rotated_at))
            .bind(ms(s.last_used_at))
            .bind(s.revoked_at.map(ms))
            .bind(s.revoked_reason.map(RevokeReason::as_str))
            .bind(&s.user_agent)
            .bind(s.ip.map(|ip| ip.to_string()))
            .bind(&s.client_id)
            .bind(password_hash)
            .bind(event.id)
            .bind(event.kind.as_str())
            .bind(ms(event.created_at))
            .bind(&event.data)
            .bind(&s.dpop_jkt)
            .execute(c)
        })?;
        Ok(done.rows_affected() == 1)
    }

    async fn insert_session(&self, s: &SessionRecord) -> Result<(), StoreError> {
        bounded!(self, |c| sqlx::query(
            "INSERT INTO sessions (id, user_id, generation, token_hash, created_at, rotated_at, \
             last_used_at, revoked_at, revoked_reason, user_agent, ip, client_id, dpop_jkt) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::inet, $12, $13)",
        )
        .bind(s.id)
        .bind(s.user_id)
        .bind(generation(s.generation)?)
        .bind(&s.token_hash)
        .bind(ms(s.created_at))
        .bind(ms(s.rotated_at))
        .bind(ms(s.last_used_at))
        .bind(s.revoked_at.map(ms))
        .bind(s.revoked_reason.map(RevokeReason::as_str))
        .bind(&s.user_agent)
        .bind(s.ip.map(|ip| ip.to_string()))
        .bind(&s.client_id)
        .bind(&s.dpop_jkt)
        .execute(c))?;
        Ok(())
    }

    async fn session(&self, id: Uuid) -> Result<Option<SessionRecord>, StoreError> {
        bounded!(self, |c| sqlx::query_as::<_, SessionRow>(
            sqlx::AssertSqlSafe(format!("SELECT {SESSION_COLUMNS} WHERE s.id = $1"))
        )
        .bind(id)
        .fetch_optional(c))?
        .map(SessionRecord::try_from)
        .transpose()
    }

    async fn rotate_session(
        &self,
        id: Uuid,
        from_generation: u64,
        new_hash: &[u8],
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        // One statement, so one atomic compare-and-swap: concurrent callers queue on the row
        // lock, and each re-checks `generation` against the version the previous one committed.
        let done = bounded!(self, |c| {
            sqlx::query(
            "UPDATE sessions SET generation = generation + 1, token_hash = $3, rotated_at = $4, \
             last_used_at = $4 WHERE id = $1 AND generation = $2 AND revoked_at IS NULL",
        )
        .bind(id)
        .bind(generation(from_generation)?)
        .bind(new_hash)
        .bind(ms(now))
        .execute(c)
        })?;
        Ok(done.rows_affected() == 1)
    }

    async fn rotate_current(
        &self,
        r: &CurrentRotation<'_>,
    ) -> Result<Option<SessionRecord>, StoreError> {
        // `rotate_session`'s compare-and-swap with the rest of the `Rotate` conditions, and the
        // row as updated: one round trip for a refresh instead of a read and a write.
        bounded!(self, |c| sqlx::query_as::<_, SessionRow>(
            "UPDATE sessions SET generation = generation + 1, token_hash = $4, rotated_at = $5, \
             last_used_at = $5 \
             WHERE id = $1 AND generation = $2 AND token_hash = $3 AND revoked_at IS NULL \
             AND last_used_at > $6 AND created_at > $7 \
             AND ($8::text IS NULL OR client_id = $8) \
             AND (dpop_jkt IS NULL OR dpop_jkt = $9) \
             RETURNING id, user_id, \
             (SELECT username FROM users WHERE users.id = sessions.user_id) AS username, \
             generation, token_hash, created_at, rotated_at, last_used_at, revoked_at, \
             revoked_reason, user_agent, host(ip) AS ip, client_id, dpop_jkt",
        )
        .bind(r.id)
        .bind(generation(r.generation)?)
        .bind(r.current_hash)
        .bind(r.new_hash)
        .bind(ms(r.now))
        .bind(ms(r.live.used_after))
        .bind(ms(r.live.created_after))
        .bind(r.client_id)
        .bind(r.dpop_jkt)
        .fetch_optional(c))?
        .map(SessionRecord::try_from)
        .transpose()
    }

    async fn revoke_session(
        &self,
        id: Uuid,
        now: Timestamp,
        reason: RevokeReason,
    ) -> Result<bool, StoreError> {
        let revoked = bounded!(self, |c| async move {
            use sqlx::Connection as _;
            let mut tx = c.begin().await?;
            let ended: Vec<(Uuid, Uuid)> = sqlx::query_as(
                "UPDATE sessions SET revoked_at = $2, revoked_reason = $3 \
                 WHERE id = $1 AND revoked_at IS NULL RETURNING id, user_id",
            )
            .bind(id)
            .bind(ms(now))
            .bind(reason.as_str())
            .fetch_all(&mut *tx)
            .await?;
            let revoked = emit_revoked(&mut tx, &ended, reason, now).await?;
            tx.commit().await?;
            Ok::<_, sqlx::Error>(revoked)
        })?;
        Ok(revoked == 1)
    }

    async fn revoke_user_sessions(
        &self,
        user_id: Uuid,
        now: Timestamp,
        reason: RevokeReason,
    ) -> Result<u64, StoreError> {
        bounded!(self, |c| async move {
            use sqlx::Connection as _;
            let mut tx = c.begin().await?;
            let ended: Vec<(Uuid, Uuid)> = sqlx::query_as(REVOKE_USER_SESSIONS)
                .bind(user_id)
                .bind(ms(now))
                .bind(reason.as_str())
                .fetch_all(&mut *tx)
                .await?;
            let revoked = emit_revoked(&mut tx, &ended, reason, now).await?;
            tx.commit().await?;
            Ok::<_, sqlx::Error>(revoked)
        })
    }

    async fn unrevoked_sessions(
        &self,
        user_id: Option<Uuid>,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        // Two statements rather than `($1 IS NULL OR s.user_id = $1)`, which would keep a
        // prepared statement's generic plan off the `sessions_by_user` index.
        let rows = match user_id {
            Some(user_id) => bounded!(self, |c| sqlx::query_as::<_, SessionRow>(
                sqlx::AssertSqlSafe(format!(
                    "SELECT {SESSION_COLUMNS} WHERE s.revoked_at IS NULL AND s.user_id = $1 \
                     ORDER BY s.last_used_at DESC, s.id"
                ))
            )
            .bind(user_id)
            .fetch_all(c))?,
            // Everybody's: an operator's listing, which may take a while on a big database.
            None => bounded!(long self, |c| sqlx::query_as::<_, SessionRow>(
                sqlx::AssertSqlSafe(format!(
                    "SELECT {SESSION_COLUMNS} WHERE s.revoked_at IS NULL \
                     ORDER BY s.last_used_at DESC, s.id"
                ))
            )
            .fetch_all(c))?,
        };
        rows.into_iter().map(SessionRecord::try_from).collect()
    }

    async fn delete_sessions(
        &self,
        revoked_before: Timestamp,
        used_before: Timestamp,
        created_before: Timestamp,
    ) -> Result<u64, StoreError> {
        // The cleanup job's scan of the whole table (see the migrations): long limits.
        bounded!(long self, |c| async move {
            let sessions = sqlx::query(
                "DELETE FROM sessions WHERE revoked_at < $1 OR last_used_at < $2 OR created_at < $3",
            )
            .bind(ms(revoked_before))
            .bind(ms(used_before))
            .bind(ms(created_before))
            .execute(&mut *c)
            .await?
            .rows_affected();
            let kept = sqlx::query("DELETE FROM deleted_user_revocations WHERE revoked_at < $1")
                .bind(ms(revoked_before))
                .execute(&mut *c)
                .await?
                .rows_affected();
            sqlx::query("DELETE FROM password_resets WHERE expires_at < $1")
                .bind(ms(revoked_before))
                .execute(&mut *c)
                .await?;
            Ok::<_, sqlx::Error>(sessions + kept)
        })
    }

    async fn revoked_sessions_page(
        &self,
        since: Timestamp,
        after: Option<(Timestamp, Uuid)>,
        limit: u32,
    ) -> Result<Vec<(Uuid, Timestamp)>, StoreError> {
        let (at, id) = revocation_page_start(since, after);
        // One range of the `(revoked_at, id)` index; `IS NOT NULL` names its partial condition.
        let rows: Vec<(Uuid, i64)> = bounded!(self, |c| {
            sqlx::query_as(
                "(SELECT id, revoked_at FROM sessions \
                 WHERE revoked_at IS NOT NULL AND (revoked_at, id) > ($1, $2) \
                 ORDER BY revoked_at, id LIMIT $3) \
                 UNION ALL (SELECT session_id, revoked_at FROM deleted_user_revocations \
                 WHERE (revoked_at, session_id) > ($1, $2) ORDER BY revoked_at, session_id LIMIT $3) \
                 ORDER BY 2, 1 LIMIT $3",
            )
            .bind(ms(at))
            .bind(id)
            .bind(i64::from(limit))
            .fetch_all(c)
        })?;
        Ok(rows
            .into_iter()
            .map(|(id, at)| (id, Timestamp::from_millis(at)))
            .collect())
    }

    async fn count_failure(&self, count: &CountFailure<'_>) -> Result<Counted, StoreError> {
        let (scope, key) = (count.counter.scope.as_str(), &count.counter.key);
        let free = i32::try_from(count.free).unwrap_or(i32::MAX);
        let doublings = i32::try_from(count.doublings).unwrap_or(i32::MAX);
        // `CountFailure`'s statement (its SQL form is written beside the rule, in the core
        // crate). One statement: concurrent attempts queue on the row's lock, and each sees
        // the count the previous one committed.
        let counted: Option<(i32,)> = bounded!(self, |c| sqlx::query_as(
            "INSERT INTO login_failures (scope, key, opened_at, last_at, failures) \
             VALUES ($1, $2, $3, $3, 1) \
             ON CONFLICT (scope, key) DO UPDATE SET \
             opened_at = CASE WHEN login_failures.opened_at <= $4 THEN $3 \
                         ELSE login_failures.opened_at END, \
             failures = CASE WHEN login_failures.opened_at <= $4 THEN 1 \
                        ELSE login_failures.failures + 1 END, \
             last_at = $3 \
             WHERE NOT (login_failures.failures > $5 AND login_failures.last_at > $3 - \
               CASE WHEN login_failures.failures <= $5 THEN 0 \
                    WHEN login_failures.failures - $5 - 1 >= $6 THEN $7 \
                    ELSE $8 << (login_failures.failures - $5 - 1) END) \
             RETURNING failures",
        )
        .bind(scope)
        .bind(key)
        .bind(ms(count.now))
        .bind(ms(count.closed_before))
        .bind(free)
        .bind(doublings)
        .bind(count.max_hold_ms)
        .bind(count.first_hold_ms)
        .fetch_optional(c))?;
        if counted.is_some() {
            return Ok(Counted::Yes);
        }
        // Held: read for how long. Another attempt may have cleared it since (then `None`).
        let row: Option<(i64, i64, i32)> = bounded!(self, |c| {
            sqlx::query_as(
            "SELECT opened_at, last_at, failures FROM login_failures WHERE scope = $1 AND key = $2",
        )
        .bind(scope)
        .bind(key)
        .fetch_optional(c)
        })?;
        Ok(Counted::Held(
            row.map(|(opened_at, last_at, failures)| {
                Ok::<_, StoreError>(FailureState {
                    opened_at: Timestamp::from_millis(opened_at),
                    last_at: Timestamp::from_millis(last_at),
                    failures: u32::try_from(failures).map_err(|_| corrupt("failure count"))?,
                })
            })
            .transpose()?,
        ))
    }

    async fn clear_failures(
        &self,
        forget: &[Counter],
        take_back: Option<&Counter>,
        counted_at: Timestamp,
    ) -> Result<(), StoreError> {
        let scopes: Vec<&str> = forget.iter().map(|c| c.scope.as_str()).collect();
        let keys: Vec<&str> = forget.iter().map(|c| c.key.as_str()).collect();
        // One statement: the counters forgotten (a name, a device) are never the one taken
        // back from (an address), so no row is written twice.
        bounded!(self, |c| sqlx::query(
            "WITH forgotten AS (DELETE FROM login_failures \
                 WHERE (scope, key) IN (SELECT * FROM unnest($1::text[], $2::text[]))) \
             UPDATE login_failures SET failures = failures - 1 \
             WHERE scope = $3 AND key = $4 AND opened_at <= $5 AND failures > 0",
        )
        .bind(&scopes)
        .bind(&keys)
        .bind(take_back.map(|t| t.scope.as_str()))
        .bind(take_back.map(|t| t.key.as_str()))
        .bind(ms(counted_at))
        .execute(c))?;
        Ok(())
    }

    async fn delete_quiet_failures(&self, quiet_before: Timestamp) -> Result<u64, StoreError> {
        let done = bounded!(long self, |c| sqlx::query(
            "DELETE FROM login_failures WHERE last_at < $1"
        )
        .bind(ms(quiet_before))
        .execute(&mut *c))?;
        Ok(done.rows_affected())
    }

    async fn failure_counters(&self) -> Result<(u64, u64), StoreError> {
        let (names, addresses): (i64, i64) = bounded!(self, |c| sqlx::query_as(
            "SELECT count(*) FILTER (WHERE scope = 'name'), \
             count(*) FILTER (WHERE scope = 'address') FROM login_failures",
        )
        .fetch_one(c))?;
        let n = |v: i64| u64::try_from(v).map_err(|_| corrupt("negative count"));
        Ok((n(names)?, n(addresses)?))
    }

    async fn insert_client(&self, client: &ClientRecord) -> Result<(), StoreError> {
        bounded!(self, |c| sqlx::query(
            "INSERT INTO clients (id, name, kind, secret_hash, created_at, removed_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&client.id)
        .bind(&client.name)
        .bind(client.kind.as_str())
        .bind(&client.secret_hash)
        .bind(ms(client.created_at))
        .bind(client.removed_at.map(ms))
        .execute(c))?;
        Ok(())
    }

    async fn client(&self, id: &str) -> Result<Option<ClientRecord>, StoreError> {
        bounded!(self, |c| sqlx::query_as::<_, ClientRow>(
            sqlx::AssertSqlSafe(format!("SELECT {CLIENT_COLUMNS} WHERE id = $1"))
        )
        .bind(id)
        .fetch_optional(c))?
        .map(ClientRecord::try_from)
        .transpose()
    }

    async fn clients(&self) -> Result<Vec<ClientRecord>, StoreError> {
        bounded!(self, |c| sqlx::query_as::<_, ClientRow>(
            sqlx::AssertSqlSafe(format!(
                "SELECT {CLIENT_COLUMNS} WHERE removed_at IS NULL ORDER BY created_at, id"
            ))
        )
        .fetch_all(c))?
        .into_iter()
        .map(ClientRecord::try_from)
        .collect()
    }

    async fn remove_client(&self, id: &str, now: Timestamp) -> Result<Option<u64>, StoreError> {
        // One transaction: the mark, the revocations and their events commit together or not
        // at all.
        bounded!(self, |c| async move {
            use sqlx::Connection as _;
            let mut tx = c.begin().await?;
            let removed = sqlx::query(
                "UPDATE clients SET removed_at = $2 WHERE id = $1 AND removed_at IS NULL",
            )
            .bind(id)
            .bind(ms(now))
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if removed == 0 {
                return Ok(None);
            }
            let reason = RevokeReason::ClientRemoved;
            let ended: Vec<(Uuid, Uuid)> = sqlx::query_as(
                "UPDATE sessions SET revoked_at = $2, revoked_reason = $3 \
                 WHERE client_id = $1 AND revoked_at IS NULL RETURNING id, user_id",
            )
            .bind(id)
            .bind(ms(now))
            .bind(reason.as_str())
            .fetch_all(&mut *tx)
            .await?;
            let ended = emit_revoked(&mut tx, &ended, reason, now).await?;
            tx.commit().await?;
            Ok::<_, sqlx::Error>(Some(ended))
        })
    }

    async fn insert_dpop_jti(
        &self,
        id: u128,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        // An expired record not yet purged is taken over; an unexpired one is a replay. The
        // primary key serialises two instances inserting one id: the second sees the first's.
        let done = bounded!(self, |c| sqlx::query(
            "INSERT INTO dpop_jtis (id, expires_at) VALUES ($1, $2) \
             ON CONFLICT (id) DO UPDATE SET expires_at = excluded.expires_at \
             WHERE dpop_jtis.expires_at <= $3",
        )
        .bind(&id.to_be_bytes()[..])
        .bind(ms(expires_at))
        .bind(ms(now))
        .execute(c))?;
        Ok(done.rows_affected() == 1)
    }

    async fn delete_expired_dpop_jtis(&self, now: Timestamp) -> Result<u64, StoreError> {
        let done = bounded!(self, |c| sqlx::query(
            "DELETE FROM dpop_jtis WHERE expires_at <= $1"
        )
        .bind(ms(now))
        .execute(c))?;
        Ok(done.rows_affected())
    }

    async fn keys(&self) -> Result<Vec<StoredKey>, StoreError> {
        let rows = bounded!(self, |c| sqlx::query(
            "SELECT kid, alg, private_key, sealed, created_at, activate_at FROM signing_keys",
        )
        .fetch_all(c))?;
        rows.into_iter()
            .map(|r| {
                let alg: String = r.try_get("alg").map_err(classify)?;
                Ok(StoredKey {
                    kid: r.try_get("kid").map_err(classify)?,
                    alg: SigningAlg::from_str(&alg)
                        .map_err(|_| corrupt("unknown key algorithm"))?,
                    private: SealedBlob {
                        material: r.try_get("private_key").map_err(classify)?,
                        sealed: r.try_get("sealed").map_err(classify)?,
                    },
                    created_at: Timestamp::from_millis(r.try_get("created_at").map_err(classify)?),
                    activate_at: Timestamp::from_millis(
                        r.try_get("activate_at").map_err(classify)?,
                    ),
                })
            })
            .collect()
    }

    async fn insert_key(&self, key: &StoredKey) -> Result<(), StoreError> {
        bounded!(self, |c| sqlx::query(
            "INSERT INTO signing_keys (kid, alg, private_key, sealed, created_at, activate_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&key.kid)
        .bind(key.alg.as_str())
        .bind(&key.private.material)
        .bind(key.private.sealed)
        .bind(ms(key.created_at))
        .bind(ms(key.activate_at))
        .execute(c))?;
        Ok(())
    }

    async fn secret(&self, name: &str) -> Result<Option<SealedBlob>, StoreError> {
        let row = bounded!(self, |c| sqlx::query(
            "SELECT material, sealed FROM secrets WHERE name = $1"
        )
        .bind(name)
        .fetch_optional(c))?;
        row.map(|r| {
            Ok(SealedBlob {
                material: r.try_get("material").map_err(classify)?,
                sealed: r.try_get("sealed").map_err(classify)?,
            })
        })
        .transpose()
    }

    async fn insert_secret_if_absent(
        &self,
        name: &str,
        secret: &SealedBlob,
    ) -> Result<(), StoreError> {
        bounded!(self, |c| sqlx::query(
            "INSERT INTO secrets (name, material, sealed) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(&secret.material)
        .bind(secret.sealed)
        .execute(c))?;
        Ok(())
    }

    async fn record_event(&self, event: &NewEvent) -> Result<(), StoreError> {
        bounded!(self, |c| emit(c, std::slice::from_ref(event)))
    }

    async fn claim_events(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        // `SKIP LOCKED`: instances claiming at once take different rows instead of queueing;
        // the locked rows are re-checked as committed, so a row another instance has just
        // claimed (its lease now in the future) is not taken again.
        let rows = bounded!(self, |c| sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE events SET lease_until = $2, attempts = attempts + 1 \
             WHERE id IN (SELECT id FROM events WHERE state = 'pending' \
               AND next_attempt_at <= $1 AND (lease_until IS NULL OR lease_until <= $1) \
               ORDER BY next_attempt_at LIMIT $3 FOR UPDATE SKIP LOCKED) \
             RETURNING {EVENT_COLUMNS}"
        )))
        .bind(ms(now))
        .bind(ms(lease_until))
        .bind(i64::from(limit))
        .fetch_all(c))?;
        // `RETURNING` keeps no order.
        let mut claimed = stored_events(rows)?;
        claimed.sort_by_key(|e| (e.next_attempt_at, e.event.created_at, e.event.id));
        Ok(claimed)
    }

    async fn finish_event(
        &self,
        id: Uuid,
        lease_until: Timestamp,
        now: Timestamp,
        outcome: &Delivery,
    ) -> Result<bool, StoreError> {
        let to = outcome.columns(now);
        let done = bounded!(self, |c| sqlx::query(
            "UPDATE events SET state = $3, \
             next_attempt_at = coalesce($4, next_attempt_at), finished_at = $5, \
             last_error = coalesce($6, last_error), lease_until = NULL \
             WHERE id = $1 AND lease_until = $2 AND state = 'pending'",
        )
        .bind(id)
        .bind(ms(lease_until))
        .bind(to.state.as_str())
        .bind(to.next_attempt_at.map(ms))
        .bind(to.finished_at.map(ms))
        .bind(to.last_error)
        .execute(c))?;
        Ok(done.rows_affected() == 1)
    }

    async fn events(
        &self,
        state: Option<EventState>,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let rows = bounded!(long self, |c| sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE ($1::text IS NULL OR state = $1) \
             ORDER BY created_at DESC, id DESC LIMIT $2"
        )))
        .bind(state.map(EventState::as_str))
        .bind(i64::from(limit))
        .fetch_all(&mut *c))?;
        stored_events(rows)
    }

    async fn retry_event(&self, id: Uuid, now: Timestamp) -> Result<bool, StoreError> {
        let done = bounded!(self, |c| sqlx::query(
            "UPDATE events SET state = 'pending', next_attempt_at = $2, retry_since = $2, \
             attempts = 0, lease_until = NULL, finished_at = NULL \
             WHERE id = $1 AND state <> 'delivered'",
        )
        .bind(id)
        .bind(ms(now))
        .execute(c))?;
        Ok(done.rows_affected() == 1)
    }

    async fn event_backlog(&self) -> Result<EventBacklog, StoreError> {
        let row = bounded!(self, |c| sqlx::query(
            "SELECT (SELECT count(*) FROM events WHERE state = 'pending'), \
             (SELECT min(created_at) FROM events WHERE state = 'pending'), \
             (SELECT count(*) FROM events WHERE state = 'failed')",
        )
        .fetch_one(c))?;
        let count = |i: usize| -> Result<u64, StoreError> {
            let n: i64 = row.try_get(i).map_err(classify)?;
            Ok(u64::try_from(n).unwrap_or(0))
        };
        let oldest: Option<i64> = row.try_get(1).map_err(classify)?;
        Ok(EventBacklog {
            pending: count(0)?,
            oldest_pending: oldest.map(Timestamp::from_millis),
            failed: count(2)?,
        })
    }

    async fn delete_events(
        &self,
        delivered_before: Timestamp,
        unsent_before: Timestamp,
    ) -> Result<u64, StoreError> {
        // The cleanup job's scan, like `delete_sessions`: long limits.
        bounded!(long self, |c| async move {
            let done = sqlx::query(
                "DELETE FROM events \
                 WHERE (created_at < $1 AND state = 'delivered' AND finished_at < $1) \
                 OR (created_at < $2 AND state = 'pending' AND attempts = 0 AND retry_since < $2)",
            )
            .bind(ms(delivered_before))
            .bind(ms(unsent_before))
            .execute(&mut *c)
            .await?;
            Ok::<_, sqlx::Error>(done.rows_affected())
        })
    }
}
