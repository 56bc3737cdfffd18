//! [`LocalApi`]: this server's own `/v1` API, called in process. An eval job's systems and a
//! dataset job's local roles send their requests through the same router as a client on the
//! network — API keys, admission (`--max-concurrent`), validation, metrics — without a socket or
//! a port, so a job is counted and limited like any other caller.

use std::sync::{Arc, OnceLock};

use axum::body::Body;
use tower::ServiceExt;

use super::ClientError;
use crate::wire::ChatCompletionRequest;

/// The path requests go to, and the name errors give them.
const PATH: &str = "/v1/chat/completions";
pub(super) const URL: &str = "local:/v1/chat/completions";

/// A handle to the `/v1` router, set once it is built (the jobs that use it are created
/// before it); cheap to clone.
#[derive(Clone, Default)]
pub struct LocalApi(Arc<OnceLock<Bound>>);

struct Bound {
    router: axum::Router,
    /// The runtime that serves the router: requests run there, whichever runtime sends them.
    runtime: tokio::runtime::Handle,
}

impl std::fmt::Debug for LocalApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = if self.0.get().is_some() {
            "bound"
        } else {
            "unbound"
        };
        write!(f, "LocalApi({state})")
    }
}

impl LocalApi {
    /// Binds the handle to the `/v1` router, served on the current runtime. A second call is
    /// ignored.
    pub fn bind(&self, router: axum::Router) {
        let _ = self.0.set(Bound {
            router,
            runtime: tokio::runtime::Handle::current(),
        });
    }

    /// Whether the router is bound (the server is up).
    pub fn is_bound(&self) -> bool {
        self.0.get().is_some()
    }

    /// Sends `request` through the router, as a client would (`Bearer api_key`).
    pub(super) async fn send(
        &self,
        request: &ChatCompletionRequest,
        api_key: Option<&str>,
    ) -> Result<reqwest::Response, ClientError> {
        let bound = self.0.get().ok_or_else(|| ClientError::Local {
            message: "this server's API is not up yet".into(),
        })?;
        let body = serde_json::to_vec(request).expect("requests serialise: this is a bug");
        let mut builder = axum::http::Request::post(PATH)
            .header(axum::http::header::CONTENT_TYPE, "application/json");
        if let Some(key) = api_key {
            builder = builder.header(axum::http::header::AUTHORIZATION, format!("Bearer {key}"));
        }
        let http = builder
            .body(Body::from(body))
            .expect("a request with these headers builds: this is a bug");
        let call = bound.router.clone().oneshot(http);
        let response = bound
            .runtime
            .spawn(call)
            .await
            .map_err(|e| ClientError::Local {
                message: format!("the request's task ended: {e}"),
            })?
            .unwrap_or_else(|never| match never {});
        Ok(reqwest::Response::from(
            response.map(|b| reqwest::Body::wrap_stream(b.into_data_stream())),
        ))
    }
}
