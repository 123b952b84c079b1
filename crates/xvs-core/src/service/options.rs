//! How a service schedules and how a real server is reached: the options ipvsadm sets.

use super::addr::addr16;
use super::key::ServiceKey;
use crate::{RealId, ServiceId};
use core::fmt;
use core::net::IpAddr;

/// Every scheduler xvs has, by its ipvsadm name; `sched::REGISTRY` builds them in this order.
pub const SCHEDULERS: [&str; 14] = [
    "rr", "wrr", "lc", "wlc", "sed", "nq", "sh", "dh", "lblc", "lblcr", "mh", "fo", "ovf", "twos",
];

/// True if `name` is a scheduler xvs has.
pub fn is_scheduler(name: &str) -> bool {
    SCHEDULERS.contains(&name)
}

/// Scheduler flags (`ipvsadm -b`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SchedFlags(pub u8);

impl SchedFlags {
    /// `sh-fallback`: sh picks another server when the hashed one is unavailable.
    pub const SH_FALLBACK: u8 = 1;
    /// `sh-port`: sh hashes the source port too.
    pub const SH_PORT: u8 = 2;
    /// `mh-fallback`: mh picks another server when the hashed one is unavailable.
    pub const MH_FALLBACK: u8 = 4;
    /// `mh-port`: mh hashes the source port too.
    pub const MH_PORT: u8 = 8;

    const NAMES: [(&'static str, u8); 4] = [
        ("sh-fallback", Self::SH_FALLBACK),
        ("sh-port", Self::SH_PORT),
        ("mh-fallback", Self::MH_FALLBACK),
        ("mh-port", Self::MH_PORT),
    ];

    /// True if `bit` is set.
    pub const fn has(self, bit: u8) -> bool {
        self.0 & bit != 0
    }

    /// Parses ipvsadm's comma-separated list (`sh-fallback,sh-port`).
    pub fn parse(s: &str) -> Result<SchedFlags, String> {
        let mut f = 0;
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let bit = Self::NAMES
                .iter()
                .find(|(n, _)| *n == part)
                .map(|(_, b)| *b)
                .ok_or_else(|| format!("unknown scheduler flag '{part}'"))?;
            f |= bit;
        }
        Ok(SchedFlags(f))
    }
}

impl fmt::Display for SchedFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (name, bit) in Self::NAMES {
            if self.has(bit) {
                if !first {
                    f.write_str(",")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        Ok(())
    }
}

/// How packets reach a real server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// Direct routing (`-g`): only the destination MAC changes.
    Dr,
    /// Masquerading (`-m`): destination address/port rewritten, replies come back through xvs.
    Nat,
    /// IP-in-IP tunnelling (`-i`).
    Tun,
    /// Full NAT (`--fullnat`, xvs's flag; DPVS's mode): source and destination rewritten.
    FullNat,
}

impl Method {
    /// ipvsadm's "Forward" column word.
    pub const fn forward_name(self) -> &'static str {
        match self {
            Method::Dr => "Route",
            Method::Nat => "Masq",
            Method::Tun => "Tunnel",
            Method::FullNat => "FullNat",
        }
    }

    /// True where replies come back through xvs (state is tracked in both directions).
    pub const fn is_two_way(self) -> bool {
        matches!(self, Method::Nat | Method::FullNat)
    }

    /// A small code for connection entries.
    pub(crate) const fn code(self) -> u8 {
        match self {
            Method::Dr => 0,
            Method::Nat => 1,
            Method::Tun => 2,
            Method::FullNat => 3,
        }
    }

    pub(crate) const fn from_code(c: u8) -> Method {
        match c & 3 {
            0 => Method::Dr,
            1 => Method::Nat,
            2 => Method::Tun,
            _ => Method::FullNat,
        }
    }
}

/// Persistence (`-p TIMEOUT -M NETMASK`): clients in the same network stick to one server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Persistence {
    /// Seconds a template outlives the client's last connection (ipvsadm default 300).
    pub timeout: u32,
    /// Client network prefix length (`-M`; 32 or 128 = per client address).
    pub prefix_len: u8,
}

/// Options of a virtual service, as given by `-A`/`-E`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceOptions {
    /// Scheduler name (`-s`, default `wlc`).
    pub scheduler: String,
    /// Scheduler flags (`-b`).
    pub flags: SchedFlags,
    /// Persistence (`-p`, `-M`).
    pub persistence: Option<Persistence>,
    /// One-packet scheduling for UDP (`-o`).
    pub one_packet: bool,
    /// FullNAT local address pool.
    pub local_addrs: Vec<IpAddr>,
}

impl Default for ServiceOptions {
    fn default() -> Self {
        ServiceOptions {
            scheduler: "wlc".into(),
            flags: SchedFlags::default(),
            persistence: None,
            one_packet: false,
            local_addrs: Vec::new(),
        }
    }
}

/// A virtual service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// Its stable index.
    pub id: ServiceId,
    /// What it is reached by.
    pub key: ServiceKey,
    /// Its options.
    pub options: ServiceOptions,
    /// Real servers in order of addition (scheduling order).
    pub reals: Vec<RealId>,
    /// Bumped on every change to the service or its real servers; workers rebuild their
    /// scheduler state when it moves.
    pub version: u64,
    /// The sorry server: takes new connections when no real server is available
    /// (keepalived's `sorry_server`). Not one of `reals`.
    pub sorry: Option<RealId>,
    /// Withdrawn (health quorum not met): the service matches no packet.
    pub down: bool,
}

/// Options of a real server, as given by `-a`/`-e`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RealOptions {
    /// Forwarding method (default DR, as ipvsadm's `-g`).
    pub method: Method,
    /// Weight 0..=65535 (0 = quiesced).
    pub weight: u32,
    /// Upper connection threshold `-x` (0 = none).
    pub u_threshold: u32,
    /// Lower connection threshold `-y` (0 = 3/4 of the upper).
    pub l_threshold: u32,
    /// TUN: the encapsulation (IPIP unless ipvsadm's `--tun-type` says otherwise).
    pub tunnel: Tunnel,
}

impl Default for RealOptions {
    fn default() -> Self {
        RealOptions {
            method: Method::Dr,
            weight: 1,
            u_threshold: 0,
            l_threshold: 0,
            tunnel: Tunnel::default(),
        }
    }
}

/// How a TUN real server's packets are encapsulated, as IPVS's tunnel types
/// (`--tun-type ipip|gue|gre`, `--tun-port`, `--tun-nocsum|--tun-csum|--tun-remcsum`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Tunnel {
    /// The encapsulation.
    pub kind: TunnelKind,
    /// GUE: the UDP destination port (the real server's `fou` port).
    pub port: u16,
    /// GUE and GRE: checksums.
    pub csum: TunnelCsum,
}

/// IPVS's tunnel types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TunnelKind {
    /// IPv4 in IPv4 (IPv6 in IPv6): `tunl0` (`ip6tnl0`) on the real server.
    #[default]
    Ipip,
    /// Generic UDP encapsulation: UDP to `port`, a GUE header, the packet (`ip fou add port
    /// PORT gue` on the real server).
    Gue,
    /// GRE: a GRE header, the packet (`gre0` on the real server).
    Gre,
}

/// Checksums of the tunnel header (ipvsadm's three flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TunnelCsum {
    /// None (the default): a zero UDP checksum, GRE without its C bit.
    #[default]
    NoCsum,
    /// The UDP checksum (GUE) or the GRE checksum.
    Csum,
    /// GUE's remote checksum offload. It applies only to packets whose inner checksum is
    /// left for offload; the packets a director forwards carry complete checksums, so the
    /// kernel, and xvs, send those as plain GUE without a UDP checksum.
    RemCsum,
}

/// A real server of one service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RealServer {
    /// Its stable index.
    pub id: RealId,
    /// The service it belongs to.
    pub service: ServiceId,
    /// Its address.
    pub addr: IpAddr,
    /// Its port (for a port service given without one: the virtual port; 0 for fwmark
    /// services = keep the client's destination port).
    pub port: u16,
    /// Method, weight and thresholds.
    pub options: RealOptions,
    /// True once removed from its service: kept only so existing connections can finish.
    pub removed: bool,
    /// Health: false while its health check fails. A server that is down gets no new
    /// connections (its weight counts as 0); its configured weight is kept for its return.
    pub up: bool,
}

impl RealServer {
    /// The 16-byte key form of the address.
    pub fn addr16(&self) -> [u8; 16] {
        addr16(&self.addr)
    }
}

/// The most weight ipvsadm accepts.
pub const MAX_WEIGHT: u32 = 65535;
