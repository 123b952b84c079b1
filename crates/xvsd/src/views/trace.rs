//! `xvsadm trace`: what the forwarder would do with a packet, in words.

use crate::director::Director;
use xvs_control::proto::{TraceQuery, TraceReply};
use xvs_core::conn::FlowKey;
use xvs_core::net::Resolve;
use xvs_core::service::{Protocol, addr16, fmt_addr_port, ip_from16};
use xvs_core::{RealId, Trace};

/// `xvsadm trace`.
pub fn trace(d: &mut Director, q: &TraceQuery) -> Result<TraceReply, String> {
    let proto = match q.proto.to_ascii_lowercase().as_str() {
        "tcp" => Protocol::Tcp,
        "udp" => Protocol::Udp,
        "sctp" => Protocol::Sctp,
        other => return Err(format!("unknown protocol '{other}' (tcp, udp or sctp)")),
    };
    if q.src.is_ipv4() != q.dst.is_ipv4() {
        return Err("source and destination are of different address families".into());
    }
    if let Some(i) = &q.interface {
        if !d.shared.ports.names.contains(i) {
            return Err(format!(
                "{i} is not served by this xvsd (it serves {})",
                d.shared.ports.names.join(", ")
            ));
        }
    }
    let version = if q.src.is_ipv4() { 4 } else { 6 };
    let key = FlowKey::flow(
        version,
        proto.number(),
        addr16(&q.src),
        q.sport,
        addr16(&q.dst),
        q.dport,
    );
    let flags = q.tcp_flags.unwrap_or(xvs_wire::tcp::flags::SYN);
    let snap = d.shared.snapshot.load_full();
    let t = d.trace_flow(&snap, key, flags);
    let svc_name = |id| snap.services.service(id).map(|s| s.key.to_string());
    let real_of = |id: RealId| snap.services.real(id);
    let describe = |id: RealId| {
        real_of(id).map(|r| fmt_addr_port(&r.addr, if r.port == 0 { q.dport } else { r.port }))
    };
    let method = |id: RealId| real_of(id).map(|r| r.options.method.forward_name().to_string());
    let egress = |id: RealId| {
        Some(match snap.real_hop(id) {
            Resolve::Hop(h) => format!(
                "{} to {}",
                d.shared
                    .ports
                    .names
                    .get(usize::from(h.port))
                    .map_or("?", String::as_str),
                h.dst_mac()
            ),
            Resolve::Unresolved { port, ip } => format!(
                "{} to {} (MAC not resolved yet)",
                d.shared
                    .ports
                    .names
                    .get(usize::from(port))
                    .map_or("?", String::as_str),
                ip_from16(&ip)
            ),
            Resolve::NoRoute => "no route to the real server".to_string(),
        })
    };
    let mut r = TraceReply::default();
    match t {
        Trace::NoService => {
            r.verdict = "host".into();
            r.reason = "no virtual service matches and no connection exists: the host network stack gets it".into();
        }
        Trace::NotOpening { svc } => {
            r.verdict = "host".into();
            r.service = svc_name(svc);
            r.reason = "the service matches but no connection exists and the packet cannot open one (TCP without SYN): the host stack gets it, as with IPVS".into();
        }
        Trace::Connection {
            svc,
            real,
            state,
            expires_in,
            real_removed,
        } => {
            r.verdict = "forward".into();
            (r.service, r.real, r.method, r.egress) =
                (svc_name(svc), describe(real), method(real), egress(real));
            r.reason = format!(
                "existing connection in state {state}, expires in {expires_in} s{}",
                if real_removed {
                    "; its real server was removed or is down, the connection finishes on it"
                } else {
                    ""
                }
            );
        }
        Trace::Reply { svc, real, state } => {
            r.verdict = "forward".into();
            (r.service, r.real, r.method) = (svc_name(svc), describe(real), method(real));
            r.reason = format!(
                "reply of a connection in state {state}: rewritten and sent back to the client"
            );
        }
        Trace::Persistent {
            svc,
            real,
            expires_in,
        } => {
            r.verdict = "forward".into();
            (r.service, r.real, r.method, r.egress) =
                (svc_name(svc), describe(real), method(real), egress(real));
            r.reason = format!(
                "persistence template for this client expires in {expires_in} s and names this real server"
            );
        }
        Trace::Scheduled { svc, real } => {
            r.verdict = "forward".into();
            let sched = snap
                .services
                .service(svc)
                .map(|s| s.options.scheduler.clone())
                .unwrap_or_default();
            (r.service, r.real, r.method, r.egress) =
                (svc_name(svc), describe(real), method(real), egress(real));
            r.reason = format!(
                "new connection: scheduler {sched} picks this real server (stateful schedulers such as rr pick per worker, so a worker may choose another)"
            );
        }
        Trace::Martian { svc } => {
            r.verdict = "drop".into();
            r.service = svc_name(svc);
            r.reason = "the source cannot be a client's (unspecified, broadcast, multicast, loopback, reserved, or the virtual address itself): dropped as martian, no connection is made".into();
        }
        Trace::NoRealServer { svc } => {
            r.verdict = "drop".into();
            r.service = svc_name(svc);
            r.reason = "no real server is available (none, all weight 0, or all over their thresholds): dropped with ICMP unreachable".into();
        }
    }
    Ok(r)
}
