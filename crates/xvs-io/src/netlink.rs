//! The kernel's view of the network, over rtnetlink: interfaces (MAC, MTU), addresses, the main
//! routing table and the neighbour table; change notifications; and neighbour resolution
//! requests (`NTF_USE`: the kernel resolves as if a packet were waiting, sending nothing else).

use netlink_packet_core::{
    NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage,
    NetlinkPayload,
};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage, LinkXdp};
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
};
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};
use std::io;
use std::net::IpAddr;

/// An interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// Index.
    pub index: u32,
    /// Name.
    pub name: String,
    /// MAC address (empty for links without one).
    pub mac: Vec<u8>,
    /// MTU.
    pub mtu: u32,
    /// Administratively up (`ip link set IF up`).
    pub up: bool,
    /// Has a carrier (the lower layer is up: a veth's peer is up, a cable is in).
    pub carrier: bool,
    /// The id of the XDP program attached to it (0: none).
    pub xdp_prog: u32,
}

/// An address on an interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addr {
    /// Interface index.
    pub ifindex: u32,
    /// The address.
    pub addr: IpAddr,
    /// Prefix length.
    pub prefix_len: u8,
}

/// A route of the main table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Destination network (`0.0.0.0` / `::` for the default route).
    pub dst: IpAddr,
    /// Prefix length.
    pub prefix_len: u8,
    /// Egress interface.
    pub oif: u32,
    /// Gateway, if not directly connected.
    pub gateway: Option<IpAddr>,
}

/// A usable neighbour entry (reachable, stale, delay, probe, permanent or noarp).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Neighbour {
    /// Interface index.
    pub ifindex: u32,
    /// The neighbour's address.
    pub ip: IpAddr,
    /// Its MAC.
    pub mac: [u8; 6],
}

/// Everything xvs reads from the kernel.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetView {
    /// Interfaces.
    pub links: Vec<Link>,
    /// Addresses.
    pub addrs: Vec<Addr>,
    /// Main-table unicast routes.
    pub routes: Vec<Route>,
    /// Resolved neighbours.
    pub neighbours: Vec<Neighbour>,
}

/// A netlink route socket for requests.
pub struct Netlink {
    sock: Socket,
    seq: u32,
}

const RT_TABLE_MAIN: u8 = 254;
const RTN_UNICAST: u8 = 1;

impl Netlink {
    /// Opens a route netlink socket.
    pub fn open() -> io::Result<Netlink> {
        let mut sock = Socket::new(NETLINK_ROUTE)?;
        sock.bind_auto()?;
        sock.connect(&SocketAddr::new(0, 0))?;
        Ok(Netlink { sock, seq: 0 })
    }

    fn request(
        &mut self,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> io::Result<Vec<RouteNetlinkMessage>> {
        self.seq = self.seq.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = flags | NLM_F_REQUEST;
        header.sequence_number = self.seq;
        let mut nl = NetlinkMessage::new(header, NetlinkPayload::from(msg));
        nl.finalize();
        let mut buf = vec![0u8; nl.buffer_len()];
        nl.serialize(&mut buf);
        self.sock.send(&buf, 0)?;
        let mut out = Vec::new();
        loop {
            let (data, _) = self.sock.recv_from_full()?;
            let mut off = 0;
            while off < data.len() {
                let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&data[off..])
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
                let len = msg.header.length as usize;
                if msg.header.sequence_number != self.seq {
                    off += len.max(1);
                    continue;
                }
                match msg.payload {
                    NetlinkPayload::Done(_) => return Ok(out),
                    NetlinkPayload::Error(e) => {
                        return match e.code {
                            None => Ok(out),
                            Some(c) => Err(io::Error::from_raw_os_error(-c.get())),
                        };
                    }
                    NetlinkPayload::InnerMessage(m) => out.push(m),
                    _ => {}
                }
                if len == 0 {
                    break;
                }
                off += len;
            }
            if flags & NLM_F_DUMP != NLM_F_DUMP && flags & NLM_F_ACK == 0 {
                return Ok(out);
            }
        }
    }

    /// Reads interfaces, addresses, main-table routes and resolved neighbours.
    pub fn view(&mut self) -> io::Result<NetView> {
        let mut v = NetView::default();
        for m in self.request(
            RouteNetlinkMessage::GetLink(LinkMessage::default()),
            NLM_F_DUMP,
        )? {
            if let RouteNetlinkMessage::NewLink(l) = m {
                let mut link = Link {
                    index: l.header.index,
                    name: String::new(),
                    mac: Vec::new(),
                    mtu: 1500,
                    up: l.header.flags.contains(LinkFlags::Up),
                    carrier: l.header.flags.contains(LinkFlags::LowerUp),
                    xdp_prog: 0,
                };
                for a in l.attributes {
                    match a {
                        LinkAttribute::IfName(n) => link.name = n,
                        LinkAttribute::Address(mac) => link.mac = mac,
                        LinkAttribute::Mtu(mtu) => link.mtu = mtu,
                        LinkAttribute::Xdp(x) => {
                            for a in x {
                                if let LinkXdp::ProgId(id) = a {
                                    link.xdp_prog = id;
                                }
                            }
                        }
                        _ => {}
                    }
                }
                v.links.push(link);
            }
        }
        for m in self.request(
            RouteNetlinkMessage::GetAddress(AddressMessage::default()),
            NLM_F_DUMP,
        )? {
            if let RouteNetlinkMessage::NewAddress(a) = m {
                let mut addr = None;
                for at in &a.attributes {
                    match at {
                        AddressAttribute::Local(ip) => addr = Some(*ip),
                        AddressAttribute::Address(ip) if addr.is_none() => addr = Some(*ip),
                        _ => {}
                    }
                }
                if let Some(addr) = addr {
                    v.addrs.push(Addr {
                        ifindex: a.header.index,
                        addr,
                        prefix_len: a.header.prefix_len,
                    });
                }
            }
        }
        for family in [AddressFamily::Inet, AddressFamily::Inet6] {
            let mut q = RouteMessage::default();
            q.header.address_family = family;
            for m in self.request(RouteNetlinkMessage::GetRoute(q), NLM_F_DUMP)? {
                if let RouteNetlinkMessage::NewRoute(r) = m {
                    if let Some(route) = route_of(&r) {
                        v.routes.push(route);
                    }
                }
            }
        }
        for m in self.request(
            RouteNetlinkMessage::GetNeighbour(NeighbourMessage::default()),
            NLM_F_DUMP,
        )? {
            if let RouteNetlinkMessage::NewNeighbour(n) = m {
                if let Some(n) = neighbour_of(&n) {
                    v.neighbours.push(n);
                }
            }
        }
        Ok(v)
    }

    /// Asks the kernel to resolve `ip` on interface `ifindex` (ARP / neighbour solicitation),
    /// as if a packet were waiting for it.
    pub fn resolve(&mut self, ifindex: u32, ip: IpAddr) -> io::Result<()> {
        let mut m = NeighbourMessage::default();
        m.header.family = match ip {
            IpAddr::V4(_) => AddressFamily::Inet,
            IpAddr::V6(_) => AddressFamily::Inet6,
        };
        m.header.ifindex = ifindex;
        m.header.state = NeighbourState::Incomplete;
        m.header.flags = NeighbourFlags::Use;
        m.attributes.push(NeighbourAttribute::Destination(match ip {
            IpAddr::V4(a) => NeighbourAddress::Inet(a),
            IpAddr::V6(a) => NeighbourAddress::Inet6(a),
        }));
        self.request(
            RouteNetlinkMessage::NewNeighbour(m),
            NLM_F_CREATE | NLM_F_ACK,
        )?;
        Ok(())
    }
}

impl Netlink {
    fn addr_message(ifindex: u32, ip: IpAddr) -> AddressMessage {
        Self::prefix_message(ifindex, ip, if ip.is_ipv4() { 32 } else { 128 })
    }

    fn prefix_message(ifindex: u32, ip: IpAddr, prefix: u8) -> AddressMessage {
        let mut m = AddressMessage::default();
        m.header.family = match ip {
            IpAddr::V4(_) => AddressFamily::Inet,
            IpAddr::V6(_) => AddressFamily::Inet6,
        };
        m.header.prefix_len = prefix;
        if ip.is_ipv6() {
            // No duplicate-address detection for an address that moves between directors.
            m.header.flags = netlink_packet_route::address::AddressHeaderFlags::Nodad;
        }
        m.header.index = ifindex;
        m.attributes.push(AddressAttribute::Local(ip));
        m.attributes.push(AddressAttribute::Address(ip));
        m
    }

    /// Adds `ip` as a host address (/32 or /128) of `ifindex`. Returns false if it was
    /// already there.
    pub fn add_address(&mut self, ifindex: u32, ip: IpAddr) -> io::Result<bool> {
        let m = Self::addr_message(ifindex, ip);
        match self.request(
            RouteNetlinkMessage::NewAddress(m),
            NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK,
        ) {
            Ok(_) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Adds `ip/prefix` to `ifindex` (IPv6 without duplicate-address detection). Returns
    /// false if it was already there.
    pub fn add_prefix(&mut self, ifindex: u32, ip: IpAddr, prefix: u8) -> io::Result<bool> {
        let m = Self::prefix_message(ifindex, ip, prefix);
        match self.request(
            RouteNetlinkMessage::NewAddress(m),
            NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK,
        ) {
            Ok(_) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Removes `ip/prefix` from `ifindex`.
    pub fn remove_prefix(&mut self, ifindex: u32, ip: IpAddr, prefix: u8) -> io::Result<()> {
        let m = Self::prefix_message(ifindex, ip, prefix);
        self.request(RouteNetlinkMessage::DelAddress(m), NLM_F_ACK)
            .map(|_| ())
    }

    /// Sets interface `ifindex` administratively up.
    pub fn set_up(&mut self, ifindex: u32) -> io::Result<()> {
        let mut m = LinkMessage::default();
        m.header.index = ifindex;
        m.header.flags = LinkFlags::Up;
        m.header.change_mask = LinkFlags::Up;
        self.request(RouteNetlinkMessage::SetLink(m), NLM_F_ACK)
            .map(|_| ())
    }

    /// Adds (or renews) `ip/prefix` on `ifindex` valid for `secs` seconds: it goes by itself
    /// unless renewed (an address of a process that died goes within that time).
    pub fn add_prefix_for(
        &mut self,
        ifindex: u32,
        ip: IpAddr,
        prefix: u8,
        secs: u32,
    ) -> io::Result<()> {
        let mut m = Self::prefix_message(ifindex, ip, prefix);
        m.attributes.push(AddressAttribute::CacheInfo({
            let mut c = netlink_packet_route::address::CacheInfo::default();
            c.ifa_preferred = secs;
            c.ifa_valid = secs;
            c
        }));
        self.request(
            RouteNetlinkMessage::NewAddress(m),
            NLM_F_CREATE | netlink_packet_core::NLM_F_REPLACE | NLM_F_ACK,
        )
        .map(|_| ())
    }

    /// Removes the host address `ip` from `ifindex`.
    pub fn remove_address(&mut self, ifindex: u32, ip: IpAddr) -> io::Result<()> {
        let m = Self::addr_message(ifindex, ip);
        self.request(RouteNetlinkMessage::DelAddress(m), NLM_F_ACK)
            .map(|_| ())
    }
}

fn route_of(r: &RouteMessage) -> Option<Route> {
    if r.header.table != RT_TABLE_MAIN || u8::from(r.header.kind) != RTN_UNICAST {
        return None;
    }
    let v6 = r.header.address_family == AddressFamily::Inet6;
    let mut dst: IpAddr = if v6 {
        "::".parse().ok()?
    } else {
        "0.0.0.0".parse().ok()?
    };
    let (mut oif, mut gateway) = (None, None);
    for a in &r.attributes {
        match a {
            RouteAttribute::Destination(RouteAddress::Inet(d)) => dst = IpAddr::V4(*d),
            RouteAttribute::Destination(RouteAddress::Inet6(d)) => dst = IpAddr::V6(*d),
            RouteAttribute::Gateway(RouteAddress::Inet(g)) => gateway = Some(IpAddr::V4(*g)),
            RouteAttribute::Gateway(RouteAddress::Inet6(g)) => gateway = Some(IpAddr::V6(*g)),
            RouteAttribute::Oif(i) => oif = Some(*i),
            RouteAttribute::Table(t) if *t != u32::from(RT_TABLE_MAIN) => return None,
            _ => {}
        }
    }
    Some(Route {
        dst,
        prefix_len: r.header.destination_prefix_length,
        oif: oif?,
        gateway,
    })
}

fn neighbour_of(n: &NeighbourMessage) -> Option<Neighbour> {
    match n.header.state {
        NeighbourState::Reachable
        | NeighbourState::Stale
        | NeighbourState::Delay
        | NeighbourState::Probe
        | NeighbourState::Permanent
        | NeighbourState::Noarp => {}
        _ => return None,
    }
    let (mut ip, mut mac) = (None, None);
    for a in &n.attributes {
        match a {
            NeighbourAttribute::Destination(NeighbourAddress::Inet(a)) => ip = Some(IpAddr::V4(*a)),
            NeighbourAttribute::Destination(NeighbourAddress::Inet6(a)) => {
                ip = Some(IpAddr::V6(*a));
            }
            NeighbourAttribute::LinkLocalAddress(m) if m.len() == 6 => {
                let mut b = [0u8; 6];
                b.copy_from_slice(m);
                mac = Some(b);
            }
            _ => {}
        }
    }
    Some(Neighbour {
        ifindex: n.header.ifindex,
        ip: ip?,
        mac: mac?,
    })
}

/// A socket subscribed to link, address, route and neighbour changes.
pub struct Watch {
    sock: Socket,
}

impl Watch {
    /// Subscribes (non-blocking).
    pub fn open() -> io::Result<Watch> {
        let mut sock = Socket::new(NETLINK_ROUTE)?;
        sock.bind_auto()?;
        // RTNLGRP_LINK, NEIGH, IPV4_IFADDR, IPV4_ROUTE, IPV6_IFADDR, IPV6_ROUTE
        for g in [1u32, 3, 5, 7, 9, 11] {
            sock.add_membership(g)?;
        }
        sock.set_non_blocking(true)?;
        Ok(Watch { sock })
    }

    /// Drains pending notifications; true if anything changed since the last call.
    pub fn changed(&mut self) -> bool {
        let mut any = false;
        let mut buf = vec![0u8; 65536];
        loop {
            buf.clear();
            match self.sock.recv(&mut buf, libc::MSG_DONTWAIT) {
                Ok(n) if n > 0 => any = true,
                Ok(_) => return any,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return any,
                // An overrun (ENOBUFS) means we lost notifications: report a change.
                Err(_) => return true,
            }
        }
    }
}
