//! Giving memory back to the operating system after a load peak.
//!
//! A push server's working set swings: a reconnect storm or a burst of large requests
//! allocates read buffers and output queues by the megabyte, then everything goes idle
//! again. glibc's malloc keeps freed memory in its per-thread arenas, so without help the
//! process's RSS stays at its peak for good (a 10-minute soak ended at 1.8x its start RSS,
//! almost all of it free heap). Two measures, both glibc-only and no-ops elsewhere:
//!
//! * [`tune`] fixes malloc's mmap threshold at 256 KiB. glibc raises it dynamically up to
//!   32 MiB once a large block is freed, after which big buffers come from the arena and
//!   stay there; with a fixed threshold they are mmapped and unmapped on free.
//! * [`Trimmer`] calls `malloc_trim(0)` from a shard's periodic sweep once the shard has
//!   shed many connections since its peak. That is rare (it costs a walk of the arenas,
//!   about a millisecond per 100 MB) and never on the per-message path.

/// Set the allocator's process-wide options; call once at start-up, before the shards.
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; it is called once at start-up.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
    }
}

/// Decides when a shard should return free heap memory to the OS.
#[derive(Debug, Default)]
pub struct Trimmer {
    /// Most connections seen since the last trim.
    peak: usize,
}

impl Trimmer {
    /// Connections that must have gone since the peak before a trim is worth it.
    const MIN_DROP: usize = 1024;

    /// Record the shard's current connection count; true when it fell to half its peak or
    /// less, by at least [`Self::MIN_DROP`] (then the peak restarts from here).
    pub fn should_trim(&mut self, open: usize) -> bool {
        self.peak = self.peak.max(open);
        let drop = self.peak - open;
        if drop >= Self::MIN_DROP && open <= self.peak / 2 {
            self.peak = open;
            return true;
        }
        false
    }
}

/// Return free memory at the top of every arena and free whole pages inside them.
pub fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim is thread-safe and takes each arena's lock while it works.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_after_a_large_drop_only() {
        let mut t = Trimmer::default();
        // Small swings never trim.
        for open in [10, 500, 0, 900, 20] {
            assert!(!t.should_trim(open), "{open}");
        }
        // A peak of 5,000, then down: trims once when at half or below, then re-arms.
        assert!(!t.should_trim(5000));
        assert!(!t.should_trim(3000));
        assert!(t.should_trim(2400));
        assert!(!t.should_trim(2000));
        // 1,100 gone since the new peak of 2,400, but not yet half of it.
        assert!(!t.should_trim(1300));
        assert!(t.should_trim(100));
        assert!(!t.should_trim(1200));
        assert!(t.should_trim(50));
    }

    #[test]
    fn trim_and_tune_are_safe_to_call() {
        tune();
        let v: Vec<u8> = vec![1; 4 << 20];
        drop(v);
        trim();
    }
}
