//! [`Hasher`]: the argon2 scheduler. Runs password hashes off the async executor, at most one
//! per CPU at a time, in working memory that is reused rather than allocated per hash.

use std::sync::{Arc, Mutex};

use tokio::sync::Semaphore;

use crate::domain::Password;
use crate::error::Error;
use crate::password::{Memory, hash_password_with, verify_password_with};

/// Hashes and checks passwords (argon2id, see `password.rs`) for a service.
pub struct Hasher {
    /// Bounds concurrent argon2 runs (19 MiB each) to the CPU count.
    permits: Arc<Semaphore>,
    /// Their working memory, reused: at most one per permit (see [`Memory`]).
    memory: Arc<Mutex<Vec<Memory>>>,
    /// Verified against when the user does not exist, so both cases cost one argon2 run.
    dummy_hash: String,
}

impl std::fmt::Debug for Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hasher")
            .field("permits", &self.permits.available_permits())
            .finish_non_exhaustive()
    }
}

impl Hasher {
    /// A hasher with one permit per CPU; computes its dummy hash (one argon2 run) first.
    pub async fn new() -> Result<Self, Error> {
        let mut memory = Memory::default();
        let (dummy_hash, memory) = blocking(move || {
            let phc = hash_password_with(b"tessera dummy password", &mut memory);
            (phc, memory)
        })
        .await?;
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        Ok(Self {
            permits: Arc::new(Semaphore::new(cpus)),
            memory: Arc::new(Mutex::new(vec![memory])),
            dummy_hash: dummy_hash?,
        })
    }

    /// A PHC string for `password`, with a fresh salt.
    pub async fn hash(&self, password: Password) -> Result<String, Error> {
        self.run(move |memory| hash_password_with(password.expose(), memory))
            .await?
    }

    /// Whether `password` matches `phc`. With no `phc` (no such user) it checks against a dummy
    /// hash and answers `false`, so the answer takes as long either way.
    pub async fn verify(&self, password: Vec<u8>, phc: Option<String>) -> Result<bool, Error> {
        let known = phc.is_some();
        let phc = phc.unwrap_or_else(|| self.dummy_hash.clone());
        let matches = self
            .run(move |memory| verify_password_with(&password, &phc, memory))
            .await?;
        Ok(known && matches)
    }

    /// Runs one argon2 computation off the executor, at most one per CPU at a time, in reused
    /// working memory. The permit and the memory are given back when the computation ends, even
    /// if the request that asked for it is gone by then (a client that hung up mid-login), so
    /// the pool never holds more buffers than there are permits.
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Memory) -> T + Send + 'static,
    ) -> Result<T, Error> {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Error::Internal("hashing closed".into()))?;
        let pool = self.memory.clone();
        blocking(move || {
            let mut memory = lock_pool(&pool).pop().unwrap_or_default();
            let out = f(&mut memory);
            lock_pool(&pool).push(memory);
            drop(permit);
            out
        })
        .await
    }
}

fn lock_pool(pool: &Mutex<Vec<Memory>>) -> std::sync::MutexGuard<'_, Vec<Memory>> {
    // A list of buffers: after a panic elsewhere it is still a list of buffers.
    pool.lock().unwrap_or_else(|e| e.into_inner())
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, Error> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Internal(Box::new(e)))
}
