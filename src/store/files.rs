//! Files: uploaded or job-written content, OpenAI's file object.

use std::io::Write;

use rusqlite::{params, OptionalExtension, Row};
use sha2::{Digest, Sha256};

use super::{new_id, now, Store, StoreError, StoreResult};

/// A file's processing state, as OpenAI reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileStatus {
    Uploaded,
    Processed,
    Error,
}

impl FileStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Uploaded => "uploaded",
            Self::Processed => "processed",
            Self::Error => "error",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "processed" => Self::Processed,
            "error" => Self::Error,
            _ => Self::Uploaded,
        }
    }
}

/// A stored file.
#[derive(Debug, Clone, PartialEq)]
pub struct FileRow {
    pub id: String,
    pub filename: String,
    pub purpose: String,
    pub bytes: i64,
    pub sha256: String,
    pub created_at: i64,
    pub status: FileStatus,
    pub status_details: Option<String>,
}

/// What to store.
pub struct NewFile<'a> {
    pub filename: &'a str,
    pub purpose: &'a str,
    pub content: &'a [u8],
    pub status: FileStatus,
    pub status_details: Option<String>,
}

impl FileRow {
    fn from_row(r: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: r.get("id")?,
            filename: r.get("filename")?,
            purpose: r.get("purpose")?,
            bytes: r.get("bytes")?,
            sha256: r.get("sha256")?,
            created_at: r.get("created_at")?,
            status: FileStatus::parse(&r.get::<_, String>("status")?),
            status_details: r.get("status_details")?,
        })
    }
}

impl Store {
    /// Stores a file: the blob is durable before the row is committed.
    pub fn insert_file(&self, new: NewFile<'_>) -> StoreResult<FileRow> {
        let id = new_id("file");
        let path = self.blob_path(&id);
        let tmp = path.with_extension("partial");
        {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(new.content)?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, &path)?;
        if let Some(dir) = path.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
        let row = FileRow {
            id,
            filename: new.filename.to_string(),
            purpose: new.purpose.to_string(),
            bytes: new.content.len() as i64,
            sha256: hex::encode(Sha256::digest(new.content)),
            created_at: now(),
            status: new.status,
            status_details: new.status_details,
        };
        self.conn().execute(
            "INSERT INTO files (id, filename, purpose, bytes, sha256, created_at, status, status_details)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                row.id,
                row.filename,
                row.purpose,
                row.bytes,
                row.sha256,
                row.created_at,
                row.status.as_str(),
                row.status_details
            ],
        )?;
        Ok(row)
    }

    /// A file by id.
    pub fn file(&self, id: &str) -> StoreResult<FileRow> {
        self.conn()
            .query_row("SELECT * FROM files WHERE id = ?1", [id], FileRow::from_row)
            .optional()?
            .ok_or_else(|| StoreError::NotFound {
                what: "file",
                id: id.to_string(),
            })
    }

    /// A file's content.
    pub fn file_content(&self, id: &str) -> StoreResult<Vec<u8>> {
        self.file(id)?;
        Ok(std::fs::read(self.blob_path(id))?)
    }

    /// Files, newest first (or oldest first with `ascending`), after the file `after`.
    pub fn list_files(
        &self,
        purpose: Option<&str>,
        after: Option<&str>,
        limit: usize,
        ascending: bool,
    ) -> StoreResult<Vec<FileRow>> {
        let (cmp, order) = if ascending {
            (">", "ASC")
        } else {
            ("<", "DESC")
        };
        let sql = format!(
            "SELECT * FROM files
             WHERE (?1 IS NULL OR purpose = ?1)
               AND (?2 IS NULL OR rowid {cmp} (SELECT rowid FROM files WHERE id = ?2))
             ORDER BY rowid {order} LIMIT ?3"
        );
        let conn = self.conn();
        let mut stmt = conn.prepare(&sql)?;
        let rows = stmt
            .query_map(params![purpose, after, limit as i64], FileRow::from_row)?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    /// Deletes a file: the row first (so nobody sees a row without content), then the blob.
    pub fn delete_file(&self, id: &str) -> StoreResult<()> {
        let n = self
            .conn()
            .execute("DELETE FROM files WHERE id = ?1", [id])?;
        if n == 0 {
            return Err(StoreError::NotFound {
                what: "file",
                id: id.to_string(),
            });
        }
        match std::fs::remove_file(self.blob_path(id)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }
}
