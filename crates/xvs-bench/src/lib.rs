//! xvs's benchmark tools: the traffic generator and sink (`xvs-gen`) and the harness that runs
//! every contender side by side (`xvs-bench`). The generator builds its frames with etherparse
//! and moves them with xvs-io's AF_XDP sockets; it never uses xvs's forwarding code.

pub mod frames;
pub mod reports;

/// Sleeps until CLOCK_MONOTONIC reads `t_ns` (at once if it has passed): how the generator,
/// the sinks and the harness keep one schedule across processes.
pub fn sleep_until(t_ns: u64) {
    let now = xvs_io::clock::monotonic_ns();
    if t_ns > now {
        std::thread::sleep(std::time::Duration::from_nanos(t_ns - now));
    }
}
