//! The director's own network as the forwarder needs it: ports (interfaces) with their MAC,
//! MTU and addresses; routes; and the neighbour table the I/O layer fills from the kernel.

use crate::PortId;
use crate::service::{addr16, prefix_match};
use core::net::IpAddr;
use rustc_hash::FxHashMap;
use xvs_wire::MacAddr;

/// A forwarding port: one interface served by xvs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Port {
    /// Interface name (for logs).
    pub name: String,
    /// Its MAC address (source MAC of frames it sends).
    pub mac: MacAddr,
    /// Its MTU (largest IP packet it sends).
    pub mtu: u16,
    /// Its addresses (TUN outer source, ICMP error source).
    pub addrs: Vec<IpAddr>,
}

impl Port {
    /// The first IPv4 address, 16-byte form.
    pub fn addr_v4(&self) -> Option<[u8; 16]> {
        self.addrs.iter().find(|a| a.is_ipv4()).map(addr16)
    }

    /// The first IPv6 address that is not link-local.
    pub fn addr_v6(&self) -> Option<[u8; 16]> {
        self.addrs
            .iter()
            .filter(|a| a.is_ipv6())
            .find(|a| addr16(a)[..2] != [0xfe, 0x80])
            .map(addr16)
    }

    /// The first address of a family (4 or 6).
    pub fn addr_of(&self, v6: bool) -> Option<[u8; 16]> {
        if v6 { self.addr_v6() } else { self.addr_v4() }
    }
}

/// A route: destination prefix, egress port, and gateway (none for on-link destinations).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// Destination network.
    pub dst: IpAddr,
    /// Prefix length.
    pub prefix_len: u8,
    /// Egress port.
    pub port: PortId,
    /// Next hop; `None` for directly connected networks.
    pub gateway: Option<IpAddr>,
}

impl Route {
    fn bits(&self) -> u32 {
        match self.dst {
            IpAddr::V4(_) => 96 + u32::from(self.prefix_len),
            IpAddr::V6(_) => u32::from(self.prefix_len),
        }
    }
}

/// A neighbour: where it is and its MAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Neighbour {
    port: PortId,
    mac: MacAddr,
}

/// A resolved next hop, ready to use: egress port, the twelve MAC bytes to write at the start
/// of the frame (destination, then the port's own as source), and the port's MTU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NextHop {
    /// Egress port.
    pub port: PortId,
    /// Destination MAC followed by source MAC.
    pub macs: [u8; 12],
    /// MTU of the egress port.
    pub mtu: u16,
}

impl NextHop {
    /// The next hop's MAC.
    pub fn dst_mac(&self) -> MacAddr {
        let mut m = [0; 6];
        m.copy_from_slice(&self.macs[..6]);
        MacAddr(m)
    }

    /// The egress port's MAC.
    pub fn src_mac(&self) -> MacAddr {
        let mut m = [0; 6];
        m.copy_from_slice(&self.macs[6..]);
        MacAddr(m)
    }
}

/// The result of resolving a destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolve {
    /// Send to this next hop.
    Hop(NextHop),
    /// The route is known but the next hop's MAC is not: the I/O layer should ask the kernel.
    Unresolved {
        /// Egress port.
        port: PortId,
        /// Next-hop address (16-byte form).
        ip: [u8; 16],
    },
    /// No route.
    NoRoute,
}

/// Ports, routes and neighbours.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetState {
    /// Ports by [`PortId`].
    pub ports: Vec<Port>,
    routes: Vec<Route>,
    neighbours: FxHashMap<[u8; 16], Neighbour>,
}

impl NetState {
    /// A state with these ports and nothing else.
    pub fn new(ports: Vec<Port>) -> NetState {
        NetState {
            ports,
            ..NetState::default()
        }
    }

    /// Adds a route (longest prefix wins; among equals the first added).
    pub fn add_route(&mut self, r: Route) {
        let pos = self
            .routes
            .iter()
            .position(|x| x.bits() < r.bits())
            .unwrap_or(self.routes.len());
        self.routes.insert(pos, r);
    }

    /// The routes, longest prefix first.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// Records a neighbour's MAC on a port.
    pub fn set_neighbour(&mut self, ip: IpAddr, port: PortId, mac: MacAddr) {
        self.neighbours.insert(addr16(&ip), Neighbour { port, mac });
    }

    /// Forgets a neighbour.
    pub fn remove_neighbour(&mut self, ip: &IpAddr) {
        self.neighbours.remove(&addr16(ip));
    }

    /// The known neighbours: address (16-byte form), port, MAC.
    pub fn neighbours(&self) -> impl Iterator<Item = ([u8; 16], PortId, MacAddr)> + '_ {
        self.neighbours.iter().map(|(ip, n)| (*ip, n.port, n.mac))
    }

    /// The neighbour at `ip` (16-byte form), if known: its port and MAC.
    pub fn neighbour(&self, ip: &[u8; 16]) -> Option<(PortId, MacAddr)> {
        self.neighbours.get(ip).map(|n| (n.port, n.mac))
    }

    /// Number of known neighbours.
    pub fn neighbour_count(&self) -> usize {
        self.neighbours.len()
    }

    /// The route for a destination (16-byte form).
    pub fn route(&self, dst: &[u8; 16]) -> Option<&Route> {
        let v4 = dst[..12] == xvs_wire::summary::V4_MAPPED_PREFIX;
        self.routes
            .iter()
            .filter(|r| r.dst.is_ipv4() == v4)
            .find(|r| prefix_match(&addr16(&r.dst), dst, r.bits()))
    }

    /// Resolves a destination to a next hop.
    pub fn resolve(&self, dst: &[u8; 16]) -> Resolve {
        let Some(r) = self.route(dst) else {
            return Resolve::NoRoute;
        };
        let via = r.gateway.as_ref().map_or(*dst, addr16);
        match (
            self.neighbours.get(&via),
            self.ports.get(usize::from(r.port)),
        ) {
            (Some(n), Some(p)) if n.port == r.port => {
                let mut macs = [0u8; 12];
                macs[..6].copy_from_slice(&n.mac.0);
                macs[6..].copy_from_slice(&p.mac.0);
                Resolve::Hop(NextHop {
                    port: r.port,
                    macs,
                    mtu: p.mtu,
                })
            }
            _ => Resolve::Unresolved {
                port: r.port,
                ip: via,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lab() -> NetState {
        let mut n = NetState::new(vec![
            Port {
                name: "ext".into(),
                mac: MacAddr([2, 0, 0, 0, 0, 1]),
                mtu: 1500,
                addrs: vec!["198.18.0.2".parse().unwrap()],
            },
            Port {
                name: "int".into(),
                mac: MacAddr([2, 0, 0, 0, 1, 1]),
                mtu: 1500,
                addrs: vec![
                    "198.18.1.1".parse().unwrap(),
                    "fe80::1".parse().unwrap(),
                    "2001:db8:1::1".parse().unwrap(),
                ],
            },
        ]);
        n.add_route(Route {
            dst: "0.0.0.0".parse().unwrap(),
            prefix_len: 0,
            port: 0,
            gateway: Some("198.18.0.1".parse().unwrap()),
        });
        n.add_route(Route {
            dst: "198.18.1.0".parse().unwrap(),
            prefix_len: 24,
            port: 1,
            gateway: None,
        });
        n.add_route(Route {
            dst: "2001:db8:1::".parse().unwrap(),
            prefix_len: 64,
            port: 1,
            gateway: None,
        });
        n
    }

    #[test]
    fn longest_prefix_and_gateway() {
        let mut n = lab();
        let rs = addr16(&"198.18.1.5".parse().unwrap());
        assert_eq!(n.resolve(&rs), Resolve::Unresolved { port: 1, ip: rs });
        n.set_neighbour(
            "198.18.1.5".parse().unwrap(),
            1,
            MacAddr([2, 0, 0, 0, 1, 5]),
        );
        let Resolve::Hop(h) = n.resolve(&rs) else {
            panic!("unresolved")
        };
        assert_eq!(
            (h.port, h.dst_mac(), h.src_mac(), h.mtu),
            (
                1,
                MacAddr([2, 0, 0, 0, 1, 5]),
                MacAddr([2, 0, 0, 0, 1, 1]),
                1500
            )
        );
        let client = addr16(&"203.0.113.9".parse().unwrap());
        let gw = addr16(&"198.18.0.1".parse().unwrap());
        assert_eq!(n.resolve(&client), Resolve::Unresolved { port: 0, ip: gw });
        n.set_neighbour(
            "198.18.0.1".parse().unwrap(),
            0,
            MacAddr([2, 0, 0, 0, 0, 9]),
        );
        assert!(matches!(
            n.resolve(&client),
            Resolve::Hop(NextHop { port: 0, .. })
        ));
        // IPv4 routes never match IPv6 destinations.
        assert_eq!(
            n.resolve(&addr16(&"2001:db8:2::1".parse().unwrap())),
            Resolve::NoRoute
        );
        assert_eq!(
            n.ports[1].addr_v6(),
            Some(addr16(&"2001:db8:1::1".parse().unwrap()))
        );
    }
}
