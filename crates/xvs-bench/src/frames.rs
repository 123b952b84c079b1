//! The generator's frames: one template per traffic kind, built with etherparse, and the
//! per-packet changes (which flow, TCP flags, the timestamp trailer, checksums) written in
//! place into each transmit buffer.
//!
//! Flow `i` of `n` comes from `src_base + (i & 0xffff)` (the address's last 32 bits, IPv4 or
//! IPv6), port `1024 + (i >> 16)`: up to 65 536 source addresses times 64 512 ports, so 10
//! million distinct 5-tuples need 153 ports per address. Frames cycle through the flows in
//! order.

use etherparse::PacketBuilder;
use std::net::IpAddr;

/// Frame check sequence: counted in a frame's wire size, never in the buffer.
pub const FCS: usize = 4;
/// The smallest Ethernet frame on the wire, FCS included.
pub const MIN_FRAME: usize = 64;
/// Ethernet header bytes.
const L2: usize = 14;

/// What the generator sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Traffic {
    /// UDP datagrams.
    Udp,
    /// TCP SYNs only: every frame the first of a connection (the conn-table insert path).
    TcpSyn,
    /// TCP: one SYN per flow on the first pass over the flows, then ACKs (established-like).
    TcpEstablished,
}

impl std::str::FromStr for Traffic {
    type Err = String;
    fn from_str(s: &str) -> Result<Traffic, String> {
        match s {
            "udp" => Ok(Traffic::Udp),
            "syn" | "tcp-syn" => Ok(Traffic::TcpSyn),
            "tcp" | "established" | "tcp-established" => Ok(Traffic::TcpEstablished),
            _ => Err(format!("unknown traffic '{s}' (udp, syn, tcp)")),
        }
    }
}

/// Where the frames go and what they carry.
#[derive(Debug, Clone)]
pub struct FrameSpec {
    /// UDP or TCP.
    pub traffic: Traffic,
    /// Frame size on the wire, FCS included (at least 64).
    pub size: usize,
    /// Source MAC (the generator's interface).
    pub src_mac: [u8; 6],
    /// Destination MAC (the director's interface).
    pub dst_mac: [u8; 6],
    /// First source address (the same family as `dst`).
    pub src_base: IpAddr,
    /// Destination address (the VIP).
    pub dst: IpAddr,
    /// Destination port.
    pub dport: u16,
    /// Distinct flows (1 to 10 million and more).
    pub flows: u32,
}

/// The timestamp trailer: the last 16 bytes of the IP payload when it has room.
pub mod trailer {
    /// Length.
    pub const LEN: usize = 16;
    /// Its first four bytes: "xvsB".
    pub const MAGIC: [u8; 4] = *b"xvsB";

    /// Writes the trailer (magic, sequence number, transmit time) into `out`.
    pub fn write(out: &mut [u8; LEN], seq: u32, ts_ns: u64) {
        out[..4].copy_from_slice(&MAGIC);
        out[4..8].copy_from_slice(&seq.to_be_bytes());
        out[8..].copy_from_slice(&ts_ns.to_be_bytes());
    }

    /// The transmit time of a received frame: the trailer ends where its outermost IP packet
    /// ends (true after MAC rewriting, NAT and IPIP encapsulation alike). None if the frame
    /// is not IPv4/IPv6 or carries no trailer.
    pub fn read(frame: &[u8]) -> Option<u64> {
        let ethertype = u16::from_be_bytes([*frame.get(12)?, *frame.get(13)?]);
        let end = match ethertype {
            0x0800 => 14 + usize::from(u16::from_be_bytes([*frame.get(16)?, *frame.get(17)?])),
            0x86dd => 54 + usize::from(u16::from_be_bytes([*frame.get(18)?, *frame.get(19)?])),
            _ => return None,
        };
        let t = frame.get(end.checked_sub(LEN)?..end)?;
        if t[..4] != MAGIC {
            return None;
        }
        Some(u64::from_be_bytes(t[8..].try_into().ok()?))
    }
}

/// A template frame and where to patch it.
#[derive(Debug, Clone)]
pub struct Template {
    bytes: Vec<u8>,
    traffic: Traffic,
    flows: u32,
    /// The last 32 bits of the first source address.
    src_base: u32,
    v6: bool,
    /// Offset of the transport header.
    l4: usize,
    trailer_at: Option<usize>,
}

/// One's-complement sum of big-endian 16-bit words (odd tail padded with zero).
fn sum16(data: &[u8], mut acc: u32) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        acc += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        acc += u32::from(*last) << 8;
    }
    acc
}

fn fold(mut acc: u32) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

impl Template {
    /// Builds the template; the spec is checked (size, flows).
    pub fn new(spec: &FrameSpec) -> Result<Template, String> {
        if spec.flows == 0 {
            return Err("--flows: at least 1".into());
        }
        if !(MIN_FRAME..=1518).contains(&spec.size) {
            return Err(format!("--size: {} is not 64 to 1518 bytes", spec.size));
        }
        let l4 = match spec.traffic {
            Traffic::Udp => 8,
            Traffic::TcpSyn | Traffic::TcpEstablished => 20,
        };
        let (ip_hdr, v6) = match (spec.src_base, spec.dst) {
            (IpAddr::V4(_), IpAddr::V4(_)) => (20, false),
            (IpAddr::V6(_), IpAddr::V6(_)) => (40, true),
            _ => return Err("--src and --dst: one address family".into()),
        };
        let l3 = L2 + ip_hdr;
        if spec.size - FCS < l3 + l4 {
            return Err(format!("--size: {} cannot hold the headers", spec.size));
        }
        let room = spec.size - FCS - l3 - l4;
        // TCP carries a payload only when it has room for the trailer (a SYN has none);
        // UDP always fills the frame.
        let payload_len = match spec.traffic {
            Traffic::Udp => room,
            _ if room >= trailer::LEN => room,
            _ => 0,
        };
        let b = match (spec.src_base, spec.dst) {
            (IpAddr::V4(src), IpAddr::V4(dst)) => PacketBuilder::ethernet2(
                spec.src_mac,
                spec.dst_mac,
            )
            .ipv4(src.octets(), dst.octets(), 64),
            (IpAddr::V6(src), IpAddr::V6(dst)) => PacketBuilder::ethernet2(
                spec.src_mac,
                spec.dst_mac,
            )
            .ipv6(src.octets(), dst.octets(), 64),
            _ => unreachable!("families checked above"),
        };
        let payload = vec![0u8; payload_len];
        let mut bytes = Vec::with_capacity(spec.size);
        let written = match spec.traffic {
            Traffic::Udp => b.udp(1024, spec.dport).write(&mut bytes, &payload),
            _ => b
                .tcp(1024, spec.dport, 1, 64_240)
                .syn()
                .write(&mut bytes, &payload),
        };
        written.map_err(|e| format!("building the template frame: {e}"))?;
        // Ethernet padding up to the asked size (a TCP frame without room for the trailer
        // carries no payload, so its IP packet may end before the frame does).
        bytes.resize(bytes.len().max(spec.size - FCS), 0);
        let src_base = match spec.src_base {
            IpAddr::V4(a) => u32::from(a),
            IpAddr::V6(a) => (u128::from(a) & 0xffff_ffff) as u32,
        };
        Ok(Template {
            trailer_at: (payload_len >= trailer::LEN).then(|| l3 + l4 + payload_len - trailer::LEN),
            bytes,
            traffic: spec.traffic,
            flows: spec.flows,
            src_base,
            v6,
            l4: l3,
        })
    }

    /// Frame length in the buffer (without FCS).
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Always false: a template is at least a minimum frame.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// True if frames carry the timestamp trailer.
    pub fn has_trailer(&self) -> bool {
        self.trailer_at.is_some()
    }

    /// Writes frame number `seq` (flow `seq % flows`) stamped `now_ns` into `buf`; returns its
    /// length (0 if `buf` is too small).
    pub fn write(&self, buf: &mut [u8], seq: u64, now_ns: u64) -> usize {
        let n = self.bytes.len();
        let Some(out) = buf.get_mut(..n) else {
            return 0;
        };
        out.copy_from_slice(&self.bytes);
        let flow = (seq % u64::from(self.flows)) as u32;
        let src = self.src_base.wrapping_add(flow & 0xffff);
        let sport = 1024 + (flow >> 16) as u16;
        let l4 = self.l4;
        // The source address's last 32 bits: IPv4 at 26..30, IPv6 at 34..38.
        let src_at = if self.v6 { L2 + 8 + 12 } else { L2 + 12 };
        out[src_at..src_at + 4].copy_from_slice(&src.to_be_bytes());
        out[l4..l4 + 2].copy_from_slice(&sport.to_be_bytes());
        if self.traffic == Traffic::TcpEstablished && seq >= u64::from(self.flows) {
            out[l4 + 13] = 0x10; // ACK
            out[l4 + 8..l4 + 12].copy_from_slice(&1u32.to_be_bytes());
        }
        if let Some(at) = self.trailer_at {
            let t: &mut [u8; trailer::LEN] = (&mut out[at..at + trailer::LEN])
                .try_into()
                .expect("trailer slice has the trailer's length");
            trailer::write(t, seq as u32, now_ns);
        }
        // The transport segment's length and protocol, the pseudo-header's addresses, and
        // (IPv4) the header checksum.
        let (seg_len, proto, addrs) = if self.v6 {
            let len = usize::from(u16::from_be_bytes([out[L2 + 4], out[L2 + 5]]));
            (len, u32::from(out[L2 + 6]), L2 + 8..L2 + 40)
        } else {
            out[24..26].fill(0);
            let c = fold(sum16(&out[L2..l4], 0));
            out[24..26].copy_from_slice(&c.to_be_bytes());
            let ip_len = usize::from(u16::from_be_bytes([out[16], out[17]]));
            (ip_len - 20, u32::from(out[23]), 26..34)
        };
        let at = if self.traffic == Traffic::Udp { 6 } else { 16 };
        out[l4 + at..l4 + at + 2].fill(0);
        let pseudo = sum16(&out[addrs], proto + seg_len as u32);
        let mut c = fold(sum16(&out[l4..l4 + seg_len], pseudo));
        if c == 0 && self.traffic == Traffic::Udp {
            c = 0xffff;
        }
        out[l4 + at..l4 + at + 2].copy_from_slice(&c.to_be_bytes());
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{NetSlice, SlicedPacket, TransportSlice};
    use proptest::prelude::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn spec(traffic: Traffic, size: usize, flows: u32) -> FrameSpec {
        FrameSpec {
            traffic,
            size,
            src_mac: [2, 0, 0, 0, 0, 1],
            dst_mac: [2, 0, 0, 0, 0, 2],
            src_base: Ipv4Addr::new(198, 19, 0, 0).into(),
            dst: Ipv4Addr::new(198, 18, 0, 10).into(),
            dport: 80,
            flows,
        }
    }

    fn spec6(traffic: Traffic, size: usize, flows: u32) -> FrameSpec {
        FrameSpec {
            src_base: "2001:db8:ff::".parse::<Ipv6Addr>().unwrap().into(),
            dst: "2001:db8::10".parse::<Ipv6Addr>().unwrap().into(),
            ..spec(traffic, size, flows)
        }
    }

    /// An IPv6 frame: etherparse's checksums, the source address and port.
    fn check6(buf: &[u8]) -> (Ipv6Addr, u16, bool) {
        let p = SlicedPacket::from_ethernet(buf).expect("etherparse parses the frame");
        let Some(NetSlice::Ipv6(ip)) = p.net else {
            panic!("not IPv6")
        };
        let h = ip.header().to_header();
        let src = ip.header().source_addr();
        match p.transport {
            Some(TransportSlice::Udp(u)) => {
                let want = u
                    .to_header()
                    .calc_checksum_ipv6(&h, u.payload())
                    .expect("checksum");
                assert_eq!(u.checksum(), want, "UDP checksum");
                (src, u.source_port(), false)
            }
            Some(TransportSlice::Tcp(t)) => {
                let want = t
                    .to_header()
                    .calc_checksum_ipv6(&h, t.payload())
                    .expect("checksum");
                assert_eq!(t.checksum(), want, "TCP checksum");
                (src, t.source_port(), t.syn())
            }
            other => panic!("unexpected transport {other:?}"),
        }
    }

    #[test]
    fn ipv6_frames_are_valid_and_carry_the_trailer() {
        for traffic in [Traffic::Udp, Traffic::TcpSyn, Traffic::TcpEstablished] {
            let t = Template::new(&spec6(traffic, 128, 70_000)).unwrap();
            let mut buf = [0u8; 256];
            let n = t.write(&mut buf, 65_537, 555);
            assert_eq!(n, 124);
            let (src, sport, _) = check6(&buf[..n]);
            assert_eq!(
                src,
                "2001:db8:ff::1".parse::<Ipv6Addr>().unwrap(),
                "{traffic:?}"
            );
            assert_eq!(sport, 1025);
            assert_eq!(trailer::read(&buf[..n]), Some(555));
        }
        // The smallest IPv6 UDP frame with the trailer: 14 + 40 + 8 + 16 bytes and the FCS.
        let t = Template::new(&spec6(Traffic::Udp, 82, 1)).unwrap();
        let mut buf = [0u8; 128];
        let n = t.write(&mut buf, 0, 1);
        assert_eq!(n, 78);
        check6(&buf[..n]);
        assert_eq!(trailer::read(&buf[..n]), Some(1));
        assert!(
            Template::new(&spec6(Traffic::Udp, 64, 1)).is_err(),
            "64 bytes cannot hold IPv6 and UDP headers"
        );
        let mut mixed = spec(Traffic::Udp, 64, 1);
        mixed.dst = "2001:db8::10".parse::<Ipv6Addr>().unwrap().into();
        assert!(Template::new(&mixed).is_err());
    }

    /// Parses a written frame with etherparse and checks both checksums independently.
    fn check(buf: &[u8]) -> (Ipv4Addr, u16, bool, bool) {
        let p = SlicedPacket::from_ethernet(buf).expect("etherparse parses the frame");
        let Some(NetSlice::Ipv4(ip)) = p.net else {
            panic!("not IPv4")
        };
        let h = ip.header().to_header();
        assert_eq!(h.header_checksum, h.calc_header_checksum(), "IPv4 checksum");
        let src = ip.header().source_addr();
        match p.transport {
            Some(TransportSlice::Udp(u)) => {
                let want = u
                    .to_header()
                    .calc_checksum_ipv4(&h, u.payload())
                    .expect("checksum");
                assert_eq!(u.checksum(), want, "UDP checksum");
                (src, u.source_port(), false, false)
            }
            Some(TransportSlice::Tcp(t)) => {
                let want = t
                    .to_header()
                    .calc_checksum_ipv4(&h, t.payload())
                    .expect("checksum");
                assert_eq!(t.checksum(), want, "TCP checksum");
                (src, t.source_port(), t.syn(), t.ack())
            }
            other => panic!("unexpected transport {other:?}"),
        }
    }

    #[test]
    fn sixty_four_byte_udp_carries_a_trailer() {
        let t = Template::new(&spec(Traffic::Udp, 64, 4)).unwrap();
        assert_eq!(t.len(), 60);
        assert!(t.has_trailer());
        let mut buf = [0u8; 2048];
        let n = t.write(&mut buf, 5, 123_456_789);
        assert_eq!(n, 60);
        let (src, sport, _, _) = check(&buf[..n]);
        assert_eq!((src, sport), (Ipv4Addr::new(198, 19, 0, 1), 1024));
        assert_eq!(trailer::read(&buf[..n]), Some(123_456_789));
    }

    #[test]
    fn syn_frames_are_padded_and_carry_no_payload() {
        let t = Template::new(&spec(Traffic::TcpSyn, 64, 10)).unwrap();
        assert_eq!(t.len(), 60);
        assert!(!t.has_trailer());
        let mut buf = [0u8; 128];
        let n = t.write(&mut buf, 3, 1);
        let (_, _, syn, ack) = check(&buf[..n]);
        assert!(syn && !ack);
        assert_eq!(trailer::read(&buf[..n]), None);
    }

    #[test]
    fn established_tcp_sends_syns_then_acks() {
        let t = Template::new(&spec(Traffic::TcpEstablished, 128, 3)).unwrap();
        let mut buf = [0u8; 256];
        let flags: Vec<(bool, bool)> = (0..6)
            .map(|s| {
                let n = t.write(&mut buf, s, 9);
                assert_eq!(trailer::read(&buf[..n]), Some(9));
                let (_, _, syn, ack) = check(&buf[..n]);
                (syn, ack)
            })
            .collect();
        assert_eq!(flags[..3], [(true, false); 3]);
        assert_eq!(flags[3..], [(false, true); 3]);
    }

    #[test]
    fn bad_specs_are_refused() {
        assert!(Template::new(&spec(Traffic::Udp, 63, 1)).is_err());
        assert!(Template::new(&spec(Traffic::Udp, 64, 0)).is_err());
        assert!(Template::new(&spec(Traffic::Udp, 9000, 1)).is_err());
    }

    #[test]
    fn trailer_is_found_after_ipip_encapsulation() {
        let t = Template::new(&spec(Traffic::Udp, 64, 1)).unwrap();
        let mut inner = [0u8; 60];
        let n = t.write(&mut inner, 0, 77);
        // Outer Ethernet + IPv4 (protocol 4) around the inner IP packet.
        let mut outer = inner[..14].to_vec();
        let mut ip = [0u8; 20];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&((20 + n - 14) as u16).to_be_bytes());
        ip[9] = 4;
        outer.extend_from_slice(&ip);
        outer.extend_from_slice(&inner[14..n]);
        assert_eq!(trailer::read(&outer), Some(77));
    }

    proptest! {
        #[test]
        fn every_frame_is_valid_and_flows_are_distinct(
            size in 64usize..=1518,
            flows in 1u32..20_000_000,
            seq in any::<u64>(),
            tcp in any::<bool>(),
        ) {
            let traffic = if tcp { Traffic::TcpEstablished } else { Traffic::Udp };
            let t = Template::new(&spec(traffic, size, flows)).unwrap();
            let mut buf = vec![0u8; 2048];
            let n = t.write(&mut buf, seq, 42);
            prop_assert_eq!(n, size - FCS);
            let (src, sport, _, _) = check(&buf[..n]);
            let flow = (seq % u64::from(flows)) as u32;
            let back = (u32::from(src) - u32::from(Ipv4Addr::new(198, 19, 0, 0)))
                | (u32::from(sport - 1024) << 16);
            prop_assert_eq!(back, flow);
        }
    }
}
