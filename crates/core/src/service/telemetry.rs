//! What the service can report about itself to the metrics: its store's connections and the
//! login throttle's size.

use super::Tessera;
use crate::store::PoolStatus;

impl Tessera {
    /// The store's connections now, when the store can tell.
    pub fn pool_status(&self) -> Option<PoolStatus> {
        self.store.pool_status()
    }

    /// How many usernames and client addresses the login throttle holds counts for.
    pub fn throttle_tracked(&self) -> (usize, usize) {
        self.lock_throttle().tracked()
    }
}
