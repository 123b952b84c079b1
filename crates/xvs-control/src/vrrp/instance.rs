//! One VRRP instance's state machine, as keepalived 2.2.7 runs it (vrrp.c and
//! vrrp_scheduler.c; the behaviours are cited where they are kept). Pure: time comes in as
//! microseconds, packets come in already read, and what must be done (send an advert, enter a
//! state, send gratuitous ARPs) comes out as [`Action`]s.

use super::check::{self, Advert, Expect, Received, Reject};
use std::collections::BTreeMap;
use std::net::IpAddr;

/// Microseconds per second.
pub const SEC: u64 = 1_000_000;

/// An instance's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Not started.
    Init,
    /// Listening to a master.
    Backup,
    /// Holding the addresses and advertising.
    Master,
    /// A tracked interface or script failed: neither advertising nor listening.
    Fault,
    /// Stopped.
    Stop,
}

impl State {
    /// keepalived's name (as notify scripts get it).
    pub const fn name(self) -> &'static str {
        match self {
            State::Init => "INIT",
            State::Backup => "BACKUP",
            State::Master => "MASTER",
            State::Fault => "FAULT",
            State::Stop => "STOP",
        }
    }
}

/// What the instance asks of its runner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send an advertisement with this priority (0: the master leaves).
    Advert {
        /// The priority to advertise.
        priority: u8,
    },
    /// The instance entered `to` from `from` (the runner moves the addresses and steering,
    /// logs once, runs the notify commands).
    Enter {
        /// The state left.
        from: State,
        /// The state entered.
        to: State,
    },
    /// Send `rounds` rounds of gratuitous ARPs (unsolicited NAs) for the addresses.
    Garp {
        /// Rounds, each covering every address.
        rounds: u32,
    },
}

/// The settings of an instance, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    /// Name.
    pub name: String,
    /// Virtual router id.
    pub vrid: u8,
    /// 2 or 3.
    pub version: u8,
    /// Configured priority.
    pub priority: u8,
    /// Advertisement interval, µs.
    pub adver_int: u64,
    /// v2 PASS password, zero-padded.
    pub password: Option<[u8; 8]>,
    /// The addresses, advertised in this order.
    pub vips: Vec<IpAddr>,
    /// Unicast peers (empty: multicast).
    pub unicast_peers: Vec<IpAddr>,
    /// Does not take over from a working master of lower priority.
    pub nopreempt: bool,
    /// µs a higher-priority backup keeps accepting a lower-priority master.
    pub preempt_delay: u64,
    /// µs until the second set of gratuitous ARPs (0: none).
    pub garp_master_delay: u64,
    /// Rounds per set.
    pub garp_master_repeat: u32,
    /// µs between refresh sets while master (0: none).
    pub garp_master_refresh: u64,
    /// Rounds per refresh set.
    pub garp_master_refresh_repeat: u32,
    /// Rounds after hearing a lower-priority master (and again after `garp_lower_prio_delay`).
    pub garp_lower_prio_repeat: u32,
    /// µs until the second lower-priority set.
    pub garp_lower_prio_delay: u64,
}

/// An instance's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    /// Advertisements believed.
    pub adverts_in: u64,
    /// Advertisements sent.
    pub adverts_out: u64,
    /// Priority-0 advertisements believed.
    pub pri_zero_in: u64,
    /// Priority-0 advertisements sent.
    pub pri_zero_out: u64,
    /// Times it became master.
    pub became_master: u64,
    /// Advertisements refused, by reason.
    pub rejected: BTreeMap<Reject, u64>,
}

/// One instance.
#[derive(Debug, Clone)]
pub struct Instance {
    /// Its settings.
    pub p: Params,
    /// Its state.
    pub state: State,
    /// Priority advertised now (configured ± tracking, 1..=254 unless 255).
    pub effective: u8,
    /// The master's interval (v3 adopts it), µs.
    master_adver_int: u64,
    /// Backup: when the master is down; master: when the next advert goes.
    timer: Option<u64>,
    /// When a backup stops accepting a lower-priority master (`preempt_delay`).
    preempt_at: Option<u64>,
    /// When the second set of gratuitous ARPs goes.
    garp_at: Option<u64>,
    /// When the next refresh set goes.
    refresh_at: Option<u64>,
    /// When the second lower-priority set goes.
    lower_garp_at: Option<u64>,
    /// The master heard last (its address) and its priority.
    pub master: Option<(IpAddr, u8)>,
    /// Our own source address (the tie-break compares it with the sender's).
    pub own_addr: Option<IpAddr>,
    /// When the state was entered, µs.
    pub since: u64,
    /// Weight-0 tracked things failing now.
    faults: u32,
    /// When a lower-priority master was last heard (and ignored: this backup preempts).
    lower_heard: Option<u64>,
    /// Counters.
    pub counters: Counters,
}

impl Instance {
    /// A new instance, in INIT.
    pub fn new(p: Params) -> Instance {
        let effective = p.priority;
        Instance {
            master_adver_int: p.adver_int,
            p,
            state: State::Init,
            effective,
            timer: None,
            preempt_at: None,
            garp_at: None,
            refresh_at: None,
            lower_garp_at: None,
            master: None,
            own_addr: None,
            since: 0,
            faults: 0,
            lower_heard: None,
            counters: Counters::default(),
        }
    }

    /// `VRRP_TIMER_SKEW` (include/vrrp.h): v2 (256 − prio)/256 s; v3 (256 − prio) × the
    /// master's interval / 256, in whole centiseconds.
    pub fn skew(&self) -> u64 {
        let k = 256 - u64::from(self.effective);
        if self.p.version == 3 {
            k * (self.master_adver_int / 10_000) * 625 / 16
        } else {
            k * SEC / 256
        }
    }

    /// `VRRP_MS_DOWN_TIMER`: three intervals of the master and the skew.
    pub fn master_down(&self) -> u64 {
        3 * self.master_adver_int + self.skew()
    }

    /// The earliest time the instance needs to run again.
    pub fn next_deadline(&self) -> Option<u64> {
        [
            self.timer,
            self.garp_at,
            self.refresh_at,
            self.lower_garp_at,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn enter(&mut self, now: u64, to: State, out: &mut Vec<Action>) {
        let from = self.state;
        if from == to {
            return;
        }
        self.state = to;
        self.since = now;
        out.push(Action::Enter { from, to });
    }

    /// Starts the instance (vrrp_scheduler.c `vrrp_init_state`): an address owner (priority
    /// 255) becomes master at once; any other starts as backup and takes over only when no
    /// master is heard for the master-down time (`state MASTER` included). With weight-0
    /// tracked things failing, it starts in FAULT.
    pub fn start(&mut self, now: u64) -> Vec<Action> {
        let mut out = Vec::new();
        if self.faults > 0 {
            self.enter(now, State::Fault, &mut out);
            return out;
        }
        self.enter(now, State::Backup, &mut out);
        self.master_adver_int = self.p.adver_int;
        self.timer = Some(if self.p.priority == 255 {
            now
        } else {
            now + self.master_down()
        });
        out
    }

    /// The expectations a received advertisement is checked against (the address list is
    /// checked in every state: keepalived's `skip_check_adv_addr` is off by default).
    fn expect(&self) -> Expect<'_> {
        Expect {
            version: self.p.version,
            password: self.p.password,
            interval_s: (self.p.adver_int / SEC).clamp(1, 255) as u8,
            vips: &self.p.vips,
            unicast: !self.p.unicast_peers.is_empty(),
            check_addresses: true,
        }
    }

    /// A packet for this instance's VRID arrived.
    pub fn on_packet(&mut self, now: u64, rx: &Received<'_>) -> Vec<Action> {
        let mut out = Vec::new();
        if matches!(self.state, State::Fault | State::Init | State::Stop) {
            return out;
        }
        let adv = match check::check(rx, &self.expect()) {
            Ok(a) => a,
            Err(r) => {
                *self.counters.rejected.entry(r).or_default() += 1;
                return out;
            }
        };
        self.counters.adverts_in += 1;
        if adv.priority == 0 {
            self.counters.pri_zero_in += 1;
        }
        match self.state {
            State::Backup => self.backup_rx(now, &adv),
            State::Master => self.master_rx(now, &adv, &mut out),
            _ => {}
        }
        out
    }

    /// vrrp.c `vrrp_state_backup`.
    fn backup_rx(&mut self, now: u64, adv: &Advert) {
        if adv.priority == 0 {
            // The master leaves: take over after the skew time only.
            self.timer = Some(now + self.skew());
            return;
        }
        let preempt_pending = self.p.preempt_delay > 0 && self.preempt_at.is_none_or(|t| now < t);
        if self.p.nopreempt || adv.priority >= self.effective || preempt_pending {
            if self.p.version == 3 {
                self.master_adver_int = u64::from(adv.interval_cs) * 10_000;
            }
            self.timer = Some(now + self.master_down());
            self.master = Some((adv.src, adv.priority));
            if self.p.preempt_delay > 0 {
                if adv.priority >= self.effective {
                    self.preempt_at = None;
                } else if self.preempt_at.is_none() {
                    self.preempt_at = Some(now + self.p.preempt_delay);
                }
            }
        }
        // Otherwise a lower-priority master is ignored: the down timer runs out and this
        // backup takes over (not at once).
        else {
            self.lower_heard = Some(now);
        }
    }

    /// True if this backup is about to preempt a live master of lower priority (one was heard
    /// within the master-down time).
    pub fn preempting(&self, now: u64) -> bool {
        self.state == State::Backup
            && self
                .lower_heard
                .is_some_and(|t| now.saturating_sub(t) < self.master_down())
    }

    /// vrrp.c `vrrp_state_master_rx`.
    fn master_rx(&mut self, now: u64, adv: &Advert, out: &mut Vec<Action>) {
        if adv.priority == 0 {
            self.send(now, self.effective, out);
            return;
        }
        let ours = self.own_addr.map(|a| addr_key(&a));
        let theirs = addr_key(&adv.src);
        let wins = adv.priority > self.effective
            || (adv.priority == self.effective && ours.is_some_and(|o| theirs > o));
        if wins {
            if self.p.version == 3 {
                self.master_adver_int = u64::from(adv.interval_cs) * 10_000;
            }
            self.master = Some((adv.src, adv.priority));
            self.leave_master(now, State::Backup, 0, out);
            return;
        }
        // Lower priority (or equal with a lower address): two masters. Re-advertise and
        // re-announce at once, and once more after the delay (split-brain recovery).
        self.send(now, self.effective, out);
        if self.p.garp_lower_prio_repeat > 0 {
            out.push(Action::Garp {
                rounds: self.p.garp_lower_prio_repeat,
            });
            if self.p.garp_lower_prio_delay > 0 {
                self.lower_garp_at = Some(now + self.p.garp_lower_prio_delay);
            }
        }
    }

    fn send(&mut self, now: u64, priority: u8, out: &mut Vec<Action>) {
        out.push(Action::Advert { priority });
        self.counters.adverts_out += 1;
        if priority == 0 {
            self.counters.pri_zero_out += 1;
        }
        if self.state == State::Master {
            self.timer = Some(now + self.p.adver_int);
        }
    }

    /// Master → `to` (backup or fault), sending `zero_adverts` priority-0 adverts first.
    fn leave_master(&mut self, now: u64, to: State, zero_adverts: u32, out: &mut Vec<Action>) {
        for _ in 0..zero_adverts {
            self.send(now, 0, out);
        }
        self.garp_at = None;
        self.refresh_at = None;
        self.lower_garp_at = None;
        self.preempt_at = None;
        self.enter(now, to, out);
        self.timer = (to == State::Backup).then(|| now + self.master_down());
    }

    /// vrrp.c `vrrp_state_goto_master` / `vrrp_state_become_master`: the advert goes first,
    /// then (the runner) the addresses, then the gratuitous ARPs.
    fn become_master(&mut self, now: u64, out: &mut Vec<Action>) {
        self.enter(now, State::Master, out);
        self.counters.became_master += 1;
        self.master = None;
        self.master_adver_int = self.p.adver_int;
        self.send(now, self.effective, out);
        out.push(Action::Garp {
            rounds: self.p.garp_master_repeat.max(1),
        });
        self.garp_at = (self.p.garp_master_delay > 0).then(|| now + self.p.garp_master_delay);
        self.refresh_at =
            (self.p.garp_master_refresh > 0).then(|| now + self.p.garp_master_refresh);
    }

    /// Runs what is due at `now`.
    pub fn tick(&mut self, now: u64) -> Vec<Action> {
        let mut out = Vec::new();
        let due = |t: Option<u64>| t.is_some_and(|t| t <= now);
        match self.state {
            State::Backup if due(self.timer) => self.become_master(now, &mut out),
            State::Master if due(self.timer) => {
                self.send(now, self.effective, &mut out);
                if due(self.refresh_at) {
                    out.push(Action::Garp {
                        rounds: self.p.garp_master_refresh_repeat.max(1),
                    });
                    self.refresh_at = Some(now + self.p.garp_master_refresh);
                }
            }
            _ => {}
        }
        if self.state == State::Master {
            if due(self.garp_at) {
                self.garp_at = None;
                out.push(Action::Garp {
                    rounds: self.p.garp_master_repeat.max(1),
                });
            }
            if due(self.lower_garp_at) {
                self.lower_garp_at = None;
                out.push(Action::Garp {
                    rounds: self.p.garp_lower_prio_repeat,
                });
            }
        }
        out
    }

    /// A weight-0 tracked thing failed (`true`) or recovered (`false`): the first failure
    /// puts the instance in FAULT (a master leaves with two priority-0 adverts, as keepalived
    /// sends them), the last recovery brings it back as backup.
    pub fn track_fault(&mut self, now: u64, failed: bool) -> Vec<Action> {
        let mut out = Vec::new();
        if failed {
            self.faults += 1;
            if self.faults > 1 || self.state == State::Init {
                return out;
            }
            match self.state {
                State::Master => self.leave_master(now, State::Fault, 2, &mut out),
                State::Backup => {
                    self.timer = None;
                    self.enter(now, State::Fault, &mut out);
                }
                _ => {}
            }
        } else {
            self.faults = self.faults.saturating_sub(1);
            if self.faults == 0 && self.state == State::Fault {
                self.master_adver_int = self.p.adver_int;
                self.master = None;
                self.enter(now, State::Backup, &mut out);
                self.timer = Some(if self.p.priority == 255 {
                    now
                } else {
                    now + self.master_down()
                });
            }
        }
        out
    }

    /// Weight-0 tracked things failing now.
    pub fn faults(&self) -> u32 {
        self.faults
    }

    /// Sets the priority from tracking: the configured one plus `delta`, kept in 1..=254
    /// (vrrp_track.c `vrrp_set_effective_priority`); an address owner's never moves. A
    /// backup's down timer follows the new skew.
    pub fn set_priority_delta(&mut self, now: u64, delta: i32) {
        if self.p.priority == 255 {
            return;
        }
        let p = (i32::from(self.p.priority) + delta).clamp(1, 254) as u8;
        if p == self.effective {
            return;
        }
        let old_down = self.master_down();
        self.effective = p;
        if self.state == State::Backup
            && let Some(t) = self.timer
        {
            let new_down = self.master_down();
            self.timer = Some(if new_down >= old_down {
                t + (new_down - old_down)
            } else {
                t.saturating_sub(old_down - new_down).max(now)
            });
        }
    }

    /// Stops the instance: a master sends one priority-0 advert (so a backup takes over after
    /// its skew time only) and leaves; every instance ends in STOP.
    pub fn stop(&mut self, now: u64) -> Vec<Action> {
        let mut out = Vec::new();
        if self.state == State::Master {
            self.send(now, 0, &mut out);
        }
        self.timer = None;
        self.garp_at = None;
        self.refresh_at = None;
        self.lower_garp_at = None;
        self.enter(now, State::Stop, &mut out);
        out
    }

    /// Forces the state (sync groups move their members together).
    pub fn force(&mut self, now: u64, to: State) -> Vec<Action> {
        let mut out = Vec::new();
        match (self.state, to) {
            (State::Backup | State::Init, State::Master) => self.become_master(now, &mut out),
            (State::Master, State::Backup) => self.leave_master(now, State::Backup, 0, &mut out),
            (State::Master, State::Fault) => self.leave_master(now, State::Fault, 1, &mut out),
            (State::Backup | State::Init, State::Fault) => {
                self.timer = None;
                self.enter(now, State::Fault, &mut out);
            }
            (State::Fault, State::Backup) => {
                self.enter(now, State::Backup, &mut out);
                self.timer = Some(now + self.master_down());
            }
            _ => {}
        }
        out
    }

    /// Holds a backup's takeover until `until` (a director that has not received the
    /// connection table yet does not preempt: the caller asks again once it has).
    pub fn hold_takeover(&mut self, until: u64) {
        if self.state == State::Backup
            && let Some(t) = self.timer
        {
            self.timer = Some(t.max(until));
        }
    }

    /// µs until the takeover, if waiting for one.
    pub fn takeover_at(&self) -> Option<u64> {
        (self.state == State::Backup)
            .then_some(self.timer)
            .flatten()
    }
}

/// Addresses compared as keepalived compares them (numerically, host order).
fn addr_key(a: &IpAddr) -> u128 {
    match a {
        IpAddr::V4(v) => u128::from(u32::from(*v)),
        IpAddr::V6(v) => u128::from(*v),
    }
}
