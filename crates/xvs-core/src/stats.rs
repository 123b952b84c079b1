//! Counters: one slot per worker (single writer, `Relaxed` stores, cache-line padded), plus one
//! for the control thread (expiry sweeps). Readers sum the slots; nobody contends on a write.
//!
//! Gauges that several workers move (active/inactive connections of a real server) are kept
//! as per-slot signed deltas whose sum is the gauge.

use crate::RealId;
use crate::drop_reason::DropReason;
use crate::sched::ConnCounts;
use crossbeam_utils::CachePadded;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Adds `v` to a counter that only the calling worker writes.
#[inline(always)]
pub fn bump(c: &AtomicU64, v: u64) {
    c.store(c.load(Relaxed).wrapping_add(v), Relaxed);
}

/// Subtracts one from a delta counter (wrapping; the sum over slots is the gauge).
#[inline(always)]
pub fn decrement(c: &AtomicU64) {
    bump(c, u64::MAX);
}

/// Per-real-server counters of one slot (one cache line).
#[derive(Debug, Default)]
#[repr(C, align(64))]
pub struct RealCounters {
    /// Connections scheduled to it.
    pub conns: AtomicU64,
    /// Packets client → server.
    pub in_pkts: AtomicU64,
    /// Packets server → client (NAT/FullNAT only: DR/TUN replies bypass xvs).
    pub out_pkts: AtomicU64,
    /// Bytes (IP length) client → server.
    pub in_bytes: AtomicU64,
    /// Bytes server → client.
    pub out_bytes: AtomicU64,
    /// Delta of active connections.
    pub active: AtomicU64,
    /// Delta of inactive connections.
    pub inactive: AtomicU64,
    /// Delta of persistence templates.
    pub persist: AtomicU64,
}

/// Everything one worker (or the control thread) counts.
#[derive(Debug)]
pub struct SlotCounters {
    /// Frames received.
    pub rx_frames: AtomicU64,
    /// Frames transmitted (forwarded, answered or turned into ICMP errors).
    pub tx_frames: AtomicU64,
    /// Frames passed to the host stack.
    pub passed: AtomicU64,
    /// ICMP messages xvs generated (echo replies, errors).
    pub icmp_sent: AtomicU64,
    /// Connections created.
    pub conns_created: AtomicU64,
    /// Live connections evicted to make room.
    pub conns_evicted: AtomicU64,
    /// Connections expired (lazily or by a sweep).
    pub conns_expired: AtomicU64,
    /// Replies (NAT/FullNAT) handled by another worker than the one that created their
    /// connection: a sign of asymmetric RSS, harmless with the shared table.
    pub cross_worker_replies: AtomicU64,
    /// Frames set aside to wait for their next hop's MAC address ([`crate::Verdict::Wait`]),
    /// each time.
    pub neigh_waits: AtomicU64,
    /// Dropped frames by reason.
    pub drops: [AtomicU64; DropReason::COUNT],
    /// Per real server, indexed by [`RealId`]. Service totals are the sums over their real
    /// servers (removed ones included), so the hot path counts each packet once.
    pub reals: Box<[RealCounters]>,
}

impl SlotCounters {
    fn new(max_reals: usize) -> Self {
        SlotCounters {
            rx_frames: AtomicU64::new(0),
            tx_frames: AtomicU64::new(0),
            passed: AtomicU64::new(0),
            icmp_sent: AtomicU64::new(0),
            conns_created: AtomicU64::new(0),
            conns_evicted: AtomicU64::new(0),
            conns_expired: AtomicU64::new(0),
            cross_worker_replies: AtomicU64::new(0),
            neigh_waits: AtomicU64::new(0),
            drops: core::array::from_fn(|_| AtomicU64::new(0)),
            reals: (0..max_reals).map(|_| RealCounters::default()).collect(),
        }
    }

    /// Counts a dropped frame.
    #[inline(always)]
    pub fn drop(&self, r: DropReason) {
        bump(&self.drops[r as usize], 1);
    }

    /// The counters of a real server (`None` if the id is out of range).
    #[inline(always)]
    pub fn real(&self, id: RealId) -> Option<&RealCounters> {
        self.reals.get(id as usize)
    }
}

/// Totals of a real server or service, summed over slots.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Connections.
    pub conns: u64,
    /// Packets in.
    pub in_pkts: u64,
    /// Packets out.
    pub out_pkts: u64,
    /// Bytes in.
    pub in_bytes: u64,
    /// Bytes out.
    pub out_bytes: u64,
    /// Active connections (real servers only).
    pub active: u64,
    /// Inactive connections (real servers only).
    pub inactive: u64,
    /// Persistence templates (real servers only).
    pub persist: u64,
}

/// Totals over all slots of the global counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GlobalTotals {
    /// Frames received.
    pub rx_frames: u64,
    /// Frames transmitted.
    pub tx_frames: u64,
    /// Frames passed to the host.
    pub passed: u64,
    /// ICMP messages generated.
    pub icmp_sent: u64,
    /// Connections created.
    pub conns_created: u64,
    /// Connections evicted.
    pub conns_evicted: u64,
    /// Connections expired.
    pub conns_expired: u64,
    /// Replies handled by another worker than their connection's creator.
    pub cross_worker_replies: u64,
    /// Frames set aside to wait for a next hop's MAC (each time).
    pub neigh_waits: u64,
    /// Drops by reason, in [`DropReason::ALL`] order.
    pub drops: Vec<u64>,
}

/// All counter slots.
#[derive(Debug)]
pub struct Stats {
    slots: Box<[CachePadded<SlotCounters>]>,
}

fn sum_delta(vals: impl Iterator<Item = u64>) -> u64 {
    let s = vals.fold(0u64, u64::wrapping_add) as i64;
    s.max(0) as u64
}

impl Stats {
    /// Slots for `workers` workers plus one for the control thread, each able to count
    /// `max_reals` real servers.
    pub fn new(workers: usize, max_reals: usize) -> Stats {
        Stats {
            slots: (0..=workers)
                .map(|_| CachePadded::new(SlotCounters::new(max_reals)))
                .collect(),
        }
    }

    /// Number of slots (workers + 1).
    pub fn slots(&self) -> usize {
        self.slots.len()
    }

    /// The slot of worker `i`, or the control slot for `i == workers`.
    #[inline(always)]
    pub fn slot(&self, i: usize) -> &SlotCounters {
        &self.slots[i.min(self.slots.len() - 1)]
    }

    /// The control thread's slot.
    pub fn control_slot(&self) -> &SlotCounters {
        &self.slots[self.slots.len() - 1]
    }

    /// Index of the control thread's slot.
    pub fn control_index(&self) -> usize {
        self.slots.len() - 1
    }

    /// Totals of a real server.
    pub fn real_totals(&self, id: RealId) -> Totals {
        let it = || self.slots.iter().filter_map(|s| s.real(id));
        let sum = |f: fn(&RealCounters) -> &AtomicU64| {
            it().map(|c| f(c).load(Relaxed))
                .fold(0u64, u64::wrapping_add)
        };
        Totals {
            conns: sum(|c| &c.conns),
            in_pkts: sum(|c| &c.in_pkts),
            out_pkts: sum(|c| &c.out_pkts),
            in_bytes: sum(|c| &c.in_bytes),
            out_bytes: sum(|c| &c.out_bytes),
            active: sum_delta(it().map(|c| c.active.load(Relaxed))),
            inactive: sum_delta(it().map(|c| c.inactive.load(Relaxed))),
            persist: sum_delta(it().map(|c| c.persist.load(Relaxed))),
        }
    }

    /// Totals of a service: the sums over its real servers (pass every real server that ever
    /// belonged to it, removed ones included; see `ServiceTable::reals_of`).
    pub fn service_totals(&self, reals: impl IntoIterator<Item = RealId>) -> Totals {
        let mut t = Totals::default();
        for r in reals {
            let x = self.real_totals(r);
            t.conns += x.conns;
            t.in_pkts += x.in_pkts;
            t.out_pkts += x.out_pkts;
            t.in_bytes += x.in_bytes;
            t.out_bytes += x.out_bytes;
        }
        t
    }

    /// Totals of the global counters.
    pub fn global(&self) -> GlobalTotals {
        let sum = |f: fn(&SlotCounters) -> &AtomicU64| {
            self.slots.iter().map(|s| f(s).load(Relaxed)).sum()
        };
        GlobalTotals {
            rx_frames: sum(|s| &s.rx_frames),
            tx_frames: sum(|s| &s.tx_frames),
            passed: sum(|s| &s.passed),
            icmp_sent: sum(|s| &s.icmp_sent),
            conns_created: sum(|s| &s.conns_created),
            conns_evicted: sum(|s| &s.conns_evicted),
            conns_expired: sum(|s| &s.conns_expired),
            cross_worker_replies: sum(|s| &s.cross_worker_replies),
            neigh_waits: sum(|s| &s.neigh_waits),
            drops: (0..DropReason::COUNT)
                .map(|r| self.slots.iter().map(|s| s.drops[r].load(Relaxed)).sum())
                .collect(),
        }
    }

    /// Drops of one reason, summed.
    pub fn drops(&self, r: DropReason) -> u64 {
        self.slots
            .iter()
            .map(|s| s.drops[r as usize].load(Relaxed))
            .sum()
    }

    /// Clears a real server's counters in every slot (when its id is reused).
    pub fn reset_real(&self, id: RealId) {
        for s in self.slots.iter() {
            if let Some(c) = s.real(id) {
                for a in [
                    &c.conns,
                    &c.in_pkts,
                    &c.out_pkts,
                    &c.in_bytes,
                    &c.out_bytes,
                    &c.active,
                    &c.inactive,
                    &c.persist,
                ] {
                    a.store(0, Relaxed);
                }
            }
        }
    }
}

impl ConnCounts for Stats {
    fn conns(&self, real: RealId) -> (u32, u32) {
        let it = || self.slots.iter().filter_map(|s| s.real(real));
        let a = sum_delta(it().map(|c| c.active.load(Relaxed)));
        let i = sum_delta(it().map(|c| c.inactive.load(Relaxed)));
        (
            a.min(u64::from(u32::MAX)) as u32,
            i.min(u64::from(u32::MAX)) as u32,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deltas_across_slots_sum_to_the_gauge() {
        let s = Stats::new(2, 4);
        bump(&s.slot(0).reals[1].active, 1);
        bump(&s.slot(0).reals[1].active, 1);
        decrement(&s.slot(1).reals[1].active);
        bump(&s.slot(1).reals[1].inactive, 3);
        decrement(&s.control_slot().reals[1].inactive);
        assert_eq!(s.conns(1), (1, 2));
        let t = s.real_totals(1);
        assert_eq!((t.active, t.inactive), (1, 2));
        // A transiently negative sum reads as zero.
        decrement(&s.slot(0).reals[2].active);
        assert_eq!(s.conns(2), (0, 0));
    }

    #[test]
    fn drops_and_global() {
        let s = Stats::new(1, 1);
        s.slot(0).drop(DropReason::Truncated);
        s.control_slot().drop(DropReason::Truncated);
        bump(&s.slot(0).rx_frames, 5);
        assert_eq!(s.drops(DropReason::Truncated), 2);
        let g = s.global();
        assert_eq!(g.rx_frames, 5);
        assert_eq!(g.drops[DropReason::Truncated as usize], 2);
        assert_eq!(
            s.slot(99).rx_frames.load(Relaxed),
            0,
            "out-of-range slot maps to control"
        );
    }
}
