//! ICMP for IPv6 (RFC 4443), including the original packet quoted by error messages.

use crate::view::{fields, view};
use crate::{Layer, Result, WireError};

/// Length of the ICMPv6 header (type, code, checksum, 4 message bytes).
pub const HEADER_LEN: usize = 8;

/// ICMPv6 message types.
pub mod kind {
    /// Destination unreachable.
    pub const DEST_UNREACH: u8 = 1;
    /// Packet too big.
    pub const PACKET_TOO_BIG: u8 = 2;
    /// Time exceeded.
    pub const TIME_EXCEEDED: u8 = 3;
    /// Parameter problem.
    pub const PARAM_PROBLEM: u8 = 4;
    /// Echo request.
    pub const ECHO_REQUEST: u8 = 128;
    /// Echo reply.
    pub const ECHO_REPLY: u8 = 129;
    /// Neighbour solicitation.
    pub const NEIGHBOR_SOLICIT: u8 = 135;
    /// Neighbour advertisement.
    pub const NEIGHBOR_ADVERT: u8 = 136;
}

/// Destination-unreachable codes.
pub mod code {
    /// Port unreachable.
    pub const PORT_UNREACH: u8 = 4;
}

/// True for error messages (types below 128 quote the offending packet).
pub const fn is_error(t: u8) -> bool {
    t < 128
}

view! {
    /// A view of an ICMPv6 message.
    pub struct Icmpv6Packet;
}

fields! { Icmpv6Packet {
    /// Message type.
    msg_type /
        /// Sets the type (checksum not updated).
        set_msg_type: u8 = 0;

    /// Message code.
    msg_code /
        /// Sets the code (checksum not updated).
        set_msg_code: u8 = 1;

    /// Checksum as stored.
    checksum /
        /// Stores a checksum value.
        set_checksum: u16 = 2;

    /// MTU of a Packet Too Big message.
    mtu: u32 = 4;

    /// Echo identifier.
    echo_ident: u16 = 4;
}}

impl<T: AsRef<[u8]>> Icmpv6Packet<T> {
    /// Checks that the 8-byte header fits.
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        let got = self.buffer.as_ref().len();
        if got < HEADER_LEN {
            return Err(WireError::truncated(Layer::Icmpv6, HEADER_LEN, got));
        }
        Ok(())
    }

    /// True if this message quotes an offending packet.
    #[inline]
    pub fn is_error(&self) -> bool {
        is_error(self.msg_type())
    }

    /// Everything after the 8-byte header.
    #[inline]
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }

    /// True if the checksum (over the IPv6 pseudo header and the message) is correct.
    #[inline]
    pub fn verify_checksum(&self, src: [u8; 16], dst: [u8; 16]) -> bool {
        crate::checksum::l4_v6(src, dst, crate::ip_proto::ICMPV6, self.buffer.as_ref()) == 0
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Icmpv6Packet<T> {
    /// Sets the four message bytes after the checksum.
    #[inline]
    pub fn set_rest(&mut self, rest: [u8; 4]) {
        self.buffer.as_mut()[4..8].copy_from_slice(&rest);
    }

    /// Mutable data after the header.
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[HEADER_LEN..]
    }

    /// Recomputes the checksum with the IPv6 pseudo header.
    #[inline]
    pub fn fill_checksum(&mut self, src: [u8; 16], dst: [u8; 16]) {
        self.set_checksum(0);
        let c = crate::checksum::l4_v6(src, dst, crate::ip_proto::ICMPV6, self.buffer.as_ref());
        self.set_checksum(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packet_too_big_roundtrip() {
        let src = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        let dst = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
        let mut b = [0u8; 16];
        let mut p = Icmpv6Packet::new_unchecked(&mut b[..]);
        p.set_msg_type(kind::PACKET_TOO_BIG);
        p.set_msg_code(0);
        p.set_rest(1280u32.to_be_bytes());
        p.data_mut().copy_from_slice(&[0x60, 0, 0, 0, 0, 0, 6, 64]);
        p.fill_checksum(src, dst);
        let p = Icmpv6Packet::new_checked(&b[..]).unwrap();
        assert!(p.is_error());
        assert_eq!(p.mtu(), 1280);
        assert!(p.verify_checksum(src, dst));
        let (h, _) = etherparse::Icmpv6Header::from_slice(&b).unwrap();
        assert_eq!(
            h.icmp_type.calc_checksum(src, dst, p.data()).unwrap(),
            p.checksum()
        );
        assert_eq!(
            Icmpv6Packet::new_checked(&b[..7]).unwrap_err(),
            WireError::Truncated {
                layer: Layer::Icmpv6,
                needed: 8,
                got: 7
            }
        );
    }
}
