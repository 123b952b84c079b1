//! From the kernel's view (rtnetlink) and the service table to what the workers and the XDP
//! program use: the core's `NetState` (ports, routes, neighbours) and the steering sets.

use std::collections::HashSet;
use std::net::IpAddr;
use xvs_core::PortId;
use xvs_core::net::{NetState, Port, Route};
use xvs_core::service::{Method, ServiceKey, ServiceTable, addr16};
use xvs_io::netlink::NetView;
use xvs_io::steering::{SteeringSets, SvcKey};
use xvs_wire::{MacAddr, ip_proto};

/// The served interfaces, in port order, with their kernel indexes.
#[derive(Debug, Clone)]
pub struct Ports {
    /// Names.
    pub names: Vec<String>,
    /// Kernel interface indexes.
    pub ifindex: Vec<u32>,
}

impl Ports {
    /// Finds the served interfaces in `view`; names the first one missing.
    pub fn find(names: &[String], view: &NetView) -> Result<Ports, String> {
        let mut ifindex = Vec::new();
        for n in names {
            let l = view.links.iter().find(|l| &l.name == n).ok_or_else(|| {
                format!(
                    "interface {n} does not exist (check `ip link`; the name is case-sensitive)"
                )
            })?;
            ifindex.push(l.index);
        }
        Ok(Ports {
            names: names.to_vec(),
            ifindex,
        })
    }

    /// The port of a kernel interface.
    pub fn port_of(&self, ifindex: u32) -> Option<PortId> {
        self.ifindex
            .iter()
            .position(|&i| i == ifindex)
            .map(|p| p as PortId)
    }
}

/// The core's network state for the served ports.
pub fn net_state(ports: &Ports, view: &NetView) -> NetState {
    let mut n = NetState::new(
        ports
            .ifindex
            .iter()
            .zip(&ports.names)
            .map(|(&ix, name)| {
                let link = view.links.iter().find(|l| l.index == ix);
                let mut mac = [0u8; 6];
                if let Some(l) = link.filter(|l| l.mac.len() == 6) {
                    mac.copy_from_slice(&l.mac);
                }
                Port {
                    name: name.clone(),
                    mac: MacAddr(mac),
                    mtu: link.map_or(1500, |l| l.mtu.min(u32::from(u16::MAX)) as u16),
                    addrs: view
                        .addrs
                        .iter()
                        .filter(|a| a.ifindex == ix)
                        .map(|a| a.addr)
                        .collect(),
                }
            })
            .collect(),
    );
    for r in &view.routes {
        if let Some(port) = ports.port_of(r.oif) {
            n.add_route(Route {
                dst: r.dst,
                prefix_len: r.prefix_len,
                port,
                gateway: r.gateway,
            });
        }
    }
    for nb in &view.neighbours {
        if let Some(port) = ports.port_of(nb.ifindex) {
            n.set_neighbour(nb.ip, port, MacAddr(nb.mac));
        }
    }
    n
}

fn icmp_of(a: &IpAddr) -> u8 {
    if a.is_ipv4() {
        ip_proto::ICMP
    } else {
        ip_proto::ICMPV6
    }
}

/// What the XDP program must steer to xvs, for these services and these local addresses;
/// services on an address in `inactive` (held by a VRRP instance that is not master here)
/// are not steered: a backup director leaves their traffic alone.
pub fn steering_sets(
    services: &ServiceTable,
    view: &NetView,
    inactive: &HashSet<IpAddr>,
) -> (SteeringSets, Vec<String>) {
    let mut s = SteeringSets::default();
    let mut warnings = Vec::new();
    let key = |addr: &IpAddr, port: u16, proto: u8| SvcKey {
        addr: addr16(addr),
        port,
        proto,
        pad: 0,
    };
    // A withdrawn service (health quorum not met) is not steered: the host stack gets its
    // packets, as if the VIP had no service.
    for svc in services.services().filter(|s| !s.down) {
        if let ServiceKey::Addr { proto, addr, port } = svc.key {
            if inactive.contains(&addr) {
                continue;
            }
            s.vips.insert(key(&addr, port, proto.number()));
            s.vips.insert(key(&addr, 0, icmp_of(&addr)));
        }
        for a in &svc.options.local_addrs {
            s.laddrs.insert(addr16(a));
        }
    }
    for rule in services.mark_rules() {
        let host = matches!(
            (rule.dst, rule.prefix_len),
            (IpAddr::V4(_), 32) | (IpAddr::V6(_), 128)
        );
        if !host {
            warnings.push(format!(
                "mark {} on {}/{}: xvs steers firewall-mark traffic to host addresses only; \
                 list each address as a /32 or /128 rule",
                rule.mark, rule.dst, rule.prefix_len
            ));
            continue;
        }
        let protos: Vec<u8> = match rule.proto {
            Some(p) => vec![p.number()],
            None => vec![ip_proto::TCP, ip_proto::UDP, ip_proto::SCTP],
        };
        for p in protos {
            s.vips.insert(key(&rule.dst, 0, p));
        }
        s.vips.insert(key(&rule.dst, 0, icmp_of(&rule.dst)));
    }
    // Replies of NAT real servers (removed ones too: their connections finish).
    for real in services.reals() {
        if real.options.method != Method::Nat {
            continue;
        }
        let Some(svc) = services.service(real.service) else {
            continue;
        };
        let proto = match svc.key {
            ServiceKey::Addr { proto, .. } => vec![proto.number()],
            ServiceKey::Fwmark { .. } => vec![ip_proto::TCP, ip_proto::UDP, ip_proto::SCTP],
        };
        for p in proto {
            s.rips.insert(key(&real.addr, real.port, p));
        }
        s.rips.insert(key(&real.addr, 0, icmp_of(&real.addr)));
    }
    s.locals = view
        .addrs
        .iter()
        .map(|a| addr16(&a.addr))
        .collect::<HashSet<_>>();
    (s, warnings)
}
