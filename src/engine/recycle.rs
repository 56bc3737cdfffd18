//! Engine recycling: keeps mistral.rs's prefix cache from growing without bound on CPU.
//!
//! mistral.rs 0.8.1 keeps every finished sequence's KV cache for prefix reuse, and its eviction
//! (`PrefixCacheManagerV2::evict_caches`) only counts caches on an accelerator: on CPU nothing is
//! ever evicted, about 11 MB per request for SmolLM2 (measured: RSS 418 MB → 1.1 GB after 60
//! short requests). So after a set number of finished sequences a fresh engine is built in the
//! background and swapped in; generations still running keep the old one alive (they hold its
//! `Arc`) and it is freed, cache and all, when the last of them ends. No request waits.
//!
//! Bounds: the GGUF load is synchronous, so every build runs on a blocking thread, never on a
//! runtime worker. At most one retired engine is alive at a time: while the last one still has
//! generations running, no new build starts. A failed build is retried only after a back-off
//! that doubles with each consecutive failure ([`backoff`]).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, Instant};

use mistralrs::core::TokenSource;
use mistralrs::{GgufModelBuilder, Model};

use super::device::DeviceSpec;

/// Engine-level load settings.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    pub device: DeviceSpec,
    /// Sequences the engine batches together.
    pub max_num_seqs: usize,
    /// Finished sequences whose KV cache is kept for prefix reuse (0 disables it).
    pub prefix_cache_n: usize,
    /// Swap in a fresh engine after this many finished sequences (0 = never); see [`Recycler`].
    pub recycle_after: u64,
}

/// The wait after the first failed build; it doubles per consecutive failure.
const FIRST_BACKOFF: Duration = Duration::from_secs(30);
/// The longest wait between builds after failures.
const MAX_BACKOFF: Duration = Duration::from_secs(600);

/// How long to wait before the next build after `failures` consecutive failed ones.
fn backoff(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    (FIRST_BACKOFF * 2u32.pow(doublings)).min(MAX_BACKOFF)
}

/// Owns the current mistral.rs model and replaces it when its cache has grown enough.
pub struct Recycler {
    dir: PathBuf,
    file: String,
    opts: LoadOptions,
    current: RwLock<Arc<Model>>,
    /// The engine swapped out last; alive while generations still run on it.
    retired: Mutex<Weak<Model>>,
    done_since_swap: AtomicU64,
    rebuilding: AtomicBool,
    /// Consecutive failed builds, and when the last one failed.
    failures: Mutex<(u32, Option<Instant>)>,
    recycles: AtomicU64,
}

async fn build_here(dir: &Path, file: &str, opts: &LoadOptions) -> anyhow::Result<Model> {
    let prefix = (opts.prefix_cache_n > 0).then_some(opts.prefix_cache_n);
    let builder = GgufModelBuilder::new(dir.to_string_lossy(), vec![file.to_string()]);
    super::device::place(builder, opts.device)?
        .with_token_source(TokenSource::None)
        .with_max_num_seqs(opts.max_num_seqs)
        .with_prefix_cache_n(prefix)
        .build()
        .await
}

/// Builds a model on a blocking thread: loading the GGUF file is synchronous work that would
/// otherwise stall a runtime worker and every request scheduled on it.
async fn build(dir: &Path, file: &str, opts: &LoadOptions) -> anyhow::Result<Model> {
    let handle = tokio::runtime::Handle::current();
    let (dir, file, opts) = (dir.to_path_buf(), file.to_string(), opts.clone());
    tokio::task::spawn_blocking(move || handle.block_on(build_here(&dir, &file, &opts))).await?
}

impl Recycler {
    /// Loads the model for the first time.
    pub async fn load(dir: PathBuf, file: String, opts: LoadOptions) -> anyhow::Result<Arc<Self>> {
        let model = build(&dir, &file, &opts).await?;
        Ok(Arc::new(Self {
            dir,
            file,
            opts,
            current: RwLock::new(Arc::new(model)),
            retired: Mutex::new(Weak::new()),
            done_since_swap: AtomicU64::new(0),
            rebuilding: AtomicBool::new(false),
            failures: Mutex::new((0, None)),
            recycles: AtomicU64::new(0),
        }))
    }

    /// The model new work goes to.
    pub fn model(&self) -> Arc<Model> {
        self.current
            .read()
            .expect("model lock poisoned: this is a bug")
            .clone()
    }

    /// Fresh engines swapped in so far.
    pub fn recycles(&self) -> u64 {
        self.recycles.load(Ordering::Relaxed)
    }

    /// Whether a build may start now: no retired engine is still alive, and no back-off runs.
    fn may_build(&self) -> bool {
        let retired_alive = self
            .retired
            .lock()
            .expect("retired lock poisoned: this is a bug")
            .strong_count()
            > 0;
        let (failures, last) = *self
            .failures
            .lock()
            .expect("failures lock poisoned: this is a bug");
        let backing_off = last.is_some_and(|at| at.elapsed() < backoff(failures));
        !retired_alive && !backing_off
    }

    /// Called when a sequence ends; may start building a fresh engine in the background.
    pub fn sequence_done(self: &Arc<Self>) {
        let after = self.opts.recycle_after;
        if after == 0 || self.done_since_swap.fetch_add(1, Ordering::Relaxed) + 1 < after {
            return;
        }
        if !self.may_build() || self.rebuilding.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            self.rebuilding.store(false, Ordering::Release);
            return;
        };
        let me = self.clone();
        handle.spawn(async move {
            match build(&me.dir, &me.file, &me.opts).await {
                Ok(model) => me.swap_in(model),
                Err(e) => {
                    let mut failures = me.failures.lock().expect("failures lock poisoned: this is a bug");
                    *failures = (failures.0 + 1, Some(Instant::now()));
                    tracing::warn!(error = %e, retry_in = ?backoff(failures.0), "could not build a fresh engine; keeping the old one");
                }
            }
            me.rebuilding.store(false, Ordering::Release);
        });
    }

    fn swap_in(&self, model: Model) {
        let old = std::mem::replace(
            &mut *self
                .current
                .write()
                .expect("model lock poisoned: this is a bug"),
            Arc::new(model),
        );
        *self
            .retired
            .lock()
            .expect("retired lock poisoned: this is a bug") = Arc::downgrade(&old);
        *self
            .failures
            .lock()
            .expect("failures lock poisoned: this is a bug") = (0, None);
        self.done_since_swap.store(0, Ordering::Relaxed);
        self.recycles.fetch_add(1, Ordering::Relaxed);
        tracing::info!(file = %self.file, "swapped in a fresh engine to free the prefix cache");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_up_to_a_cap() {
        assert_eq!(backoff(1), Duration::from_secs(30));
        assert_eq!(backoff(2), Duration::from_secs(60));
        assert_eq!(backoff(3), Duration::from_secs(120));
        assert_eq!(backoff(10), MAX_BACKOFF);
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
    }
}
