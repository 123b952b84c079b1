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
    /// Take this gate for the port (its interface got a new steering program) and say what
    /// the port's socket is, to register it.
    Rebind {
        /// The port.
        port: usize,
        /// The new program's gate for the worker's queue.
        gate: Option<QueueGate>,
        /// Which re-attachment this is.
        round: u64,
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
                PortCommand::Rebind { port, gate, round } => {
                    let result = io
                        .rebind(port, gate)
                        .map(|info| vec![(port, info)])
                        .map_err(|e| e.to_string());
                    let _ = self.replies.send(PortReply {
                        worker,
                        port,
                        round,
                        result,
                    });
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
    /// Its interface is here but our steering program on it is not (someone removed it);
    /// `tried` as for `Gone`.
    Lost { tried: Option<(u32, Instant)> },
    /// A new program is attached; the workers are opening their sockets (`reopened`) or
    /// telling what they are, to register them with it.
    Attaching {
        round: u64,
        waiting: usize,
        opened: usize,
        reopened: bool,
    },
}

/// The control thread's end: the ports' states, the workers' channels and what re-applying
/// the receive settings needs.
pub struct Relink {
    states: Vec<State>,
    /// Per port: (administratively up, carrier) as last seen.
    seen: Vec<Option<(bool, bool)>>,
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
        seen: vec![None; ports],
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
            seen: vec![None; ports],
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
    /// interface left is let go, one whose interface is back (by name) is attached again, one
    /// whose steering program someone else removed gets it again, and an interface going down
    /// or losing its carrier (and coming back) is logged once each way. True if a port's
    /// interface index changed (the forwarding view must be rebuilt).
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
            let link = kernel
                .net()
                .links
                .iter()
                .find(|l| l.index == ifindex)
                .map(|l| (l.up, l.carrier, l.xdp_prog));
            if link.is_none() && matches!(self.states[i], State::Up | State::Attaching { .. }) {
                tracing::error!(interface = %name, ifindex,
                    "interface {name} is gone: its sockets are closed; xvsd attaches it again when it returns");
                kernel.detach_port(i, ifindex);
                self.tell_workers(|| PortCommand::Detach { port: i });
                self.states[i] = State::Gone { tried: None };
                self.seen[i] = None;
            }
            if let Some((up, carrier, prog)) = link {
                self.note_link_state(i, &name, up, carrier);
                let ours = kernel.program_id(i);
                if self.states[i] == State::Up && ours.is_some_and(|id| id != prog) {
                    tracing::error!(interface = %name, attached = prog, ours = ?ours,
                        "the steering program on {name} was removed by someone else: attaching it again");
                    self.states[i] = State::Lost { tried: None };
                }
            }
            let (back, tried, lost) = match self.states[i] {
                State::Gone { tried } => {
                    let back = kernel
                        .net()
                        .links
                        .iter()
                        .find(|l| l.name == name)
                        .map(|l| l.index);
                    (back, tried, false)
                }
                State::Lost { tried } => (Some(ifindex), tried, true),
                _ => continue,
            };
            let Some(back) = back else { continue };
            if let Some((ix, at)) = tried
                && ix == back
                && at.elapsed() < RETRY_EVERY
            {
                continue;
            }
            match kernel.attach_port(i, &name, back, sets) {
                Ok(()) => {
                    if back != ifindex {
                        ports.ifindex[i] = back;
                        moved = true;
                    }
                    self.round += 1;
                    let round = self.round;
                    let busy_poll = polling
                        .get(i)
                        .filter(|p| matches!(p.mechanism, Mechanism::PreferBusy { .. }))
                        .map(|_| self.poll.busy_poll());
                    for (w, tx) in self.workers.iter().enumerate() {
                        let gate = kernel.gate(i, w as u32);
                        let _ = tx.send(if lost {
                            PortCommand::Rebind {
                                port: i,
                                gate,
                                round,
                            }
                        } else {
                            PortCommand::Attach {
                                port: i,
                                ifname: name.clone(),
                                gate,
                                busy_poll,
                                round,
                            }
                        });
                    }
                    if lost {
                        tracing::info!(interface = %name, "steering program attached again; registering the sockets");
                    } else {
                        tracing::info!(interface = %name, ifindex = back,
                            "interface {name} is back: steering program attached, opening sockets");
                    }
                    self.states[i] = State::Attaching {
                        round,
                        waiting: self.workers.len(),
                        opened: 0,
                        reopened: !lost,
                    };
                }
                Err(e) => {
                    if tried.is_none_or(|(ix, _)| ix != back) {
                        tracing::error!(interface = %name, ifindex = back, error = %e,
                            "cannot attach the steering program to {name}; trying again every {} s",
                            RETRY_EVERY.as_secs());
                    }
                    let tried = Some((back, Instant::now()));
                    self.states[i] = if lost {
                        State::Lost { tried }
                    } else {
                        State::Gone { tried }
                    };
                }
            }
        }
        moved
    }

    /// Logs once each way an interface going down or up, or losing or finding its carrier.
    fn note_link_state(&mut self, i: usize, name: &str, up: bool, carrier: bool) {
        let before = self.seen[i].replace((up, carrier));
        let Some((was_up, had_carrier)) = before else {
            if !up || !carrier {
                tracing::warn!(interface = %name, up, carrier,
                    "interface {name} is {}: nothing arrives on it", if up { "without carrier" } else { "down" });
            }
            return;
        };
        if was_up != up {
            if up {
                tracing::info!(interface = %name, "interface {name} is up");
            } else {
                tracing::warn!(interface = %name, "interface {name} is down: nothing arrives on it and nothing can leave by it");
            }
        }
        if up && had_carrier != carrier {
            if carrier {
                tracing::info!(interface = %name, "interface {name} has its carrier back");
            } else {
                tracing::warn!(interface = %name, "interface {name} lost its carrier: frames queued to leave by it wait or are dropped");
            }
        }
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
                ..
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
                waiting: 0,
                opened,
                reopened,
                ..
            } = self.states[i]
            else {
                continue;
            };
            let name = &ports.names[i];
            if !reopened {
                tracing::warn!(interface = %name, sockets = opened, workers = self.workers.len(),
                    "steering program on {name} restored");
                self.states[i] = State::Up;
                continue;
            }
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
