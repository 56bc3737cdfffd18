//! [`Generator`]: one role's model, served by this server (its own `/v1` API in process,
//! [`LocalApi`]) or by an OpenAI-compatible endpoint anywhere (a real deployment points the
//! strong role at a large model on a vLLM cluster): one client, one request, a text and its
//! token counts either way.

use std::time::Duration;

use crate::client::{Client, ClientOptions, Endpoint, LocalApi};
use crate::engine::{ChatMessage, Sampling};
use crate::wire::{ChatCompletionRequest, RefinementParams};

/// A finished generation.
#[derive(Debug, Clone, PartialEq)]
pub struct Generated {
    pub text: String,
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
}

/// A model to generate with: one of this server's (its own `/v1` API in process, admitted and
/// counted like any request) or one behind an OpenAI-compatible endpoint.
#[derive(Clone)]
pub struct Generator {
    client: Client,
    endpoint: Endpoint,
    model: String,
    /// Ask for one round explicitly: this server's models may refine by default (a PTR-tuned
    /// one); another server would not know the extension.
    one_round: bool,
}

impl Generator {
    /// A remote endpoint (`base_url` ends before `/chat/completions`).
    pub fn remote(base_url: &str, model: &str, api_key: Option<String>) -> Self {
        Self::new(Endpoint::api(base_url, api_key), model, false)
    }

    /// One of this server's models, through its own API in process (`api_key`: one it accepts).
    pub fn local(api: LocalApi, model: &str, api_key: Option<String>) -> Self {
        Self::new(Endpoint::local(api, api_key), model, true)
    }

    fn new(endpoint: Endpoint, model: &str, one_round: bool) -> Self {
        let client = Client::new(ClientOptions {
            timeout: Some(Duration::from_secs(600)),
            // A record waits for a slot behind other traffic instead of failing.
            retry_busy: Some(Duration::from_secs(600)),
            ..ClientOptions::default()
        })
        .expect("an HTTP client with a timeout builds: this is a bug");
        Self {
            client,
            endpoint,
            model: model.to_string(),
            one_round,
        }
    }

    /// Generates one answer to `messages`.
    pub async fn generate(
        &self,
        messages: &[ChatMessage],
        sampling: &Sampling,
    ) -> Result<Generated, String> {
        let request = ChatCompletionRequest {
            temperature: Some(sampling.temperature),
            top_p: sampling.top_p,
            max_tokens: Some(sampling.max_tokens.into()),
            stream: Some(false),
            refinement: self.one_round.then(|| RefinementParams {
                rounds: Some(1),
                ..RefinementParams::default()
            }),
            ..crate::client::request(&self.model, messages)
        };
        let reply = self
            .client
            .complete(&self.endpoint, &request)
            .await
            .map_err(|e| e.to_string())?;
        let text = reply.content().ok_or_else(|| {
            format!(
                "{}: no choices[0].message.content in the answer",
                self.endpoint.url()
            )
        })?;
        let count = |n: Option<u64>| n.unwrap_or(0) as u32;
        Ok(Generated {
            text: text.to_string(),
            prompt_tokens: count(reply.usage.and_then(|u| u.prompt_tokens)),
            completion_tokens: count(reply.completion_tokens()),
        })
    }
}
