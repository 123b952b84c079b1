//! The VRRP runner: a thread with the instances (xvs-control's state machines), one raw socket
//! per (interface, family, multicast or unicast), the tracking scripts, the interfaces' states
//! (read from rtnetlink once a second) and the notify commands. It sleeps in poll(2) until a
//! packet or the next deadline, whichever comes first.

use super::scripts::{Notifier, Script};
use super::sync::SyncCounters;
use super::{HaEvent, HeldAddr};
use crossbeam_channel::Sender;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use xvs_control::config::ha::{SyncConfig, VrrpConfig, VrrpInstanceConfig};
use xvs_control::proto::VrrpStatus;
use xvs_control::vrrp::{self, Action, Instance, Received, Reject, State};
use xvs_io::netlink::{NetView, Netlink};
use xvs_io::vrrp_sock::{FrameSocket, VrrpSocket};
use xvs_wire::vrrp::{AUTH_NONE, AUTH_PASS, Advert, GROUP_V4, GROUP_V6};

/// The longest sleep (the stop flag is looked at this often).
const MAX_SLEEP: Duration = Duration::from_millis(100);
/// How long a new master waits for the control loop to have its addresses in place before
/// it announces them anyway.
const APPLY_WAIT: Duration = Duration::from_millis(500);

/// One instance with what the runner keeps beside it.
struct Member {
    inst: Instance,
    cfg: VrrpInstanceConfig,
    /// Index of its socket.
    sock: usize,
    /// Its sync group.
    group: Option<usize>,
    /// Its addresses with their interfaces and prefixes.
    addrs: Vec<HeldAddr>,
    /// Tracked things now failing (weight 0), by name (`if:NAME`, `script:NAME`).
    failing: HashMap<String, bool>,
}

struct Sock {
    ifname: String,
    ifindex: u32,
    v6: bool,
    unicast: bool,
    s: VrrpSocket,
}

/// The VRRP runner, running.
pub struct VrrpRunner {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
    status: Arc<Mutex<Vec<VrrpStatus>>>,
}

impl VrrpRunner {
    /// Starts the instances of `cfg` (none: no thread). `events` goes to the control loop.
    /// With `sync` following an instance, that instance does not preempt a live master before
    /// its backup daemon has received the table (`counters`).
    pub fn start(
        cfg: &VrrpConfig,
        sync: Option<&SyncConfig>,
        events: Sender<HaEvent>,
        counters: Arc<SyncCounters>,
    ) -> Result<Option<VrrpRunner>, String> {
        if cfg.instances.is_empty() {
            return Ok(None);
        }
        let mut nl = Netlink::open().map_err(|e| format!("VRRP: netlink: {e}"))?;
        let view = nl
            .view()
            .map_err(|e| format!("VRRP: cannot read the network: {e}"))?;
        let mut socks: Vec<Sock> = Vec::new();
        let mut members = Vec::new();
        for c in &cfg.instances {
            let p = vrrp::params::params(c)
                .map_err(|(f, m)| format!("vrrp instance {}: {f}: {m}", c.name))?;
            let v6 = p.vips[0].is_ipv6();
            let unicast = !p.unicast_peers.is_empty();
            let link = view
                .links
                .iter()
                .find(|l| l.name == c.interface)
                .ok_or_else(|| format!("vrrp instance {}: no interface {}", c.name, c.interface))?;
            let sock = match socks
                .iter()
                .position(|s| s.ifname == c.interface && s.v6 == v6 && s.unicast == unicast)
            {
                Some(i) => i,
                None => {
                    let s = VrrpSocket::open(&c.interface, link.index, v6, unicast)
                        .map_err(|e| format!("VRRP socket on {}: {e}", c.interface))?;
                    socks.push(Sock {
                        ifname: c.interface.clone(),
                        ifindex: link.index,
                        v6,
                        unicast,
                        s,
                    });
                    socks.len() - 1
                }
            };
            let addrs = c
                .virtual_ipaddress
                .iter()
                .map(|v| HeldAddr {
                    dev: v.dev.clone().unwrap_or_else(|| c.interface.clone()),
                    addr: v.addr,
                    prefix: v.prefix.unwrap_or(if v.addr.is_ipv4() { 32 } else { 128 }),
                })
                .collect();
            let group = cfg
                .sync_groups
                .iter()
                .position(|g| g.group.contains(&c.name));
            members.push(Member {
                inst: Instance::new(p),
                cfg: c.clone(),
                sock,
                group,
                addrs,
                failing: HashMap::new(),
            });
        }
        let now = Instant::now();
        let scripts = cfg
            .scripts
            .iter()
            .map(|s| Script::new(s.clone(), now))
            .collect();
        let stop = Arc::new(AtomicBool::new(false));
        let status = Arc::new(Mutex::new(Vec::new()));
        let mut r = Runner {
            members,
            socks,
            scripts,
            groups: cfg.sync_groups.clone(),
            group_state: vec![State::Init; cfg.sync_groups.len()],
            events,
            nl,
            view,
            frames: HashMap::new(),
            notifier: Notifier::default(),
            origin: now,
            last_view: now,
            status: Arc::clone(&status),
            unknown_vrid: 0,
            hold: sync.and_then(|s| {
                s.instance
                    .clone()
                    .map(|i| (i, counters, s.refresh.unwrap_or(10)))
            }),
        };
        let stop2 = Arc::clone(&stop);
        let handle = std::thread::Builder::new()
            .name("xvs-vrrp".into())
            .spawn(move || r.run(&stop2))
            .map_err(|e| format!("cannot start the VRRP thread: {e}"))?;
        Ok(Some(VrrpRunner {
            stop,
            handle: Some(handle),
            status,
        }))
    }

    /// The instances as last seen.
    pub fn status(&self) -> Vec<VrrpStatus> {
        self.status.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Stops: masters send their priority-0 advert, every instance runs its STOP notifies.
    pub fn stop(mut self) {
        self.stop.store(true, Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

struct Runner {
    members: Vec<Member>,
    socks: Vec<Sock>,
    scripts: Vec<Script>,
    groups: Vec<xvs_control::config::ha::SyncGroupConfig>,
    group_state: Vec<State>,
    events: Sender<HaEvent>,
    nl: Netlink,
    view: NetView,
    frames: HashMap<u32, FrameSocket>,
    notifier: Notifier,
    origin: Instant,
    last_view: Instant,
    status: Arc<Mutex<Vec<VrrpStatus>>>,
    unknown_vrid: u64,
    /// The instance the sync daemons follow, their counters and refresh period: it does not
    /// preempt before the table has arrived.
    hold: Option<(String, Arc<SyncCounters>, u32)>,
}

impl Runner {
    fn us(&self, t: Instant) -> u64 {
        t.saturating_duration_since(self.origin).as_micros() as u64
    }

    fn run(&mut self, stop: &AtomicBool) {
        let now = Instant::now();
        self.refresh_view(now, true);
        for i in 0..self.members.len() {
            let t = self.us(now);
            let out = self.members[i].inst.start(t);
            self.act(i, out);
        }
        let mut buf = vec![0u8; 65536];
        while !stop.load(Relaxed) {
            let now = Instant::now();
            let mut next = now + MAX_SLEEP;
            for m in &self.members {
                if let Some(d) = m.inst.next_deadline() {
                    let at = self.origin + Duration::from_micros(d);
                    next = next.min(at.max(now));
                }
            }
            for s in &self.scripts {
                next = next.min(s.deadline().max(now));
            }
            let wait = next.saturating_duration_since(now);
            let fds: Vec<i32> = self.socks.iter().map(|s| s.s.fd()).collect();
            let _ = xvs_io::sched::wait_readable(&fds, wait.max(Duration::from_millis(1)));
            for si in 0..self.socks.len() {
                loop {
                    let rx = match self.socks[si].s.recv(&mut buf) {
                        Ok(Some(rx)) => rx,
                        Ok(None) => break,
                        Err(e) => {
                            tracing::debug!(error = %e, "VRRP receive");
                            break;
                        }
                    };
                    let now = self.us(Instant::now());
                    let pkt = &buf[rx.start..rx.start + rx.len];
                    self.dispatch(si, now, rx.src, rx.dst, rx.ttl, pkt);
                }
            }
            let now = Instant::now();
            self.refresh_view(now, false);
            self.poll_scripts(now);
            let t = self.us(now);
            self.hold_preemption(t);
            for i in 0..self.members.len() {
                let out = self.members[i].inst.tick(t);
                self.act(i, out);
            }
            self.notifier.reap();
            self.publish_status(Instant::now());
        }
        let t = self.us(Instant::now());
        for i in 0..self.members.len() {
            let out = self.members[i].inst.stop(t);
            self.act(i, out);
        }
        for g in 0..self.groups.len() {
            self.group_notify(g, State::Stop);
        }
        self.notifier.finish(Duration::from_secs(1));
        self.publish_status(Instant::now());
    }

    fn dispatch(&mut self, si: usize, now: u64, src: IpAddr, dst: IpAddr, ttl: u8, pkt: &[u8]) {
        let vrid = pkt.get(1).copied();
        let candidates: Vec<usize> = self
            .members
            .iter()
            .enumerate()
            .filter(|(_, m)| m.sock == si && Some(m.inst.p.vrid) == vrid)
            .map(|(i, _)| i)
            .collect();
        // Several unicast instances on one VRID: the one whose peer sent it.
        let target = match candidates.len() {
            0 => None,
            1 => Some(candidates[0]),
            _ => candidates
                .iter()
                .copied()
                .find(|&i| self.members[i].inst.p.unicast_peers.contains(&src))
                .or(Some(candidates[0])),
        };
        let Some(i) = target else {
            self.unknown_vrid += 1;
            return;
        };
        let out = self.members[i].inst.on_packet(
            now,
            &Received {
                src,
                dst,
                ttl,
                packet: pkt,
            },
        );
        self.act(i, out);
    }

    /// A director coming back (higher priority, preempting) does not take mastership before
    /// its sync backup daemon has had the table: until then its takeover waits (a master
    /// that really died is not waited for: it sends nothing to preempt).
    fn hold_preemption(&mut self, t: u64) {
        let Some((name, counters, refresh)) = &self.hold else {
            return;
        };
        if counters.synced(*refresh) {
            return;
        }
        for m in &mut self.members {
            if &m.cfg.name == name && m.inst.preempting(t) {
                m.inst.hold_takeover(t + 500_000);
            }
        }
    }

    /// Carries out what instance `i` asked for.
    fn act(&mut self, i: usize, out: Vec<Action>) {
        for a in out {
            match a {
                Action::Advert { priority } => self.send_advert(i, priority),
                Action::Enter { from, to } => self.entered(i, from, to),
                Action::Garp { rounds } => self.announce(i, rounds),
            }
        }
    }

    /// The instance's own address: `unicast_src_ip`, else the interface's first address of
    /// the family that is not one of the VRRP addresses (IPv6: its link-local one).
    fn own_addr(&self, m: &Member) -> Option<IpAddr> {
        if let Some(a) = m.cfg.unicast_src_ip {
            return Some(a);
        }
        let sock = &self.socks[m.sock];
        let vips: Vec<IpAddr> = self
            .members
            .iter()
            .flat_map(|m| m.inst.p.vips.iter().copied())
            .collect();
        self.view
            .addrs
            .iter()
            .filter(|a| a.ifindex == sock.ifindex && a.addr.is_ipv6() == sock.v6)
            .map(|a| a.addr)
            .find(|a| match a {
                IpAddr::V4(_) => !vips.contains(a),
                IpAddr::V6(v) => v.segments()[0] & 0xffc0 == 0xfe80,
            })
    }

    fn send_advert(&mut self, i: usize, priority: u8) {
        let m = &self.members[i];
        let Some(src) = self.own_addr(m) else {
            tracing::warn!(instance = %m.cfg.name, "no address of its family on {}: advert not sent", m.cfg.interface);
            return;
        };
        let p = &m.inst.p;
        let vips: Vec<Vec<u8>> = p
            .vips
            .iter()
            .map(|a| match a {
                IpAddr::V4(v) => v.octets().to_vec(),
                IpAddr::V6(v) => v.octets().to_vec(),
            })
            .collect();
        let refs: Vec<&[u8]> = vips.iter().map(Vec::as_slice).collect();
        let advert = Advert {
            version: p.version,
            vrid: p.vrid,
            priority,
            interval_cs: (p.adver_int / 10_000).min(4095) as u16,
            auth_type: if p.password.is_some() {
                AUTH_PASS
            } else {
                AUTH_NONE
            },
            password: p.password.as_ref().map_or(&[][..], |pw| &pw[..]),
            addrs: &refs,
        };
        let dsts: Vec<IpAddr> = if p.unicast_peers.is_empty() {
            vec![if src.is_ipv4() {
                IpAddr::from(GROUP_V4)
            } else {
                IpAddr::from(GROUP_V6)
            }]
        } else {
            p.unicast_peers.clone()
        };
        let octets = |a: &IpAddr| match a {
            IpAddr::V4(v) => v.octets().to_vec(),
            IpAddr::V6(v) => v.octets().to_vec(),
        };
        let mut buf = [0u8; 2048];
        let sock = m.sock;
        for dst in dsts {
            let Some(n) = advert.emit(&mut buf, &octets(&src), &octets(&dst)) else {
                continue;
            };
            if let Err(e) = self.socks[sock].s.send(src, dst, 255, &buf[..n]) {
                tracing::debug!(error = %e, %dst, "VRRP advert not sent");
            }
        }
    }

    /// Gratuitous ARPs / unsolicited NAs for the instance's addresses, `rounds` times.
    fn announce(&mut self, i: usize, rounds: u32) {
        let addrs = self.members[i].addrs.clone();
        for _ in 0..rounds {
            for a in &addrs {
                let Some(link) = self.view.links.iter().find(|l| l.name == a.dev) else {
                    continue;
                };
                let (ifindex, Ok(mac)) = (link.index, <[u8; 6]>::try_from(link.mac.as_slice()))
                else {
                    continue;
                };
                let sock = match self.frames.entry(ifindex) {
                    std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
                    std::collections::hash_map::Entry::Vacant(v) => {
                        match FrameSocket::open(ifindex) {
                            Ok(s) => v.insert(s),
                            Err(e) => {
                                tracing::warn!(error = %e, "cannot open a packet socket for gratuitous ARPs");
                                return;
                            }
                        }
                    }
                };
                let r = match a.addr {
                    IpAddr::V4(v) => sock.send(&xvs_wire::announce::garp(mac, v.octets())),
                    IpAddr::V6(v) => {
                        sock.send(&xvs_wire::announce::unsolicited_na(mac, v.octets(), false))
                    }
                };
                if let Err(e) = r {
                    tracing::debug!(error = %e, addr = %a.addr, "announcement not sent");
                }
            }
        }
    }

    /// An instance entered a state: the dataplane follows (master: addresses and steering,
    /// waited for), the transition is logged once, the notify commands run, the group follows.
    fn entered(&mut self, i: usize, from: State, to: State) {
        let name = self.members[i].cfg.name.clone();
        let prio = self.members[i].inst.effective;
        match to {
            State::Master => {
                tracing::warn!(instance = %name, priority = prio, "VRRP: entering MASTER state");
            }
            State::Backup => {
                tracing::info!(instance = %name, priority = prio, "VRRP: entering BACKUP state");
            }
            State::Fault => tracing::warn!(instance = %name, "VRRP: entering FAULT state"),
            State::Stop => tracing::info!(instance = %name, "VRRP: stopped"),
            State::Init => {}
        }
        if to == State::Master {
            // The gratuitous ARPs that follow must find the addresses and steering in place.
            let (tx, rx) = crossbeam_channel::bounded(1);
            let _ = self.events.send(HaEvent::Mastership {
                instance: name.clone(),
                master: true,
                addrs: self.members[i].addrs.clone(),
                done: Some(tx),
            });
            if rx.recv_timeout(APPLY_WAIT).is_err() {
                tracing::warn!(instance = %name, "the control loop did not confirm the addresses in time");
            }
        } else if from == State::Master {
            let _ = self.events.send(HaEvent::Mastership {
                instance: name.clone(),
                master: false,
                addrs: self.members[i].addrs.clone(),
                done: None,
            });
        }
        let c = &self.members[i].cfg;
        let specific = match to {
            State::Master => c.notify_master.clone(),
            State::Backup => c.notify_backup.clone(),
            State::Fault => c.notify_fault.clone(),
            State::Stop => c.notify_stop.clone(),
            State::Init => None,
        };
        let generic = c.notify.clone();
        let in_group = self.members[i].group;
        // In a group, an instance already at the group's state is not notified again.
        let quiet = in_group.is_some_and(|g| self.group_state[g] == to);
        if to != State::Init && !quiet {
            if let Some(cmd) = specific {
                self.notifier.run(&cmd, &[]);
            }
            if let Some(cmd) = generic {
                self.notifier.run(
                    &cmd,
                    &[
                        "INSTANCE".into(),
                        name.clone(),
                        to.name().into(),
                        prio.to_string(),
                    ],
                );
            }
        }
        if let Some(g) = in_group {
            self.group_follow(g, i, to);
        }
    }

    /// keepalived's sync groups: a member that becomes master takes the others along, one that
    /// goes back to backup or to fault too.
    fn group_follow(&mut self, g: usize, origin: usize, to: State) {
        if self.group_state[g] == to || to == State::Stop || to == State::Init {
            return;
        }
        self.group_state[g] = to;
        let t = self.us(Instant::now());
        let members: Vec<usize> = (0..self.members.len())
            .filter(|&j| j != origin && self.members[j].group == Some(g))
            .collect();
        for j in members {
            if self.members[j].inst.state != to {
                let out = self.members[j].inst.force(t, to);
                self.act(j, out);
            }
        }
        self.group_notify(g, to);
    }

    fn group_notify(&mut self, g: usize, to: State) {
        let grp = &self.groups[g];
        let specific = match to {
            State::Master => grp.notify_master.clone(),
            State::Backup => grp.notify_backup.clone(),
            State::Fault => grp.notify_fault.clone(),
            State::Stop => grp.notify_stop.clone(),
            State::Init => None,
        };
        let generic = grp.notify.clone();
        let name = grp.name.clone();
        if let Some(cmd) = specific {
            self.notifier.run(&cmd, &[]);
        }
        if let Some(cmd) = generic {
            self.notifier
                .run(&cmd, &["GROUP".into(), name, to.name().into(), "0".into()]);
        }
    }

    /// Once a second: the interfaces' states for tracking (an instance's own interface and its
    /// `track_interface`s; weight 0 or down → FAULT, else the weight moves the priority).
    fn refresh_view(&mut self, now: Instant, force: bool) {
        if !force && now.duration_since(self.last_view) < Duration::from_secs(1) {
            return;
        }
        self.last_view = now;
        match self.nl.view() {
            Ok(v) => self.view = v,
            Err(e) => {
                tracing::debug!(error = %e, "VRRP: cannot read the network");
                return;
            }
        }
        for i in 0..self.members.len() {
            self.retrack(i, now);
        }
        for i in 0..self.members.len() {
            let own = self.own_addr(&self.members[i]);
            self.members[i].inst.own_addr = own;
        }
    }

    fn link_up(&self, name: &str) -> bool {
        self.view
            .links
            .iter()
            .find(|l| l.name == name)
            .is_some_and(|l| l.up && l.carrier)
    }

    /// Recomputes instance `i`'s tracked state: faults by name and the priority delta.
    fn retrack(&mut self, i: usize, now: Instant) {
        let t = self.us(now);
        let in_group = self.members[i].group.is_some();
        let mut fails: HashMap<String, bool> = HashMap::new();
        let mut delta = 0i32;
        let c = self.members[i].cfg.clone();
        fails.insert(format!("if:{}", c.interface), !self.link_up(&c.interface));
        for tr in &c.track_interface {
            let up = self.link_up(&tr.name);
            // keepalived: weights are 0 in sync groups.
            let w = if in_group { 0 } else { tr.weight.unwrap_or(0) };
            if w == 0 {
                fails.insert(format!("if:{}", tr.name), !up);
            } else if (w > 0 && up) || (w < 0 && !up) {
                delta += w;
            }
        }
        for tr in &c.track_script {
            let Some(s) = self.scripts.iter().find(|s| s.cfg.name == tr.name) else {
                continue;
            };
            let w = if in_group {
                0
            } else {
                tr.weight.unwrap_or(s.cfg.weight)
            };
            match (w, s.up) {
                // Not run yet: a weight-0 script holds the instance quietly (keepalived's INIT).
                (0, None) => {
                    fails.insert(format!("script:{}", tr.name), true);
                }
                (0, Some(up)) => {
                    fails.insert(format!("script:{}", tr.name), !up);
                }
                (w, Some(true)) if w > 0 => delta += w,
                (w, Some(false)) if w < 0 => delta += w,
                _ => {}
            }
        }
        let m = &mut self.members[i];
        let mut out = Vec::new();
        for (k, failed) in fails {
            let was = m.failing.insert(k, failed).unwrap_or(false);
            if failed != was {
                out.extend(m.inst.track_fault(t, failed));
            }
        }
        m.inst.set_priority_delta(t, delta);
        self.act(i, out);
    }

    fn poll_scripts(&mut self, now: Instant) {
        let mut changed = false;
        for s in &mut self.scripts {
            if s.poll(now).is_some() {
                changed = true;
            }
        }
        if changed {
            for i in 0..self.members.len() {
                self.retrack(i, now);
            }
        }
    }

    fn publish_status(&self, now: Instant) {
        let t = self.us(now);
        let s: Vec<VrrpStatus> = self
            .members
            .iter()
            .map(|m| {
                let inst = &m.inst;
                let master = match inst.state {
                    State::Master => inst.own_addr.map(|a| a.to_string()),
                    _ => inst.master.map(|(a, _)| a.to_string()),
                };
                let mut rejected: std::collections::BTreeMap<String, u64> = inst
                    .counters
                    .rejected
                    .iter()
                    .map(|(r, n)| (r.label().to_string(), *n))
                    .collect();
                if self.unknown_vrid > 0 {
                    rejected.insert(Reject::UnknownVrid.label().into(), self.unknown_vrid);
                }
                VrrpStatus {
                    name: m.cfg.name.clone(),
                    interface: m.cfg.interface.clone(),
                    vrid: inst.p.vrid,
                    state: inst.state.name().into(),
                    priority: inst.effective,
                    base_priority: inst.p.priority,
                    master,
                    since: t.saturating_sub(inst.since) as f64 / 1e6,
                    adverts_in: inst.counters.adverts_in,
                    adverts_out: inst.counters.adverts_out,
                    became_master: inst.counters.became_master,
                    rejected,
                    vips: m
                        .addrs
                        .iter()
                        .map(|a| format!("{}/{}", a.addr, a.prefix))
                        .collect(),
                    group: m.group.map(|g| self.groups[g].name.clone()),
                }
            })
            .collect();
        if let Ok(mut st) = self.status.lock() {
            *st = s;
        }
    }
}
