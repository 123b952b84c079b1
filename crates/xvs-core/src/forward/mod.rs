//! The per-frame pipeline: classify, find or create the connection, rewrite, choose the egress.
//!
//! [`Forwarder::process`] takes a batch of frames and fills one [`Verdict`] per frame. One
//! forwarder belongs to one worker; the connection table and the counters are shared. The
//! modules: `flow` (connection lookup, scheduling, state), `xmit` (DR, NAT, TUN, FullNAT
//! transmission and the egress checks), `icmp` (echo, ICMP errors about tracked flows, errors
//! xvs originates), `rewrite` (address/port/TTL rewrites with checksum updates).

mod cache;
mod fast;
mod flow;
mod icmp;
mod rewrite;
mod svcmemo;
mod sync;
mod trace;

pub use sync::SyncReject;

pub use trace::Trace;
mod xmit;

use crate::conn::{ConnTable, FlowKey};
use crate::drop_reason::DropReason;
use crate::sched::{DestInfo, Dests, Params, Scheduler};
use crate::service::SchedFlags;
use crate::snapshot::Snapshot;
use crate::stats::{SlotCounters, Stats, bump};
use crate::{PortId, Time};
use core::cell::Cell;
use std::sync::Arc;
use xvs_wire::ip_proto;
use xvs_wire::summary::{FragKind, IpSummary, summarize_into};

/// A frame in a buffer with headroom: `buf[start..start + len]` is the frame, and the bytes
/// before `start` may be used to prepend headers (TUN encapsulation, ICMP errors).
#[derive(Debug)]
pub struct Frame<'a> {
    buf: &'a mut [u8],
    start: usize,
    len: usize,
    ingress: PortId,
}

impl<'a> Frame<'a> {
    /// A frame of `len` bytes at `start` in `buf`, received on port `ingress`. Out-of-range
    /// values are clamped to the buffer.
    pub fn new(buf: &'a mut [u8], start: usize, len: usize, ingress: PortId) -> Frame<'a> {
        let start = start.min(buf.len());
        let len = len.min(buf.len() - start);
        Frame {
            buf,
            start,
            len,
            ingress,
        }
    }

    /// The frame's bytes.
    #[inline(always)]
    pub fn data(&self) -> &[u8] {
        &self.buf[self.start..self.start + self.len]
    }

    /// The frame's bytes, mutable.
    #[inline(always)]
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.start..self.start + self.len]
    }

    /// Offset of the frame in its buffer (changes when headers are prepended).
    pub fn start(&self) -> usize {
        self.start
    }

    /// Length of the frame.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True for an empty frame.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes available in front of the frame.
    pub fn headroom(&self) -> usize {
        self.start
    }

    /// The port the frame arrived on.
    pub fn ingress(&self) -> PortId {
        self.ingress
    }

    /// Grows the frame by `n` bytes at the front: into the headroom if there is enough,
    /// otherwise by moving the frame `n` bytes towards the end of the buffer (for buffers whose
    /// start cannot move, such as AF_XDP descriptors). False if neither has room.
    pub fn push_front(&mut self, n: usize) -> bool {
        if n <= self.start {
            self.start -= n;
        } else if self.start + self.len + n <= self.buf.len() {
            self.buf
                .copy_within(self.start..self.start + self.len, self.start + n);
        } else {
            return false;
        }
        self.len += n;
        true
    }

    /// Moves the frame to the start of its buffer (for transmit paths that send from there).
    pub fn move_to_start(&mut self) {
        if self.start != 0 {
            self.buf.copy_within(self.start..self.start + self.len, 0);
            self.start = 0;
        }
    }

    /// Shortens the frame to `len` bytes (no-op if already shorter).
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }
}

/// What to do with a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Transmit the (rewritten) frame on this port.
    Tx {
        /// Egress port.
        port: PortId,
    },
    /// Hand the frame, unchanged, to the host network stack.
    Pass,
    /// Drop the frame; the reason is counted.
    Drop(DropReason),
    /// Keep the frame, unchanged, and offer it again once the network state has changed: its
    /// next hop's MAC address is being resolved (the kernel queues such packets too). Counted
    /// in `neigh_waits`; the I/O layer drops a frame that waited too long, under
    /// `unknown_neighbour`. A frame offered again is processed again, and counted again in
    /// its real server's packets.
    Wait,
}

struct SchedSlot {
    version: u64,
    sched: Box<dyn Scheduler>,
    info: Vec<DestInfo>,
}

/// First FullNAT local port (ports below are left to the director's own services).
const FIRST_LOCAL_PORT: u32 = 1024;
/// Number of FullNAT local ports per local address.
const LOCAL_PORTS: u32 = 65536 - FIRST_LOCAL_PORT;

/// Most next hops remembered for resolution between two [`Forwarder::take_unresolved`] calls.
const MAX_UNRESOLVED: usize = 16;

/// The forwarding state of one worker: the shared table and counters, and the worker's own
/// lane.
pub struct Forwarder {
    table: Arc<ConnTable>,
    stats: Arc<Stats>,
    lane: Lane,
}

/// What belongs to one worker alone: its schedulers, overload flags, flow cache, egress
/// records, the next hops it met unresolved. A batch borrows the forwarder's shared parts
/// into a [`Ctx`] beside `&mut Lane` (disjoint fields: no reference count is touched).
pub(crate) struct Lane {
    pub(crate) slot: usize,
    seed: u64,
    generation: Option<u64>,
    scheds: Vec<Option<SchedSlot>>,
    overload: Vec<Cell<bool>>,
    unresolved: Vec<(PortId, [u8; 16])>,
    lport_cursor: u32,
    cache: cache::FlowCache,
    egress: Vec<cache::Egress>,
    services: svcmemo::ServiceMemo,
    /// Connection sync: the second each shard was last swept for export.
    export_seen: Vec<u32>,
}

/// What one frame's processing needs besides the lane.
pub(crate) struct Ctx<'a> {
    pub snap: &'a Snapshot,
    pub now: u32,
    pub c: &'a SlotCounters,
    pub table: &'a ConnTable,
    pub stats: &'a Stats,
}

impl Forwarder {
    /// A forwarder for worker `slot` (its counter slot in `stats`), sharing `table`. `seed`
    /// seeds the randomised parts (twos scheduler, FullNAT ports) deterministically.
    pub fn new(table: Arc<ConnTable>, stats: Arc<Stats>, slot: usize, seed: u64) -> Forwarder {
        Forwarder {
            table,
            stats,
            lane: Lane {
                slot,
                seed,
                generation: None,
                scheds: Vec::new(),
                overload: Vec::new(),
                unresolved: Vec::with_capacity(MAX_UNRESOLVED),
                lport_cursor: (slot as u32).wrapping_mul(8191) % LOCAL_PORTS,
                cache: cache::FlowCache::new(seed ^ 0x5ca1_ab1e),
                egress: Vec::new(),
                services: svcmemo::ServiceMemo::new(),
                export_seen: Vec::new(),
            },
        }
    }

    /// The shared connection table.
    pub fn table(&self) -> &Arc<ConnTable> {
        &self.table
    }

    /// The shared counters.
    pub fn stats(&self) -> &Arc<Stats> {
        &self.stats
    }

    /// Bytes of the worker's own structures (flow cache, egress records) beside the shared
    /// table.
    pub fn lane_memory_bytes(&self) -> usize {
        self.lane.cache.memory_bytes() + self.lane.egress.capacity() * size_of::<cache::Egress>()
    }

    /// The context of a batch (or a sweep, or a trace) at `now`.
    fn ctx<'a>(
        table: &'a ConnTable,
        stats: &'a Stats,
        snap: &'a Snapshot,
        slot: usize,
        now: Time,
    ) -> Ctx<'a> {
        Ctx {
            snap,
            now: now.secs(),
            c: stats.slot(slot),
            table,
            stats,
        }
    }

    /// Expires idle connections in `count` shards starting at `first` (the control thread
    /// calls this periodically, with its own forwarder on the control counter slot), keeping
    /// the gauges right and removing the reply entries of expired NAT/FullNAT connections.
    /// Returns the number of entries removed.
    pub fn sweep(&mut self, snap: &Snapshot, first: usize, count: usize, now: Time) -> usize {
        let cx = Self::ctx(&self.table, &self.stats, snap, self.lane.slot, now);
        let mut gone = Vec::new();
        let n = cx.table.sweep(first, count, cx.now, |e| gone.push(*e));
        for e in &gone {
            self.lane.removed(&cx, e);
        }
        bump(&cx.c.conns_expired, n as u64);
        n
    }

    /// Processes a batch: one verdict per frame (`verdicts` must be at least as long as
    /// `frames`). Rewrites happen in place; see [`Frame::start`] and [`Frame::len`] for the
    /// resulting bounds.
    pub fn process(
        &mut self,
        snap: &Snapshot,
        frames: &mut [Frame<'_>],
        verdicts: &mut [Verdict],
        now: Time,
    ) {
        let cx = Self::ctx(&self.table, &self.stats, snap, self.lane.slot, now);
        self.lane.sync(&cx);
        self.lane.batch(&cx, frames, verdicts);
    }

    /// Counts `n` frames dropped for `reason` after the forwarder had let them go (a frame
    /// that waited in vain for its next hop is dropped by the I/O layer).
    pub fn count_drops(&mut self, reason: DropReason, n: u64) {
        bump(&self.stats.slot(self.lane.slot).drops[reason as usize], n);
    }

    /// Hands over the next hops whose MAC was missing since the last call (at most 16), so
    /// the I/O layer can ask the kernel to resolve them.
    pub fn take_unresolved(&mut self, mut f: impl FnMut(PortId, [u8; 16])) {
        for (p, ip) in self.lane.unresolved.drain(..) {
            f(p, ip);
        }
    }

    /// Traces a packet with flow `key` and `tcp_flags` (SCTP: `syn` stands for an INIT
    /// chunk): use a forwarder of its own, such as the control thread's: a scheduler that
    /// keeps state, like rr, advances in this forwarder's copy only, never in a worker's. An
    /// expired entry met on the way is removed, as a worker would.
    pub fn trace(&mut self, snap: &Snapshot, key: FlowKey, tcp_flags: u8, now: Time) -> Trace {
        let cx = Self::ctx(&self.table, &self.stats, snap, self.lane.slot, now);
        self.lane.sync(&cx);
        self.lane.trace(&cx, key, tcp_flags)
    }
}

impl Lane {
    fn batch(&mut self, cx: &Ctx<'_>, frames: &mut [Frame<'_>], verdicts: &mut [Verdict]) {
        // Transmitted = received − passed − dropped: the common verdict counts nothing.
        let (mut other, mut passed) = (0u64, 0u64);
        for (f, v) in frames.iter_mut().zip(verdicts.iter_mut()) {
            *v = self.one(cx, f);
            match *v {
                Verdict::Tx { .. } => {}
                Verdict::Pass => passed += 1,
                Verdict::Drop(r) => {
                    other += 1;
                    cx.c.drop(r);
                }
                Verdict::Wait => {
                    other += 1;
                    bump(&cx.c.neigh_waits, 1);
                }
            }
        }
        let n = frames.len().min(verdicts.len()) as u64;
        bump(&cx.c.rx_frames, n);
        bump(&cx.c.tx_frames, n - passed - other);
        bump(&cx.c.passed, passed);
    }

    fn note_unresolved(&mut self, port: PortId, ip: [u8; 16]) {
        if self.unresolved.len() < MAX_UNRESOLVED && !self.unresolved.contains(&(port, ip)) {
            self.unresolved.push((port, ip));
        }
    }

    /// Rebuilds scheduler state for services whose version moved (only when the snapshot
    /// changed; never per packet).
    fn sync(&mut self, cx: &Ctx<'_>) {
        let snap = cx.snap;
        if self.generation == Some(snap.generation) {
            return;
        }
        self.generation = Some(snap.generation);
        self.cache.invalidate();
        self.services.clear();
        cache::egress_records(snap, &mut self.egress);
        let svcs = &snap.services;
        if self.overload.len() < svcs.max_reals() {
            self.overload
                .resize_with(svcs.max_reals(), || Cell::new(false));
        }
        let slots = svcs
            .services()
            .map(|s| usize::from(s.id) + 1)
            .max()
            .unwrap_or(0);
        if self.scheds.len() < slots {
            self.scheds.resize_with(slots, || None);
        }
        let stats = cx.stats;
        for (i, slot) in self.scheds.iter_mut().enumerate() {
            let Some(svc) = svcs.service(i as crate::ServiceId) else {
                *slot = None;
                continue;
            };
            if slot.as_ref().is_some_and(|s| s.version == svc.version) {
                continue;
            }
            let Some(factory) = crate::sched::factory(&svc.options.scheduler) else {
                *slot = None;
                continue;
            };
            let info = DestInfo::of(svcs, &svc.reals);
            let dests = Dests::new(svcs, &svc.reals, &info, stats, &self.overload);
            let params = Params {
                flags: SchedFlags(svc.options.flags.0),
                seed: self.seed ^ u64::from(svc.id).rotate_left(32),
            };
            let sched = factory(&dests, &params);
            *slot = Some(SchedSlot {
                version: svc.version,
                sched,
                info,
            });
        }
    }

    #[inline(always)]
    fn one(&mut self, cx: &Ctx<'_>, f: &mut Frame<'_>) -> Verdict {
        match self.fast(cx, f) {
            fast::Fast::Done(v) => v,
            // Untagged IPv4 without options, TCP or UDP, not a fragment, not cached.
            fast::Fast::Miss(s, hash) => self.flow_shared(cx, f, &s, None, s.key, hash),
            fast::Fast::Other => self.one_general(cx, f),
        }
    }

    /// Every other frame: VLAN tags, IPv4 options, IPv6, fragments, SCTP, ICMP, not IP.
    #[inline(never)]
    fn one_general(&mut self, cx: &Ctx<'_>, f: &mut Frame<'_>) -> Verdict {
        let mut s = IpSummary::EMPTY;
        match summarize_into(f.data(), &mut s) {
            Ok(None) => {}
            Ok(Some(_not_ip)) => return Verdict::Pass,
            Err(e) => return Verdict::Drop(e.into()),
        }
        let icmp = if s.is_v6() {
            ip_proto::ICMPV6
        } else {
            ip_proto::ICMP
        };
        match s.key.proto() {
            ip_proto::TCP | ip_proto::UDP | ip_proto::SCTP => {
                if s.frag != FragKind::Whole {
                    return if cx.snap.services.is_vip(&s.key.dst()) {
                        Verdict::Drop(DropReason::Fragment)
                    } else {
                        Verdict::Pass
                    };
                }
                let chunk = flow::sctp_chunk(f.data(), &s);
                self.flow(cx, f, &s, chunk)
            }
            // A later fragment carries no ICMP header: it is the host's.
            p if p == icmp && s.frag != FragKind::Later => self.icmp(cx, f, &s),
            _ => Verdict::Pass,
        }
    }

    /// The next (local address index, local port) of the FullNAT sequence.
    fn next_local_port(&mut self, addrs: usize) -> (usize, u16) {
        let addrs = addrs.max(1) as u32;
        let n = self.lport_cursor;
        self.lport_cursor = (n + 1) % (LOCAL_PORTS * addrs);
        (
            (n % addrs) as usize,
            (FIRST_LOCAL_PORT + (n / addrs) % LOCAL_PORTS) as u16,
        )
    }
}
