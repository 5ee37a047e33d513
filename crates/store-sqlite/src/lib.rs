//! [`SqliteStore`]: Tessera's [`Store`] on SQLite, through sqlx, in WAL mode.
//!
//! The embedded default: one file, no server. Several processes may share the file, but for
//! several machines use the PostgreSQL store. Start at [`SqliteStore::connect`]; the schema and
//! its reasons are in `migrations/`.

use std::net::IpAddr;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{FromRow, Row};
use tessera_core::{
    CurrentRotation, RevokeReason, SealedBlob, SessionRecord, SigningAlg, Store, StoreError,
    StoredKey, Timestamp, User,
};
use uuid::Uuid;

/// A SQLite database holding users, sessions and keys.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `url` (`sqlite://path` or `sqlite::memory:`),
    /// in WAL mode, and applies pending migrations.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let store = Self::connect_without_migrating(url).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Opens the database without applying migrations.
    pub async fn connect_without_migrating(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(other)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // NORMAL in WAL mode loses no committed transaction when the process dies (only on
            // power loss may the last ones roll back), at a fraction of FULL's fsync cost.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await
            .map_err(classify)?;
        Ok(Self { pool })
    }

    /// Applies pending migrations (idempotent).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        sqlx::migrate!("./migrations")
            .run(&self.pool)
            .await
            .map_err(other)
    }

    /// Closes every connection (checkpointing the WAL).
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
        // SQLITE_BUSY / SQLITE_LOCKED after the busy timeout: the database is there but jammed.
        sqlx::Error::Database(db) if matches!(db.code().as_deref(), Some("5" | "6")) => {
            StoreError::Unavailable(Box::new(e))
        }
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => StoreError::Unavailable(Box::new(e)),
        _ => StoreError::Other(Box::new(e)),
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

#[derive(FromRow)]
struct UserRow {
    id: Vec<u8>,
    username: String,
    password_hash: String,
    created_at: i64,
}

impl TryFrom<UserRow> for User {
    type Error = StoreError;
    fn try_from(r: UserRow) -> Result<Self, StoreError> {
        Ok(User {
            id: uuid(&r.id)?,
            username: r.username,
            password_hash: r.password_hash,
            created_at: Timestamp::from_millis(r.created_at),
        })
    }
}

#[derive(FromRow)]
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
        })
    }
}

const SESSION_COLUMNS: &str = "s.id, s.user_id, u.username, s.generation, s.token_hash, s.created_at, \
     s.rotated_at, s.last_used_at, s.revoked_at, s.revoked_reason, s.user_agent, s.ip \
     FROM sessions s JOIN users u ON u.id = s.user_id";

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(classify)?;
        Ok(())
    }

    async fn insert_user(&self, user: &User) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO users (id, username, username_key, password_hash, created_at) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(user.id.as_bytes().as_slice())
        .bind(&user.username)
        .bind(user.username_key())
        .bind(&user.password_hash)
        .bind(ms(user.created_at))
        .execute(&self.pool)
        .await
        .map_err(classify)?;
        Ok(())
    }

    async fn user_by_name(&self, username_key: &str) -> Result<Option<User>, StoreError> {
        sqlx::query_as::<_, UserRow>(
            "SELECT id, username, password_hash, created_at FROM users WHERE username_key = ?",
        )
        .bind(username_key)
        .fetch_optional(&self.pool)
        .await
        .map_err(classify)?
        .map(User::try_from)
        .transpose()
    }

    async fn users(&self) -> Result<Vec<User>, StoreError> {
        sqlx::query_as::<_, UserRow>(
            "SELECT id, username, password_hash, created_at FROM users ORDER BY username_key",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(classify)?
        .into_iter()
        .map(User::try_from)
        .collect()
    }

    async fn insert_session(&self, s: &SessionRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sessions (id, user_id, generation, token_hash, created_at, rotated_at, last_used_at, \
             revoked_at, revoked_reason, user_agent, ip) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(s.id.as_bytes().as_slice())
        .bind(s.user_id.as_bytes().as_slice())
        .bind(i64::try_from(s.generation).map_err(|_| corrupt("generation overflow"))?)
        .bind(&s.token_hash)
        .bind(ms(s.created_at))
        .bind(ms(s.rotated_at))
        .bind(ms(s.last_used_at))
        .bind(s.revoked_at.map(ms))
        .bind(s.revoked_reason.map(RevokeReason::as_str))
        .bind(&s.user_agent)
        .bind(s.ip.map(|ip| ip.to_string()))
        .execute(&self.pool)
        .await
        .map_err(classify)?;
        Ok(())
    }

    async fn session(&self, id: Uuid) -> Result<Option<SessionRecord>, StoreError> {
        sqlx::query_as::<_, SessionRow>(sqlx::AssertSqlSafe(format!(
            "SELECT {SESSION_COLUMNS} WHERE s.id = ?"
        )))
        .bind(id.as_bytes().as_slice())
        .fetch_optional(&self.pool)
        .await
        .map_err(classify)?
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
        let from = i64::try_from(from_generation).map_err(|_| corrupt("generation overflow"))?;
        let done = sqlx::query(
            "UPDATE sessions SET generation = generation + 1, token_hash = ?, rotated_at = ?, last_used_at = ? \
             WHERE id = ? AND generation = ? AND revoked_at IS NULL",
        )
        .bind(new_hash)
        .bind(ms(now))
        .bind(ms(now))
        .bind(id.as_bytes().as_slice())
        .bind(from)
        .execute(&self.pool)
        .await
        .map_err(classify)?;
        Ok(done.rows_affected() == 1)
    }

    async fn rotate_current(
        &self,
        r: &CurrentRotation<'_>,
    ) -> Result<Option<SessionRecord>, StoreError> {
        let from = i64::try_from(r.generation).map_err(|_| corrupt("generation overflow"))?;
        sqlx::query_as::<_, SessionRow>(
            "UPDATE sessions SET generation = generation + 1, token_hash = ?, rotated_at = ?, \
             last_used_at = ? \
             WHERE id = ? AND generation = ? AND token_hash = ? AND revoked_at IS NULL \
             AND last_used_at > ? AND created_at > ? \
             RETURNING id, user_id, \
             (SELECT username FROM users WHERE users.id = sessions.user_id) AS username, \
             generation, token_hash, created_at, rotated_at, last_used_at, revoked_at, \
             revoked_reason, user_agent, ip",
        )
        .bind(r.new_hash)
        .bind(ms(r.now))
        .bind(ms(r.now))
        .bind(r.id.as_bytes().as_slice())
        .bind(from)
        .bind(r.current_hash)
        .bind(ms(r.live.used_after))
        .bind(ms(r.live.created_after))
        // `fetch_all`, not `fetch_optional`: SQLite runs its WAL auto-checkpoint only when a
        // statement steps to its end, and `fetch_optional` resets it after the first row. With
        // it, the WAL grew by ~50 MB a second under refresh load (BENCHMARKS.md).
        .fetch_all(&self.pool)
        .await
        .map_err(classify)?
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
        let done = sqlx::query("UPDATE sessions SET revoked_at = ?, revoked_reason = ? WHERE id = ? AND revoked_at IS NULL")
            .bind(ms(now))
            .bind(reason.as_str())
            .bind(id.as_bytes().as_slice())
            .execute(&self.pool)
            .await
            .map_err(classify)?;
        Ok(done.rows_affected() == 1)
    }

    async fn revoke_user_sessions(
        &self,
        user_id: Uuid,
        now: Timestamp,
        reason: RevokeReason,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE sessions SET revoked_at = ?, revoked_reason = ? WHERE user_id = ? AND revoked_at IS NULL",
        )
        .bind(ms(now))
        .bind(reason.as_str())
        .bind(user_id.as_bytes().as_slice())
        .execute(&self.pool)
        .await
        .map_err(classify)?;
        Ok(done.rows_affected())
    }

    async fn unrevoked_sessions(
        &self,
        user_id: Option<Uuid>,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        let sql = format!(
            "SELECT {SESSION_COLUMNS} WHERE s.revoked_at IS NULL AND (?1 IS NULL OR s.user_id = ?1) \
             ORDER BY s.last_used_at DESC"
        );
        sqlx::query_as::<_, SessionRow>(sqlx::AssertSqlSafe(sql))
            .bind(user_id.map(|u| u.as_bytes().to_vec()))
            .fetch_all(&self.pool)
            .await
            .map_err(classify)?
            .into_iter()
            .map(SessionRecord::try_from)
            .collect()
    }

    async fn delete_sessions(
        &self,
        revoked_before: Timestamp,
        used_before: Timestamp,
        created_before: Timestamp,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "DELETE FROM sessions WHERE revoked_at < ? OR last_used_at < ? OR created_at < ?",
        )
        .bind(ms(revoked_before))
        .bind(ms(used_before))
        .bind(ms(created_before))
        .execute(&self.pool)
        .await
        .map_err(classify)?;
        Ok(done.rows_affected())
    }

    async fn sessions_revoked_since(
        &self,
        since: Timestamp,
    ) -> Result<Vec<(Uuid, Timestamp)>, StoreError> {
        let rows: Vec<(Vec<u8>, i64)> = sqlx::query_as(
            "SELECT id, revoked_at FROM sessions WHERE revoked_at >= ? ORDER BY revoked_at, id",
        )
        .bind(ms(since))
        .fetch_all(&self.pool)
        .await
        .map_err(classify)?;
        rows.into_iter()
            .map(|(id, at)| Ok((uuid(&id)?, Timestamp::from_millis(at))))
            .collect()
    }

    async fn keys(&self) -> Result<Vec<StoredKey>, StoreError> {
        let rows = sqlx::query(
            "SELECT kid, alg, private_key, sealed, created_at, activate_at FROM signing_keys",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(classify)?;
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
        sqlx::query(
            "INSERT INTO signing_keys (kid, alg, private_key, sealed, created_at, activate_at) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(&key.kid)
        .bind(key.alg.as_str())
        .bind(&key.private.material)
        .bind(key.private.sealed)
        .bind(ms(key.created_at))
        .bind(ms(key.activate_at))
        .execute(&self.pool)
        .await
        .map_err(classify)?;
        Ok(())
    }

    async fn secret(&self, name: &str) -> Result<Option<SealedBlob>, StoreError> {
        let row = sqlx::query("SELECT material, sealed FROM secrets WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(classify)?;
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
        sqlx::query("INSERT INTO secrets (name, material, sealed) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING")
            .bind(name)
            .bind(&secret.material)
            .bind(secret.sealed)
            .execute(&self.pool)
            .await
            .map_err(classify)?;
        Ok(())
    }
}
