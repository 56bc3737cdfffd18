//! Fine-tuning end to end on the real default model, through the real binary: the PTR authors'
//! sample imported as a dataset (8 records), a fine-tuning job of a few LoRA steps that is
//! killed with SIGKILL after its first checkpoint and resumes from it after a restart, its
//! events (steps with a training loss) and checkpoints, then the tuned model loaded and asked
//! for a chat completion and a 2-round refinement.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use crate::real_dataset::{admin, endpoint, start, upload};

/// Polls `url` until `done`; the job at `job` must not fail meanwhile.
async fn wait_for(
    client: &reqwest::Client,
    url: &str,
    job: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    for _ in 0..3000 {
        let state = admin(client, Method::GET, job.to_string(), None).await;
        assert!(
            !["failed", "cancelled"].contains(&state["status"].as_str().unwrap()),
            "{state}"
        );
        let j = admin(client, Method::GET, url.to_string(), None).await;
        if done(&j) {
            return j;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    panic!("{url} never got there");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fine_tuning_job_survives_kill_9_and_its_model_serves_refinements() {
    crate::common::ensure_default_model();
    let data = tempfile::tempdir().unwrap();
    let (port, base, client) = endpoint();
    let mut child = start(port, data.path()).await;
    // The 8 shortest records of the PTR sample (tests/data/README.md), imported as a training
    // file of thought → answer.
    let sample = std::fs::read_to_string("tests/data/ptr/ptr_sample_short.json").unwrap();
    let file = upload(&client, &base, &sample).await;
    let import =
        json!({"input_file": file, "input_format": "ptr_sample", "import": true, "limit": 8});
    let ds = admin(
        &client,
        Method::POST,
        format!("{base}/admin/v1/datasets/jobs"),
        Some(import),
    )
    .await;
    let ds_url = format!("{base}/admin/v1/jobs/{}", ds["id"].as_str().unwrap());
    let ds = wait_for(&client, &ds_url, &ds_url, |j| j["status"] == "succeeded").await;
    let training_file = ds["output_file_id"].as_str().unwrap().to_string();
    let meta = admin(
        &client,
        Method::GET,
        format!("{base}/admin/v1/files/{training_file}"),
        None,
    )
    .await;
    assert_eq!(meta["status"], "processed", "{meta}");

    let create = json!({
        "model": "smollm2-135m-instruct", "training_file": training_file, "suffix": "e2e", "seed": 7,
        "method": {"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 1, "batch_size": 1}}},
        "ptr": {"max_steps": 6, "checkpoint_every": 2, "max_seq_len": 384, "learning_rate": 0.002,
                "load_on_success": true, "rounds": 2},
    });
    let job = admin(
        &client,
        Method::POST,
        format!("{base}/admin/v1/fine_tuning/jobs"),
        Some(create),
    )
    .await;
    assert_eq!(job["object"], "fine_tuning.job");
    let id = job["id"].as_str().unwrap().to_string();
    let job_url = format!("{base}/admin/v1/fine_tuning/jobs/{id}");
    // SIGKILL once a checkpoint exists; the restarted server resumes from it.
    wait_for(&client, &format!("{job_url}/checkpoints"), &job_url, |c| {
        !c["data"].as_array().unwrap().is_empty()
    })
    .await;
    child.start_kill().unwrap();
    child.wait().await.unwrap();
    let mut child = start(port, data.path()).await;
    let done = wait_for(&client, &job_url, &job_url, |j| j["status"] == "succeeded").await;
    let tuned = done["fine_tuned_model"].as_str().unwrap().to_string();
    assert!(tuned.starts_with("ft:smollm2-135m-instruct:e2e:"), "{done}");
    assert_eq!(
        done["result_files"].as_array().unwrap().len(),
        2,
        "metrics CSV and loss curve: {done}"
    );

    let events = admin(
        &client,
        Method::GET,
        format!("{job_url}/events?limit=100"),
        None,
    )
    .await;
    let events = events["data"].as_array().unwrap();
    assert!(
        events
            .iter()
            .any(|e| e["message"].as_str().unwrap().contains("restarted")),
        "the restart is logged"
    );
    let resumed = events
        .iter()
        .find(|e| {
            e["message"]
                .as_str()
                .unwrap()
                .starts_with("Training from step")
        })
        .unwrap();
    let steps: Vec<(u64, f64)> = events
        .iter()
        .filter(|e| e["type"] == "metrics" && e["data"]["train_loss"].is_number())
        .map(|e| {
            (
                e["data"]["step"].as_u64().unwrap(),
                e["data"]["train_loss"].as_f64().unwrap(),
            )
        })
        .collect();
    assert!(
        steps.iter().any(|(s, _)| *s == 6),
        "the last step ran: {steps:?}"
    );
    assert!(
        resumed["data"]["step"].as_u64().unwrap() >= 2,
        "resumed from a checkpoint, not step 0: {resumed}"
    );
    let checkpoints = admin(&client, Method::GET, format!("{job_url}/checkpoints"), None).await;
    let steps_saved: Vec<u64> = checkpoints["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["step_number"].as_u64().unwrap())
        .collect();
    assert!(
        steps_saved.contains(&2) && steps_saved.contains(&6),
        "{steps_saved:?}"
    );

    // The tuned model serves chat and refinement, with the job's 2 rounds as its default.
    let models: Value = client
        .get(format!("{base}/v1/models"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        models["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["id"] == json!(tuned)),
        "{models}"
    );
    let chat = json!({"model": tuned, "temperature": 0, "max_tokens": 24,
        "messages": [{"role": "user", "content": "Write one sentence about cats."}]});
    let r: Value = client
        .post(format!("{base}/v1/chat/completions"))
        .json(&chat)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        !r["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .is_empty(),
        "{r}"
    );
    assert_eq!(
        r["refinement"]["rounds"].as_array().map(Vec::len),
        Some(2),
        "the job's default of 2 rounds: {r}"
    );
    let unload = admin(
        &client,
        Method::POST,
        format!("{base}/admin/v1/models/{tuned}/unload"),
        Some(json!({})),
    )
    .await;
    assert_eq!(unload["status"], "unloaded");
    child.start_kill().unwrap();
}
