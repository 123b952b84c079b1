//! The XDP steering program: attached to an interface (see [`crate::xdp_loader`]), its maps kept
//! in step with the services, detached when dropped.

use crate::gate::{Gates, QueueGate};
use crate::map::Map;
use crate::xdp_loader::{SocketMap, XdpProgram};
use std::collections::HashSet;
use std::io;

pub use crate::xdp_loader::{BpfError, Replace, XdpMode, detach_any};

/// The compiled steering program.
static OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/steer.o"));

/// Key of `vip_map` and `rip_map`: address (16-byte form), port (host order), protocol.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SvcKey {
    /// Address, IPv4 in IPv4-mapped form.
    pub addr: [u8; 16],
    /// Port (0 = any).
    pub port: u16,
    /// IP protocol.
    pub proto: u8,
    /// Padding, zero.
    pub pad: u8,
}

/// The maps the program steers by.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SteeringSets {
    /// Virtual services (and (VIP, 0, ICMP) for ICMP to a VIP).
    pub vips: HashSet<SvcKey>,
    /// NAT real servers (and (RIP, 0, ICMP)).
    pub rips: HashSet<SvcKey>,
    /// FullNAT local addresses.
    pub laddrs: HashSet<[u8; 16]>,
    /// The director's own addresses.
    pub locals: HashSet<[u8; 16]>,
}

/// The steering program, loaded and attached to one interface.
#[derive(Debug)]
pub struct Steering {
    prog: XdpProgram,
    xsks: Map,
    vip: Map,
    rip: Map,
    laddr: Map,
    local: Map,
    stats: Map,
    cfg: Map,
    gates: Gates,
    current: SteeringSets,
}

/// What the steering program dropped itself, before any frame reached a worker.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SteerDrops {
    /// Frames dropped because the queue's worker said it was behind.
    pub behind: u64,
    /// TCP SYNs beyond the queue's new-connection budget.
    pub syn_over_budget: u64,
    /// IPv6 packets whose extension headers could not be walked (truncated, or more than
    /// the program follows): passed to the host, not dropped, and counted here.
    pub ipv6_unparsed: u64,
}

/// The steering program's budget of new TCP connections per receive queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SynBudget {
    /// SYNs per second per queue (0: no budget).
    pub per_second: u64,
    /// SYNs accepted at once above the rate.
    pub burst: u64,
}

impl SynBudget {
    /// The program's (interval, tolerance) in nanoseconds.
    fn gcra(self) -> [u64; 2] {
        if self.per_second == 0 {
            return [0, 0];
        }
        let interval = (1_000_000_000 / self.per_second).max(1);
        [interval, interval.saturating_mul(self.burst.max(1))]
    }
}

impl Steering {
    /// Loads the program and attaches it to `ifname` in `mode`.
    /// (`replace`: what may be removed from the interface first, see [`Replace`].)
    pub fn attach(ifname: &str, mode: XdpMode, replace: Replace) -> Result<Steering, BpfError> {
        let prog = XdpProgram::attach(
            OBJECT,
            c"xvs_steer",
            "steering program",
            ifname,
            mode,
            replace,
        )?;
        Self::with_maps(prog, ifname)
    }

    /// The steering program's maps found in `prog`.
    fn with_maps(prog: XdpProgram, ifname: &str) -> Result<Steering, BpfError> {
        Ok(Steering {
            xsks: prog.map(c"xsks_map")?,
            vip: prog.map(c"vip_map")?,
            rip: prog.map(c"rip_map")?,
            laddr: prog.map(c"laddr_map")?,
            local: prog.map(c"local_map")?,
            stats: prog.map(c"steer_stats")?,
            cfg: prog.map(c"steer_cfg")?,
            gates: Gates::map(prog.map(c"gate_map")?.fd()).map_err(|e| BpfError {
                what: format!("mapping the gate map of {ifname}"),
                err: e,
            })?,
            prog,
            current: SteeringSets::default(),
        })
    }

    /// Loads the program attached to no interface, to run it on test frames
    /// ([`Steering::test_run`]).
    #[cfg(feature = "test-run")]
    pub fn unattached() -> Result<Steering, BpfError> {
        let prog = XdpProgram::load_unattached(OBJECT, c"xvs_steer", "steering program")?;
        Self::with_maps(prog, "(no interface)")
    }

    /// Runs the program once on `frame` as received on queue 0; returns its XDP action.
    #[cfg(feature = "test-run")]
    pub fn test_run(&self, frame: &[u8]) -> Result<u32, BpfError> {
        self.prog.test_run(frame)
    }

    /// Sets the budget of new TCP connections per receive queue.
    pub fn set_syn_budget(&mut self, b: SynBudget) -> Result<(), BpfError> {
        self.cfg.update(&0u32, &b.gcra()).map_err(|e| BpfError {
            what: format!("setting the SYN budget on {}", self.prog.ifname()),
            err: e,
        })
    }

    /// What the program dropped by itself so far.
    pub fn drops(&self) -> SteerDrops {
        SteerDrops {
            behind: self.stats.percpu_sum(3),
            syn_over_budget: self.stats.percpu_sum(4),
            ipv6_unparsed: self.stats.percpu_sum(5),
        }
    }

    /// The kernel's id of the program (what `ip link` shows as `prog/xdp id N`).
    pub fn program_id(&self) -> u32 {
        self.prog.id()
    }

    /// The interface index.
    pub fn ifindex(&self) -> i32 {
        self.prog.ifindex()
    }

    /// The mode the program was attached in ("native" or "generic").
    pub fn mode_name(&self) -> &'static str {
        if self.prog.is_native() {
            "native"
        } else {
            "generic"
        }
    }

    /// True if attached in native (driver) mode.
    pub fn is_native(&self) -> bool {
        self.prog.is_native()
    }

    /// The configured mode.
    pub fn requested_mode(&self) -> XdpMode {
        self.prog.requested_mode()
    }

    /// Brings the maps in line with `want` (inserting and deleting the difference).
    pub fn sync(&mut self, want: &SteeringSets) -> Result<(), BpfError> {
        let one = 1u32;
        let map_err = |e: io::Error| BpfError {
            what: "updating the steering maps".into(),
            err: e,
        };
        sync_set(self.vip, &self.current.vips, &want.vips, &one).map_err(map_err)?;
        sync_set(self.rip, &self.current.rips, &want.rips, &one).map_err(map_err)?;
        sync_set(self.laddr, &self.current.laddrs, &want.laddrs, &one).map_err(map_err)?;
        sync_set(self.local, &self.current.locals, &want.locals, &one).map_err(map_err)?;
        self.current = want.clone();
        Ok(())
    }

    /// Packets steered so far, by rule: to a service, to a local address, from a real server.
    pub fn steered(&self) -> [u64; 3] {
        [0, 1, 2].map(|rule| self.stats.percpu_sum(rule))
    }
}

/// Makes the set `map` holds (`have`) the set `want`: keys added with `value`, keys gone
/// deleted.
fn sync_set<K: Eq + std::hash::Hash + Copy>(
    map: Map,
    have: &HashSet<K>,
    want: &HashSet<K>,
    value: &u32,
) -> io::Result<()> {
    for k in want.difference(have) {
        map.update(k, value)?;
    }
    for k in have.difference(want) {
        map.delete(k)?;
    }
    Ok(())
}

impl SocketMap for Steering {
    fn register_socket(&mut self, queue: u32, xsk_fd: i32) -> Result<(), BpfError> {
        self.prog.register_socket(self.xsks, queue, xsk_fd)
    }

    fn gate(&self, queue: u32) -> Option<QueueGate> {
        self.gates.queue(queue)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syn_budget_in_gcra_terms() {
        assert_eq!(
            SynBudget {
                per_second: 0,
                burst: 9
            }
            .gcra(),
            [0, 0]
        );
        assert_eq!(
            SynBudget {
                per_second: 100_000,
                burst: 64
            }
            .gcra(),
            [10_000, 640_000]
        );
        // A rate above one per nanosecond still leaves a non-zero interval (0 = off).
        assert_eq!(
            SynBudget {
                per_second: u64::MAX,
                burst: 0
            }
            .gcra(),
            [1, 1]
        );
    }
}
