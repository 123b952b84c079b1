//! The text form of a change: the ipvsadm rule line, which is also the save format and
//! the log line.

use super::{Change, RealSpec, ServiceSpec};
use std::fmt;
use std::net::IpAddr;
use xvs_core::service::{Family, Protocol, ServiceKey, fmt_addr_port};

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
    f.write_str(&r.tunnel.words())
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
