//! IPv4 headers (RFC 791), including options and fragment recognition.

use crate::checksum;
use crate::view::{fields, view};
use crate::{Layer, Result, WireError};
use core::net::Ipv4Addr;

mod field {
    pub const VER_IHL: usize = 0;
    pub const DSCP_ECN: usize = 1;
    pub const TOTAL_LEN: usize = 2;
    pub const IDENT: usize = 4;
    pub const FLAGS_FRAG: usize = 6;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: usize = 10;
    pub const SRC: usize = 12;
    pub const DST: usize = 16;
}

/// Length of an IPv4 header without options.
pub const MIN_HEADER_LEN: usize = 20;
/// The "don't fragment" flag bit in the flags/fragment-offset word.
pub const FLAG_DF: u16 = 0x4000;
/// The "more fragments" flag bit.
pub const FLAG_MF: u16 = 0x2000;

view! {
    /// A view of an IPv4 packet.
    pub struct Ipv4Packet;
}

fields! { Ipv4Packet {
    /// DSCP and ECN byte.
    dscp_ecn /
        /// Sets the DSCP/ECN byte.
        set_dscp_ecn: u8 = field::DSCP_ECN;

    /// Total length field.
    total_len /
        /// Sets the total length.
        set_total_len: u16 = field::TOTAL_LEN;

    /// Identification field.
    ident /
        /// Sets the identification.
        set_ident: u16 = field::IDENT;

    /// Flags and fragment offset word, raw.
    flags_frag /
        /// Sets the flags/fragment-offset word.
        set_flags_frag: u16 = field::FLAGS_FRAG;

    /// Time to live.
    ttl /
        /// Sets the TTL (checksum not updated).
        set_ttl: u8 = field::TTL;

    /// Upper-layer protocol number.
    protocol /
        /// Sets the protocol (checksum not updated).
        set_protocol: u8 = field::PROTOCOL;

    /// Header checksum as stored.
    checksum /
        /// Stores a checksum value.
        set_checksum: u16 = field::CHECKSUM;
}}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// Wraps a header quoted inside an ICMP error: the header must be whole, the payload may be
    /// cut short (the total length field then exceeds the buffer).
    #[inline]
    pub fn new_quoted(buffer: T) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        p.check_header()?;
        Ok(p)
    }

    /// Checks version, header length and that the header fits.
    #[inline]
    pub fn check_header(&self) -> Result<()> {
        let b = self.buffer.as_ref();
        if b.len() < MIN_HEADER_LEN {
            return Err(WireError::truncated(Layer::Ipv4, MIN_HEADER_LEN, b.len()));
        }
        let version = b[field::VER_IHL] >> 4;
        if version != 4 {
            return Err(WireError::BadVersion {
                layer: Layer::Ipv4,
                found: version,
            });
        }
        let hl = self.header_len();
        if hl < MIN_HEADER_LEN {
            return Err(WireError::BadHeaderLen {
                layer: Layer::Ipv4,
                min: MIN_HEADER_LEN,
                found: hl,
            });
        }
        if b.len() < hl {
            return Err(WireError::truncated(Layer::Ipv4, hl, b.len()));
        }
        check_options(&b[MIN_HEADER_LEN..hl])
    }

    /// Checks the header and that the total length is consistent and present in the buffer
    /// (the buffer may be longer: Ethernet pads short frames).
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        self.check_header()?;
        let total = usize::from(self.total_len());
        let hl = self.header_len();
        if total < hl {
            return Err(WireError::BadTotalLen {
                layer: Layer::Ipv4,
                min: hl,
                found: total,
            });
        }
        let got = self.buffer.as_ref().len();
        if got < total {
            return Err(WireError::truncated(Layer::Ipv4, total, got));
        }
        Ok(())
    }

    /// Header length in bytes (IHL × 4).
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::VER_IHL] & 0x0f) * 4
    }

    /// The "don't fragment" flag.
    #[inline]
    pub fn dont_frag(&self) -> bool {
        self.flags_frag() & FLAG_DF != 0
    }

    /// The "more fragments" flag.
    #[inline]
    pub fn more_frags(&self) -> bool {
        self.flags_frag() & FLAG_MF != 0
    }

    /// Fragment offset in bytes.
    #[inline]
    pub fn frag_offset(&self) -> u16 {
        (self.flags_frag() & 0x1fff) << 3
    }

    /// True if this packet is any fragment (first, middle or last).
    #[inline]
    pub fn is_fragment(&self) -> bool {
        self.flags_frag() & (FLAG_MF | 0x1fff) != 0
    }

    /// Source address bytes.
    #[inline]
    pub fn src(&self) -> [u8; 4] {
        let b = self.buffer.as_ref();
        [b[12], b[13], b[14], b[15]]
    }

    /// Destination address bytes.
    #[inline]
    pub fn dst(&self) -> [u8; 4] {
        let b = self.buffer.as_ref();
        [b[16], b[17], b[18], b[19]]
    }

    /// Source address.
    #[inline]
    pub fn src_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.src())
    }

    /// Destination address.
    #[inline]
    pub fn dst_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.dst())
    }

    /// True if the header checksum is correct.
    #[inline]
    pub fn verify_checksum(&self) -> bool {
        checksum::checksum(&self.buffer.as_ref()[..self.header_len()]) == 0
    }

    /// The payload, bounded by the total length (and by the buffer for quoted headers).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        let end = usize::from(self.total_len()).min(b.len());
        let start = self.header_len().min(end);
        &b[start..end]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    /// Sets version 4 and the header length in bytes (a multiple of 4, 20..=60).
    #[inline]
    pub fn set_version_header_len(&mut self, len: usize) {
        self.buffer.as_mut()[field::VER_IHL] = 0x40 | ((len / 4) as u8 & 0x0f);
    }

    /// Sets the source address (checksum not updated).
    #[inline]
    pub fn set_src(&mut self, a: [u8; 4]) {
        self.buffer.as_mut()[field::SRC..field::SRC + 4].copy_from_slice(&a);
    }

    /// Sets the destination address (checksum not updated).
    #[inline]
    pub fn set_dst(&mut self, a: [u8; 4]) {
        self.buffer.as_mut()[field::DST..field::DST + 4].copy_from_slice(&a);
    }

    /// Recomputes the header checksum from scratch.
    #[inline]
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let hl = self.header_len();
        let c = checksum::checksum(&self.buffer.as_ref()[..hl]);
        self.set_checksum(c);
    }

    /// Replaces the source address and updates the header checksum incrementally.
    #[inline]
    pub fn rewrite_src(&mut self, a: [u8; 4]) {
        let old = self.src();
        let c = checksum::update(self.checksum(), &old, &a);
        self.set_src(a);
        self.set_checksum(c);
    }

    /// Replaces the destination address and updates the header checksum incrementally.
    #[inline]
    pub fn rewrite_dst(&mut self, a: [u8; 4]) {
        let old = self.dst();
        let c = checksum::update(self.checksum(), &old, &a);
        self.set_dst(a);
        self.set_checksum(c);
    }

    /// Decrements the TTL by one, updating the checksum incrementally; returns the new TTL.
    /// A TTL of zero stays zero (the caller must not forward such a packet).
    #[inline]
    pub fn decrement_ttl(&mut self) -> u8 {
        let ttl = self.ttl();
        if ttl == 0 {
            return 0;
        }
        let proto = self.protocol();
        let old = u16::from_be_bytes([ttl, proto]);
        let new = u16::from_be_bytes([ttl - 1, proto]);
        let c = checksum::update16(self.checksum(), old, new);
        self.set_ttl(ttl - 1);
        self.set_checksum(c);
        ttl - 1
    }

    /// The mutable payload, bounded by the total length.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = usize::from(self.total_len()).min(self.buffer.as_ref().len());
        let start = self.header_len().min(end);
        &mut self.buffer.as_mut()[start..end]
    }
}

/// Checks the options' framing (RFC 791): each is End of List, No Operation, or a type, a
/// length of at least 2 and that many bytes within the header.
fn check_options(opts: &[u8]) -> Result<()> {
    let mut i = 0;
    while i < opts.len() {
        match opts[i] {
            0 => break,
            1 => i += 1,
            _ => {
                let len = opts.get(i + 1).copied().map_or(0, usize::from);
                if len < 2 || i + len > opts.len() {
                    return Err(WireError::Unsupported {
                        layer: Layer::Ipv4,
                        field: "option length",
                        found: len as u32,
                    });
                }
                i += len;
            }
        }
    }
    Ok(())
}

/// The fields of an option-less IPv4 header to emit (used for TUN outer headers and ICMP).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Header {
    /// DSCP/ECN byte.
    pub dscp_ecn: u8,
    /// Total length, header included.
    pub total_len: u16,
    /// Identification.
    pub ident: u16,
    /// Set the "don't fragment" flag.
    pub dont_frag: bool,
    /// Time to live.
    pub ttl: u8,
    /// Upper-layer protocol.
    pub protocol: u8,
    /// Source address.
    pub src: [u8; 4],
    /// Destination address.
    pub dst: [u8; 4],
}

impl Ipv4Header {
    /// Writes the header with a fresh checksum into the first 20 bytes of `buf`.
    ///
    /// # Panics
    /// If `buf` is shorter than 20 bytes (a caller bug: emitters size their buffers).
    #[inline]
    pub fn emit(&self, buf: &mut [u8]) {
        let mut p = Ipv4Packet::new_unchecked(&mut buf[..MIN_HEADER_LEN]);
        p.set_version_header_len(MIN_HEADER_LEN);
        p.set_dscp_ecn(self.dscp_ecn);
        p.set_total_len(self.total_len);
        p.set_ident(self.ident);
        p.set_flags_frag(if self.dont_frag { FLAG_DF } else { 0 });
        p.set_ttl(self.ttl);
        p.set_protocol(self.protocol);
        p.set_src(self.src);
        p.set_dst(self.dst);
        p.fill_checksum();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // 198.18.0.1 -> 198.18.1.10, TCP, TTL 64, DF, id 0x1234, 20-byte payload, valid checksum.
    fn sample() -> [u8; 40] {
        let mut b = [0u8; 40];
        Ipv4Header {
            dscp_ecn: 0,
            total_len: 40,
            ident: 0x1234,
            dont_frag: true,
            ttl: 64,
            protocol: 6,
            src: [198, 18, 0, 1],
            dst: [198, 18, 1, 10],
        }
        .emit(&mut b);
        b
    }

    #[test]
    fn deconstruct() {
        let b = sample();
        let p = Ipv4Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.header_len(), 20);
        assert_eq!(p.total_len(), 40);
        assert_eq!(p.ident(), 0x1234);
        assert!(p.dont_frag());
        assert!(!p.is_fragment());
        assert_eq!(p.ttl(), 64);
        assert_eq!(p.protocol(), 6);
        assert_eq!(p.src_addr(), Ipv4Addr::new(198, 18, 0, 1));
        assert_eq!(p.dst_addr(), Ipv4Addr::new(198, 18, 1, 10));
        assert!(p.verify_checksum());
        assert_eq!(p.payload().len(), 20);
    }

    #[test]
    fn matches_etherparse() {
        let b = sample();
        let (h, _) = etherparse::Ipv4Header::from_slice(&b).unwrap();
        assert_eq!(
            h.header_checksum,
            Ipv4Packet::new_unchecked(&b[..]).checksum()
        );
        assert_eq!(h.header_checksum, h.calc_header_checksum());
    }

    #[test]
    fn truncated_and_malformed() {
        let b = sample();
        assert_eq!(
            Ipv4Packet::new_checked(&b[..19]).unwrap_err(),
            WireError::Truncated {
                layer: Layer::Ipv4,
                needed: 20,
                got: 19
            }
        );
        assert_eq!(
            Ipv4Packet::new_checked(&b[..39]).unwrap_err(),
            WireError::Truncated {
                layer: Layer::Ipv4,
                needed: 40,
                got: 39
            }
        );
        let mut v6 = b;
        v6[0] = 0x65;
        assert_eq!(
            Ipv4Packet::new_checked(&v6[..]).unwrap_err(),
            WireError::BadVersion {
                layer: Layer::Ipv4,
                found: 6
            }
        );
        let mut ihl = b;
        ihl[0] = 0x44;
        assert_eq!(
            Ipv4Packet::new_checked(&ihl[..]).unwrap_err(),
            WireError::BadHeaderLen {
                layer: Layer::Ipv4,
                min: 20,
                found: 16
            }
        );
        let mut tl = b;
        tl[3] = 10;
        assert_eq!(
            Ipv4Packet::new_checked(&tl[..]).unwrap_err(),
            WireError::BadTotalLen {
                layer: Layer::Ipv4,
                min: 20,
                found: 10
            }
        );
        // A quoted header may have its payload cut short.
        assert!(Ipv4Packet::new_quoted(&b[..28]).is_ok());
    }

    #[test]
    fn option_lengths_must_frame_the_options() {
        let header = |opts: &[u8]| {
            let mut b = vec![0u8; 20 + opts.len()];
            b[0] = 0x40 | ((20 + opts.len()) / 4) as u8;
            b[20..].copy_from_slice(opts);
            b
        };
        for good in [&[1u8, 1, 1, 0][..], &[7, 4, 0, 0], &[130, 3, 0, 1]] {
            assert!(
                Ipv4Packet::new_unchecked(header(good))
                    .check_header()
                    .is_ok(),
                "{good:?}"
            );
        }
        for bad in [
            &[7u8, 0, 0, 0][..],
            &[7, 1, 0, 0],
            &[7, 9, 0, 0],
            &[1, 1, 1, 7],
        ] {
            let e = Ipv4Packet::new_unchecked(header(bad))
                .check_header()
                .unwrap_err();
            assert!(e.to_string().contains("option length"), "{bad:?}: {e}");
        }
    }

    #[test]
    fn options_and_fragments() {
        let mut b = [0u8; 32];
        Ipv4Header {
            dscp_ecn: 0,
            total_len: 32,
            ident: 1,
            dont_frag: false,
            ttl: 1,
            protocol: 17,
            src: [192, 0, 2, 1],
            dst: [192, 0, 2, 2],
        }
        .emit(&mut b[..20]);
        // Move to a 24-byte header with a 4-byte NOP option block.
        b.copy_within(0..20, 0);
        let mut p = Ipv4Packet::new_unchecked(&mut b[..]);
        p.set_version_header_len(24);
        p.set_flags_frag(FLAG_MF | 3);
        p.fill_checksum();
        let p = Ipv4Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.header_len(), 24);
        assert!(p.is_fragment());
        assert!(p.more_frags());
        assert_eq!(p.frag_offset(), 24);
        assert_eq!(p.payload().len(), 8);
        assert!(p.verify_checksum());
    }

    #[test]
    fn rewrites_keep_checksum_valid() {
        let mut b = sample();
        let mut p = Ipv4Packet::new_unchecked(&mut b[..]);
        p.rewrite_dst([10, 1, 2, 3]);
        p.rewrite_src([203, 0, 113, 9]);
        assert_eq!(p.decrement_ttl(), 63);
        assert!(p.verify_checksum());
        assert_eq!(p.dst(), [10, 1, 2, 3]);
        let mut z = sample();
        let mut p = Ipv4Packet::new_unchecked(&mut z[..]);
        p.set_ttl(0);
        p.fill_checksum();
        assert_eq!(p.decrement_ttl(), 0);
        assert!(p.verify_checksum());
    }
}
