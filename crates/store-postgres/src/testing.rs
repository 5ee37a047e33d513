//! Throwaway PostgreSQL databases for tests (feature `test-support`).
//!
//! Each test gets a database of its own, created on the server named by
//! `TESSERA_TEST_POSTGRES_URL` (default [`DEFAULT_BASE_URL`]) and dropped afterwards, so tests
//! run in parallel without seeing each other's rows. When that server is unreachable, a test
//! is skipped with a notice on stderr, unless the `CI` environment variable is set: then it
//! fails, so a CI job cannot pass by testing nothing.
//!
//! ```no_run
//! # async fn demo() {
//! use tessera_store_postgres::testing::throwaway_database;
//!
//! let Some(db) = throwaway_database().await else {
//!     return; // no PostgreSQL here (and not in CI): skipped
//! };
//! let store = db.store().await;
//! // … exercise `store`, or point a server at `db.url()` …
//! store.close().await;
//! db.drop_db().await;
//! # }
//! ```

use std::fmt::Display;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{AssertSqlSafe, Connection};
use tessera_core::StoreError;

use crate::{PostgresStore, classify};

/// The environment variable naming the server (and a database on it to connect to while
/// creating and dropping the throwaway ones).
pub const BASE_URL_ENV: &str = "TESSERA_TEST_POSTGRES_URL";

/// The server used when [`BASE_URL_ENV`] is not set: the local one, trust authentication.
pub const DEFAULT_BASE_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// How long to wait for the server before calling it unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A database created for one test. Drop it with [`ThrowawayDb::drop_db`]; if a test panics
/// first, dropping the value drops the database too (blocking the current thread briefly).
#[derive(Debug)]
pub struct ThrowawayDb {
    name: String,
    url: String,
    base_url: String,
    dropped: bool,
}

/// Creates an empty database `tessera_test_<random>` on the test server.
///
/// Returns `None` (after a notice on stderr) when the server is unreachable and `CI` is not
/// set. Panics when it is unreachable and `CI` is set, or on any other failure (bad URL,
/// refused credentials, no right to create databases): those are mistakes, not a missing
/// server.
pub async fn throwaway_database() -> Option<ThrowawayDb> {
    let base_url = std::env::var(BASE_URL_ENV).unwrap_or_else(|_| DEFAULT_BASE_URL.to_owned());
    let name = format!("tessera_test_{}", uuid::Uuid::new_v4().simple());
    let mut conn = match admin_connection(&base_url).await {
        Ok(conn) => conn,
        Err(StoreError::Unavailable(why)) => return unreachable(&base_url, &why),
        Err(e) => panic!("cannot use the test PostgreSQL server ({BASE_URL_ENV}): {e}"),
    };
    // The name is ours (hex digits), so formatting it into SQL is safe.
    let create = format!("CREATE DATABASE {name}");
    let mut attempts = 0;
    loop {
        match sqlx::raw_sql(AssertSqlSafe(create.clone()))
            .execute(&mut conn)
            .await
        {
            Ok(_) => break,
            // 55006: someone is connected to the template database; it passes.
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("55006") => {
                attempts += 1;
                assert!(attempts < 50, "cannot create {name}: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("cannot create the test database {name}: {e}"),
        }
    }
    let _ = conn.close().await;
    Some(ThrowawayDb {
        url: with_database(&base_url, &name),
        name,
        base_url,
        dropped: false,
    })
}

impl ThrowawayDb {
    /// The database's URL, for [`PostgresStore::connect`] or `TESSERA_DATABASE_URL`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A migrated store on this database (panics if it cannot connect).
    pub async fn store(&self) -> PostgresStore {
        PostgresStore::connect(&self.url)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to {}: {e}", self.name))
    }

    /// Drops the database, closing any connection still open to it.
    pub async fn drop_db(mut self) {
        self.dropped = true;
        if let Err(e) = drop_database(&self.base_url, &self.name).await {
            panic!("cannot drop the test database {}: {e}", self.name);
        }
    }
}

impl Drop for ThrowawayDb {
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        // The test ended without `drop_db` (it panicked, most likely). Drop the database on a
        // thread with a runtime of its own: blocking on a future from inside the test's runtime
        // would panic.
        let (base_url, name) = (self.base_url.clone(), self.name.clone());
        let outcome = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime
                .block_on(drop_database(&base_url, &name))
                .map_err(|e| e.to_string())
        })
        .join();
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("note: test database {} left behind: {e}", self.name),
            Err(_) => eprintln!("note: test database {} left behind", self.name),
        }
    }
}

async fn admin_connection(base_url: &str) -> Result<PgConnection, StoreError> {
    let options = PgConnectOptions::from_str(base_url).map_err(classify)?;
    match tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(&options)).await {
        Ok(connected) => connected.map_err(classify),
        Err(elapsed) => Err(StoreError::Unavailable(Box::new(elapsed))),
    }
}

async fn drop_database(base_url: &str, name: &str) -> Result<(), StoreError> {
    let mut conn = admin_connection(base_url).await?;
    sqlx::raw_sql(AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&mut conn)
    .await
    .map_err(classify)?;
    let _ = conn.close().await;
    Ok(())
}

fn unreachable(base_url: &str, why: &dyn Display) -> Option<ThrowawayDb> {
    let server = PgConnectOptions::from_str(base_url)
        .map(|o| format!("{}:{}", o.get_host(), o.get_port()))
        .unwrap_or_else(|_| "?".into());
    if in_ci() {
        panic!("PostgreSQL at {server} is unreachable and CI is set, so this is a failure: {why}");
    }
    eprintln!(
        "note: PostgreSQL test skipped: {server} is unreachable ({why}). \
         Start PostgreSQL or set {BASE_URL_ENV}; with CI set this fails instead."
    );
    None
}

/// `CI` set to anything but empty, `0` or `false` (CI services set `CI=true`).
fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !matches!(v.trim(), "" | "0" | "false" | "FALSE"))
}

/// `url` with its database (the path) replaced by `database`, keeping its query string.
fn with_database(url: &str, database: &str) -> String {
    let authority = url.find("://").map_or(0, |i| i + 3);
    let (head, query) = match url[authority..].find('?') {
        Some(q) => url.split_at(authority + q),
        None => (url, ""),
    };
    let host_end = head[authority..]
        .find('/')
        .map_or(head.len(), |slash| authority + slash);
    format!("{}/{database}{query}", &head[..host_end])
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn the_database_is_swapped_and_the_rest_of_the_url_kept() {
        for (base, want) in [
            (
                "postgres://postgres@127.0.0.1:5432/postgres",
                "postgres://postgres@127.0.0.1:5432/t",
            ),
            ("postgres://u:p@h", "postgres://u:p@h/t"),
            (
                "postgresql://u@h:1/db?sslmode=disable",
                "postgresql://u@h:1/t?sslmode=disable",
            ),
            (
                "postgres://u@h?host=/run/postgresql",
                "postgres://u@h/t?host=/run/postgresql",
            ),
            (
                "postgres:///db?host=/run/postgresql",
                "postgres:///t?host=/run/postgresql",
            ),
        ] {
            assert_eq!(with_database(base, "t"), want, "from {base}");
        }
    }
}
