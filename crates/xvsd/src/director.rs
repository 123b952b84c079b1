//! The control thread's state: the running configuration (the master copy of the service
//! table), the published snapshot, and the operations on them — applying a batch of changes,
//! reloading the configuration file as a difference, purging removed real servers once idle,
//! and keeping the XDP steering maps and managed VIPs in step.

use crate::accounting::Accounting;
use crate::daemon::ip_of;
use crate::health::{Monitor, Transition};
use crate::netsync::{self, Ports};
use crate::polling::InterfacePolling;
use crate::vips;
use arc_swap::ArcSwap;
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use xvs_control::change::{self, Change, Key, RealSpec, ServiceSpec};
use xvs_control::config::{DEFAULT_MAX_REALS, DEFAULT_MAX_SERVICES};
use xvs_control::proto::{
    ApplyReply, ConnView, ConnsReply, HealthReply, HealthView, ListReply, RealView, ServiceView,
    TraceQuery, TraceReply,
};
use xvs_core::conn::state::state_name;
use xvs_core::conn::{ConnTable, EntryKind, FlowKey, Timeouts};
use xvs_core::net::{NetState, Resolve};
use xvs_core::service::{Protocol, ServiceKey, ServiceTable, addr16, fmt_addr_port};
use xvs_core::stats::Stats;
use xvs_core::{Forwarder, Options, RealId, Snapshot, Time, Trace};
use xvs_io::bpf::{Steering, SteeringSets};
use xvs_io::netlink::{NetView, Netlink};
use xvs_io::xsk::IoCounters;

/// How long a removed real server stays in the table after its last connection is gone
/// (workers may still hold the snapshot that had it for a batch or two).
const PURGE_GRACE: Duration = Duration::from_secs(2);

/// The control thread's state.
pub struct Director<'a> {
    /// The published snapshot.
    pub snapshot: Arc<ArcSwap<Snapshot>>,
    /// Forwarding counters.
    pub stats: Arc<Stats>,
    /// The connection table.
    pub table: Arc<ConnTable>,
    /// Per-worker I/O counters.
    pub io: Vec<Arc<IoCounters>>,
    /// Per-interface steering programs.
    pub steering: Vec<Steering>,
    /// Served interfaces.
    pub ports: Ports,
    /// When the daemon started.
    pub clock: Instant,
    /// The running service table (what the snapshot holds).
    pub services: Arc<ServiceTable>,
    /// Running timeouts.
    pub timeouts: Timeouts,
    /// Running options.
    pub options: Options,
    /// Network state in the snapshot.
    pub net: Arc<NetState>,
    /// Generation of the snapshot.
    pub generation: u64,
    /// Zero baselines and rate estimators.
    pub accounting: Accounting,
    /// Health checks.
    pub health: Monitor,
    /// The control thread's own forwarder (expiry sweeps and traces).
    pub sweeper: Forwarder,
    /// The configuration file reloads read.
    pub config_path: Option<PathBuf>,
    /// Manage VIP addresses.
    pub manage_vips: bool,
    /// The kernel's view of the network.
    pub view: &'a mut NetView,
    /// rtnetlink.
    pub nl: &'a mut Netlink,
    /// VIP addresses xvsd added.
    pub managed: &'a mut Vec<(u32, IpAddr)>,
    /// How each interface's receive work is polled.
    pub polling: Vec<InterfacePolling>,
    sets: SteeringSets,
    removed_since: HashMap<RealId, Instant>,
}

/// The parts [`Director::new`] needs.
pub struct Parts<'a> {
    /// See [`Director::snapshot`].
    pub snapshot: Arc<ArcSwap<Snapshot>>,
    /// See [`Director::stats`].
    pub stats: Arc<Stats>,
    /// See [`Director::table`].
    pub table: Arc<ConnTable>,
    /// See [`Director::io`].
    pub io: Vec<Arc<IoCounters>>,
    /// See [`Director::steering`].
    pub steering: Vec<Steering>,
    /// See [`Director::ports`].
    pub ports: Ports,
    /// See [`Director::clock`].
    pub clock: Instant,
    /// Steering sets already in the maps.
    pub sets: SteeringSets,
    /// See [`Director::config_path`].
    pub config_path: Option<PathBuf>,
    /// See [`Director::manage_vips`].
    pub manage_vips: bool,
    /// See [`Director::view`].
    pub view: &'a mut NetView,
    /// See [`Director::nl`].
    pub nl: &'a mut Netlink,
    /// See [`Director::managed`].
    pub managed: &'a mut Vec<(u32, IpAddr)>,
    /// Health checks and policies from the configuration.
    pub health: xvs_control::check::Health,
    /// See [`Director::polling`].
    pub polling: Vec<InterfacePolling>,
}

/// Seconds (the connection table's clock) now.
pub fn now(clock: Instant) -> Time {
    Time::from_millis(clock.elapsed().as_millis() as u64)
}

impl<'a> Director<'a> {
    /// The director for what `serve` built; the first snapshot is the one already published.
    pub fn new(p: Parts<'a>) -> Director<'a> {
        let snap = p.snapshot.load_full();
        let sweeper = Forwarder::new(
            Arc::clone(&p.table),
            Arc::clone(&p.stats),
            p.stats.control_index(),
            0,
        );
        let mut health = Monitor::new();
        health.configure(&p.health);
        let mut d = Director {
            health,
            services: Arc::clone(&snap.services),
            timeouts: snap.timeouts,
            options: snap.options,
            net: Arc::clone(&snap.net),
            generation: snap.generation,
            snapshot: p.snapshot,
            stats: p.stats,
            table: p.table,
            io: p.io,
            steering: p.steering,
            ports: p.ports,
            clock: p.clock,
            accounting: Accounting::new(),
            sweeper,
            config_path: p.config_path,
            manage_vips: p.manage_vips,
            view: p.view,
            nl: p.nl,
            managed: p.managed,
            polling: p.polling,
            sets: p.sets,
            removed_since: HashMap::new(),
        };
        d.sync_health();
        d
    }

    /// Sets the health flags of `t` from the checks (unchecked servers are up) and withdraws
    /// services below their quorum; true if anything changed.
    fn apply_health(&self, t: &mut ServiceTable) -> bool {
        let mut changed = false;
        let services: Vec<(ServiceKey, Vec<RealId>)> =
            t.services().map(|s| (s.key, s.reals.clone())).collect();
        for (key, reals) in services {
            let mut healthy = 0;
            for id in reals {
                let Some((addr, port)) = t.real(id).map(|r| (r.addr, r.port)) else {
                    continue;
                };
                let up = self.health.up(&(key, addr, port)).unwrap_or(true);
                healthy += u32::from(up);
                changed |= t.set_up(id, up);
            }
            let quorum = self.health.quorum(&key);
            let down = quorum > 0 && healthy < quorum;
            if t.set_down(&key, down) {
                changed = true;
                if down {
                    tracing::warn!(service = %key, healthy, quorum, "quorum lost: service withdrawn");
                } else {
                    tracing::info!(service = %key, healthy, quorum, "quorum met again: service restored");
                }
            }
        }
        changed
    }

    /// Brings the running table in line with the health checks, publishing if it moved.
    pub fn sync_health(&mut self) {
        let mut t = (*self.services).clone();
        if self.apply_health(&mut t) {
            self.services = Arc::new(t);
            self.publish();
            self.sync_steering();
        }
    }

    /// Runs due checks and applies their state changes: logged, notified, published.
    pub fn run_health(&mut self) {
        let transitions = self.health.run();
        if transitions.is_empty() {
            return;
        }
        for t in &transitions {
            log_transition(t, self.health.inhibits(&t.target.0));
        }
        self.sync_health();
    }

    /// Publishes a snapshot of the running state; workers switch to it between batches.
    pub fn publish(&mut self) {
        self.generation += 1;
        let snap = Snapshot::new(
            Arc::clone(&self.services),
            Arc::clone(&self.net),
            self.timeouts,
            self.options,
            self.generation,
        );
        self.snapshot.store(Arc::new(snap));
    }

    /// The network changed: re-reads it, republishes if the forwarding view moved, and keeps
    /// the steering maps right.
    pub fn refresh_network(&mut self) {
        match self.nl.view() {
            Ok(v) => {
                *self.view = v;
                let fresh = netsync::net_state(&self.ports, self.view);
                if fresh != *self.net {
                    self.net = Arc::new(fresh);
                    self.publish();
                    tracing::debug!(
                        generation = self.generation,
                        neighbours = self.net.neighbour_count(),
                        "network state updated"
                    );
                }
                self.sync_steering();
            }
            Err(e) => tracing::warn!(error = %e, "cannot read the network state"),
        }
    }

    fn sync_steering(&mut self) {
        let (sets, _) = netsync::steering_sets(&self.services, self.view);
        if sets != self.sets {
            for st in &mut self.steering {
                if let Err(e) = st.sync(&sets) {
                    tracing::error!(error = %e, "steering map update failed");
                }
            }
            self.sets = sets;
        }
    }

    /// Applies a batch of changes: all of them or, if one is refused, none. `origin` says
    /// where they came from, for the log.
    pub fn apply(&mut self, changes: &[Change], origin: &str) -> Result<ApplyReply, String> {
        let (table, timeouts) = change::apply(&self.services, &self.timeouts, changes)
            .map_err(|r| {
                tracing::warn!(origin, change = %r.change, error = %r.message, "configuration change refused; nothing applied");
                r.message
            })?;
        self.commit(table, timeouts, changes, origin)
    }

    fn commit(
        &mut self,
        table: ServiceTable,
        timeouts: Timeouts,
        changes: &[Change],
        origin: &str,
    ) -> Result<ApplyReply, String> {
        let mut table = table;
        self.apply_health(&mut table);
        let old = std::mem::replace(&mut self.services, Arc::new(table));
        self.timeouts = timeouts;
        if self.manage_vips {
            let ifindex = self.ports.ifindex[0];
            if let Err(e) = vips::sync(self.nl, ifindex, &self.services, self.managed) {
                tracing::warn!(error = %e, "cannot update the VIP addresses");
            }
            if let Ok(v) = self.nl.view() {
                *self.view = v;
            }
        }
        // Steering first where a service appears (so its first packets reach the workers
        // that already have it), after the snapshot where one goes (same order either way:
        // the snapshot is published before the maps change, and a packet that reaches a worker
        // with no matching service is passed to the host, as before the change).
        self.publish();
        self.sync_steering();
        for c in changes {
            if let Change::AddService { service, .. } = c {
                if old.find(&service.0).is_none() {
                    self.accounting
                        .service_added(&self.stats, &self.services, &service.0);
                }
            }
            tracing::info!(origin, generation = self.generation, change = %c, "configuration changed");
        }
        Ok(ApplyReply {
            applied: changes.iter().map(Change::to_string).collect(),
            generation: self.generation,
        })
    }

    /// Reads the configuration file again (or `path`) and applies what differs from the
    /// running state: unchanged services are not touched.
    pub fn reload(&mut self, path: Option<&Path>) -> Result<ApplyReply, String> {
        let Some(path) = path
            .map(Path::to_path_buf)
            .or_else(|| self.config_path.clone())
        else {
            return Err("xvsd was started without --config: give a file to reload".into());
        };
        let loaded = xvs_control::config::load(&path).map_err(|e| e.to_string())?;
        let applied = loaded
            .apply(DEFAULT_MAX_SERVICES, DEFAULT_MAX_REALS)
            .map_err(|e| e.to_string())?;
        let c = &loaded.config;
        if !c.interfaces.is_empty() && c.interfaces != self.ports.names {
            tracing::warn!(file = %path.display(), "interfaces changed in the file: they take effect at the next start");
        }
        let changes = change::diff(
            &self.services,
            &self.timeouts,
            &applied.services,
            &applied.timeouts,
        );
        let (mut table, timeouts) = change::apply(&self.services, &self.timeouts, &changes)
            .map_err(|r| format!("{}: {} (in `{}`)", path.display(), r.message, r.change))?;
        let marks_changed = table.mark_rules() != applied.services.mark_rules();
        if marks_changed {
            table.set_mark_rules(applied.services.mark_rules().to_vec());
        }
        self.health.configure(&applied.health);
        let mut sorry_changed = false;
        for (key, _) in &applied.health {
            let want = applied
                .services
                .find(key)
                .and_then(|s| s.sorry)
                .and_then(|r| applied.services.real(r));
            let spec = want.map(|r| (r.addr, Some(r.port), r.options));
            sorry_changed |= table
                .set_sorry(key, spec)
                .map_err(|e| format!("{}: sorry server of {key}: {e}", path.display()))?;
        }
        let options_changed = self.options.expire_nodest_conn != c.expire_nodest_conn;
        self.options.expire_nodest_conn = c.expire_nodest_conn;
        if changes.is_empty() && !marks_changed && !options_changed && !sorry_changed {
            self.sync_health();
            tracing::info!(file = %path.display(), "configuration reloaded: no service changed");
            return Ok(ApplyReply {
                applied: Vec::new(),
                generation: self.generation,
            });
        }
        if marks_changed {
            tracing::info!(file = %path.display(), rules = table.mark_rules().len(), "firewall-mark rules replaced");
        }
        let origin = format!("reload {}", path.display());
        self.config_path = Some(path);
        self.commit(table, timeouts, &changes, &origin)
    }

    /// `xvsadm health`: every real server and sorry server with its check and state.
    pub fn health_view(&self) -> HealthReply {
        let t = &self.services;
        let mut out = HealthReply::default();
        for s in t.services() {
            if s.down {
                out.withdrawn.push(Key(s.key));
            }
            let any_up = s
                .reals
                .iter()
                .filter_map(|&id| t.real(id))
                .any(|r| r.up && r.options.weight > 0);
            for (id, sorry) in s
                .reals
                .iter()
                .map(|&id| (id, false))
                .chain(s.sorry.map(|id| (id, true)))
            {
                let Some(r) = t.real(id) else { continue };
                let g = self.stats.real_totals(id);
                let st = self.health.state(&(s.key, r.addr, r.port));
                let (check, state, since, last, last_ago, transitions) = match (&st, sorry) {
                    (_, true) => (
                        "-".into(),
                        if any_up { "sorry" } else { "sorry (serving)" }.into(),
                        self.clock.elapsed().as_secs_f64(),
                        "-".into(),
                        None,
                        0,
                    ),
                    (Some(c), false) => (
                        c.check.clone(),
                        if c.up { "up" } else { "down" }.to_string(),
                        c.since.as_secs_f64(),
                        c.last.as_ref().map_or_else(
                            || "not checked yet".to_string(),
                            |(ok, d, _)| format!("{} ({d})", if *ok { "ok" } else { "failed" }),
                        ),
                        c.last.as_ref().map(|(_, _, ago)| ago.as_secs_f64()),
                        c.transitions,
                    ),
                    (None, false) => (
                        "-".into(),
                        "unchecked".into(),
                        self.clock.elapsed().as_secs_f64(),
                        "-".into(),
                        None,
                        0,
                    ),
                };
                out.servers.push(HealthView {
                    service: Key(s.key),
                    real: fmt_addr_port(&r.addr, r.port),
                    check,
                    state,
                    since,
                    last,
                    last_ago,
                    transitions,
                    weight: r.options.weight,
                    active: g.active,
                    inactive: g.inactive,
                });
            }
        }
        out
    }

    /// Sets or removes a real server's check by hand (until the next reload).
    pub fn set_check(
        &mut self,
        key: &ServiceKey,
        addr: IpAddr,
        port: Option<u16>,
        check: Option<xvs_control::check::CheckConfig>,
    ) -> Result<(), String> {
        let svc = self
            .services
            .find(key)
            .ok_or_else(|| format!("No such service: {key}"))?;
        let port = port.filter(|&p| p != 0).unwrap_or(key.port());
        if self.services.find_real(svc, &addr, port).is_none() {
            return Err(format!(
                "No such destination: {}",
                fmt_addr_port(&addr, port)
            ));
        }
        let what = check
            .as_ref()
            .map_or_else(|| "none".to_string(), ToString::to_string);
        self.health.set_check((*key, addr, port), check)?;
        tracing::info!(service = %key, real = %fmt_addr_port(&addr, port), check = %what, "health check set by hand");
        self.sync_health();
        Ok(())
    }

    /// Frees the slots of removed real servers whose last connection is gone.
    pub fn purge_removed(&mut self) {
        let mut idle = Vec::new();
        for r in self.services.reals() {
            if !r.removed {
                self.removed_since.remove(&r.id);
                continue;
            }
            let since = *self.removed_since.entry(r.id).or_insert_with(Instant::now);
            let t = self.stats.real_totals(r.id);
            if t.active + t.inactive + t.persist == 0 && since.elapsed() >= PURGE_GRACE {
                idle.push(r.id);
            }
        }
        if idle.is_empty() {
            return;
        }
        let mut table = (*self.services).clone();
        for &id in &idle {
            self.accounting.real_purged(&self.stats, &self.services, id);
            self.stats.reset_real(id);
            table.purge_real(id);
            self.removed_since.remove(&id);
        }
        self.services = Arc::new(table);
        self.publish();
        tracing::debug!(purged = idle.len(), "removed real servers freed");
    }

    /// Services and real servers with counters and rates.
    pub fn list(&self) -> ListReply {
        let t = &self.services;
        let services = t
            .services()
            .map(|s| {
                let reals = s
                    .reals
                    .iter()
                    .filter_map(|&id| t.real(id))
                    .map(|r| {
                        let g = self.stats.real_totals(r.id);
                        RealView {
                            spec: RealSpec::of(r),
                            active: g.active,
                            inactive: g.inactive,
                            persist: g.persist,
                            stats: self.accounting.real(&self.stats, r.id),
                            rates: self.accounting.real_rates(r.id),
                            up: r.up,
                            inhibit: self.health.inhibits(&s.key),
                        }
                    })
                    .collect();
                ServiceView {
                    service: Key(s.key),
                    spec: ServiceSpec::of(&s.options, s.key.family()),
                    stats: self.accounting.service(&self.stats, t, &s.key),
                    rates: self.accounting.service_rates(&s.key),
                    reals,
                }
            })
            .collect();
        ListReply {
            table_size: self.table.capacity() as u64,
            timeouts: self.timeouts.ipvsadm_triple(),
            services,
        }
    }

    /// Connection entries (forward entries and persistence templates), at most `limit`.
    pub fn conns(&self, limit: usize) -> ConnsReply {
        let now = now(self.clock).secs();
        let t = &self.services;
        let mut out = ConnsReply::default();
        self.table.for_each(|e| {
            let template = match e.kind {
                EntryKind::Forward => false,
                EntryKind::Template => true,
                _ => return,
            };
            if out.conns.len() >= limit {
                out.truncated = true;
                return;
            }
            let Some(real) = t.real(e.real) else { return };
            let k = &e.key;
            let proto = Protocol::from_number(k.proto()).map_or("IP", Protocol::name);
            let vaddr = match (template, k.proto(), k.version()) {
                // A mark service's template carries the mark where the address goes; IPVS
                // lists it as an address too.
                (true, 0, 4) => {
                    let d = k.dst();
                    IpAddr::from([d[12], d[13], d[14], d[15]])
                }
                _ => ip_of(&k.dst()),
            };
            out.conns.push(ConnView {
                proto: proto.to_string(),
                expires: e.expires.saturating_sub(now),
                state: if template {
                    "NONE".into()
                } else {
                    state_name(k.proto(), e.state).to_string()
                },
                client: ip_of(&k.src()),
                cport: k.sport(),
                vaddr,
                vport: k.dport(),
                daddr: real.addr,
                dport: if real.port == 0 { k.dport() } else { real.port },
                template,
            });
        });
        out
    }

    /// Zeroes counters and rates (`-Z`).
    pub fn zero(&mut self, only: Option<&ServiceKey>) -> Result<(), String> {
        if let Some(k) = only {
            if self.services.find(k).is_none() {
                return Err(format!("No such service: {k}"));
            }
        }
        self.accounting.zero(&self.stats, &self.services, only);
        tracing::info!(service = ?only.map(ToString::to_string), "counters zeroed");
        Ok(())
    }

    /// Samples the rate estimators (every 2 s).
    pub fn tick(&mut self) {
        self.accounting.tick(&self.stats, &self.services);
    }

    /// `xvsadm trace`.
    pub fn trace(&mut self, q: &TraceQuery) -> Result<TraceReply, String> {
        let proto = match q.proto.to_ascii_lowercase().as_str() {
            "tcp" => Protocol::Tcp,
            "udp" => Protocol::Udp,
            "sctp" => Protocol::Sctp,
            other => return Err(format!("unknown protocol '{other}' (tcp, udp or sctp)")),
        };
        if q.src.is_ipv4() != q.dst.is_ipv4() {
            return Err("source and destination are of different address families".into());
        }
        if let Some(i) = &q.interface {
            if !self.ports.names.contains(i) {
                return Err(format!(
                    "{i} is not served by this xvsd (it serves {})",
                    self.ports.names.join(", ")
                ));
            }
        }
        let version = if q.src.is_ipv4() { 4 } else { 6 };
        let key = FlowKey::flow(
            version,
            proto.number(),
            addr16(&q.src),
            q.sport,
            addr16(&q.dst),
            q.dport,
        );
        let flags = q.tcp_flags.unwrap_or(xvs_wire::tcp::flags::SYN);
        let snap = self.snapshot.load_full();
        let t = self.sweeper.trace(&snap, key, flags, now(self.clock));
        let svc_name = |id| snap.services.service(id).map(|s| s.key.to_string());
        let real_of = |id: RealId| snap.services.real(id);
        let describe = |id: RealId| {
            real_of(id).map(|r| fmt_addr_port(&r.addr, if r.port == 0 { q.dport } else { r.port }))
        };
        let method = |id: RealId| real_of(id).map(|r| r.options.method.forward_name().to_string());
        let egress = |id: RealId| {
            Some(match snap.real_hop(id) {
                Resolve::Hop(h) => format!(
                    "{} to {}",
                    self.ports
                        .names
                        .get(usize::from(h.port))
                        .map_or("?", String::as_str),
                    h.dst_mac()
                ),
                Resolve::Unresolved { port, ip } => format!(
                    "{} to {} (MAC not resolved yet)",
                    self.ports
                        .names
                        .get(usize::from(port))
                        .map_or("?", String::as_str),
                    ip_of(&ip)
                ),
                Resolve::NoRoute => "no route to the real server".to_string(),
            })
        };
        let mut r = TraceReply::default();
        match t {
            Trace::NoService => {
                r.verdict = "host".into();
                r.reason = "no virtual service matches and no connection exists: the host network stack gets it".into();
            }
            Trace::NotOpening { svc } => {
                r.verdict = "host".into();
                r.service = svc_name(svc);
                r.reason = "the service matches but no connection exists and the packet cannot open one (TCP without SYN): the host stack gets it, as with IPVS".into();
            }
            Trace::Connection {
                svc,
                real,
                state,
                expires_in,
                real_removed,
            } => {
                r.verdict = "forward".into();
                (r.service, r.real, r.method, r.egress) =
                    (svc_name(svc), describe(real), method(real), egress(real));
                r.reason = format!(
                    "existing connection in state {state}, expires in {expires_in} s{}",
                    if real_removed {
                        "; its real server was removed or is down, the connection finishes on it"
                    } else {
                        ""
                    }
                );
            }
            Trace::Reply { svc, real, state } => {
                r.verdict = "forward".into();
                (r.service, r.real, r.method) = (svc_name(svc), describe(real), method(real));
                r.reason = format!(
                    "reply of a connection in state {state}: rewritten and sent back to the client"
                );
            }
            Trace::Persistent {
                svc,
                real,
                expires_in,
            } => {
                r.verdict = "forward".into();
                (r.service, r.real, r.method, r.egress) =
                    (svc_name(svc), describe(real), method(real), egress(real));
                r.reason = format!(
                    "persistence template for this client expires in {expires_in} s and names this real server"
                );
            }
            Trace::Scheduled { svc, real } => {
                r.verdict = "forward".into();
                let sched = snap
                    .services
                    .service(svc)
                    .map(|s| s.options.scheduler.clone())
                    .unwrap_or_default();
                (r.service, r.real, r.method, r.egress) =
                    (svc_name(svc), describe(real), method(real), egress(real));
                r.reason = format!(
                    "new connection: scheduler {sched} picks this real server (stateful schedulers such as rr pick per worker, so a worker may choose another)"
                );
            }
            Trace::NoRealServer { svc } => {
                r.verdict = "drop".into();
                r.service = svc_name(svc);
                r.reason = "no real server is available (none, all weight 0, or all over their thresholds): dropped with ICMP unreachable".into();
            }
        }
        Ok(r)
    }
}

fn log_transition(t: &Transition, inhibit: bool) {
    let (svc, real) = (
        t.target.0.to_string(),
        fmt_addr_port(&t.target.1, t.target.2),
    );
    if t.up {
        tracing::info!(service = %svc, real = %real, check = %t.check, result = %t.detail, "real server up: back in rotation with its weight");
    } else {
        let action = if inhibit {
            "weight set to 0"
        } else {
            "removed from scheduling"
        };
        tracing::warn!(service = %svc, real = %real, check = %t.check, result = %t.detail, action, "real server down");
    }
    if let Some(cmd) = &t.notify {
        let child = std::process::Command::new("sh")
            .args(["-c", cmd])
            .env("XVS_SERVICE", &svc)
            .env("XVS_REAL", &real)
            .env("XVS_STATE", if t.up { "up" } else { "down" })
            .stdin(std::process::Stdio::null())
            .spawn();
        match child {
            // Reaped on a thread of its own so a slow script holds nothing.
            Ok(mut c) => {
                let _ = std::thread::Builder::new()
                    .name("xvs-notify".into())
                    .spawn(move || c.wait());
            }
            Err(e) => tracing::warn!(command = %cmd, error = %e, "notify command failed to start"),
        }
    }
}
