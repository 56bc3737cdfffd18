//! The official OpenAI Python SDK against the real server: non-streaming, streaming, refinement
//! through `extra_body`, and typed errors. The interpreter comes from `PTR_TEST_PYTHON` (the
//! Makefile points it at a venv with `openai` installed) or `python3`.

use std::process::Command;

use serde_json::Value;

use crate::common::*;

/// The interpreter with the OpenAI SDK installed.
fn sdk_python() -> String {
    let python = std::env::var("PTR_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let probe = Command::new(&python).args(["-c", "import openai"]).output();
    assert!(
        probe.as_ref().is_ok_and(|o| o.status.success()),
        "`{python}` cannot import the OpenAI SDK; run the tests with `make test`, which installs it"
    );
    python
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openai_python_sdk_works() {
    let python = sdk_python();
    // The script repeats requests verbatim and compares them: without the prefix cache that is
    // bit-identical (see README, Determinism).
    let (server, base, _) = ready_real_server(&["--prefix-cache", "0"]).await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sdk/openai_sdk_check.py");
    let output = tokio::process::Command::new(&python)
        .args([script, &base, "smollm2-135m-instruct"])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "SDK check failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let seen: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(seen["bad_request_param"], "temperature");
    assert_eq!(seen["not_found_code"], "model_not_found");
    assert_eq!(seen["streamed"], seen["plain"]);
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openai_python_sdk_drives_the_admin_api() {
    let python = sdk_python();
    let token = "sdk-admin-token";
    let (server, base, _) = ready_real_server(&["--admin-token", token]).await;
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/sdk/openai_admin_check.py"
    );
    let output = tokio::process::Command::new(&python)
        .args([script, &base, token, "smollm2-135m-instruct"])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "SDK admin check failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let seen: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(seen["status"], "processed");
    assert_eq!(seen["bad_model_param"], "model");
    assert_eq!(seen["bad_file_param"], "training_file");
    server.shutdown().await.unwrap();
}
