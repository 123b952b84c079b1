//! Neighbours that vanish for a moment. A neighbour entry the kernel deletes (`ip neigh del`,
//! a flush, garbage collection of an idle entry) or fails to confirm (a probe lost on a busy
//! link marks it FAILED) leaves xvs without a MAC for a real server or a client until the
//! kernel resolves it again; the kernel itself queues packets meanwhile, xvs would drop them
//! (measured in the soak: a datagram in ten thousand, at such a moment). So a MAC xvs knew
//! stays in use for [`GRACE`] after its entry disappears or fails, while the kernel is asked to
//! resolve it again (once a second): as the kernel keeps sending to a STALE entry while it
//! probes. A host that is really gone costs those seconds' frames either way. A new MAC
//! replaces the old as soon as the kernel has it; a frame is never sent to a MAC the kernel did
//! not give.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};
use xvs_core::PortId;
use xvs_core::net::NetState;
use xvs_core::service::ip_from16;
use xvs_wire::MacAddr;

/// How long a vanished neighbour's MAC stays in use.
pub const GRACE: Duration = Duration::from_secs(5);
/// How often the kernel is asked again about a carried neighbour.
const ASK_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy)]
struct Carried {
    port: PortId,
    mac: MacAddr,
    since: Instant,
    asked: Option<Instant>,
}

/// Neighbours carried over from an earlier view.
#[derive(Debug, Default)]
pub struct NeighGrace {
    carried: HashMap<[u8; 16], Carried>,
}

impl NeighGrace {
    /// Puts into `fresh` the neighbours `before` had that `fresh` lacks (deleted, or failed in
    /// the kernel), unless their port is not served now (`port_ok`), for up to [`GRACE`] after
    /// they vanished. Returns the ones to ask the kernel about now.
    pub fn carry(
        &mut self,
        before: &NetState,
        fresh: &mut NetState,
        port_ok: impl Fn(PortId) -> bool,
        now: Instant,
    ) -> Vec<(PortId, IpAddr)> {
        for (ip, port, mac) in before.neighbours() {
            if fresh.neighbour(&ip).is_none() && !self.carried.contains_key(&ip) {
                tracing::info!(
                    neighbour = %ip_from16(&ip),
                    "neighbour gone from the kernel's table (deleted or failed); its MAC stays in use while it is resolved again"
                );
                self.carried.insert(
                    ip,
                    Carried {
                        port,
                        mac,
                        since: now,
                        asked: None,
                    },
                );
            }
        }
        let mut ask = Vec::new();
        self.carried.retain(|ip, c| {
            let addr = ip_from16(ip);
            if fresh.neighbour(ip).is_some()
                || !port_ok(c.port)
                || now.duration_since(c.since) >= GRACE
            {
                return false;
            }
            fresh.set_neighbour(addr, c.port, c.mac);
            if c.asked.is_none_or(|t| now.duration_since(t) >= ASK_EVERY) {
                c.asked = Some(now);
                ask.push((c.port, addr));
            }
            true
        });
        ask
    }

    /// Neighbours in use now only because they were known before.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.carried.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(with: &[(&str, u8)]) -> NetState {
        let mut n = NetState::default();
        for (ip, last) in with {
            n.set_neighbour(ip.parse().unwrap(), 0, MacAddr([2, 0, 0, 0, 0, *last]));
        }
        n
    }

    #[test]
    fn a_vanished_neighbour_is_kept_for_the_grace_time_and_asked_about() {
        let mut g = NeighGrace::default();
        let t0 = Instant::now();
        let before = state(&[("198.18.0.11", 0x11), ("198.18.0.12", 0x12)]);
        let mut fresh = state(&[("198.18.0.12", 0x12)]);
        let ask = g.carry(&before, &mut fresh, |_| true, t0);
        let rs1: IpAddr = "198.18.0.11".parse().unwrap();
        assert_eq!(ask, vec![(0, rs1)]);
        let key = xvs_core::service::addr16(&rs1);
        assert_eq!(
            fresh.neighbour(&key),
            Some((0, MacAddr([2, 0, 0, 0, 0, 0x11])))
        );
        // Still missing half a second later: kept, not asked again yet.
        let mut again = state(&[("198.18.0.12", 0x12)]);
        let ask = g.carry(
            &fresh,
            &mut again,
            |_| true,
            t0 + Duration::from_millis(500),
        );
        assert!(ask.is_empty());
        assert!(again.neighbour(&key).is_some());
        // After the grace time: gone.
        let mut late = state(&[("198.18.0.12", 0x12)]);
        g.carry(&again, &mut late, |_| true, t0 + GRACE);
        assert!(late.neighbour(&key).is_none());
        assert_eq!(g.len(), 0);
    }

    #[test]
    fn a_relearned_neighbour_is_not_carried() {
        let mut g = NeighGrace::default();
        let t0 = Instant::now();
        let rs1: IpAddr = "198.18.0.11".parse().unwrap();
        let key = xvs_core::service::addr16(&rs1);
        let before = state(&[("198.18.0.11", 0x11)]);
        // Learned again with another MAC: the new one, not the old.
        let mut fresh = state(&[]);
        g.carry(&before, &mut fresh, |_| true, t0);
        let mut relearned = state(&[("198.18.0.11", 0x99)]);
        g.carry(
            &fresh,
            &mut relearned,
            |_| true,
            t0 + Duration::from_millis(10),
        );
        assert_eq!(
            relearned.neighbour(&key),
            Some((0, MacAddr([2, 0, 0, 0, 0, 0x99])))
        );
        assert_eq!(g.len(), 0);
        // A port no longer served carries nothing.
        let mut fresh = state(&[]);
        g.carry(&before, &mut fresh, |_| false, t0);
        assert!(fresh.neighbour(&key).is_none());
    }
}
