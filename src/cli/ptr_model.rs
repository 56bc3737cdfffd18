//! `ptr-server ptr-model`: make a PTR model from a shell — the pipeline job
//! (`POST /admin/v1/pipelines`) run by the application in process (no socket), its job store in
//! `<out>/.state`. The spec file is the API's request body with local paths where the API takes
//! file ids; the files are uploaded, the pipeline is followed with a progress bar, and the report
//! folder is copied to `<out>/report`. The same command again resumes the same pipeline (finished
//! stages are not repeated), after a crash or a kill -9 too.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Args;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::serve::ServeArgs;
use super::source::ModelSourceArgs;
use crate::app::Admin;
use crate::engine::DeviceSpec;
use crate::jobs::dataset::DatasetState;
use crate::jobs::eval::EvalState;
use crate::jobs::finetune::FineTuneState;
use crate::jobs::pipeline::{PipelineSpec, PipelineState};
use crate::jobs::{JobKind, JobState};
use crate::store::{FileStatus, JobRow, JobStatus, NewFile, Store};

/// `ptr-model` arguments.
#[derive(Debug, Clone, Args)]
pub struct PtrModelArgs {
    /// The pipeline request (`POST /admin/v1/pipelines`'s body) with file paths, relative to
    /// the spec file, in place of file ids: `import_files[]`, `dataset.input_file`,
    /// `dataset.strong.icl_examples_file`, `eval.tasks[].file`.
    #[arg(long)]
    pub spec: PathBuf,
    /// Output folder: the job store (`.state`, the resume point) and the report.
    #[arg(long, default_value = "runs/ptr-model")]
    pub out: PathBuf,
    /// Where the models run and train: cpu, cuda[:N] or metal.
    #[arg(long, default_value = "cpu")]
    pub device: DeviceSpec,
    #[command(flatten)]
    pub source: ModelSourceArgs,
}

/// Runs the pipeline to its end and prints where its report is.
pub async fn run(args: PtrModelArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.spec)
        .with_context(|| format!("reading {}", args.spec.display()))?;
    let mut body: Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not JSON", args.spec.display()))?;
    let base = args.spec.parent().unwrap_or(Path::new(".")).to_path_buf();
    let paths = file_fields(&mut body, &base)?;
    let mut key = Sha256::new();
    key.update(body.to_string());
    for (_, path) in &paths {
        key.update(Sha256::digest(std::fs::read(path)?));
    }
    let key = hex::encode(key.finalize());

    std::fs::create_dir_all(&args.out)?;
    let rounds = body["eval"]["rounds"].as_u64().unwrap_or(3) as u32;
    let mut config = ServeArgs::in_process(&args.source, args.device, local_models(&body), rounds)?;
    config.fetch = true;
    config.data_dir = args.out.join(".state");
    config.admin.admin_token = Some(hex::encode(Sha256::digest(key.as_bytes())));
    let grace = std::time::Duration::from_secs(config.shutdown_grace_secs);
    // The application without a socket: the stages reach its models through its API in process.
    let app = crate::app::App::build(&config)?;
    let _routes = crate::server::routes(&config, &app);
    app.start()?;
    let admin = app
        .admin
        .clone()
        .context("the application has no back office: this is a bug")?;

    let job = match super::follow::earlier_job(&admin.store, "pipeline", &key)? {
        Some(job) => job,
        None => {
            for (pointer, path) in &paths {
                let id = upload(&admin.store, path)?;
                *body.pointer_mut(pointer).expect("a field found above") = json!(id);
            }
            body["metadata"] = json!({"cli_key": key, "spec": args.spec});
            let spec: PipelineSpec = serde_json::from_value(body)
                .with_context(|| format!("{} is not a pipeline request", args.spec.display()))?;
            crate::http::admin::pipelines::accept(&admin, spec, Some(key))
                .await
                .map_err(|e| match e.param {
                    Some(p) => anyhow::anyhow!("{}: {p}: {}", args.spec.display(), e.message),
                    None => anyhow::anyhow!("{}: {}", args.spec.display(), e.message),
                })?
        }
    };
    let job = tokio::select! {
        job = follow(&admin, &job.id) => job,
        () = crate::server::shutdown_signal() => {
            eprintln!("stopping: the running stage stops where it can resume (a fine-tune at a \
                       checkpoint); the same command resumes the pipeline");
            admin.jobs.shutdown(grace).await;
            bail!("stopped by a signal before the pipeline ended");
        }
    };
    let kept = match &job {
        Ok(job) if job.status == JobStatus::Succeeded => keep_models(&admin, job, &args.out),
        _ => Ok(()),
    };
    admin.jobs.shutdown(grace).await;
    let job = job?;
    kept?;
    if job.status != JobStatus::Succeeded {
        bail!(
            "the pipeline {} ended {}: {}",
            job.id,
            job.status.as_str(),
            job.error.unwrap_or(Value::Null)
        );
    }
    let from = PipelineState::of(&job).report_dir.unwrap_or_default();
    let to = args.out.join("report");
    std::fs::create_dir_all(&to)?;
    for entry in std::fs::read_dir(&from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        std::fs::copy(entry.path(), to.join(entry.file_name()))?;
    }
    println!("{}", to.join("report.md").display());
    Ok(())
}

/// Copies each variant's merged GGUF to `<out>/<base>-<variant>.gguf`, the path a models.toml
/// entry can name (the shipped one names `runs/smollm2/smollm2-135m-instruct-ptr.gguf`).
fn keep_models(admin: &crate::app::Admin, job: &JobRow, out: &Path) -> anyhow::Result<()> {
    let base = job.spec["model"].as_str().unwrap_or_default();
    let stages = PipelineState::of(job).stages.unwrap_or_default();
    for (stage, s) in stages {
        let Some(variant) = stage.strip_prefix("fine_tune-") else {
            continue;
        };
        let ft = admin.store.job(&s.job_id)?;
        let Some(tuned) = FineTuneState::of(&ft).fine_tuned_model else {
            continue;
        };
        let spec = admin.models.spec(&tuned)?;
        let from = spec.path.context("a tuned model is a path model")?;
        let to = out.join(format!("{base}-{variant}.gguf"));
        std::fs::copy(&from, &to)
            .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
        eprintln!("{tuned} → {}", to.display());
    }
    Ok(())
}

/// The spec's file fields as (JSON pointer, path resolved against `base`); each must exist.
fn file_fields(body: &mut Value, base: &Path) -> anyhow::Result<Vec<(String, PathBuf)>> {
    let mut pointers: Vec<String> = Vec::new();
    let count = |p: &str, body: &Value| {
        body.pointer(p)
            .and_then(Value::as_array)
            .map_or(0, Vec::len)
    };
    for i in 0..count("/import_files", body) {
        pointers.push(format!("/import_files/{i}"));
    }
    pointers.push("/dataset/input_file".into());
    pointers.push("/dataset/strong/icl_examples_file".into());
    for i in 0..count("/eval/tasks", body) {
        pointers.push(format!("/eval/tasks/{i}/file"));
    }
    let mut found = Vec::new();
    for p in pointers {
        let Some(v) = body.pointer(&p).and_then(Value::as_str) else {
            continue;
        };
        let path = base.join(v);
        if !path.is_file() {
            bail!("{p}: no file {}", path.display());
        }
        found.push((p, path));
    }
    Ok(found)
}

/// The models of this server the pipeline asks (the base model, the dataset's local roles).
fn local_models(body: &Value) -> Vec<String> {
    let mut models = Vec::new();
    let roles = ["/model", "/dataset/weak/model", "/dataset/strong/model"];
    for p in roles {
        let remote = p != "/model"
            && body
                .pointer(&p.replace("/model", "/base_url"))
                .is_some_and(|u| !u.is_null());
        if let Some(m) = body.pointer(p).and_then(Value::as_str) {
            if !remote && !models.iter().any(|x| x == m) {
                models.push(m.to_string());
            }
        }
    }
    models
}

fn upload(store: &Store, path: &Path) -> anyhow::Result<String> {
    let content = std::fs::read(path)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let row = store.insert_file(NewFile {
        filename: &name,
        purpose: "user_data",
        content: &content,
        status: FileStatus::Processed,
        status_details: None,
    })?;
    Ok(row.id)
}

/// Draws the pipeline's progress (stage, the stage job's own progress) until it ends.
async fn follow(admin: &Admin, id: &str) -> anyhow::Result<JobRow> {
    let mut shown = String::new();
    let template = "{elapsed_precise} {prefix:>16} [{bar:30}] {pos}/{len} · {msg}";
    super::follow::follow(&admin.jobs, id, template, |job, bar| {
        let state = PipelineState::of(job);
        let stage = state.stage.unwrap_or_else(|| "starting".into());
        bar.set_prefix(stage.clone());
        let Some(child) = state
            .stages
            .and_then(|mut s| s.remove(&stage))
            .map(|s| s.job_id)
        else {
            return Ok(());
        };
        let child = child.as_str();
        let c = admin.store.job(child)?;
        let last = admin
            .store
            .events(child, crate::store::EventCursor::NewestBefore(None), 1)?
            .into_iter()
            .next();
        let data = last
            .as_ref()
            .and_then(|e| e.data.clone())
            .unwrap_or_default();
        let (done, total) = progress(&c, &data);
        bar.set_length(total);
        bar.set_position(done);
        bar.set_message(last.map(|e| e.message).unwrap_or_default());
        if shown != child {
            super::follow::say(bar, format!("stage {stage}: {child}"));
            shown = child.to_string();
        }
        Ok(())
    })
    .await
}

/// A stage job's (done, total): records, items, or training steps (from its last event).
fn progress(job: &JobRow, last_event: &Value) -> (u64, u64) {
    let counted = match JobKind::parse(&job.kind) {
        Some(JobKind::Dataset) => DatasetState::of(job)
            .request_counts
            .map(|c| (c.completed, c.total)),
        Some(JobKind::Eval) => EvalState::of(job).progress.map(|p| (p.done, p.total)),
        _ => None,
    };
    match counted {
        Some((done, total)) => (done as u64, total as u64),
        None => {
            let n = |k: &str| last_event[k].as_u64().unwrap_or(0);
            (n("step"), n("total_steps"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_fields_are_found_and_must_exist() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.json"), "[]").unwrap();
        std::fs::write(dir.path().join("t.jsonl"), "").unwrap();
        let mut body = json!({"model": "m", "import_files": ["a.json"],
            "eval": {"tasks": [{"task": "gsm8k", "file": "t.jsonl"}]}});
        let found = file_fields(&mut body, dir.path()).unwrap();
        let pointers: Vec<&str> = found.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(pointers, ["/import_files/0", "/eval/tasks/0/file"]);
        body["dataset"] = json!({"input_file": "missing.jsonl"});
        let err = file_fields(&mut body, dir.path()).unwrap_err().to_string();
        assert!(err.contains("/dataset/input_file"), "{err}");
    }

    #[test]
    fn local_models_leave_out_remote_roles() {
        let body = json!({"model": "a", "dataset": {"weak": {"model": "a"},
            "strong": {"model": "big", "base_url": "http://x/v1"}}});
        assert_eq!(local_models(&body), ["a"]);
        let body =
            json!({"model": "a", "dataset": {"weak": {"model": "a"}, "strong": {"model": "b"}}});
        assert_eq!(local_models(&body), ["a", "b"]);
    }
}
