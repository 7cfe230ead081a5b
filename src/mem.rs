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
//! * [`Trimmer`] calls `malloc_trim(0)` from a shard's periodic sweep when there is
//!   something to give back: the shard has shed many connections since its peak, or, checked
//!   every 10 s, the allocator holds at least 4 MiB of free heap (`mallinfo2`). Both are rare
//!   (a trim walks the arenas, about a millisecond per 100 MB) and never on the per-message
//!   path.

use std::time::{Duration, Instant};

/// Set the allocator's process-wide options; call once at start-up, before the shards.
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; it is called once at start-up.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
    }
}

/// Decides when a shard should return free heap memory to the OS.
#[derive(Debug)]
pub struct Trimmer {
    /// Most connections seen since the last trim.
    peak: usize,
    /// When the free heap was last looked at.
    checked: Instant,
    /// The least free heap seen since the last trim: a trim releases the pages of free
    /// chunks but they stay free chunks, so what counts is how much more became free.
    free_floor: usize,
}

impl Default for Trimmer {
    fn default() -> Self {
        Trimmer {
            peak: 0,
            checked: Instant::now(),
            free_floor: 0,
        }
    }
}

impl Trimmer {
    /// Connections that must have gone since the peak before a trim is worth it.
    const MIN_DROP: usize = 1024;
    /// How often the allocator's free heap is looked at.
    const CHECK_EVERY: Duration = Duration::from_secs(10);
    /// Newly freed heap worth giving back.
    const FREE_HEAP: usize = 4 << 20;

    /// Called from the sweep: trim when the connections fell to half their peak or less by
    /// at least `MIN_DROP`, or when the periodic check finds at least
    /// `FREE_HEAP` more free heap than the least seen since the last trim.
    pub fn tick(&mut self, open: usize, now: Instant) {
        let mut due = self.after_drop(open);
        if now.saturating_duration_since(self.checked) >= Self::CHECK_EVERY {
            self.checked = now;
            if let Some(free) = free_heap_bytes() {
                self.free_floor = self.free_floor.min(free);
                due |= free - self.free_floor >= Self::FREE_HEAP;
            }
        }
        if due {
            trim();
            self.free_floor = free_heap_bytes().unwrap_or(0);
        }
    }

    /// Record the shard's connection count; true when it fell to half its peak or less, by
    /// at least [`Self::MIN_DROP`] (then the peak restarts from here).
    fn after_drop(&mut self, open: usize) -> bool {
        self.peak = self.peak.max(open);
        let drop = self.peak - open;
        if drop >= Self::MIN_DROP && open <= self.peak / 2 {
            self.peak = open;
            return true;
        }
        false
    }
}

/// Bytes the allocator holds free (in its arenas, not returned to the OS), if known.
pub fn free_heap_bytes() -> Option<usize> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallinfo2 only reads allocator statistics (glibc >= 2.33).
        let info = unsafe { libc::mallinfo2() };
        Some(info.fordblks)
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        None
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
            assert!(!t.after_drop(open), "{open}");
        }
        // A peak of 5,000, then down: trims once when at half or below, then re-arms.
        assert!(!t.after_drop(5000));
        assert!(!t.after_drop(3000));
        assert!(t.after_drop(2400));
        assert!(!t.after_drop(2000));
        // 1,100 gone since the new peak of 2,400, but not yet half of it.
        assert!(!t.after_drop(1300));
        assert!(t.after_drop(100));
        assert!(!t.after_drop(1200));
        assert!(t.after_drop(50));
    }

    fn rss_kib() -> u64 {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("VmRSS:"))
                    .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
            })
            .unwrap_or(0)
    }

    #[test]
    fn fragmented_free_heap_is_seen_and_given_back() {
        tune();
        // 16 MiB of 16 KiB blocks (below the mmap threshold); every other one is freed, so
        // the free memory sits in holes that glibc never returns on its own.
        let mut blocks: Vec<Vec<u8>> = (0..1024).map(|_| vec![1u8; 16 << 10]).collect();
        let kept: Vec<Vec<u8>> = blocks.drain(..).step_by(2).collect();
        let Some(free) = free_heap_bytes() else {
            return;
        };
        assert!(free >= 6 << 20, "{free} bytes free");
        let before = rss_kib();
        let mut t = Trimmer::default();
        t.tick(0, Instant::now() + Trimmer::CHECK_EVERY);
        let after = rss_kib();
        assert!(
            after + 4096 <= before,
            "RSS {before} KiB -> {after} KiB after the trim"
        );
        // Nothing new became free: the next check does not trim again.
        assert_eq!(t.free_floor, free_heap_bytes().unwrap_or(0));
        drop(kept);
    }
}
