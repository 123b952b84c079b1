//! The fourteen IPVS schedulers behind one trait.
//!
//! A scheduler picks a real server for a new connection. Each worker owns its own scheduler
//! instances (rebuilt when a service's version changes), so a scheduler keeps mutable state
//! (round-robin cursor, locality tables) without locks. Semantics follow the kernel's
//! `ip_vs_*.c` schedulers: the same availability rules (weight > 0, not overloaded), the same
//! connection overhead (`active × 256 + inactive`), the same tie-breaking order.
//!
//! Adding a scheduler is one file with a `build` function, its name in
//! [`SCHEDULERS`](crate::service::SCHEDULERS) and its `build` at the same place in [`REGISTRY`].

mod dh;
mod fo;
mod hash;
mod lblc;
mod lblcr;
mod lc;
mod mh;
mod nq;
mod ovf;
mod rr;
mod sed;
mod sh;
mod twos;
mod wlc;
mod wrr;

use crate::RealId;
use crate::service::{RealServer, SCHEDULERS, SchedFlags, ServiceTable};
use core::cell::Cell;

/// What a scheduler may know about the packet that opens a connection.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// Source address (16-byte form).
    pub src: &'a [u8; 16],
    /// Destination address (16-byte form).
    pub dst: &'a [u8; 16],
    /// Source port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
    /// True for IPv6.
    pub v6: bool,
    /// Current time in seconds (for locality-table expiry).
    pub now: u32,
}

/// Live connection counts of real servers, summed over all workers.
pub trait ConnCounts {
    /// `(active, inactive)` connections of a real server.
    fn conns(&self, real: RealId) -> (u32, u32);
}

/// What a scheduler reads of one destination on every pick, taken from the service table
/// once per service version (so a pick does not look each server up again).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DestInfo {
    /// Weight, 0 while its health check fails.
    pub weight: u32,
    /// Upper connection threshold (`-x`), 0 for none.
    pub u_threshold: u32,
    /// Lower connection threshold (`-y`), 0 for none.
    pub l_threshold: u32,
}

impl DestInfo {
    /// The destinations `ids` of `table`, in order (a missing server counts as weight 0).
    pub fn of(table: &ServiceTable, ids: &[RealId]) -> Vec<DestInfo> {
        ids.iter()
            .map(|&id| match table.real(id) {
                Some(r) => DestInfo {
                    weight: if r.up { r.options.weight } else { 0 },
                    u_threshold: r.options.u_threshold,
                    l_threshold: r.options.l_threshold,
                },
                None => DestInfo::default(),
            })
            .collect()
    }
}

/// The destinations of one service as a scheduler sees them.
pub struct Dests<'a> {
    table: &'a ServiceTable,
    ids: &'a [RealId],
    info: &'a [DestInfo],
    counts: &'a dyn ConnCounts,
    overload: &'a [Cell<bool>],
}

impl<'a> Dests<'a> {
    /// A view of `ids` (a service's real servers, `info` of them as [`DestInfo::of`] made it)
    /// with live counts and the worker's overload flags (indexed by real id).
    pub fn new(
        table: &'a ServiceTable,
        ids: &'a [RealId],
        info: &'a [DestInfo],
        counts: &'a dyn ConnCounts,
        overload: &'a [Cell<bool>],
    ) -> Self {
        Dests {
            table,
            ids,
            info: &info[..ids.len().min(info.len())],
            counts,
            overload,
        }
    }

    /// Number of destinations.
    #[inline]
    pub fn len(&self) -> usize {
        self.info.len()
    }

    /// True if the service has no destinations.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.info.is_empty()
    }

    /// Real-server id of destination `i`.
    #[inline]
    pub fn id(&self, i: usize) -> RealId {
        self.ids[i]
    }

    /// The real server of destination `i`.
    #[inline]
    pub fn real(&self, i: usize) -> Option<&'a RealServer> {
        self.table.real(self.ids[i])
    }

    /// The destinations ordered by address, then port: the order the hashing schedulers
    /// (`mh`, `sh`, `dh`) build their tables in, so that every director serving the same
    /// servers builds the same table whatever order they were added in (the kernel's follows
    /// insertion order).
    pub fn by_address(&self) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.len()).collect();
        order.sort_by_key(|&i| self.real(i).map(|r| (r.addr16(), r.port)));
        order
    }

    /// Weight of destination `i` (0 while its health check fails).
    #[inline]
    pub fn weight(&self, i: usize) -> u32 {
        self.info[i].weight
    }

    /// `(active, inactive)` connections of destination `i`.
    #[inline]
    pub fn conns(&self, i: usize) -> (u32, u32) {
        self.counts.conns(self.ids[i])
    }

    /// Active connections of destination `i`.
    #[inline]
    pub fn active(&self, i: usize) -> u32 {
        self.conns(i).0
    }

    /// IPVS's connection overhead: `active × 256 + inactive`.
    #[inline]
    pub fn overhead(&self, i: usize) -> u64 {
        let (a, n) = self.conns(i);
        (u64::from(a) << 8) + u64::from(n)
    }

    /// The overload flag of `-x`/`-y` thresholds, with IPVS's hysteresis: set when the total
    /// connections reach the upper threshold, cleared below the lower one (or below 3/4 of the
    /// upper when no lower threshold is set).
    pub fn overloaded(&self, i: usize) -> bool {
        let (u, l) = (self.info[i].u_threshold, self.info[i].l_threshold);
        let Some(flag) = self.overload.get(self.ids[i] as usize) else {
            return false;
        };
        if u == 0 && l == 0 {
            flag.set(false);
            return false;
        }
        let (a, n) = self.conns(i);
        let total = u64::from(a) + u64::from(n);
        if flag.get() {
            let clear = if l != 0 {
                total < u64::from(l)
            } else {
                total * 4 < u64::from(u) * 3
            };
            if clear {
                flag.set(false);
            }
        } else if u != 0 && total >= u64::from(u) {
            flag.set(true);
        }
        flag.get()
    }

    /// Available for new connections: weight above zero and not overloaded.
    #[inline]
    pub fn available(&self, i: usize) -> bool {
        self.weight(i) > 0 && !self.overloaded(i)
    }
}

/// A scheduler instance for one service on one worker.
pub trait Scheduler: Send {
    /// Picks the index (into [`Dests`]) of the server for a new connection, or `None` if no
    /// server is available.
    fn schedule(&mut self, dests: &Dests<'_>, req: &Request<'_>) -> Option<usize>;
}

/// Construction parameters.
#[derive(Debug, Clone, Copy, Default)]
pub struct Params {
    /// Flags from `-b`.
    pub flags: SchedFlags,
    /// Seed for randomised schedulers (twos), fixed per worker for determinism.
    pub seed: u64,
}

/// Builds a scheduler for a service's current destinations.
pub type Factory = fn(&Dests<'_>, &Params) -> Box<dyn Scheduler>;

/// Every scheduler's build function, in the order of [`SCHEDULERS`].
pub const REGISTRY: [Factory; SCHEDULERS.len()] = [
    rr::build,
    wrr::build,
    lc::build,
    wlc::build,
    sed::build,
    nq::build,
    sh::build,
    dh::build,
    lblc::build,
    lblcr::build,
    mh::build,
    fo::build,
    ovf::build,
    twos::build,
];

/// The factory of a scheduler name.
pub fn factory(name: &str) -> Option<Factory> {
    SCHEDULERS
        .iter()
        .position(|n| *n == name)
        .map(|i| REGISTRY[i])
}

/// Weighted-least-connection choice used by wlc, lblc and lblcr: the available destination
/// with the smallest `overhead / weight`, first one winning ties.
pub(crate) fn weighted_least(d: &Dests<'_>, overhead: impl Fn(usize) -> u64) -> Option<usize> {
    let mut best: Option<(usize, u64, u64)> = None;
    for i in 0..d.len() {
        if d.overloaded(i) {
            continue;
        }
        let w = u64::from(d.weight(i));
        if w == 0 {
            continue;
        }
        let oh = overhead(i);
        match best {
            None => best = Some((i, oh, w)),
            Some((_, loh, lw))
                if u128::from(loh) * u128::from(w) > u128::from(oh) * u128::from(lw) =>
            {
                best = Some((i, oh, w));
            }
            _ => {}
        }
    }
    best.map(|(i, _, _)| i)
}

#[cfg(test)]
pub(crate) mod testutil {
    //! A service with configurable weights and connection counts for scheduler tests.
    use super::*;
    use crate::service::{Protocol, RealOptions, ServiceKey, ServiceOptions};
    use std::cell::RefCell;

    pub struct Fixture {
        pub table: ServiceTable,
        pub ids: Vec<RealId>,
        pub info: Vec<DestInfo>,
        pub counts: Counts,
        pub overload: Vec<Cell<bool>>,
    }

    #[derive(Default)]
    pub struct Counts(pub RefCell<Vec<(u32, u32)>>);

    impl ConnCounts for Counts {
        fn conns(&self, real: RealId) -> (u32, u32) {
            self.0
                .borrow()
                .get(real as usize)
                .copied()
                .unwrap_or((0, 0))
        }
    }

    impl Fixture {
        pub fn new(weights: &[u32]) -> Fixture {
            Self::with_thresholds(weights, &vec![(0, 0); weights.len()])
        }

        pub fn with_thresholds(weights: &[u32], thresholds: &[(u32, u32)]) -> Fixture {
            let addrs: Vec<String> = (0..weights.len())
                .map(|i| format!("198.18.2.{}", i + 1))
                .collect();
            let servers: Vec<(&str, u32)> = addrs
                .iter()
                .map(String::as_str)
                .zip(weights.iter().copied())
                .collect();
            Self::of(&servers, thresholds)
        }

        /// Servers `(address, weight)` added in this order.
        pub fn with_servers(servers: &[(&str, u32)]) -> Fixture {
            Self::of(servers, &vec![(0, 0); servers.len()])
        }

        fn of(servers: &[(&str, u32)], thresholds: &[(u32, u32)]) -> Fixture {
            let mut table = ServiceTable::new(4, 256);
            let key = ServiceKey::Addr {
                proto: Protocol::Tcp,
                addr: "198.18.1.10".parse().unwrap(),
                port: 80,
            };
            table.add_service(key, ServiceOptions::default()).unwrap();
            let mut ids = Vec::new();
            for (i, (addr, w)) in servers.iter().enumerate() {
                let addr = addr.parse().unwrap();
                let o = RealOptions {
                    weight: *w,
                    u_threshold: thresholds[i].0,
                    l_threshold: thresholds[i].1,
                    ..Default::default()
                };
                ids.push(table.add_real(&key, addr, None, o).unwrap());
            }
            Fixture {
                info: DestInfo::of(&table, &ids),
                table,
                counts: Counts(RefCell::new(vec![(0, 0); ids.len()])),
                overload: (0..ids.len()).map(|_| Cell::new(false)).collect(),
                ids,
            }
        }

        pub fn dests(&self) -> Dests<'_> {
            Dests::new(
                &self.table,
                &self.ids,
                &self.info,
                &self.counts,
                &self.overload,
            )
        }

        pub fn set_conns(&self, i: usize, active: u32, inactive: u32) {
            self.counts.0.borrow_mut()[i] = (active, inactive);
        }

        pub fn build(&self, name: &str, flags: u8) -> Box<dyn Scheduler> {
            factory(name).unwrap()(
                &self.dests(),
                &Params {
                    flags: SchedFlags(flags),
                    seed: 42,
                },
            )
        }

        /// Schedules one request from `src` (198.18.0.x or any 16-byte address).
        pub fn pick(&self, s: &mut dyn Scheduler, src: [u8; 16], sport: u16) -> Option<usize> {
            let dst = crate::service::addr16(&"198.18.1.10".parse().unwrap());
            self.pick_to(s, src, sport, dst, 1000)
        }

        /// A pick for a request from `src:sport` to `dst:80` at second `now`.
        pub fn pick_to(
            &self,
            s: &mut dyn Scheduler,
            src: [u8; 16],
            sport: u16,
            dst: [u8; 16],
            now: u32,
        ) -> Option<usize> {
            s.schedule(
                &self.dests(),
                &Request {
                    src: &src,
                    dst: &dst,
                    sport,
                    dport: 80,
                    v6: false,
                    now,
                },
            )
        }

        /// Schedules `n` requests from distinct sources and counts picks per destination.
        pub fn histogram(&self, s: &mut dyn Scheduler, n: u32) -> Vec<u32> {
            let mut h = vec![0; self.ids.len()];
            for k in 0..n {
                if let Some(i) = self.pick(s, client(k), 1024 + (k % 60000) as u16) {
                    h[i] += 1;
                }
            }
            h
        }
    }

    /// The 16-byte form of client number `k` (198.18.x.y).
    pub fn client(k: u32) -> [u8; 16] {
        let b = k.to_be_bytes();
        xvs_wire::summary::v4_mapped([198, 18 + (b[1] & 1), b[2], b[3]])
    }
}

#[cfg(test)]
mod tests {
    use super::testutil::*;
    use super::*;

    #[test]
    fn flags_parse_and_print() {
        let f = SchedFlags::parse("sh-fallback,sh-port").unwrap();
        assert!(f.has(SchedFlags::SH_FALLBACK) && f.has(SchedFlags::SH_PORT));
        assert_eq!(f.to_string(), "sh-fallback,sh-port");
        assert!(SchedFlags::parse("bogus").is_err());
        assert_eq!(SchedFlags::parse("").unwrap(), SchedFlags(0));
    }

    #[test]
    fn all_fourteen_registered() {
        assert!(SCHEDULERS.iter().all(|n| factory(n).is_some()));
        assert!(factory("bogus").is_none());
        assert_eq!(
            SCHEDULERS,
            [
                "rr", "wrr", "lc", "wlc", "sed", "nq", "sh", "dh", "lblc", "lblcr", "mh", "fo",
                "ovf", "twos"
            ]
        );
    }

    #[test]
    fn every_scheduler_skips_quiesced_and_handles_empty() {
        for name in &SCHEDULERS {
            let fx = Fixture::new(&[0, 5, 0]);
            let mut s = fx.build(name, SchedFlags::SH_FALLBACK | SchedFlags::MH_FALLBACK);
            for k in 0..50 {
                let got = fx.pick(s.as_mut(), client(k), 1000);
                // dh hashes the destination (one VIP here) and has no fallback: it may
                // find no server, but never a quiesced one.
                let ok = got == Some(1) || (*name == "dh" && got.is_none());
                assert!(ok, "{name} picked {got:?}, a quiesced server");
            }
            let empty = Fixture::new(&[]);
            let mut s = empty.build(name, 0);
            assert_eq!(
                empty.pick(s.as_mut(), client(1), 1),
                None,
                "{name} on no servers"
            );
            let all_zero = Fixture::new(&[0, 0]);
            let mut s = all_zero.build(name, SchedFlags::SH_FALLBACK | SchedFlags::MH_FALLBACK);
            assert_eq!(
                all_zero.pick(s.as_mut(), client(1), 1),
                None,
                "{name} all quiesced"
            );
        }
    }

    #[test]
    fn overload_hysteresis() {
        // Upper 4, lower 2.
        let fx = Fixture::with_thresholds(&[1, 1], &[(4, 2), (0, 0)]);
        let d = fx.dests();
        fx.set_conns(0, 3, 0);
        assert!(!d.overloaded(0));
        fx.set_conns(0, 3, 1);
        assert!(d.overloaded(0), "reaches the upper threshold");
        fx.set_conns(0, 2, 1);
        assert!(
            d.overloaded(0),
            "stays overloaded above the lower threshold"
        );
        fx.set_conns(0, 1, 0);
        assert!(!d.overloaded(0), "clears below the lower threshold");
        // No lower threshold: clears below 3/4 of the upper.
        let fx = Fixture::with_thresholds(&[1], &[(8, 0)]);
        let d = fx.dests();
        fx.set_conns(0, 8, 0);
        assert!(d.overloaded(0));
        fx.set_conns(0, 6, 0);
        assert!(d.overloaded(0));
        fx.set_conns(0, 5, 0);
        assert!(!d.overloaded(0));
    }

    #[test]
    fn thresholds_steer_every_connection_scheduler() {
        for name in ["rr", "wrr", "lc", "wlc", "sed", "nq", "fo", "ovf", "twos"] {
            let fx = Fixture::with_thresholds(&[10, 1], &[(2, 1), (0, 0)]);
            fx.set_conns(0, 2, 0);
            let mut s = fx.build(name, 0);
            for k in 0..20 {
                assert_eq!(fx.pick(s.as_mut(), client(k), 1), Some(1), "{name}");
            }
        }
    }
}
