//! Engine-side counters, kept by each engine and read by `/metrics` at scrape time. They describe
//! the engine's own state (sequences it still runs), which is how tests prove that a cancelled
//! request really stopped generating rather than merely stopped being read.

use std::sync::atomic::{AtomicU64, Ordering};

/// Live counters owned by one engine.
#[derive(Debug, Default)]
pub struct EngineStats {
    active_sequences: AtomicU64,
    cancelled_sequences: AtomicU64,
    continued: AtomicU64,
}

/// A point-in-time copy of [`EngineStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// Sequences the engine still holds (running, or cancelled but not yet released).
    pub active_sequences: u64,
    /// Sequences stopped because their consumer went away.
    pub cancelled_sequences: u64,
    /// Fresh engines swapped in to free the prefix cache.
    pub recycles: u64,
    /// Prompts sent as exact token ids continuing an earlier answer.
    pub token_continuations: u64,
}

impl EngineStats {
    pub fn sequence_started(&self) {
        self.active_sequences.fetch_add(1, Ordering::Relaxed);
    }

    pub fn sequence_released(&self) {
        self.active_sequences.fetch_sub(1, Ordering::Relaxed);
    }

    pub fn continued(&self) {
        self.continued.fetch_add(1, Ordering::Relaxed);
    }

    pub fn sequence_cancelled(&self) {
        self.cancelled_sequences.fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            active_sequences: self.active_sequences.load(Ordering::Relaxed),
            cancelled_sequences: self.cancelled_sequences.load(Ordering::Relaxed),
            recycles: 0,
            token_continuations: self.continued.load(Ordering::Relaxed),
        }
    }
}
