//! The PTR life cycle as one job (`POST /admin/v1/pipelines`, `ptr-server ptr-model`): records →
//! fine-tuning (one job per variant: the thought mask, and the paper's ablations) → the base and
//! tuned models evaluated on the same items → a report folder. It wires nothing itself: each
//! stage is the existing job of its kind, created through [`crate::jobs::JobContext::child`].

mod report;
mod runner;
pub mod spec;
mod state;

pub use runner::PipelineRunner;
pub use spec::PipelineSpec;
pub use state::{PipelineState, StageJob};
