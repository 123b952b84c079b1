//! Health checking, keepalived's job done inside xvsd: every checked real server is probed
//! every `interval` (first checks spread over the interval so a thousand servers are not probed
//! in the same millisecond), each probe on a short-lived thread of its own (at most
//! [`MAX_RUNNING`] at a time) so a black-holed server only ever holds its own check; `rise`
//! successes in a row bring a server up, `fall` failures take it down. The control thread
//! calls [`Monitor::run`] every tick and applies the transitions to the service table.

pub mod apply;
pub mod probe;

use crossbeam_channel::{Receiver, Sender};
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};
use xvs_control::check::{CheckConfig, Health, StartState};
use xvs_core::service::ServiceKey;

/// Most checks running at once.
pub const MAX_RUNNING: usize = 256;

/// Where a checked server is.
pub type Target = (ServiceKey, IpAddr, u16);

/// One checked server.
struct Checked {
    uid: u64,
    target: Target,
    check: CheckConfig,
    notify_up: Option<String>,
    notify_down: Option<String>,
    up: bool,
    oks: u32,
    fails: u32,
    next: Instant,
    busy: bool,
    since: Instant,
    last: Option<(Instant, bool, String)>,
    transitions: u64,
}

/// A state change to apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// Which server.
    pub target: Target,
    /// Its new state.
    pub up: bool,
    /// The check, described.
    pub check: String,
    /// The result that decided it.
    pub detail: String,
    /// The command to notify with, if any.
    pub notify: Option<String>,
}

/// What the listing shows of one checked server.
pub struct CheckState {
    /// The check, described.
    pub check: String,
    /// Up or down.
    pub up: bool,
    /// Time in this state.
    pub since: Duration,
    /// Last result (ok, words) and how long ago.
    pub last: Option<(bool, String, Duration)>,
    /// State changes so far.
    pub transitions: u64,
}

/// Service policies.
#[derive(Debug, Clone, Copy, Default)]
struct Policy {
    inhibit: bool,
    quorum: u32,
}

/// All checks.
pub struct Monitor {
    checked: Vec<Checked>,
    policies: HashMap<ServiceKey, Policy>,
    done_tx: Sender<(u64, Result<String, String>)>,
    done_rx: Receiver<(u64, Result<String, String>)>,
    running: usize,
    next_uid: u64,
}

/// A stable fraction in [0, 1) for spreading first checks.
fn spread(uid: u64) -> f64 {
    (uid.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 11) as f64 / (1u64 << 53) as f64
}

impl Monitor {
    /// No checks.
    pub fn new() -> Monitor {
        let (done_tx, done_rx) = crossbeam_channel::unbounded();
        Monitor {
            checked: Vec::new(),
            policies: HashMap::new(),
            done_tx,
            done_rx,
            running: 0,
            next_uid: 1,
        }
    }

    fn add(
        &mut self,
        target: Target,
        check: CheckConfig,
        up: Option<String>,
        down: Option<String>,
    ) {
        let uid = self.next_uid;
        self.next_uid += 1;
        let now = Instant::now();
        let first = Duration::from_secs_f64(check.interval * spread(uid));
        self.checked.push(Checked {
            uid,
            target,
            up: check.start == StartState::Up,
            check,
            notify_up: up,
            notify_down: down,
            oks: 0,
            fails: 0,
            next: now + first,
            busy: false,
            since: now,
            last: None,
            transitions: 0,
        });
    }

    /// Takes the checks and policies of a configuration. A server whose check did not change
    /// keeps its state and schedule; checks set by hand are replaced.
    pub fn configure(&mut self, health: &Health) {
        self.policies = health
            .iter()
            .map(|(k, h)| {
                (
                    *k,
                    Policy {
                        inhibit: h.inhibit_on_failure,
                        quorum: h.quorum,
                    },
                )
            })
            .collect();
        let mut old: Vec<Checked> = std::mem::take(&mut self.checked);
        for (key, h) in health {
            for rc in &h.checks {
                let target = (*key, rc.addr, rc.port);
                match old
                    .iter()
                    .position(|c| c.target == target && c.check == rc.check)
                {
                    Some(i) => {
                        let mut c = old.swap_remove(i);
                        c.notify_up.clone_from(&rc.notify_up);
                        c.notify_down.clone_from(&rc.notify_down);
                        self.checked.push(c);
                    }
                    None => self.add(
                        target,
                        rc.check.clone(),
                        rc.notify_up.clone(),
                        rc.notify_down.clone(),
                    ),
                }
            }
        }
    }

    /// Sets (or removes) one server's check by hand.
    pub fn set_check(&mut self, target: Target, check: Option<CheckConfig>) -> Result<(), String> {
        if let Some(c) = &check {
            c.validate().map_err(|(f, m)| format!("check.{f}: {m}"))?;
        }
        let existing = self.checked.iter().position(|c| c.target == target);
        let notify = existing.map(|i| {
            (
                self.checked[i].notify_up.clone(),
                self.checked[i].notify_down.clone(),
            )
        });
        if let Some(i) = existing {
            self.checked.swap_remove(i);
        }
        if let Some(c) = check {
            let (up, down) = notify.unwrap_or_default();
            self.add(target, c, up, down);
        }
        Ok(())
    }

    /// True if the service sets weight 0 on failure.
    pub fn inhibits(&self, key: &ServiceKey) -> bool {
        self.policies.get(key).is_some_and(|p| p.inhibit)
    }

    /// The service's quorum (0 = none).
    pub fn quorum(&self, key: &ServiceKey) -> u32 {
        self.policies.get(key).map_or(0, |p| p.quorum)
    }

    /// The health of a server: `None` if it is not checked.
    pub fn up(&self, target: &Target) -> Option<bool> {
        self.checked
            .iter()
            .find(|c| c.target == *target)
            .map(|c| c.up)
    }

    /// What the listing shows of a server.
    pub fn state(&self, target: &Target) -> Option<CheckState> {
        let c = self.checked.iter().find(|c| c.target == *target)?;
        Some(CheckState {
            check: c.check.to_string(),
            up: c.up,
            since: c.since.elapsed(),
            last: c
                .last
                .as_ref()
                .map(|(t, ok, d)| (*ok, d.clone(), t.elapsed())),
            transitions: c.transitions,
        })
    }

    /// State changes so far, per server (for metrics).
    pub fn transitions(&self) -> impl Iterator<Item = (&Target, u64)> {
        self.checked.iter().map(|c| (&c.target, c.transitions))
    }

    /// Starts the checks that are due and collects finished ones; the state changes.
    pub fn run(&mut self) -> Vec<Transition> {
        let now = Instant::now();
        for c in &mut self.checked {
            if self.running >= MAX_RUNNING {
                break;
            }
            if c.busy || c.next > now {
                continue;
            }
            c.busy = true;
            self.running += 1;
            let (uid, check, (_, addr, port)) = (c.uid, c.check.clone(), c.target);
            let tx = self.done_tx.clone();
            let spawned = std::thread::Builder::new()
                .name("xvs-check".into())
                .spawn(move || {
                    let _ = tx.send((uid, probe::run(&check, addr, port)));
                });
            if let Err(e) = spawned {
                let _ = self
                    .done_tx
                    .send((uid, Err(format!("cannot start the check: {e}"))));
            }
        }
        let mut out = Vec::new();
        while let Ok((uid, result)) = self.done_rx.try_recv() {
            self.running = self.running.saturating_sub(1);
            let Some(c) = self.checked.iter_mut().find(|c| c.uid == uid) else {
                continue; // its check was replaced meanwhile
            };
            c.busy = false;
            let done = Instant::now();
            let (ok, detail) = match result {
                Ok(d) => (true, d),
                Err(d) => (false, d),
            };
            if ok {
                c.oks += 1;
                c.fails = 0;
            } else {
                c.fails += 1;
                c.oks = 0;
            }
            c.last = Some((done, ok, detail.clone()));
            // The next check one interval after this one started, never in a burst; a failure
            // of a server still up is tried again after `retry_interval` (keepalived's
            // delay_before_retry) if one is set.
            let step = match c.check.retry_interval {
                Some(r) if !ok && c.up && c.fails < c.check.fall => r,
                _ => c.check.interval,
            };
            c.next = (c.next + Duration::from_secs_f64(step)).max(done);
            let flip = if c.up {
                !ok && c.fails >= c.check.fall
            } else {
                ok && c.oks >= c.check.rise
            };
            if flip {
                c.up = !c.up;
                c.since = done;
                c.transitions += 1;
                out.push(Transition {
                    target: c.target,
                    up: c.up,
                    check: c.check.to_string(),
                    detail,
                    notify: if c.up {
                        c.notify_up.clone()
                    } else {
                        c.notify_down.clone()
                    },
                });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xvs_control::check::{RealCheck, ServiceHealth};

    fn key() -> ServiceKey {
        ServiceKey::Addr {
            proto: xvs_core::service::Protocol::Tcp,
            addr: "127.0.0.1".parse().unwrap(),
            port: 80,
        }
    }

    fn health(command: &str, rise: u32, fall: u32) -> Health {
        let check: CheckConfig = serde_yaml_ng::from_str(&format!(
            "{{ type: misc, command: '{command}', interval: 0.05, timeout: 1, rise: {rise}, fall: {fall} }}"
        ))
        .unwrap();
        vec![(
            key(),
            ServiceHealth {
                inhibit_on_failure: false,
                quorum: 0,
                checks: vec![RealCheck {
                    addr: "127.0.0.1".parse().unwrap(),
                    port: 80,
                    check,
                    notify_up: None,
                    notify_down: None,
                }],
            },
        )]
    }

    fn run_until(m: &mut Monitor, secs: f64) -> Vec<Transition> {
        let t = Instant::now();
        let mut all = Vec::new();
        while t.elapsed() < Duration::from_secs_f64(secs) {
            all.extend(m.run());
            std::thread::sleep(Duration::from_millis(10));
        }
        all
    }

    #[test]
    fn fall_failures_take_a_server_down_once() {
        let mut m = Monitor::new();
        m.configure(&health("false", 1, 3));
        let target = (key(), "127.0.0.1".parse().unwrap(), 80);
        assert_eq!(m.up(&target), Some(true));
        let t = run_until(&mut m, 1.0);
        assert_eq!(t.len(), 1, "one transition: {t:?}");
        assert!(!t[0].up);
        assert_eq!(t[0].detail, "exit 1");
        let s = m.state(&target).unwrap();
        assert!(s.last.is_some_and(|(ok, _, _)| !ok));
        assert_eq!(s.transitions, 1);
        // The same configuration again keeps the state.
        m.configure(&health("false", 1, 3));
        assert_eq!(m.up(&target), Some(false));
        // A new check starts afresh, and rise successes bring it back.
        m.configure(&health("true", 2, 3));
        assert_eq!(m.up(&target), Some(true));
        m.set_check(
            target,
            Some(
                serde_yaml_ng::from_str(
                    "{ type: misc, command: 'true', start: down, rise: 2, interval: 0.05 }",
                )
                .unwrap(),
            ),
        )
        .unwrap();
        assert_eq!(m.up(&target), Some(false));
        let t = run_until(&mut m, 1.0);
        assert_eq!(t.iter().map(|t| t.up).collect::<Vec<_>>(), [true]);
        m.set_check(target, None).unwrap();
        assert_eq!(m.up(&target), None);
    }
}
