//! Refinement end-to-end on the real default model: rounds, streaming split, the native event
//! stream, determinism, stop reasons, and cancellation between rounds.

use serde_json::{json, Value};

use crate::common::*;
use crate::real_chat::{read_then_disconnect, wait_metrics};

const MODEL: &str = "smollm2-135m-instruct";

fn refine(rounds: u32, stream: bool, max_tokens: u32, extra: Value) -> Value {
    let mut refinement = json!({"rounds": rounds});
    for (k, v) in extra.as_object().unwrap() {
        refinement[k] = v.clone();
    }
    json!({
        "model": MODEL, "temperature": 0, "max_tokens": max_tokens, "stream": stream,
        "stream_options": {"include_usage": true},
        "messages": [{"role": "user", "content": "Name three primary colors."}],
        "refinement": refinement
    })
}

async fn post(client: &reqwest::Client, url: &str, body: &Value) -> reqwest::Response {
    let res = send_json(client, url, body).await;
    assert_eq!(res.status(), 200);
    res
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_rounds_non_streaming_and_deterministic() {
    let (server, base, client) = ready_real_server(&[]).await;
    let url = format!("{base}/v1/chat/completions");
    let v: Value = post(&client, &url, &refine(3, false, 40, json!({})))
        .await
        .json()
        .await
        .unwrap();
    let rounds = v["refinement"]["rounds"].as_array().unwrap();
    assert_eq!(rounds.len(), 3, "{v}");
    assert_eq!(v["refinement"]["stop_reason"], "rounds_done");
    assert_eq!(v["choices"][0]["message"]["content"], rounds[2]["content"]);
    let reasoning = v["choices"][0]["message"]["reasoning_content"]
        .as_str()
        .unwrap();
    assert!(reasoning.starts_with("[Round 1]\n") && reasoning.contains("[Round 2]\n"));
    for key in ["prompt_tokens", "completion_tokens"] {
        let sum: u64 = rounds.iter().map(|r| r[key].as_u64().unwrap()).sum();
        assert_eq!(
            v["usage"][key].as_u64(),
            Some(sum),
            "usage.{key} sums the rounds"
        );
    }
    let p: Vec<u64> = rounds
        .iter()
        .map(|r| r["prompt_tokens"].as_u64().unwrap())
        .collect();
    assert!(
        p[0] < p[1] && p[1] < p[2],
        "each round's prompt holds the earlier answers: {p:?}"
    );
    let contents = |v: &Value| -> Vec<String> {
        v["refinement"]["rounds"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["content"].as_str().unwrap().to_string())
            .collect()
    };
    // A verbatim repeat on the same server reuses every round's prompt but its last token from
    // the prefix cache (README, Determinism): the same rounds.
    let repeat: Value = post(&client, &url, &refine(3, false, 40, json!({})))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        contents(&repeat),
        contents(&v),
        "a repeat gives the same rounds"
    );
    server.shutdown().await.unwrap();
    // The same request on a fresh server: every round the same.
    let (server, base, client) = ready_real_server(&[]).await;
    let url = format!("{base}/v1/chat/completions");
    let again: Value = post(&client, &url, &refine(3, false, 40, json!({})))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        contents(&v),
        contents(&again),
        "greedy refinement is deterministic"
    );
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_rounds_streaming_and_the_native_event_stream() {
    // Without the prefix cache a verbatim repeat is bit-identical, so both endpoints can be
    // compared on one server.
    let (server, base, client) = ready_real_server(&["--prefix-cache", "0"]).await;
    let text = post(
        &client,
        &format!("{base}/v1/chat/completions"),
        &refine(3, true, 32, json!({})),
    )
    .await
    .text()
    .await
    .unwrap();
    let events = parse_sse(&text);
    assert_eq!(events.last().unwrap().data, "[DONE]");
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(&e.data).unwrap())
        .collect();
    let mut last_round = 0;
    let mut content = String::new();
    let mut reasoning_rounds = std::collections::BTreeSet::new();
    for c in &chunks {
        let round = c["refinement"]["round"]
            .as_u64()
            .expect("every chunk carries its round");
        assert!(round >= last_round, "rounds in order");
        last_round = round;
        let d = &c["choices"][0]["delta"];
        if d["reasoning_content"]
            .as_str()
            .is_some_and(|s| !s.is_empty())
        {
            reasoning_rounds.insert(round);
        }
        if let Some(t) = d["content"].as_str().filter(|s| !s.is_empty()) {
            assert_eq!(round, 3, "only round 3 is content");
            content.push_str(t);
        }
    }
    assert_eq!(reasoning_rounds.into_iter().collect::<Vec<_>>(), [1, 2]);
    assert!(!content.is_empty());
    let usage = &chunks.last().unwrap()["usage"];

    let native = post(
        &client,
        &format!("{base}/v1/refinements"),
        &refine(3, false, 32, json!({})),
    )
    .await
    .text()
    .await
    .unwrap();
    let events = parse_sse(&native);
    let mut expect_round = 1;
    let mut i = 0;
    while expect_round <= 3 {
        assert_eq!(events[i].event.as_deref(), Some("round.started"));
        i += 1;
        while events[i].event.as_deref() == Some("round.delta") {
            i += 1;
        }
        assert_eq!(events[i].event.as_deref(), Some("round.completed"));
        let done: Value = serde_json::from_str(&events[i].data).unwrap();
        assert_eq!(done["round"], expect_round);
        i += 1;
        expect_round += 1;
    }
    assert_eq!(events[i].event.as_deref(), Some("refinement.completed"));
    assert_eq!(i + 1, events.len());
    let summary: Value = serde_json::from_str(&events[i].data).unwrap();
    assert_eq!(
        summary["content"].as_str(),
        Some(content.as_str()),
        "same final answer on both endpoints"
    );
    assert_eq!(&summary["usage"], usage);
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn budget_and_convergence_stop_the_loop() {
    let (server, base, client) = ready_real_server(&[]).await;
    let url = format!("{base}/v1/chat/completions");
    let v: Value = post(
        &client,
        &url,
        &refine(3, false, 24, json!({"max_total_tokens": 30})),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(v["refinement"]["stop_reason"], "budget", "{v}");
    assert!(v["usage"]["completion_tokens"].as_u64().unwrap() <= 30);

    // A short answer that SmolLM2 usually settles on after a few rounds (here round 4 repeats
    // round 3). Greedy words may differ on another CPU, so what is checked is the rule itself:
    // the loop stops exactly when a round repeats the previous one.
    let body = json!({
        "model": MODEL, "temperature": 0, "max_tokens": 8,
        "messages": [{"role": "user", "content": "Reply with exactly one word: yes."}],
        "refinement": {"rounds": 6, "early_stop": true}
    });
    let v: Value = post(&client, &url, &body).await.json().await.unwrap();
    let rounds = v["refinement"]["rounds"].as_array().unwrap();
    println!(
        "convergence probe: {}",
        serde_json::to_string(rounds).unwrap()
    );
    let (last, earlier) = rounds.split_last().unwrap();
    assert!(
        earlier.iter().all(|r| r["changed"] == true),
        "no repeat before the last round: {v}"
    );
    let converged = last["changed"] == false;
    let (stop, count) = if converged {
        ("converged", 1.0)
    } else {
        ("rounds_done", 0.0)
    };
    assert_eq!(v["refinement"]["stop_reason"], stop, "{v}");
    assert!(converged || rounds.len() == 6, "{v}");
    let m = scrape(&client, &base).await;
    let stops = |reason: &str| {
        metric(
            &m,
            &format!("ptr_early_stops_total{{model=\"{MODEL}\",reason=\"{reason}\"}}"),
        )
    };
    assert_eq!(stops("converged").unwrap_or(0.0), count);
    assert_eq!(stops("budget"), Some(1.0));
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disconnect_in_round_two_means_no_round_three() {
    let (server, base, client) = ready_real_server(&[]).await;
    let url = format!("{base}/v1/refinements");
    read_then_disconnect(&client, &url, &refine(3, true, 200, json!({})), |s| {
        s.matches("event: round.delta").count() > 0 && s.contains("\"round\":2,\"text\"")
    })
    .await;
    let active = format!("ptr_engine_active_sequences{{model=\"{MODEL}\"}}");
    let m = wait_metrics(&client, &base, |m| {
        metric(m, &active) == Some(0.0)
            && metric(
                m,
                "ptr_requests_cancelled_total{model=\"smollm2-135m-instruct\"}",
            ) == Some(1.0)
    })
    .await;
    assert_eq!(
        metric(
            &m,
            "ptr_rounds_started_total{model=\"smollm2-135m-instruct\",round=\"2\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        metric(
            &m,
            "ptr_rounds_started_total{model=\"smollm2-135m-instruct\",round=\"3\"}"
        ),
        None,
        "round 3 never started"
    );
    assert_eq!(
        metric(
            &m,
            &format!("ptr_engine_cancelled_sequences_total{{model=\"{MODEL}\"}}")
        ),
        Some(1.0)
    );
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_round_continues_the_previous_answer_token_exactly() {
    let (server, base, client) = ready_real_server(&[]).await;
    // An answer that ends on its own (finish_reason stop), so round 2 is sent as token ids.
    let body = json!({
        "model": MODEL, "temperature": 0, "max_tokens": 200,
        "messages": [{"role": "user", "content": "List three primary colors, each on its own line, with a short explanation."}],
        "refinement": {"rounds": 2}
    });
    let v: Value = post(&client, &format!("{base}/v1/chat/completions"), &body)
        .await
        .json()
        .await
        .unwrap();
    let rounds = v["refinement"]["rounds"].as_array().unwrap();
    assert_eq!(rounds[0]["finish_reason"], "stop", "{v}");
    assert_eq!(rounds.len(), 2);
    let second = rounds[1]["content"].as_str().unwrap();
    assert!(
        second.split_whitespace().count() >= 3,
        "a real answer: {second:?}"
    );
    let p = |i: usize| rounds[i]["prompt_tokens"].as_u64().unwrap();
    let c0 = rounds[0]["completion_tokens"].as_u64().unwrap();
    assert!(
        p(1) > p(0) + c0,
        "round 2's prompt holds round 1's prompt and answer"
    );
    assert_eq!(
        continuations(&client, &base).await,
        Some(1.0),
        "round 2 went as exact token ids"
    );
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_round_continues_the_one_before() {
    // Long rounds, whose answers hold token splits the tokenizer would not make (measured here:
    // round 3 of this request was once sent as text because round 2's prompt carried round 1's
    // own ids and was compared with the template's ids).
    let (server, base, client) = ready_real_server(&[]).await;
    let body = json!({
        "model": MODEL, "temperature": 0, "max_tokens": 128,
        "messages": [{"role": "user", "content": "Explain why the sky is blue, step by step."}],
        "refinement": {"rounds": 3, "early_stop": false}
    });
    let v: Value = post(&client, &format!("{base}/v1/chat/completions"), &body)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        v["refinement"]["rounds"].as_array().unwrap().len(),
        3,
        "{v}"
    );
    assert_eq!(
        continuations(&client, &base).await,
        Some(2.0),
        "rounds 2 and 3 went as exact token ids"
    );
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_off_round_is_continued_without_leaking_its_extra_token() {
    let (server, base, client) = ready_real_server(&[]).await;
    let url = format!("{base}/v1/chat/completions");
    let ask = json!([{"role": "user", "content": "Write a long story about a lighthouse keeper."}]);
    let refined = json!({"model": MODEL, "temperature": 0, "max_tokens": 16, "messages": ask,
        "refinement": {"rounds": 2}});
    let v: Value = post(&client, &url, &refined).await.json().await.unwrap();
    let rounds = v["refinement"]["rounds"].as_array().unwrap();
    assert_eq!(rounds[0]["finish_reason"], "length", "{v}");
    assert_eq!(
        rounds[0]["completion_tokens"], 16,
        "the extra token is not counted"
    );
    let plain = json!({"model": MODEL, "temperature": 0, "max_tokens": 16, "messages": ask});
    let p: Value = post(&client, &url, &plain).await.json().await.unwrap();
    assert_eq!(p["usage"]["completion_tokens"], 16);
    assert_eq!(
        rounds[0]["content"], p["choices"][0]["message"]["content"],
        "the extra token's text is not in the answer"
    );
    assert_eq!(
        continuations(&client, &base).await,
        Some(1.0),
        "round 2 continued the cut-off answer as token ids"
    );
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_refinements_each_continue_their_own_rounds() {
    let (server, base, client) = ready_real_server(&[]).await;
    let url = format!("{base}/v1/chat/completions");
    let ask = |topic: &str| {
        json!({"model": MODEL, "temperature": 0, "max_tokens": 12,
            "messages": [{"role": "user", "content": format!("Write a long story about {topic}.")}],
            "refinement": {"rounds": 3}})
    };
    let bodies = [ask("a lighthouse"), ask("a dragon"), ask("a baker")];
    let answers = futures::future::join_all(bodies.iter().map(|b| {
        let (client, url) = (client.clone(), url.clone());
        async move {
            let v: Value = post(&client, &url, b).await.json().await.unwrap();
            v
        }
    }))
    .await;
    for v in &answers {
        let rounds = v["refinement"]["rounds"].as_array().unwrap();
        assert_eq!(rounds.len(), 3, "{v}");
    }
    // Every round after the first went as exact token ids continuing its own request's
    // previous round: a continuation is handed from round to round, never shared.
    assert_eq!(
        continuations(&client, &base).await,
        Some(6.0),
        "{answers:?}"
    );
    server.shutdown().await.unwrap();
}

/// Rounds the engine received as exact token ids so far (`ptr_engine_token_continuations_total`).
async fn continuations(client: &reqwest::Client, base: &str) -> Option<f64> {
    let m = scrape(client, base).await;
    metric(
        &m,
        &format!("ptr_engine_token_continuations_total{{model=\"{MODEL}\"}}"),
    )
}
