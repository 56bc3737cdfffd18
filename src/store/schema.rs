//! The database schema, created or upgraded at open. `user_version` records what is applied.

use rusqlite::Connection;

const MIGRATIONS: &[&str] = &[r#"
CREATE TABLE files (
    id TEXT PRIMARY KEY,
    filename TEXT NOT NULL,
    purpose TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    status TEXT NOT NULL,
    status_details TEXT
);
CREATE TABLE jobs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    spec TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT '{}',
    error TEXT,
    created_at INTEGER NOT NULL,
    started_at INTEGER,
    finished_at INTEGER
);
CREATE INDEX jobs_by_status ON jobs (status);
CREATE TABLE job_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    level TEXT NOT NULL,
    type TEXT NOT NULL,
    message TEXT NOT NULL,
    data TEXT
);
CREATE INDEX job_events_by_job ON job_events (job_id, seq);
CREATE TABLE idempotency (
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    object_id TEXT NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE TABLE job_records (
    job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    custom_id TEXT NOT NULL,
    accepted INTEGER NOT NULL,
    line TEXT NOT NULL,
    provenance TEXT NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (job_id, custom_id)
);
"#];

/// Applies the migrations not yet applied, each in its own transaction.
pub fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    let applied: usize = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(applied) {
        conn.execute_batch(&format!(
            "BEGIN; {sql}; PRAGMA user_version = {}; COMMIT;",
            i + 1
        ))?;
    }
    Ok(())
}
