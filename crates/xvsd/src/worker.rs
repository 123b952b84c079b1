//! A worker: one thread, pinned to a core, serving one queue of every interface through
//! AF_XDP and running the forwarding core on each batch.
//!
//! The loop: one [`WorkerIo::poll_once`] (completions, fill rings, a batch per socket through
//! the forwarding core, transmit), the clock read once per round (the coarse clock: the core
//! counts seconds), a housekeeping tick once a second (the sockets' XDP statistics), and when
//! nothing arrived, the idle policy of the polling plan: spin, sleep (threaded-yield: the
//! NAPI threads below run only now: blocked in poll(2) until they have received, or for a
//! fixed time), or spin-then-poll.

use crate::polling::{Idle, WorkerPolling};
use crate::relink::WorkerEnd;
use arc_swap::ArcSwap;
use crossbeam_channel::Sender;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::Duration;
use xvs_core::{Forwarder, Frame, PortId, Snapshot, Time, Verdict};
use xvs_io::clock::coarse_ns;
use xvs_io::xsk::{BATCH, Fate, IoFrame, WorkerIo};

/// Sleeps in a row (threaded-yield) after which an idle worker blocks in poll(2) instead, until
/// a frame arrives: about 20 ms of nothing at the default sleep.
const SLEEPS_BEFORE_BLOCKING: u32 = 400;

/// Everything a worker thread owns.
pub struct Worker {
    /// Its index (counter slot).
    pub index: usize,
    /// Core to pin to.
    pub core: usize,
    /// Its sockets.
    pub io: WorkerIo,
    /// Its forwarding state.
    pub fw: Forwarder,
    /// Where snapshots are published.
    pub snapshot: Arc<ArcSwap<Snapshot>>,
    /// Set to stop.
    pub stop: Arc<AtomicBool>,
    /// Scheduling and idle policy.
    pub polling: WorkerPolling,
    /// CLOCK_MONOTONIC at the time origin shared with the control thread, in nanoseconds.
    pub origin_ns: u64,
    /// Next hops to resolve, to the control thread.
    pub resolve: Sender<(PortId, [u8; 16])>,
    /// Benchmark baseline mode (`--forward-only`): no forwarding core at all.
    pub forward_only: Option<ForwardOnly>,
    /// Ports to close or open again (their interfaces left or came back).
    pub links: WorkerEnd,
}

/// `--forward-only`: every frame leaves with fixed Ethernet addresses, through the targets
/// in turn.
#[derive(Debug, Clone)]
pub struct ForwardOnly {
    /// (port, destination then source MAC as they lie in the Ethernet header).
    targets: Vec<(u16, [u8; 12])>,
    next: usize,
}

impl ForwardOnly {
    /// Sends out of each `(ifname, dst)` (ifname one of `ports`) to `dst`, from the
    /// interface's own MAC.
    pub fn new(
        ports: &[String],
        links: &[xvs_io::netlink::Link],
        to: &[(String, [u8; 6])],
    ) -> Result<ForwardOnly, String> {
        let mut targets = Vec::new();
        for (ifname, dst) in to {
            let port = ports
                .iter()
                .position(|p| p == ifname)
                .ok_or_else(|| format!("--forward-only: {ifname} is not served"))?;
            let src = links
                .iter()
                .find(|l| &l.name == ifname && l.mac.len() == 6)
                .ok_or_else(|| format!("--forward-only: {ifname} has no MAC address"))?;
            let mut macs = [0u8; 12];
            macs[..6].copy_from_slice(dst);
            macs[6..].copy_from_slice(&src.mac);
            targets.push((port as u16, macs));
        }
        Ok(ForwardOnly { targets, next: 0 })
    }

    /// Rewrites the Ethernet addresses of every frame and sends it out of the next target.
    fn handle(&mut self, io: &mut [IoFrame<'_>]) {
        for f in io {
            let (port, macs) = self.targets[self.next];
            self.next = (self.next + 1) % self.targets.len();
            match f.data.get_mut(..12) {
                Some(eth) if f.len >= 14 => {
                    eth.copy_from_slice(&macs);
                    f.fate = Fate::Tx(port);
                }
                _ => f.fate = Fate::Drop,
            }
        }
    }
}

/// Runs the core on one batch of AF_XDP frames and writes back lengths and fates.
fn handle(fw: &mut Forwarder, snap: &Snapshot, io: &mut [IoFrame<'_>], now: Time) {
    let n = io.len().min(BATCH);
    let mut verdicts = [Verdict::Pass; BATCH];
    let mut lens = [0usize; BATCH];
    {
        let mut it = io.iter_mut();
        let mut frames: [Frame<'_>; BATCH] = std::array::from_fn(|_| match it.next() {
            Some(f) => Frame::new(&mut *f.data, 0, f.len, f.port),
            None => Frame::new(&mut [], 0, 0, 0),
        });
        fw.process(snap, &mut frames[..n], &mut verdicts[..n], now);
        for (f, len) in frames[..n].iter_mut().zip(lens.iter_mut()) {
            // AF_XDP transmits from the start of the frame's buffer.
            f.move_to_start();
            *len = f.len();
        }
    }
    for (f, (v, len)) in io.iter_mut().zip(verdicts.iter().zip(lens)) {
        f.len = len;
        f.fate = match *v {
            Verdict::Tx { port } => Fate::Tx(port),
            Verdict::Pass => Fate::Pass,
            Verdict::Drop(_) => Fate::Drop,
            Verdict::Wait => Fate::Wait,
        };
    }
}

impl Worker {
    /// Pins the thread and takes the plan's scheduling policy.
    fn place(&self) {
        if !core_affinity::set_for_current(core_affinity::CoreId { id: self.core }) {
            tracing::warn!(
                worker = self.index,
                core = self.core,
                "could not pin the worker to its core"
            );
        }
        if let Some(p) = self.polling.policy {
            match xvs_io::sched::set_policy(0, p) {
                Ok(()) => tracing::debug!(worker = self.index, policy = %p, "worker scheduled"),
                Err(e) => tracing::error!(worker = self.index, policy = %p, error = %e,
                    "cannot schedule the worker above the NAPI threads (CAP_SYS_NICE?): \
                     receive work may starve it under load"),
            }
        }
    }

    /// The worker loop; returns when `stop` is set.
    pub fn run(mut self) {
        self.place();
        tracing::debug!(worker = self.index, "worker running");
        let mut idle: u32 = 0;
        let mut sleep_ms: i32 = 1;
        let mut last_tick = coarse_ns();
        let mut generation = 0;
        let mut wait_dropped = 0;
        let counters = self.io.counters();
        while !self.stop.load(Relaxed) {
            let snap = self.snapshot.load();
            let clock = coarse_ns();
            let now = Time::from_millis(clock.saturating_sub(self.origin_ns) / 1_000_000);
            let fw = &mut self.fw;
            // Frames waiting for a next hop get another chance with every new network state.
            if snap.generation != generation {
                generation = snap.generation;
                if self.io.has_waiting() {
                    self.io
                        .offer_waiting(&mut |frames| handle(fw, &snap, frames, now));
                }
            }
            let got = match &mut self.forward_only {
                Some(f) => self.io.poll_once(&mut |frames| f.handle(frames)),
                None => self
                    .io
                    .poll_once(&mut |frames| handle(fw, &snap, frames, now)),
            };
            drop(snap);
            // Frames that waited in vain are the forwarder's drops for want of a neighbour.
            let gave_up = counters.wait_dropped.load(Relaxed);
            if gave_up != wait_dropped {
                self.fw.count_drops(
                    xvs_core::DropReason::UnknownNeighbour,
                    gave_up - wait_dropped,
                );
                wait_dropped = gave_up;
            }
            let tx = &self.resolve;
            self.fw.take_unresolved(|port, ip| {
                let _ = tx.try_send((port, ip));
            });
            if clock.wrapping_sub(last_tick) >= 1_000_000_000 {
                last_tick = clock;
                self.io.tick();
                self.links.serve(self.index, &mut self.io);
            }
            if got > 0 {
                idle = 0;
                sleep_ms = 1;
                continue;
            }
            self.links.serve(self.index, &mut self.io);
            idle = idle.saturating_add(1);
            match self.polling.idle {
                Idle::Spin => {
                    std::hint::spin_loop();
                    if idle % 4096 == 0 && self.io.tx_in_flight() {
                        self.io.kick_tx();
                    }
                }
                Idle::Block => {
                    if self.io.tx_in_flight() {
                        self.io.kick_tx();
                    }
                    // Until the kernel has received something: the NAPI threads below run
                    // meanwhile, and the end of their poll wakes this one.
                    if let Err(e) = self.io.wait(10) {
                        tracing::warn!(worker = self.index, error = %e, "poll failed");
                    }
                }
                Idle::Sleep(d) => {
                    if self.io.tx_in_flight() {
                        self.io.kick_tx();
                    }
                    if idle < SLEEPS_BEFORE_BLOCKING {
                        std::thread::sleep(d);
                    } else if let Err(e) = self.io.wait(10) {
                        tracing::warn!(worker = self.index, error = %e, "poll failed");
                    }
                }
                Idle::Adaptive if idle < 64 => std::hint::spin_loop(),
                Idle::Adaptive => {
                    if self.io.tx_in_flight() {
                        self.io.kick_tx();
                        std::thread::sleep(Duration::from_micros(50));
                    } else if let Err(e) = self.io.wait(sleep_ms) {
                        tracing::warn!(worker = self.index, error = %e, "poll failed");
                    }
                    sleep_ms = (sleep_ms * 2).min(10);
                }
            }
        }
        tracing::debug!(worker = self.index, account = ?self.io.account(), "worker stopped");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xvs_io::netlink::Link;

    fn link(name: &str, last: u8) -> Link {
        Link {
            index: u32::from(last),
            name: name.into(),
            mac: vec![2, 0, 0, 0, 0, last],
            mtu: 1500,
            up: true,
            carrier: true,
            xdp_prog: 0,
        }
    }

    #[test]
    fn forward_only_rewrites_macs_and_takes_targets_in_turn() {
        let ports = ["d0".to_string(), "d1".into(), "d2".into()];
        let links = [link("d0", 0xd0), link("d1", 0xd1), link("d2", 0xd2)];
        let to = [
            ("d1".to_string(), [2, 0, 0, 0, 0, 0x11]),
            ("d2".to_string(), [2, 0, 0, 0, 0, 0x12]),
        ];
        let mut f = ForwardOnly::new(&ports, &links, &to).unwrap();
        let mut bufs = [[0xeeu8; 64], [0xeeu8; 64], [0xeeu8; 64], [0xeeu8; 64]];
        let mut frames: Vec<IoFrame<'_>> = bufs
            .iter_mut()
            .enumerate()
            .map(|(i, b)| IoFrame {
                data: b,
                len: if i == 3 { 10 } else { 60 },
                port: 0,
                fate: Fate::Drop,
            })
            .collect();
        f.handle(&mut frames);
        let fates: Vec<Fate> = frames.iter().map(|f| f.fate).collect();
        assert_eq!(fates, [Fate::Tx(1), Fate::Tx(2), Fate::Tx(1), Fate::Drop]);
        assert_eq!(
            frames[0].data[..12],
            [2, 0, 0, 0, 0, 0x11, 2, 0, 0, 0, 0, 0xd1]
        );
        assert_eq!(
            frames[1].data[..12],
            [2, 0, 0, 0, 0, 0x12, 2, 0, 0, 0, 0, 0xd2]
        );
        assert_eq!(frames[0].data[12], 0xee, "nothing past the MACs changes");
        assert!(ForwardOnly::new(&ports, &links, &[("x9".into(), [0; 6])]).is_err());
    }
}
