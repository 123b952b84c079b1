//! The worker → XDP program signal "this queue's worker is behind": an `ARRAY` map created with
//! `BPF_F_MMAPABLE`, mapped into xvsd's memory, one 64-byte slot per receive queue. The worker
//! writes its slot with a plain store (no system call); the steering program reads it for
//! every frame it would hand over and drops the frame instead while the flag is set.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};

/// Bytes per queue slot (`struct queue_gate` in steer.c).
pub const SLOT: usize = 64;
/// Queue slots in the map (`max_entries`).
pub const SLOTS: usize = 64;

/// A shared mapping of the gate map.
#[derive(Debug)]
struct Region {
    ptr: *mut u8,
    len: usize,
}

// SAFETY: the mapping is plain shared memory; every access goes through `AtomicU32`.
unsafe impl Send for Region {}
// SAFETY: as above: concurrent access is through atomics only.
unsafe impl Sync for Region {}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are exactly what mmap returned; unmapped once, here.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

/// The gate map of one interface's program, mapped.
#[derive(Debug, Clone)]
pub struct Gates {
    region: Arc<Region>,
}

impl Gates {
    /// Maps the gate map `map_fd` (an mmapable array of [`SLOTS`] × [`SLOT`] bytes).
    pub(crate) fn map(map_fd: i32) -> io::Result<Gates> {
        let len = SLOTS * SLOT;
        // SAFETY: mapping a BPF array map created with BPF_F_MMAPABLE, of exactly its size;
        // the result is checked before use.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                map_fd,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Gates {
            region: Arc::new(Region {
                ptr: ptr.cast(),
                len,
            }),
        })
    }

    /// The gate of receive queue `queue` (`None` beyond the map).
    pub fn queue(&self, queue: u32) -> Option<QueueGate> {
        ((queue as usize) < SLOTS).then(|| QueueGate {
            region: Arc::clone(&self.region),
            offset: queue as usize * SLOT,
        })
    }
}

/// One queue's gate, kept by the worker that serves the queue.
#[derive(Debug, Clone)]
pub struct QueueGate {
    region: Arc<Region>,
    offset: usize,
}

impl QueueGate {
    fn flag(&self) -> &AtomicU32 {
        // `offset` is a multiple of 64 below the mapping's length: in bounds, aligned for u32.
        let p = self
            .region
            .ptr
            .wrapping_add(self.offset)
            .cast::<AtomicU32>();
        // SAFETY: `p` points into the live mapping (it lives as long as `region`), aligned;
        // the kernel side only reads it and every access from here is atomic.
        unsafe { &*p }
    }

    /// Says whether the worker is behind (the program drops the queue's frames while it is).
    #[inline]
    pub fn set_behind(&self, behind: bool) {
        self.flag().store(u32::from(behind), Relaxed);
    }

    /// What the worker last said.
    pub fn is_behind(&self) -> bool {
        self.flag().load(Relaxed) != 0
    }
}
