//! `ptr-server bench-refine`: what refinement costs on a running ptr-server.
//!
//! 1. One greedy request of `--rounds` rounds on `--url`: the cumulative time after each round and
//!    each round's time to first token (rounds ≥ 2 reuse the previous round's KV when the server's
//!    prefix cache is on).
//! 2. The round-2 prompt rebuilt by the client and sent as a plain request to `--cold-url` (a
//!    server started with `--prefix-cache 0`): a cold prefill of the same prompt, for comparison.
//! 3. Loop overhead, on `--cold-url` where nothing is reused and both paths do identical work: the
//!    server's N-round request against the same N requests sent one by one by this client.

use std::time::{Duration, Instant};

use anyhow::Context;

use super::target::Target;
use crate::client::{Client, ClientOptions, Completion, Endpoint};
use crate::engine::{ChatMessage, Role};
use crate::refine::layout;
use crate::wire::{ChatCompletionRequest, RefinementParams, RoundReport, StreamOptions};

/// What `bench-refine` measures: the servers, the model and the request.
#[derive(Debug, Clone)]
pub struct BenchRefineSpec {
    /// ptr-server to measure (prefix cache on, the default)
    pub url: String,
    /// ptr-server started with `--prefix-cache 0`, for cold prefills and the loop overhead
    pub cold_url: String,
    /// The `model` of each request
    pub model: String,
    /// Rounds of the refinement
    pub rounds: u32,
    /// `max_tokens` of each round
    pub max_tokens: u32,
    /// The question
    pub prompt: String,
    /// The refinement instruction (must match the server's)
    pub instruction: String,
}

async fn post(
    client: &Client,
    base: &str,
    request: &ChatCompletionRequest,
) -> anyhow::Result<(Completion, f64)> {
    let start = Instant::now();
    let completion = client
        .complete(&Endpoint::server(base, None), request)
        .await?;
    Ok((completion, start.elapsed().as_secs_f64()))
}

/// A greedy request for `rounds` rounds of `messages`, early stop off.
fn body(args: &BenchRefineSpec, messages: &[ChatMessage], rounds: u32) -> ChatCompletionRequest {
    ChatCompletionRequest {
        temperature: Some(0.0),
        max_tokens: Some(args.max_tokens.into()),
        refinement: Some(RefinementParams {
            rounds: Some(rounds.into()),
            early_stop: Some(false),
            ..RefinementParams::default()
        }),
        ..crate::client::request(&args.model, messages)
    }
}

/// The conversation the server sends in round `answers.len() + 1`, laid out as the server does.
fn round_messages(args: &BenchRefineSpec, answers: &[String]) -> Vec<ChatMessage> {
    let base = [ChatMessage::new(Role::User, args.prompt.clone())];
    let earlier: Vec<&str> = answers.iter().map(String::as_str).collect();
    layout::round_messages(&base, &earlier, &args.instruction)
}

fn rounds_of(completion: Completion) -> anyhow::Result<Vec<RoundReport>> {
    completion
        .refinement
        .map(|r| r.rounds)
        .context("the response has no `refinement.rounds`")
}

/// A round's time to first token in ms, `null` where the server gave none.
fn ttft(round: &RoundReport) -> String {
    round
        .ttft_ms
        .map_or_else(|| "null".to_string(), |ms| ms.to_string())
}

/// Runs the three measurements and prints them.
pub async fn run(args: BenchRefineSpec) -> anyhow::Result<()> {
    let client = Client::new(ClientOptions {
        connect_timeout: Some(Duration::from_secs(10)),
        ..ClientOptions::default()
    })?;
    let rounds = reuse(&client, &args).await?;
    cold_round_two(&client, &args, &rounds).await?;
    loop_overhead(&client, &args).await
}

/// 1. One request of every round on `--url` (prefix cache on): each round's tokens and times.
async fn reuse(client: &Client, args: &BenchRefineSpec) -> anyhow::Result<Vec<RoundReport>> {
    let first = round_messages(args, &[]);
    let (warm, warm_wall) = post(client, &args.url, &body(args, &first, args.rounds)).await?;
    let rounds = rounds_of(warm)?;
    println!(
        "ptr-server bench-refine: model={}, {} rounds of max {} tokens, greedy",
        args.model, args.rounds, args.max_tokens
    );
    println!(
        "\n1. One {}-round request on {} (prefix cache on)",
        args.rounds, args.url
    );
    println!("round  prompt_tok  compl_tok  ttft_ms  round_ms  cumulative_s");
    let mut cumulative = 0.0;
    for r in &rounds {
        cumulative += r.elapsed_ms as f64 / 1000.0;
        println!(
            "{:>5}  {:>10}  {:>9}  {:>7}  {:>8}  {:>12.2}",
            r.round,
            r.prompt_tokens,
            r.completion_tokens,
            ttft(r),
            r.elapsed_ms,
            cumulative
        );
    }
    println!("request wall time: {warm_wall:.2} s");
    Ok(rounds)
}

/// 2. Round 2's time to first token with the reused prefix against a cold prefill on
/// `--cold-url` of the same prompt.
async fn cold_round_two(
    client: &Client,
    args: &BenchRefineSpec,
    rounds: &[RoundReport],
) -> anyhow::Result<()> {
    let answers: Vec<String> = rounds.iter().map(|r| r.content.clone()).collect();
    if answers.len() >= 2 {
        let cold_body = ChatCompletionRequest {
            temperature: Some(0.0),
            max_tokens: Some(1),
            stream: Some(true),
            stream_options: Some(StreamOptions {
                include_usage: Some(true),
            }),
            ..crate::client::request(&args.model, &round_messages(args, &answers[..1]))
        };
        let target = Target {
            client: client.clone(),
            endpoint: Endpoint::server(&args.cold_url, None),
            stream: true,
        };
        let cold = target.send(&cold_body).await?;
        println!("\n2. Round-2 time to first token");
        println!(
            "reused prefix (round 2 above):         {} ms",
            ttft(&rounds[1])
        );
        println!(
            "cold prefill of the same prompt:       {:.0} ms  ({} prompt tokens)",
            cold.ttft.unwrap_or(f64::NAN) * 1000.0,
            rounds[1].prompt_tokens
        );
    }

    Ok(())
}

/// 3. The server's round loop (one request) against the same rounds sent one by one by a
/// client, on `--cold-url` (no reuse on either side).
async fn loop_overhead(client: &Client, args: &BenchRefineSpec) -> anyhow::Result<()> {
    let first = round_messages(args, &[]);
    let (server_loop, server_wall) =
        post(client, &args.cold_url, &body(args, &first, args.rounds)).await?;
    let server_rounds = rounds_of(server_loop)?;
    let mut answers = Vec::new();
    let mut client_rounds = Vec::new();
    let start = Instant::now();
    for _ in 0..server_rounds.len() {
        let (reply, _) = post(
            client,
            &args.cold_url,
            &body(args, &round_messages(args, &answers), 1),
        )
        .await?;
        answers.push(reply.content().unwrap_or_default().to_string());
        client_rounds.extend(rounds_of(reply)?);
    }
    let client_wall = start.elapsed().as_secs_f64();
    println!(
        "\n3. Loop overhead on {} (no reuse on either side)",
        args.cold_url
    );
    println!("round  server: prompt_tok  compl_tok  ttft_ms  round_ms   client: prompt_tok  compl_tok  ttft_ms  round_ms  same");
    let mut same = server_rounds.len() == client_rounds.len();
    for (s, c) in server_rounds.iter().zip(&client_rounds) {
        same &= s.content == c.content;
        println!(
            "{:>5}  {:>18}  {:>9}  {:>7}  {:>8}  {:>18}  {:>9}  {:>7}  {:>8}  {}",
            s.round,
            s.prompt_tokens,
            s.completion_tokens,
            ttft(s),
            s.elapsed_ms,
            c.prompt_tokens,
            c.completion_tokens,
            ttft(c),
            c.elapsed_ms,
            s.content == c.content
        );
    }
    println!("server loop, one request:      {server_wall:.2} s");
    println!(
        "client loop, {} requests:       {client_wall:.2} s",
        server_rounds.len()
    );
    println!(
        "overhead of the server loop:   {:+.1} %  (identical answers: {same})",
        (server_wall / client_wall - 1.0) * 100.0
    );
    Ok(())
}
