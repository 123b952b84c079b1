//! The reference lab: a two-armed director in front of three real servers.
//!
//! ```text
//!  client 203.0.113.7 ── router 198.18.0.1 ── ext 198.18.0.2 [director] int 198.18.1.1 ── RS1 .11
//!                                                                                      ├─ RS2 .12
//!                                                                                      └─ RS3 .13
//! ```
//! IPv6: ext 2001:db8::2 (router 2001:db8::1), int 2001:db8:1::1, RS1 2001:db8:1::11, RS2 ::12.
//! One virtual service per method, named by its VIP (see the constants).

use std::sync::Arc;
use xvs_core::conn::{ConnTable, Timeouts};
use xvs_core::net::{NetState, Port, Route};
use xvs_core::service::{
    Method, Persistence, Protocol, RealOptions, ServiceKey, ServiceOptions, ServiceTable,
};
use xvs_core::stats::Stats;
use xvs_core::{Forwarder, Options, PortId, Snapshot};
use xvs_wire::MacAddr;

use crate::pkt::{IpPacket, eth, ip};

/// External port.
pub const EXT: PortId = 0;
/// Internal port.
pub const INT: PortId = 1;
/// Director's external MAC.
pub const EXT_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x02]);
/// Director's internal MAC.
pub const INT_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 1, 0x01]);
/// The upstream router's MAC.
pub const ROUTER_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x01]);
/// RS1's MAC.
pub const RS1_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 1, 0x11]);
/// RS2's MAC.
pub const RS2_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 1, 0x12]);
/// RS3's MAC.
pub const RS3_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 1, 0x13]);
/// Egress MTU of both ports.
pub const MTU: u16 = 1500;

/// A client behind the router.
pub const CLIENT: &str = "203.0.113.7";
/// A client on IPv6.
pub const CLIENT6: &str = "2001:db8:ff::7";
/// Director's external address.
pub const DIR_EXT: &str = "198.18.0.2";
/// Director's internal address (TUN outer source).
pub const DIR_INT: &str = "198.18.1.1";
/// Director's internal IPv6 address.
pub const DIR_INT6: &str = "2001:db8:1::1";
/// RS1.
pub const RS1: &str = "198.18.1.11";
/// RS2.
pub const RS2: &str = "198.18.1.12";
/// RS3 (no neighbour entry: its MAC is unknown until resolved).
pub const RS3: &str = "198.18.1.13";
/// RS1 on IPv6.
pub const RS1_6: &str = "2001:db8:1::11";
/// RS2 on IPv6.
pub const RS2_6: &str = "2001:db8:1::12";
/// FullNAT local address.
pub const LADDR: &str = "198.18.1.100";
/// FullNAT local address on IPv6.
pub const LADDR6: &str = "2001:db8:1::100";

/// TCP :80, DR → RS1.
pub const VIP_DR: &str = "198.51.100.10";
/// TCP :80 → RS1:8080 and UDP :53 → RS2:53, NAT.
pub const VIP_NAT: &str = "198.51.100.11";
/// TCP :80, TUN → RS2.
pub const VIP_TUN: &str = "198.51.100.12";
/// TCP :80, FullNAT → RS1:80 with local address [`LADDR`].
pub const VIP_FNAT: &str = "198.51.100.13";
/// TCP :80, TUN with GUE (UDP port [`GUE_PORT`], UDP checksum) → RS2.
pub const VIP_GUE: &str = "198.51.100.14";
/// TCP :80, TUN with GRE (no checksum) → RS2.
pub const VIP_GRE: &str = "198.51.100.15";
/// The GUE port of [`VIP_GUE`]'s real server.
pub const GUE_PORT: u16 = 6080;
/// IPv6 TCP :80, TUN with GRE and its checksum → RS2.
pub const VIP6_GRE: &str = "2001:db8:100::15";
/// TCP :80, rr with persistence 300 s over RS1 and RS2 (DR).
pub const VIP_PERSIST: &str = "198.51.100.20";
/// TCP :80, rr over RS1 and RS2 (DR), no persistence.
pub const VIP_RR: &str = "198.51.100.21";
/// TCP :80, one real server (RS1) with weight 0.
pub const VIP_QUIESCED: &str = "198.51.100.22";
/// TCP :80, DR → RS3 (unresolved neighbour).
pub const VIP_UNRESOLVED: &str = "198.51.100.23";
/// UDP :53, NAT with one-packet scheduling, rr over RS1 and RS2.
pub const VIP_OPS: &str = "198.51.100.24";
/// IPv6 TCP :80, DR → RS1.
pub const VIP6_DR: &str = "2001:db8:100::10";
/// IPv6 TCP :80, NAT → RS1:8080.
pub const VIP6_NAT: &str = "2001:db8:100::11";
/// IPv6 TCP :80, TUN → RS2.
pub const VIP6_TUN: &str = "2001:db8:100::12";
/// IPv6 TCP :80, FullNAT → RS1:80 with local address [`LADDR6`].
pub const VIP6_FNAT: &str = "2001:db8:100::13";
/// SCTP :3868 (Diameter), NAT → RS1:3868.
pub const VIP_SCTP: &str = "198.51.100.30";

/// A TCP or UDP service key.
pub fn svc(proto: Protocol, vip: &str, port: u16) -> ServiceKey {
    ServiceKey::Addr {
        proto,
        addr: ip(vip),
        port,
    }
}

fn real(method: Method, weight: u32) -> RealOptions {
    RealOptions {
        method,
        weight,
        ..RealOptions::default()
    }
}

fn opts(sched: &str) -> ServiceOptions {
    ServiceOptions {
        scheduler: sched.into(),
        ..ServiceOptions::default()
    }
}

/// The lab's services.
pub fn services() -> ServiceTable {
    let mut t = ServiceTable::new(64, 256);
    let tcp = Protocol::Tcp;
    let add = |t: &mut ServiceTable,
               key: ServiceKey,
               o: ServiceOptions,
               reals: &[(&str, Option<u16>, RealOptions)]| {
        t.add_service(key, o).expect("lab service");
        for (a, p, r) in reals {
            t.add_real(&key, ip(a), *p, *r).expect("lab real");
        }
    };
    add(
        &mut t,
        svc(tcp, VIP_DR, 80),
        opts("rr"),
        &[(RS1, None, real(Method::Dr, 1))],
    );
    add(
        &mut t,
        svc(tcp, VIP_NAT, 80),
        opts("rr"),
        &[(RS1, Some(8080), real(Method::Nat, 1))],
    );
    add(
        &mut t,
        svc(Protocol::Udp, VIP_NAT, 53),
        opts("rr"),
        &[(RS2, Some(53), real(Method::Nat, 1))],
    );
    add(
        &mut t,
        svc(tcp, VIP_TUN, 80),
        opts("rr"),
        &[(RS2, None, real(Method::Tun, 1))],
    );
    let tunnel = |kind, port, csum| RealOptions {
        tunnel: xvs_core::service::Tunnel { kind, port, csum },
        ..real(Method::Tun, 1)
    };
    use xvs_core::service::{TunnelCsum, TunnelKind};
    add(
        &mut t,
        svc(tcp, VIP_GUE, 80),
        opts("rr"),
        &[(
            RS2,
            None,
            tunnel(TunnelKind::Gue, GUE_PORT, TunnelCsum::Csum),
        )],
    );
    add(
        &mut t,
        svc(tcp, VIP_GRE, 80),
        opts("rr"),
        &[(RS2, None, tunnel(TunnelKind::Gre, 0, TunnelCsum::NoCsum))],
    );
    add(
        &mut t,
        svc(tcp, VIP6_GRE, 80),
        opts("rr"),
        &[(RS2_6, None, tunnel(TunnelKind::Gre, 0, TunnelCsum::Csum))],
    );
    let fnat = ServiceOptions {
        local_addrs: vec![ip(LADDR)],
        ..opts("rr")
    };
    add(
        &mut t,
        svc(tcp, VIP_FNAT, 80),
        fnat,
        &[(RS1, None, real(Method::FullNat, 1))],
    );
    let persist = ServiceOptions {
        persistence: Some(Persistence {
            timeout: 300,
            prefix_len: 32,
        }),
        ..opts("rr")
    };
    add(
        &mut t,
        svc(tcp, VIP_PERSIST, 80),
        persist,
        &[
            (RS1, None, real(Method::Dr, 1)),
            (RS2, None, real(Method::Dr, 1)),
        ],
    );
    add(
        &mut t,
        svc(tcp, VIP_RR, 80),
        opts("rr"),
        &[
            (RS1, None, real(Method::Dr, 1)),
            (RS2, None, real(Method::Dr, 1)),
        ],
    );
    add(
        &mut t,
        svc(tcp, VIP_QUIESCED, 80),
        opts("wlc"),
        &[(RS1, None, real(Method::Dr, 0))],
    );
    add(
        &mut t,
        svc(tcp, VIP_UNRESOLVED, 80),
        opts("rr"),
        &[(RS3, None, real(Method::Dr, 1))],
    );
    let ops = ServiceOptions {
        one_packet: true,
        ..opts("rr")
    };
    add(
        &mut t,
        svc(Protocol::Udp, VIP_OPS, 53),
        ops,
        &[
            (RS1, None, real(Method::Nat, 1)),
            (RS2, None, real(Method::Nat, 1)),
        ],
    );
    add(
        &mut t,
        svc(tcp, VIP6_DR, 80),
        opts("rr"),
        &[(RS1_6, None, real(Method::Dr, 1))],
    );
    add(
        &mut t,
        svc(tcp, VIP6_NAT, 80),
        opts("rr"),
        &[(RS1_6, Some(8080), real(Method::Nat, 1))],
    );
    add(
        &mut t,
        svc(tcp, VIP6_TUN, 80),
        opts("rr"),
        &[(RS2_6, None, real(Method::Tun, 1))],
    );
    let fnat6 = ServiceOptions {
        local_addrs: vec![ip(LADDR6)],
        ..opts("rr")
    };
    add(
        &mut t,
        svc(tcp, VIP6_FNAT, 80),
        fnat6,
        &[(RS1_6, None, real(Method::FullNat, 1))],
    );
    let sctp = svc(Protocol::Sctp, VIP_SCTP, 3868);
    add(
        &mut t,
        sctp,
        opts("rr"),
        &[(RS1, None, real(Method::Nat, 1))],
    );
    t
}

/// The lab's ports, routes and neighbours (RS3 left unresolved).
pub fn net() -> NetState {
    let mut n = NetState::new(vec![
        Port {
            name: "ext".into(),
            mac: EXT_MAC,
            mtu: MTU,
            addrs: vec![ip(DIR_EXT), ip("2001:db8::2")],
        },
        Port {
            name: "int".into(),
            mac: INT_MAC,
            mtu: MTU,
            addrs: vec![ip(DIR_INT), ip(DIR_INT6)],
        },
    ]);
    n.add_route(Route {
        dst: ip("0.0.0.0"),
        prefix_len: 0,
        port: EXT,
        gateway: Some(ip("198.18.0.1")),
    });
    n.add_route(Route {
        dst: ip("198.18.0.0"),
        prefix_len: 24,
        port: EXT,
        gateway: None,
    });
    n.add_route(Route {
        dst: ip("198.18.1.0"),
        prefix_len: 24,
        port: INT,
        gateway: None,
    });
    n.add_route(Route {
        dst: ip("::"),
        prefix_len: 0,
        port: EXT,
        gateway: Some(ip("2001:db8::1")),
    });
    n.add_route(Route {
        dst: ip("2001:db8:1::"),
        prefix_len: 64,
        port: INT,
        gateway: None,
    });
    n.set_neighbour(ip("198.18.0.1"), EXT, ROUTER_MAC);
    n.set_neighbour(ip("2001:db8::1"), EXT, ROUTER_MAC);
    n.set_neighbour(ip(RS1), INT, RS1_MAC);
    n.set_neighbour(ip(RS2), INT, RS2_MAC);
    n.set_neighbour(ip(RS1_6), INT, RS1_MAC);
    n.set_neighbour(ip(RS2_6), INT, RS2_MAC);
    n
}

/// A snapshot of the lab (generation 1).
pub fn snapshot() -> Snapshot {
    snapshot_of(services(), 1)
}

/// A snapshot of other services on the lab's network.
pub fn snapshot_of(services: ServiceTable, generation: u64) -> Snapshot {
    Snapshot::new(
        Arc::new(services),
        Arc::new(net()),
        Timeouts::default(),
        Options::default(),
        generation,
    )
}

/// A forwarder (worker 0 of 1) with its own table (4096 entries) and counters.
pub fn forwarder() -> Forwarder {
    forwarder_with_table(4096).0
}

/// A forwarder (worker 0 of 1) over a table of `entries` and counters of its own, with both
/// handed out to look at.
pub fn forwarder_with_table(entries: usize) -> (Forwarder, Arc<ConnTable>, Arc<Stats>) {
    let table = Arc::new(ConnTable::new(entries, 0x5eed));
    let stats = Arc::new(Stats::new(1, 256));
    let fw = Forwarder::new(Arc::clone(&table), Arc::clone(&stats), 0, 0x5eed);
    (fw, table, stats)
}

/// A frame from the client side: the router's to the director's external port.
pub fn from_client(p: &impl IpPacket) -> Vec<u8> {
    eth(EXT_MAC, ROUTER_MAC, p)
}

/// Headroom the test frames get (AF_XDP gives 256).
pub const HEADROOM: usize = 256;

/// Runs one frame through the forwarder at `secs`; returns the verdict and the frame after.
pub fn run(
    fw: &mut Forwarder,
    snap: &Snapshot,
    ingress: PortId,
    frame: &[u8],
    secs: u64,
) -> (xvs_core::Verdict, Vec<u8>) {
    let mut buf = vec![0u8; HEADROOM + frame.len() + 64];
    buf[HEADROOM..HEADROOM + frame.len()].copy_from_slice(frame);
    let mut frames = [xvs_core::Frame::new(
        &mut buf,
        HEADROOM,
        frame.len(),
        ingress,
    )];
    let mut verdicts = [xvs_core::Verdict::Pass];
    fw.process(
        snap,
        &mut frames,
        &mut verdicts,
        xvs_core::Time::from_secs(secs),
    );
    (verdicts[0], frames[0].data().to_vec())
}
