//! The official OpenAI Python SDK against the real server: non-streaming, streaming, refinement
//! through `extra_body`, and typed errors. The interpreter comes from `PTR_TEST_PYTHON` (the
//! Makefile points it at a venv with `openai` installed) or `python3`.

use std::process::Command;

use serde_json::Value;

use crate::common::*;

/// Runs `tests/sdk/<script>` with the interpreter that has the OpenAI SDK installed; asserts it
/// succeeded and returns the JSON object it printed.
pub async fn run_sdk_script(script: &str, args: &[&str]) -> Value {
    let python = std::env::var("PTR_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let probe = Command::new(&python).args(["-c", "import openai"]).output();
    assert!(
        probe.as_ref().is_ok_and(|o| o.status.success()),
        "`{python}` cannot import the OpenAI SDK; run the tests with `make test`, which installs it"
    );
    let path = format!("{}/tests/sdk/{script}", env!("CARGO_MANIFEST_DIR"));
    let output = tokio::process::Command::new(&python)
        .arg(&path)
        .args(args)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{script} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(stdout.trim()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openai_python_sdk_works() {
    // The script repeats requests verbatim and compares them: without the prefix cache that is
    // bit-identical (see README, Determinism).
    let (server, base, _) = ready_real_server(&["--prefix-cache", "0"]).await;
    let seen = run_sdk_script("openai_sdk_check.py", &[&base, "smollm2-135m-instruct"]).await;
    assert_eq!(seen["bad_request_param"], "temperature");
    assert_eq!(seen["not_found_code"], "model_not_found");
    assert_eq!(seen["streamed"], seen["plain"]);
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openai_python_sdk_drives_the_admin_api() {
    let token = "sdk-admin-token";
    let (server, base, _) = ready_real_server(&["--admin-token", token]).await;
    let args = [base.as_str(), token, "smollm2-135m-instruct"];
    let seen = run_sdk_script("openai_admin_check.py", &args).await;
    assert_eq!(seen["status"], "processed");
    assert_eq!(seen["bad_model_param"], "model");
    assert_eq!(seen["bad_file_param"], "training_file");
    server.shutdown().await.unwrap();
}
