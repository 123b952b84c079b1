//! xvs-bench: xvs against the kernel's own paths on one machine, in one run. Builds the
//! namespace topology (generator → director → two sinks), then for each contender in turn,
//! interleaved over several rounds, measures delivered packets per second, packets per busy
//! second of the director core, loss, and one-way latency at a fixed fraction of the measured
//! maximum; prints one table of medians and the ratios that matter. `--quick` runs every
//! contender briefly and fails unless traffic flowed through each (the test suite's smoke test).

mod connload;
mod contender;
mod measure;
mod memory;
mod plots;
mod summary;
mod table;
mod topology;

use clap::Parser;
use contender::Kind;
use measure::{Load, Sample};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use topology::Placement;

#[derive(Parser)]
#[command(
    version,
    about = "xvs against kernel forwarding, nftables DNAT and IPVS, side by side"
)]
struct Cli {
    /// Every contender briefly (one round, about a second each); fails unless traffic flowed.
    #[arg(long)]
    quick: bool,
    /// Rounds (each runs every contender once, in turn).
    #[arg(long, default_value_t = 5)]
    rounds: u32,
    /// Seconds measured per sample.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Seconds of traffic before each measurement.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// udp, syn (TCP SYNs only) or tcp (a SYN per flow, then ACKs).
    #[arg(long, default_value = "udp")]
    traffic: String,
    /// Frame size on the wire, FCS included.
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// Distinct flows.
    #[arg(long, default_value_t = 1024)]
    flows: u32,
    /// Offer this many packets per second to every contender instead of searching.
    #[arg(long, value_name = "PPS")]
    rate: Option<f64>,
    /// Bisection steps of the rate search (0: measure flat out only).
    #[arg(long, default_value_t = 6)]
    search_steps: u32,
    /// Latency is measured at this fraction of each contender's median maximum rate.
    #[arg(long, default_value_t = 0.5)]
    latency_fraction: f64,
    /// Only these contenders (comma-separated ids: kernel-fwd, nft-dnat, ipvs-dr, ipvs-nat,
    /// xvs-fwd-only, xvs-dr-1w, xvs-nat-1w, xvs-tun-1w, xvs-fullnat-1w, xvs-dr-2w, …) and
    /// `memory` for the memory measurement.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Core the generator is pinned to.
    #[arg(long, default_value_t = 0)]
    gen_core: usize,
    /// Core of the director (its first worker; a second worker takes the generator's core).
    #[arg(long, default_value_t = 1)]
    dir_core: usize,
    /// xvsd's connection-table size.
    #[arg(long, default_value_t = 1 << 20)]
    table_size: usize,
    /// Write every sample and the medians as JSON here.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Draw the plots (SVG) into this directory.
    #[arg(long, value_name = "DIR")]
    plots: Option<PathBuf>,
    /// The xvsd binary (default: next to this one).
    #[arg(long, value_name = "PATH")]
    xvsd: Option<PathBuf>,
    /// Placements of the director's ingress receive thread, each measured in turn: rt
    /// (SCHED_FIFO 1, as a NIC's interrupt) and normal (SCHED_OTHER).
    #[arg(long, value_delimiter = ',', default_value = "rt,normal")]
    placements: Vec<String>,
    /// Skip the IPv6 throughput phase (run with the first placement).
    #[arg(long)]
    no_ipv6: bool,
    /// Frame size of the IPv6 phase, FCS included (82: the smallest IPv6 UDP frame with the
    /// timestamp trailer).
    #[arg(long, default_value_t = 82)]
    size_v6: usize,
    /// The second SYN flood's rate, as a multiple of the highest insert rate measured
    /// (the first is flat out); 0 skips it.
    #[arg(long, default_value_t = 1.5)]
    flood_factor: f64,
    /// An extra argument for every xvsd the harness starts (repeatable; e.g.
    /// `--xvsd-arg=--syn-budget=50000`).
    #[arg(long = "xvsd-arg", value_name = "ARG", allow_hyphen_values = true)]
    xvsd_args: Vec<String>,
    /// The xvs-gen binary (default: next to this one).
    #[arg(long, value_name = "PATH")]
    xvs_gen: Option<PathBuf>,
}

fn sibling(name: &str) -> Result<PathBuf, String> {
    let me = std::env::current_exe().map_err(|e| format!("where am I: {e}"))?;
    let p = me.parent().map(|d| d.join(name)).ok_or("no directory")?;
    if !p.exists() {
        return Err(format!(
            "{} not found (build it: cargo build --release -p {}, or give --{name} PATH)",
            p.display(),
            if name == "xvsd" { "xvsd" } else { "xvs-bench" }
        ));
    }
    Ok(p)
}

/// One throughput phase: an address family under one placement of the receive thread.
pub struct Phase {
    /// IPv6 instead of IPv4.
    pub ipv6: bool,
    /// The receive thread's placement.
    pub placement: Placement,
    /// Frame size.
    pub size: usize,
    /// Every contender's outcome.
    pub outcomes: Vec<Outcome>,
}

impl Phase {
    /// Its name in tables.
    pub fn name(&self) -> String {
        format!(
            "IPv{}, {}",
            if self.ipv6 { 6 } else { 4 },
            self.placement.describe()
        )
    }
}

/// What one contender produced.
pub struct Outcome {
    /// The contender.
    pub kind: Kind,
    /// Why it did not run, if it did not.
    pub unavailable: Option<String>,
    /// The flat-out probe: offered as fast as the generator goes.
    pub flat_out: Option<Sample>,
    /// The rate the rounds offer: the highest found with at most 1% loss.
    pub rate: f64,
    /// Throughput samples at that rate, one per round.
    pub samples: Vec<Sample>,
    /// The latency sample.
    pub latency: Option<Sample>,
}

/// Packets per second quick mode offers.
const QUICK_RATE: f64 = 100_000.0;

/// Loss the rate search accepts.
pub const MAX_LOSS: f64 = 0.01;

/// The highest offered rate a contender carries with at most [`MAX_LOSS`] loss (RFC 2544's
/// throughput, with a tolerance; a rate that fails is tried once more): a flat-out probe,
/// then, if it lost more, a bisection between
/// 0 and what the generator offered flat out (a director that livelocks under overload, its
/// receive work starving its forwarding on a shared core, carries more at a lower rate than
/// flat out). Returns the flat-out sample and the rate.
fn search_rate(
    r: &Runner<'_>,
    kind: Kind,
    load: &Load,
    table_size: usize,
    extra: &[&str],
) -> Result<(Sample, f64), String> {
    let cli = r.cli;
    let probe = Load {
        duration: load.duration.min(2.0),
        warmup: load.warmup.min(0.5),
        ..load.clone()
    };
    let flat = r.run_one(kind, &probe, table_size, extra)?;
    if let Some(rate) = load.rate {
        return Ok((flat, rate));
    }
    if flat.loss <= MAX_LOSS || cli.search_steps == 0 {
        return Ok((flat.clone(), flat.offered_pps));
    }
    let (mut lo, mut hi) = (0.0f64, flat.offered_pps);
    let mut best = flat.delivered_pps;
    for _ in 0..cli.search_steps {
        let mid = (lo + hi) / 2.0;
        let at = Load {
            rate: Some(mid),
            ..probe.clone()
        };
        let mut s = r.run_one(kind, &at, table_size, extra)?;
        if s.loss > MAX_LOSS {
            // The VM's scheduling loses a burst now and then, kernel or xvs alike: a rate
            // fails only if a second try fails too.
            let again = r.run_one(kind, &at, table_size, extra)?;
            if again.loss < s.loss {
                s = again;
            }
        }
        if s.loss <= MAX_LOSS {
            lo = mid;
        } else {
            hi = mid;
            best = best.max(s.delivered_pps);
        }
    }
    // Nothing passed: the best delivered rate seen is the most it carries.
    Ok((flat, if lo > 0.0 { lo } else { best }))
}

/// What every sample needs: the options, the namespaces, the binaries (xvsd, xvs-gen), a
/// scratch directory, and the flag SIGINT/SIGTERM set.
struct Runner<'a> {
    cli: &'a Cli,
    t: &'a topology::Topology,
    bins: (&'a Path, &'a Path),
    workdir: &'a Path,
    stop: &'a AtomicBool,
}

impl Runner<'_> {
    /// Sets `kind` up (xvsd with `extra` arguments beside the harness's own), measures one
    /// sample of `load`, tears it down; refuses once interrupted.
    fn run_one(
        &self,
        kind: Kind,
        load: &Load,
        table_size: usize,
        extra: &[&str],
    ) -> Result<Sample, String> {
        if self.stop.load(Relaxed) {
            return Err("interrupted".into());
        }
        let (cli, t) = (self.cli, self.t);
        let cores = [cli.dir_core, cli.gen_core];
        let mut args: Vec<&str> = cli.xvsd_args.iter().map(String::as_str).collect();
        args.extend_from_slice(extra);
        let running = contender::start(
            kind,
            t,
            self.bins.0,
            self.workdir,
            &cores,
            table_size,
            &args,
        )?;
        let control = running.control_socket();
        let s = measure::sample(
            t,
            self.bins.1,
            load,
            kind.workers(),
            cli.gen_core,
            cli.dir_core,
            control.as_deref(),
        );
        let stopped = running.stop(t);
        let s = s?;
        stopped?;
        Ok(s)
    }
}

/// One throughput phase: every contender's rate search, the rounds at the rate found, then
/// latency at a fraction of it.
fn throughput(runner: &Runner<'_>, kinds: &[Kind], load: &Load) -> Result<Vec<Outcome>, String> {
    let cli = runner.cli;
    let mut outcomes: Vec<Outcome> = kinds
        .iter()
        .map(|&kind| Outcome {
            kind,
            unavailable: contender::unavailable(kind, runner.t),
            flat_out: None,
            rate: 0.0,
            samples: Vec::new(),
            latency: None,
        })
        .collect();
    for o in outcomes.iter_mut().filter(|o| o.unavailable.is_none()) {
        let (flat, rate) = search_rate(runner, o.kind, load, cli.table_size, &[])
            .map_err(|e| format!("{} (rate search): {e}", o.kind.id()))?;
        eprintln!(
            "  search  {:<16} flat out {:.3} Mpps delivered of {:.3} offered; at most {:.0}% loss up to {:.3} Mpps\n          {:<16} flat-out drops/s: {}",
            o.kind.id(),
            flat.delivered_pps / 1e6,
            flat.offered_pps / 1e6,
            MAX_LOSS * 100.0,
            rate / 1e6,
            "",
            flat.drops_line()
        );
        o.flat_out = Some(flat);
        o.rate = rate;
    }
    // Without a search (quick mode) the flat-out probe is the one round.
    let rounds = if cli.search_steps == 0 && cli.rounds == 1 {
        for o in &mut outcomes {
            o.samples.extend(o.flat_out.clone());
        }
        0
    } else {
        cli.rounds
    };
    for round in 0..rounds {
        for o in outcomes.iter_mut().filter(|o| o.unavailable.is_none()) {
            let at = Load {
                rate: Some(o.rate),
                ..load.clone()
            };
            let s = runner
                .run_one(o.kind, &at, cli.table_size, &[])
                .map_err(|e| format!("{}: {e}", o.kind.id()))?;
            eprintln!(
                "  round {} {:<16} {:>8.3} Mpps delivered of {:.3} offered, director core {:>3.0}% busy; drops/s: {}",
                round + 1,
                o.kind.id(),
                s.delivered_pps / 1e6,
                s.offered_pps / 1e6,
                s.director_busy * 100.0,
                s.drops_line()
            );
            o.samples.push(s);
        }
    }
    for o in outcomes.iter_mut().filter(|o| o.unavailable.is_none()) {
        let max = table::median(o.samples.iter().map(|s| s.delivered_pps));
        if max <= 0.0 {
            continue;
        }
        let l = Load {
            rate: Some(max * cli.latency_fraction),
            latency: true,
            ..load.clone()
        };
        let s = runner
            .run_one(o.kind, &l, cli.table_size, &[])
            .map_err(|e| format!("{} (latency): {e}", o.kind.id()))?;
        eprintln!(
            "  latency {:<16} at {:.3} Mpps: p50 {} µs, p99 {} µs",
            o.kind.id(),
            max * cli.latency_fraction / 1e6,
            s.latency.as_ref().map_or(0, |l| l.p50 / 1000),
            s.latency.as_ref().map_or(0, |l| l.p99 / 1000)
        );
        o.latency = Some(s);
    }
    Ok(outcomes)
}

fn main() {
    let mut cli = Cli::parse();
    if cli.quick {
        cli.rounds = 1;
        cli.duration = 0.8;
        cli.warmup = 0.2;
        cli.search_steps = 0;
    }
    match bench(&cli) {
        Ok(()) => {}
        Err(e) => {
            eprintln!("xvs-bench: {e}");
            std::process::exit(1);
        }
    }
}

fn bench(cli: &Cli) -> Result<(), String> {
    let xvsd = match &cli.xvsd {
        Some(p) => p.clone(),
        None => sibling("xvsd")?,
    };
    let xvs_gen = match &cli.xvs_gen {
        Some(p) => p.clone(),
        None => sibling("xvs-gen")?,
    };
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .map_err(|e| format!("signal handler: {e}"))?;
    }
    let kinds: Vec<Kind> = Kind::all()
        .into_iter()
        .filter(|k| cli.only.is_empty() || cli.only.contains(&k.id()))
        .collect();
    let known: Vec<String> = Kind::all().iter().map(|k| k.id()).collect();
    if let Some(bad) = cli
        .only
        .iter()
        .find(|o| *o != "memory" && !known.contains(o))
    {
        return Err(format!(
            "--only: no contender {bad} (memory, {})",
            known.join(", ")
        ));
    }
    let workdir = std::env::temp_dir().join(format!("xvs-bench-{}", std::process::id()));
    std::fs::create_dir_all(&workdir).map_err(|e| format!("{}: {e}", workdir.display()))?;
    let placements: Vec<Placement> = cli
        .placements
        .iter()
        .map(|p| match p.as_str() {
            "rt" => Ok(Placement::RealTime),
            "normal" => Ok(Placement::Normal),
            other => Err(format!("--placements: no placement {other} (rt, normal)")),
        })
        .collect::<Result<_, _>>()?;
    let first = *placements
        .first()
        .ok_or("--placements: give at least one")?;
    let mut t = topology::Topology::build(2)?;
    t.pin_ingress(&[cli.dir_core, cli.gen_core])?;
    let load = Load {
        traffic: cli.traffic.clone(),
        size: cli.size,
        flows: cli.flows,
        warmup: cli.warmup,
        duration: cli.duration,
        latency: false,
        background: None,
        lead: if cli.quick { 0.8 } else { 1.5 },
        // Quick mode checks the machinery, not the limits: a rate every contender carries.
        rate: cli.rate.or(cli.quick.then_some(QUICK_RATE)),
        ipv6: false,
    };
    eprintln!(
        "xvs-bench: {} contenders, {} round(s) of {} s each, {}-byte {} over {} flows",
        kinds.len(),
        cli.rounds,
        cli.duration,
        cli.size,
        cli.traffic,
        cli.flows
    );
    let bins = (xvsd.as_path(), xvs_gen.as_path());
    let runner = Runner {
        cli,
        t: &t,
        bins,
        workdir: &workdir,
        stop: &stop,
    };
    let mut plan: Vec<(bool, Placement)> = placements.iter().map(|&p| (false, p)).collect();
    if !cli.no_ipv6 {
        plan.push((true, first));
    }
    let mut phases = Vec::new();
    for (ipv6, placement) in plan {
        t.set_ingress_priority(placement)?;
        let l = Load {
            ipv6,
            size: if ipv6 { cli.size_v6 } else { cli.size },
            ..load.clone()
        };
        let phase = Phase {
            ipv6,
            placement,
            size: l.size,
            outcomes: Vec::new(),
        };
        eprintln!("xvs-bench: phase {}", phase.name());
        let outcomes = throughput(&runner, &kinds, &l)?;
        phases.push(Phase { outcomes, ..phase });
    }
    t.set_ingress_priority(first)?;
    let (insert, mut flood) = connload::loads(&load);
    if cli.quick {
        flood.rate = Some(QUICK_RATE);
    }
    let mut conns: Vec<(Kind, Option<String>, connload::ConnOutcome)> = connload::kinds()
        .into_iter()
        .filter(|k| cli.only.is_empty() || cli.only.contains(&k.id()))
        .map(|k| {
            (
                k,
                contender::unavailable(k, &t),
                connload::ConnOutcome::default(),
            )
        })
        .collect();
    // The insert rate is xvs's own, without the new-connection budget in front of it.
    let no_budget: &[&str] = &["--syn-budget", "0"];
    let mut insert_rates = Vec::new();
    for (kind, _, _) in conns.iter().filter(|c| c.1.is_none()) {
        if cli.search_steps == 0 {
            insert_rates.push(load.rate);
            continue;
        }
        let (_, rate) = search_rate(&runner, *kind, &insert, connload::BIG_TABLE, no_budget)
            .map_err(|e| format!("{} (SYN rate search): {e}", kind.id()))?;
        insert_rates.push(Some(rate));
    }
    // The second flood: beyond what any contender inserts, below what the director receives.
    let fixed = Load {
        rate: if cli.quick {
            Some(QUICK_RATE)
        } else {
            let top = insert_rates.iter().flatten().copied().fold(0.0, f64::max);
            (cli.flood_factor > 0.0 && top > 0.0).then_some(top * cli.flood_factor)
        },
        ..flood.clone()
    };
    for _ in 0..cli.rounds.min(3) {
        for ((kind, _, o), rate) in conns
            .iter_mut()
            .filter(|c| c.1.is_none())
            .zip(&insert_rates)
        {
            let at = Load {
                rate: *rate,
                ..insert.clone()
            };
            let mut runs = vec![
                (&at, connload::BIG_TABLE, &mut o.insert, "SYNs", no_budget),
                (
                    &flood,
                    connload::SMALL_TABLE,
                    &mut o.flood,
                    "flood",
                    &[][..],
                ),
            ];
            if fixed.rate.is_some() {
                runs.push((
                    &fixed,
                    connload::SMALL_TABLE,
                    &mut o.flood_fixed,
                    "flood@",
                    &[][..],
                ));
            }
            for (load, table, out, what, extra) in runs {
                let s = runner
                    .run_one(*kind, load, table, extra)
                    .map_err(|e| format!("{} ({what}): {e}", kind.id()))?;
                eprintln!(
                    "  {what:<8} {:<16} {:>8.3} Mpps delivered, {} new conns/s; drops/s: {}",
                    kind.id(),
                    s.delivered_pps / 1e6,
                    s.xvsd
                        .as_ref()
                        .map_or("-".into(), |x| format!("{:.0}", x.conns_created_per_s)),
                    s.drops_line()
                );
                out.push(s);
            }
        }
    }
    // The memory fill offers SYNs at the rate xvs DR carried in the insert runs.
    let dr_rate = conns
        .iter()
        .filter(|c| c.1.is_none())
        .zip(&insert_rates)
        .find(|(c, _)| c.0 == Kind::Xvs(contender::Method::Dr, 1))
        .and_then(|(_, r)| *r);
    let fill = Load {
        rate: dr_rate,
        ..load.clone()
    };
    let mem = if cli.only.is_empty() || cli.only.iter().any(|o| o == "memory") {
        let sizes: &[usize] = &[1_000_000, 10_000_000];
        memory::measure(
            &t,
            bins,
            &workdir,
            sizes,
            (!cli.quick).then_some(&fill),
            (cli.gen_core, cli.dir_core),
        )
        .map_err(|e| format!("memory: {e}"))?
    } else {
        Vec::new()
    };
    drop(t);
    let _ = std::fs::remove_dir_all(&workdir);
    for p in &phases {
        print!("{}", table::render(cli, p));
    }
    print!("{}", connload::render(&conns, fixed.rate));
    print!("{}", memory::render(&mem));
    print!("{}", summary::render(&phases, &conns, cli.quick));
    if let Some(path) = &cli.json {
        std::fs::write(path, table::json(cli, &phases, &conns, &mem))
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    if let Some(dir) = &cli.plots {
        plots::draw(dir, &phases[0].outcomes)?;
    }
    if cli.quick {
        let dry: Vec<String> = phases
            .iter()
            .flat_map(|p| p.outcomes.iter().map(move |o| (p, o)))
            .filter(|(_, o)| o.unavailable.is_none())
            .filter(|(_, o)| {
                o.samples.iter().any(|s| s.delivered_pps <= 0.0)
                    || o.latency
                        .as_ref()
                        .and_then(|s| s.latency.as_ref())
                        .is_none_or(|l| l.count == 0)
            })
            .map(|(p, o)| format!("{} ({})", o.kind.id(), p.name()))
            .collect();
        let dry_conns = conns
            .iter()
            .filter(|c| c.1.is_none())
            .filter(|c| {
                c.2.insert
                    .iter()
                    .chain(&c.2.flood)
                    .chain(&c.2.flood_fixed)
                    .any(|s| s.delivered_pps <= 0.0)
                    || c.2
                        .flood
                        .iter()
                        .chain(&c.2.flood_fixed)
                        .any(|s| s.udp_delivered_pps <= 0.0)
            })
            .map(|c| format!("{} (new connections)", c.0.id()));
        let dry: Vec<String> = dry.into_iter().chain(dry_conns).collect();
        if !dry.is_empty() {
            return Err(format!("no traffic flowed through: {}", dry.join(", ")));
        }
    }
    Ok(())
}
