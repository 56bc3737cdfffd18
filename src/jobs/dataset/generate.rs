//! [`Generator`]: one role's model, served by this server (through the [`Engine`] trait) or an
//! OpenAI-compatible endpoint anywhere (a real deployment points the strong role at a large
//! model on a vLLM cluster). Both answer a conversation with a text and its token counts.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde_json::{json, Value};

use crate::engine::{ChatMessage, Engine, EngineEvent, GenerationRequest, Sampling};

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
        client: reqwest::Client,
        base_url: String,
        model: String,
        api_key: Option<String>,
    },
}

impl Generator {
    /// A remote endpoint (`base_url` ends before `/chat/completions`).
    pub fn remote(base_url: &str, model: &str, api_key: Option<String>) -> Self {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(600))
            .build()
            .expect("an HTTP client with a timeout builds: this is a bug");
        Self::Remote {
            client,
            base_url: base_url.trim_end_matches('/').to_string(),
            model: model.to_string(),
            api_key,
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
                base_url,
                model,
                api_key,
            } => {
                remote(
                    client,
                    base_url,
                    model,
                    api_key.as_deref(),
                    messages,
                    sampling,
                )
                .await
            }
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
    client: &reqwest::Client,
    base_url: &str,
    model: &str,
    api_key: Option<&str>,
    messages: &[ChatMessage],
    sampling: &Sampling,
) -> Result<Generated, String> {
    let messages: Vec<Value> = messages
        .iter()
        .map(|m| json!({"role": m.role.as_str(), "content": m.content}))
        .collect();
    let mut body = json!({
        "model": model, "messages": messages, "temperature": sampling.temperature,
        "max_tokens": sampling.max_tokens, "stream": false,
    });
    if let Some(p) = sampling.top_p {
        body["top_p"] = json!(p);
    }
    let mut request = client
        .post(format!("{base_url}/chat/completions"))
        .json(&body);
    if let Some(key) = api_key {
        request = request.bearer_auth(key);
    }
    let response = request
        .send()
        .await
        .map_err(|e| format!("{base_url}: {e}"))?;
    let status = response.status();
    let v: Value = response
        .json()
        .await
        .map_err(|e| format!("{base_url}: not JSON ({status}): {e}"))?;
    if !status.is_success() {
        let msg = v
            .pointer("/error/message")
            .and_then(Value::as_str)
            .unwrap_or("no message");
        return Err(format!("{base_url} answered {status}: {msg}"));
    }
    let text = v
        .pointer("/choices/0/message/content")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("{base_url}: no choices[0].message.content in the answer"))?;
    let count = |k: &str| {
        v.pointer(&format!("/usage/{k}"))
            .and_then(Value::as_u64)
            .unwrap_or(0) as u32
    };
    Ok(Generated {
        text: text.to_string(),
        prompt_tokens: count("prompt_tokens"),
        completion_tokens: count("completion_tokens"),
    })
}
