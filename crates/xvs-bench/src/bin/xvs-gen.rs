//! xvs-gen: the benchmark's traffic generator (`tx`, AF_XDP transmit on one queue, pinned to a
//! core) and sink (`sink`, an XDP program that counts and drops, or hands frames to AF_XDP to
//! measure one-way latency from the timestamp they carry). Runs are bounded in time and count
//! and aligned on CLOCK_MONOTONIC (`--start-at`), so a harness can run a generator and several
//! sinks over the same window. Each prints one JSON line (see `xvs_bench::reports`).

use clap::{Args, Parser, Subcommand};
use hdrhistogram::Histogram;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use xvs_bench::frames::{FrameSpec, Template, Traffic, trailer};
use xvs_bench::reports::{Latency, SinkReport, TxReport};
use xvs_bench::sleep_until;
use xvs_io::clock::monotonic_ns;
use xvs_io::sink::Sink;
use xvs_io::xdp_loader::{SocketMap, TxOnly, XdpMode};
use xvs_io::xsk::{BindMode, Fate, WorkerIo, XskConfig};

#[derive(Parser)]
#[command(version, about = "xvs's benchmark traffic generator and sink")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Send frames through an AF_XDP socket.
    Tx(TxArgs),
    /// Count (and optionally time) what arrives on an interface.
    Sink(SinkArgs),
}

#[derive(Args)]
struct Window {
    /// Start time, CLOCK_MONOTONIC nanoseconds (default: now).
    #[arg(long, value_name = "NS")]
    start_at: Option<u64>,
    /// Seconds after the start before the measurement window opens.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Length of the measurement window, seconds.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
}

#[derive(Args)]
struct TxArgs {
    /// Interface to send on.
    #[arg(long, short = 'i')]
    interface: String,
    /// Queues to send on (0 to N-1), in turn one batch each: a director with N workers on
    /// veth gets each queue's frames on its own receive queue.
    #[arg(long, default_value_t = 1)]
    queues: u32,
    /// Destination MAC (the next hop: the director's interface).
    #[arg(long, value_parser = parse_mac)]
    dst_mac: [u8; 6],
    /// First source address (flows take the next 65 535 too; IPv4 or IPv6, as --dst).
    #[arg(long, default_value = "198.19.0.0")]
    src: IpAddr,
    /// Destination address.
    #[arg(long, default_value = "198.18.0.10")]
    dst: IpAddr,
    /// Destination port.
    #[arg(long, default_value_t = 80)]
    dport: u16,
    /// udp, syn (TCP SYNs only) or tcp (a SYN per flow, then ACKs).
    #[arg(long, default_value = "udp")]
    traffic: Traffic,
    /// Frame size on the wire, FCS included.
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// Distinct 5-tuples.
    #[arg(long, default_value_t = 1024)]
    flows: u32,
    /// Packets per second (flat out if absent).
    #[arg(long)]
    rate: Option<f64>,
    /// Also send a background stream of UDP over this many flows (from 198.19.255.0 up), at
    /// `--background-rate`: the established traffic whose delivery a flood must not starve.
    #[arg(long, requires = "background_rate")]
    background_flows: Option<u32>,
    /// Packets per second of the background stream.
    #[arg(long)]
    background_rate: Option<f64>,
    /// Stop after this many frames.
    #[arg(long)]
    count: Option<u64>,
    /// CPU core to pin to.
    #[arg(long)]
    core: Option<usize>,
    #[command(flatten)]
    window: Window,
}

#[derive(Args)]
struct SinkArgs {
    /// Interface to count on.
    #[arg(long, short = 'i')]
    interface: String,
    /// Receive queues (latency mode opens an AF_XDP socket on each).
    #[arg(long, default_value_t = 1)]
    queues: u32,
    /// Read every frame's timestamp and report one-way latency.
    #[arg(long)]
    latency: bool,
    /// CPU core to pin to (latency mode).
    #[arg(long)]
    core: Option<usize>,
    /// XDP attach mode: auto (native, else generic), native or generic.
    #[arg(long, default_value = "auto", value_parser = parse_mode)]
    xdp_mode: XdpMode,
    #[command(flatten)]
    window: Window,
}

fn parse_mode(s: &str) -> Result<XdpMode, String> {
    match s {
        "auto" => Ok(XdpMode::Auto),
        "native" => Ok(XdpMode::Native),
        "generic" => Ok(XdpMode::Generic),
        _ => Err(format!("'{s}' is not auto, native or generic")),
    }
}

fn parse_mac(s: &str) -> Result<[u8; 6], String> {
    let parts: Vec<&str> = s.split(':').collect();
    let mut mac = [0u8; 6];
    if parts.len() != 6 {
        return Err(format!("'{s}' is not a MAC address (aa:bb:cc:dd:ee:ff)"));
    }
    for (m, p) in mac.iter_mut().zip(parts) {
        *m = u8::from_str_radix(p, 16).map_err(|_| format!("'{s}' is not a MAC address"))?;
    }
    Ok(mac)
}

fn mac_of(ifname: &str) -> Result<[u8; 6], String> {
    let path = format!("/sys/class/net/{ifname}/address");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    parse_mac(text.trim())
}

fn pin(core: Option<usize>) {
    if let Some(id) = core {
        if !core_affinity::set_for_current(core_affinity::CoreId { id }) {
            eprintln!("xvs-gen: could not pin to core {id}");
        }
    }
}

/// The window in CLOCK_MONOTONIC nanoseconds: (start, open, close).
fn times(w: &Window) -> Result<(u64, u64, u64), String> {
    let ok = |v: f64| v.is_finite() && v >= 0.0;
    if !ok(w.warmup) || !ok(w.duration) || w.duration == 0.0 {
        return Err("--warmup and --duration: non-negative seconds, duration above 0".into());
    }
    let now = monotonic_ns();
    let start = w.start_at.unwrap_or(now);
    if start + 50_000_000 < now {
        return Err(format!(
            "started {} ms after --start-at",
            (now - start) / 1_000_000
        ));
    }
    let open = start + (w.warmup * 1e9) as u64;
    Ok((start, open, open + (w.duration * 1e9) as u64))
}

/// Sends up to `want` frames of `tpl` numbered from `*seq`, stamped `now`; advances `*seq`
/// by the number sent and returns it.
fn send(io: &mut WorkerIo, tpl: &Template, seq: &mut u64, want: usize, now: u64) -> u64 {
    let mut next = *seq;
    let sent = io.send(0, want, &mut |buf| {
        let n = tpl.write(buf, next, now);
        next += 1;
        n
    }) as u64;
    *seq += sent;
    sent
}

fn tx(a: &TxArgs) -> Result<TxReport, String> {
    let tpl = Template::new(&FrameSpec {
        traffic: a.traffic,
        size: a.size,
        src_mac: mac_of(&a.interface)?,
        dst_mac: a.dst_mac,
        src_base: a.src,
        dst: a.dst,
        dport: a.dport,
        flows: a.flows,
    })?;
    if let Some(r) = a.rate {
        if !(r.is_finite() && r > 0.0) {
            return Err(format!(
                "--rate: {r} is not a positive number of packets per second"
            ));
        }
    }
    let background = match (a.background_flows, a.background_rate) {
        (Some(flows), Some(rate)) if rate.is_finite() && rate > 0.0 => Some((
            Template::new(&FrameSpec {
                traffic: Traffic::Udp,
                size: a.size,
                src_mac: mac_of(&a.interface)?,
                dst_mac: a.dst_mac,
                src_base: match a.dst {
                    IpAddr::V4(_) => Ipv4Addr::new(198, 19, 255, 0).into(),
                    IpAddr::V6(_) => "2001:db8:ff:ff::"
                        .parse::<Ipv6Addr>()
                        .expect("address")
                        .into(),
                },
                dst: a.dst,
                dport: a.dport,
                flows: flows.min(256),
            })?,
            rate,
        )),
        (Some(_), _) => {
            return Err("--background-rate: a positive number of packets per second".into());
        }
        _ => None,
    };
    let (start, open, close) = times(&a.window)?;
    let cfg = XskConfig {
        frame_size: 2048,
        frames_per_port: 8192,
        ring_size: 2048,
        fill_size: 2048,
        bind: BindMode::Auto,
        need_wakeup: true,
        busy_poll: None,
        tx_budget: 2048,
    };
    let mut sockets = Vec::new();
    for q in 0..a.queues.max(1) {
        let mut none = TxOnly;
        let mut programs: [&mut dyn SocketMap; 1] = [&mut none];
        let io = WorkerIo::new(&cfg, &[(a.interface.clone(), q)], &mut programs)
            .map_err(|e| e.to_string())?;
        sockets.push(io);
    }
    let zero_copy = sockets
        .iter()
        .all(|io| io.ports().first().is_some_and(|p| p.zero_copy));
    pin(a.core);
    sleep_until(start);
    let limit = a.count.unwrap_or(u64::MAX);
    let (mut seq, mut in_window) = (0u64, 0u64);
    let first = monotonic_ns();
    let mut now = first;
    let mut turn = 0;
    let (mut bg_seq, mut bg_in_window) = (0u64, 0u64);
    while now < close && seq < limit {
        turn = (turn + 1) % sockets.len();
        let io = &mut sockets[turn];
        if let Some((bg, rate)) = &background {
            let due = ((now - first) as f64 * rate / 1e9) as u64 + 1;
            let want = due.saturating_sub(bg_seq).min(64) as usize;
            if want > 0 {
                let sent = send(io, bg, &mut bg_seq, want, now);
                if now >= open {
                    bg_in_window += sent;
                }
            }
        }
        let mut want = (limit - seq).min(64) as usize;
        if let Some(rate) = a.rate {
            let due = ((now - first) as f64 * rate / 1e9) as u64 + 1;
            want = want.min(due.saturating_sub(seq) as usize);
        }
        if want > 0 {
            let sent = send(io, &tpl, &mut seq, want, now);
            if now >= open {
                in_window += sent;
            }
        } else {
            std::hint::spin_loop();
        }
        now = monotonic_ns();
    }
    // Let the last frames leave before the socket closes.
    let drain = monotonic_ns() + 100_000_000;
    while sockets.iter().any(WorkerIo::tx_in_flight) && monotonic_ns() < drain {
        for io in &mut sockets {
            io.send(0, 0, &mut |_| 0);
        }
    }
    Ok(TxReport {
        sent: seq,
        sent_in_window: in_window,
        seconds: (now - first) as f64 / 1e9,
        zero_copy,
        background_in_window: bg_in_window,
    })
}

/// Quantiles for the CDF: 0 to 0.99999 on a log scale of the tail, then the maximum.
fn cdf(h: &Histogram<u64>) -> Vec<(f64, u64)> {
    let mut out: Vec<(f64, u64)> = (0..=50)
        .map(|k| {
            let q = 1.0 - 10f64.powf(-f64::from(k) / 10.0);
            (q, h.value_at_quantile(q))
        })
        .collect();
    out.push((1.0, h.max()));
    out
}

fn sink(a: &SinkArgs) -> Result<SinkReport, String> {
    let (_, open, close) = times(&a.window)?;
    let mut prog = Sink::attach(&a.interface, a.xdp_mode).map_err(|e| e.to_string())?;
    let mut sockets = Vec::new();
    if a.latency {
        let cfg = XskConfig {
            frame_size: 2048,
            frames_per_port: 8192,
            ring_size: 2048,
            fill_size: 4096,
            bind: BindMode::Auto,
            need_wakeup: true,
            busy_poll: None,
            tx_budget: 2048,
        };
        for q in 0..a.queues {
            let mut programs: [&mut dyn SocketMap; 1] = [&mut prog];
            let io = WorkerIo::new(&cfg, &[(a.interface.clone(), q)], &mut programs)
                .map_err(|e| e.to_string())?;
            sockets.push(io);
        }
        prog.redirect_to_sockets().map_err(|e| e.to_string())?;
        pin(a.core);
    }
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3)
        .map_err(|e| format!("histogram: {e}"))?;
    let mut first = None;
    loop {
        let now = monotonic_ns();
        if first.is_none() && now >= open {
            first = Some(prog.counts());
        }
        if now >= close {
            break;
        }
        if sockets.is_empty() {
            sleep_until(if first.is_none() { open } else { close });
            continue;
        }
        let mut got = 0;
        for io in &mut sockets {
            got += io.poll_once(&mut |frames| {
                let now = monotonic_ns();
                for f in frames.iter_mut() {
                    if let Some(ts) = trailer::read(&f.data[..f.len]) {
                        if now >= open && now < close && now >= ts {
                            hist.saturating_record(now - ts);
                        }
                    }
                    f.fate = Fate::Drop;
                }
            });
        }
        if got == 0 {
            if let Some(io) = sockets.first_mut() {
                let _ = io.wait(1);
            }
        }
    }
    let c = prog.counts() - first.unwrap_or_default();
    let latency = a.latency.then(|| Latency {
        count: hist.len(),
        p50: hist.value_at_quantile(0.5),
        p99: hist.value_at_quantile(0.99),
        p999: hist.value_at_quantile(0.999),
        max: hist.max(),
        cdf: cdf(&hist),
    });
    Ok(SinkReport {
        packets: c.packets,
        bytes: c.bytes,
        udp: c.udp,
        tcp: c.tcp,
        seconds: (close - open) as f64 / 1e9,
        latency,
    })
}

fn main() {
    let cli = Cli::parse();
    let out = match &cli.cmd {
        Cmd::Tx(a) => tx(a).and_then(|r| serde_json::to_string(&r).map_err(|e| e.to_string())),
        Cmd::Sink(a) => sink(a).and_then(|r| serde_json::to_string(&r).map_err(|e| e.to_string())),
    };
    match out {
        Ok(line) => println!("{line}"),
        Err(e) => {
            eprintln!("xvs-gen: {e}");
            std::process::exit(1);
        }
    }
}
