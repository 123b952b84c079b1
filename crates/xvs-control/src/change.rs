//! One configuration change (ipvsadm's `-A/-E/-D/-a/-e/-d/-C/--set`), how it is written
//! (as the ipvsadm rule line it is, which is also the save format and the log line), how it is
//! sent over the control socket (JSON), and how a batch of them is applied to a service table.
//!
//! A batch is applied to a copy of the running table; the copy replaces the running one only if
//! every change in the batch succeeded, so a rejected batch changes nothing.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::IpAddr;
use xvs_core::conn::Timeouts;
use xvs_core::service::SchedFlags;
use xvs_core::service::{
    Family, Method, Persistence, Protocol, RealOptions, ServiceKey, ServiceOptions, ServiceTable,
    fmt_addr_port,
};

/// A service key in its text form: `TCP 198.18.0.10:80`, `UDP [2001:db8::10]:53`, `FWM 5`,
/// `FWM 5 IPv6` (the way ipvsadm lists services).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Key(pub ServiceKey);

impl From<Key> for String {
    fn from(k: Key) -> String {
        k.0.to_string()
    }
}

impl TryFrom<String> for Key {
    type Error = String;
    fn try_from(s: String) -> Result<Key, String> {
        s.parse()
    }
}

impl std::str::FromStr for Key {
    type Err = String;
    fn from_str(s: &str) -> Result<Key, String> {
        let mut words = s.split_whitespace();
        let kind = words.next().unwrap_or("").to_ascii_uppercase();
        let rest = words
            .next()
            .ok_or_else(|| format!("'{s}' is not a service"))?;
        let extra = words.next();
        let key = match kind.as_str() {
            "FWM" => {
                let mark = parse_fwmark(rest)?;
                let family = match extra.map(str::to_ascii_lowercase).as_deref() {
                    None => Family::V4,
                    Some("ipv6") => Family::V6,
                    Some(x) => return Err(format!("unexpected '{x}' in service '{s}'")),
                };
                ServiceKey::Fwmark { mark, family }
            }
            "TCP" | "UDP" | "SCTP" => {
                let proto = match kind.as_str() {
                    "TCP" => Protocol::Tcp,
                    "UDP" => Protocol::Udp,
                    _ => Protocol::Sctp,
                };
                let (addr, port) = parse_addr_port(rest)
                    .ok_or_else(|| format!("illegal virtual server address[:port] '{rest}'"))?;
                ServiceKey::Addr {
                    proto,
                    addr,
                    port: port.unwrap_or(0),
                }
            }
            _ => return Err(format!("'{s}' is not a service (TCP, UDP, SCTP or FWM)")),
        };
        Ok(Key(key))
    }
}

/// Parses a firewall mark (decimal or 0x-hex, as ipvsadm).
pub fn parse_fwmark(s: &str) -> Result<u32, String> {
    let v = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u32::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    };
    match v {
        Some(m) if m > 0 => Ok(m),
        _ => Err(format!("invalid fwmark value `{s}' specified")),
    }
}

/// Parses `a.b.c.d[:port]` or `[v6][:port]` (a bare IPv6 address is accepted too).
pub fn parse_addr_port(s: &str) -> Option<(IpAddr, Option<u16>)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (a, after) = rest.split_once(']')?;
        let addr: IpAddr = a.parse().ok().filter(IpAddr::is_ipv6)?;
        return match after {
            "" => Some((addr, None)),
            p => Some((addr, Some(p.strip_prefix(':')?.parse().ok()?))),
        };
    }
    if let Ok(addr) = s.parse::<IpAddr>() {
        return Some((addr, None));
    }
    let (a, p) = s.rsplit_once(':')?;
    let addr: std::net::Ipv4Addr = a.parse().ok()?;
    Some((IpAddr::V4(addr), Some(p.parse().ok()?)))
}

/// Forwarding method names in JSON and YAML.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum MethodName {
    /// Direct routing (`-g`).
    #[default]
    Dr,
    /// NAT (`-m`).
    Nat,
    /// IPIP tunnel (`-i`).
    Tun,
    /// FullNAT (`--fullnat`).
    Fullnat,
}

impl From<MethodName> for Method {
    fn from(m: MethodName) -> Method {
        match m {
            MethodName::Dr => Method::Dr,
            MethodName::Nat => Method::Nat,
            MethodName::Tun => Method::Tun,
            MethodName::Fullnat => Method::FullNat,
        }
    }
}

impl From<Method> for MethodName {
    fn from(m: Method) -> MethodName {
        match m {
            Method::Dr => MethodName::Dr,
            Method::Nat => MethodName::Nat,
            Method::Tun => MethodName::Tun,
            Method::FullNat => MethodName::Fullnat,
        }
    }
}

impl MethodName {
    /// The ipvsadm switch (`-g`, `-m`, `-i`; `--fullnat` is xvs's).
    pub const fn switch(self) -> &'static str {
        match self {
            MethodName::Dr => "-g",
            MethodName::Nat => "-m",
            MethodName::Tun => "-i",
            MethodName::Fullnat => "--fullnat",
        }
    }
}

fn default_scheduler() -> String {
    "wlc".into()
}

fn default_weight() -> u32 {
    1
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// A service's options as ipvsadm gives them: `-s`, `-b`, `-p`, `-M`, `-o`, and xvs's
/// `--laddr` (FullNAT local addresses).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceSpec {
    /// Scheduler (`-s`, default `wlc`).
    #[serde(default = "default_scheduler")]
    pub scheduler: String,
    /// Scheduler flags, comma-separated (`-b`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub flags: String,
    /// Persistence timeout in seconds (`-p`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistent: Option<u32>,
    /// Persistence netmask as a prefix length (`-M`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netmask: Option<u8>,
    /// One-packet scheduling (`-o`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub one_packet: bool,
    /// FullNAT local addresses (`--laddr`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub local_addrs: Vec<IpAddr>,
}

impl Default for ServiceSpec {
    fn default() -> Self {
        ServiceSpec {
            scheduler: default_scheduler(),
            flags: String::new(),
            persistent: None,
            netmask: None,
            one_packet: false,
            local_addrs: Vec::new(),
        }
    }
}

const fn full_mask(f: Family) -> u8 {
    match f {
        Family::V4 => 32,
        Family::V6 => 128,
    }
}

impl ServiceSpec {
    /// The core options for a service of `family`.
    pub fn options(&self, family: Family) -> Result<ServiceOptions, String> {
        let flags = SchedFlags::parse(&self.flags)?;
        if self.persistent == Some(0) {
            return Err("persistence timeout must be at least 1 second".into());
        }
        if self.netmask.is_some() && self.persistent.is_none() {
            return Err("a persistence netmask (-M) needs persistence (-p)".into());
        }
        Ok(ServiceOptions {
            scheduler: self.scheduler.clone(),
            flags,
            persistence: self.persistent.map(|timeout| Persistence {
                timeout,
                prefix_len: self.netmask.unwrap_or(full_mask(family)),
            }),
            one_packet: self.one_packet,
            local_addrs: self.local_addrs.clone(),
        })
    }

    /// The spec of existing options.
    pub fn of(o: &ServiceOptions, family: Family) -> ServiceSpec {
        ServiceSpec {
            scheduler: o.scheduler.clone(),
            flags: o.flags.to_string(),
            persistent: o.persistence.map(|p| p.timeout),
            netmask: o
                .persistence
                .map(|p| p.prefix_len)
                .filter(|&l| l != full_mask(family)),
            one_packet: o.one_packet,
            local_addrs: o.local_addrs.clone(),
        }
    }
}

/// A real server as ipvsadm gives it: `-r`, `-g|-m|-i|--fullnat`, `-w`, `-x`, `-y`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RealSpec {
    /// Address (`-r`).
    pub addr: IpAddr,
    /// Port (the virtual port if absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Forwarding method (default `dr`, as ipvsadm's `-g`).
    #[serde(default)]
    pub method: MethodName,
    /// Weight (default 1).
    #[serde(default = "default_weight")]
    pub weight: u32,
    /// Upper connection threshold (`-x`, 0 = none).
    #[serde(default)]
    pub u_threshold: u32,
    /// Lower connection threshold (`-y`, 0 = none).
    #[serde(default)]
    pub l_threshold: u32,
}

impl RealSpec {
    /// The spec of an existing real server.
    pub fn of(r: &xvs_core::service::RealServer) -> RealSpec {
        RealSpec {
            addr: r.addr,
            port: Some(r.port),
            method: r.options.method.into(),
            weight: r.options.weight,
            u_threshold: r.options.u_threshold,
            l_threshold: r.options.l_threshold,
        }
    }

    /// The core options.
    pub fn options(&self) -> RealOptions {
        RealOptions {
            method: self.method.into(),
            weight: self.weight,
            u_threshold: self.u_threshold,
            l_threshold: self.l_threshold,
        }
    }
}

/// One change to the running configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Change {
    /// `-A`: add a virtual service.
    AddService {
        /// The service.
        service: Key,
        /// Its options.
        #[serde(flatten)]
        spec: ServiceSpec,
    },
    /// `-E`: replace a service's options (unspecified options return to their defaults, as
    /// with ipvsadm).
    EditService {
        /// The service.
        service: Key,
        /// Its new options.
        #[serde(flatten)]
        spec: ServiceSpec,
    },
    /// `-D`: delete a service (its connections finish unless `expire_nodest_conn`).
    DeleteService {
        /// The service.
        service: Key,
    },
    /// `-a`: add a real server.
    AddReal {
        /// The service.
        service: Key,
        /// The real server.
        #[serde(flatten)]
        real: RealSpec,
    },
    /// `-e`: replace a real server's options.
    EditReal {
        /// The service.
        service: Key,
        /// The real server and its new options.
        #[serde(flatten)]
        real: RealSpec,
    },
    /// `-d`: delete a real server.
    DeleteReal {
        /// The service.
        service: Key,
        /// Address.
        addr: IpAddr,
        /// Port (the virtual port if absent).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        port: Option<u16>,
    },
    /// `-C`: delete every service.
    Clear,
    /// `--set TCP TCPFIN UDP` (0 leaves a value unchanged).
    SetTimeouts {
        /// Established TCP.
        tcp: u32,
        /// TCP after FIN.
        tcpfin: u32,
        /// UDP.
        udp: u32,
    },
}

/// ipvsadm's service switch: `-t A:P`, `-u A:P`, `--sctp-service A:P`, `-f M [-6]`.
pub fn service_switch(k: &ServiceKey) -> String {
    match k {
        ServiceKey::Addr { proto, addr, port } => {
            let sw = match proto {
                Protocol::Tcp => "-t",
                Protocol::Udp => "-u",
                Protocol::Sctp => "--sctp-service",
            };
            format!("{sw} {}", fmt_addr_port(addr, *port))
        }
        ServiceKey::Fwmark { mark, family } => match family {
            Family::V4 => format!("-f {mark}"),
            Family::V6 => format!("-f {mark} -6"),
        },
    }
}

/// The `-M` value (and ipvsadm's listing `mask`): a dotted mask for IPv4, a prefix length for
/// IPv6.
pub(crate) fn mask_text(family: Family, len: u8) -> String {
    match family {
        Family::V4 => {
            let m = if len == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(len.min(32)))
            };
            std::net::Ipv4Addr::from(m).to_string()
        }
        Family::V6 => len.to_string(),
    }
}

fn write_service(
    f: &mut fmt::Formatter<'_>,
    cmd: &str,
    k: &ServiceKey,
    s: &ServiceSpec,
) -> fmt::Result {
    write!(f, "{cmd} {} -s {}", service_switch(k), s.scheduler)?;
    if let Some(p) = s.persistent {
        write!(f, " -p {p}")?;
        if let Some(m) = s.netmask {
            write!(f, " -M {}", mask_text(k.family(), m))?;
        }
    }
    if s.one_packet {
        f.write_str(" -o")?;
    }
    if !s.flags.is_empty() {
        write!(f, " -b {}", s.flags)?;
    }
    if !s.local_addrs.is_empty() {
        let l: Vec<String> = s.local_addrs.iter().map(IpAddr::to_string).collect();
        write!(f, " --laddr {}", l.join(","))?;
    }
    Ok(())
}

fn write_real(f: &mut fmt::Formatter<'_>, cmd: &str, k: &ServiceKey, r: &RealSpec) -> fmt::Result {
    let port = r.port.unwrap_or(k.port());
    write!(
        f,
        "{cmd} {} -r {} {} -w {}",
        service_switch(k),
        fmt_addr_port(&r.addr, port),
        r.method.switch(),
        r.weight
    )?;
    if r.u_threshold != 0 {
        write!(f, " -x {}", r.u_threshold)?;
    }
    if r.l_threshold != 0 {
        write!(f, " -y {}", r.l_threshold)?;
    }
    Ok(())
}

/// The ipvsadm command line of the change (without the program name): what `-S` prints, what
/// `-R` reads back, and what the daemon logs.
impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::AddService { service, spec } => write_service(f, "-A", &service.0, spec),
            Change::EditService { service, spec } => write_service(f, "-E", &service.0, spec),
            Change::DeleteService { service } => write!(f, "-D {}", service_switch(&service.0)),
            Change::AddReal { service, real } => write_real(f, "-a", &service.0, real),
            Change::EditReal { service, real } => write_real(f, "-e", &service.0, real),
            Change::DeleteReal {
                service,
                addr,
                port,
            } => write!(
                f,
                "-d {} -r {}",
                service_switch(&service.0),
                fmt_addr_port(addr, port.unwrap_or(service.0.port()))
            ),
            Change::Clear => f.write_str("-C"),
            Change::SetTimeouts { tcp, tcpfin, udp } => write!(f, "--set {tcp} {tcpfin} {udp}"),
        }
    }
}

/// A rejected batch: which change (0-based) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// Index of the change in the batch.
    pub index: usize,
    /// The change, as an ipvsadm line.
    pub change: String,
    /// What was wrong.
    pub message: String,
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Applies one change to `table` and `timeouts`.
pub fn apply_one(
    table: &mut ServiceTable,
    timeouts: &mut Timeouts,
    c: &Change,
) -> Result<(), String> {
    let e = |e: xvs_core::service::ConfigError| e.to_string();
    match c {
        Change::AddService { service, spec } => {
            check_zero_port(&service.0, spec)?;
            let o = spec.options(service.0.family())?;
            table.add_service(service.0, o).map(|_| ()).map_err(e)
        }
        Change::EditService { service, spec } => {
            check_zero_port(&service.0, spec)?;
            let o = spec.options(service.0.family())?;
            table.edit_service(&service.0, o).map_err(e)
        }
        Change::DeleteService { service } => table.remove_service(&service.0).map_err(e),
        Change::AddReal { service, real } => table
            .add_real(
                &service.0,
                real.addr,
                real_port(&service.0, real),
                real.options(),
            )
            .map(|_| ())
            .map_err(|x| not_defined(x, &service.0)),
        Change::EditReal { service, real } => table
            .edit_real(
                &service.0,
                real.addr,
                real_port(&service.0, real),
                real.options(),
            )
            .map_err(|x| not_defined(x, &service.0)),
        Change::DeleteReal {
            service,
            addr,
            port,
        } => table
            .remove_real(&service.0, *addr, *port)
            .map(|_| ())
            .map_err(|x| not_defined(x, &service.0)),
        Change::Clear => {
            table.clear();
            Ok(())
        }
        Change::SetTimeouts { tcp, tcpfin, udp } => {
            timeouts.set_ipvsadm(*tcp, *tcpfin, *udp);
            Ok(())
        }
    }
}

/// ipvsadm says "Service not defined" when a real-server command names a missing service.
fn not_defined(e: xvs_core::service::ConfigError, k: &ServiceKey) -> String {
    match e {
        xvs_core::service::ConfigError::NoSuchService(_) => format!("Service not defined: {k}"),
        other => other.to_string(),
    }
}

/// DR and TUN real servers listen on the virtual port (ipvsadm forces it); NAT and FullNAT
/// may map to another port.
fn real_port(k: &ServiceKey, r: &RealSpec) -> Option<u16> {
    match (k, r.method) {
        (ServiceKey::Addr { port, .. }, MethodName::Dr | MethodName::Tun) => Some(*port),
        _ => r.port,
    }
}

fn check_zero_port(k: &ServiceKey, s: &ServiceSpec) -> Result<(), String> {
    if matches!(k, ServiceKey::Addr { port: 0, .. }) && s.persistent.is_none() {
        return Err("Zero port specified for non-persistent service".into());
    }
    Ok(())
}

/// Applies a batch to copies of `table` and `timeouts`; returns the new pair, or the first
/// change that failed (the originals are untouched either way).
pub fn apply(
    table: &ServiceTable,
    timeouts: &Timeouts,
    changes: &[Change],
) -> Result<(ServiceTable, Timeouts), Rejected> {
    let (mut t, mut to) = (table.clone(), *timeouts);
    for (index, c) in changes.iter().enumerate() {
        apply_one(&mut t, &mut to, c).map_err(|message| Rejected {
            index,
            change: c.to_string(),
            message,
        })?;
    }
    Ok((t, to))
}

/// Sort order of services as ipvsadm lists them: address services before mark services, IPv4
/// before IPv6, then protocol number, address, port.
pub fn service_order(k: &ServiceKey) -> (u32, u8, u8, [u8; 16], u16) {
    match k {
        ServiceKey::Addr { proto, addr, port } => (
            0,
            Family::of(addr).version(),
            proto.number(),
            xvs_core::service::addr16(addr),
            *port,
        ),
        ServiceKey::Fwmark { mark, family } => (*mark, family.version(), 0, [0; 16], 0),
    }
}

/// The changes that turn `old` into `new` (services by key, real servers by address and
/// port): deletions first, then edits, then additions. Unchanged services produce nothing, so
/// their scheduler state and connections are untouched.
pub fn diff(
    old: &ServiceTable,
    old_t: &Timeouts,
    new: &ServiceTable,
    new_t: &Timeouts,
) -> Vec<Change> {
    let mut del = Vec::new();
    let mut edit = Vec::new();
    let mut add = Vec::new();
    let mut olds: Vec<_> = old.services().collect();
    olds.sort_by_key(|s| service_order(&s.key));
    let mut news: Vec<_> = new.services().collect();
    news.sort_by_key(|s| service_order(&s.key));
    for s in &olds {
        if new.find(&s.key).is_none() {
            del.push(Change::DeleteService {
                service: Key(s.key),
            });
        }
    }
    for n in &news {
        let key = Key(n.key);
        let spec = ServiceSpec::of(&n.options, n.key.family());
        let mut nreals: Vec<_> = n.reals.iter().filter_map(|&r| new.real(r)).collect();
        nreals.sort_by_key(|r| (r.addr16(), r.port));
        match old.find(&n.key) {
            None => {
                add.push(Change::AddService { service: key, spec });
                for r in nreals {
                    add.push(Change::AddReal {
                        service: key,
                        real: RealSpec::of(r),
                    });
                }
            }
            Some(o) => {
                if o.options != n.options {
                    edit.push(Change::EditService { service: key, spec });
                }
                let mut oreals: Vec<_> = o.reals.iter().filter_map(|&r| old.real(r)).collect();
                oreals.sort_by_key(|r| (r.addr16(), r.port));
                for r in &oreals {
                    if new.find_real(n, &r.addr, r.port).is_none() {
                        del.push(Change::DeleteReal {
                            service: key,
                            addr: r.addr,
                            port: Some(r.port),
                        });
                    }
                }
                for r in nreals {
                    match old.find_real(o, &r.addr, r.port) {
                        None => add.push(Change::AddReal {
                            service: key,
                            real: RealSpec::of(r),
                        }),
                        Some(x) if x.options != r.options => {
                            edit.push(Change::EditReal {
                                service: key,
                                real: RealSpec::of(r),
                            });
                        }
                        Some(_) => {}
                    }
                }
            }
        }
    }
    let (a, b) = (old_t.ipvsadm_triple(), new_t.ipvsadm_triple());
    if a != b {
        edit.push(Change::SetTimeouts {
            tcp: b.0,
            tcpfin: b.1,
            udp: b.2,
        });
    }
    del.extend(edit);
    del.extend(add);
    del
}

/// The rules that rebuild `table` from nothing, in listing order (`-S`).
pub fn save(table: &ServiceTable) -> Vec<Change> {
    let empty = ServiceTable::new(table.max_services(), table.max_reals());
    let t = Timeouts::default();
    diff(&empty, &t, table, &t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> Key {
        s.parse().unwrap()
    }

    #[test]
    fn keys_round_trip_through_text() {
        for s in [
            "TCP 198.18.0.10:80",
            "UDP [2001:db8::10]:53",
            "SCTP 198.18.0.10:0",
            "FWM 5",
            "FWM 5 IPv6",
        ] {
            assert_eq!(key(s).0.to_string(), s);
        }
        assert!("TCP 198.18.0.10:99999".parse::<Key>().is_err());
        assert!("ICMP 198.18.0.10:1".parse::<Key>().is_err());
        assert!("FWM 0".parse::<Key>().is_err());
        assert_eq!(parse_fwmark("0x10"), Ok(16));
    }

    #[test]
    fn addr_port_forms() {
        assert_eq!(
            parse_addr_port("198.18.0.1:80"),
            Some(("198.18.0.1".parse().unwrap(), Some(80)))
        );
        assert_eq!(
            parse_addr_port("198.18.0.1"),
            Some(("198.18.0.1".parse().unwrap(), None))
        );
        assert_eq!(
            parse_addr_port("[2001:db8::1]:8080"),
            Some(("2001:db8::1".parse().unwrap(), Some(8080)))
        );
        assert_eq!(
            parse_addr_port("2001:db8::1"),
            Some(("2001:db8::1".parse().unwrap(), None))
        );
        assert_eq!(parse_addr_port("[198.18.0.1]:80"), None);
        assert_eq!(parse_addr_port("host:80"), None);
        assert_eq!(parse_addr_port("198.18.0.1:http"), None);
    }

    #[test]
    fn changes_print_as_ipvsadm_lines_and_travel_as_json() {
        let c = Change::AddService {
            service: key("TCP 198.18.0.10:80"),
            spec: ServiceSpec {
                scheduler: "wrr".into(),
                persistent: Some(300),
                netmask: Some(24),
                ..ServiceSpec::default()
            },
        };
        assert_eq!(
            c.to_string(),
            "-A -t 198.18.0.10:80 -s wrr -p 300 -M 255.255.255.0"
        );
        let j = serde_json::to_string(&c).unwrap();
        assert_eq!(
            j,
            r#"{"op":"add_service","service":"TCP 198.18.0.10:80","scheduler":"wrr","persistent":300,"netmask":24}"#
        );
        assert_eq!(serde_json::from_str::<Change>(&j).unwrap(), c);
        let r = Change::AddReal {
            service: key("FWM 3 IPv6"),
            real: RealSpec {
                addr: "2001:db8::11".parse().unwrap(),
                port: None,
                method: MethodName::Tun,
                weight: 2,
                u_threshold: 0,
                l_threshold: 0,
            },
        };
        assert_eq!(r.to_string(), "-a -f 3 -6 -r [2001:db8::11]:0 -i -w 2");
        let j = serde_json::to_string(&r).unwrap();
        assert_eq!(serde_json::from_str::<Change>(&j).unwrap(), r);
    }

    fn sample() -> ServiceTable {
        let mut t = ServiceTable::new(16, 64);
        let mut to = Timeouts::default();
        let svc = key("TCP 198.18.0.10:80");
        apply_one(
            &mut t,
            &mut to,
            &Change::AddService {
                service: svc,
                spec: ServiceSpec {
                    scheduler: "rr".into(),
                    ..ServiceSpec::default()
                },
            },
        )
        .unwrap();
        for (a, w) in [("198.18.0.11", 1), ("198.18.0.12", 3)] {
            let real = RealSpec {
                addr: a.parse().unwrap(),
                port: None,
                method: MethodName::Dr,
                weight: w,
                u_threshold: 0,
                l_threshold: 0,
            };
            apply_one(&mut t, &mut to, &Change::AddReal { service: svc, real }).unwrap();
        }
        t
    }

    #[test]
    fn a_failed_batch_changes_nothing() {
        let t = sample();
        let to = Timeouts::default();
        let svc = key("TCP 198.18.0.10:80");
        let batch = [
            Change::DeleteReal {
                service: svc,
                addr: "198.18.0.11".parse().unwrap(),
                port: None,
            },
            Change::DeleteService {
                service: key("UDP 198.18.0.10:53"),
            },
        ];
        let r = apply(&t, &to, &batch).unwrap_err();
        assert_eq!(r.index, 1);
        assert_eq!(r.message, "No such service: UDP 198.18.0.10:53");
        assert_eq!(save(&t).len(), 3, "the original still has both reals");
        let (t2, _) = apply(&t, &to, &batch[..1]).unwrap();
        assert_eq!(save(&t2).len(), 2);
    }

    #[test]
    fn diff_turns_one_table_into_the_other() {
        let old = sample();
        let to = Timeouts::default();
        let svc = key("TCP 198.18.0.10:80");
        let mut new_t = to;
        new_t.set_ipvsadm(1000, 0, 0);
        let (new, _) = apply(
            &old,
            &to,
            &[
                Change::EditReal {
                    service: svc,
                    real: RealSpec {
                        addr: "198.18.0.12".parse().unwrap(),
                        port: None,
                        method: MethodName::Dr,
                        weight: 5,
                        u_threshold: 0,
                        l_threshold: 0,
                    },
                },
                Change::DeleteReal {
                    service: svc,
                    addr: "198.18.0.11".parse().unwrap(),
                    port: None,
                },
                Change::AddService {
                    service: key("UDP 198.18.0.10:53"),
                    spec: ServiceSpec::default(),
                },
            ],
        )
        .unwrap();
        let d = diff(&old, &to, &new, &new_t);
        let lines: Vec<String> = d.iter().map(Change::to_string).collect();
        assert_eq!(
            lines,
            [
                "-d -t 198.18.0.10:80 -r 198.18.0.11:80",
                "-e -t 198.18.0.10:80 -r 198.18.0.12:80 -g -w 5",
                "--set 1000 120 300",
                "-A -u 198.18.0.10:53 -s wlc",
            ]
        );
        let (rebuilt, rt) = apply(&old, &to, &d).unwrap();
        assert!(diff(&rebuilt, &rt, &new, &new_t).is_empty());
        // An unchanged table diffs to nothing: its services keep their versions.
        assert!(diff(&old, &to, &old, &to).is_empty());
    }

    #[test]
    fn zero_port_needs_persistence_and_dr_takes_the_virtual_port() {
        let mut t = ServiceTable::new(4, 4);
        let mut to = Timeouts::default();
        let svc = key("TCP 198.18.0.10:0");
        let e = apply_one(
            &mut t,
            &mut to,
            &Change::AddService {
                service: svc,
                spec: ServiceSpec::default(),
            },
        );
        assert_eq!(
            e.unwrap_err(),
            "Zero port specified for non-persistent service"
        );
        let svc = key("TCP 198.18.0.10:80");
        apply_one(
            &mut t,
            &mut to,
            &Change::AddService {
                service: svc,
                spec: ServiceSpec::default(),
            },
        )
        .unwrap();
        let real = RealSpec {
            addr: "198.18.0.11".parse().unwrap(),
            port: Some(8080),
            method: MethodName::Dr,
            weight: 1,
            u_threshold: 0,
            l_threshold: 0,
        };
        apply_one(&mut t, &mut to, &Change::AddReal { service: svc, real }).unwrap();
        assert_eq!(
            save(&t)[1].to_string(),
            "-a -t 198.18.0.10:80 -r 198.18.0.11:80 -g -w 1"
        );
        let missing = Change::AddReal {
            service: key("TCP 198.18.0.10:81"),
            real: RealSpec {
                addr: "198.18.0.11".parse().unwrap(),
                port: None,
                method: MethodName::Nat,
                weight: 1,
                u_threshold: 0,
                l_threshold: 0,
            },
        };
        assert_eq!(
            apply_one(&mut t, &mut to, &missing).unwrap_err(),
            "Service not defined: TCP 198.18.0.10:81"
        );
    }
}
