//! The writer thread: the one connection that writes, and group commit.
//!
//! SQLite lets one transaction write at a time, so the writes of every caller meet in one
//! queue anyway. Here the queue is a channel to a thread that owns the write connection: it
//! takes whatever is queued (up to [`MAX_BATCH`]), runs each write in a savepoint of one
//! `BEGIN IMMEDIATE` transaction, commits once, and only then answers each caller. One commit
//! (one WAL sync point, one lock acquisition) is shared by the whole batch, and nobody waits
//! for a batch to fill: a batch is what arrived while the previous one committed.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rusqlite::{Connection, Transaction, TransactionBehavior};
use tessera_core::StoreError;
use tokio::sync::oneshot;

use crate::classify;

/// The most writes committed together. Large enough that a queue of 64 concurrent requests
/// commits in one or two transactions, small enough that a batch's savepoints stay cheap.
const MAX_BATCH: usize = 64;

/// Above this size the WAL is truncated between batches. SQLite's auto-checkpoint (every 1000
/// pages, ~4 MiB) copies pages back but can only restart the WAL from its beginning when no
/// reader is inside it; under sustained reads that can fail for long stretches and the file
/// grows. A `TRUNCATE` checkpoint waits (within the busy timeout) for those readers instead.
const WAL_LIMIT: u64 = 32 * 1024 * 1024;
/// How often the WAL's size is looked at (one `stat`), at most.
const WAL_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// What a write hands back to the writer: called once the batch's commit succeeded (`Ok`) or
/// failed (`Err`), and it answers the caller.
type Finish = Box<dyn FnOnce(Result<(), &rusqlite::Error>) + Send>;
/// A write, with its types erased: runs inside the batch's transaction (or learns why there is
/// none) and returns how to answer its caller, or `None` when it has nobody left to answer.
type Job = Box<dyn FnOnce(Result<&mut Transaction<'_>, &rusqlite::Error>) -> Option<Finish> + Send>;

enum Message {
    Write(Job),
    /// Commit what is queued, checkpoint, close the connection, then answer.
    Close(oneshot::Sender<()>),
}

/// The sending side of the writer thread. Dropping the last one ends the thread.
#[derive(Clone)]
pub(crate) struct Writer {
    queue: mpsc::Sender<Message>,
}

impl Writer {
    /// Moves `conn` to a new thread that runs the queue. `wal` is the WAL file's path.
    pub(crate) fn spawn(conn: Connection, wal: PathBuf) -> std::io::Result<Self> {
        let (queue, messages) = mpsc::channel();
        std::thread::Builder::new()
            .name("tessera-sqlite-writer".into())
            .spawn(move || run(conn, &messages, &wal))?;
        Ok(Self { queue })
    }

    /// Runs `write` in its own savepoint of the next batch and answers after the batch
    /// commits. An error (or a panic) in `write` rolls back its savepoint only: the other
    /// writes of the batch commit. Every statement of one `write` commits or none does.
    pub(crate) async fn write<T: Send + 'static>(
        &self,
        write: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.submit(write)?.await.map_err(|_| gone())?
    }

    /// Queues `write` and returns where its answer will come.
    fn submit<T: Send + 'static>(
        &self,
        write: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<oneshot::Receiver<Result<T, StoreError>>, StoreError> {
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move |tx| {
            // The caller gave up (a cancelled request): writing now would only change what
            // nobody will be told about.
            if reply.is_closed() {
                return None;
            }
            let tx = match tx {
                Ok(tx) => tx,
                Err(e) => {
                    let _ = reply.send(Err(classify(e)));
                    return None;
                }
            };
            let outcome = in_savepoint(tx, write);
            Some(Box::new(move |commit: Result<(), &rusqlite::Error>| {
                let answer = match (outcome, commit) {
                    (Err(e), _) => Err(e),
                    (Ok(_), Err(e)) => Err(classify(e)),
                    (Ok(value), Ok(())) => Ok(value),
                };
                let _ = reply.send(answer);
            }))
        });
        self.queue.send(Message::Write(job)).map_err(|_| gone())?;
        Ok(answer)
    }

    /// Commits what is queued, checkpoints the WAL and closes the connection. Writes after
    /// this fail with [`StoreError::Unavailable`].
    pub(crate) async fn close(&self) {
        let (done, closed) = oneshot::channel();
        if self.queue.send(Message::Close(done)).is_ok() {
            let _ = closed.await;
        }
    }
}

/// The writer thread is gone (closed, or died): retrying later, on a restarted process, may
/// work.
fn gone() -> StoreError {
    StoreError::Unavailable("the SQLite writer thread has stopped".into())
}

fn in_savepoint<T>(
    tx: &mut Transaction<'_>,
    write: impl FnOnce(&Connection) -> rusqlite::Result<T>,
) -> Result<T, StoreError> {
    let savepoint = tx.savepoint().map_err(|e| classify(&e))?;
    // A panic rolls back this write alone (the savepoint's drop) instead of taking the thread,
    // and with it every later write, down.
    match catch_unwind(AssertUnwindSafe(|| write(&savepoint))) {
        Ok(Ok(value)) => {
            savepoint.commit().map_err(|e| classify(&e))?;
            Ok(value)
        }
        Ok(Err(e)) => Err(classify(&e)),
        Err(_) => Err(StoreError::Unavailable("a SQLite write panicked".into())),
    }
}

fn run(mut conn: Connection, messages: &mpsc::Receiver<Message>, wal: &std::path::Path) {
    let mut wal_checked = Instant::now();
    while let Ok(first) = messages.recv() {
        let mut jobs = Vec::with_capacity(MAX_BATCH);
        let mut close = None;
        let mut next = Some(first);
        while let Some(message) = next.take() {
            match message {
                Message::Write(job) => jobs.push(job),
                Message::Close(done) => {
                    close = Some(done);
                    break;
                }
            }
            if jobs.len() < MAX_BATCH {
                next = messages.try_recv().ok();
            }
        }
        if !jobs.is_empty() {
            commit_batch(&mut conn, jobs);
        }
        if let Some(done) = close {
            checkpoint(&conn);
            drop(conn);
            let _ = done.send(());
            return;
        }
        if wal_checked.elapsed() >= WAL_CHECK_INTERVAL {
            wal_checked = Instant::now();
            if std::fs::metadata(wal).is_ok_and(|m| m.len() > WAL_LIMIT) {
                checkpoint(&conn);
            }
        }
    }
}

fn commit_batch(conn: &mut Connection, jobs: Vec<Job>) {
    let mut tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => {
            for job in jobs {
                job(Err(&e));
            }
            return;
        }
    };
    let mut finishes = Vec::with_capacity(jobs.len());
    let mut jobs = jobs.into_iter();
    for job in jobs.by_ref() {
        // An I/O error or a full disk can make SQLite roll the whole transaction back; a later
        // savepoint would then open (and release, i.e. commit) a transaction of its own.
        if tx.is_autocommit() {
            break;
        }
        finishes.extend(job(Ok(&mut tx)));
    }
    let rolled_back = rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ABORT),
        Some("the batch's transaction was rolled back".into()),
    );
    for job in jobs {
        job(Err(&rolled_back));
    }
    let committed = if tx.is_autocommit() {
        Err(rolled_back)
    } else {
        tx.commit()
    };
    for finish in finishes {
        finish(committed.as_ref().map(|_| ()));
    }
}

fn checkpoint(conn: &Connection) {
    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())) {
        tracing::warn!(error = %e, "SQLite WAL checkpoint failed");
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn writer() -> (Writer, PathBuf) {
        let dir = std::env::temp_dir().join(format!("tessera-writer-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("w.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; CREATE TABLE t (k TEXT PRIMARY KEY NOT NULL, v INTEGER)",
        )
        .unwrap();
        (Writer::spawn(conn, dir.join("w.db-wal")).unwrap(), dir)
    }

    /// Holds the writer inside a write until the returned sender is dropped, so that what is
    /// submitted meanwhile lands in one batch.
    fn hold(writer: &Writer) -> (mpsc::Sender<()>, oneshot::Receiver<Result<(), StoreError>>) {
        let (release, held) = mpsc::channel::<()>();
        let answer = writer
            .submit(move |_| {
                let _ = held.recv();
                Ok(())
            })
            .unwrap();
        (release, answer)
    }

    fn insert(k: &'static str) -> impl FnOnce(&Connection) -> rusqlite::Result<usize> {
        move |c| c.execute("INSERT INTO t (k, v) VALUES (?, 1)", [k])
    }

    fn count(writer: &Writer) -> i64 {
        let (tx, rx) = std::sync::mpsc::channel();
        let answer = writer
            .submit(move |c| {
                tx.send(c.query_row("SELECT count(*) FROM t", [], |r| r.get::<_, i64>(0)))
                    .unwrap();
                Ok(())
            })
            .unwrap();
        answer.blocking_recv().unwrap().unwrap();
        rx.recv().unwrap().unwrap()
    }

    #[test]
    fn a_failed_write_fails_only_its_own_caller_in_a_batch() {
        let (writer, dir) = writer();
        let (release, held) = hold(&writer);
        let a = writer.submit(insert("a")).unwrap();
        let dup = writer.submit(insert("a")).unwrap();
        // Two statements, the second failing: the first is rolled back with it.
        let half = writer
            .submit(|c| {
                c.execute("INSERT INTO t (k, v) VALUES ('half', 1)", [])?;
                c.execute("INSERT INTO t (k, v) VALUES ('b', 1)", [])?;
                c.execute("INSERT INTO t (k, v) VALUES ('b', 2)", [])
            })
            .unwrap();
        let panics = writer
            .submit(|c| -> rusqlite::Result<()> {
                c.execute("INSERT INTO t (k, v) VALUES ('p', 1)", [])?;
                panic!("a bug in one write")
            })
            .unwrap();
        let c = writer.submit(insert("c")).unwrap();
        drop(release);
        held.blocking_recv().unwrap().unwrap();
        assert_eq!(a.blocking_recv().unwrap().unwrap(), 1);
        assert!(matches!(
            dup.blocking_recv().unwrap(),
            Err(StoreError::Conflict)
        ));
        assert!(matches!(
            half.blocking_recv().unwrap(),
            Err(StoreError::Conflict)
        ));
        assert!(matches!(
            panics.blocking_recv().unwrap(),
            Err(StoreError::Unavailable(_))
        ));
        assert_eq!(c.blocking_recv().unwrap().unwrap(), 1);
        assert_eq!(count(&writer), 2, "a and c only");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_write_whose_caller_is_gone_is_skipped_and_the_batch_goes_on() {
        let (writer, dir) = writer();
        let (release, held) = hold(&writer);
        drop(writer.submit(insert("dropped")).unwrap());
        let kept = writer.submit(insert("kept")).unwrap();
        drop(release);
        held.blocking_recv().unwrap().unwrap();
        assert_eq!(kept.blocking_recv().unwrap().unwrap(), 1);
        assert_eq!(count(&writer), 1);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn after_close_writes_are_unavailable_not_hung() {
        let (writer, dir) = writer();
        writer.write(insert("a")).await.unwrap();
        writer.close().await;
        assert!(matches!(
            writer.write(insert("b")).await,
            Err(StoreError::Unavailable(_))
        ));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
