//! One pass over a frame that yields everything the forwarder needs: layer offsets, addresses,
//! protocol, ports, TCP flags and fragment state. All bounds are checked here once.

use crate::ethernet::{L2Header, ethertype, l2_header};
use crate::ipv4::Ipv4Packet;
use crate::ipv6::Ipv6Packet;
use crate::sctp::SctpPacket;
use crate::tcp::TcpPacket;
use crate::udp::UdpPacket;
use crate::{Layer, Result, WireError, ip_proto};

/// Prefix of an IPv4-mapped IPv6 address (`::ffff:0:0/96`).
pub const V4_MAPPED_PREFIX: [u8; 12] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff];

/// Embeds an IPv4 address in the 16-byte form used by flow keys (`::ffff:a.b.c.d`).
#[inline(always)]
pub const fn v4_mapped(a: [u8; 4]) -> [u8; 16] {
    [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, a[0], a[1], a[2], a[3]]
}

/// The IPv4 address held in the last four bytes of a 16-byte address.
#[inline(always)]
pub const fn v4_of(a: &[u8; 16]) -> [u8; 4] {
    [a[12], a[13], a[14], a[15]]
}

/// Where a packet stands with respect to IP fragmentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FragKind {
    /// Not a fragment.
    Whole,
    /// The first fragment: it carries the upper-layer header.
    First,
    /// A later fragment: no upper-layer header.
    Later,
}

/// The parsed outline of an IP frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpSummary {
    /// Ethernet and VLAN header.
    pub l2: L2Header,
    /// 4 or 6.
    pub version: u8,
    /// Offset of the IP header in the frame.
    pub l3_offset: usize,
    /// Length of the IP packet as declared by its header.
    pub l3_len: usize,
    /// Offset of the upper-layer header in the frame.
    pub l4_offset: usize,
    /// Upper-layer protocol.
    pub protocol: u8,
    /// Source address; IPv4 addresses in IPv4-mapped form.
    pub src: [u8; 16],
    /// Destination address; IPv4 addresses in IPv4-mapped form.
    pub dst: [u8; 16],
    /// Source port (TCP/UDP/SCTP), else 0.
    pub sport: u16,
    /// Destination port (TCP/UDP/SCTP), else 0.
    pub dport: u16,
    /// TCP flags, else 0.
    pub tcp_flags: u8,
    /// Fragment state.
    pub frag: FragKind,
    /// TTL or hop limit.
    pub ttl: u8,
    /// IPv4 DF flag; always true for IPv6 (routers never fragment it).
    pub dont_frag: bool,
}

impl IpSummary {
    /// True for IPv6.
    pub const fn is_v6(&self) -> bool {
        self.version == 6
    }

    /// True if the upper-layer header is present and was parsed (ports are meaningful).
    pub const fn has_ports(&self) -> bool {
        !matches!(self.frag, FragKind::Later)
            && matches!(
                self.protocol,
                ip_proto::TCP | ip_proto::UDP | ip_proto::SCTP
            )
    }
}

/// The outcome of [`summarize`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Summary {
    /// Not IPv4 or IPv6 (ARP, LLDP, …).
    NotIp {
        /// EtherType after any VLAN tags.
        ethertype: u16,
    },
    /// An IP packet.
    Ip(IpSummary),
}

/// Parses a frame's Ethernet, IP and transport headers.
///
/// Errors name the first malformed layer. A later IP fragment is not an error: it is reported
/// with [`FragKind::Later`] and zero ports.
pub fn summarize(frame: &[u8]) -> Result<Summary> {
    let l2 = l2_header(frame)?;
    let l3 = l2.l3_offset;
    let mut s = match l2.ethertype {
        ethertype::IPV4 => {
            let ip = Ipv4Packet::new_checked(&frame[l3..])?;
            let frag = if !ip.is_fragment() {
                FragKind::Whole
            } else if ip.frag_offset() == 0 {
                FragKind::First
            } else {
                FragKind::Later
            };
            IpSummary {
                l2,
                version: 4,
                l3_offset: l3,
                l3_len: usize::from(ip.total_len()),
                l4_offset: l3 + ip.header_len(),
                protocol: ip.protocol(),
                src: v4_mapped(ip.src()),
                dst: v4_mapped(ip.dst()),
                sport: 0,
                dport: 0,
                tcp_flags: 0,
                frag,
                ttl: ip.ttl(),
                dont_frag: ip.dont_frag(),
            }
        }
        ethertype::IPV6 => {
            let ip = Ipv6Packet::new_checked(&frame[l3..])?;
            let ul = ip.upper_layer()?;
            let frag = match ul.fragment {
                None => FragKind::Whole,
                Some(f) if f.is_first() && !f.more => FragKind::Whole,
                Some(f) if f.is_first() => FragKind::First,
                Some(_) => FragKind::Later,
            };
            IpSummary {
                l2,
                version: 6,
                l3_offset: l3,
                l3_len: ip.total_len(),
                l4_offset: l3 + ul.offset,
                protocol: ul.protocol,
                src: ip.src(),
                dst: ip.dst(),
                sport: 0,
                dport: 0,
                tcp_flags: 0,
                frag,
                ttl: ip.hop_limit(),
                dont_frag: true,
            }
        }
        other => return Ok(Summary::NotIp { ethertype: other }),
    };
    if s.frag == FragKind::Later {
        return Ok(Summary::Ip(s));
    }
    let l4 = &frame[s.l4_offset..s.l3_offset + s.l3_len];
    match s.protocol {
        ip_proto::TCP => {
            let t = TcpPacket::new_checked(l4)?;
            s.sport = t.src_port();
            s.dport = t.dst_port();
            s.tcp_flags = t.flags();
        }
        ip_proto::UDP => {
            // A first fragment carries the UDP header but not the whole datagram.
            let u = UdpPacket::new_unchecked(l4);
            if s.frag == FragKind::First {
                if l4.len() < crate::udp::HEADER_LEN {
                    return Err(WireError::truncated(
                        Layer::Udp,
                        crate::udp::HEADER_LEN,
                        l4.len(),
                    ));
                }
            } else {
                u.check_len()?;
            }
            s.sport = u.src_port();
            s.dport = u.dst_port();
        }
        ip_proto::SCTP => {
            let p = SctpPacket::new_checked(l4)?;
            s.sport = p.src_port();
            s.dport = p.dst_port();
        }
        ip_proto::ICMP => {
            crate::icmpv4::Icmpv4Packet::new_checked(l4)?;
        }
        ip_proto::ICMPV6 => {
            crate::icmpv6::Icmpv6Packet::new_checked(l4)?;
        }
        _ => {}
    }
    Ok(Summary::Ip(s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;
    use proptest::prelude::*;

    fn tcp_v4(payload: &[u8]) -> Vec<u8> {
        let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4([198, 18, 0, 1], [198, 18, 1, 10], 64)
            .tcp(40000, 80, 1, 65535)
            .syn();
        let mut out = Vec::new();
        b.write(&mut out, payload).unwrap();
        out
    }

    #[test]
    fn tcp_v4_outline() {
        let f = tcp_v4(b"hello");
        let Summary::Ip(s) = summarize(&f).unwrap() else { panic!("not ip") };
        assert_eq!(s.version, 4);
        assert_eq!((s.l3_offset, s.l4_offset, s.l3_len), (14, 34, 20 + 20 + 5));
        assert_eq!(s.src, v4_mapped([198, 18, 0, 1]));
        assert_eq!(v4_of(&s.dst), [198, 18, 1, 10]);
        assert_eq!((s.sport, s.dport), (40000, 80));
        assert_eq!(s.tcp_flags, crate::tcp::flags::SYN);
        assert_eq!(s.frag, FragKind::Whole);
        assert!(s.has_ports());
    }

    #[test]
    fn udp_v6_outline() {
        let src = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        let dst = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
        let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv6(src, dst, 33)
            .udp(5353, 53);
        let mut f = Vec::new();
        b.write(&mut f, b"q").unwrap();
        let Summary::Ip(s) = summarize(&f).unwrap() else { panic!("not ip") };
        assert_eq!((s.version, s.protocol, s.sport, s.dport, s.ttl), (6, 17, 5353, 53, 33));
        assert_eq!((s.src, s.dst), (src, dst));
        assert_eq!(s.l4_offset, 54);
    }

    #[test]
    fn arp_is_not_ip() {
        let mut f = [0u8; 42];
        f[12..14].copy_from_slice(&ethertype::ARP.to_be_bytes());
        assert_eq!(summarize(&f).unwrap(), Summary::NotIp { ethertype: ethertype::ARP });
    }

    #[test]
    fn later_fragment_has_no_ports() {
        let mut f = tcp_v4(b"0123456789abcdef");
        // Offset 8 bytes, no MF: a last fragment. Fix the header checksum.
        f[20..22].copy_from_slice(&1u16.to_be_bytes());
        let mut ip = Ipv4Packet::new_unchecked(&mut f[14..]);
        ip.fill_checksum();
        let Summary::Ip(s) = summarize(&f).unwrap() else { panic!("not ip") };
        assert_eq!(s.frag, FragKind::Later);
        assert!(!s.has_ports());
        assert_eq!((s.sport, s.dport), (0, 0));
    }

    #[test]
    fn truncated_tcp_names_layer() {
        let f = tcp_v4(b"");
        // Claim a 40-byte IP packet but cut the TCP header short: IP complains first.
        assert!(matches!(
            summarize(&f[..50]),
            Err(WireError::Truncated { layer: Layer::Ipv4, .. })
        ));
        // Shrink the IP total length so the TCP header itself is short.
        let mut g = f.clone();
        g[16..18].copy_from_slice(&30u16.to_be_bytes());
        assert!(matches!(
            summarize(&g),
            Err(WireError::Truncated { layer: Layer::Tcp, needed: 20, got: 10 })
        ));
    }

    proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = summarize(&bytes);
        }

        /// Frames built by an independent library parse back to the fields they were built with.
        #[test]
        fn roundtrip_against_etherparse(
            src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, ttl: u8,
            payload in proptest::collection::vec(any::<u8>(), 0..64), udp: bool,
        ) {
            let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]).ipv4(src, dst, ttl);
            let mut f = Vec::new();
            if udp {
                b.udp(sport, dport).write(&mut f, &payload).unwrap();
            } else {
                b.tcp(sport, dport, 7, 1000).ack(9).write(&mut f, &payload).unwrap();
            }
            let Summary::Ip(s) = summarize(&f).unwrap() else { panic!("not ip") };
            prop_assert_eq!(v4_of(&s.src), src);
            prop_assert_eq!(v4_of(&s.dst), dst);
            prop_assert_eq!((s.sport, s.dport, s.ttl), (sport, dport, ttl));
            prop_assert_eq!(s.protocol, if udp { 17 } else { 6 });
            prop_assert_eq!(s.l3_len, f.len() - 14);
        }
    }
}
