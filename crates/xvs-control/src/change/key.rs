//! A service key in its text form, and the address and mark forms ipvsadm accepts.

use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use xvs_core::service::{Family, Protocol, ServiceKey};

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
