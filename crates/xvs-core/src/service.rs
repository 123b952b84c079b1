//! Virtual services and real servers: the immutable table the workers read, and the checked
//! mutations (ipvsadm's -A/-E/-D/-a/-e/-d) the control plane uses to build the next one.

use crate::sched::{self, SchedFlags};
use crate::{RealId, ServiceId};
use core::fmt;
use core::net::IpAddr;
use rustc_hash::{FxHashMap, FxHashSet};
use xvs_wire::ip_proto;
use xvs_wire::summary::v4_mapped;

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

/// The 16-byte form of an address used in keys (IPv4 as `::ffff:a.b.c.d`).
pub fn addr16(a: &IpAddr) -> [u8; 16] {
    match a {
        IpAddr::V4(v4) => v4_mapped(v4.octets()),
        IpAddr::V6(v6) => v6.octets(),
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

/// A classification rule that gives packets a firewall mark (xvs's stand-in for
/// `iptables -t mangle … -j MARK`, since packets reach xvs before netfilter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MarkRule {
    /// Mark to give.
    pub mark: u32,
    /// Match only this protocol (any if `None`).
    pub proto: Option<Protocol>,
    /// Destination network address.
    pub dst: IpAddr,
    /// Destination prefix length.
    pub prefix_len: u8,
    /// Inclusive destination port range.
    pub ports: (u16, u16),
}

impl MarkRule {
    fn matches(&self, family: Family, proto: u8, dst: &[u8; 16], dport: u16) -> bool {
        if Family::of(&self.dst) != family {
            return false;
        }
        if let Some(p) = self.proto {
            if p.number() != proto {
                return false;
            }
        }
        if dport < self.ports.0 || dport > self.ports.1 {
            return false;
        }
        let bits = match family {
            Family::V4 => 96 + u32::from(self.prefix_len),
            Family::V6 => u32::from(self.prefix_len),
        };
        prefix_match(&addr16(&self.dst), dst, bits)
    }
}

/// True if the first `bits` bits of `a` and `b` agree.
pub(crate) fn prefix_match(a: &[u8; 16], b: &[u8; 16], bits: u32) -> bool {
    let x = u128::from_be_bytes(*a) ^ u128::from_be_bytes(*b);
    bits == 0 || (bits >= 128 && x == 0) || (bits < 128 && (x >> (128 - bits)) == 0)
}

/// Applies a prefix mask to a 16-byte address.
pub(crate) fn mask_addr(a: &[u8; 16], bits: u32) -> [u8; 16] {
    let v = u128::from_be_bytes(*a);
    let m = if bits == 0 {
        0
    } else if bits >= 128 {
        u128::MAX
    } else {
        u128::MAX << (128 - bits)
    };
    (v & m).to_be_bytes()
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
}

impl Default for RealOptions {
    fn default() -> Self {
        RealOptions {
            method: Method::Dr,
            weight: 1,
            u_threshold: 0,
            l_threshold: 0,
        }
    }
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

/// Why a change to the service table was refused. Messages follow ipvsadm's wording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// `-A` of a service that exists.
    ServiceExists(ServiceKey),
    /// A command naming a service that does not exist.
    NoSuchService(ServiceKey),
    /// `-a` of a real server that exists.
    DestinationExists(IpAddr, u16),
    /// A command naming a real server that does not exist.
    NoSuchDestination(IpAddr, u16),
    /// An unknown scheduler name.
    UnknownScheduler(String),
    /// A value outside its range.
    OutOfRange {
        /// Which option.
        what: &'static str,
        /// Its value.
        value: u64,
        /// The allowed maximum.
        max: u64,
    },
    /// A combination that cannot work (e.g. mixed families, FullNAT without a pool).
    Invalid(String),
    /// The table holds as many services or real servers as it can.
    TableFull(&'static str),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::ServiceExists(k) => write!(f, "Service already exists: {k}"),
            ConfigError::NoSuchService(k) => write!(f, "No such service: {k}"),
            ConfigError::DestinationExists(a, p) => {
                write!(f, "Destination already exists: {}", fmt_addr_port(a, *p))
            }
            ConfigError::NoSuchDestination(a, p) => {
                write!(f, "No such destination: {}", fmt_addr_port(a, *p))
            }
            ConfigError::UnknownScheduler(s) => write!(f, "Scheduler not found: {s}"),
            ConfigError::OutOfRange { what, value, max } => {
                write!(f, "{what} {value} is out of range (0..={max})")
            }
            ConfigError::Invalid(s) => write!(f, "{s}"),
            ConfigError::TableFull(what) => write!(f, "too many {what}"),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Formats `addr:port` with IPv6 in brackets, as ipvsadm does.
pub fn fmt_addr_port(a: &IpAddr, port: u16) -> String {
    match a {
        IpAddr::V4(v4) => format!("{v4}:{port}"),
        IpAddr::V6(v6) => format!("[{v6}]:{port}"),
    }
}

/// The most weight ipvsadm accepts.
pub const MAX_WEIGHT: u32 = 65535;

/// The virtual services and real servers, indexed for the forwarder.
///
/// Cheap to clone relative to how often configuration changes; the control plane clones,
/// mutates and publishes a new one.
#[derive(Debug, Clone)]
pub struct ServiceTable {
    services: Vec<Option<Service>>,
    reals: Vec<Option<RealServer>>,
    by_addr: FxHashMap<(u8, [u8; 16], u16), ServiceId>,
    by_mark: FxHashMap<(u32, Family), ServiceId>,
    mark_rules: Vec<MarkRule>,
    vips: FxHashSet<[u8; 16]>,
    max_services: usize,
    max_reals: usize,
    next_version: u64,
}

impl ServiceTable {
    /// An empty table able to hold `max_services` services and `max_reals` real servers
    /// (counter arrays are sized from these).
    pub fn new(max_services: usize, max_reals: usize) -> Self {
        ServiceTable {
            services: Vec::new(),
            reals: Vec::new(),
            by_addr: FxHashMap::default(),
            by_mark: FxHashMap::default(),
            mark_rules: Vec::new(),
            vips: FxHashSet::default(),
            max_services: max_services.min(usize::from(ServiceId::MAX)),
            max_reals,
            next_version: 1,
        }
    }

    /// Capacity for services.
    pub const fn max_services(&self) -> usize {
        self.max_services
    }

    /// Capacity for real servers.
    pub const fn max_reals(&self) -> usize {
        self.max_reals
    }

    /// A service by index.
    #[inline]
    pub fn service(&self, id: ServiceId) -> Option<&Service> {
        self.services.get(usize::from(id)).and_then(Option::as_ref)
    }

    /// A real server by index (removed ones included).
    #[inline]
    pub fn real(&self, id: RealId) -> Option<&RealServer> {
        self.reals.get(id as usize).and_then(Option::as_ref)
    }

    /// All live services in index order.
    pub fn services(&self) -> impl Iterator<Item = &Service> {
        self.services.iter().flatten()
    }

    /// All real servers (removed ones included) in index order.
    pub fn reals(&self) -> impl Iterator<Item = &RealServer> {
        self.reals.iter().flatten()
    }

    /// Number of real-server slots in use (the forwarder sizes per-real arrays from this).
    pub fn real_slots(&self) -> usize {
        self.reals.len()
    }

    /// Every real server that belongs or belonged to a service (removed ones included): the
    /// service's counters are the sums over these.
    pub fn reals_of(&self, svc: ServiceId) -> impl Iterator<Item = RealId> + '_ {
        self.reals
            .iter()
            .flatten()
            .filter(move |r| r.service == svc)
            .map(|r| r.id)
    }

    /// The firewall-mark rules, in match order.
    pub fn mark_rules(&self) -> &[MarkRule] {
        &self.mark_rules
    }

    /// True if `addr` (16-byte form) is the address of any address-based service or mark rule
    /// host address.
    #[inline]
    pub fn is_vip(&self, addr: &[u8; 16]) -> bool {
        self.vips.contains(addr)
    }

    /// The service a packet belongs to: mark rules first, then (proto, VIP, port), then the
    /// port-less service (proto, VIP, 0).
    pub fn lookup(
        &self,
        family: Family,
        proto: u8,
        dst: &[u8; 16],
        dport: u16,
    ) -> Option<&Service> {
        if !self.mark_rules.is_empty() {
            if let Some(r) = self
                .mark_rules
                .iter()
                .find(|r| r.matches(family, proto, dst, dport))
            {
                if let Some(&id) = self.by_mark.get(&(r.mark, family)) {
                    return self.service(id).filter(|s| !s.down);
                }
            }
        }
        let id = self
            .by_addr
            .get(&(proto, *dst, dport))
            .or_else(|| self.by_addr.get(&(proto, *dst, 0)))?;
        self.service(*id).filter(|s| !s.down)
    }

    /// The service with this key.
    pub fn find(&self, key: &ServiceKey) -> Option<&Service> {
        let id = match key {
            ServiceKey::Addr { proto, addr, port } => {
                self.by_addr.get(&(proto.number(), addr16(addr), *port))?
            }
            ServiceKey::Fwmark { mark, family } => self.by_mark.get(&(*mark, *family))?,
        };
        self.service(*id)
    }

    /// The live real server `addr:port` of a service.
    pub fn find_real(&self, svc: &Service, addr: &IpAddr, port: u16) -> Option<&RealServer> {
        svc.reals
            .iter()
            .filter_map(|&r| self.real(r))
            .find(|r| r.addr == *addr && r.port == port)
    }

    fn bump(&mut self) -> u64 {
        self.next_version += 1;
        self.next_version
    }

    fn validate_options(key: &ServiceKey, o: &ServiceOptions) -> Result<(), ConfigError> {
        if !sched::is_known(&o.scheduler) {
            return Err(ConfigError::UnknownScheduler(o.scheduler.clone()));
        }
        if let Some(p) = o.persistence {
            let max = match key.family() {
                Family::V4 => 32,
                Family::V6 => 128,
            };
            if u32::from(p.prefix_len) > max {
                return Err(ConfigError::OutOfRange {
                    what: "persistence netmask",
                    value: u64::from(p.prefix_len),
                    max: u64::from(max),
                });
            }
        }
        if o.one_packet
            && !matches!(
                key,
                ServiceKey::Addr {
                    proto: Protocol::Udp,
                    ..
                }
            )
        {
            // ipvsadm accepts -o anywhere but IPVS applies it to UDP only; say so.
            if matches!(key, ServiceKey::Addr { .. }) {
                return Err(ConfigError::Invalid(
                    "one-packet scheduling (-o) applies to UDP services only".into(),
                ));
            }
        }
        for a in &o.local_addrs {
            if Family::of(a) != key.family() {
                return Err(ConfigError::Invalid(format!(
                    "local address {a} is not of the service's address family"
                )));
            }
        }
        Ok(())
    }

    /// Adds a virtual service (`-A`).
    pub fn add_service(
        &mut self,
        key: ServiceKey,
        options: ServiceOptions,
    ) -> Result<ServiceId, ConfigError> {
        if self.find(&key).is_some() {
            return Err(ConfigError::ServiceExists(key));
        }
        Self::validate_options(&key, &options)?;
        let slot = match self.services.iter().position(Option::is_none) {
            Some(i) => i,
            None if self.services.len() < self.max_services => {
                self.services.push(None);
                self.services.len() - 1
            }
            None => return Err(ConfigError::TableFull("virtual services")),
        };
        let id = slot as ServiceId;
        let version = self.bump();
        match key {
            ServiceKey::Addr { proto, addr, port } => {
                self.by_addr
                    .insert((proto.number(), addr16(&addr), port), id);
            }
            ServiceKey::Fwmark { mark, family } => {
                self.by_mark.insert((mark, family), id);
            }
        }
        self.services[slot] = Some(Service {
            id,
            key,
            options,
            reals: Vec::new(),
            version,
            sorry: None,
            down: false,
        });
        self.rebuild_vips();
        Ok(id)
    }

    /// Changes a service's options (`-E`); its real servers stay.
    pub fn edit_service(
        &mut self,
        key: &ServiceKey,
        options: ServiceOptions,
    ) -> Result<(), ConfigError> {
        Self::validate_options(key, &options)?;
        let id = self.find(key).ok_or(ConfigError::NoSuchService(*key))?.id;
        let version = self.bump();
        let svc = self.services[usize::from(id)]
            .as_mut()
            .ok_or(ConfigError::NoSuchService(*key))?;
        svc.options = options;
        svc.version = version;
        Ok(())
    }

    /// Deletes a service (`-D`). Its real servers are marked removed so that existing
    /// connections finish, as IPVS keeps them in its trash.
    pub fn remove_service(&mut self, key: &ServiceKey) -> Result<(), ConfigError> {
        let id = self.find(key).ok_or(ConfigError::NoSuchService(*key))?.id;
        let svc = self.services[usize::from(id)]
            .take()
            .ok_or(ConfigError::NoSuchService(*key))?;
        for r in svc.reals.into_iter().chain(svc.sorry) {
            if let Some(Some(real)) = self.reals.get_mut(r as usize) {
                real.removed = true;
            }
        }
        match svc.key {
            ServiceKey::Addr { proto, addr, port } => {
                self.by_addr.remove(&(proto.number(), addr16(&addr), port));
            }
            ServiceKey::Fwmark { mark, family } => {
                self.by_mark.remove(&(mark, family));
            }
        }
        self.rebuild_vips();
        Ok(())
    }

    /// Removes every service (`-C`).
    pub fn clear(&mut self) {
        let keys: Vec<ServiceKey> = self.services().map(|s| s.key).collect();
        for k in keys {
            // Cannot fail: the key was just read from the table.
            let _ = self.remove_service(&k);
        }
    }

    fn validate_real(
        key: &ServiceKey,
        svc: &Service,
        addr: &IpAddr,
        o: &RealOptions,
    ) -> Result<(), ConfigError> {
        if o.weight > MAX_WEIGHT {
            return Err(ConfigError::OutOfRange {
                what: "weight",
                value: u64::from(o.weight),
                max: u64::from(MAX_WEIGHT),
            });
        }
        if o.l_threshold > 0 && o.u_threshold > 0 && o.l_threshold > o.u_threshold {
            return Err(ConfigError::Invalid(format!(
                "lower threshold {} is above the upper threshold {}",
                o.l_threshold, o.u_threshold
            )));
        }
        if Family::of(addr) != key.family() {
            return Err(ConfigError::Invalid(format!(
                "real server {addr} is not of the service's address family"
            )));
        }
        if o.method == Method::FullNat && svc.options.local_addrs.is_empty() {
            return Err(ConfigError::Invalid(format!(
                "FullNAT real server {addr} needs a local address pool on service {key}"
            )));
        }
        Ok(())
    }

    fn real_port(key: &ServiceKey, port: Option<u16>) -> u16 {
        match port {
            Some(p) if p != 0 => p,
            _ => key.port(),
        }
    }

    /// A free real-server slot: the first unused one, or a new one within `max_reals`.
    fn free_real_slot(&mut self) -> Result<RealId, ConfigError> {
        match self.reals.iter().position(Option::is_none) {
            Some(i) => Ok(i as RealId),
            None if self.reals.len() < self.max_reals => {
                self.reals.push(None);
                Ok((self.reals.len() - 1) as RealId)
            }
            None => Err(ConfigError::TableFull("real servers")),
        }
    }

    /// Adds a real server to a service (`-a`). A port of `None` or 0 means the virtual port.
    pub fn add_real(
        &mut self,
        key: &ServiceKey,
        addr: IpAddr,
        port: Option<u16>,
        options: RealOptions,
    ) -> Result<RealId, ConfigError> {
        let port = Self::real_port(key, port);
        let svc = self.find(key).ok_or(ConfigError::NoSuchService(*key))?;
        Self::validate_real(key, svc, &addr, &options)?;
        if self.find_real(svc, &addr, port).is_some() {
            return Err(ConfigError::DestinationExists(addr, port));
        }
        let sid = svc.id;
        // IPVS restores a destination from its trash when it is added again.
        let restored = self
            .reals
            .iter()
            .flatten()
            .find(|r| r.removed && r.service == sid && r.addr == addr && r.port == port);
        let rid = match restored {
            Some(r) => r.id,
            None => self.free_real_slot()?,
        };
        self.reals[rid as usize] = Some(RealServer {
            id: rid,
            service: sid,
            addr,
            port,
            options,
            removed: false,
            up: true,
        });
        let version = self.bump();
        if let Some(svc) = self.services[usize::from(sid)].as_mut() {
            svc.reals.push(rid);
            svc.version = version;
        }
        Ok(rid)
    }

    /// Changes a real server's options (`-e`).
    pub fn edit_real(
        &mut self,
        key: &ServiceKey,
        addr: IpAddr,
        port: Option<u16>,
        options: RealOptions,
    ) -> Result<(), ConfigError> {
        let port = Self::real_port(key, port);
        let svc = self.find(key).ok_or(ConfigError::NoSuchService(*key))?;
        Self::validate_real(key, svc, &addr, &options)?;
        let sid = svc.id;
        let rid = self
            .find_real(svc, &addr, port)
            .ok_or(ConfigError::NoSuchDestination(addr, port))?
            .id;
        if let Some(Some(r)) = self.reals.get_mut(rid as usize) {
            r.options = options;
        }
        let version = self.bump();
        if let Some(svc) = self.services[usize::from(sid)].as_mut() {
            svc.version = version;
        }
        Ok(())
    }

    /// Removes a real server from a service (`-d`). It stays in the table marked removed
    /// until [`Self::purge_real`] so existing connections can finish.
    pub fn remove_real(
        &mut self,
        key: &ServiceKey,
        addr: IpAddr,
        port: Option<u16>,
    ) -> Result<RealId, ConfigError> {
        let port = Self::real_port(key, port);
        let svc = self.find(key).ok_or(ConfigError::NoSuchService(*key))?;
        let sid = svc.id;
        let rid = self
            .find_real(svc, &addr, port)
            .ok_or(ConfigError::NoSuchDestination(addr, port))?
            .id;
        if let Some(Some(r)) = self.reals.get_mut(rid as usize) {
            r.removed = true;
        }
        let version = self.bump();
        if let Some(svc) = self.services[usize::from(sid)].as_mut() {
            svc.reals.retain(|&r| r != rid);
            svc.version = version;
        }
        Ok(rid)
    }

    /// Frees a removed real server's slot for reuse (the control plane calls this once no
    /// connection refers to it any more).
    pub fn purge_real(&mut self, id: RealId) -> bool {
        match self.reals.get_mut(id as usize) {
            Some(slot @ Some(_)) if slot.as_ref().is_some_and(|r| r.removed) => {
                *slot = None;
                true
            }
            _ => false,
        }
    }

    /// Sets a real server's health; false if it did not change. The service's version moves so
    /// the workers rebuild its scheduler (hash tables skip servers that are down).
    pub fn set_up(&mut self, id: RealId, up: bool) -> bool {
        let Some(Some(r)) = self.reals.get_mut(id as usize) else {
            return false;
        };
        if r.up == up {
            return false;
        }
        r.up = up;
        let sid = r.service;
        let version = self.bump();
        if let Some(svc) = self
            .services
            .get_mut(usize::from(sid))
            .and_then(Option::as_mut)
        {
            svc.version = version;
        }
        true
    }

    /// Withdraws a service (`down`) or brings it back; false if nothing changed.
    pub fn set_down(&mut self, key: &ServiceKey, down: bool) -> bool {
        let Some(id) = self.find(key).map(|s| s.id) else {
            return false;
        };
        match self.services[usize::from(id)].as_mut() {
            Some(svc) if svc.down != down => {
                svc.down = down;
                true
            }
            _ => false,
        }
    }

    /// Sets or clears a service's sorry server (`addr`, port, options); the previous one is
    /// marked removed (its connections finish). Setting the same server again changes nothing;
    /// returns whether anything changed.
    pub fn set_sorry(
        &mut self,
        key: &ServiceKey,
        sorry: Option<(IpAddr, Option<u16>, RealOptions)>,
    ) -> Result<bool, ConfigError> {
        let svc = self.find(key).ok_or(ConfigError::NoSuchService(*key))?;
        let (sid, old) = (svc.id, svc.sorry);
        if let Some((addr, port, o)) = &sorry {
            Self::validate_real(key, svc, addr, o)?;
            let port = Self::real_port(key, *port);
            if let Some(r) = old.and_then(|r| self.real(r)) {
                if r.addr == *addr && r.port == port && r.options == *o {
                    return Ok(false);
                }
            }
        } else if old.is_none() {
            return Ok(false);
        }
        if let Some(Some(r)) = old.and_then(|r| self.reals.get_mut(r as usize)) {
            r.removed = true;
        }
        let new = match sorry {
            None => None,
            Some((addr, port, options)) => {
                let rid = self.free_real_slot()?;
                self.reals[rid as usize] = Some(RealServer {
                    id: rid,
                    service: sid,
                    addr,
                    port: Self::real_port(key, port),
                    options,
                    removed: false,
                    up: true,
                });
                Some(rid)
            }
        };
        let version = self.bump();
        if let Some(svc) = self.services[usize::from(sid)].as_mut() {
            svc.sorry = new;
            svc.version = version;
        }
        Ok(true)
    }

    /// Replaces the firewall-mark rules.
    pub fn set_mark_rules(&mut self, rules: Vec<MarkRule>) {
        self.mark_rules = rules;
        self.rebuild_vips();
    }

    fn rebuild_vips(&mut self) {
        let mut v: FxHashSet<[u8; 16]> = self
            .services
            .iter()
            .flatten()
            .filter_map(|s| match s.key {
                ServiceKey::Addr { addr, .. } => Some(addr16(&addr)),
                ServiceKey::Fwmark { .. } => None,
            })
            .collect();
        for r in &self.mark_rules {
            let host = matches!(
                (r.dst, r.prefix_len),
                (IpAddr::V4(_), 32) | (IpAddr::V6(_), 128)
            );
            if host {
                v.insert(addr16(&r.dst));
            }
        }
        self.vips = v;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(addr: &str, port: u16) -> ServiceKey {
        ServiceKey::Addr {
            proto: Protocol::Tcp,
            addr: addr.parse().unwrap(),
            port,
        }
    }

    #[test]
    fn add_find_lookup_remove() {
        let mut t = ServiceTable::new(16, 64);
        let k = tcp("198.18.1.10", 80);
        let sid = t.add_service(k, ServiceOptions::default()).unwrap();
        assert_eq!(
            t.add_service(k, ServiceOptions::default()),
            Err(ConfigError::ServiceExists(k))
        );
        let r1 = t
            .add_real(
                &k,
                "198.18.2.1".parse().unwrap(),
                Some(8080),
                RealOptions::default(),
            )
            .unwrap();
        let r2 = t
            .add_real(
                &k,
                "198.18.2.2".parse().unwrap(),
                None,
                RealOptions::default(),
            )
            .unwrap();
        assert_eq!(
            t.real(r2).unwrap().port,
            80,
            "no port means the virtual port"
        );
        let vip = addr16(&"198.18.1.10".parse().unwrap());
        assert!(t.is_vip(&vip));
        let s = t.lookup(Family::V4, 6, &vip, 80).unwrap();
        assert_eq!(s.id, sid);
        assert_eq!(s.reals, vec![r1, r2]);
        assert!(t.lookup(Family::V4, 17, &vip, 80).is_none());
        assert!(t.lookup(Family::V4, 6, &vip, 81).is_none());

        let v = t.service(sid).unwrap().version;
        t.remove_real(&k, "198.18.2.1".parse().unwrap(), Some(8080))
            .unwrap();
        assert!(t.real(r1).unwrap().removed, "kept for existing connections");
        assert!(t.service(sid).unwrap().version > v);
        assert_eq!(
            t.remove_real(&k, "198.18.2.1".parse().unwrap(), Some(8080)),
            Err(ConfigError::NoSuchDestination(
                "198.18.2.1".parse().unwrap(),
                8080
            ))
        );
        // Re-adding restores the same slot (IPVS's trash).
        let again = t
            .add_real(
                &k,
                "198.18.2.1".parse().unwrap(),
                Some(8080),
                RealOptions::default(),
            )
            .unwrap();
        assert_eq!(again, r1);
        t.remove_service(&k).unwrap();
        assert!(!t.is_vip(&vip));
        assert!(t.real(r2).unwrap().removed);
        assert!(t.purge_real(r2));
        assert!(t.real(r2).is_none());
    }

    #[test]
    fn rejects_bad_changes() {
        let mut t = ServiceTable::new(1, 1);
        let k = tcp("198.18.1.10", 80);
        let bad = ServiceOptions {
            scheduler: "nope".into(),
            ..Default::default()
        };
        assert_eq!(
            t.add_service(k, bad),
            Err(ConfigError::UnknownScheduler("nope".into()))
        );
        t.add_service(k, ServiceOptions::default()).unwrap();
        assert_eq!(
            t.add_service(tcp("198.18.1.11", 80), ServiceOptions::default()),
            Err(ConfigError::TableFull("virtual services"))
        );
        let heavy = RealOptions {
            weight: 70000,
            ..Default::default()
        };
        assert!(matches!(
            t.add_real(&k, "198.18.2.1".parse().unwrap(), None, heavy),
            Err(ConfigError::OutOfRange { what: "weight", .. })
        ));
        assert!(matches!(
            t.add_real(
                &k,
                "2001:db8::1".parse().unwrap(),
                None,
                RealOptions::default()
            ),
            Err(ConfigError::Invalid(_))
        ));
        let fnat = RealOptions {
            method: Method::FullNat,
            ..Default::default()
        };
        assert!(matches!(
            t.add_real(&k, "198.18.2.1".parse().unwrap(), None, fnat),
            Err(ConfigError::Invalid(_))
        ));
        t.add_real(
            &k,
            "198.18.2.1".parse().unwrap(),
            None,
            RealOptions::default(),
        )
        .unwrap();
        assert_eq!(
            t.add_real(
                &k,
                "198.18.2.2".parse().unwrap(),
                None,
                RealOptions::default()
            ),
            Err(ConfigError::TableFull("real servers"))
        );
    }

    #[test]
    fn port_zero_and_fwmark_lookup() {
        let mut t = ServiceTable::new(8, 8);
        let any = tcp("198.18.1.10", 0);
        let sid_any = t.add_service(any, ServiceOptions::default()).unwrap();
        let web = tcp("198.18.1.10", 443);
        let sid_web = t.add_service(web, ServiceOptions::default()).unwrap();
        let vip = addr16(&"198.18.1.10".parse().unwrap());
        assert_eq!(t.lookup(Family::V4, 6, &vip, 443).unwrap().id, sid_web);
        assert_eq!(t.lookup(Family::V4, 6, &vip, 22).unwrap().id, sid_any);

        let fwm = ServiceKey::Fwmark {
            mark: 7,
            family: Family::V4,
        };
        let sid_fwm = t.add_service(fwm, ServiceOptions::default()).unwrap();
        t.set_mark_rules(vec![MarkRule {
            mark: 7,
            proto: Some(Protocol::Tcp),
            dst: "198.18.5.0".parse().unwrap(),
            prefix_len: 24,
            ports: (80, 90),
        }]);
        let inside = addr16(&"198.18.5.77".parse().unwrap());
        assert_eq!(t.lookup(Family::V4, 6, &inside, 85).unwrap().id, sid_fwm);
        assert!(t.lookup(Family::V4, 6, &inside, 91).is_none());
        assert!(t.lookup(Family::V4, 17, &inside, 85).is_none());
    }

    #[test]
    fn prefix_helpers() {
        let a = addr16(&"198.18.5.77".parse().unwrap());
        let b = addr16(&"198.18.5.1".parse().unwrap());
        assert!(prefix_match(&a, &b, 96 + 24));
        assert!(!prefix_match(&a, &b, 96 + 32));
        assert!(prefix_match(&a, &b, 0));
        assert_eq!(
            mask_addr(&a, 96 + 24),
            addr16(&"198.18.5.0".parse().unwrap())
        );
        assert_eq!(mask_addr(&a, 128), a);
    }
}
