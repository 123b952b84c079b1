//! One AF_XDP socket of a worker: bound to (interface, queue) on the worker's UMEM, with its
//! four rings, its socket options and what the kernel granted.

use super::sockopt;
use super::{BATCH, BindMode, XskConfig, XskError};
use crate::gate::QueueGate;
use std::ffi::CString;
use std::os::fd::AsRawFd;
use xsk_rs::config::{BindFlags, Interface, LibxdpFlags, QueueSize, SocketConfig};
use xsk_rs::{CompQueue, FillQueue, FrameDesc, RxQueue, Socket, TxQueue, Umem};

/// Fill frames a port keeps while it receives nothing (an interface that only transmits).
pub(super) const QUIET_FILL: u64 = 2 * BATCH as u64;

pub(super) fn qsize(n: u32) -> Result<QueueSize, XskError> {
    QueueSize::new(n).map_err(|e| XskError(format!("ring size {n}: {e}")))
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
    /// The NAPI instance of the queue as the socket sees it (0: none, busy polling is inert).
    pub napi_id: u32,
    /// True if the busy-polling options were asked for and accepted.
    pub busy_poll: bool,
    /// Descriptors one transmit kick sends (copy mode).
    pub tx_budget: u32,
    /// The socket's file descriptor (for the worker's waits).
    pub fd: i32,
}

pub(super) struct Port {
    pub info: PortInfo,
    pub tx: TxQueue,
    pub rx: RxQueue,
    pub fq: FillQueue,
    pub cq: CompQueue,
    pub pending: Vec<FrameDesc>,
    pub in_fill: u64,
    pub in_tx: u64,
    /// Fill frames to keep posted: the whole fill ring while the port receives, a few when
    /// it has been quiet.
    pub fill_target: u64,
    /// Frames received since the last [`super::WorkerIo::tick`].
    pub rx_since_tick: u64,
    /// Where the worker says it is behind (ports whose program listens).
    pub gate: Option<QueueGate>,
    pub behind: bool,
    /// What earlier sockets of this port counted (`XDP_STATISTICS` order of `SocketStats`).
    pub stats_base: [u64; 6],
    /// The busy-polling options it was given after it was opened.
    pub busy: Option<super::BusyPoll>,
}

impl Port {
    /// Binds a socket to `ifname` queue `queue` on `umem`.
    pub(super) fn open(
        umem: &Umem,
        cfg: &XskConfig,
        ifname: &str,
        queue: u32,
    ) -> Result<Port, XskError> {
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
            // required when a UMEM is shared; `umem` outlives the socket (the queues hold
            // clones of it).
            match unsafe { Socket::new(sock_cfg, umem, &iface, queue) } {
                Ok((tx, rx, Some((fq, cq)))) => {
                    let fd = rx.fd().as_raw_fd();
                    let zero_copy = sockopt::zero_copy(fd);
                    if *zc && !zero_copy {
                        tracing::info!(
                            interface = ifname,
                            queue,
                            "AF_XDP bound in copy mode (the UMEM is shared with a copy-mode socket)"
                        );
                    }
                    let busy_poll = match cfg.busy_poll {
                        Some(b) => match sockopt::busy_poll(fd, b.usecs, b.budget) {
                            Ok(()) => true,
                            Err(e) => {
                                tracing::warn!(interface = ifname, queue, error = %e,
                                    "busy-polling socket options refused");
                                false
                            }
                        },
                        None => false,
                    };
                    let tx_budget = if zero_copy {
                        cfg.ring_size
                    } else {
                        sockopt::tx_budget(fd, cfg.tx_budget.min(cfg.ring_size))
                    };
                    return Ok(Port {
                        info: PortInfo {
                            ifname: ifname.into(),
                            queue,
                            zero_copy,
                            napi_id: sockopt::napi_id(fd),
                            busy_poll,
                            tx_budget,
                            fd,
                        },
                        tx,
                        rx,
                        fq,
                        cq,
                        pending: Vec::with_capacity(BATCH * 4),
                        in_fill: 0,
                        in_tx: 0,
                        fill_target: QUIET_FILL,
                        rx_since_tick: 0,
                        gate: None,
                        behind: false,
                        stats_base: [0; 6],
                        busy: None,
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

    /// Updates the gate after a batch: behind while the receive ring is more than 3/4 full
    /// or the fill ring is nearly empty, caught up again below 1/4 with fill frames posted.
    /// Writes the shared flag only when it changes.
    #[inline]
    pub(super) fn update_gate(&mut self, ring_size: u32) {
        let Some(g) = &self.gate else { return };
        let waiting = self.rx.nb_avail(ring_size);
        // Frames still posted for reception (`in_fill` also counts those received and not
        // taken yet).
        let posted = self.in_fill.saturating_sub(u64::from(waiting));
        let behind = if self.behind {
            waiting > ring_size / 4 || posted < BATCH as u64
        } else {
            waiting > ring_size / 4 * 3 || posted < (BATCH / 2) as u64
        };
        if behind != self.behind {
            self.behind = behind;
            g.set_behind(behind);
        }
    }
}
