//! Readable frame builders: `eth(dst, src, tcp(client, 40000, vip, 80).syn())`.

use etherparse::{
    IpDscp, IpHeaders, IpNumber, Ipv4Extensions, Ipv4Header, Ipv6Extensions, Ipv6FlowLabel,
    Ipv6Header, PacketBuilder, UdpHeader,
};
use std::net::IpAddr;
use xvs_wire::MacAddr;

/// Parses an address literal (test input is trusted).
pub fn ip(s: &str) -> IpAddr {
    s.parse()
        .unwrap_or_else(|_| panic!("bad address literal {s}"))
}

/// An IP header's fields.
#[derive(Debug, Clone, Copy)]
pub struct IpHdr {
    /// Source.
    pub src: IpAddr,
    /// Destination.
    pub dst: IpAddr,
    /// TTL / hop limit.
    pub ttl: u8,
    /// IPv4 DF flag.
    pub df: bool,
    /// IPv4 identification.
    pub ident: u16,
    /// TOS / traffic class.
    pub tos: u8,
}

impl IpHdr {
    fn new(src: IpAddr, dst: IpAddr) -> Self {
        IpHdr {
            src,
            dst,
            ttl: 64,
            df: true,
            ident: 0x2a2a,
            tos: 0,
        }
    }

    fn headers(&self, proto: IpNumber, payload_len: usize) -> IpHeaders {
        match (self.src, self.dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                let mut h =
                    Ipv4Header::new(payload_len as u16, self.ttl, proto, s.octets(), d.octets())
                        .expect("payload fits");
                h.dont_fragment = self.df;
                h.identification = self.ident;
                h.dscp = IpDscp::try_new(self.tos >> 2).expect("dscp");
                h.ecn = etherparse::IpEcn::try_new(self.tos & 3).expect("ecn");
                h.header_checksum = h.calc_header_checksum();
                IpHeaders::Ipv4(h, Ipv4Extensions::default())
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => IpHeaders::Ipv6(
                Ipv6Header {
                    traffic_class: self.tos,
                    flow_label: Ipv6FlowLabel::ZERO,
                    payload_length: payload_len as u16,
                    next_header: proto,
                    hop_limit: self.ttl,
                    source: s.octets(),
                    destination: d.octets(),
                },
                Ipv6Extensions::default(),
            ),
            _ => panic!("mixed address families"),
        }
    }
}

/// Something that serialises to an IP packet.
pub trait IpPacket {
    /// The IP packet's bytes.
    fn bytes(&self) -> Vec<u8>;
}

impl IpPacket for Vec<u8> {
    fn bytes(&self) -> Vec<u8> {
        self.clone()
    }
}

/// A TCP segment.
#[derive(Debug, Clone)]
pub struct Tcp {
    /// IP header.
    pub ip: IpHdr,
    sport: u16,
    dport: u16,
    syn: bool,
    ack: Option<u32>,
    fin: bool,
    rst: bool,
    payload: Vec<u8>,
}

/// A TCP segment `src:sport → dst:dport` with no flags yet.
pub fn tcp(src: &str, sport: u16, dst: &str, dport: u16) -> Tcp {
    Tcp {
        ip: IpHdr::new(ip(src), ip(dst)),
        sport,
        dport,
        syn: false,
        ack: None,
        fin: false,
        rst: false,
        payload: Vec::new(),
    }
}

impl Tcp {
    /// Sets SYN.
    pub fn syn(mut self) -> Self {
        self.syn = true;
        self
    }
    /// Sets ACK.
    pub fn ack(mut self) -> Self {
        self.ack = Some(7000);
        self
    }
    /// Sets FIN.
    pub fn fin(mut self) -> Self {
        self.fin = true;
        self
    }
    /// Sets RST.
    pub fn rst(mut self) -> Self {
        self.rst = true;
        self
    }
    /// Sets the TTL / hop limit.
    pub fn ttl(mut self, t: u8) -> Self {
        self.ip.ttl = t;
        self
    }
    /// Clears the DF flag.
    pub fn no_df(mut self) -> Self {
        self.ip.df = false;
        self
    }
    /// Sets the payload.
    pub fn payload(mut self, p: &[u8]) -> Self {
        self.payload = p.to_vec();
        self
    }
    /// Same segment with other addresses and ports.
    pub fn with(mut self, src: &str, sport: u16, dst: &str, dport: u16) -> Self {
        self.ip.src = ip(src);
        self.ip.dst = ip(dst);
        self.sport = sport;
        self.dport = dport;
        self
    }
}

impl IpPacket for Tcp {
    fn bytes(&self) -> Vec<u8> {
        let mut t = etherparse::TcpHeader::new(self.sport, self.dport, 1000, 64240);
        t.syn = self.syn;
        t.fin = self.fin;
        t.rst = self.rst;
        if let Some(a) = self.ack {
            t.ack = true;
            t.acknowledgment_number = a;
        }
        let b = PacketBuilder::ip(
            self.ip
                .headers(IpNumber::TCP, t.header_len() + self.payload.len()),
        )
        .tcp_header(t);
        let mut out = Vec::new();
        b.write(&mut out, &self.payload).expect("serialise tcp");
        out
    }
}

/// A UDP datagram.
#[derive(Debug, Clone)]
pub struct Udp {
    /// IP header.
    pub ip: IpHdr,
    sport: u16,
    dport: u16,
    payload: Vec<u8>,
}

/// A UDP datagram `src:sport → dst:dport` carrying `payload`.
pub fn udp(src: &str, sport: u16, dst: &str, dport: u16, payload: &[u8]) -> Udp {
    Udp {
        ip: IpHdr::new(ip(src), ip(dst)),
        sport,
        dport,
        payload: payload.to_vec(),
    }
}

impl Udp {
    /// Sets the TTL / hop limit.
    pub fn ttl(mut self, t: u8) -> Self {
        self.ip.ttl = t;
        self
    }
}

impl IpPacket for Udp {
    fn bytes(&self) -> Vec<u8> {
        let b = PacketBuilder::ip(self.ip.headers(IpNumber::UDP, 8 + self.payload.len()))
            .udp(self.sport, self.dport);
        let mut out = Vec::new();
        b.write(&mut out, &self.payload).expect("serialise udp");
        out
    }
}

/// An SCTP packet with one chunk.
#[derive(Debug, Clone)]
pub struct Sctp {
    /// IP header.
    pub ip: IpHdr,
    sport: u16,
    dport: u16,
    vtag: u32,
    chunk: Vec<u8>,
}

/// An SCTP packet `src:sport → dst:dport` with verification tag `vtag` and one chunk
/// (its type, flags and value; the chunk's length is filled in).
pub fn sctp(
    src: &str,
    sport: u16,
    dst: &str,
    dport: u16,
    vtag: u32,
    (kind, flags, value): (u8, u8, &[u8]),
) -> Sctp {
    let len = u16::try_from(4 + value.len()).expect("chunk length");
    let mut chunk = vec![kind, flags];
    chunk.extend_from_slice(&len.to_be_bytes());
    chunk.extend_from_slice(value);
    while chunk.len() % 4 != 0 {
        chunk.push(0);
    }
    Sctp {
        ip: IpHdr::new(ip(src), ip(dst)),
        sport,
        dport,
        vtag,
        chunk,
    }
}

/// The value of an INIT or INIT-ACK chunk: initiate tag, a_rwnd, streams, initial TSN.
fn init_value(tag: u32) -> Vec<u8> {
    let mut v = tag.to_be_bytes().to_vec();
    v.extend_from_slice(&65535u32.to_be_bytes());
    v.extend_from_slice(&[0, 10, 0, 10]);
    v.extend_from_slice(&1u32.to_be_bytes());
    v
}

/// The client's initiate tag in [`sctp_init`].
pub const SCTP_CLIENT_TAG: u32 = 0x1234_5678;
/// The server's initiate tag in [`sctp_init_ack`].
pub const SCTP_SERVER_TAG: u32 = 0x0bad_cafe;

/// An SCTP packet `src:sport → dst:dport` carrying an INIT chunk (verification tag 0).
pub fn sctp_init(src: &str, sport: u16, dst: &str, dport: u16) -> Sctp {
    sctp(
        src,
        sport,
        dst,
        dport,
        0,
        (1, 0, &init_value(SCTP_CLIENT_TAG)),
    )
}

/// The server's INIT-ACK to [`sctp_init`] (a cookie parameter carried along).
pub fn sctp_init_ack(src: &str, sport: u16, dst: &str, dport: u16) -> Sctp {
    let mut v = init_value(SCTP_SERVER_TAG);
    v.extend_from_slice(&[0, 7, 0, 8, b'c', b'o', b'o', b'k']); // State Cookie parameter
    sctp(src, sport, dst, dport, SCTP_CLIENT_TAG, (2, 0, &v))
}

/// A DATA chunk (TSN 1, stream 0) from the client of [`sctp_init_ack`]'s association.
pub fn sctp_data(src: &str, sport: u16, dst: &str, dport: u16, payload: &[u8]) -> Sctp {
    let mut v = 1u32.to_be_bytes().to_vec();
    v.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0]); // stream, sequence, payload protocol
    v.extend_from_slice(payload);
    sctp(src, sport, dst, dport, SCTP_SERVER_TAG, (0, 3, &v))
}

impl Sctp {
    /// Sets the TTL / hop limit.
    pub fn ttl(mut self, t: u8) -> Self {
        self.ip.ttl = t;
        self
    }
}

impl IpPacket for Sctp {
    fn bytes(&self) -> Vec<u8> {
        let mut l4 = Vec::new();
        l4.extend_from_slice(&self.sport.to_be_bytes());
        l4.extend_from_slice(&self.dport.to_be_bytes());
        l4.extend_from_slice(&self.vtag.to_be_bytes());
        l4.extend_from_slice(&[0; 4]);
        l4.extend_from_slice(&self.chunk);
        // CRC32c (Castagnoli) over the packet with a zero checksum, stored little-endian.
        let crc = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI).checksum(&l4);
        l4[8..12].copy_from_slice(&crc.to_le_bytes());
        let mut out = Vec::new();
        self.ip
            .headers(IpNumber::SCTP, l4.len())
            .write(&mut out)
            .expect("ip header");
        out.extend_from_slice(&l4);
        out
    }
}

/// An ICMP (v4 or v6 by address family) message with raw type, code, rest-of-header and data.
#[derive(Debug, Clone)]
pub struct Icmp {
    /// IP header.
    pub ip: IpHdr,
    kind: u8,
    code: u8,
    rest: [u8; 4],
    data: Vec<u8>,
}

/// An ICMP message `src → dst`.
pub fn icmp(src: &str, dst: &str, kind: u8, code: u8, rest: [u8; 4], data: &[u8]) -> Icmp {
    Icmp {
        ip: IpHdr::new(ip(src), ip(dst)),
        kind,
        code,
        rest,
        data: data.to_vec(),
    }
}

impl Icmp {
    /// Sets the TTL / hop limit.
    pub fn ttl(mut self, t: u8) -> Self {
        self.ip.ttl = t;
        self
    }
    /// Sets the IPv4 header as xvs's own ICMP errors carry it (TOS 0xc0, no DF, ID 0).
    pub fn as_error_origin(mut self) -> Self {
        self.ip.tos = 0xc0;
        self.ip.df = false;
        self.ip.ident = 0;
        if self.ip.src.is_ipv6() {
            self.ip.tos = 0;
        }
        self
    }
}

impl IpPacket for Icmp {
    fn bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        if self.ip.src.is_ipv4() {
            PacketBuilder::ip(self.ip.headers(IpNumber::ICMP, 8 + self.data.len()))
                .icmpv4_raw(self.kind, self.code, self.rest)
                .write(&mut out, &self.data)
                .expect("serialise icmp");
        } else {
            PacketBuilder::ip(self.ip.headers(IpNumber::IPV6_ICMP, 8 + self.data.len()))
                .icmpv6_raw(self.kind, self.code, self.rest)
                .write(&mut out, &self.data)
                .expect("serialise icmpv6");
        }
        out
    }
}

/// An outer IPv4 (proto 4) or IPv6 (next header 41) header around `inner`, as TUN mode sends it:
/// TTL/hop limit, TOS/traffic class, DF and ID copied from the inner packet.
pub fn ipip(src: &str, dst: &str, inner: &impl IpPacket) -> Vec<u8> {
    let bytes = inner.bytes();
    let proto = if bytes[0] >> 4 == 6 {
        IpNumber::IPV6
    } else {
        IpNumber::IPV4
    };
    let mut out = outer(src, dst, &bytes, proto, 0);
    out.extend_from_slice(&bytes);
    out
}

/// GUE as TUN mode with `--tun-type gue` sends it: an outer header as [`ipip`]'s but for UDP,
/// UDP from `sport` to `dport` (with its checksum when `csum`), a GUE header (version 0, no
/// options) naming the inner protocol, then `inner`.
pub fn gue(
    src: &str,
    dst: &str,
    sport: u16,
    dport: u16,
    inner: &impl IpPacket,
    csum: bool,
) -> Vec<u8> {
    let bytes = inner.bytes();
    let inner_proto = if bytes[0] >> 4 == 6 { 41u8 } else { 4u8 };
    let mut payload = vec![0u8, inner_proto, 0, 0];
    payload.extend_from_slice(&bytes);
    let mut out = outer(src, dst, &bytes, IpNumber::UDP, 8 + 4);
    let udp = match (ip(src), ip(dst)) {
        (IpAddr::V4(s), IpAddr::V4(d)) if csum => {
            let h = Ipv4Header::new(0, 64, IpNumber::UDP, s.octets(), d.octets()).expect("fits");
            UdpHeader::with_ipv4_checksum(sport, dport, &h, &payload).expect("udp")
        }
        (IpAddr::V6(s), IpAddr::V6(d)) if csum => {
            let h = Ipv6Header {
                traffic_class: 0,
                flow_label: Ipv6FlowLabel::ZERO,
                payload_length: 0,
                next_header: IpNumber::UDP,
                hop_limit: 64,
                source: s.octets(),
                destination: d.octets(),
            };
            UdpHeader::with_ipv6_checksum(sport, dport, &h, &payload).expect("udp")
        }
        _ => UdpHeader {
            source_port: sport,
            destination_port: dport,
            length: (8 + payload.len()) as u16,
            checksum: 0,
        },
    };
    udp.write(&mut out).expect("write");
    out.extend_from_slice(&payload);
    out
}

/// GRE as TUN mode with `--tun-type gre` sends it: an outer header as [`ipip`]'s but for GRE,
/// a GRE header for the inner packet's EtherType (with the C bit and the checksum over GRE
/// header and packet when `csum`), then `inner`.
pub fn gre(src: &str, dst: &str, inner: &impl IpPacket, csum: bool) -> Vec<u8> {
    let bytes = inner.bytes();
    let ethertype: u16 = if bytes[0] >> 4 == 6 { 0x86dd } else { 0x0800 };
    let mut g = Vec::new();
    g.extend_from_slice(&(if csum { 0x8000u16 } else { 0 }).to_be_bytes());
    g.extend_from_slice(&ethertype.to_be_bytes());
    if csum {
        g.extend_from_slice(&[0, 0, 0, 0]);
    }
    g.extend_from_slice(&bytes);
    if csum {
        // RFC 1071, over the GRE header and the packet.
        let mut sum: u32 = g
            .chunks(2)
            .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
            .sum();
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        g[4..6].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    }
    let mut out = outer(src, dst, &bytes, IpNumber(47), g.len() - bytes.len());
    out.extend_from_slice(&g);
    out
}

/// The outer header TUN mode puts before `inner` (and `extra` bytes of tunnel header):
/// protocol `proto`, TTL/hop limit, TOS/traffic class, DF and ID copied from `inner`.
fn outer(src: &str, dst: &str, inner: &[u8], proto: IpNumber, extra: usize) -> Vec<u8> {
    let (src, dst) = (ip(src), ip(dst));
    let mut out = Vec::new();
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let mut h = Ipv4Header::new(
                (inner.len() + extra) as u16,
                inner[8],
                proto,
                s.octets(),
                d.octets(),
            )
            .expect("fits");
            h.dont_fragment = inner[6] & 0x40 != 0;
            h.identification = u16::from_be_bytes([inner[4], inner[5]]);
            h.dscp = IpDscp::try_new(inner[1] >> 2).expect("dscp");
            h.ecn = etherparse::IpEcn::try_new(inner[1] & 3).expect("ecn");
            h.header_checksum = h.calc_header_checksum();
            h.write(&mut out).expect("write");
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let h = Ipv6Header {
                traffic_class: (inner[0] << 4) | (inner[1] >> 4),
                flow_label: Ipv6FlowLabel::ZERO,
                payload_length: (inner.len() + extra) as u16,
                next_header: proto,
                hop_limit: inner[7],
                source: s.octets(),
                destination: d.octets(),
            };
            h.write(&mut out).expect("write");
        }
        _ => panic!("mixed families"),
    }
    out
}

/// An Ethernet frame `src → dst` around an IP packet (EtherType from the IP version).
pub fn eth(dst: MacAddr, src: MacAddr, p: &impl IpPacket) -> Vec<u8> {
    let ip = p.bytes();
    let ethertype: u16 = if ip[0] >> 4 == 6 { 0x86dd } else { 0x0800 };
    let mut f = Vec::with_capacity(14 + ip.len());
    f.extend_from_slice(&dst.0);
    f.extend_from_slice(&src.0);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(&ip);
    f
}

/// The same frame with an 802.1Q tag inserted after the MAC addresses.
pub fn vlan(frame: &[u8], vid: u16) -> Vec<u8> {
    let mut f = frame[..12].to_vec();
    f.extend_from_slice(&0x8100u16.to_be_bytes());
    f.extend_from_slice(&(vid & 0x0fff).to_be_bytes());
    f.extend_from_slice(&frame[12..]);
    f
}

/// An ARP request for `target` from `sender` (broadcast).
pub fn arp_request(sender_mac: MacAddr, sender: &str, target: &str) -> Vec<u8> {
    let (IpAddr::V4(s), IpAddr::V4(t)) = (ip(sender), ip(target)) else {
        panic!("arp is ipv4")
    };
    let mut f = Vec::new();
    f.extend_from_slice(&[0xff; 6]);
    f.extend_from_slice(&sender_mac.0);
    f.extend_from_slice(&0x0806u16.to_be_bytes());
    f.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
    f.extend_from_slice(&sender_mac.0);
    f.extend_from_slice(&s.octets());
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&t.octets());
    f
}

/// The first `n` bytes of an IP packet (what an ICMP error quotes).
pub fn quote(p: &impl IpPacket, n: usize) -> Vec<u8> {
    let b = p.bytes();
    b[..n.min(b.len())].to_vec()
}

/// A client's connection as it crosses a DR director: SYN, ACK, a request (data), an ACK.
pub fn session(src: &str, sport: u16, dst: &str, dport: u16) -> [Tcp; 4] {
    [
        tcp(src, sport, dst, dport).syn(),
        tcp(src, sport, dst, dport).ack(),
        tcp(src, sport, dst, dport)
            .ack()
            .payload(b"GET / HTTP/1.0\r\n\r\n"),
        tcp(src, sport, dst, dport).ack(),
    ]
}
