//! The checks a received advertisement passes before it is believed, in keepalived's order
//! (keepalived 2.2.7, vrrp.c `vrrp_check_packet`), each failure counted under its own reason.

use std::net::IpAddr;
use xvs_wire::vrrp::{self as wire, VrrpPacket};

/// Why an advertisement was not believed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reject {
    /// Shorter or longer than its address count says (keepalived allows no padding).
    Length,
    /// Not sent with TTL / hop limit 255 (multicast).
    Ttl,
    /// Another VRRP version than the instance's.
    Version,
    /// v2: another authentication type.
    AuthType,
    /// v2: the wrong password.
    Password,
    /// v2: another advertisement interval.
    Interval,
    /// Not an advertisement.
    Type,
    /// Another number of addresses than the instance has.
    AddressCount,
    /// Bad checksum.
    Checksum,
    /// Multicast where unicast was expected, or the reverse.
    Destination,
    /// An address of the instance is missing from the list.
    Addresses,
    /// No instance of this virtual router id on the interface.
    UnknownVrid,
    /// Too short to be read at all.
    Truncated,
}

impl Reject {
    /// Every reason, for listings.
    pub const ALL: [Reject; 13] = [
        Reject::Length,
        Reject::Ttl,
        Reject::Version,
        Reject::AuthType,
        Reject::Password,
        Reject::Interval,
        Reject::Type,
        Reject::AddressCount,
        Reject::Checksum,
        Reject::Destination,
        Reject::Addresses,
        Reject::UnknownVrid,
        Reject::Truncated,
    ];

    /// Its name in listings and metrics.
    pub const fn label(self) -> &'static str {
        match self {
            Reject::Length => "length",
            Reject::Ttl => "ttl",
            Reject::Version => "version",
            Reject::AuthType => "auth_type",
            Reject::Password => "password",
            Reject::Interval => "interval",
            Reject::Type => "type",
            Reject::AddressCount => "address_count",
            Reject::Checksum => "checksum",
            Reject::Destination => "destination",
            Reject::Addresses => "addresses",
            Reject::UnknownVrid => "unknown_vrid",
            Reject::Truncated => "truncated",
        }
    }
}

/// A received advertisement: where from and to, its TTL, its bytes (the VRRP packet, already
/// cut to the IP packet's length).
#[derive(Debug, Clone, Copy)]
pub struct Received<'a> {
    /// IP source.
    pub src: IpAddr,
    /// IP destination.
    pub dst: IpAddr,
    /// TTL or hop limit.
    pub ttl: u8,
    /// The VRRP packet.
    pub packet: &'a [u8],
}

/// What an instance expects of its peers' advertisements.
#[derive(Debug, Clone)]
pub struct Expect<'a> {
    /// 2 or 3.
    pub version: u8,
    /// v2 authentication: `None` or the 8 password bytes (zero-padded).
    pub password: Option<[u8; 8]>,
    /// v2: the interval in seconds.
    pub interval_s: u8,
    /// The instance's addresses.
    pub vips: &'a [IpAddr],
    /// Unicast peers configured (adverts then come by unicast and any TTL is taken).
    pub unicast: bool,
    /// Whether the address list must match (always as master; as backup unless the source
    /// is the master already heard, keepalived's `skip_check_adv_addr` being off).
    pub check_addresses: bool,
}

/// A believed advertisement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Advert {
    /// Its sender.
    pub src: IpAddr,
    /// Priority.
    pub priority: u8,
    /// The sender's interval in centiseconds.
    pub interval_cs: u32,
}

fn octets(a: &IpAddr) -> Vec<u8> {
    match a {
        IpAddr::V4(v) => v.octets().to_vec(),
        IpAddr::V6(v) => v.octets().to_vec(),
    }
}

/// keepalived's checks, in its order.
pub fn check(rx: &Received<'_>, e: &Expect<'_>) -> Result<Advert, Reject> {
    let p = VrrpPacket::new_checked(rx.packet).map_err(|_| Reject::Truncated)?;
    let v6 = rx.src.is_ipv6();
    let addr_len = if v6 { 16 } else { 4 };
    if p.check_len_for(addr_len).is_err() || rx.packet.len() != p.needed(addr_len) {
        return Err(Reject::Length);
    }
    if !e.unicast && rx.ttl != 255 {
        return Err(Reject::Ttl);
    }
    if p.version() != e.version {
        return Err(Reject::Version);
    }
    if p.version() == 2 && !v6 {
        let want_type = if e.password.is_some() {
            wire::AUTH_PASS
        } else {
            wire::AUTH_NONE
        };
        if p.auth_type() > 2 || p.auth_type() != want_type {
            return Err(Reject::AuthType);
        }
        if let Some(pw) = e.password {
            // Constant time, as keepalived compares it.
            let got = p.auth_data(addr_len);
            let diff = got.iter().zip(pw).fold(0u8, |d, (a, b)| d | (a ^ b));
            if diff != 0 {
                return Err(Reject::Password);
            }
        }
        if p.adver_int_s() != e.interval_s {
            return Err(Reject::Interval);
        }
    }
    if p.kind() != wire::TYPE_ADVERT {
        return Err(Reject::Type);
    }
    if e.check_addresses && usize::from(p.count()) != e.vips.len() {
        return Err(Reject::AddressCount);
    }
    // IPv6: the kernel checked it (IPV6_CHECKSUM); xvs's socket does the same, and it is
    // checked here again for packets read another way.
    let (src, dst) = (octets(&rx.src), octets(&rx.dst));
    if !p.checksum_ok(&src, &dst) {
        return Err(Reject::Checksum);
    }
    if rx.dst.is_multicast() == e.unicast {
        return Err(Reject::Destination);
    }
    if e.check_addresses {
        let listed: Vec<&[u8]> = (0..usize::from(p.count()))
            .map(|i| p.addr(i, addr_len))
            .collect();
        if e.vips
            .iter()
            .any(|v| !listed.contains(&octets(v).as_slice()))
        {
            return Err(Reject::Addresses);
        }
    }
    Ok(Advert {
        src: rx.src,
        priority: p.priority(),
        interval_cs: p.interval_cs(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use xvs_wire::vrrp::Advert as WireAdvert;

    fn packet(version: u8, prio: u8, pw: &[u8], vip: [u8; 4], src: [u8; 4]) -> Vec<u8> {
        let mut b = [0u8; 64];
        let n = WireAdvert {
            version,
            vrid: 51,
            priority: prio,
            interval_cs: 100,
            auth_type: if pw.is_empty() { 0 } else { 1 },
            password: pw,
            addrs: &[&vip],
        }
        .emit(&mut b, &src, &wire::GROUP_V4)
        .unwrap();
        b[..n].to_vec()
    }

    fn rx(p: &[u8], ttl: u8) -> Received<'_> {
        Received {
            src: "198.18.0.2".parse().unwrap(),
            dst: "224.0.0.18".parse().unwrap(),
            ttl,
            packet: p,
        }
    }

    #[test]
    fn keepalived_s_checks_in_order() {
        let vips: [IpAddr; 1] = ["198.18.0.10".parse().unwrap()];
        let e = Expect {
            version: 2,
            password: Some(*b"secret\0\0"),
            interval_s: 1,
            vips: &vips,
            unicast: false,
            check_addresses: true,
        };
        let good = packet(2, 150, b"secret", [198, 18, 0, 10], [198, 18, 0, 2]);
        assert_eq!(
            check(&rx(&good, 255), &e),
            Ok(Advert {
                src: "198.18.0.2".parse().unwrap(),
                priority: 150,
                interval_cs: 100
            })
        );
        assert_eq!(check(&rx(&good[..19], 255), &e), Err(Reject::Length));
        let mut padded = good.clone();
        padded.push(0);
        assert_eq!(check(&rx(&padded, 255), &e), Err(Reject::Length));
        assert_eq!(check(&rx(&good, 64), &e), Err(Reject::Ttl));
        let v3 = packet(3, 150, b"", [198, 18, 0, 10], [198, 18, 0, 2]);
        assert_eq!(check(&rx(&v3, 255), &e), Err(Reject::Version));
        let none = packet(2, 150, b"", [198, 18, 0, 10], [198, 18, 0, 2]);
        assert_eq!(check(&rx(&none, 255), &e), Err(Reject::AuthType));
        let wrong = packet(2, 150, b"secreT", [198, 18, 0, 10], [198, 18, 0, 2]);
        assert_eq!(check(&rx(&wrong, 255), &e), Err(Reject::Password));
        let mut slow = good.clone();
        slow[5] = 2;
        assert_eq!(check(&rx(&slow, 255), &e), Err(Reject::Interval));
        let mut bad_sum = good.clone();
        bad_sum[6] ^= 1;
        assert_eq!(check(&rx(&bad_sum, 255), &e), Err(Reject::Checksum));
        let other = packet(2, 150, b"secret", [198, 18, 0, 99], [198, 18, 0, 2]);
        assert_eq!(check(&rx(&other, 255), &e), Err(Reject::Addresses));
        let mut uni = rx(&good, 255);
        uni.dst = "198.18.0.3".parse().unwrap();
        assert_eq!(check(&uni, &e), Err(Reject::Destination));
        // Unicast: any TTL, and only unicast.
        let eu = Expect {
            unicast: true,
            ..e.clone()
        };
        let mut u = rx(&good, 64);
        u.dst = "198.18.0.3".parse().unwrap();
        assert!(check(&u, &eu).is_ok());
        assert_eq!(check(&rx(&good, 255), &eu), Err(Reject::Destination));
        // v3 over IPv4: the checksum covers the pseudo-header with the real destination.
        let e3 = Expect {
            version: 3,
            password: None,
            ..e
        };
        assert!(check(&rx(&v3, 255), &e3).is_ok());
    }
}
