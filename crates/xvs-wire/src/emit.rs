//! Emitters for the packets xvs writes itself: ICMP error messages (fragmentation needed,
//! packet too big, time exceeded, port unreachable) around an already placed quotation.
//!
//! Encapsulation headers are written with [`crate::ipv4::Ipv4Header::emit`] and
//! [`crate::ipv6::Ipv6Header::emit`].

use crate::icmpv4::Icmpv4Packet;
use crate::icmpv6::Icmpv6Packet;
use crate::ip_proto;
use crate::ipv4::{self, Ipv4Header};
use crate::ipv6::{self, Ipv6Header};

/// Hop limit / TTL of packets xvs originates.
pub const ORIGIN_TTL: u8 = 64;
/// DSCP/ECN byte for ICMP errors (precedence "internetwork control", as Linux sends them).
pub const ICMP_TOS: u8 = 0xc0;
/// Most bytes of an ICMPv4 error's IP packet (RFC 1812 §4.3.2.3).
pub const ICMPV4_ERROR_MAX: usize = 576;
/// Most bytes of an ICMPv6 error's IP packet (the IPv6 minimum MTU, RFC 4443 §2.4).
pub const ICMPV6_ERROR_MAX: usize = 1280;
/// Offset of the quotation in an ICMPv4 error's IP packet.
pub const ICMPV4_QUOTE_OFFSET: usize = ipv4::MIN_HEADER_LEN + crate::icmpv4::HEADER_LEN;
/// Offset of the quotation in an ICMPv6 error's IP packet.
pub const ICMPV6_QUOTE_OFFSET: usize = ipv6::HEADER_LEN + crate::icmpv6::HEADER_LEN;

/// An ICMP error to emit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IcmpError {
    /// Message type.
    pub msg_type: u8,
    /// Message code.
    pub code: u8,
    /// The four bytes after the checksum (e.g. next-hop MTU).
    pub rest: [u8; 4],
}

/// Writes the IPv4 and ICMP headers of an error whose quotation (`quoted_len` bytes) is already
/// in `pkt` at [`ICMPV4_QUOTE_OFFSET`]. Returns the IP packet length.
///
/// # Panics
/// If `pkt` is shorter than the headers plus the quotation (a caller bug).
pub fn icmpv4_error(
    pkt: &mut [u8],
    e: IcmpError,
    src: [u8; 4],
    dst: [u8; 4],
    quoted_len: usize,
) -> usize {
    let total = ICMPV4_QUOTE_OFFSET + quoted_len;
    Ipv4Header {
        dscp_ecn: ICMP_TOS,
        total_len: total as u16,
        ident: 0,
        dont_frag: false,
        ttl: ORIGIN_TTL,
        protocol: ip_proto::ICMP,
        src,
        dst,
    }
    .emit(pkt);
    let mut icmp = Icmpv4Packet::new_unchecked(&mut pkt[ipv4::MIN_HEADER_LEN..total]);
    icmp.set_msg_type(e.msg_type);
    icmp.set_msg_code(e.code);
    icmp.set_rest(e.rest);
    icmp.fill_checksum();
    total
}

/// Writes the IPv6 and ICMPv6 headers of an error whose quotation (`quoted_len` bytes) is
/// already in `pkt` at [`ICMPV6_QUOTE_OFFSET`]. Returns the IP packet length.
///
/// # Panics
/// If `pkt` is shorter than the headers plus the quotation (a caller bug).
pub fn icmpv6_error(
    pkt: &mut [u8],
    e: IcmpError,
    src: [u8; 16],
    dst: [u8; 16],
    quoted_len: usize,
) -> usize {
    let total = ICMPV6_QUOTE_OFFSET + quoted_len;
    Ipv6Header {
        traffic_class: 0,
        flow_label: 0,
        payload_len: (total - ipv6::HEADER_LEN) as u16,
        next_header: ip_proto::ICMPV6,
        hop_limit: ORIGIN_TTL,
        src,
        dst,
    }
    .emit(pkt);
    let mut icmp = Icmpv6Packet::new_unchecked(&mut pkt[ipv6::HEADER_LEN..total]);
    icmp.set_msg_type(e.msg_type);
    icmp.set_msg_code(e.code);
    icmp.set_rest(e.rest);
    icmp.fill_checksum(src, dst);
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::icmpv4;

    #[test]
    fn frag_needed_parses_with_etherparse() {
        let mut pkt = [0u8; 28 + 28];
        // The quotation: an IPv4 header + 8 bytes.
        Ipv4Header {
            dscp_ecn: 0,
            total_len: 1500,
            ident: 9,
            dont_frag: true,
            ttl: 63,
            protocol: 6,
            src: [198, 18, 0, 1],
            dst: [198, 18, 1, 10],
        }
        .emit(&mut pkt[28..48]);
        let n = icmpv4_error(
            &mut pkt,
            IcmpError {
                msg_type: icmpv4::kind::DEST_UNREACH,
                code: icmpv4::code::FRAG_NEEDED,
                rest: [0, 0, 0x05, 0xc8],
            },
            [198, 18, 1, 10],
            [198, 18, 0, 1],
            28,
        );
        assert_eq!(n, 56);
        let ip = ipv4::Ipv4Packet::new_checked(&pkt[..]).unwrap();
        assert!(ip.verify_checksum());
        let icmp = Icmpv4Packet::new_checked(ip.payload()).unwrap();
        assert!(icmp.verify_checksum());
        assert_eq!(icmp.next_hop_mtu(), 1480);
        let s = etherparse::SlicedPacket::from_ip(&pkt).unwrap();
        match s.transport {
            Some(etherparse::TransportSlice::Icmpv4(i)) => match i.icmp_type() {
                etherparse::Icmpv4Type::DestinationUnreachable(
                    etherparse::icmpv4::DestUnreachableHeader::FragmentationNeeded { next_hop_mtu },
                ) => assert_eq!(next_hop_mtu, 1480),
                other => panic!("unexpected {other:?}"),
            },
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn packet_too_big_checksum() {
        let src = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10];
        let dst = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        let mut pkt = [0u8; 48 + 48];
        pkt[48] = 0x60;
        let n = icmpv6_error(
            &mut pkt,
            IcmpError {
                msg_type: crate::icmpv6::kind::PACKET_TOO_BIG,
                code: 0,
                rest: 1460u32.to_be_bytes(),
            },
            src,
            dst,
            48,
        );
        let ip = ipv6::Ipv6Packet::new_checked(&pkt[..n]).unwrap();
        let icmp = Icmpv6Packet::new_checked(&pkt[40..n]).unwrap();
        assert!(icmp.verify_checksum(ip.src(), ip.dst()));
        assert_eq!(icmp.mtu(), 1460);
    }
}
