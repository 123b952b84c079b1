//! AF_XDP sockets for one worker: one socket per (interface, queue) the worker serves, all
//! sharing one UMEM, so a frame received on one interface is transmitted on another without
//! leaving the UMEM (the kernel copies it in copy mode, not in zero-copy mode).
//!
//! Frame accounting: every UMEM frame is at all times either free (in the worker's pool), in a
//! fill ring or owned by the kernel for reception, being processed, or in a TX ring awaiting
//! completion. [`FrameAccount`] keeps the numbers; `free + in_fill_or_rx + in_tx == total`
//! holds after every [`WorkerIo::poll_once`] (see [`WorkerIo::account`]).

use crate::xdp_prog::SocketMap;
use std::ffi::CString;
use std::io;
use std::num::NonZeroU32;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use xsk_rs::config::{
    BindFlags, FrameSize, Interface, LibxdpFlags, QueueSize, SocketConfig, UmemConfig,
};
use xsk_rs::{CompQueue, FillQueue, FrameDesc, RxQueue, Socket, TxQueue, Umem};

/// Frames handled per batch.
pub const BATCH: usize = 64;

/// Frames the kernel sends per wakeup of a copy-mode socket (its `TX_BATCH_SIZE`, the
/// default `max_tx_budget`).
const COPY_TX_BUDGET: usize = 32;

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

/// Sizes of the rings and the UMEM.
#[derive(Debug, Clone, Copy)]
pub struct XskConfig {
    /// UMEM frame size (2048 or 4096).
    pub frame_size: u32,
    /// UMEM frames per (interface, queue).
    pub frames_per_port: u32,
    /// RX, TX, fill and completion ring sizes (a power of two).
    pub ring_size: u32,
    /// Copy or zero-copy.
    pub bind: BindMode,
    /// Use the need_wakeup protocol (fewer syscalls when busy).
    pub need_wakeup: bool,
}

impl Default for XskConfig {
    fn default() -> Self {
        XskConfig {
            frame_size: 4096,
            frames_per_port: 4096,
            ring_size: 2048,
            bind: BindMode::Auto,
            need_wakeup: true,
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
}

impl FrameAccount {
    /// True if every frame is accounted for.
    pub fn balanced(&self) -> bool {
        self.free + self.in_fill_or_rx + self.in_tx == self.total
    }
}

struct Port {
    ifname: String,
    queue: u32,
    tx: TxQueue,
    rx: RxQueue,
    fq: FillQueue,
    cq: CompQueue,
    zero_copy: bool,
    pending: Vec<FrameDesc>,
    in_fill: u64,
    in_tx: u64,
}

/// What one socket ended up as, for the start-up report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortInfo {
    /// Interface.
    pub ifname: String,
    /// Queue.
    pub queue: u32,
    /// True if bound zero-copy.
    pub zero_copy: bool,
}

/// The AF_XDP sockets of one worker and their shared UMEM.
pub struct WorkerIo {
    umem: Umem,
    ports: Vec<Port>,
    free: Vec<FrameDesc>,
    counters: Arc<IoCounters>,
    ring_size: u32,
    descs: [FrameDesc; BATCH],
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

fn qsize(n: u32) -> Result<QueueSize, XskError> {
    QueueSize::new(n).map_err(|e| XskError(format!("ring size {n}: {e}")))
}

/// Asks the kernel whether a bound AF_XDP socket runs in zero-copy mode.
fn bound_zero_copy(fd: i32) -> bool {
    const SOL_XDP: i32 = 283;
    const XDP_OPTIONS: i32 = 8;
    const XDP_OPTIONS_ZEROCOPY: u32 = 1;
    let mut flags: u32 = 0;
    let mut len = size_of::<u32>() as libc::socklen_t;
    // SAFETY: XDP_OPTIONS writes a `struct xdp_options { __u32 flags; }` into a buffer of the
    // length we pass; `flags` and `len` are valid for the call.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            SOL_XDP,
            XDP_OPTIONS,
            (&raw mut flags).cast::<libc::c_void>(),
            &mut len,
        )
    };
    rc == 0 && flags & XDP_OPTIONS_ZEROCOPY != 0
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
        let umem_cfg = UmemConfig::builder()
            .frame_size(FrameSize::new(cfg.frame_size).map_err(|e| XskError(format!("{e}")))?)
            .fill_queue_size(qsize(cfg.ring_size)?)
            .comp_queue_size(qsize(cfg.ring_size)?)
            .build()
            .map_err(|e| XskError(format!("UMEM config: {e}")))?;
        let frames = cfg.frames_per_port * ports.len().max(1) as u32;
        let count = NonZeroU32::new(frames).ok_or_else(|| XskError("no frames".into()))?;
        let (umem, descs) = Umem::new(umem_cfg, count, false)
            .map_err(|e| XskError(format!("creating the UMEM ({frames} frames): {e}")))?;
        let counters = Arc::new(IoCounters::default());
        counters.total.store(u64::from(frames), Relaxed);
        let mut out = WorkerIo {
            umem,
            ports: Vec::new(),
            free: descs,
            counters,
            ring_size: cfg.ring_size,
            descs: [FrameDesc::default(); BATCH],
        };
        for (i, (ifname, queue)) in ports.iter().enumerate() {
            let port = out.open(cfg, ifname, *queue)?;
            let fd = port.rx.fd().as_raw_fd();
            programs[i]
                .register_socket(*queue, fd)
                .map_err(|e| XskError(e.to_string()))?;
            out.ports.push(port);
        }
        out.refill();
        Ok(out)
    }

    fn open(&self, cfg: &XskConfig, ifname: &str, queue: u32) -> Result<Port, XskError> {
        let iface = Interface::new(
            CString::new(ifname).map_err(|_| XskError(format!("bad interface name {ifname}")))?,
        );
        let wake = if cfg.need_wakeup {
            BindFlags::XDP_USE_NEED_WAKEUP
        } else {
            BindFlags::empty()
        };
        let attempts: &[(BindFlags, bool)] = match cfg.bind {
            BindMode::Auto => &[
                (BindFlags::XDP_ZEROCOPY, true),
                (BindFlags::XDP_COPY, false),
            ],
            BindMode::Copy => &[(BindFlags::XDP_COPY, false)],
            BindMode::ZeroCopy => &[(BindFlags::XDP_ZEROCOPY, true)],
        };
        let mut last = None;
        for (mode, zc) in attempts {
            let sock_cfg = SocketConfig::builder()
                .rx_queue_size(qsize(cfg.ring_size)?)
                .tx_queue_size(qsize(cfg.ring_size)?)
                .libxdp_flags(LibxdpFlags::XSK_LIBXDP_FLAGS_INHIBIT_PROG_LOAD)
                .bind_flags(*mode | wake)
                .build();
            // SAFETY: the program-load inhibit flag is set (xvs attaches its own program), as
            // required when a UMEM is shared; `self.umem` outlives the socket (the queues hold
            // clones of it).
            match unsafe { Socket::new(sock_cfg, &self.umem, &iface, queue) } {
                Ok((tx, rx, Some((fq, cq)))) => {
                    let zero_copy = bound_zero_copy(rx.fd().as_raw_fd());
                    if *zc && !zero_copy {
                        tracing::info!(
                            interface = ifname,
                            queue,
                            "AF_XDP bound in copy mode (the UMEM is shared with a copy-mode socket)"
                        );
                    }
                    return Ok(Port {
                        ifname: ifname.into(),
                        queue,
                        tx,
                        rx,
                        fq,
                        cq,
                        zero_copy,
                        pending: Vec::with_capacity(BATCH * 4),
                        in_fill: 0,
                        in_tx: 0,
                    });
                }
                Ok((_, _, None)) => {
                    return Err(XskError(format!(
                        "{ifname} queue {queue} is already bound by this worker"
                    )));
                }
                Err(e) => {
                    if *zc && cfg.bind == BindMode::Auto {
                        tracing::info!(interface = ifname, queue, error = %e,
                            "zero-copy AF_XDP not available; using copy mode");
                    }
                    last = Some(e);
                }
            }
        }
        let e = last.map(|e| e.to_string()).unwrap_or_default();
        Err(XskError(format!(
            "cannot bind an AF_XDP socket to {ifname} queue {queue}: {e} \
             (does the interface have that many queues? is xvsd root?)"
        )))
    }

    /// The counters (shared with the control thread).
    pub fn counters(&self) -> Arc<IoCounters> {
        Arc::clone(&self.counters)
    }

    /// The sockets, for the start-up report.
    pub fn ports(&self) -> Vec<PortInfo> {
        self.ports
            .iter()
            .map(|p| PortInfo {
                ifname: p.ifname.clone(),
                queue: p.queue,
                zero_copy: p.zero_copy,
            })
            .collect()
    }

    /// Where every frame is now.
    pub fn account(&self) -> FrameAccount {
        FrameAccount {
            total: self.counters.total.load(Relaxed),
            free: self.free.len() as u64,
            in_fill_or_rx: self.ports.iter().map(|p| p.in_fill).sum(),
            in_tx: self.ports.iter().map(|p| p.in_tx).sum(),
        }
    }

    /// Tops up every fill ring from the pool (half the ring each, shared fairly).
    fn refill(&mut self) {
        let target = u64::from(self.ring_size / 2);
        let ports = self.ports.len();
        for i in 0..ports {
            let p = &mut self.ports[i];
            let want = target.saturating_sub(p.in_fill) as usize;
            let n = want.min(self.free.len());
            if n == 0 {
                continue;
            }
            let start = self.free.len() - n;
            // SAFETY: the descriptors come from the pool: they belong to this UMEM and nothing
            // else uses their frames until the kernel hands them back through the RX ring.
            let done = unsafe { p.fq.produce(&self.free[start..]) };
            self.free.truncate(self.free.len() - done);
            p.in_fill += done as u64;
            bump(&self.counters.filled, done as u64);
            if done > 0 && p.fq.needs_wakeup() {
                let _ = p.fq.wakeup(p.rx.fd_mut(), 0);
                bump(&self.counters.wakeups, 1);
            }
        }
    }

    /// Collects TX completions into the pool.
    fn complete(&mut self) {
        for p in &mut self.ports {
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
        let mut received = 0;
        for pi in 0..self.ports.len() {
            let p = &mut self.ports[pi];
            // SAFETY: `descs` is scratch space; consumed descriptors describe frames of this
            // UMEM that the kernel has finished writing.
            let n = unsafe { p.rx.consume(&mut self.descs) };
            if n == 0 {
                continue;
            }
            p.in_fill -= n as u64;
            received += n;
            bump(&self.counters.rx, n as u64);
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
                match *fate {
                    Fate::Tx(q) if usize::from(q) < self.ports.len() => {
                        self.ports[usize::from(q)].pending.push(self.descs[i]);
                    }
                    Fate::Pass => {
                        bump(&self.counters.passed, 1);
                        self.free.push(self.descs[i]);
                    }
                    _ => {
                        bump(&self.counters.dropped, 1);
                        self.free.push(self.descs[i]);
                    }
                }
            }
        }
        self.transmit();
        self.refill();
        self.counters.free.store(self.free.len() as u64, Relaxed);
        received
    }

    fn transmit(&mut self) {
        for p in &mut self.ports {
            if p.pending.is_empty() {
                continue;
            }
            // SAFETY: pending descriptors are frames of this UMEM owned by this worker, with
            // their lengths set; after this call the kernel owns the ones produced.
            let done = unsafe { p.tx.produce(&p.pending) };
            p.in_tx += done as u64;
            bump(&self.counters.tx, done as u64);
            if done < p.pending.len() {
                bump(&self.counters.tx_ring_full, (p.pending.len() - done) as u64);
                self.free.extend_from_slice(&p.pending[done..]);
            }
            p.pending.clear();
            if done > 0 && p.tx.needs_wakeup() {
                // In copy mode each wakeup sends at most COPY_TX_BUDGET frames: ask as often
                // as it takes to send the whole batch now rather than a part of it per batch.
                let kicks = if p.zero_copy {
                    1
                } else {
                    done.div_ceil(COPY_TX_BUDGET)
                };
                for _ in 0..kicks {
                    let _ = p.tx.wakeup();
                }
                bump(&self.counters.wakeups, kicks as u64);
            }
        }
    }

    /// Transmits up to `n` new frames (at most one batch) on port `port`, each written by `fill`
    /// into a free frame's buffer, which returns the frame's length. Returns how many were put
    /// on the TX ring: fewer when frames or ring space run short (completions free them; a
    /// frame that found the ring full goes back to the pool and is counted in `tx_ring_full`).
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
        let Some(p) = self.ports.get_mut(port) else {
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

    /// Waits up to `timeout_ms` for a frame to arrive on any socket (adaptive mode), also
    /// kicking the kernel for pending transmissions.
    pub fn wait(&mut self, timeout_ms: i32) -> io::Result<()> {
        let mut fds: Vec<libc::pollfd> = self
            .ports
            .iter()
            .map(|p| libc::pollfd {
                fd: p.rx.fd().as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        // SAFETY: `fds` is a valid array of pollfd for the duration of the call.
        let rc = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
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
        self.ports.iter().any(|p| p.in_tx > 0)
    }

    /// Asks the kernel to send what is on the TX rings (needed after a busy period in copy
    /// mode with need_wakeup).
    pub fn kick_tx(&mut self) {
        for p in &mut self.ports {
            if p.in_tx > 0 {
                let _ = p.tx.wakeup();
            }
        }
    }
}
