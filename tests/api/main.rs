//! The one integration-test binary: HTTP behaviour on the scripted engine, then end-to-end
//! behaviour on the real default model over a real socket.

mod common;
mod errors;
mod fake_chat;
mod models;
mod real_chat;
mod real_models;
mod real_refine;
mod sdk;
mod shutdown;
mod stalls;
