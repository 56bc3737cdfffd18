//! Jobs and their append-only events. A job's `spec` is what was asked (immutable), its `state`
//! what it has produced so far (counts, output files, …), merged key by key as it runs.

use rusqlite::{params, OptionalExtension, Row};
use serde_json::Value;

use super::{new_id, now, Store, StoreError, StoreResult};

/// OpenAI's job statuses (plus `paused`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobStatus {
    ValidatingFiles,
    Queued,
    Running,
    Paused,
    Succeeded,
    Failed,
    Cancelled,
}

impl JobStatus {
    pub const ALL: [JobStatus; 7] = [
        Self::ValidatingFiles,
        Self::Queued,
        Self::Running,
        Self::Paused,
        Self::Succeeded,
        Self::Failed,
        Self::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ValidatingFiles => "validating_files",
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Paused => "paused",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Whether nothing more will happen to the job.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Cancelled)
    }
}

/// A stored job.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRow {
    pub id: String,
    pub kind: String,
    pub status: JobStatus,
    pub spec: Value,
    pub state: Value,
    /// `{code, message, param}` once failed.
    pub error: Option<Value>,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
}

impl JobRow {
    fn from_row(r: &Row<'_>) -> rusqlite::Result<Self> {
        let json = |s: String| serde_json::from_str(&s).unwrap_or(Value::Null);
        Ok(Self {
            id: r.get("id")?,
            kind: r.get("kind")?,
            status: JobStatus::parse(&r.get::<_, String>("status")?).unwrap_or(JobStatus::Failed),
            spec: json(r.get("spec")?),
            state: json(r.get("state")?),
            error: r.get::<_, Option<String>>("error")?.map(json),
            created_at: r.get("created_at")?,
            started_at: r.get("started_at")?,
            finished_at: r.get("finished_at")?,
        })
    }
}

/// One event of a job's log.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRow {
    /// Increases with every event of the store: the SSE id and the `after` cursor.
    pub seq: i64,
    pub job_id: String,
    pub created_at: i64,
    pub level: String,
    /// `message` or `metrics`.
    pub kind: String,
    pub message: String,
    pub data: Option<Value>,
}

/// An event to append.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub level: &'static str,
    pub kind: &'static str,
    pub message: String,
    pub data: Option<Value>,
}

impl NewEvent {
    pub fn info(message: impl Into<String>) -> Self {
        Self {
            level: "info",
            kind: "message",
            message: message.into(),
            data: None,
        }
    }

    pub fn warn(message: impl Into<String>) -> Self {
        Self {
            level: "warn",
            kind: "message",
            message: message.into(),
            data: None,
        }
    }

    pub fn error(message: impl Into<String>) -> Self {
        Self {
            level: "error",
            kind: "message",
            message: message.into(),
            data: None,
        }
    }

    pub fn metrics(message: impl Into<String>, data: Value) -> Self {
        Self {
            level: "info",
            kind: "metrics",
            message: message.into(),
            data: Some(data),
        }
    }

    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }
}

impl EventRow {
    fn from_row(r: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            seq: r.get("seq")?,
            job_id: r.get("job_id")?,
            created_at: r.get("created_at")?,
            level: r.get("level")?,
            kind: r.get("type")?,
            message: r.get("message")?,
            data: r
                .get::<_, Option<String>>("data")?
                .and_then(|s| serde_json::from_str(&s).ok()),
        })
    }
}

fn not_found(id: &str) -> StoreError {
    StoreError::NotFound {
        what: "job",
        id: id.to_string(),
    }
}

impl Store {
    /// Creates a job, or returns the one an earlier create with the same idempotency key made
    /// (`true` when it was created now).
    pub fn insert_job(
        &self,
        prefix: &str,
        kind: &str,
        status: JobStatus,
        spec: &Value,
        idempotency_key: Option<&str>,
    ) -> StoreResult<(JobRow, bool)> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        if let Some(key) = idempotency_key {
            let existing: Option<String> = tx
                .query_row(
                    "SELECT object_id FROM idempotency WHERE scope = ?1 AND key = ?2",
                    params![kind, key],
                    |r| r.get(0),
                )
                .optional()?;
            if let Some(id) = existing {
                let job =
                    tx.query_row("SELECT * FROM jobs WHERE id = ?1", [&id], JobRow::from_row)?;
                return Ok((job, false));
            }
        }
        let id = new_id(prefix);
        tx.execute(
            "INSERT INTO jobs (id, kind, status, spec, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![id, kind, status.as_str(), spec.to_string(), now()],
        )?;
        if let Some(key) = idempotency_key {
            tx.execute(
                "INSERT INTO idempotency (scope, key, object_id) VALUES (?1, ?2, ?3)",
                params![kind, key, id],
            )?;
        }
        let job = tx.query_row("SELECT * FROM jobs WHERE id = ?1", [&id], JobRow::from_row)?;
        tx.commit()?;
        Ok((job, true))
    }

    /// A job by id.
    pub fn job(&self, id: &str) -> StoreResult<JobRow> {
        self.conn()
            .query_row("SELECT * FROM jobs WHERE id = ?1", [id], JobRow::from_row)
            .optional()?
            .ok_or_else(|| not_found(id))
    }

    /// Jobs newest first, filtered by kind and status (empty = any), after the job `after`.
    pub fn list_jobs(
        &self,
        kinds: &[&str],
        statuses: &[JobStatus],
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<JobRow>> {
        let kinds = serde_json::to_string(kinds)?;
        let statuses: Vec<&str> = statuses.iter().map(|s| s.as_str()).collect();
        let statuses = serde_json::to_string(&statuses)?;
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT * FROM jobs
             WHERE (json_array_length(?1) = 0 OR kind IN (SELECT value FROM json_each(?1)))
               AND (json_array_length(?2) = 0 OR status IN (SELECT value FROM json_each(?2)))
               AND (?3 IS NULL OR rowid < (SELECT rowid FROM jobs WHERE id = ?3))
             ORDER BY rowid DESC LIMIT ?4",
        )?;
        let rows = stmt
            .query_map(
                params![kinds, statuses, after, limit as i64],
                JobRow::from_row,
            )?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    /// Jobs in one of `statuses`, oldest first (the scheduler's queue).
    pub fn jobs_in(&self, statuses: &[JobStatus]) -> StoreResult<Vec<JobRow>> {
        let mut rows = self.list_jobs(&[], statuses, None, usize::MAX >> 1)?;
        rows.reverse();
        Ok(rows)
    }

    /// Moves a job to `to` if its status is one of `from`, appending `event` in the same
    /// transaction (so a follower that sees the new status has seen the event); returns whether
    /// it moved. Sets `started_at` on entering `running`, `finished_at` on a terminal status.
    pub fn transition(
        &self,
        id: &str,
        from: &[JobStatus],
        to: JobStatus,
        error: Option<&Value>,
        event: Option<&NewEvent>,
    ) -> StoreResult<bool> {
        let from: Vec<&str> = from.iter().map(|s| s.as_str()).collect();
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let n = tx.execute(
            "UPDATE jobs SET status = ?2,
                 error = COALESCE(?4, error),
                 started_at = CASE WHEN ?2 = 'running' THEN COALESCE(started_at, ?5) ELSE started_at END,
                 finished_at = CASE WHEN ?2 IN ('succeeded', 'failed', 'cancelled') THEN ?5 ELSE NULL END
             WHERE id = ?1 AND status IN (SELECT value FROM json_each(?3))",
            params![
                id,
                to.as_str(),
                serde_json::to_string(&from)?,
                error.map(|e| e.to_string()),
                now()
            ],
        )?;
        if n == 1 {
            if let Some(e) = event {
                insert_event(&tx, id, e)?;
            }
        } else {
            tx.query_row("SELECT 1 FROM jobs WHERE id = ?1", [id], |_| Ok(()))
                .optional()?
                .ok_or_else(|| not_found(id))?;
        }
        tx.commit()?;
        Ok(n == 1)
    }

    /// Merges `patch`'s keys into the job's state.
    pub fn patch_state(&self, id: &str, patch: &Value) -> StoreResult<()> {
        let n = self.conn().execute(
            "UPDATE jobs SET state = json_patch(state, ?2) WHERE id = ?1",
            params![id, patch.to_string()],
        )?;
        if n == 0 {
            return Err(not_found(id));
        }
        Ok(())
    }

    /// Appends an event to a job's log.
    pub fn append_event(&self, job_id: &str, e: &NewEvent) -> StoreResult<EventRow> {
        let conn = self.conn();
        let seq = insert_event(&conn, job_id, e)?;
        Ok(conn.query_row(
            "SELECT * FROM job_events WHERE seq = ?1",
            [seq],
            EventRow::from_row,
        )?)
    }

    /// A job's events: oldest first after `after` (streaming), or newest first before `before`
    /// (OpenAI's listing, where `after` means "older than this event").
    pub fn events(
        &self,
        job_id: &str,
        cursor: EventCursor,
        limit: usize,
    ) -> StoreResult<Vec<EventRow>> {
        let (sql, seq) = match cursor {
            EventCursor::OldestAfter(seq) => (
                "SELECT * FROM job_events WHERE job_id = ?1 AND seq > ?2 ORDER BY seq ASC LIMIT ?3",
                seq,
            ),
            EventCursor::NewestBefore(seq) => (
                "SELECT * FROM job_events WHERE job_id = ?1 AND seq < ?2 ORDER BY seq DESC LIMIT ?3",
                seq.unwrap_or(i64::MAX),
            ),
        };
        let conn = self.conn();
        let mut stmt = conn.prepare(sql)?;
        let rows = stmt
            .query_map(params![job_id, seq, limit as i64], EventRow::from_row)?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }
}

/// Where to read a job's events from.
#[derive(Debug, Clone, Copy)]
pub enum EventCursor {
    /// Oldest first, after this sequence number (0 = from the first).
    OldestAfter(i64),
    /// Newest first, before this sequence number (`None` = from the newest).
    NewestBefore(Option<i64>),
}

fn insert_event(conn: &rusqlite::Connection, job_id: &str, e: &NewEvent) -> rusqlite::Result<i64> {
    conn.execute(
        "INSERT INTO job_events (job_id, created_at, level, type, message, data)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            job_id,
            now(),
            e.level,
            e.kind,
            e.message,
            e.data.as_ref().map(|d| d.to_string())
        ],
    )?;
    Ok(conn.last_insert_rowid())
}
