//! The OpenAPI document against the code: the committed `openapi/openapi.json` is the one the
//! handlers' annotations generate, and the admin router serves exactly the admin operations the
//! document lists (path and method), no more and no fewer.

use std::collections::BTreeSet;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use ptr_server::engine::fake::FakeEngine;
use serde_json::Value;

use crate::admin::{admin_app, TOKEN};
use crate::common::{send, FAKE};

#[test]
fn the_committed_openapi_spec_matches_the_code() {
    let committed = std::fs::read_to_string("openapi/openapi.json")
        .expect("openapi/openapi.json is committed; regenerate it with `cargo run -- openapi > openapi/openapi.json`");
    assert!(
        committed == ptr_server::http::docs::spec_json(),
        "openapi/openapi.json is stale: regenerate it with `cargo run -- openapi > openapi/openapi.json`"
    );
}

const METHODS: [Method; 5] = [
    Method::GET,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
];

/// Whether the app routes `method` on `path`: neither the router's 404 for an unknown path nor a
/// 405 (a handler's own 404, e.g. for an unknown id, counts as routed).
async fn routed(app: &axum::Router, method: &Method, path: &str) -> bool {
    let req = Request::builder()
        .method(method.clone())
        .uri(path.replace("{id}", "no-such-id"))
        .header("authorization", format!("Bearer {TOKEN}"))
        .body(Body::empty())
        .unwrap();
    let (status, _, body) = send(app, req).await;
    status != StatusCode::METHOD_NOT_ALLOWED
        && !(status == StatusCode::NOT_FOUND && body.contains("No such route"))
}

#[tokio::test]
async fn the_admin_router_serves_exactly_the_documented_admin_operations() {
    let doc: Value = serde_json::from_str(&ptr_server::http::docs::spec_json()).unwrap();
    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(path, _)| path.starts_with("/admin/v1/"))
        .flat_map(|(path, item)| {
            METHODS
                .iter()
                .filter(|m| item.get(m.as_str().to_lowercase()).is_some())
                .map(|m| (m.to_string(), path.clone()))
        })
        .collect();

    let dir = tempfile::tempdir().unwrap();
    let (app, _) = admin_app(FakeEngine::new(FAKE, "ok"), dir.path()).await;
    let mut served = BTreeSet::new();
    for path in ptr_server::http::admin::paths() {
        let path = format!("/admin/v1{path}");
        for method in &METHODS {
            if routed(&app, method, &path).await {
                served.insert((method.to_string(), path.clone()));
            }
        }
    }
    assert!(served.len() >= 32, "the probe finds routes: {served:?}");
    let undocumented: Vec<_> = served.difference(&documented).collect();
    let unrouted: Vec<_> = documented.difference(&served).collect();
    assert!(
        undocumented.is_empty() && unrouted.is_empty(),
        "served but not in the OpenAPI document: {undocumented:?}; documented but not served: {unrouted:?}"
    );
}
