//! The durable store: files, jobs, their append-only events and per-job records, in one SQLite
//! database under `--data-dir` (WAL, `synchronous=FULL`), with file contents as blobs beside it.
//!
//! Everything a client was told exists is committed before the answer leaves: a file's blob is
//! written and fsynced under a temporary name, renamed into place, then its row is committed. So
//! files, jobs and events survive a `kill -9`. Methods are synchronous and short; async callers
//! go through [`Store::call`], which runs them on the blocking pool.

mod files;
mod jobs;
mod records;
mod schema;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

pub use files::{FileRow, FileStatus, NewFile};
pub use jobs::{EventCursor, EventRow, JobRow, JobStatus, NewEvent};
pub use records::RecordRow;

/// What the store can fail with.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("no {what} with id `{id}`")]
    NotFound { what: &'static str, id: String },
    #[error("database error: {0}")]
    Db(#[from] rusqlite::Error),
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    #[error("stored JSON is corrupt: {0}")]
    Json(#[from] serde_json::Error),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// The store. Cheap to share as `Arc<Store>`.
pub struct Store {
    conn: Mutex<rusqlite::Connection>,
    blobs: PathBuf,
}

impl Store {
    /// Opens (creating if needed) the store in `dir`.
    pub fn open(dir: &Path) -> StoreResult<Self> {
        let blobs = dir.join("files");
        std::fs::create_dir_all(&blobs)?;
        let conn = rusqlite::Connection::open(dir.join("ptr.sqlite"))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        schema::migrate(&conn)?;
        Ok(Self {
            conn: Mutex::new(conn),
            blobs,
        })
    }

    /// Runs `f` on the blocking pool (store calls fsync).
    pub async fn call<T, F>(self: &Arc<Self>, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> StoreResult<T> + Send + 'static,
    {
        let store = self.clone();
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .unwrap_or_else(|e| Err(StoreError::Io(std::io::Error::other(e.to_string()))))
    }

    fn conn(&self) -> MutexGuard<'_, rusqlite::Connection> {
        self.conn
            .lock()
            .expect("store connection lock poisoned: this is a bug")
    }

    /// Where a file's content lives.
    pub fn blob_path(&self, file_id: &str) -> PathBuf {
        self.blobs.join(file_id)
    }
}

/// Seconds since the Unix epoch, as OpenAI's `created_at`.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A fresh id with an OpenAI-style prefix, e.g. `file-3f2a…`.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

#[cfg(test)]
mod tests;
