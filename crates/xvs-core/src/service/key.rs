//! What identifies a virtual service: protocol, address family and the service key.

use core::fmt;
use core::net::IpAddr;
use xvs_wire::ip_proto;

/// Transport protocol of an address-based virtual service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    /// TCP (`-t`).
    Tcp,
    /// UDP (`-u`).
    Udp,
    /// SCTP (`--sctp-service`).
    Sctp,
}

impl Protocol {
    /// The IP protocol number.
    pub const fn number(self) -> u8 {
        match self {
            Protocol::Tcp => ip_proto::TCP,
            Protocol::Udp => ip_proto::UDP,
            Protocol::Sctp => ip_proto::SCTP,
        }
    }

    /// The protocol for an IP protocol number, if xvs balances it.
    pub const fn from_number(n: u8) -> Option<Protocol> {
        match n {
            ip_proto::TCP => Some(Protocol::Tcp),
            ip_proto::UDP => Some(Protocol::Udp),
            ip_proto::SCTP => Some(Protocol::Sctp),
            _ => None,
        }
    }

    /// ipvsadm's name for it in listings (`TCP`, `UDP`, `SCTP`).
    pub const fn name(self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Sctp => "SCTP",
        }
    }
}

/// Address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

impl Family {
    /// The family of an address.
    pub const fn of(a: &IpAddr) -> Family {
        match a {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }

    /// 4 or 6.
    pub const fn version(self) -> u8 {
        match self {
            Family::V4 => 4,
            Family::V6 => 6,
        }
    }
}

/// What identifies a virtual service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ServiceKey {
    /// Protocol, virtual IP and port (port 0 = all ports, as in IPVS).
    Addr {
        /// Transport protocol.
        proto: Protocol,
        /// The VIP.
        addr: IpAddr,
        /// The virtual port.
        port: u16,
    },
    /// A firewall mark with an address family (`-f MARK [-6]`).
    Fwmark {
        /// The mark; packets get it from [`MarkRule`]s.
        mark: u32,
        /// Which family the service serves.
        family: Family,
    },
}

impl ServiceKey {
    /// The address family of the service.
    pub const fn family(&self) -> Family {
        match self {
            ServiceKey::Addr { addr, .. } => Family::of(addr),
            ServiceKey::Fwmark { family, .. } => *family,
        }
    }

    /// The virtual port (0 for fwmark services and port-less services).
    pub const fn port(&self) -> u16 {
        match self {
            ServiceKey::Addr { port, .. } => *port,
            ServiceKey::Fwmark { .. } => 0,
        }
    }
}

impl fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServiceKey::Addr { proto, addr, port } => match addr {
                IpAddr::V4(a) => write!(f, "{} {a}:{port}", proto.name()),
                IpAddr::V6(a) => write!(f, "{} [{a}]:{port}", proto.name()),
            },
            ServiceKey::Fwmark { mark, family } => match family {
                Family::V4 => write!(f, "FWM {mark}"),
                Family::V6 => write!(f, "FWM {mark} IPv6"),
            },
        }
    }
}
