//! Concurrent greedy requests on the real default model: each gets the answer it gets alone.
//! The engine batches sequences of equal length into one decode step, so the prompts have equal
//! token counts: unpatched, mistral.rs 0.8.1's batched CPU decode gave every request of such a
//! batch the same answer (patches/mistralrs-core/0001-…).

use futures::future::join_all;
use serde_json::json;

use crate::common::*;

const TOPICS: [&str; 3] = ["a dog", "a cat", "a fox"];

/// The answer and the prompt's token count.
async fn story(client: &reqwest::Client, base: &str, topic: &str) -> (String, u64) {
    let body = json!({
        "model": "smollm2-135m-instruct",
        "messages": [{"role": "user", "content": format!("Write a long story about {topic}.")}],
        "temperature": 0, "max_tokens": 12
    });
    let res = send_json(client, &format!("{base}/v1/chat/completions"), &body).await;
    assert_eq!(res.status(), 200);
    let v: serde_json::Value = res.json().await.unwrap();
    let text = v["choices"][0]["message"]["content"].as_str().unwrap();
    (
        text.to_string(),
        v["usage"]["prompt_tokens"].as_u64().unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_greedy_requests_each_get_their_own_answer() {
    let (server, base, client) = ready_real_server(&[]).await;
    let together = join_all(TOPICS.map(|t| story(&client, &base, t))).await;
    let mut alone = Vec::new();
    for topic in TOPICS {
        alone.push(story(&client, &base, topic).await);
    }
    println!("alone: {alone:?}\ntogether: {together:?}");
    assert!(
        alone.iter().all(|(_, n)| *n == alone[0].1),
        "equal prompt lengths, so that the engine batches them: {alone:?}"
    );
    assert!(
        alone.iter().any(|(a, _)| a != &alone[0].0),
        "the prompts must have different greedy answers for this test to mean anything: {alone:?}"
    );
    assert_eq!(
        together, alone,
        "greedy answers do not depend on what else runs"
    );
    server.shutdown().await.unwrap();
}
