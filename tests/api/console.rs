//! The web console's routes (the page itself is tested in a browser: `tests/browser/run.py`):
//! its assets come from the binary, are public and carry a same-origin content policy, while the
//! API keeps its auth — a server with API keys and an admin token still answers 401 to `/v1` and
//! `/admin/v1` without them.

use axum::body::Body;
use axum::http::{header, Request, StatusCode};

use crate::admin::admin_app;
use crate::common::*;

fn get(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).unwrap()
}

#[tokio::test]
async fn the_console_is_public_and_the_api_keeps_its_auth() {
    let dir = tempfile::tempdir().unwrap();
    let (app, _) = admin_app(FakeEngine::new(FAKE, "x"), dir.path()).await;
    for path in ["/console", "/console/"] {
        let (status, headers, page) = send(&app, get(path)).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
        let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(csp.contains("default-src 'self'") && csp.contains("connect-src 'self'"));
        assert!(page.contains("/console/app.js") && !page.contains("https://"));
    }
    let (status, headers, script) = send(&app, get("/console/app.js")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));
    assert!(script.contains("sessionStorage") || script.contains("import"));
    let (status, _, body) = send(&app, get("/console/secrets.json")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.contains("\"error\""), "{body}");
    // What the page reads stays behind the same auth as before.
    for path in [
        "/v1/models",
        "/admin/v1/jobs",
        "/admin/v1/models",
        "/admin/v1/files",
    ] {
        let (status, _, _) = send(&app, get(path)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
    }
}
