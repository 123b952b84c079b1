//! Start-up, the control loop and shutdown.

use crate::cli::{self, Cli};
use crate::director::{self, Director, Parts};
use crate::netsync::{self, Ports};
use crate::placement::{self, Placement};
use crate::polling::{self, PollMode, PollSettings};
use crate::worker::{ForwardOnly, Worker};
use crate::{control, metrics, vips};
use arc_swap::ArcSwap;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};
use xvs_control::config::{BindModeConfig, PollModeConfig, XdpModeConfig};
use xvs_control::config::{DEFAULT_MAX_REALS, DEFAULT_MAX_SERVICES};
use xvs_core::conn::{ConnTable, Timeouts};
use xvs_core::service::ServiceTable;
use xvs_core::stats::Stats;
use xvs_core::{Forwarder, Options, PortId, Snapshot};
use xvs_io::bpf::{Steering, SynBudget, XdpMode};
use xvs_io::netlink::{NetView, Netlink, Watch};
use xvs_io::xdp_prog::SocketMap;
use xvs_io::xsk::{BindMode, WorkerIo, XskConfig};

/// Default control socket.
pub const DEFAULT_SOCKET: &str = "/run/xvs/xvsd.sock";
/// Default connection-table size.
pub const DEFAULT_TABLE: usize = 1 << 20;
/// Default budget of new TCP connections per receive queue and second: a quarter of what one
/// worker inserted at most with its I/O on the lab machine (about 420 000 SYNs/s in DR mode),
/// so that a SYN flood leaves a worker most of its time for established traffic.
pub const DEFAULT_SYN_BUDGET: u64 = 100_000;
/// Default burst above the SYN budget.
pub const DEFAULT_SYN_BURST: u64 = 2048;

/// Everything the daemon runs with, after merging the file and the flags.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Served interfaces.
    pub interfaces: Vec<String>,
    /// Queues (= workers) if given; by default every receive queue.
    pub queues: Option<u32>,
    /// Cores to pin to.
    pub cores: Vec<usize>,
    /// XDP mode.
    pub xdp_mode: XdpMode,
    /// Bind mode.
    pub bind_mode: BindMode,
    /// Polling.
    pub poll: PollSettings,
    /// New-connection budget per receive queue.
    pub syn_budget: SynBudget,
    /// Connection-table size.
    pub conn_table_size: usize,
    /// Manage VIP addresses.
    pub manage_vips: bool,
    /// Control socket.
    pub control_socket: PathBuf,
    /// Services from the file.
    pub services: ServiceTable,
    /// Timeouts.
    pub timeouts: Timeouts,
    /// Behaviour switches.
    pub options: Options,
    /// The configuration file (reloads read it again).
    pub config_path: Option<PathBuf>,
    /// Where the Prometheus endpoint listens (off if `None`).
    pub metrics: Option<std::net::SocketAddr>,
    /// Health checks and policies.
    pub health: xvs_control::check::Health,
    /// `--forward-only IF=MAC,…`: interfaces and destination MACs.
    pub forward_only: Vec<(String, [u8; 6])>,
}

/// Parses `IF=MAC` (`--forward-only`), checking IF is one of the served interfaces.
fn parse_forward_only(s: &str, interfaces: &[String]) -> Result<(String, [u8; 6]), String> {
    let bad = || format!("--forward-only: '{s}' is not IF=MAC (ext1=02:00:00:00:00:11)");
    let (ifname, mac) = s.split_once('=').ok_or_else(bad)?;
    let mac = xvs_wire::MacAddr::parse(mac).ok_or_else(bad)?;
    if !interfaces.iter().any(|i| i == ifname) {
        return Err(format!(
            "--forward-only: {ifname} is not one of the served interfaces ({})",
            interfaces.join(", ")
        ));
    }
    Ok((ifname.to_string(), mac.0))
}

/// Merges the configuration file (if any) and the command line.
pub fn settings(cli: &Cli) -> Result<Settings, String> {
    let loaded = match &cli.config {
        Some(p) => Some(xvs_control::config::load(p).map_err(|e| e.to_string())?),
        None => None,
    };
    let (file_cfg, applied) = match &loaded {
        Some(l) => (
            l.config.clone(),
            Some(
                l.apply(DEFAULT_MAX_SERVICES, DEFAULT_MAX_REALS)
                    .map_err(|e| e.to_string())?,
            ),
        ),
        None => (xvs_control::Config::default(), None),
    };
    let interfaces = if cli.interfaces.is_empty() {
        file_cfg.interfaces.clone()
    } else {
        cli.interfaces.clone()
    };
    if interfaces.is_empty() {
        return Err("no interface to serve: give --interface IF (repeatable) or `interfaces:` in the configuration".into());
    }
    let xdp_mode = match (cli.xdp_mode, file_cfg.xdp_mode) {
        (Some(cli::XdpMode::Native), _) | (None, Some(XdpModeConfig::Native)) => XdpMode::Native,
        (Some(cli::XdpMode::Generic), _) | (None, Some(XdpModeConfig::Generic)) => XdpMode::Generic,
        _ => XdpMode::Auto,
    };
    let bind_mode = match (cli.bind_mode, file_cfg.bind_mode) {
        (Some(cli::BindMode::Copy), _) | (None, Some(BindModeConfig::Copy)) => BindMode::Copy,
        (Some(cli::BindMode::Zerocopy), _) | (None, Some(BindModeConfig::Zerocopy)) => {
            BindMode::ZeroCopy
        }
        _ => BindMode::Auto,
    };
    let mode = match cli.poll_mode {
        Some(cli::PollMode::Auto) => PollMode::Auto,
        Some(cli::PollMode::PreferBusy) => PollMode::PreferBusy,
        Some(cli::PollMode::ThreadedYield) => PollMode::ThreadedYield,
        Some(cli::PollMode::Busy) => PollMode::Busy,
        Some(cli::PollMode::Adaptive) => PollMode::Adaptive,
        None => match file_cfg.poll_mode.unwrap_or_default() {
            PollModeConfig::Auto => PollMode::Auto,
            PollModeConfig::PreferBusy => PollMode::PreferBusy,
            PollModeConfig::ThreadedYield => PollMode::ThreadedYield,
            PollModeConfig::Busy => PollMode::Busy,
            PollModeConfig::Adaptive => PollMode::Adaptive,
        },
    };
    let d = PollSettings::default();
    let fp = file_cfg.polling;
    let poll = PollSettings {
        mode,
        sleep_us: cli.poll_sleep_us.or(fp.sleep_us).unwrap_or(d.sleep_us),
        busy_poll_us: fp.busy_poll_us.unwrap_or(d.busy_poll_us),
        busy_poll_budget: fp.busy_poll_budget.unwrap_or(d.busy_poll_budget),
        defer_hard_irqs: fp.defer_hard_irqs.unwrap_or(d.defer_hard_irqs),
        gro_flush_timeout_us: fp.gro_flush_timeout_us.unwrap_or(d.gro_flush_timeout_us),
        coalesce_us: cli.coalesce_us.or(fp.coalesce_us).unwrap_or(d.coalesce_us),
    };
    let syn_budget = SynBudget {
        per_second: cli
            .syn_budget
            .or(file_cfg.syn_budget)
            .unwrap_or(DEFAULT_SYN_BUDGET),
        burst: file_cfg.syn_burst.unwrap_or(DEFAULT_SYN_BURST),
    };
    let forward_only = cli
        .forward_only
        .iter()
        .map(|f| parse_forward_only(f, &interfaces))
        .collect::<Result<Vec<_>, String>>()?;
    let queues = cli.queues.or(file_cfg.queues);
    if queues == Some(0) {
        return Err("--queues must be at least 1".into());
    }
    let (services, timeouts, health) = match applied {
        Some(a) => (a.services, a.timeouts, a.health),
        None => (
            ServiceTable::new(DEFAULT_MAX_SERVICES, DEFAULT_MAX_REALS),
            Timeouts::default(),
            Vec::new(),
        ),
    };
    Ok(Settings {
        interfaces,
        queues,
        cores: if cli.cores.is_empty() {
            file_cfg.cores.clone()
        } else {
            cli.cores.clone()
        },
        xdp_mode,
        bind_mode,
        poll,
        syn_budget,
        conn_table_size: cli
            .conn_table_size
            .or(file_cfg.conn_table_size)
            .unwrap_or(DEFAULT_TABLE)
            .max(64),
        manage_vips: cli.manage_vips || file_cfg.manage_vips,
        control_socket: cli
            .control_socket
            .clone()
            .or(file_cfg.control_socket.map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from(DEFAULT_SOCKET)),
        services,
        timeouts,
        options: Options {
            expire_nodest_conn: file_cfg.expire_nodest_conn,
            ..Options::default()
        },
        config_path: cli.config.clone(),
        health,
        forward_only,
        metrics: match cli.metrics.as_deref().or(file_cfg.metrics.as_deref()) {
            Some(a) => Some(a.parse().map_err(|_| {
                format!(
                    "metrics address '{a}' is not ADDR:PORT (e.g. {})",
                    metrics::DEFAULT_ADDR
                )
            })?),
            None => None,
        },
    })
}

fn random_seed() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}

/// The 16-byte key form back to an address.
pub fn ip_of(a: &[u8; 16]) -> IpAddr {
    if a[..12] == xvs_wire::summary::V4_MAPPED_PREFIX {
        IpAddr::from([a[12], a[13], a[14], a[15]])
    } else {
        IpAddr::from(*a)
    }
}

/// Runs the daemon until SIGTERM or SIGINT.
pub fn run(s: &Settings) -> Result<(), String> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .map_err(|e| format!("signal handler: {e}"))?;
    }
    let mut nl = Netlink::open().map_err(|e| format!("cannot open a netlink socket: {e}"))?;
    let mut view = nl
        .view()
        .map_err(|e| format!("cannot read the network state: {e}"))?;
    let ports = Ports::find(&s.interfaces, &view)?;
    let place = placement_of(s)?;
    for w in &place.warnings {
        tracing::warn!("{w}");
    }
    // A previous xvsd that crashed may have left receive settings changed: put them back.
    if let Some(dir) = s.control_socket.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let leftover = polling::restore::restore_leftover(&restore_file(s))?;
    let mut watch = Watch::open().map_err(|e| format!("cannot watch network changes: {e}"))?;

    let reload = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, Arc::clone(&reload))
        .map_err(|e| format!("signal handler: {e}"))?;
    let mut managed = Vec::new();
    if s.manage_vips {
        if let Err(e) = vips::sync(&mut nl, ports.ifindex[0], &s.services, &mut managed) {
            vips::remove_all(&mut nl, &managed);
            return Err(e);
        }
    }
    let result = serve(
        s,
        &place,
        leftover,
        &mut nl,
        &mut view,
        ports,
        &mut watch,
        [&stop, &reload],
        &mut managed,
    );
    vips::remove_all(&mut nl, &managed);
    result
}

/// Where the receive settings to restore are recorded: beside the control socket.
fn restore_file(s: &Settings) -> PathBuf {
    s.control_socket.with_extension("restore")
}

/// Workers and cores for the served interfaces, checked before anything is allocated.
fn placement_of(s: &Settings) -> Result<Placement, String> {
    let mut ifaces = Vec::new();
    for name in &s.interfaces {
        let q = xvs_io::ethtool::rx_queues(name)
            .map_err(|e| format!("cannot read the receive queues of {name}: {e}"))?;
        ifaces.push((name.clone(), q));
    }
    let allowed = xvs_io::sched::allowed_cpus()
        .map_err(|e| format!("cannot read the CPUs this process may use: {e}"))?;
    placement::decide(s.queues, &ifaces, &allowed, &s.cores)
}

#[allow(clippy::too_many_arguments)]
fn serve(
    s: &Settings,
    place: &Placement,
    leftover: Option<polling::restore::Leftover>,
    nl: &mut Netlink,
    view: &mut NetView,
    ports: Ports,
    watch: &mut Watch,
    [stop, reload]: [&Arc<AtomicBool>; 2],
    managed: &mut Vec<(u32, IpAddr)>,
) -> Result<(), String> {
    if s.manage_vips {
        *view = nl
            .view()
            .map_err(|e| format!("cannot read the network state: {e}"))?;
    }
    // XDP programs, one per interface.
    let mut steering = Vec::new();
    for name in &ports.names {
        let mut st = Steering::attach(name, s.xdp_mode).map_err(|e| e.to_string())?;
        st.set_syn_budget(s.syn_budget).map_err(|e| e.to_string())?;
        tracing::info!(interface = %name, mode = st.mode_name(), "XDP steering program attached");
        steering.push(st);
    }
    if let Some(l) = leftover {
        l.retry();
    }
    if s.syn_budget.per_second > 0 {
        tracing::info!(
            per_queue_per_second = s.syn_budget.per_second,
            burst = s.syn_budget.burst,
            "new-connection budget: SYNs beyond it are dropped in the XDP program"
        );
    }
    let (sets, warnings) = netsync::steering_sets(&s.services, view);
    for w in warnings {
        tracing::warn!("{w}");
    }
    for st in &mut steering {
        st.sync(&sets).map_err(|e| e.to_string())?;
    }
    let first_sets = sets;

    let clock = Instant::now();
    let services = Arc::new(s.services.clone());
    let net = Arc::new(netsync::net_state(&ports, view));
    let generation = 1;
    let snapshot = Arc::new(ArcSwap::from_pointee(Snapshot::new(
        Arc::clone(&services),
        Arc::clone(&net),
        s.timeouts,
        s.options,
        generation,
    )));
    let table = Arc::new(ConnTable::new(s.conn_table_size, random_seed()));
    let forward_only = if s.forward_only.is_empty() {
        None
    } else {
        Some(ForwardOnly::new(
            &ports.names,
            &view.links,
            &s.forward_only,
        )?)
    };
    if let Some(f) = &forward_only {
        tracing::warn!(to = ?f, "forward-only benchmark mode: every steered frame leaves unparsed, no services are applied");
    }
    let workers = place.workers as usize;
    let stats = Arc::new(Stats::new(workers, services.max_reals()));
    tracing::info!(
        entries = table.capacity(),
        mib = table.memory_bytes() >> 20,
        "connection table ready"
    );

    // Sockets: worker q serves queue q of every interface, on one shared UMEM.
    let xcfg = XskConfig {
        bind: s.bind_mode,
        ..XskConfig::default()
    };
    let mut ios = Vec::new();
    for q in 0..workers {
        let pairs: Vec<(String, u32)> = ports.names.iter().map(|n| (n.clone(), q as u32)).collect();
        let mut refs: Vec<&mut dyn SocketMap> = steering
            .iter_mut()
            .map(|s| s as &mut dyn SocketMap)
            .collect();
        let io = WorkerIo::new(&xcfg, &pairs, &mut refs).map_err(|e| e.to_string())?;
        for p in io.ports() {
            tracing::info!(worker = q, interface = %p.ifname, queue = p.queue,
                mode = if p.zero_copy { "zero-copy" } else { "copy" }, napi_id = p.napi_id,
                tx_budget = p.tx_budget, "AF_XDP socket bound");
        }
        ios.push(io);
    }
    // Who runs each queue's receive work.
    let sockets: Vec<Vec<_>> = ios.iter().map(WorkerIo::ports).collect();
    let plan = polling::configure(
        &s.poll,
        &ports.names,
        &ports.ifindex,
        &sockets,
        &place.cores,
        restore_file(s),
        &mut |w, port, bp| {
            ios[w]
                .enable_busy_poll(port, bp)
                .map_err(|e| format!("busy polling on {}: {e}", ports.names[port]))
        },
    )?;
    let mut restorer = plan.restorer;
    for i in &plan.interfaces {
        tracing::info!(interface = %i.ifname, polling = i.mechanism.name(), asked = s.poll.mode.name(),
            "{}", i.detail);
    }
    let (resolve_tx, resolve_rx) = crossbeam_channel::bounded::<(PortId, [u8; 16])>(1024);
    let mut handles = Vec::new();
    let mut io_counters = Vec::new();
    let worker_stop = Arc::new(AtomicBool::new(false));
    let origin_ns = xvs_io::clock::monotonic_ns().saturating_sub(clock.elapsed().as_nanos() as u64);
    for (q, io) in ios.into_iter().enumerate() {
        io_counters.push(io.counters());
        let w = Worker {
            index: q,
            core: place.cores[q],
            io,
            fw: Forwarder::new(Arc::clone(&table), Arc::clone(&stats), q, random_seed()),
            snapshot: Arc::clone(&snapshot),
            stop: Arc::clone(&worker_stop),
            polling: plan.workers[q],
            origin_ns,
            resolve: resolve_tx.clone(),
            forward_only: forward_only.clone(),
        };
        match std::thread::Builder::new()
            .name(format!("xvs-worker-{q}"))
            .spawn(move || w.run())
        {
            Ok(h) => handles.push(h),
            Err(e) => {
                worker_stop.store(true, Relaxed);
                for h in handles {
                    let _ = h.join();
                }
                return Err(format!("cannot start worker {q}: {e}"));
            }
        }
    }
    if let Some(p) = plan.workers.first().and_then(|w| w.policy) {
        tracing::info!(policy = %p, cores = ?place.cores, "workers scheduled above their NAPI threads");
    }
    let (job_tx, jobs) = crossbeam_channel::bounded::<control::Job>(64);
    let server = control::Server::bind(&s.control_socket, job_tx.clone())?;
    if let Some(a) = s.metrics {
        metrics::Endpoint::start(a, job_tx)?;
    }
    let mut d = Director::new(Parts {
        snapshot: Arc::clone(&snapshot),
        stats: Arc::clone(&stats),
        table: Arc::clone(&table),
        io: io_counters,
        steering,
        ports,
        clock,
        sets: first_sets,
        config_path: s.config_path.clone(),
        manage_vips: s.manage_vips,
        view,
        nl,
        managed,
        health: s.health.clone(),
        polling: plan.interfaces,
    });
    tracing::info!(
        interfaces = ?d.ports.names, workers, socket = %s.control_socket.display(),
        services = services.services().count(), "xvsd running"
    );

    // The control loop.
    let mut next_shard = 0;
    let mut last_view = Instant::now();
    let mut last_second = Instant::now();
    let mut asked: HashMap<(PortId, [u8; 16]), Instant> = HashMap::new();
    let tick = Duration::from_millis(50);
    while !stop.load(Relaxed) {
        // Answer requests as they come until the tick is over.
        let deadline = Instant::now() + tick;
        while let Ok(job) = jobs.recv_deadline(deadline) {
            control::handle(job, &mut d);
        }
        let now = director::now(clock);
        if reload.swap(false, Relaxed) {
            match d.reload(None) {
                Ok(r) => tracing::info!(
                    changes = r.applied.len(),
                    generation = r.generation,
                    "SIGHUP: configuration reloaded"
                ),
                Err(e) => {
                    tracing::error!(error = %e, "SIGHUP: reload refused; the running configuration is unchanged");
                }
            }
        }
        // Network changes: re-read, publish a new snapshot if the forwarding view moved.
        if watch.changed() || last_view.elapsed() >= Duration::from_secs(1) {
            last_view = Instant::now();
            d.refresh_network();
        }
        // Next hops to resolve: real servers the snapshot has no MAC for (asked before any
        // client needs them), and whatever the workers met. Once a second per hop.
        let snap = snapshot.load();
        let wanted: Vec<(PortId, [u8; 16])> = (0..snap.services.real_slots())
            .filter_map(|id| match snap.real_hop(id as u32) {
                xvs_core::net::Resolve::Unresolved { port, ip } => Some((port, ip)),
                _ => None,
            })
            .collect();
        drop(snap);
        for (port, ip) in wanted.into_iter().chain(resolve_rx.try_iter()) {
            let last = asked
                .entry((port, ip))
                .or_insert_with(|| Instant::now() - Duration::from_secs(2));
            if last.elapsed() < Duration::from_secs(1) {
                continue;
            }
            *last = Instant::now();
            if let Some(&ifindex) = d.ports.ifindex.get(usize::from(port)) {
                if let Err(e) = d.nl.resolve(ifindex, ip_of(&ip)) {
                    tracing::debug!(ip = %ip_of(&ip), error = %e, "neighbour resolution request failed");
                }
            }
        }
        asked.retain(|_, t| t.elapsed() < Duration::from_secs(60));
        // Expiry: the whole table about once a second.
        let per_tick = table.shard_count().div_ceil(20);
        let snap = snapshot.load();
        d.sweeper.sweep(&snap, next_shard, per_tick, now);
        next_shard = (next_shard + per_tick) % table.shard_count();
        drop(snap);
        if last_second.elapsed() >= Duration::from_secs(1) {
            last_second = Instant::now();
            d.purge_removed();
        }
        d.tick();
        d.run_health();
    }
    tracing::info!("stopping");
    worker_stop.store(true, Relaxed);
    for h in handles {
        let _ = h.join();
    }
    // Receive settings back before the XDP programs go (veth's NAPI instances go with them).
    restorer.restore();
    drop(d);
    server.close();
    tracing::info!("XDP programs detached, sockets closed; bye");
    Ok(())
}
