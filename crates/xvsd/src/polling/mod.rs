//! Who runs the receive work of a served queue, and when: the polling model.
//!
//! A worker must decide when its queue's receive processing runs on its core; if an interrupt
//! or a kernel thread decides instead, overload turns into receive livelock (the kernel keeps
//! receiving frames the starved worker can no longer take). Two mechanisms, chosen per
//! interface:
//!
//! - **prefer-busy** (the driver gives AF_XDP sockets a NAPI id: real NICs): every socket gets
//!   `SO_PREFER_BUSY_POLL`, `SO_BUSY_POLL` and `SO_BUSY_POLL_BUDGET`, the interface
//!   `napi_defer_hard_irqs` and `gro_flush_timeout`, so interrupts stay masked while the
//!   worker polls and the worker's own `recvfrom`/`sendto` run the queue's receive, a budget
//!   at a time.
//! - **threaded-yield** (no NAPI id: veth, and drivers that do not link queues to NAPI):
//!   threaded NAPI, each served queue's NAPI thread pinned to its worker's core, the worker
//!   scheduled above it (SCHED_FIFO) and blocked only when its rings are empty, so the kernel
//!   receives only while the worker has nothing else to do, and overload is shed at the
//!   device's ring, where it costs least. Receive is coalesced (`napi_defer_hard_irqs`,
//!   `gro_flush_timeout` = `coalesce_us`, 100 µs): once busy, the NAPI thread polls again on a
//!   timer instead of being woken by every burst, so a worker wakes once per batch, not once
//!   per frame.
//!
//! `auto` takes prefer-busy where every socket of the interface has a NAPI id, else
//! threaded-yield. `busy` and `adaptive` leave the kernel's receive as it is (the worker spins,
//! or spins then sleeps in poll(2)). Every setting changed is recorded first and restored on
//! exit, or by the next start after a crash ([`restore`]).

pub mod restore;

use restore::Restorer;
use std::time::Duration;
use xvs_io::genl::Netdev;
use xvs_io::napi::{self, Knob, MappingSource};
use xvs_io::sched::{self, Policy};
use xvs_io::xsk::{BusyPoll, PortInfo};

/// The polling mode asked for (the configuration's and the command line's).
pub use xvs_control::config::PollModeConfig as PollMode;

/// The knobs of the polling mechanisms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PollSettings {
    /// What was asked.
    pub mode: PollMode,
    /// threaded-yield: microseconds a worker with empty rings sleeps; 0: it blocks in
    /// poll(2) until the kernel has received a frame (the default, and the faster).
    pub sleep_us: u32,
    /// prefer-busy: `SO_BUSY_POLL` microseconds.
    pub busy_poll_us: u32,
    /// prefer-busy: `SO_BUSY_POLL_BUDGET` frames.
    pub busy_poll_budget: u32,
    /// prefer-busy: `napi_defer_hard_irqs`.
    pub defer_hard_irqs: u32,
    /// prefer-busy: `gro_flush_timeout` in microseconds (the kernel's watchdog when the
    /// worker stops polling).
    pub gro_flush_timeout_us: u32,
    /// threaded-yield: receive coalescing in microseconds (`gro_flush_timeout`, with
    /// `napi_defer_hard_irqs`): once busy, the NAPI thread polls again after this long
    /// instead of being woken by every frame; 0 leaves the interface's own settings.
    pub coalesce_us: u32,
}

impl PollSettings {
    /// The socket options prefer-busy asks of every socket.
    pub fn busy_poll(&self) -> BusyPoll {
        BusyPoll {
            usecs: self.busy_poll_us,
            budget: self.busy_poll_budget,
        }
    }
}

impl Default for PollSettings {
    fn default() -> Self {
        PollSettings {
            mode: PollMode::Auto,
            sleep_us: 0,
            busy_poll_us: 20,
            busy_poll_budget: 64,
            defer_hard_irqs: 2,
            gro_flush_timeout_us: 200,
            coalesce_us: 100,
        }
    }
}

/// The mechanism an interface got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mechanism {
    /// Preferred busy polling; the sockets' NAPI ids.
    PreferBusy {
        /// NAPI id per served queue.
        napi_ids: Vec<u32>,
    },
    /// Threaded NAPI; per served queue: (NAPI thread, core it was pinned to, its policy).
    ThreadedYield {
        /// (queue, thread id, core, policy).
        threads: Vec<(u32, u32, usize, Policy)>,
        /// How queues were matched with NAPI instances.
        by_order: bool,
    },
    /// The kernel's receive as it was; the worker spins.
    Busy,
    /// The kernel's receive as it was; the worker spins, then sleeps in poll(2).
    Adaptive,
}

impl Mechanism {
    /// The highest real-time priority among the interface's NAPI threads (0: none).
    pub fn napi_priority(&self) -> u8 {
        match self {
            Mechanism::ThreadedYield { threads, .. } => {
                threads.iter().map(|t| t.3.rt_priority()).max().unwrap_or(0)
            }
            _ => 0,
        }
    }

    /// Its name.
    pub fn name(&self) -> &'static str {
        match self {
            Mechanism::PreferBusy { .. } => "prefer-busy",
            Mechanism::ThreadedYield { .. } => "threaded-yield",
            Mechanism::Busy => "busy",
            Mechanism::Adaptive => "adaptive",
        }
    }
}

/// What one interface got, for the start-up report and `xvsadm stats`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfacePolling {
    /// Interface.
    pub ifname: String,
    /// The mechanism.
    pub mechanism: Mechanism,
    /// In words: what the kernel granted, or why the mode asked for did not apply.
    pub detail: String,
}

/// How a worker waits when its rings are empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idle {
    /// Spin.
    Spin,
    /// Block in poll(2) until a frame was received (threaded-yield: the NAPI threads below
    /// run meanwhile, and the end of their poll wakes the worker).
    Block,
    /// Sleep this long (threaded-yield, with a fixed sleep).
    Sleep(Duration),
    /// Spin briefly, then poll(2) with a growing timeout.
    Adaptive,
}

/// What a worker does about polling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerPolling {
    /// Scheduling policy to take (threaded-yield: SCHED_FIFO above the NAPI threads).
    pub policy: Option<Policy>,
    /// When idle.
    pub idle: Idle,
}

/// The outcome of [`configure`].
pub struct Plan {
    /// Per interface, in port order.
    pub interfaces: Vec<InterfacePolling>,
    /// Per worker.
    pub workers: Vec<WorkerPolling>,
    /// What to put back at exit.
    pub restorer: Restorer,
}

/// Sets up polling for `ifnames` (port order) served by workers whose sockets are `sockets[w]`
/// (one per port) and whose cores are `cores[w]`. `enable_busy_poll(w, port, bp)` turns busy
/// polling on for one socket. Every change is recorded in `restore_file` first.
pub fn configure(
    s: &PollSettings,
    ifnames: &[String],
    ifindexes: &[u32],
    sockets: &[Vec<PortInfo>],
    cores: &[usize],
    restore_file: std::path::PathBuf,
    enable_busy_poll: &mut dyn FnMut(usize, usize, BusyPoll) -> Result<(), String>,
) -> Result<Plan, String> {
    let mut restorer = Restorer::new(restore_file);
    let workers = sockets.len();
    let mut interfaces = Vec::new();
    let mut napi_prio = 0u8;
    let mut netdev = None;
    for (port, (ifname, &ifindex)) in ifnames.iter().zip(ifindexes).enumerate() {
        let napi_ids: Vec<u32> = sockets.iter().map(|w| w[port].napi_id).collect();
        let has_napi_ids = napi_ids.iter().all(|&n| n != 0);
        let mut want = match s.mode {
            PollMode::Auto if has_napi_ids => PollMode::PreferBusy,
            PollMode::Auto => PollMode::ThreadedYield,
            m => m,
        };
        let mut fallback = None;
        if want == PollMode::ThreadedYield && s.mode == PollMode::Auto {
            // Some drivers have no threaded NAPI (or no NAPI at all in this mode): auto then
            // leaves the kernel's receive as it is and says so.
            if let Err(e) = restorer.set_knob(ifname, Knob::Threaded, 1) {
                want = PollMode::Busy;
                fallback = Some(format!(
                    "auto: neither busy polling (no NAPI id on the sockets) nor threaded NAPI ({e}) is available; "
                ));
            }
        }
        let ip = match want {
            PollMode::PreferBusy => {
                let bp = s.busy_poll();
                restorer.set_knob(ifname, Knob::DeferHardIrqs, u64::from(s.defer_hard_irqs))?;
                restorer.set_knob(
                    ifname,
                    Knob::GroFlushTimeout,
                    u64::from(s.gro_flush_timeout_us) * 1000,
                )?;
                for w in 0..workers {
                    enable_busy_poll(w, port, bp)?;
                }
                let detail = if has_napi_ids {
                    format!(
                        "busy polling {} µs, budget {}, defer_hard_irqs {}, gro_flush_timeout {} µs; NAPI ids {napi_ids:?}",
                        s.busy_poll_us,
                        s.busy_poll_budget,
                        s.defer_hard_irqs,
                        s.gro_flush_timeout_us
                    )
                } else {
                    format!(
                        "asked for, but the AF_XDP sockets have no NAPI id ({napi_ids:?}): busy polling stays inert on this driver; threaded-yield would decide receive placement"
                    )
                };
                InterfacePolling {
                    ifname: ifname.clone(),
                    mechanism: Mechanism::PreferBusy { napi_ids },
                    detail,
                }
            }
            PollMode::ThreadedYield => {
                let nd = match &mut netdev {
                    Some(nd) => nd,
                    None => netdev.insert(Netdev::open().map_err(|e| e.to_string())?),
                };
                let (ip, prio) =
                    threaded_yield(s, nd, &mut restorer, ifname, ifindex, cores, has_napi_ids)?;
                napi_prio = napi_prio.max(prio);
                ip
            }
            PollMode::Busy => InterfacePolling {
                ifname: ifname.clone(),
                mechanism: Mechanism::Busy,
                detail: format!(
                    "{}the kernel's receive is left as it is; workers spin",
                    fallback.take().unwrap_or_default()
                ),
            },
            PollMode::Adaptive | PollMode::Auto => InterfacePolling {
                ifname: ifname.clone(),
                mechanism: Mechanism::Adaptive,
                detail:
                    "the kernel's receive is left as it is; workers spin, then sleep in poll(2)"
                        .into(),
            },
        };
        interfaces.push(ip);
    }
    let threaded = interfaces
        .iter()
        .any(|i| matches!(i.mechanism, Mechanism::ThreadedYield { .. }));
    let worker = if threaded {
        if napi_prio >= 99 {
            return Err(
                "a NAPI thread runs at SCHED_FIFO 99: no worker priority is above it (lower it with chrt)"
                    .into(),
            );
        }
        WorkerPolling {
            policy: Some(Policy::Fifo(napi_prio + 1)),
            idle: if s.sleep_us == 0 {
                Idle::Block
            } else {
                Idle::Sleep(Duration::from_micros(u64::from(s.sleep_us)))
            },
        }
    } else if s.mode == PollMode::Adaptive {
        WorkerPolling {
            policy: None,
            idle: Idle::Adaptive,
        }
    } else {
        WorkerPolling {
            policy: None,
            idle: Idle::Spin,
        }
    };
    Ok(Plan {
        interfaces,
        workers: vec![worker; workers],
        restorer,
    })
}

/// threaded-yield on one interface: threaded NAPI, coalescing, and each served queue's NAPI
/// thread pinned to its worker's core (`cores[q]` serves queue q). Returns what the interface
/// got and the highest real-time priority among its NAPI threads.
fn threaded_yield(
    s: &PollSettings,
    nd: &mut Netdev,
    restorer: &mut Restorer,
    ifname: &str,
    ifindex: u32,
    cores: &[usize],
    has_napi_ids: bool,
) -> Result<(InterfacePolling, u8), String> {
    restorer
        .set_knob(ifname, Knob::Threaded, 1)
        .map_err(|e| format!("{ifname}: cannot make NAPI threaded: {e}"))?;
    if s.coalesce_us > 0 {
        restorer.set_knob(ifname, Knob::DeferHardIrqs, u64::from(s.defer_hard_irqs))?;
        restorer.set_knob(
            ifname,
            Knob::GroFlushTimeout,
            u64::from(s.coalesce_us) * 1000,
        )?;
    }
    let (queues, source) =
        napi::wait_for_threads(nd, ifindex, cores.len() as u32, Duration::from_secs(2))
            .map_err(|e| format!("{ifname}: {e}"))?;
    let mut threads = Vec::new();
    let mut napi_prio = 0u8;
    for q in &queues {
        let pid = q
            .thread
            .ok_or_else(|| format!("{ifname}: queue {} has no NAPI thread", q.queue))?;
        let core = cores[q.queue as usize];
        restorer.place_thread(pid, &[core], None)?;
        let pol = sched::policy(pid).map_err(|e| format!("thread {pid}: {e}"))?;
        napi_prio = napi_prio.max(pol.rt_priority());
        threads.push((q.queue, pid, core, pol));
    }
    let detail = format!(
        "NAPI threads {} (queue→thread {}); {}",
        threads
            .iter()
            .map(|(q, pid, core, pol)| format!("q{q}: {pid} on core {core} ({pol})"))
            .collect::<Vec<_>>()
            .join(", "),
        if source == MappingSource::Order {
            "by NAPI order: the driver does not link queues to NAPI instances"
        } else {
            "as the driver reports"
        },
        if has_napi_ids {
            "the sockets have NAPI ids: prefer-busy would also work"
        } else {
            "the sockets have no NAPI id: busy polling is unavailable"
        }
    );
    let ip = InterfacePolling {
        ifname: ifname.to_string(),
        mechanism: Mechanism::ThreadedYield {
            threads,
            by_order: source == MappingSource::Order,
        },
        detail,
    };
    Ok((ip, napi_prio))
}

/// The receive settings of an interface that came back (deleted and created again under the
/// same name), as it had them before: the same mechanism on the new interface. prefer-busy's
/// socket options are the new sockets' own (see [`PollSettings::busy_poll`]); here only the
/// interface's knobs and NAPI threads. Recorded in `restorer` like those made at start.
pub fn reapply(
    s: &PollSettings,
    before: &InterfacePolling,
    ifindex: u32,
    cores: &[usize],
    restorer: &mut Restorer,
) -> Result<InterfacePolling, String> {
    let ifname = before.ifname.as_str();
    match &before.mechanism {
        Mechanism::ThreadedYield { .. } => {
            let mut nd = Netdev::open().map_err(|e| e.to_string())?;
            let (ip, prio) = threaded_yield(s, &mut nd, restorer, ifname, ifindex, cores, false)?;
            let was = before.mechanism.napi_priority();
            if prio > was {
                return Err(format!(
                    "{ifname}: its NAPI threads now run at real-time priority {prio}, above the workers' ({})",
                    was + 1
                ));
            }
            Ok(ip)
        }
        Mechanism::PreferBusy { .. } => {
            restorer.set_knob(ifname, Knob::DeferHardIrqs, u64::from(s.defer_hard_irqs))?;
            restorer.set_knob(
                ifname,
                Knob::GroFlushTimeout,
                u64::from(s.gro_flush_timeout_us) * 1000,
            )?;
            Ok(before.clone())
        }
        Mechanism::Busy | Mechanism::Adaptive => Ok(before.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(napi_id: u32) -> PortInfo {
        PortInfo {
            ifname: "lo".into(),
            queue: 0,
            zero_copy: false,
            napi_id,
            busy_poll: false,
            tx_budget: 32,
            fd: -1,
        }
    }

    fn tmp(name: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("xvs-polling-{}-{name}", std::process::id()))
    }

    #[test]
    fn busy_and_adaptive_change_nothing() {
        for (mode, idle) in [
            (PollMode::Busy, Idle::Spin),
            (PollMode::Adaptive, Idle::Adaptive),
        ] {
            let s = PollSettings {
                mode,
                ..PollSettings::default()
            };
            let mut calls = 0;
            let plan = configure(
                &s,
                &["lo".into()],
                &[1],
                &[vec![info(0)]],
                &[0],
                tmp(mode.name()),
                &mut |_, _, _| {
                    calls += 1;
                    Ok(())
                },
            )
            .unwrap();
            assert_eq!(calls, 0);
            assert!(plan.restorer.is_empty());
            assert_eq!(plan.workers[0], WorkerPolling { policy: None, idle });
            assert_eq!(plan.interfaces[0].mechanism.name(), mode.name());
        }
    }

    #[test]
    fn auto_takes_busy_polling_where_sockets_have_napi_ids() {
        // lo's knobs are already what prefer-busy would set only if they are 0 → the test
        // sets them to their current values, so nothing on the machine changes.
        let s = PollSettings {
            mode: PollMode::Auto,
            defer_hard_irqs: napi::get("lo", Knob::DeferHardIrqs).unwrap() as u32,
            gro_flush_timeout_us: (napi::get("lo", Knob::GroFlushTimeout).unwrap() / 1000) as u32,
            ..PollSettings::default()
        };
        let mut asked = Vec::new();
        let plan = configure(
            &s,
            &["lo".into()],
            &[1],
            &[vec![info(9)], vec![info(10)]],
            &[0, 0],
            tmp("auto"),
            &mut |w, p, bp| {
                asked.push((w, p, bp.budget));
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(asked, vec![(0, 0, 64), (1, 0, 64)]);
        assert_eq!(
            plan.interfaces[0].mechanism,
            Mechanism::PreferBusy {
                napi_ids: vec![9, 10]
            }
        );
        assert_eq!(plan.workers[0].idle, Idle::Spin);
        assert!(plan.restorer.is_empty());
    }
}
