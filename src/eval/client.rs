//! Asks one system for the N rounds of one item, over HTTP.
//!
//! Client-side rounds ([`RoundsMode::Client`]) send round r as a plain chat completion whose
//! messages are [`layout::round_messages`] of the question and the r−1 earlier answers: exactly
//! the conversation ptr-server's own round loop builds, so any OpenAI-compatible server is
//! measured the same way. Server-side rounds ([`RoundsMode::Server`]) send one request with the
//! `refinement` extension and read every round from the response.

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use serde_json::{json, Value};

use super::{RoundsMode, SystemSpec};
use crate::bench::response::{describe_error_body, error_message};
use crate::engine::{ChatMessage, Role};
use crate::refine::layout;

/// A round can take minutes on a slow CPU model; a server that answers nothing for this long is
/// considered gone.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// One round's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct RoundAnswer {
    /// The messages the round was generated from.
    pub messages: Vec<ChatMessage>,
    pub content: String,
    pub finish_reason: Option<String>,
    pub completion_tokens: Option<u64>,
    pub elapsed_ms: u64,
}

/// The decoding settings shared by every round.
#[derive(Debug, Clone)]
pub struct Decoding {
    pub rounds: u32,
    pub max_tokens: u32,
    pub temperature: f64,
    pub instruction: String,
}

/// An HTTP client for every system of a run.
pub struct Client {
    http: reqwest::Client,
}

impl Client {
    pub fn new() -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(REQUEST_TIMEOUT)
            .build()
            .context("building the HTTP client")?;
        Ok(Self { http })
    }

    /// The rounds of the conversation `base` on `system`.
    pub async fn rounds(
        &self,
        system: &SystemSpec,
        base: &[ChatMessage],
        decoding: &Decoding,
    ) -> anyhow::Result<Vec<RoundAnswer>> {
        match system.rounds_mode {
            RoundsMode::Client => self.client_rounds(system, base, decoding).await,
            RoundsMode::Server => self.server_rounds(system, base, decoding).await,
        }
    }

    async fn client_rounds(
        &self,
        system: &SystemSpec,
        base: &[ChatMessage],
        decoding: &Decoding,
    ) -> anyhow::Result<Vec<RoundAnswer>> {
        let mut answers: Vec<RoundAnswer> = Vec::new();
        for round in 1..=decoding.rounds {
            let earlier: Vec<&str> = answers.iter().map(|a| a.content.as_str()).collect();
            let messages = layout::round_messages(base, &earlier, &decoding.instruction);
            let start = Instant::now();
            let v = self.post(system, body(system, &messages, decoding)).await?;
            let choice = &v["choices"][0];
            let content = choice["message"]["content"].as_str().with_context(|| {
                format!("round {round}: the response has no `choices[0].message.content`")
            })?;
            answers.push(RoundAnswer {
                messages,
                content: content.to_string(),
                finish_reason: choice["finish_reason"].as_str().map(String::from),
                completion_tokens: v["usage"]["completion_tokens"].as_u64(),
                elapsed_ms: start.elapsed().as_millis() as u64,
            });
        }
        Ok(answers)
    }

    async fn server_rounds(
        &self,
        system: &SystemSpec,
        base: &[ChatMessage],
        decoding: &Decoding,
    ) -> anyhow::Result<Vec<RoundAnswer>> {
        let mut request = body(system, base, decoding);
        request["refinement"] = json!({
            "rounds": decoding.rounds, "instruction": decoding.instruction, "early_stop": false
        });
        let v = self.post(system, request).await?;
        let rounds = v["refinement"]["rounds"]
            .as_array()
            .context("the response has no `refinement.rounds`: is the endpoint a ptr-server?")?;
        if rounds.len() != decoding.rounds as usize {
            bail!(
                "the server ran {} of {} rounds (stop_reason {})",
                rounds.len(),
                decoding.rounds,
                v["refinement"]["stop_reason"]
            );
        }
        let mut answers: Vec<RoundAnswer> = Vec::new();
        for r in rounds {
            let earlier: Vec<&str> = answers.iter().map(|a| a.content.as_str()).collect();
            answers.push(RoundAnswer {
                messages: layout::round_messages(base, &earlier, &decoding.instruction),
                content: r["content"]
                    .as_str()
                    .context("a round has no `content`")?
                    .to_string(),
                finish_reason: r["finish_reason"].as_str().map(String::from),
                completion_tokens: r["completion_tokens"].as_u64(),
                elapsed_ms: r["elapsed_ms"].as_u64().unwrap_or(0),
            });
        }
        Ok(answers)
    }

    async fn post(&self, system: &SystemSpec, body: Value) -> anyhow::Result<Value> {
        let url = format!(
            "{}/v1/chat/completions",
            system.endpoint.trim_end_matches('/')
        );
        let mut request = self.http.post(&url).json(&body);
        if let Some(key) = &system.api_key {
            request = request.bearer_auth(key);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("POST {url}"))?;
        let status = response.status();
        let text = response.text().await.context("reading the response body")?;
        if !status.is_success() {
            bail!("HTTP {status} from {url}: {}", describe_error_body(&text));
        }
        let v: Value =
            serde_json::from_str(&text).map_err(|e| anyhow!("invalid JSON from {url}: {e}"))?;
        if let Some(message) = error_message(&v) {
            bail!("error from {url}: {message}");
        }
        Ok(v)
    }
}

/// A plain, non-streaming chat-completions body.
fn body(system: &SystemSpec, messages: &[ChatMessage], decoding: &Decoding) -> Value {
    json!({
        "model": system.model,
        "messages": wire_messages(messages),
        "max_tokens": decoding.max_tokens,
        "temperature": decoding.temperature,
        "stream": false,
    })
}

/// Messages as OpenAI JSON.
pub fn wire_messages(messages: &[ChatMessage]) -> Value {
    messages
        .iter()
        .map(|m| json!({"role": m.role.as_str(), "content": m.content}))
        .collect()
}

/// The user turn of round 1.
pub fn question(prompt: &str) -> Vec<ChatMessage> {
    vec![ChatMessage::new(Role::User, prompt)]
}
