//! The series node_exporter's IPVS collector exports (`node_ipvs_*`), with its names after
//! `xvs_ipvs_` and its labels, so the dashboards and alerts a site has for kernel IPVS work on
//! xvs after one relabelling (docs/operations.md): the totals over every service, and per real
//! server its active and inactive connections and weight, labelled `local_address`,
//! `local_port`, `local_mark`, `proto`, `remote_address`, `remote_port`.

use super::Out;
use crate::director::Director;
use xvs_core::service::ServiceKey;

pub(super) fn render(o: &mut Out, d: &Director) {
    let t = &d.running.services;
    let mut all = xvs_core::stats::Totals::default();
    for s in t.services() {
        let tot = d.shared.stats.service_totals(t.reals_of(s.id));
        all.conns += tot.conns;
        all.in_pkts += tot.in_pkts;
        all.out_pkts += tot.out_pkts;
        all.in_bytes += tot.in_bytes;
        all.out_bytes += tot.out_bytes;
    }
    o.counters(&[
        (
            "xvs_ipvs_connections_total",
            "The total number of connections made (node_ipvs_connections_total).",
            all.conns,
        ),
        (
            "xvs_ipvs_incoming_packets_total",
            "The total number of incoming packets (node_ipvs_incoming_packets_total).",
            all.in_pkts,
        ),
        (
            "xvs_ipvs_outgoing_packets_total",
            "The total number of outgoing packets (node_ipvs_outgoing_packets_total).",
            all.out_pkts,
        ),
        (
            "xvs_ipvs_incoming_bytes_total",
            "The total amount of incoming data in bytes (node_ipvs_incoming_bytes_total).",
            all.in_bytes,
        ),
        (
            "xvs_ipvs_outgoing_bytes_total",
            "The total amount of outgoing data in bytes (node_ipvs_outgoing_bytes_total).",
            all.out_bytes,
        ),
    ]);
    for (name, help) in [
        (
            "xvs_ipvs_backend_connections_active",
            "The current active connections by local and remote address.",
        ),
        (
            "xvs_ipvs_backend_connections_inactive",
            "The current inactive connections by local and remote address.",
        ),
        (
            "xvs_ipvs_backend_weight",
            "The current backend weight by local and remote address.",
        ),
    ] {
        o.head(name, "gauge", help);
        for s in t.services() {
            let (laddr, lport, mark, proto) = match s.key {
                ServiceKey::Addr { proto, addr, port } => (
                    addr.to_string(),
                    port.to_string(),
                    String::new(),
                    proto.name().to_string(),
                ),
                ServiceKey::Fwmark { mark, .. } => {
                    (String::new(), "0".into(), mark.to_string(), "FWM".into())
                }
            };
            for r in s.reals.iter().filter_map(|&id| t.real(id)) {
                let tot = d.shared.stats.real_totals(r.id);
                let v = match name {
                    "xvs_ipvs_backend_connections_active" => tot.active,
                    "xvs_ipvs_backend_connections_inactive" => tot.inactive,
                    _ => u64::from(r.options.weight),
                };
                let (raddr, rport) = (r.addr.to_string(), r.port.to_string());
                o.val(
                    name,
                    &[
                        ("local_address", &laddr),
                        ("local_port", &lport),
                        ("local_mark", &mark),
                        ("proto", &proto),
                        ("remote_address", &raddr),
                        ("remote_port", &rport),
                    ],
                    v,
                );
            }
        }
    }
    // The sorry server: which service's is taking the connections now.
    o.head(
        "xvs_service_sorry_server_active",
        "gauge",
        "1 while the service's sorry server takes its new connections (no real server is up).",
    );
    for s in t.services() {
        let Some(id) = s.sorry else { continue };
        let serving =
            !s.reals.iter().filter_map(|&r| t.real(r)).any(|r| r.up) && t.real(id).is_some();
        let key = s.key.to_string();
        o.val(
            "xvs_service_sorry_server_active",
            &[("service", key.as_str())],
            u64::from(serving),
        );
    }
}
