//! Reader connections: reads run on tokio's blocking threads, each on a connection of its own,
//! so a read never queues behind the writer (in WAL mode a reader sees the last commit and
//! takes no lock a writer waits for).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OpenFlags, OptionalExtension, Params, Row};
use tessera_core::StoreError;
use tokio::sync::Semaphore;

use crate::{classify, open};

/// Reads at once. Two cores here; a read holds its thread for microseconds, so more would add
/// page caches (RSS), not throughput.
const READERS: usize = 4;

#[derive(Clone)]
pub(crate) struct Readers {
    path: PathBuf,
    idle: Arc<Mutex<Vec<Connection>>>,
    permits: Arc<Semaphore>,
}

impl Readers {
    /// Connections are opened on first use, up to [`READERS`].
    pub(crate) fn new(path: PathBuf) -> Self {
        Self {
            path,
            idle: Arc::new(Mutex::new(Vec::new())),
            permits: Arc::new(Semaphore::new(READERS)),
        }
    }

    /// Runs `read` on an idle reader connection, on a blocking thread: one hand-off per call,
    /// whatever the number of statements.
    pub(crate) async fn read<T: Send + 'static>(
        &self,
        read: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| closed())?;
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            let conn = match this.take() {
                Some(conn) => conn,
                None => {
                    open(&this.path, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(|e| classify(&e))?
                }
            };
            let result = read(&conn).map_err(|e| classify(&e));
            this.put_back(conn);
            drop(permit);
            result
        })
        .await
        // The read panicked: its connection went with it; the next read opens another.
        .map_err(|e| StoreError::Unavailable(Box::new(e)))?
    }

    /// The row `sql` finds with `params` (at most one), read by `row` into `T`: every look-up
    /// by key has this shape.
    pub(crate) async fn one<P, R, T>(
        &self,
        sql: &'static str,
        params: P,
        row: fn(&Row<'_>) -> rusqlite::Result<R>,
    ) -> Result<Option<T>, StoreError>
    where
        P: Params + Send + 'static,
        R: Send + 'static,
        T: TryFrom<R, Error = StoreError>,
    {
        self.read(move |c| c.prepare_cached(sql)?.query_row(params, row).optional())
            .await?
            .map(T::try_from)
            .transpose()
    }

    /// Every row `sql` finds with `params`, each read by `row` into `T`.
    pub(crate) async fn all<P, R, T>(
        &self,
        sql: &'static str,
        params: P,
        row: fn(&Row<'_>) -> rusqlite::Result<R>,
    ) -> Result<Vec<T>, StoreError>
    where
        P: Params + Send + 'static,
        R: Send + 'static,
        T: TryFrom<R, Error = StoreError>,
    {
        self.read(move |c| {
            c.prepare_cached(sql)?
                .query_map(params, row)?
                .collect::<rusqlite::Result<Vec<_>>>()
        })
        .await?
        .into_iter()
        .map(T::try_from)
        .collect()
    }

    /// (open, idle, most) reader connections. A reader in use holds a permit; one whose read
    /// panicked is gone, so `open` may count one that is closing.
    pub(crate) fn status(&self) -> (usize, usize, usize) {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).len();
        let busy = READERS.saturating_sub(self.permits.available_permits());
        (idle + busy, idle, READERS)
    }

    fn take(&self) -> Option<Connection> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop()
    }

    fn put_back(&self, conn: Connection) {
        if !self.permits.is_closed() {
            self.idle
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(conn);
        }
    }

    /// Closes the idle connections; later reads fail with [`StoreError::Unavailable`].
    pub(crate) fn close(&self) {
        self.permits.close();
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

fn closed() -> StoreError {
    StoreError::Unavailable("the SQLite store is closed".into())
}
