//! Start-up and shutdown: everything is checked before anything is allocated, the kernel side
//! is set up (XDP programs, AF_XDP sockets, receive polling, VIP addresses), the workers are
//! started, and the control loop runs until SIGTERM or SIGINT; then everything is undone in
//! the reverse order.

use crate::control;
use crate::control_loop::{ControlLoop, Events};
use crate::director::kernel::{Attach, Kernel, Live};
use crate::director::{Director, Shared};
use crate::ha::HaEvent;
use crate::ha::state::HaState;
use crate::ha::sync::Daemons;
use crate::ha::vrrp::VrrpRunner;
use crate::metrics;
use crate::netsync::{self, Ports};
use crate::placement::{self, Placement};
use crate::polling::restore::Restorer;
use crate::polling::{self, Plan};
use crate::relink;
use crate::settings::Settings;
use crate::worker::{ForwardOnly, Worker};
use arc_swap::ArcSwap;
use std::hash::{BuildHasher, Hasher};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::thread::JoinHandle;
use std::time::Instant;
use xvs_control::config::ha::SyncRole;
use xvs_core::conn::ConnTable;
use xvs_core::stats::Stats;
use xvs_core::{Forwarder, PortId, Snapshot};
use xvs_io::netlink::Watch;
use xvs_io::steering::Replace;
use xvs_io::xsk::{WorkerIo, XskConfig};

fn random_seed() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
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

/// The memory xvsd is about to take (UMEMs and the connection table), checked against what
/// the machine has available before any of it is allocated; a UMEM smaller than its rings is
/// allowed (it saves memory) with a warning.
fn check_memory(s: &Settings, place: &Placement, ports: usize) -> Result<(), String> {
    let umem = u64::from(place.workers) * ports as u64 * u64::from(s.umem_frames) * 4096;
    let table = ConnTable::memory_for(s.conn_table_size) as u64;
    let need = umem + table;
    let available = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemAvailable:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map(|kb| kb * 1024);
    if let Some(avail) = available
        && need > avail / 10 * 9
    {
        return Err(format!(
            "not enough memory: {} workers × {ports} interfaces × {} UMEM frames of 4 KiB ({} MiB) \
             and a connection table of {} entries ({} MiB) need {} MiB, the machine has {} MiB \
             available (lower --umem-frames, --queues or --conn-table-size)",
            place.workers,
            s.umem_frames,
            umem >> 20,
            s.conn_table_size,
            table >> 20,
            need >> 20,
            avail >> 20
        ));
    }
    let rings = 3 * s.ring_size;
    if s.umem_frames < rings {
        tracing::warn!(
            umem_frames = s.umem_frames,
            ring_size = s.ring_size,
            "fewer UMEM frames per interface than its rings hold ({rings}): under load the fill rings can run dry (rx_fill_ring_empty)"
        );
    }
    Ok(())
}

/// The signals the daemon answers: SIGTERM/SIGINT stop it, SIGHUP reloads.
struct Signals {
    stop: Arc<AtomicBool>,
    reload: Arc<AtomicBool>,
}

impl Signals {
    fn register() -> Result<Signals, String> {
        let stop = Arc::new(AtomicBool::new(false));
        let reload = Arc::new(AtomicBool::new(false));
        let register = |sig, flag: &Arc<AtomicBool>| {
            signal_hook::flag::register(sig, Arc::clone(flag))
                .map(drop)
                .map_err(|e| format!("signal handler: {e}"))
        };
        register(signal_hook::consts::SIGTERM, &stop)?;
        register(signal_hook::consts::SIGINT, &stop)?;
        register(signal_hook::consts::SIGHUP, &reload)?;
        Ok(Signals { stop, reload })
    }

    /// True (and logged) if SIGTERM or SIGINT came: start-up stops where it is, and what was
    /// set up so far is undone as at any other exit.
    fn stopped(&self, phase: &str) -> bool {
        let stop = self.stop.load(Relaxed);
        if stop {
            tracing::info!(phase, "stopped during start-up");
        }
        stop
    }
}

/// Runs the daemon until SIGTERM or SIGINT.
pub fn run(s: &Settings) -> Result<(), String> {
    let signals = Signals::register()?;
    let mut ports = None;
    let attach = Attach {
        mode: s.xdp_mode,
        replace: if s.force {
            Replace::Any
        } else {
            Replace::OursOnly
        },
        syn_budget: s.syn_budget,
    };
    let mut live = Live::open(attach, |view| {
        let p = Ports::find(&s.interfaces, view)?;
        let vip_ifindex = s.manage_vips.then(|| p.ifindex[0]);
        ports = Some(p);
        Ok(vip_ifindex)
    })?;
    let ports = ports.expect("set by Live::open");
    let place = placement_of(s)?;
    if signals.stopped("placement") {
        return Ok(());
    }
    for w in &place.warnings {
        tracing::warn!("{w}");
    }
    check_memory(s, &place, ports.names.len())?;
    // The control socket's path before anything else is set up: a path that is taken, or not
    // a socket, is refused while nothing needs undoing. It is bound once xvsd serves (clients
    // take its appearance as the sign that xvsd is running).
    control::Server::claim(&s.control_socket)?;
    // A previous xvsd that crashed may have left receive settings changed: put them back.
    let leftover = polling::restore::restore_leftover(&restore_file(s))?;
    let mut watch = Watch::open().map_err(|e| format!("cannot watch network changes: {e}"))?;
    // The VIP addresses first: steering needs them among the local addresses.
    live.sync_vips(&s.services)?;
    attach_steering(s, &ports, &mut live)?;
    if signals.stopped("steering programs") {
        return Ok(());
    }
    if let Some(l) = leftover {
        l.retry();
    }
    // VRRP instances start as backups: the services on their addresses are not steered (and
    // the addresses not held) until an instance becomes master.
    let mut ha = HaState::of(&s.vrrp);
    let (sets, warnings) = netsync::steering_sets(&s.services, live.net(), &ha.inactive());
    for w in warnings {
        tracing::warn!("{w}");
    }
    live.sync_steering(&sets)?;

    let clock = Instant::now();
    let services = Arc::new(s.services.clone());
    let snapshot = Arc::new(ArcSwap::from_pointee(Snapshot::new(
        Arc::clone(&services),
        Arc::new(netsync::net_state(&ports, live.net())),
        s.timeouts,
        s.options,
        1,
    )));
    let table = Arc::new(ConnTable::new(s.conn_table_size, random_seed()));
    tracing::info!(
        entries = table.capacity(),
        mib = table.memory_bytes() >> 20,
        "connection table ready"
    );
    let stats = Arc::new(Stats::new(place.workers as usize, services.max_reals()));
    let mut ios = open_sockets(s, &ports, &place, &mut live)?;
    if signals.stopped("AF_XDP sockets") {
        return Ok(());
    }
    let mut plan = plan_polling(s, &ports, &place, &mut ios)?;
    if signals.stopped("receive polling") {
        plan.restorer.restore();
        return Ok(());
    }
    let (resolve_tx, resolve_rx) = crossbeam_channel::bounded::<(PortId, [u8; 16])>(1024);
    let io_counters = ios.iter().map(WorkerIo::counters).collect();
    let forward_only = forward_only(s, &ports, &live)?;
    let (links, mut link_ends) = relink::channels(
        ports.names.len(),
        &place.cores,
        s.poll,
        std::mem::replace(&mut plan.restorer, Restorer::new(restore_file(s))),
    );
    let workers = Workers::start(ios, &place, &plan, |q, io, stop| Worker {
        index: q,
        core: place.cores[q],
        io,
        fw: Forwarder::new(Arc::clone(&table), Arc::clone(&stats), q, random_seed()),
        snapshot: Arc::clone(&snapshot),
        stop,
        polling: plan.workers[q],
        origin_ns: xvs_io::clock::monotonic_ns().saturating_sub(clock.elapsed().as_nanos() as u64),
        resolve: resolve_tx.clone(),
        forward_only: forward_only.clone(),
        links: link_ends.remove(0),
    })?;
    let (job_tx, jobs) = crossbeam_channel::bounded::<crate::jobs::Job>(64);
    let server = control::Server::bind(&s.control_socket, job_tx.clone())?;
    if let Some(a) = s.metrics {
        metrics::Endpoint::start(a, job_tx)?;
    }
    let shared = Shared {
        snapshot,
        stats,
        table,
        io: io_counters,
        ports,
        clock,
        polling: std::mem::take(&mut plan.interfaces),
    };
    let mut d = Director::new(
        shared,
        Box::new(live),
        sets,
        &s.health,
        s.config_path.clone(),
        links,
    );
    d.keepalived = s.keepalived;
    d.vrrp_config = s.vrrp.clone();
    d.sync_config = s.sync.clone();
    ha.sync = Daemons::new(s.sync.as_ref().and_then(|x| x.refresh).unwrap_or(10));
    start_sync(s, &mut ha, d.kernel().net())?;
    let (ha_tx, ha_rx) = crossbeam_channel::unbounded::<HaEvent>();
    d.ha = ha;
    d.announce = s.announce_vips;
    d.sync_announced();
    // The control loop keeps a sender, so the channel stays open without a runner too.
    d.ha.runner = VrrpRunner::start(
        &s.vrrp,
        s.sync.as_ref(),
        ha_tx.clone(),
        Arc::clone(&d.ha.sync.counters),
    )?;
    tracing::info!(
        interfaces = ?d.shared.ports.names, workers = place.workers, socket = %s.control_socket.display(),
        services = services.services().count(), "xvsd running"
    );

    let mut notify = crate::systemd::Notifier::from_env();
    notify.ready(&format!(
        "serving {} interface(s) with {} worker(s)",
        d.shared.ports.names.len(),
        place.workers
    ));
    let mut control_loop = ControlLoop::new(Instant::now());
    while !signals.stop.load(Relaxed) {
        notify.watchdog(Instant::now());
        let events = Events {
            reload: signals.reload.swap(false, Relaxed),
            network_changed: watch.changed(),
        };
        control_loop.serve_tick(&mut d, &jobs, &ha_rx, events, resolve_rx.try_iter());
        let _ = &ha_tx;
    }
    tracing::info!("stopping");
    notify.stopping();
    d.withdraw_announced();
    // VRRP first: a master says priority 0 so a backup takes over at once; its addresses
    // come off as the instances stop.
    if let Some(r) = d.ha.runner.take() {
        r.stop();
        for ev in ha_rx.try_iter() {
            d.ha_event(ev);
        }
    }
    d.ha.sync.stop_all();
    workers.stop();
    // Receive settings back before the XDP programs go (veth's NAPI instances go with them).
    d.restore_polling();
    // The director's kernel side: steering programs detached, managed VIPs removed.
    drop(d);
    server.close();
    tracing::info!("XDP programs detached, sockets closed; bye");
    Ok(())
}

/// The sync daemons the configuration asks for: following a VRRP instance (a backup daemon
/// first: every instance starts as backup), or with a fixed role.
fn start_sync(
    s: &Settings,
    ha: &mut HaState,
    view: &xvs_io::netlink::NetView,
) -> Result<(), String> {
    let Some(sync) = &s.sync else {
        return Ok(());
    };
    let cfg = crate::director::daemon_cfg(sync, view)?;
    match (&sync.instance, sync.role) {
        (Some(instance), _) => {
            ha.follow = Some((instance.clone(), cfg.clone()));
            ha.sync.start_backup(cfg)?;
        }
        (None, role) => {
            let role = role.unwrap_or(SyncRole::Both);
            if matches!(role, SyncRole::Master | SyncRole::Both) {
                ha.sync.start_master(cfg.clone())?;
            }
            if matches!(role, SyncRole::Backup | SyncRole::Both) {
                ha.sync.start_backup(cfg)?;
            }
        }
    }
    Ok(())
}

/// One XDP steering program per interface, with the new-connection budget.
fn attach_steering(s: &Settings, ports: &Ports, live: &mut Live) -> Result<(), String> {
    for name in &ports.names {
        live.add_steering(name)?;
    }
    if s.syn_budget.per_second > 0 {
        tracing::info!(
            per_queue_per_second = s.syn_budget.per_second,
            burst = s.syn_budget.burst,
            "new-connection budget: SYNs beyond it are dropped in the XDP program"
        );
    }
    Ok(())
}

/// Sockets: worker q serves queue q of every interface, on one shared UMEM.
fn open_sockets(
    s: &Settings,
    ports: &Ports,
    place: &Placement,
    live: &mut Live,
) -> Result<Vec<WorkerIo>, String> {
    let xcfg = XskConfig {
        bind: s.bind_mode,
        frames_per_port: s.umem_frames,
        ring_size: s.ring_size,
        fill_size: 2 * s.ring_size,
        tx_budget: s.ring_size,
        ..XskConfig::default()
    };
    let mut ios = Vec::new();
    for q in 0..place.workers {
        let pairs: Vec<(String, u32)> = ports.names.iter().map(|n| (n.clone(), q)).collect();
        let mut refs = live.socket_maps();
        let io = WorkerIo::new(&xcfg, &pairs, &mut refs).map_err(|e| e.to_string())?;
        for p in io.ports() {
            tracing::info!(worker = q, interface = %p.ifname, queue = p.queue,
                mode = if p.zero_copy { "zero-copy" } else { "copy" }, napi_id = p.napi_id,
                tx_budget = p.tx_budget, "AF_XDP socket bound");
        }
        ios.push(io);
    }
    Ok(ios)
}

/// Who runs each queue's receive work (recorded for restoring before anything changes).
fn plan_polling(
    s: &Settings,
    ports: &Ports,
    place: &Placement,
    ios: &mut [WorkerIo],
) -> Result<Plan, String> {
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
    for i in &plan.interfaces {
        tracing::info!(interface = %i.ifname, polling = i.mechanism.name(), asked = s.poll.mode.name(),
            "{}", i.detail);
    }
    Ok(plan)
}

/// `--forward-only`: the benchmark's I/O ceiling.
fn forward_only(s: &Settings, ports: &Ports, live: &Live) -> Result<Option<ForwardOnly>, String> {
    if s.forward_only.is_empty() {
        return Ok(None);
    }
    let f = ForwardOnly::new(&ports.names, &live.net().links, &s.forward_only)?;
    tracing::warn!(to = ?f, "forward-only benchmark mode: every steered frame leaves unparsed, no services are applied");
    Ok(Some(f))
}

/// The running worker threads.
struct Workers {
    stop: Arc<AtomicBool>,
    handles: Vec<JoinHandle<()>>,
}

impl Workers {
    /// One thread per socket set, its worker built by `worker(q, sockets, stop flag)`.
    fn start(
        ios: Vec<WorkerIo>,
        place: &Placement,
        plan: &Plan,
        mut worker: impl FnMut(usize, WorkerIo, Arc<AtomicBool>) -> Worker,
    ) -> Result<Workers, String> {
        let mut w = Workers {
            stop: Arc::new(AtomicBool::new(false)),
            handles: Vec::new(),
        };
        for (q, io) in ios.into_iter().enumerate() {
            let one = worker(q, io, Arc::clone(&w.stop));
            match std::thread::Builder::new()
                .name(format!("xvs-worker-{q}"))
                .spawn(move || one.run())
            {
                Ok(h) => w.handles.push(h),
                Err(e) => {
                    w.stop();
                    return Err(format!("cannot start worker {q}: {e}"));
                }
            }
        }
        if let Some(p) = plan.workers.first().and_then(|w| w.policy) {
            tracing::info!(policy = %p, cores = ?place.cores, "workers scheduled above their NAPI threads");
        }
        Ok(w)
    }

    /// Stops the workers and waits for them.
    fn stop(self) {
        self.stop.store(true, Relaxed);
        for h in self.handles {
            let _ = h.join();
        }
    }
}
