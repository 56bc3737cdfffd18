use serde_json::json;

use super::*;

fn open() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    (dir, store)
}

fn file<'a>(content: &'a [u8], purpose: &'a str) -> NewFile<'a> {
    NewFile {
        filename: "a.jsonl",
        purpose,
        content,
        status: FileStatus::Processed,
        status_details: None,
    }
}

#[test]
fn files_survive_reopening_and_list_newest_first() {
    let (dir, store) = open();
    let a = store.insert_file(file(b"one", "fine-tune")).unwrap();
    let b = store.insert_file(file(b"two", "batch")).unwrap();
    drop(store);
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.file_content(&a.id).unwrap(), b"one");
    assert_eq!(store.file(&b.id).unwrap(), b);
    let ids: Vec<_> = store
        .list_files(None, None, 10, false)
        .unwrap()
        .into_iter()
        .map(|f| f.id)
        .collect();
    assert_eq!(ids, [b.id.clone(), a.id.clone()]);
    let after: Vec<_> = store.list_files(None, Some(&b.id), 10, false).unwrap();
    assert_eq!(after.len(), 1);
    assert_eq!(
        store.list_files(Some("batch"), None, 10, false).unwrap(),
        vec![b.clone()]
    );
    store.delete_file(&a.id).unwrap();
    assert!(matches!(
        store.file(&a.id),
        Err(StoreError::NotFound { .. })
    ));
    assert!(!store.blob_path(&a.id).exists());
}

#[test]
fn an_idempotency_key_returns_the_first_job() {
    let (_dir, store) = open();
    let spec = json!({"n": 1});
    let (a, created) = store
        .insert_job("dsjob", "dataset", JobStatus::Queued, &spec, Some("k"))
        .unwrap();
    assert!(created);
    let (b, created) = store
        .insert_job("dsjob", "dataset", JobStatus::Queued, &spec, Some("k"))
        .unwrap();
    assert!(!created);
    assert_eq!(a.id, b.id);
    let (c, _) = store
        .insert_job("dsjob", "dataset", JobStatus::Queued, &spec, None)
        .unwrap();
    assert_ne!(a.id, c.id);
}

#[test]
fn transitions_only_from_the_named_statuses() {
    let (_dir, store) = open();
    let (job, _) = store
        .insert_job("j", "dataset", JobStatus::Queued, &json!({}), None)
        .unwrap();
    assert!(store
        .transition(
            &job.id,
            &[JobStatus::Queued],
            JobStatus::Running,
            None,
            None
        )
        .unwrap());
    assert!(!store
        .transition(
            &job.id,
            &[JobStatus::Queued],
            JobStatus::Running,
            None,
            None
        )
        .unwrap());
    let err = json!({"code": "x", "message": "m"});
    assert!(store
        .transition(
            &job.id,
            &[JobStatus::Running],
            JobStatus::Failed,
            Some(&err),
            Some(&NewEvent::error("boom"))
        )
        .unwrap());
    assert_eq!(
        store
            .events(&job.id, EventCursor::OldestAfter(0), 10)
            .unwrap()[0]
            .message,
        "boom"
    );
    let job = store.job(&job.id).unwrap();
    assert_eq!(job.status, JobStatus::Failed);
    assert_eq!(job.error, Some(err));
    assert!(job.started_at.is_some() && job.finished_at.is_some());
    store.patch_state(&job.id, &json!({"a": 1})).unwrap();
    store.patch_state(&job.id, &json!({"b": {"c": 2}})).unwrap();
    assert_eq!(
        store.job(&job.id).unwrap().state,
        json!({"a": 1, "b": {"c": 2}})
    );
    let kinds = store
        .list_jobs(&["dataset"], &[JobStatus::Failed], None, 10)
        .unwrap();
    assert_eq!(kinds.len(), 1);
    assert!(store
        .list_jobs(&["fine_tune"], &[], None, 10)
        .unwrap()
        .is_empty());
}

#[test]
fn events_page_both_ways() {
    let (_dir, store) = open();
    let (job, _) = store
        .insert_job("j", "dataset", JobStatus::Queued, &json!({}), None)
        .unwrap();
    let seqs: Vec<i64> = (0..5)
        .map(|i| {
            store
                .append_event(&job.id, &NewEvent::info(format!("e{i}")))
                .unwrap()
                .seq
        })
        .collect();
    let oldest = store
        .events(&job.id, EventCursor::OldestAfter(seqs[1]), 10)
        .unwrap();
    assert_eq!(
        oldest
            .iter()
            .map(|e| e.message.as_str())
            .collect::<Vec<_>>(),
        ["e2", "e3", "e4"]
    );
    let newest = store
        .events(&job.id, EventCursor::NewestBefore(None), 2)
        .unwrap();
    assert_eq!(
        newest
            .iter()
            .map(|e| e.message.as_str())
            .collect::<Vec<_>>(),
        ["e4", "e3"]
    );
    let older = store
        .events(&job.id, EventCursor::NewestBefore(Some(seqs[3])), 10)
        .unwrap();
    assert_eq!(older.len(), 3);
}

#[test]
fn a_record_is_written_once() {
    let (_dir, store) = open();
    let (job, _) = store
        .insert_job("j", "dataset", JobStatus::Queued, &json!({}), None)
        .unwrap();
    let r = RecordRow {
        custom_id: "7".into(),
        accepted: true,
        line: json!({"x": 1}),
        provenance: json!({}),
        seq: 7,
    };
    assert!(store.put_record(&job.id, &r).unwrap());
    let again = RecordRow {
        line: json!({"x": 2}),
        ..r.clone()
    };
    assert!(!store.put_record(&job.id, &again).unwrap());
    assert_eq!(store.records(&job.id).unwrap(), vec![r]);
}
