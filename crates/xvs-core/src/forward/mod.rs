//! The per-frame pipeline: classify, find or create the connection, rewrite, choose the egress.
//!
//! [`Forwarder::process`] takes a batch of frames and fills one [`Verdict`] per frame. One
//! forwarder belongs to one worker; the connection table and the counters are shared. The
//! modules: `flow` (connection lookup, scheduling, state), `xmit` (DR, NAT, TUN, FullNAT
//! transmission and the egress checks), `icmp` (echo, ICMP errors about tracked flows, errors
//! xvs originates), `rewrite` (address/port/TTL rewrites with checksum updates).

mod flow;
mod icmp;
mod rewrite;
mod trace;

pub use trace::Trace;
mod xmit;

use crate::conn::ConnTable;
use crate::drop_reason::DropReason;
use crate::sched::{Dests, Params, SchedFlags, Scheduler};
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
}

struct SchedSlot {
    version: u64,
    sched: Box<dyn Scheduler>,
}

/// First FullNAT local port (ports below are left to the director's own services).
const FIRST_LOCAL_PORT: u32 = 1024;
/// Number of FullNAT local ports per local address.
const LOCAL_PORTS: u32 = 65536 - FIRST_LOCAL_PORT;

/// Most next hops remembered for resolution between two [`Forwarder::take_unresolved`] calls.
const MAX_UNRESOLVED: usize = 16;

/// The forwarding state of one worker.
pub struct Forwarder {
    /// The table and counters every worker shares. `None` only while [`Forwarder::process`]
    /// runs a batch: it moves them out to borrow them beside `&mut self`, because cloning the
    /// `Arc`s instead would write their reference counts, one cache line shared by every
    /// worker, four times per batch.
    shared: Option<(Arc<ConnTable>, Arc<Stats>)>,
    slot: usize,
    seed: u64,
    generation: Option<u64>,
    scheds: Vec<Option<SchedSlot>>,
    overload: Vec<Cell<bool>>,
    unresolved: Vec<(PortId, [u8; 16])>,
    lport_cursor: u32,
}

/// Why the shared table and counters are always present outside a batch.
const AWAY: &str = "the shared table is only away during a batch, which holds &mut self";

/// The shared table and counters (present whenever `&self` can be had).
fn present(shared: &Option<(Arc<ConnTable>, Arc<Stats>)>) -> &(Arc<ConnTable>, Arc<Stats>) {
    shared.as_ref().expect(AWAY)
}

/// What one frame's processing needs besides the forwarder.
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
            shared: Some((table, stats)),
            slot,
            seed,
            generation: None,
            scheds: Vec::new(),
            overload: Vec::new(),
            unresolved: Vec::with_capacity(MAX_UNRESOLVED),
            lport_cursor: (slot as u32).wrapping_mul(8191) % LOCAL_PORTS,
        }
    }

    /// The shared connection table.
    pub fn table(&self) -> &Arc<ConnTable> {
        &self.shared().0
    }

    /// The shared counters.
    pub fn stats(&self) -> &Arc<Stats> {
        &self.shared().1
    }

    fn shared(&self) -> &(Arc<ConnTable>, Arc<Stats>) {
        present(&self.shared)
    }

    /// Expires idle connections in `count` shards starting at `first` (the control thread
    /// calls this periodically, with its own forwarder on the control counter slot), keeping
    /// the gauges right and removing the reply entries of expired NAT/FullNAT connections.
    /// Returns the number of entries removed.
    pub fn sweep(&mut self, snap: &Snapshot, first: usize, count: usize, now: Time) -> usize {
        let table = Arc::clone(self.table());
        let stats = Arc::clone(self.stats());
        let cx = Ctx {
            snap,
            now: now.secs(),
            c: stats.slot(self.slot),
            table: &table,
            stats: &stats,
        };
        let mut gone = Vec::new();
        let n = table.sweep(first, count, cx.now, |e| gone.push(*e));
        for e in &gone {
            self.removed(&cx, e);
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
        self.sync(snap);
        let (table, stats) = self.shared.take().expect(AWAY);
        self.batch(snap, frames, verdicts, now, (&table, &stats));
        self.shared = Some((table, stats));
    }

    fn batch(
        &mut self,
        snap: &Snapshot,
        frames: &mut [Frame<'_>],
        verdicts: &mut [Verdict],
        now: Time,
        (table, stats): (&ConnTable, &Stats),
    ) {
        let cx = Ctx {
            snap,
            now: now.secs(),
            c: stats.slot(self.slot),
            table,
            stats,
        };
        let (mut tx, mut passed) = (0u64, 0u64);
        for (f, v) in frames.iter_mut().zip(verdicts.iter_mut()) {
            *v = self.one(&cx, f);
            match *v {
                Verdict::Tx { .. } => tx += 1,
                Verdict::Pass => passed += 1,
                Verdict::Drop(r) => cx.c.drop(r),
            }
        }
        bump(&cx.c.rx_frames, frames.len().min(verdicts.len()) as u64);
        bump(&cx.c.tx_frames, tx);
        bump(&cx.c.passed, passed);
    }

    /// Hands over the next hops whose MAC was missing since the last call (at most 16), so
    /// the I/O layer can ask the kernel to resolve them.
    pub fn take_unresolved(&mut self, mut f: impl FnMut(PortId, [u8; 16])) {
        for (p, ip) in self.unresolved.drain(..) {
            f(p, ip);
        }
    }

    fn note_unresolved(&mut self, port: PortId, ip: [u8; 16]) {
        if self.unresolved.len() < MAX_UNRESOLVED && !self.unresolved.contains(&(port, ip)) {
            self.unresolved.push((port, ip));
        }
    }

    /// Rebuilds scheduler state for services whose version moved (only when the snapshot
    /// changed; never per packet).
    fn sync(&mut self, snap: &Snapshot) {
        if self.generation == Some(snap.generation) {
            return;
        }
        self.generation = Some(snap.generation);
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
        // The field, not `self.stats()`: `self.scheds` is borrowed mutably beside it.
        let stats = &*present(&self.shared).1;
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
            let dests = Dests::new(svcs, &svc.reals, stats, &self.overload);
            let params = Params {
                flags: SchedFlags(svc.options.flags.0),
                seed: self.seed ^ u64::from(svc.id).rotate_left(32),
            };
            *slot = Some(SchedSlot {
                version: svc.version,
                sched: factory(&dests, &params),
            });
        }
    }

    fn one(&mut self, cx: &Ctx<'_>, f: &mut Frame<'_>) -> Verdict {
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
                self.flow(cx, f, &s)
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
