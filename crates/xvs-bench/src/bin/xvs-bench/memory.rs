//! Memory per connection, measured: xvsd's resident set with a connection table of 1 M and
//! 10 M entries against one of 64 entries, and (full runs) again after a SYN flood has filled
//! the table, to show it stays flat.

use crate::contender::{self, Kind, Method};
use crate::measure::{self, Load};
use crate::topology::Topology;
use serde::Serialize;
use std::fmt::Write;
use std::path::Path;

/// One table size.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MemResult {
    /// Entries asked for.
    pub asked: usize,
    /// Entry slots the table has (a power of two).
    pub capacity: u64,
    /// xvsd's resident set at start, KiB.
    pub rss_kib: u64,
    /// Its resident set with a 64-entry table, KiB.
    pub base_rss_kib: u64,
    /// Bytes per slot: (rss − base) / capacity.
    pub bytes_per_slot: f64,
    /// After the fill: connections held and the resident set, KiB.
    pub filled: Option<(u64, u64)>,
}

impl MemResult {
    /// Bytes per connection held after the fill: (rss − base) / connections.
    pub fn bytes_per_conn(&self) -> Option<f64> {
        let (conns, rss) = self.filled?;
        (conns > 0).then(|| (rss.saturating_sub(self.base_rss_kib) * 1024) as f64 / conns as f64)
    }
}

fn rss_kib(pid: u32) -> Result<u64, String> {
    let path = format!("/proc/{pid}/status");
    let s = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("{path} has no VmRSS"))
}

/// Measures each size in `sizes`; with `fill` (the run's load, for its timing and its rate),
/// offers SYNs from that many sources for 20 s and measures again.
pub fn measure(
    t: &Topology,
    bins: (&Path, &Path),
    workdir: &Path,
    sizes: &[usize],
    fill: Option<&Load>,
    cores: (usize, usize),
) -> Result<Vec<MemResult>, String> {
    let (gen_core, dir_core) = cores;
    let kind = Kind::Xvs(Method::Dr, 1);
    let cores = [dir_core, gen_core];
    let rss_at = |size: usize| -> Result<(u64, contender::Running), String> {
        // The fill measures the table, not the new-connection budget in front of it.
        let r = contender::start(
            kind,
            t,
            bins.0,
            workdir,
            &cores,
            size,
            &["--syn-budget", "0"],
        )?;
        let pid = r.pid().ok_or("xvsd has no pid")?;
        // Let the workers settle (their rings and UMEM are allocated before the socket opens).
        std::thread::sleep(std::time::Duration::from_millis(300));
        Ok((rss_kib(pid)?, r))
    };
    let (base, r) = rss_at(64)?;
    r.stop(t)?;
    let mut out = Vec::new();
    for &asked in sizes {
        let (rss, r) = rss_at(asked)?;
        let capacity = asked.max(64).next_power_of_two() as u64;
        let mut m = MemResult {
            asked,
            capacity,
            rss_kib: rss,
            base_rss_kib: base,
            bytes_per_slot: (rss.saturating_sub(base) * 1024) as f64 / capacity as f64,
            filled: None,
        };
        if let Some(base) = fill {
            let load = Load {
                traffic: "syn".into(),
                size: 64,
                flows: asked as u32,
                rate: base.rate,
                warmup: 0.5,
                duration: 20.0,
                latency: false,
                background: None,
                ..base.clone()
            };
            let control = r.control_socket();
            let s = measure::sample(t, bins.1, &load, 1, gen_core, dir_core, control.as_deref());
            let pid = r.pid().ok_or("xvsd has no pid")?;
            let after = rss_kib(pid);
            r.stop(t)?;
            let s = s?;
            let entries = s.xvsd.as_ref().map_or(0, |x| x.table_entries);
            m.filled = Some((entries, after?));
        } else {
            r.stop(t)?;
        }
        out.push(m);
    }
    Ok(out)
}

/// The memory table.
pub fn render(results: &[MemResult]) -> String {
    let mut s = String::new();
    if results.is_empty() {
        return s;
    }
    let _ = writeln!(
        s,
        "\nmemory: xvsd's resident set by connection-table size (base: a 64-entry table, {} KiB)\n",
        results[0].base_rss_kib
    );
    let _ = writeln!(
        s,
        "{:>12} {:>12} {:>10} {:>11} {:>34} {:>11}",
        "asked",
        "slots",
        "RSS MiB",
        "bytes/slot",
        "after a SYN flood: conns, RSS MiB",
        "bytes/conn"
    );
    for m in results {
        let _ = writeln!(
            s,
            "{:>12} {:>12} {:>10.1} {:>11.1} {:>34} {:>11}",
            m.asked,
            m.capacity,
            m.rss_kib as f64 / 1024.0,
            m.bytes_per_slot,
            m.filled.map_or("-".into(), |(c, r)| format!(
                "{c}, {:.1}",
                r as f64 / 1024.0
            )),
            m.bytes_per_conn().map_or("-".into(), |b| format!("{b:.1}")),
        );
    }
    s
}
