//! A PTR model in one job, end to end on the real default model through the real binary: an
//! incomplete request is a 400 naming the missing part; a tiny pipeline (2 generated records and
//! 8 imported ones, a 2-step fine-tune, 2 GSM8K items × 2 rounds) is killed with SIGKILL once its
//! record stages finished, restarts, and finishes without repeating a finished stage; its report
//! names the tuned model, and the tuned model serves.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use crate::real_dataset::{admin, endpoint, start, upload, TOKEN};

fn data(path: &str) -> String {
    std::fs::read_to_string(format!("{}/tests/data/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn first_lines(text: &str, n: usize) -> String {
    text.lines().take(n).map(|l| format!("{l}\n")).collect()
}

/// Polls the pipeline until `done` holds for it (at most 15 minutes).
async fn wait_for(
    client: &reqwest::Client,
    url: &str,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    for i in 0.. {
        let job = admin(client, Method::GET, url.to_string(), None).await;
        if done(&job) {
            return job;
        }
        let status = job["status"].as_str().unwrap();
        assert!(
            !["failed", "cancelled"].contains(&status),
            "the pipeline ended {status}: {job}"
        );
        assert!(i < 3600, "no {what} after 15 minutes: {job}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    unreachable!()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipeline_survives_kill_9_between_stages_and_repeats_none() {
    crate::common::ensure_default_model();
    let dir = tempfile::tempdir().unwrap();
    let (port, base, client) = endpoint();
    let mut server = start(port, dir.path()).await;
    let queries = upload(
        &client,
        &base,
        &first_lines(&data("ptr/wizardlm_20.jsonl"), 2),
    )
    .await;
    let sample = upload(&client, &base, &data("ptr/ptr_sample_short.json")).await;
    let items = upload(
        &client,
        &base,
        &first_lines(&data("eval/gsm8k_test.jsonl"), 2),
    )
    .await;
    let role = json!({"model": "smollm2-135m-instruct", "temperature": 0.7, "max_tokens": 16});
    let body = json!({
        "model": "smollm2-135m-instruct",
        "import_files": [sample],
        "dataset": {"input_file": queries, "weak": role, "strong": role, "n_thoughts": 1,
                    "filter": {"k": 2, "threshold": -1.0, "copy_threshold": 1.0,
                               "copy_text_threshold": 1.0}},
        "fine_tuning": {"hyperparameters": {"n_epochs": 1},
                        "ptr": {"max_steps": 2, "checkpoint_every": 1, "max_seq_len": 256, "rounds": 2}},
        "eval": {"tasks": [{"task": "gsm8k", "file": items}], "rounds": 2, "max_tokens": 24},
    });
    let pipelines = format!("{base}/admin/v1/pipelines");

    // An incomplete request names what is missing.
    let mut incomplete = body.clone();
    incomplete.as_object_mut().unwrap().remove("eval");
    let res = client
        .post(&pipelines)
        .bearer_auth(TOKEN)
        .json(&incomplete)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let err: Value = res.json().await.unwrap();
    assert!(
        err["error"]["message"].as_str().unwrap().contains("eval"),
        "{err}"
    );
    let mut no_records = body.clone();
    no_records.as_object_mut().unwrap().remove("dataset");
    no_records["import_files"] = json!([]);
    let res = client
        .post(&pipelines)
        .bearer_auth(TOKEN)
        .json(&no_records)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let err: Value = res.json().await.unwrap();
    assert_eq!(err["error"]["param"], "dataset", "{err}");

    let job = admin(&client, Method::POST, pipelines.clone(), Some(body)).await;
    assert_eq!(job["object"], "ptr.pipeline.job", "{job}");
    let url = format!("{pipelines}/{}", job["id"].as_str().unwrap());

    // SIGKILL once the record stages are done and the fine-tuning stage exists.
    let before = wait_for(&client, &url, "fine-tuning stage", |j| {
        j["stages"]["fine_tune-ptr"]["job_id"].is_string()
    })
    .await;
    server.start_kill().unwrap();
    server.wait().await.unwrap();
    let server = start(port, dir.path()).await;

    let done = wait_for(&client, &url, "success", |j| j["status"] == "succeeded").await;
    for stage in ["import-1", "dataset", "fine_tune-ptr"] {
        assert_eq!(
            done["stages"][stage]["job_id"], before["stages"][stage]["job_id"],
            "stage {stage} kept its job: {done}"
        );
        assert_eq!(done["stages"][stage]["status"], "succeeded", "{done}");
    }
    let datasets = admin(
        &client,
        Method::GET,
        format!("{base}/admin/v1/datasets/jobs"),
        None,
    )
    .await;
    assert_eq!(
        datasets["data"].as_array().unwrap().len(),
        2,
        "no record stage ran twice: {datasets}"
    );
    let events = admin(
        &client,
        Method::GET,
        format!("{url}/events?limit=100"),
        None,
    )
    .await;
    let messages: Vec<&str> = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["message"].as_str())
        .collect();
    assert!(
        messages.iter().any(|m| m.contains("restarted")),
        "the restart is logged: {messages:?}"
    );
    assert!(
        messages.iter().any(|m| m.contains("not repeated")),
        "finished stages are skipped: {messages:?}"
    );

    // The report names the tuned model; the tuned model answers.
    let ft = admin(
        &client,
        Method::GET,
        format!(
            "{base}/admin/v1/fine_tuning/jobs/{}",
            done["stages"]["fine_tune-ptr"]["job_id"].as_str().unwrap()
        ),
        None,
    )
    .await;
    let tuned = ft["fine_tuned_model"].as_str().unwrap();
    let report_id = done["result_files"]["report.md"].as_str().unwrap();
    let report = client
        .get(format!("{base}/admin/v1/files/{report_id}/content"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for needle in [tuned, "## Lineage", "## Records", "## Training", "gsm8k"] {
        assert!(
            report.contains(needle),
            "no `{needle}` in the report:\n{report}"
        );
    }
    for name in ["accuracy.svg", "loss-ptr.svg", "settings.json"] {
        assert!(done["result_files"][name].is_string(), "{name}: {done}");
    }
    let chat = client
        .post(format!("{base}/v1/chat/completions"))
        .json(
            &json!({"model": tuned, "messages": [{"role": "user", "content": "Hi"}],
                      "max_tokens": 8, "temperature": 0}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(chat.status(), 200, "the tuned model serves");
    drop(server);
}
