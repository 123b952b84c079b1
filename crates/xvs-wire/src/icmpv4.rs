//! ICMP for IPv4 (RFC 792), including the original datagram quoted by error messages.

use crate::{Layer, Result, WireError, be16, put16};

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

/// A view of an ICMPv4 message.
#[derive(Debug, Clone)]
pub struct Icmpv4Packet<T> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Icmpv4Packet<T> {
    /// Wraps a buffer without checking it.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        Icmpv4Packet { buffer }
    }

    /// Wraps a buffer and checks that the header fits.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Checks that the 8-byte header fits.
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        let got = self.buffer.as_ref().len();
        if got < HEADER_LEN {
            return Err(WireError::truncated(Layer::Icmpv4, HEADER_LEN, got));
        }
        Ok(())
    }

    /// Message type.
    #[inline]
    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[0]
    }

    /// Message code.
    #[inline]
    pub fn msg_code(&self) -> u8 {
        self.buffer.as_ref()[1]
    }

    /// Checksum as stored.
    #[inline]
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), 2)
    }

    /// Echo identifier.
    #[inline]
    pub fn echo_ident(&self) -> u16 {
        be16(self.buffer.as_ref(), 4)
    }

    /// Echo sequence number.
    #[inline]
    pub fn echo_seq(&self) -> u16 {
        be16(self.buffer.as_ref(), 6)
    }

    /// Next-hop MTU of a fragmentation-needed message.
    #[inline]
    pub fn next_hop_mtu(&self) -> u16 {
        be16(self.buffer.as_ref(), 6)
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
    /// Sets the type (checksum not updated).
    #[inline]
    pub fn set_msg_type(&mut self, v: u8) {
        self.buffer.as_mut()[0] = v;
    }

    /// Sets the code (checksum not updated).
    #[inline]
    pub fn set_msg_code(&mut self, v: u8) {
        self.buffer.as_mut()[1] = v;
    }

    /// Stores a checksum value.
    #[inline]
    pub fn set_checksum(&mut self, v: u16) {
        put16(self.buffer.as_mut(), 2, v);
    }

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
