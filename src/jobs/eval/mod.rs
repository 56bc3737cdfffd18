//! The evaluation as an admin job (`POST /admin/v1/evals/jobs`): the same [`crate::eval::run`]
//! as `ptr-server eval`, on this server's models (its own `/v1` API called in process,
//! [`crate::client::LocalApi`], so an item waits for a slot like any request) or any
//! OpenAI-compatible endpoint, with a progress count and events, cancel, and resume (the output
//! folder's `items.jsonl` is the resume point). The report, summary, chart and items become
//! files of the job.

mod runner;
mod spec;
mod state;

pub use runner::EvalRunner;
pub(crate) use spec::{
    default_concurrency, default_max_tokens, default_rounds, with_eval_settings,
};
pub use spec::{CompareSystem, EvalJobSpec, EvalTask};
pub use state::EvalState;
