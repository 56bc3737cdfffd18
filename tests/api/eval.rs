//! `ptr-server eval` end to end on the real default model over real sockets: 5 GSM8K items × 2
//! greedy rounds give the table, JSONL, report and chart; a rerun asks nothing; the same run
//! against a second server gives the same answers in every round; on a third, without the prefix
//! cache, client-side rounds build the same prompts and get the same answers as server-side ones.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use ptr_server::eval::{
    run, Decoding, EvalReport, EvalSpec, Progress, ProgressSink, RoundsMode, SystemSpec, TaskInput,
    TaskKind,
};
use ptr_server::refine::DEFAULT_INSTRUCTION;
use serde_json::Value;

use crate::common::*;

const MODEL: &str = "smollm2-135m-instruct";
const CHAT_OK: &str = "ptr_http_requests_total{route=\"/v1/chat/completions\",status=\"200\"}";

struct Quiet;

impl ProgressSink for Quiet {
    fn progress(&self, _: Progress) {}
    fn note(&self, _: &str) {}
}

fn spec(endpoint: &str, mode: RoundsMode, out: &Path) -> EvalSpec {
    EvalSpec {
        tasks: vec![TaskInput {
            kind: TaskKind::Gsm8k,
            data: PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("tests/data/eval/gsm8k_test.jsonl"),
        }],
        systems: vec![SystemSpec {
            label: MODEL.into(),
            endpoint: endpoint.into(),
            model: MODEL.into(),
            api_key: None,
            rounds_mode: mode,
            local: None,
        }],
        decoding: Decoding {
            rounds: 2,
            max_tokens: 48,
            temperature: 0.0,
            instruction: DEFAULT_INSTRUCTION.into(),
        },
        limit: Some(5),
        concurrency: 1,
        time_limit: None,
        out: out.to_path_buf(),
    }
}

async fn eval(spec: &EvalSpec) -> EvalReport {
    run(spec, &Quiet, &AtomicBool::new(false))
        .await
        .expect("the evaluation runs")
}

/// The lines of an items.jsonl, by item and round.
fn records(out: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(out.join("items.jsonl")).unwrap();
    let mut v: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    v.sort_by_key(|r| {
        (
            r["item"].as_str().unwrap().to_string(),
            r["round"].as_u64().unwrap(),
        )
    });
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_gsm8k_items_two_rounds_resume_repeat_on_another_instance_and_client_side_rounds() {
    let (server, base, client) = ready_real_server(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let server_side = spec(&base, RoundsMode::Server, dir.path());
    let report = eval(&server_side).await;
    let table = &report.tables[0];
    assert_eq!((table.items, table.rows.len()), (5, 2));
    assert!(
        report
            .text()
            .contains("gsm8k — smollm2-135m-instruct (5 items)"),
        "{}",
        report.text()
    );
    for file in [
        "items.jsonl",
        "report.md",
        "summary.json",
        "accuracy.svg",
        "run.json",
    ] {
        assert!(dir.path().join(file).is_file(), "{file} is written");
    }
    assert_eq!(records(dir.path()).len(), 10);
    let requests = metric(&scrape(&client, &base).await, CHAT_OK);
    assert_eq!(
        requests,
        Some(5.0),
        "one request per item with server-side rounds"
    );

    // The same --out again: nothing is asked, the report is the same.
    let again = eval(&server_side).await;
    assert_eq!(metric(&scrape(&client, &base).await, CHAT_OK), requests);
    assert_eq!(again.text(), report.text());
    server.shutdown().await.unwrap();

    // The same run against a second instance: the same greedy answers, every round.
    let (server, base, _) = ready_real_server(&[]).await;
    let second = tempfile::tempdir().unwrap();
    eval(&spec(&base, RoundsMode::Server, second.path())).await;
    let (first, again) = (records(dir.path()), records(second.path()));
    assert_eq!(first.len(), again.len());
    for (a, b) in first.iter().zip(&again) {
        assert_eq!(
            (&a["item"], &a["round"], &a["answer"]),
            (&b["item"], &b["round"], &b["answer"]),
            "the same greedy answers on another instance"
        );
    }
    server.shutdown().await.unwrap();

    // Client-side rounds (one plain request per round) on a third server, without the prefix
    // cache: it then sends server-side rounds as text too, so both ways give the same answers in
    // every round. (With the cache on, server-side rounds continue from the model's own token
    // ids while a client's text is re-tokenised, so only round 1 would be the same request;
    // README, "Prefix reuse between rounds".)
    let (server, base, client) = ready_real_server(&["--prefix-cache", "0"]).await;
    let other = tempfile::tempdir().unwrap();
    eval(&spec(&base, RoundsMode::Client, other.path())).await;
    assert_eq!(metric(&scrape(&client, &base).await, CHAT_OK), Some(10.0));
    let server_rounds = tempfile::tempdir().unwrap();
    eval(&spec(&base, RoundsMode::Server, server_rounds.path())).await;
    let (client_side, server_side) = (records(other.path()), records(server_rounds.path()));
    assert_eq!(client_side.len(), server_side.len());
    for ((c, s), first) in client_side.iter().zip(&server_side).zip(&first) {
        assert_eq!((&c["item"], &c["round"]), (&s["item"], &s["round"]));
        assert_eq!(c["messages"], s["messages"], "the same round layout");
        assert_eq!(c["answer"], s["answer"], "the same greedy answers");
        if c["round"] == 1 {
            assert_eq!(c["answer"], first["answer"], "round 1 as with the cache on");
        }
    }
    server.shutdown().await.unwrap();
}
