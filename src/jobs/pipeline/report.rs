//! A pipeline's report folder: `report.md` (the models' lineage, the records, the training, the
//! evaluation's per-round tables and the settings), `accuracy.svg`, `similarity.svg` (the
//! dataset's sample similarity against its threshold), one `loss-<variant>.svg` per variant and
//! `settings.json`. Every file is also stored as a file of the job.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::runner::Made;
use super::spec::PipelineSpec;
use crate::jobs::{JobContext, JobFailure};
use crate::store::{FileStatus, NewFile, Store};

fn io(path: &Path, e: impl std::fmt::Display) -> JobFailure {
    JobFailure::failed("io_error", format!("{}: {e}", path.display()))
}

/// Writes the report into `dir` and stores its files; returns `{name: file id}`.
pub async fn write(
    ctx: &JobContext,
    spec: &PipelineSpec,
    made: &Made,
    dir: &Path,
) -> Result<Value, JobFailure> {
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let (job_id, dir_owned) = (ctx.job.id.clone(), dir.to_path_buf());
    let (spec, made) = (spec.clone(), made.clone());
    let names = ctx
        .store
        .call(move |s| Ok(assemble(s, &job_id, &spec, &made, &dir_owned)))
        .await?
        .map_err(|e| io(dir, e))?;
    let mut files = serde_json::Map::new();
    for name in names {
        let path = dir.join(&name);
        let content = std::fs::read(&path).map_err(|e| io(&path, e))?;
        let file_name = format!("{}-{name}", ctx.job.id);
        let row = ctx
            .store
            .call(move |s| {
                s.insert_file(NewFile {
                    filename: &file_name,
                    purpose: "pipeline-results",
                    content: &content,
                    status: FileStatus::Processed,
                    status_details: None,
                })
            })
            .await?;
        files.insert(name, json!(row.id));
    }
    Ok(Value::Object(files))
}

/// Writes every file of the report; returns their names.
fn assemble(
    store: &Store,
    job_id: &str,
    spec: &PipelineSpec,
    made: &Made,
    dir: &Path,
) -> anyhow::Result<Vec<String>> {
    let mut names = Vec::new();
    let mut put = |name: &str, content: &[u8]| -> anyhow::Result<()> {
        std::fs::write(dir.join(name), content)?;
        names.push(name.to_string());
        Ok(())
    };
    let mut md = String::new();
    let tuned: Vec<&str> = made.tuned.iter().map(|(m, _)| m.as_str()).collect();
    writeln!(md, "# PTR model: {} → {}\n", spec.model, tuned.join(", "))?;
    writeln!(
        md,
        "Made by pipeline `{job_id}`. Every stage is a job of its own; its id is given with \
         its figures.\n"
    )?;

    writeln!(md, "## Lineage\n")?;
    writeln!(
        md,
        "| model | parent | made by | trained on | thought weight |"
    )?;
    writeln!(md, "|---|---|---|---|---|")?;
    writeln!(md, "| {} | — | models.toml | — | — |", spec.model)?;
    for ((model, job), variant) in made.tuned.iter().zip(&spec.variants) {
        let file = job.spec["training_file"].as_str().unwrap_or("?");
        let weight = &job.spec["ptr"]["thought_weight"];
        let data = if variant.answers_only {
            format!("`{file}` (answers only)")
        } else {
            format!("`{file}`")
        };
        writeln!(
            md,
            "| {model} | {} | `{}` | {data} | {weight} |",
            spec.model, job.id
        )?;
    }

    writeln!(md, "\n## Records\n")?;
    writeln!(
        md,
        "| stage job | kind | total | accepted | rejected | acceptance | records/hour |"
    )?;
    writeln!(md, "|---|---|---|---|---|---|---|")?;
    let mut sims = Vec::new();
    let mut threshold = None;
    for job in &made.records {
        let s = &job.state["summary"];
        let counts = &job.state["request_counts"];
        let import = job.spec["import"].as_bool().unwrap_or(false);
        let per_hour = match (s["accepted"].as_f64(), s["record_seconds"].as_f64()) {
            (_, Some(secs)) if !import && secs > 0.0 => {
                let total = counts["completed"].as_f64().unwrap_or(0.0);
                format!("{:.1}", total / secs * 3600.0)
            }
            _ => "—".into(),
        };
        writeln!(
            md,
            "| `{}` | {} | {} | {} | {} | {} | {per_hour} |",
            job.id,
            if import { "import" } else { "generated" },
            counts["total"],
            s["accepted"],
            s["rejected"],
            s["acceptance_rate"]
                .as_f64()
                .map(|r| format!("{:.0} %", r * 100.0))
                .unwrap_or_else(|| "—".into()),
        )?;
        if !import {
            threshold = s["threshold"].as_f64();
            sims.extend(
                store
                    .records(&job.id)?
                    .iter()
                    .filter_map(crate::jobs::dataset::summary::scores)
                    .map(|s| s.sample_similarity),
            );
        }
    }
    writeln!(md, "\nTraining file: `{}`.", made.training_file)?;
    if !sims.is_empty() {
        let path = dir.join("similarity.svg");
        crate::jobs::dataset::chart::write(&path, &sims, threshold.unwrap_or(0.0) as f32)?;
        names_push(&mut put, dir, "similarity.svg")?;
        writeln!(md, "\n![answer samples' similarity](similarity.svg)")?;
    }

    writeln!(md, "\n## Training\n")?;
    writeln!(
        md,
        "| variant | job | steps | trained tokens | first loss | last loss | adapter sha256 |"
    )?;
    writeln!(md, "|---|---|---|---|---|---|---|")?;
    let mut curves = Vec::new();
    for ((_, job), variant) in made.tuned.iter().zip(&spec.variants) {
        let files: Vec<&str> = job.state["result_files"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let mut losses = Vec::new();
        for id in &files {
            let row = store.file(id)?;
            let content = store.file_content(id)?;
            if row.filename.ends_with(".csv") {
                losses = train_losses(&String::from_utf8_lossy(&content));
            } else if row.filename.ends_with(".svg") {
                let name = format!("loss-{}.svg", variant.name);
                put(&name, &content)?;
                curves.push(name);
            }
        }
        let loss = |l: Option<&f64>| l.map(|l| format!("{l:.3}")).unwrap_or("—".into());
        let adapter = job.state["adapter_dir"]
            .as_str()
            .and_then(|d| std::fs::read(Path::new(d).join("adapter_model.safetensors")).ok())
            .map(|bytes| hex::encode(Sha256::digest(bytes))[..16].to_string())
            .unwrap_or_else(|| "—".into());
        writeln!(
            md,
            "| {} | `{}` | {} | {} | {} | {} | `{adapter}` |",
            variant.name,
            job.id,
            losses.len(),
            job.state["trained_tokens"],
            loss(losses.first()),
            loss(losses.last()),
        )?;
    }
    for c in &curves {
        writeln!(md, "\n![{c}]({c})")?;
    }

    writeln!(md, "\n## Evaluation (`{}`)\n", made.eval.id)?;
    let eval_files = &made.eval.state["result_files"];
    if let Some(id) = eval_files["accuracy.svg"].as_str() {
        // The eval report below shows it.
        put("accuracy.svg", &store.file_content(id)?)?;
    }
    if let Some(id) = eval_files["report.md"].as_str() {
        let text = String::from_utf8_lossy(&store.file_content(id)?).to_string();
        for line in text.lines() {
            // The eval report's headings go one level down, under this section.
            let line = if line.starts_with('#') {
                format!("##{line}")
            } else {
                line.to_string()
            };
            writeln!(md, "{line}")?;
        }
    }

    writeln!(md, "\n## Settings\n\n```json")?;
    let settings = serde_json::to_string_pretty(spec)?;
    writeln!(md, "{settings}\n```")?;
    put("settings.json", settings.as_bytes())?;
    put("report.md", md.as_bytes())?;
    Ok(names)
}

/// Records a file written outside `put` (a chart drawn to its path).
fn names_push(
    put: &mut impl FnMut(&str, &[u8]) -> anyhow::Result<()>,
    dir: &Path,
    name: &str,
) -> anyhow::Result<()> {
    let content = std::fs::read(dir.join(name))?;
    put(name, &content)
}

/// The `train_loss` column of the trainer's metrics CSV.
fn train_losses(csv: &str) -> Vec<f64> {
    csv.lines()
        .skip(1)
        .filter_map(|l| l.split(',').nth(1)?.parse().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_loss_column_is_read_from_the_metrics_csv() {
        let csv = "step,train_loss,train_accuracy,valid_loss,valid_mean_token_accuracy\n\
                   1,2.5,0.1,,\n2,2.25,0.2,2.4,0.2\n";
        assert_eq!(super::train_losses(csv), [2.5, 2.25]);
    }
}
