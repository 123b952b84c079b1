//! `xvsadm stats`: daemon-wide, per-worker, per-socket and per-interface counters as JSON.

use crate::director::Director;
use crate::polling::Mechanism;
use serde_json::{Value, json};
use std::sync::atomic::Ordering::Relaxed;
use xvs_core::DropReason;

/// Daemon-wide counters.
pub fn stats(d: &Director) -> Value {
    let g = d.shared.stats.global();
    let drops: serde_json::Map<String, Value> = DropReason::ALL
        .iter()
        .map(|r| (r.label().to_string(), g.drops[*r as usize].into()))
        .collect();
    let workers: Vec<Value> = d
        .shared
        .io
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let s = d.shared.stats.slot(i);
            let wdrops: serde_json::Map<String, Value> = DropReason::ALL
                .iter()
                .map(|r| (r.label().to_string(), s.drops[*r as usize].load(Relaxed).into()))
                .filter(|(_, v): &(String, Value)| v.as_u64() != Some(0))
                .collect();
            let sockets: Vec<Value> = c
                .sockets
                .iter()
                .zip(&d.shared.ports.names)
                .map(|(k, n)| {
                    json!({
                        "interface": n, "queue": i,
                        "napi_id": k.napi_id.load(Relaxed),
                        "behind": k.behind.load(Relaxed) != 0,
                        "rx_dropped": k.rx_dropped.load(Relaxed),
                        "rx_ring_full": k.rx_ring_full.load(Relaxed),
                        "rx_fill_ring_empty": k.rx_fill_ring_empty.load(Relaxed),
                        "rx_invalid_descs": k.rx_invalid_descs.load(Relaxed),
                        "tx_invalid_descs": k.tx_invalid_descs.load(Relaxed),
                        "tx_ring_empty": k.tx_ring_empty.load(Relaxed),
                    })
                })
                .collect();
            json!({
                "rx": c.rx.load(Relaxed), "tx": c.tx.load(Relaxed), "completed": c.completed.load(Relaxed),
                "filled": c.filled.load(Relaxed), "dropped": c.dropped.load(Relaxed),
                "reclaimed_fill": c.reclaimed_fill.load(Relaxed), "reclaimed_tx": c.reclaimed_tx.load(Relaxed),
                "passed": c.passed.load(Relaxed), "tx_ring_full": c.tx_ring_full.load(Relaxed),
                "frames_free": c.free.load(Relaxed), "frames_total": c.total.load(Relaxed),
                "wakeups": c.wakeups.load(Relaxed), "busy_polls": c.busy_polls.load(Relaxed),
                "behind_events": c.behind_events.load(Relaxed),
                "frames_waiting": c.waiting.load(Relaxed), "wait_dropped": c.wait_dropped.load(Relaxed),
                "forward_drops": wdrops, "sockets": sockets,
            })
        })
        .collect();
    let steering: Vec<Value> = d
        .kernel()
        .steering_status()
        .iter()
        .zip(&d.shared.ports.names)
        .zip(&d.shared.polling)
        .enumerate()
        .map(|(i, ((s, n), p))| {
            let [vip, laddr, rip] = s.steered;
            let drops = s.drops;
            let threads: Vec<Value> = match &p.mechanism {
                Mechanism::ThreadedYield { threads, .. } => threads
                    .iter()
                    .map(|(q, pid, core, pol)| {
                        json!({"queue": q, "pid": pid, "core": core, "policy": pol.to_string()})
                    })
                    .collect(),
                _ => Vec::new(),
            };
            json!({"interface": n, "mode": s.mode, "to_vip": vip, "to_local_addr": laddr,
                "from_real": rip, "dropped_worker_behind": drops.behind,
                "dropped_syn_over_budget": drops.syn_over_budget,
                "ipv6_unparsed": drops.ipv6_unparsed,
                "gone": d.port_gone(i),
                "polling": p.mechanism.name(), "polling_detail": p.detail,
                "napi_threads": threads})
        })
        .collect();
    json!({
        "uptime_ms": d.shared.clock.elapsed().as_millis() as u64,
        "generation": d.running.generation,
        "rx_frames": g.rx_frames, "tx_frames": g.tx_frames, "passed": g.passed, "icmp_sent": g.icmp_sent,
        "conns_created": g.conns_created, "conns_evicted": g.conns_evicted, "conns_expired": g.conns_expired,
        "cross_worker_replies": g.cross_worker_replies, "neigh_waits": g.neigh_waits,
        "conn_table": {"entries": d.shared.table.len(), "capacity": d.shared.table.capacity()},
        "drops": drops, "workers": workers, "steering": steering,
        "alarms": d.alarms(),
    })
}
