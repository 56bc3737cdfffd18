//! Engine recycling: keeps mistral.rs's prefix cache from growing without bound on CPU.
//!
//! mistral.rs 0.8.1 keeps every finished sequence's KV cache for prefix reuse, and its eviction
//! (`PrefixCacheManagerV2::evict_caches`) only counts caches on an accelerator: on CPU nothing is
//! ever evicted, about 11 MB per request for SmolLM2 (measured: RSS 418 MB → 1.1 GB after 60
//! short requests). So after a set number of finished sequences a fresh engine is built in the
//! background and swapped in; generations still running keep the old one alive (they hold its
//! `Arc`) and it is freed, cache and all, when the last of them ends. No request waits.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use mistralrs::core::TokenSource;
use mistralrs::{GgufModelBuilder, Model};

use super::mistral::LoadOptions;

/// Owns the current mistral.rs model and replaces it when its cache has grown enough.
pub struct Recycler {
    dir: PathBuf,
    file: String,
    opts: LoadOptions,
    current: RwLock<Arc<Model>>,
    done_since_swap: AtomicU64,
    rebuilding: AtomicBool,
    recycles: AtomicU64,
}

async fn build(dir: &Path, file: &str, opts: &LoadOptions) -> anyhow::Result<Model> {
    let prefix = (opts.prefix_cache_n > 0).then_some(opts.prefix_cache_n);
    GgufModelBuilder::new(dir.to_string_lossy(), vec![file.to_string()])
        .with_token_source(TokenSource::None)
        .with_device(opts.device.to_candle()?)
        .with_max_num_seqs(opts.max_num_seqs)
        .with_prefix_cache_n(prefix)
        .build()
        .await
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
            done_since_swap: AtomicU64::new(0),
            rebuilding: AtomicBool::new(false),
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

    /// Called when a sequence ends; may start building a fresh engine in the background.
    pub fn sequence_done(self: &Arc<Self>) {
        let after = self.opts.recycle_after;
        if after == 0 || self.done_since_swap.fetch_add(1, Ordering::Relaxed) + 1 < after {
            return;
        }
        if self.rebuilding.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            self.rebuilding.store(false, Ordering::Release);
            return;
        };
        let me = self.clone();
        handle.spawn(async move {
            match build(&me.dir, &me.file, &me.opts).await {
                Ok(model) => {
                    *me.current.write().expect("model lock poisoned: this is a bug") = Arc::new(model);
                    me.done_since_swap.store(0, Ordering::Relaxed);
                    me.recycles.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(file = %me.file, "swapped in a fresh engine to free the prefix cache");
                }
                Err(e) => tracing::warn!(error = %e, "could not build a fresh engine; keeping the old one"),
            }
            me.rebuilding.store(false, Ordering::Release);
        });
    }
}
