//! TCP headers (RFC 9293).

use crate::view::{fields, view};
use crate::{Layer, Result, WireError};

/// Length of a TCP header without options.
pub const MIN_HEADER_LEN: usize = 20;
/// Offset of the checksum field.
pub const CHECKSUM_OFFSET: usize = 16;

/// TCP flag bits (byte 13 of the header).
pub mod flags {
    /// No more data from sender.
    pub const FIN: u8 = 0x01;
    /// Synchronise sequence numbers.
    pub const SYN: u8 = 0x02;
    /// Reset the connection.
    pub const RST: u8 = 0x04;
    /// Push function.
    pub const PSH: u8 = 0x08;
    /// Acknowledgment field significant.
    pub const ACK: u8 = 0x10;
    /// Urgent pointer significant.
    pub const URG: u8 = 0x20;
}

view! {
    /// A view of a TCP segment.
    pub struct TcpPacket;
}

fields! { TcpPacket {
    /// Source port.
    src_port /
        /// Sets the source port (checksum not updated).
        set_src_port: u16 = 0;

    /// Destination port.
    dst_port /
        /// Sets the destination port (checksum not updated).
        set_dst_port: u16 = 2;

    /// Sequence number.
    seq /
        /// Sets the sequence number.
        set_seq: u32 = 4;

    /// Acknowledgment number.
    ack /
        /// Sets the acknowledgment number.
        set_ack: u32 = 8;

    /// The flag byte (see [`flags`]).
    flags /
        /// Sets the flag byte.
        set_flags: u8 = 13;

    /// Receive window.
    window /
        /// Sets the window.
        set_window: u16 = 14;

    /// Checksum as stored.
    checksum /
        /// Stores a checksum value.
        set_checksum: u16 = CHECKSUM_OFFSET;
}}

impl<T: AsRef<[u8]>> TcpPacket<T> {
    /// Checks that the fixed header fits and the data offset is sane and present.
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        let got = self.buffer.as_ref().len();
        if got < MIN_HEADER_LEN {
            return Err(WireError::truncated(Layer::Tcp, MIN_HEADER_LEN, got));
        }
        let hl = self.header_len();
        if hl < MIN_HEADER_LEN {
            return Err(WireError::BadHeaderLen {
                layer: Layer::Tcp,
                min: MIN_HEADER_LEN,
                found: hl,
            });
        }
        if got < hl {
            return Err(WireError::truncated(Layer::Tcp, hl, got));
        }
        Ok(())
    }

    /// Header length in bytes (data offset × 4).
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[12] >> 4) * 4
    }

    /// Segment payload (after options).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TcpPacket<T> {
    /// Sets the header length in bytes (multiple of 4).
    #[inline]
    pub fn set_header_len(&mut self, len: usize) {
        self.buffer.as_mut()[12] = ((len / 4) as u8) << 4;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checksum;

    fn syn() -> [u8; 24] {
        let mut b = [0u8; 24];
        let mut t = TcpPacket::new_unchecked(&mut b[..]);
        t.set_src_port(40000);
        t.set_dst_port(80);
        t.set_seq(0x01020304);
        t.set_ack(0);
        t.set_header_len(24);
        t.set_flags(flags::SYN);
        t.set_window(65535);
        b[20..24].copy_from_slice(&[2, 4, 0x05, 0xb4]); // MSS 1460
        let c = checksum::l4_v4([198, 18, 0, 1], [198, 18, 1, 10], 6, &b);
        TcpPacket::new_unchecked(&mut b[..]).set_checksum(c);
        b
    }

    #[test]
    fn deconstruct() {
        let b = syn();
        let t = TcpPacket::new_checked(&b[..]).unwrap();
        assert_eq!((t.src_port(), t.dst_port()), (40000, 80));
        assert_eq!(t.seq(), 0x01020304);
        assert_eq!(t.header_len(), 24);
        assert_eq!(t.flags(), flags::SYN);
        assert_eq!(t.window(), 65535);
        assert!(t.payload().is_empty());
        assert_eq!(checksum::l4_v4([198, 18, 0, 1], [198, 18, 1, 10], 6, &b), 0);
        let h = etherparse::TcpHeaderSlice::from_slice(&b).unwrap();
        assert_eq!(h.checksum(), t.checksum());
        assert!(h.syn() && !h.ack());
        assert_eq!(
            h.to_header()
                .calc_checksum_ipv4_raw([198, 18, 0, 1], [198, 18, 1, 10], &[])
                .unwrap(),
            t.checksum()
        );
    }

    #[test]
    fn truncated_and_malformed() {
        let b = syn();
        assert_eq!(
            TcpPacket::new_checked(&b[..19]).unwrap_err(),
            WireError::Truncated {
                layer: Layer::Tcp,
                needed: 20,
                got: 19
            }
        );
        assert_eq!(
            TcpPacket::new_checked(&b[..23]).unwrap_err(),
            WireError::Truncated {
                layer: Layer::Tcp,
                needed: 24,
                got: 23
            }
        );
        let mut bad = b;
        bad[12] = 0x40;
        assert_eq!(
            TcpPacket::new_checked(&bad[..]).unwrap_err(),
            WireError::BadHeaderLen {
                layer: Layer::Tcp,
                min: 20,
                found: 16
            }
        );
    }
}
