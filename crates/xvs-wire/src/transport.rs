//! What TCP, UDP and SCTP headers share, for code that rewrites a flow's ends without caring
//! which of them it has: both ports in the first four bytes, and (TCP, UDP) the checksum.
//! Works on a header cut short too (a packet quoted inside an ICMP error): a field that is
//! not wholly in the buffer reads `None` and is not written.

use crate::{be16, ip_proto, put16, tcp, udp};

/// The transport header of protocol `proto` at the start of `buffer`.
#[derive(Debug, Clone)]
pub struct Transport<T> {
    buffer: T,
    proto: u8,
}

impl<T: AsRef<[u8]>> Transport<T> {
    /// A view of `buffer` as the header of `proto`.
    #[inline]
    pub const fn new(buffer: T, proto: u8) -> Self {
        Transport { buffer, proto }
    }

    /// True if the protocol has ports and both are in the buffer.
    #[inline]
    pub fn has_ports(&self) -> bool {
        matches!(self.proto, ip_proto::TCP | ip_proto::UDP | ip_proto::SCTP)
            && self.buffer.as_ref().len() >= 4
    }

    /// Source port.
    #[inline]
    pub fn src_port(&self) -> Option<u16> {
        self.has_ports().then(|| be16(self.buffer.as_ref(), 0))
    }

    /// Destination port.
    #[inline]
    pub fn dst_port(&self) -> Option<u16> {
        self.has_ports().then(|| be16(self.buffer.as_ref(), 2))
    }

    /// Where the checksum is, if the protocol has a 16-bit one and it is in the buffer.
    #[inline]
    fn checksum_at(&self) -> Option<usize> {
        let at = match self.proto {
            ip_proto::TCP => tcp::CHECKSUM_OFFSET,
            ip_proto::UDP => udp::CHECKSUM_OFFSET,
            _ => return None,
        };
        (at + 2 <= self.buffer.as_ref().len()).then_some(at)
    }

    /// The TCP or UDP checksum.
    #[inline]
    pub fn checksum(&self) -> Option<u16> {
        self.checksum_at().map(|at| be16(self.buffer.as_ref(), at))
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Transport<T> {
    /// Sets the source port (if the header has it).
    #[inline]
    pub fn set_src_port(&mut self, v: u16) {
        if self.has_ports() {
            put16(self.buffer.as_mut(), 0, v);
        }
    }

    /// Sets the destination port (if the header has it).
    #[inline]
    pub fn set_dst_port(&mut self, v: u16) {
        if self.has_ports() {
            put16(self.buffer.as_mut(), 2, v);
        }
    }

    /// Sets the TCP or UDP checksum (if the header has it).
    #[inline]
    pub fn set_checksum(&mut self, v: u16) {
        if let Some(at) = self.checksum_at() {
            put16(self.buffer.as_mut(), at, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_and_checksums_by_protocol() {
        let mut tcp = [0u8; 20];
        let mut t = Transport::new(&mut tcp[..], ip_proto::TCP);
        t.set_src_port(40000);
        t.set_dst_port(80);
        t.set_checksum(0xbeef);
        assert_eq!(
            (t.src_port(), t.dst_port(), t.checksum()),
            (Some(40000), Some(80), Some(0xbeef))
        );
        assert_eq!(tcp[16..18], [0xbe, 0xef]);
        let mut udp = [0u8; 8];
        let mut u = Transport::new(&mut udp[..], ip_proto::UDP);
        u.set_checksum(7);
        assert_eq!(udp[6..8], [0, 7]);
        let sctp = [0u8, 1, 0, 2, 9, 9, 9, 9];
        let s = Transport::new(&sctp[..], ip_proto::SCTP);
        assert_eq!(
            (s.src_port(), s.dst_port(), s.checksum()),
            (Some(1), Some(2), None)
        );
        let icmp = Transport::new(&[0u8; 8][..], ip_proto::ICMP);
        assert!(!icmp.has_ports());
    }

    #[test]
    fn a_short_quotation_keeps_what_it_has() {
        // Eight bytes of a quoted TCP header: ports yes, checksum (at 16) no.
        let mut q = [0u8; 8];
        let mut t = Transport::new(&mut q[..], ip_proto::TCP);
        t.set_dst_port(443);
        t.set_checksum(1);
        assert_eq!((t.dst_port(), t.checksum()), (Some(443), None));
        assert_eq!(q, [0, 0, 1, 187, 0, 0, 0, 0]);
        let t = Transport::new(&[0u8; 3][..], ip_proto::UDP);
        assert_eq!(t.src_port(), None);
    }
}
