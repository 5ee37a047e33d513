//! What the service can report about itself to the metrics: its store's connections (the login
//! throttle's size is in `throttle.rs`).

use super::Tessera;
use crate::store::PoolStatus;

impl Tessera {
    /// The store's connections now, when the store can tell.
    pub fn pool_status(&self) -> Option<PoolStatus> {
        self.store.pool_status()
    }
}
