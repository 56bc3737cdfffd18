//! Asks one system for the N rounds of one item, over HTTP (or in process, for this server's own
//! models in an eval job).
//!
//! Client-side rounds ([`RoundsMode::Client`]) send round r as a plain chat completion whose
//! messages are [`layout::round_messages`] of the question and the r−1 earlier answers: exactly
//! the conversation ptr-server's own round loop builds, so any OpenAI-compatible server is
//! measured the same way. Server-side rounds ([`RoundsMode::Server`]) send one request with the
//! `refinement` extension and read every round from the response.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::Value;

use super::{RoundsMode, SystemSpec};
use crate::client::{ClientOptions, Completion, Endpoint};
use crate::engine::{ChatMessage, Role};
use crate::refine::layout;
use crate::wire::{ChatCompletionRequest, RefinementParams};

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
#[derive(Debug, Clone, serde::Serialize)]
pub struct Decoding {
    /// Refinement rounds per item (1 = plain answers).
    pub rounds: u32,
    /// `max_tokens` of each round.
    pub max_tokens: u32,
    /// 0 = greedy.
    pub temperature: f64,
    /// The user turn that asks for another round.
    pub instruction: String,
}

/// An HTTP client for every system of a run.
pub struct Client {
    http: crate::client::Client,
}

impl Client {
    pub fn new() -> anyhow::Result<Self> {
        let http = crate::client::Client::new(ClientOptions {
            connect_timeout: Some(Duration::from_secs(10)),
            timeout: Some(REQUEST_TIMEOUT),
            // An item waits for a slot behind other traffic (a server at its
            // `--max-concurrent`, its own included) instead of failing.
            retry_busy: Some(REQUEST_TIMEOUT),
            ..ClientOptions::default()
        })?;
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
            let reply = self
                .post(system, &body(system, &messages, decoding))
                .await?;
            let content = reply.content().with_context(|| {
                format!("round {round}: the response has no `choices[0].message.content`")
            })?;
            answers.push(RoundAnswer {
                content: content.to_string(),
                finish_reason: reply.finish_reason().map(String::from),
                completion_tokens: reply.completion_tokens(),
                elapsed_ms: start.elapsed().as_millis() as u64,
                messages,
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
        let request = ChatCompletionRequest {
            refinement: Some(RefinementParams {
                rounds: Some(decoding.rounds.into()),
                instruction: Some(decoding.instruction.clone()),
                early_stop: Some(false),
                ..RefinementParams::default()
            }),
            ..body(system, base, decoding)
        };
        let report =
            self.post(system, &request).await?.refinement.context(
                "the response has no `refinement.rounds`: is the endpoint a ptr-server?",
            )?;
        if report.rounds.len() != decoding.rounds as usize {
            bail!(
                "the server ran {} of {} rounds (stop_reason {})",
                report.rounds.len(),
                decoding.rounds,
                report.stop_reason
            );
        }
        let mut answers: Vec<RoundAnswer> = Vec::new();
        for r in report.rounds {
            let earlier: Vec<&str> = answers.iter().map(|a| a.content.as_str()).collect();
            answers.push(RoundAnswer {
                messages: layout::round_messages(base, &earlier, &decoding.instruction),
                content: r.content,
                finish_reason: Some(r.finish_reason),
                completion_tokens: Some(r.completion_tokens.into()),
                elapsed_ms: r.elapsed_ms,
            });
        }
        Ok(answers)
    }

    async fn post(
        &self,
        system: &SystemSpec,
        request: &ChatCompletionRequest,
    ) -> anyhow::Result<Completion> {
        let key = system.api_key.clone();
        let endpoint = match &system.local {
            Some(api) => Endpoint::local(api.clone(), key),
            None => Endpoint::server(&system.endpoint, key),
        };
        Ok(self.http.complete(&endpoint, request).await?)
    }
}

/// A plain, non-streaming chat-completions body.
fn body(
    system: &SystemSpec,
    messages: &[ChatMessage],
    decoding: &Decoding,
) -> ChatCompletionRequest {
    ChatCompletionRequest {
        max_tokens: Some(decoding.max_tokens.into()),
        temperature: Some(decoding.temperature),
        stream: Some(false),
        ..crate::client::request(&system.model, messages)
    }
}

/// Messages as OpenAI JSON, as `items.jsonl` records them.
pub fn wire_messages(messages: &[ChatMessage]) -> Value {
    serde_json::to_value(crate::client::wire_messages(messages))
        .expect("messages serialize to JSON: this is a bug")
}

/// The user turn of round 1.
pub fn question(prompt: &str) -> Vec<ChatMessage> {
    vec![ChatMessage::new(Role::User, prompt)]
}
