//! How many workers, on which cores: one worker per receive queue, as on a real NIC, each on
//! its own core, checked against the interfaces and the machine before anything is allocated.

use xvs_io::ethtool::RxQueues;

/// Most queues a worker set can serve (the steering program's socket and gate maps).
pub const MAX_QUEUES: u32 = 64;

/// The decision: workers (= queues served per interface), their cores, and what to warn of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// Workers; worker q serves queue q of every interface.
    pub workers: u32,
    /// Core of each worker.
    pub cores: Vec<usize>,
    /// Things the administrator should know (logged at start).
    pub warnings: Vec<String>,
}

fn list(cpus: &[usize]) -> String {
    cpus.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// Decides the workers for `ifaces` (name, receive queues): `explicit` is `--queues`/`queues:`
/// if given, `cores` the cores asked for (empty: the first `allowed` ones).
pub fn decide(
    explicit: Option<u32>,
    ifaces: &[(String, RxQueues)],
    allowed: &[usize],
    cores: &[usize],
) -> Result<Placement, String> {
    let (min_if, min_q) = ifaces
        .iter()
        .map(|(n, q)| (n.as_str(), q.count))
        .min_by_key(|(_, c)| *c)
        .ok_or("no interface to serve")?;
    let (max_if, max_q) = ifaces
        .iter()
        .map(|(n, q)| (n.as_str(), q.count))
        .max_by_key(|(_, c)| *c)
        .ok_or("no interface to serve")?;
    let mut warnings = Vec::new();
    let workers = match explicit {
        Some(0) => return Err("--queues must be at least 1".into()),
        Some(n) if n > min_q => {
            return Err(format!(
                "--queues {n}: {min_if} has {min_q} receive queue{} (worker q serves queue q of every interface; \
                 raise them with `ethtool -L {min_if} combined {n}` or serve fewer)",
                if min_q == 1 { "" } else { "s" }
            ));
        }
        Some(n) => n,
        None if max_q > min_q => {
            return Err(format!(
                "{max_if} has {max_q} receive queues but {min_if} only {min_q}: worker q serves queue q of every \
                 interface, so give --queues {min_q} (traffic on {max_if}'s queues {min_q}..{} would bypass \
                 the balancer) or make them equal with `ethtool -L {max_if} combined {min_q}`",
                max_q - 1
            ));
        }
        None => max_q,
    };
    if workers > MAX_QUEUES {
        return Err(format!(
            "{workers} queues: xvsd serves at most {MAX_QUEUES} (reduce them with `ethtool -L IF combined N`)"
        ));
    }
    for (name, q) in ifaces {
        if q.count > workers {
            warnings.push(format!(
                "{name} has {} receive queues and xvsd serves {workers}: traffic the NIC puts on queues {workers}..{} \
                 bypasses the balancer (reduce them: `ethtool -L {name} combined {workers}`)",
                q.count,
                q.count - 1
            ));
        }
    }
    let cores = if cores.is_empty() {
        if workers as usize > allowed.len() {
            return Err(format!(
                "{workers} workers (one per receive queue) but this process may use only {} core{} ({}): \
                 give --queues {} and reduce the queues with `ethtool -L IF combined {}`, or --cores to share cores",
                allowed.len(),
                if allowed.len() == 1 { "" } else { "s" },
                list(allowed),
                allowed.len(),
                allowed.len()
            ));
        }
        allowed[..workers as usize].to_vec()
    } else {
        if cores.len() < workers as usize {
            return Err(format!(
                "--cores lists {} core{} for {workers} workers",
                cores.len(),
                if cores.len() == 1 { "" } else { "s" }
            ));
        }
        if let Some(c) = cores.iter().find(|c| !allowed.contains(c)) {
            return Err(format!(
                "--cores: core {c} does not exist or is not allowed (this process may use {})",
                list(allowed)
            ));
        }
        let cores = cores[..workers as usize].to_vec();
        for (i, c) in cores.iter().enumerate() {
            if cores[..i].contains(c) {
                warnings.push(format!(
                    "core {c} is given to more than one worker: they share it and each gets part of it"
                ));
            }
        }
        cores
    };
    Ok(Placement {
        workers,
        cores,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(count: u32) -> RxQueues {
        RxQueues {
            count,
            max: count,
            from_ethtool: true,
        }
    }

    fn ifs(counts: &[u32]) -> Vec<(String, RxQueues)> {
        counts
            .iter()
            .enumerate()
            .map(|(i, &c)| (format!("eth{i}"), q(c)))
            .collect()
    }

    #[test]
    fn one_worker_per_queue_on_its_own_core() {
        let p = decide(None, &ifs(&[2, 2]), &[0, 1, 2, 3], &[]).unwrap();
        assert_eq!(p.workers, 2);
        assert_eq!(p.cores, vec![0, 1]);
        assert!(p.warnings.is_empty());
    }

    #[test]
    fn fewer_queues_only_when_told_and_with_a_warning() {
        let p = decide(Some(1), &ifs(&[4]), &[0, 1, 2, 3], &[]).unwrap();
        assert_eq!(p.workers, 1);
        assert!(
            p.warnings[0].contains("bypasses the balancer"),
            "{:?}",
            p.warnings
        );
        assert!(p.warnings[0].contains("queues 1..3"), "{:?}", p.warnings);
        // Unequal interfaces without --queues: refused, with the way out named.
        let e = decide(None, &ifs(&[4, 2]), &[0, 1, 2, 3], &[]).unwrap_err();
        assert!(e.contains("give --queues 2"), "{e}");
        assert!(e.contains("bypass the balancer"), "{e}");
    }

    #[test]
    fn more_queues_than_an_interface_has_are_refused() {
        let e = decide(Some(100_000), &ifs(&[2]), &[0, 1], &[]).unwrap_err();
        assert!(e.contains("eth0 has 2 receive queues"), "{e}");
        let e = decide(Some(0), &ifs(&[2]), &[0, 1], &[]).unwrap_err();
        assert!(e.contains("at least 1"), "{e}");
        let e = decide(None, &ifs(&[128]), &(0..256).collect::<Vec<_>>(), &[]).unwrap_err();
        assert!(e.contains("at most 64"), "{e}");
    }

    #[test]
    fn more_workers_than_cores_are_refused() {
        let e = decide(None, &ifs(&[8]), &[0, 1], &[]).unwrap_err();
        assert!(e.contains("only 2 cores (0,1)"), "{e}");
        assert!(e.contains("--queues 2"), "{e}");
    }

    #[test]
    fn cores_are_checked_against_the_machine() {
        let e = decide(None, &ifs(&[1]), &[0, 1], &[7]).unwrap_err();
        assert!(
            e.contains("core 7 does not exist or is not allowed (this process may use 0,1)"),
            "{e}"
        );
        let e = decide(None, &ifs(&[2]), &[0, 1], &[1]).unwrap_err();
        assert!(e.contains("1 core for 2 workers"), "{e}");
        let p = decide(None, &ifs(&[2]), &[0, 1], &[1, 1]).unwrap();
        assert_eq!(p.cores, vec![1, 1]);
        assert!(p.warnings[0].contains("core 1 is given to more than one worker"));
        let p = decide(None, &ifs(&[2]), &[0, 1], &[1, 0]).unwrap();
        assert_eq!(p.cores, vec![1, 0]);
    }
}
