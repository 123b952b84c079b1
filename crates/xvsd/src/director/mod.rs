//! The control thread's state and its one way to change the dataplane.
//!
//! [`Director`] holds the running configuration ([`running`]), what it shares with the workers
//! ([`Shared`]), the health checks and the counters' baselines. Every change — a batch of
//! commands, a reload, a health transition, a purge, a network change — builds the next
//! running state and goes through [`Director::install`], which applies the health flags,
//! publishes the snapshot and brings the kernel side ([`kernel`]: VIP addresses, steering
//! maps) in step, in that order. What the director answers (listings, stats, traces) is in
//! `crate::views`; the periodic work in `crate::control_loop`.

mod ha;
pub use ha::daemon_cfg;
pub mod kernel;
mod reload;
pub mod running;
#[cfg(test)]
pub mod testing;

use crate::accounting::Accounting;
use crate::alarms::{Alarms, Reading};
use crate::ha::state::HaState;
use crate::health::{self, Monitor};
use crate::neigh_grace::NeighGrace;
use crate::netsync::{self, Ports};
use crate::polling::InterfacePolling;
use crate::relink::Relink;
use arc_swap::ArcSwap;
use kernel::Kernel;
use running::Running;
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use xvs_control::change::{self, Change};
use xvs_control::proto::ApplyReply;
use xvs_core::conn::{ConnTable, FlowKey, Timeouts};
use xvs_core::service::{ServiceKey, ServiceTable, fmt_addr_port};
use xvs_core::stats::Stats;
use xvs_core::{Forwarder, RealId, Snapshot, Time, Trace};
use xvs_io::steering::SteeringSets;
use xvs_io::xsk::IoCounters;

/// How long a removed real server stays in the table after its last connection is gone
/// (workers may still hold the snapshot that had it for a batch or two).
const PURGE_GRACE: Duration = Duration::from_secs(2);

/// What the control thread shares with the workers, and the facts of the start.
pub struct Shared {
    /// The published snapshot.
    pub snapshot: Arc<ArcSwap<Snapshot>>,
    /// Forwarding counters.
    pub stats: Arc<Stats>,
    /// The connection table.
    pub table: Arc<ConnTable>,
    /// Per-worker I/O counters.
    pub io: Vec<Arc<IoCounters>>,
    /// Served interfaces.
    pub ports: Ports,
    /// When the daemon started.
    pub clock: Instant,
    /// How each interface's receive work is polled.
    pub polling: Vec<InterfacePolling>,
}

impl Shared {
    /// Seconds (the connection table's clock) now.
    pub fn now(&self) -> Time {
        now(self.clock)
    }
}

/// Seconds (the connection table's clock) since `clock`.
pub fn now(clock: Instant) -> Time {
    Time::from_millis(clock.elapsed().as_millis() as u64)
}

/// The next running state, as a change computed it.
struct Next {
    services: ServiceTable,
    timeouts: Timeouts,
}

/// The control thread's state.
pub struct Director {
    /// What the workers share.
    pub shared: Shared,
    /// The running configuration (what the snapshot holds).
    pub running: Running,
    /// Health checks.
    pub health: Monitor,
    /// Zero baselines and rate estimators.
    pub accounting: Accounting,
    kernel: Box<dyn Kernel>,
    /// The control thread's own forwarder (expiry sweeps and traces).
    sweeper: Forwarder,
    config_path: Option<PathBuf>,
    /// The configuration file is a keepalived.conf.
    pub keepalived: bool,
    /// The VRRP and sync settings xvsd started with (reloads do not change them).
    pub vrrp_config: xvs_control::config::ha::VrrpConfig,
    /// See `vrrp_config`.
    pub sync_config: Option<xvs_control::config::ha::SyncConfig>,
    sets: SteeringSets,
    removed_since: HashMap<RealId, Instant>,
    /// Served interfaces that leave and come back.
    links: Relink,
    /// Trouble the counters show, told once when it starts and ends.
    alarms: Alarms,
    /// Neighbours that vanished a moment ago, still in use.
    neigh_grace: NeighGrace,
    /// VRRP and connection sync.
    pub ha: HaState,
    /// Announce the VIPs of services that are up to the routing daemon (scale-out).
    pub announce: bool,
    /// Announcing waits for connection sync (told once).
    announce_held: bool,
}

/// How long a stopping xvsd keeps forwarding after withdrawing its VIPs from the routers.
pub const ANNOUNCE_DRAIN: Duration = Duration::from_secs(1);

impl Director {
    /// The director of what start-up built; the first snapshot is the one already published,
    /// `sets` what the steering maps already hold.
    pub fn new(
        shared: Shared,
        kernel: Box<dyn Kernel>,
        sets: SteeringSets,
        health: &xvs_control::check::Health,
        config_path: Option<PathBuf>,
        links: Relink,
    ) -> Director {
        let running = Running::of(&shared.snapshot.load());
        let sweeper = Forwarder::new(
            Arc::clone(&shared.table),
            Arc::clone(&shared.stats),
            shared.stats.control_index(),
            0,
        );
        let mut monitor = Monitor::new();
        monitor.configure(health);
        let mut d = Director {
            shared,
            running,
            health: monitor,
            accounting: Accounting::new(),
            kernel,
            sweeper,
            config_path,
            keepalived: false,
            vrrp_config: Default::default(),
            sync_config: None,
            sets,
            removed_since: HashMap::new(),
            links,
            alarms: Alarms::default(),
            neigh_grace: NeighGrace::default(),
            ha: HaState::default(),
            announce: false,
            announce_held: false,
        };
        d.sync_health();
        d
    }

    /// The kernel side (for the statistics of its steering programs).
    pub fn kernel(&self) -> &dyn Kernel {
        self.kernel.as_ref()
    }

    /// The one way the running state changes: health flags applied to `next`, the snapshot
    /// published, then the VIP addresses and steering maps brought in step. The snapshot goes
    /// out before the maps change either way: a packet that reaches a worker with no matching
    /// service yet (or any more) is passed to the host, as before the change.
    fn install(&mut self, next: Next) {
        let mut services = next.services;
        health::apply::apply(&self.health, &mut services);
        self.running.services = Arc::new(services);
        self.running.timeouts = next.timeouts;
        if let Err(e) = self.kernel.sync_vips(&self.running.services) {
            tracing::warn!(error = %e, "cannot update the VIP addresses");
        }
        self.running.publish(&self.shared.snapshot);
        self.sync_steering();
        self.sync_announced();
    }

    /// With `announce`: the VIPs with a service that is up (quorum met) are announced to the
    /// routers, the others withdrawn, so that ECMP sends a VIP's flows only to directors that
    /// can serve them. A director that receives connection sync announces nothing until the
    /// others' table has had time to arrive (every connection is sent again within each
    /// refresh period): flows the routers move to it find their connections.
    pub fn sync_announced(&mut self) {
        if !self.announce {
            return;
        }
        let refresh = self.ha.sync.refresh;
        if self.ha.sync.runs("backup").is_some() && !self.ha.sync.counters.synced(refresh) {
            if !self.announce_held {
                self.announce_held = true;
                tracing::info!(
                    seconds = refresh + 2,
                    "VIPs announced once connection sync has brought the other directors' table"
                );
            }
            return;
        }
        let up = crate::vips::addresses(self.running.services.services().filter(|s| !s.down));
        if let Err(e) = self.kernel.sync_announced(&up) {
            tracing::warn!(error = %e, "cannot update the announced VIPs");
        }
    }

    /// A stopping director withdraws its VIPs from the routers and keeps forwarding for
    /// [`ANNOUNCE_DRAIN`] while they move the flows to the other directors.
    pub fn withdraw_announced(&mut self) {
        if !self.announce {
            return;
        }
        self.announce = false;
        match self.kernel.sync_announced(&[]) {
            Ok(()) => std::thread::sleep(ANNOUNCE_DRAIN),
            Err(e) => tracing::warn!(error = %e, "cannot withdraw the announced VIPs"),
        }
    }

    /// The next state with the running timeouts and this table.
    fn next_with(&self, services: ServiceTable) -> Next {
        Next {
            services,
            timeouts: self.running.timeouts,
        }
    }

    fn sync_steering(&mut self) {
        let (sets, _) = netsync::steering_sets(
            &self.running.services,
            self.kernel.net(),
            &self.ha.inactive(),
        );
        if sets != self.sets {
            match self.kernel.sync_steering(&sets) {
                Ok(()) => self.sets = sets,
                Err(e) => tracing::error!(error = %e, "steering map update failed"),
            }
        }
    }

    /// Brings the running table in line with the health checks, installing it if it moved.
    pub fn sync_health(&mut self) {
        let mut t = (*self.running.services).clone();
        if health::apply::apply(&self.health, &mut t) {
            self.install(self.next_with(t));
        }
    }

    /// Runs due checks and applies their state changes: logged, notified, installed.
    pub fn run_health(&mut self) {
        let transitions = self.health.run();
        if transitions.is_empty() {
            return;
        }
        for t in &transitions {
            health::apply::log(t, self.health.inhibits(&t.target.0));
        }
        self.sync_health();
    }

    /// The network changed: re-reads it, follows served interfaces that left or came back,
    /// republishes if the forwarding view moved, and keeps the steering maps right (a local
    /// address may have come or gone).
    pub fn refresh_network(&mut self) {
        if let Err(e) = self.kernel.refresh() {
            tracing::warn!(error = %e, "cannot read the network state");
            return;
        }
        let moved = self.links.follow(
            self.kernel.as_mut(),
            &mut self.shared.ports,
            &self.sets,
            &self.shared.polling,
        );
        if moved {
            // An interface came back: the VIP addresses xvsd manages go on it again.
            if let Err(e) = self.kernel.sync_vips(&self.running.services) {
                tracing::warn!(error = %e, "cannot update the VIP addresses");
            }
        }
        self.collect_ports();
        let mut fresh = netsync::net_state(&self.shared.ports, self.kernel.net());
        let links = &self.links;
        let ask = self.neigh_grace.carry(
            &self.running.net,
            &mut fresh,
            |p| !links.gone(usize::from(p)),
            Instant::now(),
        );
        for (port, ip) in ask {
            self.resolve(usize::from(port), ip);
        }
        if fresh != *self.running.net {
            self.running.net = Arc::new(fresh);
            self.running.publish(&self.shared.snapshot);
            tracing::debug!(
                generation = self.running.generation,
                neighbours = self.running.net.neighbour_count(),
                "network state updated"
            );
        }
        self.sync_steering();
    }

    /// Takes the workers' answers about sockets opened again on an interface that came back.
    pub fn collect_ports(&mut self) {
        self.links.collect(
            self.kernel.as_mut(),
            &self.shared.ports,
            &mut self.shared.polling,
        );
    }

    /// True if served port `i` is not served now (its interface gone, or being attached
    /// again).
    pub fn port_gone(&self, i: usize) -> bool {
        self.links.gone(i)
    }

    /// Reads the counters that tell of trouble (rings, UMEM, steering drops, neighbours, the
    /// table) and logs episodes that start or end (once a second).
    pub fn watch_alarms(&mut self, now: Instant) -> Vec<crate::alarms::Event> {
        use std::sync::atomic::Ordering::Relaxed;
        use xvs_core::DropReason;
        let names = &self.shared.ports.names;
        let mut r = Vec::new();
        for (w, c) in self.shared.io.iter().enumerate() {
            r.push(Reading {
                what: format!("worker {w}: transmit ring full"),
                meaning: "frames dropped: the kernel is not sending what the worker queued (egress down or slower than ingress)",
                value: c.tx_ring_full.load(Relaxed),
            });
            for (k, name) in c.sockets.iter().zip(names) {
                r.push(Reading {
                    what: format!("{name} queue {w}: fill ring ran dry"),
                    meaning: "the kernel dropped frames for want of UMEM frames to receive into (UMEM exhausted, or frames held in transmit rings)",
                    value: k.rx_fill_ring_empty.load(Relaxed),
                });
                r.push(Reading {
                    what: format!("{name} queue {w}: receive ring full"),
                    meaning: "the kernel dropped frames the worker did not take in time",
                    value: k.rx_ring_full.load(Relaxed),
                });
            }
        }
        for (st, name) in self.kernel.steering_status().iter().zip(names) {
            r.push(Reading {
                what: format!("{name}: steering dropped frames for a worker behind"),
                meaning: "overload shed before the frames were copied",
                value: st.drops.behind,
            });
            r.push(Reading {
                what: format!("{name}: SYNs beyond the new-connection budget"),
                meaning: "dropped in XDP: a SYN flood, or a budget too low",
                value: st.drops.syn_over_budget,
            });
        }
        let g = self.shared.stats.global();
        for (reason, meaning) in [
            (
                DropReason::UnknownNeighbour,
                "frames dropped: a next hop had no MAC address after a second's wait (its resolution fails)",
            ),
            (
                DropReason::TableFull,
                "new connections dropped: the connection table is full",
            ),
        ] {
            r.push(Reading {
                what: format!("drops: {}", reason.label()),
                meaning,
                value: g.drops[reason as usize],
            });
        }
        self.alarms.observe(now, r)
    }

    /// The trouble going on now (counters in an episode), for `xvsadm stats`.
    pub fn alarms(&self) -> Vec<&str> {
        self.alarms.active()
    }

    /// Puts back the receive settings xvsd changed (at exit, after the workers stopped).
    pub fn restore_polling(&mut self) {
        self.links.restore_polling();
    }

    /// Asks the kernel to resolve a next hop on a served port.
    pub fn resolve(&mut self, port: usize, ip: IpAddr) {
        let Some(&ifindex) = self.shared.ports.ifindex.get(port) else {
            return;
        };
        if let Err(e) = self.kernel.resolve(ifindex, ip) {
            tracing::debug!(ip = %ip, error = %e, "neighbour resolution request failed");
        }
    }

    /// Applies a batch of changes: all of them or, if one is refused, none. `origin` says
    /// where they came from, for the log.
    pub fn apply(&mut self, changes: &[Change], origin: &str) -> Result<ApplyReply, String> {
        let (services, timeouts) =
            change::apply(&self.running.services, &self.running.timeouts, changes).map_err(
                |r| {
                    tracing::warn!(origin, change = %r.change, error = %r.message, "configuration change refused; nothing applied");
                    r.message
                },
            )?;
        Ok(self.commit(Next { services, timeouts }, changes, origin))
    }

    /// Installs the result of `changes` and reports it.
    fn commit(&mut self, next: Next, changes: &[Change], origin: &str) -> ApplyReply {
        let old = Arc::clone(&self.running.services);
        self.install(next);
        for c in changes {
            if let Change::AddService { service, .. } = c {
                if old.find(&service.0).is_none() {
                    self.accounting.service_added(
                        &self.shared.stats,
                        &self.running.services,
                        &service.0,
                    );
                }
            }
            tracing::info!(origin, generation = self.running.generation, change = %c, "configuration changed");
        }
        ApplyReply {
            applied: changes.iter().map(Change::to_string).collect(),
            generation: self.running.generation,
        }
    }

    /// Sets or removes a real server's check by hand (until the next reload).
    pub fn set_check(
        &mut self,
        key: &ServiceKey,
        addr: IpAddr,
        port: Option<u16>,
        check: Option<xvs_control::check::CheckConfig>,
    ) -> Result<(), String> {
        let services = &self.running.services;
        let svc = services
            .find(key)
            .ok_or_else(|| format!("No such service: {key}"))?;
        let port = port.filter(|&p| p != 0).unwrap_or(key.port());
        if services.find_real(svc, &addr, port).is_none() {
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
        let stats = &self.shared.stats;
        let mut idle = Vec::new();
        for r in self.running.services.reals() {
            if !r.removed {
                self.removed_since.remove(&r.id);
                continue;
            }
            let since = *self.removed_since.entry(r.id).or_insert_with(Instant::now);
            let t = stats.real_totals(r.id);
            if t.active + t.inactive + t.persist == 0 && since.elapsed() >= PURGE_GRACE {
                idle.push(r.id);
            }
        }
        if idle.is_empty() {
            return;
        }
        let mut table = (*self.running.services).clone();
        for &id in &idle {
            self.accounting
                .real_purged(stats, &self.running.services, id);
            stats.reset_real(id);
            table.purge_real(id);
            self.removed_since.remove(&id);
        }
        self.install(self.next_with(table));
        tracing::debug!(purged = idle.len(), "removed real servers freed");
    }

    /// Zeroes counters and rates (`-Z`).
    pub fn zero(&mut self, only: Option<&ServiceKey>) -> Result<(), String> {
        if let Some(k) = only {
            if self.running.services.find(k).is_none() {
                return Err(format!("No such service: {k}"));
            }
        }
        self.accounting
            .zero(&self.shared.stats, &self.running.services, only);
        tracing::info!(service = ?only.map(ToString::to_string), "counters zeroed");
        Ok(())
    }

    /// Samples the rate estimators (every 2 s).
    pub fn sample_rates(&mut self) {
        self.accounting
            .tick(&self.shared.stats, &self.running.services);
    }

    /// What the forwarder would do with a packet of `key` with TCP `flags` (nothing changes).
    pub fn trace_flow(&mut self, snap: &Snapshot, key: FlowKey, flags: u8) -> Trace {
        let now = self.shared.now();
        self.sweeper.trace(snap, key, flags, now)
    }
}

#[cfg(test)]
mod tests {
    use super::testing;
    use xvs_control::change::{Change, Key};

    #[test]
    fn an_applied_batch_is_published_and_steered() {
        let (mut d, k) = testing::director();
        let g = d.running.generation;
        let r = d
            .apply(&testing::service_with_real("198.18.1.11"), "test")
            .unwrap();
        assert_eq!(r.applied.len(), 2);
        assert_eq!(r.generation, g + 1);
        let snap = d.shared.snapshot.load();
        assert_eq!(snap.generation, g + 1);
        assert_eq!(snap.services.services().count(), 1);
        let sets = k.last_steering().expect("steering maps written");
        assert_eq!(sets.vips.len(), 2, "the service and its ICMP");
        assert_eq!(k.vip_syncs(), 1);
    }

    #[test]
    fn a_refused_batch_changes_nothing() {
        let (mut d, k) = testing::director();
        let mut batch = testing::service_with_real("198.18.1.11");
        batch.push(Change::DeleteService {
            service: "tcp 198.18.0.99:80".parse::<Key>().unwrap(),
        });
        let g = d.running.generation;
        let e = d.apply(&batch, "test").unwrap_err();
        assert!(e.contains("No such service"), "{e}");
        assert_eq!(d.running.generation, g);
        assert_eq!(d.shared.snapshot.load().services.services().count(), 0);
        assert!(k.last_steering().is_none());
    }

    #[test]
    fn the_vips_of_services_that_are_up_are_announced_and_withdrawn_with_them() {
        let (mut d, k) = testing::director();
        d.announce = true;
        d.apply(&testing::service_with_real("198.18.1.11"), "test")
            .unwrap();
        let vip: std::net::IpAddr = "198.18.0.10".parse().unwrap();
        assert_eq!(k.announced(), vec![vip]);
        let service: Key = "tcp 198.18.0.10:80".parse().unwrap();
        d.apply(&[Change::DeleteService { service }], "test")
            .unwrap();
        assert!(k.announced().is_empty(), "withdrawn with its service");
        d.apply(&testing::service_with_real("198.18.1.11"), "test")
            .unwrap();
        assert_eq!(k.announced(), vec![vip]);
        d.withdraw_announced();
        assert!(k.announced().is_empty(), "withdrawn at stop");
    }

    #[test]
    fn a_removed_real_is_purged_once_idle_and_past_its_grace() {
        let (mut d, _k) = testing::director();
        d.apply(&testing::service_with_real("198.18.1.11"), "test")
            .unwrap();
        let service: Key = "tcp 198.18.0.10:80".parse().unwrap();
        d.apply(
            &[Change::DeleteReal {
                service,
                addr: "198.18.1.11".parse().unwrap(),
                port: Some(80),
            }],
            "test",
        )
        .unwrap();
        assert_eq!(
            d.running.services.reals().count(),
            1,
            "kept while it may be in use"
        );
        d.purge_removed();
        assert_eq!(d.running.services.reals().count(), 1, "within its grace");
        for r in d.removed_since.values_mut() {
            *r -= super::PURGE_GRACE;
        }
        let g = d.running.generation;
        d.purge_removed();
        assert_eq!(d.running.services.reals().count(), 0);
        assert_eq!(d.running.generation, g + 1);
    }

    #[test]
    fn a_check_for_an_unknown_server_is_refused() {
        let (mut d, _k) = testing::director();
        d.apply(&testing::service_with_real("198.18.1.11"), "test")
            .unwrap();
        let key = "tcp 198.18.0.10:80".parse::<Key>().unwrap().0;
        let e = d
            .set_check(&key, "198.18.1.12".parse().unwrap(), None, None)
            .unwrap_err();
        assert_eq!(e, "No such destination: 198.18.1.12:80");
    }
}
