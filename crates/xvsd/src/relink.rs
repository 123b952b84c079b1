//! Served interfaces that leave the kernel and come back.
//!
//! An interface deleted under a running xvsd (`ip link del`, its namespace gone) takes its
//! XDP program with it; its AF_XDP sockets are left bound to nothing. The control thread sees
//! it in the network view: it logs it once, lets the steering program go and tells every
//! worker to close its socket on that port (the worker takes back the frames the socket's
//! rings held). When an interface of the same name appears again, a new steering program is
//! attached to it with the current steering sets, every worker opens a socket on it again (on
//! its own UMEM, so the worker's other ports run on undisturbed), the control thread registers
//! each socket with the program, and the interface gets the receive settings it had
//! ([`polling::reapply`]). Port ids never change, so the forwarding state needs nothing but
//! the new interface index.
//!
//! The workers hear of it through a command channel they read when idle and once a second;
//! they answer on a reply channel the control loop reads every tick.

use crate::director::kernel::Kernel;
use crate::netsync::Ports;
use crate::polling::restore::Restorer;
use crate::polling::{self, InterfacePolling, Mechanism, PollSettings};
use crossbeam_channel::{Receiver, Sender, TryRecvError};
use std::time::{Duration, Instant};
use xvs_io::gate::QueueGate;
use xvs_io::steering::SteeringSets;
use xvs_io::xsk::{BusyPoll, PortInfo, WorkerIo};

/// How often an interface that is back but could not be attached is tried again.
const RETRY_EVERY: Duration = Duration::from_secs(5);

/// What the control thread asks of a worker.
#[derive(Debug)]
pub enum PortCommand {
    /// Close the socket of this port (its interface is gone).
    Detach {
        /// The port.
        port: usize,
    },
    /// Open the socket of this port again, on the worker's own queue of `ifname`.
    Attach {
        /// The port.
        port: usize,
        /// Its interface's name.
        ifname: String,
        /// Where the worker says it is behind (the new program's gate for its queue).
        gate: Option<QueueGate>,
        /// prefer-busy's socket options, if the interface polls that way.
        busy_poll: Option<BusyPoll>,
        /// Which re-attachment this is (replies to an older one are ignored).
        round: u64,
    },
}

/// A worker's answer to [`PortCommand::Attach`].
#[derive(Debug)]
pub struct PortReply {
    /// The worker (its queue).
    pub worker: usize,
    /// The port.
    pub port: usize,
    /// The re-attachment it answers.
    pub round: u64,
    /// The sockets opened, by port (the new one; all of the worker's if its UMEM had to be
    /// made again), or why there is none.
    pub result: Result<Vec<(usize, PortInfo)>, String>,
}

/// A worker's end of the channels.
pub struct WorkerEnd {
    commands: Receiver<PortCommand>,
    replies: Sender<PortReply>,
}

impl WorkerEnd {
    /// Carries out what the control thread asked of worker `worker` (serving queue `worker`
    /// of every port). Cheap when nothing was asked: one channel poll.
    pub fn serve(&self, worker: usize, io: &mut WorkerIo) {
        loop {
            let cmd = match self.commands.try_recv() {
                Ok(c) => c,
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => return,
            };
            match cmd {
                PortCommand::Detach { port } => {
                    let back = io.detach(port);
                    tracing::info!(
                        worker,
                        port,
                        frames_back = back,
                        "socket closed: its interface is gone"
                    );
                }
                PortCommand::Attach {
                    port,
                    ifname,
                    gate,
                    busy_poll,
                    round,
                } => {
                    let result = io
                        .attach(port, &ifname, worker as u32, gate)
                        .map_err(|e| e.to_string())
                        .and_then(|opened| match busy_poll {
                            Some(bp) => io
                                .enable_busy_poll(port, bp)
                                .map(|()| opened)
                                .map_err(|e| format!("busy polling on {ifname}: {e}")),
                            None => Ok(opened),
                        });
                    if let Ok(opened) = &result
                        && opened.len() > 1
                    {
                        tracing::info!(
                            worker,
                            sockets = opened.len(),
                            "the UMEM's first socket was on the interface that left: every socket of the worker opened again"
                        );
                    }
                    let _ = self.replies.send(PortReply {
                        worker,
                        port,
                        round,
                        result,
                    });
                }
            }
        }
    }
}

/// Where one served port stands.
#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// Served.
    Up,
    /// Its interface is gone; `tried` is the index of a returned interface that could not be
    /// attached, and when.
    Gone { tried: Option<(u32, Instant)> },
    /// A new program is attached; the workers are opening their sockets.
    Attaching {
        round: u64,
        waiting: usize,
        opened: usize,
    },
}

/// The control thread's end: the ports' states, the workers' channels and what re-applying
/// the receive settings needs.
pub struct Relink {
    states: Vec<State>,
    workers: Vec<Sender<PortCommand>>,
    replies: Receiver<PortReply>,
    round: u64,
    poll: PollSettings,
    cores: Vec<usize>,
    restorer: Option<Restorer>,
}

/// The control thread's end and one end per worker (`cores[w]` is worker w's core).
pub fn channels(
    ports: usize,
    cores: &[usize],
    poll: PollSettings,
    restorer: Restorer,
) -> (Relink, Vec<WorkerEnd>) {
    let (reply_tx, replies) = crossbeam_channel::unbounded();
    let mut workers = Vec::new();
    let mut ends = Vec::new();
    for _ in cores {
        let (tx, rx) = crossbeam_channel::unbounded();
        workers.push(tx);
        ends.push(WorkerEnd {
            commands: rx,
            replies: reply_tx.clone(),
        });
    }
    let r = Relink {
        states: vec![State::Up; ports],
        workers,
        replies,
        round: 0,
        poll,
        cores: cores.to_vec(),
        restorer: Some(restorer),
    };
    (r, ends)
}

impl Relink {
    /// No workers and no receive settings (tests of the director).
    #[cfg(test)]
    pub fn without_workers(ports: usize) -> Relink {
        let (_, replies) = crossbeam_channel::unbounded();
        Relink {
            states: vec![State::Up; ports],
            workers: Vec::new(),
            replies,
            round: 0,
            poll: PollSettings::default(),
            cores: Vec::new(),
            restorer: None,
        }
    }

    /// True while port `i` is not served (its interface gone, or its sockets being opened).
    pub fn gone(&self, i: usize) -> bool {
        self.states.get(i).is_some_and(|s| *s != State::Up)
    }

    /// Puts back the receive settings changed at start and since (at exit, after the
    /// workers stopped and before the XDP programs go).
    pub fn restore_polling(&mut self) {
        if let Some(r) = &mut self.restorer {
            r.restore();
        }
    }

    fn tell_workers(&self, cmd: impl Fn() -> PortCommand) {
        for w in &self.workers {
            let _ = w.send(cmd());
        }
    }

    /// Follows the served interfaces in the network view the kernel last read: a port whose
    /// interface left is let go, one whose interface is back (by name) is attached again.
    /// True if a port's interface index changed (the forwarding view must be rebuilt).
    pub fn follow(
        &mut self,
        kernel: &mut dyn Kernel,
        ports: &mut Ports,
        sets: &SteeringSets,
        polling: &[InterfacePolling],
    ) -> bool {
        let mut moved = false;
        for i in 0..ports.names.len() {
            let name = ports.names[i].clone();
            let ifindex = ports.ifindex[i];
            let here = kernel.net().links.iter().any(|l| l.index == ifindex);
            if !here && matches!(self.states[i], State::Up | State::Attaching { .. }) {
                tracing::error!(interface = %name, ifindex,
                    "interface {name} is gone: its sockets are closed; xvsd attaches it again when it returns");
                kernel.detach_port(i, ifindex);
                self.tell_workers(|| PortCommand::Detach { port: i });
                self.states[i] = State::Gone { tried: None };
            }
            let State::Gone { tried } = self.states[i] else {
                continue;
            };
            let Some(back) = kernel
                .net()
                .links
                .iter()
                .find(|l| l.name == name)
                .map(|l| l.index)
            else {
                continue;
            };
            if let Some((ix, at)) = tried
                && ix == back
                && at.elapsed() < RETRY_EVERY
            {
                continue;
            }
            match kernel.attach_port(i, &name, back, sets) {
                Ok(()) => {
                    ports.ifindex[i] = back;
                    moved = true;
                    self.round += 1;
                    let round = self.round;
                    let busy_poll = polling
                        .get(i)
                        .filter(|p| matches!(p.mechanism, Mechanism::PreferBusy { .. }))
                        .map(|_| self.poll.busy_poll());
                    for (w, tx) in self.workers.iter().enumerate() {
                        let _ = tx.send(PortCommand::Attach {
                            port: i,
                            ifname: name.clone(),
                            gate: kernel.gate(i, w as u32),
                            busy_poll,
                            round,
                        });
                    }
                    tracing::info!(interface = %name, ifindex = back,
                        "interface {name} is back: steering program attached, opening sockets");
                    self.states[i] = State::Attaching {
                        round,
                        waiting: self.workers.len(),
                        opened: 0,
                    };
                }
                Err(e) => {
                    if tried.is_none_or(|(ix, _)| ix != back) {
                        tracing::error!(interface = %name, ifindex = back, error = %e,
                            "interface {name} is back but cannot be attached; trying again every {} s",
                            RETRY_EVERY.as_secs());
                    }
                    self.states[i] = State::Gone {
                        tried: Some((back, Instant::now())),
                    };
                }
            }
        }
        moved
    }

    /// Takes the workers' answers: registers each new socket with its port's program; once
    /// every worker answered, the interface gets its receive settings again and is served.
    pub fn collect(
        &mut self,
        kernel: &mut dyn Kernel,
        ports: &Ports,
        polling: &mut [InterfacePolling],
    ) {
        while let Ok(r) = self.replies.try_recv() {
            let State::Attaching {
                round,
                waiting,
                opened,
            } = &mut self.states[r.port]
            else {
                continue;
            };
            if r.round != *round {
                continue;
            }
            *waiting = waiting.saturating_sub(1);
            let name = &ports.names[r.port];
            match r.result {
                Ok(sockets) => {
                    for (port, info) in sockets {
                        match kernel.register_socket(port, info.queue, info.fd) {
                            Ok(()) => *opened += usize::from(port == r.port),
                            Err(e) => {
                                tracing::error!(interface = %info.ifname, queue = info.queue, error = %e,
                                "cannot register the new socket: that queue carries no traffic");
                            }
                        }
                    }
                }
                Err(e) => tracing::error!(interface = %name, worker = r.worker, error = %e,
                    "cannot open a socket on the interface again: that queue carries no traffic"),
            }
        }
        // Ports whose workers all answered are served again, with their receive settings.
        for i in 0..self.states.len() {
            let State::Attaching {
                waiting: 0, opened, ..
            } = self.states[i]
            else {
                continue;
            };
            let name = &ports.names[i];
            if let (Some(p), Some(restorer)) = (polling.get_mut(i), self.restorer.as_mut()) {
                match polling::reapply(&self.poll, p, ports.ifindex[i], &self.cores, restorer) {
                    Ok(np) => *p = np,
                    Err(e) => tracing::warn!(interface = %name, error = %e,
                        "receive settings not applied again: the kernel's own placement is used"),
                }
            }
            tracing::warn!(interface = %name, sockets = opened, workers = self.workers.len(),
                "interface {name} is served again");
            self.states[i] = State::Up;
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::director::testing;

    #[test]
    fn an_interface_that_leaves_is_let_go_and_attached_again_when_it_returns() {
        let (mut d, k) = testing::director_serving();
        d.refresh_network();
        assert!(!d.port_gone(0));
        assert!(k.detached().is_empty());

        // ext0 deleted: no link with its index any more.
        let mut gone = testing::view();
        gone.links.clear();
        gone.addrs.clear();
        gone.routes.clear();
        k.set_view(gone.clone());
        d.refresh_network();
        assert!(d.port_gone(0));
        assert_eq!(k.detached(), vec![(0, testing::IFINDEX)]);
        // Still gone: not let go twice, nothing attached.
        k.set_view(gone);
        d.refresh_network();
        assert_eq!(k.detached().len(), 1);
        assert!(k.attached().is_empty());

        // ext0 created again: a new index, same name.
        let mut back = testing::view();
        for l in &mut back.links {
            l.index = 42;
        }
        for a in &mut back.addrs {
            a.ifindex = 42;
        }
        for r in &mut back.routes {
            r.oif = 42;
        }
        k.set_view(back);
        d.refresh_network();
        let attached = k.attached();
        assert_eq!(attached.len(), 1);
        let (port, name, ifindex, sets) = &attached[0];
        assert_eq!((*port, name.as_str(), *ifindex), (0, "ext0", 42));
        assert_eq!(
            sets.vips.len(),
            2,
            "the new program steers the service and its ICMP"
        );
        assert!(!d.port_gone(0), "no workers to wait for: served again");
        assert_eq!(d.shared.ports.ifindex, vec![42]);
        // The forwarding view follows the new index: the real server is on-link again.
        let snap = d.shared.snapshot.load();
        assert_eq!(snap.net.ports[0].name, "ext0");
        assert!(
            !snap.net.ports[0].addrs.is_empty(),
            "the port's addresses are read from the new interface"
        );
    }
}
