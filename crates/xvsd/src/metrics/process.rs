//! The standard process metrics every Prometheus client library exports (`process_*`, read
//! from /proc/self), and the build.

use super::Out;

fn proc_field(file: &str, key: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/self/{file}")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// (utime + stime in clock ticks, start time in ticks since boot, virtual size in bytes) from
/// /proc/self/stat.
fn stat() -> Option<(u64, u64, u64)> {
    let s = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The fields after the command name (which may hold spaces) start after its ')'.
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let n = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok());
    // Fields 14, 15 (utime, stime), 22 (starttime), 23 (vsize), counted from 1 with pid and
    // comm; `rest` starts at field 3.
    Some((n(11)? + n(12)?, n(19)?, n(20)?))
}

fn boot_time() -> Option<u64> {
    std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

pub(super) fn render(o: &mut Out) {
    // USER_HZ is 100 on every Linux ABI xvs builds for.
    const TICKS: f64 = 100.0;
    o.head(
        "xvs_build_info",
        "gauge",
        "The version xvsd was built from (1).",
    );
    o.val(
        "xvs_build_info",
        &[("version", env!("CARGO_PKG_VERSION"))],
        1,
    );
    if let Some((cpu, start, vsize)) = stat() {
        o.head(
            "process_cpu_seconds_total",
            "counter",
            "Total user and system CPU time spent in seconds.",
        );
        o.float("process_cpu_seconds_total", cpu as f64 / TICKS);
        if let Some(bt) = boot_time() {
            o.head(
                "process_start_time_seconds",
                "gauge",
                "Start time of the process since unix epoch in seconds.",
            );
            o.float(
                "process_start_time_seconds",
                bt as f64 + start as f64 / TICKS,
            );
        }
        o.head(
            "process_virtual_memory_bytes",
            "gauge",
            "Virtual memory size in bytes.",
        );
        o.val("process_virtual_memory_bytes", &[], vsize);
    }
    if let Some(rss) = proc_field("status", "VmRSS:") {
        o.head(
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size in bytes.",
        );
        o.val("process_resident_memory_bytes", &[], rss * 1024);
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        o.head(
            "process_open_fds",
            "gauge",
            "Number of open file descriptors.",
        );
        o.val("process_open_fds", &[], fds.count() as u64);
    }
    if let Some(max) = proc_field("limits", "Max open files") {
        o.head(
            "process_max_fds",
            "gauge",
            "Maximum number of open file descriptors.",
        );
        o.val("process_max_fds", &[], max);
    }
}
