//! ptr-server: an OpenAI-compatible HTTP inference server for Progressive Thought Refinement.
//!
//! - [`model_id`] is the one rule for model ids; [`registry`] reads `models.toml`; [`fetch`] gets
//!   the weights from pinned PyPI wheels; [`models`] serves models as a run-time resource
//!   (register, load, unload, resolve).
//! - [`engine`] is the seam to the model: the [`engine::Engine`] trait, mistral.rs behind it.
//! - [`refine`] runs the refinement rounds of one request as a stream of events.
//! - [`http`] turns those into OpenAI responses, chunks and named SSE events; [`error`] is the one
//!   place errors become HTTP; [`metrics`] owns the Prometheus registry.
//! - [`app`] assembles the application once ([`app::App::build`]: the model pool and the back
//!   office of jobs) for every front-end.
//! - [`cli`] is the command line: each subcommand's arguments and what it runs; [`config`] holds
//!   the server's validated settings; [`server`] binds, loads models and shuts down gracefully;
//!   [`bench`] load-tests any OpenAI-compatible server; [`eval`] scores refinement round by round
//!   on benchmarks against any OpenAI-compatible server; both, and the dataset job's remote roles,
//!   speak to servers through [`client`], in the [`wire`] types the server itself reads and writes.
//! - [`store`] keeps files, jobs and events in SQLite; [`jobs`] runs jobs (PTR's dataset
//!   construction among them) on it; [`chatfile`] is OpenAI's chat training format; the admin
//!   routes live in [`http::admin`].
//! - [`embed`] embeds sentences (Sentence-BERT on candle) for the dataset job's consistency filter.
//! - [`train`] is the native thought-mask (LoRA) trainer behind `ptr-server train`.
//! - [`gguf`] rewrites GGUF files (requantizing, merging); [`cpu`] says what the build needs of
//!   the CPU (a C check refuses a CPU that lacks it).
//! - [`plot`] holds what the SVG charts (accuracy, similarity, loss) share.

pub mod app;
pub mod bench;
pub mod chatfile;
pub mod cli;
pub mod client;
pub mod config;
pub mod cpu;
pub mod embed;
pub mod engine;
pub mod error;
pub mod eval;
pub mod fetch;
pub mod gguf;
pub mod http;
pub mod jobs;
pub mod metrics;
pub mod model_id;
pub mod models;
pub mod plot;
pub mod refine;
pub mod registry;
pub mod server;
pub mod store;
pub mod train;
pub mod wire;

pub use http::router;
