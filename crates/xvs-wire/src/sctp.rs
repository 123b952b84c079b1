//! SCTP common header (RFC 9260) and its CRC32c checksum.

use crate::view::{fields, view};
use crate::{Layer, Result, WireError};

/// Length of the SCTP common header.
pub const HEADER_LEN: usize = 12;

/// SCTP chunk types xvs uses for connection tracking.
pub mod chunk {
    /// Payload data.
    pub const DATA: u8 = 0;
    /// Association initiation.
    pub const INIT: u8 = 1;
    /// Initiation acknowledgement.
    pub const INIT_ACK: u8 = 2;
    /// Abort.
    pub const ABORT: u8 = 6;
    /// Shutdown.
    pub const SHUTDOWN: u8 = 7;
    /// Shutdown acknowledgement.
    pub const SHUTDOWN_ACK: u8 = 8;
    /// Cookie echo.
    pub const COOKIE_ECHO: u8 = 10;
    /// Cookie acknowledgement.
    pub const COOKIE_ACK: u8 = 11;
    /// Shutdown complete.
    pub const SHUTDOWN_COMPLETE: u8 = 14;
}

const CRC32C: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);

view! {
    /// A view of an SCTP packet.
    pub struct SctpPacket;
}

fields! { SctpPacket {
    /// Source port.
    src_port /
        /// Sets the source port (checksum not updated).
        set_src_port: u16 = 0;

    /// Destination port.
    dst_port /
        /// Sets the destination port (checksum not updated).
        set_dst_port: u16 = 2;

    /// Verification tag.
    verification_tag /
        /// Sets the verification tag.
        set_verification_tag: u32 = 4;
}}

impl<T: AsRef<[u8]>> SctpPacket<T> {
    /// Checks that the common header fits.
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        let got = self.buffer.as_ref().len();
        if got < HEADER_LEN {
            return Err(WireError::truncated(Layer::Sctp, HEADER_LEN, got));
        }
        Ok(())
    }

    /// Type of the first chunk, if one is present.
    #[inline]
    pub fn first_chunk_type(&self) -> Option<u8> {
        self.buffer.as_ref().get(HEADER_LEN).copied()
    }

    /// The CRC32c over the packet with the checksum field taken as zero.
    #[inline]
    pub fn compute_checksum(&self) -> u32 {
        let b = self.buffer.as_ref();
        let mut d = CRC32C.digest();
        d.update(&b[..8]);
        d.update(&[0; 4]);
        d.update(&b[HEADER_LEN..]);
        d.finalize()
    }

    /// The checksum as stored (the CRC value is carried little-endian, as Linux does).
    #[inline]
    pub fn checksum(&self) -> u32 {
        let b = self.buffer.as_ref();
        u32::from_le_bytes([b[8], b[9], b[10], b[11]])
    }

    /// True if the stored checksum matches.
    #[inline]
    pub fn verify_checksum(&self) -> bool {
        self.checksum() == self.compute_checksum()
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> SctpPacket<T> {
    /// Recomputes and stores the CRC32c (SCTP has no incremental update).
    #[inline]
    pub fn fill_checksum(&mut self) {
        let c = self.compute_checksum();
        self.buffer.as_mut()[8..12].copy_from_slice(&c.to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_check_value() {
        // The standard CRC-32C check value.
        assert_eq!(CRC32C.checksum(b"123456789"), 0xe306_9283);
    }

    #[test]
    fn init_chunk_roundtrip() {
        let mut b = [0u8; 32];
        let mut p = SctpPacket::new_unchecked(&mut b[..]);
        p.set_src_port(5000);
        p.set_dst_port(80);
        p.set_verification_tag(0);
        b[12] = chunk::INIT;
        b[14..16].copy_from_slice(&20u16.to_be_bytes());
        SctpPacket::new_unchecked(&mut b[..]).fill_checksum();
        let p = SctpPacket::new_checked(&b[..]).unwrap();
        assert_eq!((p.src_port(), p.dst_port()), (5000, 80));
        assert_eq!(p.first_chunk_type(), Some(chunk::INIT));
        assert!(p.verify_checksum());
        let mut bad = b;
        bad[20] ^= 1;
        assert!(!SctpPacket::new_checked(&bad[..]).unwrap().verify_checksum());
        assert_eq!(
            SctpPacket::new_checked(&b[..11]).unwrap_err(),
            WireError::Truncated {
                layer: Layer::Sctp,
                needed: 12,
                got: 11
            }
        );
    }
}
