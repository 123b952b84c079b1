//! Thread placement: CPU affinity and scheduling policy of this thread or of another one
//! (the kernel's NAPI threads), the CPUs this process may run on.

use std::io;

/// A thread's scheduling policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// SCHED_OTHER (normal, time-shared).
    Other,
    /// SCHED_FIFO at this real-time priority (1..=99).
    Fifo(u8),
    /// SCHED_RR at this real-time priority.
    RoundRobin(u8),
    /// Anything else (SCHED_BATCH, SCHED_IDLE, …), by number.
    Unknown(i32),
}

impl Policy {
    /// The real-time priority (0 for time-shared policies).
    pub fn rt_priority(self) -> u8 {
        match self {
            Policy::Fifo(p) | Policy::RoundRobin(p) => p,
            _ => 0,
        }
    }
}

impl std::fmt::Display for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Policy::Other => f.write_str("SCHED_OTHER"),
            Policy::Fifo(p) => write!(f, "SCHED_FIFO {p}"),
            Policy::RoundRobin(p) => write!(f, "SCHED_RR {p}"),
            Policy::Unknown(n) => write!(f, "policy {n}"),
        }
    }
}

impl std::str::FromStr for Policy {
    type Err = String;

    /// The [`Display`](std::fmt::Display) form back (`SCHED_OTHER`, `SCHED_FIFO 2`, …).
    fn from_str(s: &str) -> Result<Policy, String> {
        let mut w = s.split_whitespace();
        let (name, arg) = (w.next().unwrap_or(""), w.next());
        let prio = || -> Result<u8, String> {
            arg.and_then(|p| p.parse().ok())
                .filter(|p| (1..=99).contains(p))
                .ok_or_else(|| format!("'{s}': a real-time priority 1..99 is missing"))
        };
        match name {
            "SCHED_OTHER" => Ok(Policy::Other),
            "SCHED_FIFO" => Ok(Policy::Fifo(prio()?)),
            "SCHED_RR" => Ok(Policy::RoundRobin(prio()?)),
            "policy" => arg
                .and_then(|p| p.parse().ok())
                .map(Policy::Unknown)
                .ok_or_else(|| format!("'{s}' is not a scheduling policy")),
            _ => Err(format!("'{s}' is not a scheduling policy")),
        }
    }
}

fn check(rc: i32) -> io::Result<()> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// The scheduling policy of thread `tid` (0: the calling thread).
pub fn policy(tid: u32) -> io::Result<Policy> {
    // SAFETY: plain syscall; no pointers.
    let pol = unsafe { libc::sched_getscheduler(tid as libc::pid_t) };
    check(pol)?;
    let mut p = libc::sched_param { sched_priority: 0 };
    // SAFETY: `p` is a valid, writable sched_param.
    check(unsafe { libc::sched_getparam(tid as libc::pid_t, &raw mut p) })?;
    let prio = p.sched_priority.clamp(0, 99) as u8;
    Ok(match pol & !libc::SCHED_RESET_ON_FORK {
        libc::SCHED_OTHER => Policy::Other,
        libc::SCHED_FIFO => Policy::Fifo(prio),
        libc::SCHED_RR => Policy::RoundRobin(prio),
        n => Policy::Unknown(n),
    })
}

/// Sets the scheduling policy of thread `tid` (0: the calling thread).
pub fn set_policy(tid: u32, p: Policy) -> io::Result<()> {
    let (pol, prio) = match p {
        Policy::Other => (libc::SCHED_OTHER, 0),
        Policy::Fifo(n) => (libc::SCHED_FIFO, i32::from(n)),
        Policy::RoundRobin(n) => (libc::SCHED_RR, i32::from(n)),
        Policy::Unknown(n) => (n, 0),
    };
    let param = libc::sched_param {
        sched_priority: prio,
    };
    // SAFETY: `param` is a valid sched_param for the call.
    check(unsafe { libc::sched_setscheduler(tid as libc::pid_t, pol, &raw const param) })
}

/// The CPUs thread `tid` may run on (0: the calling thread).
pub fn affinity(tid: u32) -> io::Result<Vec<usize>> {
    // SAFETY: an all-zero cpu_set_t is a valid empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a writable cpu_set_t of the size passed.
    check(unsafe {
        libc::sched_getaffinity(
            tid as libc::pid_t,
            size_of::<libc::cpu_set_t>(),
            &raw mut set,
        )
    })?;
    Ok((0..libc::CPU_SETSIZE as usize)
        // SAFETY: `c` is below CPU_SETSIZE, the set's capacity.
        .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
        .collect())
}

/// Restricts thread `tid` (0: the calling thread) to `cpus`.
pub fn set_affinity(tid: u32, cpus: &[usize]) -> io::Result<()> {
    // SAFETY: an all-zero cpu_set_t is a valid empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &c in cpus {
        if c >= libc::CPU_SETSIZE as usize {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("CPU {c} is beyond CPU_SETSIZE"),
            ));
        }
        // SAFETY: `c` is below CPU_SETSIZE, the set's capacity.
        unsafe { libc::CPU_SET(c, &mut set) };
    }
    // SAFETY: `set` is a valid cpu_set_t of the size passed.
    check(unsafe {
        libc::sched_setaffinity(
            tid as libc::pid_t,
            size_of::<libc::cpu_set_t>(),
            &raw const set,
        )
    })
}

/// The CPUs this process may use (its affinity mask).
pub fn allowed_cpus() -> io::Result<Vec<usize>> {
    affinity(0)
}

/// The calling thread's id.
pub fn current_tid() -> u32 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::gettid() as u32 }
}

/// Sends SIGKILL to every process of process group `pgid` (a health-check command started
/// as a group leader, with whatever it started). A group already gone is not an error.
pub fn kill_group(pgid: u32) -> io::Result<()> {
    let Ok(pgid) = i32::try_from(pgid) else {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    };
    if pgid <= 1 {
        // 0 would be our own group, 1 (−1) every process: never.
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    // SAFETY: plain syscall wrapper; a positive group id names that group only.
    let rc = unsafe { libc::killpg(pgid, libc::SIGKILL) };
    if rc != 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::ESRCH) {
            return Err(e);
        }
    }
    Ok(())
}

/// Waits up to `timeout` for any of `fds` to be readable; returns which are.
pub fn wait_readable(fds: &[i32], timeout: std::time::Duration) -> io::Result<Vec<bool>> {
    let mut p: Vec<libc::pollfd> = fds
        .iter()
        .map(|&fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
    // SAFETY: `p` is a valid array of pollfd of the length given, live for the call.
    let rc = unsafe { libc::poll(p.as_mut_ptr(), p.len() as libc::nfds_t, ms) };
    if rc < 0 {
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    Ok(p.iter().map(|x| x.revents & libc::POLLIN != 0).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_policy_and_affinity() {
        // A test thread runs time-shared unless the whole test run was started otherwise.
        let p = policy(0).unwrap();
        assert!(matches!(
            p,
            Policy::Other | Policy::Fifo(_) | Policy::RoundRobin(_)
        ));
        let cpus = affinity(0).unwrap();
        assert!(!cpus.is_empty());
        assert_eq!(allowed_cpus().unwrap(), cpus);
    }

    #[test]
    fn affinity_round_trips_on_a_thread() {
        let cpus = allowed_cpus().unwrap();
        let first = cpus[0];
        std::thread::spawn(move || {
            set_affinity(0, &[first]).unwrap();
            assert_eq!(affinity(current_tid()).unwrap(), vec![first]);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn an_impossible_cpu_is_refused() {
        assert!(set_affinity(0, &[libc::CPU_SETSIZE as usize + 1]).is_err());
    }

    #[test]
    fn policy_names() {
        assert_eq!(Policy::Fifo(2).to_string(), "SCHED_FIFO 2");
        assert_eq!(Policy::Other.rt_priority(), 0);
        assert_eq!(Policy::RoundRobin(5).rt_priority(), 5);
        for p in [
            Policy::Other,
            Policy::Fifo(1),
            Policy::RoundRobin(99),
            Policy::Unknown(3),
        ] {
            assert_eq!(p.to_string().parse::<Policy>(), Ok(p));
        }
        assert!("SCHED_FIFO".parse::<Policy>().is_err());
        assert!("SCHED_FIFO 100".parse::<Policy>().is_err());
        assert!("nice".parse::<Policy>().is_err());
    }
}
