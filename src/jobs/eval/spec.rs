//! [`EvalJobSpec`]: the body of `POST /admin/v1/evals/jobs`, and the checks that need no lookup.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::eval::{RoundsMode, TaskKind};
use crate::jobs::SpecError;

/// Declares a request body (strict: an unknown field is a 400) that ends with the settings of an
/// evaluation run, written here once: the eval job's body ([`EvalJobSpec`]) and a pipeline's
/// `eval` stage take them alike.
macro_rules! with_eval_settings {
    ($(#[$meta:meta])* pub struct $name:ident { $($own:tt)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            $($own)*
            /// One data file (a file id, purpose `evals` or `user_data`) per task.
            pub tasks: Vec<$crate::jobs::eval::EvalTask>,
            /// Refinement rounds per item.
            #[serde(default = "crate::jobs::eval::default_rounds")]
            pub rounds: u32,
            /// Items per task [default: all].
            pub limit: Option<usize>,
            #[serde(default = "crate::jobs::eval::default_max_tokens")]
            pub max_tokens: u32,
            #[serde(default)]
            pub temperature: f64,
            pub instruction: Option<String>,
            /// Items asked at once (greedy answers do not depend on it on a ptr-server).
            #[serde(default = "crate::jobs::eval::default_concurrency")]
            pub concurrency: usize,
            /// Start no new item after this many minutes of a run; the report covers the items
            /// done (items are asked item-major, so every task and system gets about as many).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub time_limit_minutes: Option<f64>,
        }
    };
}
pub(crate) use with_eval_settings;

with_eval_settings! {
    /// `POST /evals/jobs`.
    pub struct EvalJobSpec {
        pub model: String,
        /// An OpenAI-compatible endpoint (`…/v1` or its base); default: this server.
        pub endpoint: Option<String>,
        /// The environment variable holding the endpoint's API key.
        pub api_key_env: Option<String>,
        /// A second system on the same items (e.g. the base model vs a PTR-tuned one).
        pub compare: Option<CompareSystem>,
        /// Further systems on the same items, after `compare` (e.g. a pipeline's ablations).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub more_systems: Vec<CompareSystem>,
        /// `client` (rounds laid out by the harness; any server) or `server` (ptr-server rounds).
        #[serde(default = "server_rounds")]
        pub rounds_mode: String,
        pub metadata: Option<serde_json::Value>,
    }
}

/// One task of an evaluation job.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EvalTask {
    pub task: TaskKind,
    pub file: String,
}

/// The second system of a comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompareSystem {
    pub model: String,
    pub endpoint: Option<String>,
    pub api_key_env: Option<String>,
}

pub(crate) fn default_rounds() -> u32 {
    3
}
pub(crate) fn default_concurrency() -> usize {
    1
}
pub(crate) fn default_max_tokens() -> u32 {
    256
}
fn server_rounds() -> String {
    "server".into()
}

impl EvalJobSpec {
    /// Checks what needs no lookup.
    pub fn check(&self) -> Result<RoundsMode, SpecError> {
        let e = |p: &str, m: &str| Err(SpecError::new(p, m));
        if self.tasks.is_empty() {
            return e("tasks", "`tasks` needs at least one {task, file}");
        }
        if !(1..=16).contains(&self.rounds) {
            return e("rounds", "`rounds` must be between 1 and 16");
        }
        if !(1..=32_768).contains(&self.max_tokens) {
            return e("max_tokens", "`max_tokens` must be between 1 and 32768");
        }
        if !(0.0..=2.0).contains(&self.temperature) {
            return e("temperature", "`temperature` must be between 0 and 2");
        }
        if self.limit == Some(0) {
            return e("limit", "`limit` must be at least 1");
        }
        if !(1..=64).contains(&self.concurrency) {
            return e("concurrency", "`concurrency` must be between 1 and 64");
        }
        if self
            .time_limit_minutes
            .is_some_and(|m| !(m.is_finite() && m > 0.0))
        {
            return e(
                "time_limit_minutes",
                "`time_limit_minutes` must be a positive number of minutes",
            );
        }
        for (p, url) in [
            ("endpoint", &self.endpoint),
            (
                "compare.endpoint",
                &self.compare.as_ref().and_then(|c| c.endpoint.clone()),
            ),
        ] {
            if url
                .as_ref()
                .is_some_and(|u| !(u.starts_with("http://") || u.starts_with("https://")))
            {
                return e(p, "an endpoint must be an http(s) URL");
            }
        }
        for (p, var) in [
            ("api_key_env", &self.api_key_env),
            (
                "compare.api_key_env",
                &self.compare.as_ref().and_then(|c| c.api_key_env.clone()),
            ),
        ] {
            if let Some(v) = var {
                if std::env::var(v).is_err() {
                    let message = format!("the server has no environment variable `{v}`");
                    return Err(SpecError::new(p, message));
                }
            }
        }
        for (i, c) in self.more_systems.iter().enumerate() {
            if c.model.trim().is_empty() {
                return Err(SpecError::new(
                    format!("more_systems[{i}].model"),
                    "`model` must not be empty",
                ));
            }
            if c.endpoint.is_some() || c.api_key_env.is_some() {
                return Err(SpecError::new(
                    format!("more_systems[{i}].endpoint"),
                    "`more_systems` are models of this server",
                ));
            }
        }
        match self.rounds_mode.as_str() {
            "server" => Ok(RoundsMode::Server),
            "client" => Ok(RoundsMode::Client),
            _ => e("rounds_mode", "`rounds_mode` must be `server` or `client`"),
        }
    }
}
