//! [`run`]: one evaluation, from the spec to the written outputs, resumable and cancellable.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use futures::{future, StreamExt};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::client::{question, wire_messages, Client, RoundAnswer};
use super::report::{self, EvalReport, ItemOutcome};
use super::store::{self, Appender, ItemKey, ItemRound, Records};
use super::tasks::Item;
use super::{chart, Cancelled, EvalSpec, Progress, ProgressSink, SystemSpec, TaskInput};

/// A task's file, loaded.
struct LoadedTask<'a> {
    input: &'a TaskInput,
    items: Vec<Item>,
    sha256: String,
}

/// Runs `spec`: asks every system for every item's rounds (skipping items `spec.out` already
/// holds), appends them to `items.jsonl`, then writes `report.md`, `summary.json` and
/// `accuracy.svg` and returns the report.
///
/// Progress goes to `sink` after every item. Past `spec.time_limit` no new item starts and the
/// report covers the items done. Setting `cancel` stops the run within a fraction of
/// a second (requests in flight are dropped, which cancels them on a ptr-server) and returns
/// [`Cancelled`]; finished items stay in `items.jsonl`. An item whose requests fail is noted,
/// written to `errors.jsonl` and left out; a rerun retries it.
pub async fn run(
    spec: &EvalSpec,
    sink: &dyn ProgressSink,
    cancel: &AtomicBool,
) -> anyhow::Result<EvalReport> {
    validate(spec)?;
    std::fs::create_dir_all(&spec.out)
        .with_context(|| format!("creating {}", spec.out.display()))?;
    let tasks = load_tasks(spec)?;
    store::check_settings(&spec.out, &settings(spec, &tasks))?;
    let jsonl = spec.out.join("items.jsonl");
    let mut records = Records::read(&jsonl)?;

    let (todo, mut done) = pending(spec, &tasks, &records);
    let total = done + todo.len();
    if done > 0 {
        sink.note(&format!(
            "resuming from {}: {done} of {total} items already done",
            jsonl.display()
        ));
    }
    sink.progress(Progress { done, total });

    let client = Client::new()?;
    let decoding = &spec.decoding;
    let mut appender = Appender::open(&jsonl)?;
    let mut failed = 0;
    let started = Instant::now();
    let in_time = || {
        spec.time_limit
            .is_none_or(|limit| started.elapsed() < limit)
    };
    let mut finished = futures::stream::iter(todo)
        .take_while(|_| future::ready(!cancel.load(Ordering::Relaxed) && in_time()))
        .map(|(system, task, item)| {
            let (client, decoding) = (&client, &decoding);
            async move {
                let base = question(&item.prompt);
                let asked = client.rounds(system, &base, decoding);
                let answers = tokio::select! {
                    answers = asked => Some(answers),
                    () = cancelled(cancel) => None,
                };
                (system, task, item, answers)
            }
        })
        .buffer_unordered(spec.concurrency);
    while let Some((system, task, item, answers)) = finished.next().await {
        match answers {
            None => break,
            Some(Ok(answers)) => {
                let rounds = score(&system.label, task, item, answers);
                appender.append(&rounds)?;
                rounds.into_iter().for_each(|r| records.insert(r));
            }
            Some(Err(e)) => {
                failed += 1;
                sink.note(&format!(
                    "{} {} item {} failed: {e:#}",
                    system.label, task.input.kind, item.id
                ));
                let line = json!({"system": system.label, "task": task.input.kind, "item": item.id, "error": format!("{e:#}")});
                append_line(&spec.out.join("errors.jsonl"), &line)?;
            }
        }
        done += 1;
        sink.progress(Progress { done, total });
    }
    drop(finished);
    if cancel.load(Ordering::Relaxed) {
        return Err(Cancelled.into());
    }
    if done < total {
        sink.note(&format!(
            "time limit reached: {done} of {total} items done; rerun to continue"
        ));
    }

    let report = build_report(spec, &tasks, &records, failed);
    write_outputs(spec, &report)?;
    Ok(report)
}

/// The items still to ask, as (system, task, item), and how many are done already.
///
/// Item-major in blocks: the first few items of every task on the first system, the same items on
/// the next system, …, then the next block. A block holds about `concurrency` requests, so the
/// requests in flight mostly go to one model and its engine batches them; a run stopped early by
/// cancel or `time_limit` still leaves every task and system with about as many items (one block
/// at most between them).
fn pending<'a>(
    spec: &'a EvalSpec,
    tasks: &'a [LoadedTask<'a>],
    records: &Records,
) -> (Vec<(&'a SystemSpec, &'a LoadedTask<'a>, &'a Item)>, usize) {
    let mut todo = Vec::new();
    let mut done = 0;
    let longest = tasks.iter().map(|t| t.items.len()).max().unwrap_or(0);
    let block = spec.concurrency.div_ceil(tasks.len().max(1)).max(1);
    for first in (0..longest).step_by(block) {
        for system in &spec.systems {
            for index in first..(first + block).min(longest) {
                for task in tasks {
                    let Some(item) = task.items.get(index) else {
                        continue;
                    };
                    let key = ItemKey {
                        system: system.label.clone(),
                        task: task.input.kind,
                        item: item.id.clone(),
                    };
                    if records.complete(&key, spec.decoding.rounds).is_some() {
                        done += 1;
                    } else {
                        todo.push((system, task, item));
                    }
                }
            }
        }
    }
    (todo, done)
}

fn validate(spec: &EvalSpec) -> anyhow::Result<()> {
    if spec.systems.is_empty() || spec.tasks.is_empty() {
        bail!("an evaluation needs at least one system and one task");
    }
    for (i, s) in spec.systems.iter().enumerate() {
        if spec.systems[..i].iter().any(|o| o.label == s.label) {
            bail!(
                "two systems are labelled `{}`: give them different labels",
                s.label
            );
        }
    }
    for (i, t) in spec.tasks.iter().enumerate() {
        if spec.tasks[..i].iter().any(|o| o.kind == t.kind) {
            bail!(
                "task `{}` is given twice: evaluate one file per task per --out",
                t.kind
            );
        }
    }
    if spec.decoding.rounds == 0 || spec.decoding.max_tokens == 0 || spec.concurrency == 0 {
        bail!("--rounds, --max-tokens and --concurrency must be at least 1");
    }
    if spec.decoding.temperature.is_nan() || spec.decoding.temperature < 0.0 {
        bail!("--temperature must be at least 0");
    }
    Ok(())
}

fn load_tasks(spec: &EvalSpec) -> anyhow::Result<Vec<LoadedTask<'_>>> {
    spec.tasks
        .iter()
        .map(|input| {
            let bytes = std::fs::read(&input.data)
                .with_context(|| format!("reading {}", input.data.display()))?;
            let text = String::from_utf8(bytes)
                .with_context(|| format!("{} is not UTF-8", input.data.display()))?;
            let mut items = input
                .kind
                .load(&text)
                .with_context(|| format!("reading {}", input.data.display()))?;
            items.truncate(spec.limit.unwrap_or(usize::MAX));
            Ok(LoadedTask {
                input,
                items,
                sha256: hex::encode(Sha256::digest(text.as_bytes())),
            })
        })
        .collect()
}

/// What must not change between a run and its resumption (see [`store::check_settings`]).
fn settings(spec: &EvalSpec, tasks: &[LoadedTask<'_>]) -> Value {
    let systems: serde_json::Map<String, Value> = spec
        .systems
        .iter()
        .map(|s| {
            (
                s.label.clone(),
                json!({"model": s.model, "rounds_mode": s.rounds_mode}),
            )
        })
        .collect();
    let tasks: serde_json::Map<String, Value> = tasks
        .iter()
        .map(|t| (t.input.kind.to_string(), json!({"data_sha256": t.sha256})))
        .collect();
    json!({
        "decoding": {"max_tokens": spec.decoding.max_tokens, "temperature": spec.decoding.temperature, "instruction": spec.decoding.instruction},
        "systems": systems,
        "tasks": tasks,
    })
}

/// Scores each round of an item on its own.
fn score(
    system: &str,
    task: &LoadedTask<'_>,
    item: &Item,
    answers: Vec<RoundAnswer>,
) -> Vec<ItemRound> {
    answers
        .into_iter()
        .zip(1..)
        .map(|(a, round)| {
            let extracted = task.input.kind.extract(item, &a.content);
            ItemRound {
                system: system.to_string(),
                task: task.input.kind,
                item: item.id.clone(),
                round,
                messages: wire_messages(&a.messages),
                correct: extracted.as_deref() == Some(item.gold.as_str()),
                extracted,
                answer: a.content,
                gold: item.gold.clone(),
                finish_reason: a.finish_reason,
                completion_tokens: a.completion_tokens,
                elapsed_ms: a.elapsed_ms,
            }
        })
        .collect()
}

fn build_report(
    spec: &EvalSpec,
    tasks: &[LoadedTask<'_>],
    records: &Records,
    failed: usize,
) -> EvalReport {
    let mut tables = Vec::new();
    for task in tasks {
        let outcomes: Vec<Vec<ItemOutcome>> = spec
            .systems
            .iter()
            .map(|system| {
                task.items
                    .iter()
                    .filter_map(|item| {
                        let key = ItemKey {
                            system: system.label.clone(),
                            task: task.input.kind,
                            item: item.id.clone(),
                        };
                        let rounds = records.complete(&key, spec.decoding.rounds)?;
                        Some(ItemOutcome {
                            item: item.id.clone(),
                            correct: rounds.iter().map(|r| r.correct).collect(),
                            parsed: rounds.iter().map(|r| r.extracted.is_some()).collect(),
                        })
                    })
                    .collect()
            })
            .collect();
        for (i, system) in spec.systems.iter().enumerate() {
            let baseline =
                (i > 0).then(|| (spec.systems[0].label.as_str(), outcomes[0].as_slice()));
            tables.push(report::table(
                task.input.kind,
                &system.label,
                task.items.len(),
                &outcomes[i],
                baseline,
            ));
        }
    }
    EvalReport {
        rounds: spec.decoding.rounds,
        systems: spec.systems.iter().map(|s| s.label.clone()).collect(),
        tables,
        failed_items: failed,
    }
}

fn write_outputs(spec: &EvalSpec, report: &EvalReport) -> anyhow::Result<()> {
    let write = |name: &str, text: String| {
        let path = spec.out.join(name);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
    };
    write("report.md", report.markdown(spec))?;
    write(
        "summary.json",
        serde_json::to_string_pretty(&json!({"spec": spec, "report": report}))?,
    )?;
    chart::write(&spec.out.join("accuracy.svg"), report)
}

fn append_line(path: &Path, line: &Value) -> anyhow::Result<()> {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    writeln!(file, "{line}").with_context(|| format!("writing {}", path.display()))
}

/// Resolves once `cancel` is set (polled: a job runner sets a plain flag).
async fn cancelled(cancel: &AtomicBool) {
    while !cancel.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
