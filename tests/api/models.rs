//! Models as a run-time resource (fake engines): register, load and unload while another model
//! serves, persistence across a restart, failures confined to one model, per-model admission.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use ptr_server::engine::fake::FakeEngine;
use ptr_server::engine::Engine;
use ptr_server::models::{ModelError, ModelManager, ModelState, RegisteredModel, RuntimeStore};
use ptr_server::registry::ModelSpec;
use serde_json::{json, Value};
use tower::ServiceExt;

use crate::common::*;

const TUNED: &str = "ft:fake-model:demo:abc123";

fn local_spec(id: &str) -> ModelSpec {
    ModelSpec {
        id: id.into(),
        description: None,
        file: String::new(),
        sha256: String::new(),
        refinement: Default::default(),
        wheels: vec![],
        path: Some("/nonexistent/tuned.gguf".into()),
        max_concurrent: None,
        requantize: None,
    }
}

fn registered(id: &str) -> RegisteredModel {
    RegisteredModel {
        spec: local_spec(id),
        parent: Some(FAKE.into()),
        created_by_job: Some("ftjob-1".into()),
        created: 0,
    }
}

fn chat(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "hi"}]})
}

async fn models_listed(app: &axum::Router) -> Vec<String> {
    let (_, _, text) = send(app, Request::get("/v1/models").body(Body::empty()).unwrap()).await;
    let v: Value = serde_json::from_str(&text).unwrap();
    v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect()
}

fn manager(engines: Vec<FakeEngine>, store: RuntimeStore) -> Arc<ModelManager> {
    let loader = Arc::new(FakeLoader::new(engines));
    Arc::new(ModelManager::new(&fake_registry(&[FAKE]), store, loader, 4).unwrap())
}

#[tokio::test]
async fn a_second_model_loads_and_unloads_while_the_first_serves() {
    let base = FakeEngine::new(FAKE, "base answer").with_token_delay(Duration::from_millis(20));
    let tuned = FakeEngine::new(TUNED, "tuned answer words here")
        .with_token_delay(Duration::from_millis(50));
    let models = manager(vec![base, tuned.clone()], RuntimeStore::memory());
    models.load(FAKE).await.unwrap();
    let (app, _) = app_over(models.clone(), test_limits(), 4, &[]);

    let status = models.register(registered(TUNED)).unwrap();
    assert_eq!(status.status, ModelState::Unloaded);
    assert_eq!(status.parent.as_deref(), Some(FAKE));
    assert!(status.created > 0);
    let (code, _, body) = send(&app, post_json("/v1/chat/completions", &chat(TUNED))).await;
    let err = assert_error(code, &body, StatusCode::NOT_FOUND, Some("model"));
    assert_eq!(err["code"], "model_not_loaded");

    // The base model serves while the tuned one loads.
    let loading = tokio::spawn({
        let models = models.clone();
        async move { models.load(TUNED).await }
    });
    let (code, _, body) = send(&app, post_json("/v1/chat/completions", &chat(FAKE))).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    loading.await.unwrap().unwrap();
    assert_eq!(models_listed(&app).await, [FAKE, TUNED]);

    // A stream that started on the tuned model finishes after the unload, on the old engine.
    let mut req = chat(TUNED);
    req["stream"] = json!(true);
    let res = app
        .clone()
        .oneshot(post_json("/v1/chat/completions", &req))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    models.unload(TUNED).unwrap();
    let text = res.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8(text.to_vec()).unwrap();
    assert!(text.contains("here") && text.contains("[DONE]"), "{text}");
    assert_eq!(models_listed(&app).await, [FAKE]);
    assert_eq!(tuned.stats().active_sequences, 0);
    let (code, _, _) = send(&app, post_json("/v1/chat/completions", &chat(FAKE))).await;
    assert_eq!(code, StatusCode::OK);
}

#[tokio::test]
async fn a_queued_model_is_loading_until_its_load_runs() {
    // `serve` queues its start-up models before it resumes jobs: a job looking in between must
    // see them loading (and wait), not unloaded (and fail).
    let models = manager(vec![FakeEngine::new(FAKE, "ok")], RuntimeStore::memory());
    assert_eq!(models.status(FAKE).unwrap().status, ModelState::Unloaded);
    models.queue(FAKE).unwrap();
    assert_eq!(models.status(FAKE).unwrap().status, ModelState::Loading);
    let err = models.resolve(Some(FAKE)).err().expect("not serving yet");
    assert!(matches!(err, ModelError::Loading(_)), "{err}");
    // Its load goes ahead (a loading model would refuse a second load).
    models.load(FAKE).await.unwrap();
    assert_eq!(models.status(FAKE).unwrap().status, ModelState::Loaded);
    // Queuing a loaded model changes nothing; an unknown id is an error.
    models.queue(FAKE).unwrap();
    assert_eq!(models.status(FAKE).unwrap().status, ModelState::Loaded);
    assert!(matches!(models.queue("nope"), Err(ModelError::NotFound(_))));
}

#[tokio::test]
async fn a_failed_load_marks_only_that_model() {
    // No fake engine for the tuned id: its load fails.
    let models = manager(vec![FakeEngine::new(FAKE, "ok")], RuntimeStore::memory());
    models.load(FAKE).await.unwrap();
    models.register(registered(TUNED)).unwrap();
    let err = models.load(TUNED).await.unwrap_err();
    assert!(matches!(err, ModelError::Failed { .. }), "{err}");
    let listed = models.list();
    assert_eq!(listed[0].status, ModelState::Loaded);
    assert_eq!(listed[1].status, ModelState::Failed);
    assert!(listed[1]
        .error
        .as_deref()
        .unwrap()
        .contains("no fake engine"));
    let (app, _) = app_over(models, test_limits(), 4, &[]);
    let (code, _, _) = send(&app, Request::get("/ready").body(Body::empty()).unwrap()).await;
    assert_eq!(code, StatusCode::OK);
    let (code, _, body) = send(&app, post_json("/v1/chat/completions", &chat(TUNED))).await;
    assert_error(code, &body, StatusCode::SERVICE_UNAVAILABLE, None);
}

#[tokio::test]
async fn registrations_persist_and_ids_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let models = manager(vec![], RuntimeStore::in_dir(dir.path()));
    models.register(registered(TUNED)).unwrap();
    assert!(matches!(
        models.register(registered(TUNED)),
        Err(ModelError::AlreadyExists(_))
    ));
    for bad in ["../etc", ".hidden", "a/b", "x..y"] {
        assert!(
            matches!(
                models.register(registered(bad)),
                Err(ModelError::InvalidId(_))
            ),
            "{bad}"
        );
    }
    assert!(matches!(models.remove(FAKE), Err(ModelError::Protected(_))));
    assert!(matches!(models.unload(FAKE), Err(ModelError::Protected(_))));

    // A restart sees the registration.
    let again = manager(vec![], RuntimeStore::in_dir(dir.path()));
    let status = again.status(TUNED).unwrap();
    assert_eq!(status.created_by_job.as_deref(), Some("ftjob-1"));
    assert!(!status.declared);
    again.remove(TUNED).unwrap();
    let third = manager(vec![], RuntimeStore::in_dir(dir.path()));
    assert!(matches!(third.status(TUNED), Err(ModelError::NotFound(_))));
}

#[tokio::test]
async fn each_model_has_its_own_admission_limit() {
    let base =
        FakeEngine::new(FAKE, "a b c d e f g h").with_token_delay(Duration::from_millis(100));
    let tuned = FakeEngine::new(TUNED, "ok");
    let models = manager(vec![base, tuned], RuntimeStore::memory());
    models.load(FAKE).await.unwrap();
    let mut one_at_a_time = registered(TUNED);
    one_at_a_time.spec.max_concurrent = Some(1);
    models.register(one_at_a_time).unwrap();
    models.load(TUNED).await.unwrap();
    // The server allows 4 at once; the tuned model only 1.
    let (app, state) = app_over(models.clone(), test_limits(), 4, &[]);
    let held = models.resolve(Some(TUNED)).unwrap().admit().unwrap();
    let (code, headers, body) = send(&app, post_json("/v1/chat/completions", &chat(TUNED))).await;
    let err = assert_error(code, &body, StatusCode::TOO_MANY_REQUESTS, None);
    assert!(err["message"].as_str().unwrap().contains(TUNED));
    assert_eq!(headers["retry-after"], "1");
    assert_eq!(state.metrics.rejected.get(), 1);
    let (code, _, _) = send(&app, post_json("/v1/chat/completions", &chat(FAKE))).await;
    assert_eq!(code, StatusCode::OK, "the other model still serves");
    drop(held);
    let (code, _, _) = send(&app, post_json("/v1/chat/completions", &chat(TUNED))).await;
    assert_eq!(code, StatusCode::OK);
}

#[tokio::test]
async fn request_metrics_are_labelled_by_model() {
    let (app, _) = fake_app(FakeEngine::new(FAKE, "x y z")).await;
    let (code, _, _) = send(&app, post_json("/v1/chat/completions", &chat(FAKE))).await;
    assert_eq!(code, StatusCode::OK);
    let (_, _, text) = send(&app, Request::get("/metrics").body(Body::empty()).unwrap()).await;
    let series = format!("ptr_generated_tokens_total{{model=\"{FAKE}\"}}");
    assert_eq!(metric(&text, &series), Some(3.0), "{text}");
}

#[test]
fn the_mistral_loader_names_a_path_models_missing_file_and_it_is_a_409() {
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "default_model = \"m\"\n[[model]]\nid = \"m\"\npath = \"{0}/m.gguf\"\n\
         [[model]]\nid = \"later\"\npath = \"{0}/not-made-yet.gguf\"\n",
        dir.path().display()
    );
    std::fs::write(dir.path().join("m.gguf"), b"x").unwrap();
    let registry = ptr_server::registry::ModelRegistry::parse(&toml).unwrap();
    let loader = ptr_server::models::MistralLoader {
        cache: ptr_server::fetch::ModelCache::new(dir.path(), "python3"),
        fetch: false,
        options: ptr_server::engine::mistral::LoadOptions {
            device: ptr_server::engine::DeviceSpec::Cpu,
            max_num_seqs: 1,
            prefix_cache_n: 0,
            recycle_after: 0,
        },
    };
    use ptr_server::models::EngineLoader;
    assert_eq!(loader.missing_file(registry.get("m").unwrap()), None);
    let missing = loader.missing_file(registry.get("later").unwrap()).unwrap();
    assert!(missing.ends_with("not-made-yet.gguf"), "{missing:?}");
    let err = ptr_server::models::ModelError::NoFile {
        id: "later".into(),
        path: missing.display().to_string(),
    };
    let api: ptr_server::error::ApiError = err.into();
    assert_eq!(api.status(), axum::http::StatusCode::CONFLICT);
    assert!(api.message.contains("not-made-yet.gguf"), "{}", api.message);
}
