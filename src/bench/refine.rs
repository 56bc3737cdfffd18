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

use anyhow::{bail, Context};
use serde_json::{json, Value};

use super::client::Target;
use crate::engine::{ChatMessage, Role};
use crate::refine::layout;

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

fn client() -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .build()
        .context("building the HTTP client")
}

async fn post(client: &reqwest::Client, base: &str, body: &Value) -> anyhow::Result<(Value, f64)> {
    let start = Instant::now();
    let res = client
        .post(format!(
            "{}/v1/chat/completions",
            base.trim_end_matches('/')
        ))
        .json(body)
        .send()
        .await?;
    let status = res.status();
    let v: Value = res.json().await?;
    if !status.is_success() {
        bail!("{status}: {v}");
    }
    Ok((v, start.elapsed().as_secs_f64()))
}

fn body(args: &BenchRefineSpec, messages: &Value, rounds: u32) -> Value {
    json!({
        "model": args.model, "messages": messages, "temperature": 0,
        "max_tokens": args.max_tokens, "refinement": {"rounds": rounds, "early_stop": false}
    })
}

/// The conversation the server sends in round `answers.len() + 1`, laid out as the server does.
fn round_messages(args: &BenchRefineSpec, answers: &[String]) -> Value {
    let base = [ChatMessage::new(Role::User, args.prompt.clone())];
    let earlier: Vec<&str> = answers.iter().map(String::as_str).collect();
    let messages = layout::round_messages(&base, &earlier, &args.instruction);
    Value::Array(
        messages
            .iter()
            .map(|m| json!({"role": m.role.as_str(), "content": m.content}))
            .collect(),
    )
}

fn rounds_of(v: &Value) -> anyhow::Result<Vec<Value>> {
    v["refinement"]["rounds"]
        .as_array()
        .cloned()
        .context("the response has no `refinement.rounds`")
}

/// Runs the three measurements and prints them.
pub async fn run(args: BenchRefineSpec) -> anyhow::Result<()> {
    let client = client()?;
    let first = round_messages(&args, &[]);
    let (warm, warm_wall) = post(&client, &args.url, &body(&args, &first, args.rounds)).await?;
    let rounds = rounds_of(&warm)?;
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
        cumulative += r["elapsed_ms"].as_f64().unwrap_or(0.0) / 1000.0;
        println!(
            "{:>5}  {:>10}  {:>9}  {:>7}  {:>8}  {:>12.2}",
            r["round"],
            r["prompt_tokens"],
            r["completion_tokens"],
            r["ttft_ms"],
            r["elapsed_ms"],
            cumulative
        );
    }
    println!("request wall time: {warm_wall:.2} s");

    let answers: Vec<String> = rounds
        .iter()
        .filter_map(|r| r["content"].as_str().map(str::to_string))
        .collect();
    if answers.len() >= 2 {
        let cold_body = json!({
            "model": args.model, "messages": round_messages(&args, &answers[..1]), "temperature": 0,
            "max_tokens": 1, "stream": true, "stream_options": {"include_usage": true}
        });
        let target = Target {
            client: client.clone(),
            endpoint: format!(
                "{}/v1/chat/completions",
                args.cold_url.trim_end_matches('/')
            ),
            api_key: None,
            stream: true,
        };
        let cold = target.send(&cold_body).await?;
        println!("\n2. Round-2 time to first token");
        println!(
            "reused prefix (round 2 above):         {} ms",
            rounds[1]["ttft_ms"]
        );
        println!(
            "cold prefill of the same prompt:       {:.0} ms  ({} prompt tokens)",
            cold.ttft.unwrap_or(f64::NAN) * 1000.0,
            rounds[1]["prompt_tokens"]
        );
    }

    let (server_loop, server_wall) =
        post(&client, &args.cold_url, &body(&args, &first, args.rounds)).await?;
    let server_rounds = rounds_of(&server_loop)?;
    let mut answers = Vec::new();
    let mut client_rounds = Vec::new();
    let start = Instant::now();
    for _ in 0..server_rounds.len() {
        let (v, _) = post(
            &client,
            &args.cold_url,
            &body(&args, &round_messages(&args, &answers), 1),
        )
        .await?;
        answers.push(
            v["choices"][0]["message"]["content"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        );
        client_rounds.extend(rounds_of(&v)?);
    }
    let client_wall = start.elapsed().as_secs_f64();
    println!(
        "\n3. Loop overhead on {} (no reuse on either side)",
        args.cold_url
    );
    println!("round  server: prompt_tok  compl_tok  ttft_ms  round_ms   client: prompt_tok  compl_tok  ttft_ms  round_ms  same");
    let mut same = server_rounds.len() == client_rounds.len();
    for (s, c) in server_rounds.iter().zip(&client_rounds) {
        same &= s["content"] == c["content"];
        println!(
            "{:>5}  {:>18}  {:>9}  {:>7}  {:>8}  {:>18}  {:>9}  {:>7}  {:>8}  {}",
            s["round"],
            s["prompt_tokens"],
            s["completion_tokens"],
            s["ttft_ms"],
            s["elapsed_ms"],
            c["prompt_tokens"],
            c["completion_tokens"],
            c["ttft_ms"],
            c["elapsed_ms"],
            s["content"] == c["content"]
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
