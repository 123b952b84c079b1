//! ARP for IPv4 over Ethernet (RFC 826). xvs only reads ARP (to pass it to the host and to
//! learn neighbours in tests); the host stack answers it.

use crate::view::{fields, view};
use crate::{Layer, MacAddr, Result, WireError, be16};
use core::net::Ipv4Addr;

/// Length of an Ethernet/IPv4 ARP packet.
pub const PACKET_LEN: usize = 28;

/// ARP operation codes.
pub mod op {
    /// Request.
    pub const REQUEST: u16 = 1;
    /// Reply.
    pub const REPLY: u16 = 2;
}

view! {
    /// A view of an Ethernet/IPv4 ARP packet.
    pub struct ArpPacket;
}

fields! { ArpPacket {
    /// Operation (request or reply).
    operation: u16 = 6;
}}

impl<T: AsRef<[u8]>> ArpPacket<T> {
    /// Checks that this is a complete Ethernet/IPv4 ARP packet.
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        let b = self.buffer.as_ref();
        if b.len() < PACKET_LEN {
            return Err(WireError::truncated(Layer::Arp, PACKET_LEN, b.len()));
        }
        let htype = be16(b, 0);
        if htype != 1 {
            return Err(WireError::Unsupported {
                layer: Layer::Arp,
                field: "hardware type",
                found: u32::from(htype),
            });
        }
        let ptype = be16(b, 2);
        if ptype != crate::ethernet::ethertype::IPV4 || b[4] != 6 || b[5] != 4 {
            return Err(WireError::Unsupported {
                layer: Layer::Arp,
                field: "protocol type",
                found: u32::from(ptype),
            });
        }
        Ok(())
    }

    /// Sender hardware address.
    #[inline]
    pub fn sender_mac(&self) -> MacAddr {
        let mut m = [0; 6];
        m.copy_from_slice(&self.buffer.as_ref()[8..14]);
        MacAddr(m)
    }

    /// Sender protocol address.
    #[inline]
    pub fn sender_ip(&self) -> Ipv4Addr {
        let b = self.buffer.as_ref();
        Ipv4Addr::new(b[14], b[15], b[16], b[17])
    }

    /// Target hardware address.
    #[inline]
    pub fn target_mac(&self) -> MacAddr {
        let mut m = [0; 6];
        m.copy_from_slice(&self.buffer.as_ref()[18..24]);
        MacAddr(m)
    }

    /// Target protocol address.
    #[inline]
    pub fn target_ip(&self) -> Ipv4Addr {
        let b = self.buffer.as_ref();
        Ipv4Addr::new(b[24], b[25], b[26], b[27])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REQ: [u8; 28] = [
        0, 1, 8, 0, 6, 4, 0, 1, // htype, ptype, hlen, plen, op
        2, 0, 0, 0, 0, 1, 198, 18, 0, 1, // sender
        0, 0, 0, 0, 0, 0, 198, 18, 0, 2, // target
    ];

    #[test]
    fn deconstruct() {
        let p = ArpPacket::new_checked(&REQ[..]).unwrap();
        assert_eq!(p.operation(), op::REQUEST);
        assert_eq!(p.sender_mac(), MacAddr([2, 0, 0, 0, 0, 1]));
        assert_eq!(p.sender_ip(), Ipv4Addr::new(198, 18, 0, 1));
        assert_eq!(p.target_mac(), MacAddr::ZERO);
        assert_eq!(p.target_ip(), Ipv4Addr::new(198, 18, 0, 2));
    }

    #[test]
    fn truncated_and_unsupported() {
        assert!(matches!(
            ArpPacket::new_checked(&REQ[..27]),
            Err(WireError::Truncated {
                layer: Layer::Arp,
                needed: 28,
                got: 27
            })
        ));
        let mut bad = REQ;
        bad[1] = 6; // IEEE 802 hardware type
        assert!(matches!(
            ArpPacket::new_checked(&bad[..]),
            Err(WireError::Unsupported {
                field: "hardware type",
                found: 6,
                ..
            })
        ));
    }
}
