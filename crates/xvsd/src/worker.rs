//! A worker: one thread, pinned to a core, serving one queue of every interface through
//! AF_XDP and running the forwarding core on each batch.

use arc_swap::ArcSwap;
use crossbeam_channel::Sender;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};
use xvs_core::{Forwarder, Frame, PortId, Snapshot, Time, Verdict};
use xvs_io::xsk::{BATCH, Fate, IoFrame, WorkerIo};

/// How a worker waits when idle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollMode {
    /// Spin.
    Busy,
    /// Spin briefly, then sleep in poll(2) with a timeout growing to 10 ms.
    Adaptive,
}

/// Everything a worker thread owns.
pub struct Worker {
    /// Its index (counter slot).
    pub index: usize,
    /// Core to pin to.
    pub core: Option<usize>,
    /// Its sockets.
    pub io: WorkerIo,
    /// Its forwarding state.
    pub fw: Forwarder,
    /// Where snapshots are published.
    pub snapshot: Arc<ArcSwap<Snapshot>>,
    /// Set to stop.
    pub stop: Arc<AtomicBool>,
    /// Polling mode.
    pub mode: PollMode,
    /// Time origin shared with the control thread.
    pub clock: Instant,
    /// Next hops to resolve, to the control thread.
    pub resolve: Sender<(PortId, [u8; 16])>,
    /// Benchmark baseline mode (`--forward-only`): no forwarding core at all.
    pub forward_only: Option<ForwardOnly>,
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
        };
    }
}

impl Worker {
    /// The worker loop; returns when `stop` is set.
    pub fn run(mut self) {
        if let Some(core) = self.core {
            if !core_affinity::set_for_current(core_affinity::CoreId { id: core }) {
                tracing::warn!(
                    worker = self.index,
                    core,
                    "could not pin the worker to its core"
                );
            }
        }
        tracing::debug!(worker = self.index, "worker running");
        let mut idle: u32 = 0;
        let mut sleep_ms: i32 = 1;
        while !self.stop.load(Relaxed) {
            let snap = self.snapshot.load();
            let now = Time::from_millis(self.clock.elapsed().as_millis() as u64);
            let fw = &mut self.fw;
            let got = match &mut self.forward_only {
                Some(f) => self.io.poll_once(&mut |frames| f.handle(frames)),
                None => self
                    .io
                    .poll_once(&mut |frames| handle(fw, &snap, frames, now)),
            };
            drop(snap);
            let tx = &self.resolve;
            self.fw.take_unresolved(|port, ip| {
                let _ = tx.try_send((port, ip));
            });
            if got > 0 {
                idle = 0;
                sleep_ms = 1;
                continue;
            }
            idle = idle.saturating_add(1);
            match self.mode {
                PollMode::Busy => {
                    std::hint::spin_loop();
                    if idle % 4096 == 0 && self.io.tx_in_flight() {
                        self.io.kick_tx();
                    }
                }
                PollMode::Adaptive if idle < 64 => std::hint::spin_loop(),
                PollMode::Adaptive => {
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
