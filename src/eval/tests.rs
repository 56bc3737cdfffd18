//! The harness end to end over HTTP against ptr-server's own router on the scripted engine:
//! scoring per round, resume without new requests, client- vs server-side rounds, cancellation.

use std::sync::atomic::AtomicBool;
use std::sync::Mutex;

use serde_json::Value;

use super::*;
use crate::engine::fake::FakeEngine;
use crate::http::{AppState, Limits};
use crate::models::fake::FakeLoader;
use crate::refine::DEFAULT_INSTRUCTION;

const MODEL: &str = "fake-model";

/// Round 1 answers 18 (right on item 1 only), round 2 answers 20 (right on item 5 only).
fn engine() -> FakeEngine {
    FakeEngine::scripted(
        MODEL,
        &[
            "9 eggs, so 9 * 2 = 18. The answer is 18.",
            "Let me refine: 20. The answer is 20.",
        ],
    )
}

async fn serve(engine: FakeEngine) -> String {
    let state = AppState::new(FakeLoader::serving(engine).await, Limits::default(), 4, &[]);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, crate::router(state)).await });
    format!("http://{addr}")
}

fn spec(endpoint: &str, mode: RoundsMode, out: &std::path::Path) -> EvalSpec {
    let data = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/eval/gsm8k_test.jsonl");
    EvalSpec {
        tasks: vec![TaskInput {
            kind: TaskKind::Gsm8k,
            data,
        }],
        systems: vec![SystemSpec {
            label: "fake".into(),
            endpoint: endpoint.into(),
            model: MODEL.into(),
            api_key: None,
            rounds_mode: mode,
            local: None,
        }],
        decoding: Decoding {
            rounds: 2,
            max_tokens: 32,
            temperature: 0.0,
            instruction: DEFAULT_INSTRUCTION.into(),
        },
        limit: Some(5),
        concurrency: 2,
        time_limit: None,
        out: out.to_path_buf(),
    }
}

/// Records what the harness reports.
#[derive(Default)]
struct Log {
    progress: Mutex<Vec<Progress>>,
    notes: Mutex<Vec<String>>,
}

impl ProgressSink for Log {
    fn progress(&self, progress: Progress) {
        self.progress.lock().unwrap().push(progress);
    }
    fn note(&self, message: &str) {
        self.notes.lock().unwrap().push(message.to_string());
    }
}

fn lines(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test]
async fn scores_rounds_writes_outputs_and_resumes_without_requests() {
    let engine = engine();
    let url = serve(engine.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let log = Log::default();
    let report = run(
        &spec(&url, RoundsMode::Client, dir.path()),
        &log,
        &AtomicBool::new(false),
    )
    .await
    .unwrap();
    assert_eq!(
        engine.generations(),
        10,
        "5 items × 2 rounds, one request each"
    );

    let t = &report.tables[0];
    assert_eq!((t.items, t.rows[0].correct, t.rows[1].correct), (5, 1, 1));
    let f = t.rows[1].flips_from_previous.unwrap();
    assert_eq!((f.right_to_wrong, f.wrong_to_right), (1, 1));
    assert_eq!(
        log.progress.lock().unwrap().last(),
        Some(&Progress { done: 5, total: 5 })
    );

    let records = lines(&dir.path().join("items.jsonl"));
    assert_eq!(records.len(), 10);
    let round2 = records
        .iter()
        .find(|r| r["item"] == "1" && r["round"] == 2)
        .unwrap();
    assert_eq!(round2["extracted"], "20");
    assert_eq!(round2["gold"], "18");
    assert_eq!(round2["correct"], false);
    let messages = round2["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 3, "question, round-1 answer, instruction");
    assert_eq!(
        messages[1]["content"],
        "9 eggs, so 9 * 2 = 18. The answer is 18.\n"
    );
    assert_eq!(messages[2]["content"], DEFAULT_INSTRUCTION);
    let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    assert!(md.contains("| 2 | 20.0 % (1/5) |"), "{md}");
    let svg = std::fs::read_to_string(dir.path().join("accuracy.svg")).unwrap();
    assert!(
        svg.starts_with("<svg") && svg.contains("gsm8k · fake (n=5)"),
        "{svg}"
    );
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("summary.json")).unwrap())
            .unwrap();
    assert_eq!(summary["report"]["tables"][0]["rows"][1]["correct"], 1);

    // A rerun into the same folder asks nothing and reports the same.
    let log = Log::default();
    let again = run(
        &spec(&url, RoundsMode::Client, dir.path()),
        &log,
        &AtomicBool::new(false),
    )
    .await
    .unwrap();
    assert_eq!(engine.generations(), 10);
    assert_eq!(again.text(), report.text());
    assert!(log.notes.lock().unwrap()[0].contains("5 of 5 items already done"));
    assert_eq!(lines(&dir.path().join("items.jsonl")).len(), 10);

    // Other decoding settings in the same folder are refused.
    let mut other = spec(&url, RoundsMode::Client, dir.path());
    other.decoding.max_tokens = 64;
    let err = run(&other, &Log::default(), &AtomicBool::new(false))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("other decoding settings"), "{err}");
}

#[tokio::test]
async fn server_rounds_give_the_client_rounds_answers() {
    let engine = engine();
    let url = serve(engine.clone()).await;
    let (client_dir, server_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    run(
        &spec(&url, RoundsMode::Client, client_dir.path()),
        &Log::default(),
        &AtomicBool::new(false),
    )
    .await
    .unwrap();
    run(
        &spec(&url, RoundsMode::Server, server_dir.path()),
        &Log::default(),
        &AtomicBool::new(false),
    )
    .await
    .unwrap();
    assert_eq!(engine.generations(), 20);
    let pick = |dir: &tempfile::TempDir| -> Vec<(Value, Value, Value, Value)> {
        let mut v: Vec<_> = lines(&dir.path().join("items.jsonl"))
            .into_iter()
            .map(|r| {
                (
                    r["item"].clone(),
                    r["round"].clone(),
                    r["answer"].clone(),
                    r["messages"].clone(),
                )
            })
            .collect();
        v.sort_by_key(|r| (r.0.to_string(), r.1.to_string()));
        v
    };
    assert_eq!(pick(&client_dir), pick(&server_dir));
}

#[tokio::test]
async fn cancel_time_limit_and_failed_items() {
    let engine = engine();
    let url = serve(engine.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let err = run(
        &spec(&url, RoundsMode::Client, dir.path()),
        &Log::default(),
        &AtomicBool::new(true),
    )
    .await
    .unwrap_err();
    assert!(err.is::<Cancelled>(), "{err}");

    // Past the time limit nothing new starts, and the report covers what is done.
    let mut hurried = spec(&url, RoundsMode::Client, dir.path());
    hurried.time_limit = Some(std::time::Duration::ZERO);
    let log = Log::default();
    let report = run(&hurried, &log, &AtomicBool::new(false)).await.unwrap();
    assert_eq!(
        (
            engine.generations(),
            report.tables[0].items,
            report.tables[0].planned
        ),
        (0, 0, 5)
    );
    assert!(log.notes.lock().unwrap()[0].contains("0 of 5 items done"));

    // An unknown model fails every item; they are noted, written to errors.jsonl, and not counted.
    let dir = tempfile::tempdir().unwrap();
    let mut bad = spec(&url, RoundsMode::Client, dir.path());
    bad.systems[0].model = "no-such-model".into();
    let log = Log::default();
    let report = run(&bad, &log, &AtomicBool::new(false)).await.unwrap();
    assert_eq!((report.failed_items, report.tables[0].items), (5, 0));
    assert_eq!(lines(&dir.path().join("errors.jsonl")).len(), 5);
    assert!(
        log.notes.lock().unwrap()[0].contains("HTTP 404"),
        "{:?}",
        log.notes.lock().unwrap()
    );
}
