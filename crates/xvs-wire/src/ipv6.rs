//! IPv6 fixed header (RFC 8200) and the walk over the common extension headers.

use crate::ip_proto;
use crate::view::{fields, view};
use crate::{Layer, Result, WireError, be16, be32};
use core::net::Ipv6Addr;

/// Length of the fixed IPv6 header.
pub const HEADER_LEN: usize = 40;
/// The most extension headers xvs follows before giving up.
pub const MAX_EXTENSIONS: usize = 8;

mod field {
    pub const PAYLOAD_LEN: usize = 4;
    pub const NEXT_HEADER: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC: usize = 8;
    pub const DST: usize = 24;
}

view! {
    /// A view of an IPv6 packet.
    pub struct Ipv6Packet;
}

fields! { Ipv6Packet {
    /// Payload length (everything after the fixed header).
    payload_len /
        /// Sets the payload length.
        set_payload_len: u16 = field::PAYLOAD_LEN;

    /// Next header of the fixed header.
    next_header /
        /// Sets the next header of the fixed header.
        set_next_header: u8 = field::NEXT_HEADER;

    /// Hop limit.
    hop_limit /
        /// Sets the hop limit.
        set_hop_limit: u8 = field::HOP_LIMIT;
}}

/// Fragment header contents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fragment {
    /// Offset of this fragment in bytes.
    pub offset: u16,
    /// The M flag: more fragments follow.
    pub more: bool,
    /// Identification.
    pub ident: u32,
}

impl Fragment {
    /// True for the first fragment (the one carrying the upper-layer header).
    #[inline]
    pub const fn is_first(&self) -> bool {
        self.offset == 0
    }
}

/// Where the upper-layer header starts after the extension headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpperLayer {
    /// Upper-layer protocol (TCP, UDP, ICMPv6, …, or 59 for none).
    pub protocol: u8,
    /// Offset of the upper-layer header from the start of the IPv6 header.
    pub offset: usize,
    /// The fragment header, if one was present.
    pub fragment: Option<Fragment>,
}

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    /// Wraps a header quoted inside an ICMPv6 error (payload may be cut short).
    #[inline]
    pub fn new_quoted(buffer: T) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        p.check_header()?;
        Ok(p)
    }

    /// Checks the fixed header fits and has version 6.
    #[inline]
    pub fn check_header(&self) -> Result<()> {
        let b = self.buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(WireError::truncated(Layer::Ipv6, HEADER_LEN, b.len()));
        }
        let version = b[0] >> 4;
        if version != 6 {
            return Err(WireError::BadVersion {
                layer: Layer::Ipv6,
                found: version,
            });
        }
        Ok(())
    }

    /// Checks the header and that the declared payload is present.
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        self.check_header()?;
        let total = HEADER_LEN + usize::from(self.payload_len());
        let got = self.buffer.as_ref().len();
        if got < total {
            return Err(WireError::truncated(Layer::Ipv6, total, got));
        }
        Ok(())
    }

    /// Traffic class.
    #[inline]
    pub fn traffic_class(&self) -> u8 {
        let b = self.buffer.as_ref();
        (b[0] << 4) | (b[1] >> 4)
    }

    /// Flow label (20 bits).
    #[inline]
    pub fn flow_label(&self) -> u32 {
        be32(self.buffer.as_ref(), 0) & 0x000f_ffff
    }

    /// Source address bytes.
    #[inline]
    pub fn src(&self) -> [u8; 16] {
        let mut a = [0; 16];
        a.copy_from_slice(&self.buffer.as_ref()[field::SRC..field::SRC + 16]);
        a
    }

    /// Destination address bytes.
    #[inline]
    pub fn dst(&self) -> [u8; 16] {
        let mut a = [0; 16];
        a.copy_from_slice(&self.buffer.as_ref()[field::DST..field::DST + 16]);
        a
    }

    /// Source address.
    #[inline]
    pub fn src_addr(&self) -> Ipv6Addr {
        Ipv6Addr::from(self.src())
    }

    /// Destination address.
    #[inline]
    pub fn dst_addr(&self) -> Ipv6Addr {
        Ipv6Addr::from(self.dst())
    }

    /// Length of the packet as declared (fixed header + payload).
    #[inline]
    pub fn total_len(&self) -> usize {
        HEADER_LEN + usize::from(self.payload_len())
    }

    /// Walks hop-by-hop, routing, fragment, destination-options and AH headers to the upper
    /// layer. Bounded by the declared length and the buffer, and by [`MAX_EXTENSIONS`].
    #[inline]
    pub fn upper_layer(&self) -> Result<UpperLayer> {
        let b = self.buffer.as_ref();
        let end = self.total_len().min(b.len());
        let mut nh = self.next_header();
        let mut off = HEADER_LEN;
        let mut fragment = None;
        for _ in 0..=MAX_EXTENSIONS {
            let len = match nh {
                ip_proto::HOPOPT | ip_proto::IPV6_ROUTE | ip_proto::IPV6_OPTS => {
                    need(end, off, 2)?;
                    (usize::from(b[off + 1]) + 1) * 8
                }
                ip_proto::AH => {
                    need(end, off, 2)?;
                    (usize::from(b[off + 1]) + 2) * 4
                }
                ip_proto::IPV6_FRAG => {
                    need(end, off, 8)?;
                    let fo = be16(b, off + 2);
                    fragment = Some(Fragment {
                        offset: fo & 0xfff8,
                        more: fo & 1 == 1,
                        ident: be32(b, off + 4),
                    });
                    8
                }
                _ => {
                    return Ok(UpperLayer {
                        protocol: nh,
                        offset: off,
                        fragment,
                    });
                }
            };
            need(end, off, len)?;
            nh = b[off];
            off += len;
        }
        Err(WireError::TooManyExtensions {
            max: MAX_EXTENSIONS,
        })
    }
}

fn need(end: usize, off: usize, len: usize) -> Result<()> {
    if off + len > end {
        return Err(WireError::truncated(Layer::Ipv6Ext, off + len, end));
    }
    Ok(())
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv6Packet<T> {
    /// Sets version 6, traffic class and flow label.
    #[inline]
    pub fn set_version_tc_flow(&mut self, tc: u8, flow: u32) {
        let w = (6u32 << 28) | (u32::from(tc) << 20) | (flow & 0x000f_ffff);
        self.buffer.as_mut()[0..4].copy_from_slice(&w.to_be_bytes());
    }

    /// Sets the source address.
    #[inline]
    pub fn set_src(&mut self, a: [u8; 16]) {
        self.buffer.as_mut()[field::SRC..field::SRC + 16].copy_from_slice(&a);
    }

    /// Sets the destination address.
    #[inline]
    pub fn set_dst(&mut self, a: [u8; 16]) {
        self.buffer.as_mut()[field::DST..field::DST + 16].copy_from_slice(&a);
    }
}

/// The fields of a fixed IPv6 header to emit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Header {
    /// Traffic class.
    pub traffic_class: u8,
    /// Flow label (20 bits).
    pub flow_label: u32,
    /// Payload length.
    pub payload_len: u16,
    /// Next header.
    pub next_header: u8,
    /// Hop limit.
    pub hop_limit: u8,
    /// Source address.
    pub src: [u8; 16],
    /// Destination address.
    pub dst: [u8; 16],
}

impl Ipv6Header {
    /// Writes the header into the first 40 bytes of `buf`.
    ///
    /// # Panics
    /// If `buf` is shorter than 40 bytes (a caller bug: emitters size their buffers).
    #[inline]
    pub fn emit(&self, buf: &mut [u8]) {
        let mut p = Ipv6Packet::new_unchecked(&mut buf[..HEADER_LEN]);
        p.set_version_tc_flow(self.traffic_class, self.flow_label);
        p.set_payload_len(self.payload_len);
        p.set_next_header(self.next_header);
        p.set_hop_limit(self.hop_limit);
        p.set_src(self.src);
        p.set_dst(self.dst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    const DST: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];

    fn packet(next: u8, ext: &[u8], upper_len: usize) -> Vec<u8> {
        let mut b = std::vec![0u8; HEADER_LEN + ext.len() + upper_len];
        Ipv6Header {
            traffic_class: 0x12,
            flow_label: 0xabcde,
            payload_len: (ext.len() + upper_len) as u16,
            next_header: next,
            hop_limit: 64,
            src: SRC,
            dst: DST,
        }
        .emit(&mut b);
        b[HEADER_LEN..HEADER_LEN + ext.len()].copy_from_slice(ext);
        b
    }

    #[test]
    fn deconstruct() {
        let b = packet(ip_proto::TCP, &[], 20);
        let p = Ipv6Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.traffic_class(), 0x12);
        assert_eq!(p.flow_label(), 0xabcde);
        assert_eq!(p.payload_len(), 20);
        assert_eq!(p.hop_limit(), 64);
        assert_eq!(p.src(), SRC);
        assert_eq!(p.dst_addr(), Ipv6Addr::from(DST));
        let ul = p.upper_layer().unwrap();
        assert_eq!(
            ul,
            UpperLayer {
                protocol: ip_proto::TCP,
                offset: 40,
                fragment: None
            }
        );
        let (h, _) = etherparse::Ipv6Header::from_slice(&b).unwrap();
        assert_eq!(h.flow_label.value(), 0xabcde);
        assert_eq!(h.traffic_class, 0x12);
    }

    #[test]
    fn extension_chain() {
        // hop-by-hop (8 bytes) -> dest opts (16 bytes) -> fragment (first) -> UDP
        let mut ext = [0u8; 32];
        ext[0] = ip_proto::IPV6_OPTS;
        ext[1] = 0;
        ext[8] = ip_proto::IPV6_FRAG;
        ext[9] = 1;
        ext[24] = ip_proto::UDP;
        ext[26..28].copy_from_slice(&1u16.to_be_bytes()); // offset 0, M=1
        ext[28..32].copy_from_slice(&0xdeadbeefu32.to_be_bytes());
        let b = packet(ip_proto::HOPOPT, &ext, 8);
        let ul = Ipv6Packet::new_checked(&b[..])
            .unwrap()
            .upper_layer()
            .unwrap();
        assert_eq!(ul.protocol, ip_proto::UDP);
        assert_eq!(ul.offset, 40 + 32);
        let f = ul.fragment.unwrap();
        assert!(f.is_first() && f.more);
        assert_eq!(f.ident, 0xdeadbeef);
    }

    #[test]
    fn truncated_and_malformed() {
        let b = packet(ip_proto::TCP, &[], 20);
        assert_eq!(
            Ipv6Packet::new_checked(&b[..39]).unwrap_err(),
            WireError::Truncated {
                layer: Layer::Ipv6,
                needed: 40,
                got: 39
            }
        );
        assert_eq!(
            Ipv6Packet::new_checked(&b[..59]).unwrap_err(),
            WireError::Truncated {
                layer: Layer::Ipv6,
                needed: 60,
                got: 59
            }
        );
        let mut v4 = b.clone();
        v4[0] = 0x45;
        assert_eq!(
            Ipv6Packet::new_checked(&v4[..]).unwrap_err(),
            WireError::BadVersion {
                layer: Layer::Ipv6,
                found: 4
            }
        );
        // A routing header claiming 64 bytes inside an 8-byte payload.
        let b = packet(
            ip_proto::IPV6_ROUTE,
            &[ip_proto::TCP, 7, 0, 0, 0, 0, 0, 0],
            0,
        );
        assert!(matches!(
            Ipv6Packet::new_checked(&b[..]).unwrap().upper_layer(),
            Err(WireError::Truncated {
                layer: Layer::Ipv6Ext,
                needed: 104,
                got: 48
            })
        ));
    }

    #[test]
    fn endless_chain_is_bounded() {
        let ext = [ip_proto::IPV6_OPTS, 0, 0, 0, 0, 0, 0, 0].repeat(MAX_EXTENSIONS + 2);
        let b = packet(ip_proto::IPV6_OPTS, &ext, 0);
        assert_eq!(
            Ipv6Packet::new_checked(&b[..]).unwrap().upper_layer(),
            Err(WireError::TooManyExtensions {
                max: MAX_EXTENSIONS
            })
        );
    }
}
