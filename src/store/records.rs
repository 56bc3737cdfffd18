//! Per-job output records, keyed by the input's `custom_id`: a resumed job skips the ids it has,
//! and the output is assembled from this table, so every `custom_id` appears exactly once.

use rusqlite::{params, Row};
use serde_json::Value;

use super::{Store, StoreResult};

/// One finished input record of a job.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordRow {
    pub custom_id: String,
    pub accepted: bool,
    /// The output line (accepted) or the rejection (rejected).
    pub line: Value,
    pub provenance: Value,
    /// The input's position, for a stable output order.
    pub seq: i64,
}

impl RecordRow {
    fn from_row(r: &Row<'_>) -> rusqlite::Result<Self> {
        let json = |s: String| serde_json::from_str(&s).unwrap_or(Value::Null);
        Ok(Self {
            custom_id: r.get("custom_id")?,
            accepted: r.get::<_, i64>("accepted")? != 0,
            line: json(r.get("line")?),
            provenance: json(r.get("provenance")?),
            seq: r.get("seq")?,
        })
    }
}

impl Store {
    /// Records a finished input; a second write of the same `custom_id` is ignored.
    pub fn put_record(&self, job_id: &str, r: &RecordRow) -> StoreResult<bool> {
        let n = self.conn().execute(
            "INSERT OR IGNORE INTO job_records (job_id, custom_id, accepted, line, provenance, seq)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                job_id,
                r.custom_id,
                r.accepted as i64,
                r.line.to_string(),
                r.provenance.to_string(),
                r.seq
            ],
        )?;
        Ok(n == 1)
    }

    /// A job's records in input order.
    pub fn records(&self, job_id: &str) -> StoreResult<Vec<RecordRow>> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare("SELECT * FROM job_records WHERE job_id = ?1 ORDER BY seq, custom_id")?;
        let rows = stmt
            .query_map([job_id], RecordRow::from_row)?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }
}
