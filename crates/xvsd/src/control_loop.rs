//! The control thread's periodic work, one tick at a time: answering requests, SIGHUP reloads,
//! network changes, next hops to resolve, the expiry sweep, purging removed real servers, rate
//! samples and health checks. A tick takes its inputs as arguments (time, what was signalled,
//! what the workers asked), so tests drive it without sockets or signals.

use crate::control;
use crate::director::Director;
use crate::ha::HaEvent;
use crate::jobs::Job;
use crossbeam_channel::Receiver;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use xvs_core::PortId;
use xvs_core::net::Resolve;
use xvs_core::service::ip_from16;

/// How long a tick lasts (requests are answered as they come within it).
pub const TICK: Duration = Duration::from_millis(50);
/// Ticks per full sweep of the connection table (about a second).
const SWEEP_TICKS: usize = 20;
/// The least time between two resolution requests for one next hop.
const RESOLVE_EVERY: Duration = Duration::from_secs(1);

/// What happened since the last tick, from outside the director.
#[derive(Debug, Default, Clone, Copy)]
pub struct Events {
    /// SIGHUP arrived.
    pub reload: bool,
    /// The network watch saw a change.
    pub network_changed: bool,
}

/// The loop's own memory between ticks.
pub struct ControlLoop {
    next_shard: usize,
    last_view: Instant,
    last_second: Instant,
    asked: HashMap<(PortId, [u8; 16]), Instant>,
}

impl ControlLoop {
    /// A loop starting at `now`.
    pub fn new(now: Instant) -> ControlLoop {
        ControlLoop {
            next_shard: 0,
            last_view: now,
            last_second: now,
            asked: HashMap::new(),
        }
    }

    /// Answers jobs until the tick's deadline, then does the periodic work.
    pub fn serve_tick(
        &mut self,
        d: &mut Director,
        jobs: &Receiver<Job>,
        ha: &Receiver<HaEvent>,
        events: Events,
        hops: impl Iterator<Item = (PortId, [u8; 16])>,
    ) {
        let deadline = Instant::now() + TICK;
        // Requests and VRRP's mastership changes as they come (a new master waits for its
        // addresses before it announces them).
        loop {
            crossbeam_channel::select! {
                recv(jobs) -> job => match job {
                    Ok(job) => control::handle(job, d),
                    Err(_) => std::thread::sleep(deadline.saturating_duration_since(Instant::now())),
                },
                recv(ha) -> ev => match ev {
                    Ok(ev) => d.ha_event(ev),
                    // No VRRP runner (any more): nothing will come; never spin on it.
                    Err(_) => std::thread::sleep(deadline.saturating_duration_since(Instant::now())),
                },
                default(deadline.saturating_duration_since(Instant::now())) => break,
            }
            if Instant::now() >= deadline {
                break;
            }
        }
        self.tick(d, Instant::now(), events, hops);
    }

    /// The periodic work at `now`; `hops` are the next hops the workers met without a MAC.
    pub fn tick(
        &mut self,
        d: &mut Director,
        now: Instant,
        events: Events,
        hops: impl Iterator<Item = (PortId, [u8; 16])>,
    ) {
        if events.reload {
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
        // Network changes, and once a second regardless (neighbours age without events).
        if events.network_changed || now.duration_since(self.last_view) >= Duration::from_secs(1) {
            self.last_view = now;
            d.refresh_network();
        } else {
            d.collect_ports();
        }
        self.resolve(d, now, hops);
        // Expiry: the whole table about once a second.
        let shards = d.shared.table.shard_count();
        let per_tick = shards.div_ceil(SWEEP_TICKS);
        d.sweep(self.next_shard, per_tick);
        self.next_shard = (self.next_shard + per_tick) % shards;
        if now.duration_since(self.last_second) >= Duration::from_secs(1) {
            self.last_second = now;
            d.purge_removed();
            d.watch_alarms(now);
            d.renew_vrrp_addrs();
            d.sync_announced();
        }
        d.sample_rates();
        d.run_health();
    }

    /// Next hops to resolve: real servers the snapshot has no MAC for (asked before any client
    /// needs them), and what the workers met. Once a second per hop.
    fn resolve(
        &mut self,
        d: &mut Director,
        now: Instant,
        hops: impl Iterator<Item = (PortId, [u8; 16])>,
    ) {
        let snap = d.shared.snapshot.load_full();
        let unresolved =
            (0..snap.services.real_slots()).filter_map(|id| match snap.real_hop(id as u32) {
                Resolve::Unresolved { port, ip } => Some((port, ip)),
                _ => None,
            });
        let met: Vec<(PortId, [u8; 16])> = hops.collect();
        for (port, ip) in &met {
            if !self.asked.contains_key(&(*port, *ip)) {
                let name = d.shared.ports.names.get(usize::from(*port));
                tracing::info!(
                    hop = %ip_from16(ip),
                    interface = name.map_or("?", String::as_str),
                    "frames wait: no MAC address for this next hop; asking the kernel to resolve it"
                );
            }
        }
        let wanted: Vec<(PortId, [u8; 16])> = unresolved.chain(met).collect();
        for (port, ip) in wanted {
            let last = self
                .asked
                .entry((port, ip))
                .or_insert(now - 2 * RESOLVE_EVERY);
            if now.duration_since(*last) < RESOLVE_EVERY {
                continue;
            }
            *last = now;
            d.resolve(usize::from(port), ip_from16(&ip));
        }
        self.asked
            .retain(|_, t| now.duration_since(*t) < Duration::from_secs(60));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::director::testing;
    use std::net::IpAddr;

    #[test]
    fn a_real_server_without_a_mac_is_asked_for_once_a_second() {
        let (mut d, k) = testing::director_serving();
        let t0 = Instant::now();
        let mut l = ControlLoop::new(t0);
        let rip: IpAddr = "198.18.1.11".parse().unwrap();
        l.tick(&mut d, t0, Events::default(), std::iter::empty());
        l.tick(&mut d, t0 + TICK, Events::default(), std::iter::empty());
        assert_eq!(k.resolved(), vec![(testing::IFINDEX, rip)]);
        l.tick(
            &mut d,
            t0 + RESOLVE_EVERY + TICK,
            Events::default(),
            std::iter::empty(),
        );
        assert_eq!(k.resolved().len(), 2);
    }

    #[test]
    fn a_hop_a_worker_met_is_asked_for() {
        let (mut d, k) = testing::director();
        let mut l = ControlLoop::new(Instant::now());
        let hop = xvs_core::service::addr16(&"198.18.1.99".parse().unwrap());
        l.tick(
            &mut d,
            Instant::now(),
            Events::default(),
            [(0, hop)].into_iter(),
        );
        assert_eq!(
            k.resolved(),
            vec![(testing::IFINDEX, "198.18.1.99".parse().unwrap())]
        );
    }

    #[test]
    fn a_network_event_refreshes_the_view_and_a_quiet_tick_does_not() {
        let (mut d, k) = testing::director();
        let t0 = Instant::now();
        let mut l = ControlLoop::new(t0);
        l.tick(&mut d, t0, Events::default(), std::iter::empty());
        assert_eq!(k.refreshes(), 0);
        let ev = Events {
            network_changed: true,
            ..Events::default()
        };
        l.tick(&mut d, t0 + TICK, ev, std::iter::empty());
        assert_eq!(k.refreshes(), 1);
        l.tick(
            &mut d,
            t0 + Duration::from_secs(2),
            Events::default(),
            std::iter::empty(),
        );
        assert_eq!(k.refreshes(), 2);
    }

    #[test]
    fn a_reload_without_a_file_changes_nothing() {
        let (mut d, _k) = testing::director();
        let g = d.running.generation;
        let ev = Events {
            reload: true,
            ..Events::default()
        };
        ControlLoop::new(Instant::now()).tick(&mut d, Instant::now(), ev, std::iter::empty());
        assert_eq!(d.running.generation, g);
    }
}
