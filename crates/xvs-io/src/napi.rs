//! An interface's NAPI settings and threads: the sysfs knobs (`threaded`,
//! `napi_defer_hard_irqs`, `gro_flush_timeout`), and which kernel thread receives for which
//! queue when NAPI is threaded.

use crate::genl::Netdev;
use std::io;
use std::time::{Duration, Instant};

/// A per-interface NAPI setting in `/sys/class/net/IF/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Knob {
    /// `threaded`: 1 runs each NAPI instance in its own kernel thread (`napi/IF-ID`).
    Threaded,
    /// `napi_defer_hard_irqs`: completions that keep the device interrupt masked.
    DeferHardIrqs,
    /// `gro_flush_timeout`: nanoseconds before the kernel polls by itself again.
    GroFlushTimeout,
}

impl Knob {
    /// Every knob.
    pub const ALL: [Knob; 3] = [Knob::Threaded, Knob::DeferHardIrqs, Knob::GroFlushTimeout];

    /// The sysfs file name.
    pub fn file(self) -> &'static str {
        match self {
            Knob::Threaded => "threaded",
            Knob::DeferHardIrqs => "napi_defer_hard_irqs",
            Knob::GroFlushTimeout => "gro_flush_timeout",
        }
    }

    /// The knob named `file`.
    pub fn from_file(file: &str) -> Option<Knob> {
        Knob::ALL.into_iter().find(|k| k.file() == file)
    }
}

fn path(ifname: &str, k: Knob) -> io::Result<String> {
    if ifname.is_empty() || ifname.contains('/') || ifname.starts_with('.') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("bad interface name '{ifname}'"),
        ));
    }
    Ok(format!("/sys/class/net/{ifname}/{}", k.file()))
}

/// Reads knob `k` of `ifname`.
pub fn get(ifname: &str, k: Knob) -> io::Result<u64> {
    let p = path(ifname, k)?;
    let s =
        std::fs::read_to_string(&p).map_err(|e| io::Error::new(e.kind(), format!("{p}: {e}")))?;
    s.trim()
        .parse()
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, format!("{p}: '{}'", s.trim())))
}

/// Sets knob `k` of `ifname`.
pub fn set(ifname: &str, k: Knob, v: u64) -> io::Result<()> {
    let p = path(ifname, k)?;
    std::fs::write(&p, format!("{v}\n")).map_err(|e| io::Error::new(e.kind(), format!("{p}: {e}")))
}

/// The NAPI instance serving one receive queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueNapi {
    /// Queue index.
    pub queue: u32,
    /// NAPI id.
    pub napi_id: u32,
    /// Its kernel thread, when NAPI is threaded.
    pub thread: Option<u32>,
}

/// How the queue → NAPI mapping was learnt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MappingSource {
    /// The driver links each queue to its NAPI instance (netdev `queue-get`).
    Driver,
    /// The driver does not (veth): one NAPI instance per queue, in queue order.
    Order,
}

/// Which NAPI instance and thread serve each of `ifindex`'s first `queues` receive queues.
pub fn queue_napis(
    nd: &mut Netdev,
    ifindex: u32,
    queues: u32,
) -> io::Result<(Vec<QueueNapi>, MappingSource)> {
    let napis = nd.napis(ifindex)?;
    let rx = nd.rx_queues(ifindex)?;
    let thread = |id: u32| napis.iter().find(|n| n.id == id).and_then(|n| n.pid);
    let linked: Vec<QueueNapi> = rx
        .iter()
        .filter(|q| q.id < queues)
        .filter_map(|q| {
            q.napi_id.map(|id| QueueNapi {
                queue: q.id,
                napi_id: id,
                thread: thread(id),
            })
        })
        .collect();
    if linked.len() == queues as usize {
        return Ok((linked, MappingSource::Driver));
    }
    if napis.len() < queues as usize {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "{} NAPI instances for {queues} receive queues (NAPI exists once XDP is attached or GRO is on)",
                napis.len()
            ),
        ));
    }
    // NAPI ids are handed out in creation order, and drivers create one per queue in order.
    Ok((
        napis
            .iter()
            .take(queues as usize)
            .enumerate()
            .map(|(q, n)| QueueNapi {
                queue: q as u32,
                napi_id: n.id,
                thread: n.pid,
            })
            .collect(),
        MappingSource::Order,
    ))
}

/// Waits up to `timeout` until every NAPI instance of the first `queues` queues has a
/// thread (the kernel starts them shortly after `threaded` is set).
pub fn wait_for_threads(
    nd: &mut Netdev,
    ifindex: u32,
    queues: u32,
    timeout: Duration,
) -> io::Result<(Vec<QueueNapi>, MappingSource)> {
    let deadline = Instant::now() + timeout;
    loop {
        let r = queue_napis(nd, ifindex, queues);
        match &r {
            Ok((v, _)) if v.iter().all(|q| q.thread.is_some()) => return r,
            _ if Instant::now() >= deadline => {
                return r.and_then(|(v, src)| {
                    if v.iter().all(|q| q.thread.is_some()) {
                        Ok((v, src))
                    } else {
                        Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            "NAPI threads did not appear after `threaded` was set",
                        ))
                    }
                });
            }
            _ => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

/// True if `pid` is a NAPI kernel thread (its name starts with `napi/`).
pub fn is_napi_thread(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.starts_with("napi/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knob_names_round_trip() {
        for k in Knob::ALL {
            assert_eq!(Knob::from_file(k.file()), Some(k));
        }
        assert_eq!(Knob::from_file("mtu"), None);
    }

    #[test]
    fn paths_refuse_traversal() {
        assert!(get("../../etc", Knob::Threaded).is_err());
        assert!(get("", Knob::Threaded).is_err());
        assert!(set("a/b", Knob::Threaded, 1).is_err());
    }

    #[test]
    fn loopback_knobs_read() {
        // Every interface has the knobs; loopback's defaults are 0.
        assert_eq!(get("lo", Knob::GroFlushTimeout).unwrap(), 0);
        assert_eq!(get("lo", Knob::DeferHardIrqs).unwrap(), 0);
    }

    #[test]
    fn a_missing_file_names_its_path() {
        let e = get("xvs-nonexistent0", Knob::Threaded).unwrap_err();
        assert!(
            e.to_string()
                .contains("/sys/class/net/xvs-nonexistent0/threaded"),
            "{e}"
        );
    }

    #[test]
    fn own_process_is_not_a_napi_thread() {
        assert!(!is_napi_thread(std::process::id()));
    }
}
