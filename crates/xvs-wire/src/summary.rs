//! One pass over a frame that yields everything the forwarder needs: layer offsets, addresses,
//! protocol, ports, TCP flags and fragment state. All bounds are checked here once.

use crate::ethernet::{ethertype, l2_header};
use crate::flow::FlowKey;
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
    [
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, a[0], a[1], a[2], a[3],
    ]
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

/// The parsed outline of an IP frame (kept small: it is built for every packet). Its flow
/// key is filled as the headers are read, ready for the connection table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpSummary {
    /// Addresses (IPv4 in IPv4-mapped form), ports (TCP/UDP/SCTP, else 0), protocol, version.
    pub key: FlowKey,
    /// TCP flags, else 0.
    pub tcp_flags: u8,
    /// TTL or hop limit.
    pub ttl: u8,
    /// Fragment state.
    pub frag: FragKind,
    /// IPv4 DF flag; always true for IPv6 (routers never fragment it).
    pub dont_frag: bool,
    /// Number of VLAN tags before the IP header.
    pub vlan_count: u8,
    /// Offset of the IP header in the frame.
    pub l3_offset: usize,
    /// Length of the IP packet as declared by its header.
    pub l3_len: usize,
    /// Offset of the upper-layer header in the frame.
    pub l4_offset: usize,
}

impl IpSummary {
    /// An all-zero outline to be filled by [`summarize_into`].
    pub const EMPTY: IpSummary = IpSummary {
        key: FlowKey::ZERO,
        tcp_flags: 0,
        ttl: 0,
        frag: FragKind::Whole,
        dont_frag: false,
        vlan_count: 0,
        l3_offset: 0,
        l3_len: 0,
        l4_offset: 0,
    };

    /// True for IPv6.
    pub const fn is_v6(&self) -> bool {
        self.key.version() == 6
    }

    /// True if the upper-layer header is present and was parsed (ports are meaningful).
    pub const fn has_ports(&self) -> bool {
        !matches!(self.frag, FragKind::Later)
            && matches!(
                self.key.proto(),
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
#[inline]
pub fn summarize(frame: &[u8]) -> Result<Summary> {
    let mut s = IpSummary::EMPTY;
    if fast_ipv4(frame, &mut s) {
        return Ok(Summary::Ip(s));
    }
    summarize_general(frame)
}

/// [`summarize`] writing the outline into `out` (no large return value to copy: this is the
/// per-packet entry point). Returns `Ok(None)` for IP frames, `Ok(Some(ethertype))` otherwise.
#[inline]
pub fn summarize_into(frame: &[u8], out: &mut IpSummary) -> Result<Option<u16>> {
    if fast_ipv4(frame, out) {
        return Ok(None);
    }
    match summarize_general(frame)? {
        Summary::Ip(s) => {
            *out = s;
            Ok(None)
        }
        Summary::NotIp { ethertype } => Ok(Some(ethertype)),
    }
}

/// The common case on the wire, with one bounds check: untagged IPv4 without options, not a
/// fragment, carrying a complete TCP or UDP header, parsed straight into the flow key. Writes
/// `out` and returns true, or returns false for "take the general path" ([`summarize_into`],
/// which then also produces the precise error); where it applies it never disagrees with the
/// general path.
#[inline(always)]
pub fn summarize_fast(frame: &[u8], out: &mut IpSummary) -> bool {
    fast_ipv4(frame, out)
}

#[inline(always)]
fn fast_ipv4(frame: &[u8], out: &mut IpSummary) -> bool {
    let Some(h) = frame.get(..54) else {
        return false;
    };
    let Ok(h): core::result::Result<&[u8; 54], _> = h.try_into() else {
        return false;
    };
    if h[12] != 0x08 || h[13] != 0x00 || h[14] != 0x45 {
        return false;
    }
    let total = usize::from(u16::from_be_bytes([h[16], h[17]]));
    if total < 40 || 14 + total > frame.len() || u16::from_be_bytes([h[20], h[21]]) & 0x3fff != 0 {
        return false;
    }
    let tcp_flags = match h[23] {
        ip_proto::TCP => {
            let doff = usize::from(h[46] >> 4) * 4;
            if doff < 20 || doff > total - 20 {
                return false;
            }
            h[47]
        }
        ip_proto::UDP => {
            let len = usize::from(u16::from_be_bytes([h[38], h[39]]));
            if len < 8 || len > total - 20 {
                return false;
            }
            0
        }
        _ => return false,
    };
    out.key = FlowKey::v4(
        h[23],
        [h[26], h[27], h[28], h[29]],
        u16::from_be_bytes([h[34], h[35]]),
        [h[30], h[31], h[32], h[33]],
        u16::from_be_bytes([h[36], h[37]]),
    );
    out.tcp_flags = tcp_flags;
    out.ttl = h[22];
    out.frag = FragKind::Whole;
    out.dont_frag = h[20] & 0x40 != 0;
    out.vlan_count = 0;
    out.l3_offset = 14;
    out.l3_len = total;
    out.l4_offset = 34;
    true
}

/// Every frame, every layout: VLAN tags, IPv4 options, IPv6 extension headers, fragments.
fn summarize_general(frame: &[u8]) -> Result<Summary> {
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
                key: FlowKey::flow(
                    4,
                    ip.protocol(),
                    v4_mapped(ip.src()),
                    0,
                    v4_mapped(ip.dst()),
                    0,
                ),
                vlan_count: l2.vlan_count,
                l3_offset: l3,
                l3_len: usize::from(ip.total_len()),
                l4_offset: l3 + ip.header_len(),
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
                key: FlowKey::flow(6, ul.protocol, ip.src(), 0, ip.dst(), 0),
                vlan_count: l2.vlan_count,
                l3_offset: l3,
                l3_len: ip.total_len(),
                l4_offset: l3 + ul.offset,
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
    match s.key.proto() {
        ip_proto::TCP => {
            let t = TcpPacket::new_checked(l4)?;
            s.key = s.key.with_ports(t.src_port(), t.dst_port());
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
            s.key = s.key.with_ports(u.src_port(), u.dst_port());
        }
        ip_proto::SCTP => {
            let p = SctpPacket::new_checked(l4)?;
            s.key = s.key.with_ports(p.src_port(), p.dst_port());
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
        let Summary::Ip(s) = summarize(&f).unwrap() else {
            panic!("not ip")
        };
        assert_eq!(s.key.version(), 4);
        assert_eq!((s.l3_offset, s.l4_offset, s.l3_len), (14, 34, 20 + 20 + 5));
        assert_eq!(s.key.src(), v4_mapped([198, 18, 0, 1]));
        assert_eq!(v4_of(&s.key.dst()), [198, 18, 1, 10]);
        assert_eq!((s.key.sport(), s.key.dport()), (40000, 80));
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
        let Summary::Ip(s) = summarize(&f).unwrap() else {
            panic!("not ip")
        };
        assert_eq!(
            (
                s.key.version(),
                s.key.proto(),
                s.key.sport(),
                s.key.dport(),
                s.ttl
            ),
            (6, 17, 5353, 53, 33)
        );
        assert_eq!((s.key.src(), s.key.dst()), (src, dst));
        assert_eq!(s.l4_offset, 54);
    }

    #[test]
    fn arp_is_not_ip() {
        let mut f = [0u8; 42];
        f[12..14].copy_from_slice(&ethertype::ARP.to_be_bytes());
        assert_eq!(
            summarize(&f).unwrap(),
            Summary::NotIp {
                ethertype: ethertype::ARP
            }
        );
    }

    #[test]
    fn later_fragment_has_no_ports() {
        let mut f = tcp_v4(b"0123456789abcdef");
        // Offset 8 bytes, no MF: a last fragment. Fix the header checksum.
        f[20..22].copy_from_slice(&1u16.to_be_bytes());
        let mut ip = Ipv4Packet::new_unchecked(&mut f[14..]);
        ip.fill_checksum();
        let Summary::Ip(s) = summarize(&f).unwrap() else {
            panic!("not ip")
        };
        assert_eq!(s.frag, FragKind::Later);
        assert!(!s.has_ports());
        assert_eq!((s.key.sport(), s.key.dport()), (0, 0));
    }

    #[test]
    fn truncated_tcp_names_layer() {
        let f = tcp_v4(b"");
        // Claim a 40-byte IP packet but cut the TCP header short: IP complains first.
        assert!(matches!(
            summarize(&f[..50]),
            Err(WireError::Truncated {
                layer: Layer::Ipv4,
                ..
            })
        ));
        // Shrink the IP total length so the TCP header itself is short.
        let mut g = f.clone();
        g[16..18].copy_from_slice(&30u16.to_be_bytes());
        assert!(matches!(
            summarize(&g),
            Err(WireError::Truncated {
                layer: Layer::Tcp,
                needed: 20,
                got: 10
            })
        ));
    }

    proptest! {
        /// The fast path, where it applies, agrees with the general path.
        #[test]
        fn fast_path_agrees(
            src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, ttl: u8, udp: bool,
            payload in proptest::collection::vec(any::<u8>(), 0..40),
            flips in proptest::collection::vec((0usize..80, any::<u8>()), 0..3),
        ) {
            let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]).ipv4(src, dst, ttl);
            let mut f = Vec::new();
            if udp {
                b.udp(sport, dport).write(&mut f, &payload).unwrap();
            } else {
                b.tcp(sport, dport, 7, 1000).syn().write(&mut f, &payload).unwrap();
            }
            for (at, x) in flips {
                let n = f.len();
                f[at % n] ^= x;
            }
            let mut fast = IpSummary::EMPTY;
            if fast_ipv4(&f, &mut fast) {
                prop_assert_eq!(summarize_general(&f), Ok(Summary::Ip(fast)));
            }
        }

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
            prop_assert_eq!(v4_of(&s.key.src()), src);
            prop_assert_eq!(v4_of(&s.key.dst()), dst);
            prop_assert_eq!((s.key.sport(), s.key.dport(), s.ttl), (sport, dport, ttl));
            prop_assert_eq!(s.key.proto(), if udp { 17 } else { 6 });
            prop_assert_eq!(s.l3_len, f.len() - 14);
        }
    }
}
