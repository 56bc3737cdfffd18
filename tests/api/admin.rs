//! The admin API on the scripted engine: auth, files, the job index, dataset jobs with their
//! events (listed and streamed, resumed with `Last-Event-ID`), cancel, idempotency, bad input,
//! and recovery of a job a crash left `running`.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use ptr_server::app::Admin;
use ptr_server::config::AdminConfig;
use ptr_server::engine::fake::FakeEngine;
use ptr_server::http::AppState;
use ptr_server::jobs::dataset::filter::TextEmbedder;
use ptr_server::models::{ModelManager, RuntimeStore};
use serde_json::{json, Value};

use crate::common::{assert_error, fake_registry, parse_sse, send, test_limits, FakeLoader, FAKE};

pub const TOKEN: &str = "admin-token-123";

/// Bag-of-words embeddings: the HTTP tests need a deterministic embedder, not a good one (the
/// real Sentence-BERT is tested on its own and end-to-end).
struct Words;
impl TextEmbedder for Words {
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, String> {
        Ok(texts
            .iter()
            .map(|t| {
                let mut v = vec![0.0f32; 64];
                for w in t.split_whitespace() {
                    let h = w
                        .bytes()
                        .fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(b as u64));
                    v[(h % 64) as usize] += 1.0;
                }
                v
            })
            .collect())
    }
}

/// An app with the admin API on over `dir`, serving `engine`.
pub async fn admin_app(engine: FakeEngine, dir: &std::path::Path) -> (Router, AppState) {
    admin_app_limited(engine, dir, 4).await
}

/// [`admin_app`] with `max_concurrent` generations at once.
async fn admin_app_limited(
    engine: FakeEngine,
    dir: &std::path::Path,
    max_concurrent: usize,
) -> (Router, AppState) {
    let loader = Arc::new(FakeLoader::new(vec![engine]));
    let models = Arc::new(
        ModelManager::new(&fake_registry(&[FAKE]), RuntimeStore::memory(), loader, 4).unwrap(),
    );
    models.load(FAKE).await.unwrap();
    let config = AdminConfig {
        admin_token: Some(TOKEN.into()),
        max_file_bytes: 64 * 1024,
        max_running_jobs: 1,
    };
    let embedder: ptr_server::jobs::dataset::EmbedderLoader =
        Arc::new(|| Ok(Arc::new(Words) as Arc<dyn TextEmbedder>));
    let admin = Admin::open(
        &config,
        dir,
        models.clone(),
        ptr_server::fetch::ModelCache::new(dir.join("cache"), "python3"),
        embedder,
        Some("public-key".into()),
        ptr_server::engine::DeviceSpec::Cpu,
    )
    .unwrap()
    .unwrap();
    admin.start_jobs().unwrap();
    let keys = ["public-key".to_string()];
    let state =
        AppState::new(models, test_limits(), max_concurrent, &keys).with_admin(Arc::new(admin));
    let app = ptr_server::router(state.clone());
    // As `serve` does: the jobs reach this server's models through its API in process.
    state.admin.as_ref().unwrap().local.bind(app.clone());
    (app, state)
}

fn authed(req: axum::http::request::Builder) -> axum::http::request::Builder {
    req.header("authorization", format!("Bearer {TOKEN}"))
}

/// A multipart upload.
pub fn upload(name: &str, purpose: &str, content: &[u8]) -> Request<Body> {
    let b = "XBOUNDARYX";
    let mut body = format!("--{b}\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\n{purpose}\r\n--{b}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n").into_bytes();
    body.extend_from_slice(content);
    body.extend_from_slice(format!("\r\n--{b}--\r\n").as_bytes());
    authed(Request::post("/admin/v1/files"))
        .header("content-type", format!("multipart/form-data; boundary={b}"))
        .body(Body::from(body))
        .unwrap()
}

pub async fn get_json(app: &Router, path: &str) -> (StatusCode, Value) {
    let (s, _, body) = send(app, authed(Request::get(path)).body(Body::empty()).unwrap()).await;
    (s, serde_json::from_str(&body).unwrap_or(Value::Null))
}

pub async fn post_json(
    app: &Router,
    path: &str,
    v: &Value,
    key: Option<&str>,
) -> (StatusCode, String) {
    let mut req = authed(Request::post(path)).header("content-type", "application/json");
    if let Some(k) = key {
        req = req.header("idempotency-key", k);
    }
    let (s, _, body) = send(app, req.body(Body::from(v.to_string())).unwrap()).await;
    (s, body)
}

/// A file's content by id.
pub async fn content(app: &Router, id: &Value) -> String {
    let id = id.as_str().unwrap_or_else(|| panic!("not a file id: {id}"));
    let (s, _, body) = send(
        app,
        authed(Request::get(format!("/admin/v1/files/{id}/content")))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    body
}

/// Polls a job until its status is terminal.
pub async fn wait_job(app: &Router, id: &str) -> Value {
    for _ in 0..600 {
        let (_, job) = get_json(app, &format!("/admin/v1/jobs/{id}")).await;
        if ["succeeded", "failed", "cancelled"].contains(&job["status"].as_str().unwrap_or("")) {
            return job;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("job {id} did not end");
}

const QUESTIONS: &str = "{\"question\":\"What is 2 + 3?\",\"answer\":\"2 + 3 = 5\\n#### 5\"}\n{\"question\":\"What is 4 + 4?\",\"answer\":\"#### 8\"}\n{\"question\":\"What is 1 + 1?\",\"answer\":\"#### 2\"}\n";

fn engine() -> FakeEngine {
    // Weak round 1, weak round 2, then the strong answer (after 2 in-context examples).
    FakeEngine::scripted(
        FAKE,
        &[
            "I think it is 5",
            "Maybe the total is 5 or so",
            "Adding the numbers gives the total. The answer is 5",
        ],
    )
}

async fn upload_questions(app: &Router) -> String {
    let (s, _, body) = send(app, upload("q.jsonl", "user_data", QUESTIONS.as_bytes())).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    serde_json::from_str::<Value>(&body).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string()
}

fn dataset_body(file: &str) -> Value {
    json!({"input_file": file, "weak": {"model": FAKE}, "strong": {"model": FAKE}, "n_thoughts": 2, "filter": {"k": 2}})
}

#[tokio::test]
async fn admin_auth() {
    let dir = tempfile::tempdir().unwrap();
    let (app, _) = admin_app(engine(), dir.path()).await;
    let get = |auth: Option<&str>| {
        let mut r = Request::get("/admin/v1/files");
        if let Some(a) = auth {
            r = r.header("authorization", a);
        }
        r.body(Body::empty()).unwrap()
    };
    let (s, _, body) = send(&app, get(None)).await;
    assert_error(s, &body, StatusCode::UNAUTHORIZED, None);
    let (s, _, body) = send(&app, get(Some("Bearer wrong-token"))).await;
    assert_error(s, &body, StatusCode::UNAUTHORIZED, None);
    let (s, _, body) = send(&app, get(Some("Bearer public-key"))).await;
    assert_error(s, &body, StatusCode::UNAUTHORIZED, None);
    let (s, _, _) = send(&app, get(Some(&format!("bearer {TOKEN}")))).await;
    assert_eq!(s, StatusCode::OK);
    // Without an admin token configured, the admin API does not exist.
    let (plain, _) = crate::common::fake_app(engine()).await;
    let (s, _, body) = send(&plain, get(Some(&format!("Bearer {TOKEN}")))).await;
    assert_error(s, &body, StatusCode::NOT_FOUND, None);
}

#[tokio::test]
async fn files_are_validated_listed_read_and_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let (app, _) = admin_app(engine(), dir.path()).await;
    let good = r#"{"messages":[{"role":"user","content":"q"},{"role":"assistant","content":"t","weight":0},{"role":"user","content":"again"},{"role":"assistant","content":"a","weight":1}]}"#;
    let bad = r#"{"messages":[{"role":"user","content":"q"},{"role":"assistant","content":"a","weight":2}]}"#;
    let (s, _, body) = send(
        &app,
        upload("train.jsonl", "fine-tune", format!("{good}\n").as_bytes()),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let f: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (
            f["object"].as_str(),
            f["status"].as_str(),
            f["purpose"].as_str()
        ),
        (Some("file"), Some("processed"), Some("fine-tune"))
    );
    let (_, _, body) = send(
        &app,
        upload(
            "bad.jsonl",
            "fine-tune",
            format!("{good}\n{bad}\n").as_bytes(),
        ),
    )
    .await;
    let b: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(b["status"], "error");
    assert!(
        b["status_details"].as_str().unwrap().starts_with("line 2:"),
        "{b}"
    );
    let (_, list) = get_json(&app, "/admin/v1/files").await;
    assert_eq!(list["object"], "list");
    assert_eq!(list["data"][0]["id"], b["id"], "newest first");
    let (_, only) = get_json(&app, "/admin/v1/files?limit=1").await;
    assert_eq!(
        (
            only["data"].as_array().unwrap().len(),
            only["has_more"].as_bool()
        ),
        (1, Some(true))
    );
    let id = f["id"].as_str().unwrap();
    let (s, _, content) = send(
        &app,
        authed(Request::get(format!("/admin/v1/files/{id}/content")))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!((s, content), (StatusCode::OK, format!("{good}\n")));
    let (s, _, body) = send(
        &app,
        authed(Request::delete(format!("/admin/v1/files/{id}")))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["deleted"],
        true
    );
    let (s, _, body) = send(
        &app,
        authed(Request::get(format!("/admin/v1/files/{id}")))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_error(s, &body, StatusCode::NOT_FOUND, None);
    // Bad uploads.
    let (s, _, body) = send(&app, upload("x", "nonsense", b"x")).await;
    assert_error(s, &body, StatusCode::BAD_REQUEST, Some("purpose"));
    let (s, _, body) = send(&app, upload("x", "batch", &vec![b'x'; 70 * 1024])).await;
    assert_error(s, &body, StatusCode::PAYLOAD_TOO_LARGE, None);
    let (s, _, body) = send(
        &app,
        authed(Request::post("/admin/v1/files"))
            .header("content-type", "application/json")
            .body(Body::from("{}"))
            .unwrap(),
    )
    .await;
    assert_error(s, &body, StatusCode::BAD_REQUEST, None);
}

#[tokio::test]
async fn a_dataset_job_builds_records_with_events_that_replay() {
    let dir = tempfile::tempdir().unwrap();
    let (app, _) = admin_app(engine(), dir.path()).await;
    let file = upload_questions(&app).await;
    let (s, body) = post_json(
        &app,
        "/admin/v1/datasets/jobs",
        &dataset_body(&file),
        Some("key-1"),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let job: Value = serde_json::from_str(&body).unwrap();
    let id = job["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("dsjob-") && job["object"] == "ptr.dataset.job");
    let (_, again) = post_json(
        &app,
        "/admin/v1/datasets/jobs",
        &dataset_body(&file),
        Some("key-1"),
    )
    .await;
    assert_eq!(
        serde_json::from_str::<Value>(&again).unwrap()["id"],
        job["id"],
        "idempotency key"
    );
    let done = wait_job(&app, &id).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    // The scripted strong model always answers 5: right for one question, wrong for two.
    assert_eq!(
        done["request_counts"],
        json!({"total": 3, "completed": 3, "accepted": 1, "rejected": 2, "failed": 0})
    );
    let lines = content(&app, &done["output_file_id"]).await;
    assert_eq!(ptr_server::chatfile::validate(lines.as_bytes()), Ok(1));
    let rejected = content(&app, &done["error_file_id"]).await;
    let reasons: Vec<String> = rejected
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["reason"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(reasons, ["gold_mismatch", "gold_mismatch"]);
    let summary = &done["summary"];
    assert_eq!(summary["records"], 3);
    assert_eq!(
        summary["rejected_by"],
        json!({"gold_mismatch": 2}),
        "{summary}"
    );
    // A gold mismatch stays rejected whatever the similarity threshold.
    let sweep = summary["threshold_sweep"].as_array().unwrap();
    assert!(
        sweep.len() >= 8 && sweep.iter().all(|r| r["accepted"] == 1),
        "{summary}"
    );
    for line in lines.lines() {
        let turns = ptr_server::chatfile::parse_line(line).unwrap();
        let weights: Vec<_> = turns.iter().filter_map(|t| t.weight).collect();
        assert_eq!(weights, [0.0, 0.0, 1.0], "{line}");
    }
    // Events: listed newest first, streamed oldest first, replayed after Last-Event-ID.
    let (_, listed) = get_json(
        &app,
        &format!("/admin/v1/datasets/jobs/{id}/events?limit=100"),
    )
    .await;
    let listed: Vec<Value> = listed["data"].as_array().unwrap().clone();
    assert_eq!(listed[0]["message"], "The job has successfully completed");
    let stream = |last: Option<String>| {
        let mut r = authed(Request::get(format!(
            "/admin/v1/jobs/{id}/events?stream=true"
        )));
        if let Some(l) = last {
            r = r.header("last-event-id", l);
        }
        r.body(Body::empty()).unwrap()
    };
    let (_, _, body) = send(&app, stream(None)).await;
    let streamed: Vec<Value> = parse_sse(&body)
        .iter()
        .filter(|e| e.data != "[DONE]")
        .map(|e| serde_json::from_str(&e.data).unwrap())
        .collect();
    assert!(body.trim_end().ends_with("data: [DONE]"), "{body}");
    let mut newest_first = streamed.clone();
    newest_first.reverse();
    assert_eq!(newest_first, listed, "the stream is the list, oldest first");
    let cut = streamed[3]["id"].as_str().unwrap().to_string();
    let (_, _, body) = send(&app, stream(Some(cut))).await;
    let replayed: Vec<Value> = parse_sse(&body)
        .iter()
        .filter(|e| e.data != "[DONE]")
        .map(|e| serde_json::from_str(&e.data).unwrap())
        .collect();
    assert_eq!(replayed, streamed[4..].to_vec());
    // The job index.
    let (_, index) = get_json(&app, "/admin/v1/jobs?kinds=dataset&statuses=succeeded").await;
    assert_eq!(index["data"][0]["id"], json!(id));
    let (_, none) = get_json(&app, "/admin/v1/jobs?kinds=fine_tune").await;
    assert_eq!(none["data"], json!([]));
}

#[tokio::test]
async fn bad_dataset_requests_are_400s_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let (app, _) = admin_app(engine(), dir.path()).await;
    let file = upload_questions(&app).await;
    let cases = [
        (
            json!({"input_file": "file-nope", "weak": {"model": FAKE}, "strong": {"model": FAKE}}),
            "input_file",
        ),
        (
            json!({"input_file": file, "weak": {"model": "nope"}, "strong": {"model": FAKE}}),
            "weak.model",
        ),
        (
            json!({"input_file": file, "weak": {"model": FAKE}}),
            "strong",
        ),
        (
            json!({"input_file": file, "weak": {"model": FAKE}, "strong": {"model": FAKE}, "n_thoughts": 0}),
            "n_thoughts",
        ),
        (
            json!({"input_file": file, "weak": {"model": FAKE, "temperature": 9}, "strong": {"model": FAKE}}),
            "weak.temperature",
        ),
        (
            json!({"input_file": file, "weak": {"model": FAKE}, "strong": {"model": FAKE, "base_url": "ftp://x"}}),
            "strong.base_url",
        ),
        (
            json!({"input_file": file, "weak": {"model": FAKE}, "strong": {"model": FAKE}, "filter": {"threshold": 3}}),
            "filter.threshold",
        ),
        (
            json!({"input_file": file, "weak": {"model": FAKE}, "strong": {"model": FAKE}, "bogus": 1}),
            "bogus",
        ),
    ];
    for (body, param) in cases {
        let (s, text) = post_json(&app, "/admin/v1/datasets/jobs", &body, None).await;
        let err = assert_error(s, &text, StatusCode::BAD_REQUEST, Some(param));
        assert!(!err["message"].as_str().unwrap().is_empty());
    }
    let (s, body) = post_json(
        &app,
        "/admin/v1/datasets/jobs",
        &dataset_body(&file),
        Some(""),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    let (s, v) = get_json(&app, "/admin/v1/jobs?statuses=flying").await;
    assert_eq!(
        (s, v["error"]["param"].as_str()),
        (StatusCode::BAD_REQUEST, Some("statuses"))
    );
    let (s, v) = get_json(&app, "/admin/v1/jobs/dsjob-nope").await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
}

#[tokio::test]
async fn cancel_stops_a_running_job_and_keeps_what_it_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let slow = engine().with_token_delay(Duration::from_millis(40));
    let (app, _) = admin_app(slow.clone(), dir.path()).await;
    let file = upload_questions(&app).await;
    let mut body = dataset_body(&file);
    body["concurrency"] = json!(1);
    let (_, created) = post_json(&app, "/admin/v1/datasets/jobs", &body, None).await;
    let id = serde_json::from_str::<Value>(&created).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    // Wait for the first record, then cancel.
    for _ in 0..400 {
        let (_, job) = get_json(&app, &format!("/admin/v1/jobs/{id}")).await;
        if job["request_counts"]["completed"].as_u64() >= Some(1) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let started = std::time::Instant::now();
    let (s, _) = post_json(
        &app,
        &format!("/admin/v1/datasets/jobs/{id}/cancel"),
        &json!({}),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let job = wait_job(&app, &id).await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "cancel took {:?}",
        started.elapsed()
    );
    assert_eq!(job["status"], "cancelled");
    let completed = job["request_counts"]["completed"].as_u64().unwrap();
    assert!((1..3).contains(&completed), "{job}");
    let out = job["output_file_id"]
        .as_str()
        .expect("a cancelled job still writes what it has");
    let (_, meta) = get_json(&app, &format!("/admin/v1/files/{out}")).await;
    assert_eq!(meta["status"], "processed");
    let generations = slow.generations();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(slow.generations(), generations, "nothing runs after cancel");
}

#[tokio::test]
async fn a_job_left_running_by_a_crash_resumes_and_writes_each_record_once() {
    use ptr_server::store::{JobStatus, RecordRow, Store};
    let dir = tempfile::tempdir().unwrap();
    let file = upload_questions(&admin_app(engine(), dir.path()).await.0).await;
    // What a kill -9 leaves: a running job with one record written.
    let store = Store::open(dir.path()).unwrap();
    let spec = serde_json::to_value(
        serde_json::from_value::<ptr_server::jobs::dataset::DatasetSpec>(dataset_body(&file))
            .unwrap(),
    )
    .unwrap();
    let (job, _) = store
        .insert_job("dsjob", "dataset", JobStatus::Running, &spec, None)
        .unwrap();
    let line = json!({"messages": [{"role": "user", "content": "What is 2 + 3?"}, {"role": "assistant", "content": "5", "weight": 1}]});
    store
        .put_record(
            &job.id,
            &RecordRow {
                custom_id: "0".into(),
                accepted: true,
                line: line.clone(),
                provenance: json!({"custom_id": "0", "tokens": 1000}),
                seq: 0,
            },
        )
        .unwrap();
    drop(store);
    let (app, _) = admin_app(engine(), dir.path()).await;
    let done = wait_job(&app, &job.id).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let (_, events) = get_json(&app, &format!("/admin/v1/jobs/{}/events?limit=100", job.id)).await;
    assert!(events["data"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["message"].as_str().unwrap().contains("restarted")));
    let provenance = content(&app, &done["provenance_file_id"]).await;
    let mut ids: Vec<String> = provenance
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["custom_id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    ids.sort();
    assert_eq!(ids, ["0", "1", "2"], "each custom_id exactly once");
    // The summary counts the record from before the crash as well.
    let summary = &done["summary"];
    let tokens: u64 = provenance
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).unwrap()["tokens"].as_u64())
        .sum();
    assert!(tokens > 1000, "{provenance}");
    assert_eq!(summary["tokens"], tokens, "{summary}");
    assert_eq!(summary["records"], 3, "{summary}");
    let train = content(&app, &done["output_file_id"]).await;
    assert_eq!(
        serde_json::from_str::<Value>(train.lines().next().unwrap()).unwrap(),
        line,
        "the record from before the crash is kept"
    );
}

/// Uploads the GSM8K test items for an eval job; the file's id.
async fn upload_gsm8k(app: &Router) -> Value {
    let gsm: String = std::fs::read_to_string("tests/data/eval/gsm8k_test.jsonl").unwrap();
    let (s, _, body) = send(app, upload("gsm.jsonl", "evals", gsm.as_bytes())).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    serde_json::from_str::<Value>(&body).unwrap()["id"].clone()
}

#[tokio::test]
async fn an_eval_job_waits_for_a_slot_on_a_busy_server_instead_of_failing() {
    let dir = tempfile::tempdir().unwrap();
    let (app, state) = admin_app_limited(engine(), dir.path(), 1).await;
    let file = upload_gsm8k(&app).await;
    // A chat stream holds the server's only generation slot.
    let held = state.admit().unwrap();
    let spec = json!({"tasks": [{"task": "gsm8k", "file": file}], "model": FAKE, "rounds": 1, "limit": 2, "max_tokens": 32});
    let (s, body) = post_json(&app, "/admin/v1/evals/jobs", &spec, None).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let id = serde_json::from_str::<Value>(&body).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (_, job) = get_json(&app, &format!("/admin/v1/jobs/{id}")).await;
    assert_eq!(job["status"], "running", "it waits for the slot: {job}");
    assert_eq!(job["progress"]["done"], 0, "{job}");
    drop(held);
    let job = wait_job(&app, &id).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["summary"][0]["items"], 2, "no item failed: {job}");
}

#[tokio::test]
async fn an_eval_job_scores_rounds_reports_files_and_rejects_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let (app, _) = admin_app(engine(), dir.path()).await;
    // The job calls the server over HTTP, as it would in production.
    let file = upload_gsm8k(&app).await;
    let spec = json!({"tasks": [{"task": "gsm8k", "file": file}], "model": FAKE, "rounds": 2, "limit": 3, "max_tokens": 32});
    let (s, body) = post_json(&app, "/admin/v1/evals/jobs", &spec, None).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let id = serde_json::from_str::<Value>(&body).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let job = wait_job(&app, &id).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["progress"], json!({"done": 3, "total": 3}));
    let table = &job["summary"][0];
    assert_eq!(table["task"], "gsm8k");
    assert_eq!(table["rows"].as_array().unwrap().len(), 2, "{table}");
    assert_eq!(table["items"], 3, "{table}");
    let report = content(&app, &job["result_files"]["report.md"]).await;
    assert!(report.contains("gsm8k"), "{report}");
    let chart = content(&app, &job["result_files"]["accuracy.svg"]).await;
    assert!(
        chart.starts_with("<svg") || chart.contains("<svg"),
        "an SVG chart"
    );
    // Bad input: a missing file, a file of the wrong shape, an unknown model.
    let cases = [
        (
            json!({"tasks": [{"task": "gsm8k", "file": "file-nope"}], "model": FAKE}),
            "tasks[0].file",
        ),
        (
            json!({"tasks": [{"task": "arc", "file": file}], "model": FAKE}),
            "tasks[0].file",
        ),
        (
            json!({"tasks": [{"task": "gsm8k", "file": file}], "model": "nope"}),
            "model",
        ),
        (
            json!({"tasks": [{"task": "gsm8k", "file": file}], "model": FAKE, "rounds": 0}),
            "rounds",
        ),
    ];
    for (body, param) in cases {
        let (s, text) = post_json(&app, "/admin/v1/evals/jobs", &body, None).await;
        assert_error(s, &text, StatusCode::BAD_REQUEST, Some(param));
    }
}
