//! Running the server: bind, start serving at once (so `/health` answers and `/ready` says 503
//! while models load), load the models in the background through the [`ModelManager`], and shut
//! down gracefully — stop accepting on SIGINT/SIGTERM, let running streams finish within the
//! grace period, then return.

use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::ServeConfig;
use crate::http::{router, AppState, Limits};

/// A running server.
pub struct Server {
    /// Where it listens (useful with port 0).
    pub addr: SocketAddr,
    pub state: AppState,
    stop: watch::Sender<bool>,
    served: JoinHandle<std::io::Result<()>>,
    /// How long running streams and jobs get to stop.
    grace: Duration,
}

fn limits(config: &ServeConfig) -> Limits {
    Limits {
        max_rounds: config.max_rounds,
        max_body_bytes: config.max_body_bytes,
        default_max_tokens: config.default_max_tokens,
        request_timeout: Duration::from_secs(config.request_timeout_secs),
        stream_write_timeout: Duration::from_secs(config.stream_write_timeout_secs),
    }
}

/// Binds and starts serving; models load in the background. A model that fails to load is
/// marked failed and the server keeps serving the others (`/ready` stays 503 while the default
/// model is not serving).
pub async fn start(config: ServeConfig) -> anyhow::Result<Server> {
    let app = crate::app::App::build(&config)?;
    let (state, routes) = routes(&config, &app);
    let listener = TcpListener::bind((config.host.as_str(), config.port))
        .await
        .with_context(|| format!("cannot listen on {}:{}", config.host, config.port))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "listening");
    app.start()?;

    let (stop, stopped) = watch::channel(false);
    let grace = Duration::from_secs(config.shutdown_grace_secs);
    let closing = state.closing.clone();
    let served = tokio::spawn(serve(listener, routes, closing, stopped, grace));
    Ok(Server {
        addr,
        state,
        stop,
        served,
        grace,
    })
}

/// The HTTP state and router over `app`, with the back office's in-process API bound to it
/// (its jobs reach this server's models through it). Serving it on a socket is up to the caller:
/// `build-dataset` uses it in process only.
pub fn routes(config: &ServeConfig, app: &crate::app::App) -> (AppState, axum::Router) {
    let mut state = AppState::new(
        app.models.clone(),
        limits(config),
        config.max_concurrent,
        &config.api_keys,
    );
    state.admin = app.admin.clone();
    let routes = router(state.clone());
    if let Some(admin) = &state.admin {
        admin.local.bind(routes.clone());
    }
    (state, routes)
}

/// How long streams cut at the end of the grace period get to deliver their closing events.
const CLOSE_FLUSH: Duration = Duration::from_secs(2);

async fn serve(
    listener: TcpListener,
    routes: axum::Router,
    closing: std::sync::Arc<watch::Sender<Option<Duration>>>,
    mut stopped: watch::Receiver<bool>,
    grace: Duration,
) -> std::io::Result<()> {
    let mut signal = stopped.clone();
    let app = routes.into_make_service();
    let server = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = signal.wait_for(|s| *s).await;
        })
        .into_future();
    tokio::pin!(server);
    tokio::select! {
        r = &mut server => r,
        _ = async {
            let _ = stopped.wait_for(|s| *s).await;
            tokio::time::sleep(grace).await;
        } => {
            // Running streams end with an error event (and `[DONE]`), which takes a moment to
            // reach their clients; connections still open after that are closed.
            tracing::warn!(?grace, "grace period over; ending the remaining streams");
            closing.send_replace(Some(grace));
            match tokio::time::timeout(CLOSE_FLUSH, &mut server).await {
                Ok(r) => r,
                Err(_) => {
                    tracing::warn!("closing the remaining connections");
                    Ok(())
                }
            }
        }
    }
}

impl Server {
    /// Stops accepting, and within the grace period lets running requests finish and stops
    /// running jobs at a point they resume from (queued again for the next start).
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        let jobs = async {
            if let Some(admin) = &self.state.admin {
                admin.jobs.shutdown(self.grace).await;
            }
        };
        let (served, ()) = tokio::join!(self.served, jobs);
        served??;
        Ok(())
    }

    /// Serves until `signal` fires, then shuts down gracefully.
    pub async fn run_until(self, signal: impl Future<Output = ()>) -> anyhow::Result<()> {
        signal.await;
        tracing::info!("shutting down");
        self.shutdown().await
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
