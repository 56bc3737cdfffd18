//! Fine-tuning end to end on the real default model, through the real binary and the official
//! OpenAI Python SDK (`tests/sdk/openai_finetune_check.py`): the 8 shortest records of the PTR
//! authors' sample uploaded as a training file, a job of 3 epochs that is killed with SIGKILL
//! after its first checkpoint and resumes from it after a restart, its events (the loss falls
//! epoch by epoch) and checkpoints, the tuned model loaded through the admin model route and
//! asked for a chat completion and a 2-round refinement, then a second job cancelled mid-training.
//! And a two-step run with a validation file whose every checkpoint lists its step's metrics.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use crate::real_dataset::{admin, endpoint, start, upload_as, TOKEN};
use crate::sdk::run_sdk_script;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fine_tuning_job_through_the_sdk_survives_kill_9_serves_refinements_and_cancels() {
    crate::common::ensure_default_model();
    let data = tempfile::tempdir().unwrap();
    let (port, base, client) = endpoint();
    let mut child = start(port, data.path()).await;
    let sample = format!(
        "{}/tests/data/ptr/ptr_sample_short.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let args = [base.as_str(), TOKEN, "smollm2-135m-instruct", &sample];
    let started = run_sdk_script(
        "openai_finetune_check.py",
        &[&["start"], &args[..]].concat(),
    )
    .await;
    let id = started["job"].as_str().unwrap().to_string();

    // SIGKILL once a checkpoint exists; the restarted server resumes from it.
    let job_url = format!("{base}/admin/v1/fine_tuning/jobs/{id}");
    for i in 0.. {
        let job = admin(&client, Method::GET, job_url.clone(), None).await;
        assert!(
            !["failed", "cancelled", "succeeded"].contains(&job["status"].as_str().unwrap()),
            "{job}"
        );
        let c = admin(&client, Method::GET, format!("{job_url}/checkpoints"), None).await;
        if !c["data"].as_array().unwrap().is_empty() {
            break;
        }
        assert!(i < 3000, "no checkpoint after 15 minutes");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(
        !trainers_over(data.path()).is_empty(),
        "a trainer is running"
    );
    child.start_kill().unwrap();
    child.wait().await.unwrap();
    // The killed server's trainer stops too (its stdin pipe closes), leaving no orphan that
    // would keep writing beside the resumed one.
    let trainers = || trainers_over(data.path());
    for i in 0.. {
        if trainers().is_empty() {
            break;
        }
        assert!(
            i < 30,
            "the trainer outlived its server by 3 s: {:?}",
            trainers()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let child = start(port, data.path()).await;

    let seen: Value =
        run_sdk_script("openai_finetune_check.py", &["finish", &base, TOKEN, &id]).await;
    eprintln!("the SDK saw: {seen}");
    let tuned = seen["fine_tuned_model"].as_str().unwrap();
    assert!(tuned.starts_with("ft:smollm2-135m-instruct:e2e:"), "{seen}");
    assert_eq!(
        seen["result_files"], 2,
        "metrics CSV and loss curve: {seen}"
    );
    assert_eq!(
        seen["restarted_logged"], true,
        "the restart is logged: {seen}"
    );
    assert!(
        seen["resumed_from_step"].as_u64().unwrap() >= 4,
        "resumed from a checkpoint, not step 0: {seen}"
    );
    let losses: Vec<f64> = seen["epoch_losses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_f64().unwrap())
        .collect();
    assert!(
        losses[2] < losses[0],
        "the mean loss of the last epoch is below the first's: {losses:?}"
    );
    assert_eq!(
        seen["checkpoint_steps"],
        serde_json::json!([4, 8, 12]),
        "{seen}"
    );
    assert_eq!(seen["load_status"], "loaded");
    assert_eq!(seen["listed"], true, "the loaded model is in /v1/models");
    assert!(!seen["chat"].as_str().unwrap().is_empty(), "{seen}");
    assert_eq!(
        seen["default_rounds"], 2,
        "the job's rounds are the model's default"
    );
    assert_eq!(seen["refinement_rounds"].as_array().unwrap().len(), 2);
    assert_eq!(seen["unload_status"], "unloaded");
    assert_eq!(seen["cancel"]["status"], "cancelled", "{seen}");
    drop(child);
}

/// Pids of `ptr-server train` processes whose command line names a path under `data`.
fn trainers_over(data: &std::path::Path) -> Vec<u32> {
    let data = data.to_string_lossy();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| {
            let pid: u32 = e.ok()?.file_name().to_str()?.parse().ok()?;
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            (cmd.contains(" train ") && cmd.contains(data.as_ref())).then_some(pid)
        })
        .collect()
}

/// The records of the PTR authors' sample as training lines: the thought carries no loss.
fn chat_lines(records: usize) -> String {
    let path = format!(
        "{}/tests/data/ptr/ptr_sample_short.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let sample: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let instruction =
        "Please further think about and give me a more precise and professional answer.";
    sample[..records]
        .iter()
        .map(|r| {
            let messages = json!([
                {"role": "user", "content": r["question"]},
                {"role": "assistant", "content": r["output1"], "weight": 0},
                {"role": "user", "content": instruction},
                {"role": "assistant", "content": r["output2"], "weight": 1},
            ]);
            format!("{}\n", json!({ "messages": messages }))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_checkpoint_of_a_real_run_lists_its_steps_metrics() {
    crate::common::ensure_default_model();
    let data = tempfile::tempdir().unwrap();
    let (port, base, client) = endpoint();
    let _server = start(port, data.path()).await;
    let file = upload_as(&client, &base, "fine-tune", &chat_lines(2)).await;
    let jobs = format!("{base}/admin/v1/fine_tuning/jobs");
    let body = json!({
        "model": "smollm2-135m-instruct", "training_file": file, "validation_file": file,
        "hyperparameters": {"n_epochs": 1, "batch_size": 1},
        "ptr": {"max_steps": 2, "checkpoint_every": 1, "max_seq_len": 256},
    });
    let job = admin(&client, Method::POST, jobs.clone(), Some(body)).await;
    let job_url = format!("{jobs}/{}", job["id"].as_str().unwrap());
    for i in 0.. {
        let job = admin(&client, Method::GET, job_url.clone(), None).await;
        match job["status"].as_str().unwrap() {
            "succeeded" => break,
            "failed" | "cancelled" => panic!("the job ended badly: {job}"),
            _ => assert!(i < 2400, "the job did not end in 10 minutes: {job}"),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    let list = admin(&client, Method::GET, format!("{job_url}/checkpoints"), None).await;
    let checkpoints = list["data"].as_array().unwrap();
    let steps: Vec<u64> = checkpoints
        .iter()
        .map(|c| c["step_number"].as_u64().unwrap())
        .collect();
    assert_eq!(steps, [2, 1], "one checkpoint a step, newest first: {list}");
    for c in checkpoints {
        assert_eq!(c["object"], "fine_tuning.job.checkpoint", "{c}");
        assert!(c.get("path").is_none(), "no server path is shown: {c}");
        let m = &c["metrics"];
        assert_eq!(m["step"], c["step_number"], "{c}");
        for key in [
            "train_loss",
            "train_mean_token_accuracy",
            "valid_loss",
            "valid_mean_token_accuracy",
        ] {
            let v = m[key].as_f64().unwrap_or_else(|| panic!("no `{key}`: {c}"));
            assert!(v.is_finite() && v >= 0.0, "{key} = {v}: {c}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_checkpoints_a_running_fine_tune_and_the_restart_resumes_it() {
    crate::common::ensure_default_model();
    let data = tempfile::tempdir().unwrap();
    let (port, base, client) = endpoint();
    let mut server = start(port, data.path()).await;
    let file = upload_as(&client, &base, "fine-tune", &chat_lines(2)).await;
    let jobs = format!("{base}/admin/v1/fine_tuning/jobs");
    // No periodic checkpoint before the end: the one the restart resumes from is SIGTERM's.
    let body = json!({
        "model": "smollm2-135m-instruct", "training_file": file,
        "hyperparameters": {"n_epochs": 3, "batch_size": 1},
        "ptr": {"max_steps": 6, "checkpoint_every": 100, "max_seq_len": 256},
    });
    let job = admin(&client, Method::POST, jobs.clone(), Some(body)).await;
    let job_url = format!("{jobs}/{}", job["id"].as_str().unwrap());
    for i in 0.. {
        let events = admin(&client, Method::GET, format!("{job_url}/events"), None).await;
        let stepped = events["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["data"]["step"].as_u64().is_some_and(|s| s >= 1));
        if stepped {
            break;
        }
        assert!(i < 2400, "no training step in 10 minutes: {events}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    let pid = server.id().unwrap().to_string();
    let sent = std::time::Instant::now();
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(kill.success());
    server.wait().await.unwrap();
    let took = sent.elapsed();
    assert!(
        took < Duration::from_secs(35),
        "the server exits within its 30 s grace: {took:?}"
    );
    let _server = start(port, data.path()).await;

    let checkpoints = admin(&client, Method::GET, format!("{job_url}/checkpoints"), None).await;
    let saved: Vec<u64> = checkpoints["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["step_number"].as_u64().unwrap())
        .collect();
    assert!(
        saved.iter().any(|&s| (1..6).contains(&s)),
        "SIGTERM left a checkpoint mid-run: {checkpoints}"
    );
    for i in 0.. {
        let job = admin(&client, Method::GET, job_url.clone(), None).await;
        match job["status"].as_str().unwrap() {
            "succeeded" => break,
            "failed" | "cancelled" | "paused" => panic!("the job ended badly: {job}"),
            _ => assert!(i < 2400, "the job did not end in 10 minutes: {job}"),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let events = admin(
        &client,
        Method::GET,
        format!("{job_url}/events?limit=100"),
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
        messages.iter().any(|m| m.contains("queued to resume")),
        "{messages:?}"
    );
    let resumed_from = saved.iter().max().unwrap();
    assert!(
        messages
            .iter()
            .any(|m| m.contains(&format!("Training from step {resumed_from} of"))),
        "the restart resumed from the SIGTERM checkpoint (step {resumed_from}): {messages:?}"
    );
}
