//! `xvsadm stats`: the dataplane's own counters as xvsd reports them (`stats` request): how
//! each interface is polled, what the steering program handed over and dropped, every
//! worker's frames, the kernel's drop counters of every AF_XDP socket, and the forwarder's
//! drops by reason.

use serde_json::Value;
use std::fmt::Write;

fn n(v: &Value, k: &str) -> u64 {
    v[k].as_u64().unwrap_or(0)
}

fn rows(v: &Value, k: &str) -> Vec<Value> {
    v[k].as_array().cloned().unwrap_or_default()
}

/// The stats reply as tables.
pub fn render(v: &Value) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "xvsd: up {:.1} s, configuration generation {}, connection table {}/{} entries",
        n(v, "uptime_ms") as f64 / 1000.0,
        n(v, "generation"),
        n(&v["conn_table"], "entries"),
        n(&v["conn_table"], "capacity"),
    );
    let steering = rows(v, "steering");
    let _ = writeln!(s, "\nPolling");
    for st in &steering {
        let _ = writeln!(
            s,
            "  {:<10} {:<15} {}",
            st["interface"].as_str().unwrap_or("?"),
            st["polling"].as_str().unwrap_or("?"),
            st["polling_detail"].as_str().unwrap_or("")
        );
    }
    let _ = writeln!(
        s,
        "\nSteering (XDP)   {:>12} {:>12} {:>12} {:>16} {:>16}",
        "to VIP", "to local", "from real", "drop: behind", "drop: SYN budget"
    );
    for st in &steering {
        let _ = writeln!(
            s,
            "  {:<14} {:>12} {:>12} {:>12} {:>16} {:>16}",
            st["interface"].as_str().unwrap_or("?"),
            n(st, "to_vip"),
            n(st, "to_local_addr"),
            n(st, "from_real"),
            n(st, "dropped_worker_behind"),
            n(st, "dropped_syn_over_budget"),
        );
    }
    let workers = rows(v, "workers");
    let _ = writeln!(
        s,
        "\nWorkers {:>12} {:>12} {:>10} {:>10} {:>12} {:>10} {:>10} {:>12}",
        "rx", "tx", "dropped", "passed", "tx-ring-full", "wakeups", "busy-polls", "free/frames"
    );
    for (i, w) in workers.iter().enumerate() {
        let _ = writeln!(
            s,
            "  {:<5} {:>12} {:>12} {:>10} {:>10} {:>12} {:>10} {:>10} {:>12}",
            i,
            n(w, "rx"),
            n(w, "tx"),
            n(w, "dropped"),
            n(w, "passed"),
            n(w, "tx_ring_full"),
            n(w, "wakeups"),
            n(w, "busy_polls"),
            format!("{}/{}", n(w, "frames_free"), n(w, "frames_total")),
        );
    }
    let _ = writeln!(
        s,
        "\nAF_XDP sockets (kernel drops) {:>13} {:>16} {:>11} {:>11} {:>11} {:>14} {:>8} {:>7}",
        "rx-ring-full",
        "fill-ring-empty",
        "rx-dropped",
        "rx-invalid",
        "tx-invalid",
        "tx-ring-empty",
        "napi-id",
        "behind"
    );
    for w in &workers {
        for k in rows(w, "sockets") {
            let _ = writeln!(
                s,
                "  {:<27} {:>13} {:>16} {:>11} {:>11} {:>11} {:>14} {:>8} {:>7}",
                format!(
                    "{} queue {}",
                    k["interface"].as_str().unwrap_or("?"),
                    n(&k, "queue")
                ),
                n(&k, "rx_ring_full"),
                n(&k, "rx_fill_ring_empty"),
                n(&k, "rx_dropped"),
                n(&k, "rx_invalid_descs"),
                n(&k, "tx_invalid_descs"),
                n(&k, "tx_ring_empty"),
                n(&k, "napi_id"),
                if k["behind"].as_bool().unwrap_or(false) {
                    "yes"
                } else {
                    "no"
                },
            );
        }
    }
    let _ = writeln!(s, "\nForwarder drops");
    let drops: Vec<(String, u64)> = v["drops"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, x)| x.as_u64().filter(|&c| c > 0).map(|c| (k.clone(), c)))
                .collect()
        })
        .unwrap_or_default();
    if drops.is_empty() {
        let _ = writeln!(s, "  none");
    }
    for (k, c) in drops {
        let _ = writeln!(s, "  {k:<24} {c:>12}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_part() {
        let v = serde_json::json!({
            "uptime_ms": 1500, "generation": 3,
            "conn_table": {"entries": 7, "capacity": 1024},
            "drops": {"no_service": 0, "table_full": 5},
            "steering": [{"interface": "d0", "polling": "threaded-yield",
                "polling_detail": "NAPI threads q0: 77 on core 1 (SCHED_OTHER)",
                "to_vip": 10, "to_local_addr": 0, "from_real": 2,
                "dropped_worker_behind": 1, "dropped_syn_over_budget": 99}],
            "workers": [{"rx": 12, "tx": 11, "dropped": 1, "passed": 0, "tx_ring_full": 0,
                "wakeups": 4, "busy_polls": 0, "frames_free": 100, "frames_total": 4096,
                "sockets": [{"interface": "d0", "queue": 0, "napi_id": 0, "behind": false,
                    "rx_ring_full": 3, "rx_fill_ring_empty": 8, "rx_dropped": 0,
                    "rx_invalid_descs": 0, "tx_invalid_descs": 0, "tx_ring_empty": 2}]}],
        });
        let t = render(&v);
        assert!(t.contains("generation 3, connection table 7/1024"), "{t}");
        assert!(
            t.contains("d0         threaded-yield  NAPI threads q0: 77"),
            "{t}"
        );
        assert!(t.contains("d0 queue 0"), "{t}");
        assert!(t.contains("table_full"), "{t}");
        assert!(!t.contains("no_service"), "zero drops are left out: {t}");
        let line = t.lines().find(|l| l.contains("d0 queue 0")).unwrap();
        let cols: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(&cols[3..6], ["3", "8", "0"], "{line}");
    }
}
