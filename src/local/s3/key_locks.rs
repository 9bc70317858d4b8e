//! One async lock per (bucket, key), so that a conditional write's check and its write form
//! one step with respect to other writers of the same object, while writes to different
//! objects still run in parallel.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::OwnedMutexGuard;

type ObjectId = (String, String);
type Table = HashMap<ObjectId, Arc<tokio::sync::Mutex<()>>>;

#[derive(Debug, Default)]
pub(super) struct KeyLocks {
    table: Mutex<Table>,
}

/// Holds the write lock of one object; the table entry goes away with its last user.
pub(super) struct KeyGuard<'a> {
    locks: &'a KeyLocks,
    id: ObjectId,
    held: Option<OwnedMutexGuard<()>>,
}

impl KeyLocks {
    pub(super) async fn lock(&self, bucket: &str, key: &str) -> KeyGuard<'_> {
        let id = (bucket.to_owned(), key.to_owned());
        let cell = Arc::clone(self.table().entry(id.clone()).or_default());
        // Built before waiting, so that a request dropped while it waits still tidies the table.
        let mut guard = KeyGuard { locks: self, id, held: None };
        guard.held = Some(cell.lock_owned().await);
        guard
    }

    fn table(&self) -> MutexGuard<'_, Table> {
        // The table holds no invariant a panicking holder could break half-way.
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.table().len()
    }
}

impl Drop for KeyGuard<'_> {
    fn drop(&mut self) {
        let mut table = self.locks.table();
        drop(self.held.take());
        // Every waiter holds a clone of the cell, taken under the table lock: a count of one
        // means only the table still refers to it.
        if table.get(&self.id).is_some_and(|cell| Arc::strong_count(cell) == 1) {
            table.remove(&self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn same_key_is_exclusive_and_other_keys_are_not() {
        let locks = KeyLocks::default();
        let first = locks.lock("b", "k").await;
        let other = tokio::time::timeout(Duration::from_millis(50), locks.lock("b", "other")).await;
        assert!(other.is_ok(), "a different key must not wait");
        let same = tokio::time::timeout(Duration::from_millis(50), locks.lock("b", "k")).await;
        assert!(same.is_err(), "the same key must wait for its holder");
        drop(other);
        drop(first);
        let again = tokio::time::timeout(Duration::from_millis(50), locks.lock("b", "k")).await;
        assert!(again.is_ok());
        drop(again);
        assert_eq!(locks.len(), 0, "entries are removed with their last user");
    }
}
