//! The one integration-test binary: HTTP behaviour on the scripted engine, then end-to-end
//! behaviour on the real default model over a real socket.

mod admin;
mod common;
mod console;
mod errors;
mod eval;
mod fake_chat;
mod models;
mod openapi;
mod real_chat;
mod real_concurrency;
mod real_dataset;
mod real_finetune;
mod real_models;
mod real_pipeline;
mod real_refine;
mod sdk;
mod shutdown;
mod stalls;
mod train_parity;
