//! PTR phase 1 as a job: build the refinement dataset. For each query a *weak* model writes
//! thought 1, then thoughts 2..n, each asked with the refinement instruction on the growing
//! conversation (the server's own round layout); a *strong* model, shown the query, the thoughts
//! and in-context examples, writes the final answer; the consistency filter keeps the records
//! whose answer samples agree (Sentence-BERT), match the gold answer where there is one, and do
//! not copy the last thought. The output is an OpenAI `fine-tune` file, ready for a fine-tuning
//! job. [`export`] writes a finished job's outputs into a folder (`ptr-server build-dataset`).

pub mod build;
pub mod chart;
pub mod export;
pub mod filter;
pub mod generate;
pub mod icl;
pub mod input;
pub mod resolve;
mod runner;
pub mod spec;
mod state;
pub mod summary;

pub use runner::{DatasetRunner, EmbedderLoader};
pub use spec::DatasetSpec;
pub use state::{DatasetState, RequestCounts};
