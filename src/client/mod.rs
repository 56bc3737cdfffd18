//! The one client for OpenAI-compatible servers (ptr-server, vLLM, llama.cpp, …), used by
//! `bench`, `bench-refine`, `eval` and the dataset job's remote roles.
//!
//! Requests are the server's own [`crate::wire::ChatCompletionRequest`] (what ptr-server parses is
//! what is sent); answers are read into the lenient views of [`reply`]; streams are read with the
//! one SSE parser, [`sse`]. Any non-2xx status, transport failure, unparsable body or `{"error": …}`
//! payload is a [`ClientError`]; what an error body says is found in [`error`].

pub mod error;
mod local;
pub mod reply;
pub mod sse;
#[cfg(test)]
mod tests;

use std::time::Duration;

use crate::engine::ChatMessage;
use crate::wire::{ChatCompletionRequest, InputContent, InputMessage};
pub use error::ClientError;
pub use local::LocalApi;
pub use reply::{Chunk, Completion};
use sse::{SseEvent, SseParser};

/// Where requests go: the chat-completions URL of one server, or this server's own API in
/// process ([`LocalApi`]), and the key.
#[derive(Debug, Clone)]
pub struct Endpoint {
    url: String,
    api_key: Option<String>,
    local: Option<LocalApi>,
}

impl Endpoint {
    /// A server by its base URL (`http://host:8080`): requests go to `/v1/chat/completions`.
    pub fn server(base: &str, api_key: Option<String>) -> Self {
        Self::api(&format!("{}/v1", base.trim_end_matches('/')), api_key)
    }

    /// An API root that names its version (`http://host:8000/v1`): requests go to
    /// `/chat/completions` under it.
    pub fn api(root: &str, api_key: Option<String>) -> Self {
        Self {
            url: format!("{}/chat/completions", root.trim_end_matches('/')),
            api_key,
            local: None,
        }
    }

    /// This server's own API, called in process with `api_key` (one it accepts, if it asks for
    /// one).
    pub fn local(api: LocalApi, api_key: Option<String>) -> Self {
        Self {
            url: local::URL.to_string(),
            api_key,
            local: Some(api),
        }
    }

    /// The chat-completions URL.
    pub fn url(&self) -> &str {
        &self.url
    }
}

/// How the connection pool behaves; `None` leaves reqwest's default (no limit).
#[derive(Debug, Clone, Copy, Default)]
pub struct ClientOptions {
    /// Longest a connection may take to open.
    pub connect_timeout: Option<Duration>,
    /// Longest a whole request may take, body included.
    pub timeout: Option<Duration>,
    /// Idle connections kept per host.
    pub idle_per_host: Option<usize>,
    /// Retry a request the server is too busy for (429, 503) for up to this long, waiting as
    /// its `Retry-After` says or 1 s doubling to 30 s: background work (jobs) then waits for a
    /// slot behind interactive traffic instead of failing. `None`: a busy answer is an error.
    pub retry_busy: Option<Duration>,
}

/// The first wait before retrying a busy answer, and the longest.
const BUSY_BACKOFF: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(30));

/// A connection pool for OpenAI-compatible servers; cheap to clone.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    retry_busy: Option<Duration>,
}

impl Client {
    /// A client with these options.
    pub fn new(options: ClientOptions) -> anyhow::Result<Self> {
        let retry_busy = options.retry_busy;
        let mut http = reqwest::Client::builder();
        if let Some(t) = options.connect_timeout {
            http = http.connect_timeout(t);
        }
        if let Some(t) = options.timeout {
            http = http.timeout(t);
        }
        if let Some(n) = options.idle_per_host {
            http = http.pool_max_idle_per_host(n);
        }
        let http = http
            .build()
            .map_err(|e| anyhow::anyhow!("building the HTTP client: {e}"))?;
        Ok(Self { http, retry_busy })
    }

    /// Sends `request` and reads the whole answer (for `stream` left off or false).
    pub async fn complete(
        &self,
        to: &Endpoint,
        request: &ChatCompletionRequest,
    ) -> Result<Completion, ClientError> {
        let response = self.send(to, request).await?;
        let transport = |source| ClientError::Transport {
            url: to.url.clone(),
            source,
        };
        let body = response.bytes().await.map_err(transport)?;
        let completion: Completion =
            serde_json::from_slice(&body).map_err(|e| ClientError::Json {
                url: to.url.clone(),
                reason: e.to_string(),
                body: error::truncate(&String::from_utf8_lossy(&body)),
            })?;
        match error::error_message(completion.error.as_ref()) {
            Some(message) => Err(ClientError::Payload {
                url: to.url.clone(),
                message,
            }),
            None => Ok(completion),
        }
    }

    /// Sends `request` (with `stream: true`) and returns its event stream once the status is in.
    pub async fn stream(
        &self,
        to: &Endpoint,
        request: &ChatCompletionRequest,
    ) -> Result<EventStream, ClientError> {
        Ok(EventStream {
            url: to.url.clone(),
            response: self.send(to, request).await?,
            parser: SseParser::new(),
        })
    }

    /// Posts `request`; a non-2xx status is an error carrying what the body says. A busy answer
    /// is retried within `retry_busy`.
    async fn send(
        &self,
        to: &Endpoint,
        request: &ChatCompletionRequest,
    ) -> Result<reqwest::Response, ClientError> {
        let started = std::time::Instant::now();
        let mut backoff = BUSY_BACKOFF.0;
        loop {
            let response = self.send_once(to, request).await?;
            let status = response.status();
            let busy = status == reqwest::StatusCode::TOO_MANY_REQUESTS
                || status == reqwest::StatusCode::SERVICE_UNAVAILABLE;
            let wait = retry_after(&response)
                .unwrap_or(backoff)
                .min(BUSY_BACKOFF.1);
            let retry = busy
                && self
                    .retry_busy
                    .is_some_and(|limit| started.elapsed() + wait <= limit);
            if !retry {
                return checked(to, response).await;
            }
            if status == reqwest::StatusCode::SERVICE_UNAVAILABLE
                && retry_after(&response).is_none()
            {
                // ptr-server marks the 503s worth waiting for (a model loading) with Retry-After;
                // `model_unavailable` says the model cannot answer (it failed to load, or its
                // engine stopped), which no wait cures: the caller hears it at once.
                let body = response.text().await.unwrap_or_default();
                if error::error_code(&body).as_deref() == Some("model_unavailable") {
                    return Err(ClientError::Status {
                        url: to.url.clone(),
                        status,
                        message: error::describe_error_body(&body),
                    });
                }
            }
            tracing::debug!(url = %to.url, %status, ?wait, "server busy; retrying");
            tokio::time::sleep(wait).await;
            backoff = (backoff * 2).min(BUSY_BACKOFF.1);
        }
    }

    async fn send_once(
        &self,
        to: &Endpoint,
        request: &ChatCompletionRequest,
    ) -> Result<reqwest::Response, ClientError> {
        if let Some(api) = &to.local {
            return api.send(request, to.api_key.as_deref()).await;
        }
        let mut post = self.http.post(&to.url).json(request);
        if let Some(key) = &to.api_key {
            post = post.bearer_auth(key);
        }
        post.send().await.map_err(|source| ClientError::Transport {
            url: to.url.clone(),
            source,
        })
    }
}

/// `response` if its status is a success, else an error carrying what the body says.
async fn checked(
    to: &Endpoint,
    response: reqwest::Response,
) -> Result<reqwest::Response, ClientError> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let body = response.text().await.unwrap_or_default();
    Err(ClientError::Status {
        url: to.url.clone(),
        status,
        message: error::describe_error_body(&body),
    })
}

/// A `Retry-After` header in seconds.
fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    let value = response.headers().get(reqwest::header::RETRY_AFTER)?;
    let seconds: u64 = value.to_str().ok()?.trim().parse().ok()?;
    Some(Duration::from_secs(seconds))
}

/// The events of one streamed answer, read as they arrive.
#[derive(Debug)]
pub struct EventStream {
    url: String,
    response: reqwest::Response,
    parser: SseParser,
}

impl EventStream {
    /// The events completed by the next network read (often none, sometimes several); `None`
    /// once the body has ended. Events of one read arrived together: a caller timing them gives
    /// them one timestamp.
    pub async fn next_read(&mut self) -> Option<Result<Vec<SseEvent>, ClientError>> {
        match self.response.chunk().await {
            Ok(Some(bytes)) => Some(Ok(self.parser.push(&bytes))),
            Ok(None) => None,
            Err(source) => Some(Err(ClientError::Transport {
                url: self.url.clone(),
                source,
            })),
        }
    }

    /// What is left once the body has ended: a last event without its closing blank line.
    pub fn finish(&mut self) -> Vec<SseEvent> {
        self.parser.finish()
    }

    /// Reads the rest of the body in the background for up to `limit`. A body dropped early
    /// closes its connection; read to its end, the connection goes back to the pool.
    pub fn drain(mut self, limit: Duration) {
        tokio::spawn(tokio::time::timeout(limit, async move {
            while let Ok(Some(_)) = self.response.chunk().await {}
        }));
    }
}

/// A request for `model` on `messages`; the caller sets the rest.
pub fn request(model: &str, messages: &[ChatMessage]) -> ChatCompletionRequest {
    ChatCompletionRequest {
        model: Some(model.to_string()),
        messages: wire_messages(messages),
        ..ChatCompletionRequest::default()
    }
}

/// Messages as the wire carries them.
pub fn wire_messages(messages: &[ChatMessage]) -> Vec<InputMessage> {
    messages
        .iter()
        .map(|m| InputMessage {
            role: m.role.as_str().to_string(),
            content: Some(InputContent::Text(m.content.clone())),
        })
        .collect()
}
