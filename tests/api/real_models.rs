//! Models at run time on the real server: a failed `--load` leaves the server serving, and a
//! local-path model (here the default model's own GGUF under a second id) is registered, loaded,
//! used and unloaded while the default model keeps serving.

use ptr_server::fetch::ModelCache;
use ptr_server::models::{ModelState, RegisteredModel};
use ptr_server::registry::{ModelRegistry, ModelSpec};
use serde_json::{json, Value};

use crate::common::*;

const COPY: &str = "ft:smollm2-135m-instruct:copy:0001";

fn ask(model: &str) -> Value {
    json!({"model": model, "temperature": 0, "max_tokens": 8,
        "messages": [{"role": "user", "content": "Say hello."}]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_model_loads_and_unloads_at_run_time_and_a_failed_load_is_confined() {
    ensure_default_model();
    let dir = tempfile::tempdir().unwrap();
    let shipped = std::fs::read_to_string("models.toml").unwrap();
    let models = dir.path().join("models.toml");
    std::fs::write(
        &models,
        format!("{shipped}\n[[model]]\nid = \"broken\"\npath = \"missing.gguf\"\n"),
    )
    .unwrap();
    let models = models.to_string_lossy().into_owned();
    let (server, base, client) =
        ready_real_server(&["--models", &models, "--load", "broken"]).await;
    let url = format!("{base}/v1/chat/completions");
    let state = &server.state.models;
    while state.status("broken").unwrap().status == ModelState::Loading {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(state.status("broken").unwrap().status, ModelState::Failed);
    assert_eq!(send_json(&client, &url, &ask("broken")).await.status(), 503);

    let registry = ModelRegistry::load(std::path::Path::new("models.toml")).unwrap();
    let weights =
        ModelCache::new(ModelCache::default_dir(), "python3").path_of(registry.default_model());
    let spec = ModelSpec {
        id: COPY.into(),
        description: None,
        file: String::new(),
        sha256: String::new(),
        refinement: Default::default(),
        wheels: vec![],
        path: Some(weights),
        max_concurrent: None,
        requantize: None,
    };
    state
        .register(RegisteredModel {
            spec,
            parent: Some("smollm2-135m-instruct".into()),
            created_by_job: None,
            created: 0,
        })
        .unwrap();
    state.load(COPY).await.unwrap();
    let a: Value = send_json(&client, &url, &ask(COPY))
        .await
        .json()
        .await
        .unwrap();
    let b: Value = send_json(&client, &url, &ask("smollm2-135m-instruct"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(a["model"], COPY, "{a}");
    assert_eq!(
        a["choices"][0]["message"]["content"], b["choices"][0]["message"]["content"],
        "the same weights answer alike"
    );
    state.unload(COPY).unwrap();
    assert_eq!(send_json(&client, &url, &ask(COPY)).await.status(), 404);
    assert_eq!(
        send_json(&client, &url, &ask("smollm2-135m-instruct"))
            .await
            .status(),
        200
    );
    server.shutdown().await.unwrap();
}
