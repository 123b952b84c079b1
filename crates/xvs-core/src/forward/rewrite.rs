//! Address, port and TTL rewrites with incremental checksum updates (RFC 1624), for whole
//! packets and for packets quoted inside ICMP errors.

use xvs_wire::checksum;
use xvs_wire::ip_proto;
use xvs_wire::ipv4::Ipv4Packet;
use xvs_wire::ipv6::Ipv6Packet;
use xvs_wire::sctp::SctpPacket;
use xvs_wire::summary::{IpSummary, v4_of};
use xvs_wire::transport::Transport;
use xvs_wire::{MacAddr, ethernet};

/// Where an IP packet lies in a frame.
#[derive(Debug, Clone, Copy)]
pub(super) struct Pkt {
    /// IP header offset.
    pub l3: usize,
    /// Transport header offset.
    pub l4: usize,
    /// End of the packet (or of the quotation) in the frame.
    pub end: usize,
    pub v6: bool,
    pub proto: u8,
    /// False for a quotation cut short: a full SCTP CRC cannot be recomputed.
    pub whole: bool,
}

impl Pkt {
    /// The packet described by a summary.
    pub fn of(s: &IpSummary) -> Pkt {
        Pkt {
            l3: s.l3_offset,
            l4: s.l4_offset,
            end: s.l3_offset + s.l3_len,
            v6: s.is_v6(),
            proto: s.key.proto(),
            whole: true,
        }
    }
}

/// A new address (16-byte form) and port for one end of a flow.
pub(super) type End = ([u8; 16], u16);

/// Rewrites the source and/or destination of a packet (ports only for TCP/UDP/SCTP), updating
/// the IPv4 header checksum and the TCP/UDP checksum incrementally (SCTP: recomputed) where
/// present in `d[..p.end]`.
pub(super) fn rewrite(d: &mut [u8], p: Pkt, src: Option<End>, dst: Option<End>) {
    let l4 = Transport::new(&d[p.l4.min(p.end)..p.end], p.proto);
    let mut l4c = l4.checksum();
    let udp_none = p.proto == ip_proto::UDP && !p.v6 && l4c == Some(0);
    for (end, is_src) in [(src, true), (dst, false)] {
        let Some((addr, port)) = end else { continue };
        if p.v6 {
            let mut ip = Ipv6Packet::new_unchecked(&mut d[p.l3..]);
            let old = if is_src { ip.src() } else { ip.dst() };
            if let Some(c) = l4c.as_mut() {
                *c = checksum::update(*c, &old, &addr);
            }
            if is_src {
                ip.set_src(addr);
            } else {
                ip.set_dst(addr);
            }
        } else {
            let new = v4_of(&addr);
            let mut ip = Ipv4Packet::new_unchecked(&mut d[p.l3..]);
            let old = if is_src { ip.src() } else { ip.dst() };
            if let Some(c) = l4c.as_mut() {
                *c = checksum::update(*c, &old, &new);
            }
            if is_src {
                ip.rewrite_src(new);
            } else {
                ip.rewrite_dst(new);
            }
        }
        let mut t = Transport::new(&mut d[p.l4.min(p.end)..p.end], p.proto);
        let old = if is_src { t.src_port() } else { t.dst_port() };
        if let Some(old) = old {
            if let Some(c) = l4c.as_mut() {
                *c = checksum::update16(*c, old, port);
            }
            if is_src {
                t.set_src_port(port);
            } else {
                t.set_dst_port(port);
            }
        }
    }
    if let Some(c) = l4c {
        let c = if p.proto == ip_proto::UDP {
            if udp_none { 0 } else { checksum::udp_final(c) }
        } else {
            c
        };
        Transport::new(&mut d[p.l4.min(p.end)..p.end], p.proto).set_checksum(c);
    }
    if p.proto == ip_proto::SCTP && p.whole {
        SctpPacket::new_unchecked(&mut d[p.l4..p.end]).fill_checksum();
    }
}

/// Decrements the TTL / hop limit (IPv4 checksum updated).
pub(super) fn decrement_ttl(d: &mut [u8], p: Pkt) {
    if p.v6 {
        let mut ip = Ipv6Packet::new_unchecked(&mut d[p.l3..]);
        let limit = ip.hop_limit();
        ip.set_hop_limit(limit.saturating_sub(1));
    } else {
        Ipv4Packet::new_unchecked(&mut d[p.l3..]).decrement_ttl();
    }
}

/// Sets destination and source MAC.
#[inline(always)]
pub(super) fn set_macs(d: &mut [u8], dst: MacAddr, src: MacAddr) {
    let mut e = ethernet::EthernetFrame::new_unchecked(d);
    e.set_dst(dst);
    e.set_src(src);
}

/// The source MAC of a frame.
pub(super) fn src_mac(d: &[u8]) -> MacAddr {
    ethernet::EthernetFrame::new_unchecked(d).src()
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;
    use xvs_wire::summary::{Summary, summarize, v4_mapped};

    fn check_v4(frame: &[u8]) {
        let s = etherparse::SlicedPacket::from_ethernet(frame).unwrap();
        let Some(etherparse::NetSlice::Ipv4(ip)) = s.net else {
            panic!()
        };
        let hdr = ip.header().to_header();
        assert_eq!(hdr.header_checksum, hdr.calc_header_checksum());
        let payload = ip.payload().payload;
        match s.transport {
            Some(etherparse::TransportSlice::Tcp(t)) => assert_eq!(
                t.checksum(),
                t.to_header().calc_checksum_ipv4(&hdr, t.payload()).unwrap()
            ),
            Some(etherparse::TransportSlice::Udp(u)) => {
                if u.checksum() != 0 {
                    assert_eq!(
                        u.checksum(),
                        u.to_header().calc_checksum_ipv4(&hdr, u.payload()).unwrap()
                    );
                }
            }
            _ => panic!("{payload:?}"),
        }
    }

    #[test]
    fn nat_rewrite_keeps_tcp_and_udp_checksums_valid() {
        for udp in [false, true] {
            let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]).ipv4(
                [203, 0, 113, 7],
                [198, 18, 1, 10],
                64,
            );
            let mut f = Vec::new();
            if udp {
                b.udp(5000, 53).write(&mut f, b"query").unwrap();
            } else {
                b.tcp(40000, 80, 1, 1000).syn().write(&mut f, b"").unwrap();
            }
            let Summary::Ip(s) = summarize(&f).unwrap() else {
                panic!()
            };
            rewrite(
                &mut f,
                Pkt::of(&s),
                None,
                Some((v4_mapped([198, 18, 2, 1]), 8080)),
            );
            check_v4(&f);
            rewrite(
                &mut f,
                Pkt::of(&s),
                Some((v4_mapped([198, 18, 3, 3]), 61000)),
                None,
            );
            check_v4(&f);
            decrement_ttl(&mut f, Pkt::of(&s));
            check_v4(&f);
            let Summary::Ip(t) = summarize(&f).unwrap() else {
                panic!()
            };
            assert_eq!(
                (
                    v4_of(&t.key.src()),
                    t.key.sport(),
                    v4_of(&t.key.dst()),
                    t.key.dport(),
                    t.ttl
                ),
                ([198, 18, 3, 3], 61000, [198, 18, 2, 1], 8080, 63)
            );
        }
    }

    #[test]
    fn udp_without_checksum_stays_without() {
        let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4([203, 0, 113, 7], [198, 18, 1, 10], 64)
            .udp(5000, 53);
        let mut f = Vec::new();
        b.write(&mut f, b"q").unwrap();
        f[40..42].copy_from_slice(&[0, 0]);
        let Summary::Ip(s) = summarize(&f).unwrap() else {
            panic!()
        };
        rewrite(
            &mut f,
            Pkt::of(&s),
            None,
            Some((v4_mapped([198, 18, 2, 1]), 53)),
        );
        assert_eq!(&f[40..42], &[0, 0]);
    }
}
