//! ICMP for IPv4 (RFC 792), including the original datagram quoted by error messages.

use crate::view::{fields, view};
use crate::{Layer, Result, WireError};

/// Length of the ICMP header (type, code, checksum, rest-of-header).
pub const HEADER_LEN: usize = 8;

/// ICMPv4 message types.
pub mod kind {
    /// Echo reply.
    pub const ECHO_REPLY: u8 = 0;
    /// Destination unreachable.
    pub const DEST_UNREACH: u8 = 3;
    /// Source quench (deprecated, still an error message).
    pub const SOURCE_QUENCH: u8 = 4;
    /// Redirect.
    pub const REDIRECT: u8 = 5;
    /// Echo request.
    pub const ECHO_REQUEST: u8 = 8;
    /// Time exceeded.
    pub const TIME_EXCEEDED: u8 = 11;
    /// Parameter problem.
    pub const PARAM_PROBLEM: u8 = 12;
}

/// Destination-unreachable codes.
pub mod code {
    /// Port unreachable.
    pub const PORT_UNREACH: u8 = 3;
    /// Fragmentation needed and DF set.
    pub const FRAG_NEEDED: u8 = 4;
    /// TTL exceeded in transit (with type TIME_EXCEEDED).
    pub const TTL_EXCEEDED: u8 = 0;
}

/// True for the ICMPv4 types that quote an offending datagram.
pub const fn is_error(t: u8) -> bool {
    matches!(
        t,
        kind::DEST_UNREACH
            | kind::SOURCE_QUENCH
            | kind::REDIRECT
            | kind::TIME_EXCEEDED
            | kind::PARAM_PROBLEM
    )
}

view! {
    /// A view of an ICMPv4 message.
    pub struct Icmpv4Packet;
}

fields! { Icmpv4Packet {
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

    /// Echo identifier.
    echo_ident: u16 = 4;

    /// Echo sequence number.
    echo_seq: u16 = 6;

    /// Next-hop MTU of a fragmentation-needed message.
    next_hop_mtu: u16 = 6;
}}

impl<T: AsRef<[u8]>> Icmpv4Packet<T> {
    /// Checks that the 8-byte header fits.
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        let got = self.buffer.as_ref().len();
        if got < HEADER_LEN {
            return Err(WireError::truncated(Layer::Icmpv4, HEADER_LEN, got));
        }
        Ok(())
    }

    /// True if this message quotes an offending datagram.
    #[inline]
    pub fn is_error(&self) -> bool {
        is_error(self.msg_type())
    }

    /// Everything after the 8-byte header (the quoted datagram for errors).
    #[inline]
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }

    /// True if the checksum over the whole message is correct.
    #[inline]
    pub fn verify_checksum(&self) -> bool {
        crate::checksum::checksum(self.buffer.as_ref()) == 0
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Icmpv4Packet<T> {
    /// Sets the four rest-of-header bytes.
    #[inline]
    pub fn set_rest(&mut self, rest: [u8; 4]) {
        self.buffer.as_mut()[4..8].copy_from_slice(&rest);
    }

    /// Mutable data after the header.
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[HEADER_LEN..]
    }

    /// Recomputes the checksum over the whole buffer.
    #[inline]
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = crate::checksum::checksum(self.buffer.as_ref());
        self.set_checksum(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_roundtrip() {
        let mut b = [0u8; 12];
        let mut p = Icmpv4Packet::new_unchecked(&mut b[..]);
        p.set_msg_type(kind::ECHO_REQUEST);
        p.set_msg_code(0);
        p.set_rest([0x12, 0x34, 0, 7]);
        p.data_mut().copy_from_slice(b"abcd");
        p.fill_checksum();
        let p = Icmpv4Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.msg_type(), kind::ECHO_REQUEST);
        assert_eq!((p.echo_ident(), p.echo_seq()), (0x1234, 7));
        assert!(p.verify_checksum());
        assert!(!p.is_error());
        assert_eq!(p.data(), b"abcd");
        let (h, _) = etherparse::Icmpv4Header::from_slice(&b).unwrap();
        assert_eq!(h.checksum, p.checksum());
    }

    #[test]
    fn errors_and_truncation() {
        assert!(is_error(kind::DEST_UNREACH) && is_error(kind::TIME_EXCEEDED));
        assert!(!is_error(kind::ECHO_REPLY));
        assert_eq!(
            Icmpv4Packet::new_checked(&[3u8, 4, 0, 0][..]).unwrap_err(),
            WireError::Truncated {
                layer: Layer::Icmpv4,
                needed: 8,
                got: 4
            }
        );
    }
}
