//! The clocks workers and tools read: CLOCK_MONOTONIC, the one every process on the machine
//! shares (and `bpf_ktime_get_ns` reads), and its coarse variant, which costs a memory read
//! instead of a clock-source read and is fine for the connection table's seconds.

fn read(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; both clocks always exist.
    unsafe { libc::clock_gettime(clock, &raw mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// CLOCK_MONOTONIC in nanoseconds: one process can stamp a packet and another measure its age.
pub fn monotonic_ns() -> u64 {
    read(libc::CLOCK_MONOTONIC)
}

/// CLOCK_MONOTONIC_COARSE in nanoseconds (the last tick, a few milliseconds behind
/// [`monotonic_ns`] at most).
pub fn coarse_ns() -> u64 {
    read(libc::CLOCK_MONOTONIC_COARSE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coarse_trails_the_fine_clock_by_at_most_a_tick() {
        let a = monotonic_ns();
        let c = coarse_ns();
        let b = monotonic_ns();
        assert!(c <= b, "coarse {c} ahead of fine {b}");
        // One tick is at most 10 ms (HZ 100); allow for the read's own delay.
        assert!(
            a.saturating_sub(c) < 20_000_000,
            "coarse {c} far behind {a}"
        );
    }
}
