//! AF_XDP sockets for one worker: one socket per (interface, queue) the worker serves, all
//! sharing one UMEM, so a frame received on one interface is transmitted on another without
//! leaving the UMEM (the kernel copies it in copy mode, not in zero-copy mode).
//!
//! One [`WorkerIo::poll_once`]: collect transmit completions, top up every fill ring, then per
//! socket take up to one batch from the receive ring, top its fill ring up again before the
//! batch is processed (so the kernel never runs dry while the worker works), hand the batch to
//! the handler, tell the XDP program whether the worker is behind, and finally put each
//! port's frames on its transmit ring with one kick per port.
//!
//! Frame accounting: every UMEM frame is at all times either free (in the worker's pool), in a
//! fill ring or owned by the kernel for reception, being processed, or in a TX ring awaiting
//! completion. [`FrameAccount`] keeps the numbers; `free + in_fill_or_rx + in_tx == total`
//! holds after every [`WorkerIo::poll_once`] (see [`WorkerIo::account`]).
//!
//! A port can leave and come back while the others run ([`WorkerIo::detach`],
//! [`WorkerIo::attach`]): its interface was deleted, then created again. Closing a socket gives
//! back nothing by itself (the kernel forgets what its fill and TX rings held), so the worker
//! keeps, per frame, the port whose fill or TX ring it went to last; on detach, the frames
//! marked with that port that are not in the pool are exactly the ones its rings held, and
//! they return to the pool.

mod port;
pub mod sockopt;

use crate::xdp_loader::SocketMap;
use port::{Port, QUIET_FILL, qsize};
use std::io;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use xsk_rs::config::{FrameSize, UmemConfig};
use xsk_rs::{FrameDesc, Umem};

pub use port::PortInfo;

/// Frames handled per batch.
pub const BATCH: usize = 64;

/// How the sockets bind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindMode {
    /// Zero-copy if the driver supports it, else copy mode.
    Auto,
    /// Copy mode.
    Copy,
    /// Zero-copy only.
    ZeroCopy,
}

/// Preferred busy polling asked of every socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BusyPoll {
    /// `SO_BUSY_POLL`: microseconds a system call may poll the queue.
    pub usecs: u32,
    /// `SO_BUSY_POLL_BUDGET`: frames per poll.
    pub budget: u32,
}

/// Sizes of the rings and the UMEM.
#[derive(Debug, Clone, Copy)]
pub struct XskConfig {
    /// UMEM frame size (2048 or 4096).
    pub frame_size: u32,
    /// UMEM frames per (interface, queue).
    pub frames_per_port: u32,
    /// RX and TX ring sizes (a power of two).
    pub ring_size: u32,
    /// Fill and completion ring sizes (a power of two; twice the RX ring, so that the fill
    /// ring still has frames when the receive ring is full).
    pub fill_size: u32,
    /// Copy or zero-copy.
    pub bind: BindMode,
    /// Use the need_wakeup protocol (fewer syscalls when busy).
    pub need_wakeup: bool,
    /// Preferred busy polling (`None`: the options are not set).
    pub busy_poll: Option<BusyPoll>,
    /// Descriptors one transmit kick should send in copy mode (the kernel's default is 32;
    /// Linux ≥ 6.17 takes up to the TX ring size).
    pub tx_budget: u32,
}

impl Default for XskConfig {
    fn default() -> Self {
        XskConfig {
            frame_size: 4096,
            frames_per_port: 4096,
            ring_size: 1024,
            fill_size: 2048,
            bind: BindMode::Auto,
            need_wakeup: true,
            busy_poll: None,
            tx_budget: 1024,
        }
    }
}

/// What should happen to a frame after the handler saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Transmit on this port (index into the worker's ports).
    Tx(u16),
    /// Return the frame to the pool.
    Drop,
    /// The frame was for the host stack, which AF_XDP cannot hand it back to: it is returned to
    /// the pool and counted apart.
    Pass,
    /// Keep the frame aside as it is (its next hop is being resolved) and offer it to the
    /// handler again at [`WorkerIo::offer_waiting`]; dropped after [`WAIT_LIMIT_NS`], or at
    /// once when [`MAX_WAITING`] frames already wait.
    Wait,
}

/// How long a frame waits for its next hop before it is dropped (the kernel gives up on a
/// neighbour after about as long).
pub const WAIT_LIMIT_NS: u64 = 1_000_000_000;
/// Frames a worker keeps waiting at most (the kernel queues about a hundred per neighbour).
pub const MAX_WAITING: usize = 128;

/// A frame set aside until its next hop is resolved.
#[derive(Debug, Clone, Copy)]
struct Waiting {
    desc: FrameDesc,
    port: u16,
    since_ns: u64,
}

/// A received frame lent to the handler: `data` is the whole data area of the UMEM frame (its
/// capacity), the frame is `data[..len]`.
#[derive(Debug)]
pub struct IoFrame<'a> {
    /// The frame's buffer (capacity), the packet at the start.
    pub data: &'a mut [u8],
    /// Length of the packet.
    pub len: usize,
    /// Port it arrived on.
    pub port: u16,
    /// What to do with it (the handler sets it; default drop).
    pub fate: Fate,
}

/// The kernel's drop counters of one AF_XDP socket (`XDP_STATISTICS`), refreshed by the
/// worker about once a second.
#[derive(Debug, Default)]
pub struct SocketStats {
    /// Frames the kernel dropped for other reasons (e.g. too big for the frame).
    pub rx_dropped: AtomicU64,
    /// Frames dropped because the receive ring was full.
    pub rx_ring_full: AtomicU64,
    /// Frames dropped because the fill ring was empty.
    pub rx_fill_ring_empty: AtomicU64,
    /// Invalid descriptors on the fill ring.
    pub rx_invalid_descs: AtomicU64,
    /// Invalid descriptors on the transmit ring.
    pub tx_invalid_descs: AtomicU64,
    /// Times the kernel found the transmit ring empty when asked to send.
    pub tx_ring_empty: AtomicU64,
    /// The NAPI id the socket reports (0: none).
    pub napi_id: AtomicU64,
    /// 1 while the worker tells the XDP program it is behind.
    pub behind: AtomicU64,
}

/// Frame and ring counters of one worker (written by the worker only).
#[derive(Debug, Default)]
pub struct IoCounters {
    /// Frames received.
    pub rx: AtomicU64,
    /// Frames put on TX rings.
    pub tx: AtomicU64,
    /// TX completions.
    pub completed: AtomicU64,
    /// Frames handed to fill rings.
    pub filled: AtomicU64,
    /// Frames dropped by verdict.
    pub dropped: AtomicU64,
    /// Frames the handler wanted passed to the host (dropped: see [`Fate::Pass`]).
    pub passed: AtomicU64,
    /// Frames dropped because a TX ring was full.
    pub tx_ring_full: AtomicU64,
    /// Wakeup syscalls made.
    pub wakeups: AtomicU64,
    /// Frames free in the pool (gauge).
    pub free: AtomicU64,
    /// UMEM frames in total (constant).
    pub total: AtomicU64,
    /// Busy-poll receive calls made.
    pub busy_polls: AtomicU64,
    /// Times the worker told an XDP program it was behind.
    pub behind_events: AtomicU64,
    /// Frames taken back from the fill (or RX) ring of a socket closed with its interface.
    pub reclaimed_fill: AtomicU64,
    /// Frames taken back from the TX ring of a socket closed with its interface.
    pub reclaimed_tx: AtomicU64,
    /// Frames waiting for their next hop's MAC address (gauge).
    pub waiting: AtomicU64,
    /// Frames dropped after waiting (too long, too many waiting, or the UMEM replaced); also
    /// counted in `dropped`.
    pub wait_dropped: AtomicU64,
    /// Per socket, in port order.
    pub sockets: Vec<SocketStats>,
}

fn bump(c: &AtomicU64, v: u64) {
    c.store(c.load(Relaxed).wrapping_add(v), Relaxed);
}

/// Where every frame is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameAccount {
    /// UMEM frames.
    pub total: u64,
    /// In the worker's pool.
    pub free: u64,
    /// Given to a fill ring and not received back yet.
    pub in_fill_or_rx: u64,
    /// On a TX ring, not completed yet.
    pub in_tx: u64,
    /// Set aside, waiting for a next hop.
    pub waiting: u64,
}

impl FrameAccount {
    /// True if every frame is accounted for.
    pub fn balanced(&self) -> bool {
        self.free + self.in_fill_or_rx + self.in_tx + self.waiting == self.total
    }
}

/// The AF_XDP sockets of one worker and their shared UMEM.
pub struct WorkerIo {
    umem: Umem,
    cfg: XskConfig,
    /// By port id; `None` while a port's interface is gone.
    ports: Vec<Option<Port>>,
    free: Vec<FrameDesc>,
    /// Every frame's descriptor, by frame number (to take back a detached port's frames).
    all: Vec<FrameDesc>,
    /// By frame number: the port whose fill or TX ring the frame was last put on.
    last_ring: Vec<u8>,
    /// log2 of the frame size: a descriptor's address to its frame number.
    frame_shift: u32,
    /// The port whose socket holds the UMEM (the first bound on it): the kernel lets a new
    /// socket share the UMEM only while that socket is bound.
    holder: usize,
    counters: Arc<IoCounters>,
    ring_size: u32,
    /// Fill frames a receiving port keeps posted (the fill ring's size, or less when the
    /// UMEM is small).
    fill_size: u32,
    descs: [FrameDesc; BATCH],
    pollfds: Vec<libc::pollfd>,
    /// Frames waiting for their next hop, oldest first.
    waiting: std::collections::VecDeque<Waiting>,
}

/// Why a worker's sockets could not be set up.
#[derive(Debug)]
pub struct XskError(pub String);

impl std::fmt::Display for XskError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for XskError {}

/// Ports a worker can serve (the frame location map holds a port id in a byte).
pub const MAX_PORTS: usize = 255;

/// What a port is, to open its socket again.
struct Reopen {
    ifname: String,
    queue: u32,
    gate: Option<crate::gate::QueueGate>,
    busy: Option<BusyPoll>,
}

/// A UMEM of `cfg.frames_per_port` frames per port, and its frames' descriptors.
fn new_umem(cfg: &XskConfig, ports: usize) -> Result<(Umem, Vec<FrameDesc>), XskError> {
    let umem_cfg = UmemConfig::builder()
        .frame_size(FrameSize::new(cfg.frame_size).map_err(|e| XskError(format!("{e}")))?)
        .fill_queue_size(qsize(cfg.fill_size)?)
        .comp_queue_size(qsize(cfg.fill_size)?)
        .build()
        .map_err(|e| XskError(format!("UMEM config: {e}")))?;
    let frames = cfg.frames_per_port * ports.max(1) as u32;
    let count = NonZeroU32::new(frames).ok_or_else(|| XskError("no frames".into()))?;
    Umem::new(umem_cfg, count, false)
        .map_err(|e| XskError(format!("creating the UMEM ({frames} frames): {e}")))
}

impl WorkerIo {
    /// Creates the UMEM and one socket per `(ifname, queue)` in `ports` (the index is the port
    /// id the handler sees), registering each socket with its interface's XDP program
    /// (`programs[i]` belongs to `ports[i].0`).
    pub fn new(
        cfg: &XskConfig,
        ports: &[(String, u32)],
        programs: &mut [&mut dyn SocketMap],
    ) -> Result<WorkerIo, XskError> {
        if ports.len() > MAX_PORTS {
            return Err(XskError(format!(
                "{} ports for one worker: at most {MAX_PORTS}",
                ports.len()
            )));
        }
        let (umem, descs) = new_umem(cfg, ports.len())?;
        let frames = descs.len() as u32;
        let mut opened = Vec::new();
        for (i, (ifname, queue)) in ports.iter().enumerate() {
            let mut port = Port::open(&umem, cfg, ifname, *queue)?;
            programs[i]
                .register_socket(*queue, port.info.fd)
                .map_err(|e| XskError(e.to_string()))?;
            port.gate = programs[i].gate(*queue);
            if let Some(g) = &port.gate {
                g.set_behind(false);
            }
            opened.push(Some(port));
        }
        let counters = Arc::new(IoCounters {
            sockets: opened.iter().map(|_| SocketStats::default()).collect(),
            ..IoCounters::default()
        });
        counters.total.store(u64::from(frames), Relaxed);
        let mut out = WorkerIo {
            umem,
            cfg: *cfg,
            holder: 0,
            ports: opened,
            all: descs.clone(),
            last_ring: vec![u8::MAX; descs.len()],
            frame_shift: cfg.frame_size.trailing_zeros(),
            free: descs,
            counters,
            ring_size: cfg.ring_size,
            // A port keeps at most half its share of the UMEM posted for reception, so that a
            // UMEM smaller than the rings still leaves every port frames to receive into (and
            // to transmit from): otherwise the busiest port's fill ring takes them all and a
            // quiet port, starved, says it is behind for good.
            fill_size: cfg.fill_size.min(cfg.frames_per_port / 2).max(BATCH as u32),
            descs: [FrameDesc::default(); BATCH],
            pollfds: Vec::new(),
            waiting: std::collections::VecDeque::new(),
        };
        out.update_pollfds();
        out.refill();
        out.tick();
        Ok(out)
    }

    /// The counters (shared with the control thread).
    pub fn counters(&self) -> Arc<IoCounters> {
        Arc::clone(&self.counters)
    }

    /// The sockets that are open (port order), for the start-up report.
    pub fn ports(&self) -> Vec<PortInfo> {
        self.ports
            .iter()
            .flatten()
            .map(|p| p.info.clone())
            .collect()
    }

    /// Where every frame is now.
    pub fn account(&self) -> FrameAccount {
        FrameAccount {
            total: self.counters.total.load(Relaxed),
            free: self.free.len() as u64,
            in_fill_or_rx: self.ports.iter().flatten().map(|p| p.in_fill).sum(),
            in_tx: self.ports.iter().flatten().map(|p| p.in_tx).sum(),
            waiting: self.waiting.len() as u64,
        }
    }

    /// The descriptors to wait on: one per open socket, `-1` (ignored by poll) for a port
    /// that is gone.
    fn update_pollfds(&mut self) {
        self.pollfds = self
            .ports
            .iter()
            .map(|p| libc::pollfd {
                fd: p.as_ref().map_or(-1, |p| p.info.fd),
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
    }

    /// Records that `descs` went to port `pi`'s fill or TX ring.
    #[inline]
    fn mark(last_ring: &mut [u8], shift: u32, descs: &[FrameDesc], pi: usize) {
        for d in descs {
            if let Some(m) = last_ring.get_mut(d.addr() >> shift) {
                *m = pi as u8;
            }
        }
    }

    /// Tops up the fill ring of port `pi` to its target from the pool.
    #[inline]
    fn refill_port(&mut self, pi: usize) {
        let Some(p) = self.ports[pi].as_mut() else {
            return;
        };
        let want = p.fill_target.saturating_sub(p.in_fill) as usize;
        let n = want.min(self.free.len());
        if n == 0 {
            return;
        }
        let start = self.free.len() - n;
        // SAFETY: the descriptors come from the pool: they belong to this UMEM and nothing
        // else uses their frames until the kernel hands them back through the RX ring.
        let done = unsafe { p.fq.produce(&self.free[start..]) };
        // The ring takes all of them or none.
        Self::mark(
            &mut self.last_ring,
            self.frame_shift,
            &self.free[start..start + done],
            pi,
        );
        self.free.truncate(self.free.len() - done);
        p.in_fill += done as u64;
        bump(&self.counters.filled, done as u64);
        if done > 0 && p.fq.needs_wakeup() {
            // Zero-copy drivers wait for a wakeup once their fill ring ran dry.
            sockopt::poll_rx(p.info.fd);
            bump(&self.counters.wakeups, 1);
        }
    }

    /// Tops up every fill ring.
    fn refill(&mut self) {
        for pi in 0..self.ports.len() {
            self.refill_port(pi);
        }
    }

    /// Collects TX completions into the pool.
    fn complete(&mut self) {
        for p in self.ports.iter_mut().flatten() {
            if p.in_tx == 0 {
                continue;
            }
            // SAFETY: completions return descriptors of frames this worker put on the TX ring
            // of this UMEM; the kernel no longer uses them.
            let n = unsafe { p.cq.consume(&mut self.descs) };
            self.free.extend_from_slice(&self.descs[..n]);
            p.in_tx -= n as u64;
            bump(&self.counters.completed, n as u64);
        }
    }

    /// Receives up to one batch per port, lets `handler` process each batch, transmits and
    /// recycles. Returns the number of frames received.
    pub fn poll_once(&mut self, handler: &mut impl FnMut(&mut [IoFrame<'_>])) -> usize {
        self.complete();
        if !self.waiting.is_empty() {
            self.expire_waiting(crate::clock::coarse_ns());
        }
        self.refill();
        let mut received = 0;
        for pi in 0..self.ports.len() {
            let Some(p) = self.ports[pi].as_mut() else {
                continue;
            };
            // SAFETY: `descs` is scratch space; consumed descriptors describe frames of this
            // UMEM that the kernel has finished writing.
            let n = unsafe { p.rx.consume(&mut self.descs) };
            if n == 0 {
                if p.info.busy_poll {
                    // Preferred busy polling: this call runs the queue's receive here.
                    sockopt::poll_rx(p.info.fd);
                    bump(&self.counters.busy_polls, 1);
                }
                if p.behind {
                    // While it says it is behind, the program drops what would arrive: the
                    // gate must open again from here, once frames are posted (a UMEM that ran
                    // dry fills again as transmissions complete), not on a receive.
                    p.update_gate(self.ring_size);
                    if !p.behind {
                        self.counters.sockets[pi].behind.store(0, Relaxed);
                    }
                }
                continue;
            }
            p.in_fill -= n as u64;
            p.rx_since_tick += n as u64;
            p.fill_target = u64::from(self.fill_size);
            received += n;
            bump(&self.counters.rx, n as u64);
            // Before the batch is processed: the kernel keeps receiving meanwhile.
            self.refill_port(pi);
            self.process(pi, n, None, handler);
            if let Some(p) = self.ports[pi].as_mut() {
                let behind = p.behind;
                p.update_gate(self.ring_size);
                if p.behind != behind {
                    let b = u64::from(p.behind);
                    self.counters.sockets[pi].behind.store(b, Relaxed);
                    bump(&self.counters.behind_events, b);
                }
            }
        }
        self.transmit();
        self.counters.free.store(self.free.len() as u64, Relaxed);
        received
    }

    /// Runs `handler` on the `n` frames in `self.descs` received on port `pi` and queues
    /// them by fate; `since_ns` is when they started waiting if they are offered again.
    fn process(
        &mut self,
        pi: usize,
        n: usize,
        since_ns: Option<u64>,
        handler: &mut impl FnMut(&mut [IoFrame<'_>]),
    ) {
        let mut lens = [0usize; BATCH];
        let mut fates = [Fate::Drop; BATCH];
        {
            let umem = &self.umem;
            let mut datas: [Option<xsk_rs::umem::frame::DataMut<'_>>; BATCH] =
                std::array::from_fn(|_| None);
            for (i, (slot, d)) in datas.iter_mut().zip(self.descs[..n].iter_mut()).enumerate() {
                // SAFETY: each descriptor names a distinct frame of this UMEM, received and
                // not shared with the kernel or any other live reference.
                let mut dm = unsafe { umem.data_mut(d) };
                lens[i] = dm.contents().len();
                let mut c = dm.cursor();
                let cap = c.buf_len();
                c.set_pos(cap);
                *slot = Some(dm);
            }
            let mut it = datas.iter_mut().take(n).enumerate();
            let mut frames: [IoFrame<'_>; BATCH] = std::array::from_fn(|_| match it.next() {
                Some((i, Some(dm))) => IoFrame {
                    data: dm.contents_mut(),
                    len: lens[i],
                    port: pi as u16,
                    fate: Fate::Drop,
                },
                _ => IoFrame {
                    data: &mut [],
                    len: 0,
                    port: pi as u16,
                    fate: Fate::Drop,
                },
            });
            handler(&mut frames[..n]);
            for (f, (len, fate)) in frames[..n]
                .iter()
                .zip(lens.iter_mut().zip(fates.iter_mut()))
            {
                *len = f.len.min(f.data.len());
                *fate = f.fate;
            }
            // The frames' borrows of the data segments end here; set the lengths.
            for (i, dm) in datas.iter_mut().take(n).enumerate() {
                if let Some(dm) = dm {
                    dm.cursor().set_pos(lens[i]);
                }
            }
        }
        for (i, fate) in fates.iter().enumerate().take(n) {
            let d = self.descs[i];
            match *fate {
                Fate::Pass => {
                    bump(&self.counters.passed, 1);
                    self.free.push(d);
                }
                // To an open port; one whose interface is gone drops the frame.
                Fate::Tx(q) => match self.ports.get_mut(usize::from(q)) {
                    Some(Some(out)) => out.pending.push(d),
                    _ => {
                        bump(&self.counters.dropped, 1);
                        self.free.push(d);
                    }
                },
                Fate::Drop => {
                    bump(&self.counters.dropped, 1);
                    self.free.push(d);
                }
                Fate::Wait if self.waiting.len() < MAX_WAITING => {
                    self.waiting.push_back(Waiting {
                        desc: d,
                        port: pi as u16,
                        since_ns: since_ns.unwrap_or_else(crate::clock::coarse_ns),
                    });
                }
                Fate::Wait => self.drop_waited(d),
            }
        }
        self.counters
            .waiting
            .store(self.waiting.len() as u64, Relaxed);
    }

    /// Drops a frame that waited (or could not wait) for its next hop.
    fn drop_waited(&mut self, d: FrameDesc) {
        bump(&self.counters.dropped, 1);
        bump(&self.counters.wait_dropped, 1);
        self.free.push(d);
    }

    /// Drops the frames that have waited [`WAIT_LIMIT_NS`] by `now_ns`.
    fn expire_waiting(&mut self, now_ns: u64) {
        while let Some(w) = self.waiting.front() {
            if now_ns.saturating_sub(w.since_ns) < WAIT_LIMIT_NS {
                break;
            }
            let d = w.desc;
            self.waiting.pop_front();
            self.drop_waited(d);
        }
        self.counters
            .waiting
            .store(self.waiting.len() as u64, Relaxed);
    }

    /// True if frames wait for their next hop.
    pub fn has_waiting(&self) -> bool {
        !self.waiting.is_empty()
    }

    /// Offers every waiting frame to `handler` again (call it when the network state changed:
    /// a next hop may have been resolved); what it sends goes out now, what must still wait
    /// keeps its place and its age. Returns how many were offered.
    pub fn offer_waiting(&mut self, handler: &mut impl FnMut(&mut [IoFrame<'_>])) -> usize {
        self.expire_waiting(crate::clock::coarse_ns());
        let waiting = std::mem::take(&mut self.waiting);
        let n = waiting.len();
        for w in waiting {
            // One at a time: each keeps its own age if it waits again (rare, and few).
            self.descs[0] = w.desc;
            self.process(usize::from(w.port), 1, Some(w.since_ns), handler);
        }
        self.transmit();
        self.counters.free.store(self.free.len() as u64, Relaxed);
        n
    }

    /// Puts every port's pending frames on its TX ring, with one kick per port (copy mode:
    /// as many as the granted budget requires, normally one).
    fn transmit(&mut self) {
        for (pi, p) in self.ports.iter_mut().enumerate() {
            let Some(p) = p else { continue };
            if p.pending.is_empty() {
                continue;
            }
            // SAFETY: pending descriptors are frames of this UMEM owned by this worker, with
            // their lengths set; after this call the kernel owns the ones produced.
            let done = unsafe { p.tx.produce(&p.pending) };
            Self::mark(
                &mut self.last_ring,
                self.frame_shift,
                &p.pending[..done],
                pi,
            );
            p.in_tx += done as u64;
            bump(&self.counters.tx, done as u64);
            if done < p.pending.len() {
                bump(&self.counters.tx_ring_full, (p.pending.len() - done) as u64);
                self.free.extend_from_slice(&p.pending[done..]);
            }
            p.pending.clear();
            if done > 0 && p.tx.needs_wakeup() {
                let kicks = if p.info.zero_copy {
                    1
                } else {
                    done.div_ceil(p.info.tx_budget.max(1) as usize)
                };
                for _ in 0..kicks {
                    let _ = p.tx.wakeup();
                }
                bump(&self.counters.wakeups, kicks as u64);
            }
        }
    }

    /// Housekeeping about once a second (the caller's clock): reads every socket's
    /// `XDP_STATISTICS` into the counters, and lets ports that received nothing since the last
    /// tick fall back to a few fill frames (an interface that only transmits holds almost
    /// none).
    pub fn tick(&mut self) {
        for (p, s) in self.ports.iter_mut().zip(&self.counters.sockets) {
            let Some(p) = p else { continue };
            if let Ok(x) = p.rx.fd().xdp_statistics() {
                // A socket opened again (its interface came back) counts from zero: add what
                // the earlier sockets of the port counted.
                let b = &p.stats_base;
                s.rx_dropped.store(b[0] + x.rx_dropped(), Relaxed);
                s.rx_ring_full.store(b[1] + x.rx_ring_full(), Relaxed);
                s.rx_fill_ring_empty
                    .store(b[2] + x.rx_fill_ring_empty_descs(), Relaxed);
                s.rx_invalid_descs
                    .store(b[3] + x.rx_invalid_descs(), Relaxed);
                s.tx_invalid_descs
                    .store(b[4] + x.tx_invalid_descs(), Relaxed);
                s.tx_ring_empty
                    .store(b[5] + x.tx_ring_empty_descs(), Relaxed);
            }
            p.info.napi_id = sockopt::napi_id(p.info.fd);
            s.napi_id.store(u64::from(p.info.napi_id), Relaxed);
            if p.rx_since_tick == 0 {
                p.fill_target = QUIET_FILL.min(u64::from(self.fill_size));
            }
            p.rx_since_tick = 0;
        }
    }

    /// Turns preferred busy polling on for the socket of port `port`: from now on an empty
    /// receive ring makes [`WorkerIo::poll_once`] poll the queue with `recvfrom`.
    pub fn enable_busy_poll(&mut self, port: usize, bp: BusyPoll) -> io::Result<()> {
        let p = self
            .ports
            .get_mut(port)
            .and_then(Option::as_mut)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no such port"))?;
        sockopt::busy_poll(p.info.fd, bp.usecs, bp.budget)?;
        p.info.busy_poll = true;
        p.busy = Some(bp);
        Ok(())
    }

    /// The NAPI id each socket reports now (0: none), in port order.
    pub fn napi_ids(&self) -> Vec<u32> {
        self.ports
            .iter()
            .flatten()
            .map(|p| sockopt::napi_id(p.info.fd))
            .collect()
    }

    /// Transmits up to `n` new frames (at most one batch) on port `port`, each written by `fill`
    /// into a free frame's buffer, which returns the frame's length. Returns how many were put
    /// on the TX ring: fewer when frames or ring space run short (completions free them; a
    /// frame that found the ring full goes back to the pool and is counted in `tx_ring_full`).
    #[cfg(feature = "bench")]
    pub fn send(
        &mut self,
        port: usize,
        n: usize,
        fill: &mut impl FnMut(&mut [u8]) -> usize,
    ) -> usize {
        self.complete();
        let k = n.min(BATCH).min(self.free.len());
        if k == 0 {
            // Every frame is on its way out: in copy mode the kernel sends only when asked.
            self.kick_tx();
            return 0;
        }
        let Some(Some(p)) = self.ports.get_mut(port) else {
            return 0;
        };
        for _ in 0..k {
            let Some(mut d) = self.free.pop() else { break };
            // SAFETY: the descriptor comes from the pool: a frame of this UMEM that neither
            // the kernel nor any other reference uses until it is put on the TX ring.
            let mut dm = unsafe { self.umem.data_mut(&mut d) };
            let mut c = dm.cursor();
            let cap = c.buf_len();
            c.set_pos(cap);
            let len = fill(dm.contents_mut()).min(cap);
            dm.cursor().set_pos(len);
            p.pending.push(d);
        }
        let before = self.counters.tx.load(Relaxed);
        self.transmit();
        let sent = (self.counters.tx.load(Relaxed) - before) as usize;
        if sent < k {
            // The TX ring is full: ask the kernel to drain it.
            self.kick_tx();
        }
        sent
    }

    /// Waits up to `timeout_ms` for a frame to arrive on any socket.
    pub fn wait(&mut self, timeout_ms: i32) -> io::Result<()> {
        // SAFETY: `pollfds` is a valid array of pollfd, one per socket, for the call.
        let rc = unsafe {
            libc::poll(
                self.pollfds.as_mut_ptr(),
                self.pollfds.len() as libc::nfds_t,
                timeout_ms,
            )
        };
        if rc < 0 {
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
        Ok(())
    }

    /// True if frames are on their way out (completions still to collect).
    pub fn tx_in_flight(&self) -> bool {
        self.ports.iter().flatten().any(|p| p.in_tx > 0)
    }

    /// Asks the kernel to send what is on the TX rings (needed after a busy period in copy
    /// mode with need_wakeup).
    pub fn kick_tx(&mut self) {
        for p in self.ports.iter_mut().flatten() {
            if p.in_tx > 0 {
                let _ = p.tx.wakeup();
            }
        }
    }

    /// Closes port `port`'s socket (its interface is gone) and takes back every frame its
    /// rings held. Returns how many frames came back; the port transmits nothing until
    /// [`WorkerIo::attach`] (frames sent to it are dropped and counted as dropped).
    pub fn detach(&mut self, port: usize) -> u64 {
        let Some(p) = self.ports.get_mut(port).and_then(Option::take) else {
            return 0;
        };
        let mut in_pool = vec![false; self.all.len()];
        // Waiting frames are held here, not in a ring.
        for d in self.free.iter().chain(self.waiting.iter().map(|w| &w.desc)) {
            if let Some(b) = in_pool.get_mut(d.addr() >> self.frame_shift) {
                *b = true;
            }
        }
        // Frames transmitted or dropped after being received on this port are in the pool;
        // the rest marked with it are in its fill, RX or TX ring.
        let mut back = 0u64;
        for (i, &m) in self.last_ring.iter().enumerate() {
            if usize::from(m) == port && !in_pool[i] {
                self.free.push(self.all[i]);
                back += 1;
            }
        }
        debug_assert_eq!(back, p.in_fill + p.in_tx);
        bump(&self.counters.reclaimed_fill, p.in_fill);
        bump(&self.counters.reclaimed_tx, p.in_tx);
        // The closed socket's counts stay in its slot; the next socket adds to them.
        drop(p);
        self.update_pollfds();
        self.counters.free.store(self.free.len() as u64, Relaxed);
        back
    }

    /// Gives open port `port` a new gate (its interface got a new steering program) and says
    /// what its socket is, to register with that program.
    pub fn rebind(
        &mut self,
        port: usize,
        gate: Option<crate::gate::QueueGate>,
    ) -> Result<PortInfo, XskError> {
        let p = self
            .ports
            .get_mut(port)
            .and_then(Option::as_mut)
            .ok_or_else(|| XskError(format!("port {port} is not open")))?;
        if let Some(g) = &gate {
            g.set_behind(false);
        }
        p.gate = gate;
        p.behind = false;
        Ok(p.info.clone())
    }

    /// Opens port `port` again on `ifname` queue `queue` (its interface came back), on this
    /// worker's UMEM, with `gate` as the place to say it is behind. Returns every socket
    /// opened, by port: the caller registers each with its interface's XDP program.
    ///
    /// Usually that is the one socket. If the socket holding the UMEM was the one that went
    /// away, the kernel lets no new socket share the UMEM: then every socket of the worker is
    /// closed and opened again on a new UMEM (the frames the old rings held are counted as
    /// taken back), and all of them are returned.
    pub fn attach(
        &mut self,
        port: usize,
        ifname: &str,
        queue: u32,
        gate: Option<crate::gate::QueueGate>,
    ) -> Result<Vec<(usize, PortInfo)>, XskError> {
        match self.ports.get(port) {
            None => return Err(XskError(format!("port {port} is not one of this worker's"))),
            Some(Some(_)) => return Err(XskError(format!("port {port} is open"))),
            Some(None) => {}
        }
        if self.ports.get(self.holder).is_some_and(Option::is_some) {
            let info = self.open_port(port, ifname, queue, gate, None)?;
            return Ok(vec![(port, info)]);
        }
        // Every socket again, on a new UMEM: what each open port is, then close them all.
        let mut specs: Vec<Option<Reopen>> = self
            .ports
            .iter()
            .map(|p| {
                p.as_ref().map(|p| Reopen {
                    ifname: p.info.ifname.clone(),
                    queue: p.info.queue,
                    gate: p.gate.clone(),
                    busy: p.busy,
                })
            })
            .collect();
        specs[port] = Some(Reopen {
            ifname: ifname.to_string(),
            queue,
            gate,
            busy: None,
        });
        for pi in 0..self.ports.len() {
            self.detach(pi);
        }
        // Waiting frames live in the old UMEM.
        while let Some(w) = self.waiting.pop_front() {
            self.drop_waited(w.desc);
        }
        self.counters.waiting.store(0, Relaxed);
        let (umem, descs) = new_umem(&self.cfg, self.ports.len())?;
        // The old UMEM goes once its last socket has (they are all closed now).
        self.umem = umem;
        self.all = descs.clone();
        self.free = descs;
        self.last_ring.fill(u8::MAX);
        let mut opened = Vec::new();
        let mut first = None;
        for (pi, spec) in specs.into_iter().enumerate() {
            let Some(r) = spec else {
                continue;
            };
            let info = self.open_port(pi, &r.ifname, r.queue, r.gate, r.busy)?;
            first.get_or_insert(pi);
            opened.push((pi, info));
        }
        self.holder = first.unwrap_or(0);
        Ok(opened)
    }

    /// Opens port `pi`'s socket on the current UMEM and fills its ring.
    fn open_port(
        &mut self,
        pi: usize,
        ifname: &str,
        queue: u32,
        gate: Option<crate::gate::QueueGate>,
        busy: Option<BusyPoll>,
    ) -> Result<PortInfo, XskError> {
        let mut p = Port::open(&self.umem, &self.cfg, ifname, queue)?;
        if let Some(s) = self.counters.sockets.get(pi) {
            p.stats_base = [
                s.rx_dropped.load(Relaxed),
                s.rx_ring_full.load(Relaxed),
                s.rx_fill_ring_empty.load(Relaxed),
                s.rx_invalid_descs.load(Relaxed),
                s.tx_invalid_descs.load(Relaxed),
                s.tx_ring_empty.load(Relaxed),
            ];
        }
        if let Some(g) = &gate {
            g.set_behind(false);
        }
        p.gate = gate;
        if let Some(bp) = busy {
            sockopt::busy_poll(p.info.fd, bp.usecs, bp.budget)
                .map_err(|e| XskError(format!("busy polling on {ifname}: {e}")))?;
            p.info.busy_poll = true;
            p.busy = Some(bp);
        }
        let info = p.info.clone();
        self.ports[pi] = Some(p);
        self.update_pollfds();
        self.refill_port(pi);
        self.counters.free.store(self.free.len() as u64, Relaxed);
        Ok(info)
    }
}
