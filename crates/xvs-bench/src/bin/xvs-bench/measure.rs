//! One measurement: sinks and generator started on a common CLOCK_MONOTONIC schedule, the
//! director core's busy time read from /proc/stat over the same window.

use crate::topology::Topology;
use serde::Serialize;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use xvs_bench::reports::{Latency, SinkReport, TxReport};
use xvs_bench::sleep_until;
use xvs_io::clock::monotonic_ns;

/// What the generator sends and for how long.
#[derive(Debug, Clone)]
pub struct Load {
    /// `udp`, `syn` or `tcp`.
    pub traffic: String,
    /// Frame size, FCS included.
    pub size: usize,
    /// Distinct flows.
    pub flows: u32,
    /// Packets per second (flat out if absent).
    pub rate: Option<f64>,
    /// Seconds before the window.
    pub warmup: f64,
    /// Window, seconds.
    pub duration: f64,
    /// Measure latency at the sinks.
    pub latency: bool,
    /// A UDP background stream beside the main traffic: (flows, packets per second).
    pub background: Option<(u32, f64)>,
    /// Seconds between starting the generator and sinks and the start of traffic (time for
    /// them to attach and bind).
    pub lead: f64,
    /// IPv6 frames (clients 2001:db8:ff::/48 to the IPv6 VIP) instead of IPv4.
    pub ipv6: bool,
}

/// xvsd's own account of the window (from its control socket).
#[derive(Debug, Clone, Default, Serialize)]
pub struct XvsdWindow {
    /// Connections created per second.
    pub conns_created_per_s: f64,
    /// Connections evicted per second (the table was full).
    pub conns_evicted_per_s: f64,
    /// Connection-table entries at the end of the window.
    pub table_entries: u64,
    /// Connection-table capacity.
    pub table_capacity: u64,
    /// Frames that found a TX ring full, per second.
    pub tx_ring_full_per_s: f64,
    /// Frames the kernel dropped at the AF_XDP sockets per second (XDP_STATISTICS: receive
    /// ring full, fill ring empty, other).
    pub xsk_rx_ring_full_per_s: f64,
    /// See [`XvsdWindow::xsk_rx_ring_full_per_s`].
    pub xsk_fill_ring_empty_per_s: f64,
    /// See [`XvsdWindow::xsk_rx_ring_full_per_s`].
    pub xsk_rx_dropped_per_s: f64,
    /// Frames the steering program dropped because the worker said it was behind, per second.
    pub steer_behind_per_s: f64,
    /// SYNs the steering program dropped beyond the new-connection budget, per second.
    pub steer_syn_over_budget_per_s: f64,
    /// Frames the forwarding core dropped (every reason), per second.
    pub forward_drops_per_s: f64,
}

/// One `stats` reply of xvsd.
fn xvsd_stats(sock: &Path) -> Result<serde_json::Value, String> {
    use std::io::{BufRead, BufReader, Write};
    let mut s = std::os::unix::net::UnixStream::connect(sock)
        .map_err(|e| format!("{}: {e}", sock.display()))?;
    s.write_all(b"{\"v\":1,\"cmd\":\"stats\"}\n")
        .map_err(|e| format!("xvsd stats: {e}"))?;
    let mut line = String::new();
    BufReader::new(s)
        .read_line(&mut line)
        .map_err(|e| format!("xvsd stats: {e}"))?;
    serde_json::from_str(&line).map_err(|e| format!("xvsd stats: {e}"))
}

fn xvsd_window(a: &serde_json::Value, b: &serde_json::Value, seconds: f64) -> XvsdWindow {
    let n = |v: &serde_json::Value, k: &str| v[k].as_u64().unwrap_or(0);
    let ring_full = |v: &serde_json::Value| -> u64 {
        v["workers"]
            .as_array()
            .map_or(0, |w| w.iter().map(|x| n(x, "tx_ring_full")).sum())
    };
    let rate = |k: &str| n(b, k).saturating_sub(n(a, k)) as f64 / seconds;
    let sockets = |v: &serde_json::Value, k: &str| -> u64 {
        v["workers"].as_array().map_or(0, |w| {
            w.iter()
                .flat_map(|x| x["sockets"].as_array().into_iter().flatten())
                .map(|s| n(s, k))
                .sum()
        })
    };
    let steer = |v: &serde_json::Value, k: &str| -> u64 {
        v["steering"]
            .as_array()
            .map_or(0, |w| w.iter().map(|x| n(x, k)).sum())
    };
    let drops = |v: &serde_json::Value| -> u64 {
        v["drops"].as_object().map_or(0, |m| {
            m.values().filter_map(serde_json::Value::as_u64).sum()
        })
    };
    let per_s = |f: &dyn Fn(&serde_json::Value) -> u64| f(b).saturating_sub(f(a)) as f64 / seconds;
    XvsdWindow {
        xsk_rx_ring_full_per_s: per_s(&|v| sockets(v, "rx_ring_full")),
        xsk_fill_ring_empty_per_s: per_s(&|v| sockets(v, "rx_fill_ring_empty")),
        xsk_rx_dropped_per_s: per_s(&|v| sockets(v, "rx_dropped")),
        steer_behind_per_s: per_s(&|v| steer(v, "dropped_worker_behind")),
        steer_syn_over_budget_per_s: per_s(&|v| steer(v, "dropped_syn_over_budget")),
        forward_drops_per_s: per_s(&drops),
        conns_created_per_s: rate("conns_created"),
        conns_evicted_per_s: rate("conns_evicted"),
        table_entries: n(&b["conn_table"], "entries"),
        table_capacity: n(&b["conn_table"], "capacity"),
        tx_ring_full_per_s: ring_full(b).saturating_sub(ring_full(a)) as f64 / seconds,
    }
}

/// One sample.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Sample {
    /// Frames the generator sent in the window, per second.
    pub offered_pps: f64,
    /// Packets the sinks counted in the window, per second.
    pub delivered_pps: f64,
    /// Share of the window the director core was busy (0 to 1).
    pub director_busy: f64,
    /// Share of the window the generator core was busy (0 to 1).
    pub generator_busy: f64,
    /// Packets delivered per busy second of the director core.
    pub pps_per_busy_cpu: f64,
    /// Share of offered frames not delivered.
    pub loss: f64,
    /// One-way latency, merged over the sinks (latency runs).
    pub latency: Option<Latency>,
    /// Background frames sent per second (runs with a background stream).
    pub background_offered_pps: f64,
    /// UDP packets delivered per second (the background stream, under a TCP flood).
    pub udp_delivered_pps: f64,
    /// xvsd's counters over the window (xvs contenders).
    pub xvsd: Option<XvsdWindow>,
    /// Frames the veth pair into the director dropped per second (the generator's g0
    /// `tx_dropped` plus the director's d0 `rx_dropped`): what no contender ever saw.
    pub device_drops_per_s: f64,
    /// Frames the veth pairs towards the sinks dropped per second (d1, d2 `tx_dropped`, the
    /// sinks' e0 `rx_dropped`).
    pub egress_drops_per_s: f64,
}

impl Sample {
    /// Where frames were lost, per second, in one line.
    pub fn drops_line(&self) -> String {
        let mut s = format!(
            "device in {:.0} out {:.0}",
            self.device_drops_per_s, self.egress_drops_per_s
        );
        if let Some(x) = &self.xvsd {
            s.push_str(&format!(
                ", xsk ring-full {:.0} fill-empty {:.0} other {:.0}, xdp behind {:.0} syn-budget {:.0}, forwarder {:.0}",
                x.xsk_rx_ring_full_per_s,
                x.xsk_fill_ring_empty_per_s,
                x.xsk_rx_dropped_per_s,
                x.steer_behind_per_s,
                x.steer_syn_over_budget_per_s,
                x.forward_drops_per_s
            ));
        }
        s
    }
}

fn read_counter(t: &Topology, role: &str, path: &str) -> u64 {
    t.exec(role, &["cat", path])
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(0)
}

/// The drop counters of the veth pair into the director (g0 transmit, d0 receive) and of
/// the pairs out of it (d1/d2 transmit, the sinks' e0 receive).
fn device_drops(t: &Topology) -> (u64, u64) {
    let r = |role: &str, path: &str| read_counter(t, role, path);
    let ingress = r("gen", "/sys/class/net/g0/statistics/tx_dropped")
        + r("dir", "/sys/class/net/d0/statistics/rx_dropped");
    let egress = r("dir", "/sys/class/net/d1/statistics/tx_dropped")
        + r("dir", "/sys/class/net/d2/statistics/tx_dropped")
        + r("s1", "/sys/class/net/e0/statistics/rx_dropped")
        + r("s2", "/sys/class/net/e0/statistics/rx_dropped");
    (ingress, egress)
}

/// Busy and total jiffies of one CPU.
fn cpu_times(core: usize) -> Result<(u64, u64), String> {
    let stat = std::fs::read_to_string("/proc/stat").map_err(|e| format!("/proc/stat: {e}"))?;
    let name = format!("cpu{core} ");
    let line = stat
        .lines()
        .find(|l| l.starts_with(&name))
        .ok_or_else(|| format!("/proc/stat has no cpu{core}"))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = v.iter().take(8).sum();
    // idle and iowait are the 4th and 5th fields.
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    Ok((total - idle, total))
}

fn busy_share(a: (u64, u64), b: (u64, u64)) -> f64 {
    let total = b.1.saturating_sub(a.1);
    if total == 0 {
        return 0.0;
    }
    b.0.saturating_sub(a.0) as f64 / total as f64
}

fn finish(child: Child, what: &str) -> Result<String, String> {
    let out = child
        .wait_with_output()
        .map_err(|e| format!("{what}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{what} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Merges the sinks' latency reports: sample-weighted percentiles (exact merging would need
/// the histograms themselves; the sinks see the same distribution, so the weighted mean of
/// each percentile is close) and the largest maximum.
fn merge_latency(reports: &[SinkReport]) -> Option<Latency> {
    let ls: Vec<&Latency> = reports.iter().filter_map(|r| r.latency.as_ref()).collect();
    let count: u64 = ls.iter().map(|l| l.count).sum();
    if ls.is_empty() || count == 0 {
        return None;
    }
    let w = |f: &dyn Fn(&Latency) -> u64| -> u64 {
        (ls.iter().map(|l| f(l) as f64 * l.count as f64).sum::<f64>() / count as f64) as u64
    };
    let cdf = ls
        .iter()
        .max_by_key(|l| l.count)
        .map(|l| l.cdf.clone())
        .unwrap_or_default();
    Some(Latency {
        count,
        p50: w(&|l| l.p50),
        p99: w(&|l| l.p99),
        p999: w(&|l| l.p999),
        max: ls.iter().map(|l| l.max).max().unwrap_or(0),
        cdf,
    })
}

/// Runs one sample of `load` through whatever the director is doing now.
pub fn sample(
    t: &Topology,
    gen_bin: &Path,
    load: &Load,
    queues: u32,
    gen_core: usize,
    dir_core: usize,
    control: Option<&Path>,
) -> Result<Sample, String> {
    let start = monotonic_ns() + (load.lead * 1e9) as u64;
    let window = [
        "--start-at".to_string(),
        start.to_string(),
        "--warmup".into(),
        load.warmup.to_string(),
        "--duration".into(),
        load.duration.to_string(),
    ];
    let spawn = |role: &str, args: &[String]| -> Result<Child, String> {
        Command::new("ip")
            .args(["netns", "exec", &t.ns(role)])
            .arg(gen_bin)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", gen_bin.display()))
    };
    let mut sinks = Vec::new();
    for role in ["s1", "s2"] {
        let mut a: Vec<String> = vec![
            "sink".into(),
            "-i".into(),
            "e0".into(),
            "--queues".into(),
            queues.to_string(),
        ];
        if load.latency {
            a.push("--latency".into());
        }
        a.extend(window.iter().cloned());
        sinks.push(spawn(role, &a)?);
    }
    let mut g: Vec<String> = vec![
        "tx".into(),
        "-i".into(),
        "g0".into(),
        "--dst-mac".into(),
        t.d0_mac.clone(),
        "--queues".into(),
        queues.to_string(),
        "--traffic".into(),
        load.traffic.clone(),
        "--size".into(),
        load.size.to_string(),
        "--flows".into(),
        load.flows.to_string(),
        "--core".into(),
        gen_core.to_string(),
    ];
    if let Some(r) = load.rate {
        g.push("--rate".into());
        g.push(format!("{r:.0}"));
    }
    if load.ipv6 {
        g.extend([
            "--src".into(),
            crate::topology::CLIENTS6.into(),
            "--dst".into(),
            crate::topology::VIP6.into(),
        ]);
    }
    if let Some((flows, rate)) = load.background {
        g.extend([
            "--background-flows".into(),
            flows.to_string(),
            "--background-rate".into(),
            format!("{rate:.0}"),
        ]);
    }
    g.extend(window.iter().cloned());
    let generator = spawn("gen", &g)?;
    let open = start + (load.warmup * 1e9) as u64;
    let close = open + (load.duration * 1e9) as u64;
    sleep_until(open);
    let (d0, g0) = (cpu_times(dir_core)?, cpu_times(gen_core)?);
    let x0 = control.map(xvsd_stats).transpose()?;
    let dev0 = device_drops(t);
    sleep_until(close);
    let (d1, g1) = (cpu_times(dir_core)?, cpu_times(gen_core)?);
    let x1 = control.map(xvsd_stats).transpose()?;
    let dev1 = device_drops(t);
    let tx: TxReport = serde_json::from_str(&finish(generator, "the generator")?)
        .map_err(|e| format!("the generator's report: {e}"))?;
    let mut reports = Vec::new();
    for s in sinks {
        let r: SinkReport = serde_json::from_str(&finish(s, "a sink")?)
            .map_err(|e| format!("a sink's report: {e}"))?;
        reports.push(r);
    }
    let delivered: u64 = reports.iter().map(|r| r.packets).sum();
    let director_busy = busy_share(d0, d1);
    let delivered_pps = delivered as f64 / load.duration;
    Ok(Sample {
        offered_pps: tx.sent_in_window as f64 / load.duration,
        delivered_pps,
        director_busy,
        generator_busy: busy_share(g0, g1),
        pps_per_busy_cpu: if director_busy > 0.0 {
            delivered_pps / director_busy
        } else {
            0.0
        },
        loss: if tx.sent_in_window > 0 {
            1.0 - (delivered as f64 / tx.sent_in_window as f64).min(1.0)
        } else {
            0.0
        },
        latency: merge_latency(&reports),
        background_offered_pps: tx.background_in_window as f64 / load.duration,
        udp_delivered_pps: reports.iter().map(|r| r.udp).sum::<u64>() as f64 / load.duration,
        xvsd: x0.zip(x1).map(|(a, b)| xvsd_window(&a, &b, load.duration)),
        device_drops_per_s: dev1.0.saturating_sub(dev0.0) as f64 / load.duration,
        egress_drops_per_s: dev1.1.saturating_sub(dev0.1) as f64 / load.duration,
    })
}
