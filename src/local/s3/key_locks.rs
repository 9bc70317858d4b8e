//! The store's locks: one async read-write lock per bucket, multipart upload and object, kept in
//! a table only while someone holds or waits for them.
//!
//! Who takes what:
//! - a write of an object (PutObject, CopyObject, CompleteMultipartUpload, DeleteObject) holds
//!   its bucket shared and the object exclusive, so that a conditional write's check and its
//!   rename form one step, and DeleteBucket (the bucket exclusive) never runs between a write's
//!   check and its rename;
//! - UploadPart holds its upload shared and its part number exclusive while it moves a part
//!   into place; Complete and Abort hold the upload exclusive, so that Complete reads each
//!   part's record and bytes as one, and Abort never removes a folder a part is being moved
//!   into;
//! - CreateMultipartUpload holds its bucket shared, as writes do.
//!
//! Locks are always taken in the order upload, part, bucket, object (DeleteBucket takes no
//! upload's lock), so no two requests wait on each other. The guards own what they hold ('static), so a blocking task can keep them until its
//! work is done even when the request that started it is dropped.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::{OwnedRwLockReadGuard, OwnedRwLockWriteGuard, RwLock};

/// What one lock guards.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) enum Resource {
    Bucket(String),
    /// A multipart upload, by id.
    Upload(String),
    /// One part number of a multipart upload, by upload id.
    Part(String, i32),
    /// An object, by bucket and key.
    Object(String, String),
}

impl Resource {
    pub(super) fn object(bucket: &str, key: &str) -> Resource {
        Resource::Object(bucket.to_owned(), key.to_owned())
    }
}

type Table = HashMap<Resource, Arc<RwLock<()>>>;

#[derive(Debug, Default)]
pub(super) struct Locks {
    table: Mutex<Table>,
}

/// Holds one lock, shared or exclusive; the table entry goes away with its last user.
pub(super) struct Guard {
    locks: Arc<Locks>,
    id: Resource,
    shared: Option<OwnedRwLockReadGuard<()>>,
    exclusive: Option<OwnedRwLockWriteGuard<()>>,
}

impl Locks {
    /// Waits for `id` to be free of exclusive holders and holds it shared.
    pub(super) async fn shared(self: &Arc<Self>, id: Resource) -> Guard {
        let (cell, mut guard) = self.enter(id);
        guard.shared = Some(cell.read_owned().await);
        guard
    }

    /// Waits for `id` to be free and holds it alone.
    pub(super) async fn exclusive(self: &Arc<Self>, id: Resource) -> Guard {
        let (cell, mut guard) = self.enter(id);
        guard.exclusive = Some(cell.write_owned().await);
        guard
    }

    /// The lock of `id`, and a guard built before waiting, so that a request dropped while it
    /// waits still tidies the table.
    fn enter(self: &Arc<Self>, id: Resource) -> (Arc<RwLock<()>>, Guard) {
        let cell = Arc::clone(self.table().entry(id.clone()).or_default());
        (cell, Guard { locks: Arc::clone(self), id, shared: None, exclusive: None })
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

impl Drop for Guard {
    fn drop(&mut self) {
        let mut table = self.locks.table();
        drop((self.shared.take(), self.exclusive.take()));
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

    async fn waits<T>(lock: impl Future<Output = T>) -> bool {
        tokio::time::timeout(Duration::from_millis(50), lock).await.is_err()
    }

    #[tokio::test]
    async fn same_object_is_exclusive_and_other_objects_are_not() {
        let locks = Arc::new(Locks::default());
        let first = locks.exclusive(Resource::object("b", "k")).await;
        let other = locks.exclusive(Resource::object("b", "other")).await;
        assert!(
            waits(locks.exclusive(Resource::object("b", "k"))).await,
            "the same key waits for its holder"
        );
        drop(other);
        drop(first);
        assert!(!waits(locks.exclusive(Resource::object("b", "k"))).await);
        assert_eq!(locks.len(), 0, "entries are removed with their last user");
    }

    #[tokio::test]
    async fn shared_holders_share_and_keep_out_an_exclusive_one() {
        let locks = Arc::new(Locks::default());
        let write = locks.shared(Resource::Bucket("b".into())).await;
        let other_write = locks.shared(Resource::Bucket("b".into())).await;
        assert!(waits(locks.exclusive(Resource::Bucket("b".into()))).await, "a bucket in use is not deleted");
        drop((write, other_write));
        let delete = locks.exclusive(Resource::Bucket("b".into())).await;
        assert!(waits(locks.shared(Resource::Bucket("b".into()))).await, "writes wait for a deletion");
        drop(delete);
        assert_eq!(locks.len(), 0);
    }
}
