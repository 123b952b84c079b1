//! Host and service names in addresses, as ipvsadm takes them (`-t www.example.com:http`,
//! `-r web1:8080`): resolved by the system's resolver (getaddrinfo: /etc/hosts, DNS,
//! /etc/services). The xvsadm program turns this on; the parser alone (tests, the fuzz
//! target) stays numeric and never waits on a resolver.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use xvs_control::change::parse_addr_port;

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Lets addresses carry host and service names from now on.
pub fn enable() {
    ENABLED.store(true, Relaxed);
}

/// `ADDR[:PORT]`, either part possibly a name when names are on; `udp` chooses the service
/// name's protocol. A host with addresses of both families resolves to its IPv4 one, as
/// ipvsadm's (IPv6 services are given as `[ADDR]:PORT`).
pub fn addr_port(s: &str, udp: bool) -> Option<(IpAddr, Option<u16>)> {
    resolve(s, udp, ENABLED.load(Relaxed))
}

fn resolve(s: &str, udp: bool, names: bool) -> Option<(IpAddr, Option<u16>)> {
    if let Some(v) = parse_addr_port(s) {
        return Some(v);
    }
    if !names {
        return None;
    }
    let (host, service) = match s.strip_prefix('[') {
        Some(rest) => {
            let (h, after) = rest.split_once(']')?;
            (h, after.strip_prefix(':'))
        }
        None => match s.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        },
    };
    let addr = match host.parse::<IpAddr>() {
        Ok(a) => a,
        Err(_) => host_addr(host)?,
    };
    let port = match service {
        None => None,
        Some(p) => Some(p.parse().ok().or_else(|| service_port(p, udp))?),
    };
    Some((addr, port))
}

fn host_addr(host: &str) -> Option<IpAddr> {
    if host.is_empty() || host.len() > 253 {
        return None;
    }
    let addrs: Vec<IpAddr> = dns_lookup::lookup_host(host).ok()?.collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or_else(|| addrs.first())
        .copied()
}

fn service_port(name: &str, udp: bool) -> Option<u16> {
    let hints = dns_lookup::AddrInfoHints {
        socktype: if udp {
            dns_lookup::SockType::DGram.into()
        } else {
            dns_lookup::SockType::Stream.into()
        },
        ..dns_lookup::AddrInfoHints::default()
    };
    dns_lookup::getaddrinfo(None, Some(name), Some(hints))
        .ok()?
        .filter_map(Result::ok)
        .map(|a| a.sockaddr.port())
        .next()
}

/// `addr:port` as ipvsadm lists it without `-n`: the host's name when it has one, and the
/// service's name for the port (`tcp`/`udp` by `udp`), numeric otherwise.
pub fn name_of(addr: &IpAddr, port: u16, udp: bool) -> String {
    let sa = std::net::SocketAddr::new(*addr, port);
    let flags = if udp { NI_DGRAM } else { 0 };
    let (host, service) = dns_lookup::getnameinfo(&sa, flags)
        .unwrap_or_else(|_| (addr.to_string(), port.to_string()));
    if addr.is_ipv6() && host.parse::<IpAddr>().is_ok() {
        format!("[{host}]:{service}")
    } else {
        format!("{host}:{service}")
    }
}

/// getnameinfo's NI_DGRAM: the service name for UDP.
const NI_DGRAM: i32 = 16;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_resolve_when_enabled_and_numbers_always() {
        assert_eq!(
            resolve("198.18.0.10:80", false, false),
            Some(("198.18.0.10".parse().unwrap(), Some(80)))
        );
        assert_eq!(resolve("localhost:http", false, false), None, "names off");
        assert_eq!(
            resolve("localhost:http", false, true),
            Some(("127.0.0.1".parse().unwrap(), Some(80)))
        );
        assert_eq!(
            resolve("198.18.0.10:domain", true, true),
            Some(("198.18.0.10".parse().unwrap(), Some(53)))
        );
        assert_eq!(
            resolve("[2001:db8::1]:https", false, true),
            Some(("2001:db8::1".parse().unwrap(), Some(443)))
        );
        assert_eq!(resolve("198.18.0.10:no-such-service", false, true), None);
        assert_eq!(
            name_of(&"127.0.0.1".parse().unwrap(), 80, false),
            "localhost:http"
        );
    }
}
