//! Applying what the checks found to a service table: health flags, quorum withdrawal, and the
//! log line and notify command of every transition.

use super::{Monitor, Transition};
use xvs_core::RealId;
use xvs_core::service::{ServiceKey, ServiceTable, fmt_addr_port};

/// Sets the health flags of `t` from the checks (unchecked servers are up) and withdraws
/// services below their quorum; true if anything changed.
pub fn apply(monitor: &Monitor, t: &mut ServiceTable) -> bool {
    let mut changed = false;
    let services: Vec<(ServiceKey, Vec<RealId>)> =
        t.services().map(|s| (s.key, s.reals.clone())).collect();
    for (key, reals) in services {
        let mut healthy = 0;
        for id in reals {
            let Some((addr, port)) = t.real(id).map(|r| (r.addr, r.port)) else {
                continue;
            };
            let up = monitor.up(&(key, addr, port)).unwrap_or(true);
            healthy += u32::from(up);
            changed |= t.set_up(id, up);
        }
        let quorum = monitor.quorum(&key);
        let down = quorum > 0 && healthy < quorum;
        if t.set_down(&key, down) {
            changed = true;
            if down {
                tracing::warn!(service = %key, healthy, quorum, "quorum lost: service withdrawn");
            } else {
                tracing::info!(service = %key, healthy, quorum, "quorum met again: service restored");
            }
        }
    }
    changed
}

/// Logs a transition once and starts its notify command.
pub fn log(t: &Transition, inhibit: bool) {
    let (svc, real) = (
        t.target.0.to_string(),
        fmt_addr_port(&t.target.1, t.target.2),
    );
    if t.up {
        tracing::info!(service = %svc, real = %real, check = %t.check, result = %t.detail, "real server up: back in rotation with its weight");
    } else {
        let action = if inhibit {
            "weight set to 0"
        } else {
            "removed from scheduling"
        };
        tracing::warn!(service = %svc, real = %real, check = %t.check, result = %t.detail, action, "real server down");
    }
    if let Some(cmd) = &t.notify {
        let child = std::process::Command::new("sh")
            .args(["-c", cmd])
            .env("XVS_SERVICE", &svc)
            .env("XVS_REAL", &real)
            .env("XVS_STATE", if t.up { "up" } else { "down" })
            .stdin(std::process::Stdio::null())
            .spawn();
        match child {
            // Reaped on a thread of its own so a slow script holds nothing.
            Ok(mut c) => {
                let _ = std::thread::Builder::new()
                    .name("xvs-notify".into())
                    .spawn(move || c.wait());
            }
            Err(e) => tracing::warn!(command = %cmd, error = %e, "notify command failed to start"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::director::testing;
    use xvs_core::conn::Timeouts;

    #[test]
    fn unchecked_servers_are_up_and_an_unchanged_table_reports_no_change() {
        let empty = ServiceTable::new(4, 4);
        let batch = testing::service_with_real("198.18.1.11");
        let (mut t, _) = xvs_control::change::apply(&empty, &Timeouts::default(), &batch).unwrap();
        let id = t.reals().next().map(|r| r.id).unwrap();
        let m = Monitor::new();
        assert!(!apply(&m, &mut t), "nothing to change");
        t.set_up(id, false);
        assert!(apply(&m, &mut t), "an unchecked server is up");
        assert!(t.real(id).unwrap().up);
        assert!(
            t.services().all(|s| !s.down),
            "no quorum, nothing withdrawn"
        );
    }
}
