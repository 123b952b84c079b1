//! UDP headers (RFC 768).

use crate::view::{fields, view};
use crate::{Layer, Result, WireError};

/// Length of the UDP header.
pub const HEADER_LEN: usize = 8;
/// Offset of the checksum field.
pub const CHECKSUM_OFFSET: usize = 6;

view! {
    /// A view of a UDP datagram.
    pub struct UdpPacket;
}

fields! { UdpPacket {
    /// Source port.
    src_port /
        /// Sets the source port (checksum not updated).
        set_src_port: u16 = 0;

    /// Destination port.
    dst_port /
        /// Sets the destination port (checksum not updated).
        set_dst_port: u16 = 2;

    /// Length field (header + payload).
    len /
        /// Sets the length field.
        set_len: u16 = 4;

    /// Checksum as stored (0 = none, IPv4 only).
    checksum /
        /// Stores a checksum value.
        set_checksum: u16 = CHECKSUM_OFFSET;
}}

impl<T: AsRef<[u8]>> UdpPacket<T> {
    /// Checks that the header fits and the length field is consistent with the buffer.
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        let got = self.buffer.as_ref().len();
        if got < HEADER_LEN {
            return Err(WireError::truncated(Layer::Udp, HEADER_LEN, got));
        }
        let len = usize::from(self.len());
        if len < HEADER_LEN {
            return Err(WireError::BadTotalLen {
                layer: Layer::Udp,
                min: HEADER_LEN,
                found: len,
            });
        }
        if got < len {
            return Err(WireError::truncated(Layer::Udp, len, got));
        }
        Ok(())
    }

    /// True if the length field says there is no payload.
    #[inline]
    pub fn is_empty(&self) -> bool {
        usize::from(self.len()) <= HEADER_LEN
    }

    /// Payload, bounded by the length field.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        let end = usize::from(self.len()).clamp(HEADER_LEN, b.len());
        &b[HEADER_LEN..end]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> UdpPacket<T> {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checksum;

    #[test]
    fn deconstruct_construct() {
        let mut b = [0u8; 12];
        let mut u = UdpPacket::new_unchecked(&mut b[..]);
        u.set_src_port(5353);
        u.set_dst_port(53);
        u.set_len(12);
        b[8..].copy_from_slice(b"ping");
        let c = checksum::udp_final(checksum::l4_v4([192, 0, 2, 1], [192, 0, 2, 2], 17, &b));
        UdpPacket::new_unchecked(&mut b[..]).set_checksum(c);
        let u = UdpPacket::new_checked(&b[..]).unwrap();
        assert_eq!((u.src_port(), u.dst_port(), u.len()), (5353, 53, 12));
        assert_eq!(u.payload(), b"ping");
        assert_eq!(checksum::l4_v4([192, 0, 2, 1], [192, 0, 2, 2], 17, &b), 0);
        let h = etherparse::UdpHeaderSlice::from_slice(&b).unwrap();
        assert_eq!(
            h.to_header()
                .calc_checksum_ipv4_raw([192, 0, 2, 1], [192, 0, 2, 2], b"ping")
                .unwrap(),
            c
        );
    }

    #[test]
    fn truncated_and_malformed() {
        let mut b = [0u8; 8];
        b[5] = 20;
        assert_eq!(
            UdpPacket::new_checked(&b[..7]).unwrap_err(),
            WireError::Truncated {
                layer: Layer::Udp,
                needed: 8,
                got: 7
            }
        );
        assert_eq!(
            UdpPacket::new_checked(&b[..]).unwrap_err(),
            WireError::Truncated {
                layer: Layer::Udp,
                needed: 20,
                got: 8
            }
        );
        b[5] = 4;
        assert_eq!(
            UdpPacket::new_checked(&b[..]).unwrap_err(),
            WireError::BadTotalLen {
                layer: Layer::Udp,
                min: 8,
                found: 4
            }
        );
    }
}
