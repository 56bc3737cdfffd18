//! A pipeline's report folder: `report.md` (the models' lineage, the records, the training, the
//! evaluation's per-round tables and the settings), `accuracy.svg`, `similarity.svg` (the
//! dataset's sample similarity against its threshold), one `loss-<variant>.svg` per variant and
//! `settings.json`. Every file is also stored as a file of the job.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use sha2::{Digest, Sha256};

use super::spec::PipelineSpec;
use crate::jobs::dataset::DatasetState;
use crate::jobs::eval::EvalState;
use crate::jobs::finetune::FineTuneState;
use crate::jobs::Failure;
use crate::jobs::{JobContext, JobFailure, JobState};
use crate::store::{JobRow, Store};

fn io(path: &Path, e: impl std::fmt::Display) -> JobFailure {
    Failure::Io.with(format!("{}: {e}", path.display()))
}

/// What the stages made: the report's input.
#[derive(Clone)]
pub struct Made {
    pub records: Vec<JobRow>,
    pub training_file: String,
    /// Each variant's tuned model and its fine-tuning job, in the spec's order.
    pub tuned: Vec<(String, JobRow)>,
    pub eval: JobRow,
}

/// Writes the report into `dir` and stores its files; returns `{name: file id}`.
pub async fn write(
    ctx: &JobContext,
    spec: &PipelineSpec,
    made: &Made,
    dir: &Path,
) -> Result<BTreeMap<String, String>, JobFailure> {
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let (job_id, dir_owned) = (ctx.job.id.clone(), dir.to_path_buf());
    let (spec, made) = (spec.clone(), made.clone());
    let written = ctx
        .store
        .call(move |s| Ok(assemble(s, &job_id, &spec, &made, &dir_owned)))
        .await?
        .map_err(|e| io(dir, e))?;
    let mut files = BTreeMap::new();
    for (name, content) in written {
        let file_name = format!("{}-{name}", ctx.job.id);
        let row = ctx
            .store_file(file_name, "pipeline-results", content)
            .await?;
        files.insert(name, row.id);
    }
    Ok(files)
}

/// Writes every file of the report; returns each one's name and content.
fn assemble(
    store: &Store,
    job_id: &str,
    spec: &PipelineSpec,
    made: &Made,
    dir: &Path,
) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let mut r = Report {
        store,
        spec,
        made,
        dir,
        md: String::new(),
        files: Vec::new(),
    };
    let tuned: Vec<&str> = made.tuned.iter().map(|(m, _)| m.as_str()).collect();
    writeln!(r.md, "# PTR model: {} → {}\n", spec.model, tuned.join(", "))?;
    writeln!(
        r.md,
        "Made by pipeline `{job_id}`. Every stage is a job of its own; its id is given with \
         its figures."
    )?;
    r.lineage()?;
    r.records()?;
    r.training()?;
    r.evaluation()?;
    writeln!(r.md, "\n## Settings\n\n```json")?;
    let settings = serde_json::to_string_pretty(spec)?;
    writeln!(r.md, "{settings}\n```")?;
    r.put("settings.json", settings.as_bytes())?;
    let md = std::mem::take(&mut r.md);
    r.put("report.md", md.as_bytes())?;
    Ok(r.files)
}

/// The report being written: `report.md`'s text and the files beside it.
struct Report<'a> {
    store: &'a Store,
    spec: &'a PipelineSpec,
    made: &'a Made,
    dir: &'a Path,
    md: String,
    /// The files written so far, with their content.
    files: Vec<(String, Vec<u8>)>,
}

impl Report<'_> {
    fn put(&mut self, name: &str, content: &[u8]) -> anyhow::Result<()> {
        std::fs::write(self.dir.join(name), content)?;
        self.files.push((name.to_string(), content.to_vec()));
        Ok(())
    }

    /// Each model, its parent, the job that made it and what it was trained on.
    fn lineage(&mut self) -> anyhow::Result<()> {
        let md = &mut self.md;
        section(
            md,
            "Lineage",
            "model | parent | made by | trained on | thought weight",
        )?;
        writeln!(md, "| {} | — | models.toml | — | — |", self.spec.model)?;
        for ((model, job), variant) in self.made.tuned.iter().zip(&self.spec.variants) {
            let file = job.spec["training_file"].as_str().unwrap_or("?");
            let only = if variant.answers_only {
                " (answers only)"
            } else {
                ""
            };
            writeln!(
                md,
                "| {model} | {} | `{}` | `{file}`{only} | {} |",
                self.spec.model, job.id, job.spec["ptr"]["thought_weight"]
            )?;
        }
        Ok(())
    }

    /// Each record stage's counts, and the generated records' similarity histogram.
    fn records(&mut self) -> anyhow::Result<()> {
        section(
            &mut self.md,
            "Records",
            "stage job | kind | total | accepted | rejected | acceptance | records/hour",
        )?;
        let (mut sims, mut threshold) = (Vec::new(), 0.0);
        for job in &self.made.records {
            let state = DatasetState::of(job);
            let counts = state.request_counts.unwrap_or_default();
            let import = job.spec["import"].as_bool().unwrap_or(false);
            let rate = state.summary.as_ref().map(|s| s.acceptance_rate);
            let s = state.summary.unwrap_or_default();
            let per_hour = if !import && s.record_seconds > 0.0 {
                format!("{:.1}", counts.completed as f64 / s.record_seconds * 3600.0)
            } else {
                "—".into()
            };
            writeln!(
                self.md,
                "| `{}` | {} | {} | {} | {} | {} | {per_hour} |",
                job.id,
                if import { "import" } else { "generated" },
                counts.total,
                s.accepted,
                s.rejected,
                rate.map(|r| format!("{:.0} %", r * 100.0))
                    .unwrap_or_else(|| "—".into()),
            )?;
            if !import {
                threshold = s.threshold;
                let rows = self.store.records(&job.id)?;
                sims.extend(
                    rows.iter()
                        .filter_map(crate::jobs::dataset::summary::scores)
                        .map(|s| s.sample_similarity),
                );
            }
        }
        writeln!(self.md, "\nTraining file: `{}`.", self.made.training_file)?;
        if !sims.is_empty() {
            let svg = crate::jobs::dataset::chart::svg(&sims, threshold as f32)?;
            self.put("similarity.svg", svg.as_bytes())?;
            writeln!(self.md, "\n![answer samples' similarity](similarity.svg)")?;
        }
        Ok(())
    }

    /// Each variant's training: steps, tokens, first and last loss, adapter hash, loss curve.
    fn training(&mut self) -> anyhow::Result<()> {
        section(
            &mut self.md,
            "Training",
            "variant | job | steps | trained tokens | first loss | last loss | adapter sha256",
        )?;
        let mut curves = Vec::new();
        for ((_, job), variant) in self.made.tuned.iter().zip(&self.spec.variants) {
            let mut losses = Vec::new();
            let state = FineTuneState::of(job);
            for id in state.result_files.iter().flatten() {
                let (row, content) = (self.store.file(id)?, self.store.file_content(id)?);
                if row.filename.ends_with(".csv") {
                    losses = train_losses(&String::from_utf8_lossy(&content));
                } else if row.filename.ends_with(".svg") {
                    let name = format!("loss-{}.svg", variant.name);
                    self.put(&name, &content)?;
                    curves.push(name);
                }
            }
            let adapter = state
                .adapter_dir
                .and_then(|d| std::fs::read(d.join("adapter_model.safetensors")).ok())
                .map(|bytes| hex::encode(Sha256::digest(bytes))[..16].to_string())
                .unwrap_or_else(|| "—".into());
            let loss = |l: Option<&f64>| l.map(|l| format!("{l:.3}")).unwrap_or("—".into());
            writeln!(
                self.md,
                "| {} | `{}` | {} | {} | {} | {} | `{adapter}` |",
                variant.name,
                job.id,
                losses.len(),
                state.trained_tokens.map_or("—".into(), |t| t.to_string()),
                loss(losses.first()),
                loss(losses.last()),
            )?;
        }
        for c in &curves {
            writeln!(self.md, "\n![{c}]({c})")?;
        }
        Ok(())
    }

    /// The eval job's report (its headings one level down) and its chart.
    fn evaluation(&mut self) -> anyhow::Result<()> {
        let eval = &self.made.eval;
        writeln!(self.md, "\n## Evaluation (`{}`)\n", eval.id)?;
        let files = EvalState::of(eval).result_files.unwrap_or_default();
        if let Some(id) = files.get("accuracy.svg") {
            // The eval report below shows it.
            let chart = self.store.file_content(id)?;
            self.put("accuracy.svg", &chart)?;
        }
        if let Some(id) = files.get("report.md") {
            let text = String::from_utf8_lossy(&self.store.file_content(id)?).to_string();
            for line in text.lines() {
                let deeper = if line.starts_with('#') { "##" } else { "" };
                writeln!(self.md, "{deeper}{line}")?;
            }
        }
        Ok(())
    }
}

/// A section of the report that opens with a table: its heading, the table's header row
/// (`columns`: the cells, separated by ` | `) and the separator under it.
fn section(md: &mut String, title: &str, columns: &str) -> std::fmt::Result {
    writeln!(md, "\n## {title}\n")?;
    writeln!(md, "| {columns} |")?;
    writeln!(md, "|{}", "---|".repeat(columns.split(" | ").count()))
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

    #[test]
    fn a_section_opens_with_its_heading_and_a_table_head() {
        let mut md = String::new();
        super::section(&mut md, "Evaluation", "model | round 1").unwrap();
        assert_eq!(md, "\n## Evaluation\n\n| model | round 1 |\n|---|---|\n");
    }
}
