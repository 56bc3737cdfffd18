//! [`Generator`]: one role's model, served by this server (through the [`Engine`] trait) or an
//! OpenAI-compatible endpoint anywhere (a real deployment points the strong role at a large
//! model on a vLLM cluster). Both answer a conversation with a text and its token counts.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;

use crate::client::{Client, ClientOptions, Endpoint};
use crate::engine::{ChatMessage, Engine, EngineEvent, GenerationRequest, Sampling};
use crate::wire::ChatCompletionRequest;

/// A finished generation.
#[derive(Debug, Clone, PartialEq)]
pub struct Generated {
    pub text: String,
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
}

/// A model to generate with.
#[derive(Clone)]
pub enum Generator {
    Local(Arc<dyn Engine>),
    Remote {
        client: Client,
        endpoint: Endpoint,
        model: String,
    },
}

impl Generator {
    /// A remote endpoint (`base_url` ends before `/chat/completions`).
    pub fn remote(base_url: &str, model: &str, api_key: Option<String>) -> Self {
        let client = Client::new(ClientOptions {
            timeout: Some(Duration::from_secs(600)),
            retry_busy: Some(Duration::from_secs(600)),
            ..ClientOptions::default()
        })
        .expect("an HTTP client with a timeout builds: this is a bug");
        Self::Remote {
            client,
            endpoint: Endpoint::api(base_url, api_key),
            model: model.to_string(),
        }
    }

    /// Generates one answer to `messages`.
    pub async fn generate(
        &self,
        messages: &[ChatMessage],
        sampling: &Sampling,
    ) -> Result<Generated, String> {
        match self {
            Self::Local(engine) => local(engine.as_ref(), messages, sampling).await,
            Self::Remote {
                client,
                endpoint,
                model,
            } => remote(client, endpoint, model, messages, sampling).await,
        }
    }
}

async fn local(
    engine: &dyn Engine,
    messages: &[ChatMessage],
    sampling: &Sampling,
) -> Result<Generated, String> {
    let request = GenerationRequest {
        messages: messages.to_vec(),
        sampling: sampling.clone(),
        will_continue: false,
        continues: None,
    };
    let mut events = engine.generate(request).await.map_err(|e| e.to_string())?;
    let mut text = String::new();
    while let Some(event) = events.next().await {
        match event.map_err(|e| e.to_string())? {
            EngineEvent::Delta(t) => text.push_str(&t),
            EngineEvent::Finished(f) => {
                return Ok(Generated {
                    text,
                    prompt_tokens: f.prompt_tokens,
                    completion_tokens: f.completion_tokens,
                })
            }
        }
    }
    Err("the generation ended without a finish".into())
}

async fn remote(
    client: &Client,
    endpoint: &Endpoint,
    model: &str,
    messages: &[ChatMessage],
    sampling: &Sampling,
) -> Result<Generated, String> {
    let request = ChatCompletionRequest {
        temperature: Some(sampling.temperature),
        top_p: sampling.top_p,
        max_tokens: Some(sampling.max_tokens.into()),
        stream: Some(false),
        ..crate::client::request(model, messages)
    };
    let reply = client
        .complete(endpoint, &request)
        .await
        .map_err(|e| e.to_string())?;
    let text = reply.content().ok_or_else(|| {
        format!(
            "{}: no choices[0].message.content in the answer",
            endpoint.url()
        )
    })?;
    let count = |n: Option<u64>| n.unwrap_or(0) as u32;
    Ok(Generated {
        text: text.to_string(),
        prompt_tokens: count(reply.usage.and_then(|u| u.prompt_tokens)),
        completion_tokens: count(reply.completion_tokens()),
    })
}
