//! `ptr-server eval`: the command line around [`crate::eval::run`], with a progress bar, the table
//! printed at the end. Without `--endpoint` the models are served by this process: the
//! application core's `/v1` router, called in process ([`LocalApi`]), no socket or port.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use anyhow::bail;
use indicatif::{ProgressBar, ProgressStyle};

use super::serve::ServeArgs;
use super::source::ModelSourceArgs;
use crate::client::LocalApi;
use crate::engine::DeviceSpec;
use crate::eval::{
    self, Decoding, EvalSpec, Progress, ProgressSink, RoundsMode, SystemSpec, TaskInput, TaskKind,
};
use crate::refine::DEFAULT_INSTRUCTION;

/// Options of `ptr-server eval`.
#[derive(clap::Args, Debug, Clone)]
pub struct EvalArgs {
    /// Task: gsm8k, arc, commonsenseqa, mmlu or winogrande (repeat, one --data each)
    #[arg(long = "task", required = true)]
    pub tasks: Vec<TaskKind>,
    /// Data file of each --task, in the same order
    #[arg(long = "data", required = true)]
    pub data: Vec<PathBuf>,
    /// Model to evaluate: the `model` of each request
    #[arg(long)]
    pub model: String,
    /// Refinement rounds per item
    #[arg(long, default_value_t = 3)]
    pub rounds: u32,
    /// Only the first K items of each file
    #[arg(long)]
    pub limit: Option<usize>,
    /// Base URL of an OpenAI-compatible server (e.g. http://127.0.0.1:8080). Without it this
    /// binary serves --model (and --compare-model) itself, from models.toml, in process
    #[arg(long)]
    pub endpoint: Option<String>,
    /// Bearer key for --endpoint
    #[arg(long, env = "PTR_EVAL_API_KEY", hide_env_values = true)]
    pub api_key: Option<ApiKey>,
    /// Let the endpoint (a ptr-server) run the rounds: one request with the `refinement`
    /// extension per item. Default with --endpoint: one request per round, built here
    #[arg(long)]
    pub server_rounds: bool,
    /// Name of --model's system in the tables [default: the model id]
    #[arg(long)]
    pub label: Option<String>,
    /// A second model to run on the same items, compared in the same tables
    #[arg(long)]
    pub compare_model: Option<String>,
    /// Server of --compare-model [default: --endpoint, or the in-process server]
    #[arg(long, requires = "compare_model")]
    pub compare_endpoint: Option<String>,
    /// Bearer key for --compare-endpoint [default: --api-key when both use one server]
    #[arg(long, env = "PTR_EVAL_COMPARE_API_KEY", hide_env_values = true)]
    pub compare_api_key: Option<ApiKey>,
    /// Server-side rounds for --compare-model (see --server-rounds)
    #[arg(long, requires = "compare_model")]
    pub compare_server_rounds: bool,
    /// Name of --compare-model's system in the tables
    #[arg(long, requires = "compare_model")]
    pub compare_label: Option<String>,
    /// `max_tokens` of each round
    #[arg(long, default_value_t = 256)]
    pub max_tokens: u32,
    /// Sampling temperature (0 = greedy)
    #[arg(long, default_value_t = 0.0)]
    pub temperature: f64,
    /// The user turn that asks for another round
    #[arg(long, default_value = DEFAULT_INSTRUCTION)]
    pub instruction: String,
    /// Items in flight at once
    #[arg(long, default_value_t = 1)]
    pub concurrency: usize,
    /// Start no new item after this many minutes; the report covers the items done
    #[arg(long, value_name = "MINUTES")]
    pub time_limit: Option<f64>,
    /// Output folder; a rerun with the same folder resumes
    #[arg(long, default_value = "eval-out")]
    pub out: PathBuf,
    #[command(flatten)]
    pub source: ModelSourceArgs,
    /// Device of the in-process server
    #[arg(long, default_value = "cpu")]
    pub device: DeviceSpec,
}

/// An API key given on the command line; `Debug` does not show it.
#[derive(Clone)]
pub struct ApiKey(pub String);

impl From<String> for ApiKey {
    fn from(key: String) -> Self {
        Self(key)
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

impl EvalArgs {
    /// The spec, with `local` (this process's API) serving the systems that have no endpoint.
    pub fn spec(&self, local: Option<&LocalApi>) -> anyhow::Result<EvalSpec> {
        if self.tasks.len() != self.data.len() {
            bail!(
                "give one --data per --task ({} tasks, {} files)",
                self.tasks.len(),
                self.data.len()
            );
        }
        let endpoint = |given: &Option<String>| -> anyhow::Result<(String, Option<LocalApi>)> {
            match (given, local) {
                (Some(url), _) => Ok((url.clone(), None)),
                (None, Some(api)) => Ok((IN_PROCESS.to_string(), Some(api.clone()))),
                (None, None) => bail!("no --endpoint and no in-process server"),
            }
        };
        let mode = |server_rounds: bool, endpoint: &Option<String>| {
            if server_rounds || endpoint.is_none() {
                RoundsMode::Server
            } else {
                RoundsMode::Client
            }
        };
        let (url, api) = endpoint(&self.endpoint)?;
        let mut systems = vec![SystemSpec {
            label: self.label.clone().unwrap_or_else(|| self.model.clone()),
            endpoint: url,
            model: self.model.clone(),
            api_key: self.api_key.clone().map(|k| k.0),
            rounds_mode: mode(self.server_rounds, &self.endpoint),
            local: api,
        }];
        if let Some(model) = &self.compare_model {
            let own = self
                .compare_endpoint
                .clone()
                .or_else(|| self.endpoint.clone());
            let mut label = self.compare_label.clone().unwrap_or_else(|| model.clone());
            if label == systems[0].label {
                label.push_str(" (compare)");
            }
            let (url, api) = endpoint(&own)?;
            systems.push(SystemSpec {
                label,
                endpoint: url,
                model: model.clone(),
                // The main key goes along only to the same server.
                api_key: self
                    .compare_api_key
                    .clone()
                    .or_else(|| {
                        self.compare_endpoint
                            .is_none()
                            .then(|| self.api_key.clone())
                            .flatten()
                    })
                    .map(|k| k.0),
                rounds_mode: mode(self.compare_server_rounds, &own),
                local: api,
            });
        }
        Ok(EvalSpec {
            tasks: self
                .tasks
                .iter()
                .zip(&self.data)
                .map(|(&kind, data)| TaskInput {
                    kind,
                    data: data.clone(),
                })
                .collect(),
            systems,
            decoding: Decoding {
                rounds: self.rounds,
                max_tokens: self.max_tokens,
                temperature: self.temperature,
                instruction: self.instruction.clone(),
            },
            limit: self.limit,
            concurrency: self.concurrency,
            time_limit: self
                .time_limit
                .map(|m| std::time::Duration::from_secs_f64(m.max(0.0) * 60.0)),
            out: self.out.clone(),
        })
    }

    /// The models the in-process server must load: those of systems without an endpoint.
    fn local_models(&self) -> Vec<String> {
        let mut models = Vec::new();
        if self.endpoint.is_none() {
            models.push(self.model.clone());
            if let (Some(m), None) = (&self.compare_model, &self.compare_endpoint) {
                models.push(m.clone());
            }
        }
        models
    }

    /// The in-process server's settings: `serve`'s defaults, this command's device, models and
    /// rounds.
    fn config(&self) -> anyhow::Result<crate::config::ServeConfig> {
        ServeArgs::in_process(&self.source, self.device, self.local_models(), self.rounds)
    }
}

/// Runs `ptr-server eval`: the evaluation with a progress bar, then the table on stdout.
pub async fn run(args: EvalArgs) -> anyhow::Result<()> {
    let local = if args.local_models().is_empty() {
        None
    } else {
        Some(start_local(&args).await?)
    };
    let spec = args.spec(local.as_ref())?;
    let bar = BarSink::new();
    let result = eval::run(&spec, &bar, &AtomicBool::new(false)).await;
    bar.bar.finish_and_clear();
    let report = result?;
    print!("{}", report.text());
    println!(
        "\nWrote report.md, summary.json, accuracy.svg and items.jsonl to {}",
        spec.out.display()
    );
    Ok(())
}

/// The endpoint named in reports for systems this process serves.
const IN_PROCESS: &str = "this process";

/// Serves the local models (those without an endpoint) from models.toml through the application core's `/v1` router, called in
/// process, and waits until they are loaded.
async fn start_local(args: &EvalArgs) -> anyhow::Result<LocalApi> {
    let config = args.config()?;
    let models = &config.load;
    let app = crate::app::App::build(&config)?;
    let (_, routes) = crate::server::routes(&config, &app);
    let api = LocalApi::default();
    api.bind(routes);
    app.start()?;
    eprintln!("loading {} in process", models.join(", "));
    for id in models {
        // Start-up models are queued by `start`: each is `loading` until its load has ended.
        let status = app.models.settled(id).await?;
        if status.status != crate::models::ModelState::Loaded {
            bail!(
                "the in-process server could not load `{id}`: {}",
                status.error.unwrap_or_default()
            );
        }
    }
    Ok(api)
}

/// A terminal progress bar (drawn only on a terminal).
struct BarSink {
    bar: ProgressBar,
}

impl BarSink {
    fn new() -> Self {
        let bar = ProgressBar::new(0);
        let style = ProgressStyle::with_template(
            "{bar:40} {pos}/{len} items  {elapsed_precise}  eta {eta}",
        )
        .expect("a valid progress template: this is a bug");
        bar.set_style(style);
        Self { bar }
    }
}

impl ProgressSink for BarSink {
    fn progress(&self, progress: Progress) {
        self.bar.set_length(progress.total as u64);
        self.bar.set_position(progress.done as u64);
    }

    fn note(&self, message: &str) {
        // A hidden bar (not a terminal) drops `println`: notes must still reach the log.
        if self.bar.is_hidden() {
            eprintln!("{message}");
        } else {
            self.bar.println(message);
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    fn args(extra: &[&str]) -> EvalArgs {
        let mut argv = vec![
            "ptr-server",
            "eval",
            "--task",
            "gsm8k",
            "--data",
            "g.jsonl",
            "--model",
            "m",
        ];
        argv.extend_from_slice(extra);
        match Cli::parse_from(argv).command {
            Command::Eval(args) => *args,
            _ => unreachable!(),
        }
    }

    #[test]
    fn the_device_and_the_local_models_reach_the_engine_options() {
        let a = args(&[
            "--device",
            "cuda:1",
            "--compare-model",
            "c",
            "--rounds",
            "20",
        ]);
        let config = a.config().unwrap();
        assert_eq!(config.device, crate::engine::DeviceSpec::Cuda(1));
        assert_eq!(config.load, ["m", "c"]);
        assert!(
            config.max_rounds >= 20,
            "the server allows the rounds asked"
        );
        let options = crate::app::load_options(&config);
        assert_eq!(options.device, crate::engine::DeviceSpec::Cuda(1));
        let cpu = args(&[]).config().unwrap();
        assert_eq!(cpu.device, crate::engine::DeviceSpec::Cpu);
        assert_eq!(cpu.load, ["m"]);
    }

    #[test]
    fn endpoints_modes_and_labels() {
        let a = args(&["--endpoint", "http://h:1"]);
        assert!(a.local_models().is_empty());
        let spec = a.spec(None).unwrap();
        assert_eq!(spec.systems[0].rounds_mode, RoundsMode::Client);
        assert_eq!(
            (
                spec.decoding.rounds,
                spec.decoding.max_tokens,
                spec.decoding.temperature
            ),
            (3, 256, 0.0)
        );
        assert_eq!(spec.decoding.instruction, DEFAULT_INSTRUCTION);

        let a = args(&["--compare-model", "m"]);
        assert_eq!(a.local_models(), ["m", "m"]);
        let spec = a.spec(Some(&LocalApi::default())).unwrap();
        let labels: Vec<_> = spec.systems.iter().map(|s| s.label.as_str()).collect();
        assert_eq!(labels, ["m", "m (compare)"]);
        assert!(spec
            .systems
            .iter()
            .all(|s| s.rounds_mode == RoundsMode::Server
                && s.endpoint == IN_PROCESS
                && s.local.is_some()));
        assert!(
            args(&[]).spec(None).is_err(),
            "no endpoint and nothing in process"
        );

        let a = args(&[
            "--endpoint",
            "http://a",
            "--compare-model",
            "t",
            "--compare-endpoint",
            "http://b",
            "--compare-server-rounds",
        ]);
        let spec = a.spec(Some(&LocalApi::default())).unwrap();
        assert!(spec.systems.iter().all(|s| s.local.is_none()));
        assert_eq!(spec.systems[1].endpoint, "http://b");
        assert_eq!(spec.systems[1].rounds_mode, RoundsMode::Server);
        assert_eq!(spec.systems[0].rounds_mode, RoundsMode::Client);

        let a = args(&["--task", "arc", "--endpoint", "http://a"]);
        assert!(a.spec(None).is_err(), "two tasks, one file");

        let a = args(&["--endpoint", "http://a", "--api-key", "sekrit"]);
        assert!(!format!("{a:?}").contains("sekrit"));
        assert_eq!(
            a.spec(None).unwrap().systems[0].api_key.as_deref(),
            Some("sekrit")
        );
    }
}
